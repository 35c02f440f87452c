"""Unit and property tests for memtrace_core.text and memtrace_core.ranking."""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace_core import ranking
from memtrace_core.ranking import (
    Candidate,
    CorpusStats,
    QueryPlan,
    RankingConfig,
    expand,
    merge_candidates,
    plan_query,
    rerank,
    search,
)
from memtrace_core.stores.sqlite import fts_any
from memtrace_core.text import (
    STOP_WORDS,
    extract_time_window,
    query_terms,
    stem,
    tokenize,
    word_variants,
)

NOW = datetime(2024, 3, 13, 15, 30, tzinfo=UTC)  # a Wednesday
OLD = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def _fts5(tokenizer: str) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE f USING fts5(x, tokenize='{tokenizer}')")
    except sqlite3.OperationalError:  # pragma: no cover - SQLite built without FTS5
        pytest.skip("SQLite has no FTS5")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(f, 'instance')")
    return db


def _fts5_tokens(db: sqlite3.Connection, text: str) -> list[str]:
    db.execute("DELETE FROM f")
    db.execute("INSERT INTO f(x) VALUES (?)", (text,))
    return [row[0] for row in db.execute("SELECT term FROM v ORDER BY offset")]


def _candidate(
    id: str,
    content: str,
    time: datetime = OLD,
    *,
    session: str | None = "s1",
    importance: float | None = None,
    tags: tuple[str, ...] = (),
) -> Candidate:
    return Candidate(
        id=id,
        content=content,
        time=time,
        agent_id="agent-1",
        event_type="message",
        tags=tags,
        importance=importance,
        session_id=session,
    )


# --------------------------------------------------------------------------------------------
# tokenize / stem / stop-words / query_terms
# --------------------------------------------------------------------------------------------


def test_tokenize_lowercases_splits_and_strips_diacritics() -> None:
    assert tokenize("Hey Mel! Café's naïve e-mail, 3.5 x_y") == [
        "hey",
        "mel",
        "cafe",
        "s",
        "naive",
        "e",
        "mail",
        "3",
        "5",
        "x",
        "y",
    ]
    assert tokenize("") == []
    assert tokenize("?!  --") == []


@pytest.mark.parametrize(
    "text",
    [
        "Caroline: I went to a LGBTQ support group yesterday!",
        "Crème brûlée, Ångström & Øresund — naïveté",
        "ÉCOLE d'été 2023-05-08 10:30pm #tags @user",
        "日本語のテキスト and ünïcödé 🙂 emoji a🙂b ❤",
    ],
)
def test_tokenize_matches_fts5_unicode61(text: str) -> None:
    db = _fts5("unicode61 remove_diacritics 2")
    assert tokenize(text) == _fts5_tokens(db, text)


# ASCII, Latin-1 and Latin Extended-A (µ is folded to Greek mu by FTS5; not worth mirroring).
_LATIN = st.characters(min_codepoint=32, max_codepoint=0x17E, blacklist_characters="\u00b5")


@given(st.text(alphabet=_LATIN, max_size=60))
@settings(max_examples=200, deadline=None)
def test_tokenize_matches_fts5_on_latin_text(text: str) -> None:
    db = _fts5("unicode61 remove_diacritics 2")
    assert tokenize(text) == _fts5_tokens(db, text)


@given(st.text(max_size=80))
def test_tokenize_is_idempotent_and_normalised(text: str) -> None:
    tokens = tokenize(text)
    assert tokenize(" ".join(tokens)) == tokens
    for token in tokens:
        assert token
        assert token == token.lower()
        assert all(ch.isalnum() or ord(ch) > 0xFFFF for ch in token)


def test_stem_matches_porter() -> None:
    assert stem("running") == "run"
    assert stem("memories") == "memori"
    assert stem("painting") == "paint"
    assert stem("is") == "is"  # shorter than 3: passed through, like FTS5


_PORTER_WORDS = (
    "running painted paintings happily generous connection relational adoption agencies "
    "conversations supporting camping hiking pottery swimming caresses ponies cats "
    "feed agreed plastered motoring sing conflated troubled sized hopping tanned falling "
    "hissing fizzed failing filing happy sky relate conditional rational valenci "
    "digitizer conformabli radicalli differentli vileli analogousli vietnamization "
    "predication operator feudalism decisiveness hopefulness callousness formaliti "
    "sensitiviti sensibiliti triplicate formative formalize electriciti electrical "
    "hopeful goodness revival allowance inference airliner gyroscopic adjustable "
    "defensible irritant replacement adjustment dependent adoption homologou "
    "communism activate angulariti homologous effective bowdlerize probate rate cease"
)


