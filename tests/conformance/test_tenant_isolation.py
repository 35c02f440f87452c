"""Tenant isolation on every store, as a property: random writes into two orgs of one store
(same agents, words, tags, namespaces; sometimes the very same memory ids, through an
import), then every read of org A — list, keyword and substring search, tag filters, get by
id, session and agent context, stats, summary, namespaces, export — returns exactly org A's
memories and never one of org B's, and deletes and the purge in A never change B.

The store is opened once per test; each example writes into two orgs of its own."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace_core import AsyncMemtrace, NotFoundError

WORDS = ("deploy", "billing", "outage", "kafka", "rollback", "invoice")
AGENTS = ("ops", "support")
TAGS = ("red", "blue")

write = st.tuples(
    st.sampled_from("ab"),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    st.sampled_from(AGENTS),
    st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
    st.booleans(),  # in the org's session
)


async def _snapshot(org: AsyncMemtrace) -> dict[str, Any]:
    """What org B looks like through every read (compared before and after A's deletes)."""
    listed = await org.list_memories(limit=1000)
    return {
        "ids": sorted(m.id for m in listed.memories),
        "summary": (await org.summarize_memories()).model_dump(),
        "namespaces": (await org.list_namespaces()).model_dump(),
        "export": [line async for line in org.iter_export()],
        "stats": [(await org.get_agent_stats(a)).memory_count for a in AGENTS],
        "found": [[m.id for m in (await org.search_memories(query=w)).results] for w in WORDS],
    }


@settings(max_examples=25)
@given(writes=st.lists(write, min_size=1, max_size=12), share_ids=st.booleans())
async def test_no_read_of_one_org_sees_the_other(
    engine: AsyncMemtrace,
    writes: list[tuple[str, list[str], str, list[str], bool]],
    share_ids: bool,
) -> None:
    run = uuid.uuid4().hex[:8]
    orgs = {"a": engine.with_org(f"org_a{run}"), "b": engine.with_org(f"org_b{run}")}
    sessions = {k: await o.create_session(agent_id=AGENTS[0]) for k, o in orgs.items()}
    mine: dict[str, dict[str, dict[str, Any]]] = {"a": {}, "b": {}}  # org → id → what was written
    for n, (org, words, agent, tags, in_session) in enumerate(writes):
        content = f"{' '.join(words)} {org}mark{n}"
        m = await orgs[org].add_memory(
            agent_id=agent,
            content=content,
            tags=tags or None,
            namespace=["shared", agent],
            session_id=sessions[org].id if in_session else None,
        )
        assert m.org_id == orgs[org].org_id
        mine[org][m.id] = {"content": content, "agent": agent, "tags": tags, "s": in_session}
    if share_ids and mine["a"]:
        # org b also holds org a's memories, with the same ids (an export imported)
        lines = [line async for line in orgs["a"].iter_export()]
        lines = [x for x in lines if json.loads(x)["kind"] in ("memory", "trailer")]
        trailer = {**json.loads(lines[-1]), "agents": 0, "sessions": 0}
        lines[-1] = json.dumps(trailer)
        lines = [x.replace('"session_id":', '"x_session":') for x in lines]
        lines = [
            json.dumps({k: v for k, v in json.loads(x).items() if k != "x_session"}) for x in lines
        ]
        assert (await orgs["b"].import_jsonl(lines)).imported == len(mine["a"])
        for mid, spec in mine["a"].items():
            mine["b"][mid] = {**spec, "s": False}
    a, b = orgs["a"], orgs["b"]
    ours, theirs = mine["a"], mine["b"]
    only_theirs = set(theirs) - set(ours)

    def exact(results: list[Any], pick: Any) -> None:
        assert {m.org_id for m in results} <= {a.org_id}
        assert "bmark" not in " ".join(m.content for m in results)
        assert sorted(m.id for m in results) == sorted(i for i, w in ours.items() if pick(w))

    exact((await a.list_memories(limit=1000)).memories, lambda w: True)
    for word in WORDS:
        # keyword search: every memory with the word, and (pseudo-relevance feedback) maybe
        # related ones, all of org a
        found = (await a.search_memories(query=word, limit=1000)).results
        assert {m.org_id for m in found} <= {a.org_id}
        assert (
            {i for i, w in ours.items() if word in w["content"].split()}
            <= {m.id for m in found}
            <= set(ours)
        )
        sub = (await a.search_memories(content_contains=word[1:5], limit=1000)).results
        exact(sub, lambda w, word=word: word[1:5] in w["content"])
    for tag in TAGS:
        exact(
            (await a.list_memories(tags=[tag], limit=1000)).memories,
            lambda w, t=tag: t in w["tags"],
        )
        tagged = (await a.search_memories(tags_any=[tag], limit=1000)).results
        exact(tagged, lambda w, t=tag: t in w["tags"])
    for mid in only_theirs:
        with pytest.raises(NotFoundError):
            await a.get_memory(mid)
    for mid in ours:
        assert (await a.get_memory(mid)).org_id == a.org_id
    with pytest.raises(NotFoundError):
        await a.get_session(sessions["b"].id)
    with pytest.raises(NotFoundError):
        await a.get_session_context(sessions["b"].id)
    ctx = await a.get_session_context(sessions["a"].id, max_tokens=100_000)
    assert ctx.memory_count == sum(w["s"] for w in ours.values())
    assert "bmark" not in ctx.context
    for agent in AGENTS:
        count = sum(w["agent"] == agent for w in ours.values())
        assert (await a.get_agent_stats(agent)).memory_count == count
        if count:
            agent_ctx = await a.get_agent_context(agent, max_tokens=100_000)
            assert agent_ctx.memory_count == count
            assert "bmark" not in agent_ctx.context
    assert (await a.summarize_memories()).count == len(ours)
    spaces = (await a.list_namespaces()).model_dump()
    assert sorted(map(tuple, spaces["namespaces"])) == sorted(
        {("shared", w["agent"]) for w in ours.values()}
    )
    exported = [json.loads(line) async for line in a.iter_export()]
    assert sorted(o["id"] for o in exported if o["kind"] == "memory") == sorted(ours)
    assert [o["id"] for o in exported if o["kind"] == "session"] == [sessions["a"].id]

    # deletes in a never change b
    before = await _snapshot(b)
    assert before["ids"] == sorted(theirs)
    tag = TAGS[0]
    assert await a.delete_memories(tags=[tag]) == sum(tag in w["tags"] for w in ours.values())
    for mid in only_theirs:
        with pytest.raises(NotFoundError):
            await a.delete_memory(mid)
    assert (
        await a.delete_memories(ids=sorted(only_theirs)[:5] or ["mem_01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        == 0
    )
    await a.delete_session(sessions["a"].id, delete_memories=True)
    assert await _snapshot(b) == before
    await a.purge_org()
    assert (await a.list_memories()).count == 0
    assert await _snapshot(b) == before
