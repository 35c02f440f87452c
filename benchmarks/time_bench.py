#!/usr/bin/env python3
"""Retention sweep benchmark: sweep throughput while a write load runs, and the write latency
during the sweep against the same load without one, on a copy of the core benchmark's store.

Usage::

    .venv/bin/python benchmarks/time_bench.py            # 1M memories (core_bench's cache)
    .venv/bin/python benchmarks/time_bench.py --quick    # 50k memories, smoke run

What is measured (one process, one event loop: what a server worker does):

1. **Baseline**: ``--rate`` writes per second (``add_memory``, open loop: each write is
   scheduled at its slot whether or not the previous one finished, so a stall shows as
   latency) for ``--seconds``; p50 / p99 of the write latency.
2. **Expiry sweep**: ``--expired`` memories picked at random are given an ``expires_at`` in
   the past (one SQL UPDATE before the run), then :meth:`Sweeper.sweep_once` deletes them in
   batches of ``--batch`` while the same write load runs; sweep throughput (memories deleted per
   second, from every index) and the write p50 / p99 *during* the sweep.
3. **Retention sweep**: an org policy whose ``max_age`` covers the oldest ``--expired``
   memories, swept the same way (the selection runs on a reader, the deletion by id on the
   writer).

The store is built by ``benchmarks/core_bench.py`` (run it first, or this script builds it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data
import core_bench
from memtrace_core import AsyncMemtrace
from memtrace_core.retention import Sweeper
from memtrace_core.stores.sqlite import SQLiteStore
from memtrace_core.timeutil import now_us


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _write_load(
    mt: AsyncMemtrace, rate: float, stop: asyncio.Event, out: list[tuple[float, float]]
) -> None:
    """Open-loop writes at ``rate``/s until ``stop``: (start time, latency ms) per write."""
    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    n = 0
    start = time.perf_counter()

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        await mt.add_memory(agent_id="bench-writer", content=f"load write {i} {t0}")
        out.append((t0, (time.perf_counter() - t0) * 1000))

    while not stop.is_set():
        task = asyncio.create_task(one(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
    if tasks:
        await asyncio.gather(*tasks)


async def _baseline(mt: AsyncMemtrace, rate: float, seconds: float) -> dict[str, float]:
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    load = asyncio.create_task(_write_load(mt, rate, stop, samples))
    await asyncio.sleep(seconds)
    stop.set()
    await load
    lat = [ms for _, ms in samples]
    return {"writes": len(lat), "p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99)}


async def _swept(mt: AsyncMemtrace, rate: float, batch: int, pause: float) -> dict[str, float]:
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    load = asyncio.create_task(_write_load(mt, rate, stop, samples))
    await asyncio.sleep(0.5)  # the load runs before the sweep starts
    sweeper = Sweeper(mt, batch=batch, pause=pause)
    t0 = time.perf_counter()
    report = await sweeper.sweep_once()
    t1 = time.perf_counter()
    stop.set()
    await load
    during = [ms for at, ms in samples if t0 <= at <= t1]
    deleted = report.expired + report.aged
    return {
        "deleted": deleted,
        "seconds": t1 - t0,
        "per_second": deleted / (t1 - t0) if t1 > t0 else float("nan"),
        "writes_during": len(during),
        "p50_ms": _pct(during, 0.5),
        "p99_ms": _pct(during, 0.99),
    }


def _expire_random(path: Path, count: int, seed: int) -> None:
    import random

    rng = random.Random(seed)
    with sqlite3.connect(path) as conn:
        top = int(conn.execute("SELECT MAX(rowid) FROM memories").fetchone()[0])
        rowids = rng.sample(range(1, top + 1), min(count, top))
        past = now_us() - 1_000_000
        conn.executemany(
            "UPDATE memories SET expires_at = ? WHERE rowid = ?", [(past, r) for r in rowids]
        )
        conn.commit()


def _age_covering(path: Path, count: int) -> str:
    """A ``max_age`` (in seconds) that the oldest ``count`` memories are past."""
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT time FROM memories ORDER BY time LIMIT 1 OFFSET ?", (count,)
        ).fetchone()
    return f"{max(1, (now_us() - row[0]) // 1_000_000)}s"


async def run(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    url = f"sqlite:///{path}"
    # open once through memtrace so that the copy is migrated before the UPDATE below
    store = SQLiteStore.from_url(url)
    await AsyncMemtrace(store).open()
    await store.close()
    _expire_random(path, args.expired, args.seed)
    results: dict[str, Any] = {}
    mt = await AsyncMemtrace(SQLiteStore.from_url(url)).open()
    try:
        await _baseline(mt, args.rate, 1.0)  # warm-up
        results["baseline"] = await _baseline(mt, args.rate, args.seconds)
        results["expiry_sweep"] = await _swept(mt, args.rate, args.batch, args.pause)
        await mt.set_retention_policy(max_age=_age_covering(path, args.expired))
        results["retention_sweep"] = await _swept(mt, args.rate, args.batch, args.pause)
        results["baseline_after"] = await _baseline(mt, args.rate, args.seconds)
    finally:
        await mt.close()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--memories", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="50k memories, 5k expired")
    ap.add_argument("--expired", type=int, default=100_000, help="memories to expire / age out")
    ap.add_argument("--rate", type=float, default=200.0, help="writes per second of the load")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each baseline")
    ap.add_argument("--batch", type=int, default=50, help="sweep batch ([retention] sweep_batch)")
    ap.add_argument("--pause", type=float, default=0.01, help="pause between sweep batches")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.memories = 50_000
        args.expired = min(args.expired, 5_000)
    meta = core_bench.ensure_store(args.memories, args.seed, 1000, False)
    db, _ = core_bench.cache_paths(args.memories, args.seed)
    with tempfile.TemporaryDirectory(dir=core_bench.CACHE_DIR, prefix="time-") as tmp:
        work = Path(tmp) / "store.db"
        shutil.copyfile(db, work)
        results = asyncio.run(run(work, args))
    report = {
        "machine": _data.machine_info(),
        "command": "benchmarks/time_bench.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "store": meta["n"],
        "expired": args.expired,
        "rate": args.rate,
        "batch": args.batch,
        **results,
        "load_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    base, exp, ret = report["baseline"], report["expiry_sweep"], report["retention_sweep"]
    print(f"retention sweep benchmark — {report['command']}")
    m = report["machine"]
    print(f"machine: {m['cpu']} ({m['nproc']} cores), Python {m['python']}, SQLite {m['sqlite']}")
    print(
        f"store: {report['store']:,} memories; {args.expired:,} expired, then {args.expired:,} "
        f"aged out; write load {args.rate:.0f}/s; sweep batch {args.batch}"
    )
    print(f"{'':34}{'deleted/s':>12}{'write p50':>12}{'write p99':>12}")
    print(f"{'no sweep (baseline)':34}{'':>12}{base['p50_ms']:>10.2f}ms{base['p99_ms']:>10.2f}ms")
    for name, r in (("expiry sweep", exp), ("retention sweep", ret)):
        label = f"{name} ({r['deleted']:,} in {r['seconds']:.1f} s)"
        print(f"{label:34}{r['per_second']:>12,.0f}{r['p50_ms']:>10.2f}ms{r['p99_ms']:>10.2f}ms")
    after = report["baseline_after"]
    print(f"{'no sweep (after)':34}{'':>12}{after['p50_ms']:>10.2f}ms{after['p99_ms']:>10.2f}ms")
    print(
        f"write p99 during the expiry sweep / without: {exp['p99_ms'] / base['p99_ms']:.2f}x; "
        f"during the retention sweep: {ret['p99_ms'] / base['p99_ms']:.2f}x"
    )
    print(f"load average at end: {report['load_at_end']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
