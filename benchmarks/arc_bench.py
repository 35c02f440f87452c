#!/usr/bin/env python3
"""The Arc store's figures, against the fake Arc server of tests/arc_fake.py (DuckDB behind
Arc's HTTP protocol, on 127.0.0.1: no real Arc can run here), each beside its peer measured in
the same run:

* ``ingest`` — memories written one at a time and in batches of 100 through the Arc store
  (acknowledged from the spool; forwarding runs in the background) vs the embedded SQLite
  store (``sqlite:///``), the ratio Arc / SQLite;
* ``forward`` — the forwarder draining a backlog (written while Arc was down) into the fake
  Arc: memories per second, batches, and that every memory landed exactly once;
* ``reads`` — ``list_memories(limit=20)``, ``get_memory`` and a keyword search, p50 / p95,
  with an empty spool (every body on Arc) and a full one (every body still spooled);
* ``locomo`` — LoCoMo dev recall@5/@10 through the engine on SQLite and on Arc (the ranking
  difference of Arc's stage-1 SQL; benchmarks/locomo_recall.py has the method), with the
  questions whose top 10 differ.

Usage::

    .venv/bin/python benchmarks/arc_bench.py                       # every section
    .venv/bin/python benchmarks/arc_bench.py --sections ingest reads --memories 2000

The fake Arc is Python + DuckDB, run in a process of its own for ``ingest`` and ``reads`` (in
this process for ``forward``, which switches it off and on, and ``locomo``): its absolute
figures say nothing about a real Arc's speed; the ratios and the spool's own costs are what
this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

import arc_fake  # noqa: E402
from memtrace_core import AsyncMemtrace, aconnect  # noqa: E402

DB = "bench"


def arc_url(fake: arc_fake.FakeArc, tmp: Path, name: str, **params: Any) -> str:
    base: dict[str, Any] = {
        "token": arc_fake.TOKEN,
        "meta": f"sqlite:///{tmp}/{name}-meta.db",
        "spool": f"{tmp}/{name}-spool.db",
        "flush_ms": 0,
        "drain_seconds": 0,
    }
    base.update(params)
    query = "&".join(f"{k}={v}" for k, v in base.items())
    return f"arc+http://127.0.0.1:{fake.port}/{name}?{query}"


class RemoteFake:
    """The fake Arc in a process of its own (tests/arc_fake.py's ``main``), so that its CPU
    (Python and DuckDB) is not charged to the store being measured."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "arc_fake.py")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _open(url: str) -> AsyncMemtrace:
    mt = await aconnect(url)
    assert isinstance(mt, AsyncMemtrace)
    return mt


async def _write(mt: AsyncMemtrace, n: int, batch: int, tag: str) -> float:
    start = time.perf_counter()
    if batch == 1:
        for i in range(n):
            await mt.remember("agent", f"{tag} memory {i} about invoices and deploys")
    else:
        for i in range(0, n, batch):
            await mt.add_memories(
                [
                    {"agent_id": "agent", "content": f"{tag} memory {j} about invoices"}
                    for j in range(i, min(n, i + batch))
                ]
            )
    return n / (time.perf_counter() - start)


async def run_ingest(args: argparse.Namespace, fake: arc_fake.FakeArc, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch in (1, 100):
        n = args.memories if batch > 1 else max(args.memories // 4, 200)
        sqlite = await _open(f"sqlite:///{tmp}/ingest-{batch}.db")
        rate_sqlite = await _write(sqlite, n, batch, "sqlite")
        await sqlite.close()
        arc = await _open(arc_url(fake, tmp, f"ingest{batch}"))
        rate_arc = await _write(arc, n, batch, "arc")
        await arc.store.drain(120)  # type: ignore[attr-defined]
        await arc.close()
        out[f"batch {batch}"] = {
            "memories": n,
            "sqlite_per_s": round(rate_sqlite),
            "arc_spool_per_s": round(rate_arc),
            "ratio": round(rate_arc / rate_sqlite, 2),
        }
    return out


async def run_forward(
    args: argparse.Namespace, fake: arc_fake.FakeArc, tmp: Path
) -> dict[str, Any]:
    mt = await _open(arc_url(fake, tmp, "forward"))
    store: Any = mt.store
    fake.down()
    await _write(mt, args.memories, 100, "backlog")
    pending = (await store.spool_stats())["pending"]
    fake.up()
    start = time.perf_counter()
    await store.drain(300)
    seconds = time.perf_counter() - start
    counts = collections.Counter(r["id"] for r in fake.rows("forward", "memories"))
    stats = store.forwarder.stats
    await mt.close()
    return {
        "backlog": pending,
        "seconds": round(seconds, 2),
        "forwarded_per_s": round(pending / seconds),
        "batches": stats.batches,
        "landed_once": all(v == 1 for v in counts.values()) and len(counts) == pending,
    }


async def _latencies(mt: AsyncMemtrace, ids: list[str], samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, call, n in (
        ("list 20", lambda i: mt.list_memories(limit=20), samples),
        ("get", lambda i: mt.get_memory(ids[i % len(ids)]), samples),
        (
            "search",
            lambda i: mt.search_memories(query=f"invoices memory {i}", limit=10),
            max(10, samples // 10),
        ),
    ):
        await call(0)
        times = []
        for i in range(n):
            start = time.perf_counter()
            await call(i)
            times.append((time.perf_counter() - start) * 1000)
        out[name] = {"p50": round(pct(times, 0.5), 2), "p95": round(pct(times, 0.95), 2)}
    return out


async def run_reads(args: argparse.Namespace, fake: arc_fake.FakeArc, tmp: Path) -> dict[str, Any]:
    n = args.memories
    # empty spool: everything forwarded and confirmed, every body read from Arc
    empty = await _open(arc_url(fake, tmp, "readsempty"))
    await _write(empty, n, 100, "empty")
    await empty.store.drain(300)  # type: ignore[attr-defined]
    ids = [m.id for m in (await empty.list_memories(limit=200)).memories]
    on_arc = await _latencies(empty, ids, args.samples)
    await empty.close()
    # full spool: the forwarder stopped, every body read from the spool
    full = await _open(arc_url(fake, tmp, "readsfull"))
    await full.store.forwarder.stop(0)  # type: ignore[attr-defined]
    await _write(full, n, 100, "full")
    ids = [m.id for m in (await full.list_memories(limit=200)).memories]
    spooled = await _latencies(full, ids, args.samples)
    pending = (await full.store.spool_stats())["pending"]  # type: ignore[attr-defined]
    await full.close()
    sqlite = await _open(f"sqlite:///{tmp}/reads.db")
    await _write(sqlite, n, 100, "sqlite")
    ids = [m.id for m in (await sqlite.list_memories(limit=200)).memories]
    direct = await _latencies(sqlite, ids, args.samples)
    await sqlite.close()
    return {
        "memories": n,
        "spool_full_pending": pending,
        "empty_spool": on_arc,
        "full_spool": spooled,
        "sqlite": direct,
    }


def run_locomo(fake: arc_fake.FakeArc, tmp: Path) -> dict[str, Any]:
    import locomo_recall as lr

    conversations = lr.load_conversations(lr.DEFAULT_DATA)
    questions = [q for c in conversations for q in lr.locomo_questions(c)]
    ks = [5, 10]
    found: dict[str, dict[int, list[str]]] = {}
    id_of = {(q.conversation, q.text): i for i, q in enumerate(questions)}

    class Recording(lr.MemtraceArm):
        def search(self, conversation: str, query: str, k: int) -> list[str]:
            res = super().search(conversation, query, k)
            found.setdefault(self.name, {})[id_of[(conversation, query)]] = res
            return res

    results = {
        "sqlite": lr.run_arm(
            Recording(tmp / "locomo.db", name="sqlite"), conversations, questions, ks
        ),
        "arc": lr.run_arm(
            Recording(
                tmp / "unused.db", name="arc", url=arc_url(fake, tmp, "locomo", sync_forward=1)
            ),
            conversations,
            questions,
            ks,
        ),
    }
    differs = [
        i
        for i in range(len(questions))
        if found["sqlite"].get(i, [])[:10] != found["arc"].get(i, [])[:10]
    ]
    changed = [
        i
        for i in differs
        if bool(questions[i].evidence.intersection(found["sqlite"][i][:10]))
        != bool(questions[i].evidence.intersection(found["arc"][i][:10]))
    ]
    return {
        "questions": len(questions),
        "recall": {
            n: {f"@{k}": round(r.recall("overall", k), 4) for k in ks} for n, r in results.items()
        },
        "per_category": {
            n: {c: round(r.recall(c, 10), 4) for c in lr.CATEGORIES.values() if r.counts[c]}
            for n, r in results.items()
        },
        "latency_ms": {
            n: {"p50": round(r.latency(0.5), 2), "p95": round(r.latency(0.95), 2)}
            for n, r in results.items()
        },
        "top10_differs": len(differs),
        "hit10_changed": [
            {
                "q": questions[i].text,
                "sqlite_hit10": bool(questions[i].evidence.intersection(found["sqlite"][i][:10])),
            }
            for i in changed
        ],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sections",
        nargs="+",
        default=["ingest", "forward", "reads", "locomo"],
        choices=["ingest", "forward", "reads", "locomo"],
    )
    ap.add_argument("--memories", type=int, default=5000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="arc-bench-") as tmpdir,
        arc_fake.running(tokens={arc_fake.TOKEN: {"read", "write", "admin"}}) as fake,
    ):
        tmp = Path(tmpdir)
        for section in args.sections:
            print(f"[{section}] ...", file=sys.stderr, flush=True)
            if section == "locomo":
                report[section] = run_locomo(fake, tmp)
            elif section == "forward":  # needs the outage switch and the rows: in-process
                report[section] = asyncio.run(run_forward(args, fake, tmp))
            else:
                remote = RemoteFake()
                try:
                    runner = {"ingest": run_ingest, "reads": run_reads}[section]
                    report[section] = asyncio.run(runner(args, remote, tmp))  # type: ignore[arg-type]
                finally:
                    remote.close()
            print(json.dumps({section: report[section]}, indent=1), flush=True)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
