"""Time as a first-class dimension (issue 15, docs/time.md), on real SQLite files: expiry
(``ttl`` / ``expires_at``) and the sweep, supersession chains, ``as_of`` reads, recorded-time
filters, import/export of all of it, and retention policies.

The clock is the ``clock`` fixture (tests/core/conftest.py): "now" moves only when a test
advances it, so expiry and ``as_of`` are exact, not raced against the wall clock."""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fake_clock import Clock

from memtrace_core import (
    AsyncMemtrace,
    ConflictError,
    DuplicateMemoryError,
    EngineConfig,
    NotFoundError,
    PluginRegistry,
    RetentionPolicy,
    SupersededError,
    ValidationError,
    aconnect,
)
from memtrace_core.retention import Sweeper
from memtrace_core.stores.sqlite import MIGRATIONS, migrate
from memtrace_core.timeutil import format_us, from_us, to_us

MARK = "zqxjvort"  # a word found nowhere else


def _raw(db_path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _iso(us: int) -> str:
    return format_us(us)


async def _ids(mt: AsyncMemtrace, **filters: Any) -> list[str]:
    return [m.id for m in (await mt.list_memories(order="asc", **filters)).memories]


async def _export(mt: AsyncMemtrace, **criteria: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    await mt.export_jsonl(out, criteria or None)
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def _stored(db_path: Path) -> int:
    return int(_raw(db_path, "SELECT COUNT(*) FROM memories")[0][0])


async def _write_expiring(mt: Any, n: int) -> None:
    """``n`` memories with a ttl of 1 s, in batches of 1000."""
    for start in range(0, n, 1000):
        await mt.add_memories(
            [
                {"agent_id": "bulk", "content": f"expiring {i}", "ttl": 1}
                for i in range(start, min(n, start + 1000))
            ]
        )


# --------------------------------------------------------------------------------------------
# Expiry: bad input


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ttl": 0}, "ttl"),
        ({"ttl": -5}, "ttl"),
        ({"ttl": 0.0}, "ttl"),
        ({"ttl": "abc"}, "ttl"),
        ({"ttl": "0s"}, "ttl"),
        ({"ttl": "-1h"}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"ttl": float("inf")}, "ttl"),
        ({"ttl": 60, "expires_at": "2999-01-01T00:00:00Z"}, "ttl"),
        ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "not a time"}, "expires_at"),
    ],
)
async def test_bad_expiry_is_refused_and_nothing_written(
    engine: AsyncMemtrace, db_path: Path, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await engine.add_memory(agent_id="a", content="x", **fields)
    assert info.value.field == field
    with pytest.raises(ValidationError) as batch:
        await engine.add_memories(
            [{"agent_id": "a", "content": "fine"}, {"agent_id": "a", "content": "y", **fields}]
        )
    assert batch.value.index == 1
    assert await _stored(db_path) == 0


async def test_expires_at_now_is_not_in_the_future(engine: AsyncMemtrace, clock: Clock) -> None:
    with pytest.raises(ValidationError, match="not in the future"):
        await engine.add_memory(agent_id="a", content="x", expires_at=from_us(clock.t))
    m = await engine.add_memory(agent_id="a", content="x", expires_at=from_us(clock.t + 1))
    assert m.expires_at == from_us(clock.t + 1)


@pytest.mark.parametrize(
    ("ttl", "seconds"), [(90, 90), (1.5, 1.5), ("7d", 7 * 86400), ("2h", 7200)]
)
async def test_ttl_sets_expires_at_from_recorded_at(
    engine: AsyncMemtrace, clock: Clock, ttl: Any, seconds: float
) -> None:
    m = await engine.add_memory(agent_id="a", content="x", ttl=ttl)
    assert m.recorded_at == from_us(clock.t)
    assert m.expires_at == from_us(clock.t + int(seconds * 1_000_000))
    assert (await engine.get_memory(m.id)).expires_at == m.expires_at


# --------------------------------------------------------------------------------------------
# Expiry: gone at once on every read path


async def test_expired_memory_is_gone_at_once_on_every_read_path(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    session = await engine.create_session(agent_id="bot")
    doomed = await engine.add_memory(
        agent_id="bot",
        content=f"short lived {MARK} note",
        session_id=session.id,
        tags=["t1"],
        ttl=10,
    )
    keep = await engine.add_memory(
        agent_id="bot", content="a lasting note", session_id=session.id, tags=["t1"]
    )

    async def visible() -> dict[str, bool]:
        sid = session.id
        found = {
            "list": doomed.id in await _ids(engine),
            "list_tag": doomed.id in await _ids(engine, tags=["t1"]),
            "search_filter": doomed.id
            in [m.id for m in (await engine.search_memories(agent_id="bot")).results],
            "search_contains": doomed.id
            in [m.id for m in (await engine.search_memories(content_contains=MARK)).results],
            "search_query": doomed.id
            in [m.id for m in (await engine.search_memories(query=MARK)).results],
            "session_memories": doomed.id
            in [m.id for m in (await engine.get_session_memories(sid)).memories],
            "agent_memories": doomed.id
            in [m.id for m in (await engine.get_agent_memories("bot")).memories],
            "session_context": MARK in (await engine.get_session_context(sid)).context,
            "agent_context": MARK in (await engine.get_agent_context("bot")).context,
            "stats": (await engine.get_agent_stats("bot")).memory_count == 2,
            "export": doomed.id in [o.get("id") for o in await _export(engine)],
            "export_criteria": doomed.id
            in [o.get("id") for o in await _export(engine, agent_id="bot")],
        }
        try:
            await engine.get_memory(doomed.id)
            found["get"] = True
        except NotFoundError:
            found["get"] = False
        return found

    before = await visible()
    assert all(before.values()), before
    clock.advance(9.999)
    assert all((await visible()).values())
    clock.advance(0.001)  # expires_at <= now: expired
    after = await visible()
    assert not any(after.values()), after
    # the lasting one is untouched everywhere
    assert await _ids(engine) == [keep.id]
    stats = await engine.get_agent_stats("bot")
    assert stats.memory_count == 1
    assert stats.memory_types == {"episodic": 1}
    assert stats.memories_24h == 1
    # and an expired memory is no duplicate: the same content is accepted again
    again = await engine.add_memory(
        agent_id="bot", content=f"short lived {MARK} note", session_id=session.id, tags=["t1"]
    )
    assert again.id != doomed.id


async def test_unexpired_memory_is_still_a_duplicate(engine: AsyncMemtrace, clock: Clock) -> None:
    first = await engine.add_memory(agent_id="a", content="same", ttl=60)
    clock.advance(30)
    with pytest.raises(DuplicateMemoryError) as info:
        await engine.add_memory(agent_id="a", content="same")
    assert info.value.existing_id == first.id


# --------------------------------------------------------------------------------------------
# The sweep


def _index_rows(db_path: Path, word: str) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        # fts5 checks its index against the content table: a stale entry is an error
        conn.execute("INSERT INTO memories_fts(memories_fts) VALUES ('integrity-check')")
        conn.execute("INSERT INTO memories_trigram(memories_trigram) VALUES ('integrity-check')")
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, memories_fts, 'row')")
        docs = conn.execute("SELECT doc FROM vocab WHERE term = ?", (word,)).fetchall()
        return {
            "memories": conn.execute(
                "SELECT COUNT(*) FROM memories WHERE content LIKE ?", (f"%{word}%",)
            ).fetchone()[0],
            "fts": conn.execute(
                "SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH ?", (word,)
            ).fetchone()[0],
            "trigram": conn.execute(
                "SELECT COUNT(*) FROM memories_trigram WHERE content LIKE ?", (f"%{word}%",)
            ).fetchone()[0],
            "vocab": docs[0][0] if docs else 0,
            "tags": conn.execute(
                "SELECT COUNT(*) FROM memory_tags WHERE tag = ?", ("gone_tag",)
            ).fetchone()[0],
        }
    finally:
        conn.close()


async def test_sweep_removes_expired_memories_from_every_index(
    engine: AsyncMemtrace, clock: Clock, db_path: Path
) -> None:
    other = engine.with_org("org_other")
    for i in range(3):
        await engine.add_memory(
            agent_id="a", content=f"{MARK} expiring {i}", tags=["gone_tag"], ttl=5
        )
    await other.add_memory(agent_id="a", content=f"{MARK} other org", tags=["gone_tag"], ttl=5)
    keep = await engine.add_memory(agent_id="a", content="kept forever", tags=["kept"])
    later = await engine.add_memory(agent_id="a", content=f"{MARK} later", ttl=3600)
    assert _index_rows(db_path, MARK) == {
        "memories": 5, "fts": 5, "trigram": 5, "vocab": 5, "tags": 4
    }  # fmt: skip
    sweeper = Sweeper(engine, batch=2, pause=0)
    report = await sweeper.sweep_once()
    assert report.ran
    assert report.expired == 0
    clock.advance(5)
    report = await sweeper.sweep_once()
    assert report.ran
    assert report.expired == 4
    assert report.batches >= 3
    assert sweeper.totals.expired == 4
    assert _index_rows(db_path, MARK) == {
        "memories": 1, "fts": 1, "trigram": 1, "vocab": 1, "tags": 0
    }  # fmt: skip
    assert await _ids(engine) == [keep.id, later.id]
    assert [m.id for m in (await engine.search_memories(query=MARK)).results] == [later.id]
    assert (await Sweeper(engine, pause=0).sweep_once()).expired == 0


async def test_store_delete_expired_is_bounded_and_oldest_first(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    soon = await engine.add_memory(agent_id="a", content="soon", ttl=2)
    sooner = await engine.add_memory(agent_id="a", content="sooner", ttl=1)
    late = await engine.add_memory(agent_id="a", content="late", ttl=3)
    store = engine.store
    clock.advance(10)
    assert await store.delete_expired(clock.t, limit=1) == 1
    remaining = {
        m.id
        for m in await store.list_memories("org_default", _all(), limit=10, offset=0, order="asc")
    }
    assert remaining == {soon.id, late.id}
    assert sooner.id not in remaining
    assert await store.delete_expired(clock.t, limit=5) == 2
    assert await store.delete_expired(clock.t, limit=5) == 0


def _all() -> Any:
    from memtrace_core.stores.base import MemoryFilter

    return MemoryFilter()


async def test_two_sweepers_one_file_never_delete_twice_and_lose_no_write(
    db_url: str, registry: PluginRegistry, clock: Clock, db_path: Path
) -> None:
    a = await aconnect(db_url, plugins=registry)
    b = await aconnect(db_url, plugins=registry)
    try:
        n = 5000
        await _write_expiring(a, n)
        clock.advance(2)
        sweepers = [Sweeper(a, batch=200, pause=0), Sweeper(b, batch=200, pause=0)]
        written: list[str] = []

        async def writer(mt: AsyncMemtrace, tag: str) -> None:
            for i in range(60):
                m = await mt.add_memory(agent_id="live", content=f"live {tag} {i}")
                written.append(m.id)
                await asyncio.sleep(0)

        async def sweep_until_done(s: Sweeper) -> int:
            total = 0
            for _ in range(200):
                report = await s.sweep_once()
                total += report.expired
                if report.ran and report.expired == 0:
                    break
                await asyncio.sleep(0)
            return total

        results = await asyncio.gather(
            sweep_until_done(sweepers[0]),
            sweep_until_done(sweepers[1]),
            writer(a, "a"),
            writer(b, "b"),
        )
        assert results[0] + results[1] == n
        assert await _stored(db_path) == len(written) == 120
        assert set(await _ids(a, limit=1000)) == set(written)
    finally:
        await a.close()
        await b.close()


def _sweep_in_process(db_url: str, now: int, out: Any, ready: Any, go: Any) -> None:
    """A second process: sweep with the given clock until nothing is left; report the total."""
    import memtrace_core.retention as retention_mod

    retention_mod.now_us = lambda: now  # type: ignore[assignment]

    async def main() -> int:
        mt = await aconnect(db_url, plugins=PluginRegistry(load_entry_points=False))
        try:
            s = Sweeper(mt, batch=200, pause=0)
            total = 0
            ready.set()
            go.wait(60)
            for _ in range(500):
                report = await s.sweep_once()
                total += report.expired
                if report.ran and report.expired == 0:
                    break
                await asyncio.sleep(0.001)
            return total
        finally:
            await mt.close()

    out.put(asyncio.run(main()))


async def test_sweepers_in_two_processes_never_delete_twice_and_lose_no_write(
    db_url: str, registry: PluginRegistry, clock: Clock, db_path: Path
) -> None:
    mt = await aconnect(db_url, plugins=registry)
    try:
        n = 5000
        await _write_expiring(mt, n)
        clock.advance(2)
        ctx = multiprocessing.get_context("spawn")
        out, ready, go = ctx.Queue(), ctx.Event(), ctx.Event()
        proc = ctx.Process(target=_sweep_in_process, args=(db_url, clock.t, out, ready, go))
        proc.start()
        assert await asyncio.to_thread(ready.wait, 60)
        go.set()
        local = Sweeper(mt, batch=200, pause=0)
        here = 0
        written: list[str] = []
        for i in range(400):
            if i % 2 == 0:
                report = await local.sweep_once()
                here += report.expired
            written.append((await mt.add_memory(agent_id="live", content=f"live {i}")).id)
            if not proc.is_alive() and i > 20:
                break
        there = await asyncio.to_thread(out.get, True, 120)
        await asyncio.to_thread(proc.join, 60)
        assert proc.exitcode == 0
        while (report := await local.sweep_once()).expired:
            here += report.expired
        assert here + there == n
        assert await _stored(db_path) == len(written)
        assert set(await _ids(mt, limit=1000)) == set(written)
    finally:
        await mt.close()


async def test_lease_is_exclusive_and_released(engine: AsyncMemtrace, clock: Clock) -> None:
    first = Sweeper(engine, holder="one", lease_seconds=30)
    second = Sweeper(engine, holder="two", lease_seconds=30)
    store = engine.store
    assert await store.acquire_lease("memtrace-sweep", "one", now=clock.t, duration=30_000_000)
    assert not (await second.sweep_once()).ran
    assert second.totals.skipped == 1
    await store.release_lease("memtrace-sweep", "one")
    assert (await second.sweep_once()).ran  # and releases it at the end
    assert (await first.sweep_once()).ran
    # a sweeper that died holding the lease blocks the others only until it expires
    assert await store.acquire_lease("memtrace-sweep", "dead", now=clock.t, duration=30_000_000)
    clock.advance(29)
    assert not (await first.sweep_once()).ran
    clock.advance(1)
    assert (await first.sweep_once()).ran


# --------------------------------------------------------------------------------------------
# Supersedes


async def test_supersede_hides_the_old_version_and_marks_it(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    old = await engine.add_memory(agent_id="a", content="User lives in Paris")
    clock.advance(1)
    new = await engine.add_memory(agent_id="b", content="User lives in Lyon", supersedes=old.id)
    assert new.supersedes == old.id
    assert new.superseded_by is None
    assert await _ids(engine) == [new.id]
    shown = (await engine.list_memories(include_superseded=True, order="asc")).memories
    assert [m.id for m in shown] == [old.id, new.id]
    assert shown[0].superseded_by == new.id
    assert shown[0].superseded_at == new.recorded_at
    assert shown[1].superseded_by is None
    got = await engine.get_memory(old.id)
    assert (got.superseded_by, got.superseded_at) == (new.id, new.recorded_at)
    assert [m.id for m in (await engine.search_memories(query="lives")).results] == [new.id]
    found = await engine.search_memories(query="lives", include_superseded=True)
    assert {m.id for m in found.results} == {old.id, new.id}
    assert [m.id for m in (await engine.search_memories(agent_id="a")).results] == []
    # contexts and stats show only the current version
    assert "Paris" not in (await engine.get_agent_context("a")).context
    ctx = (await engine.get_agent_context("b")).context
    assert "Lyon" in ctx
    assert (await engine.get_agent_stats("a")).memory_count == 0


async def test_superseding_an_already_superseded_memory_is_409_naming_the_head(
    engine: AsyncMemtrace, db_path: Path
) -> None:
    a = await engine.add_memory(agent_id="x", content="v1")
    b = await engine.add_memory(agent_id="x", content="v2", supersedes=a.id)
    c = await engine.add_memory(agent_id="x", content="v3", supersedes=b.id)
    for target in (a.id, b.id):
        with pytest.raises(SupersededError) as info:
            await engine.add_memory(agent_id="x", content="v4", supersedes=target)
        assert info.value.status_code == 409
        assert info.value.current_id == c.id
        assert info.value.memory_id == target
    with pytest.raises(SupersededError) as batch:
        await engine.add_memories(
            [
                {"agent_id": "x", "content": "ok"},
                {"agent_id": "x", "content": "v4", "supersedes": a.id},
            ]
        )
    assert batch.value.current_id == c.id
    assert await _stored(db_path) == 3


async def test_bad_supersedes_is_400_and_nothing_written(
    engine: AsyncMemtrace, clock: Clock, db_path: Path
) -> None:
    theirs = await engine.with_org("org_other").add_memory(agent_id="a", content="theirs")
    short = await engine.add_memory(agent_id="a", content="short", ttl=1)
    deleted = await engine.add_memory(agent_id="a", content="deleted")
    await engine.delete_memory(deleted.id)
    clock.advance(2)
    before = await _stored(db_path)
    for bad in (
        "not-an-id",
        "mem_",
        42,
        "mem_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        theirs.id,
        short.id,
        deleted.id,
    ):
        with pytest.raises(ValidationError) as info:
            await engine.add_memory(agent_id="a", content=f"new {bad}", supersedes=bad)
        assert info.value.field == "supersedes", bad
        with pytest.raises(ValidationError) as batch:
            await engine.add_memories(
                [
                    {"agent_id": "a", "content": f"fine {bad}"},
                    {"agent_id": "a", "content": f"new {bad}", "supersedes": bad},
                ]
            )
        assert (batch.value.field, batch.value.index) == ("supersedes", 1)
    assert await _stored(db_path) == before
    # the other org's memory is untouched
    assert (await engine.with_org("org_other").get_memory(theirs.id)).superseded_by is None


async def test_one_batch_cannot_supersede_one_memory_twice(
    engine: AsyncMemtrace, db_path: Path
) -> None:
    a = await engine.add_memory(agent_id="x", content="v1")
    with pytest.raises(SupersededError):
        await engine.add_memories(
            [
                {"agent_id": "x", "content": "v2", "supersedes": a.id},
                {"agent_id": "x", "content": "v2 bis", "supersedes": a.id},
            ]
        )
    assert await _stored(db_path) == 1
    assert (await engine.get_memory(a.id)).superseded_by is None


async def test_superseding_write_is_never_a_duplicate_of_its_target(engine: AsyncMemtrace) -> None:
    a = await engine.add_memory(agent_id="x", content="same words")
    b = await engine.add_memory(agent_id="x", content="same words", supersedes=a.id)
    assert b.dedup_key == a.dedup_key
    # the superseded one no longer blocks, the current one does
    with pytest.raises(DuplicateMemoryError) as info:
        await engine.add_memory(agent_id="x", content="same words")
    assert info.value.existing_id == b.id
    # a superseding write that duplicates a *different* current memory is still a duplicate
    c = await engine.add_memory(agent_id="x", content="other words")
    with pytest.raises(DuplicateMemoryError) as dup:
        await engine.add_memory(agent_id="x", content="same words", supersedes=c.id)
    assert dup.value.existing_id == b.id
    assert (await engine.get_memory(c.id)).superseded_by is None


async def test_deleting_the_head_makes_its_predecessor_current(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    a = await engine.add_memory(agent_id="x", content="v1")
    clock.advance(1)
    b = await engine.add_memory(agent_id="x", content="v2", supersedes=a.id)
    await engine.delete_memory(b.id)
    got = await engine.get_memory(a.id)
    assert (got.superseded_by, got.superseded_at) == (None, None)
    assert await _ids(engine) == [a.id]
    # and it can be superseded again
    c = await engine.add_memory(agent_id="x", content="v2 again", supersedes=a.id)
    assert (await engine.get_memory(a.id)).superseded_by == c.id


async def test_deleting_a_middle_version_splices_the_chain(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    a = await engine.add_memory(agent_id="x", content="v1")
    clock.advance(1)
    b = await engine.add_memory(agent_id="x", content="v2", supersedes=a.id)
    clock.advance(1)
    c = await engine.add_memory(agent_id="x", content="v3", supersedes=b.id)
    await engine.delete_memory(b.id)
    ga, gc = await engine.get_memory(a.id), await engine.get_memory(c.id)
    assert (ga.superseded_by, ga.superseded_at) == (c.id, c.recorded_at)
    assert gc.supersedes == a.id
    assert await _ids(engine) == [c.id]
    with pytest.raises(SupersededError) as info:
        await engine.add_memory(agent_id="x", content="v4", supersedes=a.id)
    assert info.value.current_id == c.id
    # deleting the tail: the next one supersedes nothing any more
    await engine.delete_memory(a.id)
    assert (await engine.get_memory(c.id)).supersedes is None


@pytest.mark.parametrize(
    "victims", [("b", "c"), ("a", "b"), ("a", "c"), ("b", "d"), ("a", "b", "c"), ("c", "d")]
)
async def test_deleting_several_versions_in_one_call_keeps_the_chain_linear(
    engine: AsyncMemtrace, clock: Clock, victims: tuple[str, ...]
) -> None:
    """One DELETE statement removing several links of a chain (by tag): the survivors form
    the chain they would have formed had the deleted ones never been written."""
    chain: dict[str, Any] = {}
    prev = None
    for name in "abcd":
        clock.advance(1)
        tags = ["victim"] if name in victims else ["keep"]
        chain[name] = await engine.add_memory(
            agent_id="x", content=f"version {name}", tags=tags, supersedes=prev
        )
        prev = chain[name].id
    assert await engine.delete_memories(tags=["victim"]) == len(victims)
    survivors = [chain[n] for n in "abcd" if n not in victims]
    got = [await engine.get_memory(m.id) for m in survivors]
    for i, m in enumerate(got):
        before = survivors[i - 1].id if i > 0 else None
        after = survivors[i + 1] if i + 1 < len(survivors) else None
        assert m.supersedes == before, (victims, m.id)
        assert m.superseded_by == (after.id if after else None), (victims, m.id)
        assert m.superseded_at == (after.recorded_at if after else None)
    assert await _ids(engine) == [survivors[-1].id]


async def test_supersession_across_agents_of_one_org(engine: AsyncMemtrace) -> None:
    a = await engine.add_memory(agent_id="agent_1", content="shared fact v1")
    b = await engine.add_memory(agent_id="agent_2", content="shared fact v2", supersedes=a.id)
    assert (await engine.get_memory(a.id)).superseded_by == b.id


async def test_concurrent_supersessions_exactly_one_wins(engine: AsyncMemtrace) -> None:
    target = await engine.add_memory(agent_id="x", content="contested")
    results = await asyncio.gather(
        *(
            engine.add_memory(agent_id="x", content=f"claim {i}", supersedes=target.id)
            for i in range(8)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(e, SupersededError) and e.current_id == winners[0].id for e in losers)
    assert (await engine.get_memory(target.id)).superseded_by == winners[0].id


async def test_concurrent_supersessions_from_two_engines_exactly_one_wins(
    db_url: str, registry: PluginRegistry
) -> None:
    a = await aconnect(db_url, plugins=registry)
    b = await aconnect(db_url, plugins=registry)
    try:
        for round_ in range(5):
            target = await a.add_memory(agent_id="x", content=f"contested {round_}")
            results = await asyncio.gather(
                *(
                    (a if i % 2 else b).add_memory(
                        agent_id="x", content=f"claim {round_} {i}", supersedes=target.id
                    )
                    for i in range(6)
                ),
                return_exceptions=True,
            )
            winners = [r for r in results if not isinstance(r, BaseException)]
            assert len(winners) == 1, results
            assert all(isinstance(r, SupersededError) for r in results if r not in winners)
            assert (await b.get_memory(target.id)).superseded_by == winners[0].id
    finally:
        await a.close()
        await b.close()


# --------------------------------------------------------------------------------------------
# as_of and recorded-time filters


async def test_as_of_reads_what_was_known_then(engine: AsyncMemtrace, clock: Clock) -> None:
    session = await engine.create_session(agent_id="bot")
    sid = session.id
    a = await engine.add_memory(agent_id="bot", content="Budget is 10k", session_id=sid)
    t_a = clock.t
    clock.advance(60)
    decision = await engine.add_memory(
        agent_id="bot", content="Decided to buy", session_id=sid, memory_type="decision"
    )
    t_decision = to_us(decision.recorded_at)
    clock.advance(60)
    b = await engine.add_memory(
        agent_id="bot", content="Budget is 5k", session_id=sid, supersedes=a.id
    )
    now = clock.advance(60)

    at = _iso(t_decision)
    assert await _ids(engine, as_of=at) == [a.id, decision.id]
    assert await _ids(engine) == [decision.id, b.id]
    assert await _ids(engine, as_of=_iso(t_a)) == [a.id]
    assert await _ids(engine, as_of=_iso(t_a - 1)) == []
    listed = (await engine.list_memories(as_of=at, include_superseded=True)).memories
    assert all(m.superseded_by is None for m in listed)
    # relative as_of: 2 minutes ago is the decision's time
    assert await _ids(engine, as_of="2m") == [a.id, decision.id]
    assert await _ids(engine, as_of="now") == [decision.id, b.id]
    # get_memory as_of
    assert (await engine.get_memory(a.id, as_of=at)).superseded_by is None
    assert (await engine.get_memory(a.id)).superseded_by == b.id
    with pytest.raises(NotFoundError):
        await engine.get_memory(b.id, as_of=at)
    # search, with and without a query
    found = await engine.search_memories(query="budget", as_of=at)
    assert [m.id for m in found.results] == [a.id]
    assert [m.id for m in (await engine.search_memories(as_of=at, agent_id="bot")).results] == [
        decision.id,
        a.id,
    ]
    # contexts
    ctx = (await engine.get_session_context(sid, as_of=at)).context
    assert "Budget is 10k" in ctx
    assert "5k" not in ctx
    ctx_now = (await engine.get_session_context(sid)).context
    assert "Budget is 5k" in ctx_now
    assert "10k" not in ctx_now
    agent_ctx = (await engine.get_agent_context("bot", as_of=at)).context
    assert "Budget is 10k" in agent_ctx
    assert [m.id for m in (await engine.get_session_memories(sid, as_of=at)).memories] == [
        decision.id,
        a.id,
    ]
    assert [m.id for m in (await engine.get_agent_memories("bot", as_of=at)).memories] == [
        decision.id,
        a.id,
    ]
    # stats
    stats = await engine.get_agent_stats("bot", as_of=at)
    assert stats.memory_count == 2
    assert stats.memory_types == {"episodic": 1, "decision": 1}
    assert (await engine.get_agent_stats("bot")).memory_types == {"episodic": 1, "decision": 1}
    assert (await engine.get_agent_stats("bot", as_of=_iso(t_a))).memory_count == 1
    assert now == clock.t


async def test_relative_windows_count_back_from_as_of(engine: AsyncMemtrace, clock: Clock) -> None:
    old = await engine.add_memory(agent_id="bot", content="early")
    clock.advance(3600 * 3)
    mid = await engine.add_memory(agent_id="bot", content="middle")
    clock.advance(3600 * 3)
    await engine.add_memory(agent_id="bot", content="late")
    as_of = _iso(to_us(mid.recorded_at))
    # since=1h from as_of: only what happened in the hour before mid
    assert await _ids(engine, as_of=as_of, since="1h") == [mid.id]
    assert await _ids(engine, as_of=as_of, since="4h") == [old.id, mid.id]
    assert await _ids(engine, as_of=as_of, recorded_since="1h") == [mid.id]
    # without as_of the window counts back from now
    assert await _ids(engine, since="4h") != [old.id, mid.id]
    # stats' 24 h window counts back from as_of
    clock.advance(86400 * 2)
    assert (await engine.get_agent_stats("bot")).memories_24h == 0
    assert (await engine.get_agent_stats("bot", as_of=as_of)).memories_24h == 2
    # session/agent context default since=24h counts back from as_of
    assert "middle" in (await engine.get_agent_context("bot", as_of=as_of)).context
    assert "middle" not in (await engine.get_agent_context("bot")).context


@pytest.mark.parametrize("as_of", ["2999-01-01T00:00:00Z", "garbage", "-1h", "5x", True])
async def test_bad_as_of_is_400_on_every_read(
    engine: AsyncMemtrace, clock: Clock, as_of: Any
) -> None:
    m = await engine.add_memory(agent_id="a", content="x", session_id="s1")
    calls = [
        engine.list_memories(as_of=as_of),
        engine.search_memories(as_of=as_of),
        engine.search_memories(query="x", as_of=as_of),
        engine.get_memory(m.id, as_of=as_of),
        engine.get_agent_stats("a", as_of=as_of),
        engine.get_session_context("s1", as_of=as_of),
        engine.get_agent_context("a", as_of=as_of),
        engine.get_session_memories("s1", as_of=as_of),
        engine.get_agent_memories("a", as_of=as_of),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as info:
            await call
        assert (info.value.field or "").split(".")[0] == "as_of"


async def test_as_of_one_microsecond_ahead_is_refused(engine: AsyncMemtrace, clock: Clock) -> None:
    with pytest.raises(ValidationError, match="future"):
        await engine.list_memories(as_of=_iso(clock.t + 1))
    assert (await engine.list_memories(as_of=_iso(clock.t))).count == 0


async def test_recorded_since_and_until_filter_on_recorded_at(
    engine: AsyncMemtrace, clock: Clock, db_path: Path
) -> None:
    # a backfill: event time long ago, recorded now; and a live write
    t0 = clock.t
    backfill = await engine.add_memory(
        agent_id="a", content="backfilled", time=_iso(t0 - 86400 * 1_000_000 * 3)
    )
    clock.advance(3600)
    live = await engine.add_memory(agent_id="a", content="live")
    t_live = clock.t
    assert await _ids(engine, since="1d") == [live.id]
    assert await _ids(engine, recorded_since=_iso(t0)) == [backfill.id, live.id]
    assert await _ids(engine, recorded_since="30m") == [live.id]
    assert await _ids(engine, recorded_until=_iso(t_live)) == [backfill.id]  # exclusive
    assert await _ids(engine, recorded_since=_iso(t0), recorded_until=_iso(t0 + 1)) == [backfill.id]
    r = await engine.search_memories(recorded_until=_iso(t_live), query="backfilled")
    assert [m.id for m in r.results] == [backfill.id]
    assert [m.id for m in (await engine.search_memories(recorded_since="30m")).results] == [live.id]
    ctx = await engine.get_agent_context("a", since="7d", recorded_until=_iso(t_live))
    assert "backfilled" in ctx.context
    assert "live" not in ctx.context
    exported = [o["id"] for o in await _export(engine, recorded_since="30m") if "id" in o]
    assert exported == [live.id]
    # recorded_since after recorded_until: 400, and nothing deleted
    for call in (
        engine.list_memories(recorded_since=_iso(t_live), recorded_until=_iso(t0)),
        engine.search_memories(recorded_since=_iso(t_live), recorded_until=_iso(t0)),
        engine.delete_memories(recorded_since=_iso(t_live), recorded_until=_iso(t0)),
        engine.get_agent_context("a", recorded_since=_iso(t_live), recorded_until=_iso(t0)),
    ):
        with pytest.raises(ValidationError) as info:
            await call
        assert info.value.field is not None
        assert info.value.field.startswith("recorded_")
    for bad in ("yesterday-ish", "0h"):
        with pytest.raises(ValidationError):
            await engine.list_memories(recorded_since=bad)
    assert await _stored(db_path) == 2
    # delete by recorded time
    assert await engine.delete_memories(recorded_since="30m") == 1
    assert await _ids(engine) == [backfill.id]


# --------------------------------------------------------------------------------------------
# Import / export


async def _history(mt: AsyncMemtrace, clock: Clock) -> dict[str, Any]:
    a = await mt.add_memory(agent_id="x", content="fact v1", tags=["f"])
    clock.advance(10)
    b = await mt.add_memory(agent_id="y", content="fact v2", supersedes=a.id)
    clock.advance(10)
    c = await mt.add_memory(agent_id="x", content="fact v3", supersedes=b.id, ttl="7d")
    clock.advance(10)
    lone = await mt.add_memory(agent_id="x", content="lone", expires_at=from_us(clock.t + 10**9))
    gone = await mt.add_memory(agent_id="x", content="expires soon", ttl=5)
    clock.advance(20)
    return {"a": a, "b": b, "c": c, "lone": lone, "gone": gone}


async def test_export_import_round_trip_keeps_time_and_links(
    engine: AsyncMemtrace, clock: Clock, tmp_path: Path, registry: PluginRegistry
) -> None:
    h = await _history(engine, clock)
    out = io.StringIO()
    await engine.export_jsonl(out)
    text = out.getvalue()
    lines = [json.loads(x) for x in text.splitlines()]
    assert h["gone"].id not in [o.get("id") for o in lines]  # expired: not exported
    originals = {
        m.id: m for m in (await engine.list_memories(include_superseded=True, limit=100)).memories
    }
    assert len(originals) == 4

    for target in (engine.with_org("org_copy"), None):
        if target is None:
            fresh = await aconnect(f"sqlite:///{tmp_path / 'copy.db'}", plugins=registry)
        else:
            fresh = target
        try:
            result = await fresh.import_jsonl(text.splitlines())
            assert (result.imported, result.expired, result.unlinked) == (4, 0, 0)
            copied = {
                m.id: m
                for m in (await fresh.list_memories(include_superseded=True, limit=100)).memories
            }
            assert set(copied) == set(originals)
            for mid, m in originals.items():
                assert copied[mid].model_dump(exclude={"org_id"}) == m.model_dump(
                    exclude={"org_id"}
                ), mid
            assert await _ids(fresh) == [h["c"].id, h["lone"].id]
            # as_of works on the imported history as on the original
            at = _iso(to_us(h["b"].recorded_at))
            assert await _ids(fresh, as_of=at) == await _ids(engine, as_of=at) == [h["b"].id]
            # re-import: everything skipped, links unchanged
            again = await fresh.import_jsonl(text.splitlines())
            assert (again.imported, again.skipped) == (0, 4)
            assert (await fresh.get_memory(h["a"].id)).superseded_by == h["b"].id
        finally:
            if target is None:
                await fresh.close()


def _memory_line(mid: str, content: str, recorded: int, **extra: Any) -> str:
    obj = {
        "kind": "memory",
        "id": mid,
        "agent_id": "x",
        "content": content,
        "memory_type": "episodic",
        "time": _iso(recorded),
        "recorded_at": _iso(recorded),
        **extra,
    }
    return json.dumps(obj)


def _file(*lines: str) -> list[str]:
    n = sum(1 for line in lines if '"memory"' in line)
    return [*lines, json.dumps({"kind": "trailer", "format": "memtrace-export", "version": 1,
                                "memories": n, "agents": 0, "sessions": 0})]  # fmt: skip


IDS = [f"mem_01J0000000000000000000000{i}" for i in range(10)]


async def test_import_links_in_any_order_and_across_batches(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    t = clock.t - 10_000_000
    # the successor comes first in the file, and each line in its own batch
    lines = _file(
        _memory_line(IDS[2], "v3", t + 2, supersedes=IDS[1]),
        _memory_line(IDS[1], "v2", t + 1, supersedes=IDS[0]),
        _memory_line(IDS[0], "v1", t),
    )
    result = await engine.import_jsonl(lines, batch_size=1)
    assert result.imported == 3
    v1, v2 = await engine.get_memory(IDS[0]), await engine.get_memory(IDS[1])
    assert (v1.superseded_by, v1.superseded_at) == (IDS[1], from_us(t + 1))
    assert (v2.superseded_by, v2.superseded_at) == (IDS[2], from_us(t + 2))
    assert await _ids(engine) == [IDS[2]]
    assert v1.recorded_at == from_us(t)  # recorded_at kept, not the import time


async def test_import_drops_expired_lines_and_unknown_links(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    t = clock.t - 10_000_000
    lines = _file(
        _memory_line(IDS[0], "expired", t, expires_at=_iso(clock.t)),
        _memory_line(IDS[1], "alive", t, expires_at=_iso(clock.t + 1_000_000)),
        _memory_line(IDS[2], "orphan", t + 1, supersedes=IDS[9]),
    )
    result = await engine.import_jsonl(lines)
    assert (result.imported, result.expired, result.unlinked) == (2, 1, 1)
    with pytest.raises(NotFoundError):
        await engine.get_memory(IDS[0])
    orphan = await engine.get_memory(IDS[2])
    assert orphan.supersedes is None
    assert (await engine.get_memory(IDS[1])).expires_at == from_us(clock.t + 1_000_000)


async def test_import_links_to_a_stored_memory(engine: AsyncMemtrace, clock: Clock) -> None:
    stored = await engine.add_memory(agent_id="x", content="stored v1")
    clock.advance(1)
    lines = _file(_memory_line(IDS[3], "imported v2", clock.t, supersedes=stored.id))
    assert (await engine.import_jsonl(lines)).unlinked == 0
    assert (await engine.get_memory(stored.id)).superseded_by == IDS[3]


@pytest.mark.parametrize(
    "case",
    ["self", "cycle", "two_claim_one", "conflict_with_stored"],
)
async def test_bad_import_links_write_nothing(
    engine: AsyncMemtrace, clock: Clock, db_path: Path, case: str
) -> None:
    t = clock.t - 10_000_000
    stored = await engine.add_memory(agent_id="x", content="stored v1")
    successor = await engine.add_memory(agent_id="x", content="stored v2", supersedes=stored.id)
    fine = _memory_line(IDS[5], "innocent bystander", t)
    lines = {
        "self": [_memory_line(IDS[0], "me", t, supersedes=IDS[0])],
        "cycle": [
            _memory_line(IDS[0], "a", t, supersedes=IDS[1]),
            _memory_line(IDS[1], "b", t, supersedes=IDS[2]),
            _memory_line(IDS[2], "c", t, supersedes=IDS[0]),
        ],
        "two_claim_one": [
            _memory_line(IDS[0], "a", t),
            _memory_line(IDS[1], "b", t, supersedes=IDS[0]),
            _memory_line(IDS[2], "c", t, supersedes=IDS[0]),
        ],
        "conflict_with_stored": [_memory_line(IDS[0], "rival", t, supersedes=stored.id)],
    }[case]
    expected = ConflictError if case == "conflict_with_stored" else ValidationError
    with pytest.raises(expected) as info:
        await engine.import_jsonl(_file(fine, *lines))
    if expected is ValidationError:
        assert info.value.field == "supersedes"
    else:
        assert info.value.status_code == 409
    assert await _stored(db_path) == 2
    assert (await engine.get_memory(stored.id)).superseded_by == successor.id


async def test_import_line_past_retention_is_refused(
    engine: AsyncMemtrace, clock: Clock, db_path: Path
) -> None:
    await engine.set_retention_policy(max_age="7d")
    old = clock.t - 8 * 86400 * 1_000_000
    with pytest.raises(ValidationError) as info:
        await engine.import_jsonl(
            _file(_memory_line(IDS[0], "ok", clock.t - 1), _memory_line(IDS[1], "old", old))
        )
    assert info.value.field == "time"
    assert "line 2" in info.value.message
    assert await _stored(db_path) == 0


# --------------------------------------------------------------------------------------------
# Retention


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"max_age": "0d"}, "max_age"),
        ({"max_age": "soon"}, "max_age"),
        ({"max_age": 7}, "max_age"),
        ({"rules": [{"max_age": "7d"}]}, "rules[0]"),
        (
            {"rules": [{"memory_types": ["session"], "max_age": "7d"}, {"memory_types": ["nope"]}]},
            "rules[1].memory_types",
        ),
        ({"rules": [{"event_types": ["bad type!"], "max_age": "1d"}]}, "rules[0].event_types"),
        ({"rules": [{"agent_id": "a", "max_age": "x"}]}, "rules[0].max_age"),
        ({"rules": [{"agent_id": "a", "max_age": "1d", "extra": 1}]}, None),
        ({"rules": [{"agent_id": "a"}] * 65}, "rules"),
    ],
)
async def test_bad_retention_policy_is_400_and_not_stored(
    engine: AsyncMemtrace, policy: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(ValidationError) as info:
        await engine.set_retention_policy(policy)
    if field is not None:
        assert info.value.field == field
    info_now = await engine.get_retention_policy()
    assert info_now.source == "none"
    assert await engine.store.get_retention_policy("org_default") is None


async def test_retention_policy_round_trip_and_clear(engine: AsyncMemtrace) -> None:
    assert (await engine.get_retention_policy()).source == "none"
    set_info = await engine.set_retention_policy(
        max_age="90d",
        rules=[
            {"memory_types": "session", "max_age": "7d"},
            {"memory_types": ["decision"], "max_age": "forever"},
        ],
    )
    assert set_info.source == "org"
    got = await engine.get_retention_policy()
    assert got.source == "org"
    assert got.policy.max_age == "90d"
    assert [r.max_age for r in got.policy.rules] == ["7d", None]
    assert got.policy.rules[0].memory_types == ["session"]
    assert (await engine.with_org("org_other").get_retention_policy()).source == "none"
    cleared = await engine.clear_retention_policy()
    assert cleared.source == "none"
    assert await engine.store.get_retention_policy("org_default") is None


async def _aged(mt: AsyncMemtrace, clock: Clock, days: float, **fields: Any) -> str:
    t = clock.t - int(days * 86400 * 1_000_000)
    m = await mt.add_memory(
        content=f"{fields.get('agent_id', 'a')} {days}d {fields}",
        time=_iso(t),
        **{"agent_id": "a", **fields},
    )
    return m.id


async def test_first_matching_rule_wins_and_dry_run_counts(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    keep_session = await _aged(engine, clock, 3, memory_type="session")
    old_session = await _aged(engine, clock, 10, memory_type="session")
    old_decision = await _aged(engine, clock, 400, memory_type="decision")
    old_bot_decision = await _aged(engine, clock, 400, memory_type="decision", agent_id="bot")
    old_plain = await _aged(engine, clock, 100)
    young_plain = await _aged(engine, clock, 50)
    other = engine.with_org("org_other")
    other_old = await _aged(other, clock, 400)
    await engine.set_retention_policy(
        max_age="90d",
        rules=[
            {"agent_id": "bot", "max_age": "30d"},  # first: wins over the decision rule
            {"memory_types": ["session"], "max_age": "7d"},
            {"memory_types": ["decision"], "max_age": "forever"},
        ],
    )
    dry = await engine.apply_retention(dry_run=True)
    assert (dry.dry_run, dry.deleted) == (True, 3)
    assert len(await _ids(engine, since="2000-01-01T00:00:00Z", limit=100)) == 6
    done = await engine.apply_retention()
    assert (done.dry_run, done.deleted) == (False, 3)
    left = set(await _ids(engine, since="2000-01-01T00:00:00Z", limit=100))
    assert left == {keep_session, old_decision, young_plain}
    assert {old_session, old_bot_decision, old_plain}.isdisjoint(left)
    assert await _ids(other, since="2000-01-01T00:00:00Z") == [other_old]  # no policy there
    assert (await engine.apply_retention(dry_run=True)).deleted == 0


async def test_write_older_than_its_age_is_refused(
    engine: AsyncMemtrace, clock: Clock, db_path: Path
) -> None:
    await engine.set_retention_policy(
        max_age="30d", rules=[{"event_types": ["audit"], "max_age": "forever"}]
    )
    with pytest.raises(ValidationError) as info:
        await _aged(engine, clock, 31)
    assert info.value.field == "time"
    with pytest.raises(ValidationError) as batch:
        await engine.add_memories(
            [
                {"agent_id": "a", "content": "new"},
                {"agent_id": "a", "content": "old", "time": _iso(clock.t - 31 * 86400 * 10**6)},
            ]
        )
    assert (batch.value.field, batch.value.index) == ("time", 1)
    assert await _stored(db_path) == 0
    await _aged(engine, clock, 29)
    await _aged(engine, clock, 1000, event_type="audit")
    assert await _stored(db_path) == 2


async def test_default_policy_from_config_and_org_policy_wins(
    db_url: str, registry: PluginRegistry, clock: Clock, db_path: Path
) -> None:
    config = EngineConfig(retention=RetentionPolicy(max_age="7d"))
    mt = await aconnect(db_url, plugins=registry, config=config)
    try:
        info = await mt.get_retention_policy()
        assert (info.source, info.policy.max_age) == ("default", "7d")
        with pytest.raises(ValidationError):
            await _aged(mt, clock, 8)
        await _aged(mt, clock, 6)
        clock.advance(2 * 86400)
        # the sweep applies the default to every org that has memories
        other = mt.with_org("org_other")
        await _aged(other, clock, 6.5)
        report = await Sweeper(mt, pause=0).sweep_once()
        assert report.aged == 1
        assert report.orgs == {"org_default": 1}
        # an org policy wins over the default, both ways
        await other.set_retention_policy(max_age="1d")
        assert (await other.get_retention_policy()).source == "org"
        report = await Sweeper(mt, pause=0).sweep_once()
        assert report.orgs == {"org_other": 1}
        await mt.set_retention_policy(max_age="forever")
        await _aged(mt, clock, 3000)
        assert (await mt.apply_retention()).deleted == 0
        assert await _stored(db_path) == 1
        # purge_org removes the org's policy: the default applies again
        await other.purge_org()
        assert await mt.store.get_retention_policy("org_other") is None
        assert (await other.get_retention_policy()).source == "default"
        await mt.clear_retention_policy()
        assert (await mt.get_retention_policy()).source == "default"
    finally:
        await mt.close()


async def test_bad_default_policy_is_refused_at_startup(
    db_url: str, registry: PluginRegistry
) -> None:
    with pytest.raises(ValidationError):
        await aconnect(
            db_url,
            plugins=registry,
            config=EngineConfig(retention=RetentionPolicy(rules=[{"max_age": "1d"}])),  # type: ignore[list-item]
        )


# --------------------------------------------------------------------------------------------
# Migration


async def test_v3_database_is_migrated_to_v4_keeping_data(
    db_path: Path, db_url: str, registry: PluginRegistry
) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        assert migrate(conn, target=3) == 3
        cols = {r[1] for r in conn.execute("PRAGMA table_info(memories)")}
        assert "expires_at" not in cols
        t = 1_760_000_000_000_000
        for i, tag in enumerate(["one", "two"]):
            cur = conn.execute(
                "INSERT INTO memories (id, org_id, agent_id, session_id, memory_type, event_type, "
                "content, metadata, tags, dedup_key, importance, parent_id, time, recorded_at) "
                "VALUES (?,?,?,NULL,'episodic','general',?,NULL,?,?,NULL,NULL,?,?)",
                (
                    IDS[i],
                    "org_default",
                    "old",
                    f"{MARK} legacy {i}",
                    json.dumps([tag]),
                    f"k{i}",
                    t + i,
                    t + i,
                ),
            )
            conn.execute(
                "INSERT INTO memories_fts(rowid, content, agent_id, event_type, tags) VALUES (?,?,?,?,?)",
                (cur.lastrowid, f"{MARK} legacy {i}", "old", "general", json.dumps([tag])),
            )
            conn.execute(
                "INSERT INTO memories_trigram(rowid, content) VALUES (?,?)",
                (cur.lastrowid, f"{MARK} legacy {i}"),
            )
            conn.execute(
                "INSERT INTO memory_tags(org_id, tag, memory_rowid) VALUES (?,?,?)",
                ("org_default", tag, cur.lastrowid),
            )
    finally:
        conn.close()
    mt = await aconnect(db_url, plugins=registry)
    try:
        assert _raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
        old = await mt.get_memory(IDS[0])
        assert (old.expires_at, old.supersedes, old.superseded_by, old.superseded_at) == (None,) * 4
        assert old.recorded_at == from_us(t)
        assert await _ids(mt, since="2020-01-01T00:00:00Z") == IDS[:2]
        assert {m.id for m in (await mt.search_memories(query=MARK)).results} == set(IDS[:2])
        assert await _ids(mt, tags=["two"], since="2020-01-01T00:00:00Z") == [IDS[1]]
        # old rows take part in the new features
        new = await mt.add_memory(agent_id="old", content="replaces legacy 0", supersedes=IDS[0])
        assert (await mt.get_memory(IDS[0])).superseded_by == new.id
        await mt.delete_memory(new.id)
        assert (await mt.get_memory(IDS[0])).superseded_by is None
        await mt.set_retention_policy(max_age="forever")
        assert (await mt.get_retention_policy()).source == "org"
    finally:
        await mt.close()


async def test_an_expired_successor_is_mended_out_by_the_sweep(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    a = await engine.add_memory(agent_id="x", content="User is in the office")
    b = await engine.add_memory(
        agent_id="x", content="User is on vacation", supersedes=a.id, ttl=10
    )
    assert await _ids(engine) == [b.id]
    clock.advance(10)
    assert (await Sweeper(engine, pause=0).sweep_once()).expired == 1
    assert await _ids(engine) == [a.id]
    assert (await engine.get_memory(a.id)).superseded_by is None


async def test_an_expired_successor_gives_way_at_once(engine: AsyncMemtrace, clock: Clock) -> None:
    """Before any sweep: an expired successor is as if never written."""
    a = await engine.add_memory(agent_id="x", content="User is in the office")
    await engine.add_memory(agent_id="x", content="User is on vacation", supersedes=a.id, ttl=10)
    clock.advance(10)
    assert await _ids(engine) == [a.id]
    assert (await engine.get_memory(a.id)).superseded_by is None
    c = await engine.add_memory(agent_id="x", content="User is at home", supersedes=a.id)
    assert await _ids(engine) == [c.id]


async def test_context_of_a_session_or_agent_whose_memories_all_expired_is_404(
    engine: AsyncMemtrace, clock: Clock
) -> None:
    """An unregistered session / agent known only through its memories: once they have all
    expired it is gone, as if they had been deleted (not an empty 200 that reveals them)."""
    await engine.add_memory(agent_id="ghost", content="fleeting", session_id="sess_ghost", ttl=5)
    assert (await engine.get_session_context("sess_ghost")).memory_count == 1
    assert (await engine.get_agent_context("ghost")).memory_count == 1
    clock.advance(5)
    with pytest.raises(NotFoundError):
        await engine.get_session_context("sess_ghost")
    with pytest.raises(NotFoundError):
        await engine.get_agent_context("ghost")
