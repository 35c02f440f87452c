"""MemtraceSession directly: the cases of the SDK's own tests/memory/test_session.py (latest-N
ordering, limit=0, pop until empty, isolation between two session ids, clear, session
settings, unicode) run against MemtraceSession AND, side by side, against the SDK's
file-backed SQLiteSession with identical results; a lossless round trip of every item type;
a large tool output; duplicates; concurrent add_items; bad input; the constructors. Every
test runs on a SQLite file and on a live memtrace server."""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from agents import Session, SessionSettings, SQLiteSession
from agents.memory.session import _session_accepts_wrapper

from memtrace_core import aconnect, connect
from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_core.errors import MemtraceError
from memtrace_openai_agents.session import (
    NAMESPACE,
    MemtraceSession,
    item_content,
    item_event_type,
)

Factory = Callable[[str], Any]


@pytest.fixture
async def async_handle(handle_url: tuple[str, Any]) -> AsyncIterator[AsyncMemoryAPI]:
    """An async-only memtrace handle (``aconnect``) on the transport under test."""
    url, options = handle_url
    mt = await aconnect(url, **options)
    yield mt
    await mt.close()


@pytest.fixture(params=["memtrace", "sqlite_session"])
async def make_session(
    request: pytest.FixtureRequest, handle: MemoryAPI, tmp_path: Path
) -> AsyncIterator[Factory]:
    """Sessions of one store: MemtraceSession over the transport under test, or the SDK's
    SQLiteSession over one file — the same test body runs on both."""
    made: list[Any] = []

    def factory(session_id: str, **kwargs: Any) -> Any:
        if request.param == "memtrace":
            session: Any = MemtraceSession(session_id, handle, **kwargs)
        else:
            session = SQLiteSession(session_id, tmp_path / "sdk.db", **kwargs)
        made.append(session)
        return session

    yield factory
    for session in made:
        session.close()


def contents(items: list[Any]) -> list[Any]:
    return [item.get("content") for item in items]


# -- the SDK's session cases, on both implementations -----------------------------------------


async def test_protocol_and_wrapper_opt_in(handle: MemoryAPI) -> None:
    session = MemtraceSession("proto", handle)
    assert isinstance(session, Session)
    assert _session_accepts_wrapper(session)  # all four methods take `wrapper`
    assert session.session_id == "proto"
    assert session.session_settings is None


