"""Store-independent keyword ranking: query planning, reranking and pseudo-relevance feedback.

Search runs in two stages.

**Stage 1 (the store).** The store matches the OR of the plan's terms against its full-text
index (its own query syntax: the SQLite store quotes each term for FTS5), restricted to the caller's filters
(and to :attr:`QueryPlan.filter_window` when the plan asks for a hard time filter), and returns
its best ``config.candidates`` rows as :class:`Candidate` objects. The store's native score is
only used to choose that pool; it never reaches the final ordering.

**Stage 2 (this module).** :func:`rerank` scores every candidate from the candidates themselves,
so the ordering is the same on every store that returns the same pool. With ``q`` a query stem,
``w_q`` its weight (1 for query words, less for feedback terms) and ``d`` a candidate:

1. *BM25F relevance*::

       tf_d(q) = Σ_f W_f · count of q in field f of d     (fields: content, agent_id,
       len_d   = Σ_f W_f · token count of field f of d      event_type, tags)
       idf(q)  = ln(1 + (N − df(q) + 0.5) / (df(q) + 0.5))
       bm25(d) = Σ_q w_q · idf(q) · tf_d(q)·(k1 + 1) / (tf_d(q) + k1·(1 − b + b·len_d / avg_len))

   Occurrences of a query word's irregular inflections (:attr:`QueryPlan.aliases`, e.g.
   "went" for "go") count as occurrences of the word. ``N``, ``df`` and ``avg_len`` come from
   :class:`CorpusStats` when the store supplies them, otherwise from the candidate pool itself
   (the default: then the order depends on nothing but the pool).
2. *Term coverage* ``cov(d)``: the idf mass of the query's own stems found in ``d`` divided
   by the idf mass of all of them (1 when every query word occurs).
3. *Proximity* ``prox(d)``: for each pair of consecutive query stems, ``min(idf)`` of the pair
   when both occur within ``proximity_window`` tokens of each other in the content, divided by
   the total ``min(idf)`` over all pairs.
4. ``base(d) = bm25(d) / max_pool bm25 + coverage_weight · cov(d) + proximity_weight · prox(d)``
5. *Conversational context*: ``ctx(d)`` is the best ``base`` of another candidate of the same
   agent (and the same session, when the store reports one) at most ``context_max_gap_seconds``
   away in time — i.e. a neighbouring turn that matches the query too.
   ``rel(d) = base(d) + context_weight · ctx(d)``
6. *Final score*::

       score(d) = rel(d) / max_pool rel
                + recency_weight    · 0.5 ** (age_days(d) / recency_half_life_days)
                + importance_weight · clamp(importance(d), 0, 1)     (missing = 0)
                + time_boost        · [d.time inside the query's time window]

   Ages are measured from the real ``now``, so old memories get no recency bonus at all
   (neutral) instead of being re-ordered among themselves.

Ties are broken by time (newer first), then by id, so the order is total and deterministic.

**Pseudo-relevance feedback** (:func:`expand`): the stems that are most characteristic of the
top reranked candidates (weighted by their score and idf) are added to the plan with a reduced
weight; the engine runs stage 1 again with the expanded plan, merges both pools and reranks.
:func:`search` is that whole pipeline given an async ``fetch(plan) -> candidates``; the engine
runs it (there is no second copy), with a fetch that asks the store.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from memtrace_core.text import (
    STOP_WORDS,
    TimeWindow,
    extract_time_window,
    query_terms,
    stem,
    tokenize,
    word_variants,
)

__all__ = [
    "Candidate",
    "CorpusStats",
    "QueryPlan",
    "RankingConfig",
    "expand",
    "merge_candidates",
    "plan_query",
    "rerank",
    "search",
]

_SECONDS_PER_DAY = 86_400.0
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class RankingConfig:
    """Every ranking knob, with the defaults the LoCoMo benchmark reports.

    All fields are plain numbers or booleans so the config can be loaded from TOML
    (``RankingConfig(**toml_table)``). Weights of 0 switch a technique off.
    """

    # --- stage 1 (store) -------------------------------------------------------------------
    candidates: int = 200
    """How many rows the store returns per stage-1 query (its native BM25 order)."""
    exact_match_limit: int = 5000
    """Stage 1 ranks by the store's BM25 only while the query's terms match at most this many
    memories; above it (a common word in a large store, where scoring every match costs ~5 µs
    each) the store returns the newest memories matching every query word, topped up with the
    newest matching any word, and stage 2 re-ranks them as usual."""
    large_candidates: int = 100
    """Stage-1 pool size on that recent-first path."""
    large_prf: bool = False
    """Whether pseudo-relevance feedback also runs on the recent-first path (it doubles the
    cost there and its gain comes from re-querying a BM25-ranked corpus)."""
    weight_content: float = 1.0
    """Field weight of ``content`` (FTS5 ``bm25()`` column weight and BM25F weight)."""
    weight_agent: float = 0.5
    """Field weight of ``agent_id``."""
    weight_event_type: float = 0.5
    """Field weight of ``event_type``."""
    weight_tags: float = 2.0
    """Field weight of ``tags`` (space-joined)."""

    # --- query ------------------------------------------------------------------------
    word_variants: bool = True
    """Also search irregular inflections of query words ("went" for "go", "won" for "win");
    they count as the same query term."""

    # --- stage 2 relevance ------------------------------------------------------------------
    k1: float = 1.2
    """BM25 term-frequency saturation."""
    b: float = 0.5
    """BM25 length normalisation (0 = none, 1 = full). Memories are short and their length
    says little about topicality, hence less than the textbook 0.75."""
    coverage_weight: float = 0.3
    """Bonus for covering more of the query's idf mass (0..1 scaled)."""
    proximity_weight: float = 0.1
    """Bonus for consecutive query words occurring close together in the content."""
    proximity_window: int = 3
    """Max token distance for the proximity bonus (1 = adjacent)."""
    context_weight: float = 0.6
    """Share of the best neighbouring matching memory's score added to a memory: an answer
    ("Yes, for running!") often sits next to the turn that names the topic."""
    context_max_gap_seconds: float = 120.0
    """Max time distance for two memories of one agent/session to count as neighbours
    (a couple of conversational turns)."""

    # --- pseudo-relevance feedback --------------------------------------------------------
    prf: bool = True
    """Run a second stage-1 query expanded with feedback terms."""
    prf_docs: int = 5
    """Number of top reranked candidates used as feedback documents."""
    prf_terms: int = 8
    """Number of feedback terms added to the plan."""
    prf_weight: float = 0.3
    """Query weight of the best feedback term (others scale down with their score)."""

    # --- priors -------------------------------------------------------------------------
    recency_weight: float = 0.05
    """Weight of the recency prior (exponential decay on age from the real ``now``)."""
    recency_half_life_days: float = 30.0
    """Age at which the recency prior halves."""
    importance_weight: float = 0.05
    """Weight of the memory's importance (0..1; missing counts as 0)."""

    # --- time expressions --------------------------------------------------------------
    time_expressions: bool = True
    """Recognise phrases like "yesterday" / "in May 2023" in the query."""
    time_filter: bool = False
    """Apply a recognised window as a hard store filter (otherwise only :attr:`time_boost`)."""
    time_boost: float = 0.1
    """Score bonus for candidates inside a recognised time window."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One stage-1 row as returned by a store."""

    id: str
    content: str
    time: datetime
    agent_id: str | None = None
    event_type: str | None = None
    tags: tuple[str, ...] = ()
    importance: float | None = None
    bm25: float = 0.0
    """The store's native score (FTS5: lower is better); informative only, never used here."""
    session_id: str | None = None
    """Optional: restricts conversational context to memories of the same session."""


