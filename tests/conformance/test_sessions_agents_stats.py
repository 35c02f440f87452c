"""Sessions, agents and stats on every store, on both transports: listing order and paging,
filters by agent id or name, atomic session updates (concurrent merges lose nothing), and
agent stats counted exactly (by type, last 24 h, errors, sessions, last activity)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from memtrace_core import ConflictError, NotFoundError


async def test_sessions_list_newest_first_with_exact_paging(mt: Any) -> None:
    agent = await mt.register_agent(name="lister")
    made = []
    for i in range(7):
        made.append(await mt.create_session(agent_id="lister" if i % 2 else agent.id))
        await asyncio.sleep(0.002)  # distinct created_at
    await mt.create_session(agent_id="someone_else")
    for i in (1, 4):
        await mt.close_session(made[i].id)
    newest_first = [s.id for s in reversed(made)]
    by_name = await mt.list_sessions("lister", limit=100)
    assert [s.id for s in by_name.sessions] == newest_first  # by id or by name: one agent
    assert [s.id for s in (await mt.list_sessions(agent.id, limit=100)).sessions] == newest_first
    pages: list[str] = []
    for offset in range(0, 7, 3):
        page = await mt.list_sessions("lister", limit=3, offset=offset)
        pages += [s.id for s in page.sessions]
        assert page.has_more == (offset + 3 < 7)
    assert pages == newest_first
    closed = await mt.list_sessions("lister", status="closed")
    assert [s.id for s in closed.sessions] == [made[4].id, made[1].id]
    assert (await mt.list_sessions(status="active")).count == 6
    assert (await mt.list_sessions()).count == 8


async def test_concurrent_session_updates_lose_nothing(mt: Any) -> None:
    s = await mt.create_session(agent_id="w", metadata={"base": 0})
    await asyncio.gather(*(mt.update_session(s.id, metadata={f"k{i}": i}) for i in range(12)))
    got = await mt.get_session(s.id)
    assert got.metadata == {"base": 0} | {f"k{i}": i for i in range(12)}
    assert got.updated_at >= s.updated_at


async def test_agents_are_listed_resolved_and_unique(mt: Any) -> None:
    first = await mt.register_agent(name="alpha", description="first", config={"a": [1]})
    await asyncio.sleep(0.002)
    second = await mt.register_agent(name="beta")
    assert [a.id for a in (await mt.list_agents()).agents] == [second.id, first.id]
    got = await mt.get_agent("alpha")
    assert (got.id, got.description, got.config) == (first.id, "first", {"a": [1]})
    with pytest.raises(ConflictError):
        await mt.register_agent(name="alpha")
    await mt.remember("alpha", "by name")
    await mt.remember(first.id, "by id")
    await mt.remember("beta", "other agent")
    assert {m.content for m in (await mt.get_agent_memories(first.id)).memories} == {
        "by name",
        "by id",
    }
    assert (await mt.list_memories(agent_id="alpha")).count == 2
    assert (await mt.get_agent("alpha")).last_active_at is not None
    await mt.delete_agent("beta")  # the memories stay
    with pytest.raises(NotFoundError):
        await mt.get_agent("beta")
    assert (await mt.list_memories(agent_id="beta")).count == 1


async def test_agent_stats_count_exactly(mt: Any) -> None:
    now = datetime.now(UTC)
    await mt.register_agent(name="counted")
    s1 = await mt.create_session(agent_id="counted")
    await mt.create_session(agent_id="counted")
    await mt.close_session(s1.id)
    await mt.add_memories(
        [
            {"agent_id": "counted", "content": "old error", "event_type": "error",
             "time": now - timedelta(days=3)},
            {"agent_id": "counted", "content": "new error", "event_type": "error",
             "time": now - timedelta(hours=1)},
            {"agent_id": "counted", "content": "a decision", "memory_type": "decision",
             "time": now - timedelta(hours=2)},
            {"agent_id": "counted", "content": "newest", "time": now - timedelta(minutes=1)},
            {"agent_id": "other", "content": "not counted", "event_type": "error"},
        ]
    )  # fmt: skip
    old = await mt.add_memory(agent_id="counted", content="replaced", time=now - timedelta(hours=3))
    await mt.add_memory(agent_id="counted", content="replacement", supersedes=old.id)
    stats = await mt.get_agent_stats("counted")
    assert stats.memory_types == {"episodic": 4, "decision": 1}  # the superseded one left out
    assert stats.memory_count == 5
    assert stats.memories_24h == 4
    assert stats.errors_24h == 1
    assert (stats.session_count, stats.active_sessions) == (2, 1)
    assert stats.last_active_at is not None
    assert abs((stats.last_active_at - now).total_seconds()) < 120
    unknown = await mt.get_agent_stats("nobody")
    assert (unknown.memory_count, unknown.session_count, unknown.memory_types) == (0, 0, {})
