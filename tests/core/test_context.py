"""Session and agent context: the original's markdown byte for byte, the documented fixes
(errors bucket, UTF-8-safe truncation, max_tokens, ISO since, include_types), xml and jsonl."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace_core import AsyncMemtrace, NotFoundError, ValidationError
from memtrace_core.context import MarkdownFormat, estimate_tokens, truncate_utf8
from memtrace_core.models import Memory

T0 = datetime(2026, 2, 7, 20, 15, 0, 500000, tzinfo=UTC)
SINCE = "2026-01-01T00:00:00Z"  # ISO since: the fixed example times are older than 24 h


def _memory(
    content: str, memory_type: str = "episodic", event_type: str = "general", **kw: Any
) -> Memory:
    return Memory(
        id="mem_01J0000000000000000000000A",
        time=kw.pop("time", T0),
        recorded_at=T0,
        org_id="org_default",
        agent_id=kw.pop("agent_id", "crawler"),
        memory_type=memory_type,  # type: ignore[arg-type]
        event_type=event_type,
        content=content,
        **kw,
    )


async def test_the_documented_example(engine: AsyncMemtrace) -> None:
    await engine.add_memory(
        agent_id="crawler",
        session_id="sess_a",
        event_type="decision",
        memory_type="decision",
        content="Skip pagination",
        time=datetime(2026, 2, 7, 20, 14, tzinfo=UTC),
    )
    await engine.add_memory(
        agent_id="crawler",
        session_id="sess_a",
        event_type="page_crawled",
        content="Crawled …",
        time=T0,
    )
    ctx = await engine.get_session_context("sess_a", since=SINCE)
    assert ctx.context == (
        "## Session Context (sess_a)\n\n"
        "### Recent Actions (1)\n"
        "- [2026-02-07T20:15:00.5Z] page_crawled: Crawled …\n\n"
        "### Decisions Made (1)\n"
        "- [2026-02-07T20:14:00Z] decision: Skip pagination\n\n"
    )
    assert ctx.memory_count == 2
    assert ctx.session_id == "sess_a"
    assert ctx.format == "markdown"
    assert ctx.token_estimate == math.ceil(len(ctx.context) / 4)


async def test_all_buckets_newest_first_and_no_blank_line_after_other(
    engine: AsyncMemtrace,
) -> None:
    rows = [
        # (minute offset, memory_type, event_type, content)
        (1, "episodic", "fetch", "first action"),
        (2, "decision", "decision", "chose plan B"),
        (3, "session", "error", "timeout talking to API"),
        (4, "entity", "customer", "ACME Corp"),
        (5, "session", "note", "session note"),
        (6, "episodic", "fetch", "second action"),
        (7, "decision", "choice", "second decision"),
    ]
    base = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    for minute, mtype, etype, content in rows:
        await engine.add_memory(
            agent_id="agent_1",
            session_id="sess_b",
            memory_type=mtype,
            event_type=etype,
            content=content,
            time=base + timedelta(minutes=minute),
        )
    ctx = await engine.get_session_context("sess_b", {"since": SINCE})
    assert ctx.context == (
        "## Session Context (sess_b)\n\n"
        "### Recent Actions (2)\n"
        "- [2026-03-01T10:06:00Z] fetch: second action\n"
        "- [2026-03-01T10:01:00Z] fetch: first action\n"
        "\n"
        "### Decisions Made (2)\n"
        "- [2026-03-01T10:07:00Z] choice: second decision\n"
        "- [2026-03-01T10:02:00Z] decision: chose plan B\n"
        "\n"
        "### Errors (1)\n"
        "- [2026-03-01T10:03:00Z] error: timeout talking to API\n"
        "\n"
        "### Other (2)\n"
        "- [2026-03-01T10:05:00Z] note: session note\n"
        "- [2026-03-01T10:04:00Z] customer: ACME Corp\n"
    )
    assert ctx.memory_count == 7


@pytest.mark.parametrize("memory_type", ["episodic", "decision", "entity", "session"])
def test_error_events_of_any_memory_type_go_under_errors(memory_type: str) -> None:
    text = MarkdownFormat().render("session", "sess_e", [_memory("boom", memory_type, "error")])
    assert text == (
        "## Session Context (sess_e)\n\n### Errors (1)\n- [2026-02-07T20:15:00.5Z] error: boom\n\n"
    )


def test_truncation_at_80_bytes() -> None:
    fmt = MarkdownFormat()
    exact = "x" * 80
    longer = "y" * 81
    assert fmt.render("session", "s", [_memory(exact)]).endswith(f"general: {exact}\n\n")
    assert fmt.render("session", "s", [_memory(longer)]).endswith(f"general: {'y' * 80}...\n\n")
    # 2-byte characters: 40 fit in 80 bytes; 3-byte: only 26 (78 bytes) fit.
    assert truncate_utf8("é" * 50) == "é" * 40 + "..."
    assert truncate_utf8("€" * 30) == "€" * 26 + "..."
    assert truncate_utf8("a" + "😀" * 30) == "a" + "😀" * 19 + "..."
    assert truncate_utf8("€" * 26) == "€" * 26  # 78 bytes: untouched


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_truncation_never_splits_a_character(text: str) -> None:
    out = truncate_utf8(text)
    raw = text.encode()
    if len(raw) <= 80:
        assert out == text
        return
    assert out.endswith("...")
    head = out[:-3]
    assert text.startswith(head)
    assert len(head.encode()) <= 80
    # The longest such prefix: one more character would exceed 80 bytes.
    assert len(text[: len(head) + 1].encode()) > 80
    head.encode()  # valid UTF-8 (no lone surrogates produced)


async def test_multibyte_truncation_through_the_engine(engine: AsyncMemtrace) -> None:
    await engine.add_memory(agent_id="agent_1", session_id="sess_u", content="日本語" * 20, time=T0)
    ctx = await engine.get_session_context("sess_u", since=SINCE)
    assert ctx.context == (
        "## Session Context (sess_u)\n\n"
        "### Recent Actions (1)\n"
        f"- [2026-02-07T20:15:00.5Z] general: {'日本語' * 8}日本...\n\n"
    )


async def test_empty_existing_session_is_the_header_only(engine: AsyncMemtrace) -> None:
    session = await engine.create_session(agent_id="agent_1")
    ctx = await engine.get_session_context(session.id)
    assert ctx.context == f"## Session Context ({session.id})\n\n"
    assert ctx.memory_count == 0


async def test_context_404_only_when_session_unknown_and_memoryless(
    engine: AsyncMemtrace,
) -> None:
    with pytest.raises(NotFoundError):
        await engine.get_session_context("sess_nothing")
    # No session row, but memories carry the session id: a context, even when the window is empty.
    await engine.add_memory(
        agent_id="agent_1", session_id="sess_adhoc", content="old thing", time=T0
    )
    ctx = await engine.get_session_context("sess_adhoc")  # default since=24h excludes it
    assert ctx.context == "## Session Context (sess_adhoc)\n\n"
    assert ctx.memory_count == 0
    ctx = await engine.get_session_context("sess_adhoc", since=SINCE)
    assert ctx.memory_count == 1


async def test_include_types_and_iso_since(engine: AsyncMemtrace) -> None:
    for minute, mtype in enumerate(["episodic", "decision", "entity"]):
        await engine.add_memory(
            agent_id="agent_1",
            session_id="sess_f",
            memory_type=mtype,
            content=f"{mtype} memory",
            time=T0 + timedelta(minutes=minute),
        )
    ctx = await engine.get_session_context("sess_f", since=SINCE, include_types=["decision"])
    assert ctx.context == (
        "## Session Context (sess_f)\n\n"
        "### Decisions Made (1)\n"
        "- [2026-02-07T20:16:00.5Z] general: decision memory\n\n"
    )
    ctx = await engine.get_session_context(
        "sess_f", since="2026-02-07T20:15:30Z", include_types=["episodic", "entity"]
    )
    assert ctx.context == (
        "## Session Context (sess_f)\n\n### Other (1)\n- [2026-02-07T20:17:00.5Z] general: entity memory\n"
    )
    with pytest.raises(ValidationError) as info:
        await engine.get_session_context("sess_f", include_types=["bogus"])
    assert info.value.field == "include_types"


def _expected_markdown(session_id: str, rows: list[tuple[datetime, str]]) -> str:
    """The §4 markdown for episodic 'general' memories given newest first."""
    text = f"## Session Context ({session_id})\n\n"
    if rows:
        text += f"### Recent Actions ({len(rows)})\n"
        for when, content in rows:
            stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            text += f"- [{stamp}] general: {content}\n"
        text += "\n"
    return text


@pytest.mark.parametrize("max_tokens", [8, 20, 37, 60, 100, 1000])
async def test_max_tokens_keeps_the_newest_that_fit(engine: AsyncMemtrace, max_tokens: int) -> None:
    base = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    rows = []
    for i in range(30):
        content = f"step {i} " + "word " * (i % 7)
        when = base + timedelta(minutes=i)
        await engine.add_memory(agent_id="agent_1", session_id="sess_t", content=content, time=when)
        rows.append((when, content))
    newest_first = rows[::-1]
    # Oracle: the largest n whose rendering fits ⌈chars/4⌉ ≤ max_tokens.
    n = 0
    while (
        n < len(rows)
        and math.ceil(len(_expected_markdown("sess_t", newest_first[: n + 1])) / 4) <= max_tokens
    ):
        n += 1
    expected = _expected_markdown("sess_t", newest_first[:n])
    if n == 0:  # not even the newest memory fits: that is said, not an empty context
        needed = math.ceil(len(_expected_markdown("sess_t", newest_first[:1])) / 4)
        with pytest.raises(ValidationError) as err:
            await engine.get_session_context("sess_t", since=SINCE, max_tokens=max_tokens)
        assert err.value.field == "max_tokens"
        assert f"it needs {needed}" in err.value.message
        return
    ctx = await engine.get_session_context("sess_t", since=SINCE, max_tokens=max_tokens)
    assert ctx.context == expected
    assert ctx.memory_count == n
    assert ctx.token_estimate == estimate_tokens(expected)
    assert ctx.token_estimate <= max_tokens or n == 0
    if n < len(rows):
        assert math.ceil(len(_expected_markdown("sess_t", newest_first[: n + 1])) / 4) > max_tokens


async def test_without_max_tokens_context_holds_100_newest(engine: AsyncMemtrace) -> None:
    base = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    await engine.add_memories(
        [
            {
                "agent_id": "agent_1",
                "session_id": "sess_h",
                "content": f"item {i}",
                "time": base + timedelta(seconds=i),
            }
            for i in range(120)
        ]
    )
    ctx = await engine.get_session_context("sess_h", since=SINCE)
    assert ctx.memory_count == 100
    assert "item 119\n" in ctx.context
    assert "item 20\n" in ctx.context
    assert "item 19\n" not in ctx.context
    ctx = await engine.get_session_context("sess_h", since=SINCE, max_tokens=100_000)
    assert ctx.memory_count == 120


async def test_xml_format(engine: AsyncMemtrace) -> None:
    await engine.add_memory(
        agent_id="crawler",
        session_id="sess_x",
        content='a < b & "c"',
        event_type="note",
        importance=0.5,
        time=T0,
    )
    await engine.add_memory(
        agent_id="crawler",
        session_id="sess_x",
        content="second",
        memory_type="decision",
        event_type="decision",
        time=T0 + timedelta(seconds=1),
    )
    ctx = await engine.get_session_context("sess_x", since=SINCE, format="xml")
    assert ctx.format == "xml"
    assert ctx.context == (
        '<session_context id="sess_x" count="2">\n'
        '<memory time="2026-02-07T20:15:01.5Z" type="decision" event="decision" agent="crawler">'
        "second</memory>\n"
        '<memory time="2026-02-07T20:15:00.5Z" type="episodic" event="note" agent="crawler" '
        'importance="0.5">a &lt; b &amp; "c"</memory>\n'
        "</session_context>\n"
    )


async def test_jsonl_format_and_agent_context(engine: AsyncMemtrace) -> None:
    long = "z" * 200  # full content, no truncation
    await engine.add_memory(agent_id="crawler", session_id="s1", content=long, time=T0)
    await engine.add_memory(
        agent_id="crawler",
        session_id="s2",
        content="later",
        importance=1,
        time=T0 + timedelta(seconds=2),
    )
    await engine.add_memory(agent_id="other", content="not mine", time=T0)
    ctx = await engine.get_agent_context("crawler", since=SINCE, format="jsonl")
    lines = [json.loads(line) for line in ctx.context.splitlines()]
    assert ctx.context.endswith("\n")
    assert lines == [
        {
            "time": "2026-02-07T20:15:02.5Z",
            "memory_type": "episodic",
            "event_type": "general",
            "agent_id": "crawler",
            "content": "later",
            "importance": 1.0,
        },
        {
            "time": "2026-02-07T20:15:00.5Z",
            "memory_type": "episodic",
            "event_type": "general",
            "agent_id": "crawler",
            "content": long,
        },
    ]
    assert ctx.agent_id == "crawler"
    assert ctx.memory_count == 2
    md = await engine.get_agent_context("crawler", since=SINCE)
    assert md.context == (
        "## Agent Context (crawler)\n\n"
        "### Recent Actions (2)\n"
        "- [2026-02-07T20:15:02.5Z] general: later\n"
        f"- [2026-02-07T20:15:00.5Z] general: {'z' * 80}...\n\n"
    )
    with pytest.raises(ValidationError) as info:
        await engine.get_agent_context("crawler", format="html")
    assert info.value.field == "format"
    with pytest.raises(ValidationError) as info:
        await engine.get_agent_context("crawler", max_tokens=0)
    assert info.value.field == "max_tokens"


async def test_agent_context_of_an_unknown_agent_is_not_found(engine: AsyncMemtrace) -> None:
    with pytest.raises(NotFoundError):
        await engine.get_agent_context("nobody")
    await engine.register_agent("registered")
    assert (await engine.get_agent_context("registered")).memory_count == 0
    await engine.add_memory(agent_id="writer", content="old news", time="2020-01-01T00:00:00Z")
    # an agent with memories (none in the window) has a context, empty
    assert (await engine.get_agent_context("writer")).memory_count == 0