@dataclass(frozen=True, slots=True)
class CorpusStats:
    """Corpus statistics a store may supply so idf does not depend on the candidate pool.

    ``doc_freq`` maps stems (as produced by :func:`memtrace_core.text.stem`) to the number of
    searchable memories containing them (in any field); stems missing from it fall back to the
    candidate pool's counts scaled to ``doc_count``. ``avg_len`` is the mean field-weighted
    token count (see :class:`RankingConfig` field weights).
    """

    doc_count: int
    avg_len: float
    doc_freq: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What to ask the store for, and how to score what comes back."""

    query: str
    """The original query text."""
    terms: tuple[str, ...]
    """Words to OR together in the stage-1 full-text query (unstemmed, lower-case)."""
    weights: Mapping[str, float]
    """Query weight per *stem* (1.0 for query words, less for feedback terms)."""
    core: tuple[str, ...]
    """The query's own stems, in query order (coverage and proximity use these)."""
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra stems that count as occurrences of a weighted stem (irregular inflections)."""
    time_window: TimeWindow | None = None
    """Time window recognised in the query, if any."""
    time_filter: bool = False
    """Whether the store should restrict stage 1 to :attr:`time_window`."""
    expanded: bool = False
    """True for a plan produced by :func:`expand`."""

    @property
    def filter_window(self) -> tuple[datetime, datetime] | None:
        """``(since, until)`` the store must apply as a hard filter, or ``None``."""
        if self.time_filter and self.time_window is not None:
            return self.time_window.since, self.time_window.until
        return None

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to search for (stage 1 can be skipped)."""
        return not self.terms


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def plan_query(query: str, now: datetime, config: RankingConfig | None = None) -> QueryPlan:
    """Turn a free-text query into a :class:`QueryPlan`.

    Stop-words are dropped (a query made only of stop-words keeps its words, so "who am I"
    still searches something); recognised time phrases become :attr:`QueryPlan.time_window`
    and, when ``config.time_filter`` is set, are also removed from the keywords.
    """
    config = config or RankingConfig()
    window = extract_time_window(query, now) if config.time_expressions else None
    text = window.query if window is not None and config.time_filter else query
    words = query_terms(text)
    if not words:
        words = list(dict.fromkeys(tokenize(text)))
    core = tuple(dict.fromkeys(stem(word) for word in words))
    terms = list(words)
    aliases: dict[str, tuple[str, ...]] = {}
    if config.word_variants:
        for word in words:
            variants = [v for v in word_variants(word) if v not in STOP_WORDS]
            extra = tuple(dict.fromkeys(s for v in variants if (s := stem(v)) != stem(word)))
            if extra:
                aliases[stem(word)] = tuple(dict.fromkeys(aliases.get(stem(word), ()) + extra))
                terms.extend(v for v in variants if v not in terms)
    return QueryPlan(
        query=query,
        terms=tuple(terms),
        weights=dict.fromkeys(core, 1.0),
        core=core,
        aliases=aliases,
        time_window=window,
        time_filter=config.time_filter and window is not None,
    )


