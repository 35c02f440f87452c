"""WAL checkpoints happen mostly off the write path: the writer checkpoints only past a large
threshold, a background thread does the rest, and closing the store leaves an empty WAL."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from memtrace_core import AsyncMemtrace, PluginRegistry
from memtrace_core.stores import sqlite as sqlite_store
from memtrace_core.stores.sqlite import (
    WAL_RESTART_BYTES,
    WRITER_AUTOCHECKPOINT_PAGES,
    SQLiteStore,
)


async def _filled(path: Path, checkpoint_seconds: float) -> tuple[AsyncMemtrace, int]:
    """An open store at ``path`` with 300 memories written; returns it and the database file's
    size before the writes."""
    store = SQLiteStore(str(path), checkpoint_seconds=checkpoint_seconds)
    engine = AsyncMemtrace(store, plugins=PluginRegistry(load_entry_points=False))
    await engine.open()
    before = path.stat().st_size
    await engine.add_memories(
        [{"agent_id": "a", "content": f"event {i} " + "x" * 500} for i in range(300)]
    )
    assert Path(f"{path}-wal").stat().st_size > 0
    return engine, before


async def test_writer_leaves_pages_in_the_wal_and_close_truncates_it(tmp_path: Path) -> None:
    # The background interval is an hour: no checkpoint but the writer's own can run until
    # close. Only a checkpoint copies committed pages from the WAL into the database file.
    path = tmp_path / "memtrace.db"
    engine, before = await _filled(path, checkpoint_seconds=3600)
    assert path.stat().st_size == before  # the writer did not checkpoint (below its threshold)
    await engine.close()
    wal = Path(f"{path}-wal")
    assert not wal.exists() or os.path.getsize(wal) == 0
    assert path.stat().st_size > before
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 300
    conn.close()


async def test_background_thread_checkpoints_while_the_store_is_open(tmp_path: Path) -> None:
    # Same writes, a short interval: the file grows while the store is still open, so the
    # background thread did it (the test above shows the writer does not). pytest-timeout
    # bounds the wait if it never happens.
    path = tmp_path / "memtrace.db"
    engine, before = await _filled(path, checkpoint_seconds=0.05)
    try:
        while True:
            if path.stat().st_size != before:
                break
            await asyncio.sleep(0.01)
        assert path.stat().st_size > before
    finally:
        await engine.close()


async def test_writer_connection_checkpoints_only_past_a_large_threshold(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "m.db"))
    conn = store._writer_connect()
    try:
        threshold = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        # only a safety net: past the size at which the checkpointer forces a RESTART
        assert threshold == WRITER_AUTOCHECKPOINT_PAGES
        assert threshold * page_size > WAL_RESTART_BYTES
    finally:
        conn.close()


async def test_a_long_reader_does_not_hold_writes_behind_a_restart_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RESTART checkpoint holds new writers off while it waits for readers; with a reader on an
    old snapshot it must give up quickly (and checkpoint passively) instead of stalling every
    write until the reader ends. The reader here holds its snapshot until the writes are done or
    30 s pass: the writes must all finish while it still holds it."""
    monkeypatch.setattr(sqlite_store, "WAL_RESTART_BYTES", 8 * 4096)  # a RESTART every round
    path = tmp_path / "memtrace.db"
    store = SQLiteStore(str(path), checkpoint_seconds=0.02)
    engine = AsyncMemtrace(store, plugins=PluginRegistry(load_entry_points=False))
    await engine.open()
    released = threading.Event()
    holding = threading.Event()
    writes_done = threading.Event()

    def reader() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT COUNT(*) FROM memories").fetchone()  # the snapshot starts here
            holding.set()
            writes_done.wait(30)
            conn.execute("COMMIT")
        finally:
            released.set()
            conn.close()

    try:
        await engine.add_memories(
            [{"agent_id": "a", "content": f"before {i} " + "x" * 500} for i in range(50)]
        )
        thread = threading.Thread(target=reader)
        thread.start()
        await asyncio.to_thread(holding.wait, 10)
        for i in range(40):  # each commit grows the WAL past the RESTART size again
            await engine.add_memory(agent_id="a", content=f"during {i} " + "y" * 500)
        assert not released.is_set()  # the writes did not wait for the reader
        writes_done.set()
        await asyncio.to_thread(thread.join, 30)
    finally:
        writes_done.set()
        await engine.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 90
    conn.close()
