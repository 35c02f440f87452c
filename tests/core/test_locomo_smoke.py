"""CI smoke test of recall quality: one LoCoMo conversation through the public API.

The conversation is ingested with ``add_memories`` into a SQLite file in ``tmp_path`` and every
scorable question is asked with ``search_memories``; memtrace's recall@10 must stay near its
measured figure (0.852 on conv-30 when this pin was set; :data:`PINNED_RECALL_AT_10` allows
0.015 of noise-free slack — the run is deterministic) and above plain FTS5 BM25's on the same
questions. A ranking change that costs recall fails here; one that gains should raise the pin. The ingest, arms and scoring are the benchmark's own
(``benchmarks/locomo_recall.py``), not a copy.

The data (CC BY-NC, never copied into the repo) is read from ``../shared/data/locomo/`` beside
the checkout; when it is missing the test fails rather than skips, so a CI without the data
is noticed.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"

sys.path.insert(0, str(REPO / "benchmarks"))
# imported by name at run time: benchmarks/ is not a package that mypy knows about
locomo_recall = importlib.import_module("locomo_recall")


#: recall@10 of memtrace on the smoke conversation, less a little slack. The figure is
#: deterministic (same data, same code), so any drop past this is a real regression.
PINNED_RECALL_AT_10 = 0.84


def test_memtrace_recall_at_10_stays_at_its_measured_level(tmp_path: Path) -> None:
    assert DATA.is_file(), (
        f"LoCoMo data not found at {DATA}: the recall smoke test needs locomo-dev.json in "
        "shared/data/locomo/ beside the repository checkout"
    )
    conversations = locomo_recall.load_conversations(DATA)
    # the smallest conversation by number of turns keeps the test fast
    conv = min(conversations, key=lambda c: len(locomo_recall.locomo_memories(c)))
    questions = locomo_recall.locomo_questions(conv)
    assert len(questions) >= 50, f"{conv['sample_id']}: only {len(questions)} questions"

    results = {}
    for arm in (
        locomo_recall.BaselineArm(),
        locomo_recall.MemtraceArm(tmp_path / "locomo.db"),
    ):
        results[arm.name] = locomo_recall.run_arm(arm, [conv], questions, [5, 10])

    baseline = results["baseline"].recall("overall", 10)
    memtrace = results["memtrace"].recall("overall", 10)
    print(
        f"\n{conv['sample_id']} ({len(questions)} questions) recall@10: "
        f"baseline {baseline:.3f}, memtrace {memtrace:.3f}; "
        f"memtrace p50 {results['memtrace'].latency(0.5):.1f} ms"
    )
    assert memtrace > baseline, f"memtrace recall@10 {memtrace:.3f} <= baseline {baseline:.3f}"
    assert memtrace >= PINNED_RECALL_AT_10, (
        f"memtrace recall@10 fell to {memtrace:.3f} (pinned at {PINNED_RECALL_AT_10})"
    )
