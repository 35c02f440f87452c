"""Tests written to kill mutants that survived a mutation audit of engine.py, ranking.py and
validation.py (issue 8): each one fails with the named mutation applied and passes without it.

The audit's tool and figures are in the issue's closing note; ``scripts/mutate.py`` reruns it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from memtrace_core.ranking import Candidate, RankingConfig, plan_query, rerank

NOW = datetime(2024, 3, 13, 15, 30, tzinfo=UTC)
OLD = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def _candidate(
    id: str,
    content: str,
    time: datetime = OLD,
    *,
    session: str | None = "s1",
    importance: float | None = None,
    tags: tuple[str, ...] = (),
    bm25: float = 0.0,
) -> Candidate:
    return Candidate(
        id=id,
        content=content,
        time=time,
        agent_id="agent-1",
        event_type="message",
        tags=tags,
        importance=importance,
        bm25=bm25,
        session_id=session,
    )


def _ids(ranked: list[tuple[Candidate, float]]) -> list[str]:
    return [candidate.id for candidate, _ in ranked]


# --------------------------------------------------------------------------------------------
# ranking.rerank
# --------------------------------------------------------------------------------------------


def test_rerank_ties_ignore_the_native_score_too() -> None:
    """Equal scores are broken by time (newer first), never by the store's native bm25: the
    existing native-score test only has candidates whose scores differ, so a bm25 tie-break
    (mutant: ``(-score, candidate.bm25, id)`` as the sort key) passed it."""
    plan = plan_query("backup", NOW)
    config = RankingConfig(recency_weight=0.0)  # equal texts: equal scores, a genuine tie
    newer = _candidate("a-newer", "backup done", OLD + timedelta(hours=5), session="x")
    older = _candidate("b-older", "backup done", OLD, session="y")
    for newer_bm25, older_bm25 in ((-1.0, -9.0), (-9.0, -1.0), (5.0, -5.0)):
        ranked = rerank(
            plan,
            [
                dataclasses.replace(older, bm25=older_bm25),
                dataclasses.replace(newer, bm25=newer_bm25),
            ],
            NOW,
            config,
        )
        assert ranked[0][1] == ranked[1][1]
        assert _ids(ranked) == ["a-newer", "b-older"]
