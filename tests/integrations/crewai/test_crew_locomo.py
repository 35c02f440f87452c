"""No quality lost in the adapter: the LoCoMo smoke conversation recalled through
``MemtraceMemory.recall`` gives exactly what the engine's own ``search_memories`` gives over the
same memories (namespace prefix ``["crewai"]``) — the same ranked ids, the same scores, so the
same recall@10 — on both transports.

The conversation is the smallest of ``locomo-dev.json`` by number of turns (as
tests/integrations/langchain/test_lc_locomo.py); the ingest and the questions are
``benchmarks/locomo.py``'s own. Each turn is ``remember("Speaker: text",
metadata={"dia_id": …})`` — no scope, so the namespace is ``["crewai"]``. A turn whose text
repeats an earlier one is the engine's duplicate (``remember`` returns the stored record) and
its ``dia_id`` maps to that record. The data (CC BY-NC) is read from ``../shared/data/locomo/``
beside the checkout; when it is missing the test fails rather than skips.
"""

from __future__ import annotations

from typing import Any

import pytest
from crew_fakes import ForbiddenEmbedder, ForbiddenLLM

from memtrace_core import connect
from memtrace_crewai import MemtraceMemory

#: What benchmarks/crewai_bench.py measured through MemtraceMemory on this conversation
#: (0.704, the same as the LangGraph store path: no session or turn time on the write); the
#: floor sits well above an unranked search (0.123).
RECALL_FLOOR = 0.65


def test_memory_recall_equals_the_engine_search(
    handle_url: tuple[str, Any], locomo: Any, locomo_conversation: dict[str, Any]
) -> None:
    url, options = handle_url
    conv = locomo_conversation
    questions = locomo.locomo_questions(conv)
    assert len(questions) >= 50, f"{conv['sample_id']}: only {len(questions)} questions"

    memory = MemtraceMemory(url, llm=ForbiddenLLM(), embedder=ForbiddenEmbedder(), **options)
    engine = connect(url, **options)
    try:
        by_dia: dict[str, str] = {}
        for turn in locomo.locomo_memories(conv):
            dia = turn["metadata"]["dia_id"]
            record = memory.remember(turn["content"], metadata={"dia_id": dia})
            assert record is not None
            by_dia[dia] = record.id
        stored = set(by_dia.values())
        assert len(memory.list_records(limit=1000)) == len(stored)

        recall_hits: list[frozenset[str]] = []
        engine_hits: list[frozenset[str]] = []
        for question in questions:
            matches = memory.recall(question.text, limit=10)
            found = engine.search_memories(
                namespace_prefix=["crewai"], query=question.text, limit=10
            )
            assert len(matches) == 10
            # the same ranked list, record for record
            assert [m.record.id for m in matches] == [m.key for m in found.results]
            # scores equal up to the recency prior's drift between the two calls
            assert [m.score for m in matches] == pytest.approx(
                [m.score for m in found.results], abs=2e-6
            )
            evidence = {by_dia[d] for d in question.evidence if d in by_dia}
            recall_hits.append(frozenset(evidence.intersection(m.record.id for m in matches)))
            engine_hits.append(frozenset(evidence.intersection(m.key for m in found.results)))
    finally:
        memory.close()
        engine.close()

    assert recall_hits == engine_hits
    recall = sum(bool(h) for h in recall_hits) / len(questions)
    engine_recall = sum(bool(h) for h in engine_hits) / len(questions)
    print(f"\n{conv['sample_id']} ({len(questions)} questions) recall@10: {recall:.3f}")
    assert recall == engine_recall
    assert recall >= RECALL_FLOOR, f"recall@10 through MemtraceMemory {recall:.3f} < {RECALL_FLOOR}"
