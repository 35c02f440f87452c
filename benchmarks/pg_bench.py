#!/usr/bin/env python3
"""PostgreSQL store benchmark (issue 13): the same figures as core_bench / locomo_recall /
server_bench on PostgreSQL, printed beside SQLite, plus EXPLAIN output of the main query shapes.

Usage::

    .venv/bin/python benchmarks/pg_bench.py                          # all sections, N = 100k
    .venv/bin/python benchmarks/pg_bench.py --sections core explain --memories 1000000
    .venv/bin/python benchmarks/pg_bench.py --sections locomo
    .venv/bin/python benchmarks/pg_bench.py --sections server --duration 10
    .venv/bin/python benchmarks/pg_bench.py --sections core --explain > pg-explain.txt

PostgreSQL is the throw-away server of ``tests/pg_harness.py`` (``initdb`` in a temporary
directory, ``fsync=off``, ``synchronous_commit=on``, ``shared_buffers=128MB``), started by this
script and destroyed at exit. Sections:

* ``core`` — ingest of N memories (``AsyncMemtrace.add_memories``, batches of ``--batch``) into
  an empty store against a floor into the *same schema* (a database migrated by the store):
  the same rows, with ids, dedup keys, JSON and the tsvector
  (:func:`memtrace_core.stores.postgres.text_vector`) precomputed outside the timing, written
  with asyncpg ``copy_records_to_table`` into ``memories`` (the statement trigger that keeps
  ``org_text_stats`` fires as for the store's INSERT; every index is maintained), one
  transaction per batch. A second floor runs the store's own ``INSERT … SELECT FROM unnest``
  statement with the same precomputed arrays (the store's SQL without its Python). Then
  ``core_bench.run_latencies`` on the N-memory store built by that ingest. SQLite: the same
  ``core_bench`` functions (``run_ingest`` of N rows against its executemany floor, latencies
  on the cached N-memory store).
* ``explain`` — every main query shape run once through the engine with ``auto_explain``
  (``log_analyze``, ``log_buffers``, ``log_min_duration = 0``) on the store of the core section:
  the plans are the ones the store's real statements get (prepared by asyncpg), i.e.
  ``EXPLAIN (ANALYZE, BUFFERS)`` output. ``--explain`` adds this section.
* ``locomo`` — LoCoMo dev recall@k of ``locomo_recall.MemtraceArm`` on SQLite and on
  PostgreSQL, and the questions whose top 10 differ.
* ``server`` — ``memtrace serve`` on PostgreSQL: one server vs two servers on one database
  (the load split over both), single POST (``--connections``) and batch POST (100 memories a
  request, ``--batch-connections``), each ``--duration`` seconds, with the CPU seconds per
  acknowledged memory of the memtrace processes and of the PostgreSQL processes (postmaster and
  all its children, /proc utime+stime) from the same run; one SQLite server as a reference;
  then a py-spy profile of one PostgreSQL server under the single-POST load.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import _data  # noqa: E402
import core_bench  # noqa: E402
import memtrace_core  # noqa: E402
from memtrace_core.ids import memory_id  # noqa: E402
from memtrace_core.stores.base import MemoryRecord  # noqa: E402
from memtrace_core.stores.postgres import _INSERT_SQL, text_vector  # noqa: E402
from memtrace_core.timeutil import now_us, to_us  # noqa: E402
from memtrace_core.validation import dedup_key  # noqa: E402

ORG = core_bench.ORG
#: The columns the store's INSERT writes (read from it: the schema evolves with the store).
COLUMNS = [
    c.strip()
    for c in re.search(r"INSERT INTO memories \((.*?)\)", _INSERT_SQL, re.S).group(1).split(",")
]


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _pg() -> Any:
    import pg_harness

    return pg_harness


# -- core: ingest --------------------------------------------------------------------------------


def _chunks(n: int, seed: int, anchor: int, agents: list[str], batch: int) -> Any:
    chunk: list[dict[str, Any]] = []
    for item in _data.generate(n, seed, anchor, agents):
        chunk.append(item)
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _floor_rows(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows the store would write for ``items`` (same values, tsvector included)."""
    recorded = now_us()
    rows = []
    for it in items:
        tags = it.get("tags")
        record = MemoryRecord(
            id=memory_id(),
            org_id=ORG,
            agent_id=it["agent_id"],
            session_id=it.get("session_id"),
            memory_type=it.get("memory_type", "episodic"),
            event_type=it.get("event_type", "general"),
            content=it["content"],
            metadata=it.get("metadata"),
            tags=tags,
            dedup_key=dedup_key(it["agent_id"], it.get("event_type", "general"), it["content"]),
            importance=it.get("importance"),
            parent_id=None,
            time=to_us(it["time"]),
            recorded_at=recorded,
        )
        vector, n_tokens, *extra = text_vector(record)
        rows.append(
            (
                record.org_id,
                record.id,
                record.agent_id,
                record.session_id,
                record.memory_type,
                record.event_type,
                record.content,
                core_bench._dumps(record.metadata),
                tags,
                record.dedup_key,
                record.importance,
                None,
                record.time,
                record.recorded_at,
                None,
                None,
                None,
                None,
                None,
                None,
                vector,
                n_tokens,
                *extra,
            )
        )
    assert len(rows[0]) == len(COLUMNS), (len(rows[0]), COLUMNS)
    return rows


