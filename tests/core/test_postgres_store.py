"""What is particular to the PostgreSQL store (everything a store must do is in
tests/conformance, which runs on it too): its URL, migrations under concurrent starts, group
commit, the text vector FTS5 ranking is computed from, and a database that goes away."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

import pg_harness
from memtrace_core import aconnect
from memtrace_core.errors import StoreError, ValidationError
from memtrace_core.stores.base import MemoryFilter, MemoryRecord
from memtrace_core.stores.postgres import SCHEMA_VERSION, PostgresStore, migrate, text_vector
from memtrace_core.timeutil import now_us


def test_the_url_parameters_are_the_stores_and_the_rest_go_to_the_driver() -> None:
    store = PostgresStore.from_url(
        "postgresql://u:p%40ss@db.example:5433/mem?pool_max=4&statement_cache_size=0"
        "&sslmode=require&command_timeout=2.5&max_group=8"
    )
    assert (store.pool_max, store.statement_cache_size, store.command_timeout) == (4, 0, 2.5)
    assert store.dsn == "postgresql://u:p%40ss@db.example:5433/mem?sslmode=require"
    assert PostgresStore.from_url("postgres://h/db").dsn == "postgresql://h/db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://host",
        "postgresql://host/",
        "postgresql://host/db?pool_max=0",
        "postgresql://host/db?pool_max=many",
        "postgresql://host/db?command_timeout=nan",
        "postgresql://host/db?connect_timeout=-1",
        "mysql://host/db",
    ],
)
def test_bad_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ValidationError):
        PostgresStore.from_url(url)


async def test_servers_starting_together_migrate_once() -> None:
    with pg_harness.database(template=None) as url:
        stores = [PostgresStore.from_url(url) for _ in range(6)]
        await asyncio.gather(*(s.open() for s in stores))
        assert stores[0]._pool is not None
        async with stores[0]._pool.acquire() as conn:
            rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
            assert await migrate(conn) == SCHEMA_VERSION  # nothing left to do
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_schema_newer_than_the_code_is_refused() -> None:
    with pg_harness.database() as url:
        store = PostgresStore.from_url(url)
        await store.open()
        assert store._pool is not None
        async with store._pool.acquire() as conn:
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, 0)", SCHEMA_VERSION + 1)
        await store.close()
        with pytest.raises(StoreError, match="newer than this memtrace"):
            await PostgresStore.from_url(url).open()


async def test_concurrent_writes_share_transactions() -> None:
    with pg_harness.database() as url:
        mt = await aconnect(url)
        store: Any = mt.store
        before = store.writer_stats
        await asyncio.gather(*(mt.remember("bot", f"note {i}") for i in range(200)))
        commits, requests = (a - b for a, b in zip(store.writer_stats, before, strict=True))
        assert requests == 200
        assert commits < requests  # grouped
        assert await store.count_memories("org_default", MemoryFilter()) == 200
        await mt.close()


def _record(content: str, **kw: Any) -> MemoryRecord:
    now = now_us()
    base: dict[str, Any] = {
        "id": "m1",
        "org_id": "o",
        "agent_id": "Agent-7",
        "session_id": None,
        "memory_type": "episodic",
        "event_type": "tool_call",
        "content": content,
        "metadata": None,
        "tags": ["Prod", "eu-west"],
        "dedup_key": None,
        "importance": None,
        "parent_id": None,
        "time": now,
        "recorded_at": now,
    }
    base.update(kw)
    return MemoryRecord(**base)


def test_the_text_vector_weights_fields_and_never_joins_them_into_a_phrase() -> None:
    vector, n_tokens, frequencies = text_vector(_record("Deployed the café's API"))
    # content A, agent B, event type C, tags D; one unused position between fields
    assert vector == (
        "'deploi':1A 'the':2A 'cafe':3A 's':4A 'api':5A 'agent':7B '7':8B 'tool':10C "
        "'call':11C 'prod':13D 'eu':14D 'west':15D"
    )
    assert n_tokens == 12  # what FTS5 counts as the row's length: 5 + 2 + 2 + 3
    # per stem, its hits in content, agent id, event type and tags (what BM25 reads)
    assert json.loads(frequencies) == {
        "deploi": [1, 0, 0, 0], "the": [1, 0, 0, 0], "cafe": [1, 0, 0, 0], "s": [1, 0, 0, 0],
        "api": [1, 0, 0, 0], "agent": [0, 1, 0, 0], "7": [0, 1, 0, 0], "tool": [0, 0, 1, 0],
        "call": [0, 0, 1, 0], "prod": [0, 0, 0, 1], "eu": [0, 0, 0, 1], "west": [0, 0, 0, 1],
    }  # fmt: skip
    # a phrase of the last content word and the first agent word does not match
    assert "'api':5A 'agent':6B" not in vector


async def test_a_database_that_goes_away_is_a_503_and_the_pool_heals() -> None:
    pg = pg_harness.PgServer()
    try:
        pg.init()
        pg.start()
        mt = await aconnect(pg.url("postgres") + "?connect_timeout=2")
        await mt.remember("bot", "before")
        pg.stop("immediate")
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            await mt.remember("bot", "during")
        assert info.value.status_code == 503
        assert "database unavailable" in str(info.value)
        assert time.monotonic() - started < 10
        health = await mt.store.health()
        assert not health.ok
        with pytest.raises(StoreError):
            await mt.search_memories(agent_id="bot")
        pg.start()
        await mt.remember("bot", "after")  # no restart: the pool reconnects by itself
        found = await mt.search_memories(agent_id="bot", order="asc")
        assert [m.content for m in found.results] == ["before", "after"]
        assert (await mt.store.health()).ok
        await mt.close()
    finally:
        pg.destroy()


async def test_a_key_names_one_current_memory_under_concurrent_writers() -> None:
    with pg_harness.database() as url:
        a, b = await aconnect(url), await aconnect(url)
        store: Any = a.store
        writes = [
            engine.store.insert_memories(
                "org_default",
                [_record(f"v{i}", id=f"mem_{i:04d}", org_id="org_default", key="k")],
                dedup_since=None,
                now=now_us(),
            )
            for i, engine in enumerate([a, b] * 20)
        ]
        await asyncio.gather(*writes)
        current = await store.list_memories(
            "org_default",
            MemoryFilter(key="k", current=True, live_at=now_us()),
            limit=100,
            offset=0,
            order="asc",
        )
        everything = await store.list_memories(
            "org_default", MemoryFilter(key="k"), limit=100, offset=0, order="asc"
        )
        assert len(current) == 1
        assert len(everything) == 40
        # one linear chain: every version but one superseded, each by a different memory
        successors = [m.superseded_by for m in everything if m.superseded_by]
        assert len(successors) == 39 == len(set(successors))
        await a.close()
        await b.close()


#: Stored metadata values and filters where SQL engines disagree most (exact vs double
#: numbers, 64-bit bounds, booleans as 1 / 0, strings that look like numbers, -0.0).
_VALUES: list[Any] = [
    0, 1, -1, 0.0, -0.0, 1.0, 1.5, 0.1, 0.7, 3.14, True, False, None, "1", "true", "", "a",
    "é", "e\u0301", 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, 2**70, 2**70 + 1, 1e308,
    -1e308, 5e-324, 1e-300, [1], [1, 2], {"x": 1}, [], {}, "9007199254740993",
    12345678901234567890,
]  # fmt: skip


def _filters() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for v in [0, 1, -0.0, 1.0, 0.1, 3.14, True, False, None, "1", "", "é", 2**53, 2**53 + 1,
              2**63 - 1, 2**64, 2**70 + 1, 1e308, 5e-324, 12345678901234567890, [1], [1, 2],
              {"x": 1}, [], {}]:  # fmt: skip
        out.append({"k": v})
        if not isinstance(v, (list, dict)):
            out += [{"k": {"$ne": v}}, {"k": {"$in": [v]}}, {"k": {"$nin": [v]}}]
    for v in [0, 1, 0.5, 0.1, 3.14, True, 2**53 + 1, 2**63 - 1, 2**70, 1e308, -1e308, 5e-324]:
        out += [{"k": {op: v}} for op in ("$gt", "$gte", "$lt", "$lte")]
    return [*out, {"k": {"x": 1}}, {"k.x": 1}, {"k": {"$in": [None, 1]}}, {"x": {"$ne": None}}]


async def test_metadata_filters_match_the_embedded_stores_exactly(tmp_path: Any) -> None:
    """The same memories in SQLite and PostgreSQL: every filter of the grid selects the same
    ones (SQLite's json_extract semantics are the rule)."""
    with pg_harness.database() as url:
        pg, sq = await aconnect(url), await aconnect(f"sqlite:///{tmp_path / 'm.db'}")
        index: dict[str, int] = {}
        for i, v in enumerate(_VALUES):
            for engine in (sq, pg):
                m = await engine.add_memory(
                    agent_id="a", content=f"memory {i}", metadata={"k": v}, dedup=False
                )
                index[m.id] = i
        differences = []
        for flt in _filters():
            found = []
            for engine in (sq, pg):
                page = await engine.search_memories(metadata=flt, limit=1000)
                found.append(sorted(index[m.id] for m in page.results))
            if found[0] != found[1]:
                differences.append((flt, found))
        assert differences == []
        await pg.close()
        await sq.close()


async def test_a_failing_write_in_a_group_fails_alone() -> None:
    """The group writer runs a group without savepoints first; when one write fails, the
    group is replayed with a savepoint per write: only that write fails, the rest commit."""
    with pg_harness.database() as url:
        mt = await aconnect(url)
        store: Any = mt.store
        now = now_us()
        good = [
            store.insert_memories(
                "org_default",
                [_record(f"fine {i}", id=f"mem_ok_{i:03d}", org_id="org_default")],
                dedup_since=None,
                now=now,
            )
            for i in range(30)
        ]
        bad = store.insert_memories(
            "org_default",
            [_record("no target", id="mem_bad", org_id="org_default", supersedes="mem_nope")],
            dedup_since=None,
            now=now,
        )
        before = store.writer_stats
        results = await asyncio.gather(*good[:15], bad, *good[15:], return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 1
        assert type(failures[0]).__name__ == "SupersedeError"
        commits = store.writer_stats[0] - before[0]
        assert commits < 31  # grouped, and the replay committed the others with it
        stored = await store.count_memories("org_default", MemoryFilter())
        assert stored == 30
        assert await store.get_memory("org_default", "mem_bad") is None
        await mt.close()


async def test_batched_writes_dedup_as_if_one_after_the_other(tmp_path: Any) -> None:
    """Concurrent plain writes share one dedup query and one INSERT per group: each must
    still see the writes queued before it, exactly as the same writes made one by one on the
    embedded store (same outcomes, same duplicates)."""
    import random

    from memtrace_core.stores.sqlite import SQLiteStore

    rng = random.Random(5)
    now = now_us()
    calls = []
    for i in range(80):
        records = [
            _record(
                f"w{i} r{j}",
                id=f"mem_{i:03d}_{j}",
                org_id=rng.choice(["org_a", "org_b"]),
                dedup_key=rng.choice([None, "k1", "k2", "k3", "k4"]),
                expires_at=rng.choice([None, now + 10**9]),
            )
            for j in range(rng.randint(1, 3))
        ]
        org = records[0].org_id
        records = [replace(r, org_id=org) for r in records]
        calls.append((org, records, rng.choice([None, now - 10**8])))
    sqlite = SQLiteStore(str(tmp_path / "seq.db"))
    await sqlite.open()
    expected = [
        await sqlite.insert_memories(org, recs, dedup_since=since, now=now)
        for org, recs, since in calls
    ]
    await sqlite.close()
    with pg_harness.database() as url:
        store = PostgresStore.from_url(url)
        await store.open()
        got = await asyncio.gather(
            *(
                store.insert_memories(org, recs, dedup_since=since, now=now)
                for org, recs, since in calls
            )
        )
        assert store.writer_stats[0] < len(calls)  # they were grouped
        await store.close()
    assert got == expected


async def test_a_common_words_document_count_is_estimated_past_the_exact_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past DF_EXACT_LIMIT matches a word's document count comes from PostgreSQL's column
    statistics (the search must not count half the org): the ranking still puts the memory
    with the rare word first, and a word ANALYZE has not seen keeps the capped count."""
    from memtrace_core.stores import postgres

    monkeypatch.setattr(postgres, "DF_EXACT_LIMIT", 5)
    with pg_harness.database() as url:
        mt = await aconnect(url)
        rows = [{"agent_id": "bot", "content": f"deploy step {i}"} for i in range(60)]
        rows.append({"agent_id": "bot", "content": "deploy rollback zebra"})
        await mt.add_memories(rows)
        store: Any = mt.store
        async with store._pool.acquire() as conn:
            await conn.execute("ANALYZE memories")
        found = await mt.search_memories(query="deploy zebra", limit=3)
        assert found.results[0].content == "deploy rollback zebra"
        async with store._pool.acquire() as conn:
            shares = await store._common(conn)
        assert shares.get("deploi", 0) > 0.9  # the statistics saw "deploy" in every row
        await mt.close()


async def test_the_feed_holds_back_rows_behind_an_open_transaction() -> None:
    """Commit order on PostgreSQL (the live feed): a memory committed while an older
    transaction that inserted one is still open is not returned until that one ends; then
    both come, the older transaction's first — so a reader's position never passes a row
    that commits later."""
    from memtrace_core.stores.postgres import _Effects, _write_rows

    with pg_harness.database() as url:
        mt = await aconnect(url)
        store: Any = mt.store
        head = await store.feed_head("o")
        conn = await asyncpg.connect(url)
        try:
            held = conn.transaction()
            await held.start()
            await _write_rows(conn, _Effects(), [_record("older transaction", id="m-held")])
            await mt.with_org("o").remember("bot", "committed first")
            page = await store.feed_memories("o", MemoryFilter(), after=head, limit=10, scan=100)
            assert page.items == []
            assert page.cursor == head
            await held.commit()
        finally:
            await conn.close()
        page = await store.feed_memories("o", MemoryFilter(), after=head, limit=10, scan=100)
        assert [m.content for _, m in page.items] == ["older transaction", "committed first"]
        await mt.close()


async def test_rows_written_before_the_feed_existed_come_first_in_seq_order() -> None:
    """Migration 2 gives earlier rows transaction id 0: history, before every new row."""
    with pg_harness.database() as url:
        mt = await aconnect(url)
        store: Any = mt.store
        for text in ("a", "b"):
            await mt.with_org("o").remember("bot", text)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("UPDATE memories SET xid = '0'")
        finally:
            await conn.close()
        await mt.with_org("o").remember("bot", "c")
        page = await store.feed_memories("o", MemoryFilter(), after=None, limit=10, scan=100)
        assert [m.content for _, m in page.items] == ["a", "b", "c"]
        assert page.items[0][0].startswith("p0.")
        await mt.close()
