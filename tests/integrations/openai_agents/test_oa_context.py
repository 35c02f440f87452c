"""Context injection that really injects: ``memtrace_instructions`` as ``Agent(instructions=...)``
puts memtrace's session (or agent) context into the system instructions the model ACTUALLY
receives — asserted on the scripted model's recorded calls, through Runner.run, run_sync and
run_streamed, over a SQLite file and a live server, and in a new process after a first process
stored the memories through the memtrace tools."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunContextWrapper
from oa_fakes import MODES, call, instructions_received, run_agent, scripted_model, text

from memtrace_core.api import MemoryAPI
from memtrace_openai_agents.context import DEFAULT_HEADING, memtrace_instructions
from memtrace_openai_agents.tools import create_memtrace_tools

BASE = "You are the support agent."


def _agent(model: Any, instructions: Any, **kwargs: Any) -> Agent[Any]:
    return Agent(name="support", model=model, instructions=instructions, **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_session_context_reaches_the_model(handle: MemoryAPI, mode: str) -> None:
    handle.remember("bot", "The customer's order 42 arrived damaged", session_id="s1")
    handle.decide("bot", "Ship a replacement", "damaged on arrival", session_id="s1")
    model = scripted_model([[text("ok")]])
    instructions = memtrace_instructions(handle, BASE, agent_id="bot")
    run_agent(mode, _agent(model, instructions), "status?", context={"session_id": "s1"})
    [received] = instructions_received(model)
    assert received is not None
    assert received.startswith(f"{BASE}\n\n{DEFAULT_HEADING}\n\n## Session Context (s1)")
    assert "The customer's order 42 arrived damaged" in received
    assert "Ship a replacement" in received


def test_a_new_session_gets_the_agent_context_and_scopes(handle: MemoryAPI) -> None:
    handle.remember("bot", "Prefers replies in French", session_id="old")
    got: dict[str, str | None] = {}
    for scope in ("auto", "session", "agent"):
        model = scripted_model([[text("ok")]])
        instructions = memtrace_instructions(handle, BASE, agent_id="bot", scope=scope)
        run_agent("run", _agent(model, instructions), "hi", context={"session_id": "brand-new"})
        [got[scope]] = instructions_received(model)
    # the original asked the brand-new session and injected nothing; "auto" falls back
    assert got["auto"] is not None
    assert "Prefers replies in French" in got["auto"]
    assert got["session"] == BASE  # only the (empty) session: nothing to add
    assert got["agent"] == got["auto"]
    # with memories in the session, "agent" still describes the agent across sessions
    handle.remember("bot", "Asked about invoices", session_id="brand-new")
    model = scripted_model([[text("ok")]])
    agent_wide = memtrace_instructions(handle, BASE, agent_id="bot", scope="agent")
    run_agent("run", _agent(model, agent_wide), "hi", context={"session_id": "brand-new"})
    [received] = instructions_received(model)
    assert received is not None
    assert "Prefers replies in French" in received
    assert "Asked about invoices" in received
    with pytest.raises(ValueError, match="scope"):
        memtrace_instructions(handle, BASE, agent_id="bot", scope="everything")  # type: ignore[arg-type]


def test_nothing_to_inject_leaves_the_instructions_alone(handle: MemoryAPI) -> None:
    model = scripted_model([[text("ok")], [text("ok")]])
    run_agent("run", _agent(model, memtrace_instructions(handle, BASE, agent_id="nobody")), "hi")
    run_agent("run", _agent(model, memtrace_instructions(handle, agent_id="nobody")), "hi")
    assert instructions_received(model) == [BASE, ""]


def test_memory_written_by_a_tool_is_in_the_next_model_call(handle: MemoryAPI) -> None:
    """Instructions are computed before every model call: what the first turn remembered is in
    the second turn's instructions of the same run."""
    model = scripted_model(
        [
            [
                call(
                    "memtrace_remember",
                    {
                        "content": "The user's name is Ada",
                        "event_type": None,
                        "memory_type": None,
                        "tags": None,
                        "importance": None,
                    },
                    call_id="c1",
                )
            ],
            [text("Hello Ada")],
        ]
    )
    agent = _agent(
        model,
        memtrace_instructions(handle, BASE),
        tools=create_memtrace_tools(handle),
    )
    run_agent("run_sync", agent, "I am Ada", context={"agent_id": "bot", "session_id": "s7"})
    first, second = instructions_received(model)
    assert first == BASE
    assert second is not None
    assert "The user's name is Ada" in second
    assert "(s7)" in second


