"""FTS5 merge work stays off the commits callers wait for: both keyword indexes merge 8 segments
at a time (migration 9; FTS5's default of 4 put 20-45 ms of merging into ~1 in 64 single-write
commits at 1M memories), and the writer merges the segments that sustained writes leave behind
once no write has come for ``idle_merge_seconds``."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memtrace_core import AsyncMemtrace, PluginRegistry
from memtrace_core.errors import ValidationError
from memtrace_core.stores.sqlite import SQLiteStore, migrate

TABLES = ("memories_fts", "memories_trigram")


def _config(path: Path) -> dict[str, dict[str, int]]:
    conn = sqlite3.connect(path)
    try:
        return {t: dict(conn.execute(f"SELECT k, v FROM {t}_config")) for t in TABLES}
    finally:
        conn.close()


def _segments(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            t: conn.execute(f"SELECT COUNT(DISTINCT segid) FROM {t}_idx").fetchone()[0]
            for t in TABLES
        }
    finally:
        conn.close()


def _integrity(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        for t in TABLES:  # raises SQLITE_CORRUPT_VTAB if an index disagrees with the table
            conn.execute(f"INSERT INTO {t}({t}, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()


async def _open(path: Path, idle: float | None) -> tuple[AsyncMemtrace, SQLiteStore]:
    store = SQLiteStore(str(path), idle_merge_seconds=idle)
    engine = AsyncMemtrace(store, plugins=PluginRegistry(load_entry_points=False))
    await engine.open()
    return engine, store


async def _write_singly(engine: AsyncMemtrace, n: int, word: str) -> None:
    for i in range(n):  # one commit each: one new segment per index
        await engine.add_memory(agent_id="a", content=f"{word} note number{i} about the harbour")


async def _until(done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``done`` (state of the writer thread, which has no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)


async def _idle_done(store: SQLiteStore, timeout: float = 20.0) -> None:
    """Wait until the writer ran an idle step that found nothing left to merge."""
    writer = store._writer
    assert writer is not None
    await _until(lambda: writer.idle_worked > 0 and writer.idle_rests > 0, timeout)


async def test_new_and_upgraded_stores_merge_eight_segments_at_a_time(tmp_path: Path) -> None:
    old = tmp_path / "v8.db"
    conn = sqlite3.connect(old, isolation_level=None)
    migrate(conn, target=8)
    conn.close()
    assert all("automerge" not in c for c in _config(old).values())  # FTS5's defaults (4, 16)
    for path in (old, tmp_path / "new.db"):
        engine, _ = await _open(path, None)
        await engine.close()
        for table, config in _config(path).items():
            assert (config["automerge"], config["crisismerge"]) == (8, 32), (path, table)


async def test_the_idle_writer_merges_the_segments_single_writes_leave(tmp_path: Path) -> None:
    path = tmp_path / "memtrace.db"
    engine, store = await _open(path, 0.3)
    try:
        await _write_singly(engine, 7, "lighthouse")
        before = _segments(path)
        assert min(before.values()) >= 7, before  # FTS5 did not merge them at commit
        found = await engine.search_memories(query="lighthouse harbour", limit=50)
        contains = await engine.search_memories(content_contains="number3 about", limit=50)
        await _idle_done(store)
        after = _segments(path)
        assert max(after.values()) <= 2, after  # level 0 (7 >= usermerge 4) merged into one
        again = await engine.search_memories(query="lighthouse harbour", limit=50)
        assert [m.id for m in again.results] == [m.id for m in found.results]
        assert len(found.results) == 7
        again_contains = await engine.search_memories(content_contains="number3 about", limit=50)
        assert [m.id for m in again_contains.results] == [m.id for m in contains.results]
        assert len(contains.results) == 1
    finally:
        await engine.close()
    _integrity(path)


async def test_writes_arriving_during_idle_merges_are_all_kept(tmp_path: Path) -> None:
    # A very short idle period interleaves merge steps with the writes.
    path = tmp_path / "memtrace.db"
    engine, store = await _open(path, 0.005)
    try:
        for i in range(60):
            await engine.add_memory(agent_id="a", content=f"beacon entry{i} keeper")
            await asyncio.sleep(0.01 if i % 3 else 0)
        writer = store._writer
        assert writer is not None
        assert writer.idle_worked > 0
        found = await engine.search_memories(query="beacon keeper", limit=100)
        assert len(found.results) == 60
        assert (await engine.search_memories(content_contains="entry59 k", limit=5)).count == 1
    finally:
        await engine.close()
    _integrity(path)


async def test_idle_merging_off_leaves_the_segments(tmp_path: Path) -> None:
    path = tmp_path / "memtrace.db"
    engine, store = await _open(path, None)
    try:
        await _write_singly(engine, 7, "lantern")
        await asyncio.sleep(0.5)
        assert store._writer is not None
        assert store._writer.idle_steps == 0
        assert min(_segments(path).values()) >= 7
    finally:
        await engine.close()


async def test_idle_merging_waits_for_another_process_holding_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memtrace.db"
    engine, store = await _open(path, 0.1)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await _write_singly(engine, 7, "buoy")
        other.execute("BEGIN IMMEDIATE")  # another process writing: the step must not wait
        writer = store._writer
        assert writer is not None
        steps = writer.idle_steps
        await asyncio.sleep(0.6)
        assert writer.idle_steps == steps  # never got the lock
        assert 1 <= writer.idle_busy <= 8  # one try per idle period (0.1 s), no spinning
        assert min(_segments(path).values()) >= 7
        other.execute("ROLLBACK")
        await _idle_done(store)
        assert max(_segments(path).values()) <= 2
    finally:
        other.close()
        await engine.close()


async def test_a_failing_idle_step_never_stops_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "memtrace.db"
    engine, store = await _open(path, 0.05)
    writer = store._writer
    assert writer is not None
    calls = 0

    def broken(conn: sqlite3.Connection) -> bool:
        nonlocal calls
        calls += 1
        raise RuntimeError("merge step bug")

    writer._idle_work = broken
    try:
        for round_ in range(2):  # each commit makes idle work due again
            await asyncio.wait_for(  # a dead writer would leave the write waiting forever
                engine.add_memory(agent_id="a", content=f"still writing {round_}"), 10
            )
            await _until(lambda round_=round_: calls > round_)
        assert writer.is_alive()
        await asyncio.sleep(0.2)
        assert calls == 2  # gave up until the next commit each time, no retry loop
        await asyncio.wait_for(
            engine.add_memory(agent_id="a", content="written after the failures"), 10
        )
        found = await engine.search_memories(content_contains="written after the", limit=5)
        assert found.count == 1
    finally:
        await engine.close()


async def _in_slow_idle_merge(
    path: Path, steps: int, seconds: float
) -> tuple[AsyncMemtrace, list[float]]:
    """An engine whose writer is three steps into idle work of ``steps`` steps of ``seconds``
    each (a fake that reports work until the last); returns it and the steps' start times."""
    engine, store = await _open(path, 0.05)
    writer = store._writer
    assert writer is not None
    started: list[float] = []

    def work(conn: sqlite3.Connection) -> bool:
        started.append(time.monotonic())
        time.sleep(seconds)
        return len(started) < steps

    writer._idle_work = work
    await engine.add_memory(agent_id="a", content="makes idle work due")
    await _until(lambda: len(started) >= 3)
    return engine, started