# --------------------------------------------------------------------------------------------
# Candidate analysis
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Analysis:
    tokens: tuple[str, ...]
    counts: Mapping[str, int]


_EMPTY = _Analysis((), {})


@functools.lru_cache(maxsize=1024)
def _analysis(text: str) -> _Analysis:
    """Stems of a short field value (agent id, event type, tags) and their counts; cached, as
    a handful of distinct values recur in every pool."""
    tokens = tuple(stem(token) for token in tokenize(text))
    return _Analysis(tokens, Counter(tokens))


@dataclass(frozen=True, slots=True)
class _Features:
    """The query-independent analysis of one candidate: computed once per distinct memory text
    and field weights (cached), shared by both reranks of a search and by later searches."""

    positions: Mapping[str, list[int]]
    """Positions of each content stem, ascending (proximity)."""
    tf: Mapping[str, float]
    """Field-weighted count of every stem over all fields (BM25F)."""
    length: float
    """Field-weighted token count."""


@functools.lru_cache(maxsize=16384)
def _features(
    content: str,
    agent_id: str | None,
    event_type: str | None,
    tag_values: tuple[str, ...],
    weights: tuple[float, float, float, float],
) -> _Features:
    tokens = tuple(map(stem, tokenize(content)))
    positions: dict[str, list[int]] = {}
    for index, token in enumerate(tokens):
        positions.setdefault(token, []).append(index)
    tags = " ".join(tag_values)
    tf: dict[str, float] = {}
    length = 0.0
    w_content, w_agent, w_event, w_tags = weights
    if w_content > 0:
        length += w_content * len(tokens)
        tf = {term: w_content * count for term, count in Counter(tokens).items()}
    for value, weight in ((agent_id, w_agent), (event_type, w_event), (tags, w_tags)):
        if not value or weight <= 0:
            continue
        analysis = _analysis(value)
        length += weight * len(analysis.tokens)
        for term, count in analysis.counts.items():
            tf[term] = tf.get(term, 0.0) + weight * count
    return _Features(positions, tf, length)


