#!/usr/bin/env python3
"""The single-write tail on a large store: ``remember()`` one at a time on a copy of the core
benchmark's cached store (``core_bench.py`` builds it: 1M memories by default), in phases, with
the quantiles of each phase and of the whole run.

Usage (from the repository root, in the workspace venv)::

    .venv/bin/python benchmarks/write_tail_bench.py                      # 10 phases of 2,000
    .venv/bin/python benchmarks/write_tail_bench.py --phases 4 --phase-writes 1000
    .venv/bin/python benchmarks/write_tail_bench.py --wal-restart-mb 0   # no RESTART checkpoints
    .venv/bin/python benchmarks/write_tail_bench.py --memories 50000     # a smaller cached store

Phases show *when* slow writes happen. An FTS5 merge in progress puts slow commits in a
row of phases; a checkpoint comes at a steady period. The copy starts at rest: the cached
store's idle merge has finished. The copy is deleted afterwards. Writes use the blocking handle
(``memtrace_core.connect``), as an agent's tool call would; the texts are deterministic.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import core_bench
import memtrace_core
from memtrace_core.stores import sqlite as sqlite_store

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "deploy",
    "crawler",
    "index",
    "queue",
    "budget",
    "latency",
    "report",
    "order",
    "status",
    "invoice",
    "shipment",
    "planner",
    "monitor",
    "retry",
    "timeout",
    "cache",
    "schema",
    "migration",
    "rollout",
]


def quantile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))] * 1000


def line(label: str, xs: list[float]) -> str:
    return (
        f"{label:10} p50 {quantile(xs, 0.5):6.2f}  p99 {quantile(xs, 0.99):6.2f}  "
        f"p99.9 {quantile(xs, 0.999):6.2f}  max {max(xs) * 1000:7.1f}  "
        f"mean {statistics.mean(xs) * 1000:5.2f} ms  >5 ms {sum(x > 0.005 for x in xs):4}  "
        f">20 ms {sum(x > 0.02 for x in xs):4}"
    )


def segments(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [
            conn.execute(f"SELECT COUNT(DISTINCT segid) FROM {t}_idx").fetchone()[0]
            for t in ("memories_fts", "memories_trigram")
        ]
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memories", type=int, default=1_000_000, help="cached store size")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--phases", type=int, default=10)
    ap.add_argument("--phase-writes", type=int, default=2000)
    ap.add_argument(
        "--wal-restart-mb",
        type=float,
        default=sqlite_store.WAL_RESTART_BYTES / 2**20,
        help="WAL size that forces a RESTART checkpoint (0: never)",
    )
    args = ap.parse_args()
    meta = core_bench.ensure_store(args.memories, args.seed, 1000, rebuild=False)
    source, _ = core_bench.cache_paths(args.memories, args.seed)
    restart = int(args.wal_restart_mb * 2**20) or 1 << 60
    sqlite_store.WAL_RESTART_BYTES = restart  # read by the checkpointer thread at each round
    print(
        f"{meta['n']:,}-memory store, {args.phases} phases of {args.phase_writes:,} single "
        f"remember() calls, RESTART past {args.wal_restart_mb:g} MB "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.2f})"
    )
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
        copy = Path(tmp) / "tail.db"
        shutil.copy(source, copy)
        mt = memtrace_core.connect(core_bench.url_for(copy))
        everything: list[float] = []
        wal_max = 0
        try:
            mt.remember("tail-bench", "warm-up write", event_type="observation")
            for phase in range(args.phases):
                xs: list[float] = []
                for i in range(args.phase_writes):
                    n = rng.randint(6, 25)
                    text = " ".join(rng.choice(WORDS) for _ in range(n)) + f" w{phase}-{i}"
                    t0 = time.perf_counter()
                    mt.remember("tail-bench", text, event_type="observation")
                    xs.append(time.perf_counter() - t0)
                    if i % 500 == 0:
                        wal = copy.with_name(copy.name + "-wal")
                        wal_max = max(wal_max, wal.stat().st_size if wal.exists() else 0)
                everything += xs
                print(line(f"phase {phase}", xs), flush=True)
        finally:
            mt.close()
        print(line("all", everything))
        print(
            f"max WAL {wal_max / 1e6:.0f} MB; index segments after (keyword / trigram): "
            f"{segments(copy)}"
        )


if __name__ == "__main__":
    main()
