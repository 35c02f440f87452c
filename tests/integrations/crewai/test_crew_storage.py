"""MemtraceStorage, CrewAI's StorageBackend protocol over memtrace, on both transports: every
method (sync and async) directly, then under CrewAI's stock ``Memory`` with a deterministic
local embedder, and ``Memory(storage="memtrace")`` through ``register_memtrace``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from crew_fakes import HashEmbedder, ScriptedLLM
from crewai.memory import Memory
from crewai.memory.storage import factory as storage_factory
from crewai.memory.storage.backend import StorageBackend
from crewai.memory.types import MemoryRecord

from memtrace_crewai import MemtraceStorage, register_memtrace


@pytest.fixture
def storage(handle_url: tuple[str, Any]) -> Iterator[MemtraceStorage]:
    url, options = handle_url
    st = MemtraceStorage(url, **options)
    yield st
    st.close()


def _rec(content: str, **fields: Any) -> MemoryRecord:
    return MemoryRecord(content=content, embedding=[0.1, 0.2], **fields)


def test_it_is_a_storage_backend(storage: MemtraceStorage) -> None:
    assert isinstance(storage, StorageBackend)


def test_save_and_get_keep_every_field_and_the_id(storage: MemtraceStorage) -> None:
    when = datetime.utcnow().replace(microsecond=0) - timedelta(days=2)
    record = _rec(
        "the api rate limit is 100 per minute",
        scope="/eng/api",
        categories=["limits", "api"],
        metadata={"owner": "platform", "n": 3},
        importance=0.7,
        created_at=when,
        source="svc-1",
        private=True,
    )
    storage.save([record])
    got = storage.get_record(record.id)
    assert got is not None
    assert got.id == record.id
    assert got.content == record.content
    assert got.scope == "/eng/api"
    assert got.categories == ["limits", "api"]
    assert got.metadata == {"owner": "platform", "n": 3}
    assert got.importance == 0.7
    assert got.created_at == when
    assert got.source == "svc-1"
    assert got.private is True
    assert got.embedding is None  # memtrace stores no vectors
    assert storage.get_record("no-such-id") is None
    assert storage.get_record("") is None


def test_search_filters_and_ranks_by_recency_and_importance(storage: MemtraceStorage) -> None:
    now = datetime.utcnow()
    storage.save(
        [
            _rec("old", scope="/a", categories=["x"], created_at=now - timedelta(days=90)),
            _rec("new", scope="/a", categories=["y"], created_at=now),
            _rec("important", scope="/a/b", importance=1.0, created_at=now - timedelta(days=1)),
            _rec("elsewhere", scope="/c", metadata={"team": "red"}),
        ]
    )
    found = storage.search([0.0], scope_prefix="/a")
    assert [r.content for r, _ in found] == ["important", "new", "old"]
    assert all(0.0 <= s <= 0.5 for _, s in found)  # never mistaken for a similarity
    assert [r.content for r, _ in storage.search([], categories=["x", "y"])] == ["new", "old"]
    assert [r.content for r, _ in storage.search([], metadata_filter={"team": "red"})] == [
        "elsewhere"
    ]
    assert len(storage.search([], limit=2)) == 2
    assert storage.search([], limit=0) == []
    assert [r.content for r, _ in storage.search([], min_score=0.45)] == ["important"]


def test_delete_by_every_criterion(storage: MemtraceStorage) -> None:
    now = datetime.utcnow()
    a = _rec("a", scope="/p", categories=["x"], created_at=now - timedelta(days=10))
    b = _rec("b", scope="/p", categories=["y"], metadata={"k": 1})
    c = _rec("c", scope="/q", categories=["x"])
    d = _rec("d", scope="/q")
    storage.save([a, b, c, d])
    assert storage.delete(record_ids=[a.id, "missing"]) == 1
    assert storage.delete(scope_prefix="/p", metadata_filter={"k": 2}) == 0
    assert storage.delete(scope_prefix="/p", metadata_filter={"k": 1}) == 1
    assert storage.delete(categories=["x"], older_than=now - timedelta(days=1)) == 0
    assert storage.delete(categories=["x"]) == 1
    assert storage.count() == 1
    assert storage.delete(scope_prefix="/q") == 1
    assert storage.count() == 0


def test_update_keeps_the_id_and_the_history(storage: MemtraceStorage) -> None:
    record = _rec("version one", scope="/docs", categories=["v"])
    storage.save([record])
    changed = record.model_copy(update={"content": "version two", "scope": "/docs/moved"})
    storage.update(changed)
    got = storage.get_record(record.id)
    assert got is not None
    assert got.content == "version two"
    assert got.scope == "/docs/moved"
    assert storage.count() == 1
    versions = storage.handle.sync.search_memories(
        key=record.id, namespace_prefix=["crewai"], include_superseded=True
    ).results
    assert sorted(m.content for m in versions) == ["version one", "version two"]
    # updating an unknown record stores it
    fresh = _rec("brand new")
    storage.update(fresh)
    assert storage.get_record(fresh.id) is not None


def test_listing_scopes_categories_counts_and_reset(storage: MemtraceStorage) -> None:
    outside = storage.handle.sync.remember("other-agent", "a memory outside CrewAI's root")
    storage.save(
        [
            _rec(f"r{i}", scope=f"/org/{'ab'[i % 2]}/deep", categories=[f"c{i % 3}"])
            for i in range(7)
        ]
    )
    assert storage.list_scopes("/") == ["/org"]
    assert storage.list_scopes("/org") == ["/org/a", "/org/b"]
    assert storage.list_scopes("/org/a/deep") == []
    assert storage.list_categories() == {"c0": 3, "c1": 2, "c2": 2}
    assert storage.list_categories("/org/a") == {"c0": 2, "c1": 1, "c2": 1}
    assert storage.count() == 7
    assert storage.count("/org/b") == 3
    info = storage.get_scope_info("/org")
    assert info.record_count == 7
    assert info.child_scopes == ["/org/a", "/org/b"]
    assert info.categories == ["c0", "c1", "c2"]
    listed = storage.list_records(limit=5)
    assert len(listed) == 5
    assert len(storage.list_records(limit=5, offset=5)) == 2
    assert listed == sorted(listed, key=lambda r: r.created_at, reverse=True)
    storage.reset("/org/a")
    assert storage.count() == 3
    storage.reset()
    assert storage.count() == 0
    assert storage.handle.sync.get_memory(outside.id).content.startswith("a memory outside")


def test_the_async_methods(storage: MemtraceStorage) -> None:
    async def run() -> None:
        records = [_rec("async one", categories=["z"]), _rec("async two")]
        await storage.asave(records)
        found = await storage.asearch([0.0], categories=["z"])
        assert [r.content for r, _ in found] == ["async one"]
        assert await storage.adelete(record_ids=[r.id for r in records]) == 2

    asyncio.run(run())
    assert storage.count() == 0


def test_stock_memory_saves_recalls_forgets_and_resets(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    embedder = HashEmbedder()
    llm = ScriptedLLM([])  # fails the test if stock Memory asks it anything
    memory = Memory(storage=MemtraceStorage(url, **options), embedder=embedder, llm=llm)
    # scope, categories and importance given: stock Memory's fast path, no LLM
    saved = memory.remember(
        "The staging database is rebuilt every night",
        scope="/ops",
        categories=["infra"],
        importance=0.6,
    )
    assert saved is not None
    memory.remember(
        "Coffee is in the kitchen", scope="/office", categories=["misc"], importance=0.2
    )
    assert embedder.calls >= 2  # stock Memory embeds every save: memtrace drops the vectors
    found = memory.recall("staging database", scope="/ops", depth="shallow")
    assert [m.record.content for m in found] == ["The staging database is rebuilt every night"]
    assert memory.info("/").record_count == 2
    assert memory.list_scopes("/") == ["/office", "/ops"]
    assert memory.list_categories() == {"infra": 1, "misc": 1}
    assert memory.forget(categories=["misc"]) == 1
    memory.reset()
    assert memory.list_records() == []
    assert llm.prompts == []


def test_register_memtrace_makes_storage_memtrace_work(
    handle_url: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, options = handle_url
    before = storage_factory._factory
    sentinel = object()
    storage_factory.set_memory_storage_factory(lambda spec: sentinel if spec == "other" else None)
    try:
        register_memtrace(url, **options)
        register_memtrace(url, **options)  # registering again keeps the chain
        memory = Memory(storage="memtrace", embedder=HashEmbedder(), llm=ScriptedLLM([]))
        assert isinstance(memory._storage, MemtraceStorage)
        assert storage_factory.resolve_memory_storage("other") is sentinel
        assert storage_factory.resolve_memory_storage("lancedb") is None
        memory.remember("registered", scope="/r", categories=["c"], importance=0.5)
        assert memory.info("/r").record_count == 1
        monkeypatch.delenv("MEMTRACE_URL", raising=False)
        with pytest.raises(ValueError, match="MEMTRACE_URL"):
            register_memtrace()
        monkeypatch.setenv("MEMTRACE_URL", url)
        if options:
            monkeypatch.setenv("MEMTRACE_API_KEY", options["api_key"])
        register_memtrace(name="from-env")
        env_memory = Memory(storage="from-env", embedder=HashEmbedder(), llm=ScriptedLLM([]))
        assert env_memory.info("/r").record_count == 1
        # every name registered stays registered
        assert isinstance(storage_factory.resolve_memory_storage("memtrace"), MemtraceStorage)
        assert isinstance(storage_factory.resolve_memory_storage("from-env"), MemtraceStorage)
        assert storage_factory.resolve_memory_storage("other") is sentinel
    finally:
        storage_factory.set_memory_storage_factory(before)