async def pg_floor(
    url: str, n: int, seed: int, anchor: int, agents: list[str], batch: int, how: str
) -> float:
    """Seconds to write the rows with ``how`` = ``copy`` (copy_records_to_table) or ``insert``
    (the store's own unnest INSERT), one transaction per batch; only the writes are timed."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await _ensure_tsvector_codec(conn)
        # the org's BM25 statistics: kept by a statement trigger in older schemas, else by the
        # store's code in the writing transaction (one upsert per insert): the floor does that
        triggered = await conn.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'memories'::regclass "
            "AND NOT tgisinternal"
        )
        seconds = 0.0
        for items in _chunks(n, seed, anchor, agents, batch):
            rows = _floor_rows(items)
            if how == "copy":
                rows = await _binary_vectors(conn, rows)
            if how == "insert":
                cols: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)]
                cols[8] = [None if t is None else json.dumps(t) for t in cols[8]]
            t0 = time.perf_counter()
            async with conn.transaction():
                if how == "copy":
                    await conn.copy_records_to_table("memories", records=rows, columns=COLUMNS)
                else:
                    await conn.execute(_INSERT_SQL, *cols)
                if not triggered:
                    await conn.execute(
                        "INSERT INTO org_text_stats AS s (org_id, shard, docs, tokens) "
                        "VALUES ($1, pg_backend_pid() % 16, $2, $3) ON CONFLICT (org_id, shard) "
                        "DO UPDATE SET docs = s.docs + excluded.docs, tokens = s.tokens + excluded.tokens",
                        ORG,
                        len(rows),
                        sum(r[COLUMNS.index("n_tokens")] for r in rows),
                    )
            seconds += time.perf_counter() - t0
        count = await conn.fetchval("SELECT count(*) FROM memories")
        assert count == n, (count, n)
    finally:
        await conn.close()
    return seconds


async def _ensure_tsvector_codec(conn: Any) -> None:
    """asyncpg has no binary codec for tsvector, which COPY needs: pass the binary form through
    as bytes (obtained from the server by :func:`_binary_vectors`, outside the timing)."""
    await conn.set_type_codec(
        "tsvector", schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary"
    )


async def _binary_vectors(conn: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``rows`` with the tsvector literal replaced by its binary form (what the server parses
    the literal into: identical to the store's ``::tsvector``)."""
    at = COLUMNS.index("tsv")
    vectors = await conn.fetch(
        "SELECT v::tsvector FROM unnest($1::text[]) AS v", [r[at] for r in rows]
    )
    return [(*r[:at], v[0], *r[at + 1 :]) for r, v in zip(rows, vectors, strict=True)]


async def pg_build(url: str, n: int, seed: int, anchor: int, batch: int) -> dict[str, Any]:
    """core_bench._build on PostgreSQL, timing only the add_memories calls."""
    agents = _data.agent_names()
    mt = await memtrace_core.aconnect(url)
    try:
        for name in agents:
            await mt.register_agent(
                name=name, description=f"synthetic {name.rsplit('-', 1)[0]} agent"
            )
        seconds = 0.0
        written = dups = 0
        for chunk in _chunks(n, seed, anchor, agents, batch):
            t0 = time.perf_counter()
            res = await mt.add_memories(chunk)
            seconds += time.perf_counter() - t0
            written += res.count
            dups += res.duplicates
            if written % 100_000 < batch:
                _log(f"  pg built {written:,} / {n:,} ({seconds:.0f} s in add_memories)")
    finally:
        await mt.close()
    plans = _data.plan_sessions(n, seed, anchor, agents)
    return {
        "n": n,
        "seed": seed,
        "anchor_us": anchor,
        "written": written,
        "duplicates": dups,
        "build_seconds": round(seconds, 2),
        "context_session": plans[0].session_id,
        "context_session_size": plans[0].size,
        "agents": agents,
    }


