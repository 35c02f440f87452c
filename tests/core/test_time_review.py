"""Regression tests for the problems an adversarial review of the time features found: an
expired successor, an expired chain member in an export, unreadable or over-limit stored
policies, the retention scan, query plans with ``as_of``, huge ``ttl`` values, imported
``recorded_at`` in the future."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from memtrace_core import AsyncMemtrace, EngineConfig, ValidationError
from memtrace_core.plugins import PluginRegistry
from memtrace_core.retention import Sweeper
from memtrace_core.stores.base import AgeRule, MemoryFilter
from memtrace_core.stores.sqlite import SQLiteStore, build_where
from memtrace_core.timeutil import format_us, now_us
from memtrace_core.validation import Limits


def _links(path: Path) -> list[tuple[str, str | None, str | None]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, supersedes, superseded_by FROM memories").fetchall()


async def test_a_memory_whose_successor_expired_is_current_again(
    engine: AsyncMemtrace, db_path: Path
) -> None:
    a = await engine.add_memory(agent_id="bot", content="office in Paris")
    b = await engine.add_memory(agent_id="bot", content="office in Lyon", supersedes=a.id, ttl=0.3)
    assert [m.id for m in (await engine.list_memories()).memories] == [b.id]
    await asyncio.sleep(0.4)
    # no sweep has run: still, B is gone and A is current at once
    assert [m.id for m in (await engine.list_memories()).memories] == [a.id]
    assert (await engine.get_memory(a.id)).superseded_by is None
    ctx = await engine.get_agent_context("bot")
    assert "Paris" in ctx.context
    # and A can be superseded again: B (expired) is deleted in the same transaction
    c = await engine.add_memory(agent_id="bot", content="office in Nice", supersedes=a.id)
    assert [m.id for m in (await engine.list_memories()).memories] == [c.id]
    assert b.id not in {row[0] for row in _links(db_path)}


async def test_an_expired_middle_member_leaves_one_current_version(engine: AsyncMemtrace) -> None:
    a = await engine.add_memory(agent_id="bot", content="v1")
    b = await engine.add_memory(agent_id="bot", content="v2", supersedes=a.id, ttl=0.3)
    c = await engine.add_memory(agent_id="bot", content="v3", supersedes=b.id)
    await asyncio.sleep(0.4)
    # A <- B(expired) <- C reads as A <- C: only C is current
    assert [m.id for m in (await engine.list_memories()).memories] == [c.id]
    # the last successor of a chain with an expiring head: C expires -> nothing after A lives?
    d = await engine.add_memory(agent_id="bot", content="v4", supersedes=c.id, ttl=0.3)
    assert [m.id for m in (await engine.list_memories()).memories] == [d.id]
    await asyncio.sleep(0.4)
    assert [m.id for m in (await engine.list_memories()).memories] == [c.id]


async def test_export_import_mends_links_through_an_expired_line(
    engine: AsyncMemtrace, tmp_path: Path
) -> None:
    a = await engine.add_memory(agent_id="bot", content="w1")
    b = await engine.add_memory(agent_id="bot", content="w2", supersedes=a.id, ttl=0.3)
    c = await engine.add_memory(agent_id="bot", content="w3", supersedes=b.id)
    await asyncio.sleep(0.4)
    lines = [line async for line in engine.iter_export()]
    # B is not exported (expired); C's line still names B
    other = engine.with_org("org_copy")
    result = await other.import_jsonl(lines)
    assert result.imported == 2
    assert result.unlinked == 0
    current = [m.id for m in (await other.list_memories()).memories]
    assert current == [c.id]
    assert (await other.get_memory(c.id)).supersedes == a.id
    assert (await other.get_memory(a.id)).superseded_by == c.id


async def test_import_with_an_expired_line_counts_it_and_keeps_the_trailer_valid(
    engine: AsyncMemtrace,
) -> None:
    a = await engine.add_memory(agent_id="bot", content="soon gone", ttl=0.3)
    await engine.add_memory(agent_id="bot", content="stays")
    lines = [line async for line in engine.iter_export()]
    await asyncio.sleep(0.4)
    result = await engine.with_org("org_copy").import_jsonl(lines)
    assert (result.imported, result.expired) == (1, 1)
    assert a.id not in {m.id for m in (await engine.with_org("org_copy").list_memories()).memories}


async def test_an_unreadable_policy_blocks_neither_writes_nor_other_orgs(
    db_url: str, registry: PluginRegistry
) -> None:
    store = SQLiteStore.from_url(db_url)
    async with AsyncMemtrace(store, plugins=registry) as eng:
        a, b = eng.with_org("org_a"), eng.with_org("org_b")
        await b.add_memory(agent_id="bot", content="old", time="2d")
        await a.set_retention_policy(max_age="1d")
        await b.set_retention_policy(max_age="1d")
        # a hand-edited (or foreign) policy that no longer validates
        await store.set_retention_policy("org_a", {"max_age": "soon"})
        eng._core.policy_cache.clear()  # as another process would see it
        written = await a.add_memory(agent_id="bot", content="still writable", time="3d")
        assert written.id
        report = await Sweeper(eng, batch=10).sweep_once()
        assert report.aged == 1  # org_b's policy applied; org_a keeps everything
        assert (await a.list_memories(since="30d")).count == 1
        with pytest.raises(Exception, match="retention policy"):
            await a.get_retention_policy()


async def test_a_policy_stored_under_higher_limits_stays_valid(
    db_url: str, registry: PluginRegistry
) -> None:
    many = [f"type_{i}" for i in range(10)]
    async with AsyncMemtrace(SQLiteStore.from_url(db_url), plugins=registry) as eng:
        await eng.set_retention_policy(rules=[{"event_types": many, "max_age": "1d"}])
    lowered = EngineConfig(limits=Limits(max_filter_values=5))
    async with AsyncMemtrace(SQLiteStore.from_url(db_url), config=lowered, plugins=registry) as eng:
        info = await eng.get_retention_policy()
        assert info.policy.rules[0].event_types == many
        with pytest.raises(ValidationError):
            await eng.add_memory(agent_id="bot", content="x", event_type="type_3", time="2d")


async def test_the_retention_scan_resumes_instead_of_rereading_kept_rows(
    db_url: str, registry: PluginRegistry
) -> None:
    store = SQLiteStore.from_url(db_url)
    async with AsyncMemtrace(store, plugins=registry) as eng:
        old = "2025-01-01T00:00:00Z"
        await eng.add_memories(
            [
                {"agent_id": "bot", "content": f"keep {i}", "memory_type": "decision", "time": old}
                for i in range(300)
            ]
        )
        await eng.add_memories(
            [
                {"agent_id": "bot", "content": f"drop {i}", "memory_type": "session", "time": old}
                for i in range(250)
            ]
        )
        rules = [
            AgeRule(MemoryFilter(memory_types=("decision",)), None),
            AgeRule(MemoryFilter(), now_us() - 86_400_000_000),
        ]
        assert await store.count_aged("org_default", rules) == 250
        batches, after, deleted = 0, None, 0
        while True:
            batch = await store.delete_aged("org_default", rules, limit=100, after=after)
            deleted += batch.deleted
            batches += 1
            after = batch.resume
            if after is None:
                break
        assert deleted == 250
        assert batches == 3
        assert (await eng.list_memories(since="3650d", limit=1000)).count == 300


def test_as_of_is_not_planned_on_the_recorded_index(tmp_path: Path) -> None:
    async def make() -> None:
        async with AsyncMemtrace(SQLiteStore.from_url(f"sqlite:///{tmp_path / 'p.db'}")) as eng:
            await eng.add_memory(agent_id="bot", content="x")

    asyncio.run(make())
    where, params = build_where("org_default", MemoryFilter(as_of=now_us(), current=True))
    with sqlite3.connect(tmp_path / "p.db") as conn:
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT m.id FROM memories m WHERE {where} "
            "ORDER BY m.time DESC, m.rowid DESC LIMIT 10",
            params,
        ).fetchall()
    text = " ".join(str(row[-1]) for row in plan)
    assert "memories_org_time" in text
    assert "TEMP B-TREE" not in text


@pytest.mark.parametrize("ttl", [1e308, 1e303, 3.2e9 * 100])
async def test_a_huge_ttl_is_a_400(engine: AsyncMemtrace, ttl: float) -> None:
    with pytest.raises(ValidationError) as info:
        await engine.add_memory(agent_id="bot", content="x", ttl=ttl)
    assert info.value.field == "ttl"
    with pytest.raises(ValidationError):
        await engine.add_memories([{"agent_id": "bot", "content": "x", "ttl": ttl}])
    assert (await engine.list_memories()).count == 0


async def test_an_imported_recorded_at_in_the_future_is_refused(engine: AsyncMemtrace) -> None:
    line = {
        "kind": "memory",
        "id": "mem_01M87JES0EADQ5MDH4XND756J1",
        "agent_id": "bot",
        "content": "from the future",
        "memory_type": "episodic",
        "event_type": "general",
        "time": "2026-01-01T00:00:00Z",
        "recorded_at": format_us(now_us() + 3600 * 1_000_000),
    }
    with pytest.raises(ValidationError) as info:
        await engine.import_jsonl([json.dumps(line)], require_trailer=False)
    assert info.value.field == "recorded_at"
    assert (await engine.list_memories()).count == 0


async def test_an_unknown_field_inside_a_rule_is_named(engine: AsyncMemtrace) -> None:
    with pytest.raises(ValidationError) as info:
        await engine.set_retention_policy(
            rules=[{"memory_types": ["session"], "max_age": "7d", "bogus": 1}]
        )
    assert info.value.field == "rules.0.bogus"
    assert (await engine.get_retention_policy()).source == "none"


@pytest.mark.parametrize("as_of", [5, 1.5, True, ["1h"]])
async def test_as_of_of_get_and_stats_must_be_a_time(engine: AsyncMemtrace, as_of: object) -> None:
    memory = await engine.add_memory(agent_id="bot", content="x")
    with pytest.raises(ValidationError) as info:
        await engine.get_memory(memory.id, as_of=as_of)  # type: ignore[arg-type]
    assert info.value.field == "as_of"
    with pytest.raises(ValidationError):
        await engine.get_agent_stats("bot", as_of=as_of)  # type: ignore[arg-type]


async def test_a_policy_row_that_is_not_json_is_skipped_by_the_sweep(
    db_url: str, db_path: Path, registry: PluginRegistry
) -> None:
    store = SQLiteStore.from_url(db_url)
    async with AsyncMemtrace(store, plugins=registry) as eng:
        b = eng.with_org("org_b")
        await b.add_memory(agent_id="bot", content="old", time="2d")
        await b.set_retention_policy(max_age="1d")
        with sqlite3.connect(db_path) as conn:
            conn.execute(
                "INSERT INTO retention_policies (org_id, policy, updated_at) VALUES (?,?,?)",
                ("org_a", "{not json", 0),
            )
        assert set(await store.list_retention_policies()) == {"org_b"}
        assert store.unreadable_rows == 1
        assert (await Sweeper(eng, batch=10).sweep_once()).aged == 1
