"""Store conformance for the live feed (issue 14; ``Store.feed_head`` / ``feed_memories`` in
stores/base.py) on every URL of ``store_urls.STORE_URLS``, and the engine's and the HTTP
client's ``watch()`` on both transports: commit order, resume without gaps or duplicates,
positions never reused, filters that move the cursor, deletes and expiry, tenancy, imports,
two writers on one store, and refused positions."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace_core import AsyncMemtrace, StreamEvent, ValidationError, aconnect
from memtrace_core.stores.base import FeedPage, MemoryFilter, Store
from memtrace_core.timeutil import now_us

ORG = "org_feed"
OTHER = "org_feed_other"


@pytest.fixture
def mts(engine: AsyncMemtrace) -> tuple[AsyncMemtrace, Store]:
    return engine.with_org(ORG), engine.store


async def feed(
    store: Store,
    after: str | None,
    *,
    org: str = ORG,
    flt: MemoryFilter | None = None,
    limit: int = 100,
    scan: int = 1000,
) -> FeedPage:
    return await store.feed_memories(
        org, flt or MemoryFilter(live_at=now_us()), after=after, limit=limit, scan=scan
    )


async def drain(
    store: Store, after: str, *, org: str = ORG, flt: MemoryFilter | None = None, **kw: int
) -> tuple[list[tuple[str, str]], str]:
    """Every item after ``after`` (pages until the cursor stops moving): (position, content)."""
    items: list[tuple[str, str]] = []
    cursor = after
    for _ in range(10_000):
        page = await feed(store, cursor, org=org, flt=flt, **kw)
        items.extend((p, m.content) for p, m in page.items)
        if page.cursor == cursor and not page.items:
            return items, cursor
        cursor = page.cursor
    raise AssertionError("the feed never settled")


async def write(mt: Any, *contents: str, **fields: Any) -> list[str]:
    agent = fields.pop("agent", "a")
    return [
        (await mt.add_memory(agent_id=agent, content=content, **fields)).id for content in contents
    ]


def order_key(store: Store, position: str) -> tuple[int, ...]:
    """A position's place in commit order, for checking that positions grow (the test knows
    the built-in stores' formats; a plugin store's positions are compared by the items)."""
    digits = position.lstrip("sp")
    return tuple(int(part) for part in digits.split("."))


# -- order, resume, head ----------------------------------------------------------------------


async def test_writes_come_in_commit_order_and_resume_exactly(
    mts: tuple[AsyncMemtrace, Store],
) -> None:
    mt, store = mts
    head = await store.feed_head(ORG)
    await write(mt, "first", "second", "third")
    items, cursor = await drain(store, head)
    assert [c for _, c in items] == ["first", "second", "third"]
    keys = [order_key(store, p) for p, _ in items]
    assert keys == sorted(keys)
    assert len(set(keys)) == 3
    # resume just past the second: only the third; from the final cursor: nothing
    assert [c for _, c in (await drain(store, items[1][0]))[0]] == ["third"]
    assert (await drain(store, cursor))[0] == []
    # the same position always yields the same sequence
    assert (await drain(store, head))[0] == items


async def test_the_head_is_now(mts: tuple[AsyncMemtrace, Store]) -> None:
    mt, store = mts
    await write(mt, "before")
    head = await store.feed_head(ORG)
    await write(mt, "after")
    assert [c for _, c in (await drain(store, head))[0]] == ["after"]


async def test_a_position_is_never_reused_after_a_delete(mts: tuple[AsyncMemtrace, Store]) -> None:
    """SQLite handed out MAX(rowid) + 1 before schema 8: deleting the newest memory gave its
    rowid to the next one, behind a reader's position."""
    mt, store = mts
    head = await store.feed_head(ORG)
    (x,) = await write(mt, "x")
    ((pos_x, _),) = (await drain(store, head))[0]
    await mt.delete_memory(x)
    await write(mt, "y")
    items, _ = await drain(store, pos_x)
    assert [c for _, c in items] == ["y"]
    assert order_key(store, items[0][0]) > order_key(store, pos_x)


async def test_deleted_and_expired_memories_are_left_out(mts: tuple[AsyncMemtrace, Store]) -> None:
    mt, store = mts
    head = await store.feed_head(ORG)
    (gone,) = await write(mt, "deleted")
    await write(mt, "expired", ttl=1)
    await write(mt, "kept")
    await mt.delete_memory(gone)
    later = MemoryFilter(live_at=now_us() + 5_000_000)
    items, _ = await drain(store, head, flt=later)
    assert [c for _, c in items] == ["kept"]


