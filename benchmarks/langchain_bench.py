#!/usr/bin/env python3
"""LangGraph store benchmark (issue 9): ``MemtraceStore`` against LangGraph's own stores and
against the memtrace engine calls it makes, in one run. Prints every figure of the issue.

Usage (from the repository root, with the langchain packages installed)::

    .venv/bin/python benchmarks/langchain_bench.py            # 10k and 100k items + LoCoMo
    .venv/bin/python benchmarks/langchain_bench.py --quick    # 2k items, one conversation
    .venv/bin/python benchmarks/langchain_bench.py --json
    .venv/bin/python benchmarks/langchain_bench.py --profile  # cProfile of the put path

The arms, each over its own file in a temporary directory (removed at exit):

* ``memtrace`` — ``MemtraceStore(connect("sqlite:///<tmp>/adapter.db"))``, the adapter.
* ``engine`` — the memtrace calls the adapter makes, made directly on a blocking handle:
  ``add_memories`` with the very dicts the adapter writes (built outside the timing, so the
  ratio adapter / engine is the adapter's whole cost: op planning, dict building, result
  conversion), ``get_memory_by_key`` and ``search_memories`` with the adapter's fields. Puts
  go to their own file (``engine.db``), reads are made on the adapter's file, so both read
  the same data.
* ``InMemoryStore`` — ``langgraph.store.memory.InMemoryStore()`` (no index).
* ``SqliteStore`` — ``langgraph.store.sqlite.SqliteStore`` on a file, as
  ``SqliteStore.from_conn_string`` opens it (autocommit connection, SQLite's default rollback
  journal and ``synchronous=FULL``), ``setup()`` called, no index.
* ``SqliteStore-WAL`` — the same with ``journal_mode=WAL`` and ``synchronous=NORMAL``, the
  durability memtrace's SQLite store uses, so the put comparison is like for like.

Items: ``N`` puts spread over 100 namespaces ``("users", "uNNN", "memories")`` (100 items
per namespace at 10k, 1,000 at 100k), key ``mNNNNNN``, value ``{"content": 8–40 words of the
core benchmark's Zipf vocabulary, "kind": one of 5, "source": one of 4, "priority": 1–5,
"turn": i}``. Operations, timed one by one with ``perf_counter_ns`` and interleaved between
the arms (so a load spike hits all of them), after warm-up calls:

* put — every arm is filled with ``N - --put-items`` items, then the last ``--put-items``
  (default 1,000) are timed: ``store.batch([PutOp, …] * 100)`` (engine: ``add_memories`` of
  the 100 dicts), throughput = items / summed batch time, new keys only. The memtrace files
  get ``ANALYZE`` after their first 1,000 items, only so that the fill ends in minutes (a
  keyed write scans the org's rows without planner statistics, see docs/benchmarks.md); the
  statistics are deleted and the handles reopened before anything is timed. The fill rate
  (with the statistics) is printed as an informational row;
* get — ``store.get(namespace, key)`` of a random item;
* filtered search — ``store.search(("users", "uNNN"), filter={"kind": k}, limit=10)``;
* query search — ``store.search(("users", "uNNN"), query=q, limit=10)``, ``q`` a 2–4 word
  keyword query. memtrace ranks by its keyword search; LangGraph's stores without an
  embedding index ignore ``query`` (``InMemoryStore``: the prefix's items in insertion order;
  ``SqliteStore``: ``ORDER BY updated_at DESC``), so theirs is an unranked search.

LoCoMo (``../shared/data/locomo/locomo-dev.json``, CC BY-NC, read in place): each turn is an
item ``("locomo", <conversation>)`` / ``<dia_id>`` with value ``{"content": "Speaker: text",
"speaker", "session", "dia_id"}``, put through each store in batches of 100; each scorable
question (categories 1–4, as ``benchmarks/locomo_recall.py``) is asked with
``search(("locomo", <conversation>), query=question, limit=10)`` and recall@10 is the share of
questions with an evidence turn among the ten keys returned. The engine's own
``search_memories`` over the same memories (the adapter's file) is run too (it must give the
same hits), and for reference the engine on ``locomo_recall``'s own ingest (sessions and
turn times set, which a store put does not carry).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import io
import json
import pstats
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

import _data
import memtrace_core
from memtrace_core.api import MemoryAPI
from memtrace_langchain import MemtraceStore

locomo_recall = importlib.import_module("locomo_recall")

BATCH = 100
USERS = 100
KINDS = ("preference", "fact", "episode", "instruction", "profile")
SOURCES = ("chat", "tool", "import", "reflection")
ARMS = ("memtrace", "engine", "InMemoryStore", "SqliteStore", "SqliteStore-WAL")
PEERS = ("InMemoryStore", "SqliteStore", "SqliteStore-WAL")
OPS = ("get", "filtered search", "query search")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- data -------------------------------------------------------------------------------------


def namespace_of(user: int) -> tuple[str, ...]:
    return ("users", f"u{user:03d}", "memories")


def make_items(n: int, seed: int) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    """``n`` (namespace, key, value) triples, deterministic per ``seed``."""
    rng = random.Random(f"lc-items:{seed}")
    items = []
    for i in range(n):
        value = {
            "content": _data.words(rng, rng.randint(8, 40)),
            "kind": rng.choice(KINDS),
            "source": rng.choice(SOURCES),
            "priority": rng.randint(1, 5),
            "turn": i,
        }
        items.append((namespace_of(i % USERS), f"m{i:06d}", value))
    return items


# -- the arms ---------------------------------------------------------------------------------


class Arms:
    """The five arms over files in ``tmp``."""

    def __init__(self, tmp: Path, tag: str) -> None:
        self.adapter_path = tmp / f"{tag}-adapter.db"
        self.engine_path = tmp / f"{tag}-engine.db"
        self.adapter_handle = memtrace_core.connect(f"sqlite:///{self.adapter_path}")
        self.engine_handle = memtrace_core.connect(f"sqlite:///{self.engine_path}")
        self.memtrace = MemtraceStore(self.adapter_handle)
        self.inmemory = InMemoryStore()
        self._conns: list[sqlite3.Connection] = []
        self.sqlite = self._sqlite_store(tmp / f"{tag}-lg.db", wal=False)
        self.sqlite_wal = self._sqlite_store(tmp / f"{tag}-lg-wal.db", wal=True)

    def _sqlite_store(self, path: Path, *, wal: bool) -> SqliteStore:
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        self._conns.append(conn)
        store = SqliteStore(conn)
        store.setup()
        return store

    def set_planner_stats(self, on: bool) -> None:
        """Close the memtrace handles, run ``ANALYZE`` on their files (``on``) or delete the
        statistics again (off: the state the engine leaves a file in), reopen them."""
        self.memtrace.close()
        self.adapter_handle.close()
        self.engine_handle.close()
        for path in (self.adapter_path, self.engine_path):
            conn = sqlite3.connect(str(path), isolation_level=None)
            try:
                if on:
                    conn.execute("ANALYZE")
                else:
                    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                    for stat in ("sqlite_stat1", "sqlite_stat4"):
                        if stat in tables:
                            conn.execute(f"DELETE FROM {stat}")
            finally:
                conn.close()
        self.adapter_handle = memtrace_core.connect(f"sqlite:///{self.adapter_path}")
        self.engine_handle = memtrace_core.connect(f"sqlite:///{self.engine_path}")
        self.memtrace = MemtraceStore(self.adapter_handle)

    def stores(self) -> dict[str, BaseStore]:
        return {
            "memtrace": self.memtrace,
            "InMemoryStore": self.inmemory,
            "SqliteStore": self.sqlite,
            "SqliteStore-WAL": self.sqlite_wal,
        }

    def close(self) -> None:
        self.memtrace.close()
        self.adapter_handle.close()
        self.engine_handle.close()
        for conn in self._conns:
            conn.close()


def _engine_search(api: MemoryAPI, fields: dict[str, Any]) -> Callable[[], Any]:
    return lambda: api.search_memories(fields)


# -- measurement ------------------------------------------------------------------------------


@dataclass
class SizeResult:
    n: int
    put_seconds: dict[str, float] = field(default_factory=dict)
    samples: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # op -> arm -> ns

    put_items: int = 0
    fill_rate: dict[str, float] = field(default_factory=dict)  # with planner statistics

    def put_rate(self, arm: str) -> float:
        return self.put_items / self.put_seconds[arm]

    def p50(self, op: str, arm: str) -> float:
        return _data.percentile(sorted(self.samples[op][arm]), 50)

    def p95(self, op: str, arm: str) -> float:
        return _data.percentile(sorted(self.samples[op][arm]), 95)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "timed_puts": self.put_items,
            "put_items_per_s": {a: round(self.put_rate(a)) for a in self.put_seconds},
            "fill_items_per_s_with_planner_stats": {a: round(v) for a, v in self.fill_rate.items()},
            "p50_ms": {
                op: {a: round(self.p50(op, a), 4) for a in self.samples[op]} for op in self.samples
            },
            "p95_ms": {
                op: {a: round(self.p95(op, a), 4) for a in self.samples[op]} for op in self.samples
            },
        }


def _timed(call: Callable[[], Any]) -> int:
    started = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - started


def _put_batches(
    arms: Arms,
    items: list[tuple[tuple[str, ...], str, dict[str, Any]]],
    writes: list[dict[str, Any]],
    start: int,
    stop: int,
    timed: bool,
) -> dict[str, int]:
    """Put ``items[start:stop]`` into every arm in batches of :data:`BATCH`, arms interleaved
    (rotating order); returns each arm's summed batch time in ns."""
    stores = arms.stores()
    engine = arms.engine_handle
    totals = dict.fromkeys(ARMS, 0)
    gc.disable()  # a collection pause lands on whichever arm runs then
    try:
        for b, first in enumerate(range(start, stop, BATCH)):
            last = min(first + BATCH, stop)
            ops = [PutOp(ns, key, value) for ns, key, value in items[first:last]]
            chunk = writes[first:last]
            calls: dict[str, Callable[[], Any]] = {
                name: (lambda s=store, ops=ops: s.batch(ops)) for name, store in stores.items()
            }
            calls["engine"] = lambda chunk=chunk: engine.add_memories(chunk)
            order = ARMS[b % len(ARMS) :] + ARMS[: b % len(ARMS)]
            for arm in order:
                totals[arm] += _timed(calls[arm])
            if b % 100 == 99:
                gc.collect()
                if not timed:
                    _log(f"  prefill {last:,} / {stop:,}")
    finally:
        gc.enable()
    return totals