def run_core(args: argparse.Namespace, report: dict[str, Any]) -> str:
    """Both stores' core figures; returns the URL of the PostgreSQL N-memory store."""
    pgh = _pg()
    n, seed, batch = args.memories, args.seed, args.batch
    out: dict[str, Any] = {"n": n, "batch": batch}
    agents = _data.agent_names()
    anchor = now_us()

    # PostgreSQL ingest: floors, then memtrace (which builds the latency store)
    floors: dict[str, float] = {}
    for how in () if args.skip_floors else ("copy", "insert"):
        url = pgh.new_database()
        _log(f"pg floor ({how}): {n:,} rows ...")
        floors[how] = asyncio.run(pg_floor(url, n, seed, anchor, agents, batch, how))
        _log(f"  {floors[how]:.2f} s = {n / floors[how]:,.0f}/s")
        pgh.drop_database(url)
    store_url = pgh.new_database()
    _log(f"pg memtrace add_memories: {n:,} rows ...")
    meta = asyncio.run(pg_build(store_url, n, seed, anchor, batch))
    mem_s = meta["build_seconds"]
    _log(f"  {mem_s:.2f} s = {n / mem_s:,.0f}/s")
    floors = floors or {"copy": mem_s, "insert": mem_s}  # --skip-floors: ratios meaningless
    out["pg_ingest"] = {
        "memtrace_seconds": mem_s,
        "memtrace_per_s": round(meta["written"] / mem_s),
        "floor_copy_seconds": round(floors["copy"], 2),
        "floor_copy_per_s": round(n / floors["copy"]),
        "floor_insert_seconds": round(floors["insert"], 2),
        "floor_insert_per_s": round(n / floors["insert"]),
        "ratio_copy": round(n / mem_s / (n / floors["copy"]), 3),
        "ratio_insert": round(n / mem_s / (n / floors["insert"]), 3),
        "written": meta["written"],
        "duplicates": meta["duplicates"],
    }
    _log(f"  {out['pg_ingest']}")
    _progress(f"core N={n:,}: PG ingest {out['pg_ingest']}")
    if args.skip_latency:
        report["core"] = out
        report["core_meta"] = meta
        return store_url
    _log("pg latencies ...")
    out["pg_latency"] = core_bench.run_latencies(store_url, meta, seed, args.samples)
    _progress(f"core N={n:,}: PG latencies {json.dumps(out['pg_latency'])}")

    # SQLite: core_bench's own ingest comparison and latencies
    if not args.skip_sqlite:
        core_bench.CACHE_DIR.mkdir(parents=True, exist_ok=True)
        smeta = core_bench.ensure_store(n, seed, batch, rebuild=False)
        db, _ = core_bench.cache_paths(n, seed)
        with tempfile.TemporaryDirectory(dir=core_bench.CACHE_DIR, prefix="pgb-") as tmp:
            _log(f"sqlite ingest: {n:,} rows ...")
            out["sqlite_ingest"] = core_bench.run_ingest(n, seed, batch, Path(tmp))
            _progress(f"core N={n:,}: SQLite ingest {out['sqlite_ingest']}")
            work = Path(tmp) / "store.db"
            shutil.copyfile(db, work)
            _log("sqlite latencies ...")
            out["sqlite_latency"] = core_bench.run_latencies(work, smeta, seed, args.samples)
            _progress(f"core N={n:,}: SQLite latencies {json.dumps(out['sqlite_latency'])}")
    report["core"] = out
    report["core_meta"] = meta
    return store_url


def print_core(core: dict[str, Any]) -> None:
    def ms(x: float) -> str:
        return f"{x:.3f} ms" if x < 10 else f"{x:.1f} ms"

    pi = core["pg_ingest"]
    si = core.get("sqlite_ingest")
    pl = core.get("pg_latency", {})
    sl = core.get("sqlite_latency", {})
    rows = [
        (
            "ingest add_memories (memories/s)",
            f"{si['memtrace_per_s']:,}" if si else "-",
            f"{pi['memtrace_per_s']:,}",
        ),
        (
            "  floor (SQLite executemany / PG COPY)",
            f"{si['floor_per_s']:,}" if si else "-",
            f"{pi['floor_copy_per_s']:,}",
        ),
        (
            "  ratio memtrace / floor",
            f"{si['ratio']:.2f}" if si else "-",
            f"{pi['ratio_copy']:.2f}",
        ),
        (
            "  PG floor 2: the store's INSERT, same arrays",
            "",
            f"{pi['floor_insert_per_s']:,} (ratio {pi['ratio_insert']:.2f})",
        ),
    ]

    def lat(key: str, label: str, a: str, b: str) -> None:
        s = sl.get(key)
        p = pl.get(key)
        if not p:
            return
        rows.append(
            (
                label,
                f"{ms(s[a])} / {ms(s[b])}" if s else "-",
                f"{ms(p[a])} / {ms(p[b])}",
            )
        )

    lat("remember_async", "remember() AsyncMemtrace p50 / p99", "p50_ms", "p99_ms")
    lat("remember_blocking", "remember() Memtrace (blocking) p50 / p99", "p50_ms", "p99_ms")
    lat("recall", "recall (1 agent, 24 h, limit 100) p50 / p95", "p50_ms", "p95_ms")
    lat("search", "keyword search (whole org) p50 / p95", "p50_ms", "p95_ms")
    lat("search_agent", "keyword search (one agent) p50 / p95", "p50_ms", "p95_ms")
    lat("session_context", "session context p50 / p95", "p50_ms", "p95_ms")
    lat("session_context_500", "session context limit 500 p50 / p95", "p50_ms", "p95_ms")
    lat("list_tags", "list_memories(tags=[1]) p50 / p95", "p50_ms", "p95_ms")
    lat("content_contains", "content_contains p50 / p95", "p50_ms", "p95_ms")
    _table(f"core, N = {core['n']:,} memories, batch {core['batch']}", rows)
    avg = ", ".join(
        f"{k} sqlite {sl[k]['avg_results']:.1f} / pg {v['avg_results']:.1f}"
        for k, v in pl.items()
        if "avg_results" in v and k in sl
    )
    if avg:
        print(f"avg results: {avg}")


