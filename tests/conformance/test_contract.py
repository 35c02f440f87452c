"""The method set is one contract (memtrace_core.api): every implementation has every method
of its protocol with exactly the protocol's signature, and the blocking protocol is the async
one without ``await``. A method missing from an implementation, or a parameter that differs
in name, kind, default or annotation, fails here (and in mypy, at ``connect``'s return)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, Memtrace, api
from memtrace_core.client import AsyncMemtraceClient, MemtraceClient

ASYNC = [AsyncMemtrace, AsyncMemtraceClient]
BLOCKING = [Memtrace, MemtraceClient]


def shape(fn: Any) -> tuple[Any, ...]:
    sig = inspect.signature(fn)
    params = tuple((p.name, p.kind, p.default, str(p.annotation)) for p in sig.parameters.values())
    return params, str(sig.return_annotation)


def test_the_method_set_is_named_once() -> None:
    assert len(api.METHODS) == len(set(api.METHODS)) > 25
    assert set(api.METHODS) == {name for name in vars(api.MemoryAPI) if not name.startswith("_")}
    assert "close" in api.METHODS
    assert "iter_export" in api.METHODS


@pytest.mark.parametrize("name", api.METHODS)
def test_the_blocking_protocol_is_the_async_one_without_await(name: str) -> None:
    async_params, async_ret = shape(getattr(api.AsyncMemoryAPI, name))
    sync_params, sync_ret = shape(getattr(api.MemoryAPI, name))
    assert sync_params == async_params
    if name == "iter_export":
        assert (async_ret, sync_ret) == ("AsyncIterator[str]", "Iterator[str]")
    elif name == "watch":
        assert (async_ret, sync_ret) == ("WatchStream", "Iterator[StreamEvent]")
    else:
        assert sync_ret == async_ret
        assert inspect.iscoroutinefunction(getattr(api.AsyncMemoryAPI, name))


def problems(impl: type, protocol: type, name: str) -> list[str]:
    """How ``impl.name`` departs from ``protocol.name`` (empty when it conforms)."""
    method = getattr(impl, name, None)
    if not callable(method):
        return [f"{impl.__name__} lacks {name}"]
    out = []
    if shape(method)[0] != shape(getattr(protocol, name))[0]:
        out.append(f"{impl.__name__}.{name}{inspect.signature(method)} differs")
    is_async = inspect.iscoroutinefunction(method)
    if protocol is api.AsyncMemoryAPI and name not in ("iter_export", "watch") and not is_async:
        out.append(f"{impl.__name__}.{name} must be async")
    if protocol is api.MemoryAPI and is_async:
        out.append(f"{impl.__name__}.{name} must block")
    return out


@pytest.mark.parametrize("impl", ASYNC + BLOCKING, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", api.METHODS)
def test_every_implementation_has_the_contracts_signature(impl: type, name: str) -> None:
    protocol = api.AsyncMemoryAPI if impl in ASYNC else api.MemoryAPI
    assert problems(impl, protocol, name) == []


@pytest.mark.parametrize("impl", ASYNC, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", api.METHODS)
def test_every_async_implementation_returns_what_the_contract_says(impl: type, name: str) -> None:
    assert shape(getattr(impl, name))[1] == shape(getattr(api.AsyncMemoryAPI, name))[1]


def test_the_blocking_twins_run_the_protocols_methods() -> None:
    """inspect.signature follows ``__wrapped__``, so the twins' signatures are the protocol's
    by construction: check instead what each twin method wraps, and that the derived list is
    exactly :data:`api.BLOCKING_DERIVED`."""
    from memtrace_core.sync import BlockingMethods

    derived = {
        name
        for name, value in vars(BlockingMethods).items()
        if getattr(value, "__wrapped__", None) is not None
    }
    assert derived == set(api.BLOCKING_DERIVED)
    for name in api.BLOCKING_DERIVED:
        for twin in BLOCKING:
            assert getattr(twin, name).__wrapped__ is getattr(api.AsyncMemoryAPI, name), name
    assert set(api.METHODS) - set(api.BLOCKING_DERIVED) == {"iter_export", "watch", "close"}


def test_a_missing_or_different_method_is_caught() -> None:
    class Partial(AsyncMemtrace):
        list_agents = None  # type: ignore[assignment]

        async def get_agent(self, agent_ref: str) -> Any:  # renamed parameter
            return None

        def purge_org(self) -> Any:  # type: ignore[override]  # not async
            return 0

    assert problems(Partial, api.AsyncMemoryAPI, "list_agents") == ["Partial lacks list_agents"]
    assert len(problems(Partial, api.AsyncMemoryAPI, "get_agent")) == 1
    assert problems(Partial, api.AsyncMemoryAPI, "purge_org") == ["Partial.purge_org must be async"]
    assert problems(Memtrace, api.AsyncMemoryAPI, "remember") == ["Memtrace.remember must be async"]


def test_the_protocols_are_satisfied_at_run_time(store_url: str) -> None:
    from memtrace_core import connect

    mt = connect(store_url)
    try:
        assert isinstance(mt, api.MemoryAPI)
        assert isinstance(mt.aio, api.AsyncMemoryAPI)  # type: ignore[attr-defined]
    finally:
        mt.close()
    client = MemtraceClient("http://127.0.0.1:9")
    try:
        assert isinstance(client, api.MemoryAPI)
        assert isinstance(client.aio, api.AsyncMemoryAPI)
    finally:
        client.close()