def test_stem_agrees_with_fts5_porter_on_common_words() -> None:
    db = _fts5("porter unicode61 remove_diacritics 2")
    words = _PORTER_WORDS.split()
    for word in words:
        assert [stem(word)] == _fts5_tokens(db, word), word


@given(st.from_regex(r"[a-z]{1,12}", fullmatch=True))
def test_stem_is_stable_and_never_longer(word: str) -> None:
    stemmed = stem(word)
    assert len(stemmed) <= len(word)
    assert stem(word) == stemmed  # cached and deterministic


def test_stop_words_cover_question_words() -> None:
    for word in ("what", "when", "who", "where", "why", "how", "did", "does", "the", "a"):
        assert word in STOP_WORDS
    for word in ("support", "group", "caroline", "paint", "go"):
        assert word not in STOP_WORDS
    assert all(word == word.lower() and tokenize(word) == [word] for word in STOP_WORDS)


def test_query_terms_drop_stop_words_keep_order_and_dedupe() -> None:
    assert query_terms("When did Caroline go to the LGBTQ support group?") == [
        "caroline",
        "go",
        "lgbtq",
        "support",
        "group",
    ]
    assert query_terms("Paint, paint, PAINT the fence!") == ["paint", "fence"]
    assert query_terms("what is it?") == []


@given(st.text(max_size=80))
def test_query_terms_properties(query: str) -> None:
    terms = query_terms(query)
    assert len(terms) == len(set(terms))
    assert not set(terms) & STOP_WORDS
    tokens = tokenize(query)
    assert set(terms) <= set(tokens)
    # order of first occurrence is kept
    assert terms == [t for t in dict.fromkeys(tokens) if t not in STOP_WORDS]


def test_word_variants_are_symmetric() -> None:
    assert word_variants("went") == ("go", "gone")
    assert "won" in word_variants("win")
    assert "win" in word_variants("won")
    assert word_variants("walked") == ()
    for form in ("go", "went", "gone", "children", "child"):
        for other in word_variants(form):
            assert form in word_variants(other)


# --------------------------------------------------------------------------------------------
# extract_time_window
# --------------------------------------------------------------------------------------------


def _window(query: str) -> tuple[datetime, datetime]:
    window = extract_time_window(query, NOW)
    assert window is not None, query
    return window.since, window.until


def _day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "since", "until"),
    [
        ("what did I eat yesterday", _day(2024, 3, 12), _day(2024, 3, 13)),
        ("notes from today", _day(2024, 3, 13), _day(2024, 3, 14)),
        ("what happened last week", _day(2024, 3, 4), _day(2024, 3, 11)),
        ("plans this week", _day(2024, 3, 11), _day(2024, 3, 18)),
        ("bills last month", _day(2024, 2, 1), _day(2024, 3, 1)),
        ("goals this month", _day(2024, 3, 1), _day(2024, 4, 1)),
        ("trips last year", _day(2023, 1, 1), _day(2024, 1, 1)),
        ("what did we decide 3 days ago", _day(2024, 3, 10), _day(2024, 3, 11)),
        ("two months ago", _day(2024, 1, 1), _day(2024, 2, 1)),
        ("last Friday", _day(2024, 3, 8), _day(2024, 3, 9)),
        ("last Wednesday", _day(2024, 3, 6), _day(2024, 3, 7)),
        ("what did I buy in May", _day(2023, 5, 1), _day(2023, 6, 1)),
        ("meetings in March", _day(2024, 3, 1), _day(2024, 4, 1)),
        ("in May 2023", _day(2023, 5, 1), _day(2023, 6, 1)),
        ("during December 2022", _day(2022, 12, 1), _day(2023, 1, 1)),
        ("in 2022", _day(2022, 1, 1), _day(2023, 1, 1)),
        ("on 8 May, 2023", _day(2023, 5, 8), _day(2023, 5, 9)),
        ("on October 13, 2023", _day(2023, 10, 13), _day(2023, 10, 14)),
        ("on 2023-05-08", _day(2023, 5, 8), _day(2023, 5, 9)),
    ],
)
def test_extract_time_window(query: str, since: datetime, until: datetime) -> None:
    assert _window(query) == (since, until)


