#!/usr/bin/env python3
"""LoCoMo evidence-recall benchmark: plain SQLite FTS5 BM25 versus memtrace's keyword search.

Every LoCoMo turn becomes one memory (see :func:`locomo_memories`); every question of
categories 1–4 is used verbatim as a search query restricted to its conversation, and a
question counts as recalled at k when any of its evidence turns (``dia_id``) is among the
top k results. No LLM, no embeddings: the figures are reproducible.

Arms:

* ``baseline`` — SQLite FTS5 ``tokenize='porter'`` over the turns (content with the speaker
  prefix, one table for all conversations, filtered to the question's one), query = question
  words minus :data:`memtrace_core.text.STOP_WORDS`, each quoted, OR-ed, ranked by ``bm25()``.
* ``memtrace`` — the public API only: ``memtrace_core.connect("sqlite:///<tmp>/locomo.db")``,
  the turns written with ``add_memories`` in batches, every question asked with
  ``search_memories(query=question, agent_id=conversation, limit=k)``; the ``dia_id`` is read
  back from each result's metadata. The engine runs its whole keyword search (plan → store
  stage 1 → rerank → pseudo-relevance feedback → stage 1 again → merge → rerank) with the
  real current time as ``now``.
* ablations — the memtrace arm with one technique switched off, i.e. the same database file
  opened again with ``connect(..., config=EngineConfig(ranking=replace(RankingConfig(), …)))``.

Ingest: each conversation is its own agent scope (``agent_id`` = conversation id, e.g.
``conv-26``); each turn is one memory with content ``"Speaker: text"`` (plus the shared
image's caption as text), ``session_id`` = ``<conversation>-s<session number>`` (e.g.
``conv-26-s3``, valid under the id pattern), ``time`` = the session's date-time (e.g.
"1:56 pm on 8 May, 2023", taken as UTC) + the turn's index × 1 minute, and metadata
``{"dia_id": ...}``.

Dedup: LoCoMo has genuinely repeated turns (the same speaker saying the same short thing in
different sessions, e.g. "Thanks!"), which the default content-based dedup key would drop as
duplicates of each other (the dedup window is measured on ingest time, so all of LoCoMo falls
in one window). Each memory therefore gets an explicit ``dedup_key`` of
``locomo:<conversation>:<dia_id>``: dedup stays enabled exactly as a user gets it (re-running
the ingest into the same file is a no-op) but only a turn can be a duplicate of itself. The
ingest asserts that no memory was reported as a duplicate.

Latency is measured per query around the blocking ``search_memories`` call (so it includes the
blocking wrapper's event-loop hop and building the response models), after one warm-up query
per arm.

Usage::

    .venv/bin/python benchmarks/locomo_recall.py                 # full table + ablation
    .venv/bin/python benchmarks/locomo_recall.py --conversations conv-26 --k 5 10 --json

The data is CC BY-NC 4.0: it is read from ``--data`` and never copied anywhere (the SQLite
files live in a temporary directory that is removed at exit).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

try:
    import memtrace_core
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages/memtrace-core/src"))
    import memtrace_core

from memtrace_core import EngineConfig, PluginRegistry, text
from memtrace_core.ranking import RankingConfig

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/locomo/locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
TURN_OFFSET = timedelta(minutes=1)
"""Time between consecutive turns of one session (turn i is at session time + i minutes)."""
TUNING_SET = ("conv-26", "conv-30")
"""Conversations the numeric defaults were tuned on; the others are reported as held-out."""
BATCH_SIZE = 500
"""Memories per ``add_memories`` call (the engine's default ``max_batch`` is 1000)."""


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def load_conversations(path: Path) -> list[dict[str, Any]]:
    """Load the LoCoMo JSON file (a list of conversations)."""
    with path.open(encoding="utf-8") as handle:
        data: list[dict[str, Any]] = json.load(handle)
    return data


def parse_session_time(value: str) -> datetime:
    """Parse a LoCoMo session date-time such as ``"1:56 pm on 8 May, 2023"`` (taken as UTC)."""
    parsed = datetime.strptime(" ".join(value.split()), "%I:%M %p on %d %B, %Y")
    return parsed.replace(tzinfo=UTC)


def locomo_memories(conv: dict[str, Any]) -> list[dict[str, Any]]:
    """One memory per turn, in the public ``add_memories`` input shape.

    ``content`` is ``"Speaker: text"`` plus ``" [image: <blip_caption>]"`` when the turn
    shares an image; ``agent_id`` is the conversation id, ``session_id``
    ``<conversation>-s<n>``, ``time`` the session's date-time plus the turn index ×
    :data:`TURN_OFFSET`, ``dedup_key`` unique per turn (see the module docstring) and
    ``metadata`` ``{"dia_id": ...}``.
    """
    conv_id = conv["sample_id"]
    dialogue = conv["conversation"]
    sessions = sorted(
        (int(match.group(1)), key)
        for key in dialogue
        if (match := re.fullmatch(r"session_(\d+)", key)) and isinstance(dialogue[key], list)
    )
    memories: list[dict[str, Any]] = []
    for number, key in sessions:
        start = parse_session_time(dialogue[f"{key}_date_time"])
        for index, turn in enumerate(dialogue[key]):
            content = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                content += f" [image: {turn['blip_caption']}]"
            memories.append(
                {
                    "agent_id": conv_id,
                    "session_id": f"{conv_id}-s{number}",
                    "content": content,
                    "time": start + index * TURN_OFFSET,
                    "event_type": "message",
                    "dedup_key": f"locomo:{conv_id}:{turn['dia_id']}",
                    "metadata": {"dia_id": turn["dia_id"]},
                }
            )
    return memories


@dataclass(frozen=True)
class Question:
    conversation: str
    text: str
    category: int
    evidence: frozenset[str]


def _evidence_ids(raw: Iterable[str]) -> frozenset[str]:
    """Normalise evidence ids: some entries hold two ids ("D8:6; D9:17") or a stray colon."""
    ids: set[str] = set()
    for item in raw:
        for part in re.split(r"[;,\s]+", item):
            part = re.sub(r"^D:", "D", part.strip())
            if re.fullmatch(r"D\d+:\d+", part):
                ids.add(part)
    return frozenset(ids)


def locomo_questions(conv: dict[str, Any]) -> list[Question]:
    """The conversation's questions of categories 1–4 that list evidence.

    Category 5 (adversarial) has no evidence, and two questions of conv-26 list none either;
    those cannot be scored and are skipped (760 questions remain in locomo-dev.json).
    """
    questions = []
    for qa in conv["qa"]:
        evidence = _evidence_ids(qa["evidence"])
        if qa["category"] in CATEGORIES and evidence:
            questions.append(Question(conv["sample_id"], qa["question"], qa["category"], evidence))
    return questions


# ------------------------------------------------------------------------------------------
# Arms
# ------------------------------------------------------------------------------------------


class Arm(Protocol):
    name: str

    def index(self, conversations: Sequence[dict[str, Any]]) -> None: ...

    def search(self, conversation: str, query: str, k: int) -> list[str]:
        """Return the ``dia_id``s of the top ``k`` memories for ``query``."""
        ...

    def close(self) -> None: ...


class BaselineArm:
    """Plain FTS5 BM25: ``tokenize='porter'``, quoted OR of non-stop-words, ``bm25()`` order.

    One table holds every conversation (like the memtrace arm's store), each query is
    restricted to its conversation; the query words are ``\\w+`` runs of the lower-cased
    question minus :data:`memtrace_core.text.STOP_WORDS`.
    """

    name = "baseline"

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute(
            "CREATE VIRTUAL TABLE turns USING fts5("
            "content, conversation UNINDEXED, dia_id UNINDEXED, tokenize='porter')"
        )

    def index(self, conversations: Sequence[dict[str, Any]]) -> None:
        for conv in conversations:
            self.db.executemany(
                "INSERT INTO turns(content, conversation, dia_id) VALUES (?, ?, ?)",
                [
                    (m["content"], m["agent_id"], m["metadata"]["dia_id"])
                    for m in locomo_memories(conv)
                ],
            )

    def search(self, conversation: str, query: str, k: int) -> list[str]:
        words = [
            w for w in dict.fromkeys(re.findall(r"\w+", query.lower())) if w not in text.STOP_WORDS
        ]
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        rows = self.db.execute(
            "SELECT dia_id FROM turns WHERE turns MATCH ? AND conversation = ?"
            " ORDER BY bm25(turns) LIMIT ?",
            (match, conversation, k),
        )
        return [row[0] for row in rows]

    def close(self) -> None:
        self.db.close()


def ingest(mt: Any, conversations: Sequence[dict[str, Any]], batch_size: int = BATCH_SIZE) -> int:
    """Write every turn through ``mt.add_memories`` in batches; return the number written.

    Raises ``RuntimeError`` if the engine reports any duplicate (each turn has its own dedup
    key, so a duplicate would mean a turn was silently dropped).
    """
    written = 0
    for conv in conversations:
        memories = locomo_memories(conv)
        for start in range(0, len(memories), batch_size):
            result = mt.add_memories(memories[start : start + batch_size])
            if result.duplicates:
                raise RuntimeError(f"{conv['sample_id']}: {result.duplicates} turns deduplicated")
            written += result.count
    return written


class MemtraceArm:
    """memtrace's keyword search through the public blocking API (``connect`` + ``add_memories``
    + ``search_memories``) on a SQLite file.

    Several arms may share one database file: only the arm created with ``ingest=True``
    writes the turns (:meth:`index`), the others just open the file with their own
    :class:`~memtrace_core.ranking.RankingConfig`. Built-in plugins only, so a locally
    installed plugin cannot change what is measured.
    """

    def __init__(
        self,
        db_path: Path,
        config: RankingConfig | None = None,
        name: str = "memtrace",
        ingest: bool = True,
        url: str | None = None,
    ) -> None:
        self.name = name
        self.ingest = ingest
        self.mt = memtrace_core.connect(
            url or f"sqlite:///{db_path}",
            config=EngineConfig(ranking=config or RankingConfig()),
            plugins=PluginRegistry(load_entry_points=False),
        )

    def index(self, conversations: Sequence[dict[str, Any]]) -> None:
        if self.ingest:
            ingest(self.mt, conversations)

    def search(self, conversation: str, query: str, k: int) -> list[str]:
        found = self.mt.search_memories(query=query, agent_id=conversation, limit=k)
        return [memory.metadata["dia_id"] for memory in found.results]

    def close(self) -> None:
        self.mt.close()


# ------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------


@dataclass
class Result:
    arm: str
    ks: tuple[int, ...]
    hits: dict[str, dict[int, int]] = field(default_factory=dict)  # group -> k -> hits
    counts: Counter[str] = field(default_factory=Counter)  # group -> questions
    latencies_ms: list[float] = field(default_factory=list)

    def recall(self, group: str, k: int) -> float:
        return self.hits[group][k] / self.counts[group] if self.counts[group] else 0.0

    def pooled(self, groups: Sequence[str], k: int) -> float:
        """Recall@k over the union of ``groups`` (e.g. the held-out conversations)."""
        total = sum(self.counts[g] for g in groups)
        return sum(self.hits[g][k] for g in groups if g in self.hits) / total if total else 0.0

    def latency(self, quantile: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    def as_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "questions": dict(self.counts),
            "recall": {
                group: {f"@{k}": round(self.recall(group, k), 4) for k in self.ks}
                for group in self.counts
            },
            "latency_ms": {
                "p50": round(self.latency(0.5), 3),
                "p95": round(self.latency(0.95), 3),
                "mean": round(statistics.fmean(self.latencies_ms), 3) if self.latencies_ms else 0.0,
            },
        }


def evaluate(arm: Arm, questions: Sequence[Question], ks: Sequence[int]) -> Result:
    """Recall@k per category, per conversation and overall, plus per-query latency."""
    result = Result(arm.name, tuple(ks))
    depth = max(ks)
    if questions:  # warm-up (first-query costs: statement cache, imports, stemmer tables)
        arm.search(questions[0].conversation, questions[0].text, depth)
    for question in questions:
        started = time.perf_counter()
        found = arm.search(question.conversation, question.text, depth)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        groups = ("overall", CATEGORIES[question.category], question.conversation)
        for group in groups:
            result.counts[group] += 1
            per_k = result.hits.setdefault(group, dict.fromkeys(ks, 0))
            for k in ks:
                if question.evidence.intersection(found[:k]):
                    per_k[k] += 1
    return result


def ablations(base: RankingConfig) -> list[tuple[str, RankingConfig]]:
    """The default config with one technique switched off (or changed) at a time."""
    off = dataclasses.replace
    return [
        ("- neighbour context", off(base, context_weight=0.0)),
        ("- pseudo-relevance feedback", off(base, prf=False)),
        ("- coverage boost", off(base, coverage_weight=0.0)),
        ("- proximity boost", off(base, proximity_weight=0.0)),
        ("- irregular word forms", off(base, word_variants=False)),
        ("- time expressions", off(base, time_expressions=False)),
        ("- recency prior", off(base, recency_weight=0.0)),
        ("- importance prior", off(base, importance_weight=0.0)),
        ("  BM25 b=0.75 (textbook)", off(base, b=0.75)),
        ("  stage-1 pool 100", off(base, candidates=100)),
        ("+ time window as hard filter", off(base, time_filter=True)),
    ]


# ------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------


def _widths(result: Result, groups: Sequence[str], counts: Counter[str]) -> list[int]:
    return [max(len(result.ks) * 6 - 1, len(f"{g} (n={counts[g]})")) for g in groups]


def _row(label: str, result: Result, groups: Sequence[str], widths: Sequence[int]) -> str:
    cells = [f"{label:<12}"]
    for group, width in zip(groups, widths, strict=True):
        cells.append(f"{' '.join(f'{result.recall(group, k):.3f}' for k in result.ks):<{width}}")
    cells.append(f"{result.latency(0.5):6.2f} {result.latency(0.95):6.2f}")
    return " | ".join(cells)


def print_table(results: Sequence[Result], groups: Sequence[str], counts: Counter[str]) -> None:
    """One row per arm: recall@k per group, then query latency p50/p95 (ms)."""
    widths = _widths(results[0], groups, counts)
    header = [f"{'@' + '/@'.join(map(str, results[0].ks)):<12}"]
    header += [f"{f'{g} (n={counts[g]})':<{w}}" for g, w in zip(groups, widths, strict=True)]
    header.append("p50 ms p95 ms")
    print(" | ".join(header))
    print("-" * len(" | ".join(header)))
    for result in results:
        print(_row(result.arm, result, groups, widths))


def run_arm(
    arm: Arm,
    conversations: Sequence[dict[str, Any]],
    questions: Sequence[Question],
    ks: Sequence[int],
) -> Result:
    """Index (if the arm writes), evaluate, close."""
    try:
        arm.index(conversations)
        return evaluate(arm, questions, ks)
    finally:
        arm.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="path to locomo-dev.json")
    parser.add_argument("--conversations", nargs="+", metavar="ID", help="subset, e.g. conv-26")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10], help="cut-offs (default 5 10)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--no-ablation", action="store_true", help="skip the ablation runs")
    parser.add_argument(
        "--url",
        help="store URL of an empty store for the memtrace arms, e.g. postgresql://… "
        "(default: a SQLite file in a temporary directory)",
    )
    args = parser.parse_args(argv)

    conversations = load_conversations(args.data.resolve())
    if args.conversations:
        wanted = set(args.conversations)
        conversations = [c for c in conversations if c["sample_id"] in wanted]
        if not conversations:
            parser.error(f"no such conversation(s): {', '.join(sorted(wanted))}")
    questions = [q for conv in conversations for q in locomo_questions(conv)]
    ks = sorted(set(args.k))
    default = RankingConfig()

    with tempfile.TemporaryDirectory(prefix="memtrace-locomo-") as tmp:
        db_path = Path(tmp) / "locomo.db"
        main_results = [
            run_arm(BaselineArm(), conversations, questions, ks),
            run_arm(MemtraceArm(db_path, default, url=args.url), conversations, questions, ks),
        ]
        ablation_results = [
            run_arm(
                MemtraceArm(db_path, config, name=label, ingest=False, url=args.url),
                (),
                questions,
                ks,
            )
            for label, config in ([] if args.no_ablation else ablations(default))
        ]

    conv_ids = [c["sample_id"] for c in conversations]
    held_out = [c for c in conv_ids if c not in TUNING_SET]
    if args.json:
        print(
            json.dumps(
                {
                    "conversations": conv_ids,
                    "tuning_set": [c for c in conv_ids if c in TUNING_SET],
                    "held_out": held_out,
                    "config": dataclasses.asdict(default),
                    "results": [r.as_dict() for r in main_results],
                    "held_out_recall": {
                        r.arm: {f"@{k}": round(r.pooled(held_out, k), 4) for k in ks}
                        for r in main_results
                    },
                    "ablation": [r.as_dict() for r in ablation_results],
                },
                indent=2,
            )
        )
        return 0

    counts = main_results[0].counts
    print(
        f"LoCoMo evidence recall — {len(questions)} questions, conversations: {', '.join(conv_ids)}"
    )
    print()
    print_table(main_results, ["overall", *CATEGORIES.values()], counts)
    print()
    print("Per conversation (tuning set: " + ", ".join(TUNING_SET) + "; the others are held out):")
    print_table(main_results, conv_ids, counts)
    if held_out and len(held_out) < len(conv_ids):
        print()
        print("Held-out conversations pooled (" + ", ".join(held_out) + "):")
        total = sum(counts[c] for c in held_out)
        for result in main_results:
            cells = "  ".join(f"@{k} {result.pooled(held_out, k):.3f}" for k in ks)
            print(f"  {result.arm:<10} {cells}  (n={total})")
    if ablation_results:
        print()
        print("Ablation (memtrace default with one technique changed), overall, p50/p95 ms:")
        reference = main_results[1]
        for result in [reference, *ablation_results]:
            deltas = "  ".join(
                f"@{k} {result.recall('overall', k):.3f}"
                f" ({result.recall('overall', k) - reference.recall('overall', k):+.3f})"
                for k in ks
            )
            print(
                f"  {result.arm:<30} {deltas}"
                f"  {result.latency(0.5):6.2f} {result.latency(0.95):6.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
