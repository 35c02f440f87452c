"""The memtrace LangChain tools, one by one, on both transports: schemas a model sees (no
runtime argument, every argument described), outputs, engine errors as tool messages, and the
agent / session taken from the runtime context."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from langchain.tools import ToolRuntime
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_core.errors import NotFoundError
from memtrace_langchain._context import resolve_scope
from memtrace_langchain.tools import TOOL_NAMES, memtrace_tools


@dataclass
class Ctx:
    agent_id: str | None = None
    session_id: str | None = None


def by_name(tools: list[BaseTool]) -> dict[str, BaseTool]:
    return {t.name: t for t in tools}


def call(tool: BaseTool, args: dict[str, Any], runtime: Any = None) -> ToolMessage:
    """Invoke ``tool`` as a model's tool call would (a ToolMessage with a status back)."""
    if runtime is not None:
        args = {**args, "runtime": runtime}
    out = tool.invoke({"type": "tool_call", "name": tool.name, "args": args, "id": "call-1"})
    assert isinstance(out, ToolMessage)
    return out


def runtime_with(context: Any) -> ToolRuntime:
    return ToolRuntime(
        state={"messages": []},
        context=context,
        config={},
        stream_writer=lambda _: None,
        tool_call_id="call-1",
        store=None,
    )


@pytest.fixture
def tools(handle: MemoryAPI) -> dict[str, BaseTool]:
    return by_name(memtrace_tools(handle, agent_id="bot", session_id="s1"))


# -- schemas and descriptions ------------------------------------------------------------------


def test_all_six_tools_in_order_with_runtime_hidden_and_every_argument_described(
    handle: MemoryAPI,
) -> None:
    tools = memtrace_tools(handle, agent_id="bot")
    assert [t.name for t in tools] == [
        "remember",
        "recall",
        "search",
        "decide",
        "session_context",
        "forget",
    ]
    assert tuple(t.name for t in tools) == TOOL_NAMES
    for tool in tools:
        schema = tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
        props = schema["properties"]
        assert "runtime" not in props, tool.name
        assert "runtime" not in tool.args
        assert len(tool.description) > 80, tool.name
        for name, prop in props.items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    required = {
        t.name: set(t.tool_call_schema.model_json_schema().get("required", []))  # type: ignore[union-attr]
        for t in tools
    }
    assert required == {
        "remember": {"content"},
        "recall": set(),
        "search": {"query"},
        "decide": {"decision", "reasoning"},
        "session_context": set(),
        "forget": {"memory_id"},
    }
    recall_since = tools[1].args["since"]
    assert recall_since["default"] == "24h"
    assert "2h" in recall_since["description"]
    assert set(tools[0].args["memory_type"]["enum"]) == {"episodic", "entity", "session"}


def test_a_subset_keeps_the_canonical_order_and_unknown_names_are_refused(
    handle: MemoryAPI,
) -> None:
    chosen = memtrace_tools(handle, agent_id="bot", include=["search", "remember"])
    assert [t.name for t in chosen] == ["remember", "search"]
    with pytest.raises(ValueError, match=r"unknown memtrace tool.*'remmber'"):
        memtrace_tools(handle, agent_id="bot", include=["remmber"])


# -- outputs -----------------------------------------------------------------------------------


