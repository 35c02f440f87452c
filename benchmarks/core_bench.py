#!/usr/bin/env python3
"""memtrace-core benchmark: ingest against a raw-SQLite floor, and operation latencies on a
store of 1,000,000 memories. Prints every figure of the issue in one run.

Usage::

    .venv/bin/python benchmarks/core_bench.py                 # 1M memories (store cached)
    .venv/bin/python benchmarks/core_bench.py --quick         # 50k memories, smoke run
    .venv/bin/python benchmarks/core_bench.py --json          # machine-readable output
    .venv/bin/python benchmarks/core_bench.py --rebuild       # rebuild the cached store

What is measured (synthetic data from ``benchmarks/_data.py``, deterministic per ``--seed``):

1. **Ingest.** The first ``--ingest-rows`` memories (default 200,000) are written into an empty
   store with ``AsyncMemtrace.add_memories`` in batches of ``--batch`` (default 1000) — the
   whole engine path: validation, dedup key, dedup check, insert, FTS/trigram/tag triggers,
   group commit. The floor is the *same rows* (ids, dedup keys and JSON precomputed outside
   the timing) inserted with ``sqlite3.executemany`` into the *same schema* (an empty store
   created by opening it through memtrace, so tables, indexes and triggers are identical),
   with the same PRAGMAs, in ``BEGIN IMMEDIATE … COMMIT`` transactions of the same batch size.
   The ratio memtrace / floor is the figure (target ≥ 0.5).
2. **Latencies** on a copy of the cached N-memory store (built once through ``add_memories``,
   kept in ``benchmarks/.cache/``): ``remember`` (blocking ``Memtrace`` twin and
   ``AsyncMemtrace``), ``recall`` (one agent, 24 h, limit 100), keyword search, session
   context of a 500-memory session, list by tag and ``content_contains``. Each op is timed
   individually with ``time.perf_counter_ns`` after warm-up iterations.

The 24 h windows are anchored at the data's "now" (the build time stored with the cache), so
a cache built days ago still puts ~1/30 of the data in the window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data
import memtrace_core
from memtrace_core.engine import AsyncMemtrace
from memtrace_core.ids import memory_id
from memtrace_core.stores.sqlite import WRITER_AUTOCHECKPOINT_PAGES, SQLiteStore
from memtrace_core.timeutil import now_us, to_us
from memtrace_core.validation import dedup_key

CACHE_DIR = Path(__file__).resolve().parent / ".cache"

# The floor's statements: the rows and every index entry the store maintains (it writes the
# FTS5, trigram and tag entries itself, batched, in the row's transaction).
FLOOR_INSERT = (
    "INSERT INTO memories (rowid, id, org_id, agent_id, session_id, memory_type, event_type, "
    "content, metadata, tags, dedup_key, importance, parent_id, time, recorded_at) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
FLOOR_FTS = (
    "INSERT INTO memories_fts(rowid, content, agent_id, event_type, tags) VALUES (?,?,?,?,?)"
)
FLOOR_TRIGRAM = "INSERT INTO memories_trigram(rowid, content) VALUES (?,?)"
FLOOR_TAGS = "INSERT INTO memory_tags(org_id, tag, memory_rowid) VALUES (?,?,?)"
ORG = "org_default"
WRITER_AGENT = "bench-writer"


@dataclass
class Check:
    name: str
    measured: str
    target: str
    ok: bool | None  # None: informational


def url_for(path: Path) -> str:
    return "sqlite:///" + str(path.resolve())


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the cached N-memory store -------------------------------------------------------------------


def cache_paths(n: int, seed: int) -> tuple[Path, Path]:
    stem = f"core-{n}-seed{seed}"
    return CACHE_DIR / f"{stem}.db", CACHE_DIR / f"{stem}.json"


async def _build(path: Path, n: int, seed: int, batch: int) -> dict[str, Any]:
    anchor = now_us()
    agents = _data.agent_names()
    mt = await memtrace_core.aconnect(url_for(path))
    try:
        for name in agents:
            await mt.register_agent(
                name=name, description=f"synthetic {name.rsplit('-', 1)[0]} agent"
            )
        started = time.perf_counter()
        written = dups = 0
        chunk: list[dict[str, Any]] = []
        for item in _data.generate(n, seed, anchor, agents):
            chunk.append(item)
            if len(chunk) == batch:
                res = await mt.add_memories(chunk)
                written += res.count
                dups += res.duplicates
                chunk = []
                if written % 100_000 < batch:
                    _log(f"  built {written:,} / {n:,} ({time.perf_counter() - started:.0f} s)")
        if chunk:
            res = await mt.add_memories(chunk)
            written += res.count
            dups += res.duplicates
        seconds = time.perf_counter() - started
    finally:
        await mt.close()
    plans = _data.plan_sessions(n, seed, anchor, agents)
    return {
        "n": n,
        "seed": seed,
        "anchor_us": anchor,
        "written": written,
        "duplicates": dups,
        "build_seconds": round(seconds, 1),
        "context_session": plans[0].session_id,
        "context_session_size": plans[0].size,
        "agents": agents,
    }


async def _rest(path: Path, timeout: float = 900.0) -> int:
    """Open the store at ``path`` and let it stay idle until its writer has merged the keyword
    indexes' segments (the state a store reaches after a second without writes, SQLiteStore
    ``idle_merge_seconds``; a bulk build leaves merges in progress that would otherwise land on
    the measured writes). Returns the merge steps run."""
    store = SQLiteStore(str(path))
    await store.open()
    try:
        writer = store._writer
        assert writer is not None
        deadline = time.monotonic() + timeout
        # The counters belong to the writer thread, which has no event to wait on: poll them.
        while not writer.idle_rests and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        return writer.idle_steps
    finally:
        await store.close()


def ensure_store(n: int, seed: int, batch: int, rebuild: bool) -> dict[str, Any]:
    db, meta_path = cache_paths(n, seed)
    if not rebuild and db.exists() and meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        steps = asyncio.run(_rest(db))
        if steps > 1:
            _log(f"cached store: {steps} idle merge steps")
        return meta
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for p in (db, meta_path, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)
    _log(f"building the {n:,}-memory store at {db} (cached for later runs) ...")
    tmp = db.with_suffix(".building.db")
    tmp.unlink(missing_ok=True)
    meta = asyncio.run(_build(tmp, n, seed, batch))
    _log(f"idle merge steps after the build: {asyncio.run(_rest(tmp))}")
    tmp.rename(db)
    meta_path.write_text(json.dumps(meta, indent=1))
    _log(
        f"built in {meta['build_seconds']} s ({meta['written'] / meta['build_seconds']:,.0f} memories/s)"
    )
    return meta


# -- ingest: memtrace vs the executemany floor ---------------------------------------------------


def _baseline_rows(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    recorded = now_us()
    return [
        (
            rowid,
            memory_id(),
            ORG,
            it["agent_id"],
            it.get("session_id"),
            it.get("memory_type", "episodic"),
            it.get("event_type", "general"),
            it["content"],
            _dumps(it.get("metadata")),
            _dumps(it.get("tags")),
            dedup_key(it["agent_id"], it.get("event_type", "general"), it["content"]),
            it.get("importance"),
            None,
            to_us(it["time"]),
            recorded,
        )
        for rowid, it in enumerate(items, start=1)
    ]


def _raw_connect(path: Path) -> sqlite3.Connection:
    """A connection with exactly the PRAGMAs the store's writer uses (SQLiteStore._connect and
    _writer_connect: the writer autocheckpoints only past WRITER_AUTOCHECKPOINT_PAGES)."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=10)
    for pragma in (
        "busy_timeout = 10000",
        "synchronous = NORMAL",
        "cache_size = -32768",
        "temp_store = MEMORY",
        "mmap_size = 268435456",
        f"wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}",
    ):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def ingest_floor(
    path: Path, rows: list[tuple[Any, ...]], batch: int
) -> tuple[float, dict[str, float]]:
    """Seconds to insert ``rows`` with executemany into a schema created by memtrace.

    If the schema has an AFTER INSERT trigger on ``memories`` (older stores indexed through
    triggers) only the rows are inserted; otherwise the FTS5, trigram and tag entries are
    inserted too, with executemany, exactly as many as the store writes.

    Returns the total seconds and the seconds spent in each statement (where ingest time goes
    in SQLite itself)."""
    memtrace_core.connect(url_for(path)).close()  # same schema, indexes, triggers; WAL mode
    conn = _raw_connect(path)
    try:
        triggers = conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'memories' "
            "AND sql LIKE '%AFTER INSERT%'"
        ).fetchone()[0]
        fts = [(r[0], r[7], r[3], r[6], r[9]) for r in rows]
        tri = [(r[0], r[7]) for r in rows]
        tags = [[(r[2], t, r[0]) for t in json.loads(r[9])] if r[9] else [] for r in rows]
        parts = dict.fromkeys(("rows+indexes", "fts5", "trigram", "tags", "commit"), 0.0)
        clock = time.perf_counter
        started = clock()
        for i in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            t0 = clock()
            conn.executemany(FLOOR_INSERT, rows[i : i + batch])
            t1 = clock()
            parts["rows+indexes"] += t1 - t0
            if not triggers:
                conn.executemany(FLOOR_FTS, fts[i : i + batch])
                t2 = clock()
                conn.executemany(FLOOR_TRIGRAM, tri[i : i + batch])
                t3 = clock()
                conn.executemany(FLOOR_TAGS, [t for ts in tags[i : i + batch] for t in ts])
                t4 = clock()
                parts["fts5"] += t2 - t1
                parts["trigram"] += t3 - t2
                parts["tags"] += t4 - t3
            t5 = clock()
            conn.execute("COMMIT")
            parts["commit"] += clock() - t5
        seconds = clock() - started
        count = conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
        assert count == len(rows), (count, len(rows))
    finally:
        conn.close()
    return seconds, {k: round(v, 3) for k, v in parts.items()}


