"""Shared fixtures for the memtrace-core tests: real SQLite files in ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from memtrace_core import AsyncMemtrace, Memtrace, PluginRegistry, aconnect, connect


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memtrace.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


@pytest.fixture
def registry() -> PluginRegistry:
    """Built-ins only: tests never depend on whatever plugins happen to be installed."""
    return PluginRegistry(load_entry_points=False)


@pytest.fixture
async def engine(db_url: str, registry: PluginRegistry) -> AsyncIterator[AsyncMemtrace]:
    mt = await aconnect(db_url, plugins=registry)
    try:
        yield mt
    finally:
        await mt.close()


@pytest.fixture
def mt(db_url: str, registry: PluginRegistry) -> Iterator[Memtrace]:
    handle = connect(db_url, plugins=registry)
    try:
        yield handle
    finally:
        handle.close()
