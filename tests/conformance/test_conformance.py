"""One behavioural suite, two transports (``mt`` is the engine or the HTTP client): the same
calls give the same models, the same results and the same exceptions."""

from __future__ import annotations

import inspect
import io
import json
from typing import Any

import pytest

from memtrace_core import (
    AgentContext,
    AgentList,
    AgentStats,
    AsyncMemtrace,
    BatchResult,
    ConflictError,
    DuplicateMemoryError,
    ImportResult,
    Memory,
    MemoryCreate,
    MemoryList,
    MemtraceError,
    NotFoundError,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
    ValidationError,
    api,
)
from memtrace_core.client import AsyncMemtraceClient, MemtraceClient
from memtrace_core.sync import Memtrace

#: Public methods that are not in the method set, on purpose, per implementation.
_NOT_IN_CONTRACT = {
    # engine-only: the store, views, probes, the retention rules the sweep applies, and
    # ending every watch (a server before it stops)
    AsyncMemtrace: {"open", "with_org", "health", "retention_rules", "end_watches"},
    AsyncMemtraceClient: {"open", "with_org"},
    Memtrace: {"with_org"},
    MemtraceClient: {"with_org"},
}


def test_every_public_method_is_in_the_contract_or_listed_as_extra() -> None:
    """A method added to one implementation only must be added to memtrace_core.api (and so to
    every implementation, tests/conformance/test_contract.py) or listed here on purpose."""
    for cls, extras in _NOT_IN_CONTRACT.items():
        public = {
            name
            for name, _ in inspect.getmembers(cls, callable)
            if not name.startswith("_") and name not in ("aio",)
        }
        assert public - set(api.METHODS) == extras, cls.__name__


async def test_with_org_is_explicit_on_the_client(mt: Any) -> None:
    if isinstance(mt, AsyncMemtraceClient):
        with pytest.raises(MemtraceError, match="API key"):
            mt.with_org("org_x")
    else:
        assert mt.with_org("org_x").org_id == "org_x"


