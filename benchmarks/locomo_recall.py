#!/usr/bin/env python3
"""LoCoMo evidence-recall benchmark: plain SQLite FTS5 BM25 versus memtrace's keyword ranking.

Every LoCoMo turn becomes one memory (see :func:`locomo_memories`); every question of
categories 1–4 is used verbatim as a search query restricted to its conversation, and a
question counts as recalled at k when any of its evidence turns (``dia_id``) is among the
top k results. No LLM, no embeddings: the figures are reproducible.

Arms:

* ``baseline`` — SQLite FTS5 ``tokenize='porter'`` over the turns (content with the speaker
  prefix, one table for all conversations, filtered to the question's one), query = question words minus
  :data:`memtrace_core.text.STOP_WORDS`, each quoted, OR-ed, ranked by ``bm25()``.
* ``memtrace`` — :func:`memtrace_core.ranking.search`: plan the query, stage 1 in an
  FTS5 index of exactly the shape the store uses (``memories_fts(content, agent_id,
  event_type, tags)``, external content, ``porter unicode61 remove_diacritics 2``, column
  weights from :class:`~memtrace_core.ranking.RankingConfig`), optional pseudo-relevance
  feedback, stage-2 rerank in Python. ``now`` is the real current time.
* ablations — the memtrace arm with one technique switched off at a time.

Timestamps: a turn's time is its session's date-time (e.g. "1:56 pm on 8 May, 2023", UTC) plus
its index within the session × 1 minute, so turns are ordered and a session spans minutes.

Usage::

    .venv/bin/python benchmarks/locomo_recall.py                 # full table + ablation
    .venv/bin/python benchmarks/locomo_recall.py --conversations conv-26 --k 5 10 --json

The data is CC BY-NC 4.0: it is read from ``--data`` and never copied anywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

try:
    from memtrace_core import ranking, text
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages/memtrace-core/src"))
    from memtrace_core import ranking, text

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "../shared/data/locomo/locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
TURN_OFFSET = timedelta(minutes=1)
"""Time between consecutive turns of one session (turn i is at session time + i minutes)."""
TUNING_SET = ("conv-26", "conv-30")
"""Conversations the numeric defaults were tuned on; the others are reported as held-out."""


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
    """One memory per turn, shaped like the public ``add_memories`` input.

    ``content`` is ``"Speaker: text"`` plus ``" [image: <blip_caption>]"`` when the turn
    shares an image; ``agent_id`` is the conversation id, ``session_id`` the LoCoMo session,
    ``time`` the session's date-time plus the turn index × :data:`TURN_OFFSET`.
    """
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
                    "agent_id": conv["sample_id"],
                    "session_id": f"session_{number}",
                    "content": content,
                    "time": start + index * TURN_OFFSET,
                    "event_type": "message",
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


STAGE1_SCHEMA = """
CREATE TABLE memories (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    agent_id TEXT NOT NULL,
    session_id TEXT,
    content TEXT NOT NULL,
    event_type TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    time REAL NOT NULL,
    importance REAL,
    dia_id TEXT
);
CREATE INDEX memories_agent_time ON memories(agent_id, time);
CREATE VIRTUAL TABLE memories_fts USING fts5(
    content, agent_id, event_type, tags,
    content='memories', content_rowid='rowid',
    tokenize='porter unicode61 remove_diacritics 2'
);
"""

STAGE1_SQL = """
SELECT m.id, m.content, m.agent_id, m.session_id, m.event_type, m.tags, m.time,
       m.importance, bm25(memories_fts, ?, ?, ?, ?) AS score
