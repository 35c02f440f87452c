"""Concurrent writers: processes, threads and tasks racing on the same duplicates, and group
commit coalescing concurrent writes into fewer transactions."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from memtrace_core import (
    AsyncMemtrace,
    DuplicateMemoryError,
    Memtrace,
    PluginRegistry,
    connect,
)
from memtrace_core.stores.sqlite import SQLiteStore

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from memtrace_core import DuplicateMemoryError, PluginRegistry, connect

    url, go_file, worker, keys = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    mt = connect(url, plugins=PluginRegistry(load_entry_points=False))
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(go_file):  # start together
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.002)
    won, lost = [], []
    for k in range(keys):
        if k % 3 == 0:  # some keys through batches, some through single writes
            res = mt.add_memories([
                {"agent_id": "racer", "content": f"shared fact {k}", "tags": [f"w{worker}"]},
                {"agent_id": "racer", "content": f"shared fact {k}"},
            ])
            won += [m.id for m in res.memories]
            lost += [d.existing_id for d in res.duplicate_of]
        else:
            try:
                won.append(mt.remember("racer", f"shared fact {k}", tags=[f"w{worker}"]).id)
            except DuplicateMemoryError as exc:
                lost.append(exc.existing_id)
    mt.close()
    print(json.dumps({"won": won, "lost": lost}), flush=True)
    """
)


def test_processes_racing_on_duplicates_land_exactly_one_per_key(
    tmp_path: Path, db_path: Path, db_url: str, registry: PluginRegistry
) -> None:
    workers, keys = 4, 24
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    go = tmp_path / "go"
    with connect(db_url, plugins=registry):  # create the schema once, up front
        pass
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), db_url, str(go), str(w), str(keys)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        go.touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    won = [i for r in results for i in r["won"]]
    lost = [i for r in results for i in r["lost"]]
    assert len(won) == keys
    assert len(set(won)) == keys
    # Every loser (across processes, batches included) was told the id of the winner.
    assert set(lost) <= set(won)
    batch_keys = (keys + 2) // 3  # keys written as [item, duplicate] batches
    assert len(lost) == workers * (keys + batch_keys) - keys
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT content, COUNT(*) FROM memories GROUP BY dedup_key ORDER BY content"
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) == keys
    assert all(count == 1 for _, count in rows)
    assert sorted(c for c, _ in rows) == sorted(f"shared fact {k}" for k in range(keys))


def test_threads_racing_on_one_duplicate(mt: Memtrace) -> None:
    barrier = threading.Barrier(8)
    outcomes: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        for k in range(10):
            try:
                m = mt.remember("thread_agent", f"same thing {k}")
                result = ("won", m.id)
            except DuplicateMemoryError as exc:
                result = ("lost", exc.existing_id)
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outcomes) == 80
    winners = {i for kind, i in outcomes if kind == "won"}
    assert len(winners) == 10
    assert {i for kind, i in outcomes if kind == "lost"} <= winners
    assert mt.list_memories(limit=1000).count == 10


async def test_tasks_racing_on_one_duplicate(engine: AsyncMemtrace) -> None:
    async def attempt() -> str:
        try:
            return (await engine.remember("task_agent", "exactly once")).id
        except DuplicateMemoryError as exc:
            return f"dup:{exc.existing_id}"

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    winners = [r for r in results if not r.startswith("dup:")]
    assert len(winners) == 1
    assert all(r == "dup:" + winners[0] for r in results if r.startswith("dup:"))
    assert (await engine.list_memories()).count == 1


async def test_group_commit_coalesces_concurrent_writes(engine: AsyncMemtrace) -> None:
    store = engine.store
    assert isinstance(store, SQLiteStore)
    commits0, requests0 = store.writer_stats
    n = 200
    written = await asyncio.gather(
        *(engine.remember("gc_agent", f"distinct memory {i}") for i in range(n))
    )
    commits, requests = store.writer_stats
    assert requests - requests0 == n
    assert commits - commits0 < requests - requests0  # several requests per transaction
    assert len({m.id for m in written}) == n
    # Every acknowledged write is visible (read-your-writes).
    assert (await engine.list_memories(limit=1000)).count == n


def test_blocking_twin_is_safe_from_many_threads(mt: Memtrace) -> None:
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(25):
                mt.remember(f"agent_{w}", f"thread {w} memory {i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert mt.list_memories(limit=1000).count == 200
    for w in range(8):
        assert mt.get_agent_stats(f"agent_{w}").memory_count == 25