def _table(
    title: str, rows: list[tuple[str, str, str]], head: tuple[str, str] = ("SQLite", "PostgreSQL")
) -> None:
    header = ("figure", *head)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    print()
    print(title)
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


# -- explain -------------------------------------------------------------------------------------


def run_explain(store_url: str, meta: dict[str, Any]) -> str:
    """Each shape twice through the engine (the second run's auto_explain plans kept)."""
    import asyncpg

    pgh = _pg()
    pg = pgh.server()
    log_path = pg.base / "pg.log"
    dbname = store_url.rsplit("/", 1)[1]

    async def setup(on: bool) -> None:
        conn = await asyncpg.connect(pg.url())
        try:
            if on:
                for stmt in (
                    "session_preload_libraries = 'auto_explain'",
                    "auto_explain.log_min_duration = 0",
                    "auto_explain.log_analyze = on",
                    "auto_explain.log_buffers = on",
                    "auto_explain.log_timing = on",
                    "auto_explain.log_nested_statements = on",
                    "auto_explain.log_format = 'text'",
                    "auto_explain.log_level = 'LOG'",
                ):
                    await conn.execute(f"ALTER DATABASE {dbname} SET {stmt}")
            else:
                await conn.execute(f"ALTER DATABASE {dbname} RESET ALL")
            await conn.execute(f"ANALYZE")  # noqa: F541 - the postgres db; harmless
        finally:
            await conn.close()
        conn = await asyncpg.connect(store_url)
        try:
            await conn.execute("ANALYZE memories")
        finally:
            await conn.close()

    asyncio.run(setup(True))
    since = core_bench._iso(meta["anchor_us"] - _data.DAY_US)
    agents = meta["agents"]
    sid = meta["context_session"]
    queries = _data.make_queries(50, 42)
    sections: list[str] = []

    async def body() -> None:
        mt = await memtrace_core.aconnect(store_url)
        try:
            existing = (await mt.list_memories(agent_id=agents[3], limit=1)).memories[0]
            rare = await _rare_word_query(mt)
            shapes: list[tuple[str, Any]] = [
                (
                    "24 h time-window page of one org (list_memories since=24h, limit 100)",
                    lambda: mt.list_memories(since=since, limit=100),
                ),
                (
                    "agent filter (recall: 1 agent, 24 h, limit 100)",
                    lambda: mt.recall(agents[0], since=since, limit=100),
                ),
                (
                    "session filter (list_memories session_id, limit 100)",
                    lambda: mt.list_memories(session_id=sid, limit=100),
                ),
                (
                    f"keyword search, common words (count with cap + recent-first page): {queries[0]!r}",
                    lambda: mt.search_memories(query=queries[0]),
                ),
                (
                    f"keyword search, rare word (count with cap + exact BM25 scan): {rare!r}",
                    lambda: mt.search_memories(query=rare),
                ),
                (
                    f"keyword search, one agent (exact BM25 scan in an agent): {queries[1]!r}",
                    lambda: mt.search_memories(query=queries[1], agent_id=agents[0]),
                ),
                (
                    "dedup check (add_memory of an existing memory's content: duplicate)",
                    lambda: _expect_duplicate(
                        mt.add_memory(
                            agent_id=existing.agent_id,
                            content=existing.content,
                            event_type=existing.event_type,
                        )
                    ),
                ),
                (
                    "content_contains, >= 3 chars ('rows into', limit 50)",
                    lambda: mt.search_memories(content_contains="rows into", limit=50),
                ),
                (
                    f"content_contains, >= 3 chars, rare ({rare!r}, limit 50)",
                    lambda: mt.search_memories(content_contains=rare, limit=50),
                ),
                (
                    "content_contains, < 3 chars ('zq', limit 50)",
                    lambda: mt.search_memories(content_contains="zq", limit=50),
                ),
            ]
            for label, op in shapes:
                await op()  # warm (statement prepared, caches)
                start = log_path.stat().st_size
                t0 = time.perf_counter()
                await op()
                took = (time.perf_counter() - t0) * 1000
                await asyncio.sleep(0.2)
                with log_path.open(errors="replace") as fh:
                    fh.seek(start)
                    text = fh.read()
                sections.append(f"=== {label}  (engine call {took:.1f} ms)\n{_plans(text)}")
        finally:
            await mt.close()

    try:
        asyncio.run(body())
    finally:
        asyncio.run(setup(False))
    return "\n\n".join(sections)


async def _expect_duplicate(call: Any) -> None:
    from memtrace_core.errors import DuplicateMemoryError

    try:
        await call
    except DuplicateMemoryError:
        return
    raise AssertionError("the dedup check let a duplicate through")


