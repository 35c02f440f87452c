"""The invariant of issue 7 over the engine, property-based: whatever the engine accepts is
readable by every read path and deletable; whatever it refuses is a ValidationError whose
message can be sent, and nothing of it is stored. Inputs: tests/invariants.py. The example
count follows the hypothesis profile (tests/conftest.py: ``MEMTRACE_EXHAUSTIVE=1`` for many
more)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from invariants import agent_inputs, event_time, memory_inputs, session_inputs, substring_needle
from memtrace_core import AsyncMemtrace, DuplicateMemoryError, NotFoundError, ValidationError
from memtrace_core.ids import memory_id
from memtrace_core.models import Memory

_orgs = itertools.count()


def fresh_org(engine: AsyncMemtrace) -> AsyncMemtrace:
    return engine.with_org(f"org_{next(_orgs)}")


def sendable(err: ValidationError) -> None:
    json.dumps(err.to_dict(), ensure_ascii=False).encode("utf-8")
    assert err.field


def same(a: Memory, b: Memory) -> None:
    assert a.model_dump(exclude={"score"}) == b.model_dump(exclude={"score"})


async def export_lines(mt: AsyncMemtrace) -> list[str]:
    return [line async for line in mt.iter_export()]


async def check_memory_everywhere(mt: AsyncMemtrace, stored: Memory) -> None:
    same(await mt.get_memory(stored.id), stored)
    everything = await mt.list_memories(limit=1000, since="0001-01-01T00:00:00Z")
    assert stored.id in {m.id for m in everything.memories}
    by_agent = await mt.list_memories(agent_id=stored.agent_id, order="asc", limit=1000)
    assert stored.id in {m.id for m in by_agent.memories}
    if stored.session_id:
        in_session = await mt.get_session_memories(stored.session_id, since="0001-01-01")
        assert stored.id in {m.id for m in in_session.memories}
        for fmt in ("markdown", "xml", "jsonl"):
            ctx = await mt.get_session_context(stored.session_id, format=fmt, since="0001-01-01")
            ctx.context.encode("utf-8")
    for fmt in ("markdown", "xml", "jsonl"):
        ctx = await mt.get_agent_context(stored.agent_id, format=fmt, since="0001-01-01")
        ctx.context.encode("utf-8")
    needle = substring_needle(stored.content)
    if needle is not None:
        found = await mt.search_memories(content_contains=needle, limit=1000)
        assert stored.id in {m.id for m in found.results}, needle
    ranked = await mt.search_memories(query=stored.content[:200] or "x", limit=20)
    assert {m.org_id for m in ranked.results} <= {mt.org_id}
    stats = await mt.get_agent_stats(stored.agent_id)
    assert stats.memory_count >= 1
    lines = await export_lines(mt)
    assert any(f'"id":"{stored.id}"' in line for line in lines)
    copy = mt.with_org(mt.org_id + "_copy")
    await copy.import_jsonl(lines)
    same(
        await copy.get_memory(stored.id),
        stored.model_copy(update={"org_id": copy.org_id}),
    )
    await copy.purge_org()
    await mt.delete_memory(stored.id)
    with pytest.raises(NotFoundError):
        await mt.get_memory(stored.id)
    if needle is not None:
        found = await mt.search_memories(content_contains=needle, limit=1000)
        assert stored.id not in {m.id for m in found.results}


@given(
    items=memory_inputs().map(lambda x: [x])
    | memory_inputs().flatmap(lambda x: memory_inputs().map(lambda y: [x, y]))
)
async def test_accepted_memories_are_readable_everywhere(
    engine: AsyncMemtrace, items: list[dict[str, Any]]
) -> None:
    mt = fresh_org(engine)
    batch = len(items) > 1
    try:
        if batch:
            result = await mt.add_memories(items)
            stored = result.memories
        else:
            stored = [await mt.add_memory(items[0])]
    except ValidationError as err:
        event(f"refused: {err.field}")
        sendable(err)
        assert (await mt.list_memories(since="0001-01-01T00:00:00Z")).count == 0
        assert not any('"kind":"memory"' in line for line in await export_lines(mt))
        return
    except DuplicateMemoryError:  # the generated dedup_key repeats one of this org's
        return
    event("accepted")
    for memory in stored:
        await check_memory_everywhere(mt, memory)


@given(agent=agent_inputs(), session=session_inputs(), patch=session_inputs())
async def test_accepted_agents_and_sessions_are_readable_everywhere(
    engine: AsyncMemtrace,
    agent: dict[str, Any],
    session: dict[str, Any],
    patch: dict[str, Any],
) -> None:
    mt = fresh_org(engine)
    try:
        registered = await mt.register_agent(agent)
    except ValidationError as err:
        sendable(err)
        assert (await mt.list_agents()).count == 0
    else:
        assert (await mt.get_agent(registered.id)) == registered
        assert (await mt.get_agent(registered.name)) == registered
        assert [a.id for a in (await mt.list_agents()).agents] == [registered.id]
        await mt.get_agent_stats(registered.id)
    try:
        opened = await mt.create_session(session)
    except ValidationError as err:
        sendable(err)
        assert (await mt.list_sessions()).count == 0
    else:
        assert (await mt.get_session(opened.id)) == opened
        assert [s.id for s in (await mt.list_sessions()).sessions] == [opened.id]
        try:
            updated = await mt.update_session(opened.id, metadata=patch.get("metadata") or {})
        except ValidationError as err:
            sendable(err)
            assert (await mt.get_session(opened.id)) == opened
        else:
            assert (await mt.get_session(opened.id)) == updated
        await mt.get_session_context(opened.id)
    lines = await export_lines(mt)
    copy = mt.with_org(mt.org_id + "_copy")
    await copy.import_jsonl(lines)
    assert [a.name for a in (await copy.list_agents()).agents] == [
        a.name for a in (await mt.list_agents()).agents
    ]
    assert [s.metadata for s in (await copy.list_sessions()).sessions] == [
        s.metadata for s in (await mt.list_sessions()).sessions
    ]
    await copy.purge_org()
    await mt.purge_org()
    assert (await mt.list_agents()).count == 0


@given(
    item=memory_inputs(),
    when=st.one_of(event_time, st.none()),
    recorded=st.one_of(event_time, st.none()),
)
async def test_accepted_imports_are_readable_everywhere(
    engine: AsyncMemtrace, item: dict[str, Any], when: str | None, recorded: str | None
) -> None:
    """Imports keep the export's times, so they reach the whole calendar (a new write may
    not be in the future): whatever an import accepts is readable everywhere too."""
    mt = fresh_org(engine)
    line: dict[str, Any] = {"kind": "memory", "id": memory_id(), **item}
    line["time"] = when if when is not None else item.get("time", "2026-01-01T00:00:00Z")
    if recorded is not None:
        line["recorded_at"] = recorded
    text = json.dumps(line, ensure_ascii=False)
    try:
        await mt.import_jsonl([text], require_trailer=False)
    except ValidationError as err:
        event(f"refused: {err.field}")
        sendable(err)
        assert (await mt.list_memories(since="0001-01-01T00:00:00Z")).count == 0
        return
    event("accepted")
    await check_memory_everywhere(mt, await mt.get_memory(line["id"]))
