"""WAL checkpoints happen mostly off the write path: the writer checkpoints only past a large
threshold, a background thread does the rest, and closing the store leaves an empty WAL."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from memtrace_core import AsyncMemtrace, PluginRegistry
from memtrace_core.stores.sqlite import WRITER_AUTOCHECKPOINT_PAGES, SQLiteStore


async def test_background_checkpoint_and_truncate_on_close(tmp_path: Path) -> None:
    path = tmp_path / "memtrace.db"
    store = SQLiteStore(str(path), checkpoint_seconds=0.2)
    engine = AsyncMemtrace(store, plugins=PluginRegistry(load_entry_points=False))
    await engine.open()
    await engine.add_memories(
        [{"agent_id": "a", "content": f"event {i} " + "x" * 500} for i in range(300)]
    )
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0
    # only a checkpoint copies the committed pages from the WAL into the database file (the
    # writer never does): the file grows once the background thread has run
    before = path.stat().st_size
    for _ in range(100):
        if path.stat().st_size > before:
            break
        await asyncio.sleep(0.05)
    assert path.stat().st_size > before
    await engine.close()
    assert not wal.exists() or os.path.getsize(wal) == 0
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 300
    conn.close()


async def test_writer_connection_checkpoints_only_past_a_large_threshold(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "m.db"))
    conn = store._writer_connect()
    try:
        threshold = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert threshold == WRITER_AUTOCHECKPOINT_PAGES > 1000
    finally:
        conn.close()
