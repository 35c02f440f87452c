"""``delete_memories(all_versions=True)`` (issue 11): a delete that takes every version of each
matched memory with it (its whole supersession chain, older and newer, whatever namespace, tags
or time those versions have), so that no earlier version becomes current again. On both
transports (engine and HTTP); without ``all_versions`` the chain is mended as before."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memtrace_core import NotFoundError, ValidationError, aconnect


async def stored(mt: Any, agent: str) -> dict[str, str]:
    """id → content of every memory of the agent, superseded ones included."""
    found = await mt.list_memories(agent_id=agent, include_superseded=True, since="30d", limit=1000)
    return {m.id: m.content for m in found.memories}


async def current(mt: Any, agent: str) -> set[str]:
    found = await mt.list_memories(agent_id=agent, since="30d", limit=1000)
    return {m.content for m in found.memories}


async def chain(mt: Any, agent: str, label: str) -> list[Any]:
    """Three versions of one record, as CrewAI's update writes them: the record moves from
    namespace ``a`` to ``b`` and its tags change with each version."""
    v1 = await mt.add_memory(
        agent_id=agent, content=f"{label} SSN 123", namespace=[agent, "a"], tags=["t-old", label]
    )
    v2 = await mt.add_memory(
        agent_id=agent,
        content=f"{label} SSN 456",
        namespace=[agent, "b"],
        tags=["t-mid"],
        supersedes=v1.id,
    )
    v3 = await mt.add_memory(
        agent_id=agent,
        content=f"{label} SSN 987",
        namespace=[agent, "b"],
        tags=["t-new"],
        supersedes=v2.id,
    )
    return [v1, v2, v3]


def _agent() -> str:
    return "v" + uuid.uuid4().hex[:12]


#: How a caller names the record to forget: the chain's versions → delete criteria.
WAYS = {
    "id of the current": lambda agent, vs: {"ids": [vs[2].id]},
    "id of an old version": lambda agent, vs: {"ids": [vs[0].id]},
    "id of the middle": lambda agent, vs: {"ids": [vs[1].id]},
    "namespace of the current": lambda agent, vs: {"namespace": [agent, "b"]},
    "tags of the current": lambda agent, vs: {"tags": ["t-new"], "agent_id": agent},
}
#: Criteria that only an older version meets: with all_versions a record is matched by what its
#: current version says (a record moved out of a namespace, or re-tagged, is not deleted for
#: what it said before).
OLD_ONLY = {
    "namespace of the first": lambda agent, vs: {"namespace": [agent, "a"]},
    "tags of an old version": lambda agent, vs: {"tags_any": ["t-old"], "agent_id": agent},
}


@pytest.mark.parametrize("way", list(OLD_ONLY))
async def test_all_versions_matches_current_versions_only(mt: Any, way: str) -> None:
    agent = _agent()
    doomed = await chain(mt, agent, "doomed")
    before = await stored(mt, agent)
    assert await mt.delete_memories(**OLD_ONLY[way](agent, doomed), all_versions=True) == 0
    assert await stored(mt, agent) == before


@pytest.mark.parametrize("way", list(WAYS))
async def test_all_versions_deletes_the_whole_chain_and_nothing_else(mt: Any, way: str) -> None:
    agent = _agent()
    doomed = await chain(mt, agent, "doomed")
    # another chain of the same agent, in other namespaces, with other tags
    keep1 = await mt.add_memory(agent_id=agent, content="keep 1", namespace=["other"], tags=["k"])
    keep2 = await mt.add_memory(
        agent_id=agent, content="keep 2", namespace=["other"], tags=["k"], supersedes=keep1.id
    )
    lone = await mt.add_memory(agent_id=agent, content="lone", tags=["k"])
    before = await stored(mt, agent)
    criteria = WAYS[way](agent, doomed)
    assert await mt.delete_memories(**criteria, all_versions=True) == 3
    after = await stored(mt, agent)
    assert after == {k: v for k, v in before.items() if k not in {v.id for v in doomed}}
    assert await current(mt, agent) == {"keep 2", "lone"}
    for v in doomed:
        with pytest.raises(NotFoundError):
            await mt.get_memory(v.id)
    # the other chain is intact, links included
    assert (await mt.get_memory(keep1.id)).superseded_by == keep2.id
    assert (await mt.get_memory(keep2.id)).supersedes == keep1.id
    assert (await mt.get_memory(lone.id)).content == "lone"
    # the search finds nothing of the deleted chain either
    found = await mt.search_memories(
        query="SSN", agent_id=agent, include_superseded=True, limit=100
    )
    assert found.results == []


async def test_without_all_versions_the_previous_version_comes_back(mt: Any) -> None:
    agent = _agent()
    v1, v2, v3 = await chain(mt, agent, "r")
    assert await mt.delete_memories(ids=[v3.id]) == 1
    assert await current(mt, agent) == {"r SSN 456"}
    assert (await mt.get_memory(v2.id)).superseded_by is None
    # by namespace: the version in the other namespace becomes current
    assert await mt.delete_memories(namespace=[agent, "b"]) == 1
    assert await current(mt, agent) == {"r SSN 123"}
    assert (await mt.get_memory(v1.id)).namespace == [agent, "a"]
    # and all_versions=false is the same delete
    await chain(mt, agent, "w")
    assert await mt.delete_memories(tags=["t-new"], agent_id=agent, all_versions=False) == 1
    assert await current(mt, agent) == {"r SSN 123", "w SSN 456"}


async def test_keyed_chains_go_whole(mt: Any) -> None:
    agent = _agent()
    ns = [agent, "facts"]
    first = await mt.add_memory(agent_id=agent, content="drink: tea", namespace=ns, key="drink")
    await mt.add_memory(agent_id=agent, content="drink: coffee", namespace=ns, key="drink")
    last = await mt.add_memory(agent_id=agent, content="drink: water", namespace=ns, key="drink")
    assert last.supersedes is not None
    other = await mt.add_memory(agent_id=agent, content="food: rice", namespace=ns, key="food")
    elsewhere = await mt.add_memory(
        agent_id=agent, content="drink: juice", namespace=[agent, "x"], key="drink"
    )
    # the key's first version named by id: every version goes, the other keys stay
    assert await mt.delete_memories(ids=[first.id], all_versions=True) == 3
    with pytest.raises(NotFoundError):
        await mt.get_memory_by_key(ns, "drink")
    assert (await mt.get_memory_by_key(ns, "food")).id == other.id
    assert (await mt.get_memory_by_key([agent, "x"], "drink")).id == elsewhere.id
    # a new write of the key starts a new chain
    again = await mt.add_memory(agent_id=agent, content="drink: milk", namespace=ns, key="drink")
    assert again.supersedes is None
    # by key alone, as before (every version matches anyway)
    await mt.add_memory(agent_id=agent, content="drink: cocoa", namespace=ns, key="drink")
    assert await mt.delete_memories(namespace=ns, key="drink", all_versions=True) == 2
    assert await current(mt, agent) == {"food: rice", "drink: juice"}


async def test_a_keyed_chain_without_all_versions_reverts(mt: Any) -> None:
    agent = _agent()
    ns = [agent, "facts"]
    await mt.add_memory(agent_id=agent, content="drink: tea", namespace=ns, key="drink")
    last = await mt.add_memory(agent_id=agent, content="drink: coffee", namespace=ns, key="drink")
    assert await mt.delete_memories(ids=[last.id]) == 1
    assert (await mt.get_memory_by_key(ns, "drink")).content == "drink: tea"


async def test_several_matches_in_one_chain_and_several_chains(mt: Any) -> None:
    agent = _agent()
    a = await chain(mt, agent, "a")
    b = await chain(mt, agent, "b")
    c = await chain(mt, agent, "c")
    # two versions of a, one of b: each chain counted once
    ids = [a[0].id, a[2].id, b[1].id]
    assert await mt.delete_memories(ids=ids, all_versions=True) == 6
    assert set((await stored(mt, agent)).values()) == {v.content for v in c}
    # every chain of the agent at once
    assert await mt.delete_memories(agent_id=agent, all_versions=True) == 3
    assert await stored(mt, agent) == {}
    # nothing matched: nothing deleted
    assert await mt.delete_memories(ids=[a[0].id], all_versions=True) == 0


@pytest.mark.parametrize("bad", ["yes", "true", 1, 0, "false", None, [True]])
async def test_all_versions_is_a_json_boolean(mt: Any, bad: Any) -> None:
    agent = _agent()
    vs = await chain(mt, agent, "b")
    with pytest.raises(ValidationError) as info:
        await mt.delete_memories(ids=[vs[0].id], all_versions=bad)
    assert info.value.field == "all_versions"
    assert len(await stored(mt, agent)) == 3


async def test_pop_and_export_refuse_all_versions(mt: Any) -> None:
    agent = _agent()
    vs = await chain(mt, agent, "p")
    with pytest.raises(ValidationError) as info:
        await mt.pop_memory(agent_id=agent, all_versions=True)
    assert info.value.field == "all_versions"
    assert "applies to deletes" in info.value.message
    with pytest.raises(ValidationError) as info:
        async for _ in mt.iter_export(agent_id=agent, all_versions=True):
            pass
    assert info.value.field == "all_versions"
    assert len(await stored(mt, agent)) == 3
    # false is accepted (and is the default) everywhere
    popped = await mt.pop_memory(agent_id=agent, all_versions=False)
    assert popped is not None
    assert popped.id == vs[2].id
    lines = [line async for line in mt.iter_export(agent_id=agent, all_versions=False)]
    assert len(lines) == 3  # two memories and the trailer


async def test_all_versions_never_crosses_orgs(store_url: str) -> None:
    """Org b holds the very same chain, ids included (an export of org a imported into it):
    deleting the chain in org a with all_versions leaves b's untouched."""
    url = store_url
    a = await aconnect(url, org_id="org_a")
    b = await aconnect(url, org_id="org_b")
    try:
        vs = await chain(a, "x", "mine")
        await b.add_memory(agent_id="x", content="theirs", namespace=["x", "a"], key="k")
        await a.add_memory(agent_id="x", content="mine too", namespace=["x", "a"], key="k")
        lines = [line async for line in a.iter_export()]
        assert (await b.import_jsonl(lines)).imported == 4
        theirs = await stored(b, "x")
        assert {v.id for v in vs} <= set(theirs)
        assert await a.delete_memories(ids=[vs[1].id], all_versions=True) == 3
        assert set((await stored(a, "x")).values()) == {"mine too"}
        assert await stored(b, "x") == theirs
        assert (await b.get_memory(vs[1].id)).superseded_by == vs[2].id
        assert await b.delete_memories(ids=[vs[0].id], all_versions=True) == 3
        assert set((await stored(b, "x")).values()) == {"theirs", "mine too"}
        assert set((await stored(a, "x")).values()) == {"mine too"}
    finally:
        await a.close()
        await b.close()


