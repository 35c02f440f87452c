"""Wire compatibility: the published ``memtrace-sdk==0.2.0`` (import ``memtrace``), unchanged,
drives memtrace-server through every one of its methods — sync and async clients."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import httpx
import memtrace
import pytest
from memtrace import (
    AddMemoryRequest,
    AsyncMemtrace,
    ContextOptions,
    CreateSessionRequest,
    ListOptions,
    Memtrace,
    RegisterAgentRequest,
    SearchQuery,
)

from memtrace_server.testing import LiveServer

SDK_METHODS = {
    "remember",
    "recall",
    "decide",
    "add_memory",
    "add_memories",
    "list_memories",
    "search_memories",
    "register_agent",
    "list_agents",
    "get_agent",
    "get_agent_stats",
    "get_agent_memories",
    "delete_agent",
    "create_session",
    "get_session",
    "get_session_context",
    "get_session_memories",
    "list_sessions",
    "close_session",
}


def test_sdk_version_and_method_set() -> None:
    assert memtrace.__version__ == "0.2.0"
    for cls in (Memtrace, AsyncMemtrace):
        public = {
            name
            for name, _ in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name != "close"
        }
        assert public == SDK_METHODS, cls  # the scenario below calls every one of them


async def _r(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@pytest.fixture(params=["sync", "async"])
async def sdk(
    request: pytest.FixtureRequest, live: LiveServer, admin_key: str
) -> AsyncIterator[Any]:
    if request.param == "sync":
        client: Any = Memtrace(live.url, admin_key)
        yield client
        client.close()
    else:
        aclient = AsyncMemtrace(live.url, admin_key)
        yield aclient
        await aclient.close()


async def test_every_sdk_method(sdk: Any) -> None:
    # memories
    m = await _r(sdk.remember("agent_1", "User prefers dark mode"))
    assert isinstance(m, memtrace.Memory)
    assert m.memory_type == "episodic"
    assert m.event_type == "general"
    assert m.org_id == "org_default"
    assert m.dedup_key == "e81f1de3b743bacd47421867ad0574e4"  # the original's key, exactly
    assert m.time.tzinfo is not None

    with pytest.raises(memtrace.ConflictError) as dup:
        await _r(sdk.remember("agent_1", "User prefers dark mode"))
    assert dup.value.status_code == 409
    assert "duplicate" in dup.value.message

    d = await _r(sdk.decide("agent_1", "Use PostgreSQL", "needs concurrency"))
    assert d.memory_type == "decision"
    assert d.event_type == "decision"
    assert d.metadata == {"reasoning": "needs concurrency"}

    full = await _r(
        sdk.add_memory(
            AddMemoryRequest(
                agent_id="agent_1",
                memory_type="entity",
                event_type="customer",
                content="ACME Corp is a customer",
                tags=["crm", "acme"],
                importance=0.8,
                metadata={"tier": "gold"},
                parent_id=m.dedup_key,
            )
        )
    )
    assert full.tags == ["crm", "acme"]
    assert full.importance == 0.8
    assert full.parent_id == m.dedup_key

    batch = await _r(
        sdk.add_memories(
            [
                AddMemoryRequest(
                    agent_id="agent_2",
                    memory_type="episodic",
                    event_type="step",
                    content="step one",
                ),
                AddMemoryRequest(
                    agent_id="agent_2",
                    memory_type="episodic",
                    event_type="step",
                    content="step two",
                ),
                AddMemoryRequest(
                    agent_id="agent_1",
                    memory_type="episodic",
                    event_type="general",
                    content="User prefers dark mode",
                ),
            ]
        )
    )
    assert [b.content for b in batch] == ["step one", "step two"]  # the duplicate is skipped

    recalled = await _r(sdk.recall("agent_1"))
    assert isinstance(recalled, memtrace.MemoryList)
    assert recalled.count == 3
    assert recalled.has_more is False
    assert recalled.memories[0].content == "ACME Corp is a customer"  # newest first

    listed = await _r(sdk.list_memories(ListOptions(agent_id="agent_2", limit=1, order="asc")))
    assert listed.count == 1
    assert listed.has_more is True
    assert listed.memories[0].content == "step one"
    by_tag = await _r(sdk.list_memories(ListOptions(tags="crm,acme", since="1h")))
    assert [x.content for x in by_tag.memories] == ["ACME Corp is a customer"]

    found = await _r(
        sdk.search_memories(
            SearchQuery(
                content_contains="customer",
                memory_types=["entity"],
                min_importance=0.5,
                limit=10,
                order="desc",
            )
        )
    )
    assert isinstance(found, memtrace.SearchResult)
    assert found.count == 1
    assert found.results[0].content == "ACME Corp is a customer"
    assert found.query_time_ms >= 0

    # agents
    agent = await _r(
        sdk.register_agent(
            RegisterAgentRequest(name="crawler", description="crawls", config={"depth": 2})
        )
    )
    assert isinstance(agent, memtrace.Agent)
    assert agent.id.startswith("agent_")
    assert agent.config == {"depth": 2}
    with pytest.raises(memtrace.ConflictError):
        await _r(sdk.register_agent(RegisterAgentRequest(name="crawler")))
    agents = await _r(sdk.list_agents())
    assert agents.count == 1
    assert agents.agents[0].name == "crawler"
    assert (await _r(sdk.get_agent("crawler"))).id == agent.id
    assert (await _r(sdk.get_agent(agent.id))).name == "crawler"
    with pytest.raises(memtrace.NotFoundError):
        await _r(sdk.get_agent("nobody"))

    await _r(sdk.remember(agent.id, "crawled page 1"))
    stats = await _r(sdk.get_agent_stats(agent.id))
    assert isinstance(stats, memtrace.AgentStats)
    assert stats.memory_count == 1
    assert stats.memory_types == {"episodic": 1}
    assert stats.session_count == 0
    agent_mems = await _r(sdk.get_agent_memories(agent.id))
    assert agent_mems.count == 1
    agent_mems = await _r(
        sdk.get_agent_memories("crawler", ListOptions(limit=5, order="asc", agent_id="ignored"))
    )
    assert agent_mems.count == 1
    assert agent_mems.memories[0].content == "crawled page 1"

    # sessions
    session = await _r(
        sdk.create_session(CreateSessionRequest(agent_id=agent.id, metadata={"task": "crawl"}))
    )
    assert isinstance(session, memtrace.Session)
    assert session.status == "active"
    assert session.closed_at is None
    assert (await _r(sdk.get_session(session.id))).metadata == {"task": "crawl"}
    sessions = await _r(sdk.list_sessions())
    assert sessions.count == 1
    assert (await _r(sdk.list_sessions(agent.id))).sessions[0].id == session.id
    assert (await _r(sdk.list_sessions("agent_0000"))).count == 0

    await _r(
        sdk.add_memory(
            AddMemoryRequest(
                agent_id=agent.id,
                session_id=session.id,
                memory_type="session",
                event_type="error",
                content="timeout on page 2",
            )
        )
    )
    ctx = await _r(sdk.get_session_context(session.id))
    assert isinstance(ctx, memtrace.SessionContext)
    assert ctx.memory_count == 1
    assert "### Errors (1)" in ctx.context
    ctx = await _r(
        sdk.get_session_context(
            session.id, ContextOptions(since="2h", include_types=["episodic"], max_tokens=100)
        )
    )
    assert ctx.memory_count == 0
    assert ctx.context == f"## Session Context ({session.id})\n\n"
    smems = await _r(sdk.get_session_memories(session.id))
    assert smems.count == 1
    assert smems.memories[0].session_id == session.id
    smems = await _r(sdk.get_session_memories(session.id, ListOptions(memory_type="episodic")))
    assert smems.count == 0

    closed = await _r(sdk.close_session(session.id))
    assert closed.status == "closed"
    assert closed.closed_at is not None
    with pytest.raises(memtrace.NotFoundError):
        await _r(sdk.get_session("sess_missing"))

    # delete
    assert await _r(sdk.delete_agent(agent.id)) is None
    with pytest.raises(memtrace.NotFoundError):
        await _r(sdk.delete_agent(agent.id))


async def test_sdk_errors(live: LiveServer) -> None:
    bad = AsyncMemtrace(live.url, "mtk_wrong")
    try:
        with pytest.raises(memtrace.AuthenticationError) as exc:
            await bad.list_agents()
        assert exc.value.message == "invalid API key"
    finally:
        await bad.close()


async def test_sdk_validation_errors_are_400(live: LiveServer, admin_key: str) -> None:
    sdk = Memtrace(live.url, admin_key)
    try:
        with pytest.raises(memtrace.MemtraceError) as exc:
            sdk.add_memory(
                AddMemoryRequest(
                    agent_id="1bad", memory_type="episodic", event_type="general", content="x"
                )
            )
        assert exc.value.status_code == 400
        assert exc.value.message.startswith("invalid agent_id")
        with pytest.raises(memtrace.MemtraceError) as exc:
            sdk.list_memories(ListOptions(since="yesterday"))
        assert exc.value.status_code == 400  # the original answered 500 here
    finally:
        sdk.close()


async def test_sdk_headers_are_accepted(live: LiveServer, admin_key: str) -> None:
    # The SDK sends Content-Type: application/json on every request, GET and DELETE included.
    async with httpx.AsyncClient(base_url=live.url) as h:
        r = await h.get(
            "/api/v1/agents", headers={"x-api-key": admin_key, "Content-Type": "application/json"}
        )
        assert r.status_code == 200
        assert r.json() == {"agents": [], "count": 0}
