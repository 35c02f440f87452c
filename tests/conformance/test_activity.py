"""``get_activity`` (``GET /api/v1/activity``), on every store and both transports (engine and
HTTP): memories per time bucket, with the errors and the memory types among them. Buckets are
aligned to the grid, dense and bounded (``since`` rounded down, ``until`` exclusive); what
agent stats leaves out (expired, superseded, deleted memories, other orgs) is left out here;
bad input is a 400 naming the field; and a property: the buckets are the counts of the
memories ``list_memories`` returns."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memtrace_core import Activity, AsyncMemtrace, ValidationError, aconnect
from memtrace_core.stores.base import MemoryFilter

HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)


def hour_floor(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def base_hour() -> datetime:
    """A whole UTC hour half a day ago: every memory of a test sits in the past."""
    return hour_floor(datetime.now(UTC)) - 12 * HOUR


def agent() -> str:
    return "a" + uuid.uuid4().hex[:12]


async def write(mt: Any, who: str, *items: tuple[datetime, str, str]) -> None:
    """Memories of ``who`` at (time, memory_type, event_type)."""
    await mt.add_memories(
        [
            {
                "agent_id": who,
                "content": f"memory {i}",
                "time": at,
                "memory_type": mtype,
                "event_type": etype,
                "dedup": False,
            }
            for i, (at, mtype, etype) in enumerate(items)
        ]
    )


def shape(act: Activity) -> list[tuple[datetime, int, int, dict[str, int]]]:
    return [(b.start, b.count, b.errors, b.by_type) for b in act.buckets]


# -- the grid ---------------------------------------------------------------------------------


async def test_bucket_boundaries_and_counts(mt: Any) -> None:
    base, who = base_hour(), agent()
    await write(
        mt,
        who,
        (base - US, "episodic", "general"),  # just before the window
        (base, "episodic", "general"),  # exactly at the first bucket's start
        (base + HOUR - US, "decision", "error"),  # the first bucket's last microsecond
        (base + HOUR, "decision", "general"),  # exactly at the second bucket's start
        (base + 2 * HOUR + 30 * timedelta(minutes=1), "entity", "error"),
        (base + 3 * HOUR, "episodic", "error"),  # exactly at `until`: excluded
    )
    act = await mt.get_activity(agent_id=who, since=base, until=base + 3 * HOUR, bucket="1h")
    assert isinstance(act, Activity)
    assert (act.since, act.until, act.bucket_seconds) == (base, base + 3 * HOUR, 3600)
    assert shape(act) == [
        (base, 2, 1, {"decision": 1, "episodic": 1}),
        (base + HOUR, 1, 0, {"decision": 1}),
        (base + 2 * HOUR, 1, 1, {"entity": 1}),
    ]
    assert (act.total, act.errors) == (4, 2)
    assert act.by_type == {"decision": 2, "entity": 1, "episodic": 1}


async def test_since_is_rounded_down_the_last_bucket_ends_at_until(mt: Any) -> None:
    base, who = base_hour(), agent()
    minute = timedelta(minutes=1)
    await write(
        mt,
        who,
        (base - US, "episodic", "general"),
        (base + 10 * minute, "episodic", "general"),  # before `since`, in its bucket
        (base + 150 * minute - US, "episodic", "general"),  # just before `until`
        (base + 150 * minute, "episodic", "general"),  # at `until`
    )
    act = await mt.get_activity(
        agent_id=who, since=base + 30 * minute, until=base + 150 * minute, bucket="1h"
    )
    assert act.since == base  # the bucket start at or before since
    assert act.until == base + 150 * minute  # until as given
    assert [(b.start, b.count) for b in act.buckets] == [
        (base, 1),
        (base + HOUR, 0),  # empty buckets are listed
        (base + 2 * HOUR, 1),  # a partial last bucket
    ]
    # the grid does not move with the window: a bucket has the same bounds in every answer
    later = await mt.get_activity(
        agent_id=who, since=base + 59 * minute, until=base + 3 * HOUR, bucket="1h"
    )
    assert [b.start for b in later.buckets] == [base, base + HOUR, base + 2 * HOUR]
    assert [b.count for b in later.buckets] == [1, 0, 2]


@pytest.mark.parametrize(
    ("bucket", "seconds"),
    [("1m", 60), ("5m", 300), ("15m", 900), ("6h", 21600), ("1d", 86400), ("90s", 90), (120, 120)],
)
async def test_bucket_lengths_are_aligned_in_utc(mt: Any, bucket: Any, seconds: int) -> None:
    since = datetime(2026, 3, 4, 13, 47, 12, 345678, tzinfo=UTC)
    act = await mt.get_activity(since=since, until=since + 10 * timedelta(seconds=seconds),
                                bucket=bucket)  # fmt: skip
    assert act.bucket_seconds == seconds
    epoch_us = int((act.since - datetime(1970, 1, 1, tzinfo=UTC)) / US)
    assert epoch_us % (seconds * 1_000_000) == 0
    assert act.since <= since < act.since + timedelta(seconds=seconds)
    starts = [b.start for b in act.buckets]
    assert starts == [act.since + i * timedelta(seconds=seconds) for i in range(len(starts))]
    assert starts[-1] < act.until <= starts[-1] + timedelta(seconds=seconds)


async def test_a_week_starts_on_monday(mt: Any) -> None:
    act = await mt.get_activity(
        since="2026-03-05T12:00:00Z", until="2026-03-20T00:00:00Z", bucket="1w"
    )
    assert [b.start for b in act.buckets] == [
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 9, tzinfo=UTC),
        datetime(2026, 3, 16, tzinfo=UTC),
    ]
    assert all(b.start.weekday() == 0 for b in act.buckets)


async def test_defaults_last_24_hours_by_hour(mt: Any) -> None:
    who = agent()
    before = datetime.now(UTC)
    await mt.add_memory(agent_id=who, content="just now", event_type="error")
    act = await mt.get_activity(agent_id=who)
    after = datetime.now(UTC)
    assert act.bucket_seconds == 3600
    assert before <= act.until <= after + timedelta(seconds=5)
    assert act.since == hour_floor(act.until - 24 * HOUR)
    assert len(act.buckets) in (24, 25)  # 24 when until is a whole hour
    assert (act.buckets[-1].count, act.buckets[-1].errors) == (1, 1)
    assert act.buckets[-1].by_type == {"episodic": 1}
    assert (act.total, act.errors) == (1, 1)
    # since alone: until is now; until alone: since is 24 hours before it
    assert (await mt.get_activity(agent_id=who, since="2h")).total == 1
    past = await mt.get_activity(agent_id=who, until="3d")
    assert past.total == 0
    assert past.since == hour_floor(past.until - 24 * HOUR)


async def test_relative_times_and_an_empty_window(mt: Any) -> None:
    who = agent()
    now = datetime.now(UTC)
    await write(mt, who, (now - 90 * timedelta(minutes=1), "episodic", "general"))
    act = await mt.get_activity(agent_id=who, since="6h", until="1h", bucket="15m")
    assert act.total == 1
    assert len(act.buckets) in (20, 21)
    aligned = hour_floor(now)
    empty = await mt.get_activity(since=aligned, until=aligned)
    assert (empty.since, empty.until, empty.buckets, empty.total) == (aligned, aligned, [], 0)
    assert len((await mt.get_activity(since="now", until="now")).buckets) == 1


# -- what is counted --------------------------------------------------------------------------


async def test_filters_and_agent_aliases(mt: Any) -> None:
    base = base_hour()
    bot = await mt.register_agent(name="activity-bot-" + uuid.uuid4().hex[:6])
    session = await mt.create_session(agent_id=bot.id)
    items = [
        {"agent_id": bot.name, "content": "by name", "tags": ["x", "y"], "session_id": session.id},
        {"agent_id": bot.id, "content": "by id", "tags": ["y"], "event_type": "error"},
        {"agent_id": bot.id, "content": "a decision", "memory_type": "decision", "tags": ["z"]},
        {"agent_id": "someone-else", "content": "not the bot's", "tags": ["x"]},
    ]
    await mt.add_memories([{**item, "time": base + timedelta(minutes=5)} for item in items])
    window = {"since": base, "until": base + HOUR}

    async def total(**filters: Any) -> tuple[int, int]:
        act = await mt.get_activity(**window, **filters)
        return act.total, act.errors

    assert await total() == (4, 1)
    assert await total(agent_id=bot.name) == (3, 1)  # its id and its name
    assert await total(agent_id=bot.id) == (3, 1)
    assert await total(session_id=session.id) == (1, 0)
    assert await total(memory_types=["decision"]) == (1, 0)
    assert await total(memory_types="episodic,decision", agent_id=bot.id) == (3, 1)
    assert await total(event_types=["error"]) == (1, 1)
    assert await total(event_types=["general"]) == (3, 0)
    assert await total(tags=["x", "y"]) == (1, 0)
    assert await total(tags_any=["x", "z"]) == (3, 0)
    assert await total(tags="y", tags_any=["x"]) == (1, 0)


async def test_expired_superseded_and_deleted_memories_are_not_counted(mt: Any) -> None:
    who = agent()
    now = datetime.now(UTC)
    await write(mt, who, (now - HOUR, "episodic", "error"))
    short = await mt.add_memory(agent_id=who, content="short-lived", ttl=1, event_type="error")
    old = await mt.add_memory(agent_id=who, content="v1", key="k", namespace=[who])
    await mt.add_memory(agent_id=who, content="v2", key="k", namespace=[who])  # supersedes v1
    explicit = await mt.add_memory(agent_id=who, content="replaced", event_type="error")
    await mt.add_memory(agent_id=who, content="replacement", supersedes=explicit.id)
    gone = await mt.add_memory(agent_id=who, content="deleted", event_type="error")
    await mt.delete_memory(gone.id)
    assert short.expires_at is not None
    await asyncio.sleep(max(0.0, (short.expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    act = await mt.get_activity(agent_id=who)
    # the first error, v2 and the replacement: what agent stats counts in the same 24 hours
    assert (act.total, act.errors) == (3, 1)
    stats = await mt.get_agent_stats(who)
    assert (stats.memories_24h, stats.errors_24h) == (act.total, act.errors)
    assert act.by_type == stats.memory_types
    assert old.id  # (v1 was written, then superseded)


async def test_as_of_counts_what_was_known_then(mt: Any) -> None:
    who = agent()
    base = base_hour()
    first = await mt.add_memory(
        agent_id=who, content="first", time=base, key="k", namespace=[who], event_type="error"
    )
    then = first.recorded_at
    await asyncio.sleep(0.01)
    await mt.add_memory(agent_id=who, content="second", time=base + HOUR)
    await mt.add_memory(agent_id=who, content="first, again", time=base, key="k", namespace=[who])
    window = {"agent_id": who, "since": base, "until": base + 2 * HOUR}
    now = await mt.get_activity(**window)
    assert [(b.count, b.errors) for b in now.buckets] == [(1, 0), (1, 0)]
    known = await mt.get_activity(**window, as_of=then)
    # then: only the first version existed, and it was current
    assert [(b.count, b.errors) for b in known.buckets] == [(1, 1), (0, 0)]
    # relative times count back from as_of: the default window ends at as_of
    assert (await mt.get_activity(agent_id=who, as_of=then)).until == then


async def test_activity_never_crosses_orgs(store_url: str) -> None:
    a = await aconnect(store_url, org_id="org_a")
    b = await aconnect(store_url, org_id="org_b")
    try:
        base = base_hour()
        await write(a, "shared", (base, "episodic", "error"), (base, "decision", "general"))
        await write(b, "shared", (base + HOUR, "entity", "general"))
        window = {"since": base, "until": base + 2 * HOUR}
        mine = await a.get_activity(**window, agent_id="shared")
        theirs = await b.get_activity(**window, agent_id="shared")
        assert [b.count for b in mine.buckets] == [2, 0]
        assert [b.count for b in theirs.buckets] == [0, 1]
        assert (theirs.errors, theirs.by_type) == (0, {"entity": 1})
        # the store itself keeps them apart, whatever the filter
        assert isinstance(b, AsyncMemtrace)
        rows = await b.store.count_by_bucket(
            "org_b",
            MemoryFilter(),
            start=int(base.timestamp()) * 1_000_000,
            bucket=3_600_000_000,
            buckets=2,
            error_type="error",
        )
        assert [(r.bucket, r.memory_type, r.count, r.errors) for r in rows] == [(1, "entity", 1, 0)]
        # any filter of the store applies (one on the content too: Arc reads its bodies)
        assert isinstance(a, AsyncMemtrace)
        rows = await a.store.count_by_bucket(
            "org_a",
            MemoryFilter(content_contains="MEMORY 1"),
            start=int(base.timestamp()) * 1_000_000 - 3_600_000_000,
            bucket=3_600_000_000,
            buckets=3,
            error_type="error",
        )
        assert [(r.bucket, r.memory_type, r.count, r.errors) for r in rows] == [
            (1, "decision", 1, 0)
        ]
    finally:
        await a.close()
        await b.close()


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field", "match"),
    [
        ({"bucket": "0"}, "bucket", "shortest bucket is 1m"),
        ({"bucket": "0m"}, "bucket", "shortest bucket is 1m"),
        ({"bucket": "-1h"}, "bucket", "shortest bucket is 1m"),
        ({"bucket": -60}, "bucket", "invalid bucket '-60': the shortest bucket is 1m"),
        ({"bucket": "30s"}, "bucket", "shortest bucket is 1m"),
        ({"bucket": "1.5h"}, "bucket", "use a duration such as"),
        ({"bucket": "hourly"}, "bucket", "use a duration such as"),
        ({"bucket": "200000w"}, "bucket", "longest bucket is 100 years"),
        ({"bucket": "1m", "since": "2d"}, "bucket", r"2881 buckets of 1m .* at most 1000"),
        ({"bucket": "1m", "since": "1001m"}, "bucket", "at most 1000"),
        ({"since": "1h", "until": "2h"}, "since", "since is after until"),
        ({"since": "2999-01-01T00:00:00Z"}, "since", "since is after until"),
        ({"since": "yesterday"}, "since", "invalid since 'yesterday'"),
        ({"until": "soon"}, "until", "invalid until 'soon'"),
        ({"as_of": "2999-01-01T00:00:00Z"}, "as_of", "in the future"),
        ({"memory_types": ["dream"]}, "memory_types", "memory"),
        ({"agent_id": "bad id!"}, "agent_id", "invalid ID format"),
        ({"tags": ["no spaces"]}, "tags", "tag"),
        ({"sinse": "1h"}, "sinse", "unknown"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    mt: Any, args: dict[str, Any], field: str, match: str
) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        await mt.get_activity(**args)
    assert info.value.status_code == 400
    assert info.value.field == field


async def test_the_bucket_limit_is_inclusive(mt: Any) -> None:
    since = datetime(2026, 3, 1, tzinfo=UTC)
    act = await mt.get_activity(since=since, until=since + 1000 * timedelta(minutes=1),
                                bucket="1m")  # fmt: skip
    assert len(act.buckets) == 1000
    with pytest.raises(ValidationError, match="1001 buckets"):
        await mt.get_activity(since=since, until=since + 1000 * timedelta(minutes=1) + US,
                              bucket="1m")  # fmt: skip


# -- the property -----------------------------------------------------------------------------

#: Monday 1970-01-05T00:00:00Z, the origin of the bucket grid.
GRID = datetime(1970, 1, 5, tzinfo=UTC)
item = st.fixed_dictionaries(
    {
        "seconds": st.integers(min_value=0, max_value=2 * 86400),
        "type": st.sampled_from(["episodic", "decision", "entity"]),
        "error": st.booleans(),
        "tag": st.sampled_from(["t1", "t2", None]),
    }
)


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, int, int]:
    """(bucket seconds, since and span in seconds from the origin): around 1000 buckets at
    most, a few beyond it."""
    bucket = draw(st.sampled_from([60, 90, 300, 900, 1800, 3600, 7200, 86400]))
    lo = draw(st.integers(min_value=0, max_value=2 * 86400))
    span = draw(st.integers(min_value=0, max_value=min(2 * 86400, 1002 * bucket)))
    return bucket, lo, span


@given(
    items=st.lists(item, max_size=12),
    win=windows(),
    flt=st.fixed_dictionaries(
        {},
        optional={
            "memory_types": st.lists(
                st.sampled_from(["episodic", "decision", "entity"]), min_size=1, unique=True
            ),
            "tags_any": st.just(["t1"]),
            "event_types": st.just(["error"]),
        },
    ),
)
async def test_buckets_equal_a_count_of_the_listed_memories(
    mt: Any, items: list[dict[str, Any]], win: tuple[int, int, int], flt: dict[str, Any]
) -> None:
    who = agent()  # each example in its own corner of the store
    origin = hour_floor(datetime.now(UTC)) - timedelta(days=3)
    if items:
        await mt.add_memories(
            [
                {
                    "agent_id": who,
                    "content": f"memory {i}",
                    "time": origin + timedelta(seconds=it["seconds"], microseconds=i),
                    "memory_type": it["type"],
                    "event_type": "error" if it["error"] else "general",
                    "tags": [it["tag"]] if it["tag"] else None,
                    "dedup": False,
                }
                for i, it in enumerate(items)
            ]
        )
    bucket, lo, span = win
    size = timedelta(seconds=bucket)
    since = origin + timedelta(seconds=lo, microseconds=lo % 7)
    until = since + timedelta(seconds=span)
    start = since - (since - GRID) % size
    count = -((start - until) // size)  # ceil((until - start) / size)
    query = {"agent_id": who, "since": since, "until": until, "bucket": f"{bucket}s", **flt}
    if count > 1000:
        with pytest.raises(ValidationError, match=f"{count} buckets .* at most 1000"):
            await mt.get_activity(**query)
        return
    act = await mt.get_activity(**query)
    assert (act.since, act.until, act.bucket_seconds) == (start, until, bucket)
    # brute force: every memory of the agent, filtered and bucketed here
    listed = (await mt.list_memories(agent_id=who, since=origin, limit=1000)).memories
    assert len(listed) == len(items)
    expected: dict[int, Counter[tuple[str, bool]]] = {}
    for m in listed:
        if not start <= m.time < until:
            continue
        if "memory_types" in flt and m.memory_type not in flt["memory_types"]:
            continue
        if "tags_any" in flt and not set(flt["tags_any"]) & set(m.tags or ()):
            continue
        if "event_types" in flt and m.event_type not in flt["event_types"]:
            continue
        index = (m.time - start) // size
        expected.setdefault(index, Counter())[(m.memory_type, m.event_type == "error")] += 1
    assert len(act.buckets) == count
    assert set(expected) <= set(range(count))
    for i, b in enumerate(act.buckets):
        assert b.start == start + i * size
        found = expected.get(i, Counter())
        assert b.count == sum(found.values())
        assert b.errors == sum(n for (_, err), n in found.items() if err)
        by_type: Counter[str] = Counter()
        for (mtype, _), n in found.items():
            by_type[mtype] += n
        assert b.by_type == dict(by_type)
    assert act.total == sum(b.count for b in act.buckets)
    assert act.errors == sum(b.errors for b in act.buckets)
    assert act.by_type == dict(sum((Counter(b.by_type) for b in act.buckets), Counter()))
