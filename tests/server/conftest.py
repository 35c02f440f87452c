"""Fixtures for the server tests: a real memtrace server on 127.0.0.1 (free port) over a
SQLite file in ``tmp_path``, with an admin key created through the auth module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from memtrace_server.testing import LiveServer, bootstrap_admin_key, config_for, serve_in_thread


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'memtrace.db'}"


@pytest.fixture
async def admin_key(db_url: str) -> str:
    return await bootstrap_admin_key(db_url)


@pytest.fixture
def live(db_url: str, admin_key: str) -> Iterator[LiveServer]:
    with serve_in_thread(config_for(db_url)) as server:
        yield server


@pytest.fixture
async def http(live: LiveServer, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live.url, headers={"x-api-key": admin_key}, timeout=30
    ) as client:
        yield client