def run_size(tmp: Path, n: int, samples: int, put_items: int, seed: int) -> SizeResult:
    """Fill every arm with ``n - put_items`` items (see :func:`main`), time the puts of the
    last ``put_items`` (batches of 100), then time the reads on the ``n``-item stores."""
    arms = Arms(tmp, f"n{n}")
    result = SizeResult(n)
    try:
        items = make_items(n, seed)
        # the engine arm writes the adapter's own dicts (built here, outside the timing)
        writes = [
            arms.memtrace._memory(PutOp(namespace=ns, key=key, value=value))
            for ns, key, value in items
        ]
        fill = n - put_items
        # Prefill shortcut: with no planner statistics (the engine never runs ANALYZE) each
        # keyed write scans the org's rows (see docs/benchmarks.md), so filling 100k items
        # would take most of an hour; ANALYZE after the first 1,000 makes the fill fast, and
        # the statistics are deleted again before anything is timed.
        first = min(1_000, fill)
        _put_batches(arms, items, writes, 0, first, timed=False)
        arms.set_planner_stats(True)
        started = time.perf_counter()
        fill_ns = _put_batches(arms, items, writes, first, fill, timed=False)
        result.fill_rate = {arm: (fill - first) / (ns / 1e9) for arm, ns in fill_ns.items() if ns}
        arms.set_planner_stats(False)
        _log(f"  n={n:,}: filled {fill:,} in {time.perf_counter() - started:.0f} s")
        totals = _put_batches(arms, items, writes, fill, n, timed=True)
        result.put_seconds = {arm: ns / 1e9 for arm, ns in totals.items()}
        result.put_items = put_items
        stores = arms.stores()

        rng = random.Random(f"lc-reads:{seed}:{n}")
        queries = _data.make_queries(samples, seed)
        api = arms.adapter_handle  # the engine's reads run on the adapter's data
        warmup = 5
        for op in OPS:
            result.samples[op] = {arm: [] for arm in ARMS}
        for i in range(samples + warmup):
            ns, key, _ = items[rng.randrange(n)]
            user = ("users", f"u{rng.randrange(USERS):03d}")
            kind = rng.choice(KINDS)
            query = queries[i % len(queries)]
            filter_fields = {
                "namespace_prefix": list(user),
                "limit": 10,
                "offset": 0,
                "metadata": {"kind": kind},
            }
            query_fields = {
                "namespace_prefix": list(user),
                "limit": 10,
                "offset": 0,
                "query": query,
            }
            per_op: dict[str, dict[str, Callable[[], Any]]] = {
                "get": {
                    **{a: (lambda s=s, ns=ns, key=key: s.get(ns, key)) for a, s in stores.items()},
                    "engine": lambda ns=ns, key=key: api.get_memory_by_key(ns, key),
                },
                "filtered search": {
                    **{
                        a: (lambda s=s, u=user, k=kind: s.search(u, filter={"kind": k}, limit=10))
                        for a, s in stores.items()
                    },
                    "engine": _engine_search(api, filter_fields),
                },
                "query search": {
                    **{
                        a: (lambda s=s, u=user, q=query: s.search(u, query=q, limit=10))
                        for a, s in stores.items()
                    },
                    "engine": _engine_search(api, query_fields),
                },
            }
            order = ARMS[i % len(ARMS) :] + ARMS[: i % len(ARMS)]
            for op in OPS:
                for arm in order:
                    elapsed = _timed(per_op[op][arm])
                    if i >= warmup:
                        result.samples[op][arm].append(elapsed)
        return result
    finally:
        arms.close()


