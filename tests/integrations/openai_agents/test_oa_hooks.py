"""MemtraceRunHooks: tool calls and handoffs of a (multi-agent) run become memories of the run's
memtrace agent/session — only when asked (each kind off by default) — and a memtrace failure
never breaks the run. Through Runner.run, run_sync and run_streamed, over a SQLite file and a
live server."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from agents import Agent, function_tool
from oa_fakes import MODES, call, run_agent, scripted_model, text

from memtrace_core.api import MemoryAPI
from memtrace_openai_agents.hooks import MemtraceRunHooks


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city's name.
    """
    return f"Sunny in {city}"


@function_tool
def broken_tool(x: int) -> str:
    """Always fails."""
    raise RuntimeError("boom")


def _triage(model: Any) -> tuple[Agent[Any], Agent[Any]]:
    billing = Agent(name="billing", model=model, tools=[get_weather])
    triage = Agent(name="triage", model=model, tools=[get_weather], handoffs=[billing])
    return triage, billing


def _script() -> Any:
    return scripted_model(
        [
            [call("get_weather", {"city": "Oslo"}, call_id="t1")],
            [call("transfer_to_billing", {}, call_id="h1")],
            [call("get_weather", {"city": "Rome"}, call_id="t2")],
            [text("done")],
        ]
    )


@pytest.mark.parametrize("mode", MODES)
def test_tool_calls_and_handoffs_leave_an_audit_trail(handle: MemoryAPI, mode: str) -> None:
    model = _script()
    triage, _ = _triage(model)
    hooks = MemtraceRunHooks(
        handle, agent_id="desk", record_tool_calls=True, record_handoffs=True, tags=["audit"]
    )
    result = run_agent(mode, triage, "weather?", hooks=hooks, context={"session_id": f"r-{mode}"})
    assert result.final_output == "done"
    assert result.last_agent.name == "billing"

    memories = list(reversed(handle.recall("desk", "1h").memories))  # oldest first
    assert [(m.event_type, m.session_id, m.tags) for m in memories] == [
        ("tool_call", f"r-{mode}", ["audit"]),
        ("handoff", f"r-{mode}", ["audit"]),
        ("tool_call", f"r-{mode}", ["audit"]),
    ]
    oslo, handoff, rome = memories
    assert oslo.content == (
        'Tool get_weather (call t1) by agent triage: arguments {"city": "Oslo"} -> Sunny in Oslo'
    )
    assert rome.content.startswith("Tool get_weather (call t2) by agent billing:")
    meta = oslo.metadata or {}
    assert {
        k: meta[k] for k in ("source", "tool", "call_id", "sdk_agent", "arguments", "result")
    } == {
        "source": "openai-agents",
        "tool": "get_weather",
        "call_id": "t1",
        "sdk_agent": "triage",
        "arguments": '{"city": "Oslo"}',
        "result": "Sunny in Oslo",
    }
    assert meta["duration_ms"] >= 0
    assert handoff.content == "Handoff from triage to billing"
    assert handoff.metadata == {
        "source": "openai-agents",
        "from_agent": "triage",
        "to_agent": "billing",
    }


def test_off_by_default_and_per_kind(handle: MemoryAPI) -> None:
    for agent_id, options in (
        ("none", {}),
        ("tools-only", {"record_tool_calls": True}),
        ("handoffs-only", {"record_handoffs": True}),
    ):
        triage, _ = _triage(_script())
        hooks = MemtraceRunHooks(handle, agent_id=agent_id, **options)
        assert run_agent("run", triage, "weather?", hooks=hooks).final_output == "done"
    assert handle.recall("none", "1h").memories == []
    assert [m.event_type for m in handle.recall("tools-only", "1h").memories] == [
        "tool_call",
        "tool_call",
    ]
    assert [m.event_type for m in handle.recall("handoffs-only", "1h").memories] == ["handoff"]


def test_context_overrides_and_failed_tools_are_recorded(handle: MemoryAPI) -> None:
    model = scripted_model([[call("broken_tool", {"x": 1}, call_id="b1")], [text("recovered")]])
    agent = Agent(name="solo", model=model, tools=[broken_tool])
    hooks = MemtraceRunHooks(handle, agent_id="default", session_id="d", record_tool_calls=True)
    ctx = {"agent_id": "from-ctx", "session_id": "ctx-s"}
    assert run_agent("run_sync", agent, "go", hooks=hooks, context=ctx).final_output == "recovered"
    assert handle.recall("default", "1h").memories == []
    [memory] = handle.recall("from-ctx", "1h").memories
    assert memory.session_id == "ctx-s"
    assert memory.content.startswith('Tool broken_tool (call b1) by agent solo: arguments {"x": 1}')
    assert "-> An error occurred while running the tool" in memory.content  # what the model got


def test_memtrace_errors_never_break_the_run(
    handle: MemoryAPI, caplog: pytest.LogCaptureFixture
) -> None:
    down = MemtraceRunHooks(
        "http://127.0.0.1:9",
        api_key="k",
        agent_id="desk",
        record_tool_calls=True,
        record_handoffs=True,
    )
    no_agent = MemtraceRunHooks(handle, record_tool_calls=True, record_handoffs=True)
    huge = MemtraceRunHooks(
        handle, agent_id="desk", record_tool_calls=True, max_chars=10**6, tags=["not a valid tag!"]
    )
    with caplog.at_level(logging.WARNING, logger="memtrace_openai_agents.hooks"):
        for hooks in (down, no_agent, huge):
            triage, _ = _triage(_script())
            assert run_agent("run_streamed", triage, "go", hooks=hooks).final_output == "done"
    messages = [r.getMessage() for r in caplog.records]
    assert any("tool_call not recorded: TransportError" in m for m in messages)
    assert any("handoff not recorded: TransportError" in m for m in messages)
    assert any("not recorded: ValueError: no memtrace agent_id" in m for m in messages)
    assert any("tool_call not recorded: ValidationError" in m for m in messages)
    assert handle.recall("desk", "1h").memories == []
