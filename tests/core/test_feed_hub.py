"""The engine's feed hub (memtrace_core/feed.py): a write wakes only the watchers of its own
org — through the same engine at once, through another process by the store's polled
version and changed orgs — so one busy tenant does not make every watcher read the store."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from memtrace_core import AsyncMemtrace, aconnect


async def counting(engine: AsyncMemtrace) -> dict[str, int]:
    """Count the store's feed reads per org."""
    calls: dict[str, int] = {}
    store: Any = engine.store
    original = store.feed_memories

    async def feed_memories(org_id: str, *args: Any, **kwargs: Any) -> Any:
        calls[org_id] = calls.get(org_id, 0) + 1
        return await original(org_id, *args, **kwargs)

    store.feed_memories = feed_memories
    return calls


async def test_writes_of_one_org_do_not_wake_another_orgs_watchers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = await aconnect(url)
    other_process = await aconnect(url)
    assert isinstance(engine, AsyncMemtrace)
    assert isinstance(other_process, AsyncMemtrace)
    try:
        calls = await counting(engine)
        quiet = [engine.with_org("org_quiet").watch() for _ in range(20)]
        busy = engine.with_org("org_busy").watch()
        for w in [*quiet, busy]:
            await w.start()
        got: list[str] = []

        async def follow() -> None:
            async for event in busy:
                got.append(event.memory.content)
                if len(got) == 20:
                    return

        async def idle(w: Any) -> None:
            async for _ in w:
                raise AssertionError("nothing was written to org_quiet")

        idlers = [asyncio.ensure_future(idle(w)) for w in quiet]
        task = asyncio.ensure_future(follow())
        before = calls.get("org_quiet", 0)
        started = time.monotonic()
        for n in range(10):
            await engine.with_org("org_busy").add_memory(agent_id="a", content=f"here {n}")
            await other_process.with_org("org_busy").add_memory(agent_id="a", content=f"there {n}")
            await asyncio.sleep(0.05)
        await asyncio.wait_for(task, 10)
        elapsed = time.monotonic() - started
        woken = calls.get("org_quiet", 0) - before
        # the quiet watchers read only on their idle timer (every 5 s with a polled version)
        assert woken <= 20 * (int(elapsed / engine._core.feed_hub().idle_seconds) + 1)
        assert sorted(got) == sorted(
            [f"here {n}" for n in range(10)] + [f"there {n}" for n in range(10)]
        )
        for t in idlers:
            t.cancel()
    finally:
        await engine.close()
        await other_process.close()


async def test_another_process_write_wakes_an_idle_watcher_quickly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine, other = await aconnect(url), await aconnect(url)
    try:
        stream = engine.watch()
        await stream.start()
        await asyncio.sleep(0.3)  # the poller has read the version
        started = time.monotonic()
        await other.add_memory(agent_id="a", content="from elsewhere")
        batch = await stream.next_batch(timeout=5)  # type: ignore[attr-defined]
        assert [e.memory.content for e in batch] == ["from elsewhere"]
        assert time.monotonic() - started < 2  # the 0.2 s poll, not the 5 s idle timer
        await stream.aclose()
    finally:
        await engine.close()
        await other.close()