async def test_direct_add_get_clear(make_session: Factory) -> None:
    session = make_session("direct_test")
    await session.add_items(
        [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there!"}]
    )
    retrieved = await session.get_items()
    assert [(i.get("role"), i.get("content")) for i in retrieved] == [
        ("user", "Hello"),
        ("assistant", "Hi there!"),
    ]
    await session.clear_session()
    assert await session.get_items() == []


async def test_get_items_latest_n_in_order(make_session: Factory) -> None:
    session = make_session("count_test")
    items = [
        {"role": "user", "content": "Message 1"},
        {"role": "assistant", "content": "Response 1"},
        {"role": "user", "content": "Message 2"},
        {"role": "assistant", "content": "Response 2"},
        {"role": "user", "content": "Message 3"},
        {"role": "assistant", "content": "Response 3"},
    ]
    await session.add_items(items)
    assert contents(await session.get_items()) == contents(items)
    assert contents(await session.get_items(limit=2)) == ["Message 3", "Response 3"]
    assert contents(await session.get_items(limit=4)) == [
        "Message 2",
        "Response 2",
        "Message 3",
        "Response 3",
    ]
    assert contents(await session.get_items(limit=10)) == contents(items)
    assert await session.get_items(limit=0) == []
    assert contents(await session.get_items(limit=-1)) == contents(items)


async def test_pop_until_empty(make_session: Factory) -> None:
    session = make_session("pop_test")
    assert await session.pop_item() is None
    await session.add_items(
        [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi there!"},
            {"role": "user", "content": "How are you?"},
        ]
    )
    assert len(await session.get_items()) == 3
    popped = await session.pop_item()
    assert popped == {"role": "user", "content": "How are you?"}
    after = await session.get_items()
    assert len(after) == 2
    assert after[-1].get("content") == "Hi there!"
    assert await session.pop_item() == {"role": "assistant", "content": "Hi there!"}
    assert await session.pop_item() == {"role": "user", "content": "Hello"}
    assert await session.pop_item() is None
    assert await session.get_items() == []


async def test_pop_only_touches_its_session(make_session: Factory) -> None:
    one, two = make_session("session_1"), make_session("session_2")
    await one.add_items([{"role": "user", "content": "Session 1 message"}])
    await two.add_items(
        [
            {"role": "user", "content": "Session 2 message 1"},
            {"role": "user", "content": "Session 2 message 2"},
        ]
    )
    popped = await two.pop_item()
    assert popped is not None
    assert popped.get("content") == "Session 2 message 2"
    assert contents(await one.get_items()) == ["Session 1 message"]
    assert contents(await two.get_items()) == ["Session 2 message 1"]


async def test_isolation_and_clear_between_session_ids(make_session: Factory) -> None:
    cats, dogs = make_session("session_1"), make_session("session_2")
    await cats.add_items([{"role": "user", "content": "I like cats"}])
    await dogs.add_items([{"role": "user", "content": "I like dogs"}])
    await cats.add_items([{"role": "user", "content": "What did I say I like?"}])
    assert contents(await cats.get_items()) == ["I like cats", "What did I say I like?"]
    assert contents(await dogs.get_items()) == ["I like dogs"]
    await cats.clear_session()
    assert await cats.get_items() == []
    assert contents(await dogs.get_items()) == ["I like dogs"]


async def test_session_settings_limit(make_session: Factory) -> None:
    session = make_session("settings_limit", session_settings=SessionSettings(limit=3))
    assert session.session_settings.limit == 3
    await session.add_items([{"role": "user", "content": f"Message {i}"} for i in range(5)])
    assert contents(await session.get_items()) == ["Message 2", "Message 3", "Message 4"]
    # an explicit limit wins over the settings
    assert contents(await session.get_items(limit=1)) == ["Message 4"]
    unlimited = make_session("settings_dict", session_settings={"limit": 0})
    assert unlimited.session_settings.limit == 0
    await unlimited.add_items([{"role": "user", "content": "x"}])
    assert await unlimited.get_items() == []
    assert contents(await unlimited.get_items(limit=5)) == ["x"]


async def test_session_settings_unknown_key_refused(handle: MemoryAPI) -> None:
    with pytest.raises(TypeError, match="limitt"):
        MemtraceSession("bad_settings", handle, session_settings={"limitt": 1})


async def test_unicode_and_special_characters(make_session: Factory) -> None:
    session = make_session("unicode_test")
    items = [
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "😊👍"},
        {"role": "user", "content": "Привет"},
        {"role": "user", "content": "O'Reilly"},
        {"role": "assistant", "content": "Robert'); DROP TABLE students;--"},
    ]
    await session.add_items(items)
    assert await session.get_items() == items


async def test_identical_results_side_by_side(handle: MemoryAPI, tmp_path: Path) -> None:
    """One script of operations on MemtraceSession and on SQLiteSession: every result equal."""
    ours = MemtraceSession("parity", handle, session_settings={"limit": 4})
    sdk = SQLiteSession("parity", tmp_path / "parity.db", session_settings={"limit": 4})

    async def script(session: Any) -> list[Any]:
        out: list[Any] = []
        out.append(await session.pop_item())
        await session.add_items([{"role": "user", "content": f"m{i}"} for i in range(3)])
        await session.add_items(copy.deepcopy(ROUND_TRIP_ITEMS))
        await session.add_items([])
        out.append(await session.get_items())
        out.append(await session.get_items(limit=None))
        for limit in (0, 1, 2, 7, 100, -1):
            out.append(await session.get_items(limit=limit))
        out.append([await session.pop_item() for _ in range(3)])
        out.append(await session.get_items(limit=100))
        await session.clear_session()
        out.append(await session.get_items(limit=100))
        out.append(await session.pop_item())
        return out

    try:
        assert await script(ours) == await script(sdk)
    finally:
        ours.close()
        sdk.close()


# -- lossless round trip of every item type ---------------------------------------------------

