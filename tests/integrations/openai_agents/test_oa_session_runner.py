"""MemtraceSession under the SDK's real Runner (Runner.run, run_sync, run_streamed), driven by
the SDK's ScriptedModel (0.21+) and by a hand-written fake Model (all versions): a tool-calling
turn stores exactly what SQLiteSession stores for the same run, then a second run in a NEW
PROCESS on the same session gives the model the whole history. Plus the run context choosing
the session (the ``wrapper`` opt-in). On a SQLite file and on a live memtrace server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, SQLiteSession, function_tool
from oa_fakes import FakeModel, call, text

from memtrace_core.api import MemoryAPI
from memtrace_openai_agents.session import NAMESPACE, MemtraceSession

try:
    from agents.testing import ScriptedModel
except ImportError:  # openai-agents 0.20: no agents.testing
    ScriptedModel = None

MODEL_KINDS = ["fake"] if ScriptedModel is None else ["fake", "scripted"]
RUNNER_METHODS = ["run", "run_sync", "run_streamed"]
HERE = Path(__file__).resolve().parent


@function_tool
def remember_fact(fact: str) -> str:
    """Store a fact for later.

    Args:
        fact: the fact to store.
    """
    return f"stored: {fact}"


class Script:
    """One scripted model of either kind, and the inputs it received."""

    def __init__(self, kind: str, turns: list[list[Any]]) -> None:
        self.kind = kind
        self.model: Any = FakeModel(turns) if kind == "fake" else ScriptedModel(turns)

    @property
    def inputs(self) -> list[list[Any]]:
        out = []
        for recorded in self.model.calls:
            given = recorded.input
            out.append(
                [{"role": "user", "content": given}] if isinstance(given, str) else list(given)
            )
        return out


def _run_sync(agent: Agent[Any], prompt: str, **kwargs: Any) -> Any:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, prompt, **kwargs)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def run_agent(method: str, agent: Agent[Any], prompt: str, **kwargs: Any) -> Any:
    """The SDK tests' helper: the same run through run / run_sync (in a thread with its own
    loop) / run_streamed (consumed to the end)."""
    if method == "run":
        return await Runner.run(agent, prompt, **kwargs)
    if method == "run_sync":
        return await asyncio.to_thread(_run_sync, agent, prompt, **kwargs)
    result = Runner.run_streamed(agent, prompt, **kwargs)
    async for _ in result.stream_events():
        pass
    return result


def tool_turns() -> list[list[Any]]:
    return [
        [call("remember_fact", {"fact": "the deploy key rotates on Mondays"}, call_id="c1")],
        [text("Noted: it rotates on Mondays.")],
    ]


SCRIPT = r"""
import asyncio, json, os, sys
sys.path.insert(0, sys.argv[1])
from agents import Agent, Runner, function_tool, set_tracing_disabled
from memtrace_openai_agents.session import MemtraceSession
from oa_fakes import FakeModel, text

set_tracing_disabled(True)
url, session_id, method = sys.argv[2], sys.argv[3], sys.argv[4]

@function_tool
def remember_fact(fact: str) -> str:
    "Store a fact for later."
    return f"stored: {fact}"

model = FakeModel([[text("You asked me to remember that the deploy key rotates on Mondays.")]])
agent = Agent(name="assistant", model=model, tools=[remember_fact])
session = MemtraceSession.from_url(session_id, url, os.environ.get("MEMTRACE_TEST_KEY"), agent_id="bot1")
question = "What did I ask you to remember?"
if method == "run_sync":
    result = Runner.run_sync(agent, question, session=session)
elif method == "run":
    result = asyncio.run(Runner.run(agent, question, session=session))
else:
    async def streamed():
        result = Runner.run_streamed(agent, question, session=session)
        async for _ in result.stream_events():
            pass
        return result
    result = asyncio.run(streamed())
