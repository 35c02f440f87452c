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
