"""Stage 1 of keyword search on large match sets (the recent-first, AND-first path)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace
from memtrace_core.stores.base import KeywordQuery, MemoryFilter


async def _fill(engine: AsyncMemtrace) -> None:
    items = [{"agent_id": "bot", "content": f"deploy step {i} finished"} for i in range(40)]
    items += [{"agent_id": "bot", "content": f"rollback {i} of the deploy"} for i in range(3)]
    items += [{"agent_id": "other", "content": f"deploy rollback elsewhere {i}"} for i in range(5)]
    result = await engine.add_memories(items)
    assert result.count == len(items)


async def test_recent_first_prefers_memories_matching_every_word(
    engine: AsyncMemtrace, small_limit: AsyncMemtrace
) -> None:
    await _fill(engine)
    exact = await engine.search_memories(query="deploy rollback", agent_id="bot", limit=5)
    bounded = await small_limit.search_memories(query="deploy rollback", agent_id="bot", limit=5)
    want = {f"rollback {i} of the deploy" for i in range(3)}
    # both paths rank the three memories holding both words first, and stay in the agent scope
    assert {m.content for m in exact.results[:3]} == want
    assert {m.content for m in bounded.results[:3]} == want
    assert all(m.agent_id == "bot" for m in bounded.results)
    assert bounded.has_more


async def test_recent_first_tops_up_with_newest_any_word_matches(
    engine: AsyncMemtrace, small_limit: AsyncMemtrace
) -> None:
    await _fill(engine)
    found = await small_limit.search_memories(query="deploy finished", agent_id="bot", limit=50)
    contents = {m.content for m in found.results}
    assert {f"deploy step {i} finished" for i in range(40)} <= contents
    assert len(found.results) == 43  # every memory of the agent holds "deploy"


async def test_match_count_is_capped(engine: AsyncMemtrace) -> None:
    await _fill(engine)
    store = engine.store
    every = MemoryFilter()
    assert await store.count_keyword_matches("org_default", every, ("deploy",), 1000) == 48
    assert await store.count_keyword_matches("org_default", every, ("deploy",), 10) == 10
    both = ("rollback", "finished")
    assert await store.count_keyword_matches("org_default", every, both, 1000) == 48
    assert await store.count_keyword_matches("org_default", every, (), 1000) == 0


async def test_match_count_is_scoped_to_the_org_and_the_filters(engine: AsyncMemtrace) -> None:
    await _fill(engine)
    store = engine.store
    other = engine.with_org("org_other")
    await other.add_memories(
        [{"agent_id": "bot", "content": f"deploy number {i} elsewhere"} for i in range(30)]
    )
    every = MemoryFilter()
    assert await store.count_keyword_matches("org_default", every, ("deploy",), 1000) == 48
    assert await store.count_keyword_matches("org_other", every, ("deploy",), 1000) == 30
    assert await store.count_keyword_matches("org_none", every, ("deploy",), 1000) == 0
    one_agent = MemoryFilter(agent_ids=("bot",))
    assert await store.count_keyword_matches("org_default", one_agent, ("deploy",), 1000) == 43


async def test_engine_picks_the_path_and_pool_from_the_match_count(
    engine: AsyncMemtrace, small_limit: AsyncMemtrace, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(engine)
    seen: list[tuple[bool, int]] = []
    for mt in (engine, small_limit):
        original = mt.store.keyword_candidates

        async def record(org_id: str, flt: Any, query: Any, _orig: Any = original) -> Any:
            seen.append((query.recent_first, query.limit))
            return await _orig(org_id, flt, query)

        monkeypatch.setattr(mt.store, "keyword_candidates", record)
        await mt.search_memories(query="deploy rollback", limit=5)
    # 48 matches: exact BM25 (pool 200, feedback round) under the default 5,000 limit; recent-
    # first with the smaller pool and no feedback round when the limit is 10
    assert seen[0] == (False, 200)
    assert seen[-1] == (True, 100)
    assert sum(1 for flag, _ in seen if flag) == 1


async def test_a_scope_smaller_than_the_limit_takes_the_exact_path_without_counting(
    engine: AsyncMemtrace, small_limit: AsyncMemtrace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-agent search whose agent holds at most exact_match_limit memories cannot match
    more: exact BM25, decided by a capped count of the scope, without counting matches (the
    engine's own decision, for a store without ``keyword_matches_exceed``)."""
    await _fill(engine)
    assert await engine.store.count_memories("org_default", MemoryFilter(), cap=10) == 10
    counted: list[object] = []
    paths: list[bool] = []
    store = small_limit.store
    monkeypatch.setattr(store, "keyword_matches_exceed", None)
    count, candidates = store.count_keyword_matches, store.keyword_candidates

    async def count_matches(*args: Any) -> int:
        counted.append(args)
        return await count(*args)

    async def record(org_id: str, flt: Any, query: Any) -> Any:
        paths.append(query.recent_first)
        return await candidates(org_id, flt, query)

    monkeypatch.setattr(store, "count_keyword_matches", count_matches)
    monkeypatch.setattr(store, "keyword_candidates", record)
    found = await small_limit.search_memories(query="deploy rollback", agent_id="other")
    assert found.count == 5
    assert counted == []  # 5 memories in scope: no match count needed
    assert paths
    assert not any(paths)
    paths.clear()
    await small_limit.search_memories(query="deploy rollback")  # the whole org: 48 memories
    assert len(counted) == 1
    assert paths[0] is True  # recent-first