async def _rare_word_query(mt: Any) -> str:
    """A word of the vocabulary that matches few memories (exact BM25 path)."""
    vocab = _data.VOCABULARY
    for word in vocab[-400::10]:
        res = await mt.search_memories(query=word, limit=10)
        if 0 < res.count < 10:
            return word
    return vocab[-1]


_PLAN_START = re.compile(r"^\S.*LOG:\s+duration: [\d.]+ ms\s+plan:", re.M)


def _plans(log: str) -> str:
    """The auto_explain entries of a log segment (query text and plan), compacted."""
    out = []
    for block in re.split(r"(?=^\S.*LOG:\s+duration: )", log, flags=re.M):
        if "plan:" not in block or "pg_advisory_unlock_all()" in block:
            continue  # the pool's connection reset
        block = re.sub(r"^\S+ \S+ \S+ \[\d+\] LOG:\s+", "", block.strip())
        out.append(block)
    return "\n\n".join(out) if out else "(no plan logged)\n" + log[-2000:]


# -- locomo --------------------------------------------------------------------------------------


def run_locomo(args: argparse.Namespace, report: dict[str, Any]) -> None:
    import locomo_recall as lr

    pgh = _pg()
    conversations = lr.load_conversations(lr.DEFAULT_DATA)
    questions = [q for c in conversations for q in lr.locomo_questions(c)]
    ks = [5, 10]
    found: dict[str, dict[int, list[str]]] = {}

    class Recording(lr.MemtraceArm):
        def search(self, conversation: str, query: str, k: int) -> list[str]:
            res = super().search(conversation, query, k)
            found.setdefault(self.name, {})[id_of[(conversation, query)]] = res
            return res

    id_of = {(q.conversation, q.text): i for i, q in enumerate(questions)}
    results = {}
    with tempfile.TemporaryDirectory(prefix="pgb-locomo-") as tmp:
        _log("locomo: sqlite ...")
        results["sqlite"] = lr.run_arm(
            Recording(Path(tmp) / "l.db", name="sqlite"), conversations, questions, ks
        )
        url = pgh.new_database()
        _log("locomo: postgresql ...")
        results["postgresql"] = lr.run_arm(
            Recording(Path(tmp) / "unused.db", name="postgresql", url=url),
            conversations,
            questions,
            ks,
        )
    diffs = []
    for i, q in enumerate(questions):
        a, b = found["sqlite"].get(i, []), found["postgresql"].get(i, [])
        if a[:10] != b[:10]:
            ha = bool(q.evidence.intersection(a[:10]))
            hb = bool(q.evidence.intersection(b[:10]))
            diffs.append(
                {
                    "q": q.text,
                    "conv": q.conversation,
                    "evidence": sorted(q.evidence),
                    "sqlite_hit10": ha,
                    "pg_hit10": hb,
                    "sqlite": a[:10],
                    "pg": b[:10],
                    "same_set": set(a[:10]) == set(b[:10]),
                }
            )
    report["locomo"] = {
        "questions": len(questions),
        "recall": {
            name: {f"@{k}": round(r.recall("overall", k), 4) for k in ks}
            for name, r in results.items()
        },
        "latency_ms": {
            name: {"p50": round(r.latency(0.5), 2), "p95": round(r.latency(0.95), 2)}
            for name, r in results.items()
        },
        "per_category": {
            name: {
                cat: round(r.recall(cat, 10), 4) for cat in lr.CATEGORIES.values() if r.counts[cat]
            }
            for name, r in results.items()
        },
        "top10_differs": len(diffs),
        "top10_same_set_other_order": sum(d["same_set"] for d in diffs),
        "hit10_changed": [d for d in diffs if d["sqlite_hit10"] != d["pg_hit10"]],
        "diffs_sample": diffs[:20],
    }
    _progress(
        "locomo: "
        + json.dumps({k: v for k, v in report["locomo"].items() if k not in ("diffs_sample",)})
    )


def print_locomo(lo: dict[str, Any]) -> None:
    s, p = lo["recall"]["sqlite"], lo["recall"]["postgresql"]
    rows = [
        (f"recall@{k}", f"{s[f'@{k}']:.4f}", f"{p[f'@{k}']:.4f} ({p[f'@{k}'] - s[f'@{k}']:+.4f})")
        for k in (5, 10)
    ]
    for cat, v in lo["per_category"]["sqlite"].items():
        rows.append(
            (f"  recall@10 {cat}", f"{v:.4f}", f"{lo['per_category']['postgresql'][cat]:.4f}")
        )
    ls, lp = lo["latency_ms"]["sqlite"], lo["latency_ms"]["postgresql"]
    rows.append(
        (
            "search latency p50 / p95",
            f"{ls['p50']} / {ls['p95']} ms",
            f"{lp['p50']} / {lp['p95']} ms",
        )
    )
    _table(f"LoCoMo dev, {lo['questions']} questions", rows)
    print(
        f"questions whose top 10 differ: {lo['top10_differs']} "
        f"(same set, other order: {lo['top10_same_set_other_order']}); "
        f"hit@10 changed: {len(lo['hit10_changed'])}"
    )
    for d in lo["hit10_changed"]:
        print(f"  {d['conv']} {d['q']!r}: sqlite {d['sqlite_hit10']} pg {d['pg_hit10']}")