ROUND_TRIP_ITEMS: list[dict[str, Any]] = [
    {"role": "user", "content": "plain easy message"},
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": "Be kind."},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "look at this"},
            {"type": "input_image", "image_url": "https://example.invalid/a.png", "detail": "auto"},
            {"type": "input_file", "file_id": "file-1", "filename": "notes.txt"},
        ],
    },
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [
            {"type": "output_text", "text": "Typed reply", "annotations": [], "logprobs": []},
            {"type": "refusal", "refusal": "no"},
        ],
    },
    {
        "type": "function_call",
        "call_id": "c1",
        "name": "remember",
        "arguments": '{"fact": "x", "n": 1}',
        "id": "fc_1",
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "c1", "output": "stored: x"},
    {
        "type": "function_call_output",
        "call_id": "c2",
        "output": [{"type": "input_text", "text": "list output"}],
    },
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "thinking about it"}],
        "encrypted_content": "gAAAA...",
    },
    {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {"type": "search", "query": "weather in Paris"},
    },
    {
        "type": "file_search_call",
        "id": "fs_1",
        "status": "completed",
        "queries": ["q1", "q2"],
        "results": [{"file_id": "f1", "text": "hit", "score": 0.5, "attributes": {}}],
    },
    {
        "type": "computer_call",
        "id": "cu_1",
        "call_id": "cc1",
        "status": "completed",
        "action": {"type": "click", "x": 10, "y": 20, "button": "left"},
        "pending_safety_checks": [],
    },
    {
        "type": "computer_call_output",
        "call_id": "cc1",
        "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AAAA"},
    },
    {
        "type": "mcp_list_tools",
        "id": "ml_1",
        "server_label": "docs",
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
    },
    {
        "type": "mcp_call",
        "id": "mc_1",
        "server_label": "docs",
        "name": "lookup",
        "arguments": '{"q": "x"}',
        "output": "found x",
    },
    {
        "type": "mcp_approval_request",
        "id": "ma_1",
        "server_label": "docs",
        "name": "lookup",
        "arguments": "{}",
    },
    {"type": "mcp_approval_response", "approval_request_id": "ma_1", "approve": True},
    {"type": "item_reference", "id": "msg_0"},
    {
        "type": "local_shell_call",
        "id": "ls_1",
        "call_id": "ls1",
        "status": "completed",
        "action": {"type": "exec", "command": ["ls"], "env": {}},
    },
    {
        "type": "future_item_kind_v9",
        "weird": {"nested": [1, 2.5, None, True, {"deep": ["x"]}]},
        "unicode": "żółć 🚀",
        "empty": {},
    },
    {"type": "2-not-an-event-name", "x": 1},
    {"no_type_no_role": True},
]


async def test_round_trip_every_item_type(handle: MemoryAPI) -> None:
    session = MemtraceSession("round_trip", handle)
    items = copy.deepcopy(ROUND_TRIP_ITEMS)
    await session.add_items(items)
    assert items == ROUND_TRIP_ITEMS  # the caller's items are not changed
    assert await session.get_items() == ROUND_TRIP_ITEMS
    # popping returns them unchanged too, newest first
    popped = [await session.pop_item() for _ in ROUND_TRIP_ITEMS]
    assert popped == list(reversed(ROUND_TRIP_ITEMS))
    assert await session.pop_item() is None


async def test_items_are_memories_with_readable_content(handle: MemoryAPI) -> None:
    session = MemtraceSession("readable", handle, agent_id="bot1")
    await session.add_items(copy.deepcopy(ROUND_TRIP_ITEMS))
    found = handle.search_memories(
        namespace=[*NAMESPACE, "readable"], order="asc", limit=100
    ).results
    assert len(found) == len(ROUND_TRIP_ITEMS)
    by_type: dict[str, Any] = {}
    for m in found:
        by_type.setdefault(m.event_type, m)
    assert [m.payload for m in found] == ROUND_TRIP_ITEMS
    assert {(m.memory_type, m.agent_id, m.session_id) for m in found} == {
        ("session", "bot1", "readable")
    }
    assert all(m.content.strip() for m in found)
    assert by_type["user_message"].content == "plain easy message"
    assert by_type["system_message"].content == "You are terse."
    typed_user = [m.content for m in found if m.event_type == "user_message"][1]
    assert typed_user == "look at this\n[image]\n[file notes.txt]"
    assert by_type["assistant_message"].content == "Typed reply\nno"
    assert by_type["function_call"].content == 'remember({"fact": "x", "n": 1})'
    assert by_type["reasoning"].content == "thinking about it"
    assert by_type["web_search_call"].content == "web search: weather in Paris"
    assert by_type["file_search_call"].content == "file search: q1; q2"
    assert by_type["mcp_call"].content == 'docs.lookup({"q": "x"}) -> found x'
    assert by_type["computer_call"].content == "[computer_call]"
    assert by_type["future_item_kind_v9"].content == "[future_item_kind_v9]"
    assert "session_item" in by_type  # a type that is no valid event name
    outputs = [m.content for m in found if m.event_type == "function_call_output"]
    assert outputs == ["stored: x", "list output"]
    # the derived text is what search and recall see
    hits = handle.search_memories(query="Paris weather", namespace=[*NAMESPACE, "readable"])
    assert [m.event_type for m in hits.results][:1] == ["web_search_call"]
    # the memtrace session's context shows the conversation
    context = handle.get_session_context("readable")
    assert "plain easy message" in context.context


