"""Time through the engine, on every store (test_store_time.py covers the store level): an
expired memory vanishes from every read the moment it expires, before any sweep; the sweep
(``Sweeper.sweep_once``: expiry, then each org's retention, in batches) and
``apply_retention`` delete exactly what is past its age; supersession chains read as one
current version; and ``as_of`` reads see the store as it was."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from memtrace_core import AsyncMemtrace, NotFoundError, SupersededError, ValidationError
from memtrace_core.retention import Sweeper

MARK = "zqxjexpiry"


async def _reads(mt: AsyncMemtrace, memory_id: str) -> dict[str, bool]:
    def has(memories: list[object]) -> bool:
        return memory_id in {m.id for m in memories}  # type: ignore[attr-defined]

    try:
        by_key = (await mt.get_memory_by_key(["exp"], "k")).id == memory_id
    except NotFoundError:
        by_key = False
    try:
        by_id = (await mt.get_memory(memory_id)).id == memory_id
    except NotFoundError:
        by_id = False
    exported = [json.loads(x) async for x in mt.iter_export()]
    return {
        "get": by_id,
        "key": by_key,
        "list": has((await mt.list_memories()).memories),
        "keyword": has((await mt.search_memories(query=MARK)).results),
        "substring": has((await mt.search_memories(content_contains=MARK[3:])).results),
        "tags": has((await mt.list_memories(tags=["short"])).memories),
        "summary": (await mt.summarize_memories(tags=["short"])).count == 1,
        "stats": (await mt.get_agent_stats("exp")).memory_types.get("episodic", 0) == 1,
        "context": MARK in (await mt.get_agent_context("exp")).context,
        "namespaces": ["exp"] in (await mt.list_namespaces()).namespaces,
        "export": memory_id in {o.get("id") for o in exported},
    }


async def test_an_expired_memory_vanishes_from_every_read_at_once(engine: AsyncMemtrace) -> None:
    kept = await engine.add_memory(agent_id="exp", content="a lasting memory", memory_type="entity")
    short = await engine.add_memory(
        agent_id="exp",
        content=f"short lived {MARK}",
        tags=["short"],
        namespace=["exp"],
        key="k",
        ttl=1,
    )
    assert short.expires_at is not None
    assert all((await _reads(engine, short.id)).values())
    await asyncio.sleep(max(0.0, (short.expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    assert not any((await _reads(engine, short.id)).values())
    # no sweep ran: it is still stored, and the store's own sweep deletes it
    assert await engine.store.get_memory(engine.org_id, short.id) is not None
    # dedup no longer compares against it, and its key is free again
    again = await engine.add_memory(
        agent_id="exp", content=f"short lived {MARK}", tags=["short"], namespace=["exp"], key="k"
    )
    assert again.supersedes is None
    assert (await engine.get_memory(kept.id)).content == "a lasting memory"
    report = await Sweeper(engine, batch=1).sweep_once()
    assert (report.ran, report.expired) == (True, 1)
    assert await engine.store.get_memory(engine.org_id, short.id) is None
    assert {m.id for m in (await engine.list_memories()).memories} == {kept.id, again.id}


async def test_retention_deletes_exactly_what_is_past_its_age(engine: AsyncMemtrace) -> None:
    now = datetime.now(UTC)
    other = engine.with_org("org_retained")
    days = [1, 5, 9, 20, 40]
    for org in (engine, other):
        await org.add_memories(
            [
                {
                    "agent_id": agent,
                    "content": f"{agent} {mtype} memory {d} days old",
                    "memory_type": mtype,
                    "time": now - timedelta(days=d),
                }
                for d in days
                for agent, mtype in (("ops", "episodic"), ("ops", "decision"), ("bot", "episodic"))
            ]
        )
    # first matching rule decides: ops decisions 30 d, the rest of ops 7 d, everything else 10 d
    await engine.set_retention_policy(
        max_age="10d",
        rules=[
            {"agent_id": "ops", "memory_types": ["decision"], "max_age": "30d"},
            {"agent_id": "ops", "max_age": "7d"},
        ],
    )
    await other.set_retention_policy(max_age="forever")

    def kept(agent: str, mtype: str) -> set[str]:
        age = 30 if (agent, mtype) == ("ops", "decision") else 7 if agent == "ops" else 10
        return {f"{agent} {mtype} memory {d} days old" for d in days if d < age}

    expected = kept("ops", "episodic") | kept("ops", "decision") | kept("bot", "episodic")
    doomed = 3 * len(days) - len(expected)
    assert doomed == 3 + 1 + 2
    assert (await engine.apply_retention(dry_run=True)).deleted == doomed
    assert (await engine.list_memories()).count == 15
    report = await Sweeper(engine, batch=3).sweep_once()  # several batches
    assert (report.ran, report.aged) == (True, doomed)
    assert {m.content for m in (await engine.list_memories()).memories} == expected
    assert (await other.list_memories()).count == 15
    assert (await engine.apply_retention()).deleted == 0
    # a write already past its age is refused (the next sweep would delete it)
    with pytest.raises(ValidationError, match="retention"):
        await engine.add_memory(agent_id="bot", content="too old", time=now - timedelta(days=11))


async def test_a_supersession_chain_reads_as_its_current_version(engine: AsyncMemtrace) -> None:
    v1 = await engine.add_memory(agent_id="c", content="address: Main St 1", tags=["addr"])
    v2 = await engine.add_memory(agent_id="c", content="address: Oak Ave 2", supersedes=v1.id)
    v3 = await engine.add_memory(agent_id="c", content="address: Elm Rd 3", supersedes=v2.id)
    assert [m.id for m in (await engine.list_memories()).memories] == [v3.id]
    assert [m.id for m in (await engine.search_memories(query="address")).results] == [v3.id]
    assert (await engine.list_memories(tags=["addr"])).count == 0  # only v1 had the tag
    every = await engine.list_memories(include_superseded=True, order="asc")
    assert [m.id for m in every.memories] == [v1.id, v2.id, v3.id]
    g1, g2, g3 = [await engine.get_memory(m.id) for m in (v1, v2, v3)]
    assert (g1.supersedes, g1.superseded_by) == (None, v2.id)
    assert (g2.supersedes, g2.superseded_by) == (v1.id, v3.id)
    assert (g3.supersedes, g3.superseded_by) == (v2.id, None)
    assert g1.superseded_at == v2.recorded_at
    assert (await engine.get_agent_stats("c")).memory_count == 1
    with pytest.raises(SupersededError) as fork:
        await engine.add_memory(agent_id="c", content="a fork", supersedes=v1.id)
    assert fork.value.status_code == 409
    assert v3.id in fork.value.message  # names the chain's current version
    await engine.delete_memory(v3.id)
    assert [m.id for m in (await engine.list_memories()).memories] == [v2.id]
    assert (await engine.get_memory(v2.id)).superseded_by is None


async def test_as_of_reads_see_the_store_as_it_was(engine: AsyncMemtrace) -> None:
    v1 = await engine.add_memory(agent_id="h", content="status green", tags=["s"])
    await asyncio.sleep(0.01)
    between = datetime.now(UTC)
    await asyncio.sleep(0.01)
    v2 = await engine.add_memory(agent_id="h", content="status red", supersedes=v1.id)
    later = await engine.add_memory(agent_id="h", content="unrelated later note")
    assert between < v2.recorded_at
    then = await engine.list_memories(as_of=between)
    assert [m.id for m in then.memories] == [v1.id]
    assert then.memories[0].superseded_by is None  # not yet, as of then
    found = await engine.search_memories(query="status", as_of=between)
    assert [m.id for m in found.results] == [v1.id]
    assert (await engine.get_memory(v1.id, as_of=between)).superseded_by is None
    with pytest.raises(NotFoundError):
        await engine.get_memory(later.id, as_of=between)
    stats = await engine.get_agent_stats("h", as_of=between)
    assert stats.memory_count == 1
    assert (await engine.summarize_memories(as_of=between)).count == 1
    now_view = await engine.list_memories()
    assert {m.id for m in now_view.memories} == {v2.id, later.id}
    everything = await engine.list_memories(as_of=between, include_superseded=True)
    assert [m.id for m in everything.memories] == [v1.id]