def test_callable_base_instructions_and_the_budget(handle: MemoryAPI) -> None:
    for i in range(40):
        handle.remember("bot", f"Fact number {i}: " + "x" * 150, session_id="s1")

    def sync_base(ctx: RunContextWrapper[Any], agent: Agent[Any]) -> str:
        return f"{BASE} ({agent.name}, {ctx.context['session_id']})"

    async def async_base(ctx: RunContextWrapper[Any], agent: Agent[Any]) -> str:
        return f"async {BASE}"

    model = scripted_model([[text("ok")], [text("ok")]])
    for base in (sync_base, async_base):
        instructions = memtrace_instructions(handle, base, agent_id="bot", max_tokens=300)
        run_agent("run", _agent(model, instructions), "hi", context={"session_id": "s1"})
    first, second = instructions_received(model)
    assert first is not None
    assert second is not None
    assert first.startswith(f"{BASE} (support, s1)\n\n{DEFAULT_HEADING}")
    assert second.startswith(f"async {BASE}\n\n{DEFAULT_HEADING}")
    injected = first.split(DEFAULT_HEADING, 1)[1]
    assert "Fact number 39" in injected  # newest kept first
    assert "Fact number 0:" not in injected
    assert len(injected) <= 300 * 4 + 10  # the engine's budget (about 4 characters a token)


def test_memtrace_failure_keeps_the_base_instructions(caplog: pytest.LogCaptureFixture) -> None:
    model = scripted_model([[text("ok")], [text("ok")]])
    down = memtrace_instructions("http://127.0.0.1:9", BASE, agent_id="bot", api_key="k")
    no_agent = memtrace_instructions("http://127.0.0.1:9", BASE, api_key="k")
    with caplog.at_level(logging.WARNING, logger="memtrace_openai_agents.context"):
        assert run_agent("run", _agent(model, down), "hi").final_output == "ok"
        assert run_agent("run", _agent(model, no_agent), "hi").final_output == "ok"
    assert instructions_received(model) == [BASE, BASE]
    messages = [r.getMessage() for r in caplog.records]
    assert any("memtrace context not injected: TransportError" in m for m in messages)
    assert any("no memtrace agent_id" in m for m in messages)


# -- a new process ------------------------------------------------------------------------------

SCRIPT = r"""
import json, os, sys
from agents import Agent, set_tracing_disabled
from oa_fakes import call, instructions_received, run_agent, scripted_model, text
from memtrace_openai_agents.context import memtrace_instructions
from memtrace_openai_agents.tools import create_memtrace_tools

set_tracing_disabled(True)
role, url, sessions = sys.argv[1], sys.argv[2], sys.argv[3:]
key = os.environ.get("MEMTRACE_TEST_KEY") or None
nulls = {"event_type": None, "memory_type": None, "tags": None, "importance": None}
out = []
for session in sessions:
    if role == "write":
        model = scripted_model([
            [call("memtrace_remember", {**nulls, "content": "The deploy key rotates every Monday"},
                  call_id="w1"),
             call("memtrace_decide", {"decision": "Freeze deploys on Fridays",
                  "reasoning": "two outages", "tags": None, "importance": None}, call_id="w2")],
            [text("Noted.")],
        ])
        agent = Agent(name="ops", model=model,
                      tools=create_memtrace_tools(url, "ops-bot", api_key=key))
    else:
        model = scripted_model([[text("Mondays.")]])
        agent = Agent(name="ops", model=model, instructions=memtrace_instructions(
            url, "You are the ops agent.", agent_id="ops-bot", api_key=key))
    result = run_agent("run", agent, "go", context={"session_id": session})
    out.append({"final": result.final_output, "instructions": instructions_received(model)})
print(json.dumps(out))
"""


def _process(handle_url: tuple[str, Any], role: str, *sessions: str) -> list[dict[str, Any]]:
    url, options = handle_url
    env = dict(os.environ)
    here = str(Path(__file__).parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    env["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
    if "api_key" in options:
        env["MEMTRACE_TEST_KEY"] = options["api_key"]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, role, url, *sessions],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_new_process_receives_what_the_first_stored(handle_url: tuple[str, Any]) -> None:
    [first] = _process(handle_url, "write", "ops-1")
    assert first["final"] == "Noted."
    assert first["instructions"] == [None, None]  # process 1 has no dynamic instructions
    # process 2: the same session, then a brand-new one (the agent's context)
    same, new = _process(handle_url, "read", "ops-1", "ops-2")
    for run, scope in ((same, "## Session Context (ops-1)"), (new, "## Agent Context (ops-bot)")):
        assert run["final"] == "Mondays."
        [received] = run["instructions"]
        assert received.startswith(f"You are the ops agent.\n\n{DEFAULT_HEADING}\n\n{scope}")
        assert "The deploy key rotates every Monday" in received
        assert "Freeze deploys on Fridays" in received
