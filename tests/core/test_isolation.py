"""Tenant isolation (property): nothing of org B is ever visible to, or deletable by, org A."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace_core import AsyncMemtrace, Memtrace, NotFoundError, PluginRegistry, connect
from memtrace_core.stores.base import MemoryFilter

AGENTS = ["alpha", "beta", "gamma"]
SESSIONS = ["sess_one", "sess_two"]
WORDS = ["deploy", "rollback", "invoice", "customer", "timeout", "crawler", "pricing"]
TAGS = ["prod", "eu", "urgent"]

memory = st.fixed_dictionaries(
    {
        "agent_id": st.sampled_from(AGENTS),
        "session_id": st.sampled_from([None, *SESSIONS]),
        "memory_type": st.sampled_from(["episodic", "decision", "entity", "session"]),
        "event_type": st.sampled_from(["general", "error", "note"]),
        "content": st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
        "tags": st.none() | st.lists(st.sampled_from(TAGS), min_size=1, max_size=2, unique=True),
        "importance": st.none() | st.sampled_from([0.1, 0.5, 0.9]),
    }
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Memtrace]:
    path: Path = tmp_path_factory.mktemp("isolation") / "iso.db"
    handle = connect(f"sqlite:///{path}", plugins=PluginRegistry(load_entry_points=False))
    yield handle
    handle.close()


def _write(org: Memtrace, items: list[dict[str, object]]) -> set[str]:
    result = org.add_memories(items)
    return {m.id for m in result.memories}


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    a_items=st.lists(memory, max_size=8),
    b_items=st.lists(memory, min_size=1, max_size=8),
    register_in_b=st.sampled_from(AGENTS),
    delete_agent=st.sampled_from(AGENTS),
)
def test_org_b_is_invisible_to_org_a(
    shared: Memtrace,
    a_items: list[dict[str, object]],
    b_items: list[dict[str, object]],
    register_in_b: str,
    delete_agent: str,
) -> None:
    suffix = uuid.uuid4().hex[:12]
    org_a = shared.with_org(f"org_a_{suffix}")
    org_b = shared.with_org(f"org_b_{suffix}")
    a_ids = _write(org_a, a_items)
    # B writes the same agents, sessions and texts: dedup must not cross orgs either.
    b_ids = _write(org_b, b_items + a_items)
    b_unique = {(i["agent_id"], i["event_type"], i["content"]) for i in b_items + a_items}
    assert len(b_ids) == len(b_unique)
    b_agent = org_b.register_agent(name=register_in_b)
    b_session = org_b.create_session(agent_id=register_in_b)
    org_b.remember(b_agent.id, "written under the B agent id", session_id=b_session.id)
    b_ids = {m.id for m in org_b.list_memories(limit=1000).memories}

    def visible(ids: set[str]) -> None:
        assert ids <= a_ids
        assert not ids & b_ids

    listed = org_a.list_memories(limit=1000)
    assert {m.id for m in listed.memories} == a_ids
    assert all(m.org_id == org_a.org_id for m in listed.memories)
    for agent in AGENTS:
        visible({m.id for m in org_a.list_memories(agent_id=agent, limit=1000).memories})
        visible({m.id for m in org_a.get_agent_memories(agent, since="1h").memories})
        stats = org_a.get_agent_stats(agent)
        expected = Counter(
            (i["agent_id"], i["event_type"], i["content"])
            for i in a_items
            if i["agent_id"] == agent
        )
        assert stats.memory_count == len(expected)
        assert stats.session_count == 0
        try:
            ctx = org_a.get_agent_context(agent, format="jsonl")
        except NotFoundError:  # org A has neither a memory of the agent nor the agent itself
            assert stats.memory_count == 0
        else:
            assert ctx.memory_count == stats.memory_count
    for session in [*SESSIONS, b_session.id]:
        visible({m.id for m in org_a.list_memories(session_id=session, limit=1000).memories})
        try:
            ctx = org_a.get_session_context(session, format="jsonl")
        except NotFoundError:
            assert not any(m.session_id == session for m in listed.memories)
        else:
            assert ctx.memory_count == len(
                org_a.list_memories(session_id=session, since="24h").memories
            )
    for tag in TAGS:
        visible({m.id for m in org_a.list_memories(tags=[tag], limit=1000).memories})
    for word in [*WORDS, "written"]:
        visible({m.id for m in org_a.search_memories(query=word, limit=1000).results})
        visible({m.id for m in org_a.search_memories(content_contains=word, limit=1000).results})
    visible(
        {
            m.id
            for m in org_a.search_memories(
                memory_types=["episodic", "decision", "entity", "session"],
                min_importance=0.1,
                limit=1000,
            ).results
        }
    )
    for mem_id in b_ids:
        with pytest.raises(NotFoundError):
            org_a.get_memory(mem_id)
        with pytest.raises(NotFoundError):
            org_a.delete_memory(mem_id)
    with pytest.raises(NotFoundError):
        org_a.get_agent(b_agent.id)
    with pytest.raises(NotFoundError):
        org_a.get_agent(register_in_b)
    with pytest.raises(NotFoundError):
        org_a.get_session(b_session.id)
    with pytest.raises(NotFoundError):
        org_a.get_session_context(b_session.id)
    assert org_a.list_agents().count == 0
    assert org_a.list_sessions().count == 0
    *exported, trailer = [json.loads(line) for line in org_a.iter_export()]
    assert {e["id"] for e in exported} == a_ids
    assert all(e["kind"] == "memory" for e in exported)
    assert (trailer["memories"], trailer["agents"], trailer["sessions"]) == (len(a_ids), 0, 0)

    # Deleting in A never removes B's memories.
    org_a.delete_memories(agent_id=delete_agent)
    org_a.delete_memories(session_id=SESSIONS[0])
    org_a.delete_memories(tags=["prod"])
    org_a.delete_memories(all_memories=True)
    org_a.purge_org()
    assert org_a.list_memories().count == 0
    assert {m.id for m in org_b.list_memories(limit=1000).memories} == b_ids
    assert org_b.get_agent(register_in_b).id == b_agent.id
    assert org_b.get_session(b_session.id).id == b_session.id


async def test_the_store_refuses_records_of_another_org(engine: AsyncMemtrace) -> None:
    """The org is an argument of every store write and a record's own org is not trusted:
    a record of org B handed to a call for org A is refused, and nothing is written."""
    from memtrace_core.ids import memory_id, random_id
    from memtrace_core.models import Agent, Session
    from memtrace_core.stores.base import MemoryRecord
    from memtrace_core.timeutil import from_us, now_us

    store = engine.store
    now = now_us()
    record = MemoryRecord(
        id=memory_id(), org_id="org_b", agent_id="a", session_id=None, memory_type="episodic",
        event_type="general", content="x", metadata=None, tags=None, dedup_key=None,
        importance=None, parent_id=None, time=now, recorded_at=now,
    )  # fmt: skip
    with pytest.raises(ValueError, match="org_b"):
        await store.insert_memories("org_a", [record], dedup_since=None, now=now)
    with pytest.raises(ValueError, match="org_b"):
        await store.import_memories("org_a", [record])
    agent = Agent(id=random_id("agent"), org_id="org_b", name="n", created_at=from_us(now))
    with pytest.raises(ValueError, match="org_b"):
        await store.create_agent("org_a", agent)
    session = Session(
        id=random_id("sess"), org_id="org_b", agent_id="a", status="active",
        created_at=from_us(now), updated_at=from_us(now),
    )  # fmt: skip
    with pytest.raises(ValueError, match="org_b"):
        await store.create_session("org_a", session)
    for org in ("org_a", "org_b"):
        assert await store.count_memories(org, MemoryFilter()) == 0
        assert await store.list_agents(org) == []
