"""Blocking twins: :class:`Memtrace` wraps :class:`~memtrace_core.engine.AsyncMemtrace` (and
:class:`~memtrace_core.client.MemtraceClient` wraps the async HTTP client) by running the async
object on one private event-loop thread — a portal, not a second copy of the logic.

An engine that is ``loop_agnostic`` (the embedded SQLite store, no write plugins) skips the
portal for its blocking methods: each call runs on the calling thread, on a private loop
taken from a small pool (:class:`_LoopPool`), one thread round trip fewer per call. Watches,
exports and ``close`` always run on the portal.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import selectors
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from .api import AsyncMemoryAPI
from .engine import AsyncMemtrace
from .feed import WatchStream
from .models import DeleteFilter, StreamEvent, WatchOptions

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A")


#: At most this many private loops (see :class:`_LoopPool`); more callers at once use the
#: portal.
LOOP_POOL_SIZE = 8


def _green_threads() -> bool:
    """True when gevent or eventlet replaced threads with greenlets: a private loop would then
    block in a real ``poll`` for the whole process, where the portal's wait yields."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("threading"):
        return True
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    return bool(eventlet_patcher is not None and eventlet_patcher.is_monkey_patched("thread"))


class _LoopPool:
    """Private event loops for blocking calls made on the calling thread (see
    :meth:`Portal.call`): one is taken for a call and given back after it, so the process
    keeps at most :data:`LOOP_POOL_SIZE` of them (two descriptors each) and one pool of
    worker threads for them, however many threads call. Each waits with ``poll``/``select``,
    not epoll, whose interest list a forked child shares with its parent (closing an
    inherited loop there would unregister the parent's descriptors); a child keeps the
    inherited pool untouched and makes its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[asyncio.AbstractEventLoop] = []
        self._made = 0
        self._loops: list[asyncio.AbstractEventLoop] = []  # every loop made, idle or in use
        self._threads: ThreadPoolExecutor | None = None

    def take(self) -> asyncio.AbstractEventLoop | None:
        """An idle loop, a new one, or None when the pool is used up (or no loop can be made:
        out of descriptors)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._made >= LOOP_POOL_SIZE:
                return None
            self._made += 1
        try:
            selector = (
                selectors.PollSelector()
                if hasattr(selectors, "PollSelector")
                else selectors.SelectSelector()
            )
            loop = asyncio.SelectorEventLoop(selector)
        except OSError:
            with self._lock:
                self._made -= 1
            return None
        # the engine's off-loop steps (asyncio.to_thread: a big batch's validation, a big
        # rerank) share one pool of threads instead of one per private loop
        loop.set_default_executor(self._executor())
        with self._lock:
            self._loops.append(loop)
        return loop

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(thread_name_prefix="memtrace-call")
            return self._threads

    def give(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._idle.append(loop)

    def retire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Never use ``loop`` again (it still holds a call's task: see :func:`_run_here`); a
        new loop may take its place. It is kept, not closed: closing it would shut down the
        worker pool the loops share, and a store's thread may still hand it a result."""
        with self._lock:
            self._loops.remove(loop)
            self._made -= 1
            _retired.append(loop)


_pool = _LoopPool()

#: loops taken out of the pool with a call's task still pending (kept: collected, the task
#: would be logged as destroyed while pending)
_retired: list[asyncio.AbstractEventLoop] = []


#: pools a forked child inherited: kept, never closed nor collected (closing a loop shuts its
#: executor down, whose lock a parent's thread may have held at the fork)
_inherited: list[_LoopPool] = []


def _after_fork_in_child() -> None:
    """The inherited loops belong to the parent's threads: the child starts a pool of its
    own (the old one's lock may have been held at the fork)."""
    global _pool
    _inherited.append(_pool)
    _pool = _LoopPool()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _run_here(pool: _LoopPool, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, R]) -> R:
    """Run ``coro`` on ``loop``, taken from ``pool``, and give the loop back. Interrupted
    meanwhile (KeyboardInterrupt or SystemExit raised in the loop), the call is cancelled and
    wound down before the interrupt goes on, so the loop keeps nothing of it (a write the
    store already had still commits; the engine's own steps after it, such as waking watchers
    at once, are skipped), and the loop is given back. The loop is retired instead, so that
    nothing of the call runs inside a later one, when the interrupt came after the call's last
    step (its completion callbacks, which stop the loop, may still be queued on it) or again
    during the wind-down (the call's task may still be pending)."""
    reusable = False
    try:
        task = loop.create_task(coro)
    except BaseException:
        pool.give(loop)  # nothing was queued
        raise
    try:
        result = loop.run_until_complete(task)
        reusable = True
        return result
    except (KeyboardInterrupt, SystemExit):
        if not task.done():
            task.cancel()
            try:
                loop.run_until_complete(task)
            except (KeyboardInterrupt, SystemExit):
                pass  # interrupted again: not reusable
            except BaseException:  # CancelledError, or the call's own error as it wound down
                reusable = task.done()
            else:
                reusable = True
        raise
    except BaseException:  # the call's own outcome (its error, or its cancellation)
        reusable = task.done()
        raise
    finally:
        # one place, so that an interrupt at any point still frees the loop's slot
        if reusable:
            pool.give(loop)
        else:
            pool.retire(loop)


class Portal:
    """An event loop running in a daemon thread; :meth:`call` runs a coroutine on it and blocks
    for the result (exceptions propagate unchanged)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="memtrace-portal", daemon=True
        )
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, R], *, here: bool = False) -> R:
        """Run ``coro`` to its end and return its result. On the portal's loop; with ``here``
        (a coroutine that may run on any loop: a ``loop_agnostic`` engine's) on the calling
        thread, on a private loop from a small pool, one thread hop fewer each way — unless
        a loop already runs on this thread, green threads replaced threads, or the pool is in
        use by :data:`LOOP_POOL_SIZE` other calls."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking memtrace call cannot be made from its own event loop")
        if self.loop.is_closed():
            coro.close()
            raise RuntimeError("this memtrace handle is closed")
        if here and asyncio._get_running_loop() is None and not _green_threads():
            pool = _pool
            loop = pool.take()
            if loop is not None:
                return _run_here(pool, loop, coro)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def blocking(
    fn: Callable[Concatenate[A, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Any, P], R]:
    """Turn an async method of the wrapped object into a blocking method of the twin, keeping
    its signature and docstring. The method is looked up by name on the wrapped object, so
    one twin class serves every implementation of the same method set."""
    name = fn.__name__

    def method(self: BlockingTwin[Any], /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound: Callable[P, Coroutine[Any, Any, R]] = getattr(self._async, name)
        here = getattr(self._async, "loop_agnostic", False)  # asked per call: plugins change
        return self._portal.call(bound(*args, **kwargs), here=here)

    functools.update_wrapper(method, fn)
    return method


class BlockingTwin(Generic[A]):
    """Base of the blocking twins: owns the portal and the wrapped async object."""

    def __init__(self, async_obj: A, portal: Portal | None = None) -> None:
        self._async = async_obj
        self._portal = portal or Portal()
        self._owns_portal = portal is None

    @property
    def aio(self) -> A:
        """The wrapped async object (use it only from the portal's loop)."""
        return self._async

    def close(self) -> None:
        """Flush, close the store/connection and stop the portal thread."""
        closer = getattr(self._async, "close", None)
        if closer is not None and not self._portal.loop.is_closed():
            self._portal.call(closer())
        if self._owns_portal:
            self._portal.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlockingMethods(BlockingTwin[A]):
    """The method set of :class:`~memtrace_core.api.MemoryAPI`, derived once from the
    contract (:class:`~memtrace_core.api.AsyncMemoryAPI`): each method runs the wrapped async
    object's method of the same name on the portal. Both blocking twins inherit it."""

    def iter_export(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> Iterator[str]:
        """JSON Lines export, as a blocking iterator (see :meth:`AsyncMemoryAPI.iter_export`)."""
        agen = cast("AsyncMemoryAPI", self._async).iter_export(criteria, **fields)
        return iterate(self._portal, cast("AsyncGenerator[str, None]", agen))

    def watch(
        self,
        options: WatchOptions | Mapping[str, Any] | None = None,
        /,
        *,
        after: str | None = None,
        **filters: Any,
    ) -> Iterator[StreamEvent]:
        """The live feed as a blocking iterator (see :meth:`AsyncMemoryAPI.watch`): the filters
        and the position are checked here (ValidationError); closing the iterator (or leaving
        the ``for`` loop) ends the watch."""
        stream = cast("AsyncMemoryAPI", self._async).watch(options, after=after, **filters)
        self._portal.call(stream.start())
        return BlockingWatch(self._portal, stream)

    remember = blocking(AsyncMemoryAPI.remember)
    recall = blocking(AsyncMemoryAPI.recall)
    decide = blocking(AsyncMemoryAPI.decide)
    add_memory = blocking(AsyncMemoryAPI.add_memory)
    add_memories = blocking(AsyncMemoryAPI.add_memories)
    list_memories = blocking(AsyncMemoryAPI.list_memories)
    search_memories = blocking(AsyncMemoryAPI.search_memories)
    get_memory = blocking(AsyncMemoryAPI.get_memory)
    get_memory_by_key = blocking(AsyncMemoryAPI.get_memory_by_key)
    list_namespaces = blocking(AsyncMemoryAPI.list_namespaces)
    delete_memory = blocking(AsyncMemoryAPI.delete_memory)
    delete_memories = blocking(AsyncMemoryAPI.delete_memories)
    pop_memory = blocking(AsyncMemoryAPI.pop_memory)
    summarize_memories = blocking(AsyncMemoryAPI.summarize_memories)
    register_agent = blocking(AsyncMemoryAPI.register_agent)
    list_agents = blocking(AsyncMemoryAPI.list_agents)
    get_agent = blocking(AsyncMemoryAPI.get_agent)
    get_agent_stats = blocking(AsyncMemoryAPI.get_agent_stats)
    get_activity = blocking(AsyncMemoryAPI.get_activity)
    get_agent_memories = blocking(AsyncMemoryAPI.get_agent_memories)
    get_agent_context = blocking(AsyncMemoryAPI.get_agent_context)
    delete_agent = blocking(AsyncMemoryAPI.delete_agent)
    create_session = blocking(AsyncMemoryAPI.create_session)
    get_session = blocking(AsyncMemoryAPI.get_session)
    list_sessions = blocking(AsyncMemoryAPI.list_sessions)
    update_session = blocking(AsyncMemoryAPI.update_session)
    close_session = blocking(AsyncMemoryAPI.close_session)
    delete_session = blocking(AsyncMemoryAPI.delete_session)
    get_session_memories = blocking(AsyncMemoryAPI.get_session_memories)
    get_session_context = blocking(AsyncMemoryAPI.get_session_context)
    export_jsonl = blocking(AsyncMemoryAPI.export_jsonl)
    import_jsonl = blocking(AsyncMemoryAPI.import_jsonl)
    purge_org = blocking(AsyncMemoryAPI.purge_org)
    get_retention_policy = blocking(AsyncMemoryAPI.get_retention_policy)
    set_retention_policy = blocking(AsyncMemoryAPI.set_retention_policy)
    clear_retention_policy = blocking(AsyncMemoryAPI.clear_retention_policy)
    apply_retention = blocking(AsyncMemoryAPI.apply_retention)


class Memtrace(BlockingMethods[AsyncMemtrace]):
    """The blocking engine: the methods of :class:`~memtrace_core.api.MemoryAPI` over an
    :class:`AsyncMemtrace`, called without await.

    >>> from memtrace_core import connect
    >>> mt = connect("sqlite:///memtrace.db")          # doctest: +SKIP
    >>> mt.remember("crawler", "Crawled example.com")   # doctest: +SKIP
    """

    @property
    def org_id(self) -> str:
        return self._async.org_id

    def with_org(self, org_id: str) -> Memtrace:
        """A view scoped to another org, sharing this engine's store and thread."""
        return _OrgView(self._async.with_org(org_id), self._portal)


async def _next(agen: AsyncGenerator[R, None]) -> R:
    return await agen.__anext__()


def iterate(portal: Portal, agen: AsyncGenerator[R, None]) -> Iterator[R]:
    """An async generator as a blocking iterator, each step run on ``portal``. The generator is
    closed (on the portal) when the iterator is, e.g. when the caller stops early."""
    try:
        while True:
            try:
                yield portal.call(_next(agen))
            except StopAsyncIteration:
                return
    finally:
        if not portal.loop.is_closed():
            # RuntimeError: closed by the garbage collector on the portal's own thread
            with contextlib.suppress(RuntimeError):
                portal.call(agen.aclose())


class BlockingWatch(Iterator[StreamEvent]):
    """A started watch as a blocking iterator (``for event in mt.watch(...)``).
    :attr:`position` is where to resume; :meth:`close` (or leaving a ``with`` block, or the
    iterator being garbage collected) ends the watch, also before the first event."""

    def __init__(self, portal: Portal, stream: WatchStream) -> None:
        self._portal = portal
        self._stream = stream
        self._agen = cast("AsyncGenerator[StreamEvent, None]", stream.__aiter__())
        self._closed = False

    @property
    def position(self) -> str | None:
        return self._stream.position

    def __iter__(self) -> BlockingWatch:
        return self

    def __next__(self) -> StreamEvent:
        if self._closed:
            raise StopIteration
        try:
            return self._portal.call(_next(self._agen))
        except StopAsyncIteration:
            self.close()
            raise StopIteration from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._portal.loop.is_closed():
            # RuntimeError: closed by the garbage collector on the portal's own thread
            with contextlib.suppress(RuntimeError):
                self._portal.call(self._agen.aclose())
                self._portal.call(self._stream.aclose())

    def __enter__(self) -> BlockingWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class _OrgView(Memtrace):
    def __init__(self, engine: AsyncMemtrace, portal: Portal) -> None:
        super().__init__(engine, portal)

    def close(self) -> None:  # the view does not own the store or the thread
        return None