def test_extract_time_window_removes_phrases() -> None:
    window = extract_time_window("Where did we go last week with Anna?", NOW)
    assert window is not None
    assert window.query == "Where did we go with Anna?"
    assert window.phrases == ("last week",)
    assert window.relative
    absolute = extract_time_window("What did Nate do on 25 May, 2022?", NOW)
    assert absolute is not None
    assert not absolute.relative
    assert absolute.phrases == ("25 May, 2022",)


@pytest.mark.parametrize(
    "query",
    [
        "When did Caroline go to the LGBTQ support group?",
        "May I ask what the plan is?",
        "the last one",
        "weekly planning",
        "room 2022",
        "recently",
        "",
    ],
)
def test_extract_time_window_is_conservative(query: str) -> None:
    assert extract_time_window(query, NOW) is None


def test_extract_time_window_combines_phrases_and_accepts_naive_now() -> None:
    window = extract_time_window("yesterday or last week", NOW.replace(tzinfo=None))
    assert window is not None
    assert (window.since, window.until) == (_day(2024, 3, 4), _day(2024, 3, 13))
    assert window.since.tzinfo is not None
    assert window.contains(datetime(2024, 3, 12, 9))  # naive -> UTC
    assert not window.contains(_day(2024, 3, 13))


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
    st.sampled_from(
        [
            "yesterday",
            "today",
            "last week",
            "this week",
            "last month",
            "this month",
            "last year",
            "this year",
            "3 days ago",
            "2 weeks ago",
            "5 months ago",
            "last weekend",
            "last Sunday",
        ]
    ),
)
def test_relative_windows_are_well_formed(now: datetime, phrase: str) -> None:
    window = extract_time_window(f"what happened {phrase}?", now)
    assert window is not None
    assert window.since < window.until
    assert window.since <= now.replace(tzinfo=UTC)  # relative windows never start in the future
    assert window.query == "what happened ?"
    assert window.relative


# --------------------------------------------------------------------------------------------
# plan_query / the store's FTS5 expression
# --------------------------------------------------------------------------------------------


def test_plan_query_terms_and_weights() -> None:
    plan = plan_query("When did Caroline go to the support group?", NOW)
    assert plan.terms[:4] == ("caroline", "go", "support", "group")
    assert "went" in plan.terms  # irregular inflection of "go"
    assert plan.core == ("carolin", "go", "support", "group")
    assert all(plan.weights[s] == 1.0 for s in plan.core)
    assert plan.aliases["go"] == ("went", "gone")
    assert plan.time_window is None
    assert plan.filter_window is None
    no_variants = plan_query("When did Caroline go?", NOW, RankingConfig(word_variants=False))
    assert no_variants.terms == ("caroline", "go")


def test_plan_query_time_modes() -> None:
    soft = plan_query("what did I buy yesterday", NOW)
    assert soft.time_window is not None
    assert soft.filter_window is None
    assert "yesterday" in soft.terms
    hard = plan_query("what did I buy yesterday", NOW, RankingConfig(time_filter=True))
    assert hard.filter_window == (_day(2024, 3, 12), _day(2024, 3, 13))
    assert hard.terms == ("buy", "bought")
    off = plan_query("what did I buy yesterday", NOW, RankingConfig(time_expressions=False))
    assert off.time_window is None


def test_plan_query_falls_back_to_stop_words_and_empty() -> None:
    assert plan_query("who am I", NOW).terms == ("who", "am", "i")
    assert plan_query("?!", NOW).is_empty
    assert fts_any(plan_query("", NOW).terms) == ""


def test_fts_any_quotes_terms() -> None:
    plan = QueryPlan(query="x", terms=("support", 'we"ird', "or"), weights={}, core=())
    assert fts_any(plan.terms) == '"support" OR "we""ird" OR "or"'


