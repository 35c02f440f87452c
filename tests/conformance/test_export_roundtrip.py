"""Export / import round-trips every field on every store: an org exported and imported into
a fresh store (and into another org of the same store) reads back identical — metadata, tags,
payload, namespace, key and ``key_created_at``, ``expires_at``, the supersession links both
ways, importance, ``parent_id``, sessions and agents, and the event ``time`` apart from
``recorded_at`` — and behaves the same afterwards (dedup, keyed writes, current versions)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, DuplicateMemoryError, aconnect

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


async def _write_everything(mt: AsyncMemtrace) -> list[str]:
    """Memories using every field; returns their ids (superseded ones included)."""
    await mt.register_agent(name="exporter", description="writes it all", config={"k": [1, 2]})
    session = await mt.create_session(agent_id="exporter", metadata={"run": {"n": 1}})
    closed = await mt.create_session(agent_id="exporter")
    await mt.close_session(closed.id)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    root = await mt.add_memory(
        agent_id="exporter",
        content="root of everything ✓ Ünïcode",
        session_id=session.id,
        memory_type="entity",
        event_type="note",
        metadata={"deep": {"a": [1, None, "x"]}, "n": 1.5},
        tags=["one", "two"],
        importance=0.25,
        dedup_key="custom-key",
        time=T0 + timedelta(microseconds=7),
        expires_at=expires,
        payload={"p": [True, None, {"q": "é"}]},
    )
    child = await mt.add_memory(
        agent_id="exporter", content="child memory", parent_id=root.id, time=T0, dedup=False
    )
    v1 = await mt.add_memory(agent_id="exporter", content="chain v1", time=T0 - timedelta(days=2))
    v2 = await mt.add_memory(agent_id="exporter", content="chain v2", supersedes=v1.id)
    v3 = await mt.add_memory(agent_id="exporter", content="chain v3", supersedes=v2.id)
    k1 = await mt.add_memory(
        agent_id="exporter",
        content="keyed v1",
        namespace=["users", "u1"],
        key="prefs",
        time=T0 - timedelta(days=1),
        payload=[1, 2, 3],
    )
    k2 = await mt.add_memory(
        agent_id="exporter", content="keyed v2", namespace=["users", "u1"], key="prefs"
    )
    assert k2.supersedes == k1.id
    assert k2.key_created_at == k1.time
    assert root.recorded_at != root.time
    return [root.id, child.id, v1.id, v2.id, v3.id, k1.id, k2.id]


async def _everything(mt: AsyncMemtrace, ids: list[str]) -> dict[str, Any]:
    memories = {}
    for mid in ids:
        memories[mid] = (await mt.get_memory(mid)).model_dump(exclude={"org_id", "score"})
    return {
        "memories": memories,
        "agents": [a.model_dump(exclude={"org_id"}) for a in (await mt.list_agents()).agents],
        "sessions": [s.model_dump(exclude={"org_id"}) for s in (await mt.list_sessions()).sessions],
        "current": [m.id for m in (await mt.list_memories(limit=1000, order="asc")).memories],
        "all": [
            m.id
            for m in (
                await mt.list_memories(limit=1000, order="asc", include_superseded=True)
            ).memories
        ],
    }


@pytest.mark.parametrize("where", ["fresh store", "other org", "same org after purge"])
async def test_an_export_imports_back_identical(
    store_url: str, new_store_url: Callable[[str], str], where: str
) -> None:
    source = await aconnect(store_url)
    assert isinstance(source, AsyncMemtrace)
    opened: list[AsyncMemtrace] = [source]
    try:
        ids = await _write_everything(source)
        original = await _everything(source, ids)
        assert len(original["all"]) == 7
        assert len(original["current"]) == 4  # root, child, chain v3, keyed v2
        lines = [line async for line in source.iter_export()]
        if where == "fresh store":
            other = await aconnect(new_store_url("restored"))
            assert isinstance(other, AsyncMemtrace)
            opened.append(other)
            target = other
        elif where == "other org":
            target = source.with_org("org_restored")
        else:
            await source.purge_org()
            assert (await source.list_memories(include_superseded=True)).count == 0
            target = source
        # in reverse order too: links are made in both directions whatever the order
        shuffled = [*reversed(lines[:-1]), lines[-1]]
        result = await target.import_jsonl(shuffled)
        assert (result.imported, result.agents, result.sessions) == (7, 1, 2)
        assert await _everything(target, ids) == original
        assert [line async for line in target.iter_export()] == lines
        # and it behaves the same afterwards
        with pytest.raises(DuplicateMemoryError) as dup:
            await target.add_memory(agent_id="exporter", content="anything", dedup_key="custom-key")
        assert dup.value.existing_id == ids[0]
        with pytest.raises(DuplicateMemoryError):
            await target.add_memory(agent_id="exporter", content="chain v3")
        again = await target.add_memory(
            agent_id="exporter", content="child memory", time=T0, dedup=False
        )
        assert again.id != ids[1]  # the imported memory kept "no dedup key"
        k3 = await target.add_memory(
            agent_id="exporter", content="keyed v3", namespace=["users", "u1"], key="prefs"
        )
        assert k3.supersedes == ids[6]
        assert k3.key_created_at == original["memories"][ids[5]]["time"]
        found = await target.search_memories(query="chain", include_superseded=True)
        assert {m.id for m in found.results} == set(ids[2:5])
        exported = [json.loads(line) for line in lines]
        by_id = {o["id"]: o for o in exported if o["kind"] == "memory"}
        assert by_id[ids[1]]["dedup"] is False
        assert by_id[ids[3]]["supersedes"] == ids[2]
        assert by_id[ids[3]]["superseded_by"] == ids[4]
    finally:
        for engine in opened:
            await engine.close()
