"""Ranked keyword search on a small (10k-memory) SQLite store: p50/p95 of
``search_memories(query=...)`` and, as a floor, the raw FTS5 bm25 SQL on the same file.

    .venv/bin/python benchmarks/small_search_bench.py [--n 10000] [--samples 300] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data
import memtrace_core
from memtrace_core.text import query_terms
from memtrace_core.timeutil import now_us


async def build(path: Path, n: int, seed: int) -> None:
    agents = _data.agent_names()
    mt = await memtrace_core.aconnect(f"sqlite:///{path}")
    try:
        for name in agents:
            await mt.register_agent(name=name)
        chunk: list[dict] = []
        for item in _data.generate(n, seed, now_us(), agents):
            chunk.append(item)
            if len(chunk) == 1000:
                await mt.add_memories(chunk)
                chunk = []
        if chunk:
            await mt.add_memories(chunk)
    finally:
        await mt.close()


async def time_search(path: Path, queries: list[str], profile: bool) -> list[int]:
    mt = await memtrace_core.aconnect(f"sqlite:///{path}")
    try:
        for q in queries[:20]:
            await mt.search_memories(query=q)
        prof = cProfile.Profile() if profile else None
        out = []
        clock = time.perf_counter_ns
        if prof:
            prof.enable()
        for q in queries:
            t0 = clock()
            await mt.search_memories(query=q)
            out.append(clock() - t0)
        if prof:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return sorted(out)
    finally:
        await mt.close()


def time_floor(path: Path, queries: list[str]) -> list[int]:
    conn = sqlite3.connect(path)
    sql = (
        "SELECT m.*, bm25(memories_fts, 1.0, 0.5, 0.5, 2.0) AS score FROM memories_fts "
        "JOIN memories m ON m.rowid = memories_fts.rowid WHERE memories_fts MATCH ? "
        "ORDER BY score LIMIT 200"
    )
    out = []
    clock = time.perf_counter_ns
    for q in queries:
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in query_terms(q))
        if not match:
            continue
        t0 = clock()
        conn.execute(sql, [match]).fetchall()
        out.append(clock() - t0)
    conn.close()
    return sorted(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", type=Path, help="reuse/build the store at this path")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="small-search-")
    path = args.db or Path(tmp) / "small.db"
    if not path.exists():
        asyncio.run(build(path, args.n, args.seed))
    queries = _data.make_queries(args.samples, args.seed)
    floor = time_floor(path, queries)
    ns = asyncio.run(time_search(path, queries, args.profile))
    p50, p95 = _data.percentile(ns, 50), _data.percentile(ns, 95)
    f50, f95 = _data.percentile(floor, 50), _data.percentile(floor, 95)
    print(f"store: {path} ({args.n:,} memories), {len(ns)} queries")
    print(f"search_memories(query=...) p50 / p95   {p50:.3f} ms / {p95:.3f} ms")
    print(f"raw FTS5 bm25 SQL (limit 200) p50 / p95 {f50:.3f} ms / {f95:.3f} ms")
    print(f"ratio p50 search / floor               {p50 / f50:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
