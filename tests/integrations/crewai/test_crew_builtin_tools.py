"""CrewAI's own memory tools — "Save to memory" and "Search memory", which CrewAI adds to every
agent of a crew with memory — work on MemtraceMemory: an agent saves a fact with one, a later
agent finds it with the other (scripted ReAct turns), both transports."""

from __future__ import annotations

import json
from typing import Any

from crew_fakes import ForbiddenEmbedder, ForbiddenLLM, ScriptedLLM
from crewai import Agent, Crew, Task

from memtrace_crewai import MemtraceMemory


def _action(tool: str, args: dict[str, Any]) -> str:
    return f"Thought: I should use a tool.\nAction: {tool}\nAction Input: {json.dumps(args)}"


def test_save_to_memory_and_search_memory_tools(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    memory = MemtraceMemory(url, llm=ForbiddenLLM(), embedder=ForbiddenEmbedder(), **options)
    llm = ScriptedLLM(
        [
            _action("save_to_memory", {"contents": ["The vault code is 4711"]}),
            "Saved.",
            _action("search_memory", {"queries": ["vault code"]}),
            lambda prompt: "4711" if "The vault code is 4711" in prompt else "unknown",
        ]
    )
    keeper = Agent(role="Keeper", goal="g", backstory="b", llm=llm)
    asker = Agent(role="Asker", goal="g", backstory="b", llm=llm)
    result = Crew(
        agents=[keeper, asker],
        tasks=[
            Task(description="Store the secret", expected_output="ok", agent=keeper),
            Task(description="Tell the secret", expected_output="the code", agent=asker),
        ],
        memory=memory,
    ).kickoff()
    assert str(result) == "4711"
    # the tool's observation carried the saved memory into the asker's prompt
    observation = llm.prompts[3]
    assert "Found memories:" in observation
    assert "The vault code is 4711" in observation
    saved = [r for r in memory.list_records() if r.content == "The vault code is 4711"]
    assert len(saved) == 1
    assert saved[0].scope == "/"
    # the save tool's reply used the record CrewAI gets back
    assert "Saved to memory (scope=/, importance=0.5)" in llm.prompts[1]