async def test_memories_roundtrip(mt: Any) -> None:
    m = await mt.remember("agent_1", "User prefers dark mode", tags=["ui"], importance=0.3)
    assert isinstance(m, Memory)
    assert m.id.startswith("mem_")
    assert m.dedup_key == "e81f1de3b743bacd47421867ad0574e4"
    got = await mt.get_memory(m.id)
    assert got == m
    d = await mt.decide("agent_1", "Ship it", "tests pass", session_id="sess_1")
    assert d.memory_type == "decision"
    assert d.metadata == {"reasoning": "tests pass"}
    x = await mt.add_memory(MemoryCreate(agent_id="agent_1", content="typed", event_type="note"))
    y = await mt.add_memory({"agent_id": "agent_1", "content": "mapping"}, event_type="kw")
    assert (x.event_type, y.event_type) == ("note", "kw")
    with pytest.raises(NotFoundError):
        await mt.get_memory("mem_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    with pytest.raises(ValidationError) as exc:
        await mt.get_memory("nope")
    assert exc.value.field == "id"


async def test_dedup_and_batches(mt: Any) -> None:
    first = await mt.remember("a", "same text")
    with pytest.raises(DuplicateMemoryError) as exc:
        await mt.remember("a", "same text")
    assert exc.value.existing_id == first.id
    assert exc.value.dedup_key == first.dedup_key
    assert isinstance(exc.value, ConflictError)
    assert exc.value.status_code == 409

    result = await mt.add_memories(
        [
            {"agent_id": "a", "content": "same text"},
            MemoryCreate(agent_id="a", content="fresh"),
            {"agent_id": "a", "content": "fresh"},
        ]
    )
    assert isinstance(result, BatchResult)
    assert result.count == 1
    assert [m.content for m in result.memories] == ["fresh"]
    assert result.duplicates == 2
    assert [(d.index, d.existing_id) for d in result.duplicate_of] == [
        (0, first.id),
        (2, result.memories[0].id),
    ]
    empty = await mt.add_memories([])
    assert empty.count == 0
    assert empty.memories == []

    with pytest.raises(ValidationError) as bad:
        await mt.add_memories(
            [
                {"agent_id": "a", "content": "ok"},
                {"agent_id": "a", "content": "x", "memory_type": "dream"},
            ]
        )
    assert bad.value.index == 1
    assert bad.value.field == "memory_type"
    assert bad.value.message.startswith("memories[1]: invalid memory_type: dream")
    with pytest.raises(ValidationError):
        await mt.add_memories("not a list")
    assert (await mt.list_memories(agent_id="a")).count == 2  # nothing from the failed batch


async def test_filters_tags_paging_and_order(mt: Any) -> None:
    await mt.add_memories(
        [
            {
                "agent_id": "f",
                "content": f"item {i}",
                "time": f"2026-01-01T00:00:0{i}Z",
                "tags": ["prod"] if i % 2 else ["production"],
                "event_type": "even" if i % 2 == 0 else "odd",
                "session_id": "sess_a" if i < 3 else None,
            }
            for i in range(6)
        ]
    )
    page = await mt.list_memories(agent_id="f", limit=2, order="asc")
    assert isinstance(page, MemoryList)
    assert [m.content for m in page.memories] == ["item 0", "item 1"]
    assert page.has_more
    last = await mt.list_memories({"agent_id": "f", "limit": 2, "offset": 4, "order": "asc"})
    assert [m.content for m in last.memories] == ["item 4", "item 5"]
    assert not last.has_more
    assert [m.content for m in (await mt.list_memories(tags="prod")).memories] == [
        "item 5",
        "item 3",
        "item 1",
    ]
    assert (await mt.list_memories(tags=["prod", "production"])).count == 0
    assert (await mt.list_memories(event_type="even", session_id="sess_a")).count == 2
    window = await mt.list_memories(since="2026-01-01T00:00:01Z", until="2026-01-01T00:00:03Z")
    assert [m.content for m in window.memories] == ["item 2", "item 1"]
    assert (await mt.get_session_memories("sess_a", order="asc")).memories[0].content == "item 0"
    assert (await mt.recall("f", since=None, limit=3)).count == 3
    for bad in ({"limit": 0}, {"order": "sideways"}, {"since": "soonish"}, {"agent_id": "!"}):
        with pytest.raises(ValidationError) as exc:
            await mt.list_memories(**bad)
        assert exc.value.field == next(iter(bad))
    with pytest.raises(ValidationError):
        await mt.list_memories(nonsense=1)


async def test_search(mt: Any) -> None:
    await mt.add_memories(
        [
            {
                "agent_id": "s",
                "content": "Deploy failed on staging",
                "event_type": "error",
                "importance": 0.9,
            },
            {"agent_id": "s", "content": "Deployed v2 to production", "memory_type": "decision"},
            {"agent_id": "s", "content": "Weekly sync notes"},
        ]
    )
    res = await mt.search_memories(content_contains="DEPLOY")
    assert isinstance(res, SearchResult)
    assert res.count == 2
    res = await mt.search_memories({"memory_types": "decision"})
    assert [m.memory_type for m in res.results] == ["decision"]
    res = await mt.search_memories(query="staging deploy failure", limit=1)
    assert res.results[0].content == "Deploy failed on staging"
    assert res.results[0].score is not None
    assert res.has_more is True
    assert (await mt.search_memories(min_importance=0.5)).count == 1
    with pytest.raises(ValidationError):
        await mt.search_memories(min_importance=5)


async def test_shortcuts_follow_one_rule_set(mt: Any) -> None:
    """remember / decide / recall build the same request on both transports
    (memtrace_core.shortcuts)."""
    old = await mt.add_memory(agent_id="s", content="long ago", time="2020-01-01T00:00:00Z")
    first = await mt.remember("s", "first", tags=["t"], importance=0.5)
    assert (first.memory_type, first.event_type, first.tags) == ("episodic", "general", ["t"])
    chosen = await mt.decide("s", "use plan B", "plan A failed", session_id="sess_1")
    assert (chosen.memory_type, chosen.event_type) == ("decision", "decision")
    assert chosen.metadata == {"reasoning": "plan A failed"}
    assert chosen.session_id == "sess_1"
    recalled = await mt.recall("s")
    assert [m.id for m in recalled.memories] == [chosen.id, first.id]  # 24 h, newest first
    assert old.id in [m.id for m in (await mt.recall("s", since=None)).memories]
    assert (await mt.recall("s", limit=1, memory_type="episodic")).memories[0].id == first.id
    with pytest.raises(ValidationError) as info:
        await mt.recall("s", order="asc")
    assert info.value.field == "order"
    with pytest.raises(ValidationError):
        await mt.recall("s", colour="blue")


async def test_agents(mt: Any) -> None:
    agent = await mt.register_agent(name="planner", config={"k": 1})
    with pytest.raises(ConflictError):
        await mt.register_agent({"name": "planner"})
    assert (await mt.get_agent("planner")).id == agent.id
    assert (await mt.get_agent(agent.id)).name == "planner"
    listed = await mt.list_agents()
    assert isinstance(listed, AgentList)
    assert listed.count == 1
    await mt.remember("planner", "by name", event_type="error")
    await mt.remember(agent.id, "by id")
    assert (await mt.get_agent_memories("planner")).count == 2
    stats = await mt.get_agent_stats(agent.id)
    assert isinstance(stats, AgentStats)
    assert (stats.memory_count, stats.errors_24h, stats.memory_types) == (2, 1, {"episodic": 2})
    ctx = await mt.get_agent_context("planner", max_tokens=1000)
    assert isinstance(ctx, AgentContext)
    assert ctx.memory_count == 2
    await mt.delete_agent("planner", delete_memories=True)
    with pytest.raises(NotFoundError):
        await mt.get_agent("planner")
    with pytest.raises(NotFoundError):
        await mt.delete_agent(agent.id)
    assert (await mt.list_memories()).count == 0
    with pytest.raises(ValidationError):
        await mt.get_agent("")


async def test_sessions_and_context(mt: Any) -> None:
    agent = await mt.register_agent(name="worker")
    s = await mt.create_session(agent_id="worker", metadata={"a": 1, "nested": {"x": 1}})
    assert isinstance(s, Session)
    assert s.agent_id == agent.id
    assert s.status == "active"
    await mt.remember("worker", "did a thing", session_id=s.id)
    await mt.decide("worker", "chose B", "cheaper", session_id=s.id)
    ctx = await mt.get_session_context(s.id)
    assert isinstance(ctx, SessionContext)
    assert ctx.memory_count == 2
    assert ctx.context.startswith(f"## Session Context ({s.id})\n\n### Recent Actions (1)\n")
    assert (await mt.get_session_context(s.id, {"include_types": ["decision"]})).memory_count == 1
    assert (await mt.get_session_context(s.id, format="xml")).format == "xml"
    with pytest.raises(NotFoundError):
        await mt.get_session_context("sess_missing")

    upd = await mt.update_session(s.id, metadata={"nested": {"y": 2}, "a": None})
    assert upd.metadata == {"nested": {"x": 1, "y": 2}}
    upd = await mt.update_session(s.id, {"metadata": {"only": True}, "replace_metadata": True})
    assert upd.metadata == {"only": True}
    closed = await mt.close_session(s.id)
    assert closed.status == "closed"
    assert closed.closed_at is not None
    reopened = await mt.update_session(s.id, status="active")
    assert reopened.closed_at is None
    with pytest.raises(ValidationError):
        await mt.update_session(s.id, status="paused")
    with pytest.raises(NotFoundError):
        await mt.update_session("sess_none", status="closed")

    other = await mt.create_session(agent_id="elsewhere")
    listed = await mt.list_sessions()
    assert isinstance(listed, SessionList)
    assert listed.count == 2
    assert [x.id for x in (await mt.list_sessions("worker")).sessions] == [s.id]
    assert [x.id for x in (await mt.list_sessions(status="active", limit=1)).sessions] == [other.id]
    assert (await mt.list_sessions(limit=1)).has_more is True

    await mt.delete_session(s.id, delete_memories=True)
    with pytest.raises(NotFoundError):
        await mt.get_session(s.id)
    assert (await mt.list_memories(agent_id="worker")).count == 0


async def test_delete(mt: Any) -> None:
    a = await mt.remember("d", "one", tags=["x"])
    await mt.remember("d", "two", tags=["y"])
    await mt.delete_memory(a.id)
    with pytest.raises(NotFoundError):
        await mt.delete_memory(a.id)
    assert (await mt.search_memories(query="one")).count == 0
    assert await mt.delete_memories(tags=["y"]) == 1
    with pytest.raises(ValidationError) as exc:
        await mt.delete_memories()
    assert exc.value.field == "filter"
    await mt.remember("d", "three")
    assert await mt.delete_memories(all_memories=True) == 1


async def test_export_import(mt: Any) -> None:
    await mt.register_agent(name="exp")
    sess = await mt.create_session(agent_id="exp")
    await mt.add_memories(
        [
            {
                "agent_id": "exp",
                "content": f"m{i}",
                "session_id": sess.id,
                "tags": ["t"] if i else None,
            }
            for i in range(4)
        ]
    )
    lines = [line async for line in mt.iter_export()]
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds == ["agent", "session", "memory", "memory", "memory", "memory", "trailer"]
    assert json.loads(lines[-1])["memories"] == 4
    assert all(line.endswith("\n") for line in lines)
    buf = io.StringIO()
    assert await mt.export_jsonl(buf, tags=["t"]) == 3 + 1
    filtered = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert filtered[-1] == {**json.loads(lines[-1]), "memories": 3, "agents": 0, "sessions": 0}

    again = await mt.import_jsonl(lines)
    assert isinstance(again, ImportResult)
    assert (again.imported, again.skipped, again.agents, again.sessions) == (0, 4, 0, 0)
    purged = await mt.purge_org()
    assert purged == 4
    assert (await mt.list_agents()).count == 0
    restored = await mt.import_jsonl([line.encode() for line in lines])
    assert (restored.imported, restored.agents, restored.sessions) == (4, 1, 1)
    assert [line async for line in mt.iter_export()] == lines
    with pytest.raises(ValidationError) as exc:
        await mt.import_jsonl(['{"kind": "memory", "id": "mem_bad"}'])
    assert "line 1" in exc.value.message
    with pytest.raises(ValidationError):
        await mt.import_jsonl(["", "not json"])
    # Both transports verify the trailer: a truncated export is refused whole...
    await mt.purge_org()
    with pytest.raises(ValidationError) as exc:
        await mt.import_jsonl(lines[:-1])
    assert "no export trailer" in exc.value.message
    assert (await mt.list_agents()).count == 0
    # ...unless explicitly accepted as a file written before the trailer existed.
    accepted = await mt.import_jsonl(lines[:-1], require_trailer=False)
    assert (accepted.imported, accepted.agents, accepted.sessions) == (4, 1, 1)


async def test_batch_validation_messages_match(mt: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        await mt.add_memory(agent_id="a")
    assert (exc.value.message, exc.value.field, exc.value.index) == (
        "content is required",
        "content",
        None,
    )


def test_blocking_client_matches(store_url: str) -> None:
    import asyncio

    from memtrace_core import connect
    from memtrace_server.testing import bootstrap_admin_key, config_for, serve_in_thread

    db_url = store_url
    key = asyncio.run(bootstrap_admin_key(db_url))
    with serve_in_thread(config_for(db_url)) as live:
        with connect(live.url, api_key=key) as client:
            assert isinstance(client, MemtraceClient)
            m = client.remember("a", "blocking hello")
            assert client.get_memory(m.id) == m
            assert next(iter(client.iter_export())).startswith('{"kind":"memory"')
            with pytest.raises(DuplicateMemoryError):
                client.remember("a", "blocking hello")
            with pytest.raises(MemtraceError):
                client.with_org("org_x")
        with connect(db_url) as local:
            assert local.get_memory(m.id).content == "blocking hello"
    with connect("http://127.0.0.1:9", api_key="k", timeout=2) as dead:
        from memtrace_core import TransportError

        with pytest.raises(TransportError):
            dead.list_agents()
