"""A real ``langchain.agents.create_agent`` driven by a fake chat model that calls the memtrace
tools in a loop, with the agent and session in a ``context_schema`` dataclass — sync and async,
on both transports. The fake model records what it received, so the tests assert on the tool
results the model saw, not only on what was stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import RecordingChatModel

from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_langchain.tools import memtrace_tools


@dataclass
class Ctx:
    agent_id: str
    session_id: str | None = None


def tool_call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def script() -> list[AIMessage]:
    """remember two facts and decide, then recall and search, then answer."""
    return [
        AIMessage(
            content="",
            tool_calls=[
                tool_call("remember", {"content": "Alice's favourite colour is teal"}, "c1"),
                tool_call(
                    "remember",
                    {"content": "Alice works night shifts", "event_type": "user_fact"},
                    "c2",
                ),
                tool_call(
                    "decide",
                    {"decision": "Contact Alice after 8pm", "reasoning": "night shifts"},
                    "c3",
                ),
            ],
        ),
        AIMessage(
            content="",
            tool_calls=[
                tool_call("recall", {"since": "1h"}, "c4"),
                tool_call("search", {"query": "favourite colour"}, "c5"),
                tool_call("recall", {"since": "a while"}, "c6"),  # a bad argument
            ],
        ),
        AIMessage(content="Alice likes teal; contact her after 8pm."),
    ]


def tool_results(model: RecordingChatModel) -> dict[str, ToolMessage]:
    """The tool messages the model received, by tool call id."""
    last = model.received[-1]
    return {m.tool_call_id: m for m in last if isinstance(m, ToolMessage)}


def check_run(model: RecordingChatModel, out: dict[str, Any], handle_memories: list[Any]) -> None:
    assert out["messages"][-1].content == "Alice likes teal; contact her after 8pm."
    assert len(model.received) == 3  # three model calls: the tool loop ran twice
    results = tool_results(model)
    assert set(results) == {"c1", "c2", "c3", "c4", "c5", "c6"}
    assert results["c1"].content.startswith("Remembered as mem_")
    assert results["c3"].content.startswith("Decision recorded as mem_")
    recalled = str(results["c4"].content)
    assert recalled.startswith("3 memories since 1h")
    assert "Alice's favourite colour is teal" in recalled
    assert "Contact Alice after 8pm — reasoning: night shifts" in recalled
    assert "episodic/user_fact (session run-7)" in recalled
    searched = str(results["c5"].content)
    assert searched.splitlines()[1].endswith("Alice's favourite colour is teal")
    assert results["c6"].status == "error"
    assert "argument since" in results["c6"].content
    # what the engine holds: the context's agent and session, not the factory's defaults
    assert sorted(m.content for m in handle_memories) == [
        "Alice works night shifts",
        "Alice's favourite colour is teal",
        "Contact Alice after 8pm",
    ]
    assert {(m.agent_id, m.session_id) for m in handle_memories} == {("alice-bot", "run-7")}


def test_agent_calls_the_tools_in_a_loop_with_context_from_the_run(handle: MemoryAPI) -> None:
    model = RecordingChatModel(messages=iter(script()))
    agent = create_agent(
        model,
        memtrace_tools(handle, agent_id="default-bot", session_id="default-session"),
        context_schema=Ctx,
        checkpointer=InMemorySaver(),
    )
    out = agent.invoke(
        {"messages": [HumanMessage("What do you know about Alice?")]},
        config={"configurable": {"thread_id": "t1"}},
        context=Ctx(agent_id="alice-bot", session_id="run-7"),
    )
    check_run(model, out, handle.recall("alice-bot").memories)
    assert handle.recall("default-bot").count == 0


async def test_agent_ainvoke_on_an_async_handle(async_handle: AsyncMemoryAPI) -> None:
    model = RecordingChatModel(messages=iter(script()))
    agent = create_agent(model, memtrace_tools(async_handle), context_schema=Ctx)
    out = await agent.ainvoke(
        {"messages": [HumanMessage("What do you know about Alice?")]},
        context=Ctx(agent_id="alice-bot", session_id="run-7"),
    )
    check_run(model, out, (await async_handle.recall("alice-bot")).memories)


async def test_agent_ainvoke_on_a_blocking_handle(handle: MemoryAPI) -> None:
    model = RecordingChatModel(messages=iter(script()))
    agent = create_agent(model, memtrace_tools(handle, agent_id="alice-bot"), context_schema=Ctx)
    out = await agent.ainvoke(
        {"messages": [HumanMessage("What do you know about Alice?")]},
        context=Ctx(agent_id="alice-bot", session_id="run-7"),
    )
    check_run(model, out, handle.recall("alice-bot").memories)


def test_agent_forgets_and_sees_session_context_and_duplicates(handle: MemoryAPI) -> None:
    wrong = handle.remember("alice-bot", "Alice lives in Oslo", session_id="run-8")
    theirs = handle.remember("bob-bot", "Bob lives in Rome", session_id="run-8")
    model = RecordingChatModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        tool_call("forget", {"memory_id": wrong.id}, "f1"),
                        tool_call("forget", {"memory_id": theirs.id}, "f2"),
                        tool_call("remember", {"content": "Alice lives in Bergen"}, "f3"),
                    ],
                ),
                AIMessage(
                    content="",
                    tool_calls=[
                        tool_call("remember", {"content": "Alice lives in Bergen"}, "f4"),
                        tool_call("session_context", {}, "f5"),
                    ],
                ),
                AIMessage(content="Updated."),
            ]
        )
    )
    agent = create_agent(model, memtrace_tools(handle), context_schema=Ctx)
    agent.invoke(
        {"messages": [HumanMessage("Alice moved to Bergen")]},
        context=Ctx(agent_id="alice-bot", session_id="run-8"),
    )
    results = tool_results(model)
    assert results["f1"].content == f"Forgot {wrong.id}: Alice lives in Oslo"
    assert results["f2"].status == "error"
    assert "another agent" in results["f2"].content
    new_id = str(results["f3"].content).split()[2]
    assert results["f4"].content.startswith(f"Already remembered as {new_id}")
    context = str(results["f5"].content)
    assert context.startswith("## Session Context (run-8)")
    assert "Alice lives in Bergen" in context
    assert "Oslo" not in context
    assert "Bob lives in Rome" in context  # the session's context: every agent's memories in it
    assert handle.get_memory(theirs.id).content == "Bob lives in Rome"
