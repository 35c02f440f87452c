"""``all_versions`` in the core: the SQLite statement is planned on the indexes (the matched
rows by their filter's index, the older versions on the ``(org_id, id)`` key, the newer on the
unique ``(org_id, supersedes)`` index), the store protocol's keyword, and the blocking twin."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from pathlib import Path

import pytest

from memtrace_core import AsyncMemtrace, DeleteFilter, ValidationError, connect
from memtrace_core.client import _delete_body
from memtrace_core.stores.base import MemoryFilter, Store
from memtrace_core.stores.sqlite import SQLiteStore, build_where, chain_delete_sql

ORG = "org_default"


def test_the_chain_delete_is_planned_on_the_indexes(tmp_path: Path) -> None:
    db = tmp_path / "p.db"

    async def make() -> None:
        async with AsyncMemtrace(SQLiteStore.from_url(f"sqlite:///{db}")) as eng:
            old = await eng.add_memory(agent_id="bot", content="x", namespace=["n"], key="k")
            await eng.add_memory(agent_id="bot", content="y", supersedes=old.id)

    asyncio.run(make())
    for flt, index in (
        (MemoryFilter(ids=("mem_a",)), "memories_id"),
        (MemoryFilter(namespace=("n",)), "memories_namespace"),
        (MemoryFilter(keys=("k",)), "memories_key"),
    ):
        where, params = build_where(ORG, flt)
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                f"EXPLAIN QUERY PLAN {chain_delete_sql(where)}", [*params, ORG, ORG, ORG]
            ).fetchall()
        plan = [str(row[-1]) for row in rows]
        assert not [step for step in plan if step.startswith("SCAN memories")], plan
        assert not [step for step in plan if step.startswith(("SCAN m ", "SCAN o", "SCAN n"))]
        assert any(index in step for step in plan), plan
        assert any("SEARCH o USING INDEX memories_id (org_id=? AND id=?)" in s for s in plan)
        assert any(
            "SEARCH n USING INDEX memories_supersedes (org_id=? AND supersedes=?)" in s
            for s in plan
        ), plan
        # the delete itself by the (org_id, id) key
        assert any("memories_id (org_id=? AND id=?)" in s for s in plan if "SEARCH memories" in s)


def test_the_store_protocol_takes_all_versions_as_a_keyword() -> None:
    for cls in (Store, SQLiteStore):
        param = inspect.signature(cls.delete_memories).parameters["all_versions"]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY
        assert param.default is False
    assert "all_versions" in (Store.delete_memories.__doc__ or "")


async def test_store_deletes_the_chains_and_mends_nothing_else(tmp_path: Path) -> None:
    store = SQLiteStore.from_url(f"sqlite:///{tmp_path / 's.db'}")
    async with AsyncMemtrace(store) as eng:
        a1 = await eng.add_memory(agent_id="bot", content="a1", tags=["old"])
        a2 = await eng.add_memory(agent_id="bot", content="a2", supersedes=a1.id)
        b1 = await eng.add_memory(agent_id="bot", content="b1", tags=["old"])
        b2 = await eng.add_memory(agent_id="bot", content="b2", supersedes=b1.id)
        assert await store.delete_memories(ORG, MemoryFilter(ids=(a2.id,)), all_versions=True) == 2
        assert await store.delete_memories(ORG, MemoryFilter(ids=(a1.id,)), all_versions=True) == 0
        left = await eng.list_memories(include_superseded=True)
        assert sorted(m.content for m in left.memories) == ["b1", "b2"]
        assert (await eng.get_memory(b1.id)).superseded_by == b2.id
        # the default is the old delete: the previous version is current again
        assert await store.delete_memories(ORG, MemoryFilter(ids=(b2.id,))) == 1
        assert [m.content for m in (await eng.list_memories()).memories] == ["b1"]


def test_blocking_twin(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'b.db'}") as mt:
        v1 = mt.add_memory(agent_id="s", content="SSN 123", namespace=["s", "a"])
        mt.add_memory(agent_id="s", content="SSN 987", namespace=["s", "b"], supersedes=v1.id)
        assert mt.delete_memories({"namespace": ["s", "b"]}, all_versions=True) == 2
        assert mt.list_memories(include_superseded=True).memories == []
        with pytest.raises(ValidationError) as info:
            mt.pop_memory(agent_id="s", all_versions=True)
        assert info.value.field == "all_versions"
        with pytest.raises(ValidationError) as info:
            mt.delete_memories(agent_id="s", all_versions="yes")
        assert info.value.field == "all_versions"


def test_the_http_client_sends_all_versions_only_when_true() -> None:
    # a server from before the field existed still takes every other delete and pop
    assert "all_versions" not in _delete_body(DeleteFilter(agent_id="x"))
    assert "all_versions" not in _delete_body(DeleteFilter(agent_id="x", all_versions=False))
    assert _delete_body(DeleteFilter(agent_id="x", all_versions=True))["all_versions"] is True
