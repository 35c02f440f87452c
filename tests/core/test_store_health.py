"""The store's health report, from which the server fills /ready and /health."""

from __future__ import annotations

from pathlib import Path

from memtrace_core import PluginRegistry, aconnect
from memtrace_core.engine import AsyncMemtrace


async def test_an_open_store_is_healthy_and_has_no_arc(
    db_url: str, registry: PluginRegistry
) -> None:
    engine = await aconnect(db_url, plugins=registry)
    assert isinstance(engine, AsyncMemtrace)
    try:
        report = await engine.health()
        assert report.ok
        assert report.detail is None
        assert report.latency_ms >= 0
        assert report.arc == {}  # the original's per-org Arc map: empty without Arc
    finally:
        await engine.close()


async def test_an_unreachable_store_reports_why_instead_of_raising(tmp_path: Path) -> None:
    engine = await aconnect(
        f"sqlite:///{tmp_path / 'gone.db'}", plugins=PluginRegistry(load_entry_points=False)
    )
    assert isinstance(engine, AsyncMemtrace)
    await engine.close()  # its reader threads are gone: the query cannot run
    report = await engine.health()
    assert not report.ok
    assert report.detail
