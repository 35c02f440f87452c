"""Namespaces, keys and metadata filters (the engine side of key/value integrations such as
LangGraph's store), the same over the engine and over HTTP, on every store."""

from __future__ import annotations

import io
from typing import Any

import pytest

from memtrace_core import NotFoundError, ValidationError

NS = ["users", "u1", "prefs"]


async def _contents(mt: Any, **query: Any) -> list[str]:
    found = await mt.search_memories(order="asc", limit=1000, **query)
    return [m.content for m in found.results]


async def test_a_keyed_write_supersedes_the_current_memory_of_its_key(mt: Any) -> None:
    first = await mt.add_memory(
        agent_id="bot", content="likes tea", namespace=NS, key="drink", metadata={"v": 1}
    )
    assert first.namespace == NS
    assert first.key == "drink"
    second = await mt.add_memory(
        agent_id="bot", content="likes coffee", namespace=NS, key="drink", metadata={"v": 2}
    )
    assert second.supersedes == first.id
    got = await mt.get_memory_by_key(NS, "drink")
    assert got.id == second.id
    # the same key in another namespace is another memory
    other = await mt.add_memory(agent_id="bot", content="water", namespace=["users"], key="drink")
    assert other.supersedes is None
    assert (await mt.get_memory_by_key(NS, "drink")).id == second.id
    # history stays: the old version, and what memtrace knew then
    assert (await mt.get_memory(first.id)).superseded_by == second.id
    then = await mt.get_memory_by_key(NS, "drink", as_of=first.recorded_at)
    assert then.id == first.id
    with pytest.raises(NotFoundError):
        await mt.get_memory_by_key(NS, "food")
    # deleting by key deletes every version
    assert await mt.delete_memories(namespace=NS, key="drink") == 2
    with pytest.raises(NotFoundError):
        await mt.get_memory_by_key(NS, "drink")
    assert (await mt.get_memory_by_key(["users"], "drink")).id == other.id


