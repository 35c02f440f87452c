"""MemtraceMemory's own API, on both transports: CrewAI's scope / categories / importance /
source / private mapped onto memtrace, keyword recall, forget / update / reset / listing /
info, the async twins, and clear errors for bad input."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from crew_fakes import ForbiddenEmbedder, ForbiddenLLM
from crewai.memory.types import MemoryMatch, MemoryRecord

from memtrace_core import connect
from memtrace_crewai import MemtraceMemory


@pytest.fixture
def memory(handle_url: tuple[str, Any]) -> Iterator[MemtraceMemory]:
    url, options = handle_url
    mem = MemtraceMemory(url, llm=ForbiddenLLM(), embedder=ForbiddenEmbedder(), **options)
    yield mem
    mem.close()


def _contents(matches: list[MemoryMatch]) -> list[str]:
    return [m.record.content for m in matches]


def test_remember_maps_every_field_and_recall_ranks_by_keywords(memory: MemtraceMemory) -> None:
    record = memory.remember(
        "The customer prefers invoices by email",
        scope="/customers/acme",
        categories=["billing", "prefs"],
        metadata={"ticket": 42},
        importance=0.9,
        source="user-7",
        agent_role="Account Manager",
    )
    assert isinstance(record, MemoryRecord)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", record.id)
    assert record.scope == "/customers/acme"
    assert record.categories == ["billing", "prefs"]
    assert record.metadata == {"ticket": 42}  # the reserved keys stay inside
    assert record.importance == 0.9
    assert record.source == "user-7"
    assert not record.private
    assert record.created_at.tzinfo is None
    memory.remember("Lunch is at noon", scope="/office")
    memory.remember("Invoices are sent on the first of the month", scope="/customers/acme")

    matches = memory.recall("customer invoices email")
    assert _contents(matches)[0] == "The customer prefers invoices by email"
    assert matches[0].score > matches[-1].score
    assert "keywords" in matches[0].match_reasons
    assert "Lunch is at noon" not in _contents(matches)
    assert "- (score=" in matches[0].format()
    assert "categories: billing, prefs" in matches[0].format()
    # the memtrace side: namespace, tags, importance, agent, session
    mt = memory.handle.sync
    (stored,) = mt.search_memories(key=record.id, namespace_prefix=["crewai"]).results
    assert stored.key == record.id
    assert stored.dedup_key is not None
    assert stored.dedup_key.startswith("crewai:")
    assert stored.namespace == ["crewai", "customers", "acme"]
    assert stored.tags == ["billing", "prefs"]
    assert stored.importance == 0.9
    assert stored.agent_id == "account-manager"
    assert stored.session_id == memory.session_id
    assert stored.metadata == {"ticket": 42, "crewai_source": "user-7"}


def test_scope_prefix_categories_any_and_limit(memory: MemtraceMemory) -> None:
    memory.remember("alpha report on rockets", scope="/a/x", categories=["red"])
    memory.remember("alpha report on boats", scope="/a/y", categories=["blue"])
    memory.remember("alpha report on trains", scope="/b", categories=["green"])
    assert set(_contents(memory.recall("alpha report", scope="/a"))) == {
        "alpha report on rockets",
        "alpha report on boats",
    }
    assert set(_contents(memory.recall("alpha report", categories=["red", "green"]))) == {
        "alpha report on rockets",
        "alpha report on trains",
    }
    assert len(memory.recall("alpha report", limit=2)) == 2
    assert memory.recall("alpha report", limit=0) == []
    # no keyword query: the newest first
    assert _contents(memory.recall("", scope="/a")) == [
        "alpha report on boats",
        "alpha report on rockets",
    ]


def test_private_memories_are_visible_only_to_their_source(memory: MemtraceMemory) -> None:
    memory.remember("the shared wiki password rotates monthly")
    memory.remember("user seven's wiki password hint is a cat", source="u7", private=True)
    memory.remember("user eight's wiki password hint is a dog", source="u8", private=True)
    memory.remember("anonymous private wiki password note", private=True)

    assert _contents(memory.recall("wiki password")) == ["the shared wiki password rotates monthly"]
    assert set(_contents(memory.recall("wiki password", source="u7"))) == {
        "the shared wiki password rotates monthly",
        "user seven's wiki password hint is a cat",
    }
    assert len(memory.recall("wiki password", include_private=True)) == 4
    hint = memory.recall("cat", source="u7")[0].record
    assert hint.private
    assert hint.source == "u7"


def test_a_repeat_returns_the_stored_record_and_writes_nothing(memory: MemtraceMemory) -> None:
    first = memory.remember("The deploy window is Friday")
    again = memory.remember("The deploy window is Friday")
    assert first is not None
    assert again is not None
    assert again.id == first.id
    assert memory.info().record_count == 1


def test_remember_many_saves_in_the_background_and_recall_waits(memory: MemtraceMemory) -> None:
    facts = [f"fact number {i} about the zebra migration" for i in range(250)]
    assert memory.remember_many(facts, scope="/zoo", categories=["zebra"]) == []
    matches = memory.recall("zebra migration fact number 117", limit=3)
    assert _contents(matches)[0] == "fact number 117 about the zebra migration"
    assert memory.info("/zoo").record_count == 250
    assert memory.list_categories() == {"zebra": 250}


def test_a_long_query_is_cut_not_refused(memory: MemtraceMemory) -> None:
    memory.remember("The quarterly churn figure is four percent")
    query = "quarterly churn figure " + " ".join(["padding"] * 600)
    assert len(query) > 2000
    assert _contents(memory.recall(query)) == ["The quarterly churn figure is four percent"]


def test_forget_by_every_criterion(memory: MemtraceMemory) -> None:
    a = memory.remember("one", scope="/p", categories=["x"], metadata={"k": 1})
    b = memory.remember("two", scope="/p", categories=["y"], metadata={"k": 2})
    memory.remember("three", scope="/q", categories=["y"])
    assert a is not None
    assert b is not None
    assert memory.forget(record_ids=[a.id, "not-a-stored-id"]) == 1
    assert memory.forget(scope="/p", metadata_filter={"k": 2}) == 1
    assert memory.forget(categories=["nothing"]) == 0
    assert memory.forget(older_than=datetime.utcnow() - timedelta(days=1)) == 0
    assert memory.forget(older_than=datetime.utcnow() + timedelta(seconds=1)) == 1
    assert memory.list_records() == []


def test_update_writes_a_new_version_and_keeps_history(memory: MemtraceMemory) -> None:
    old = memory.remember("The office is in Berlin", scope="/facts", categories=["office"])
    assert old is not None
    new = memory.update(old.id, content="The office is in Munich", importance=0.8)
    assert new.content == "The office is in Munich"
    assert new.importance == 0.8
    assert new.scope == "/facts"
    assert new.categories == ["office"]
    assert new.id == old.id  # the record's id is its key: every version keeps it
    assert _contents(memory.recall("office")) == ["The office is in Munich"]
    versions = memory.handle.sync.search_memories(
        key=old.id, namespace_prefix=["crewai"], include_superseded=True
    ).results
    assert sorted(m.content for m in versions) == [
        "The office is in Berlin",
        "The office is in Munich",
    ]
    assert memory.update(old.id, scope="/moved").scope == "/moved"
    assert [r.scope for r in memory.list_records()] == ["/moved"]
    # forgetting the record removes every version: none comes back
    assert memory.forget(record_ids=[old.id]) == 3
    assert memory.list_records() == []
    assert (
        memory.handle.sync.search_memories(
            key=old.id, namespace_prefix=["crewai"], include_superseded=True
        ).results
        == []
    )
    with pytest.raises(ValueError, match="Record not found"):
        memory.update("mem_01JZZZZZZZZZZZZZZZZZZZZZZZ", content="x")


def test_reset_scopes_and_never_touches_memories_outside_the_root(
    memory: MemtraceMemory,
) -> None:
    mt = memory.handle.sync
    outside = mt.remember("someone-else", "not a crewai memory")
    memory.remember("keep me", scope="/keep")
    memory.remember("drop me", scope="/drop/deep")
    memory.reset("/drop")
    assert [r.content for r in memory.list_records()] == ["keep me"]
    memory.reset()
    assert memory.list_records() == []
    assert mt.get_memory(outside.id).content == "not a crewai memory"


def test_listing_scopes_info_and_paging(memory: MemtraceMemory) -> None:
    for i in range(5):
        memory.remember(f"note {i}", scope=f"/team/{'ab'[i % 2]}", categories=[f"c{i % 2}"])
    memory.remember("top level note")
    assert memory.list_scopes() == ["/team"]
    assert memory.list_scopes("/team") == ["/team/a", "/team/b"]
    info = memory.info("/team")
    assert info.path == "/team"
    assert info.record_count == 5
    assert info.categories == ["c0", "c1"]
    assert info.child_scopes == ["/team/a", "/team/b"]
    assert info.oldest_record is not None
    assert info.newest_record is not None
    assert info.oldest_record <= info.newest_record
    assert memory.info("/nothing").record_count == 0
    page1 = memory.list_records(limit=4)
    page2 = memory.list_records(limit=4, offset=4)
    assert len(page1) == 4
    assert len(page2) == 2
    assert next(r.content for r in page1) == "top level note"
    assert {r.id for r in page1}.isdisjoint({r.id for r in page2})
    assert "/team" in memory.tree()


def test_root_scope_nests_every_call(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    crew = MemtraceMemory(url, root_scope="/crew/research", **options)
    other = MemtraceMemory(url, root_scope="/crew/sales", **options)
    crew.remember("the research crew met on Monday", scope="/notes")
    other.remember("the sales crew met on Tuesday")
    assert [r.scope for r in crew.list_records()] == ["/crew/research/notes"]
    assert _contents(crew.recall("crew met")) == ["the research crew met on Monday"]
    crew.reset()
    assert other.list_records()[0].content == "the sales crew met on Tuesday"


def test_the_async_twins(memory: MemtraceMemory) -> None:
    async def run() -> None:
        rec = await memory.aremember("async apples are red", categories=["fruit"])
        assert rec is not None
        many = await memory.aremember_many(["async pears are green", "async plums are purple"])
        assert [r.content for r in many] == ["async pears are green", "async plums are purple"]
        assert _contents(await memory.arecall("async apples"))[0] == "async apples are red"
        assert len(await memory.alist_records()) == 3
        assert await memory.alist_scopes() == []
        assert (await memory.ainfo()).record_count == 3
        assert await memory.alist_categories() == {"fruit": 1}
        updated = await memory.aupdate(rec.id, content="async apples are green")
        assert updated.content == "async apples are green"
        assert (
            await memory.aforget(record_ids=[updated.id]) == 2
        )  # the record and its earlier version
        assert "async pears" in await memory.asession_context()
        await memory.areset()
        assert await memory.alist_records() == []
        assert await memory.aextract_memories("One. Two.") == ["One.", "Two."]

    asyncio.run(run())


def test_read_only_memory_stores_nothing(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    mem = MemtraceMemory(url, read_only=True, **options)
    assert mem.remember("x") is None
    assert mem.remember_many(["x", "y"]) == []
    assert mem.list_records() == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"content": ""}, ValueError, "non-empty"),
        ({"content": "   "}, ValueError, "non-empty"),
        ({"content": "x" * 70_000}, ValueError, "content"),
        ({"content": "ok", "scope": 42}, TypeError, "scope"),
        ({"content": "ok", "categories": ["no spaces allowed"]}, ValueError, "tag"),
        ({"content": "ok", "importance": 1.5}, ValueError, "importance"),
        ({"content": "ok", "metadata": {"crewai_private": True}}, ValueError, "reserved"),
        ({"content": "ok", "scope": "/" + "/".join(["deep"] * 20)}, ValueError, "namespace"),
    ],
)
def test_bad_input_is_a_clear_error_and_stores_nothing(
    memory: MemtraceMemory, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        memory.remember(**kwargs)
    others = {k: v for k, v in kwargs.items() if k != "content"}
    with pytest.raises(error, match=match):
        memory.remember_many([kwargs["content"]], **others)
    assert memory.list_records() == []


def test_construction_errors() -> None:
    with pytest.raises(TypeError, match="needs a memtrace"):
        MemtraceMemory()
    with pytest.raises(TypeError, match="not another storage"):
        MemtraceMemory("sqlite:///unused.db", storage="lancedb")


def test_memories_of_one_url_are_shared_by_two_memories(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    a = MemtraceMemory(url, **options)
    b = MemtraceMemory(url, **options)
    a.remember("shared knowledge about penguins")
    assert _contents(b.recall("penguins")) == ["shared knowledge about penguins"]
    assert a.session_id != b.session_id
    mt = connect(url, **options)
    try:
        assert mt.get_session_context(a.session_id).memory_count == 1
    finally:
        mt.close()


def test_dedup_is_per_scope_source_privacy_and_whole_content(memory: MemtraceMemory) -> None:
    a = memory.remember("The quarterly target is ten", scope="/a")
    b = memory.remember("The quarterly target is ten", scope="/b")
    assert a is not None
    assert b is not None
    assert a.id != b.id
    assert _contents(memory.recall("quarterly target", scope="/b")) == [
        "The quarterly target is ten"
    ]
    alice = memory.remember("My salary is high", source="alice", private=True)
    bob = memory.remember("My salary is high", source="bob", private=True)
    assert alice is not None
    assert bob is not None
    assert (alice.id != bob.id, bob.source) == (True, "bob")
    head = "A long shared heading that goes on and on. " * 6  # > 200 characters
    memory.remember_many([head + "Asia grew.", head + "Europe shrank."])
    assert {r.content for r in memory.list_records()} >= {
        head + "Asia grew.",
        head + "Europe shrank.",
    }
    # a real repeat is still one memory
    again = memory.remember("The quarterly target is ten", scope="/a")
    assert again is not None
    assert again.id == a.id
    assert memory.info("/a").record_count == 1


def test_forget_after_a_move_or_a_category_change_brings_nothing_back(
    memory: MemtraceMemory,
) -> None:
    rec = memory.remember("Project codename is Falcon", scope="/p", categories=["old"])
    assert rec is not None
    memory.update(rec.id, scope="/q", categories=["new"])
    assert memory.forget(scope="/q") == 2
    assert memory.list_records() == []
    other = memory.remember("Key A", categories=["old"])
    assert other is not None
    memory.update(other.id, categories=["new"])
    assert memory.forget(categories=["new"]) == 2
    assert memory.list_records() == []


def test_updates_keep_types_win_races_and_are_never_duplicates(memory: MemtraceMemory) -> None:
    first = memory.remember("alpha")
    second = memory.remember("beta")
    assert first is not None
    assert second is not None
    # an update may say what another record says
    assert memory.update(second.id, content="alpha").content == "alpha"
    # a decision stays a decision (written by the memtrace tools at the memory's root)
    from memtrace_crewai import memtrace_tools

    decide = {t.name: t for t in memtrace_tools(memory)}["memtrace_decide"]
    decide.run(decision="Use Postgres", reasoning="it scales")
    (decision,) = [r for r in memory.list_records() if r.content == "Use Postgres"]
    memory.update(decision.id, importance=0.9)
    stored = memory.handle.sync.search_memories(
        query="Postgres", namespace_prefix=["crewai"]
    ).results
    assert [(m.memory_type, m.importance, (m.metadata or {}).get("reasoning")) for m in stored] == [
        ("decision", 0.9, "it scales")
    ]
    # concurrent updates of one record: every one lands, the last one wins
    errors: list[BaseException] = []

    def bump(i: int) -> None:
        try:
            memory.update(first.id, content=f"alpha {i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    current = [r for r in memory.list_records() if r.id == first.id]
    assert len(current) == 1
    assert current[0].content.startswith("alpha ")


def test_metadata_filters_compare_like_crewai_and_wildcards_are_no_scopes(
    memory: MemtraceMemory,
) -> None:
    memory.remember("a", metadata={"owner": {"team": "x", "lead": "y"}, "status": "open"})
    memory.remember("b", metadata={"n": 1})
    with pytest.raises(ValueError, match="object value"):
        memory.forget(metadata_filter={"owner": {"team": "x"}})
    with pytest.raises(ValueError, match="object value"):
        memory.forget(metadata_filter={"status": {"$ne": "closed"}})
    with pytest.raises(ValueError, match="object value"):
        memory.forget(metadata_filter={"owners": [{"team": "x"}]})
    assert memory.forget(metadata_filter={"status": "open"}) == 1
    with pytest.raises(ValueError, match="wildcard"):
        memory.remember("c", scope="/team/*")
    with pytest.raises(ValueError, match="wildcard"):
        memory.list_scopes("/team/*")


def test_an_async_only_handle_is_refused_at_once(db_url: str) -> None:
    from memtrace_core import aconnect

    async def build() -> None:
        handle = await aconnect(db_url)
        try:
            with pytest.raises(TypeError, match="synchronously"):
                MemtraceMemory(handle)
        finally:
            await handle.close()

    asyncio.run(build())


def test_contents_must_be_strings(memory: MemtraceMemory) -> None:
    with pytest.raises(TypeError, match="string"):
        memory.remember_many([None])  # type: ignore[list-item]
    assert memory.list_records() == []


def test_a_failed_background_save_is_logged_once_and_loses_nothing_else(
    db_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memtrace_core.errors import StoreError

    memory = MemtraceMemory(db_url)
    api = memory.handle.sync

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("disk full")

    monkeypatch.setattr(api, "add_memories", failing)
    memory.remember_many(["lost fact one", "lost fact two"])
    memory.drain_writes()
    failures = [r for r in caplog.records if "saving 2 memories failed" in r.getMessage()]
    assert len(failures) == 1
    assert "disk full" in failures[0].getMessage()
    monkeypatch.undo()
    memory.remember("kept fact")
    assert [r.content for r in memory.list_records()] == ["kept fact"]


def test_updates_keep_dedup_parent_and_payload_and_tree_waits(memory: MemtraceMemory) -> None:
    rec = memory.remember("The build takes ten minutes")
    assert rec is not None
    memory.update(rec.id, importance=0.9)
    again = memory.remember("The build takes ten minutes")
    assert again is not None
    assert again.id == rec.id  # still caught as a repeat after the update
    assert memory.info().record_count == 1
    mt = memory.handle.sync
    parent = mt.remember("someone", "a parent memory")
    (stored,) = mt.search_memories(key=rec.id, namespace_prefix=["crewai"]).results
    # a memory with a parent and a payload (written by other means), updated through CrewAI
    linked = mt.add_memory(
        agent_id=stored.agent_id,
        content="linked fact",
        namespace=["crewai"],
        key="linked",
        parent_id=parent.id,
        payload={"graph": [1, 2, 3]},
    )
    memory.update("linked", content="linked fact, corrected")
    (new,) = mt.search_memories(key="linked", namespace_prefix=["crewai"]).results
    assert (new.content, new.parent_id, new.payload) == (
        "linked fact, corrected",
        parent.id,
        {"graph": [1, 2, 3]},
    )
    assert new.id != linked.id
    memory.remember_many([f"tree fact {i}" for i in range(50)], scope="/t")
    assert "/t (50 records)" in memory.tree()
    # mem_-shaped CrewAI ids (records copied from another store) are keys
    copied = MemoryRecord(id="mem_01JZZZZZZZZZZZZZZZZZZZZZZZ", content="copied record")
    memory._storage.save([copied])
    assert [r.id for r in memory.list_records(scope="/") if r.content == "copied record"] == [
        copied.id
    ]
    assert memory.forget(record_ids=[copied.id]) == 1