# -- server --------------------------------------------------------------------------------------


def _tree_cpu(pids: list[int]) -> dict[int, float]:
    """utime+stime (s) of the processes and all their descendants, by pid."""
    import psutil

    out: dict[int, float] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return out


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def _stored(url: str) -> int:
    """Rows in the store's memories table (what the acknowledged writes really added)."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            return int(conn.execute("SELECT count(*) FROM memories").fetchone()[0])

    async def count() -> int:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM memories"))
        finally:
            await conn.close()

    return asyncio.run(count())


def _postmaster_pid() -> int:
    pg = _pg().server()
    return int((pg.data / "postmaster.pid").read_text().split()[0])


def run_server(args: argparse.Namespace, report: dict[str, Any]) -> None:
    import server_bench as sb

    pgh = _pg()
    pm = _postmaster_pid()
    dur = args.duration
    out: dict[str, Any] = {"duration_s": dur, "workers_per_server": args.workers}
    with tempfile.TemporaryDirectory(prefix="pgb-server-") as tmpname:
        tmp = Path(tmpname)
        logdir = tmp / "logs"
        logdir.mkdir()

        def case(label: str, urls: list[str], store_is_pg: bool) -> None:
            servers = []
            try:
                key = None
                for i, url in enumerate(urls):
                    srv, k = sb.start_memtrace(f"{label}-{i}", url, args.workers, logdir)
                    servers.append(srv)
                    key = key or k
                assert key is not None
                single, batch = sb.write_workloads(key)
                before = [0]
                for kind, wl, conns, per in (
                    ("single", single, args.connections, 1),
                    ("batch", batch, args.batch_connections, 100),
                ):
                    for s in servers:  # warm-up
                        sb.load(s.port, wl, 2, 1.0, tmp)
                    before[0] = _stored(urls[0])
                    share = max(1, conns // len(servers))
                    mt_pids = [s.proc.pid for s in servers]
                    b_mt, b_pg = _tree_cpu(mt_pids), _tree_cpu([pm]) if store_is_pg else {}
                    wall0 = time.monotonic()
                    results = _parallel_load(sb, servers, wl, share, dur, tmp)
                    wall = time.monotonic() - wall0
                    a_mt, a_pg = _tree_cpu(mt_pids), _tree_cpu([pm]) if store_is_pg else {}
                    ok = sum(r.ok for r in results)
                    acked = ok * per
                    stored = _stored(urls[0])
                    stored, before[0] = stored - before[0], stored
                    secs = max(r.seconds for r in results)
                    mt_cpu = _cpu_delta(b_mt, a_mt)
                    pg_cpu = _cpu_delta(b_pg, a_pg)
                    row = {
                        "servers": len(servers),
                        "connections": share * len(servers),
                        "requests_ok_per_s": round(ok / secs),
                        "memories_per_s": round(acked / secs),
                        "rows_stored": stored,
                        "acked_memories": acked,
                        "conflicts": sum(r.conflicts for r in results),
                        "errors": sum(r.errors for r in results),
                        "p50_ms": round(max(r.latency_us.get("50", 0) for r in results) / 1000, 2),
                        "p99_ms": round(max(r.latency_us.get("99", 0) for r in results) / 1000, 2),
                        "memtrace_cpu_s": round(mt_cpu, 2),
                        "postgres_cpu_s": round(pg_cpu, 2),
                        "memtrace_cpu_us_per_memory": round(mt_cpu / acked * 1e6, 1)
                        if acked
                        else None,
                        "postgres_cpu_us_per_memory": round(pg_cpu / acked * 1e6, 1)
                        if acked
                        else None,
                        "wall_s": round(wall, 1),
                        "generator": results[0].generator,
                    }
                    out[f"{label}_{kind}"] = row
                    _log(f"  {label} {kind}: {row}")
                    _progress(f"server {label} {kind}: {row}")
            finally:
                for s in servers:
                    s.stop()

        url1 = pgh.new_database()
        _log("server: 1 server on PostgreSQL ...")
        case("pg1", [url1], True)
        url2 = pgh.new_database()
        _log("server: 2 servers on one PostgreSQL database ...")
        case("pg2", [url2, url2], True)
        if not args.skip_sqlite:
            _log("server: 1 server on SQLite (reference) ...")
            case("sqlite1", ["sqlite:///" + str(tmp / "w.db")], False)
        if not args.skip_profile:
            out["profile"] = _profile(sb, args, tmp, logdir)
    report["server"] = out


def _parallel_load(
    sb: Any, servers: list[Any], wl: Any, conns: int, dur: float, tmp: Path
) -> list[Any]:
    import concurrent.futures

    def own(i: int) -> Any:
        # wrk's Lua run id (os.time() .. math.random()) is the same in two wrk processes
        # started in the same second: mark each server's bodies, or its writes are duplicates
        # of the other's (409, caught across servers by the advisory-lock dedup)
        if not wl.bodies or len(servers) == 1:
            return wl
        return replace(wl, bodies=[b.replace("wrk {run}", f"wrk s{i} {{run}}") for b in wl.bodies])

    with concurrent.futures.ThreadPoolExecutor(len(servers)) as pool:
        futs = [
            pool.submit(sb.load, s.port, own(i), conns, dur, tmp) for i, s in enumerate(servers)
        ]
        return [f.result() for f in futs]


def _profile(sb: Any, args: argparse.Namespace, tmp: Path, logdir: Path) -> dict[str, Any]:
    """py-spy of one PostgreSQL server's worker under the single-POST load."""
    import threading

    import psutil

    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists() and not shutil.which("py-spy"):
        return {"error": "py-spy not installed"}
    url = _pg().new_database()
    srv, key = sb.start_memtrace("profile", url, args.workers, logdir)
    try:
        single, _ = sb.write_workloads(key)
        sb.load(srv.port, single, 2, 1.0, tmp)
        procs = [psutil.Process(srv.proc.pid), *psutil.Process(srv.proc.pid).children(True)]
        raw = tmp / "profile.txt"
        holder: dict[str, Any] = {}

        def drive() -> None:
            holder["res"] = sb.load(srv.port, single, args.connections, args.duration + 2, tmp)

        th = threading.Thread(target=drive)
        th.start()
        time.sleep(1.0)
        busiest = max(procs, key=lambda p: p.cpu_percent(0.5) if p.is_running() else -1)
        cmd = [
            str(pyspy if pyspy.exists() else "py-spy"),
            "record",
            "--pid",
            str(busiest.pid),
            "--duration",
            str(int(args.duration)),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "-o",
            str(raw),
        ]
        spy = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
        th.join()
        if spy.returncode != 0 or not raw.exists():
            return {"error": spy.stderr[-2000:]}
        keep = Path(args.profile_out)
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(raw, keep)
        summary = summarise_profile(raw.read_text())
        summary["pid"] = busiest.pid
        summary["raw"] = str(keep)
        summary["load_ok_rps"] = round(holder["res"].ok_rps)
        _progress("py-spy: " + json.dumps(summary)[:4000])
        return summary
    finally:
        srv.stop()


