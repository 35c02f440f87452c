"""``Crew(..., memory=MemtraceMemory(...)).kickoff()`` for real, driven by a scripted LLM, over
the embedded engine and over a live memtrace server: what the first task's agent stored is
recalled into the second task's prompt, nothing on the memory path calls an LLM or an
embedder, the crew's run is one memtrace session, and a second crew in a new process recalls
it too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from crew_fakes import ForbiddenEmbedder, ForbiddenLLM, ScriptedLLM
from crewai import Agent, Crew, Task

from memtrace_core import connect
from memtrace_crewai import MemtraceMemory

HERE = Path(__file__).resolve().parent

RESEARCH = (
    "Research done.\n"
    "Findings:\n"
    "- The launch date of Project Falcon is March 3rd.\n"
    "- The Falcon budget is 2 million euros. The team lead is Dana Ruiz."
)


def _crew(memory: Any, llm: ScriptedLLM) -> Crew:
    researcher = Agent(role="Senior Researcher", goal="find facts", backstory="b", llm=llm)
    writer = Agent(role="Writer", goal="write", backstory="b", llm=llm)
    return Crew(
        agents=[researcher, writer],
        tasks=[
            Task(
                description="Collect the facts about Project Falcon",
                expected_output="facts",
                agent=researcher,
            ),
            Task(
                description="Who is the team lead of Project Falcon?",
                expected_output="a name",
                agent=writer,
            ),
        ],
        memory=memory,
    )


def test_a_crew_recalls_what_its_first_task_stored(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    llm = ScriptedLLM([RESEARCH, "The team lead is Dana Ruiz."])
    forbidden_llm, forbidden_embedder = ForbiddenLLM(), ForbiddenEmbedder()
    memory = MemtraceMemory(url, llm=forbidden_llm, embedder=forbidden_embedder, **options)
    result = _crew(memory, llm).kickoff()

    assert str(result) == "The team lead is Dana Ruiz."
    assert forbidden_llm.calls == 0
    assert forbidden_embedder.calls == 0
    # the second task's prompt carries the first task's facts, the asked one first
    second = llm.prompts[1]
    assert "Relevant memories:" in second
    memories = second.split("Relevant memories:\n", 1)[1]
    assert "Findings: The team lead is Dana Ruiz." in memories.splitlines()[0]
    assert "agent: Senior Researcher" in memories
    # stored as the agents that wrote them, facts split, in the crew's session
    mt = connect(url, **options)
    try:
        stored = mt.search_memories(namespace_prefix=["crewai"], limit=50).results
        by_agent = {m.agent_id for m in stored}
        assert by_agent == {"senior-researcher", "writer"}
        assert {m.session_id for m in stored} == {memory.session_id}
        contents = {m.content for m in stored if m.agent_id == "senior-researcher"}
        assert contents == {
            "Research done.",
            "Findings: The launch date of Project Falcon is March 3rd.",
            "Findings: The Falcon budget is 2 million euros.",
            "Findings: The team lead is Dana Ruiz.",
        }
        assert all(m.metadata and m.metadata["task"] for m in stored)
        assert all(m.event_type == "task_result" for m in stored)
    finally:
        mt.close()
    # the crew's history as markdown, from the session
    context = memory.session_context()
    assert f"Session Context ({memory.session_id})" in context
    assert "The team lead is Dana Ruiz." in context
    assert "March 3rd" in context


SECOND_CREW = """
import json, os, sys
from crew_fakes import ForbiddenEmbedder, ForbiddenLLM, ScriptedLLM
from crewai import Agent, Crew, Task
from memtrace_crewai import MemtraceMemory

url, options = sys.argv[1], json.loads(sys.argv[2])
llm = ScriptedLLM(["March 3rd."])
memory = MemtraceMemory(url, llm=ForbiddenLLM(), embedder=ForbiddenEmbedder(), **options)
agent = Agent(role="Planner", goal="plan", backstory="b", llm=llm)
task = Task(description="When is the launch date of Project Falcon?", expected_output="a date",
            agent=agent)
print(Crew(agents=[agent], tasks=[task], memory=memory).kickoff())
print("PROMPT-START")
print(llm.prompts[0])
print("SESSION", memory.session_id)
"""


def test_a_second_crew_in_a_new_process_recalls_it(handle_url: tuple[str, Any]) -> None:
    import json

    url, options = handle_url
    first = MemtraceMemory(url, llm=ForbiddenLLM(), embedder=ForbiddenEmbedder(), **options)
    _crew(first, ScriptedLLM([RESEARCH, "Dana Ruiz."])).kickoff()
    first.close()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SECOND_CREW), url, json.dumps(options)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("March 3rd.")
    prompt = out.split("PROMPT-START", 1)[1]
    assert "Relevant memories:" in prompt
    recalled = prompt.split("Relevant memories:\n", 1)[1]
    assert "Findings: The launch date of Project Falcon is March 3rd." in recalled.splitlines()[0]
    # a new memory, a new session
    assert f"SESSION {first.session_id}" not in out


def test_agent_memory_wins_over_crew_memory_and_both_share_the_store(
    handle_url: tuple[str, Any],
) -> None:
    url, options = handle_url
    crew_memory = MemtraceMemory(url, session_id="crew-run", **options)
    agent_memory = MemtraceMemory(url, session_id="agent-own", root_scope="/private", **options)
    llm = ScriptedLLM(["The sky is green on Kepler-22b.", "Green."])
    a1 = Agent(role="Observer", goal="g", backstory="b", llm=llm, memory=agent_memory)
    a2 = Agent(role="Reporter", goal="g", backstory="b", llm=llm)
    Crew(
        agents=[a1, a2],
        tasks=[
            Task(description="Observe Kepler-22b", expected_output="x", agent=a1),
            Task(
                description="What colour is the sky on Kepler-22b?", expected_output="x", agent=a2
            ),
        ],
        memory=crew_memory,
    ).kickoff()
    # the observer's memory went to its own memory (its root scope), in its own session
    records = agent_memory.list_records()
    assert [r.content for r in records] == ["The sky is green on Kepler-22b."]
    assert records[0].scope == "/private/agent/observer"
    assert agent_memory.session_context().count("Kepler-22b") == 1
    # the crew memory (root "/") sees everything under the root, the agent's scope included
    assert "The sky is green on Kepler-22b." in llm.prompts[1]
    assert {r.content for r in crew_memory.list_records()} >= {"The sky is green on Kepler-22b."}
