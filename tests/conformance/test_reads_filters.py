"""Writes and reads on every store, on both transports: every field written is read back by
every read path, every filter selects exactly the memories a brute-force check over the
written data selects, both orders and every page (with an exact ``has_more``) agree with one
full listing, and ``content_contains`` is a literal, case-insensitive substring.

Case-insensitive means what Python's ``str.lower`` says on both sides (``needle.lower() in
content.lower()``), for ASCII and non-ASCII alike; ``%``, ``_`` and ``\\`` in a needle are
characters, never wildcards or escapes; needles shorter than a trigram still match."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace_core import Memory, ValidationError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _agent(prefix: str = "r") -> str:
    return prefix + uuid.uuid4().hex[:12]


async def test_every_field_written_is_read_back_by_every_read(mt: Any) -> None:
    agent = _agent()
    session = await mt.create_session(agent_id=agent)
    parent = await mt.remember(agent, "the parent memory")
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    written = await mt.add_memory(
        agent_id=agent,
        content="Zebra crossing repainted near the depot ✓",
        session_id=session.id,
        memory_type="entity",
        event_type="maintenance",
        metadata={"n": 3, "nested": {"ok": True, "list": [1, "x", None]}, "é": "ü"},
        tags=["roads", "paint"],
        importance=0.75,
        dedup_key="zebra-1",
        parent_id=parent.id,
        time=T0 + timedelta(hours=5, microseconds=123456),
        expires_at=expires,
        namespace=[agent, "infra"],
        key="crossing-7",
        payload={"raw": [1, 2.5, None, "ü"], "deep": {"a": {"b": []}}},
    )
    expected = {
        "agent_id": agent,
        "content": "Zebra crossing repainted near the depot ✓",
        "session_id": session.id,
        "memory_type": "entity",
        "event_type": "maintenance",
        "metadata": {"n": 3, "nested": {"ok": True, "list": [1, "x", None]}, "é": "ü"},
        "tags": ["roads", "paint"],
        "importance": 0.75,
        "dedup_key": "zebra-1",
        "parent_id": parent.id,
        "time": T0 + timedelta(hours=5, microseconds=123456),
        "expires_at": expires,
        "namespace": [agent, "infra"],
        "key": "crossing-7",
        "key_created_at": T0 + timedelta(hours=5, microseconds=123456),
        "payload": {"raw": [1, 2.5, None, "ü"], "deep": {"a": {"b": []}}},
        "supersedes": None,
        "superseded_by": None,
    }
    assert {k: getattr(written, k) for k in expected} == expected
    assert written.recorded_at >= written.time

    def same(m: Memory) -> None:
        assert m.model_dump(exclude={"score"}) == written.model_dump(exclude={"score"})

    same(await mt.get_memory(written.id))
    same(await mt.get_memory_by_key([agent, "infra"], "crossing-7"))
    (listed,) = (await mt.list_memories(session_id=session.id)).memories
    same(listed)
    (found,) = (await mt.search_memories(query="zebra depot", agent_id=agent)).results
    same(found)
    (sub,) = (await mt.search_memories(content_contains="DEPOT ✓")).results
    same(sub)
    (by_ns,) = (await mt.search_memories(namespace=[agent, "infra"])).results
    same(by_ns)
    lines = [json.loads(x) async for x in mt.iter_export(ids=[written.id])]
    assert lines[0]["kind"] == "memory"
    exported = {k: v for k, v in lines[0].items() if k != "kind"}
    assert exported == written.model_dump(mode="json", exclude_none=True, exclude={"org_id"})


# -- filters: one data set, random filters, a brute-force oracle ------------------------------

AGENTS = ("fa", "fb")
SESSIONS = ("sess_f1", "sess_f2")
TYPES = ("episodic", "entity", "decision")
EVENTS = ("general", "error", "deploy")
TAGS = ("t1", "t2", "t3")


def _dataset(scope: str) -> list[dict[str, Any]]:
    """24 memories spread over every filtered field (deterministic: i decides everything)."""
    rows = []
    for i in range(24):
        tags = [t for j, t in enumerate(TAGS) if (i >> j) & 1]
        rows.append(
            {
                "agent_id": scope + AGENTS[i % 2],
                "content": f"filtered item {i} {'alpha' if i % 3 == 0 else 'beta'}",
                "session_id": SESSIONS[i % 2] if i % 4 else None,
                "memory_type": TYPES[i % 3],
                "event_type": EVENTS[(i // 2) % 3],
                "tags": tags or None,
                "importance": None if i % 5 == 0 else round((i % 10) / 10, 1),
                # two memories share each time: ties are ordered by insertion
                "time": T0 + timedelta(minutes=i // 2),
                "namespace": [scope, "even" if i % 2 == 0 else "odd"] if i % 3 else None,
                "key": f"k{i}" if i % 3 else None,
                "metadata": {"i": i, "parity": "even" if i % 2 == 0 else "odd"},
                "dedup_key": f"{scope}-{i}",
            }
        )
    return rows


async def _seeded(mt: Any, scope: str) -> list[Memory]:
    """The data set of ``scope`` (the test's store holds nothing else), written once per test:
    hypothesis runs every example on the same fixture."""
    listed = await mt.list_memories(limit=1000, order="asc")
    mine = listed.memories
    if not mine:
        result = await mt.add_memories(_dataset(scope))
        assert result.count == 24
        mine = result.memories
    assert [m.agent_id[: len(scope)] for m in mine] == [scope] * 24
    return mine


def _oracle(m: Memory, flt: dict[str, Any]) -> bool:
    checks = {
        "agent_id": lambda v: m.agent_id == v,
        "session_id": lambda v: m.session_id == v,
        "memory_types": lambda v: m.memory_type in v,
        "event_types": lambda v: m.event_type in v,
        "tags": lambda v: set(v) <= set(m.tags or ()),
        "tags_any": lambda v: bool(set(v) & set(m.tags or ())),
        "since": lambda v: m.time >= v,
        "until": lambda v: m.time < v,
        "min_importance": lambda v: m.importance is not None and m.importance >= v,
        "content_contains": lambda v: v.lower() in m.content.lower(),
        "namespace": lambda v: m.namespace == v,
        "namespace_prefix": lambda v: m.namespace is not None and m.namespace[: len(v)] == v,
        "keys": lambda v: m.key in v,
        "metadata": lambda v: all((m.metadata or {}).get(k) == x for k, x in v.items()),
    }
    return all(checks[k](v) for k, v in flt.items())


def _filters(scope: str) -> st.SearchStrategy[dict[str, Any]]:
    minutes = st.integers(0, 12).map(lambda n: T0 + timedelta(minutes=n))
    parts: dict[str, st.SearchStrategy[Any]] = {
        "agent_id": st.sampled_from([scope + a for a in AGENTS]),
        "session_id": st.sampled_from(SESSIONS),
        "memory_types": st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True),
        "event_types": st.lists(st.sampled_from(EVENTS), min_size=1, max_size=2, unique=True),
        "tags": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2, unique=True),
        "tags_any": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2, unique=True),
        "since": minutes,
        "until": minutes,
        "min_importance": st.sampled_from([0.1, 0.5, 0.9]),
        "content_contains": st.sampled_from(["ALPHA", "item 1", "beta", "m 2", "zzz"]),
        "namespace": st.sampled_from([[scope, "even"], [scope, "odd"]]),
        "namespace_prefix": st.sampled_from([[], [scope]]),
        "keys": st.lists(st.sampled_from([f"k{i}" for i in range(24)]), min_size=1, max_size=4),
        "metadata": st.sampled_from([{"parity": "even"}, {"i": 7}, {"parity": "odd", "i": 5}]),
    }
    return st.dictionaries(st.sampled_from(sorted(parts)), st.none(), max_size=3).flatmap(
        lambda chosen: st.fixed_dictionaries({k: parts[k] for k in chosen})
    )


SCOPE = "flt"


@settings(max_examples=25)
@given(flt=_filters(SCOPE), order=st.sampled_from(["asc", "desc"]))
async def test_every_filter_selects_exactly_what_it_says(
    mt: Any, flt: dict[str, Any], order: str
) -> None:
    mine = await _seeded(mt, SCOPE)
    query = dict(flt)
    if "since" in flt and "until" in flt and flt["since"] > flt["until"]:
        with pytest.raises(ValidationError) as info:
            await mt.search_memories(**query)
        assert "since is after until" in info.value.message
        return
    expected = [m.id for m in mine if _oracle(m, flt)]  # insertion order == (time, rowid)
    if order == "desc":
        expected.reverse()
    found = await mt.search_memories(**query, order=order, limit=1000)
    assert [m.id for m in found.results] == expected
    assert found.has_more is False
    summary = await mt.summarize_memories(**query)
    assert summary.count == len(expected)


async def test_list_filters_and_orders(mt: Any) -> None:
    scope = _agent("l")
    mine = await _seeded(mt, scope)
    asc = await mt.list_memories(limit=1000, order="asc")
    assert [m.id for m in asc.memories] == [m.id for m in mine]
    desc = await mt.list_memories(limit=1000)
    assert [m.id for m in desc.memories] == [m.id for m in mine][::-1]
    for field, value, pick in [
        ("agent_id", scope + "fa", lambda m: m.agent_id == scope + "fa"),
        ("session_id", "sess_f1", lambda m: m.session_id == "sess_f1"),
        ("memory_type", "decision", lambda m: m.memory_type == "decision"),
        ("event_type", "error", lambda m: m.event_type == "error"),
        ("tags", ["t1", "t3"], lambda m: {"t1", "t3"} <= set(m.tags or ())),
        ("tags_any", ["t3"], lambda m: "t3" in (m.tags or ())),
    ]:
        got = await mt.list_memories(**{field: value}, limit=1000, order="asc")
        ids = [m.id for m in got.memories if m.agent_id.startswith(scope)]
        assert ids == [m.id for m in mine if pick(m)], field
        assert ids, field  # every filter above selects something
    window = await mt.list_memories(
        since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4), order="asc"
    )
    assert [m.id for m in window.memories] == [m.id for m in mine[4:8]]  # i // 2 in {2, 3}


@settings(max_examples=25)
@given(limit=st.integers(1, 30), order=st.sampled_from(["asc", "desc"]), ranked=st.booleans())
async def test_pages_concatenate_to_the_whole_listing_with_exact_has_more(
    mt: Any, limit: int, order: str, ranked: bool
) -> None:
    mine = await _seeded(mt, "pg")
    agent = "pg" + AGENTS[0]
    if ranked:
        whole = await mt.search_memories(query="filtered item", agent_id=agent, limit=1000)
    else:
        whole = await mt.search_memories(agent_id=agent, order=order, limit=1000)
    everything = [m.id for m in whole.results]
    assert len(everything) == sum(m.agent_id == agent for m in mine) == 12
    if not ranked:
        expected = [m.id for m in mine if m.agent_id == agent]
        assert everything == (expected if order == "asc" else expected[::-1])
    pages: list[str] = []
    offset = 0
    while True:
        if ranked:
            page = await mt.search_memories(
                query="filtered item", agent_id=agent, limit=limit, offset=offset
            )
            got, more = [m.id for m in page.results], page.has_more
        else:
            listed = await mt.list_memories(agent_id=agent, order=order, limit=limit, offset=offset)
            got, more = [m.id for m in listed.memories], listed.has_more
            assert listed.count == len(got)
        pages += got
        offset += limit
        assert more == (offset < len(everything))
        if not more:
            break
    assert pages == everything


# -- substring search -----------------------------------------------------------------------

CONTENTS = [
    "ÄRGER im Büro",
    "kein ärger heute",
    "Ärgerlich: 100% voll",
    "100 percent full",
    "snake_case name",
    "snakeXcase name",
    "path C:\\temp\\new",
    "path C:/temp/new",
    "ПРИВЕТ мир",
    "ab",
    "x",
    "plain text",
]
NEEDLES: list[tuple[str, set[int]]] = [
    ("ärger", {0, 1, 2}),
    ("ÄRGER", {0, 1, 2}),
    ("RGER", {0, 1, 2}),
    ("Ärgerl", {2}),
    ("100%", {2}),
    ("%", {2}),
    ("0% v", {2}),
    ("snake_case", {4}),
    ("_", {4}),
    ("e_c", {4}),
    ("\\", {6}),
    ("C:\\temp", {6}),
    ("\\n", {6}),
    ("привет", {8}),
    ("ab", {9}),
    ("x", {5, 10, 11}),
    ("%_", set()),
    ("a%b", set()),
    ("s_ake", set()),
]


async def test_content_contains_is_literal_and_case_insensitive(mt: Any) -> None:
    agent = _agent("c")
    written = (
        await mt.add_memories([{"agent_id": agent, "content": c} for c in CONTENTS])
    ).memories
    assert len(written) == len(CONTENTS)
    for needle, indexes in NEEDLES:
        assert indexes == {i for i, c in enumerate(CONTENTS) if needle.lower() in c.lower()}
        found = await mt.search_memories(agent_id=agent, content_contains=needle, limit=100)
        assert {m.content for m in found.results} == {CONTENTS[i] for i in indexes}, needle


_ALPHABET = "aAbBäÄöÖ%_\\ xX1é"


@settings(max_examples=25)
@given(
    contents=st.lists(st.text(_ALPHABET, min_size=1, max_size=12), min_size=1, max_size=6),
    needle=st.text(_ALPHABET, min_size=1, max_size=4),
)
async def test_content_contains_matches_a_brute_force_scan(
    mt: Any, contents: list[str], needle: str
) -> None:
    agent = _agent("h")
    rows = [{"agent_id": agent, "content": f"<{c}>", "dedup": False} for c in contents]
    await mt.add_memories(rows)
    found = await mt.search_memories(agent_id=agent, content_contains=needle, limit=100)
    expected = sorted(f"<{c}>" for c in contents if needle.lower() in f"<{c}>".lower())
    assert sorted(m.content for m in found.results) == expected


async def test_an_ascii_needle_folds_non_ascii_content_like_str_lower(mt: Any) -> None:
    agent = _agent("k")
    contents = ["5 \u212a heat", "İZMİR"]
    await mt.add_memories([{"agent_id": agent, "content": c} for c in contents])
    for needle in ("5 k", "5 K", "i"):
        found = await mt.search_memories(agent_id=agent, content_contains=needle)
        expected = {c for c in contents if needle.lower() in c.lower()}
        assert expected  # each needle is a case variant of one content, by str.lower
        assert {m.content for m in found.results} == expected, needle