async def test_a_write_is_served_between_idle_steps(tmp_path: Path) -> None:
    engine, started = await _in_slow_idle_merge(tmp_path / "memtrace.db", 40, 0.03)  # 1.2 s
    try:
        t0 = time.monotonic()
        await asyncio.wait_for(engine.add_memory(agent_id="a", content="between steps"), 10)
        assert time.monotonic() - t0 < 0.3  # at most one 30 ms step, not the remaining ~1 s
        assert len(started) < 40
    finally:
        await engine.close()


async def test_another_connection_gets_the_lock_between_idle_steps(tmp_path: Path) -> None:
    path = tmp_path / "memtrace.db"
    # 1 s of idle steps; SQLite's busy handler retries after 1, 2, 5, 10 … 25, 50 ms, so
    # about 12 tries in 0.4 s, each with a 1-in-2 chance of landing in a 5 ms gap
    engine, started = await _in_slow_idle_merge(path, 200, 0.005)
    other = sqlite3.connect(
        path, isolation_level=None, timeout=10, check_same_thread=False
    )  # SQLite's own busy handler
    try:
        t0 = time.monotonic()
        await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")
        waited = time.monotonic() - t0
        other.execute("ROLLBACK")
        assert waited < 0.4, waited  # a gap between steps, not the end of the merge
        assert len(started) < 200
    finally:
        other.close()
        await engine.close()


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "1"])
def test_idle_merge_seconds_is_checked(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValidationError, match="idle_merge_seconds"):
        SQLiteStore(str(tmp_path / "m.db"), idle_merge_seconds=bad)  # type: ignore[arg-type]