def test_a_blocking_watch_closed_before_its_first_event_lets_go(tmp_path: Path) -> None:
    from memtrace_core import connect

    mt = connect(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        hub = mt._async._core.feed_hub()
        watches = [mt.watch() for _ in range(3)]
        assert hub.watchers == 3
        watches[0].close()
        with watches[1]:
            pass
        del watches[2]
        watches.clear()
        import gc

        gc.collect()
        assert hub.watchers == 0
        with mt.watch(agent_id="b") as stream:
            mt.add_memory(agent_id="b", content="seen")
            event = next(stream)
            assert event.memory.content == "seen"
            assert stream.position == event.position
        assert hub.watchers == 0
    finally:
        mt.close()


async def test_the_http_clients_first_connection_failure_is_raised() -> None:
    import socket

    from memtrace_core import TransportError
    from memtrace_core.client import AsyncMemtraceClient

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = AsyncMemtraceClient(f"http://127.0.0.1:{port}", api_key="mtk_x")
    try:
        stream = client.watch()
        started = time.monotonic()
        try:
            async for _ in stream:
                raise AssertionError("no server: no event")
        except TransportError:
            pass
        else:
            raise AssertionError("a watch of a closed port must fail, not retry in silence")
        assert time.monotonic() - started < 5
    finally:
        await client.close()


async def test_a_closed_watch_or_engine_starts_no_watch(tmp_path: Path) -> None:
    """A watch closed before it started does not subscribe; after end_watches (a server
    stopping) a new watch is refused with FeedClosed (the stream answers 503)."""
    import pytest

    from memtrace_core.feed import FeedClosed

    engine = await aconnect(f"sqlite:///{tmp_path / 'hub.db'}")
    assert isinstance(engine, AsyncMemtrace)
    try:
        early = engine.watch()
        await early.aclose()
        with pytest.raises(FeedClosed):
            await early.start()
        assert engine._core.feed_hub().watchers == 0
        await engine.end_watches()
        with pytest.raises(FeedClosed):
            await engine.watch().start()
    finally:
        await engine.close()


class _NoVersionStore:
    """A store without ``feed_version``: the hub polls nothing, only notify wakes it early."""


def test_notify_from_another_thread_wakes_a_watcher_on_its_own_loop() -> None:
    """An engine over a loop-agnostic store writes on its callers' loops: the hub's notify
    then runs on another thread than the waiter's loop and must wake it there, at once."""
    from memtrace_core.feed import FeedHub

    hub = FeedHub(_NoVersionStore(), idle_seconds=30.0)  # type: ignore[arg-type]
    waiting = threading.Event()

    async def watcher() -> float:
        generation = hub.generation("org_a")
        started = time.monotonic()
        waiting.set()
        await hub.wait("org_a", generation, 10.0)
        return time.monotonic() - started

    result: list[float] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(watcher())))
    thread.start()
    assert waiting.wait(5)
    time.sleep(0.05)  # the waiter is registered
    hub.notify("org_b")  # another org: no wake-up
    time.sleep(0.1)
    assert thread.is_alive()
    hub.notify("org_a")  # no loop runs on this thread
    thread.join(5)
    assert not thread.is_alive()
    assert result
    assert result[0] < 2.0

    async def notify_from_a_loop() -> None:  # a loop of its own, not the waiter's
        hub.notify("org_a")

    waiting.clear()
    result.clear()
    thread = threading.Thread(target=lambda: result.append(asyncio.run(watcher())))
    thread.start()
    assert waiting.wait(5)
    time.sleep(0.05)
    asyncio.run(notify_from_a_loop())
    thread.join(5)
    assert not thread.is_alive()
    assert result
    assert result[0] < 2.0


def test_closing_the_hub_from_another_loop_cancels_its_poller(tmp_path: Path) -> None:
    """A loop's poller runs on that loop; closing from another thread's loop cancels it
    there (a Task is not thread-safe) and ends every wait."""
    from memtrace_core.feed import FeedHub

    class Versioned:
        async def feed_version(self) -> int:
            return 1

    hub = FeedHub(Versioned(), poll_seconds=0.01)  # type: ignore[arg-type]
    ready = threading.Event()
    done: list[bool] = []

    async def watcher() -> None:
        hub.subscribe()
        generation = hub.generation("org_a")
        ready.set()
        await hub.wait("org_a", generation, 30.0)
        await asyncio.sleep(0.2)  # the cancellation reaches the poller on this loop
        done.append(not hub._pollers)

    thread = threading.Thread(target=lambda: asyncio.run(watcher()))
    thread.start()
    assert ready.wait(5)
    time.sleep(0.05)
    [(task, count)] = hub._pollers.values()
    assert task is not None
    assert count == 1
    assert not task.done()
    asyncio.run(hub.close())
    thread.join(5)
    assert not thread.is_alive()
    assert done == [True]
    assert task.cancelled()


def test_a_watch_on_a_short_lived_loop_leaves_the_others_polled(tmp_path: Path) -> None:
    """Over SQLite a handle's async callers watch on their own loops: the first watcher's
    loop ending (asyncio.run in a worker) must not take the version poll away from a blocking
    watch on the handle's loop, which would then see another connection's write only after
    its 5 s idle timer."""
    from memtrace_core import connect
    from memtrace_core.bridge import MemtraceHandle

    url = f"sqlite:///{tmp_path / 'm.db'}"
    with connect(url) as mt, connect(url) as other:
        handle = MemtraceHandle(mt)
        started, portal_started = threading.Event(), threading.Event()

        async def short_watch(api: Any) -> None:
            watch = api.watch(agent_id="bot")
            await watch.start()  # the hub's first watcher, on this loop
            started.set()
            await asyncio.to_thread(portal_started.wait, 10)
            await watch.aclose()

        first = threading.Thread(target=lambda: asyncio.run(handle.run(short_watch)))
        first.start()
        assert started.wait(10)
        blocking = mt.watch(agent_id="bot")  # the second watcher, on the handle's own loop
        portal_started.set()
        first.join(10)
        got: list[float] = []
        began = time.monotonic()
        reader = threading.Thread(target=lambda: (next(blocking), got.append(time.monotonic())))
        reader.start()
        time.sleep(0.1)
        other.remember("bot", "from another connection")  # only the version poll sees it
        reader.join(10)
        blocking.close()
        assert got
        assert got[0] - began < 2.0  # polled every 0.2 s, not the 5 s idle timer