# -- LoCoMo -----------------------------------------------------------------------------------


def locomo_items(conv: dict[str, Any]) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    """One store item per turn (see the module docstring)."""
    items = []
    for memory in locomo_recall.locomo_memories(conv):
        dia_id = memory["metadata"]["dia_id"]
        speaker, _, _ = memory["content"].partition(": ")
        value = {
            "content": memory["content"],
            "speaker": speaker,
            "session": memory["session_id"].rsplit("-s", 1)[1],
            "dia_id": dia_id,
        }
        items.append((("locomo", conv["sample_id"]), dia_id, value))
    return items


@dataclass
class RecallResult:
    arm: str
    questions: int = 0
    hits: int = 0
    hit_sets: list[frozenset[str]] = field(default_factory=list)
    result_lists: set[tuple[str, ...]] = field(default_factory=set)
    first: tuple[str, ...] = ()

    @property
    def recall(self) -> float:
        return self.hits / self.questions if self.questions else 0.0


def run_locomo(tmp: Path, data: Path, conversations: Sequence[str] | None) -> dict[str, Any]:
    convs = locomo_recall.load_conversations(data)
    if conversations:
        convs = [c for c in convs if c["sample_id"] in set(conversations)]
    questions = [q for conv in convs for q in locomo_recall.locomo_questions(conv)]
    arms = Arms(tmp, "locomo")
    results = {arm: RecallResult(arm) for arm in ("memtrace", "engine", *PEERS)}
    try:
        stores = arms.stores()
        for conv in convs:
            items = locomo_items(conv)
            for start in range(0, len(items), BATCH):
                ops = [PutOp(ns, key, value) for ns, key, value in items[start : start + BATCH]]
                for store in stores.values():
                    store.batch(ops)
        api = arms.adapter_handle
        for question in questions:
            prefix = ("locomo", question.conversation)
            found: dict[str, list[str]] = {
                name: [item.key for item in store.search(prefix, query=question.text, limit=10)]
                for name, store in stores.items()
            }
            engine = api.search_memories(
                {"namespace_prefix": list(prefix), "query": question.text, "limit": 10, "offset": 0}
            )
            found["engine"] = [m.key or "" for m in engine.results]
            for name, keys in found.items():
                r = results[name]
                hit = question.evidence.intersection(keys)
                r.questions += 1
                r.hits += bool(hit)
                r.hit_sets.append(frozenset(hit))
                r.result_lists.add(tuple(keys))
                if r.questions == 1:
                    r.first = tuple(keys)
    finally:
        arms.close()
    reference = locomo_recall.run_arm(
        locomo_recall.MemtraceArm(tmp / "locomo-native.db"), convs, questions, [10]
    )
    same = results["memtrace"].hit_sets == results["engine"].hit_sets
    return {
        "conversations": [c["sample_id"] for c in convs],
        "questions": len(questions),
        "first_question": questions[0].text if questions else "",
        "recall_at_10": {name: round(r.recall, 4) for name, r in results.items()},
        "distinct_result_lists": {name: len(r.result_lists) for name, r in results.items()},
        "first_results": {name: list(r.first) for name, r in results.items()},
        "adapter_hits_equal_engine_hits": same,
        "engine_native_ingest_recall_at_10": round(reference.recall("overall", 10), 4),
    }


