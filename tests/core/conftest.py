"""Shared fixtures for the memtrace-core tests: real SQLite files in ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fake_clock import Clock

from memtrace_core import AsyncMemtrace, EngineConfig, Memtrace, PluginRegistry, aconnect, connect
from memtrace_core.ranking import RankingConfig


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


@pytest.fixture
async def small_limit(db_url: str, registry: PluginRegistry) -> AsyncIterator[AsyncMemtrace]:
    """An engine over the same file whose exact-BM25 limit is 10 matches (forces the
    recent-first search path early)."""
    config = EngineConfig(ranking=replace(RankingConfig(), exact_match_limit=10))
    mt = await aconnect(db_url, plugins=registry, config=config)
    try:
        yield mt
    finally:
        await mt.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Patch every place memtrace reads the current time from (``now_us`` is imported by
    name into the engine, the retention module and the SQLite store's row decoder)."""
    import memtrace_core.engine
    import memtrace_core.retention
    import memtrace_core.stores.sqlite
    import memtrace_core.timeutil

    c = Clock()
    modules = (
        memtrace_core.engine,
        memtrace_core.retention,
        memtrace_core.timeutil,
        memtrace_core.stores.sqlite,
    )
    for module in modules:
        monkeypatch.setattr(module, "now_us", c)
    return c