async def test_chains_are_followed_within_the_org(store_url: str) -> None:
    """The same ids, linked differently in two orgs: org b's links never widen org a's chain.
    (a: X1 ← X2 and an unrelated Z; b: X1 ← X2 ← Z, the same ids.)"""
    url = store_url
    a = await aconnect(url, org_id="org_a")
    b = await aconnect(url, org_id="org_b")
    try:
        x1 = await a.add_memory(agent_id="x", content="x1")
        x2 = await a.add_memory(agent_id="x", content="x2", supersedes=x1.id)
        assert (await b.import_jsonl([line async for line in a.iter_export()])).imported == 2
        z = await b.add_memory(agent_id="x", content="z", supersedes=x2.id)
        (line,) = [
            line async for line in b.iter_export(ids=[z.id]) if json.loads(line)["kind"] == "memory"
        ]
        unlinked = {k: v for k, v in json.loads(line).items() if k != "supersedes"}
        got = await a.import_jsonl([json.dumps(unlinked)], require_trailer=False)
        assert got.imported == 1
        assert (await a.get_memory(z.id)).supersedes is None
        assert await a.delete_memories(ids=[x1.id], all_versions=True) == 2
        assert set((await stored(a, "x")).values()) == {"z"}
        assert set((await stored(b, "x")).values()) == {"x1", "x2", "z"}
        assert await b.delete_memories(ids=[x1.id], all_versions=True) == 3
        assert set((await stored(a, "x")).values()) == {"z"}
    finally:
        await a.close()
        await b.close()