@dataclass(slots=True)
class _Doc:
    candidate: Candidate
    positions: Mapping[str, list[int]]
    """Positions of each content stem, ascending."""
    tf: dict[str, float]
    """Field-weighted frequency of each query key (aliases folded in); only keys that occur."""
    length: float
    timestamp: float


def _groups(plan: QueryPlan) -> dict[str, str]:
    """Map every stem that counts for a weighted stem (itself or an alias) to that stem."""
    keys = {term: term for term in plan.weights}
    for term in plan.weights:
        for alias in plan.aliases.get(term, ()):
            keys.setdefault(alias, term)
    return keys


def _field_weights(config: RankingConfig) -> tuple[float, float, float, float]:
    return (
        config.weight_content,
        config.weight_agent,
        config.weight_event_type,
        config.weight_tags,
    )


def _doc(
    candidate: Candidate,
    weights: tuple[float, float, float, float],
    terms: Sequence[str],
    aliases: Sequence[tuple[str, str]],
) -> _Doc:
    """``terms`` are the plan's weighted stems, ``aliases`` ``(alias stem, weighted stem)``
    pairs (see :func:`_groups`): an alias's occurrences count for its weighted stem."""
    tags = candidate.tags
    features = _features(
        candidate.content,
        candidate.agent_id,
        candidate.event_type,
        tags if type(tags) is tuple else tuple(tags),
        weights,
    )
    counts = features.tf
    tf = {term: counts[term] for term in terms if term in counts}
    for alias, key in aliases:
        value = counts.get(alias)
        if value:
            tf[key] = tf.get(key, 0.0) + value
    when = candidate.time
    # an aware datetime's timestamp does not depend on its zone; a naive one is UTC (_utc)
    stamp = when.timestamp() if when.tzinfo is not None else _utc(when).timestamp()
    return _Doc(candidate, features.positions, tf, features.length, stamp)


def _idf(doc_count: float, doc_freq: float) -> float:
    doc_freq = min(max(doc_freq, 0.0), doc_count)
    return math.log(1.0 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5))


class _Stats:
    """idf and average length, from :class:`CorpusStats` or from the candidate pool."""

    def __init__(self, docs: Sequence[_Doc], stats: CorpusStats | None, plan: QueryPlan) -> None:
        self._aliases = plan.aliases
        self._pool_df: Counter[str] = Counter()
        for doc in docs:
            self._pool_df.update(doc.tf.keys())
        self._pool_n = max(len(docs), 1)
        self._stats = stats
        if stats is not None and stats.doc_count > 0:
            self.doc_count = float(max(stats.doc_count, len(docs)))
            self.avg_len = stats.avg_len if stats.avg_len > 0 else 1.0
        else:
            self._stats = None
            self.doc_count = float(self._pool_n)
            total = sum(doc.length for doc in docs)
            self.avg_len = total / self._pool_n if total > 0 else 1.0
        self._cache: dict[str, float] = {}

    def idf(self, term: str) -> float:
        cached = self._cache.get(term)
        if cached is not None:
            return cached
        if self._stats is not None:
            known = [
                self._stats.doc_freq[t]
                for t in (term, *self._aliases.get(term, ()))
                if t in self._stats.doc_freq
            ]
            df = max(known) if known else None
            if df is None:
                df = round(self._pool_df[term] * self.doc_count / self._pool_n)
            value = _idf(self.doc_count, max(float(df), float(self._pool_df[term])))
        else:
            value = _idf(self.doc_count, float(self._pool_df[term]))
        self._cache[term] = value
        return value


def _bm25(
    doc: _Doc,
    query_idf: Sequence[tuple[str, float]],
    avg_len: float,
    config: RankingConfig,
) -> float:
    """BM25F of ``doc``; ``query_idf`` holds ``(term, query weight · idf)`` per weighted term."""
    norm = config.k1 * (1.0 - config.b + config.b * doc.length / avg_len)
    k1_plus_1 = config.k1 + 1.0
    counts = doc.tf
    score = 0.0
    for term, weighted_idf in query_idf:
        tf = counts.get(term)
        if tf:
            score += weighted_idf * tf * k1_plus_1 / (tf + norm)
    return score


