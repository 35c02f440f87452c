"""Store conformance for time (issue 15, the Store docstrings in stores/base.py): the storage
side every store must provide — supersession links and their mending on delete, expiry, the
retention deletion with first-match rules, leases, retention policy storage, ``memory_orgs``
and imported links in both directions. Runs on every URL of ``store_urls.STORE_URLS`` (set
``MEMTRACE_CONFORMANCE_URLS`` for another store), at the Store level: what the engine relies
on, without the engine's rules in front of it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from memtrace_core import ConflictError, aconnect
from memtrace_core.ids import memory_id
from memtrace_core.stores.base import AgeRule, MemoryFilter, MemoryRecord, Store, SupersedeError
from memtrace_core.timeutil import now_us

ORG = "org_conf"
OTHER = "org_conf_other"
_seq = itertools.count()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    engine = await aconnect(store_url)
    try:
        yield engine.store
    finally:
        await engine.close()


def rec(
    org: str = ORG,
    *,
    recorded: int | None = None,
    time: int | None = None,
    agent: str = "a",
    memory_type: str = "episodic",
    event_type: str = "general",
    key: str | None = None,
    expires_at: int | None = None,
    supersedes: str | None = None,
    mid: str | None = None,
) -> MemoryRecord:
    t = recorded if recorded is not None else now_us() + next(_seq)
    return MemoryRecord(
        id=mid or memory_id(),
        org_id=org,
        agent_id=agent,
        session_id=None,
        memory_type=memory_type,
        event_type=event_type,
        content=f"content {next(_seq)}",
        metadata=None,
        tags=["t"],
        dedup_key=key,
        importance=None,
        parent_id=None,
        time=time if time is not None else t,
        recorded_at=t,
        expires_at=expires_at,
        supersedes=supersedes,
    )


async def put(store: Store, *records: MemoryRecord, now: int | None = None) -> list[MemoryRecord]:
    org = records[0].org_id
    out = await store.insert_memories(
        org, list(records), dedup_since=0, now=now if now is not None else now_us()
    )
    assert all(o.inserted for o in out), out
    return list(records)


async def links(store: Store, mid: str, org: str = ORG) -> tuple[Any, ...]:
    m = await store.get_memory(org, mid)
    assert m is not None, mid
    return m.supersedes, m.superseded_by, m.superseded_at


async def ids(store: Store, flt: MemoryFilter, org: str = ORG) -> list[str]:
    return [m.id for m in await store.list_memories(org, flt, limit=1000, offset=0, order="asc")]


async def test_insert_with_supersedes_links_both_and_current_filters(store: Store) -> None:
    (a,) = await put(store, rec())
    (b,) = await put(store, rec(supersedes=a.id))
    sa, by, at = await links(store, a.id)
    assert (sa, by) == (None, b.id)
    assert at is not None
    assert int(at.timestamp() * 1_000_000) == b.recorded_at
    assert (await links(store, b.id))[:2] == (a.id, None)
    assert await ids(store, MemoryFilter(current=True)) == [b.id]
    assert await ids(store, MemoryFilter()) == [a.id, b.id]
    # as_of before the supersession: a is current then, b not recorded yet
    assert await ids(store, MemoryFilter(current=True, as_of=b.recorded_at - 1)) == [a.id]
    assert await ids(store, MemoryFilter(current=True, as_of=b.recorded_at)) == [b.id]
    assert await store.count_memories(ORG, MemoryFilter(current=True)) == 1


async def test_supersede_error_cases_roll_back_the_whole_call(store: Store) -> None:
    now = now_us()
    (a,) = await put(store, rec())
    (b,) = await put(store, rec(supersedes=a.id))
    (c,) = await put(store, rec(supersedes=b.id))
    (short,) = await put(store, rec(expires_at=now + 10), now=now)
    (theirs,) = await put(store, rec(OTHER))
    cases = [
        (a.id, c.id),  # already superseded: names the chain's head
        (b.id, c.id),
        (memory_id(), None),  # missing
        (theirs.id, None),  # another org's
        (short.id, None),  # expired at `now`
    ]
    for target, current in cases:
        fine = rec()
        with pytest.raises(SupersedeError) as info:
            await store.insert_memories(
                ORG, [fine, rec(supersedes=target)], dedup_since=0, now=now + 10
            )
        assert (info.value.index, info.value.target, info.value.current) == (1, target, current)
        assert await store.get_memory(ORG, fine.id) is None
    # two records of one call superseding the same memory
    with pytest.raises(SupersedeError):
        await store.insert_memories(
            ORG, [rec(supersedes=c.id), rec(supersedes=c.id)], dedup_since=0, now=now
        )
    assert (await links(store, c.id))[1] is None
    assert (await links(store, theirs.id, OTHER))[1] is None
    assert await store.count_memories(ORG, MemoryFilter()) == 4


async def test_dedup_skips_superseded_and_expired_and_the_target(store: Store) -> None:
    now = now_us()
    (a,) = await put(store, rec(key="k"))
    # the record superseding a is not its duplicate
    (b,) = await put(store, rec(key="k", supersedes=a.id))
    out = await store.insert_memories(ORG, [rec(key="k")], dedup_since=0, now=now_us())
    assert (out[0].inserted, out[0].duplicate_of) == (False, b.id)
    (e,) = await put(store, rec(key="e", expires_at=now + 5), now=now)
    out = await store.insert_memories(ORG, [rec(key="e")], dedup_since=0, now=now + 5)
    assert out[0].inserted
    assert e.id


async def test_delete_mends_the_chain(store: Store) -> None:
    a, b, c, d = (rec() for _ in range(4))
    await put(store, a)
    b.supersedes = a.id
    await put(store, b)
    c.supersedes = b.id
    await put(store, c)
    d.supersedes = c.id
    await put(store, d)
    # a middle one: its predecessor is now superseded by its successor
    assert await store.delete_memories(ORG, MemoryFilter(ids=(b.id,))) == 1
    _, by, at = await links(store, a.id)
    assert by == c.id
    assert int(at.timestamp() * 1_000_000) == c.recorded_at
    assert (await links(store, c.id))[0] == a.id
    # the head: its predecessor is current again
    assert await store.delete_memories(ORG, MemoryFilter(ids=(d.id,))) == 1
    assert (await links(store, c.id))[1:] == (None, None)
    # the tail: its successor supersedes nothing
    assert await store.delete_memories(ORG, MemoryFilter(ids=(a.id,))) == 1
    assert (await links(store, c.id))[0] is None
    # and the target can be superseded again after its successor was deleted
    await put(store, rec(supersedes=c.id))


async def test_delete_of_several_links_at_once(store: Store) -> None:
    chain: list[MemoryRecord] = []
    for i in range(5):
        r = rec(
            agent="victim" if i in (1, 2, 4) else "a", supersedes=chain[-1].id if chain else None
        )
        await put(store, r)
        chain.append(r)
    assert await store.delete_memories(ORG, MemoryFilter(agent_ids=("victim",))) == 3
    first, third = chain[0], chain[3]
    _, by, at = await links(store, first.id)
    assert by == third.id
    assert int(at.timestamp() * 1_000_000) == third.recorded_at
    assert await links(store, third.id) == (first.id, None, None)


async def test_delete_expired_any_org_bounded_oldest_first_links_mended(store: Store) -> None:
    now = now_us()
    (a,) = await put(store, rec(), now=now)
    (b,) = await put(store, rec(supersedes=a.id, expires_at=now + 100), now=now)
    (x,) = await put(store, rec(OTHER, expires_at=now + 50), now=now)
    (keep,) = await put(store, rec(expires_at=now + 10_000), now=now)
    # live_at hides the expired, get_memory still returns it
    assert await ids(store, MemoryFilter(live_at=now + 100)) == [a.id, keep.id]
    assert await store.get_memory(ORG, b.id) is not None
    assert await store.delete_expired(now + 100, limit=1) == 1  # the oldest expiry: x
    assert await store.get_memory(OTHER, x.id) is None
    assert await store.get_memory(ORG, b.id) is not None
    assert await store.delete_expired(now + 100, limit=10) == 1
    assert await store.get_memory(ORG, b.id) is None
    assert (await links(store, a.id))[1] is None  # mended: a is current again
    assert await store.delete_expired(now + 100, limit=10) == 0
    assert await ids(store, MemoryFilter()) == [a.id, keep.id]
    assert await store.count_keyword_matches(ORG, MemoryFilter(), ("content",), 100) == 2


async def test_delete_aged_first_matching_rule_decides(store: Store) -> None:
    now = now_us()
    day = 86_400_000_000
    old = now - 100 * day
    bot_decision = rec(agent="bot", memory_type="decision", time=old)
    decision = rec(memory_type="decision", time=old)
    session_old = rec(memory_type="session", time=now - 10 * day)
    session_new = rec(memory_type="session", time=now - 1 * day)
    plain_old = rec(time=old)
    plain_new = rec(time=now - 10 * day)
    other = rec(OTHER, time=old)
    for r in (bot_decision, decision, session_old, session_new, plain_old, plain_new):
        await put(store, r)
    await put(store, other)
    rules = [
        AgeRule(MemoryFilter(agent_ids=("bot",)), now - 30 * day),
        AgeRule(MemoryFilter(memory_types=("session",)), now - 7 * day),
        AgeRule(MemoryFilter(memory_types=("decision",)), None),  # forever
        AgeRule(MemoryFilter(), now - 90 * day),
    ]
    assert await store.count_aged(ORG, rules) == 3
    assert await store.count_memories(ORG, MemoryFilter()) == 6
    first = await store.delete_aged(ORG, rules, limit=2)
    assert first.deleted == 2
    assert first.resume is not None  # a full batch: there may be more
    second = await store.delete_aged(ORG, rules, limit=2, after=first.resume)
    assert second.deleted == 1
    assert second.resume is None  # examined everything
    again = await store.delete_aged(ORG, rules, limit=2)
    assert (again.deleted, again.resume) == (0, None)
    left = set(await ids(store, MemoryFilter()))
    assert left == {decision.id, session_new.id, plain_new.id}
    assert await ids(store, MemoryFilter(), OTHER) == [other.id]
    keep_all = [AgeRule(MemoryFilter(), None)]
    assert (await store.delete_aged(ORG, keep_all, limit=10)).deleted == 0
    assert await store.count_aged(ORG, keep_all) == 0


async def test_leases_are_exclusive_renewable_and_expire(store: Store) -> None:
    now = now_us()
    assert await store.acquire_lease("job", "one", now=now, duration=1000)
    assert not await store.acquire_lease("job", "two", now=now + 999, duration=1000)
    assert await store.acquire_lease("job", "one", now=now + 500, duration=1000)  # renewed
    assert not await store.acquire_lease("job", "two", now=now + 1499, duration=1000)
    assert await store.acquire_lease("other-job", "two", now=now, duration=1000)
    assert await store.acquire_lease("job", "two", now=now + 1500, duration=1000)  # expired
    assert not await store.acquire_lease("job", "one", now=now + 1600, duration=1000)
    await store.release_lease("job", "one")  # not its holder: no effect
    assert not await store.acquire_lease("job", "one", now=now + 1600, duration=1000)
    await store.release_lease("job", "two")
    assert await store.acquire_lease("job", "one", now=now + 1600, duration=1000)


async def test_retention_policy_storage_and_purge(store: Store) -> None:
    assert await store.get_retention_policy(ORG) is None
    policy = {"max_age": "30d", "rules": [{"memory_types": ["session"], "max_age": "7d"}]}
    await store.set_retention_policy(ORG, policy)
    await store.set_retention_policy(OTHER, {"max_age": "1d", "rules": []})
    assert await store.get_retention_policy(ORG) == policy
    await store.set_retention_policy(ORG, {"max_age": "60d", "rules": []})
    assert await store.get_retention_policy(ORG) == {"max_age": "60d", "rules": []}
    assert await store.list_retention_policies() == {
        ORG: {"max_age": "60d", "rules": []},
        OTHER: {"max_age": "1d", "rules": []},
    }
    await store.set_retention_policy(ORG, None)
    assert await store.get_retention_policy(ORG) is None
    await put(store, rec(OTHER))
    assert await store.purge_org(OTHER) == 1
    assert await store.list_retention_policies() == {}


async def test_memory_orgs(store: Store) -> None:
    assert await store.memory_orgs() == []
    await put(store, rec(OTHER))
    await put(store, rec(ORG))
    await put(store, rec(ORG))
    assert sorted(await store.memory_orgs()) == sorted([ORG, OTHER])
    await store.purge_org(OTHER)
    assert await store.memory_orgs() == [ORG]


async def test_import_links_in_both_directions_and_keeps_times(store: Store) -> None:
    base = now_us() - 10_000_000
    v1, v2, v3 = (memory_id() for _ in range(3))
    # the successor first, the target in a later call
    assert await store.import_memories(ORG, [rec(mid=v3, recorded=base + 2, supersedes=v2)]) == 1
    assert await store.import_memories(ORG, [rec(mid=v2, recorded=base + 1, supersedes=v1)]) == 1
    assert (
        await store.import_memories(ORG, [rec(mid=v1, recorded=base, expires_at=base + 10**9)]) == 1
    )
    s1, by1, at1 = await links(store, v1)
    assert (s1, by1) == (None, v2)
    assert int(at1.timestamp() * 1_000_000) == base + 1
    _, by2, at2 = await links(store, v2)
    assert by2 == v3
    assert int(at2.timestamp() * 1_000_000) == base + 2
    m1 = await store.get_memory(ORG, v1)
    assert m1 is not None
    assert int(m1.recorded_at.timestamp() * 1_000_000) == base
    assert m1.expires_at is not None
    assert await ids(store, MemoryFilter(current=True)) == [v3]
    # an existing id is skipped, links untouched
    assert await store.import_memories(ORG, [rec(mid=v2, recorded=base + 5)]) == 0
    assert (await links(store, v1))[1] == v2
    # imported links are per org
    assert await store.import_memories(OTHER, [rec(OTHER, mid=v1, recorded=base)]) == 1
    assert (await links(store, v1, OTHER))[1] is None


async def test_store_keyed_insert_supersedes_and_lists_namespaces(store: Store) -> None:
    """The Store side of keys and namespaces: a keyed record supersedes the current memory of
    its (namespace, key) inside insert_memories; list_namespaces is distinct and sorted."""
    first = rec()
    first.namespace, first.key = ("a", "b"), "k"
    await put(store, first)
    second = rec()
    second.namespace, second.key = ("a", "b"), "k"
    await put(store, second)
    got = await store.get_memory(ORG, first.id)
    assert got is not None
    assert got.superseded_by == second.id
    other = rec()
    other.namespace, other.key = ("a",), "k"
    await put(store, other)
    assert (await store.get_memory(ORG, other.id)).supersedes is None  # type: ignore[union-attr]
    elsewhere = rec(OTHER)
    elsewhere.namespace = ("z",)
    await put(store, elsewhere)
    assert await store.list_namespaces(ORG) == [("a",), ("a", "b")]
    assert await store.list_namespaces(ORG, ("a",)) == [("a",), ("a", "b")]
    assert await store.list_namespaces(ORG, ("a", "b")) == [("a", "b")]
    assert await store.list_namespaces(ORG, ("b",)) == []
    assert await store.list_namespaces(OTHER) == [("z",)]
    # a namespace whose memories have all expired is not listed (before any sweep)
    now = now_us()
    gone = rec(expires_at=now + 50_000)
    gone.namespace = ("a", "gone")
    await put(store, gone, now=now)
    assert await store.list_namespaces(ORG, ("a",)) == [("a",), ("a", "b"), ("a", "gone")]
    await asyncio.sleep(0.06)
    assert await store.list_namespaces(ORG, ("a",)) == [("a",), ("a", "b")]
    assert await store.list_namespaces(ORG, ("a", "gone")) == []


async def test_an_import_of_two_successors_of_one_memory_is_a_conflict(store: Store) -> None:
    """Two imported records that supersede the same memory (in one call) are refused as a
    conflict of the file (409), not a database failure, and nothing of the call is stored."""
    base = now_us()
    target, first, second = (memory_id() for _ in range(3))
    with pytest.raises(ConflictError, match="supersede the same memory"):
        await store.import_memories(
            ORG,
            [
                rec(mid=target, recorded=base),
                rec(mid=first, recorded=base + 1, supersedes=target),
                rec(mid=second, recorded=base + 2, supersedes=target),
            ],
        )
    assert await store.get_memory(ORG, target) is None
