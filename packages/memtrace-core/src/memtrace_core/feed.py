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
    """Wakes the watchers of one engine (see the module docstring). Bound to the event loop
    of its first watcher."""

    def __init__(
        self, store: Store, *, poll_seconds: float = 0.2, idle_seconds: float = 1.0
    ) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds
        self.generation = 0
        self.closed = False
        self.watchers = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Memories may have been committed: wake every watcher."""
        self.generation += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, generation: int, timeout: float) -> None:
        """Until :meth:`notify` is called after ``generation`` was read (returns at once if it
        already was), the hub closes, or ``timeout`` seconds."""
        if self.generation != generation or self.closed:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    def subscribe(self) -> None:
        if self.closed:
            raise FeedClosed("the engine is closed")
        self.watchers += 1
        version = getattr(self.store, "feed_version", None)
        if version is not None and (self._poller is None or self._poller.done()):
            self._poller = asyncio.get_running_loop().create_task(self._poll(version))

    def unsubscribe(self) -> None:
        self.watchers = max(0, self.watchers - 1)
        if self.watchers == 0 and self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def _poll(self, version: Callable[[], Awaitable[Any]]) -> None:
        last: Any = None
        failures = 0
        while not self.closed:
            try:
                current = await version()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: watchers keep their idle timer
                failures += 1
                if failures == 1:
                    log.warning("feed: cannot read the store's feed version: %r", exc)
            else:
                if last is not None and current != last:
                    self.notify()
                last = current
            await asyncio.sleep(self.poll_seconds)

    async def close(self) -> None:
        """End every watch (they raise :class:`FeedClosed` after their last events)."""
        self.closed = True
        self.notify()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None


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

    async def start(self) -> Watch:
        """Take the head position (if none was given) and read the first page: a bad position
        raises ValidationError here."""
        if self._started:
            return self
        self.hub.subscribe()
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
            generation = self.hub.generation
            if await self._fetch() or self._buffer:
                continue
            left = self.hub.idle_seconds
            if deadline is not None:
                left = min(left, deadline - loop.time())
                if left <= 0:
                    return False
            await self.hub.wait(generation, left)
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
        if self._started and not self._closed:
            self.hub.unsubscribe()
        self._closed = True
