"""Migrations from every earlier schema version, on every store: the store's schema-history
adapter (schema_history.py) builds a store at each version it has shipped, with rows in that
version's format; the current code opens it (upgrading it) and must read every row back with
every field, find it by keyword and by substring, filter it by tag, and take new writes,
keyed ones included. A store without an adapter fails here: see schema_history.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from schema_history import SchemaHistory, history_for, missing_message

from memtrace_core import AsyncMemtrace, Memory, aconnect
from memtrace_core.stores.base import MemoryFilter
from memtrace_server.auth import auth_store_of
from store_urls import scheme


def _history(store_template: str) -> SchemaHistory:
    """The adapter of the store's scheme; a store without one fails the test (not a skip)."""
    found = history_for(scheme(store_template))
    if found is None:
        pytest.fail(missing_message(scheme(store_template)), pytrace=False)
    assert isinstance(found, SchemaHistory)
    return found


def _longest_word(text: str) -> str:
    return max((w.strip(".,:✓") for w in text.split()), key=len)


async def _check_upgraded(mt: AsyncMemtrace, expected: list[Memory]) -> None:
    orgs = sorted({m.org_id for m in expected})
    for org_id in orgs:
        view = mt.with_org(org_id)
        mine = [m for m in expected if m.org_id == org_id]
        for m in mine:
            got = await view.get_memory(m.id)
            assert got.model_dump() == m.model_dump(), m.id
        everything = await view.list_memories(include_superseded=True, limit=1000, order="asc")
        assert [m.id for m in everything.memories] == [
            m.id for m in sorted(mine, key=lambda m: m.time)
        ]
        current = await view.list_memories(limit=1000)
        assert {m.id for m in current.memories} == {m.id for m in mine if m.superseded_by is None}
        for m in mine:
            word = _longest_word(m.content)
            found = await view.search_memories(query=word, include_superseded=True, limit=100)
            assert m.id in {r.id for r in found.results}, (m.id, word)
            needle = m.content[3:11].upper()
            sub = await view.search_memories(
                content_contains=needle, include_superseded=True, limit=100
            )
            assert m.id in {r.id for r in sub.results}, (m.id, needle)
            for tag in m.tags or ():
                tagged = await view.list_memories(tags=[tag], include_superseded=True)
                assert m.id in {r.id for r in tagged.memories}, (m.id, tag)
            if m.namespace is not None and m.key is not None and m.superseded_by is None:
                assert (await view.get_memory_by_key(m.namespace, m.key)).id == m.id
    # another org sees none of it
    assert (await mt.with_org("org_nobody").list_memories(include_superseded=True)).count == 0


async def _check_new_writes(mt: AsyncMemtrace, expected: list[Memory]) -> None:
    for org_id in sorted({m.org_id for m in expected}):
        view = mt.with_org(org_id)
        new = await view.remember("upgrader", "zqxjfresh memory after the upgrade")
        assert [m.id for m in (await view.search_memories(query="zqxjfresh")).results] == [new.id]
        sub = await view.search_memories(content_contains="FRESH MEMORY")
        assert [m.id for m in sub.results] == [new.id]
        deleted = await view.delete_memories(ids=[new.id])
        assert deleted == 1
        assert (await view.search_memories(query="zqxjfresh")).count == 0
    for m in expected:
        if m.namespace is None or m.key is None or m.superseded_by is not None:
            continue
        view = mt.with_org(m.org_id)
        later = await view.add_memory(
            agent_id=m.agent_id, content="a new version", namespace=m.namespace, key=m.key
        )
        assert later.supersedes == m.id
        assert later.key_created_at == m.key_created_at
        assert (await view.get_memory(m.id)).superseded_by == later.id
    view = mt.with_org(expected[0].org_id)
    head = next(m for m in expected if m.superseded_by is None)
    successor = await view.add_memory(
        agent_id="upgrader",
        content="supersedes an old row",
        supersedes=head.id,
        tags=["after"],
        ttl=3600,
        payload={"new": [1, None]},
        time=datetime.now(UTC) - timedelta(minutes=1),
    )
    assert (await view.get_memory(head.id)).superseded_by == successor.id
    assert (await view.get_memory(successor.id)).payload == {"new": [1, None]}


async def _check_feed(mt: AsyncMemtrace, expected: list[Memory]) -> None:
    """The live feed over upgraded rows (after :func:`_check_new_writes`): every old memory
    once, in the order it was written (``expected()``'s order), before the memories written
    since — and a memory written after the newest is deleted comes after it (a position is
    never handed out again)."""
    store = mt.store
    for org_id in sorted({m.org_id for m in expected}):
        page = await store.feed_memories(org_id, MemoryFilter(), after=None, limit=100, scan=1000)
        mine = [m.id for m in expected if m.org_id == org_id]
        assert [m.id for _, m in page.items][: len(mine)] == mine, org_id
    org_id = expected[0].org_id
    view = mt.with_org(org_id)
    newest_pos, newest = (
        await store.feed_memories(org_id, MemoryFilter(), after=None, limit=100, scan=1000)
    ).items[-1]
    await view.delete_memory(newest.id)
    fresh = await view.remember("upgrader", "written after the newest old memory was deleted")
    page = await store.feed_memories(org_id, MemoryFilter(), after=newest_pos, limit=10, scan=100)
    assert [m.id for _, m in page.items] == [fresh.id]
    await view.delete_memory(fresh.id)


async def test_every_earlier_schema_version_is_upgraded(
    store_template: str, new_store_url: Callable[[str], str]
) -> None:
    history = _history(store_template)
    versions = history.versions()
    assert all(isinstance(v, int) for v in versions)
    assert versions == sorted(set(versions))
    for version in versions:
        url = new_store_url(f"schema_v{version}")
        await history.build(url, version)
        expected = history.expected(version)
        assert expected.memories, f"version {version}: expected() names no memories"
        mt = await aconnect(url)
        assert isinstance(mt, AsyncMemtrace)
        try:
            await _check_upgraded(mt, expected.memories)
            auth = auth_store_of(mt)
            for org in expected.orgs:
                assert await auth.get_org(org.id) == org, (version, org.id)
            assert await auth.list_orgs() == expected.orgs
            await _check_new_writes(mt, expected.memories)
            await _check_feed(mt, expected.memories)
        finally:
            await mt.close()
        # reopening an upgraded store changes nothing
        again = await aconnect(url)
        assert isinstance(again, AsyncMemtrace)
        try:
            for m in expected.memories:
                assert (await again.with_org(m.org_id).get_memory(m.id)).content == m.content
        finally:
            await again.close()