@given(st.text(max_size=60))
def test_match_expression_is_valid_fts5(query: str) -> None:
    db = _fts5("porter unicode61 remove_diacritics 2")
    db.execute("INSERT INTO f(x) VALUES ('some text to search')")
    plan = plan_query(query, NOW)
    expression = fts_any(plan.terms)
    if not expression:
        assert plan.is_empty
        return
    (count,) = db.execute("SELECT count(*) FROM f WHERE f MATCH ?", (expression,)).fetchone()
    expected = {stem(t) for t in plan.terms} & {"some", "text", "to", "search"}
    assert count == (1 if expected else 0)


# --------------------------------------------------------------------------------------------
# rerank
# --------------------------------------------------------------------------------------------


def _ids(ranked: list[tuple[Candidate, float]]) -> list[str]:
    return [candidate.id for candidate, _ in ranked]


def test_rerank_prefers_covering_all_terms() -> None:
    plan = plan_query("adoption agency interview", NOW)
    candidates = [
        _candidate("a", "Adoption is a big step.", session="s1"),
        _candidate("b", "I had my adoption agency interview today!", session="s2"),
        _candidate("c", "The agency was closed.", session="s3"),
    ]
    ranked = rerank(plan, candidates, NOW)
    assert _ids(ranked)[0] == "b"
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)


def test_rerank_ignores_native_store_score() -> None:
    plan = plan_query("pottery class", NOW)
    a = _candidate("a", "I signed up for a pottery class", session="s1")
    b = _candidate("b", "The class was fun", session="s2")
    first = rerank(
        plan, [dataclasses.replace(a, bm25=-1.0), dataclasses.replace(b, bm25=-9.0)], NOW
    )
    second = rerank(
        plan, [dataclasses.replace(b, bm25=-0.1), dataclasses.replace(a, bm25=-5.0)], NOW
    )
    assert _ids(first) == _ids(second) == ["a", "b"]
    # not only the order: the scores themselves owe nothing to the store's native score
    assert [score for _, score in first] == [score for _, score in second]
    unscored = rerank(plan, [a, b], NOW)
    assert [score for _, score in unscored] == [score for _, score in first]


def test_rerank_matches_irregular_forms() -> None:
    plan = plan_query("Did she win the race?", NOW)
    ranked = rerank(
        plan,
        [
            _candidate("x", "The race was long", session="s1"),
            _candidate("y", "She won the race!", session="s2"),
        ],
        NOW,
    )
    assert _ids(ranked) == ["y", "x"]


def test_rerank_neighbour_context_boost() -> None:
    plan = plan_query("new running shoes", NOW)
    base = datetime(2023, 5, 8, 12, tzinfo=UTC)
    answer = _candidate("answer", "They are for running, great shoes", base + timedelta(minutes=1))
    other = _candidate(
        "other", "Running shoes are for running", base + timedelta(days=3), session="s9"
    )
    question = _candidate("question", "Look at my new running shoes!", base)
    config = RankingConfig(prf=False, coverage_weight=0.0, proximity_weight=0.0)
    without = rerank(
        plan, [answer, other, question], NOW, dataclasses.replace(config, context_weight=0.0)
    )
    with_context = rerank(plan, [answer, other, question], NOW, config)
    assert _ids(without).index("answer") > _ids(without).index("other")
    assert _ids(with_context).index("answer") < _ids(with_context).index("other")


def test_rerank_recency_and_importance_priors() -> None:
    plan = plan_query("coffee", NOW)
    old = _candidate("old", "coffee", NOW - timedelta(days=400), session="a")
    new = _candidate("new", "coffee", NOW - timedelta(hours=1), session="b")
    assert _ids(rerank(plan, [old, new], NOW)) == ["new", "old"]
    flat = rerank(plan, [new, old], NOW, RankingConfig(recency_weight=0.0))
    assert _ids(flat) == ["new", "old"]  # the tie-break (time) alone orders them
    assert flat[0][1] == flat[1][1]  # recency_weight=0: age adds nothing to the score
    default = rerank(plan, [new, old], NOW)
    assert default[0][1] > default[1][1]
    low = _candidate("low", "coffee", OLD, importance=0.1, session="c")
    high = _candidate("high", "coffee", OLD, importance=0.9, session="d")
    assert _ids(rerank(plan, [low, high], NOW)) == ["high", "low"]


