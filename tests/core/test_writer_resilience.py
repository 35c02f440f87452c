"""The SQLite writer thread survives a group whose transaction handling itself fails, and
session updates are atomic read-modify-writes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, StoreError
from memtrace_core.stores import sqlite as sqlite_module
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


class _SpyTime:
    """Stands in for the ``time`` module of the SQLite store: the writer's clock and sleeps are
    recorded (and, with ``fake=True``, simulated: each sleep advances the clock by its length
    without waiting)."""

    def __init__(self, *, fake: bool) -> None:
        self.fake = fake
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now if self.fake else time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.fake:
            self.now += seconds
        else:
            time.sleep(seconds)


def _counting_writer(store: SQLiteStore) -> tuple[_Writer, list[str]]:
    """A writer on ``store``'s connection settings that records every BEGIN it attempts."""
    begins: list[str] = []

    def connect() -> sqlite3.Connection:
        conn = store._writer_connect()
        conn.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
        return conn

    return _Writer(connect, max_group=16, busy_timeout_ms=store.busy_timeout_ms), begins


async def test_writer_polls_for_the_write_lock_and_takes_it_at_the_first_try_after_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process's write transaction (here: another connection) holds the lock. SQLite's
    # own busy handler would sleep 1, 2, 5, 10, 15, 20, 25 ms between its (invisible) retries,
    # taking the lock up to ~25 ms after the release; the writer instead retries BEGIN itself
    # in sub-ms steps. The lock is released only once the writer has retried several times, and
    # the writer must then get it at its next attempt.
    spy = _SpyTime(fake=False)
    monkeypatch.setattr(sqlite_module, "time", spy)
    store = SQLiteStore(str(tmp_path / "m.db"))
    await store.open()
    await store.close()  # schema in place; drive a writer of our own below
    writer, begins = _counting_writer(store)
    writer.start()
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        at_release: list[int] = []
        give_up = threading.Event()  # set if the writer answered without waiting for us

        def release() -> None:
            while len(begins) < 5 and not give_up.is_set():  # the writer retries on its own
                time.sleep(0.0005)
            other.execute("COMMIT")
            at_release.append(len(begins))

        t = threading.Thread(target=release)
        t.start()

        def job(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA busy_timeout").fetchone()[0])

        try:
            busy_timeout = await writer.submit(job)
        finally:
            give_up.set()
            await asyncio.to_thread(t.join)
        assert at_release[0] >= 5
        # the attempt that succeeded was at most the one after the release (one may have been
        # under way while COMMIT ran)
        assert len(begins) - at_release[0] <= 1
        assert spy.sleeps
        assert max(spy.sleeps) <= 0.001  # sub-ms polling steps
        assert busy_timeout == store.busy_timeout_ms  # restored once the lock is held
    finally:
        other.close()
        writer.stop()
        await asyncio.to_thread(writer.join)


async def test_writer_gives_up_after_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer's clock is simulated: it retries until exactly busy_timeout has passed on it,
    # then reports the store unavailable, and serves again once the lock is free.
    spy = _SpyTime(fake=True)
    monkeypatch.setattr(sqlite_module, "time", spy)
    store = SQLiteStore(str(tmp_path / "m.db"), busy_timeout_ms=50)
    await store.open()
    await store.close()
    writer, begins = _counting_writer(store)
    writer.start()
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="database unavailable"):
            await writer.submit(lambda conn: conn.execute("SELECT 1").fetchone())
        waited = sum(spy.sleeps)
        assert 0.05 - 0.001 <= waited < 0.05 + 0.001  # the whole timeout, and no longer
        assert len(begins) == len(spy.sleeps) + 1  # one attempt per sleep, and a last one
        other.execute("COMMIT")
        assert await writer.submit(lambda conn: int(conn.execute("SELECT 1").fetchone()[0])) == 1
    finally:
        other.close()
        writer.stop()
        await asyncio.to_thread(writer.join)
