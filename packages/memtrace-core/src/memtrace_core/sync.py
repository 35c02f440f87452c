"""Blocking twins: :class:`Memtrace` wraps :class:`~memtrace_core.engine.AsyncMemtrace` (and
:class:`~memtrace_core.client.MemtraceClient` wraps the async HTTP client) by running the async
object on one private event-loop thread — a portal, not a second copy of the logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator, Mapping
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from .api import AsyncMemoryAPI
from .engine import AsyncMemtrace
from .feed import WatchStream
from .models import DeleteFilter, StreamEvent, WatchOptions

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A")


class _ThreadLoop:
    """The private event loop of one calling thread (see :meth:`Portal.call`); closed when
    the thread ends and its thread-local goes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()

    def __del__(self) -> None:
        if self.pid == os.getpid() and not self.loop.is_closed():
            with contextlib.suppress(Exception):
                self.loop.close()


_thread_loops = threading.local()
#: loops a forked child inherited from its parent's threads: never closed or collected, since
#: closing one would unregister the parent's descriptors from the epoll instance they share
_inherited: list[_ThreadLoop] = []


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's private event loop (made on first use; a forked child makes its own)."""
    holder: _ThreadLoop | None = getattr(_thread_loops, "holder", None)
    if holder is None or holder.pid != os.getpid():
        if holder is not None:
            _inherited.append(holder)
        holder = _thread_loops.holder = _ThreadLoop()
    return holder.loop


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
        thread's own private loop instead, unless a loop already runs on this thread: one
        thread hop fewer each way."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking memtrace call cannot be made from its own event loop")
        if self.loop.is_closed():
            coro.close()
            raise RuntimeError("this memtrace handle is closed")
        if here and asyncio._get_running_loop() is None:
            return _thread_loop().run_until_complete(coro)
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
        return self._portal.call(bound(*args, **kwargs), here=self._any_loop)

    functools.update_wrapper(method, fn)
    return method


class BlockingTwin(Generic[A]):
    """Base of the blocking twins: owns the portal and the wrapped async object."""

    def __init__(self, async_obj: A, portal: Portal | None = None) -> None:
        self._async = async_obj
        self._portal = portal or Portal()
        self._owns_portal = portal is None
        #: its methods run on the calling thread (see :meth:`Portal.call`); watches, exports
        #: and close stay on the portal
        self._any_loop = bool(getattr(async_obj, "loop_agnostic", False))

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
