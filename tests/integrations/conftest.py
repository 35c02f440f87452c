"""Fixtures every framework integration's tests share: each test that takes ``handle`` runs
twice, on the embedded engine over a SQLite file (``connect("sqlite:///…")``) and on the HTTP
client against a real memtrace server over a socket (``connect("http://…", api_key=…)``).
``handle_url`` gives the (url, options) pair (e.g. for a subprocess); ``async_handle`` is the
same pair opened with ``aconnect`` (async-only handles)."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from memtrace_core import aconnect, connect
from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_server.testing import LiveServer, bootstrap_admin_key, config_for, serve_in_thread

TRANSPORTS = ["sqlite", "http"]
REPO = Path(__file__).resolve().parents[2]
LOCOMO_DEV = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'memtrace.db'}"


# Note: on CPython 3.11.7 the server's start (sanic-routing's ast.parse) failed now and then
# with "SystemError: AST constructor recursion depth mismatch" — the ast module keeps its
# recursion counter in interpreter-global state. It went away (in repeated runs) once a full
# garbage collection runs before the server starts, so presumably a collection during the parse
# ran finalizers of an earlier test's objects; the collection is harmless either way.
@pytest.fixture
def live_server(db_url: str) -> Iterator[tuple[LiveServer, str]]:
    """A memtrace server over ``db_url`` on 127.0.0.1 and an admin key for it."""
    key = asyncio.run(bootstrap_admin_key(db_url))
    gc.collect()  # see the note above
    with serve_in_thread(config_for(db_url)) as live:
        yield live, key


@pytest.fixture(params=TRANSPORTS)
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


@pytest.fixture(scope="session")
def locomo() -> ModuleType:
    """``benchmarks/locomo_recall.py``: the LoCoMo loader and scorer the recall benchmark uses."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    return importlib.import_module("locomo_recall")


@pytest.fixture(scope="session")
def locomo_conversation(locomo: ModuleType) -> dict[str, Any]:
    """The smallest conversation of the LoCoMo dev file (a smoke test's worth of questions)."""
    assert LOCOMO_DEV.is_file(), (
        f"LoCoMo data not found at {LOCOMO_DEV}: this test needs locomo-dev.json in "
        "shared/data/locomo/ beside the repository checkout"
    )
    conversations = locomo.load_conversations(LOCOMO_DEV)
    conv: dict[str, Any] = min(conversations, key=lambda c: len(locomo.locomo_memories(c)))
    return conv
