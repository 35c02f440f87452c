"""Conformance of keyword-search ordering: hand-made fixtures whose ranking is unambiguous.

Every store must give the same order for the same memories, because stage 2
(:func:`memtrace_core.ranking.rerank`) orders the candidates from the candidates alone. Each
scenario lives in its own agent scope and checks one rule of the scoring:

* ``phrase`` — both query words adjacent beat both words far apart, which beat one word;
* ``rarity`` — a memory with the rare query word beats memories with only the common one
  (equal texts among those are ordered newest first);
* ``fields`` — a match in a tag (weight 2) beats one in the content (1), which beats one in
  the event type (0.5);
* ``recency`` — equal texts at different times: newest first;
* ``importance`` — equal texts at the same time: higher importance first.

* ``feedback`` — a memory without the query word, reached only through pseudo-relevance
  feedback (its words are characteristic of the best match), comes after the direct matches.

Everything runs through ``search_memories`` — the engine's own pipeline
(:func:`memtrace_core.ranking.search`), not a copy of it — on every store URL.

The store fixture is a fresh store of each kind of ``store_urls.STORE_URLS`` (which
``MEMTRACE_CONFORMANCE_URLS`` overrides), through ``store_url``. It is named ``ranked_store`` so that it does not shadow the
``mt`` fixture of ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, PluginRegistry, aconnect, ranking

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
"""Fixture times are long past, so the recency prior (measured from the real now) is ~0."""
HOUR = timedelta(hours=1)
"""Memories of one scenario are hours apart: never conversational neighbours (120 s)."""


@dataclass(frozen=True)
class Item:
    key: str
    """The test's name for the memory (stored as ``metadata["key"]``)."""
    content: str
    hours: float
    """Time after :data:`T0`."""
    event_type: str = "note"
    tags: tuple[str, ...] = ()
    importance: float | None = None


SCENARIOS: dict[str, list[Item]] = {
    "phrase": [
        Item("adjacent", "payment service outage reported by the team", 0),
        Item("apart", "service restarted by the team after payment", 1),
        Item("one-word", "payment reminder sent to the finance team", 2),
        Item("no-match", "lunch menu includes soup", 3),
    ],
    "rarity": [
        Item("rare", "kubernetes node drained", 0),
        *(Item(f"common-{i}", "server node drained", 1 + i) for i in range(4)),
        Item("no-match", "coffee machine repaired", 6),
    ],
    "fields": [
        Item("tag", "run finished", 0, tags=("billing",)),
        Item("content", "billing run finished", 1),
        Item("event-type", "run finished", 2, event_type="billing"),
        Item("no-match", "coffee machine repaired", 3),
    ],
    "recency": [
        Item("oldest", "nightly backup completed", 0),
        Item("newest", "nightly backup completed", 48),
        Item("middle", "nightly backup completed", 24),
    ],
    "feedback": [
        Item("direct", "checkout outage: the payment gateway timed out", 0),
        Item("related", "payment gateway timed out again during checkout", 1),
        Item("no-match", "lunch menu includes soup", 2),
    ],
    "importance": [
        Item("low", "disk alert raised", 5, importance=0.2),
        Item("high", "disk alert raised", 5, importance=0.9),
        Item("mid", "disk alert raised", 5, importance=0.5),
        Item("none", "disk alert raised", 5),
    ],
}

CASES: list[tuple[str, str, list[str]]] = [
    ("phrase", "payment service", ["adjacent", "apart", "one-word"]),
    ("rarity", "kubernetes server", ["rare", "common-3", "common-2", "common-1", "common-0"]),
    ("fields", "billing", ["tag", "content", "event-type"]),
    ("recency", "backup completed", ["newest", "middle", "oldest"]),
    ("importance", "disk alert", ["high", "mid", "low", "none"]),
    ("feedback", "outage", ["direct", "related"]),
]
"""(scenario, query, expected order of every result)."""


def _agent(scenario: str) -> str:
    return f"scn-{scenario}"


@pytest.fixture
async def ranked_store(store_url: str) -> AsyncIterator[Any]:
    engine = await aconnect(store_url, plugins=PluginRegistry(load_entry_points=False))
    try:
        for scenario, items in SCENARIOS.items():
            result = await engine.add_memories(
                [
                    {
                        "agent_id": _agent(scenario),
                        "content": item.content,
                        "time": T0 + item.hours * HOUR,
                        "event_type": item.event_type,
                        "tags": list(item.tags),
                        "importance": item.importance,
                        "metadata": {"key": item.key},
                        # equal texts are genuine separate memories here
                        "dedup_key": f"{scenario}:{item.key}",
                    }
                    for item in items
                ]
            )
            assert result.count == len(items)
        yield engine
    finally:
        await engine.close()


@pytest.mark.parametrize(("scenario", "query", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_ranking_order(
    ranked_store: AsyncMemtrace, scenario: str, query: str, expected: list[str]
) -> None:
    agent = _agent(scenario)
    found = await ranked_store.search_memories(query=query, agent_id=agent, limit=50)
    keys = [(memory.metadata or {}).get("key") for memory in found.results]
    assert keys == expected
    scores = [memory.score for memory in found.results]
    assert None not in scores
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


async def test_feedback_is_what_finds_the_related_memory(store_url: str) -> None:
    """Without the feedback round the engine finds only the direct match: the ``feedback``
    case above is reached through PRF, not by accident."""
    from dataclasses import replace

    from memtrace_core import EngineConfig

    url = store_url
    config = EngineConfig(ranking=replace(ranking.RankingConfig(), prf=False))
    engine = await aconnect(url, plugins=PluginRegistry(load_entry_points=False), config=config)
    try:
        await engine.add_memories(
            [{"agent_id": "a", "content": item.content} for item in SCENARIOS["feedback"]]
        )
        found = await engine.search_memories(query="outage", agent_id="a")
        assert [m.content for m in found.results] == [SCENARIOS["feedback"][0].content]
    finally:
        await engine.close()
