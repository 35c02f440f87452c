"""The filters CrewAI needs (issue 11) and ``summarize_memories``, on both transports (engine
and HTTP): metadata ``$in`` / ``$nin``, ``tags_any``, ``ids`` and ``keys`` on searches and
deletes, ``metadata`` on deletes and pops, and the summary of a filter."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memtrace_core import MemorySummary, ValidationError, aconnect


def ago(**kw: float) -> datetime:
    return datetime.now(UTC) - timedelta(**kw)


async def contents(mt: Any, **filters: Any) -> set[str]:
    found = await mt.search_memories(limit=1000, **filters)
    return {m.content for m in found.results}


# -- metadata $in / $nin ---------------------------------------------------------------------


async def test_in_matches_any_scalar_with_eq_semantics(mt: Any) -> None:
    rows = {
        "private-7": {"crewai_audience": "user-7"},
        "private-8": {"crewai_audience": "user-8"},
        "null": {"crewai_audience": None},
        "absent": {"other": 1},
        "none": None,
        "int": {"n": 1},
        "float": {"n": 1.0},
        "true": {"n": True},
        "two": {"n": 2},
        "text-1": {"n": "1"},
        "list": {"crewai_audience": ["user-7"]},
        "object": {"crewai_audience": {"user-7": 1}},
    }
    for content, metadata in rows.items():
        await mt.add_memory(agent_id="crew", content=content, metadata=metadata)
    visible = await contents(mt, metadata={"crewai_audience": {"$in": [None, "user-7"]}})
    # the CrewAI rule: a record without an audience is visible, a private one to its source
    assert visible == {
        "private-7",
        "null",
        "absent",
        "none",
        "int",
        "float",
        "true",
        "two",
        "text-1",
    }
    assert await contents(mt, metadata={"crewai_audience": {"$in": ["user-7"]}}) == {"private-7"}
    assert await contents(mt, metadata={"crewai_audience": {"$in": ["user-7", "user-8"]}}) == {
        "private-7",
        "private-8",
    }
    # numbers numerically, booleans as 1, strings are not numbers
    assert await contents(mt, metadata={"n": {"$in": [1]}}) == {"int", "float", "true"}
    assert await contents(mt, metadata={"n": {"$in": [1.0, 2]}}) == {"int", "float", "true", "two"}
    assert await contents(mt, metadata={"n": {"$in": ["1"]}}) == {"text-1"}
    # as $eq does, value by value
    for values in ([1], [None], ["user-7", None], [2, "1"]):
        union: set[str] = set()
        for v in values:
            union |= await contents(mt, metadata={"n": {"$eq": v}})
        assert await contents(mt, metadata={"n": {"$in": values}}) == union


async def test_nin_is_none_of_them_and_an_absent_value_holds(mt: Any) -> None:
    await mt.add_memory(agent_id="crew", content="seven", metadata={"a": "user-7"})
    await mt.add_memory(agent_id="crew", content="eight", metadata={"a": "user-8"})
    await mt.add_memory(agent_id="crew", content="absent", metadata={"b": 1})
    await mt.add_memory(agent_id="crew", content="nothing")
    await mt.add_memory(agent_id="crew", content="null", metadata={"a": None})
    assert await contents(mt, metadata={"a": {"$nin": ["user-7"]}}) == {
        "eight",
        "absent",
        "nothing",
        "null",
    }
    assert await contents(mt, metadata={"a": {"$nin": ["user-7", None]}}) == {"eight"}
    # $nin is the complement of $in, over the same memories
    everything = await contents(mt)
    for values in (["user-7"], [None], ["user-8", None], [1, "x"]):
        inside = await contents(mt, metadata={"a": {"$in": values}})
        outside = await contents(mt, metadata={"a": {"$nin": values}})
        assert inside | outside == everything
        assert not inside & outside
    # with other operators and nested paths
    await mt.add_memory(agent_id="crew", content="deep", metadata={"x": {"y": 3}})
    assert await contents(mt, metadata={"x": {"y": {"$in": [3, 4]}}}) == {"deep"}
    assert await contents(mt, metadata={"x": {"y": {"$in": [3], "$nin": [3]}}}) == set()


@pytest.mark.parametrize(
    ("flt", "match"),
    [
        ({"a": {"$in": []}}, "non-empty list"),
        ({"a": {"$nin": []}}, "non-empty list"),
        ({"a": {"$in": "user-7"}}, "non-empty list"),
        ({"a": {"$in": None}}, "non-empty list"),
        ({"a": {"$in": {"user-7": 1}}}, "non-empty list"),
        ({"a": {"$in": [{"b": 1}]}}, "scalars only"),
        ({"a": {"$in": [["user-7"]]}}, "scalars only"),
        ({"deep": {"er": {"$nin": [[1]]}}}, r"metadata\.deep\.er.*scalars only"),
        ({"a": {"$in": list(range(65))}}, "too many metadata conditions: 65"),
        ({"a": {"$in": list(range(40)), "$nin": list(range(25))}}, "too many"),
        ({"a": {"$in": [10**400]}}, "too large|finite"),
    ],
)
async def test_bad_in_operands_are_refused(mt: Any, flt: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        await mt.search_memories(metadata=flt)
    assert info.value.status_code == 400
    assert info.value.field.startswith("metadata")
    with pytest.raises(ValidationError, match=match):
        await mt.delete_memories(metadata=flt)


async def test_in_at_the_value_limit_is_accepted(mt: Any) -> None:
    await mt.add_memory(agent_id="crew", content="sixty-three", metadata={"a": 63})
    assert await contents(mt, metadata={"a": {"$in": list(range(64))}}) == {"sixty-three"}


# -- tags_any, ids, keys ---------------------------------------------------------------------


async def test_tags_any_alone_and_with_tags(mt: Any) -> None:
    await mt.add_memory(agent_id="t", content="ab", tags=["a", "b"])
    await mt.add_memory(agent_id="t", content="b", tags=["b"])
    await mt.add_memory(agent_id="t", content="c", tags=["c"])
    await mt.add_memory(agent_id="t", content="untagged")
    assert await contents(mt, tags_any=["a", "c"]) == {"ab", "c"}
    assert await contents(mt, tags_any=["b"]) == {"ab", "b"}
    assert await contents(mt, tags_any=["zzz"]) == set()
    assert await contents(mt, tags=["b"], tags_any=["a", "c"]) == {"ab"}
    assert await contents(mt, tags_any="a,c") == {"ab", "c"}  # CSV, as tags
    listed = await mt.list_memories(tags_any=["a", "c"])
    assert {m.content for m in listed.memories} == {"ab", "c"}
    listed = await mt.list_memories(tags_any="c,b", tags="b")
    assert {m.content for m in listed.memories} == {"ab", "b"}
    recalled = await mt.recall("t", tags_any=["c", "a"])
    assert {m.content for m in recalled.memories} == {"ab", "c"}
    ranked = await mt.search_memories(query="ab", tags_any=["a"])
    assert [m.content for m in ranked.results] == ["ab"]
    for bad, match in (
        (["a b"], "invalid tag"),
        (["x"] * 33, "too many tags"),
        ([], "empty list"),
    ):
        with pytest.raises(ValidationError, match=match) as info:
            await mt.search_memories(tags_any=bad)
        assert info.value.field == "tags_any"
    with pytest.raises(ValidationError, match="empty list"):
        await mt.list_memories(tags_any=[])


async def test_ids_and_keys_with_namespace_prefix(mt: Any) -> None:
    a1 = await mt.add_memory(agent_id="k", content="a1", namespace=["crew", "a"], key="k1")
    a2 = await mt.add_memory(agent_id="k", content="a2", namespace=["crew", "a"], key="k2")
    b1 = await mt.add_memory(agent_id="k", content="b1", namespace=["crew", "b"], key="k1")
    other = await mt.add_memory(agent_id="k", content="o1", namespace=["other"], key="k1")
    await mt.add_memory(agent_id="k", content="plain")
    assert await contents(mt, ids=[a1.id, b1.id]) == {"a1", "b1"}
    assert await contents(mt, ids=[a1.id, b1.id, other.id], namespace_prefix=["crew"]) == {
        "a1",
        "b1",
    }
    assert await contents(mt, ids=[a2.id], namespace_prefix=["crew", "b"]) == set()
    assert await contents(mt, keys=["k1"]) == {"a1", "b1", "o1"}
    assert await contents(mt, keys=["k1", "k2"], namespace_prefix=["crew"]) == {"a1", "a2", "b1"}
    assert await contents(mt, keys=["k2", "nope"], namespace=["crew", "a"]) == {"a2"}
    assert await contents(mt, keys=["k1"], key="k1", namespace_prefix=["crew", "b"]) == {"b1"}
    assert await contents(mt, keys=["a,b"]) == set()  # a key may hold a comma
    # a superseded version is not current; with include_superseded both versions are listed
    await mt.add_memory(agent_id="k", content="a1 v2", namespace=["crew", "a"], key="k1")
    assert await contents(mt, keys=["k1"], namespace_prefix=["crew", "a"]) == {"a1 v2"}
    assert await contents(
        mt, keys=["k1"], namespace_prefix=["crew", "a"], include_superseded=True
    ) == {"a1", "a1 v2"}
    for field, bad, match in (
        ("ids", ["nope"], "not a memory id"),
        ("ids", [a1.id] * 1001, "too many ids: 1001"),
        ("ids", [], "empty list"),
        ("keys", [""], "keys"),
        ("keys", ["x"] * 1001, "too many keys: 1001"),
        ("keys", [], "empty list"),
        ("keys", ["a\x00b"], "keys"),
    ):
        with pytest.raises(ValidationError, match=match) as info:
            await mt.search_memories(**{field: bad})
        assert info.value.field == field
        with pytest.raises(ValidationError, match=match):
            await mt.delete_memories(**{field: bad})
    assert await contents(mt, ids=[a2.id] * 1000) == {"a2"}  # at the limit, de-duplicated


# -- deletes and pops ------------------------------------------------------------------------


async def test_delete_with_metadata_tags_any_ids_and_keys(mt: Any) -> None:
    for i in range(6):
        await mt.add_memory(
            agent_id="d",
            content=f"m{i}",
            metadata={"aud": "user-7" if i % 2 else None, "i": i},
            tags=[f"t{i % 3}"],
            namespace=["crew", str(i % 2)],
            key=f"k{i}",
            time=ago(minutes=10 - i),
        )
    assert await mt.delete_memories(metadata={"aud": {"$in": ["user-7"]}}, tags_any=["t0"]) == 1
    assert await contents(mt) == {"m0", "m1", "m2", "m4", "m5"}  # m3: aud user-7 and t0
    assert await mt.delete_memories(tags_any=["t1", "t2"], namespace_prefix=["crew", "0"]) == 2
    assert await contents(mt) == {"m0", "m1", "m5"}
    assert await mt.delete_memories(keys=["k0", "k1", "k9"], namespace_prefix=["crew", "1"]) == 1
    assert await contents(mt) == {"m0", "m5"}
    assert await mt.delete_memories(metadata={"i": {"$gte": 100}}) == 0
    assert await mt.delete_memories(metadata={"aud": {"$nin": ["user-7"]}}) == 1
    assert await contents(mt) == {"m5"}
    # the deleted ones are gone from every index
    assert (await mt.search_memories(query="m3")).count == 0
    summary = await mt.summarize_memories()
    assert (summary.count, summary.tags) == (1, {"t2": 1})


async def test_pop_with_metadata_and_tags_any(mt: Any) -> None:
    await mt.add_memory(
        agent_id="p", content="old 7", metadata={"aud": "u7"}, tags=["a"], time=ago(minutes=3)
    )
    await mt.add_memory(
        agent_id="p", content="new 8", metadata={"aud": "u8"}, tags=["b"], time=ago(minutes=2)
    )
    await mt.add_memory(agent_id="p", content="newest", tags=["c"], time=ago(minutes=1))
    popped = await mt.pop_memory(metadata={"aud": {"$in": ["u7", "u8"]}})
    assert popped is not None
    assert popped.content == "new 8"
    popped = await mt.pop_memory(tags_any=["a", "b"])
    assert popped is not None
    assert popped.content == "old 7"
    assert await mt.pop_memory(tags_any=["a", "b"]) is None
    assert await mt.pop_memory(metadata={"aud": {"$nin": [None]}}) is None
    popped = await mt.pop_memory(metadata={"aud": {"$in": [None]}})
    assert popped is not None
    assert popped.content == "newest"


# -- summarize_memories ----------------------------------------------------------------------


async def test_summary_counts_times_and_tags(mt: Any) -> None:
    empty = await mt.summarize_memories()
    assert empty == MemorySummary(count=0, oldest=None, newest=None, tags={}, tags_truncated=False)
    times = [ago(hours=5), ago(hours=3), ago(hours=1)]
    await mt.add_memory(
        agent_id="s", content="one", tags=["x", "y"], time=times[0], namespace=["scope", "a"]
    )
    await mt.add_memory(
        agent_id="s", content="two", tags=["y"], time=times[1], namespace=["scope", "b"]
    )
    await mt.add_memory(agent_id="s", content="three", time=times[2], namespace=["elsewhere"])
    whole = await mt.summarize_memories()
    assert whole.count == 3
    assert abs((whole.oldest - times[0]).total_seconds()) < 0.001
    assert abs((whole.newest - times[2]).total_seconds()) < 0.001
    assert whole.tags == {"y": 2, "x": 1}
    assert list(whole.tags) == ["y", "x"]  # the most frequent first
    assert not whole.tags_truncated
    scope = await mt.summarize_memories(namespace_prefix=["scope"])
    assert (scope.count, scope.tags) == (2, {"y": 2, "x": 1})
    assert abs((scope.newest - times[1]).total_seconds()) < 0.001
    assert (await mt.summarize_memories(tags_any=["x"])).count == 1
    assert (await mt.summarize_memories(since="2h")).count == 1
    assert (await mt.summarize_memories(content_contains="tw")).count == 1
    top = await mt.summarize_memories(tag_limit=1)
    assert (top.tags, top.tags_truncated) == ({"y": 2}, True)
    assert (await mt.summarize_memories(tag_limit=2)).tags_truncated is False
    assert (await mt.summarize_memories({"agent_id": "s"})).count == 3  # a mapping, as search


async def test_summary_ties_by_tag_name_and_tag_limit_bounds(mt: Any) -> None:
    await mt.add_memory(agent_id="s", content="one", tags=["b", "a", "c"])
    await mt.add_memory(agent_id="s", content="two", tags=["c"])
    summary = await mt.summarize_memories(tag_limit=2)
    assert list(summary.tags.items()) == [("c", 2), ("a", 1)]
    assert summary.tags_truncated
    for bad in (0, 1001, -1, True, "many", 2.5):
        with pytest.raises(ValidationError) as info:
            await mt.summarize_memories(tag_limit=bad)
        assert info.value.status_code == 400
        assert "tag_limit" in (info.value.field or "")
    assert len((await mt.summarize_memories(tag_limit=1000)).tags) == 3
    for field in ("query", "limit", "offset", "order"):
        with pytest.raises(ValidationError) as info:
            await mt.summarize_memories(**{field: "x"})
        assert info.value.field == field
    with pytest.raises(ValidationError, match="metadata"):
        await mt.summarize_memories(metadata={"a": {"$in": []}})


async def test_summary_leaves_out_expired_and_superseded(mt: Any) -> None:
    await mt.add_memory(
        agent_id="s", content="v1", namespace=["n"], key="k", tags=["old"], time=ago(hours=9)
    )
    await mt.add_memory(
        agent_id="s", content="v2", namespace=["n"], key="k", tags=["new"], time=ago(hours=1)
    )
    await mt.add_memory(agent_id="s", content="short", tags=["gone"], ttl=1, time=ago(hours=20))
    await asyncio.sleep(1.1)
    summary = await mt.summarize_memories()
    assert (summary.count, summary.tags) == (1, {"new": 1})
    assert abs((summary.oldest - ago(hours=1)).total_seconds()) < 60
    with_old = await mt.summarize_memories(include_superseded=True)
    assert (with_old.count, with_old.tags) == (2, {"new": 1, "old": 1})
    listed = await mt.list_memories(include_superseded=True, since="30d")
    assert with_old.count == listed.count


async def test_summary_as_of(mt: Any) -> None:
    first = await mt.add_memory(agent_id="s", content="first", tags=["a"])
    then = first.recorded_at
    await mt.add_memory(agent_id="s", content="second", tags=["a", "b"])
    assert (await mt.summarize_memories(as_of=then)).tags == {"a": 1}
    assert (await mt.summarize_memories()).tags == {"a": 2, "b": 1}


AUDIENCES = [None, "u1", "u2"]
TAGS = ["t1", "t2", "t3", "t4"]
item = st.fixed_dictionaries(
    {
        "minutes": st.integers(min_value=1, max_value=600),
        "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=3),
        "aud": st.sampled_from([*AUDIENCES, "absent"]),
        "ns": st.sampled_from(["a", "b"]),
    }
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "tags_any": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2, unique=True),
        "tags": st.lists(st.sampled_from(TAGS), min_size=1, max_size=1),
        "aud_in": st.lists(st.sampled_from(AUDIENCES), min_size=1, max_size=2, unique=True),
        "ns": st.sampled_from(["a", "b"]),
        "tag_limit": st.integers(min_value=1, max_value=5),
    },
)


@given(items=st.lists(item, max_size=10), flt=filters)
async def test_summary_equals_a_brute_force_count(
    mt: Any, items: list[dict[str, Any]], flt: dict[str, Any]
) -> None:
    agent = "h" + uuid.uuid4().hex[:12]  # each example in its own corner of the store
    if items:
        await mt.add_memories(
            [
                {
                    "agent_id": agent,
                    "content": f"memory {i}",
                    "tags": it["tags"] or None,
                    "metadata": None if it["aud"] == "absent" else {"aud": it["aud"]},
                    "namespace": [agent, it["ns"]],
                    "time": ago(minutes=it["minutes"]),
                    "dedup": False,
                }
                for i, it in enumerate(items)
            ]
        )
    query: dict[str, Any] = {"agent_id": agent}
    if "tags_any" in flt:
        query["tags_any"] = flt["tags_any"]
    if "tags" in flt:
        query["tags"] = flt["tags"]
    if "aud_in" in flt:
        query["metadata"] = {"aud": {"$in": flt["aud_in"]}}
    if "ns" in flt:
        query["namespace_prefix"] = [agent, flt["ns"]]
    tag_limit = flt.get("tag_limit", 100)
    summary = await mt.summarize_memories(**query, tag_limit=tag_limit)
    # brute force: every memory of the agent, filtered here
    everything = (await mt.list_memories(agent_id=agent, since="30d", limit=1000)).memories
    expected = [
        m
        for m in everything
        if (not flt.get("tags_any") or set(flt["tags_any"]) & set(m.tags or ()))
        and set(flt.get("tags", ())) <= set(m.tags or ())
        and ("aud_in" not in flt or (m.metadata or {}).get("aud") in flt["aud_in"])
        and ("ns" not in flt or m.namespace == [agent, flt["ns"]])
    ]
    # the search that the summary summarises finds the same memories
    found = await mt.search_memories(**query, limit=1000)
    assert sorted(m.id for m in found.results) == sorted(m.id for m in expected)
    assert summary.count == len(expected)
    assert summary.oldest == (min(m.time for m in expected) if expected else None)
    assert summary.newest == (max(m.time for m in expected) if expected else None)
    counts = Counter(tag for m in expected for tag in m.tags or ())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert list(summary.tags.items()) == ranked[:tag_limit]
    assert summary.tags_truncated == (len(ranked) > tag_limit)


# -- tenancy and export ----------------------------------------------------------------------


async def test_summary_and_filters_never_cross_orgs(store_url: str) -> None:
    url = store_url
    a = await aconnect(url, org_id="org_a")
    b = await aconnect(url, org_id="org_b")
    try:
        mine = await a.add_memory(
            agent_id="x",
            content="mine",
            tags=["shared"],
            namespace=["s"],
            key="k",
            metadata={"aud": "u"},
        )
        theirs = await b.add_memory(
            agent_id="x",
            content="theirs",
            tags=["shared", "b-only"],
            namespace=["s"],
            key="k",
            metadata={"aud": "u"},
        )
        summary = await a.summarize_memories(namespace_prefix=[])
        assert (summary.count, summary.tags) == (1, {"shared": 1})
        assert await contents(a, ids=[mine.id, theirs.id]) == {"mine"}
        assert await contents(a, keys=["k"], tags_any=["b-only", "shared"]) == {"mine"}
        assert await a.delete_memories(ids=[theirs.id]) == 0
        assert await a.delete_memories(metadata={"aud": {"$in": ["u"]}}) == 1
        assert (await b.summarize_memories()).count == 1
        assert (await b.summarize_memories()).tags == {"b-only": 1, "shared": 1}
    finally:
        await a.close()
        await b.close()


async def test_export_refuses_keys_and_metadata_and_takes_ids_and_tags_any(mt: Any) -> None:
    one = await mt.add_memory(agent_id="e", content="one", tags=["a"])
    await mt.add_memory(agent_id="e", content="two", tags=["b"])
    for field, value in (("keys", ["k"]), ("metadata", {"a": 1})):
        with pytest.raises(ValidationError) as info:
            async for _ in mt.iter_export(**{field: value}):
                pass
        assert info.value.field == field

    async def exported(**criteria: Any) -> list[str]:
        lines = [line async for line in mt.iter_export(**criteria)]
        return [line for line in lines if '"kind":"memory"' in line]

    assert len(await exported(ids=[one.id])) == 1
    assert len(await exported(tags_any=["a", "b"])) == 2
