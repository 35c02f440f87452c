#!/usr/bin/env python3
"""What the full-text indexes cost on write, per FTS5 option (issue 17): the ``executemany``
floor of ``core_bench.py`` (same rows, schema, PRAGMAs and index entries as the SQLite store
writes) with the keyword index or the trigram index built with other options, and the raw
bm25 stage-1 query of ``small_search_bench.py`` on each result, so that a cheaper write is
seen next to what it does to search.

    .venv/bin/python benchmarks/fts_options_bench.py [--rows 100000] [--batch 1000] [--json]

Variants (each on its own new file; the store's own schema, then only the named index rebuilt):

* ``current`` — what the store creates today: ``memories_fts`` (porter unicode61, the default
  ``detail=full``, ``columnsize=1``) and ``memories_trigram`` (``detail=none``);
* ``columnsize=0`` — the keyword index without its per-row column sizes (bm25 then computes
  them from the content table at query time);
* ``detail=column`` — without token positions (no phrase queries: a term the tokenizer splits,
  such as ``e-mail``, becomes a phrase and fails);
* ``automerge=8`` / ``crisismerge=64`` — FTS5 merge tuning on the current indexes;
* ``no trigram`` — without the trigram index (``content_contains`` would scan the table).

Nothing here changes a store; a choice needs a migration that rebuilds the indexes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data
import core_bench
import memtrace_core
from memtrace_core.stores.sqlite import fts_any
from memtrace_core.text import query_terms
from memtrace_core.timeutil import now_us
from small_search_bench import floor_sql

FTS_SQL = (
    "CREATE VIRTUAL TABLE memories_fts USING fts5(content, agent_id, event_type, tags, "
    "content='memories', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'"
    "{extra})"
)

#: name -> (keyword index options, statements run after, whether the trigram index is kept)
VARIANTS: dict[str, tuple[str | None, list[str], bool]] = {
    "current": (None, [], True),
    "columnsize=0": (", columnsize=0", [], True),
    "detail=column": (", detail=column", [], True),
    "automerge=8": (
        None,
        ["INSERT INTO memories_fts(memories_fts, rank) VALUES('automerge', 8)"],
        True,
    ),
    "crisismerge=64": (
        None,
        ["INSERT INTO memories_fts(memories_fts, rank) VALUES('crisismerge', 64)"],
        True,
    ),
    "no trigram": (None, [], False),
}


def prepare(path: Path, name: str) -> bool:
    """A store file with the variant's indexes; returns whether it keeps the trigram index."""
    memtrace_core.connect(core_bench.url_for(path)).close()
    extra, after, trigram = VARIANTS[name]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if extra is not None:
            conn.execute("DROP TABLE memories_fts")
            conn.execute(FTS_SQL.format(extra=extra))
        for sql in after:
            conn.execute(sql)
        if not trigram:
            conn.execute("DROP TABLE memories_trigram")
    finally:
        conn.close()
    return trigram


def ingest(path: Path, rows: list[tuple[Any, ...]], batch: int, trigram: bool) -> float:
    conn = core_bench._raw_connect(path)
    fts = [(r[0], r[7], r[3], r[6], r[9]) for r in rows]
    tri = [(r[0], r[7]) for r in rows]
    tags = [[(r[2], t, r[0]) for t in json.loads(r[9])] if r[9] else [] for r in rows]
    try:
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(core_bench.FLOOR_INSERT, rows[i : i + batch])
            conn.executemany(core_bench.FLOOR_FTS, fts[i : i + batch])
            if trigram:
                conn.executemany(core_bench.FLOOR_TRIGRAM, tri[i : i + batch])
            conn.executemany(core_bench.FLOOR_TAGS, [t for ts in tags[i : i + batch] for t in ts])
            conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def search_floor(path: Path, queries: list[str]) -> tuple[float, float, int]:
    """p50 / p95 (ms) of the raw bm25 stage-1 query, and how many queries failed."""
    sql = floor_sql()
    conn = sqlite3.connect(path)
    out: list[int] = []
    failed = 0
    try:
        for q in queries:
            match = fts_any(query_terms(q))
            if not match:
                continue
            t0 = time.perf_counter_ns()
            try:
                conn.execute(sql, [match]).fetchall()
            except sqlite3.OperationalError:
                failed += 1
                continue
            out.append(time.perf_counter_ns() - t0)
    finally:
        conn.close()
    out.sort()
    return _data.percentile(out, 50), _data.percentile(out, 95), failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    items = list(_data.generate(args.rows, args.seed, now_us()))
    rows = core_bench._baseline_rows(items)
    queries = _data.make_queries(args.queries, args.seed)
    results: dict[str, Any] = {"machine": _data.machine_info(), "rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="fts-options-") as tmp:
        for name in VARIANTS:
            path = Path(tmp) / f"{name.replace('=', '-').replace(' ', '-')}.db"
            trigram = prepare(path, name)
            seconds = ingest(path, rows, args.batch, trigram)
            p50, p95, failed = search_floor(path, queries)
            size = sum(p.stat().st_size for p in Path(tmp).glob(path.name + "*"))
            results[name] = {
                "rows_per_s": round(args.rows / seconds),
                "search_p50_ms": round(p50, 3),
                "search_p95_ms": round(p95, 3),
                "failed_queries": failed,
                "file_mb": round(size / 1e6, 1),
            }
            for p in Path(tmp).glob(path.name + "*"):
                p.unlink()
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    base = results["current"]["rows_per_s"]
    print(f"{args.rows:,} rows in transactions of {args.batch}; {len(queries)} stage-1 queries")
    print(
        f"{'variant':<16}{'rows/s':>10}{'vs current':>12}{'bm25 p50':>11}{'p95':>9}{'failed':>8}{'MB':>8}"
    )
    for name in VARIANTS:
        r = results[name]
        print(
            f"{name:<16}{r['rows_per_s']:>10,}{r['rows_per_s'] / base:>12.2f}"
            f"{r['search_p50_ms']:>9.2f}ms{r['search_p95_ms']:>7.2f}ms"
            f"{r['failed_queries']:>8}{r['file_mb']:>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