def _short(frame: str) -> str:
    # py-spy raw frames: "function (path/to/file.py:line)"
    m = re.match(r"(.*) \((.*?):?(\d+)?\)$", frame)
    if not m:
        return frame
    func, path = m.group(1), m.group(2)
    parts = Path(path).parts
    for anchor in ("site-packages", "src", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    return f"{func} ({'/'.join(parts[-3:])})"


def summarise_profile(raw: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares (raw = py-spy's collapsed stacks, ``a;b;c count``)."""
    self_c: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    modules: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        self_c[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
        modules[_module_of(frames)] += n
    pct = lambda c: round(100 * c / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "self_top": [(f, pct(c)) for f, c in self_c.most_common(top)],
        "inclusive_top": [(f, pct(c)) for f, c in incl.most_common(top * 6)],
        "by_area": [(m, pct(c)) for m, c in modules.most_common()],
    }


def _module_of(frames: list[str]) -> str:
    """A coarse bucket for the innermost frame of interest."""
    leaf = frames[-1]
    for f in reversed(frames):
        for key, label in (
            ("asyncpg", "asyncpg"),
            ("memtrace_core/stores/postgres", "memtrace store (postgres.py)"),
            ("memtrace_core/text", "memtrace text analyzer"),
            ("memtrace_core", "memtrace_core (engine, models, validation)"),
            ("memtrace_server", "memtrace_server (routes, auth)"),
            ("pydantic", "pydantic"),
            ("sanic", "sanic / http"),
            ("asyncio", "asyncio event loop"),
            ("uvloop", "asyncio event loop"),
        ):
            if key in f:
                return label
    return "other: " + leaf


def print_server(sv: dict[str, Any]) -> None:
    print()
    print(
        f"server writes, {sv['duration_s']:g} s per case, {sv['workers_per_server']} worker(s) per "
        "server; CPU = utime+stime of the memtrace process trees / of all PostgreSQL processes"
    )
    head = (
        "case",
        "servers",
        "conns",
        "ok req/s",
        "memories/s",
        "p50 ms",
        "p99 ms",
        "409/err",
        "mt CPU µs/mem",
        "pg CPU µs/mem",
    )
    rows = []
    for key, label in (
        ("sqlite1_single", "single POST, SQLite, 1 server (ref)"),
        ("pg1_single", "single POST, PG, 1 server"),
        ("pg2_single", "single POST, PG, 2 servers"),
        ("sqlite1_batch", "batch POST x100, SQLite, 1 server (ref)"),
        ("pg1_batch", "batch POST x100, PG, 1 server"),
        ("pg2_batch", "batch POST x100, PG, 2 servers"),
    ):
        r = sv.get(key)
        if not r:
            continue
        rows.append(
            (
                label,
                str(r["servers"]),
                str(r["connections"]),
                f"{r['requests_ok_per_s']:,}",
                f"{r['memories_per_s']:,}",
                str(r["p50_ms"]),
                str(r["p99_ms"]),
                f"{r['conflicts']}/{r['errors']}",
                str(r["memtrace_cpu_us_per_memory"]),
                str(r["postgres_cpu_us_per_memory"]) if key.startswith("pg") else "-",
            )
        )
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    prof = sv.get("profile")
    if prof and "self_top" in prof:
        print()
        print(
            f"py-spy, one PG server's worker under single POST ({prof['samples']} samples, "
            f"{prof['load_ok_rps']} ok req/s while profiled; raw: {prof['raw']})"
        )
        print(
            "  by area (innermost known frame): "
            + ", ".join(f"{m} {p}%" for m, p in prof["by_area"][:10])
        )
        print("  top self frames:")
        for f, p in prof["self_top"]:
            print(f"    {p:5.1f}%  {f}")
        print("  top inclusive frames (memtrace, asyncpg, sanic, pydantic):")
        shown = 0
        for f, p in prof["inclusive_top"]:
            if any(k in f for k in ("memtrace", "asyncpg", "sanic", "pydantic")) and shown < 20:
                print(f"    {p:5.1f}%  {f}")
                shown += 1
    elif prof:
        print(f"py-spy: {prof}")


# -- main ----------------------------------------------------------------------------------------

PROGRESS = Path(os.environ.get("PG_BENCH_PROGRESS", "/dev/null"))


def _progress(line: str) -> None:
    with PROGRESS.open("a") as fh:
        fh.write(f"- {time.strftime('%H:%M:%S')} {line}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument(
        "--sections",
        nargs="+",
        default=["core", "locomo", "server"],
        choices=["core", "explain", "locomo", "server"],
    )
    ap.add_argument("--explain", action="store_true", help="add the explain section")
    ap.add_argument("--explain-out", default=None, help="also write the EXPLAIN text here")
    ap.add_argument(
        "--memories", type=int, default=100_000, help="N (default 100,000; 1M: --memories 1000000)"
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=1000, help="timed calls per fast op")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per server case")
    ap.add_argument("--workers", type=int, default=1, help="workers per memtrace server")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--batch-connections", type=int, default=8)
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--skip-latency", action="store_true", help="core: ingest only")
    ap.add_argument("--skip-floors", action="store_true", help="core: no PostgreSQL floors")
    ap.add_argument("--skip-profile", action="store_true")
    ap.add_argument("--profile-out", default=str(HERE / ".cache" / "pg-server-pyspy.txt"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--save", help="also write the JSON report to this file")
    args = ap.parse_args(argv)
    sections = list(dict.fromkeys(args.sections + (["explain"] if args.explain else [])))
    if "explain" in sections and "core" not in sections:
        sections.insert(0, "core")

    report: dict[str, Any] = {
        "machine": _data.machine_info(),
        "command": " ".join(
            ["benchmarks/pg_bench.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    }
    pg = _pg().server()
    report["postgres"] = subprocess.run(
        [str(pg.bindir / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    _log(f"PostgreSQL: {report['postgres']} at {pg.url()}")
    store_url = None
    if "core" in sections:
        store_url = run_core(args, report)
    if "explain" in sections and store_url:
        _log("explain ...")
        report["explain"] = run_explain(store_url, report["core_meta"])
        if args.explain_out:
            Path(args.explain_out).write_text(report["explain"] + "\n")
    if "locomo" in sections:
        run_locomo(args, report)
    if "server" in sections:
        run_server(args, report)
    report["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.save:
        Path(args.save).write_text(
            json.dumps({k: v for k, v in report.items() if k != "core_meta"}, indent=1, default=str)
        )

    if args.json:
        print(
            json.dumps({k: v for k, v in report.items() if k != "core_meta"}, indent=1, default=str)
        )
        return 0
    m = report["machine"]
    print(f"memtrace PostgreSQL benchmark — {m['date']}")
    print(
        f"machine: {m['cpu']} ({m['nproc']} cores), Python {m['python']}, SQLite {m['sqlite']}, "
        f"{report['postgres']} (pg_harness: fsync=off, synchronous_commit=on, shared_buffers=128MB), "
        f"load at start {m['loadavg']}"
    )
    print(f"command: {report['command']}")
    if "core" in report:
        print_core(report["core"])
    if "locomo" in report:
        print_locomo(report["locomo"])
    if "server" in report:
        print_server(report["server"])
    if "explain" in report:
        print()
        print("EXPLAIN (ANALYZE, BUFFERS) via auto_explain, N =", f"{args.memories:,}")
        print(report["explain"])
    print(f"\nload average at end: {report['load_at_end']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