def test_rerank_time_window_boost() -> None:
    plan = plan_query("what did I cook on 8 May, 2023", NOW)
    inside = _candidate(
        "inside", "I cooked pasta", datetime(2023, 5, 8, 19, tzinfo=UTC), session="a"
    )
    outside = _candidate(
        "outside", "I cooked pasta", datetime(2023, 5, 1, 19, tzinfo=UTC), session="b"
    )
    assert _ids(rerank(plan, [outside, inside], NOW)) == ["inside", "outside"]
    off = RankingConfig(time_boost=0.0)
    # equal scores: ties go to the newer memory
    assert _ids(rerank(plan_query("cook", NOW), [outside, inside], NOW, off)) == [
        "inside",
        "outside",
    ]


def test_rerank_field_weights_use_tags() -> None:
    plan = plan_query("billing", NOW)
    tagged = _candidate(
        "tagged", "customer called about an invoice billing", tags=("billing",), session="a"
    )
    plain = _candidate("plain", "customer called about an invoice billing", session="b")
    assert _ids(rerank(plan, [plain, tagged], NOW))[0] == "tagged"
    no_tags = RankingConfig(weight_tags=0.0, recency_weight=0.0)
    scores = {c.id: s for c, s in rerank(plan, [plain, tagged], NOW, no_tags)}
    assert scores["tagged"] == pytest.approx(scores["plain"])


def test_rerank_corpus_stats_change_idf() -> None:
    plan = plan_query("rare common", NOW)
    candidates = [
        _candidate("r", "rare thing", session="a"),
        _candidate("c", "common thing", session="b"),
    ]
    stats = CorpusStats(doc_count=1000, avg_len=2.0, doc_freq={"rare": 1, "common": 900})
    config = RankingConfig(context_weight=0.0)
    assert _ids(rerank(plan, candidates, NOW, config, stats))[0] == "r"
    flipped = CorpusStats(doc_count=1000, avg_len=2.0, doc_freq={"rare": 900, "common": 1})
    assert _ids(rerank(plan, candidates, NOW, config, flipped))[0] == "c"


def test_rerank_empty_and_duplicates() -> None:
    plan = plan_query("tea", NOW)
    assert rerank(plan, [], NOW) == []
    one = _candidate("a", "tea time")
    assert _ids(rerank(plan, [one, one], NOW)) == ["a"]


_VOCABULARY = "tea coffee walk park dog cat painting class beach book run went"
_words = st.sampled_from(_VOCABULARY.split())


@given(
    st.lists(st.lists(_words, min_size=1, max_size=8), min_size=1, max_size=25),
    st.lists(_words, min_size=1, max_size=4),
    st.randoms(use_true_random=False),
)
@settings(max_examples=60, deadline=None)
def test_rerank_is_order_independent_and_sorted(
    docs: list[list[str]], query: list[str], rnd: object
) -> None:
    candidates = [
        _candidate(f"m{i}", " ".join(words), OLD + timedelta(minutes=i), session=f"s{i % 3}")
        for i, words in enumerate(docs)
    ]
    plan = plan_query(" ".join(query), NOW)
    ranked = rerank(plan, candidates, NOW)
    shuffled = list(candidates)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert rerank(plan, shuffled, NOW) == ranked
    assert sorted(_ids(ranked)) == sorted(c.id for c in candidates)
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(score >= 0 for score in scores)


_NEAR_WORDS = st.sampled_from(
    ["go", "went", "goes", "run", "ran", "running", "fast", "dog", "dogs", "the", "walk"]
)