items = asyncio.run(session.get_items())
session.close()
print(json.dumps({"inputs": [c.input for c in model.calls], "final": result.final_output, "items": items}))
"""


def run_second_process(url: str, options: dict[str, Any], session_id: str, method: str) -> Any:
    env = dict(os.environ)
    env.pop("MEMTRACE_TEST_KEY", None)
    if "api_key" in options:
        env["MEMTRACE_TEST_KEY"] = options["api_key"]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(HERE), url, session_id, method],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model_kind", MODEL_KINDS)
@pytest.mark.parametrize("method", RUNNER_METHODS)
async def test_tool_turn_then_a_new_process_sees_the_history(
    method: str,
    model_kind: str,
    handle: MemoryAPI,
    handle_url: tuple[str, Any],
    tmp_path: Path,
) -> None:
    session = MemtraceSession("conv_run", handle, agent_id="bot1")
    sdk_session = SQLiteSession("conv_run", tmp_path / "sdk.db")
    scripts: list[Script] = []
    try:
        for target in (session, sdk_session):
            script = Script(model_kind, tool_turns())
            scripts.append(script)
            agent = Agent(name="assistant", model=script.model, tools=[remember_fact])
            result = await run_agent(
                method, agent, "Remember: the deploy key rotates on Mondays", session=target
            )
            assert result.final_output == "Noted: it rotates on Mondays."
        ours = await session.get_items()
        assert ours == await sdk_session.get_items()  # identical to the SDK's own session
    finally:
        sdk_session.close()
    kinds = [item.get("type") or item.get("role") for item in ours]
    assert kinds == ["user", "function_call", "function_call_output", "message"]
    assert ours[2]["output"] == "stored: the deploy key rotates on Mondays"
    # the model's second call (after the tool ran) received the user turn, call and output
    assert scripts[0].inputs[1] == ours[:3]
    stored = handle.search_memories(namespace=[*NAMESPACE, "conv_run"], order="asc").results
    assert [m.event_type for m in stored] == [
        "user_message",
        "function_call",
        "function_call_output",
        "assistant_message",
    ]
    assert stored[1].content.startswith("remember_fact(")

    url, options = handle_url
    second = run_second_process(url, options, "conv_run", method)
    question = {"role": "user", "content": "What did I ask you to remember?"}
    assert second["inputs"] == [[*ours, question]]  # the whole history, then the new turn
    assert second["final"].startswith("You asked me to remember")
    assert second["items"][:5] == [*ours, question]
    assert len(second["items"]) == 6
    assert await session.get_items() == second["items"]


@pytest.mark.parametrize("method", RUNNER_METHODS)
async def test_run_context_chooses_the_session(method: str, handle: MemoryAPI) -> None:
    """One MemtraceSession object serves two conversations: the run context's session_id
    (the SDK passes the run's RunContextWrapper to every session call) picks the history."""
    session = MemtraceSession("shared_default", handle, agent_id="bot1")
    first = FakeModel([[text("hello alice")], [text("again alice")]])
    agent = Agent(name="assistant", model=first)
    alice = {"session_id": "conv_alice", "agent_id": "bot_alice"}
    await run_agent(method, agent, "I am Alice", session=session, context=alice)
    other = FakeModel([[text("hello bob")]])
    await run_agent(
        method,
        Agent(name="assistant", model=other),
        "I am Bob",
        session=session,
        context={"session_id": "conv_bob"},
    )
    await run_agent(method, agent, "Who am I?", session=session, context=alice)
    texts = [
        i.get("content") if i.get("role") == "user" else i["content"][0]["text"]
        for i in first.calls[1].input
    ]
    assert texts == ["I am Alice", "hello alice", "Who am I?"]
    assert other.calls[0].input == [{"role": "user", "content": "I am Bob"}]
    assert await session.get_items() == []  # the default conversation is untouched
    alice_items = handle.search_memories(namespace=[*NAMESPACE, "conv_alice"]).results
    assert len(alice_items) == 4
    assert {m.agent_id for m in alice_items} == {"bot_alice"}
    bob_items = handle.search_memories(namespace=[*NAMESPACE, "conv_bob"]).results
    assert {m.agent_id for m in bob_items} == {"bot1"}