def test_event_type_and_content_helpers() -> None:
    assert item_event_type({"role": "user", "content": "x"}) == "user_message"
    assert item_event_type({"type": "message", "role": "assistant"}) == "assistant_message"
    assert item_event_type({"type": "function_call_output"}) == "function_call_output"
    assert item_event_type({"type": "x y"}) == "session_item"
    assert item_content({"role": "user", "content": "   "}) == "[item]"
    assert item_content({"role": "user", "content": "a\x00b"}) == "a\ufffdb"
    big = item_content({"type": "function_call_output", "output": "é" * 100_000})
    assert len(big.encode()) <= 64 * 1024
    assert "truncated" in big


async def test_large_tool_output_is_lossless(handle: MemoryAPI) -> None:
    session = MemtraceSession("large", handle)
    output = "".join(f"line {i}: {'x' * 40}\n" for i in range(4500))  # ~220 KB
    assert len(output) > 200_000
    item = {"type": "function_call_output", "call_id": "big", "output": output}
    await session.add_items([{"role": "user", "content": "dump it"}, item])
    assert (await session.get_items())[-1] == item
    memory = handle.search_memories(namespace=[*NAMESPACE, "large"], limit=1).results[0]
    assert memory.payload == item
    assert len(memory.content.encode()) <= 64 * 1024
    assert memory.content.startswith("line 0: ")
    assert await session.pop_item() == item


async def test_duplicates_are_kept(make_session: Factory) -> None:
    session = make_session("dups")
    item = {"role": "user", "content": "same"}
    await session.add_items([dict(item), dict(item)])
    await session.add_items([dict(item)])
    assert await session.get_items() == [item, item, item]
    assert await session.pop_item() == item
    assert await session.get_items() == [item, item]


async def test_concurrent_add_items_never_interleave(handle: MemoryAPI) -> None:
    session = MemtraceSession("concurrent", handle)
    other = MemtraceSession("concurrent", handle)  # a second object on the same session

    async def writer(target: MemtraceSession, name: str) -> None:
        for call in range(10):
            batch = [{"role": "user", "content": f"{name}{call}-{i}"} for i in range(5)]
            await target.add_items(batch)

    await asyncio.gather(writer(session, "A"), writer(other, "B"))
    got = [item["content"] for item in await session.get_items()]
    assert len(got) == 100
    assert len(set(got)) == 100
    for start in range(0, 100, 5):
        block = got[start : start + 5]
        prefix = block[0].split("-")[0]
        assert block == [f"{prefix}-{i}" for i in range(5)], got
    for name in "AB":  # each writer's calls keep their order
        mine = [c.split("-")[0] for c in got[::5] if c.startswith(name)]
        assert mine == [f"{name}{call}" for call in range(10)]


async def test_concurrent_pops_never_return_one_item_twice(handle: MemoryAPI) -> None:
    session = MemtraceSession("pops", handle)
    await session.add_items([{"role": "user", "content": f"m{i}"} for i in range(20)])
    popped = await asyncio.gather(*(session.pop_item() for _ in range(25)))
    got = [p["content"] for p in popped if p is not None]
    assert sorted(got) == sorted(f"m{i}" for i in range(20))
    assert popped.count(None) == 5