async def test_a_filter_matching_nothing_still_moves_the_cursor(
    mts: tuple[AsyncMemtrace, Store],
) -> None:
    mt, store = mts
    head = await store.feed_head(ORG)
    await mt.add_memories([{"agent_id": "noise", "content": f"n{i}"} for i in range(25)])
    await write(mt, "wanted", agent="signal")
    flt = MemoryFilter(agent_ids=("signal",), live_at=now_us())
    page = await feed(store, head, flt=flt, scan=10)
    assert page.items == []
    assert page.more
    assert page.cursor != head
    items, _ = await drain(store, head, flt=flt, scan=10)
    assert [c for _, c in items] == ["wanted"]
    # limit: a page stops at it, the cursor at its last item
    page = await feed(store, head, limit=3)
    assert [m.content for _, m in page.items] == ["n0", "n1", "n2"]
    assert page.cursor == page.items[-1][0]
    assert page.more


async def test_filters_are_the_list_filters(mts: tuple[AsyncMemtrace, Store]) -> None:
    mt, store = mts
    head = await store.feed_head(ORG)
    await write(mt, "tagged", tags=["x", "y"], event_type="tool_call")
    await write(mt, "other type", memory_type="decision")
    await write(mt, "in session", session_id="s1")
    flt = MemoryFilter(tags=("x",), event_types=("tool_call",), live_at=now_us())
    assert [c for _, c in (await drain(store, head, flt=flt))[0]] == ["tagged"]
    flt = MemoryFilter(memory_types=("decision",), live_at=now_us())
    assert [c for _, c in (await drain(store, head, flt=flt))[0]] == ["other type"]
    flt = MemoryFilter(session_id="s1", live_at=now_us())
    assert [c for _, c in (await drain(store, head, flt=flt))[0]] == ["in session"]


async def test_another_orgs_memories_never_appear(engine: AsyncMemtrace) -> None:
    store = engine.store
    mine, theirs = engine.with_org(ORG), engine.with_org(OTHER)
    head = await store.feed_head(ORG)
    await write(theirs, "secret")
    await write(mine, "mine")
    await write(theirs, "secret 2")
    items, _ = await drain(store, head)
    assert [c for _, c in items] == ["mine"]
    # a position taken from the other org's feed is just a point in the order
    other_items, _ = await drain(store, await store.feed_head(OTHER), org=OTHER)
    assert other_items == []
    theirs_all, _ = await drain(store, head, org=OTHER)
    assert [c for _, c in theirs_all] == ["secret", "secret 2"]
    assert [c for _, c in (await drain(store, theirs_all[0][0]))[0]] == ["mine"]


async def test_imported_memories_are_new_memories(mts: tuple[AsyncMemtrace, Store]) -> None:
    mt, store = mts
    await write(mt, "old one")
    lines = [line async for line in mt.iter_export()]
    target = mt.with_org("org_feed_import")
    head = await store.feed_head("org_feed_import")
    await target.import_jsonl(lines)
    items, _ = await drain(store, head, org="org_feed_import")
    assert [c for _, c in items] == ["old one"]


async def test_refused_positions(mts: tuple[AsyncMemtrace, Store]) -> None:
    _, store = mts
    head = await store.feed_head(ORG)
    other_kind = "p1.1" if head.startswith("s") else "s1"
    beyond = "s99999999999" if head.startswith("s") else "p999999999999999.1"
    for bad in ("", "zzz", "s-1", "p1", "p1.x", "s1.5", other_kind, beyond, "s" + "9" * 30):
        with pytest.raises(ValidationError) as err:
            await feed(store, bad)
        assert err.value.field == "after", bad


async def test_two_writers_on_one_store_lose_nothing(store_url: str) -> None:
    """Two engines on one store (two processes' worth: separate connections and writers),
    writing concurrently: one reader sees every memory exactly once, in one order."""
    first, second = await aconnect(store_url), await aconnect(store_url)
    try:
        assert isinstance(first, AsyncMemtrace)
        assert isinstance(second, AsyncMemtrace)
        store = first.store
        head = await store.feed_head(ORG)
        seen: list[tuple[str, str]] = []
        cursor = head

        async def writer(mt: AsyncMemtrace, name: str) -> None:
            for i in range(15):
                await mt.with_org(ORG).add_memory(agent_id=name, content=f"{name}-{i}")

        async def reader() -> None:
            nonlocal cursor
            for _ in range(50):
                page = await feed(store, cursor, limit=7)
                seen.extend((p, m.content) for p, m in page.items)
                cursor = page.cursor
                await asyncio.sleep(0)

        await asyncio.gather(writer(first, "w1"), writer(second, "w2"), reader())
        rest, _ = await drain(store, cursor)
        seen.extend(rest)
        contents = [c for _, c in seen]
        assert sorted(contents) == sorted([f"w{w}-{i}" for w in (1, 2) for i in range(15)])
        assert len(set(contents)) == len(contents)
        # each writer's own memories in its order; the whole order is the feed's from the head
        for w in ("w1", "w2"):
            assert [c for c in contents if c.startswith(w)] == [f"{w}-{i}" for i in range(15)]
        assert (await drain(store, head))[0] == seen
    finally:
        await first.close()
        await second.close()