def test_remember_writes_to_the_engine_and_recall_and_search_show_it(
    handle: MemoryAPI, tools: dict[str, BaseTool]
) -> None:
    out = call(
        tools["remember"],
        {
            "content": "The customer prefers email over phone",
            "event_type": "user_preference",
            "tags": ["crm", "customer-42"],
            "importance": 0.8,
        },
    )
    assert out.status == "success"
    assert out.content.startswith("Remembered as mem_")
    memory_id = str(out.content).split()[2]
    stored = handle.get_memory(memory_id)
    assert (stored.agent_id, stored.session_id, stored.event_type) == (
        "bot",
        "s1",
        "user_preference",
    )
    assert stored.tags == ["crm", "customer-42"]
    assert stored.importance == 0.8

    recalled = call(tools["recall"], {"since": "2h"})
    assert recalled.status == "success"
    assert recalled.content.startswith("1 memory since 2h, newest first:")
    line = str(recalled.content).splitlines()[1]
    assert line.startswith(f"- [{memory_id}] ")
    assert "episodic/user_preference (session s1; tags: crm, customer-42): " in line
    assert line.endswith("The customer prefers email over phone")

    found = call(tools["search"], {"query": "email preference"})
    assert found.content.startswith("1 memory match 'email preference'")
    assert memory_id in found.content
    missing = call(tools["search"], {"query": "kangaroo"})
    assert missing.status == "success"
    assert missing.content.startswith("No memories match")


def test_recall_filters_and_this_session_only(
    handle: MemoryAPI, tools: dict[str, BaseTool]
) -> None:
    handle.remember("bot", "in session one", session_id="s1", event_type="note")
    handle.remember("bot", "in session two", session_id="s2", event_type="note")
    handle.remember("bot", "an error happened", session_id="s2", event_type="error")
    handle.remember("other", "not mine", session_id="s1")
    everything = str(call(tools["recall"], {}).content)
    assert everything.startswith("3 memories since 24h")
    assert "not mine" not in everything
    mine = str(call(tools["recall"], {"this_session_only": True}).content)
    assert "in session one" in mine
    assert "session two" not in mine
    errors = str(call(tools["recall"], {"event_type": "error"}).content)
    assert errors.startswith("1 memory")
    assert "an error happened" in errors
    limited = str(call(tools["recall"], {"limit": 1}).content)
    assert "More exist" in limited
    assert len(limited.splitlines()) == 2
    none = call(tools["recall"], {"since": "1s", "event_type": "nothing_like_this"})
    assert none.content == "No memories since 1s."


def test_duplicate_remember_says_it_is_already_remembered_with_its_id(
    tools: dict[str, BaseTool],
) -> None:
    first = call(tools["remember"], {"content": "Office closes at 6pm"})
    memory_id = str(first.content).split()[2]
    again = call(tools["remember"], {"content": "Office closes at 6pm"})
    assert again.status == "success"
    assert again.content.startswith(f"Already remembered as {memory_id}")
    assert "nothing new was written" in again.content


def test_decide_records_a_decision_with_its_reasoning(
    handle: MemoryAPI, tools: dict[str, BaseTool]
) -> None:
    out = call(
        tools["decide"],
        {"decision": "Escalate ticket 42", "reasoning": "SLA breached twice", "tags": ["sla"]},
    )
    assert out.content.startswith("Decision recorded as mem_")
    memory = handle.get_memory(str(out.content).split()[-1].rstrip("."))
    assert memory.memory_type == "decision"
    assert memory.metadata == {"reasoning": "SLA breached twice"}
    line = str(call(tools["recall"], {"memory_type": "decision"}).content).splitlines()[1]
    assert "decision/decision" in line
    assert line.endswith("Escalate ticket 42 — reasoning: SLA breached twice")


def test_session_context_is_the_engines_markdown_with_fallback_to_the_agent(
    handle: MemoryAPI,
) -> None:
    empty = by_name(memtrace_tools(handle, agent_id="bot", session_id="s1"))
    assert (
        call(empty["session_context"], {}).content == "No memories yet for this session or agent."
    )

    handle.remember("bot", "Crawled the pricing page", session_id="s1", event_type="page_crawled")
    handle.decide("bot", "Skip pagination", "only one page", session_id="s1")
    tools = by_name(
        memtrace_tools(handle, agent_id="bot", session_id="s1", context_max_tokens=None)
    )
    text = call(tools["session_context"], {}).content
    assert text == handle.get_session_context("s1").context
    assert str(text).startswith("## Session Context (s1)")
    assert "page_crawled: Crawled the pricing page" in text
    assert "Skip pagination" in text

    # a session that has nothing yet gets the agent's memories across sessions
    fresh = by_name(memtrace_tools(handle, agent_id="bot", session_id="s-new"))
    agent_text = call(fresh["session_context"], {}).content
    assert str(agent_text).startswith("## Agent Context (bot)")
    assert "Crawled the pricing page" in agent_text
    # no session at all: the agent's context
    no_session = by_name(memtrace_tools(handle, agent_id="bot"))
    assert call(no_session["session_context"], {}).content == agent_text


