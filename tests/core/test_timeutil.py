"""Time windows: relative durations, ISO 8601, and the field named in every error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace_core import AsyncMemtrace, ValidationError
from memtrace_core.timeutil import (
    format_us,
    from_us,
    parse_time_bound,
    to_us,
    window,
)

NOW = to_us(datetime(2026, 2, 7, 20, 15, tzinfo=UTC))
SECOND = 1_000_000


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1m", 60),  # minutes, not months
        ("5m", 300),
        ("90m", 5400),
        ("2h", 7200),
        ("24h", 86400),
        ("1d", 86400),
        ("7d", 7 * 86400),
        ("2w", 14 * 86400),
        (" 3h ", 3 * 3600),
    ],
)
def test_relative_durations(text: str, seconds: int) -> None:
    assert parse_time_bound(text, field="since", now=NOW) == NOW - seconds * SECOND
    assert parse_time_bound(text, field="until", now=NOW) == NOW - seconds * SECOND


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.sampled_from("smhdw"))
def test_relative_property(amount: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit] * amount
    assert parse_time_bound(f"{amount}{unit}", field="since", now=NOW) == NOW - seconds * SECOND


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-07T20:15:00Z", datetime(2026, 2, 7, 20, 15, tzinfo=UTC)),
        ("2026-02-07T20:15:00.5Z", datetime(2026, 2, 7, 20, 15, 0, 500000, tzinfo=UTC)),
        ("2026-02-07T22:15:00+02:00", datetime(2026, 2, 7, 20, 15, tzinfo=UTC)),
        ("2026-02-07T15:15:00-05:00", datetime(2026, 2, 7, 20, 15, tzinfo=UTC)),
        ("2026-02-07T20:15:00", datetime(2026, 2, 7, 20, 15, tzinfo=UTC)),  # naive = UTC
        ("2026-02-07 20:15:00", datetime(2026, 2, 7, 20, 15, tzinfo=UTC)),
        ("2026-02-07", datetime(2026, 2, 7, tzinfo=UTC)),
    ],
)
def test_iso_timestamps(text: str, expected: datetime) -> None:
    assert parse_time_bound(text, field="since", now=NOW) == to_us(expected)


def test_datetimes_and_now() -> None:
    aware = datetime(2026, 2, 7, 21, 15, tzinfo=timezone(timedelta(hours=1)))
    assert parse_time_bound(aware, field="since") == NOW
    assert parse_time_bound(datetime(2026, 2, 7, 20, 15), field="since") == NOW  # naive = UTC
    assert parse_time_bound("now", field="until", now=NOW) is None  # no upper bound
    assert parse_time_bound("now", field="since", now=NOW) == NOW
    assert parse_time_bound(None, field="since") is None
    assert parse_time_bound("", field="since") is None


@pytest.mark.parametrize(
    "garbage",
    ["7x", "yesterday", "1.5h", "-2h", "0h", "h", "2026-13-01", "2026-02-07T25:00:00Z", "9" * 80],
)
@pytest.mark.parametrize("field", ["since", "until"])
def test_garbage_names_the_field(garbage: str, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_time_bound(garbage, field=field, now=NOW)
    assert info.value.field == field
    assert info.value.message.startswith(f"invalid {field}")
    assert info.value.status_code == 400


def test_window_rejects_since_after_until() -> None:
    assert window("2h", "1h", now=NOW) == (NOW - 7200 * SECOND, NOW - 3600 * SECOND)
    with pytest.raises(ValidationError) as info:
        window("1h", "2h", now=NOW)
    assert info.value.field == "since"


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1)))
def test_format_round_trip(value: datetime) -> None:
    us = to_us(value)
    text = format_us(us)
    assert text.endswith("Z")
    assert not text.endswith("0Z") or "." not in text  # trailing zeros of the fraction trimmed
    assert parse_time_bound(text, field="since") == us
    assert from_us(us) == value.replace(tzinfo=UTC)


def test_format_examples() -> None:
    assert format_us(to_us(datetime(2026, 2, 7, 20, 15, 0, 500000, tzinfo=UTC))) == (
        "2026-02-07T20:15:00.5Z"
    )
    assert format_us(to_us(datetime(2026, 2, 7, 20, 14, tzinfo=UTC))) == "2026-02-07T20:14:00Z"
    assert format_us(to_us(datetime(2026, 2, 7, 20, 14, 0, 123456, tzinfo=UTC))) == (
        "2026-02-07T20:14:00.123456Z"
    )


# Every entry point that takes a time window rejects garbage naming the field.
CALLS = [
    ("list_memories", (), {"since": "7x"}, "since"),
    ("list_memories", (), {"until": "7x"}, "until"),
    ("recall", ("agent_1",), {"since": "soon"}, "since"),
    ("search_memories", (), {"since": "7x"}, "since"),
    ("search_memories", (), {"until": "7x", "query": "deploy"}, "until"),
    ("get_agent_memories", ("agent_1",), {"since": "7x"}, "since"),
    ("get_session_memories", ("sess_a",), {"until": "7x"}, "until"),
    ("get_session_context", ("sess_a",), {"since": "7x"}, "since"),
    ("get_session_context", ("sess_a",), {"since": "last week"}, "since"),
    ("get_agent_context", ("agent_1",), {"since": "7x"}, "since"),
    ("delete_memories", (), {"since": "7x"}, "since"),
    ("delete_memories", (), {"agent_id": "agent_1", "until": "7x"}, "until"),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "field"), CALLS)
async def test_garbage_time_everywhere(
    engine: AsyncMemtrace, method: str, args: tuple[str, ...], kwargs: dict[str, str], field: str
) -> None:
    await engine.remember("agent_1", "something", session_id="sess_a")
    with pytest.raises(ValidationError) as info:
        await getattr(engine, method)(*args, **kwargs)
    assert info.value.field == field
    assert (await engine.list_memories()).count == 1  # a bad delete deleted nothing


async def test_garbage_time_in_export(engine: AsyncMemtrace) -> None:
    with pytest.raises(ValidationError) as info:
        async for _ in engine.iter_export(until="whenever"):
            pass
    assert info.value.field == "until"


async def test_minutes_and_iso_windows_select_backfilled_memories(engine: AsyncMemtrace) -> None:
    now = datetime.now(UTC)
    ten_min = await engine.add_memory(
        agent_id="agent_1", content="ten minutes ago", time=now - timedelta(minutes=10)
    )
    two_days = await engine.add_memory(
        agent_id="agent_1", content="two days ago", time=now - timedelta(days=2)
    )

    async def ids(**kw: str) -> set[str]:
        return {m.id for m in (await engine.list_memories(**kw)).memories}

    assert await ids(since="5m") == set()
    assert await ids(since="15m") == {ten_min.id}
    assert await ids(since="3d") == {ten_min.id, two_days.id}
    assert await ids(until="1d") == {two_days.id}
    assert await ids(since=(now - timedelta(hours=1)).isoformat()) == {ten_min.id}
    naive = (now - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert await ids(since=naive) == {ten_min.id}
    offset = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-7))).isoformat()
    assert await ids(since=offset) == {ten_min.id}
