"""The live feed: follow the memories of an org as they are committed.

A :class:`Watch` is pull-based: it keeps its own position and reads the store's feed
(:meth:`~memtrace_core.stores.base.Store.feed_memories`) one page at a time, so what a
watcher costs in memory is one page, however far behind it is — nothing is queued for it.
The engine's :class:`FeedHub` only *wakes* watchers:

* at once after a write through the same engine (the engine calls :meth:`FeedHub.notify`);
* when the store's ``feed_version()`` (optional; SQLite: the last rowid handed out,
  PostgreSQL: the memory sequence) changes, polled every :attr:`FeedHub.poll_seconds` while
  anyone watches — so writes of other processes and other servers arrive too;
* and every :attr:`FeedHub.idle_seconds` regardless (a store without ``feed_version``; rows
  PostgreSQL holds back while an older transaction is open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from .models import StreamEvent
from .stores.base import MemoryFilter, Store
from .timeutil import now_us

log = logging.getLogger("memtrace.feed")

#: Memories read per store call, and rows a call examines at most (matching or not).
PAGE = 100
SCAN = 2000


@runtime_checkable
class WatchStream(Protocol):
    """What ``watch(...)`` returns on every transport: an async iterator of StreamEvent with
    the position to resume from."""

    #: The position of the last event returned (or where the watch began); pass it as
    #: ``after`` to resume with nothing missed and nothing twice.
    position: str | None

    async def start(self) -> WatchStream:
        """Begin (validates the filters and the position: ValidationError here)."""
        ...

    def __aiter__(self) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None:
        """End the watch."""
        ...


class FeedClosed(Exception):
    """The engine was closed (or the server is stopping): the watch ended."""


class FeedHub:
    """Wakes the watchers of one engine (see the module docstring), org by org. Each event
    loop with watchers runs its own version poller while it has them (an engine over a
    ``loop_agnostic`` store serves watches on its callers' loops as well as on a blocking
    handle's own: a poller on one of them would end with that loop); :meth:`notify` may be
    called from any thread and wakes each watcher on its own loop."""

    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float = 0.2,
        idle_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self._version = getattr(store, "feed_version", None)
        self._changed_orgs = getattr(store, "feed_changed_orgs", None)
        #: how long a watcher waits without a wake-up before it reads anyway: long when the
        #: store's version is polled (it only guards against a missed change), short otherwise
        self.idle_seconds = (
            idle_seconds if idle_seconds is not None else (5.0 if self._version else 1.0)
        )
        self.closed = False
        self.watchers = 0
        self._generations: dict[str, int] = {}
        self._epoch = 0  # bumped by a store-wide change: every org's generation moves
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        #: per event loop with watchers: its poller task and how many watchers it serves
        self._pollers: dict[asyncio.AbstractEventLoop, tuple[asyncio.Task[None] | None, int]] = {}
        # generations, waiters, watcher counts and pollers change under this lock (notify may
        # run on another thread than a watcher's loop)
        self._lock = threading.Lock()

    def generation(self, org_id: str) -> int:
        with self._lock:
            return self._epoch + self._generations.get(org_id, 0)

    def notify(self, org_id: str | None = None) -> None:
        """Memories of ``org_id`` (None: of any org) may have been committed: wake its
        watchers (from any thread)."""
        with self._lock:
            if org_id is None:
                self._epoch += 1
                orgs = list(self._waiters)
            else:
                self._generations[org_id] = self._generations.get(org_id, 0) + 1
                orgs = [org_id] if org_id in self._waiters else []
            woken = [waiter for org in orgs for waiter in self._waiters.pop(org, ())]
        if woken:
            here = asyncio._get_running_loop()  # None on a thread without a loop
            for waiter in woken:
                loop = waiter.get_loop()
                if loop is here:
                    _wake(waiter)
                else:
                    with contextlib.suppress(RuntimeError):  # that loop is closed
                        loop.call_soon_threadsafe(_wake, waiter)

    async def wait(self, org_id: str, generation: int, timeout: float) -> None:
        """Until :meth:`notify` for ``org_id`` after ``generation`` was read (returns at once
        if it already was), the hub closes, or ``timeout`` seconds."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self.closed or self._epoch + self._generations.get(org_id, 0) != generation:
                return
            waiters = self._waiters.setdefault(org_id, set())
            waiters.add(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                waiters.discard(waiter)
                if not waiters and self._waiters.get(org_id) is waiters:
                    del self._waiters[org_id]

    def subscribe(self) -> asyncio.AbstractEventLoop:
        """A watcher on the running loop begins (its loop's poller starts if it has none);
        returns that loop, for :meth:`unsubscribe`."""
        if self.closed:
            raise FeedClosed("the engine is closed")
        loop = asyncio.get_running_loop()
        version = self._version
        with self._lock:
            self.watchers += 1
            for gone in [other for other in self._pollers if other.is_closed()]:
                del self._pollers[gone]  # a loop that ended with watchers never closed
            task, count = self._pollers.get(loop, (None, 0))
            if version is not None and (task is None or task.done()):
                task = loop.create_task(self._poll(version))
            self._pollers[loop] = (task, count + 1)
        return loop

    def unsubscribe(self, loop: asyncio.AbstractEventLoop) -> None:
        """A watcher of ``loop`` ended (the loop's poller stops with its last watcher)."""
        task: asyncio.Task[None] | None = None
        with self._lock:
            self.watchers = max(0, self.watchers - 1)
            entry = self._pollers.get(loop)
            if entry is not None:
                task, count = entry
                if count > 1:
                    self._pollers[loop] = (task, count - 1)
                    task = None
                else:
                    del self._pollers[loop]
        if task is not None:
            _cancel(task)

    async def _poll(self, version: Callable[[], Awaitable[Any]]) -> None:
        last: Any = None
        failures = 0
        while not self.closed:
            try:
                current = await version()
                if last is not None and current != last:
                    orgs = None
                    if self._changed_orgs is not None:
                        orgs = await self._changed_orgs(last, current)
                    if orgs is None:
                        self.notify()
                    else:
                        for org in orgs:
                            self.notify(org)
                last = current
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: watchers keep their idle timer
                failures += 1
                if failures == 1:
                    log.warning("feed: cannot read the store's feed version: %r", exc)
            await asyncio.sleep(self.poll_seconds)

    async def close(self) -> None:
        """End every watch (they raise :class:`FeedClosed` after their last events)."""
        self.closed = True
        self.notify()
        with self._lock:
            pollers = [task for task, _ in self._pollers.values() if task is not None]
            self._pollers.clear()
        here = asyncio.get_running_loop()
        for task in pollers:
            _cancel(task)
            if task.get_loop() is here:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` from any thread (on its own loop; nothing if that loop is closed)."""
    loop = task.get_loop()
    if loop is asyncio._get_running_loop():
        task.cancel()
    else:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(task.cancel)


class Watch:
    """The memories of one org matching a filter, as they are committed (an async iterator of
    :class:`~memtrace_core.models.StreamEvent`). Built by
    :meth:`~memtrace_core.engine.AsyncMemtrace.watch`; :meth:`start` validates the position
    (ValidationError, before anything is sent), iteration waits for new memories, and
    :meth:`aclose` (or breaking out of ``async for``) ends it."""

    def __init__(
        self,
        hub: FeedHub,
        org_id: str,
        resolve: Callable[[], Awaitable[MemoryFilter]],
        after: str | None,
        *,
        page: int = PAGE,
        scan: int = SCAN,
    ) -> None:
        self.hub = hub
        self.org_id = org_id
        self._resolve = resolve
        self.flt = MemoryFilter()
        #: The position of the last event returned (or where the watch began).
        self.position: str | None = after
        self._cursor = after
        self._page = page
        self._scan = scan
        self._buffer: deque[StreamEvent] = deque()
        self._started = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # where it subscribed

    async def start(self) -> Watch:
        """Take the head position (if none was given) and read the first page: a bad position
        raises ValidationError here."""
        if self._started:
            return self
        if self._closed:
            raise FeedClosed("the watch was closed")
        self._loop = self.hub.subscribe()
        self._started = True
        try:
            self.flt = await self._resolve()
            if self._cursor is None:
                self._cursor = await self.hub.store.feed_head(self.org_id)
                self.position = self._cursor
            await self._fetch()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _fetch(self) -> bool:
        """One store call; returns whether more rows are waiting."""
        flt = replace(self.flt, live_at=now_us())
        page = await self.hub.store.feed_memories(
            self.org_id, flt, after=self._cursor, limit=self._page, scan=self._scan
        )
        self._buffer.extend(StreamEvent(position=p, memory=m) for p, m in page.items)
        if not page.items:
            # nothing to show before the cursor: a resume from it loses nothing
            self.position = page.cursor
        self._cursor = page.cursor
        return page.more

    async def _fill(self, timeout: float | None) -> bool:
        """Wait until events are buffered (True) or ``timeout`` seconds ran out (False)."""
        await self.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._buffer:
            if self._closed or self.hub.closed:
                raise FeedClosed("the watch was closed")
            generation = self.hub.generation(self.org_id)
            more = await self._fetch()
            if self._buffer:
                break
            left = self.hub.idle_seconds
            if deadline is not None:
                left = min(left, deadline - loop.time())
                if left <= 0:  # also while catching up: the caller gets its turn
                    return False
            if more:
                continue
            await self.hub.wait(self.org_id, generation, left)
        return True

    async def next_batch(self, timeout: float | None = None) -> list[StreamEvent]:
        """The events available now, or the next ones within ``timeout`` seconds (None: wait
        for as long as it takes); [] when the time ran out. Raises :class:`FeedClosed` once the
        watch or the hub is closed and nothing is left."""
        if not await self._fill(timeout):
            return []
        out = list(self._buffer)
        self._buffer.clear()
        self.position = out[-1].position
        return out

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        try:
            while True:
                try:
                    await self._fill(None)
                except FeedClosed:
                    return
                event = self._buffer.popleft()
                self.position = event.position
                yield event
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._started and not self._closed and self._loop is not None:
            self.hub.unsubscribe(self._loop)
        self._closed = True