# -- profile ----------------------------------------------------------------------------------


def profile_puts(tmp: Path, n: int, seed: int, top: int = 20) -> str:
    """cProfile of ``n`` puts (batches of 100) through the embedded engine, by own time: the
    calling side (``add_memories`` with the adapter's dicts on an ``aconnect`` handle: the
    engine's validation and preparation) and, separately, the store's writer thread (where
    the SQL runs; its ``_run_group`` is profiled with its own profiler)."""
    import asyncio

    from memtrace_core.stores import sqlite as sqlite_store

    items = make_items(n, seed)
    store = MemtraceStore(memtrace_core.connect(f"sqlite:///{tmp / 'profile-a.db'}"))
    writes = [store._memory(PutOp(ns, key, value)) for ns, key, value in items]
    store.close()

    writer = cProfile.Profile()
    original = sqlite_store._Writer._run_group

    def run_group(self: Any, conn: Any, jobs: Any) -> None:
        writer.enable()
        try:
            original(self, conn, jobs)
        finally:
            writer.disable()

    async def engine_puts() -> float:
        mt = await memtrace_core.aconnect(f"sqlite:///{tmp / 'profile-e.db'}")
        try:
            started = time.perf_counter()
            for start in range(0, n, BATCH):
                await mt.add_memories(writes[start : start + BATCH])
            return time.perf_counter() - started
        finally:
            await mt.close()

    caller = cProfile.Profile()
    sqlite_store._Writer._run_group = run_group  # type: ignore[method-assign]
    try:
        caller.enable()
        seconds = asyncio.run(engine_puts())
        caller.disable()
    finally:
        sqlite_store._Writer._run_group = original  # type: ignore[method-assign]
    out = io.StringIO()
    out.write(f"{n:,} puts in {seconds:.2f} s ({n / seconds:,.0f}/s, profiled)\n")
    for title, prof in (("calling thread", caller), ("writer thread", writer)):
        out.write(f"\n---- {title} ----\n")
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- report -----------------------------------------------------------------------------------