async def test_calls_beyond_one_request_stay_one_block(handle: MemoryAPI) -> None:
    """A call split into several batches (here by a small byte budget) keeps its order and
    one event time; a refused later batch leaves nothing behind."""
    session = MemtraceSession("split", handle, max_request_bytes=6000)
    await session.add_items([{"role": "user", "content": "before"}])
    items = [{"role": "user", "content": f"{i}:" + "y" * 2000} for i in range(8)]
    await session.add_items(items)
    assert await session.get_items() == [{"role": "user", "content": "before"}, *items]
    times = {
        m.time
        for m in handle.search_memories(namespace=[*NAMESPACE, "split"], limit=100).results
        if m.content != "before"
    }
    assert len(times) == 1
    # a later batch refused (an item nested deeper than the engine's payload depth)
    too_deep: dict[str, Any] = {"type": "function_call_output", "call_id": "z", "output": "x"}
    for _ in range(200):
        too_deep = {"type": "nested", "inner": too_deep}
    with pytest.raises(MemtraceError):
        await session.add_items([{"role": "user", "content": "a" * 4000}, too_deep])
    assert await session.get_items() == [{"role": "user", "content": "before"}, *items]


async def test_more_items_than_one_batch_or_page(handle: MemoryAPI) -> None:
    """1001 items (over the engine's batch limit of 1000 and its page cap of 1000): written in
    two batches, read back whole and by a limit above one page, in order."""
    session = MemtraceSession("many", handle)
    items = [{"role": "user", "content": f"m{i}"} for i in range(1001)]
    await session.add_items(items)
    assert await session.get_items() == items
    assert await session.get_items(limit=1001) == items
    assert await session.get_items(limit=1000) == items[1:]
    assert await session.pop_item() == items[-1]


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"role": "user", "content": object()},
        {"role": "user", "content": math.nan},
        {"role": "user", "content": {1, 2}},
        "not a dict",
    ],
    ids=["object", "nan", "set", "string"],
)
async def test_bad_items_are_refused_whole(handle: MemoryAPI, bad: Any) -> None:
    session = MemtraceSession("bad", handle)
    await session.add_items([{"role": "user", "content": "kept"}])
    with pytest.raises(TypeError, match="session item 1") as info:
        await session.add_items([{"role": "user", "content": "ok"}, bad])
    assert "nothing was written" in str(info.value)
    assert await session.get_items() == [{"role": "user", "content": "kept"}]


async def test_an_unstorable_item_is_refused_whole(handle: MemoryAPI) -> None:
    """An item memtrace cannot store at any size (nested deeper than the engine's payload
    depth) fails the call and writes none of its items. (Large items are stored in parts:
    test_oa_session_large.py.)"""
    session = MemtraceSession("oversized", handle)
    deep: dict[str, Any] = {"type": "function_call_output", "call_id": "h", "output": "x"}
    for _ in range(200):
        deep = {"type": "nested", "inner": deep}
    with pytest.raises(MemtraceError):
        await session.add_items([{"role": "user", "content": "first"}, deep])
    assert await session.get_items() == []


# -- scope from the run context, constructors -------------------------------------------------


class _Wrapper:
    def __init__(self, context: Any) -> None:
        self.context = context


async def test_wrapper_context_scopes_the_call(handle: MemoryAPI) -> None:
    session = MemtraceSession("default_conv", handle, agent_id="bot1")
    wrapper: Any = _Wrapper({"agent_id": "bot2", "session_id": "ctx_conv"})
    await session.add_items([{"role": "user", "content": "to ctx"}], wrapper=wrapper)
    await session.add_items([{"role": "user", "content": "to default"}], wrapper=_Wrapper(None))  # type: ignore[arg-type]
    assert contents(await session.get_items(wrapper=wrapper)) == ["to ctx"]
    assert contents(await session.get_items()) == ["to default"]
    memory = handle.search_memories(namespace=[*NAMESPACE, "ctx_conv"]).results[0]
    assert memory.agent_id == "bot2"
    assert (await session.pop_item(wrapper=wrapper)) == {"role": "user", "content": "to ctx"}
    await session.add_items([{"role": "user", "content": "again"}], wrapper=wrapper)
    await session.clear_session(wrapper=wrapper)
    assert await session.get_items(wrapper=wrapper) == []
    assert contents(await session.get_items()) == ["to default"]
    ignoring = MemtraceSession("default_conv", handle, from_context=False)
    assert contents(await ignoring.get_items(wrapper=wrapper)) == ["to default"]


