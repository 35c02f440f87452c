"""memtrace's tools as CrewAI BaseTools: built from a MemtraceMemory or any memtrace target,
called directly (sync and async) and by an agent in a real kickoff; errors come back as the
tool's text, never as an exception that ends the crew. Both transports."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from crew_fakes import ScriptedLLM
from crewai import Agent, Crew, Task
from crewai.tools import BaseTool

from memtrace_core import connect
from memtrace_crewai import TOOL_NAMES, MemtraceMemory, memtrace_tools


def _by_name(tools: list[BaseTool]) -> dict[str, BaseTool]:
    return {t.name: t for t in tools}


def test_the_six_tools_over_a_memory(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    memory = MemtraceMemory(url, **options)
    tools = memtrace_tools(memory, agent_role="Senior Researcher")
    assert (
        [t.name for t in tools]
        == list(TOOL_NAMES)
        == [
            "memtrace_remember",
            "memtrace_recall",
            "memtrace_search",
            "memtrace_decide",
            "memtrace_session_context",
            "memtrace_forget",
        ]
    )
    t = _by_name(tools)
    assert "memtrace_recall" in t["memtrace_forget"].description
    out = t["memtrace_remember"].run(content="The API key rotates every 90 days", tags=["security"])
    assert out.startswith("Remembered as mem_")
    memory_id = out.split()[2]
    again = t["memtrace_remember"].run(
        content="The API key rotates every 90 days", tags=["security"]
    )
    assert again.startswith("Already remembered as " + memory_id)
    assert "Decision recorded as mem_" in t["memtrace_decide"].run(
        decision="Rotate keys monthly", reasoning="an audit asked for it"
    )
    recalled = t["memtrace_recall"].run()
    assert "2 memories since 24h" in recalled
    assert "The API key rotates every 90 days" in recalled
    found = t["memtrace_search"].run(query="api key rotation")
    assert f"[{memory_id}]" in found.splitlines()[1]
    context = t["memtrace_session_context"].run()
    assert memory.session_id in context
    assert "Rotate keys monthly" in context
    # the memories are the role's agent's, in the memory's session
    stored = memory.handle.sync.get_memory(memory_id)
    assert stored.agent_id == "senior-researcher"
    assert stored.session_id == memory.session_id
    assert t["memtrace_forget"].run(memory_id=memory_id).startswith(f"Forgot {memory_id}")


def test_errors_are_tool_results(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    mt = connect(url, **options)
    try:
        other = mt.remember("someone-else", "not yours")
        t = _by_name(memtrace_tools(url, agent_id="bot", api_key=options.get("api_key")))
        bad = t["memtrace_remember"].run(content="x", tags=["not a tag!"])
        assert bad.startswith("memtrace_remember failed: invalid input")
        refused = t["memtrace_forget"].run(memory_id=other.id)
        assert "belongs to another agent" in refused
        assert mt.get_memory(other.id).content == "not yours"
        unknown = t["memtrace_forget"].run(memory_id="mem_01JZZZZZZZZZZZZZZZZZZZZZZZ")
        assert "no memory" in unknown
        with pytest.raises(ValueError, match="arguments validation failed"):
            t["memtrace_search"].run(limit=3)  # query is required: CrewAI's own validation
    finally:
        mt.close()


def test_async_tools(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    t = _by_name(memtrace_tools(url, agent_id="async-bot", api_key=options.get("api_key")))

    async def run() -> tuple[str, str]:
        saved = await t["memtrace_remember"].arun(content="async facts are stored too")
        found = await t["memtrace_search"].arun(query="async facts")
        return saved, found

    saved, found = asyncio.run(run())
    assert saved.startswith("Remembered as mem_")
    assert "async facts are stored too" in found


def test_an_agent_uses_the_tools_in_a_kickoff(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    memory = MemtraceMemory(url, **options)
    llm = ScriptedLLM(
        [
            "Thought: store it\nAction: memtrace_remember\nAction Input: "
            + json.dumps({"content": "The standup moved to 9:30", "event_type": "schedule"}),
            "Thought: look it up\nAction: memtrace_search\nAction Input: "
            + json.dumps({"query": "standup"}),
            lambda prompt: "9:30" if "The standup moved to 9:30" in prompt else "unknown",
        ]
    )
    agent = Agent(
        role="Assistant",
        goal="g",
        backstory="b",
        llm=llm,
        tools=memtrace_tools(memory, agent_role="Assistant"),
    )
    task = Task(description="When is the standup?", expected_output="a time", agent=agent)
    assert str(Crew(agents=[agent], tasks=[task]).kickoff()) == "9:30"
    assert "Remembered as mem_" in llm.prompts[1]
    stored = memory.handle.sync.recall("assistant").memories
    assert [(m.content, m.event_type) for m in stored] == [
        ("The standup moved to 9:30", "schedule")
    ]
    # written at the memory's scope root: the crew's own recall finds it
    assert [m.record.content for m in memory.recall("standup")] == ["The standup moved to 9:30"]


def test_building_the_tools_checks_its_arguments(db_url: str) -> None:
    assert [
        t.name for t in memtrace_tools(db_url, agent_id="a", include=["search", "memtrace_recall"])
    ] == [
        "memtrace_recall",
        "memtrace_search",
    ]
    with pytest.raises(ValueError, match="unknown memtrace tool"):
        memtrace_tools(db_url, agent_id="a", include=["nope"])
    with pytest.raises(ValueError, match="needs the agent"):
        memtrace_tools(db_url)
    with pytest.raises(TypeError, match="not both"):
        memtrace_tools(db_url, agent_id="a", agent_role="b")
    memory = MemtraceMemory(db_url, agent_id="crew-default")
    assert {t.agent_id for t in memtrace_tools(memory)} == {"crew-default"}  # type: ignore[attr-defined]


def test_the_tools_never_show_private_records(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    memory = MemtraceMemory(url, agent_id="team", **options)
    memory.remember("Alice's medical condition is asthma", source="alice", private=True)
    memory.remember("The team offsite is in May")
    t = _by_name(memtrace_tools(memory))
    found = t["memtrace_search"].run(query="asthma offsite May")
    assert "The team offsite is in May" in found
    assert "Alice" not in found
    recalled = t["memtrace_recall"].run()
    assert "The team offsite is in May" in recalled
    assert "Alice" not in recalled
    assert "1 memory since 24h" in recalled


def test_forget_by_the_tool_removes_every_version(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    memory = MemtraceMemory(url, agent_id="keeper", **options)
    t = _by_name(memtrace_tools(memory))
    saved = t["memtrace_remember"].run(content="The wifi password is hunter2")
    memory_id = saved.split()[2]
    (record,) = memory.list_records()
    memory.update(record.id, content="The wifi password is correcthorse")
    (current,) = memory.handle.sync.search_memories(query="wifi", agent_id="keeper").results
    assert t["memtrace_forget"].run(memory_id=current.id).startswith(f"Forgot {current.id}")
    assert memory.list_records() == []
    assert "No memories" in t["memtrace_recall"].run()
    assert memory_id != current.id