def _coverage(doc: _Doc, core_idf: Sequence[tuple[str, float]], total: float) -> float:
    """Share of the query's own idf mass (``total``) that ``doc`` contains."""
    if total <= 0:
        return 0.0
    counts = doc.tf
    found = 0.0
    for term, idf in core_idf:
        if term in counts:
            found += idf
    return found / total


def _proximity(
    doc: _Doc,
    core: Sequence[str],
    stems: Mapping[str, Sequence[str]],
    pairs: Sequence[tuple[str, str, float]],
    total: float,
    window: int,
) -> float:
    """Share of consecutive query-word pairs (``pairs``: left, right, min idf; ``total`` their
    sum) found within ``window`` tokens of each other in the content. ``stems`` maps each
    core stem to the stems that count as it (itself, then its aliases)."""
    if not pairs or window < 1 or total <= 0:
        return 0.0
    counts = doc.tf
    if sum(1 for term in core if term in counts) < 2:
        return 0.0
    found = 0.0
    for left, right, weight in pairs:
        a, b = _positions(doc, stems[left]), _positions(doc, stems[right])
        if a and b and _within(a, b, window):
            found += weight
    return found / total


def _positions(doc: _Doc, stems: Sequence[str]) -> list[int] | None:
    """Ascending content positions of any of ``stems`` in ``doc``."""
    if len(stems) == 1:
        return doc.positions.get(stems[0])
    merged = [i for s in stems for i in doc.positions.get(s, ())]
    return sorted(merged) if merged else None


def _within(a: list[int], b: list[int], window: int) -> bool:
    """Whether some position in ``a`` and some in ``b`` (both sorted) are ≤ window apart."""
    i = j = 0
    while i < len(a) and j < len(b):
        if abs(a[i] - b[j]) <= window:
            return True
        if a[i] < b[j]:
            i += 1
        else:
            j += 1
    return False


def _context(docs: Sequence[_Doc], base: Sequence[float], max_gap: float) -> list[float]:
    """Best base score of a neighbouring candidate (same agent/session, close in time)."""
    result = [0.0] * len(docs)
    groups: dict[tuple[str | None, str | None], list[int]] = {}
    for index, doc in enumerate(docs):
        key = (doc.candidate.agent_id, doc.candidate.session_id)
        groups.setdefault(key, []).append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: docs[i].timestamp)
        times = [docs[i].timestamp for i in members]
        for pos, index in enumerate(members):
            best = 0.0
            left = pos - 1
            while left >= 0 and times[pos] - times[left] <= max_gap:
                best = max(best, base[members[left]])
                left -= 1
            right = pos + 1
            while right < len(members) and times[right] - times[pos] <= max_gap:
                best = max(best, base[members[right]])
                right += 1
            result[index] = best
    return result


# --------------------------------------------------------------------------------------------
# Public stage-2 API
# --------------------------------------------------------------------------------------------