async def test_any_sdk_session_id_works(handle: MemoryAPI) -> None:
    """An id memtrace would not take as a session id (a UUID starting with a digit, a colon)
    still scopes the items (by namespace); the memories then carry no memtrace session."""
    odd = "9f1c2d3e-user:42/conversation 7"
    session = MemtraceSession(odd, handle)
    await session.add_items([{"role": "user", "content": "hello"}])
    assert contents(await session.get_items()) == ["hello"]
    memory = handle.search_memories(namespace=[*NAMESPACE, odd]).results[0]
    assert memory.session_id is None
    with pytest.raises(ValueError):
        MemtraceSession("", handle)


async def test_create_opens_a_memtrace_session_without_a_registered_agent(
    handle: MemoryAPI,
) -> None:
    session = await MemtraceSession.create(handle, agent_id="unregistered-bot")
    assert session.session_id.startswith("sess")
    assert handle.get_session(session.session_id).agent_id == "unregistered-bot"
    assert await session.get_items() == []  # no prior memories: nothing injected
    await session.add_items([{"role": "user", "content": "The deploy key rotates on Mondays"}])
    ctx = handle.get_session_context(session.session_id)
    assert "deploy key rotates" in ctx.context
    # a second session of the agent starts with the original's context item (not stored)
    second = await MemtraceSession.create(
        handle, "unregistered-bot", context_max_tokens=500, persist_assistant_messages=True
    )
    first = await second.get_items()
    assert len(first) == 1
    assert first[0]["role"] == "user"
    assert first[0]["content"].startswith("[System: Prior memory context for this agent]")
    assert "deploy key rotates" in first[0]["content"]
    assert handle.search_memories(namespace=[*NAMESPACE, second.session_id]).count == 0
    await second.add_items([{"role": "user", "content": "next"}])
    assert contents(await second.get_items(limit=1)) == ["next"]
    assert len(await second.get_items()) == 2
    # resuming by id does not create a session and injects nothing into a non-empty one
    resumed = await MemtraceSession.create(handle, "unregistered-bot", session_id=second.session_id)
    assert contents(await resumed.get_items()) == ["next"]


async def test_create_with_the_original_sdk_client(live_server: Any) -> None:
    """Code written for openai-agents-memtrace passes memtrace-sdk's AsyncMemtrace client."""
    from memtrace import AsyncMemtrace

    live, key = live_server
    client = AsyncMemtrace(live.url, key)
    try:
        session = await MemtraceSession.create(client, agent_id="ported-bot")
        await session.add_items([{"role": "user", "content": "ported"}])
        assert contents(await session.get_items()) == ["ported"]
        listed = await client.get_session_memories(session.session_id)
        assert [m.content for m in listed.memories] == ["ported"]
        await session.aclose()
    finally:
        await client.close()


async def test_from_url(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    session = MemtraceSession.from_url("from_url", url, options.get("api_key"), agent_id="bot1")
    await session.add_items([{"role": "user", "content": "persisted"}])
    session.close()
    again = MemtraceSession.from_url("from_url", url, **options)
    try:
        assert contents(await again.get_items()) == ["persisted"]
    finally:
        await again.aclose()
    created = await MemtraceSession.create(url, "bot1", api_key=options.get("api_key"))
    try:  # a URL given to create(): opened there, closed by the session
        first = await created.get_items()
        assert first[0]["content"].startswith("[System: Prior memory context")
    finally:
        await created.aclose()
    mt = connect(url, **options)
    try:
        assert mt.search_memories(namespace=[*NAMESPACE, "from_url"]).results[0].agent_id == "bot1"
        assert mt.get_session(created.session_id).agent_id == "bot1"
    finally:
        mt.close()


async def test_async_only_handle(async_handle: Any) -> None:
    session = MemtraceSession("async_only", async_handle)
    await session.add_items(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    )
    assert contents(await session.get_items(limit=1)) == ["b"]
    assert await session.pop_item() == {"role": "assistant", "content": "b"}
    await session.clear_session()
    assert await session.get_items() == []
