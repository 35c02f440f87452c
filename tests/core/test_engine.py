"""Engine behaviour through the public API, for the async engine and its blocking twin."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import (
    AsyncMemtrace,
    BatchResult,
    ConflictError,
    DuplicateMemoryError,
    Memtrace,
    NotFoundError,
    PluginRegistry,
    ValidationError,
    aconnect,
    connect,
)
from memtrace_core.sync import Portal, iterate


class Api:
    """The same method set, awaited: the async engine directly, the blocking twin in a thread."""

    def __init__(self, target: AsyncMemtrace | Memtrace) -> None:
        self.target = target
        self.blocking = isinstance(target, Memtrace)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.target, name)
        if self.blocking:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await asyncio.to_thread(method, *args, **kwargs)

            return call
        return method  # type: ignore[no-any-return]

    async def export_lines(self, **criteria: Any) -> list[str]:
        if isinstance(self.target, Memtrace):
            target = self.target
            return await asyncio.to_thread(lambda: list(target.iter_export(**criteria)))
        return [line async for line in self.target.iter_export(**criteria)]


@pytest.fixture(params=["async", "sync"])
async def api(
    request: pytest.FixtureRequest, db_url: str, registry: PluginRegistry
) -> AsyncIterator[Api]:
    if request.param == "async":
        engine = await aconnect(db_url, plugins=registry)
        try:
            yield Api(engine)
        finally:
            await engine.close()
    else:
        handle = await asyncio.to_thread(connect, db_url, plugins=registry)
        try:
            yield Api(handle)
        finally:
            await asyncio.to_thread(handle.close)


NOW = datetime.now(UTC)


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


# ---------------------------------------------------------------------------------------------
# Writing


async def test_remember_decide_add_memory(api: Api) -> None:
    m = await api.remember(
        "agent_1",
        "Deployed v1.2",
        session_id="sess_1",
        event_type="deploy",
        tags=["prod", "release"],
        importance=0.7,
        metadata={"version": "1.2"},
    )
    assert m.id.startswith("mem_")
    assert len(m.id) == 30
    assert (m.memory_type, m.event_type, m.session_id) == ("episodic", "deploy", "sess_1")
    assert m.tags == ["prod", "release"]
    assert m.importance == 0.7
    assert m.metadata == {"version": "1.2"}
    assert m.org_id == "org_default"
    assert m.time == m.recorded_at
    d = await api.decide("agent_1", "Roll back", "error rate above 5%", session_id="sess_1")
    assert (d.memory_type, d.event_type, d.content) == ("decision", "decision", "Roll back")
    assert d.metadata == {"reasoning": "error rate above 5%"}
    e = await api.add_memory({"agent_id": "agent_1", "content": "ACME"}, memory_type="entity")
    assert e.memory_type == "entity"
    assert await api.get_memory(m.id) == m
    assert await api.get_memory(d.id) == d
    listed = await api.list_memories(order="asc")
    assert [x.id for x in listed.memories] == [m.id, d.id, e.id]


async def test_backfill_with_client_time(api: Api) -> None:
    when = datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    m = await api.add_memory(agent_id="agent_1", content="old event", time=when)
    assert m.time == when
    assert m.recorded_at > ago(minutes=5)
    got = await api.get_memory(m.id)
    assert got.time == when
    window = await api.list_memories(since="2020-01-01", until="2020-01-03T00:00:00Z")
    assert [x.id for x in window.memories] == [m.id]
    assert (await api.list_memories(since="24h")).count == 0
    naive = await api.add_memory(
        agent_id="agent_1", content="naive time", time=datetime(2021, 5, 5, 12, 0)
    )
    assert naive.time == datetime(2021, 5, 5, 12, 0, tzinfo=UTC)


async def test_duplicates(api: Api) -> None:
    first = await api.remember("agent_1", "User prefers dark mode")
    with pytest.raises(DuplicateMemoryError) as info:
        await api.remember("agent_1", "User prefers dark mode")
    assert info.value.existing_id == first.id
    assert info.value.dedup_key == first.dedup_key
    assert info.value.status_code == 409
    assert info.value.to_dict()["existing_id"] == first.id
    assert isinstance(info.value, ConflictError)
    # Explicit keys collide across contents.
    k = await api.add_memory(agent_id="agent_1", content="a", dedup_key="job-42")
    with pytest.raises(DuplicateMemoryError) as info:
        await api.add_memory(agent_id="agent_2", content="b", dedup_key="job-42")
    assert info.value.existing_id == k.id
    assert (await api.list_memories()).count == 2


async def test_batch_with_duplicates_inside_and_against_the_store(api: Api) -> None:
    stored = await api.remember("agent_1", "already here")
    result = await api.add_memories(
        [
            {"agent_id": "agent_1", "content": "one"},
            {"agent_id": "agent_1", "content": "one", "memory_type": "entity"},  # same key
            {"agent_id": "agent_1", "content": "already here"},
            {"agent_id": "agent_1", "content": "two", "tags": ["x"]},
        ]
    )
    assert isinstance(result, BatchResult)
    assert result.count == 2
    assert [m.content for m in result.memories] == ["one", "two"]
    assert result.duplicates == 2
    assert [(d.index, d.existing_id) for d in result.duplicate_of] == [
        (1, result.memories[0].id),
        (2, stored.id),
    ]
    assert result.duplicate_of[0].dedup_key == result.memories[0].dedup_key
    assert (await api.list_memories()).count == 3
    empty = await api.add_memories([])
    assert (empty.count, empty.memories) == (0, [])
    all_dups = await api.add_memories([{"agent_id": "agent_1", "content": "two"}])
    assert (all_dups.count, all_dups.duplicates) == (0, 1)


async def test_batch_is_atomic_on_validation_error(api: Api) -> None:
    with pytest.raises(ValidationError) as info:
        await api.add_memories(
            [
                {"agent_id": "agent_1", "content": "fine"},
                {"agent_id": "agent_1", "content": "bad", "importance": 3},
            ]
        )
    assert (info.value.index, info.value.field) == (1, "importance")
    assert (await api.list_memories()).count == 0


async def test_agents_need_not_be_registered(api: Api) -> None:
    m = await api.remember("free_agent", "hello")
    assert m.agent_id == "free_agent"
    stats = await api.get_agent_stats("free_agent")
    assert (stats.memory_count, stats.memories_24h, stats.session_count) == (1, 1, 0)
    assert stats.memory_types == {"episodic": 1}
    with pytest.raises(NotFoundError):
        await api.get_agent("free_agent")


# ---------------------------------------------------------------------------------------------
# Listing and searching


async def _seed(api: Api) -> dict[str, Any]:
    rows = [
        ("a1", "s1", "episodic", "fetch", ["prod"], 0.9, "Deployed 100% of traffic"),
        ("a1", "s1", "decision", "decision", ["prod", "eu"], 0.5, "Use snake_case names"),
        ("a1", "s2", "episodic", "error", ["production"], None, "Timeout in EU region"),
        ("a2", "s3", "entity", "customer", ["eu"], 0.2, "ACME Corp is a customer"),
        ("a2", None, "session", "note", None, 0.0, "Deployed 1000 pods; snakeXcase"),
    ]
    ids = {}
    for i, (agent, sess, mtype, etype, tags, imp, content) in enumerate(rows):
        m = await api.add_memory(
            agent_id=agent,
            session_id=sess,
            memory_type=mtype,
            event_type=etype,
            tags=tags,
            importance=imp,
            content=content,
            time=ago(hours=5 - i),
        )
        ids[content] = m.id
    return ids


async def test_list_filters(api: Api) -> None:
    ids = await _seed(api)

    async def contents(**kw: Any) -> list[str]:
        return [m.content for m in (await api.list_memories(order="asc", **kw)).memories]

    assert await contents(agent_id="a2") == [
        "ACME Corp is a customer",
        "Deployed 1000 pods; snakeXcase",
    ]
    assert await contents(session_id="s1") == ["Deployed 100% of traffic", "Use snake_case names"]
    assert await contents(memory_type="entity") == ["ACME Corp is a customer"]
    assert await contents(event_type="error") == ["Timeout in EU region"]
    # Tags match exactly (prod does not match production) and are ANDed.
    assert await contents(tags=["prod"]) == ["Deployed 100% of traffic", "Use snake_case names"]
    assert await contents(tags="prod,eu") == ["Use snake_case names"]
    assert await contents(tags=["production"]) == ["Timeout in EU region"]
    assert await contents(tags=["prod", "production"]) == []
    assert await contents(tags=["pro"]) == []
    assert await contents(since=ago(hours=2, minutes=30).isoformat()) == [
        "ACME Corp is a customer",
        "Deployed 1000 pods; snakeXcase",
    ]
    assert await contents(until=ago(hours=4, minutes=30).isoformat()) == [
        "Deployed 100% of traffic"
    ]
    desc = await api.list_memories(order="desc")
    assert [m.id for m in desc.memories] == list(ids.values())[::-1]
    with pytest.raises(ValidationError) as info:
        await api.list_memories(tags=["bad tag"])
    assert info.value.field == "tags"
    with pytest.raises(ValidationError) as info:
        await api.list_memories(agent_id="bad agent")
    assert info.value.field == "agent_id"


async def test_search_filters_content_contains_and_min_importance(api: Api) -> None:
    await _seed(api)

    async def contents(**kw: Any) -> set[str]:
        return {m.content for m in (await api.search_memories(**kw)).results}

    # Case-insensitive substring; % and _ are literal characters.
    assert await contents(content_contains="100%") == {"Deployed 100% of traffic"}
    assert await contents(content_contains="0%") == {"Deployed 100% of traffic"}
    assert await contents(content_contains="e_c") == {"Use snake_case names"}
    assert await contents(content_contains="_") == {"Use snake_case names"}
    assert await contents(content_contains="%") == {"Deployed 100% of traffic"}
    assert await contents(content_contains="DEPLOYED") == {
        "Deployed 100% of traffic",
        "Deployed 1000 pods; snakeXcase",
    }
    assert await contents(content_contains="eu") == {"Timeout in EU region"}  # < 3 chars
    assert await contents(content_contains="x") == {"Deployed 1000 pods; snakeXcase"}
    assert await contents(content_contains="zzz") == set()
    assert await contents(min_importance=0.5) == {
        "Deployed 100% of traffic",
        "Use snake_case names",
    }
    assert len(await contents(min_importance=0)) == 5
    assert await contents(memory_types=["entity", "decision"], tags=["eu"]) == {
        "Use snake_case names",
        "ACME Corp is a customer",
    }
    assert await contents(event_types="error,customer", agent_id="a1") == {"Timeout in EU region"}
    assert await contents(query="deployed traffic") >= {"Deployed 100% of traffic"}
    hits = (await api.search_memories(query="timeout region")).results
    assert hits[0].content == "Timeout in EU region"
    assert hits[0].score is not None
    assert await contents(query="timeout", agent_id="a2") == set()
    with pytest.raises(ValidationError) as info:
        await api.search_memories(min_importance=2)
    assert info.value.field == "min_importance"


async def test_content_contains_non_ascii_is_case_insensitive(api: Api) -> None:
    await api.remember("agent_1", "Émile Zola wrote Germinal")
    await api.remember("agent_1", "Straße in Köln")
    assert (await api.search_memories(content_contains="émile")).count == 1
    assert (await api.search_memories(content_contains="ÉMILE ZOLA")).count == 1
    assert (await api.search_memories(content_contains="KÖLN")).count == 1
    assert (await api.search_memories(content_contains="ö")).count == 1
    assert (await api.search_memories(content_contains="zola")).count == 1


async def test_pagination_has_more_is_exact(api: Api) -> None:
    await api.add_memories(
        [
            {"agent_id": "agent_1", "content": f"m{i}", "time": ago(minutes=10 - i)}
            for i in range(10)
        ]
    )
    pages = []
    for offset in (0, 5):
        page = await api.list_memories(limit=5, offset=offset, order="asc")
        pages.append(([m.content for m in page.memories], page.has_more, page.count))
    assert pages == [
        (["m0", "m1", "m2", "m3", "m4"], True, 5),
        (["m5", "m6", "m7", "m8", "m9"], False, 5),  # exactly full last page
    ]
    seen = []
    offset = 0
    while True:
        page = await api.list_memories(limit=3, offset=offset)
        seen += [m.content for m in page.memories]
        if not page.has_more:
            assert page.count == 1
            break
        assert page.count == 3
        offset += 3
    assert seen == [f"m{i}" for i in range(9, -1, -1)]
    assert (await api.list_memories(limit=5, offset=10)).has_more is False
    assert (await api.list_memories(limit=5, offset=10)).count == 0
    search = await api.search_memories(content_contains="m", limit=5, offset=5)
    assert (search.count, search.has_more) == (5, False)


async def test_limit_is_capped_at_1000_not_reset(api: Api) -> None:
    await api.add_memories([{"agent_id": "agent_1", "content": f"bulk {i}"} for i in range(1000)])
    await api.add_memories([{"agent_id": "agent_1", "content": f"more {i}"} for i in range(5)])
    page = await api.list_memories(limit=5000)
    assert page.count == 1000
    assert page.has_more is True
    search = await api.search_memories(limit=5000)
    assert search.count == 1000
    assert (await api.list_memories()).count == 100  # default
    assert (await api.search_memories()).count == 50  # default


async def test_get_and_delete_memory(api: Api) -> None:
    m = await api.remember("agent_1", "to be deleted")
    keep = await api.remember("agent_1", "to be kept")
    await api.delete_memory(m.id)
    with pytest.raises(NotFoundError):
        await api.get_memory(m.id)
    with pytest.raises(NotFoundError):
        await api.delete_memory(m.id)
    with pytest.raises(ValidationError) as info:
        await api.get_memory("e81f1de3b743bacd47421867ad0574e4")
    assert info.value.field == "id"
    assert await api.get_memory(keep.id) == keep
    # The dedup key is free again once the memory is gone.
    again = await api.remember("agent_1", "to be deleted")
    assert again.id != m.id


async def test_delete_memories_by_filter(api: Api) -> None:
    await _seed(api)
    with pytest.raises(ValidationError) as info:
        await api.delete_memories()
    assert info.value.field == "filter"
    with pytest.raises(ValidationError):
        await api.delete_memories({})
    assert (await api.list_memories()).count == 5
    assert await api.delete_memories(tags=["eu"]) == 2
    assert await api.delete_memories(session_id="s2") == 1
    assert await api.delete_memories(agent_id="nobody") == 0
    remaining = await api.list_memories()
    assert [m.content for m in remaining.memories] == [
        "Deployed 1000 pods; snakeXcase",
        "Deployed 100% of traffic",
    ]
    assert await api.delete_memories(since=ago(hours=4, minutes=30).isoformat(), until="1m") == 1
    assert await api.delete_memories(agent_id="a1") == 1
    await api.remember("x1", "one")
    await api.remember("x2", "two")
    assert await api.delete_memories(all_memories=True) == 2
    assert (await api.list_memories()).count == 0


# ---------------------------------------------------------------------------------------------
# Agents


async def test_registered_agent_resolves_by_id_or_name(api: Api) -> None:
    agent = await api.register_agent(name="crawler", description="crawls", config={"depth": 2})
    assert agent.id.startswith("agent_")
    assert len(agent.id) == 30
    assert await api.get_agent("crawler") == agent
    assert await api.get_agent(agent.id) == agent
    with pytest.raises(ConflictError):
        await api.register_agent(name="crawler")
    by_name = await api.remember("crawler", "written under the name", event_type="error")
    by_id = await api.remember(agent.id, "written under the id")
    await api.remember("someone_else", "not the crawler")
    session = await api.create_session(agent_id="crawler")
    assert session.agent_id == agent.id
    await api.create_session(agent_id=agent.id)
    await api.create_session(agent_id="someone_else")
    for ref in ("crawler", agent.id):
        stats = await api.get_agent_stats(ref)
        assert stats.agent_id == ref
        assert (stats.memory_count, stats.memories_24h, stats.errors_24h) == (2, 2, 1)
        assert (stats.session_count, stats.active_sessions) == (2, 2)
        assert stats.memory_types == {"episodic": 2}
        assert stats.last_active_at is not None
        mems = await api.get_agent_memories(ref)
        assert {m.id for m in mems.memories} == {by_name.id, by_id.id}
        listed = await api.list_memories(agent_id=ref)
        assert {m.id for m in listed.memories} == {by_name.id, by_id.id}
        sessions = await api.list_sessions(ref)
        assert sessions.count == 2
        ctx = await api.get_agent_context(ref)
        assert ctx.memory_count == 2
    agents = await api.list_agents()
    assert [a.name for a in agents.agents] == ["crawler"]
    refreshed = await api.get_agent("crawler")
    assert refreshed.last_active_at is not None


async def test_delete_agent(api: Api) -> None:
    agent = await api.register_agent(name="temp")
    await api.remember("temp", "memory of temp")
    await api.delete_agent("temp")
    with pytest.raises(NotFoundError):
        await api.get_agent(agent.id)
    assert (await api.list_memories(agent_id="temp")).count == 1  # memories stay by default
    agent2 = await api.register_agent(name="temp2")
    await api.remember(agent2.id, "memory of temp2")
    await api.remember("temp2", "memory of temp2 by name")
    await api.delete_agent(agent2.id, delete_memories=True)
    assert (await api.list_memories(agent_id="temp2")).count == 0
    assert (await api.list_memories(agent_id=agent2.id)).count == 0
    with pytest.raises(NotFoundError):
        await api.delete_agent("temp2")


async def test_agent_memories_default_to_24h(api: Api) -> None:
    await api.add_memory(agent_id="agent_1", content="old", time=ago(days=2))
    recent = await api.remember("agent_1", "recent")
    assert [m.id for m in (await api.get_agent_memories("agent_1")).memories] == [recent.id]
    assert (await api.get_agent_memories("agent_1", since="3d")).count == 2
    assert [m.id for m in (await api.recall("agent_1")).memories] == [recent.id]
    assert (await api.recall("agent_1", since="7d")).count == 2


# ---------------------------------------------------------------------------------------------
# Sessions


async def test_session_lifecycle_and_metadata_merge(api: Api) -> None:
    s = await api.create_session(
        agent_id="agent_1", metadata={"a": 1, "b": {"c": 1, "d": 2}, "keep": True}
    )
    assert (s.status, s.closed_at) == ("active", None)
    assert s.id.startswith("sess_")
    assert await api.get_session(s.id) == s
    closed = await api.update_session(s.id, status="closed")
    assert closed.status == "closed"
    assert closed.closed_at is not None
    assert (await api.get_session(s.id)).closed_at == closed.closed_at
    reopened = await api.update_session(s.id, {"status": "active"})
    assert reopened.status == "active"
    assert reopened.closed_at is None
    assert (await api.get_session(s.id)).closed_at is None
    merged = await api.update_session(s.id, metadata={"a": None, "b": {"c": None, "e": 3}, "f": 4})
    assert merged.metadata == {"b": {"d": 2, "e": 3}, "keep": True, "f": 4}
    assert (await api.get_session(s.id)).metadata == merged.metadata
    replaced = await api.update_session(s.id, metadata={"only": 1}, replace_metadata=True)
    assert (await api.get_session(s.id)).metadata == {"only": 1} == replaced.metadata
    assert replaced.updated_at >= s.updated_at
    with pytest.raises(ValidationError) as info:
        await api.update_session(s.id, status="paused")
    assert info.value.field == "status"
    with pytest.raises(NotFoundError):
        await api.update_session("sess_missing", status="closed")
    closed2 = await api.close_session(s.id)
    assert closed2.status == "closed"


async def test_list_sessions_filters_and_pages(api: Api) -> None:
    created = [await api.create_session(agent_id="agent_1") for _ in range(3)]
    other = await api.create_session(agent_id="agent_2")
    await api.close_session(created[0].id)
    assert (await api.list_sessions()).count == 4
    assert {s.id for s in (await api.list_sessions("agent_2")).sessions} == {other.id}
    active = await api.list_sessions("agent_1", status="active")
    assert {s.id for s in active.sessions} == {created[1].id, created[2].id}
    closed = await api.list_sessions(status="closed")
    assert [s.id for s in closed.sessions] == [created[0].id]
    page = await api.list_sessions(limit=2)
    assert (page.count, page.has_more) == (2, True)
    last = await api.list_sessions(limit=2, offset=2)
    assert (last.count, last.has_more) == (2, False)
    with pytest.raises(ValidationError):
        await api.list_sessions(status="paused")


async def test_session_memories_and_delete_session(api: Api) -> None:
    s = await api.create_session(agent_id="agent_1")
    m1 = await api.remember("agent_1", "in session", session_id=s.id)
    await api.remember("agent_1", "outside")
    mems = await api.get_session_memories(s.id)
    assert [m.id for m in mems.memories] == [m1.id]
    await api.delete_session(s.id)
    with pytest.raises(NotFoundError):
        await api.get_session(s.id)
    assert (await api.get_session_memories(s.id)).count == 1  # memories stay by default
    s2 = await api.create_session(agent_id="agent_1")
    await api.remember("agent_1", "in session two", session_id=s2.id)
    await api.delete_session(s2.id, delete_memories=True)
    assert (await api.get_session_memories(s2.id)).count == 0
    with pytest.raises(NotFoundError):
        await api.get_session_context(s2.id)
    with pytest.raises(NotFoundError):
        await api.delete_session(s2.id)


# ---------------------------------------------------------------------------------------------
# Export / import


async def test_export_import_round_trip(api: Api, tmp_path: Path, registry: PluginRegistry) -> None:
    agent = await api.register_agent(name="exporter", config={"k": "v"})
    session = await api.create_session(agent_id="exporter", metadata={"topic": "x"})
    await api.close_session(session.id)
    await api.add_memory(
        agent_id="exporter",
        session_id=session.id,
        content="with everything ✓",
        memory_type="decision",
        event_type="choice",
        tags=["t1", "t2"],
        importance=0.25,
        metadata={"nested": {"a": [1, 2]}},
        parent_id="mem_parent",
        time=datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
        payload={"role": "user", "parts": [{"text": "ü"}, None, 2**70, -0.5, True], "x": None},
    )
    await api.add_memories(
        [
            {"agent_id": "other", "content": f"line {i}", "time": ago(minutes=i), "payload": i}
            for i in range(3)
        ]
        # two identical memories that are never deduplicated, with payloads of any JSON type
        + [
            {"agent_id": "other", "content": "same", "time": ago(minutes=3), "dedup": False},
            {
                "agent_id": "other",
                "content": "same",
                "time": ago(minutes=4),
                "dedup": False,
                "payload": ["a", {"b": []}],
            },
        ]
    )
    lines = await api.export_lines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds == ["agent", "session"] + ["memory"] * 6 + ["trailer"]
    exported = [json.loads(line) for line in lines if '"kind":"memory"' in line]
    assert sorted(m["payload"] for m in exported if isinstance(m.get("payload"), int)) == [0, 1, 2]
    assert [m.get("dedup") for m in exported if m["content"] == "same"] == [False, False]
    assert all(line.endswith("\n") for line in lines)

    second = await aconnect(f"sqlite:///{tmp_path / 'second.db'}", plugins=registry)
    try:
        result = await second.import_jsonl(lines)
        assert (result.imported, result.skipped, result.agents, result.sessions) == (6, 0, 1, 1)
        original = await api.list_memories(order="asc", limit=1000)
        copied = await second.list_memories(order="asc", limit=1000)
        assert copied.memories == original.memories  # ids, times, every field
        everything = next(m for m in copied.memories if m.content == "with everything ✓")
        assert everything.payload == {
            "role": "user",
            "parts": [{"text": "ü"}, None, 2**70, -0.5, True],
            "x": None,
        }
        # still never deduplicated after the import: an identical write is a third memory
        assert [m.dedup_key for m in copied.memories if m.content == "same"] == [None, None]
        assert await second.get_agent("exporter") == await api.get_agent(agent.id)
        got_session = await second.get_session(session.id)
        assert got_session == await api.get_session(session.id)
        again = await second.import_jsonl(line.encode() for line in lines)
        assert (again.imported, again.skipped, again.agents, again.sessions) == (0, 6, 0, 0)
        assert (await second.list_memories(limit=1000)).count == 6
        # Imported memories are in every index of the new store.
        hits = (await second.search_memories(query="everything")).results
        assert [m.content for m in hits] == ["with everything ✓"]
        assert (await second.search_memories(content_contains="EVERYTHING ✓")).count == 1
        assert (await second.list_memories(tags=["t2"])).count == 1
        assert (await second.get_agent_stats("exporter")).memory_count == 1
        # The exported file of the copy is the same as the original's.
        buf = io.StringIO()
        assert await second.export_jsonl(buf) == len(lines)
        assert buf.getvalue() == "".join(lines)
        # Filtered export: memories only.
        subset = await api.export_lines(agent_id="other")
        assert len(subset) == 5 + 1
        assert [json.loads(line)["kind"] for line in subset] == ["memory"] * 5 + ["trailer"]
        # the copies of the dedup=false memories stay without a dedup key: an identical write
        # is a third memory, not a duplicate
        await second.add_memory(agent_id="other", content="same")
        assert (await second.search_memories(agent_id="other", content_contains="same")).count == 3
    finally:
        await second.close()


async def test_import_rejects_bad_lines_naming_the_line(engine: AsyncMemtrace) -> None:
    good = json.dumps(
        {
            "kind": "memory",
            "id": "mem_01HZZZZZZZZZZZZZZZZZZZZZZZ",
            "agent_id": "agent_1",
            "content": "ok",
            "time": "2024-01-01T00:00:00Z",
        }
    )
    with pytest.raises(ValidationError) as info:
        await engine.import_jsonl([good, "{not json"])
    assert info.value.message.startswith("line 2:")
    with pytest.raises(ValidationError) as info:
        await engine.import_jsonl([json.dumps({"kind": "memory", "id": "nope", "content": "x"})])
    assert info.value.field == "id"
    with pytest.raises(ValidationError) as info:
        await engine.import_jsonl(["", json.dumps({"kind": "wat"})])
    assert info.value.message.startswith("line 2:")


async def test_import_applies_the_agent_and_session_rules(engine: AsyncMemtrace) -> None:
    """Imported agents and sessions meet the same rules as registered / created ones."""
    agent = {"kind": "agent", "id": "agent_x", "created_at": "2024-01-01T00:00:00Z"}
    session = {
        "kind": "session",
        "id": "sess_x",
        "agent_id": "agent_x",
        "status": "active",
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    too_big = {"blob": "x" * (engine.config.limits.max_metadata_bytes + 1)}
    for line, field in [
        ({**agent, "name": "n" * 129}, "name"),
        ({**agent, "name": "bad\nname"}, "name"),
        ({**agent, "name": "n", "description": "d" * 4097}, "description"),
        ({**agent, "name": "n", "config": too_big}, "config"),
        ({**session, "metadata": too_big}, "metadata"),
        ({**session, "agent_id": "not an id"}, "agent_id"),
    ]:
        with pytest.raises(ValidationError) as info:
            await engine.import_jsonl([json.dumps(line)], require_trailer=False)
        assert info.value.field == field, line
        assert info.value.message.startswith("line 1:")
    assert (await engine.list_agents()).count == 0
    assert (await engine.list_sessions()).count == 0
    result = await engine.import_jsonl(
        [json.dumps({**agent, "name": " n "}), json.dumps(session)], require_trailer=False
    )
    assert (result.agents, result.sessions) == (1, 1)
    assert (await engine.get_agent("agent_x")).name == "n"


# ---------------------------------------------------------------------------------------------
# Blocking twin specifics


def test_blocking_twin_context_manager_and_org_view(db_url: str, registry: PluginRegistry) -> None:
    with connect(db_url, plugins=registry) as mt:
        assert isinstance(mt, Memtrace)
        m = mt.remember("agent_1", "sync hello")
        other = mt.with_org("org_other")
        assert other.org_id == "org_other"
        assert other.list_memories().count == 0
        other.remember("agent_1", "sync hello")  # no cross-org dedup
        other.close()  # a view does not close the shared store
        assert mt.get_memory(m.id).content == "sync hello"
        assert sum(1 for _ in mt.iter_export()) == 1 + 1  # the memory and the trailer
    # Reopen: the data is on disk.
    with connect(db_url, plugins=registry) as mt2:
        assert mt2.get_memory(m.id) == m
        assert mt2.with_org("org_other").list_memories().count == 1


def test_blocking_iteration_closes_the_async_generator_when_stopped_early() -> None:
    closed: list[int] = []

    async def numbers() -> AsyncGenerator[int, None]:
        try:
            for i in range(10):
                yield i
        finally:
            closed.append(1)

    portal = Portal()
    try:
        it = iterate(portal, numbers())
        assert next(it) == 0
        assert closed == []
        it.close()  # e.g. a caller that stops after the first export line
        assert closed == [1]
        assert list(iterate(portal, numbers())) == list(range(10))
        assert closed == [1, 1]
    finally:
        portal.close()


def test_store_rows_are_real(db_path: Path, db_url: str, registry: PluginRegistry) -> None:
    with connect(db_url, plugins=registry) as mt:
        m = mt.remember("agent_1", "on disk", tags=["a"])
    conn = sqlite3.connect(db_path)
    try:
        row = conn.execute("SELECT id, content, tags FROM memories").fetchone()
    finally:
        conn.close()
    assert row == (m.id, "on disk", '["a"]')


async def test_option_models_mappings_and_unknown_arguments(engine: AsyncMemtrace) -> None:
    from memtrace_core import ListOptions, SearchQuery

    await engine.remember("agent_1", "x1")
    assert (await engine.list_memories(ListOptions(agent_id="agent_1"))).count == 1
    assert (await engine.list_memories({"agent_id": "agent_1"})).count == 1
    assert (await engine.search_memories(SearchQuery(agent_id="agent_1"))).count == 1
    with pytest.raises(ValidationError) as info:
        await engine.list_memories(agentid="agent_1")
    assert info.value.field == "agentid"
    with pytest.raises(ValidationError) as info:
        await engine.list_memories(limit="ten")
    assert info.value.field == "limit"


# ---------------------------------------------------------------------------------------------
# content_contains against a Python oracle

NEEDLE_ALPHABET = "abcAB%_ éÉöÖß1"


def test_content_contains_matches_python_oracle(db_url: str, registry: PluginRegistry) -> None:
    import uuid

    from hypothesis import given, settings
    from hypothesis import strategies as st

    with connect(db_url, plugins=registry) as mt:

        @settings(max_examples=60, deadline=None)
        @given(
            contents=st.lists(
                st.text(NEEDLE_ALPHABET, min_size=1, max_size=12).filter(
                    lambda c: not c.isspace()  # blank content is refused
                ),
                min_size=1,
                max_size=8,
            ),
            needle=st.text(NEEDLE_ALPHABET, min_size=1, max_size=4),
        )
        def check(contents: list[str], needle: str) -> None:
            org = mt.with_org("org_" + uuid.uuid4().hex)
            stored = org.add_memories(
                [
                    {"agent_id": "agent_1", "content": c, "dedup_key": f"k{i}"}
                    for i, c in enumerate(contents)
                ]
            )
            assert stored.count == len(contents)
            found = org.search_memories(content_contains=needle, limit=1000)
            expected = sorted(c for c in contents if needle.lower() in c.lower())
            assert sorted(m.content for m in found.results) == expected

        check()


async def test_dedup_window_and_disabled_dedup(db_url: str, registry: PluginRegistry) -> None:
    from memtrace_core import EngineConfig
    from memtrace_core.validation import dedup_key

    engine = await aconnect(db_url, plugins=registry)
    try:
        key = dedup_key("agent_1", "general", "recurring report")
        old = {
            "kind": "memory",
            "id": "mem_01HQ00000000000000000000AA",
            "agent_id": "agent_1",
            "content": "recurring report",
            "dedup_key": key,
            "time": ago(hours=30).isoformat(),
            "recorded_at": ago(hours=30).isoformat(),
        }
        imported = await engine.import_jsonl([json.dumps(old)], require_trailer=False)
        assert imported.imported == 1
        # Recorded 30 h ago: outside the 24 h window, so the same text is accepted again...
        fresh = await engine.remember("agent_1", "recurring report")
        assert fresh.dedup_key == key
        # ...and now it is inside the window.
        with pytest.raises(DuplicateMemoryError) as info:
            await engine.remember("agent_1", "recurring report")
        assert info.value.existing_id == fresh.id
    finally:
        await engine.close()
    off = await aconnect(db_url, plugins=registry, config=EngineConfig(dedup_enabled=False))
    try:
        a = await off.remember("agent_2", "same again")
        b = await off.remember("agent_2", "same again")
        assert a.id != b.id
        assert a.dedup_key is None
        c = await off.add_memory(agent_id="agent_2", content="x", dedup_key="given")
        d = await off.add_memory(agent_id="agent_2", content="y", dedup_key="given")
        assert (c.dedup_key, d.dedup_key) == ("given", "given")
        assert (await off.list_memories(agent_id="agent_2")).count == 4
    finally:
        await off.close()
