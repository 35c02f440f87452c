"""Query-plan guards of the PostgreSQL store: on a store big enough that a wrong plan costs
(36,000 memories in three orgs, analysed), every hot query shape uses the index it was built
for — the time-window page walks (org, time, seq) backwards without a sort, a filter by
agent or session its own index, the dedup check and key lookups theirs, keyword matching the
GIN text index, substring search the trigram index. (The SQLite store's guards are in
test_time_review.py and test_filters_summary_core.py; docs/architecture.md shows the plans at
1M memories.)"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import pg_harness
from memtrace_core.stores.base import MemoryFilter, MemoryRecord
from memtrace_core.stores.postgres import PostgresStore, _Params, _tsquery, build_where
from memtrace_core.timeutil import now_us

ORGS = ("org_a", "org_b", "org_c")
PER_ORG = 12_000
DAY = 86_400_000_000
WORDS = [f"w{i}" for i in range(3000)] + ["deploy", "invoice", "rollback", "payments"]


def _record(org: str, i: int, rng: random.Random, now: int) -> MemoryRecord:
    t = now - rng.randrange(0, 400 * DAY)
    return MemoryRecord(
        id=f"mem_{org}_{i:06d}",
        org_id=org,
        agent_id=f"agent-{rng.randrange(40)}",
        session_id=f"sess-{rng.randrange(2000)}" if rng.random() < 0.5 else None,
        memory_type="episodic",
        event_type=rng.choice(["general", "action", "decision", "error"]),
        content=" ".join(rng.choice(WORDS) for _ in range(12)),
        metadata={"n": i % 10},
        tags=[f"t{rng.randrange(50)}"],
        dedup_key=f"d{i}",
        importance=None,
        parent_id=None,
        time=t,
        recorded_at=t,
    )


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def big() -> AsyncIterator[tuple[PostgresStore, Any]]:
    rng = random.Random(7)
    now = now_us()
    with pg_harness.database() as url:
        store = PostgresStore.from_url(url)
        await store.open()
        for org in ORGS:
            batch: list[MemoryRecord] = []
            for i in range(PER_ORG):
                batch.append(_record(org, i, rng, now))
                if len(batch) == 2000:
                    await store.import_memories(org, batch)
                    batch = []
        assert store._pool is not None
        async with store._pool.acquire() as conn:
            await conn.execute("ANALYZE memories")
        yield store, now
        await store.close()


async def _plan(store: PostgresStore, sql: str, args: list[Any]) -> str:
    assert store._pool is not None
    async with store._pool.acquire() as conn:
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    plan = json.loads(raw)[0]["Plan"]
    nodes: list[str] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        nodes.append(f"{node['Node Type']}:{node.get('Index Name', '')}")
        stack.extend(node.get("Plans", []))
    return " ".join(nodes)


def _where(flt: MemoryFilter, org: str = "org_a") -> tuple[str, _Params]:
    p = _Params()
    return build_where(org, flt, p), p


@pytest.mark.parametrize(
    ("flt", "index"),
    [
        (MemoryFilter(), "memories_org_time"),
        (MemoryFilter(agent_ids=("agent-3",)), "memories_agent_time"),
        (MemoryFilter(session_id="sess-17"), "memories_session_time"),
        (MemoryFilter(event_types=("decision",)), "memories_event_time"),
    ],
    ids=["window", "agent", "session", "event type"],
)
async def test_a_time_window_page_walks_its_index_without_sorting(
    big: tuple[PostgresStore, int], flt: MemoryFilter, index: str
) -> None:
    store, now = big
    view = MemoryFilter(
        **{
            **{k: getattr(flt, k) for k in ("agent_ids", "session_id", "event_types")},
            "since": now - DAY,
            "until": now,
            "live_at": now,
            "current": True,
        }
    )
    where, p = _where(view)
    plan = await _plan(
        store,
        f"SELECT m.id FROM memories m WHERE {where} ORDER BY m.time DESC, m.seq DESC LIMIT 50",
        p.values,
    )
    assert index in plan, plan
    assert "Sort" not in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_the_dedup_check_seeks_its_index(big: tuple[PostgresStore, int]) -> None:
    store, now = big
    plan = await _plan(
        store,
        "SELECT dedup_key, id FROM memories WHERE org_id = $1 AND dedup_key = ANY($2::text[]) "
        "AND recorded_at >= $3 AND (superseded_by IS NULL OR superseded_until <= $4) "
        "AND (expires_at IS NULL OR expires_at > $4) ORDER BY recorded_at DESC, seq DESC",
        ["org_a", ["d1", "d2"], now - DAY, now],
    )
    assert "memories_dedup" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_keyword_matching_uses_the_text_index(big: tuple[PostgresStore, int]) -> None:
    store, _ = big
    where, p = _where(MemoryFilter())
    match = p.add(_tsquery([("rollback",), ("invoic",)]))
    plan = await _plan(
        store,
        f"SELECT count(*) FROM (SELECT 1 FROM memories m WHERE {where} "
        f"AND m.tsv @@ {match}::tsquery LIMIT 5001) s",
        p.values,
    )
    assert "memories_tsv" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_recent_first_for_a_common_word_never_reads_the_whole_org(
    big: tuple[PostgresStore, int],
) -> None:
    store, _ = big
    where, p = _where(MemoryFilter())
    match = p.add(_tsquery([("w1",), ("w2",)]))
    plan = await _plan(
        store,
        f"SELECT m.id FROM memories m WHERE {where} AND m.tsv @@ {match}::tsquery "
        "ORDER BY m.seq DESC LIMIT 100",
        p.values,
    )
    assert "Seq Scan" not in plan, plan
    assert "memories_seq" in plan or "memories_tsv" in plan, plan


async def test_substring_search_uses_the_trigram_index(big: tuple[PostgresStore, int]) -> None:
    store, _ = big
    where, p = _where(MemoryFilter(content_contains="rollback w12"))
    plan = await _plan(store, f"SELECT count(*) FROM memories m WHERE {where}", p.values)
    assert "memories_trigram" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_a_key_and_tags_use_their_indexes(big: tuple[PostgresStore, int]) -> None:
    store, _ = big
    where, p = _where(MemoryFilter(key="k1"))
    assert "memories_key" in await _plan(
        store, f"SELECT m.id FROM memories m WHERE {where}", p.values
    )
    where, p = _where(MemoryFilter(tags=("t3",), since=0))
    plan = await _plan(store, f"SELECT count(*) FROM memories m WHERE {where}", p.values)
    assert "memories_tags" in plan, plan


async def test_the_stores_own_queries_answer_on_the_big_store(
    big: tuple[PostgresStore, int],
) -> None:
    """The shapes above, through the store: what the plans serve is right."""
    store, now = big
    page = await store.list_memories(
        "org_a", MemoryFilter(since=now - DAY), limit=50, offset=0, order="desc"
    )
    assert page
    assert all(m.org_id == "org_a" for m in page)
    assert [m.time for m in page] == sorted((m.time for m in page), reverse=True)
    total = await store.count_memories("org_b", MemoryFilter())
    assert total == PER_ORG
    hits = await store.count_keyword_matches("org_c", MemoryFilter(), ("rollback",), 100_000)
    listed = await store.count_memories("org_c", MemoryFilter(content_contains="rollback"))
    assert hits == listed > 0
