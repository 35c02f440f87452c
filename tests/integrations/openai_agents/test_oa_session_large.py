"""Items beyond the engine's limits: an item whose JSON is larger than ``part_bytes`` (1 MiB)
is stored in parts and rebuilt exactly — through get_items, pop_item and a real run whose tool
returns megabytes — on both transports (the server's 4 MiB request limit included), and a
clear removes the parts too."""

from __future__ import annotations

import json
from typing import Any

from agents import Agent, Runner, function_tool
from oa_fakes import call, scripted_model, text

from memtrace_core.api import MemoryAPI
from memtrace_openai_agents import MemtraceSession
from memtrace_openai_agents.session import PARTS_NAMESPACE

BIG = 5 * 1024 * 1024  # beyond the payload limit (3 MiB) and a request (4 MiB)


def big_output(call_id: str, size: int = BIG) -> dict[str, Any]:
    # quotes and non-ASCII: the stored JSON text is larger than the characters
    chunk = 'a "quoted" value, é 日本 🎉\n'
    return {
        "type": "function_call_output",
        "call_id": call_id,
        "output": (chunk * (size // len(chunk) + 1))[:size],
    }


async def test_a_large_item_round_trips_and_pops_whole(handle: MemoryAPI) -> None:
    session = MemtraceSession("big-1", handle, agent_id="bot")
    small = {"role": "user", "content": "read the log"}
    item = big_output("c1")
    after = {"role": "assistant", "content": "done"}
    await session.add_items([small, item, after])
    assert await session.get_items() == [small, item, after]
    assert await session.get_items(limit=2) == [item, after]
    # the large item is readable as what it is (its event type and text), not as "parts"
    (mark,) = [
        m
        for m in handle.search_memories(namespace=["openai-agents", "session", "big-1"]).results
        if m.event_type == "function_call_output"
    ]
    assert mark.content.startswith('a "quoted" value')
    # the parts are not items: three items, however many memories
    parts = handle.search_memories(namespace=[*PARTS_NAMESPACE, "big-1"], limit=1000)
    assert parts.count > 5
    assert await session.pop_item() == after
    popped = await session.pop_item()
    assert json.dumps(popped, sort_keys=True) == json.dumps(item, sort_keys=True)
    # popping the large item deleted its parts
    assert handle.search_memories(namespace=[*PARTS_NAMESPACE, "big-1"]).count == 0
    assert await session.get_items() == [small]
    await session.add_items([big_output("c2", 2 * 1024 * 1024)])
    await session.clear_session()
    assert await session.get_items() == []
    assert handle.search_memories(namespace=[*PARTS_NAMESPACE, "big-1"]).count == 0


async def test_a_run_whose_tool_returns_megabytes_completes(handle: MemoryAPI) -> None:
    payload = big_output("unused")["output"]

    @function_tool
    def read_log() -> str:
        """Read the whole log."""
        return str(payload)

    model = scripted_model([[call("read_log", {}, call_id="c1")], [text("the log is long")]])
    agent = Agent(name="reader", model=model, tools=[read_log])
    session = MemtraceSession("big-run", handle, agent_id="reader")
    result = await Runner.run(agent, "read the log", session=session)
    assert result.final_output == "the log is long"
    items = await session.get_items()
    assert [i.get("type", "message") for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items[2]["output"] == payload
    # and a new session object on the same store resumes the whole history
    again = await MemtraceSession("big-run", handle).get_items()
    assert again == items
