"""The two transports of the same method set, on every store of ``store_urls.STORE_URLS``:
the engine in-process (``aconnect(url)``) and the HTTP client against a live server over the
same kind of store. Every conformance test runs against each pair, with the same assertions.

``store_url`` is a fresh, empty store of each kind (its URL), for tests that open stores
themselves; ``new_store_url`` makes more of the same kind within one test; ``engine`` is the
engine alone over ``store_url``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, aconnect
from memtrace_core.client import AsyncMemtraceClient
from memtrace_server.testing import bootstrap_admin_key, config_for, serve_in_thread
from store_urls import STORE_URLS, fresh_url, scheme


@pytest.fixture(params=STORE_URLS, ids=scheme)
def store_template(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_store_url(store_template: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``new_store_url(name)``: the URL of another fresh store of the test's kind."""
    with contextlib.ExitStack() as stack:
        yield lambda name: stack.enter_context(fresh_url(store_template, tmp_path, name))


@pytest.fixture
def store_url(new_store_url: Callable[[str], str]) -> str:
    return new_store_url("conformance")


@pytest.fixture
async def engine(store_url: str) -> AsyncIterator[AsyncMemtrace]:
    """The engine over a fresh store of the test's kind."""
    mt = await aconnect(store_url)
    assert isinstance(mt, AsyncMemtrace)
    try:
        yield mt
    finally:
        await mt.close()


@pytest.fixture(params=["engine", "http"])
async def mt(request: pytest.FixtureRequest, store_url: str) -> AsyncIterator[Any]:
    transport = request.param
    if transport == "engine":
        engine = await aconnect(store_url)
        yield engine
        await engine.close()
        return
    key = await bootstrap_admin_key(store_url)
    with serve_in_thread(config_for(store_url)) as live:
        client = await aconnect(live.url, api_key=key)
        assert isinstance(client, AsyncMemtraceClient)
        yield client
        await client.close()