def print_report(sizes: list[SizeResult], locomo: dict[str, Any] | None) -> None:
    info = _data.machine_info()
    print(
        f"machine: {info['cpu']} ×{info['nproc']}, load {info['loadavg']}, Python {info['python']},"
        f" SQLite {info['sqlite']}, {info['date']}"
    )
    for r in sizes:
        print()
        print(
            f"== {r.n:,} items (put: the last {r.put_items:,} items in batches of {BATCH};"
            " latencies p50 / p95 ms) =="
        )
        print(f"{'':<18}" + "".join(f"{a:>18}" for a in ARMS))
        print(f"{'put items/s':<18}" + "".join(f"{r.put_rate(a):>18,.0f}" for a in ARMS))
        fill = "".join(f"{r.fill_rate.get(a, 0):>18,.0f}" for a in ARMS)
        print(f"{'(fill, stats) /s':<18}{fill}")
        for op in OPS:
            cells = "".join(f"{f'{r.p50(op, a):.3f} / {r.p95(op, a):.3f}':>18}" for a in ARMS)
            print(f"{op:<18}{cells}")
        print("ratios:")
        put_ratio = r.put_seconds["memtrace"] / r.put_seconds["engine"]
        print(f"  adapter / engine, put time per item   {put_ratio:.3f}  (target <= 1.10)")
        for op in OPS:
            ratio = r.p50(op, "memtrace") / r.p50(op, "engine")
            print(f"  adapter / engine, {op + ' p50':<20} {ratio:.3f}  (target <= 1.10)")
        for peer in ("SqliteStore", "SqliteStore-WAL"):
            print(
                f"  put throughput memtrace / {peer:<16} "
                f"{r.put_rate('memtrace') / r.put_rate(peer):.3f}  (target >= 1.0)"
            )
        for peer in ("SqliteStore", "SqliteStore-WAL"):
            print(
                f"  query search p50 memtrace (ranked) / {peer} (unranked) "
                f"{r.p50('query search', 'memtrace') / r.p50('query search', peer):.2f}"
                "  (target <= 2)"
            )
    if locomo:
        print()
        print(
            f"== LoCoMo query-search quality: {locomo['questions']} questions, "
            f"{', '.join(locomo['conversations'])} =="
        )
        for name, value in locomo["recall_at_10"].items():
            print(
                f"  recall@10 {name:<16} {value:.3f}   distinct top-10 lists: "
                f"{locomo['distinct_result_lists'][name]}"
            )
        print(
            "  engine on locomo_recall's own ingest (sessions, turn times): "
            f"{locomo['engine_native_ingest_recall_at_10']:.3f}"
        )
        print(f"  adapter hit sets == engine hit sets: {locomo['adapter_hits_equal_engine_hits']}")
        print(f"  first question: {locomo['first_question']!r}; top-10 keys returned:")
        for name, keys in locomo["first_results"].items():
            print(f"    {name:<16} {' '.join(keys)}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="2k items, fewer samples, one conv")
    ap.add_argument("--sizes", type=int, nargs="+", help="item counts (default 10000 100000)")
    ap.add_argument("--samples", type=int, help="timed calls per operation and arm")
    ap.add_argument(
        "--put-items", type=int, help="timed puts on top of the prefill (default 1000; quick 500)"
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", type=Path, default=locomo_recall.DEFAULT_DATA)
    ap.add_argument("--no-locomo", action="store_true", help="skip the LoCoMo quality part")
    ap.add_argument("--profile", action="store_true", help="only: cProfile of the put path")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([2_000] if args.quick else [10_000, 100_000])
    samples = args.samples or (100 if args.quick else 300)
    conversations = ["conv-30"] if args.quick else None
    put_items = args.put_items or (500 if args.quick else 1_000)

    with tempfile.TemporaryDirectory(prefix="memtrace-lc-bench-") as name:
        tmp = Path(name)
        if args.profile:
            print(profile_puts(tmp, sizes[0] if args.sizes else 10_000, args.seed))
            return 0
        results = []
        for n in sizes:
            _log(f"size {n:,} …")
            results.append(run_size(tmp, n, samples, min(put_items, n), args.seed))
        locomo = None
        if not args.no_locomo:
            _log("LoCoMo …")
            locomo = run_locomo(tmp, args.data.resolve(), conversations)
    if args.json:
        print(
            json.dumps(
                {
                    "machine": _data.machine_info(),
                    "sizes": [r.as_dict() for r in results],
                    "locomo": locomo,
                },
                indent=2,
            )
        )
    else:
        print_report(results, locomo)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
