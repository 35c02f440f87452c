"""Property: whatever arguments a model sends to ``memtrace_remember`` over a real stdio
session, the call is either refused with ``isError`` or stored so that it reads back
unchanged — and every read keeps working afterwards (nothing accepted breaks a read)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp_support import ThreadSession, dump

from mcp import ClientSession


@pytest.fixture(scope="module")
def session(stdio_embedded: ThreadSession) -> ThreadSession:
    return stdio_embedded


@pytest.fixture(scope="module")
def session_id(session: ThreadSession) -> str:
    async def create(s: ClientSession) -> str:
        return str(
            dump(await s.call_tool("memtrace_session_create", {}))["structuredContent"]["id"]
        )

    return str(session(create))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_text = st.text(
    st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=300
)  # JSON cannot carry lone surrogates
_arguments = st.fixed_dictionaries(
    {"content": _text | _json},
    optional={
        "memory_type": st.sampled_from(["episodic", "entity", "session", "decision", "x", ""])
        | _json,
        "event_type": st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True) | _json,
        "tags": st.lists(st.from_regex(r"[a-z0-9_.\-]{1,8}", fullmatch=True), max_size=5) | _json,
        "importance": st.floats() | _json,
        "metadata": st.dictionaries(st.text(max_size=6), _json, max_size=4) | _json,
        "time": st.sampled_from(
            [
                "1h",
                "2026-02-29T00:00:00Z",
                "2025-02-29T00:00:00Z",
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
            ]
        )
        | _json,
        "ttl": st.sampled_from(["7d", "0s", "1w", -1, 0.5]) | _json,
        "namespace": st.lists(_text, max_size=3) | _json,
    },
)


@settings(max_examples=60)
@given(args=_arguments)
def test_remember_accepts_or_refuses_cleanly(
    session: ThreadSession, session_id: str, args: dict[str, Any]
) -> None:
    async def check(s: ClientSession) -> None:
        result = dump(await s.call_tool("memtrace_remember", args))
        text = result["content"][0]["text"]
        if result.get("isError"):
            assert text.startswith("Error executing tool memtrace_remember: "), text
            assert "Traceback" not in text
        else:
            stored = result["structuredContent"]
            got = dump(await s.call_tool("memtrace_search", {"ids": [stored["id"]]}))
            assert not got.get("isError"), got
            if got["structuredContent"]["count"]:  # not already expired / superseded
                assert got["structuredContent"]["results"][0]["content"] == args["content"]
        # reads keep working, whatever was stored
        for name, call_args in [
            ("memtrace_recall", {"since": "1w"}),
            ("memtrace_search", {"query": "x y z"}),
            ("memtrace_session_context", {"session_id": session_id}),
            ("memtrace_agent_stats", {}),
        ]:
            read = dump(await s.call_tool(name, call_args))
            assert not read.get("isError"), (name, read)
        recent = dump(await s.read_resource("memtrace://memories/recent"))
        assert recent["contents"][0]["text"]

    session(check)
