"""Fixtures for the server tests: a real memtrace server on 127.0.0.1 (free port) over a
SQLite file in ``tmp_path``, with an admin key created through the auth module."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from memtrace_server import config as config_module
from memtrace_server.testing import LiveServer, bootstrap_admin_key, config_for, serve_in_thread


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory for CLI tests: no config file anywhere, no MEMTRACE_*
    variables, fast bcrypt."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in list(os.environ):
        if name.startswith("MEMTRACE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEMTRACE_AUTH_BCRYPT_COST", "4")
    monkeypatch.setattr(config_module, "SEARCH_PATHS", ("./memtrace.toml",))
    return work


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