async def test_the_store_decides_the_path_in_one_read_with_the_same_answer(
    engine: AsyncMemtrace, small_limit: AsyncMemtrace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``keyword_matches_exceed`` the engine asks the store once per plan (the query's,
    then its feedback round's) and counts nothing itself; the path it takes is the one the
    counts give."""
    await _fill(engine)
    store = small_limit.store
    asked: list[tuple[tuple[str, ...], int, bool]] = []
    exceed, candidates = store.keyword_matches_exceed, store.keyword_candidates
    paths: list[bool] = []

    async def record(org_id: str, flt: Any, terms: tuple[str, ...], limit: int) -> bool:
        answer = await exceed(org_id, flt, terms, limit)
        asked.append((terms, limit, answer))
        return answer

    async def not_counted(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("the engine counted although the store can decide")

    async def path(org_id: str, flt: Any, query: Any) -> Any:
        paths.append(query.recent_first)
        return await candidates(org_id, flt, query)

    monkeypatch.setattr(store, "keyword_matches_exceed", record)
    monkeypatch.setattr(store, "count_memories", not_counted)
    monkeypatch.setattr(store, "count_keyword_matches", not_counted)
    monkeypatch.setattr(store, "keyword_candidates", path)
    found = await small_limit.search_memories(query="deploy rollback", agent_id="other")
    assert found.count == 5
    # the query's plan, then its feedback round's (more terms): exact BM25 both times
    assert asked[0] == (("deploy", "rollback"), 10, False)
    assert len(asked) == 2
    assert asked[1][0][:2] == ("deploy", "rollback")
    assert not asked[1][2]
    assert paths == [False, False]
    asked.clear()
    paths.clear()
    await small_limit.search_memories(query="deploy rollback")  # 48 matches in the org
    assert asked == [(("deploy", "rollback"), 10, True)]
    assert paths == [True]


async def test_keyword_matches_exceed_is_the_scoped_count(engine: AsyncMemtrace) -> None:
    """``keyword_matches_exceed(…, limit)`` is ``count_keyword_matches(…, limit + 1) > limit``
    at every limit around the counts, for the org and the filters alone: another org's many
    matches, a small scope, expired and superseded memories (the view) each settle it at a
    different step of the store's bounds."""
    await _fill(engine)  # org_default: 48 "deploy" (43 of agent bot), 8 "rollback"
    other = engine.with_org("org_other")
    await other.add_memories(
        [{"agent_id": "bot", "content": f"deploy number {i} elsewhere"} for i in range(60)]
    )
    gone = await engine.add_memories(
        [
            {"agent_id": "late", "content": f"rollback deploy expiring {i}", "ttl": "1s"}
            for i in range(4)
        ]
    )
    assert gone.count == 4
    first = await engine.add_memory({"agent_id": "late", "content": "rollback plan v1"})
    await engine.add_memory(
        {"agent_id": "late", "content": "rollback plan v2", "supersedes": first.id}
    )
    store = engine.store
    now = 2**62  # every ttl memory has expired by then
    scopes = [
        MemoryFilter(),
        MemoryFilter(agent_ids=("bot",)),
        MemoryFilter(agent_ids=("other",)),
        MemoryFilter(agent_ids=("late",)),
        MemoryFilter(live_at=now, current=True),
        MemoryFilter(agent_ids=("late",), live_at=now, current=True),
        MemoryFilter(agent_ids=("nobody",)),
    ]
    checked = 0
    for org in ("org_default", "org_other", "org_none"):
        for flt in scopes:
            for terms in (("deploy",), ("rollback",), ("rollback", "plan"), ("absent",)):
                exact = await store.count_keyword_matches(org, flt, terms, 1000)
                for limit in sorted({0, 1, 4, 5, 10, 43, 47, 48, 59, 60, 61, exact - 1, exact}):
                    if limit < 0:
                        continue
                    want = min(exact, limit + 1) > limit
                    assert await store.keyword_matches_exceed(org, flt, terms, limit) is want, (
                        org,
                        flt,
                        terms,
                        limit,
                    )
                    checked += 1
            assert await store.keyword_matches_exceed(org, flt, (), 0) is False
    assert checked > 500


@pytest.mark.parametrize("recent_first", [False, True])
async def test_known_memories_keep_their_place_but_are_not_returned(
    engine: AsyncMemtrace, recent_first: bool
) -> None:
    """A feedback round passes the first pool's ids as ``known``: the store leaves exactly those
    out, and what it returns is what it would have returned without them, in the same order
    (known memories still count toward the limit, so the recent-first top-up is unchanged)."""
    await _fill(engine)
    store = engine.store
    every = MemoryFilter()
    groups = (("deploy",), ("rollback",))
    for limit in (5, 12, 30, 100):
        query = KeywordQuery(
            terms=("deploy", "rollback"), limit=limit, groups=groups, recent_first=recent_first
        )
        full = [c.memory.id for c in await store.keyword_candidates("org_default", every, query)]
        assert len(full) == min(limit, 48)
        for known in (set(full[::2]), set(full[:3]), set(full), {"mem_not_there"}):
            part = await store.keyword_candidates(
                "org_default", every, replace(query, known=frozenset(known))
            )
            assert [c.memory.id for c in part] == [i for i in full if i not in known]


async def test_feedback_round_pool_is_the_same_with_known_ids(
    engine: AsyncMemtrace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's ranked results do not depend on the store honouring ``known``."""
    await _fill(engine)
    store = engine.store
    want = await engine.search_memories(query="deploy rollback", limit=48)
    original = store.keyword_candidates

    async def ignoring_known(org_id: str, flt: MemoryFilter, query: KeywordQuery) -> Any:
        return await original(org_id, flt, replace(query, known=frozenset()))

    monkeypatch.setattr(store, "keyword_candidates", ignoring_known)
    got = await engine.search_memories(query="deploy rollback", limit=48)
    assert [(m.id, m.score) for m in got.results] == [(m.id, m.score) for m in want.results]
    assert len(want.results) == 48


#: Agent ids and event types (as the API accepts them) the full-text narrowing must handle:
#: words FTS5 splits ("planner-34", "a_b"), stems ("running"), stop words, case, and query
#: words that also occur in the agent column ("deploy").
_ODD_NAMES = [
    "bot",
    "planner-34",
    "the",
    "running",
    "Running",
    "CamelCase",
    "a-",
    "a_b",
    "x-y-z",
    "A9",
    "deploy",
    "go",
    "going",
]


_EVENT_TYPES = ["deploy", "the", "x_y", "CamelCase", "a9", "running", "a__b", "Running"]


async def test_narrowed_counts_and_newest_rounds_equal_the_sql_filter(
    engine: AsyncMemtrace,
) -> None:
    """Counting matches and the recent-first rounds narrow the MATCH to the filter's agents and
    event types inside the index (phrase-safe values only): the counts, the exceed answer and
    the newest rows equal those of the plain SQL filter, computed here independently."""
    items = []
    for i, name in enumerate(_ODD_NAMES):
        for j in range(6):
            items.append(
                {
                    "agent_id": name,
                    "event_type": _EVENT_TYPES[(i + j) % len(_EVENT_TYPES)],
                    "content": ["deploy rollback now", "deploy only", "nothing here"][j % 3]
                    + f" {i} {j}",
                }
            )
    result = await engine.add_memories(items)
    assert result.count == len(items)
    other = engine.with_org("org_other")
    await other.add_memories([{"agent_id": "bot", "content": f"deploy {i}"} for i in range(20)])
    store: Any = engine.store

    def independent(conn: Any, agents: Any, events: Any, terms: tuple[str, ...]) -> list[str]:
        """Ids, newest first, of the org's memories of these agents / event types matching
        any term: the SQL filter with the match as a rowid set (no narrowing)."""
        where = ["org_id = 'org_default'"]
        args: list[Any] = []
        for column, values in (("agent_id", agents), ("event_type", events)):
            if values is not None:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        match = " OR ".join('"' + t + '"' for t in terms)
        sql = (
            f"SELECT id FROM memories WHERE {' AND '.join(where)} AND rowid IN "
            "(SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?) ORDER BY rowid DESC"
        )
        return [r[0] for r in conn.execute(sql, [*args, match])]

    scopes: list[tuple[Any, Any]] = [((n,), None) for n in _ODD_NAMES]
    scopes += [(None, (n,)) for n in _EVENT_TYPES]
    # several values; values that are not phrase-safe (the SQL filter alone then decides)
    scopes += [(("bot", "go"), None), (("planner-34", "a_b"), ("the", "a9"))]
    scopes += [(("bot", "中文"), None), (("x y'z", "the"), None), (("nobody",), None)]
    checked = 0
    for agents, events in scopes:
        flt = MemoryFilter(agent_ids=agents, event_types=events)
        for terms in (("deploy",), ("rollback", "nothing"), ("deploy", "the")):
            want = await store._read(lambda c, a=agents, e=events, t=terms: independent(c, a, e, t))
            got = await store.count_keyword_matches("org_default", flt, terms, 1000)
            assert got == len(want), (agents, events, terms)
            for limit in {0, 1, len(want) - 1, len(want), len(want) + 1} - {-1}:
                exceeds = await store.keyword_matches_exceed("org_default", flt, terms, limit)
                assert exceeds is (len(want) > limit), (agents, events, terms, limit)
            query = KeywordQuery(terms=terms, limit=4, recent_first=True)
            newest = await store.keyword_candidates("org_default", flt, query)
            assert [c.memory.id for c in newest] == want[:4], (agents, events, terms)
            checked += 1
    assert checked == len(scopes) * 3


async def test_a_subclass_that_counts_its_own_way_decides_the_path(tmp_path: Any) -> None:
    """A SQLiteStore subclass overriding ``count_keyword_matches`` (e.g. to hide rows) is not
    bypassed by the inherited ``keyword_matches_exceed``: the decision is made on its counts."""
    from memtrace_core.stores.sqlite import SQLiteStore

    class Hiding(SQLiteStore):
        asked = 0

        async def count_keyword_matches(
            self, org_id: str, flt: MemoryFilter, terms: tuple[str, ...], cap: int
        ) -> int:
            Hiding.asked += 1
            return 0  # this store's policy: nothing counts

    store = Hiding(str(tmp_path / "hiding.db"))
    await store.open()
    try:
        engine = AsyncMemtrace(store)
        await engine.add_memories(
            [{"agent_id": "bot", "content": f"deploy {i}"} for i in range(30)]
        )
        every = MemoryFilter()
        # the plain store's answer would be True (30 matches); the subclass says 0
        assert await SQLiteStore.count_keyword_matches(store, "org_default", every, ("deploy",), 11)
        assert await store.keyword_matches_exceed("org_default", every, ("deploy",), 10) is False
        assert Hiding.asked == 1
        assert await store.keyword_matches_exceed("org_default", every, ("deploy",), 40) is False
        assert Hiding.asked == 1  # a scope of 30 memories settles 40 without counting
    finally:
        await store.close()
