"""Strategies over the whole input space of memtrace's writes, shared by the engine and HTTP
invariant tests (tests/core/test_invariant.py, tests/server/test_invariant_http.py).

The invariant they check: every value the engine accepts can be read back by every read path
(get, list, search ranked and substring, stats, context in every format, export) and deleted;
every value it refuses is a validation error that can be sent, and nothing of it is stored.

Inputs are mostly plausible (so that most examples are accepted and read back) with, mixed in,
what an attacker sends: times across the whole calendar and just past its edges, every UTC
offset, JSON nested far past the limit, all of Unicode including lone surrogates and NUL."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

WORDS = ["deploy", "canary", "rollback", "latency", "error", "staging", "probe", "ünïcode"]


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` about nine times in ten, else ``other``."""
    # not integers(0, 9): hypothesis favours the bounds, which would make ``other`` common
    return st.sampled_from(range(10)).flatmap(lambda n: other if n == 9 else valid)


#: Characters: all of Unicode (hypothesis leaves out surrogates), plus lone surrogates, NUL and
#: whitespace, which each break something somewhere if let through.
_chars = st.one_of(
    st.characters(),
    st.sampled_from(list(string.ascii_letters + "  ")),
    st.sampled_from(["\ud800", "\udfff", "\x00", "\n", "\t", "ς", "Σ", "İ", "\u212a"]),
)
#: Text, mostly without the hostile characters (so that most examples are accepted and go on
#: to be read back), else with them.
text = mostly(
    st.text(st.characters(exclude_characters="\x00"), max_size=40), st.text(_chars, max_size=40)
)
content = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
    st.tuples(st.sampled_from(WORDS), text).map(" ".join),
    text,
)

_offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_offsets
)
#: Event times: anywhere in the calendar at any offset, the edges themselves (some of them out
#: of range once converted to UTC), or strings that are not times at all.
event_time = mostly(
    _instants.map(lambda d: d.isoformat()) | st.just(datetime.now(UTC).isoformat()),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59.999999Z",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00-14:00",
            "9999-12-31T23:59:59+14:00",
            "2026-02-30T00:00:00Z",
            "yesterday",
        ]
    ),
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = mostly(
    st.recursive(
        _scalars,
        lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(text, kids, max_size=4)),
        max_leaves=12,
    ),
    st.integers(1, 300).map(nested),
)
json_objects = mostly(
    st.dictionaries(text, json_values, max_size=4),
    st.integers(1, 300).map(lambda d: {"deep": nested(d)}),
)

_ids = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,12}", fullmatch=True)
_tag = mostly(st.from_regex(r"[a-zA-Z0-9_.\-]{1,10}", fullmatch=True), text)


@st.composite
def memory_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """A memory to write, as a JSON object would arrive (optional fields sometimes absent)."""
    item: dict[str, Any] = {
        "agent_id": draw(mostly(st.sampled_from(["bot", "a1"]) | _ids, text)),
        "content": draw(content),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "time": event_time,
        "metadata": json_objects,
        "tags": mostly(st.lists(_tag, max_size=8), st.lists(_tag, max_size=40)),
        "importance": mostly(st.floats(0, 1), st.floats(-0.5, 1.5) | st.booleans()),
        "memory_type": mostly(
            st.sampled_from(["episodic", "session", "decision", "entity"]), st.just("other")
        ),
        "event_type": mostly(st.sampled_from(["general", "error", "deploy"]), text),
        "session_id": mostly(st.sampled_from(["s1", "s2"]), _ids | text),
        "dedup_key": mostly(_ids, text),
        "parent_id": mostly(_ids, text),
    }
    for name, strategy in optional.items():
        if draw(st.sampled_from(range(3))) == 2:  # each optional field in one example of three
            item[name] = draw(strategy)
    return item


@st.composite
def agent_inputs(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {"name": draw(st.one_of(_ids, text))}
    if draw(st.booleans()):
        item["description"] = draw(text)
    if draw(st.booleans()):
        item["config"] = draw(json_objects)
    return item


@st.composite
def session_inputs(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {"agent_id": draw(st.one_of(st.just("bot"), _ids, text))}
    if draw(st.booleans()):
        item["metadata"] = draw(json_objects)
    return item


def substring_needle(value: str) -> str | None:
    """A piece of ``value`` that ``content_contains`` must find (case-insensitive), or None
    when no piece is certain to (Unicode case mapping is context-dependent, e.g. final
    sigma, so only pieces whose lower case is a piece of the lowered whole qualify)."""
    for start, stop in ((0, 12), (len(value) // 3, len(value) // 3 + 8), (0, len(value))):
        needle = value[start:stop]
        if not needle.strip():
            continue
        if needle.isascii() or needle.lower() in value.lower():
            return needle
    return None
