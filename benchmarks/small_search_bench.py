"""Ranked keyword search on a small (10k-memory) SQLite store: p50/p95 of
``search_memories(query=...)`` and, as a floor, the raw FTS5 bm25 SQL on the same file.

    .venv/bin/python benchmarks/small_search_bench.py [--n 10000] [--samples 300] [--profile]
        [--db PATH] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data
import memtrace_core
from core_bench import _build  # the core benchmark's store builder (add_memories, batches)
from memtrace_core.ranking import RankingConfig
from memtrace_core.stores.sqlite import fts_any
from memtrace_core.text import query_terms


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


def floor_sql() -> str:
    """The store's stage-1 query as raw SQL: MATCH, ``bm25()`` with the store's column weights
    (RankingConfig's, as its stage 1 passes them), the best 200."""
    cfg = RankingConfig()
    weights = ", ".join(
        str(float(w))
        for w in (cfg.weight_content, cfg.weight_agent, cfg.weight_event_type, cfg.weight_tags)
    )
    return (
        f"SELECT m.*, bm25(memories_fts, {weights}) AS score FROM memories_fts "
        "JOIN memories m ON m.rowid = memories_fts.rowid WHERE memories_fts MATCH ? "
        "ORDER BY score LIMIT 200"
    )


def time_floor(path: Path, queries: list[str]) -> list[int]:
    conn = sqlite3.connect(path)
    sql = floor_sql()
    out = []
    clock = time.perf_counter_ns
    for q in queries:
        match = fts_any(query_terms(q))
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
    ap.add_argument("--json", action="store_true", help="print JSON instead of the lines")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="small-search-") as tmp:
        path = args.db or Path(tmp) / "small.db"
        if not path.exists():
            asyncio.run(_build(path, args.n, args.seed, 1000))
        queries = _data.make_queries(args.samples, args.seed)
        floor = time_floor(path, queries)
        ns = asyncio.run(time_search(path, queries, args.profile))
    p50, p95 = _data.percentile(ns, 50), _data.percentile(ns, 95)
    f50, f95 = _data.percentile(floor, 50), _data.percentile(floor, 95)
    if args.json:
        out = {"memories": args.n, "queries": len(ns), "p50_ms": p50, "p95_ms": p95}
        print(json.dumps({**out, "floor_p50_ms": f50, "floor_p95_ms": f95}))
        return 0
    print(f"store: {path} ({args.n:,} memories), {len(ns)} queries")
    print(f"search_memories(query=...) p50 / p95   {p50:.3f} ms / {p95:.3f} ms")
    print(f"raw FTS5 bm25 SQL (limit 200) p50 / p95 {f50:.3f} ms / {f95:.3f} ms")
    print(f"ratio p50 search / floor               {p50 / f50:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