# -- the property: all_versions deletes exactly the union of the chains of the matched rows --

version = st.fixed_dictionaries(
    {"ns": st.sampled_from(["a", "b"]), "tags": st.lists(st.sampled_from("xyz"), max_size=2)}
)
chains = st.lists(
    st.tuples(st.booleans(), st.lists(version, min_size=1, max_size=4)), min_size=1, max_size=5
)
criteria = st.one_of(
    st.fixed_dictionaries({"tags_any": st.lists(st.sampled_from("xyz"), min_size=1, max_size=2)}),
    st.fixed_dictionaries({"tags": st.lists(st.sampled_from("xyz"), min_size=1, max_size=2)}),
    st.fixed_dictionaries({"ns": st.sampled_from(["a", "b"])}),
    st.fixed_dictionaries({"pick": st.lists(st.integers(0, 30), min_size=1, max_size=3)}),
)


@given(made=chains, flt=criteria, all_versions=st.booleans())
async def test_all_versions_deletes_exactly_the_chains_of_the_matches(
    mt: Any, made: list[tuple[bool, list[dict[str, Any]]]], flt: dict[str, Any], all_versions: bool
) -> None:
    agent = _agent()  # each example in its own corner of the store
    rows: list[tuple[int, Any, dict[str, Any]]] = []  # (chain index, memory, version spec)
    for index, (keyed, versions) in enumerate(made):
        prev = None
        for spec in versions:
            ns = [agent, "a" if keyed else spec["ns"]]
            fields: dict[str, Any] = {
                "agent_id": agent,
                "content": f"chain {index} v{len(rows)}",
                "namespace": ns,
                "tags": spec["tags"] or None,
            }
            if keyed:
                fields["key"] = f"k{index}"
            elif prev is not None:
                fields["supersedes"] = prev.id
            prev = await mt.add_memory(**fields)
            rows.append((index, prev, {**spec, "ns": ns[1]}))
    query: dict[str, Any] = {"agent_id": agent}
    if "tags_any" in flt:
        query["tags_any"] = flt["tags_any"]
        matched = [r for r in rows if set(flt["tags_any"]) & set(r[2]["tags"])]
    elif "tags" in flt:
        query["tags"] = flt["tags"]
        matched = [r for r in rows if set(flt["tags"]) <= set(r[2]["tags"])]
    elif "ns" in flt:
        query["namespace"] = [agent, flt["ns"]]
        matched = [r for r in rows if r[2]["ns"] == flt["ns"]]
    else:
        picked = [rows[i % len(rows)] for i in flt["pick"]]
        query["ids"] = [r[1].id for r in picked]
        matched = picked
    matched_ids = {r[1].id for r in matched}
    if all_versions:
        if "pick" not in flt:
            # criteria match records by their current (last) version; named ids match as given
            last = {r[0]: r[1].id for r in rows}
            matched = [r for r in matched if last[r[0]] == r[1].id]
        hit = {r[0] for r in matched}
        expected = {r[1].id for r in rows if r[0] in hit}
    else:
        expected = matched_ids
    before = await stored(mt, agent)
    assert await mt.delete_memories(**query, all_versions=all_versions) == len(expected)
    after = await stored(mt, agent)
    assert set(after) == set(before) - expected
    # each chain's survivors are still one linear chain, its newest survivor current
    for index in {r[0] for r in rows}:
        left = [r[1] for r in rows if r[0] == index and r[1].id in after]
        for older, newer in itertools.pairwise(left):
            assert (await mt.get_memory(older.id)).superseded_by == newer.id
        if left:
            assert (await mt.get_memory(left[-1].id)).superseded_by is None


async def test_all_versions_never_matches_an_expired_version(mt: Any) -> None:
    import asyncio as _asyncio

    agent = _agent()
    a = await mt.add_memory(agent_id=agent, content="v1 kept", namespace=[agent, "a"], tags=["x"])
    await mt.add_memory(
        agent_id=agent,
        content="v2 expiring",
        namespace=[agent, "a"],
        tags=["gone"],
        supersedes=a.id,
        ttl=1,
    )
    await _asyncio.sleep(1.2)
    # v2 expired: v1 is current again, and a filter only v2 met deletes nothing
    assert await mt.delete_memories(tags=["gone"], agent_id=agent, all_versions=True) == 0
    assert (await mt.get_memory(a.id)).content == "v1 kept"
