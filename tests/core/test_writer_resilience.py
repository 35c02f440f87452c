"""The SQLite writer thread survives a group whose transaction handling itself fails, and
session updates are atomic read-modify-writes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, StoreError
from memtrace_core.stores.sqlite import SQLiteStore, _Writer


async def test_writer_survives_a_group_whose_rollback_fails(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "m.db"))
    await store.open()
    await store.close()  # schema in place; drive a writer of our own below
    writer = _Writer(store._writer_connect, max_group=16)
    loop = asyncio.get_running_loop()

    def sabotage(conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")  # ends the group's transaction behind the writer's back
        raise RuntimeError("job failed")

    def fine(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT 1").fetchone()[0])

    futures: list[asyncio.Future[Any]] = []
    for fn in (sabotage, fine):  # queued before the thread starts: one group of two
        fut: asyncio.Future[Any] = loop.create_future()
        writer._queue.put((fn, fut, loop))
        futures.append(fut)
    writer.start()
    results = await asyncio.gather(*futures, return_exceptions=True)
    # the replay's ROLLBACK fails ("no transaction is active"): both callers get an answer
    assert all(isinstance(r, StoreError) for r in results)
    # and the thread is still alive and serving
    assert await writer.submit(fine) == 1
    writer.stop()
    await asyncio.to_thread(writer.join)


async def test_concurrent_metadata_patches_are_not_lost(engine: AsyncMemtrace) -> None:
    session = await engine.create_session(agent_id="bot")
    await asyncio.gather(
        *(engine.update_session(session.id, metadata={f"k{i}": i}) for i in range(30))
    )
    merged = (await engine.get_session(session.id)).metadata or {}
    assert merged == {f"k{i}": i for i in range(30)}


async def test_update_of_missing_session_is_not_found(engine: AsyncMemtrace) -> None:
    from memtrace_core import NotFoundError

    with pytest.raises(NotFoundError):
        await engine.update_session("sess_missing", status="closed")


async def test_writer_takes_the_write_lock_soon_after_another_connection_releases_it(
    tmp_path: Path,
) -> None:
    # Another process's write transaction (here: another connection) holds the lock for 55 ms.
    # SQLite's own busy handler retries after 1, 2, 5, 10, 15, 20, 25 ms sleeps (cumulative 53,
    # then 78 ms), so it would take the lock ~23 ms after the release; the writer polls in
    # sub-ms steps.
    import threading
    import time

    store = SQLiteStore(str(tmp_path / "m.db"))
    await store.open()
    try:
        other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        released: list[float] = []

        def release() -> None:
            time.sleep(0.055)
            released.append(time.monotonic())
            other.execute("COMMIT")

        t = threading.Thread(target=release)
        t.start()

        def job(conn: sqlite3.Connection) -> tuple[float, int]:
            return time.monotonic(), int(conn.execute("PRAGMA busy_timeout").fetchone()[0])

        acquired, busy_timeout = await store._write(job)
        t.join()
        other.close()
        assert acquired - released[0] < 0.015
        assert busy_timeout == store.busy_timeout_ms  # restored once the lock is held
    finally:
        await store.close()


async def test_writer_gives_up_after_busy_timeout(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "m.db"), busy_timeout_ms=50)
    await store.open()
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = asyncio.get_running_loop().time()
        with pytest.raises(StoreError, match="database unavailable"):
            await store._write(lambda conn: conn.execute("SELECT 1").fetchone())
        assert 0.04 <= asyncio.get_running_loop().time() - started < 1.0
        other.execute("COMMIT")
        assert await store._write(lambda conn: int(conn.execute("SELECT 1").fetchone()[0])) == 1
    finally:
        other.close()
        await store.close()
