"""Memory survives the process: process 1 runs an agent that remembers facts through the
memtrace tools (and records its turns through the middleware); a brand-new process 2 runs an
agent with MemtraceMiddleware and its fake model must RECEIVE those facts in its system message
— for the same session, for a new session (the original's integration asked a brand-new session
for context and so injected nothing) and with no session; and an item process 1 put in its
LangGraph store (MemtraceStore) is what a tool of process 2 reads through ``runtime.store``.
Over the SQLite file and over a live memtrace server (URL + key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from memtrace_core.api import MemoryAPI

SCRIPT = r"""
import json, os, sys
from dataclasses import dataclass
from typing import Any

from langchain.agents import create_agent
from langchain.tools import ToolRuntime, tool
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import Field

from memtrace_core import connect
from memtrace_langchain import MemtraceStore
from memtrace_langchain.middleware import MemtraceMiddleware
from memtrace_langchain.tools import memtrace_tools


class RecordingChatModel(GenericFakeChatModel):
    received: list[list[Any]] = Field(default_factory=list)

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.received.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


@dataclass
class Ctx:
    agent_id: str
    session_id: str | None = None


@tool
def host_of(environment: str, runtime: ToolRuntime) -> str:
    "The host of an environment, from the agent store."
    item = runtime.store.get(("ops", "hosts"), environment)
    return "unknown" if item is None else f"{item.value['host']} ({item.value['cpu']} CPUs)"


role, url = sys.argv[1], sys.argv[2]
session = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
key = os.environ.get("MEMTRACE_TEST_KEY")
mt = connect(url, api_key=key) if key else connect(url)

if role == "write":
    def call(name, args, i):
        return {"name": name, "args": args, "id": f"w{i}", "type": "tool_call"}

    model = RecordingChatModel(messages=iter([
        AIMessage(content="", tool_calls=[
            call("remember", {"content": "The deploy key rotates every Monday", "event_type": "ops_fact"}, 1),
            call("remember", {"content": "Staging runs on host kestrel-7"}, 2),
            call("decide", {"decision": "Freeze deploys on Fridays", "reasoning": "two outages"}, 3),
        ]),
        AIMessage(content="Noted all three."),
    ]))
    agent = create_agent(
        model,
        memtrace_tools(mt),
        middleware=[MemtraceMiddleware(mt, record_turns=True)],
        context_schema=Ctx,
        store=MemtraceStore(mt, agent_id="ops-bot"),
    )
    # what a node or tool of this agent keeps in its LangGraph store
    MemtraceStore(mt, agent_id="ops-bot").put(
        ("ops", "hosts"), "staging", {"content": "Staging runs on kestrel-7", "host": "kestrel-7", "cpu": 8}
    )
    agent.invoke(
        {"messages": [HumanMessage("Please keep these ops facts in mind")]},
        context=Ctx(agent_id="ops-bot", session_id="first-session"),
    )
    results = [m.content for m in model.received[-1] if isinstance(m, ToolMessage)]
    print(json.dumps({"results": results, "pid": os.getpid()}))
else:
    model = RecordingChatModel(messages=iter([
        AIMessage(content="", tool_calls=[
            {"name": "host_of", "args": {"environment": "staging"}, "id": "r1", "type": "tool_call"}
        ]),
        AIMessage(content="ok"),
    ]))
    agent = create_agent(
        model,
        [host_of],
        system_prompt="You are the ops assistant.",
        middleware=[MemtraceMiddleware(mt, agent_id="ops-bot", max_tokens=1000)],
        context_schema=Ctx,
        store=MemtraceStore(mt, agent_id="ops-bot"),
    )
    agent.invoke(
        {"messages": [HumanMessage("When does the deploy key rotate?")]},
        context=Ctx(agent_id="ops-bot", session_id=session),
    )
    first = model.received[0][0]
    print(json.dumps({
        "system": first.text if isinstance(first, SystemMessage) else None,
        "types": [m.type for m in model.received[0]],
        "tool_results": [m.content for m in model.received[-1] if isinstance(m, ToolMessage)],
        "pid": os.getpid(),
    }))
mt.close()
"""


def run(tmp_path: Path, handle_url: tuple[str, Any], *args: str) -> dict[str, Any]:
    script = tmp_path / "lc_process.py"
    script.write_text(SCRIPT)
    url, options = handle_url
    env = dict(os.environ)
    env.pop("MEMTRACE_TEST_KEY", None)
    if options.get("api_key"):
        env["MEMTRACE_TEST_KEY"] = options["api_key"]
    done = subprocess.run(
        [sys.executable, str(script), args[0], url, *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["pid"] != os.getpid()
    return out


def test_a_new_process_gets_what_an_earlier_process_remembered(
    tmp_path: Path, handle_url: tuple[str, Any], handle: MemoryAPI
) -> None:
    written = run(tmp_path, handle_url, "write")
    assert [r.split()[0] for r in written["results"]] == ["Remembered", "Remembered", "Decision"]
    stored = handle.recall("ops-bot", limit=50).memories
    assert {m.session_id for m in stored if m.key is None} == {"first-session"}
    assert [m.key for m in stored if m.key is not None] == ["staging"]  # the store's item
    assert {m.content for m in stored} >= {
        "The deploy key rotates every Monday",
        "Staging runs on host kestrel-7",
        "Freeze deploys on Fridays",
        "Please keep these ops facts in mind",
        "Noted all three.",
    }

    for session, title in (
        ("first-session", "## Session Context (first-session)"),
        ("second-session", "## Agent Context (ops-bot)"),  # new session: the agent's memory
        ("-", "## Agent Context (ops-bot)"),  # no session at all
    ):
        seen = run(tmp_path, handle_url, "read", session)
        system = seen["system"]
        assert seen["types"] == ["system", "human"], session
        assert system is not None
        assert system.startswith("You are the ops assistant.\n\n")
        assert title in system, session
        assert "ops_fact: The deploy key rotates every Monday" in system
        assert "Staging runs on host kestrel-7" in system
        assert "decision: Freeze deploys on Fridays" in system
        assert "user_message: Please keep these ops facts in mind" in system
        assert "assistant_message: Noted all three." in system
        # the LangGraph store of process 1, read by a tool of process 2 through runtime.store
        assert seen["tool_results"] == ["kestrel-7 (8 CPUs)"], session
