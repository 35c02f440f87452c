#!/usr/bin/env python3
"""CrewAI memory benchmark (issue 11): ``MemtraceMemory`` vs CrewAI's stock ``Memory`` over its
default LanceDB storage (and stock ``Memory`` over ``MemtraceStorage``), side by side in one run.

Usage (an environment with crewai, e.g. /work/venvs/crew)::

    python benchmarks/crewai_bench.py            # 1k and 10k records, LoCoMo (5 conversations)
    python benchmarks/crewai_bench.py --quick    # 1k and 2k records, LoCoMo smoke conversation

Arms, each on its own files in a temporary directory (removed at exit), loopback only:

* ``memtrace`` — ``MemtraceMemory("sqlite:///<tmp>/…", llm=ForbiddenLLM(),
  embedder=ForbiddenEmbedder())``: an LLM or embedder call would crash the run.
* ``stock`` — ``Memory(storage="<tmp>/lancedb-…", embedder=HashEmbedder(), llm=FakeLLM())``:
  CrewAI's ``Memory`` on its default LanceDB storage, with the deterministic local embedder of
  tests/integrations/crewai/crew_fakes.py (bag of hashed words, 64 dims) and a fake analysis
  LLM that answers every ``response_model`` call with a valid instance of the requested model
  (``MemoryAnalysis`` with ``suggested_scope="/"``, ``QueryAnalysis``/``ConsolidationPlan`` with
  their defaults, i.e. "insert") and every plain call with a short string; it counts calls.
* ``stock+MemtraceStorage`` — the same stock ``Memory`` over ``MemtraceStorage("sqlite:///…")``
  (memtrace holds the records; stock ``Memory`` still embeds and analyses; ``search`` ranks by
  recency and importance since memtrace keeps no vectors, so its recall is not a similarity
  search — its latency is shown, not its quality).

Every write passes ``scope="/bench"``, ``categories=["fact"]`` and ``importance=0.5``, so stock
``Memory`` takes its fast path (no field-resolution LLM call; a consolidation LLM call is made
only when a stored record is >= 0.85 similar). Facts are 10–24 words of the core benchmark's
Zipf vocabulary plus a unique "ticket T<n>" (so no fact is a duplicate of another).

Figures (arms interleaved call by call, after warm-up):

* ``remember`` p50 / p95 (on ~1k stored records);
* ``remember_many(100)`` throughput: 100 facts + ``drain_writes()``, memories/s;
* ``recall(query, limit=10)`` p50 / p95 on 1k and 10k records; the query is 3 words of a stored
  fact. Stock: ``depth="shallow"`` (one embedding, one vector search) and the default
  ``"deep"`` (RecallFlow: queries < 200 chars skip the LLM query analysis; a low-confidence
  result triggers one LLM "exploration" call). memtrace: ``depth`` is ignored (one path);
* LLM calls (by response model) and embedder calls made by each arm during the whole run.

LoCoMo (../shared/data/locomo/locomo-dev.json, CC BY-NC, read in place): each conversation in
its own file, every turn ``MemtraceMemory.remember("Speaker: text", metadata={"dia_id": …})``
(namespace ``["crewai"]``); every scorable question (categories 1–4) is asked with
``MemtraceMemory.recall(question, limit=10)`` and with the engine's own
``search_memories(namespace_prefix=["crewai"], query=question, limit=10)`` on the same handle;
recall@10 (an evidence turn among the ten) is printed side by side and the result id lists
are compared one by one (mismatches counted). A turn whose text repeats an earlier one is the
engine's duplicate (``remember`` returns the stored record): its ``dia_id`` maps to that
record, in both arms alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (
    ROOT / "benchmarks",
    ROOT / "tests" / "integrations" / "crewai",
    *(ROOT / "packages" / p / "src" for p in ("memtrace-core", "memtrace-crewai")),
):
    sys.path.insert(0, str(_p))

_HOME = tempfile.mkdtemp(prefix="crewai-bench-home-")
os.environ.update(
    {
        "CREWAI_TESTING": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_DISABLE_TRACKING": "true",
        "OTEL_SDK_DISABLED": "true",
        "HOME": _HOME,
        "CREWAI_STORAGE_DIR": os.path.join(_HOME, "storage"),
    }
)

from crew_fakes import ForbiddenEmbedder, ForbiddenLLM, HashEmbedder  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.memory.types import MemoryRecord  # noqa: E402
from crewai.memory.unified_memory import Memory  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

import _data  # noqa: E402
import locomo_recall  # noqa: E402
from memtrace_core import connect  # noqa: E402
from memtrace_crewai import MemtraceMemory, MemtraceStorage  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
SCOPE, CATEGORIES, IMPORTANCE = "/bench", ["fact"], 0.5
ARMS = ("memtrace", "stock", "stock+MemtraceStorage")
#: the required fields of the analysis models that have no default
_REQUIRED: dict[str, dict[str, Any]] = {"MemoryAnalysis": {"suggested_scope": "/"}}


class FakeLLM(BaseLLM):
    """Answers CrewAI memory's analysis calls offline and counts them (by response model;
    ``text`` for plain calls). The counter is shared by the copies stock ``Memory`` makes."""

    model: str = "fake-analysis"
    _counts: Counter[str] = PrivateAttr()

    def __init__(self, counts: Counter[str], **data: Any) -> None:
        data.setdefault("model", "fake-analysis")
        super().__init__(**data)
        self._counts = counts

    def supports_function_calling(self) -> bool:
        return True

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        if response_model is None:
            self._counts["text"] += 1
            return "No further detail."
        self._counts[response_model.__name__] += 1
        return response_model.model_validate(_REQUIRED.get(response_model.__name__, {}))


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fact(n: int) -> str:
    rng = random.Random(n)
    return f"ticket T{n}: {_data.words(rng, rng.randint(10, 24))}."


def query_for(n: int) -> str:
    """Three words of stored fact ``n`` (distinct, not stop words, longest first)."""
    rng = random.Random(10_000_000 + n)
    body = fact(n).split(":", 1)[1].strip(" .").split()
    pool = sorted({w for w in body if len(w) > 3}, key=lambda w: (-len(w), w))[:8]
    return " ".join(rng.sample(pool, min(3, len(pool)))) if pool else body[0]


def ms(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] * 1000


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.llm_forbidden = ForbiddenLLM()
        self.emb_forbidden = ForbiddenEmbedder()
        self.llm_counts = {a: Counter[str]() for a in ARMS[1:]}
        self.embedders = {a: HashEmbedder() for a in ARMS[1:]}
        self.api = connect(f"sqlite:///{tmp / 'memtrace.db'}")
        self.memories: dict[str, Any] = {
            "memtrace": MemtraceMemory(
                self.api,
                llm=self.llm_forbidden,
                embedder=self.emb_forbidden,
            ),
            "stock": Memory(
                storage=str(tmp / "lancedb"),
                embedder=self.embedders["stock"],
                llm=FakeLLM(self.llm_counts["stock"]),
            ),
            "stock+MemtraceStorage": Memory(
                storage=MemtraceStorage(f"sqlite:///{tmp / 'storage.db'}"),
                embedder=self.embedders["stock+MemtraceStorage"],
                llm=FakeLLM(self.llm_counts["stock+MemtraceStorage"]),
            ),
        }
        self.stored = 0  # facts 0 .. stored-1 are in every arm
        self.next_extra = 50_000_000  # facts written by the timed writes

    def close(self) -> None:
        for mem in self.memories.values():
            mem.close()
        self.api.close()

    def prefill(self, target: int) -> None:
        """Bulk-load facts up to ``target`` without the timed memory paths: memtrace by
        ``remember_many`` of 1,000, the stock arms by their storage's ``save`` of 1,000
        ``MemoryRecord``s (scope, categories and importance as every write; embeddings from a
        separate ``HashEmbedder``, so the arms' own embedder counts are the memory path only;
        LanceDB ``optimize()`` at the end, as its background compaction would)."""
        embed = HashEmbedder()
        spent = Counter[str]()
        while self.stored < target:
            n = min(1000, target - self.stored)
            texts = [fact(i) for i in range(self.stored, self.stored + n)]
            vectors = embed(texts)
            start = time.perf_counter()
            mem = self.memories["memtrace"]
            mem.remember_many(texts, scope=SCOPE, categories=CATEGORIES, importance=IMPORTANCE)
            mem.drain_writes()
            spent["memtrace"] += time.perf_counter() - start
            for arm in ARMS[1:]:
                records = [
                    MemoryRecord(
                        content=t,
                        scope=SCOPE,
                        categories=CATEGORIES,
                        importance=IMPORTANCE,
                        embedding=v,
                    )
                    for t, v in zip(texts, vectors, strict=True)
                ]
                start = time.perf_counter()
                self.memories[arm]._storage.save(records)
                spent[arm] += time.perf_counter() - start
            self.stored += n
        start = time.perf_counter()
        self.memories["stock"]._storage.optimize()
        spent["stock"] += time.perf_counter() - start
        _log(f"prefilled to {target:,}: " + ", ".join(f"{a} {t:.1f}s" for a, t in spent.items()))

    def fill(self, target: int) -> None:
        spent = Counter[str]()
        while self.stored < target:
            n = min(100, target - self.stored)
            batch = [fact(i) for i in range(self.stored, self.stored + n)]
            for arm, mem in self.memories.items():
                start = time.perf_counter()
                mem.remember_many(batch, scope=SCOPE, categories=CATEGORIES, importance=IMPORTANCE)
                mem.drain_writes()
                spent[arm] += time.perf_counter() - start
            self.stored += n
        _log(f"filled to {target:,}: " + ", ".join(f"{a} {t:.1f}s" for a, t in spent.items()))

    def count(self, arm: str) -> int:
        mem = self.memories[arm]
        return int(mem.info(SCOPE).record_count)

    def _extra(self, k: int) -> list[str]:
        out = [fact(self.next_extra + i) for i in range(k)]
        self.next_extra += k
        return out

    def time_remember(self, samples: int, warm: int) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {a: [] for a in ARMS}
        for i in range(warm + samples):
            text = self._extra(1)[0]
            for arm, mem in self.memories.items():
                t = timed(
                    lambda mem=mem, text=text: mem.remember(
                        text, scope=SCOPE, categories=CATEGORIES, importance=IMPORTANCE
                    )
                )
                if i >= warm:
                    out[arm].append(t)
        return out

    def time_remember_many(self, rounds: int, warm: int) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {a: [] for a in ARMS}
        for i in range(warm + rounds):
            batch = self._extra(100)
            for arm, mem in self.memories.items():

                def call(mem: Any = mem, batch: list[str] = batch) -> None:
                    mem.remember_many(
                        batch, scope=SCOPE, categories=CATEGORIES, importance=IMPORTANCE
                    )
                    mem.drain_writes()

                t = timed(call)
                if i >= warm:
                    out[arm].append(t)
        return out

    def time_recall(self, samples: int, warm: int, seed: int) -> dict[str, list[float]]:
        rng = random.Random(seed)
        plan: list[tuple[str, str, dict[str, Any]]] = [("memtrace", "memtrace", {})]
        for arm in ARMS[1:]:
            plan += [(f"{arm} shallow", arm, {"depth": "shallow"}), (f"{arm} deep", arm, {})]
        out: dict[str, list[float]] = {label: [] for label in ("engine", *(p[0] for p in plan))}
        for i in range(warm + samples):
            q = query_for(rng.randrange(self.stored))
            t = timed(
                lambda q=q: self.api.search_memories(namespace_prefix=["crewai"], query=q, limit=10)
            )
            if i >= warm:
                out["engine"].append(t)
            for label, arm, kw in plan:
                mem = self.memories[arm]
                t = timed(lambda mem=mem, kw=kw, q=q: mem.recall(q, limit=10, **kw))
                if i >= warm:
                    out[label].append(t)
        return out

    def calls(self) -> dict[str, tuple[Counter[str], int]]:
        out = {"memtrace": (Counter(llm=self.llm_forbidden.calls), self.emb_forbidden.calls)}
        for arm in ARMS[1:]:
            out[arm] = (Counter(self.llm_counts[arm]), self.embedders[arm].calls)
        return out


def _snapshot(b: Bench) -> dict[str, tuple[int, int]]:
    return {a: (sum(c.values()), e) for a, (c, e) in b.calls().items()}


def _delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, str]:
    return {a: f"{after[a][0] - before[a][0]} / {after[a][1] - before[a][1]}" for a in after}


def run_locomo(tmp: Path, data: Path, quick: bool) -> dict[str, Any]:
    convs = locomo_recall.load_conversations(data)
    if quick:
        convs = [min(convs, key=lambda c: len(locomo_recall.locomo_memories(c)))]
    totals = Counter[str]()
    per_conv = []
    for conv in convs:
        conv_id = conv["sample_id"]
        api = connect(f"sqlite:///{tmp / f'locomo-{conv_id}.db'}")
        mem = MemtraceMemory(api, llm=ForbiddenLLM(), embedder=ForbiddenEmbedder())
        try:
            r = compare_locomo(mem, api, conv)
        finally:
            mem.close()
            api.close()
        per_conv.append((conv_id, r))
        totals.update(r)
    return {"conversations": per_conv, "total": totals}


def compare_locomo(mem: MemtraceMemory, api: Any, conv: dict[str, Any]) -> Counter[str]:
    """Ingest ``conv`` through ``mem`` and ask every question both ways (see the docstring)."""
    by_dia: dict[str, str] = {}
    for turn in locomo_recall.locomo_memories(conv):
        dia = turn["metadata"]["dia_id"]
        record = mem.remember(turn["content"], metadata={"dia_id": dia})
        assert record is not None
        by_dia[dia] = record.id
    c = Counter[str](turns=len(by_dia), stored=len(set(by_dia.values())))
    for question in locomo_recall.locomo_questions(conv):
        matches = mem.recall(question.text, limit=10)
        found = api.search_memories(namespace_prefix=["crewai"], query=question.text, limit=10)
        ids = [m.record.id for m in matches]
        engine_ids = [m.key or m.id for m in found.results]
        evidence = {by_dia[d] for d in question.evidence if d in by_dia}
        c["questions"] += 1
        c["hits_recall"] += bool(evidence.intersection(ids))
        c["hits_engine"] += bool(evidence.intersection(engine_ids))
        c["id_list_mismatches"] += ids != engine_ids
        scores = [m.score for m in matches]
        engine_scores = [m.score for m in found.results]
        c["score_mismatches"] += len(scores) != len(engine_scores) or any(
            abs(a - b) > 2e-6 for a, b in zip(scores, engine_scores, strict=False)
        )
    return c


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 2k records, one LoCoMo conv")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--no-locomo", action="store_true")
    args = parser.parse_args()
    sizes = (1_000, 2_000) if args.quick else (1_000, 10_000)
    rem_samples, many_rounds, recall_samples = (40, 3, 30) if args.quick else (200, 10, 100)
    started = time.perf_counter()
    print(
        f"machine: {platform.processor() or platform.machine()} x{os.cpu_count()}, "
        f"load {[round(x, 2) for x in os.getloadavg()]}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="crewai-bench-"))
    try:
        b = Bench(tmp)
        try:
            phase_calls: list[tuple[str, dict[str, str]]] = []
            snap = _snapshot(b)
            b.fill(sizes[0])
            phase_calls.append(
                (f"fill to {sizes[0]:,} (remember_many)", _delta(snap, _snapshot(b)))
            )
            recall: dict[int, dict[str, list[float]]] = {}
            counts: dict[int, dict[str, int]] = {}
            snap = _snapshot(b)
            recall[sizes[0]] = b.time_recall(recall_samples, 5, seed=1)
            counts[sizes[0]] = {a: b.count(a) for a in ARMS}
            phase_calls.append((f"recall on {sizes[0]:,}", _delta(snap, _snapshot(b))))
            _log("recall 1 done")
            snap = _snapshot(b)
            rem = b.time_remember(rem_samples, 10)
            phase_calls.append(("remember", _delta(snap, _snapshot(b))))
            _log("remember done")
            snap = _snapshot(b)
            many = b.time_remember_many(many_rounds, 1)
            phase_calls.append(("remember_many(100)", _delta(snap, _snapshot(b))))
            _log("remember_many done")
            snap = _snapshot(b)
            b.prefill(sizes[1])
            phase_calls.append((f"prefill to {sizes[1]:,} (bulk)", _delta(snap, _snapshot(b))))
            snap = _snapshot(b)
            recall[sizes[1]] = b.time_recall(recall_samples, 5, seed=2)
            counts[sizes[1]] = {a: b.count(a) for a in ARMS}
            phase_calls.append((f"recall on {sizes[1]:,}", _delta(snap, _snapshot(b))))
            _log("recall 2 done")
            calls = b.calls()
        finally:
            b.close()
        locomo = None if args.no_locomo else run_locomo(tmp, args.data, args.quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(_HOME, ignore_errors=True)

    w = 24
    print(f"\n== write path ({rem_samples} remember calls, {many_rounds} x remember_many(100)) ==")
    print(f"{'':30}" + "".join(f"{a:>{w}}" for a in ARMS))
    print(f"{'remember p50 ms':30}" + "".join(f"{ms(rem[a], 0.5):>{w}.2f}" for a in ARMS))
    print(f"{'remember p95 ms':30}" + "".join(f"{ms(rem[a], 0.95):>{w}.2f}" for a in ARMS))
    print(
        f"{'remember_many(100) mem/s':30}"
        + "".join(f"{100 * len(many[a]) / sum(many[a]):>{w},.0f}" for a in ARMS)
    )
    m50, s50 = ms(rem["memtrace"], 0.5), ms(rem["stock"], 0.5)
    mm = 100 * len(many["memtrace"]) / sum(many["memtrace"])
    sm = 100 * len(many["stock"]) / sum(many["stock"])
    print(
        f"ratios: remember p50 stock / memtrace {s50 / m50:.1f}x; "
        f"remember_many memtrace / stock {mm / sm:.1f}x"
    )
    for size in sizes:
        res = recall[size]
        print(
            f"\n== recall(query, limit=10) on {size:,} facts ({recall_samples} queries, "
            f"records per arm {counts[size]}) =="
        )
        print(f"{'':36}{'p50 ms':>10}{'p95 ms':>10}{'vs memtrace p50':>18}")
        base = ms(res["memtrace"], 0.5)
        print(
            "(engine = search_memories(namespace_prefix=['crewai'], query, limit=10) on the "
            "memtrace arm's handle)"
        )
        for label, xs in res.items():
            p50 = ms(xs, 0.5)
            print(f"{label:36}{p50:>10.2f}{ms(xs, 0.95):>10.2f}{p50 / base:>17.1f}x")
    print("\n== LLM / embedder calls per phase (LLM calls / embedder calls) ==")
    print(f"{'':36}" + "".join(f"{a:>{w}}" for a in ARMS))
    for label, d in phase_calls:
        print(f"{label:36}" + "".join(f"{d[a]:>{w}}" for a in ARMS))
    print("whole run:")
    for arm, (llm, emb) in calls.items():
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(llm.items()) if v) or "none"
        print(f"  {arm:24} LLM calls {sum(llm.values()):>6} ({kinds}); embedder calls {emb}")
    assert sum(calls["memtrace"][0].values()) == 0
    assert calls["memtrace"][1] == 0
    if locomo is not None:
        print("\n== LoCoMo recall@10: MemtraceMemory.recall vs engine search_memories ==")
        print(
            f"{'conversation':14}{'questions':>10}{'turns':>7}{'stored':>8}"
            f"{'recall':>9}{'engine':>9}{'id-list mismatches':>20}{'score mismatches':>18}"
        )
        rows = [*locomo["conversations"], ("all", locomo["total"])]
        for conv_id, c in rows:
            q = c["questions"]
            print(
                f"{conv_id:14}{q:>10}{c['turns']:>7}{c['stored']:>8}"
                f"{c['hits_recall'] / q:>9.3f}{c['hits_engine'] / q:>9.3f}"
                f"{c['id_list_mismatches']:>20}{c['score_mismatches']:>18}"
            )
    print(f"\nwall time {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
