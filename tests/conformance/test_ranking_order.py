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

Each case also checks store independence: the same search run in memory with
:func:`memtrace_core.ranking.search` (stage 1 = every fixture memory sharing a stem with the
plan; that is all FTS5 returns for these small pools) and ``rerank`` gives the same order
and scores as ``search_memories`` on the store.

The store fixture is parametrised by URL template (``STORE_URLS``): add a PostgreSQL URL
there when that store exists. It is named ``ranked_store`` so that it does not shadow the
``mt`` fixture of ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, Memory, PluginRegistry, aconnect, ranking
from memtrace_core.text import analyze

STORE_URLS = ["sqlite:///{tmp}/ranking-order.db"]
"""One URL template per store; ``{tmp}`` is the test's temporary directory."""

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
]
"""(scenario, query, expected order of every result)."""


def _agent(scenario: str) -> str:
    return f"scn-{scenario}"


@pytest.fixture(params=STORE_URLS, ids=lambda url: url.split(":", 1)[0])
async def ranked_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    engine = await aconnect(
        request.param.format(tmp=tmp_path), plugins=PluginRegistry(load_entry_points=False)
    )
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


def _candidate(memory: Memory) -> ranking.Candidate:
    """A memory as stage 1 hands it to stage 2 (the engine's mapping)."""
    return ranking.Candidate(
        id=memory.id,
        content=memory.content,
        time=memory.time,
        agent_id=memory.agent_id,
        event_type=memory.event_type,
        tags=tuple(memory.tags or ()),
        importance=memory.importance,
        session_id=memory.session_id,
    )


def _in_memory_fetch(
    memories: Sequence[Memory],
) -> Any:
    """Stage 1 without a store: every memory with a stem in common with the plan's terms."""

    def fetch(plan: ranking.QueryPlan) -> list[ranking.Candidate]:
        wanted = {stem for term in plan.terms for stem in analyze(term)}
        out = []
        for memory in memories:
            fields = [memory.content, memory.agent_id, memory.event_type, *(memory.tags or ())]
            if wanted & {stem for value in fields for stem in analyze(value)}:
                out.append(_candidate(memory))
        return out

    return fetch


@pytest.mark.parametrize(("scenario", "query", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_ranking_order(
    ranked_store: AsyncMemtrace, scenario: str, query: str, expected: list[str]
) -> None:
    agent = _agent(scenario)
    found = await ranked_store.search_memories(query=query, agent_id=agent, limit=50)
    keys = [(memory.metadata or {}).get("key") for memory in found.results]
    assert keys == expected
    scores = [memory.score for memory in found.results if memory.score is not None]
    assert len(scores) == len(found.results)
    assert scores == sorted(scores, reverse=True)

    # store independence: the same pipeline in memory, on the same memories
    stored = await ranked_store.list_memories(agent_id=agent, limit=100)
    direct = ranking.search(
        query,
        _in_memory_fetch(stored.memories),
        datetime.now(UTC),
        ranked_store.config.ranking,
    )
    assert [candidate.id for candidate, _ in direct] == [m.id for m in found.results]
    for (_, score), memory in zip(direct, found.results, strict=True):
        assert memory.score == pytest.approx(score, abs=1e-5)


async def test_final_order_is_rerank_of_the_returned_candidates(
    ranked_store: AsyncMemtrace,
) -> None:
    """The engine's order is ``rerank`` (with the PRF-expanded plan) of exactly the memories it
    returns: nothing but the candidates decides it."""
    for scenario, query, _ in CASES:
        agent = _agent(scenario)
        found = await ranked_store.search_memories(query=query, agent_id=agent, limit=50)
        now = datetime.now(UTC)
        config = ranked_store.config.ranking
        plan = ranking.plan_query(query, now, config)
        first = _in_memory_fetch(found.results)(plan)
        expanded = ranking.expand(plan, ranking.rerank(plan, first, now, config), config)
        final_plan = expanded or plan
        shuffled = [_candidate(m) for m in reversed(found.results)]
        reranked = ranking.rerank(final_plan, shuffled, now, config)
        assert [c.id for c, _ in reranked] == [m.id for m in found.results], scenario