def rerank(
    plan: QueryPlan,
    candidates: Sequence[Candidate],
    now: datetime,
    config: RankingConfig | None = None,
    stats: CorpusStats | None = None,
) -> list[tuple[Candidate, float]]:
    """Score ``candidates`` for ``plan`` and return ``(candidate, score)`` pairs, best first.

    The score is computed only from the candidates (and the optional ``stats``), never from
    :attr:`Candidate.bm25`; see the module docstring for the formula. Duplicate ids are
    scored once.
    """
    config = config or RankingConfig()
    unique = list({candidate.id: candidate for candidate in candidates}.values())
    if not unique:
        return []
    keys = _groups(plan)
    field_weights = _field_weights(config)
    terms = list(plan.weights)
    aliases = [(term, key) for term, key in keys.items() if term != key]
    docs = [_doc(candidate, field_weights, terms, aliases) for candidate in unique]
    pool = _Stats(docs, stats, plan)
    core = plan.core
    core_set = set(core)
    core_stems: dict[str, list[str]] = {}
    for term, key in keys.items():  # each stem itself first (_groups), then its aliases
        if key in core_set:
            core_stems.setdefault(key, []).append(term)
    # Query-level constants, computed once per rerank instead of once per candidate.
    query_idf = [(term, weight * pool.idf(term)) for term, weight in plan.weights.items()]
    core_idf = [(term, pool.idf(term)) for term in core]
    coverage_total = 0.0
    for _, idf in core_idf:
        coverage_total += idf
    pairs = [
        (left, right, min(pool.idf(left), pool.idf(right)))
        for left, right in itertools.pairwise(core)
    ]
    proximity_total = 0.0
    for *_, pair in pairs:
        proximity_total += pair

    relevance = [_bm25(doc, query_idf, pool.avg_len, config) for doc in docs]
    top = max(relevance)
    base: list[float] = []
    for doc, value in zip(docs, relevance, strict=True):
        score = value / top if top > 0 else 0.0
        if config.coverage_weight:
            score += config.coverage_weight * _coverage(doc, core_idf, coverage_total)
        if config.proximity_weight:
            score += config.proximity_weight * _proximity(
                doc, core, core_stems, pairs, proximity_total, config.proximity_window
            )
        base.append(score)

    if config.context_weight:
        context = _context(docs, base, config.context_max_gap_seconds)
        rel = [
            value + config.context_weight * ctx for value, ctx in zip(base, context, strict=True)
        ]
    else:
        rel = base
    top_rel = max(rel)

    now_ts = _utc(now).timestamp()
    window = plan.time_window
    since = window.since.timestamp() if window is not None else 0.0
    until = window.until.timestamp() if window is not None else 0.0
    half_life = config.recency_half_life_days * _SECONDS_PER_DAY
    scored: list[tuple[float, float, str, Candidate]] = []
    for doc, value in zip(docs, rel, strict=True):
        candidate = doc.candidate
        score = value / top_rel if top_rel > 0 else 0.0
        if config.recency_weight and half_life > 0:
            age = max(now_ts - doc.timestamp, 0.0)
            score += config.recency_weight * 0.5 ** (age / half_life)
        if config.importance_weight and candidate.importance is not None:
            score += config.importance_weight * min(max(candidate.importance, 0.0), 1.0)
        if config.time_boost and window is not None and since <= doc.timestamp < until:
            score += config.time_boost
        scored.append((-score, -doc.timestamp, candidate.id, candidate))

    scored.sort(key=lambda item: item[:3])
    return [(candidate, -negated) for negated, _, _, candidate in scored]


def expand(
    plan: QueryPlan,
    top_candidates: Sequence[Candidate] | Sequence[tuple[Candidate, float]],
    config: RankingConfig | None = None,
    stats: CorpusStats | None = None,
) -> QueryPlan | None:
    """Pseudo-relevance feedback: add the top candidates' most characteristic terms to ``plan``.

    ``top_candidates`` are the best reranked candidates (either bare or with their scores, in
    which case documents are weighted by score); only the first ``config.prf_docs`` are used.
    A term's feedback score is ``Σ_d score(d) · tf(t, d) / len(d) · idf(t)`` (idf from
    ``stats`` or from the feedback documents' own vocabulary spread); stop-words, numbers,
    words shorter than 3 characters and the query's own stems are skipped. The best
    ``config.prf_terms`` are added with weight ``prf_weight · score / best score``.

    Returns ``None`` when PRF is off, the plan is already expanded, or nothing was found.
    """
    config = config or RankingConfig()
    if not config.prf or plan.expanded or config.prf_docs <= 0 or config.prf_terms <= 0:
        return None
    pairs: list[tuple[Candidate, float]] = [
        item if isinstance(item, tuple) else (item, 1.0) for item in top_candidates
    ][: config.prf_docs]
    if not pairs:
        return None
    top_score = max(score for _, score in pairs)
    doc_weights = [(score / top_score if top_score > 0 else 1.0) for _, score in pairs]

    term_scores: dict[str, float] = {}
    surface: dict[str, Counter[str]] = {}
    doc_freq: Counter[str] = Counter()
    for (candidate, _), doc_weight in zip(pairs, doc_weights, strict=True):
        tokens = tokenize(candidate.content)
        if not tokens:
            continue
        counts: Counter[str] = Counter()
        for token in tokens:
            if token in STOP_WORDS or len(token) < 3 or token.isdigit():
                continue
            stemmed = stem(token)
            if stemmed in plan.weights:
                continue
            counts[stemmed] += 1
            surface.setdefault(stemmed, Counter())[token] += 1
        doc_freq.update(counts.keys())
        for term, count in counts.items():
            term_scores[term] = term_scores.get(term, 0.0) + doc_weight * count / len(tokens)
    if not term_scores:
        return None

    n = len(pairs)
    for term in term_scores:
        if stats is not None and stats.doc_count > 0 and term in stats.doc_freq:
            idf = _idf(float(stats.doc_count), float(stats.doc_freq[term]))
        else:
            # Without corpus statistics prefer terms shared by several feedback documents.
            idf = 1.0 + math.log(1.0 + doc_freq[term]) - math.log(1.0 + n) / 2.0
        term_scores[term] *= max(idf, 0.0)

    best = sorted(term_scores.items(), key=lambda item: (-item[1], item[0]))[: config.prf_terms]
    best = [(term, score) for term, score in best if score > 0]
    if not best:
        return None
    top_term = best[0][1]
    weights = dict(plan.weights)
    terms = list(plan.terms)
    for term, score in best:
        weights[term] = config.prf_weight * score / top_term
        word = surface[term].most_common(1)[0][0]
        if word not in terms:
            terms.append(word)
    return replace(plan, terms=tuple(terms), weights=weights, expanded=True)


