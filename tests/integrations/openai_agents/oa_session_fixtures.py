"""Fixtures of the MemtraceSession tests (modelled on tests/integrations/langchain/conftest.py):
every test that takes ``handle`` / ``handle_url`` runs twice, on the embedded engine over a
SQLite file and on the HTTP client against a real memtrace server on 127.0.0.1. Imported by the
test modules (``from oa_session_fixtures import ...``) so they do not depend on a conftest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import aconnect, connect
from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_server.testing import LiveServer, bootstrap_admin_key, config_for, serve_in_thread

__all__ = [
    "async_handle",
    "db_url",
    "handle",
    "handle_url",
    "live_server",
    "no_tracing",
    "transport",
]


@pytest.fixture(autouse=True)
def no_tracing() -> None:
    """The SDK's tracing off (it would try to export traces)."""
    from agents import set_tracing_disabled

    set_tracing_disabled(True)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'memtrace.db'}"


@pytest.fixture
def live_server(db_url: str) -> Iterator[tuple[LiveServer, str]]:
    """A memtrace server over ``db_url`` on 127.0.0.1 and an admin key for it."""
    key = asyncio.run(bootstrap_admin_key(db_url))
    with serve_in_thread(config_for(db_url)) as live:
        yield live, key


@pytest.fixture(params=["sqlite", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def handle_url(transport: str, request: pytest.FixtureRequest, db_url: str) -> tuple[str, Any]:
    """(url, connect options) of the transport under test."""
    if transport == "sqlite":
        return db_url, {}
    live, key = request.getfixturevalue("live_server")
    return live.url, {"api_key": key}


@pytest.fixture
def handle(handle_url: tuple[str, Any]) -> Iterator[MemoryAPI]:
    """A blocking memtrace handle (``connect``) on the transport under test."""
    url, options = handle_url
    mt = connect(url, **options)
    yield mt
    mt.close()


@pytest.fixture
async def async_handle(handle_url: tuple[str, Any]) -> AsyncIterator[AsyncMemoryAPI]:
    """An async-only memtrace handle (``aconnect``) on the transport under test."""
    url, options = handle_url
    mt = await aconnect(url, **options)
    yield mt
    await mt.close()
