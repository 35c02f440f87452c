"""One memtrace handle for code that frameworks call both synchronously and asynchronously.

A framework integration (a LangGraph store, an OpenAI Agents session, a CrewAI memory) is
called from plain functions *and* from coroutines, often on the same object. It holds a
:class:`MemtraceHandle` and uses :attr:`MemtraceHandle.sync` in the former and
:meth:`MemtraceHandle.run` in the latter, so each call reaches the one method set of
:mod:`memtrace_core.api` — the embedded engine or the HTTP client alike — and nothing is
re-implemented per framework.

* A blocking handle from :func:`memtrace_core.connect` (or a URL, opened with it) serves
  both: its async methods run on the handle's own event-loop thread, and a coroutine awaits
  them without blocking its loop. Over an embedded SQLite store (an engine that is
  ``loop_agnostic``: no write plugins) they run on the awaiting coroutine's own loop instead,
  which saves a round trip between threads per call; the store's threads do the blocking work
  either way, and the engine moves its big CPU steps (a batch's validation, a big rerank) to
  a worker thread, so the caller's loop is held only for the small steps.
* An async handle from :func:`memtrace_core.aconnect` serves coroutines on the loop that
  opened it; a synchronous call then is a clear :class:`TypeError` (its connections belong to
  that loop and cannot be used from another thread).
* Any other object with the blocking method set (a user's own :class:`MemoryAPI`) serves
  both; coroutines run its methods in a worker thread.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from .api import AsyncMemoryAPI, MemoryAPI
from .sync import BlockingTwin

R = TypeVar("R")

__all__ = ["MemtraceHandle"]


class MemtraceHandle:
    """Both halves of the memtrace method set over one handle (see the module docstring).

    ``target`` is a handle from ``connect``/``aconnect``, or a URL (``sqlite:///…``,
    ``http://…``) that is opened with :func:`memtrace_core.connect` — then with ``api_key``
    and ``options`` (``org_id`` for an embedded store) and closed by :meth:`close`.
    """

    def __init__(
        self,
        target: MemoryAPI | AsyncMemoryAPI | str,
        *,
        api_key: str | None = None,
        **options: Any,
    ) -> None:
        self._owned = isinstance(target, str)
        if isinstance(target, str):
            from . import connect

            target = connect(target, api_key=api_key, **options)
        elif api_key is not None or options:
            raise TypeError("api_key and connection options apply only when target is a URL")
        self._sync: MemoryAPI | None
        self._async: AsyncMemoryAPI | None
        self._loop: asyncio.AbstractEventLoop | None = None
        if isinstance(target, BlockingTwin):
            self._sync = cast(MemoryAPI, target)
            self._async = cast(AsyncMemoryAPI, target.aio)
            self._loop = target._portal.loop
        elif inspect.iscoroutinefunction(getattr(target, "remember", None)):
            self._sync = None
            self._async = cast(AsyncMemoryAPI, target)
        elif callable(getattr(target, "remember", None)):
            self._sync = cast(MemoryAPI, target)
            self._async = None
        else:
            raise TypeError(
                "expected a memtrace handle (memtrace_core.connect(...) or aconnect(...)) or a "
                f"memtrace URL, got {type(target).__name__}"
            )

    @property
    def sync(self) -> MemoryAPI:
        """The blocking method set (a :class:`TypeError` for an async-only handle)."""
        if self._sync is None:
            raise TypeError(
                "this memtrace handle is async-only (from memtrace_core.aconnect): use the "
                "async methods, or pass memtrace_core.connect(...) for synchronous use"
            )
        return self._sync

    @property
    def is_async_only(self) -> bool:
        """True for a handle from ``aconnect`` (synchronous calls are refused)."""
        return self._sync is None

    async def run(self, call: Callable[[AsyncMemoryAPI], Coroutine[Any, Any, R]]) -> R:
        """Await ``call(api)`` with the async method set, without blocking the running loop:
        on the blocking handle's own loop when it has one, unless its engine may run on any
        loop (then on this one). Cancellation reaches the call either way."""
        if self._async is None:
            sync = self.sync
            return await asyncio.to_thread(_run_sync, call, sync)
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await call(self._async)
        if loop.is_closed():
            raise RuntimeError("this memtrace handle is closed")
        if getattr(self._async, "loop_agnostic", False):  # asked per call: plugins change
            return await call(self._async)
        future = asyncio.run_coroutine_threadsafe(call(self._async), loop)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Close the handle if this object opened it from a URL (else the caller owns it)."""
        if self._owned and self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        """:meth:`close` from a coroutine (the blocking close runs in a worker thread)."""
        if self._owned:
            await asyncio.to_thread(self.close)


def _run_sync(call: Callable[[AsyncMemoryAPI], Coroutine[Any, Any, R]], api: MemoryAPI) -> R:
    """Run an async-shaped call against a blocking-only method set: each awaited method of
    ``api`` returns its value at once, so the coroutine completes in one step."""
    coro = call(cast(AsyncMemoryAPI, _Awaitable(api)))
    try:
        coro.send(None)
    except StopIteration as stop:
        return cast(R, stop.value)
    coro.close()
    raise RuntimeError("the call awaited something other than a memtrace method")


class _Awaitable:
    """A blocking method set seen as an async one: each method returns an awaitable that
    resolves immediately (it ran synchronously)."""

    def __init__(self, api: MemoryAPI) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._api, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call