def merge_candidates(*pools: Iterable[Candidate]) -> list[Candidate]:
    """Union of candidate pools by id (first occurrence wins), order kept."""
    merged: dict[str, Candidate] = {}
    for pool in pools:
        for candidate in pool:
            merged.setdefault(candidate.id, candidate)
    return list(merged.values())


async def _inline(step: str, size: int, work: Callable[[], _R]) -> _R:
    return work()


async def search(
    plan: QueryPlan,
    fetch: Callable[[QueryPlan], Awaitable[Sequence[Candidate]]],
    now: datetime,
    config: RankingConfig,
    stats: CorpusStats | None = None,
    *,
    run: Callable[[str, int, Callable[[], Any]], Awaitable[Any]] = _inline,
) -> list[tuple[Candidate, float]]:
    """The keyword-search pipeline, the one the engine runs: stage 1 → rerank → (PRF: stage 1
    again with the expanded plan, merge both pools, rerank). Best first.

    ``fetch(plan)`` runs stage 1 in the store (see the module docstring) and returns at most
    ``config.candidates`` candidates; the engine's fetch maps a store's rows to candidates.
    ``run(step, size, work)`` runs each pure-Python step (``"rerank"`` with size candidates x
    terms, ``"expand"`` with size terms) and returns its result: inline by default; the engine
    moves big steps to a worker thread so that they do not hold its event loop."""
    if plan.is_empty:
        return []
    terms = max(1, len(plan.terms))
    candidates = list(await fetch(plan))
    ranked: list[tuple[Candidate, float]] = await run(
        "rerank", len(candidates) * terms, lambda: rerank(plan, candidates, now, config, stats)
    )
    if config.prf and ranked:
        first = ranked
        expanded: QueryPlan | None = await run(
            "expand", len(plan.terms), lambda: expand(plan, first, config, stats)
        )
        if expanded is not None:
            pool = merge_candidates(candidates, await fetch(expanded))
            grown = max(1, len(expanded.terms))
            ranked = await run(
                "rerank", len(pool) * grown, lambda: rerank(expanded, pool, now, config, stats)
            )
    return ranked


def term_groups(plan: QueryPlan) -> tuple[tuple[str, ...], ...]:
    """The plan's own words, each with its variants (irregular inflections), for a store's
    AND-first bounded stage 1. Feedback terms of an expanded plan are not in any group."""
    groups = []
    for core in plan.core:
        alias = set(plan.aliases.get(core, ()))
        group = tuple(t for t in plan.terms if stem(t) == core or stem(t) in alias)
        if group:
            groups.append(group)
    return tuple(groups)
