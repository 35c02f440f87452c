"""memtrace tools for the OpenAI Agents SDK: strict schemas the SDK accepts, driven through the
real Runner (run, run_sync, run_streamed) by a scripted model, over a SQLite file and a live
server; agent/session from the run context; errors come back to the model as messages."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from agents import Agent, FunctionTool
from agents.strict_schema import ensure_strict_json_schema
from oa_fakes import MODES, call, run_agent, scripted_model, text

from memtrace_core import connect
from memtrace_core.api import MemoryAPI
from memtrace_openai_agents._context import as_handle, is_original_client
from memtrace_openai_agents.tools import TOOL_NAMES, create_memtrace_tools

NULLS_REMEMBER = {"event_type": None, "memory_type": None, "tags": None, "importance": None}
NULLS_RECALL = {
    "since": None,
    "limit": None,
    "memory_type": None,
    "event_type": None,
    "tags": None,
    "this_session_only": None,
}


def outputs(model: Any, index: int) -> dict[str, str]:
    """call_id -> tool output text, from the input of model call ``index``."""
    found: dict[str, str] = {}
    for item in model.calls[index].input:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            found[item["call_id"]] = str(item["output"])
    return found


def walk(schema: Any) -> Any:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from walk(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from walk(value)


# -- schemas -----------------------------------------------------------------------------------


@pytest.fixture
def local(db_url: str) -> Iterator[MemoryAPI]:
    mt = connect(db_url)
    yield mt
    mt.close()


def test_tools_are_strict_function_tools_with_the_original_names(local: MemoryAPI) -> None:
    tools = create_memtrace_tools(local, "a1")
    assert [t.name for t in tools] == list(TOOL_NAMES)
    assert TOOL_NAMES[:4] == (  # the original's four names, unchanged
        "memtrace_remember",
        "memtrace_recall",
        "memtrace_search",
        "memtrace_decide",
    )
    for tool in tools:
        assert isinstance(tool, FunctionTool)
        assert tool.strict_json_schema is True
        schema = tool.params_json_schema
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        # strict mode: every property required
        assert sorted(schema["required"]) == sorted(schema["properties"])
        # the SDK's own strict conversion leaves it unchanged (it is already strict)
        assert ensure_strict_json_schema(copy.deepcopy(schema)) == schema
        assert not any("default" in node for node in walk(schema))
        assert "ctx" not in schema["properties"]  # the ToolContext is hidden from the model
        assert len(tool.description) > 60
        for name, prop in schema["properties"].items():
            assert prop.get("description"), (tool.name, name)
    remember = tools[0].params_json_schema["properties"]
    assert remember["content"]["type"] == "string"
    assert {"type": "null"} in remember["importance"]["anyOf"]
    assert remember["memory_type"]["anyOf"][0]["enum"] == ["episodic", "entity", "session"]


def test_include_with_or_without_prefix_and_unknown_names(local: MemoryAPI) -> None:
    tools = create_memtrace_tools(local, "a1", include=["recall", "memtrace_forget"])
    assert [t.name for t in tools] == ["memtrace_recall", "memtrace_forget"]
    with pytest.raises(ValueError, match="unknown memtrace tool"):
        create_memtrace_tools(local, "a1", include=["bogus"])


# -- through the Runner ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_remember_decide_recall_through_the_runner(handle: MemoryAPI, mode: str) -> None:
    model = scripted_model(
        [
            [
                call(
                    "memtrace_remember",
                    {**NULLS_REMEMBER, "content": "Customer prefers email", "tags": ["crm"]},
                    call_id="c1",
                ),
                call(
                    "memtrace_decide",
                    {
                        "decision": "Offer a refund",
                        "reasoning": "late delivery",
                        "tags": None,
                        "importance": 0.8,
                    },
                    call_id="c2",
                ),
            ],
            [call("memtrace_recall", {**NULLS_RECALL, "this_session_only": True}, call_id="c3")],
            [text("done")],
        ]
    )
    agent = Agent(name="support", model=model, tools=create_memtrace_tools(handle, "bot"))
    result = run_agent(mode, agent, "hello", context={"session_id": f"s-{mode}"})
    assert result.final_output == "done"

    first = outputs(model, 1)
    assert first["c1"].startswith("Remembered as mem_")
    assert "(episodic/general)" in first["c1"]
    assert first["c2"].startswith("Decision recorded as mem_")
    recalled = outputs(model, 2)["c3"]
    assert recalled.startswith(f"2 memories in session s-{mode} since 24h, newest first:")
    assert f"decision/decision (session s-{mode}): Offer a refund — reasoning: late delivery" in (
        recalled
    )
    assert f"episodic/general (session s-{mode}; tags: crm): Customer prefers email" in recalled

    stored = handle.recall("bot", "1h", session_id=f"s-{mode}")
    assert sorted(m.content for m in stored.memories) == [
        "Customer prefers email",
        "Offer a refund",
    ]
    decision = next(m for m in stored.memories if m.memory_type == "decision")
    assert decision.metadata == {"reasoning": "late delivery"}
    assert decision.importance == 0.8


@dataclass
class Ctx:
    agent_id: str | None = None
    session_id: str | None = None


@pytest.mark.parametrize(
    "context", [Ctx("ctx-agent", "ctx-s"), {"agent_id": "ctx-agent", "session_id": "ctx-s"}]
)
def test_run_context_overrides_the_defaults(handle: MemoryAPI, context: Any) -> None:
    model = scripted_model(
        [
            [call("memtrace_remember", {**NULLS_REMEMBER, "content": "from ctx"}, call_id="c1")],
            [text("ok")],
        ]
    )
    tools = create_memtrace_tools(handle, "default-agent", session_id="default-s")
    run_agent("run", Agent(name="a", model=model, tools=tools), "hi", context=context)
    [memory] = handle.recall("ctx-agent", "1h").memories
    assert (memory.content, memory.session_id) == ("from ctx", "ctx-s")
    assert handle.recall("default-agent", "1h").memories == []


def test_search_session_context_and_forget(handle: MemoryAPI) -> None:
    kept = handle.remember("bot", "The VPN gateway is vpn-3.example", session_id="s1")
    gone = handle.remember("bot", "Wrong fact about the printer", session_id="s1")
    model = scripted_model(
        [
            [
                call(
                    "memtrace_search",
                    {
                        "query": "VPN gateway",
                        "limit": None,
                        "since": None,
                        "memory_type": None,
                        "tags": None,
                    },
                    call_id="c1",
                ),
                call("memtrace_session_context", {"max_tokens": None, "since": None}, call_id="c2"),
                call("memtrace_forget", {"memory_id": gone.id}, call_id="c3"),
            ],
            [
                call(
                    "memtrace_search",
                    {
                        "query": "zebra unicorn",
                        "limit": 3,
                        "since": None,
                        "memory_type": None,
                        "tags": None,
                    },
                    call_id="c4",
                )
            ],
            [text("ok")],
        ]
    )
    tools = create_memtrace_tools(handle, "bot", session_id="s1")
    run_agent("run_sync", Agent(name="a", model=model, tools=tools), "go")
    out = outputs(model, 1)
    assert out["c1"].startswith("1 memory match 'VPN gateway', best first:\n- [" + kept.id)
    assert "The VPN gateway is vpn-3.example" in out["c2"]  # the engine's markdown
    assert out["c3"] == f"Forgot {gone.id}: Wrong fact about the printer"
    assert (
        outputs(model, 2)["c4"] == "No memories match 'zebra unicorn'. Try fewer or other keywords."
    )
    assert [m.id for m in handle.recall("bot", "1h").memories] == [kept.id]


# -- errors come back to the model -------------------------------------------------------------


def test_errors_are_messages_and_the_run_goes_on(handle: MemoryAPI) -> None:
    other = handle.remember("someone-else", "Not yours")
    mine = handle.remember("bot", "Mine")
    deleted = handle.remember("bot", "Deleted already")
    handle.delete_memory(deleted.id)
    model = scripted_model(
        [
            [
                call(
                    "memtrace_remember",
                    {**NULLS_REMEMBER, "content": "x", "importance": 5},
                    call_id="bad-importance",
                ),
                call("memtrace_remember", {"content": 42}, call_id="bad-type"),
                call("memtrace_remember", "{not json", call_id="bad-json"),
                call("memtrace_forget", {"memory_id": other.id}, call_id="other-agent"),
                call("memtrace_forget", {"memory_id": deleted.id}, call_id="unknown"),
                call(
                    "memtrace_recall", {**NULLS_RECALL, "since": "yesterday"}, call_id="bad-since"
                ),
                call("memtrace_remember", {**NULLS_REMEMBER, "content": "Mine"}, call_id="dup"),
                call(
                    "memtrace_recall",
                    {**NULLS_RECALL, "this_session_only": True},
                    call_id="no-session",
                ),
            ],
            [text("still alive")],
        ]
    )
    agent = Agent(name="a", model=model, tools=create_memtrace_tools(handle, "bot"))
    result = run_agent("run", agent, "go")
    assert result.final_output == "still alive"
    out = outputs(model, 1)
    assert out["bad-importance"].startswith(
        "memtrace_remember failed: invalid input (argument importance)"
    )
    assert out["bad-importance"].endswith("Fix the arguments and call memtrace_remember again.")
    for key in ("bad-type", "bad-json"):
        assert out[key].startswith("memtrace_remember failed: the arguments do not match"), out[key]
        assert out[key].endswith("call memtrace_remember again.")
    assert out["other-agent"] == (
        f"memtrace_forget refused: memory {other.id} belongs to another agent; you can only "
        "forget your own memories."
    )
    assert out["unknown"] == (
        f"memtrace_forget failed: no memory {deleted.id!r} (wrong id, or already forgotten). "
        "Use memtrace_recall or memtrace_search to find the id."
    )
    assert out["bad-since"].startswith("memtrace_recall failed: invalid input (argument since)")
    assert out["dup"] == (
        f"Already remembered as {mine.id}: the same content is stored already; nothing new was "
        "written."
    )
    assert out["no-session"].startswith("There is no current session")
    handle.get_memory(other.id)  # still there


def test_unreachable_memtrace_and_missing_agent_are_messages(local: MemoryAPI) -> None:
    model = scripted_model(
        [
            [call("memtrace_remember", {**NULLS_REMEMBER, "content": "x"}, call_id="down")],
            [call("memtrace_recall", NULLS_RECALL, call_id="no-agent")],
            [text("fine")],
        ]
    )
    down = create_memtrace_tools("http://127.0.0.1:9", "bot", api_key="k", include=["remember"])
    no_agent = create_memtrace_tools(local, include=["recall"])
    agent = Agent(name="a", model=model, tools=down + no_agent)
    assert run_agent("run_streamed", agent, "go").final_output == "fine"
    assert outputs(model, 1)["down"].startswith(
        "memtrace_remember failed: the memory service reported an error (TransportError"
    )
    assert "no memtrace agent_id for this call" in outputs(model, 2)["no-agent"]


# -- the original SDK's client ------------------------------------------------------------------


def test_original_sdk_client_is_accepted(live_server: Any) -> None:
    import memtrace  # memtrace-sdk 0.2.0, the original's client

    live, key = live_server
    for client_cls in (memtrace.AsyncMemtrace, memtrace.Memtrace):
        client = client_cls(live.url, key)
        assert is_original_client(client)
        handle = as_handle(client)
        assert not is_original_client(handle.sync)  # our own HTTP client
        model = scripted_model(
            [
                [
                    call(
                        "memtrace_remember",
                        {**NULLS_REMEMBER, "content": f"via {client_cls.__name__}"},
                        call_id="c1",
                    )
                ],
                [text("ok")],
            ]
        )
        # the original's call shape: create_memtrace_tools(client, agent_id, session_id=...)
        tools = create_memtrace_tools(client, "orig-agent", session_id="orig-s")
        run_agent("run", Agent(name="a", model=model, tools=tools), "hi")
        assert outputs(model, 1)["c1"].startswith("Remembered as mem_")
        handle.close()
    with memtrace.Memtrace(live.url, key) as check:
        contents = sorted(m.content for m in check.recall("orig-agent", since="1h").memories)
    assert contents == ["via AsyncMemtrace", "via Memtrace"]
    with pytest.raises(TypeError, match="api_key applies only"):
        as_handle(memtrace.Memtrace(live.url, key), api_key="x")


async def test_an_aconnect_handle_on_the_runners_loop(handle_url: tuple[str, Any]) -> None:
    from agents import Runner

    from memtrace_core import aconnect

    url, options = handle_url
    mt = await aconnect(url, **options)
    try:
        model = scripted_model(
            [
                [
                    call(
                        "memtrace_remember",
                        {**NULLS_REMEMBER, "content": "async fact"},
                        call_id="c1",
                    )
                ],
                [call("memtrace_recall", NULLS_RECALL, call_id="c2")],
                [text("ok")],
            ]
        )
        agent = Agent(name="a", model=model, tools=create_memtrace_tools(mt, "async-bot"))
        result = await Runner.run(agent, "go")
        assert result.final_output == "ok"
        assert outputs(model, 2)["c2"].endswith(": async fact")
        assert [m.content for m in (await mt.recall("async-bot", "1h")).memories] == ["async fact"]
    finally:
        await mt.close()