async def ingest_memtrace(path: Path, items: list[dict[str, Any]], batch: int) -> tuple[float, int]:
    mt = await memtrace_core.aconnect(url_for(path))
    try:
        for name in _data.agent_names():
            await mt.register_agent(name=name)
        written = 0
        started = time.perf_counter()
        for i in range(0, len(items), batch):
            written += (await mt.add_memories(items[i : i + batch])).count
        seconds = time.perf_counter() - started
    finally:
        await mt.close()
    return seconds, written


def run_ingest(rows_n: int, seed: int, batch: int, workdir: Path) -> dict[str, Any]:
    items = list(_data.generate(rows_n, seed, now_us()))
    rows = _baseline_rows(items)
    floor_s, floor_parts = ingest_floor(workdir / "floor.db", rows, batch)
    mem_s, written = asyncio.run(ingest_memtrace(workdir / "memtrace.db", items, batch))
    for name in ("floor.db", "memtrace.db"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{workdir / name}{suffix}").unlink(missing_ok=True)
    return {
        "rows": rows_n,
        "batch": batch,
        "memtrace_written": written,
        "memtrace_seconds": round(mem_s, 3),
        "floor_seconds": round(floor_s, 3),
        "floor_seconds_by_statement": floor_parts,
        "memtrace_per_s": round(written / mem_s),
        "floor_per_s": round(rows_n / floor_s),
        "ratio": round((written / mem_s) / (rows_n / floor_s), 3),
    }


# -- latencies -----------------------------------------------------------------------------------


def _summary(samples: list[int], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    s = sorted(samples)
    out: dict[str, Any] = {
        "n": len(s),
        "p50_ms": round(_data.percentile(s, 50), 4),
        "p95_ms": round(_data.percentile(s, 95), 4),
        "p99_ms": round(_data.percentile(s, 99), 4),
        "mean_ms": round(sum(s) / len(s) / 1e6, 4),
    }
    if extra:
        out.update(extra)
    return out


def time_blocking(fn: Callable[[int], Any], n: int, warmup: int) -> list[int]:
    for i in range(warmup):
        fn(i)
    out = []
    clock = time.perf_counter_ns
    for i in range(warmup, warmup + n):
        t0 = clock()
        fn(i)
        out.append(clock() - t0)
    return out


async def time_async(
    fn: Callable[[int], Awaitable[Any]],
    n: int,
    warmup: int,
    budget_s: float = 60.0,
    min_n: int = 60,
) -> tuple[list[int], list[Any]]:
    """Time ``n`` calls after ``warmup`` ones; stops early (after at least ``min_n`` samples)
    once ``budget_s`` seconds have been spent, so a slow operation cannot stall the run."""
    for i in range(warmup):
        await fn(i)
    out = []
    results = []
    clock = time.perf_counter_ns
    deadline = clock() + int(budget_s * 1e9)
    for i in range(warmup, warmup + n):
        t0 = clock()
        res = await fn(i)
        t1 = clock()
        out.append(t1 - t0)
        results.append(res)
        if t1 > deadline and len(out) >= min_n:
            break
    return out, results


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat()


def run_latencies(
    path: Path | str, meta: dict[str, Any], seed: int, samples: int
) -> dict[str, Any]:
    """Latencies on the store at ``path`` (a SQLite file, or any store URL as a string)."""
    url = path if isinstance(path, str) else url_for(path)
    rng = random.Random(f"latency:{seed}")
    agents: list[str] = meta["agents"]
    since_24h = _iso(meta["anchor_us"] - _data.DAY_US)
    texts = [
        f"Benchmark note {i}: {_data.words(rng, rng.randint(6, 25))}"
        for i in range(4 * samples + 800)
    ]
    results: dict[str, Any] = {}

    # remember(), blocking twin (portal thread + engine + group-commit writer)
    mt = memtrace_core.connect(url)
    try:
        lat = time_blocking(
            lambda i: mt.remember(WRITER_AGENT, texts[i], event_type="observation"), samples, 200
        )
        results["remember_blocking"] = _summary(lat)
        lat = time_blocking(
            lambda i: mt.recall(agents[i % len(agents)], since=since_24h, limit=100), samples, 100
        )
        results["recall_blocking"] = _summary(lat)
    finally:
        mt.close()

    async def async_phase() -> None:
        amt: AsyncMemtrace = await memtrace_core.aconnect(url)
        try:
            off = samples + 200
            lat, _ = await time_async(
                lambda i: amt.remember(WRITER_AGENT, texts[off + i], event_type="observation"),
                samples,
                200,
            )
            results["remember_async"] = _summary(lat)

            lat, res = await time_async(
                lambda i: amt.recall(agents[i % len(agents)], since=since_24h, limit=100),
                samples,
                200,
            )
            results["recall"] = _summary(lat, {"avg_results": sum(r.count for r in res) / len(res)})

            queries = _data.make_queries(samples + 50, seed)
            n_search = max(200, samples // 2)
            lat, res = await time_async(
                lambda i: amt.search_memories(query=queries[i]), n_search, 5
            )
            results["search"] = _summary(lat, {"avg_results": sum(r.count for r in res) / len(res)})

            lat, res = await time_async(
                lambda i: amt.search_memories(query=queries[i], agent_id=agents[i % len(agents)]),
                n_search,
                5,
            )
            results["search_agent"] = _summary(
                lat, {"avg_results": sum(r.count for r in res) / len(res)}
            )

            sid = meta["context_session"]
            lat, res = await time_async(
                lambda i: amt.get_session_context(sid, since=since_24h), samples, 100
            )
            results["session_context"] = _summary(lat, {"memories": res[-1].memory_count})
            lat, res = await time_async(
                lambda i: amt.get_session_context(sid, since=since_24h, limit=500),
                max(200, samples // 4),
                20,
            )
            results["session_context_500"] = _summary(lat, {"memories": res[-1].memory_count})

            tags = _data.TAGS
            lat, res = await time_async(
                lambda i: amt.list_memories(tags=[tags[i % len(tags)]], limit=100), samples, 100
            )
            results["list_tags"] = _summary(
                lat, {"avg_results": sum(r.count for r in res) / len(res)}
            )

            needles = _data.content_needles(samples + 50, seed)
            n_contains = max(200, samples // 4)
            lat, res = await time_async(
                lambda i: amt.search_memories(content_contains=needles[i], limit=50), n_contains, 20
            )
            results["content_contains"] = _summary(
                lat, {"avg_results": sum(r.count for r in res) / len(res)}
            )
        finally:
            await amt.close()

    asyncio.run(async_phase())
    return results


# -- report --------------------------------------------------------------------------------------


def checks(ingest: dict[str, Any], lat: dict[str, Any]) -> list[Check]:
    def ms(x: float) -> str:
        return f"{x:.3f} ms" if x < 10 else f"{x:.1f} ms"

    out = []
    if ingest.get("rows"):  # absent with --skip-ingest
        out.append(
            Check(
                f"ingest add_memories (batch {ingest['batch']}) / executemany floor",
                f"{ingest['ratio']:.2f}  ({ingest['memtrace_per_s']:,}/s vs {ingest['floor_per_s']:,}/s)",
                "≥ 0.50",
                ingest["ratio"] >= 0.5,
            )
        )
    for key, label in (
        ("remember_blocking", "remember() Memtrace (blocking)"),
        ("remember_async", "remember() AsyncMemtrace"),
    ):
        r = lat[key]
        out.append(
            Check(
                f"{label} p50 / p99",
                f"{ms(r['p50_ms'])} / {ms(r['p99_ms'])}",
                "p50 < 1 ms",
                r["p50_ms"] < 1,
            )
        )
    r = lat["recall"]
    out.append(
        Check(
            "recall (1 agent, 24 h, limit 100) p50 / p95",
            f"{ms(r['p50_ms'])} / {ms(r['p95_ms'])}",
            "p50 < 2 ms",
            r["p50_ms"] < 2,
        )
    )
    r = lat["recall_blocking"]
    out.append(
        Check(
            "  same via blocking Memtrace p50 / p95",
            f"{ms(r['p50_ms'])} / {ms(r['p95_ms'])}",
            "(info)",
            None,
        )
    )
    r = lat["search"]
    out.append(
        Check(
            "keyword search (2–4 words, whole org) p50 / p95",
            f"{ms(r['p50_ms'])} / {ms(r['p95_ms'])}",
            "p95 < 20 ms",
            r["p95_ms"] < 20,
        )
    )
    r = lat["search_agent"]
    out.append(
        Check(
            "  keyword search, one agent p50 / p95",
            f"{ms(r['p50_ms'])} / {ms(r['p95_ms'])}",
            "(info)",
            None,
        )
    )
    r = lat["session_context"]
    out.append(
        Check(
            f"session context (500-memory session, {r['memories']} rendered) p50",
            f"{ms(r['p50_ms'])} (p95 {ms(r['p95_ms'])})",
            "p50 < 5 ms",
            r["p50_ms"] < 5,
        )
    )
    r = lat["session_context_500"]
    out.append(
        Check(
            f"  session context, limit 500 ({r['memories']} rendered) p50",
            f"{ms(r['p50_ms'])} (p95 {ms(r['p95_ms'])})",
            "(info)",
            None,
        )
    )
    r = lat["list_tags"]
    out.append(
        Check(
            "list_memories(tags=[one tag], limit 100) p50",
            f"{ms(r['p50_ms'])} (p95 {ms(r['p95_ms'])})",
            "(info)",
            None,
        )
    )
    r = lat["content_contains"]
    out.append(
        Check(
            "search_memories(content_contains=…, limit 50) p50",
            f"{ms(r['p50_ms'])} (p95 {ms(r['p95_ms'])})",
            "(info)",
            None,
        )
    )
    return out


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"memtrace-core benchmark — {m['date']}")
    print(
        f"machine: {m['cpu']} ({m['nproc']} cores), Python {m['python']}, SQLite {m['sqlite']}, load at start {m['loadavg']}"
    )
    s = report["store"]
    print(
        f"store: {s['n']:,} memories (seed {s['seed']}, {s['size_mb']} MB, cached build {s['build_seconds']} s"
        f" = {s['n'] / s['build_seconds']:,.0f}/s through add_memories)"
    )
    ing = report["ingest"] or {"rows": 0, "batch": 0, "memtrace_seconds": "-", "floor_seconds": "-"}
    print(
        f"ingest: {ing['rows']:,} rows, batch {ing['batch']}: memtrace {ing['memtrace_seconds']} s, "
        f"executemany floor {ing['floor_seconds']} s"
    )
    if ing.get("floor_seconds_by_statement"):
        parts = ", ".join(f"{k} {v} s" for k, v in ing["floor_seconds_by_statement"].items())
        print(f"  floor time by statement: {parts}")
    print()
    rows = [
        (c.name, c.measured, c.target, "" if c.ok is None else ("PASS" if c.ok else "MISS"))
        for c in report["checks_obj"]
    ]
    widths = [
        max(len(r[i]) for r in [("figure", "measured", "target", ""), *rows]) for i in range(4)
    ]
    header = ("figure", "measured", "target", "")
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print()
    print(
        "avg results: "
        + ", ".join(
            f"{k}={v['avg_results']:.1f}"
            for k, v in report["latency"].items()
            if "avg_results" in v
        )
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    ap.add_argument(
        "--memories", type=int, default=1_000_000, help="store size (default 1,000,000)"
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 50k memories, fewer samples")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--batch", type=int, default=1000, help="add_memories / executemany batch size")
    ap.add_argument(
        "--ingest-rows", type=int, default=200_000, help="rows for the ingest comparison"
    )
    ap.add_argument("--samples", type=int, default=2000, help="timed calls per sub-ms operation")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached store")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--skip-ingest", action="store_true", help="only the latency figures")
    args = ap.parse_args(argv)
    if args.quick:
        args.memories = 50_000
        args.ingest_rows = min(args.ingest_rows, 50_000)
        args.samples = min(args.samples, 1000)
    args.ingest_rows = min(args.ingest_rows, args.memories)

    machine = _data.machine_info()
    meta = ensure_store(args.memories, args.seed, args.batch, args.rebuild)
    db, _ = cache_paths(args.memories, args.seed)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="run-") as tmp:
        workdir = Path(tmp)
        ingest: dict[str, Any] = {}
        if not args.skip_ingest:
            _log(f"ingest: {args.ingest_rows:,} rows, memtrace vs executemany ...")
            ingest = run_ingest(args.ingest_rows, args.seed, args.batch, workdir)
            _log(f"  {ingest}")
        _log("latencies: copying the cached store ...")
        work_db = workdir / "store.db"
        shutil.copyfile(db, work_db)
        lat = run_latencies(work_db, meta, args.seed, args.samples)
    report: dict[str, Any] = {
        "machine": machine,
        "command": " ".join(
            ["benchmarks/core_bench.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "store": {
            "n": meta["n"],
            "seed": meta["seed"],
            "build_seconds": meta["build_seconds"],
            "size_mb": round(os.path.getsize(db) / 2**20),
            "anchor": _iso(meta["anchor_us"]),
        },
        "ingest": ingest,
        "latency": lat,
        "load_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    report["checks_obj"] = checks(ingest or {}, lat)
    report["checks"] = [
        {"name": c.name, "measured": c.measured, "target": c.target, "pass": c.ok}
        for c in report["checks_obj"]
    ]
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "checks_obj"}, indent=1))
    else:
        print_table(report)
        print(f"load average at end: {report['load_at_end']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