def test_session_context_budget_is_the_engines(handle: MemoryAPI) -> None:
    for i in range(30):
        handle.remember("bot", f"step {i} of a long task with some detail", session_id="s1")
    tools = by_name(memtrace_tools(handle, agent_id="bot", session_id="s1"))
    small = call(tools["session_context"], {"max_tokens": 60}).content
    assert small == handle.get_session_context("s1", max_tokens=60).context
    full = call(tools["session_context"], {"max_tokens": 100_000}).content
    assert len(small) < len(full)
    assert (len(small) + 3) // 4 <= 60
    default = call(tools["session_context"], {}).content
    assert default == handle.get_session_context("s1", max_tokens=2000).context


# -- forget ------------------------------------------------------------------------------------


def test_forget_deletes_one_own_memory(handle: MemoryAPI, tools: dict[str, BaseTool]) -> None:
    keep = handle.remember("bot", "keep me", session_id="s1")
    gone = handle.remember("bot", "wrong fact", session_id="s1")
    out = call(tools["forget"], {"memory_id": gone.id})
    assert out.status == "success"
    assert out.content == f"Forgot {gone.id}: wrong fact"
    with pytest.raises(NotFoundError):
        handle.get_memory(gone.id)
    assert handle.get_memory(keep.id).content == "keep me"
    assert gone.id not in call(tools["search"], {"query": "wrong fact"}).content
    again = call(tools["forget"], {"memory_id": gone.id})
    assert again.status == "error"
    assert "no memory" in again.content
    assert "recall" in again.content


def test_forget_refuses_another_agents_memory(
    handle: MemoryAPI, tools: dict[str, BaseTool]
) -> None:
    theirs = handle.remember("other-bot", "their secret", session_id="s1")
    out = call(tools["forget"], {"memory_id": theirs.id})
    assert out.status == "error"
    assert "belongs to another agent" in out.content
    assert handle.get_memory(theirs.id).content == "their secret"


def test_forget_accepts_the_registered_agents_id_or_name(handle: MemoryAPI) -> None:
    agent = handle.register_agent("named-bot")
    written_by_name = handle.remember("named-bot", "by name")
    by_id = by_name(memtrace_tools(handle, agent_id=agent.id))
    assert call(by_id["forget"], {"memory_id": written_by_name.id}).status == "success"
    with pytest.raises(NotFoundError):
        handle.get_memory(written_by_name.id)


# -- errors become messages the model can act on ---------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("recall", {"since": "yesterday-ish"}, "invalid input (argument since)"),
        ("search", {"query": "x", "since": "soon"}, "invalid input (argument since)"),
        ("remember", {"content": "x", "importance": 5}, "invalid input (argument importance)"),
        ("remember", {"content": "x", "event_type": "has spaces"}, "argument event_type"),
        ("remember", {"content": "x", "tags": ["no spaces allowed"]}, "tag"),
        ("forget", {"memory_id": "not-an-id"}, "forget failed"),
        ("session_context", {"max_tokens": 0}, "max_tokens"),
    ],
)
def test_engine_errors_come_back_as_error_tool_messages(
    handle: MemoryAPI, tool: str, args: dict[str, Any], expected: str
) -> None:
    handle.remember("bot", "something", session_id="s1")
    tools = by_name(memtrace_tools(handle, agent_id="bot", session_id="s1"))
    out = call(tools[tool], args)
    assert out.status == "error"
    assert expected in out.content
    assert "Traceback" not in out.content