FROM memories_fts JOIN memories AS m ON m.rowid = memories_fts.rowid
WHERE memories_fts MATCH ? AND m.agent_id = ? {window}
ORDER BY score
LIMIT ?
"""


class MemtraceArm:
    """memtrace's keyword search (stage 1 in FTS5 exactly as the store does it, stage 2 here).

    To benchmark the real engine later, replace :meth:`index` with ``connect("sqlite:///…")``
    + ``add_memories(locomo_memories(conv))`` and :meth:`search` with
    ``search_memories(query=…, agent_id=…, limit=k)`` mapped to ``metadata["dia_id"]``.
    """

    def __init__(
        self,
        config: ranking.RankingConfig | None = None,
        name: str = "memtrace",
        corpus_stats: bool = False,
        now: datetime | None = None,
    ) -> None:
        self.name = name
        self.config = config or ranking.RankingConfig()
        self.corpus_stats = corpus_stats
        self.fixed_now = now
        self.db = sqlite3.connect(":memory:")
        self.db.executescript(STAGE1_SCHEMA)
        self.dia_ids: dict[str, str] = {}
        self.stats: dict[str, ranking.CorpusStats] = {}

    def index(self, conversations: Sequence[dict[str, Any]]) -> None:
        rows = []
        for conv in conversations:
            memories = locomo_memories(conv)
            for number, memory in enumerate(memories):
                memory_id = f"{memory['agent_id']}/{number}"
                self.dia_ids[memory_id] = memory["metadata"]["dia_id"]
                rows.append(
                    (
                        memory_id,
                        memory["agent_id"],
                        memory["session_id"],
                        memory["content"],
                        memory["event_type"],
                        "",
                        memory["time"].timestamp(),
                        None,
                        memory["metadata"]["dia_id"],
                    )
                )
            if self.corpus_stats:
                self.stats[conv["sample_id"]] = _corpus_stats(memories, self.config)
        self.db.executemany(
            "INSERT INTO memories(id, agent_id, session_id, content, event_type, tags, time,"
            " importance, dia_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self.db.execute("INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')")

    def now(self) -> datetime:
        """The real current time (unless an ablation pins it)."""
        return self.fixed_now or datetime.now(UTC)

    def fetch(self, plan: ranking.QueryPlan, agent_id: str) -> list[ranking.Candidate]:
        """Stage 1, as the SQLite store runs it."""
        match = ranking.fts5_match_expression(plan)
        if not match:
            return []
        cfg = self.config
        params: list[Any] = [
            cfg.weight_content,
            cfg.weight_agent,
            cfg.weight_event_type,
            cfg.weight_tags,
        ]
        params += [match, agent_id]
        window = ""
        if plan.filter_window is not None:
            window = "AND m.time >= ? AND m.time < ?"
            params += [plan.filter_window[0].timestamp(), plan.filter_window[1].timestamp()]
        params.append(cfg.candidates)
        rows = self.db.execute(STAGE1_SQL.format(window=window), params)
        return [
            ranking.Candidate(
                id=row[0],
                content=row[1],
                agent_id=row[2],
                session_id=row[3],
                event_type=row[4],
                tags=tuple(row[5].split()) if row[5] else (),
                time=datetime.fromtimestamp(row[6], UTC),
                importance=row[7],
                bm25=row[8],
            )
            for row in rows
        ]

    def search(self, conversation: str, query: str, k: int) -> list[str]:
        ranked = ranking.search(
            query,
            lambda plan: self.fetch(plan, conversation),
            self.now(),
            self.config,
            self.stats.get(conversation),
            limit=k,
        )
        return [self.dia_ids[candidate.id] for candidate, _ in ranked]


def _corpus_stats(
    memories: Sequence[dict[str, Any]], config: ranking.RankingConfig
) -> ranking.CorpusStats:
    """What a store could supply: per-agent document frequencies and average length."""
    doc_freq: Counter[str] = Counter()
    total = 0.0
    for memory in memories:
        content = text.analyze(memory["content"])
        agent = text.analyze(memory["agent_id"])
        event = text.analyze(memory["event_type"])
        doc_freq.update(set(content) | set(agent) | set(event))
        total += (
            config.weight_content * len(content)
            + config.weight_agent * len(agent)
            + config.weight_event_type * len(event)
        )
    return ranking.CorpusStats(len(memories), total / max(len(memories), 1), dict(doc_freq))


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


@dataclass(frozen=True)
class Variant:
    """One ablation run: the default config with one thing changed."""

    label: str
    config: ranking.RankingConfig
    corpus_stats: bool = False
    stage1_only: bool = False
    now: datetime | None = None


def ablations(base: ranking.RankingConfig, last_time: datetime) -> list[Variant]:
    """The default config with one technique switched off (or on) at a time."""
    off = dataclasses.replace
    return [
        Variant("- stage 2 (FTS5 bm25 order)", base, stage1_only=True),
        Variant("- neighbour context", off(base, context_weight=0.0)),
        Variant("- pseudo-relevance feedback", off(base, prf=False)),
        Variant("- coverage boost", off(base, coverage_weight=0.0)),
        Variant("- proximity boost", off(base, proximity_weight=0.0)),
        Variant("- irregular word forms", off(base, word_variants=False)),
        Variant("- time expressions", off(base, time_expressions=False)),
        Variant("- recency prior", off(base, recency_weight=0.0)),
        Variant("- importance prior", off(base, importance_weight=0.0)),
        Variant("  BM25 b=0.75 (textbook)", off(base, b=0.75)),
        Variant("+ time window as hard filter", off(base, time_filter=True)),
        Variant("+ corpus stats from the store", base, corpus_stats=True),
        Variant(
            "  now = last session + 1 day",
            base,
            now=last_time + timedelta(days=1),
        ),
        Variant(
            "  ditto, recency weight 0.2",
            off(base, recency_weight=0.2),
            now=last_time + timedelta(days=1),
        ),
    ]


class _Stage1OnlyArm(MemtraceArm):
    """Stage 1 order only (what the store's native bm25 alone would give)."""

    def search(self, conversation: str, query: str, k: int) -> list[str]:
        plan = ranking.plan_query(query, self.now(), self.config)
        return [self.dia_ids[c.id] for c in self.fetch(plan, conversation)[:k]]


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="path to locomo-dev.json")
    parser.add_argument("--conversations", nargs="+", metavar="ID", help="subset, e.g. conv-26")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10], help="cut-offs (default 5 10)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--no-ablation", action="store_true", help="skip the ablation runs")
    parser.add_argument("--corpus-stats", action="store_true", help="rerank with corpus idf")
    args = parser.parse_args(argv)

    conversations = load_conversations(args.data.resolve())
    if args.conversations:
        wanted = set(args.conversations)
        conversations = [c for c in conversations if c["sample_id"] in wanted]
        if not conversations:
            parser.error(f"no such conversation(s): {', '.join(sorted(wanted))}")
    questions = [q for conv in conversations for q in locomo_questions(conv)]
    ks = sorted(set(args.k))

    def run(arm: BaselineArm | MemtraceArm) -> Result:
        arm.index(conversations)
        return evaluate(arm, questions, ks)

    default = ranking.RankingConfig()
    main_results = [
        run(BaselineArm()),
        run(MemtraceArm(default, corpus_stats=args.corpus_stats)),
    ]
    ablation_results: list[Result] = []
    if not args.no_ablation:
        last_time = max(m["time"] for conv in conversations for m in locomo_memories(conv))
        for variant in ablations(default, last_time):
            arm_type = _Stage1OnlyArm if variant.stage1_only else MemtraceArm
            arm = arm_type(
                variant.config,
                name=variant.label,
                corpus_stats=variant.corpus_stats or args.corpus_stats,
                now=variant.now,
            )
            ablation_results.append(run(arm))

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
        for result in main_results:
            hits = {k: sum(result.hits[c][k] for c in held_out) for k in ks}
            total = sum(result.counts[c] for c in held_out)
            print(
                f"  {result.arm:<10} "
                + "  ".join(f"@{k} {hits[k] / total:.3f}" for k in ks)
                + f"  (n={total})"
            )
    if ablation_results:
        print()
        print("Ablation (memtrace default with one technique changed), overall:")
        reference = main_results[1]
        for result in [reference, *ablation_results]:
            deltas = "  ".join(
                f"@{k} {result.recall('overall', k):.3f} ({result.recall('overall', k) - reference.recall('overall', k):+.3f})"
                for k in ks
            )
            print(f"  {result.arm:<32} {deltas}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
