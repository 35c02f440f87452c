"""Deletion is real, on every store: after each way of deleting a memory, no read finds it —
get by id, list, keyword search, substring search, tag filters (all and any), key and
namespace reads, the summary, the agent's stats and context, and the export — while a
neighbour in another org with the same words, tags and agent keeps every one of them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, NotFoundError, aconnect

MARK = "zqxjvortdel"  # a word nothing else contains (porter leaves it alone)


async def _seed(mt: AsyncMemtrace) -> dict[str, str]:
    agent = await mt.register_agent(name="victim_agent")
    session = await mt.create_session(agent_id="victim_agent")
    victim = await mt.add_memory(
        agent_id="victim_agent",
        content=f"secret {MARK} payload with Ünïcode",
        session_id=session.id,
        tags=["gdpr_tag", "shared"],
        event_type="error",
        namespace=["vault"],
        key="secret-1",
        metadata={"kind": "pii"},
    )
    keep = await mt.remember("bystander", "ordinary memory about deploys", tags=["shared"])
    neighbour = await mt.with_org("org_neighbour").add_memory(
        agent_id="victim_agent",
        content=f"neighbour {MARK} payload with Ünïcode",
        tags=["gdpr_tag", "shared"],
        event_type="error",
        namespace=["vault"],
        key="secret-1",
        metadata={"kind": "pii"},
    )
    return {
        "victim": victim.id,
        "keep": keep.id,
        "neighbour": neighbour.id,
        "session": session.id,
        "agent": agent.id,
    }


Delete = Callable[[AsyncMemtrace, dict[str, str]], Awaitable[Any]]

DELETES: dict[str, Delete] = {
    "single": lambda mt, ids: mt.delete_memory(ids["victim"]),
    "by_ids": lambda mt, ids: mt.delete_memories(ids=[ids["victim"]]),
    "by_tag": lambda mt, ids: mt.delete_memories(tags=["gdpr_tag"]),
    "by_tags_any": lambda mt, ids: mt.delete_memories(tags_any=["gdpr_tag", "nope"]),
    "by_session": lambda mt, ids: mt.delete_memories(session_id=ids["session"]),
    "by_agent_name": lambda mt, ids: mt.delete_memories(agent_id="victim_agent"),
    "by_agent_id": lambda mt, ids: mt.delete_memories(agent_id=ids["agent"]),
    "by_event_type": lambda mt, ids: mt.delete_memories(event_types=["error"]),
    "by_key": lambda mt, ids: mt.delete_memories(namespace=["vault"], key="secret-1"),
    "by_metadata": lambda mt, ids: mt.delete_memories(metadata={"kind": "pii"}),
    "pop": lambda mt, ids: mt.pop_memory(tags=["gdpr_tag"]),
    "session_delete": lambda mt, ids: mt.delete_session(ids["session"], delete_memories=True),
    "agent_delete": lambda mt, ids: mt.delete_agent("victim_agent", delete_memories=True),
    "all_memories": lambda mt, ids: mt.delete_memories(all_memories=True),
    "org_purge": lambda mt, ids: mt.purge_org(),
}


async def _visible(mt: AsyncMemtrace, memory_id: str) -> dict[str, bool]:
    """Where ``memory_id`` can be seen, read by read."""
    try:
        await mt.get_memory(memory_id)
        by_id = True
    except NotFoundError:
        by_id = False
    try:
        by_key = (await mt.get_memory_by_key(["vault"], "secret-1")).id == memory_id
    except NotFoundError:
        by_key = False

    def has(memories: list[Any]) -> bool:
        return memory_id in {m.id for m in memories}

    try:
        in_context = MARK in (await mt.get_agent_context("victim_agent")).context
    except NotFoundError:  # the agent was deleted with its memories
        in_context = False
    exported = [json.loads(line) async for line in mt.iter_export()]
    summary = await mt.summarize_memories(tags=["gdpr_tag"])
    return {
        "get": by_id,
        "key": by_key,
        "list": has((await mt.list_memories(limit=1000)).memories),
        "keyword": has((await mt.search_memories(query=MARK)).results),
        "substring": has((await mt.search_memories(content_contains=MARK[2:9])).results),
        "substring_unicode": has((await mt.search_memories(content_contains="ÜNÏCODE")).results),
        "tags": has((await mt.list_memories(tags=["gdpr_tag"])).memories),
        "tags_any": has((await mt.search_memories(tags_any=["gdpr_tag"])).results),
        "namespace": has((await mt.search_memories(namespace=["vault"])).results),
        "metadata": has((await mt.search_memories(metadata={"kind": "pii"})).results),
        "summary": summary.count > 0,
        "export": memory_id in {o.get("id") for o in exported if o["kind"] == "memory"},
        "stats": (await mt.get_agent_stats("victim_agent")).memory_count > 0,
        "context": in_context,
    }


@pytest.mark.parametrize("how", list(DELETES))
async def test_a_deleted_memory_is_gone_from_every_read(store_url: str, how: str) -> None:
    mt = await aconnect(store_url)
    assert isinstance(mt, AsyncMemtrace)
    try:
        ids = await _seed(mt)
        neighbour = mt.with_org("org_neighbour")
        before = await _visible(mt, ids["victim"])
        assert all(before.values()), before  # every read found it: each check can fail
        assert all((await _visible(neighbour, ids["neighbour"])).values())
        await DELETES[how](mt, ids)
        after = await _visible(mt, ids["victim"])
        assert not any(after.values()), after
        # the other org lost nothing, in any index
        assert all((await _visible(neighbour, ids["neighbour"])).values())
        # nor did the bystander, unless the delete took everything of the org
        survivors = {m.id for m in (await mt.list_memories()).memories}
        assert survivors == (set() if how in ("all_memories", "org_purge") else {ids["keep"]})
        # the store's indexes accept the same content again: it is not remembered anywhere
        again = await mt.add_memory(
            agent_id="victim_agent",
            content=f"secret {MARK} payload with Ünïcode",
            tags=["gdpr_tag"],
        )
        assert [m.id for m in (await mt.search_memories(query=MARK)).results] == [again.id]
    finally:
        await mt.close()