def test_model_argument_type_errors_are_not_memtrace_calls(tools: dict[str, BaseTool]) -> None:
    from pydantic import ValidationError as PydanticError

    with pytest.raises(PydanticError):  # create_agent's ToolNode turns this into a message
        tools["recall"].invoke({"limit": "many"})


# -- agent / session from the runtime context ------------------------------------------------


def test_runtime_context_overrides_the_defaults(handle: MemoryAPI) -> None:
    tools = by_name(memtrace_tools(handle, agent_id="default-bot", session_id="default-s"))
    out = call(
        tools["remember"], {"content": "from a dataclass"}, runtime_with(Ctx("ctx-bot", "ctx-s"))
    )
    stored = handle.get_memory(str(out.content).split()[2])
    assert (stored.agent_id, stored.session_id) == ("ctx-bot", "ctx-s")
    out = call(
        tools["remember"], {"content": "from a mapping"}, runtime_with({"session_id": "map-s"})
    )
    stored = handle.get_memory(str(out.content).split()[2])
    assert (stored.agent_id, stored.session_id) == ("default-bot", "map-s")
    out = call(tools["remember"], {"content": "no context"}, runtime_with(None))
    stored = handle.get_memory(str(out.content).split()[2])
    assert (stored.agent_id, stored.session_id) == ("default-bot", "default-s")
    recalled = call(tools["recall"], {}, runtime_with(Ctx(agent_id="ctx-bot")))
    assert "from a dataclass" in recalled.content
    assert "mapping" not in recalled.content


def test_resolve_scope_rules() -> None:
    assert resolve_scope(None, agent_id="a", session_id=None) == resolve_scope(
        SimpleNamespace(context=None), agent_id="a", session_id=None
    )
    scope = resolve_scope(
        SimpleNamespace(context=SimpleNamespace(agent_id="", session_id="s9")),
        agent_id="a",
        session_id="s0",
    )
    assert (scope.agent_id, scope.session_id) == ("a", "s9")
    scope = resolve_scope(SimpleNamespace(context={"agent_id": "b"}), agent_id=None, session_id="s")
    assert (scope.agent_id, scope.session_id) == ("b", "s")
    with pytest.raises(ValueError, match="no memtrace agent_id"):
        resolve_scope(SimpleNamespace(context={}), agent_id=None, session_id=None)
    with pytest.raises(TypeError, match="agent_id must be a string"):
        resolve_scope(SimpleNamespace(context={"agent_id": 7}), agent_id="a", session_id=None)


# -- async -------------------------------------------------------------------------------------


async def test_tools_run_natively_async_on_a_blocking_handle(handle: MemoryAPI) -> None:
    tools = by_name(memtrace_tools(handle, agent_id="bot", session_id="s1"))
    out = await tools["remember"].ainvoke({"content": "async fact"})
    assert str(out).startswith("Remembered as mem_")
    assert "async fact" in await tools["recall"].ainvoke({})
    msg = await tools["recall"].ainvoke(
        {"type": "tool_call", "name": "recall", "args": {"since": "nope"}, "id": "c"}
    )
    assert isinstance(msg, ToolMessage)
    assert msg.status == "error"


async def test_tools_on_an_async_only_handle(async_handle: AsyncMemoryAPI) -> None:
    tools = by_name(memtrace_tools(async_handle, agent_id="bot", session_id="s1"))
    out = await tools["remember"].ainvoke({"content": "via aconnect"})
    memory_id = str(out).split()[2]
    assert (await async_handle.get_memory(memory_id)).content == "via aconnect"
    dup = await tools["remember"].ainvoke({"content": "via aconnect"})
    assert str(dup).startswith(f"Already remembered as {memory_id}")
    assert str(await tools["session_context"].ainvoke({})).startswith("## Session Context (s1)")
    assert str(await tools["forget"].ainvoke({"memory_id": memory_id})).startswith("Forgot")
    with pytest.raises(TypeError, match="async-only"):
        tools["recall"].invoke({})
