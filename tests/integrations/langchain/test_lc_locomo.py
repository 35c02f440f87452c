"""No quality lost in the adapter: the LoCoMo smoke conversation searched through
``MemtraceStore.search(query=…)`` finds exactly what the engine's own ``search_memories``
finds over the same memories — the same evidence hits per question, so the same recall@10.

The conversation is the one ``tests/core/test_locomo_smoke.py`` uses (the smallest of
``locomo-dev.json`` by number of turns); the ingest and the questions are
``benchmarks/locomo.py``'s own. Each turn is put as an item
``("locomo", <conversation>)`` / ``<dia_id>`` with value ``{"content": "Speaker: text",
"dia_id": …}``. The data (CC BY-NC) is read from ``../shared/data/locomo/`` beside the
checkout; when it is missing the test fails rather than skips.
"""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.store.base import PutOp

from memtrace_core.api import MemoryAPI
from memtrace_langchain import MemtraceStore

#: A store item carries no session and no turn time (the engine's native LoCoMo ingest, with
#: both, gets 0.852 on this conversation); the adapter path measured 0.704. The floor sits
#: well above what an unranked store returns (0.123: the same ten turns for every question).
RECALL_FLOOR = 0.65


def test_store_query_search_recall_equals_the_engine_search(
    handle: MemoryAPI, locomo: Any, locomo_conversation: dict[str, Any]
) -> None:
    conv = locomo_conversation
    conv_id = conv["sample_id"]
    namespace = ("locomo", conv_id)
    questions = locomo.locomo_questions(conv)
    assert len(questions) >= 50, f"{conv_id}: only {len(questions)} questions"

    store = MemtraceStore(handle)
    turns = locomo.locomo_memories(conv)
    puts = [
        PutOp(
            namespace,
            turn["metadata"]["dia_id"],
            {"content": turn["content"], "dia_id": turn["metadata"]["dia_id"]},
        )
        for turn in turns
    ]
    for start in range(0, len(puts), 100):
        assert store.batch(puts[start : start + 100]) == [None] * len(puts[start : start + 100])
    listed = store.search(namespace, limit=1000)
    assert len(listed) == len(turns)

    store_hits: list[frozenset[str]] = []
    engine_hits: list[frozenset[str]] = []
    for question in questions:
        items = store.search(namespace, query=question.text, limit=10)
        assert len(items) == 10
        assert all(item.score is not None for item in items)
        found = handle.search_memories(
            namespace_prefix=list(namespace), query=question.text, limit=10
        )
        # the same ranked list, item for item
        assert [item.key for item in items] == [m.key for m in found.results]
        # scores equal up to the recency prior's drift between the two calls (its age is
        # measured from the real now, milliseconds apart; scores are rounded to 1e-6)
        assert [item.score for item in items] == pytest.approx(
            [m.score for m in found.results], abs=2e-6
        )
        store_hits.append(question.evidence.intersection(item.key for item in items))
        engine_hits.append(question.evidence.intersection(m.key for m in found.results))

    assert store_hits == engine_hits
    store_recall = sum(bool(h) for h in store_hits) / len(questions)
    engine_recall = sum(bool(h) for h in engine_hits) / len(questions)
    print(f"\n{conv_id} ({len(questions)} questions) recall@10: store {store_recall:.3f}")
    assert store_recall == engine_recall
    assert store_recall >= RECALL_FLOOR, (
        f"recall@10 through the store {store_recall:.3f} < {RECALL_FLOOR}"
    )
