"""MemtraceStore inside a real ``create_agent`` run: tools reach it through
``ToolRuntime.store`` (sync and async tools), on both transports; what the agent stored is
an ordinary memtrace memory and a second agent over a new store sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain.agents import create_agent
from langchain.tools import ToolRuntime, tool
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import RecordingChatModel

from memtrace_core.api import MemoryAPI
from memtrace_langchain import MemtraceStore


@dataclass
class Ctx:
    user_id: str


@tool
def save_preference(name: str, value: str, runtime: ToolRuntime[Ctx]) -> str:
    """Save a preference of the current user."""
    assert runtime.store is not None
    runtime.store.put(("users", runtime.context.user_id, "prefs"), name, {"content": value})
    return f"saved {name}"


@tool
async def read_preference(name: str, runtime: ToolRuntime[Ctx]) -> str:
    """Read a preference of the current user."""
    assert runtime.store is not None
    item = await runtime.store.aget(("users", runtime.context.user_id, "prefs"), name)
    return "unknown" if item is None else str(item.value["content"])


@tool
def lookup_preference(name: str, runtime: ToolRuntime[Ctx]) -> str:
    """Read a preference of the current user (synchronously)."""
    assert runtime.store is not None
    item = runtime.store.get(("users", runtime.context.user_id, "prefs"), name)
    return "unknown" if item is None else str(item.value["content"])


def _call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


def _tool_outputs(messages: Sequence[BaseMessage]) -> list[str]:
    return [str(m.content) for m in messages if isinstance(m, ToolMessage)]


def test_an_agent_stores_and_reads_through_tool_runtime(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle, agent_id="assistant")
    model = RecordingChatModel(
        messages=iter(
            [
                _call("save_preference", {"name": "tone", "value": "Answer tersely"}, "c1"),
                AIMessage(content="noted"),
            ]
        )
    )
    agent = create_agent(model, [save_preference, read_preference], context_schema=Ctx, store=store)
    out = agent.invoke(
        {"messages": [HumanMessage("remember that I like terse answers")]},
        context=Ctx(user_id="u1"),
    )
    assert _tool_outputs(out["messages"]) == ["saved tone"]
    # an ordinary memory of the agent, readable without LangGraph
    memories = handle.recall("assistant").memories
    assert [(m.content, m.namespace, m.key) for m in memories] == [
        ("Answer tersely", ["users", "u1", "prefs"], "tone")
    ]


async def test_a_second_agent_on_a_new_store_reads_it(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    with MemtraceStore(url, **options) as first:
        first.put(("users", "u2", "prefs"), "tone", {"content": "Use bullet points"})
    model = RecordingChatModel(
        messages=iter(
            [
                _call("read_preference", {"name": "tone"}, "c1"),
                _call("read_preference", {"name": "missing"}, "c2"),
                AIMessage(content="done"),
            ]
        )
    )
    async with MemtraceStore(url, **options) as second:
        agent = create_agent(model, [read_preference], context_schema=Ctx, store=second)
        out = await agent.ainvoke(
            {"messages": [HumanMessage("how should you answer?")]},
            {"configurable": {"thread_id": "t1"}},
            context=Ctx(user_id="u2"),
        )
    assert _tool_outputs(out["messages"]) == ["Use bullet points", "unknown"]
    # the model saw the tool results the store produced
    last_seen = model.received[-1]
    assert [str(m.content) for m in last_seen if isinstance(m, ToolMessage)] == [
        "Use bullet points",
        "unknown",
    ]


def test_the_agent_checkpointer_and_store_are_independent(handle: MemoryAPI) -> None:
    """Short-term memory (the checkpointer, per thread) and long-term memory (the store)
    together: a fact saved in thread t1 is read in thread t2."""
    store = MemtraceStore(handle)
    model = RecordingChatModel(
        messages=iter(
            [
                _call("save_preference", {"name": "lang", "value": "French"}, "c1"),
                AIMessage(content="ok"),
                _call("lookup_preference", {"name": "lang"}, "c2"),
                AIMessage(content="French it is"),
            ]
        )
    )
    agent = create_agent(
        model,
        [save_preference, lookup_preference],
        context_schema=Ctx,
        store=store,
        checkpointer=InMemorySaver(),
    )
    agent.invoke(
        {"messages": [HumanMessage("I speak French")]},
        {"configurable": {"thread_id": "t1"}},
        context=Ctx(user_id="u3"),
    )
    out = agent.invoke(
        {"messages": [HumanMessage("which language?")]},
        {"configurable": {"thread_id": "t2"}},
        context=Ctx(user_id="u3"),
    )
    assert _tool_outputs(out["messages"]) == ["French"]
    assert next(m.content for m in out["messages"]) == "which language?"  # a fresh thread
