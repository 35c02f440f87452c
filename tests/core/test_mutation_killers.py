"""Tests written to kill mutants that survived a mutation audit of engine.py, ranking.py and
validation.py (issue 8): each one fails with the named mutation applied and passes without it.

The audit's tool and figures are in the issue's closing note; ``scripts/mutate.py`` reruns it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace_core import (
    AsyncMemtrace,
    ListOptions,
    MemoryCreate,
    PluginRegistry,
    SearchQuery,
    ValidationError,
    aconnect,
)
from memtrace_core.ranking import (
    Candidate,
    RankingConfig,
    expand,
    plan_query,
    rerank,
    term_groups,
)
from memtrace_core.text import STOP_WORDS, stem, tokenize
from memtrace_core.timeutil import from_us
from memtrace_core.validation import Limits, check_json, check_text, validate_memory

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


def _oracle(
    query: str,
    candidates: list[Candidate],
    now: datetime,
    config: RankingConfig,
) -> dict[str, float]:
    """The score of every candidate, computed straight from the formula in the
    :mod:`memtrace_core.ranking` docstring (the documented contract), without corpus stats."""
    plan = plan_query(query, now, config)
    key_of: dict[str, str] = {term: term for term in plan.weights}
    for term in plan.weights:
        for alias in plan.aliases.get(term, ()):
            key_of.setdefault(alias, term)
    fields = lambda c: (  # noqa: E731
        (c.content, config.weight_content),
        (c.agent_id or "", config.weight_agent),
        (c.event_type or "", config.weight_event_type),
        (" ".join(c.tags), config.weight_tags),
    )
    tf: dict[str, dict[str, float]] = {}
    length: dict[str, float] = {}
    for c in candidates:
        tf[c.id], length[c.id] = {}, 0.0
        for text, weight in fields(c):
            if weight <= 0:
                continue
            stems = [stem(t) for t in tokenize(text)]
            length[c.id] += weight * len(stems)
            for s in stems:
                if s in key_of:
                    key = key_of[s]
                    tf[c.id][key] = tf[c.id].get(key, 0.0) + weight
    n = len(candidates)
    avg_len = sum(length.values()) / n if sum(length.values()) > 0 else 1.0

    def idf(term: str) -> float:
        df = sum(1 for c in candidates if tf[c.id].get(term))
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    k1, b = config.k1, config.b
    bm25 = {
        c.id: sum(
            plan.weights[q]
            * idf(q)
            * f
            * (k1 + 1)
            / (f + k1 * (1 - b + b * length[c.id] / avg_len))
            for q, f in tf[c.id].items()
        )
        for c in candidates
    }
    top = max(bm25.values())
    core_total = sum(idf(q) for q in plan.core)
    pairs = list(zip(plan.core, plan.core[1:], strict=False))
    pair_total = sum(min(idf(left), idf(right)) for left, right in pairs)
    base: dict[str, float] = {}
    for c in candidates:
        score = bm25[c.id] / top if top > 0 else 0.0
        if core_total > 0:
            found = sum(idf(q) for q in plan.core if q in tf[c.id])
            score += config.coverage_weight * found / core_total
        positions: dict[str, list[int]] = {}
        for i, token in enumerate(tokenize(c.content)):
            key = key_of.get(stem(token))
            if key in plan.core:
                positions.setdefault(key, []).append(i)
        if pair_total > 0 and sum(1 for q in plan.core if q in tf[c.id]) >= 2:
            near = sum(
                min(idf(left), idf(right))
                for left, right in pairs
                if any(
                    abs(i - j) <= config.proximity_window
                    for i in positions.get(left, [])
                    for j in positions.get(right, [])
                )
            )
            score += config.proximity_weight * near / pair_total
        base[c.id] = score
    rel = {
        c.id: base[c.id]
        + config.context_weight
        * max(
            (
                base[o.id]
                for o in candidates
                if o.id != c.id
                and (o.agent_id, o.session_id) == (c.agent_id, c.session_id)
                and abs((o.time - c.time).total_seconds()) <= config.context_max_gap_seconds
            ),
            default=0.0,
        )
        for c in candidates
    }
    top_rel = max(rel.values())
    window = plan.time_window
    out: dict[str, float] = {}
    for c in candidates:
        score = rel[c.id] / top_rel if top_rel > 0 else 0.0
        age_days = max((now - c.time).total_seconds(), 0.0) / 86_400
        score += config.recency_weight * 0.5 ** (age_days / config.recency_half_life_days)
        if c.importance is not None:
            score += config.importance_weight * min(max(c.importance, 0.0), 1.0)
        if window is not None and window.since <= c.time < window.until:
            score += config.time_boost
        out[c.id] = score
    return out


_CONFIGS = [
    RankingConfig(),
    # every knob moved off its default, k1 below 1 (where ``k1 - 1`` would turn scores negative)
    RankingConfig(
        k1=0.8,
        b=0.9,
        weight_content=1.5,
        weight_agent=0.7,
        weight_event_type=0.0,  # a 0 weight switches the field off (no df, no length)
        weight_tags=0.7,
        coverage_weight=0.5,
        proximity_weight=0.4,
        proximity_window=1,
        context_weight=0.2,
        context_max_gap_seconds=600.0,
        recency_weight=0.3,
        recency_half_life_days=2.0,
        importance_weight=0.4,
        time_boost=0.25,
        word_variants=False,
    ),
]
_WORDS = [
    "tea",
    "coffee",
    "walk",
    "park",
    "dog",
    "went",
    "go",
    "going",
    "painting",
    "class",
    "beach",
    "book",
    "billing",
    "run",
]


@given(
    docs=st.lists(
        st.tuples(
            st.lists(st.sampled_from(_WORDS), min_size=1, max_size=9),
            st.integers(0, 400),  # minutes after OLD: neighbours are within 2 minutes
            st.sampled_from(["s1", "s2", None]),
            st.sampled_from(["agent-1", "dog-walker"]),
            st.sampled_from(["message", "billing"]),
            st.lists(st.sampled_from(["billing", "park", "ops"]), max_size=2, unique=True),
            st.one_of(st.none(), st.floats(-0.5, 1.5)),
        ),
        min_size=1,
        max_size=12,
    ),
    query=st.lists(st.sampled_from([*_WORDS, "yesterday"]), min_size=1, max_size=4),
    now_days=st.sampled_from([0.0, 1.0, 200.0]),
    config=st.sampled_from(_CONFIGS),
)
@settings(max_examples=150, deadline=None)
def test_rerank_scores_follow_the_documented_formula(
    docs: list[tuple[list[str], int, str | None, str, str, list[str], float | None]],
    query: list[str],
    now_days: float,
    config: RankingConfig,
) -> None:
    """rerank's scores are the module docstring's formula, term by term (BM25F with field
    weights and inflections, coverage, proximity, neighbour context, recency, importance,
    time window). Mutants of the length normalisation, the coverage and proximity ratios
    and the priors each change some score here, while every ordering test still passed."""
    candidates = [
        Candidate(
            id=f"m{i}",
            content=" ".join(words),
            time=OLD + timedelta(minutes=minutes),
            agent_id=agent,
            event_type=event_type,
            tags=tuple(tags),
            importance=importance,
            session_id=session,
        )
        for i, (words, minutes, session, agent, event_type, tags, importance) in enumerate(docs)
    ]
    now = OLD + timedelta(days=now_days, hours=7)
    text = " ".join(query)
    ranked = rerank(plan_query(text, now, config), candidates, now, config)
    expected = _oracle(text, candidates, now, config)
    assert {c.id: pytest.approx(s, rel=1e-9, abs=1e-12) for c, s in ranked} == expected


def test_term_groups_are_the_query_words_with_their_variants() -> None:
    """The AND-first stage 1 of a large store asks for every group; a dropped group (mutant:
    ``groups.append`` removed) silently widened or emptied that query."""
    plan = plan_query("went shopping for shoes", NOW)
    assert term_groups(plan) == (("went", "go", "gone"), ("shopping",), ("shoes",))
    top = [
        _candidate("1", "went shopping for shoes at the mall downtown"),
        _candidate("2", "the mall downtown had shoes on sale"),
    ]
    expanded = expand(plan, rerank(plan, top, NOW))
    assert expanded is not None
    assert "mall" in expanded.terms
    assert term_groups(expanded) == term_groups(plan)  # feedback terms join no group


def test_time_window_boost_includes_its_start_and_excludes_its_end() -> None:
    """ "yesterday" is the half-open day ``[00:00, 24:00)``: a memory at exactly midnight that
    opens the day is boosted, one at the midnight that ends it is not (mutants: ``<`` for
    ``<=`` at the start, ``<=`` for ``<`` at the end)."""
    plan = plan_query("what did I cook yesterday", NOW)
    assert plan.time_window is not None
    start, end = plan.time_window.since, plan.time_window.until
    assert (start, end) == (datetime(2024, 3, 12, tzinfo=UTC), datetime(2024, 3, 13, tzinfo=UTC))
    config = RankingConfig(recency_weight=0.0, importance_weight=0.0, context_weight=0.0)
    memories = [
        _candidate("start", "I cooked pasta", start, session="a"),
        _candidate("end", "I cooked pasta", end, session="b"),
        _candidate("before", "I cooked pasta", start - timedelta(microseconds=1), session="c"),
    ]
    scores = {c.id: s for c, s in rerank(plan, memories, NOW, config)}
    assert scores["start"] == pytest.approx(scores["end"] + config.time_boost)
    assert scores["end"] == pytest.approx(scores["before"])


# --------------------------------------------------------------------------------------------
# ranking.expand (pseudo-relevance feedback)
# --------------------------------------------------------------------------------------------


@given(
    docs=st.lists(
        st.lists(st.sampled_from([*_WORDS, "the", "a", "42", "ox"]), max_size=9), max_size=7
    ),
    # no subnormal scores: their products underflow differently in any two summation orders
    scores=st.lists(st.just(0.0) | st.floats(0.01, 2.0), min_size=7, max_size=7),
)
@settings(max_examples=150, deadline=None)
def test_expand_weights_follow_the_documented_formula(
    docs: list[list[str]], scores: list[float]
) -> None:
    """Feedback term score ``Σ_d w(d) · tf(t, d) / len(d) · idf(t)`` with ``w(d)`` the
    document's score over the best one and, without corpus stats, ``idf(t) = 1 + ln(1 + df(t))
    − ln(1 + n) / 2`` over the ``n`` feedback documents; stop-words, numbers, words under 3
    characters and the query's own stems are skipped; the best ``prf_terms`` get
    ``prf_weight · score / best``."""
    config = RankingConfig(prf_docs=5, prf_terms=4)
    plan = plan_query("coffee", NOW, config)
    top = [
        (_candidate(f"d{i}", " ".join(words)), score)
        for i, (words, score) in enumerate(zip(docs, scores, strict=False))
    ][: config.prf_docs]
    best_score = max((score for _, score in top), default=0.0)
    term_scores: dict[str, float] = {}
    doc_freq: dict[str, int] = {}
    for candidate, score in top:
        tokens = tokenize(candidate.content)
        weight = score / best_score if best_score > 0 else 1.0
        counts: dict[str, int] = {}
        for token in tokens:
            if token in STOP_WORDS or len(token) < 3 or token.isdigit():
                continue
            term = stem(token)
            if term not in plan.weights:
                counts[term] = counts.get(term, 0) + 1
        for term, count in counts.items():
            term_scores[term] = term_scores.get(term, 0.0) + weight * count / len(tokens)
            doc_freq[term] = doc_freq.get(term, 0) + 1
    n = len(top)
    for term in term_scores:
        term_scores[term] *= max(1 + math.log(1 + doc_freq[term]) - math.log(1 + n) / 2, 0.0)
    best = sorted(term_scores.items(), key=lambda item: (-item[1], item[0]))[: config.prf_terms]
    best = [(term, score) for term, score in best if score > 0]

    expanded = expand(plan, top, config)
    if not best:
        assert expanded is None
        return
    assert expanded is not None
    feedback = {t: w for t, w in expanded.weights.items() if t not in plan.weights}
    assert feedback == {
        term: pytest.approx(config.prf_weight * score / best[0][1], rel=1e-9)
        for term, score in best
    }
    assert expanded.weights["coffe"] == 1.0


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


async def test_add_memory_merges_a_memory_with_keyword_fields(engine: AsyncMemtrace) -> None:
    """``add_memory(memory, **fields)``: the fields are merged into the memory and win (mutant:
    ``merge_item`` returning nothing for that case passed, as no test passed both)."""
    base = {"agent_id": "bot", "content": "deploy finished", "importance": 0.2}
    stored = await engine.add_memory(base, importance=0.9, tags=["deploy"])
    assert (stored.agent_id, stored.content, stored.importance, stored.tags) == (
        "bot",
        "deploy finished",
        0.9,
        ["deploy"],
    )
    model = MemoryCreate(agent_id="bot", content="rollback finished")
    again = await engine.add_memory(model, event_type="rollback")
    assert (again.content, again.event_type) == ("rollback finished", "rollback")
    fetched = await engine.get_memory(stored.id)
    assert (fetched.importance, fetched.tags) == (0.9, ["deploy"])
    assert base["importance"] == 0.2  # the caller's mapping is not modified


def test_check_text_returns_the_checked_value() -> None:
    text = "naïve café ☕"
    assert check_text(text, "query", max_chars=len(text)) == text


# --------------------------------------------------------------------------------------------
# engine
# --------------------------------------------------------------------------------------------


async def test_agent_and_session_memories_require_an_id(engine: AsyncMemtrace) -> None:
    """``get_agent_memories("")`` / ``get_session_memories("")`` are errors, not a list of every
    memory (mutants: the ``check_id`` of either removed)."""
    await engine.add_memory(agent_id="bot", content="one")
    await engine.add_memory(agent_id="other", content="two")
    for bad in ("", "-bad id"):
        with pytest.raises(ValidationError) as info:
            await engine.get_agent_memories(bad)
        assert info.value.field == "agent_id"
        with pytest.raises(ValidationError) as info:
            await engine.get_session_memories(bad)
        assert info.value.field == "session_id"
    mine = await engine.get_agent_memories("bot")
    assert [m.content for m in mine.memories] == ["one"]


def test_default_limits_hold_exactly_at_their_documented_values() -> None:
    """The default limits (docs/configuration.md, ``[limits]``) accept a value at the limit and
    refuse one past it (mutants: each default moved by one)."""
    limits = Limits()
    now = 1_700_000_000_000_000
    base = {"agent_id": "bot", "content": "x"}
    skew = limits.max_future_skew_seconds
    assert skew == 300
    at = validate_memory({**base, "time": from_us(now + skew * 1_000_000)}, limits, now=now)
    assert at.time is not None
    with pytest.raises(ValidationError) as future:
        validate_memory({**base, "time": from_us(now + (skew + 1) * 1_000_000)}, limits, now=now)
    assert future.value.field == "time"

    def nested(depth: int) -> dict[str, object]:
        value: dict[str, object] = {}
        for _ in range(depth - 1):
            value = {"k": value}
        return value

    assert limits.max_json_depth == 32
    check_json(nested(32), "metadata", limits)
    with pytest.raises(ValidationError, match="deeper than 32"):
        check_json(nested(33), "metadata", limits)


async def test_search_query_length_limit(engine: AsyncMemtrace) -> None:
    """A query of ``max_query_chars`` (2000 by default) characters is searched; one more is a
    400 naming ``query``."""
    await engine.add_memory(agent_id="bot", content="aaaa")
    found = await engine.search_memories(query=" ".join(["aaaa"] * 400))  # 1999 characters
    assert [m.content for m in found.results] == ["aaaa"]
    await engine.search_memories(query="b" * 2000)
    with pytest.raises(ValidationError) as info:
        await engine.search_memories(query="b" * 2001)
    assert info.value.field == "query"


async def test_closing_an_org_view_keeps_the_shared_store_open(engine: AsyncMemtrace) -> None:
    """``with_org(...)`` views share the store: closing one is a no-op (mutant: ``or`` for
    ``and`` in close, which let a view close the store under its owner)."""
    view = engine.with_org("org-b")
    await view.add_memory(agent_id="bot", content="from b")
    await view.close()
    await engine.add_memory(agent_id="bot", content="from default")
    assert [m.content for m in (await engine.list_memories()).memories] == ["from default"]
    assert [m.content for m in (await view.list_memories()).memories] == ["from b"]


async def test_close_releases_the_store(db_path: Path, registry: PluginRegistry) -> None:
    """``close()`` releases the store: its SQLite connections are closed, so SQLite folds the
    write-ahead log back into the database and removes it (mutant: the store's close skipped)."""
    engine = await aconnect(f"sqlite:///{db_path}", plugins=registry)
    await engine.add_memory(agent_id="bot", content="kept")
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists()
    await engine.close()
    assert not wal.exists()
    again = await aconnect(f"sqlite:///{db_path}", plugins=registry)
    try:
        assert [m.content for m in (await again.list_memories()).memories] == ["kept"]
    finally:
        await again.close()


async def test_a_query_with_nothing_to_search_finds_nothing(engine: AsyncMemtrace) -> None:
    """A query made only of punctuation plans no terms: an empty result, not an error (mutant:
    the keyword search returning ``None`` for an empty plan)."""
    await engine.add_memory(agent_id="bot", content="deploy finished")
    found = await engine.search_memories(query="?! …")
    assert (found.results, found.count, found.has_more) == ([], 0, False)


async def test_methods_take_their_request_models_as_they_are(engine: AsyncMemtrace) -> None:
    """Typed callers pass the request model itself (``search_memories(SearchQuery(...))``):
    it is used as given (mutant: ``coerce`` returning nothing for a ready model)."""
    await engine.add_memory(agent_id="bot", content="deploy finished")
    await engine.add_memory(agent_id="bot", content="lunch break")
    found = await engine.search_memories(SearchQuery(query="deploy"))
    assert [m.content for m in found.results] == ["deploy finished"]
    page = await engine.list_memories(ListOptions(limit=1, order="asc"))
    assert [m.content for m in page.memories] == ["deploy finished"]
    assert page.has_more
    # a model and keyword overrides: the overrides win (mutant: the model returned as it was)
    capped = await engine.list_memories(ListOptions(limit=5, order="asc"), limit=1)
    assert [m.content for m in capped.memories] == ["deploy finished"]


def test_metadata_size_limit_is_inclusive() -> None:
    """Metadata of exactly ``max_metadata_bytes`` (16 KiB) as compact JSON is accepted, one
    byte more is refused (mutants: ``>=`` for ``>``, the default moved)."""
    limits = Limits()
    assert limits.max_metadata_bytes == 16 * 1024
    overhead = len('{"k":""}')
    exact = {"k": "x" * (16 * 1024 - overhead)}
    assert check_json(exact, "metadata", limits) == 16 * 1024
    with pytest.raises(ValidationError, match="too large"):
        check_json({"k": "x" * (16 * 1024 - overhead + 1)}, "metadata", limits)


async def test_filter_value_count_limit(engine: AsyncMemtrace) -> None:
    """A list filter takes up to ``max_filter_values`` (64) values."""
    types = [f"t{i}" for i in range(64)]
    assert (await engine.search_memories(event_types=types)).results == []
    with pytest.raises(ValidationError) as info:
        await engine.search_memories(event_types=[*types, "t64"])
    assert info.value.field == "event_types"


async def test_agent_name_length_limit_is_inclusive(engine: AsyncMemtrace) -> None:
    """An agent name of 128 characters is accepted, 129 is refused (mutant: ``>=`` for ``>``)."""
    agent = await engine.register_agent("n" * 128)
    assert agent.name == "n" * 128
    with pytest.raises(ValidationError) as info:
        await engine.register_agent("n" * 129)
    assert info.value.field == "name"


async def test_session_metadata_merge_patch_follows_rfc_7386(engine: AsyncMemtrace) -> None:
    """RFC 7386's own examples: a patch object over a scalar replaces it with the patch (its
    nulls dropped), a scalar over an object replaces the object (mutant: ``or`` for ``and`` in
    the merge, which crashed on the latter)."""
    session = await engine.create_session(
        "bot", metadata={"a": {"x": 1}, "s": "text", "keep": [1, 2]}
    )
    merged = await engine.update_session(
        session.id,
        metadata={"a": 5, "s": {"y": None, "z": 2}, "new": {"n": None, "m": 1}},
    )
    expected = {"a": 5, "s": {"z": 2}, "keep": [1, 2], "new": {"m": 1}}
    assert merged.metadata == expected
    assert (await engine.get_session(session.id)).metadata == expected


async def test_a_closed_engine_can_be_opened_again(db_path: Path, registry: PluginRegistry) -> None:
    """close() then open() (or ``async with`` again) reopens the store (mutant: close leaving
    the engine marked open, so open() did nothing and the next write failed)."""
    engine = await aconnect(f"sqlite:///{db_path}", plugins=registry)
    await engine.add_memory(agent_id="bot", content="one")
    await engine.close()
    async with engine:
        await engine.add_memory(agent_id="bot", content="two")
        assert [m.content for m in (await engine.list_memories()).memories] == ["two", "one"]


async def test_an_export_trailer_with_a_malformed_version_is_refused(engine: AsyncMemtrace) -> None:
    """A trailer's ``version`` must be a positive integer (mutant: ``and`` for ``or`` in that
    check, which let 0, ``true`` and ``"1"`` through)."""
    await engine.add_memory(agent_id="exporter", content="kept once")
    lines = [line async for line in engine.iter_export()]
    await engine.purge_org()
    trailer = json.loads(lines[-1])
    assert trailer["kind"] == "trailer"
    for version in (0, -1, True, "1", None, 1.0):
        body = [*lines[:-1], json.dumps({**trailer, "version": version})]
        with pytest.raises(ValidationError) as info:
            await engine.import_jsonl(body)
        assert info.value.field == "trailer", version
        assert (await engine.list_memories(since="100w")).count == 0
    result = await engine.import_jsonl(lines)
    assert result.imported == 1
