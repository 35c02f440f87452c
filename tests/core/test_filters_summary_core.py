"""Issue 11 in the core: how ``$in`` / ``$nin`` resolve (:class:`MetaCondition`), the SQL the
SQLite store plans for ``keys``, ``ids``, ``tags_any`` and the summary (on their indexes), the
summary of unreadable rows, and the blocking twin."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memtrace_core import (
    AsyncMemtrace,
    EngineConfig,
    MemorySummary,
    Memtrace,
    ValidationError,
    connect,
)
from memtrace_core.api import METHODS
from memtrace_core.stores import sqlite as sqlite_store
from memtrace_core.stores.base import MemoryFilter, MetaCondition
from memtrace_core.stores.sqlite import SQLiteStore, build_where, summary_tags_sql
from memtrace_core.validation import Limits, metadata_conditions

LIMITS = Limits()


def test_in_and_nin_resolve_to_in_conditions() -> None:
    got = metadata_conditions({"a": {"$in": [None, "u7", 1, True]}}, LIMITS)
    assert got == (MetaCondition(("a",), "in", (None, "u7", 1, True)),)
    got = metadata_conditions({"a": {"b": {"$nin": ["x"]}}}, LIMITS)
    assert got == (
        MetaCondition(("a",), "object"),
        MetaCondition(("a", "b"), "not", (MetaCondition(("a", "b"), "in", ("x",)),)),
    )
    # an integer beyond 64 bits compares as the float it is stored as (as $eq does)
    assert metadata_conditions({"n": {"$in": [2**70]}}, LIMITS) == (
        MetaCondition(("n",), "in", (float(2**70),)),
    )


@given(st.integers(min_value=1, max_value=200))
def test_each_in_value_counts_toward_the_limit(n: int) -> None:
    flt = {"a": {"$in": list(range(n))}}
    if n <= LIMITS.max_filter_values:
        (cond,) = metadata_conditions(flt, LIMITS) or ()
        assert len(cond.value) == n
    else:
        with pytest.raises(ValidationError, match=f"too many metadata conditions: {n}"):
            metadata_conditions(flt, LIMITS)
    # $nin counts the same, and with other conditions
    total = n + 1
    flt2 = {"a": {"$nin": list(range(n))}, "b": 1}
    if total <= LIMITS.max_filter_values:
        assert metadata_conditions(flt2, LIMITS)
    else:
        with pytest.raises(ValidationError, match=f"too many metadata conditions: {total}"):
            metadata_conditions(flt2, LIMITS)


@pytest.mark.parametrize("operand", [[], "x", 1, None, {"x": 1}, [[1]], [{"x": 1}], [1, [2]]])
def test_bad_in_operands_name_the_path(operand: object) -> None:
    for op in ("$in", "$nin"):
        with pytest.raises(ValidationError) as info:
            metadata_conditions({"outer": {"inner": {op: operand}}}, LIMITS)
        assert info.value.field == "metadata"
        assert "metadata.outer.inner" in info.value.message


def _plan(db: Path, flt: MemoryFilter, sql: str = "SELECT m.id FROM memories m") -> str:
    where, params = build_where("org_default", flt)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql} WHERE {where}", params).fetchall()
    return " ".join(str(row[-1]) for row in rows)


def test_keys_ids_and_tags_any_are_planned_on_their_indexes(tmp_path: Path) -> None:
    db = tmp_path / "p.db"

    async def make() -> None:
        async with AsyncMemtrace(SQLiteStore.from_url(f"sqlite:///{db}")) as eng:
            await eng.add_memory(agent_id="bot", content="x", namespace=["n"], key="k", tags=["t"])

    asyncio.run(make())
    # one seek per key: "key > ?" was the range of every keyed memory of the org, each tested
    # against the list (an explicit "key IS NOT NULL" beside the IN made SQLite choose it)
    for keys in (("k",), ("k", "j"), tuple(f"k{i}" for i in range(50))):
        keys_plan = _plan(db, MemoryFilter(keys=keys))
        assert "memories_key (org_id=? AND key=?)" in keys_plan, keys_plan
    assert "memories_id" in _plan(db, MemoryFilter(ids=("mem_a", "mem_b")))
    tags_plan = _plan(db, MemoryFilter(tags_any=("t", "u")))
    assert "memory_tags" in tags_plan
    where, params = build_where("org_default", MemoryFilter(namespace_prefix=("n",)))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            f"EXPLAIN QUERY PLAN {summary_tags_sql(where)}", ["org_default", *params, 10]
        ).fetchall()
    plan = " ".join(str(row[-1]) for row in rows)
    assert "memories_namespace" in plan  # driven by the scope's index
    assert "memory_tags_rowid" in plan  # then the tags of each matching memory


def _dedup_plan(db: Path, n: int) -> str:
    sql = sqlite_store._dedup_sql(n)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            f"EXPLAIN QUERY PLAN {sql}", ["org_default", *[f"d{i}" for i in range(n)], 0, 1, 1]
        ).fetchall()
    return " ".join(str(row[-1]) for row in rows)


def test_the_dedup_check_of_a_batch_seeks_each_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "d.db"
    with connect(f"sqlite:///{db}") as mt:
        mt.add_memories([{"agent_id": "bot", "content": f"memory {i}"} for i in range(20)])
    assert sqlite_store._IN_IMPLIES_NOT_NULL  # this SQLite derives the IS NOT NULL itself
    for n in (1, 2, 500):
        plan = _dedup_plan(db, n)
        assert "memories_dedup (org_id=? AND dedup_key=? AND recorded_at>?)" in plan, plan
    # an SQLite that cannot derive it keeps the explicit term: the partial index stays usable
    # (named by INDEXED BY, a plan without it would be an error), and the check finds the same
    monkeypatch.setattr(sqlite_store, "_IN_IMPLIES_NOT_NULL", False)
    assert "IS NOT NULL" in sqlite_store._dedup_sql(2)
    assert "memories_dedup" in _dedup_plan(db, 2)
    with connect(f"sqlite:///{db}") as mt:
        batch = mt.add_memories(
            [{"agent_id": "bot", "content": c} for c in ("memory 3", "new", "memory 7")]
        )
        assert (batch.count, [d.index for d in batch.duplicate_of]) == (1, [0, 2])


@pytest.mark.parametrize("derives_not_null", [True, False])
async def test_a_duplicate_names_the_newest_of_stored_twins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, derives_not_null: bool
) -> None:
    # two stored memories with one dedup key and one recorded_at (a batch written with dedup
    # off): a later write of that key is a duplicate of the one written last, whatever plan
    # SQLite picks for the check (one key or several in the batch)
    monkeypatch.setattr(sqlite_store, "_IN_IMPLIES_NOT_NULL", derives_not_null)  # both plans
    url = f"sqlite:///{tmp_path / 't.db'}"
    async with AsyncMemtrace(
        SQLiteStore.from_url(url), config=EngineConfig(dedup_enabled=False)
    ) as eng:
        twins = await eng.add_memories(
            [{"agent_id": "bot", "content": f"twin {i}", "dedup_key": "same"} for i in range(2)]
        )
    assert twins.memories[0].recorded_at == twins.memories[1].recorded_at
    async with AsyncMemtrace(SQLiteStore.from_url(url)) as eng:
        one = await eng.add_memories([{"agent_id": "bot", "content": "x", "dedup_key": "same"}])
        several = await eng.add_memories(
            [
                {"agent_id": "bot", "content": c, "dedup_key": k}
                for c, k in [("y", "other"), ("z", "same"), ("w", "third")]
            ]
        )
    assert [d.existing_id for d in one.duplicate_of] == [twins.memories[1].id]
    assert [d.existing_id for d in several.duplicate_of] == [twins.memories[1].id]


async def test_summary_counts_an_unreadable_row_without_dating_it(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    async with AsyncMemtrace(SQLiteStore.from_url(f"sqlite:///{db}")) as eng:
        good = await eng.add_memory(agent_id="bot", content="good", tags=["t"])
        bad = await eng.add_memory(agent_id="bot", content="bad", tags=["t"])
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE memories SET time = 'not a time', metadata = '{' WHERE id = ?", (bad.id,)
        )
    async with AsyncMemtrace(SQLiteStore.from_url(f"sqlite:///{db}")) as eng:
        summary = await eng.summarize_memories(agent_id="bot")
        assert summary == MemorySummary(
            count=2, oldest=good.time, newest=good.time, tags={"t": 2}, tags_truncated=False
        )


def test_the_blocking_twin_has_summarize_memories(tmp_path: Path) -> None:
    assert "summarize_memories" in METHODS
    with connect(f"sqlite:///{tmp_path / 's.db'}") as mt:
        assert isinstance(mt, Memtrace)
        mt.add_memory(agent_id="bot", content="one", tags=["a", "b"], metadata={"aud": "u1"})
        mt.add_memory(agent_id="bot", content="two", tags=["b"])
        summary = mt.summarize_memories(metadata={"aud": {"$in": [None]}})
        assert (summary.count, summary.tags) == (1, {"b": 1})
        assert mt.summarize_memories(tags_any=["a"]).tags == {"a": 1, "b": 1}
        assert mt.delete_memories(tags_any=["a"], metadata={"aud": {"$nin": ["u2"]}}) == 1
        assert mt.summarize_memories().count == 1
