"""Stage 1 of keyword search on large match sets (the bounded, AND-first path)."""

from __future__ import annotations

import pytest

from memtrace_core import AsyncMemtrace
from memtrace_core.stores import sqlite as sqlite_store


async def _fill(engine: AsyncMemtrace) -> None:
    items = [{"agent_id": "bot", "content": f"deploy step {i} finished"} for i in range(40)]
    items += [{"agent_id": "bot", "content": f"rollback {i} of the deploy"} for i in range(3)]
    items += [{"agent_id": "other", "content": f"deploy rollback elsewhere {i}"} for i in range(5)]
    result = await engine.add_memories(items)
    assert result.count == len(items)


async def test_bounded_stage1_prefers_memories_matching_every_word(
    engine: AsyncMemtrace, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(engine)
    exact = await engine.search_memories(query="deploy rollback", agent_id="bot", limit=5)
    # force the bounded path: more matches than the scan limit
    monkeypatch.setattr(sqlite_store, "BM25_SCAN_LIMIT", 10)
    bounded = await engine.search_memories(query="deploy rollback", agent_id="bot", limit=5)
    want = {f"rollback {i} of the deploy" for i in range(3)}
    # both paths rank the three memories holding both words first, and stay in the agent scope
    assert {m.content for m in exact.results[:3]} == want
    assert {m.content for m in bounded.results[:3]} == want
    assert all(m.agent_id == "bot" for m in bounded.results)
    assert bounded.has_more


async def test_bounded_stage1_tops_up_with_newest_any_word_matches(
    engine: AsyncMemtrace, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(engine)
    monkeypatch.setattr(sqlite_store, "BM25_SCAN_LIMIT", 10)
    found = await engine.search_memories(query="deploy finished", agent_id="bot", limit=50)
    contents = {m.content for m in found.results}
    assert {f"deploy step {i} finished" for i in range(40)} <= contents
    assert len(found.results) == 43  # every memory of the agent holds "deploy"
