"""MemtraceMiddleware in a real ``create_agent``: the fake model must RECEIVE the memtrace
context in its system message (session, agent fallback, token budget, context override), and
``record_turns`` records each user message once and each assistant reply with text — sync and
async, on both transports."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import RecordingChatModel

from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_langchain.middleware import DEFAULT_HEADING, MemtraceMiddleware
from memtrace_langchain.tools import memtrace_tools


@dataclass
class Ctx:
    agent_id: str
    session_id: str | None = None


def system_text(request: list[BaseMessage]) -> str | None:
    first = request[0]
    return first.text if isinstance(first, SystemMessage) else None


def model_saying(*replies: AIMessage | str) -> RecordingChatModel:
    return RecordingChatModel(
        messages=iter([r if isinstance(r, AIMessage) else AIMessage(r) for r in replies])
    )


def seed(handle: MemoryAPI) -> None:
    handle.remember("bot", "The user is called Dana", session_id="s1", event_type="user_fact")
    handle.decide("bot", "Answer in French", "Dana asked for French", session_id="s1")
    handle.remember("bot", "Dana's order 881 shipped", session_id="s0", event_type="order")


# -- injection ---------------------------------------------------------------------------------


def test_the_model_receives_the_session_context_after_the_system_prompt(handle: MemoryAPI) -> None:
    seed(handle)
    model = model_saying("Bonjour Dana")
    agent = create_agent(
        model,
        system_prompt="You are a helpful assistant.",
        middleware=[MemtraceMiddleware(handle, agent_id="bot", session_id="s1")],
    )
    agent.invoke({"messages": [HumanMessage("hi")]})
    text = system_text(model.received[0])
    assert text is not None
    expected = handle.get_session_context("s1", max_tokens=2000).context
    assert text == f"You are a helpful assistant.\n\n{DEFAULT_HEADING}\n\n{expected}"
    assert "## Session Context (s1)" in text
    assert "user_fact: The user is called Dana" in text
    assert "Answer in French" in text
    assert "order 881" not in text  # another session
    assert [m.type for m in model.received[0]] == ["system", "human"]


def test_a_new_session_and_no_session_get_the_agents_context(handle: MemoryAPI) -> None:
    seed(handle)
    for session in ("brand-new", None):
        model = model_saying("ok")
        agent = create_agent(
            model, middleware=[MemtraceMiddleware(handle, agent_id="bot", session_id=session)]
        )
        agent.invoke({"messages": [HumanMessage("hi")]})
        text = system_text(model.received[0])
        assert text is not None, session
        assert (
            text
            == f"{DEFAULT_HEADING}\n\n{handle.get_agent_context('bot', max_tokens=2000).context}"
        )
        assert "## Agent Context (bot)" in text
        assert "The user is called Dana" in text
        assert "order 881 shipped" in text


def test_last_weeks_memories_are_injected_by_default(handle: MemoryAPI) -> None:
    """The default window is 30 days (the engine's own default is 24 h): long-term memory a
    week old reaches the model; memories older than the window do not."""
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    long_ago = (datetime.now(UTC) - timedelta(days=60)).isoformat()
    handle.add_memory(agent_id="bot", content="Dana prefers e-mail", time=week_ago)
    handle.add_memory(agent_id="bot", content="Dana lived in Oslo", time=long_ago)
    model = model_saying("ok")
    agent = create_agent(model, middleware=[MemtraceMiddleware(handle, agent_id="bot")])
    agent.invoke({"messages": [HumanMessage("hi")]})
    text = system_text(model.received[0])
    assert text is not None
    assert "Dana prefers e-mail" in text
    assert "Oslo" not in text
    wider = model_saying("ok")
    middleware = MemtraceMiddleware(handle, agent_id="bot", since="90d")
    create_agent(wider, middleware=[middleware]).invoke({"messages": [HumanMessage("hi")]})
    assert "Oslo" in (system_text(wider.received[0]) or "")


def test_scope_agent_always_injects_the_agents_context(handle: MemoryAPI) -> None:
    seed(handle)
    model = model_saying("ok")
    middleware = MemtraceMiddleware(handle, agent_id="bot", session_id="s1", scope="agent")
    create_agent(model, middleware=[middleware]).invoke({"messages": [HumanMessage("hi")]})
    text = system_text(model.received[0])
    assert text is not None
    assert "## Agent Context (bot)" in text
    assert "order 881" in text


def test_nothing_is_injected_when_memtrace_knows_nothing(handle: MemoryAPI) -> None:
    model = model_saying("ok")
    agent = create_agent(model, middleware=[MemtraceMiddleware(handle, agent_id="nobody")])
    agent.invoke({"messages": [HumanMessage("hi")]})
    assert [m.type for m in model.received[0]] == ["human"]
    model = model_saying("ok")
    agent = create_agent(
        model, system_prompt="Be brief.", middleware=[MemtraceMiddleware(handle, agent_id="x")]
    )
    agent.invoke({"messages": [HumanMessage("hi")]})
    assert system_text(model.received[0]) == "Be brief."


def test_the_token_budget_is_the_engines(handle: MemoryAPI) -> None:
    for i in range(40):
        handle.remember("bot", f"observation number {i} about the deployment", session_id="s1")
    model = model_saying("ok")
    middleware = MemtraceMiddleware(
        handle, agent_id="bot", session_id="s1", max_tokens=80, heading=""
    )
    create_agent(model, middleware=[middleware]).invoke({"messages": [HumanMessage("hi")]})
    text = system_text(model.received[0])
    assert text == handle.get_session_context("s1", max_tokens=80).context
    assert text is not None
    assert (len(text) + 3) // 4 <= 80
    assert "observation number 39" in text
    assert "observation number 0 " not in text
    assert len(text) < len(handle.get_session_context("s1", max_tokens=100_000).context)


def test_the_run_context_overrides_agent_and_session(handle: MemoryAPI) -> None:
    seed(handle)
    handle.remember("other-bot", "Other bot's note", session_id="s9")
    model = model_saying("ok")
    agent = create_agent(
        model,
        middleware=[MemtraceMiddleware(handle, agent_id="other-bot", session_id="s9")],
        context_schema=Ctx,
    )
    agent.invoke({"messages": [HumanMessage("hi")]}, context=Ctx(agent_id="bot", session_id="s1"))
    text = system_text(model.received[0])
    assert text is not None
    assert "## Session Context (s1)" in text
    assert "Dana" in text
    assert "Other bot" not in text


def test_context_is_refreshed_on_each_model_call_of_the_tool_loop(handle: MemoryAPI) -> None:
    model = model_saying(
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "remember",
                    "args": {"content": "Dana likes jazz"},
                    "id": "c1",
                    "type": "tool_call",
                }
            ],
        ),
        "Noted.",
    )
    middleware = MemtraceMiddleware(
        handle, agent_id="bot", session_id="s1", with_tools=["remember"]
    )
    assert [t.name for t in middleware.tools] == ["remember"]
    create_agent(model, middleware=[middleware]).invoke({"messages": [HumanMessage("I like jazz")]})
    assert system_text(model.received[0]) is None  # nothing known yet
    second = system_text(model.received[1])
    assert second is not None
    assert "Dana likes jazz" in second


def test_a_memtrace_failure_does_not_stop_the_agent_unless_asked(
    handle: MemoryAPI, caplog: pytest.LogCaptureFixture
) -> None:
    handle.remember("bot", "x" * 400, session_id="s1")  # larger than the budget below
    model = model_saying("still answering")
    middleware = MemtraceMiddleware(handle, agent_id="bot", session_id="s1", max_tokens=5)
    with caplog.at_level(logging.WARNING, logger="memtrace_langchain.middleware"):
        out = create_agent(model, middleware=[middleware]).invoke(
            {"messages": [HumanMessage("hi")]}
        )
    assert out["messages"][-1].content == "still answering"
    assert [m.type for m in model.received[0]] == ["human"]
    assert "could not load the context" in caplog.text
    assert "max_tokens" in caplog.text
    strict = MemtraceMiddleware(
        handle, agent_id="bot", session_id="s1", max_tokens=5, raise_errors=True
    )
    from memtrace_core.errors import ValidationError

    with pytest.raises(ValidationError, match="max_tokens"):
        create_agent(model_saying("x"), middleware=[strict]).invoke(
            {"messages": [HumanMessage("hi")]}
        )


# -- recording turns ---------------------------------------------------------------------------


def remembering_model() -> RecordingChatModel:
    return model_saying(
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "remember",
                    "args": {"content": "Dana's dog is called Pixel"},
                    "id": "c1",
                    "type": "tool_call",
                },
            ],
        ),
        AIMessage(
            content="",
            tool_calls=[{"name": "recall", "args": {}, "id": "c2", "type": "tool_call"}],
        ),
        "Pixel is a good name.",
        "You told me about Pixel.",
    )


def turns(memories: Sequence[Any]) -> list[tuple[str, str]]:
    return [
        (m.event_type, m.content)
        for m in sorted(memories, key=lambda m: (m.time, m.id))
        if m.event_type in ("user_message", "assistant_message")
    ]


def test_record_turns_records_each_user_message_once_and_replies_with_text(
    handle: MemoryAPI,
) -> None:
    model = remembering_model()
    middleware = MemtraceMiddleware(handle, agent_id="bot", session_id="s1", record_turns=True)
    agent = create_agent(
        model,
        memtrace_tools(handle, agent_id="bot", session_id="s1"),
        middleware=[middleware],
        checkpointer=InMemorySaver(),
    )
    config: Any = {"configurable": {"thread_id": "t1"}}
    agent.invoke({"messages": [HumanMessage("My dog is called Pixel")]}, config=config)
    assert len(model.received) == 3  # a tool loop of three model calls
    memories = handle.get_session_memories("s1", since="1h").memories
    assert turns(memories) == [
        ("user_message", "My dog is called Pixel"),
        ("assistant_message", "Pixel is a good name."),
    ]
    assert "Dana's dog is called Pixel" in [m.content for m in memories]
    recorded = next(m for m in memories if m.event_type == "user_message")
    assert recorded.agent_id == "bot"
    assert recorded.metadata is not None
    assert recorded.metadata["role"] == "user"
    assert recorded.metadata["message_id"]

    # the next turn of the same thread: only the new user message is recorded
    agent.invoke({"messages": [HumanMessage("What is my dog called?")]}, config=config)
    assert turns(handle.get_session_memories("s1", since="1h").memories) == [
        ("user_message", "My dog is called Pixel"),
        ("assistant_message", "Pixel is a good name."),
        ("user_message", "What is my dog called?"),
        ("assistant_message", "You told me about Pixel."),
    ]
    # and the model of that turn saw the recorded first turn in its system message
    text = system_text(model.received[-1])
    assert text is not None
    assert "user_message: My dog is called Pixel" in text


def test_the_same_text_twice_is_two_turns_and_recording_is_off_by_default(
    handle: MemoryAPI,
) -> None:
    model = model_saying("sure", "sure")
    middleware = MemtraceMiddleware(handle, agent_id="bot", session_id="s1", record_turns=True)
    agent = create_agent(model, middleware=[middleware], checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t2"}}
    agent.invoke({"messages": [HumanMessage("yes")]}, config=config)
    agent.invoke({"messages": [HumanMessage("yes")]}, config=config)
    assert turns(handle.get_session_memories("s1").memories) == [
        ("user_message", "yes"),
        ("assistant_message", "sure"),
        ("user_message", "yes"),
        ("assistant_message", "sure"),
    ]
    model = model_saying("fine")
    quiet = MemtraceMiddleware(handle, agent_id="quiet-bot", session_id="q1")
    create_agent(model, middleware=[quiet]).invoke({"messages": [HumanMessage("hello")]})
    assert handle.recall("quiet-bot").count == 0


# -- async -------------------------------------------------------------------------------------


async def test_ainvoke_injects_and_records_on_an_async_handle(async_handle: AsyncMemoryAPI) -> None:
    await async_handle.remember("bot", "The user is called Dana", session_id="s0")
    model = remembering_model()
    middleware = MemtraceMiddleware(
        async_handle, agent_id="bot", session_id="s1", record_turns=True, with_tools=True
    )
    agent = create_agent(model, middleware=[middleware], context_schema=Ctx)
    out = await agent.ainvoke(
        {"messages": [HumanMessage("My dog is called Pixel")]}, context=Ctx(agent_id="bot")
    )
    assert out["messages"][-1].content == "Pixel is a good name."
    first = system_text(model.received[0])
    assert first is not None
    assert "## Session Context" not in first
    assert "## Agent Context (bot)" in first
    assert "The user is called Dana" in first
    last = system_text(model.received[-1])
    assert last is not None
    assert "## Session Context (s1)" in last
    assert "Dana's dog is called Pixel" in last
    memories = (await async_handle.get_session_memories("s1")).memories
    assert turns(memories) == [
        ("user_message", "My dog is called Pixel"),
        ("assistant_message", "Pixel is a good name."),
    ]


async def test_ainvoke_on_a_blocking_handle(handle: MemoryAPI) -> None:
    seed(handle)
    model = model_saying("ok")
    agent = create_agent(
        model,
        middleware=[MemtraceMiddleware(handle, agent_id="bot", session_id="s1", record_turns=True)],
    )
    await agent.ainvoke({"messages": [HumanMessage("hi there")]})
    text = system_text(model.received[0])
    assert text is not None
    assert "The user is called Dana" in text
    assert turns(handle.get_session_memories("s1").memories) == [
        ("user_message", "hi there"),
        ("assistant_message", "ok"),
    ]


def test_a_session_that_exists_but_is_empty_gets_the_agents_context(handle: MemoryAPI) -> None:
    seed(handle)
    session = handle.create_session("bot")
    model = model_saying("ok")
    agent = create_agent(
        model, middleware=[MemtraceMiddleware(handle, agent_id="bot", session_id=session.id)]
    )
    agent.invoke({"messages": [HumanMessage("hi")]})
    text = system_text(model.received[0])
    assert text is not None
    assert "## Agent Context (bot)" in text
    assert "Dana" in text


def test_only_the_trailing_human_messages_are_new() -> None:
    from langchain_core.messages import ToolMessage

    from memtrace_langchain.middleware import _new_user_messages

    h1, h2, h3 = HumanMessage("a", id="1"), HumanMessage("b", id="2"), HumanMessage("c", id="3")
    calling = AIMessage(
        "", tool_calls=[{"name": "recall", "args": {}, "id": "t", "type": "tool_call"}]
    )
    assert _new_user_messages([h1]) == [h1]
    assert _new_user_messages([h1, calling, ToolMessage("r", tool_call_id="t")]) == []
    assert _new_user_messages([h1, AIMessage("x"), h2, h3]) == [h2, h3]
    assert _new_user_messages([]) == []
