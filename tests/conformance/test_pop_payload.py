"""Payloads, ``dedup=False`` and ``pop_memory``, on both transports (engine and HTTP)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from memtrace_core import DuplicateMemoryError, ValidationError, aconnect
from memtrace_core.stores.base import MemoryFilter


def ago(**kw: float) -> datetime:
    return datetime.now(UTC) - timedelta(**kw)


PAYLOADS: list[Any] = [
    {"role": "assistant", "content": [{"type": "text", "text": "hé ✓"}], "n": None},
    ["a", 1, 2.5, None, True, {"nested": [[[]]]}],
    "just a string",
    12345678901234567890123,
    -0.25,
    False,
    {},
    [],
]


async def test_payload_round_trips_on_every_read(mt: Any) -> None:
    one = await mt.add_memory(agent_id="pay", content="single", payload=PAYLOADS[0])
    assert one.payload == PAYLOADS[0]
    batch = await mt.add_memories(
        [
            {"agent_id": "pay", "content": f"item {i}", "payload": p, "time": ago(minutes=i + 1)}
            for i, p in enumerate(PAYLOADS[1:])
        ]
    )
    assert [m.payload for m in batch.memories] == PAYLOADS[1:]
    assert (await mt.get_memory(one.id)).payload == PAYLOADS[0]
    listed = await mt.list_memories(agent_id="pay", since="1h")
    assert [m.payload for m in listed.memories] == PAYLOADS
    found = await mt.search_memories(agent_id="pay", content_contains="item")
    assert [m.payload for m in found.results] == PAYLOADS[1:]
    keyed = await mt.add_memory(
        agent_id="pay", content="keyed", namespace=["n"], key="k", payload={"v": 1}
    )
    assert (await mt.get_memory_by_key(["n"], "k")).payload == {"v": 1} == keyed.payload
    # without one: null, and not part of the dedup key
    plain = await mt.add_memory(agent_id="pay", content="no payload")
    assert plain.payload is None
    with pytest.raises(DuplicateMemoryError):
        await mt.add_memory(agent_id="pay", content="no payload", payload={"other": 1})


async def test_payload_is_not_searched(mt: Any) -> None:
    await mt.add_memory(agent_id="pay", content="visible words", payload={"t": "zebracorn"})
    assert (await mt.search_memories(query="zebracorn")).count == 0
    assert (await mt.search_memories(content_contains="zebracorn")).count == 0
    assert (await mt.search_memories(query="visible")).count == 1


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        # the HTTP client refuses what JSON cannot carry before sending, in its own words
        (float("nan"), "payload|not finite"),
        ({"x": [float("inf")]}, "payload|not finite"),
        ("\ud800", "payload|Unicode"),
        ("x" * (3 * 1024 * 1024), "payload too large"),
        ([[[[["deep"]]]]] * 1, None),  # accepted: 5 levels
    ],
)
async def test_bad_payloads_are_refused(mt: Any, payload: Any, match: str | None) -> None:
    if match is None:
        stored = await mt.add_memory(agent_id="pay", content="ok", payload=payload)
        assert stored.payload == payload
        return
    with pytest.raises(ValidationError, match=match):
        await mt.add_memory(agent_id="pay", content="bad", payload=payload)
    assert (await mt.list_memories(agent_id="pay")).count == 0


async def test_payload_depth_limit(mt: Any) -> None:
    deep: Any = "leaf"
    for _ in range(128):
        deep = [deep]
    stored = await mt.add_memory(agent_id="pay", content="deep", payload=deep)
    assert (await mt.get_memory(stored.id)).payload == deep
    with pytest.raises(ValidationError, match="nested deeper than 128 levels"):
        await mt.add_memory(agent_id="pay", content="deeper", payload=[deep])


async def test_dedup_false_writes_identical_memories(mt: Any) -> None:
    first = await mt.add_memory(agent_id="dd", content="same text", dedup=False)
    second = await mt.add_memory(agent_id="dd", content="same text", dedup=False)
    assert first.id != second.id
    assert first.dedup_key is None
    assert second.dedup_key is None
    batch = await mt.add_memories([{"agent_id": "dd", "content": "same text", "dedup": False}] * 3)
    assert (batch.count, batch.duplicates) == (3, 0)
    assert (await mt.list_memories(agent_id="dd")).count == 5
    # the default still deduplicates (a keyless memory is never anyone's duplicate)
    await mt.add_memory(agent_id="dd", content="same text")
    with pytest.raises(DuplicateMemoryError):
        await mt.add_memory(agent_id="dd", content="same text")
    with pytest.raises(DuplicateMemoryError):
        await mt.add_memory(agent_id="dd", content="same text", dedup=True)
    more = await mt.add_memories([{"agent_id": "dd", "content": "same text"}] * 2)
    assert (more.count, more.duplicates) == (0, 2)


async def test_dedup_false_with_a_dedup_key_is_refused(mt: Any) -> None:
    with pytest.raises(ValidationError, match="dedup_key") as info:
        await mt.add_memory(agent_id="dd", content="x", dedup=False, dedup_key="k1")
    assert info.value.status_code == 400
    with pytest.raises(ValidationError) as batch_info:
        await mt.add_memories(
            [
                {"agent_id": "dd", "content": "a"},
                {"agent_id": "dd", "content": "b", "dedup": False, "dedup_key": "k2"},
            ]
        )
    assert batch_info.value.index == 1
    assert (await mt.list_memories(agent_id="dd")).count == 0


async def test_pop_returns_newest_first_until_empty(mt: Any) -> None:
    written = await mt.add_memories(
        [
            {"agent_id": "q", "session_id": "s1", "content": f"m{i}", "time": ago(minutes=10 - i)}
            for i in range(5)
        ]
    )
    ids = [m.id for m in written.memories]
    popped = []
    while (memory := await mt.pop_memory(session_id="s1")) is not None:
        popped.append(memory)
    assert [m.id for m in popped] == ids[::-1]
    assert popped[0].content == "m4"
    assert await mt.pop_memory({"session_id": "s1"}) is None
    assert (await mt.list_memories(session_id="s1")).count == 0
    # deleted from every index
    assert (await mt.search_memories(query="m4")).count == 0
    assert (await mt.search_memories(content_contains="m4")).count == 0


async def test_pop_ties_break_by_insertion(mt: Any) -> None:
    when = ago(minutes=1)
    written = await mt.add_memories(
        [{"agent_id": "q", "content": f"tie {i}", "time": when, "dedup": False} for i in range(3)]
    )
    got = [await mt.pop_memory(agent_id="q") for _ in range(3)]
    assert [m.id for m in got] == [m.id for m in written.memories][::-1]


async def test_pop_only_takes_what_the_filter_matches(mt: Any) -> None:
    await mt.add_memory(agent_id="qa", session_id="s1", content="a1 s1", tags=["x"])
    await mt.add_memory(agent_id="qa", session_id="s2", content="a1 s2", tags=["x"])
    await mt.add_memory(agent_id="qb", session_id="s1", content="a2 s1", tags=["x"])
    await mt.add_memory(agent_id="qa", content="ns", namespace=["u", "1"], key="k")
    await mt.add_memory(agent_id="qa", content="ns2", namespace=["u", "2"], key="k")
    first = await mt.pop_memory(agent_id="qa", session_id="s1")
    assert first is not None
    assert first.content == "a1 s1"
    assert await mt.pop_memory(agent_id="qa", session_id="s1") is None
    assert (await mt.pop_memory(namespace=["u", "1"], key="k")).content == "ns"
    assert await mt.pop_memory(namespace=["u", "1"]) is None
    assert (await mt.pop_memory(session_id="s1")).content == "a2 s1"
    assert (await mt.pop_memory(tags=["x"])).content == "a1 s2"
    remaining = await mt.list_memories(limit=100)
    assert [m.content for m in remaining.memories] == ["ns2"]


async def test_pop_skips_superseded_and_expired(mt: Any) -> None:
    old = await mt.add_memory(agent_id="qs", content="newer event, superseded", time=ago(seconds=1))
    new = await mt.add_memory(
        agent_id="qs", content="replacement", supersedes=old.id, time=ago(minutes=5)
    )
    await mt.add_memory(agent_id="qs", content="short lived", ttl=0.3)
    await asyncio.sleep(0.5)
    got = await mt.pop_memory(agent_id="qs")
    assert got is not None
    assert got.id == new.id
    # the links are mended as by a delete: what it superseded is current again
    again = await mt.pop_memory(agent_id="qs")
    assert again is not None
    assert again.id == old.id
    assert again.superseded_by is None
    assert await mt.pop_memory(agent_id="qs") is None


async def test_concurrent_pops_return_each_memory_once(mt: Any) -> None:
    written = await mt.add_memories(
        [{"agent_id": "qc", "content": f"job {i}", "time": ago(seconds=i)} for i in range(10)]
    )
    results = await asyncio.gather(*(mt.pop_memory(agent_id="qc") for _ in range(20)))
    got = [m.id for m in results if m is not None]
    assert sorted(got) == sorted(m.id for m in written.memories)
    assert len(got) == len(set(got)) == 10
    assert sum(m is None for m in results) == 10


async def test_pop_requires_a_filter(mt: Any) -> None:
    await mt.add_memory(agent_id="qf", content="keep me")
    with pytest.raises(ValidationError, match="filter") as info:
        await mt.pop_memory()
    assert info.value.status_code == 400
    with pytest.raises(ValidationError):
        await mt.pop_memory({})
    with pytest.raises(ValidationError):
        await mt.pop_memory(sesion_id="s1")  # unknown field
    assert (await mt.list_memories(agent_id="qf")).count == 1
    whole = await mt.pop_memory(all_memories=True)
    assert whole is not None
    assert whole.content == "keep me"


async def test_pop_returns_the_payload(mt: Any) -> None:
    await mt.add_memory(agent_id="qp", content="item", payload={"k": [1, None, "v"]})
    got = await mt.pop_memory(agent_id="qp")
    assert got is not None
    assert got.payload == {"k": [1, None, "v"]}


async def test_pop_never_crosses_orgs(store_url: str) -> None:
    engine = await aconnect(store_url)
    try:
        a, b = engine.with_org("org_a"), engine.with_org("org_b")
        await b.add_memory(agent_id="shared", content="b's newest", time=ago(seconds=1))
        await a.add_memory(agent_id="shared", content="a's", time=ago(minutes=1))
        got = await a.pop_memory(agent_id="shared")
        assert got is not None
        assert got.org_id == "org_a"
        assert await a.pop_memory(agent_id="shared") is None
        assert await a.pop_memory(all_memories=True) is None
        assert (await b.list_memories(agent_id="shared")).count == 1
        # the store refuses nothing of another org's either
        store = engine.store
        assert await store.pop_memory("org_a", MemoryFilter(), now=10**18) is None
        kept = await store.pop_memory("org_b", MemoryFilter(agent_ids=("shared",)), now=1)
        assert kept is not None
        assert kept.content == "b's newest"
    finally:
        await engine.close()