@given(
    st.lists(_NEAR_WORDS, max_size=30),
    st.lists(_NEAR_WORDS, min_size=2, max_size=4),
    st.integers(1, 4),
)
@settings(max_examples=150, deadline=None)
def test_proximity_is_the_share_of_close_consecutive_query_words(
    content: list[str], query: list[str], window: int
) -> None:
    """The proximity term, against its definition computed from the content's stems: a
    consecutive pair of query stems counts when some occurrence of each (the stem or one of
    its irregular forms, e.g. "went" for "go") is at most ``window`` tokens apart."""
    plan = plan_query(" ".join(query), NOW)
    keys = ranking._groups(plan)
    stems_of: dict[str, list[str]] = {}
    for term, key in keys.items():
        stems_of.setdefault(key, []).append(term)
    terms = list(plan.weights)
    aliases = [(term, key) for term, key in keys.items() if term != key]
    weights = (1.0, 0.0, 0.0, 0.0)  # content only
    doc = ranking._doc(_candidate("m", " ".join(content), NOW), weights, terms, aliases)
    pairs = [(left, right, 1.0) for left, right in itertools.pairwise(plan.core)]
    got = ranking._proximity(doc, plan.core, stems_of, pairs, float(len(pairs)), window)

    tokens = [stem(token) for token in tokenize(" ".join(content))]
    where = {k: [i for i, t in enumerate(tokens) if keys.get(t) == k] for k in plan.core}
    present = sum(1 for k in plan.core if where[k])
    close = [
        any(abs(i - j) <= window for i in where[left] for j in where[right])
        for left, right, _ in pairs
    ]
    want = 0.0 if not pairs or present < 2 else sum(close) / len(pairs)
    assert got == pytest.approx(want)


# --------------------------------------------------------------------------------------------
# expand / search
# --------------------------------------------------------------------------------------------


def test_expand_adds_feedback_terms() -> None:
    plan = plan_query("adoption", NOW)
    top = [
        _candidate("1", "The adoption agency interview went well, the agency was kind"),
        _candidate("2", "Adoption agency paperwork is done"),
    ]
    expanded = expand(plan, rerank(plan, top, NOW))
    assert expanded is not None
    assert expanded.expanded
    assert expanded.terms[0] == "adoption"
    assert "agency" in expanded.terms
    assert 0 < expanded.weights["agenc"] < 1.0
    assert expanded.weights["adopt"] == 1.0
    assert expand(expanded, top) is None  # expands once
    assert expand(plan, top, RankingConfig(prf=False)) is None
    assert expand(plan, []) is None


def test_merge_candidates_keeps_first() -> None:
    a, b = _candidate("a", "x"), _candidate("b", "y")
    assert merge_candidates([a], [dataclasses.replace(a, content="z"), b]) == [a, b]


async def test_search_runs_feedback_round() -> None:
    memories = [
        _candidate("1", "Adoption agency interview next week", session="a"),
        _candidate("2", "The agency sent the paperwork", session="b"),
        _candidate("3", "We walked the dog", session="c"),
    ]
    plans: list[QueryPlan] = []

    async def fetch(plan: QueryPlan) -> list[Candidate]:
        plans.append(plan)
        words = set(plan.terms)
        return [m for m in memories if words & set(tokenize(m.content))]

    config = RankingConfig()
    ranked = await search(plan_query("adoption", NOW, config), fetch, NOW, config)
    assert len(plans) == 2
    assert not plans[0].expanded
    assert plans[1].expanded
    assert _ids(ranked) == ["1", "2"]  # "2" only found through feedback
    plans.clear()
    off = RankingConfig(prf=False)
    assert _ids(await search(plan_query("adoption", NOW, off), fetch, NOW, off)) == ["1"]
    assert len(plans) == 1
    plans.clear()
    # nothing to search for: the store is not asked
    assert await search(plan_query("?!", NOW, config), fetch, NOW, config) == []
    assert plans == []


# --------------------------------------------------------------------------------------------
# search: the pipeline the engine runs
# --------------------------------------------------------------------------------------------


async def test_search_merges_the_feedback_pool_with_the_first_one() -> None:
    """After the feedback round the final ranking is over BOTH pools: a candidate that only
    the first stage-1 call returned is still ranked."""
    plan = plan_query("outage", NOW)
    first = [
        _candidate("only-first", "outage reported", session="s1"),
        _candidate("both", "payment gateway outage", session="s2"),
    ]
    second = [
        _candidate("both", "payment gateway outage", session="s2"),
        _candidate("only-feedback", "payment gateway payment gateway down", session="s3"),
    ]
    seen: list[tuple[str, ...]] = []

    async def fetch(p: QueryPlan) -> list[Candidate]:
        seen.append(p.terms)
        return first if not p.expanded else second

    ranked = await search(plan, fetch, NOW, RankingConfig())
    assert len(seen) == 2  # the feedback round ran
    assert set(_ids(ranked)) == {"only-first", "both", "only-feedback"}
    without = await search(plan, fetch, NOW, RankingConfig(prf=False))
    assert set(_ids(without)) == {"only-first", "both"}
