"""CrewAI copies crews and agents (``Crew.copy()``, ``kickoff_for_each``): a crew's
MemtraceMemory survives (CrewAI hands the instance over), ``copy.deepcopy`` is the memory
itself (it holds a connection, not data), and an agent-level memory that CrewAI rebuilds as its
stock ``Memory`` refuses to work — loudly, without reaching for OpenAI."""

from __future__ import annotations

import copy
import socket
from typing import Any

import pytest
from crew_fakes import ScriptedLLM
from crewai import Agent, Crew, Task

from memtrace_crewai import MemtraceMemory


def test_kickoff_for_each_keeps_the_crews_memory(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    memory = MemtraceMemory(url, **options)
    llm = ScriptedLLM(["Cats purr when content.", "Dogs wag when happy."])
    agent = Agent(role="Zoologist", goal="g", backstory="b", llm=llm)
    crew = Crew(
        agents=[agent],
        tasks=[Task(description="A fact about {animal}", expected_output="x", agent=agent)],
        memory=memory,
    )
    assert crew.copy()._memory is memory
    outputs = crew.kickoff_for_each(inputs=[{"animal": "cats"}, {"animal": "dogs"}])
    assert [str(o) for o in outputs] == ["Cats purr when content.", "Dogs wag when happy."]
    assert sorted(r.content for r in memory.list_records()) == [
        "Cats purr when content.",
        "Dogs wag when happy.",
    ]
    assert copy.deepcopy(memory) is memory
    assert copy.copy(memory) is memory


def test_an_agent_memory_rebuilt_by_agent_copy_refuses_without_network(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key")
    connects: list[Any] = []

    def no_connect(self: socket.socket, address: Any) -> None:
        connects.append(address)
        raise AssertionError(f"connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    memory = MemtraceMemory(db_url)
    agent = Agent(role="Solo", goal="g", backstory="b", llm=ScriptedLLM([]), memory=memory)
    rebuilt = agent.copy().memory
    assert type(rebuilt).__name__ == "Memory"  # CrewAI's copy, not ours
    with pytest.raises(RuntimeError, match=r"Crew\(memory=\.\.\.\)"):
        rebuilt.recall("anything", depth="shallow")
    with pytest.raises(RuntimeError, match="no-llm-on-the-memory-path"):
        rebuilt.extract_memories("Task: t\nAgent: a\nExpected result: e\nResult: r")
    assert connects == []
