"""The row decoder's fast paths give exactly what the plain ones give.

``_loads`` calls the JSON C scanner directly (the store's own compact JSON) and falls back to
``json.loads`` for any other text; ``_namespace_column`` caches decoded namespaces. Both must be
invisible: the same values, the same refusals, and no shared mutable state between reads.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace_core.engine import AsyncMemtrace
from memtrace_core.stores import sqlite as sqlite_store
from memtrace_core.stores.sqlite import SQLiteStore, UnreadableRow
from memtrace_core.timeutil import MAX_US, MIN_US, from_us, to_us

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _same(raw: str) -> None:
    try:
        expected: Any = ("ok", json.loads(raw))
    except (ValueError, RecursionError) as exc:
        expected = ("error", type(exc))
    try:
        got: Any = ("ok", sqlite_store._loads(raw))
    except (ValueError, RecursionError) as exc:
        got = ("error", type(exc))
    assert got == expected, raw


@settings(max_examples=300, deadline=None)
@given(
    value=json_values,
    compact=st.booleans(),
    before=st.sampled_from(["", " ", "\n", "\t ", "\ufeff"]),
    after=st.sampled_from(["", " ", "\n", "x", ",1", "}", "]"]),
)
def test_loads_matches_json_loads(value: Any, compact: bool, before: str, after: str) -> None:
    text = json.dumps(value, separators=(",", ":") if compact else None, ensure_ascii=compact)
    _same(before + text + after)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_loads_matches_json_loads_on_any_text(raw: str) -> None:
    _same(raw)


@pytest.mark.parametrize(
    "raw",
    ["", "NaN", "-Infinity", "[NaN]", "1e999", "[" * 5000 + "]" * 5000, '"\\ud800"', "01", "[1,]"],
)
def test_loads_matches_json_loads_on_edges(raw: str) -> None:
    _same(raw)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=MIN_US, max_value=MAX_US))
def test_from_us_round_trips(us: int) -> None:
    assert to_us(from_us(us)) == us


def test_namespace_cache_hands_out_fresh_lists() -> None:
    raw = '["cache-test","a"]'
    first = sqlite_store._namespace_column(raw)
    first.append("mutated")
    second = sqlite_store._namespace_column(raw)
    assert second == ["cache-test", "a"]
    assert second is not sqlite_store._namespace_column(raw)


def test_namespace_cache_keeps_refusing_bad_namespaces() -> None:
    for raw in ("[]", "[1]", '"a"', "[", '["a",2]'):
        for _ in range(2):  # a refusal is not cached as a value
            with pytest.raises(UnreadableRow):
                sqlite_store._namespace_column(raw)
    assert sqlite_store._namespace_column('["a"]') == ["a"]  # cached now
    bad = sqlite_store.BadText('["a"]')  # the same text, but not valid UTF-8 when stored
    with pytest.raises(UnreadableRow):
        sqlite_store._namespace_column(bad)


def test_namespace_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "_NAMESPACES_MAX", 8)
    sqlite_store._NAMESPACES.clear()
    for i in range(50):
        assert sqlite_store._namespace_column(f'["n{i}"]') == [f"n{i}"]
        assert len(sqlite_store._NAMESPACES) <= 8


async def test_rows_read_back_through_the_fast_paths(tmp_path: Path) -> None:
    path = tmp_path / "memtrace.db"
    engine = AsyncMemtrace(store=SQLiteStore(str(path)))
    await engine.open()
    try:
        payloads = [{"role": "user", "n": i, "text": 'é\u2028"q"'} for i in range(5)]
        for i, payload in enumerate(payloads):
            await engine.add_memory(
                agent_id="a", content=f"item {i}", namespace=["s", "x"], payload=payload
            )
        # a row edited by another tool: whitespace around the JSON, still valid
        conn = sqlite3.connect(path)
        conn.execute(
            "UPDATE memories SET payload = ' ' || payload || char(10), "
            "namespace = '[ \"s\", \"x\" ]' WHERE content = 'item 0'"
        )
        conn.commit()
        conn.close()
        found = await engine.search_memories(namespace=["s", "x"], order="asc", limit=10)
        assert [m.payload for m in found.results] == payloads[1:]
        edited = await engine.search_memories(content_contains="item 0", limit=10)
        assert [m.payload for m in edited.results] == [payloads[0]]
        assert edited.results[0].namespace == ["s", "x"]
    finally:
        await engine.close()