async def test_a_batch_may_not_write_one_key_twice(mt: Any) -> None:
    items = [
        {"agent_id": "bot", "content": "a", "namespace": NS, "key": "k"},
        {"agent_id": "bot", "content": "b", "namespace": NS, "key": "k"},
    ]
    with pytest.raises(ValidationError) as info:
        await mt.add_memories(items)
    assert info.value.field == "key"
    assert (await mt.list_memories()).count == 0
    result = await mt.add_memories([items[0], {**items[1], "namespace": ["other"]}])
    assert result.count == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"namespace": []}, "namespace"),
        ({"namespace": [""]}, "namespace"),
        ({"namespace": ["a", 3]}, "namespace"),
        ({"namespace": ["x"] * 17}, "namespace"),
        ({"namespace": ["a" * 257]}, "namespace"),
        ({"namespace": ["a\x00b"]}, "namespace"),
        ({"key": ""}, "key"),
        ({"key": "k" * 513}, "key"),
        ({"key": "a\x00"}, "key"),
    ],
)
async def test_bad_namespaces_and_keys_are_refused(
    mt: Any, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await mt.add_memory(agent_id="bot", content="x", **body)
    assert info.value.field == field
    assert (await mt.list_memories()).count == 0


async def test_namespace_and_prefix_filters(mt: Any) -> None:
    for ns, content in (
        (["a"], "a"),
        (["a", "b"], "ab"),
        (["a", "b", "c"], "abc"),
        (["a", "bc"], "a-bc"),
        (["ab"], "ab-root"),
    ):
        await mt.add_memory(agent_id="bot", content=content, namespace=ns)
    await mt.add_memory(agent_id="bot", content="none")
    assert await _contents(mt, namespace=["a", "b"]) == ["ab"]
    assert await _contents(mt, namespace_prefix=["a", "b"]) == ["ab", "abc"]
    assert await _contents(mt, namespace_prefix=["a"]) == ["a", "ab", "abc", "a-bc"]
    assert await _contents(mt, namespace_prefix=["ab"]) == ["ab-root"]
    # the empty prefix: every memory with a namespace, none without
    assert await _contents(mt, namespace_prefix=[]) == ["a", "ab", "abc", "a-bc", "ab-root"]
    deleted = await mt.delete_memories(namespace_prefix=["a", "b"])
    assert deleted == 2
    assert await _contents(mt) == ["a", "a-bc", "ab-root", "none"]
    with pytest.raises(ValidationError):
        await mt.search_memories(namespace=[])  # a namespace itself is never empty


async def test_a_key_keeps_the_time_of_its_first_version(mt: Any) -> None:
    """``key_created_at``: the event time of the key's first version, kept by every later
    version (LangGraph's ``Item.created_at``); a key written again after a delete starts
    again; an unkeyed memory has none; export and import carry it."""
    first = await mt.add_memory(
        agent_id="bot", content="v1", namespace=NS, key="k", time="2026-01-01T00:00:00Z"
    )
    assert first.key_created_at == first.time
    second = await mt.add_memory(agent_id="bot", content="v2", namespace=NS, key="k")
    assert second.supersedes == first.id
    assert second.key_created_at == first.time
    assert second.time > first.time
    third = await mt.add_memory(agent_id="bot", content="v3", namespace=NS, key="k")
    assert third.key_created_at == first.time
    assert (await mt.get_memory_by_key(NS, "k")).key_created_at == first.time
    plain = await mt.add_memory(agent_id="bot", content="no key", namespace=NS)
    assert plain.key_created_at is None
    out = io.StringIO()
    await mt.export_jsonl(out)
    assert await mt.delete_memories(namespace=NS, key="k") == 3
    again = await mt.add_memory(agent_id="bot", content="v4", namespace=NS, key="k")
    assert again.supersedes is None
    assert again.key_created_at == again.time
    await mt.delete_memories(namespace=NS)
    await mt.import_jsonl(out.getvalue().splitlines())
    assert (await mt.get_memory_by_key(NS, "k")).key_created_at == first.time


async def test_list_namespaces(mt: Any) -> None:
    for ns in (["a", "x"], ["a", "y", "z"], ["b", "x"], ["b", "y"], ["c"]):
        await mt.add_memory(agent_id="bot", content="/".join(ns), namespace=ns)
    await mt.add_memory(agent_id="bot", content="again", namespace=["a", "x"])

    async def names(**kw: Any) -> list[list[str]]:
        return list((await mt.list_namespaces(**kw)).namespaces)

    everything = [["a", "x"], ["a", "y", "z"], ["b", "x"], ["b", "y"], ["c"]]
    assert await names() == everything
    assert await names(prefix=["a"]) == [["a", "x"], ["a", "y", "z"]]
    assert await names(prefix=["*", "x"]) == [["a", "x"], ["b", "x"]]
    assert await names(suffix=["y"]) == [["b", "y"]]
    assert await names(suffix=["*", "z"]) == [["a", "y", "z"]]
    assert await names(max_depth=1) == [["a"], ["b"], ["c"]]
    assert await names(limit=2, offset=1) == [["a", "y", "z"], ["b", "x"]]
    assert await names(prefix=["a", "y", "z"]) == [["a", "y", "z"]]
    with pytest.raises(ValidationError):
        await mt.list_namespaces(max_depth=0)
    with pytest.raises(ValidationError):
        await mt.list_namespaces(prefix=[])


async def test_a_namespace_only_an_older_version_occupies_is_not_listed(mt: Any) -> None:
    old = await mt.add_memory(agent_id="bot", content="v1", namespace=["moved", "from"])
    await mt.add_memory(agent_id="bot", content="v2", namespace=["moved", "to"], supersedes=old.id)
    listed = (await mt.list_namespaces(prefix=["moved"])).namespaces
    assert listed == [["moved", "to"]]
    # the older version is still there for as_of and include_superseded
    found = await mt.search_memories(namespace=["moved", "from"], include_superseded=True)
    assert [m.content for m in found.results] == ["v1"]


async def test_metadata_filters(mt: Any) -> None:
    rows = [
        ("one", {"n": 1, "kind": "x", "flag": True, "tags": [1, 2], "deep": {"a": {"b": 1}}}),
        ("two", {"n": 2.5, "kind": "y", "flag": False, "tags": [2, 1]}),
        ("three", {"n": "3", "kind": "x", "deep": {"a": {"b": 2}, "c": 0}}),
        ("four", {}),
    ]
    for content, metadata in rows:
        await mt.add_memory(agent_id="bot", content=content, metadata=metadata or None)

    async def match(flt: dict[str, Any]) -> list[str]:
        return await _contents(mt, metadata=flt)

    assert await match({"kind": "x"}) == ["one", "three"]
    assert await match({"n": 1}) == ["one"]
    assert await match({"n": 1.0}) == ["one"]  # numbers compare numerically
    assert await match({"n": "3"}) == ["three"]  # a string is not a number
    assert await match({"n": 3}) == []
    assert await match({"flag": True}) == ["one"]
    assert await match({"flag": False}) == ["two"]
    assert await match({"tags": [1, 2]}) == ["one"]
    assert await match({"deep": {"a": {"b": 1}}}) == ["one"]
    assert await match({"deep": {"c": 0}}) == ["three"]
    assert await match({"missing": None}) == ["one", "two", "three", "four"]
    assert await match({"n": {"$gt": 1}}) == ["two"]  # "3" is a string: not compared
    assert await match({"n": {"$gte": 1, "$lt": 2.5}}) == ["one"]
    assert await match({"n": {"$lte": 2.5}}) == ["one", "two"]
    assert await match({"kind": {"$ne": "x"}}) == ["two", "four"]
    assert await match({"kind": {"$eq": "y"}}) == ["two"]
    assert await match({"tags": {"$ne": [1, 2]}}) == ["two", "three", "four"]
    assert await match({"kind": "x", "n": {"$lt": 5}}) == ["one"]
    await mt.add_memory(agent_id="bot", content="big", metadata={"n": 2**70})
    assert await match({"n": 2**70}) == ["big"]  # beyond 64 bits: no error
    assert await match({"n": {"$gt": 2**69}}) == ["big"]
    assert "big" in await match({"n": {"$ne": 1}})
    for bad in (
        {"n": {"$exists": True}},
        {"n": {"$gt": "abc"}},
        {"n": {"$eq": {"a": 1}}},
        {'we"ird': 1},
        {"a\nb": 1},
        {"z\x00": 1},
        {"n": 10**400},
        {"n": {"$gt": 10**400}},
        {"rows": [{"a\\b": 1}]},
    ):
        with pytest.raises(ValidationError) as info:
            await match(bad)
        assert info.value.field.startswith("metadata")


async def test_list_filters_match_element_by_element(mt: Any) -> None:
    """A list in a filter matches an array of the same length element by element, as
    InMemoryStore compares them: text by value (any Unicode), numbers numerically, an object
    element by its keys (whatever their order); ``$ne`` with a list is its negation; top-level
    keys are field names even when they start with ``$``."""
    rows = [
        ("one", {"tags": ["café", "日本"], "rows": [{"x": 1, "y": 2}], "nums": [1, 2.5]}),
        ("two", {"tags": ["café"], "rows": [{"x": 1}], "nums": [1, 2.5, 3]}),
        ("three", {"tags": "café", "$ne": 1, "nested": [[1, 2], ["a"]]}),
    ]
    for content, metadata in rows:
        await mt.add_memory(agent_id="bot", content=content, metadata=metadata)

    async def match(flt: dict[str, Any]) -> list[str]:
        return await _contents(mt, metadata=flt)

    assert await match({"tags": ["café", "日本"]}) == ["one"]
    assert await match({"tags": ["café"]}) == ["two"]  # same length only
    assert await match({"tags": ["日本", "café"]}) == []  # in order
    assert await match({"tags": {"$ne": ["café"]}}) == ["one", "three"]
    assert await match({"tags": {"$eq": ["café"]}}) == ["two"]
    assert await match({"rows": [{"y": 2, "x": 1}]}) == ["one"]
    assert await match({"rows": [{"x": 1}]}) == ["one", "two"]  # an element matches its keys
    assert await match({"nums": [1.0, 2.5]}) == ["one"]
    assert await match({"nested": [[1, 2], ["a"]]}) == ["three"]
    assert await match({"nested": [[1], ["a"]]}) == []
    assert await match({"$ne": 1}) == ["three"]  # the field "$ne"
    assert await match({"tags": "café"}) == ["three"]  # a scalar is not a one-element list


async def test_keyed_writes_and_dedup(mt: Any) -> None:
    """Re-writing a key with the same value supersedes (never a duplicate of the version it
    replaces); two keys may hold the same value; an unkeyed duplicate is still one."""
    first = await mt.add_memory(agent_id="bot", content="same", namespace=NS, key="a")
    again = await mt.add_memory(agent_id="bot", content="same", namespace=NS, key="a")
    assert again.supersedes == first.id
    other = await mt.add_memory(agent_id="bot", content="same", namespace=NS, key="b")
    assert other.supersedes is None
    batch = await mt.add_memories(
        [
            {"agent_id": "bot", "content": "same", "namespace": NS, "key": "a"},
            {"agent_id": "bot", "content": "same", "namespace": NS, "key": "c"},
        ]
    )
    assert batch.count == 2
    assert batch.memories[0].supersedes == again.id
    assert batch.memories[1].supersedes is None
    assert [m.key for m in (await mt.search_memories(namespace=NS)).results] == ["c", "a", "b"]
    await mt.add_memory(agent_id="bot", content="plain")
    from memtrace_core import DuplicateMemoryError

    with pytest.raises(DuplicateMemoryError):
        await mt.add_memory(agent_id="bot", content="plain")


@pytest.mark.parametrize(
    "call",
    [
        lambda mt: mt.add_memory(agent_id="bot", content="x", importance=float("nan")),
        lambda mt: mt.add_memory(agent_id="bot", content="x", metadata={"a": float("inf")}),
        lambda mt: mt.add_memory(agent_id="bot", content="lone \ud800 surrogate"),
        lambda mt: mt.add_memory(agent_id="bot", content="x", metadata={"k": "\udfff"}),
        lambda mt: mt.search_memories(metadata={"a": float("nan")}),
        lambda mt: mt.search_memories(metadata={"a": {"$ne": float("nan")}}),
        lambda mt: mt.search_memories(query="\ud800"),
    ],
)
async def test_what_json_cannot_carry_is_refused(mt: Any, call: Any) -> None:
    """NaN, infinities and lone surrogates are a ValidationError on every transport (the HTTP
    client refuses them before sending: JSON cannot carry them, and NaN must not become null)."""
    with pytest.raises(ValidationError):
        await call(mt)
    assert (await mt.list_memories()).count == 0