# -- property: any paging reads the same sequence ---------------------------------------------


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["write", "write", "write", "delete"]), st.integers(0, 2)),
        min_size=1,
        max_size=25,
    ),
    limit=st.integers(1, 6),
    scan=st.integers(1, 8),
)
async def test_any_paging_reads_every_surviving_memory_once_in_order(
    engine: AsyncMemtrace, ops: list[tuple[str, int]], limit: int, scan: int
) -> None:
    org = f"org_{uuid.uuid4().hex[:12]}"
    mt, store = engine.with_org(org), engine.store
    head = await store.feed_head(org)
    written: list[tuple[str, str, str]] = []  # (id, content, agent)
    for n, (op, agent) in enumerate(ops):
        if op == "delete" and written:
            victim = written.pop(agent % len(written))
            await mt.delete_memory(victim[0])
        else:
            m = await mt.add_memory(agent_id=f"a{agent}", content=f"m{n}")
            written.append((m.id, m.content, f"a{agent}"))
    flt = MemoryFilter(agent_ids=("a1",), live_at=now_us())
    items, _ = await drain(store, head, org=org, flt=flt, limit=limit, scan=scan)
    assert [c for _, c in items] == [c for _, c, a in written if a == "a1"]
    everything, _ = await drain(store, head, org=org, limit=limit, scan=scan)
    assert [c for _, c in everything] == [c for _, c, _ in written]


# -- watch(), on both transports ----------------------------------------------------------------


async def take(stream: Any, n: int, timeout: float = 10) -> list[StreamEvent]:
    out: list[StreamEvent] = []

    async def run() -> None:
        async for event in stream:
            out.append(event)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


async def test_watch_follows_new_memories_and_resumes(mt: Any) -> None:
    await mt.add_memory(agent_id="planner", content="history: not an event")
    stream = mt.watch(agent_id="planner")
    await stream.start()
    start = stream.position
    assert start
    task = asyncio.ensure_future(take(stream, 2))
    await mt.add_memory(agent_id="planner", content="one")
    await mt.add_memory(agent_id="crawler", content="not this agent")
    await mt.add_memory(agent_id="planner", content="two", tags=["t"])
    events = await task
    assert [e.memory.content for e in events] == ["one", "two"]
    assert events[1].memory.tags == ["t"]
    assert events[1].memory.agent_id == "planner"
    assert stream.position == events[1].position
    # resume just past the first event: exactly the second, then new ones
    again = mt.watch(agent_id="planner", after=events[0].position)
    task = asyncio.ensure_future(take(again, 2))
    await mt.add_memory(agent_id="planner", content="three")
    assert [e.memory.content for e in await task] == ["two", "three"]
    # from the start position: all three, once each
    replay = await take(mt.watch(agent_id="planner", after=start), 3)
    assert [e.memory.content for e in replay] == ["one", "two", "three"]
    assert [e.position for e in replay[:2]] == [e.position for e in events]


async def test_watch_refuses_bad_filters_and_positions(mt: Any) -> None:
    for kwargs in ({"after": "not-a-position"}, {"memory_types": ["bogus"]}, {"tags": [""]}):
        with pytest.raises(ValidationError):
            await mt.watch(**kwargs).start()
    with pytest.raises(ValidationError):
        mt.watch(unknown_filter="x")


async def test_watch_carries_any_text_whole(mt: Any) -> None:
    """Line separators that are not SSE line ends (U+2028, U+2029, NEL) and CR / LF inside a
    memory reach the watcher unchanged on both transports."""
    stream = mt.watch(agent_id="text")
    await stream.start()
    task = asyncio.ensure_future(take(stream, 1))
    content = "a\u2028b\u2029c\x85d\re\nf\r\ng <script>x</script> \U0001f600"
    written = await mt.add_memory(agent_id="text", content=content)
    (event,) = await task
    assert event.memory.id == written.id
    assert event.memory.content == content
