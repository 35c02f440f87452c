"""MemtraceStore beyond InMemoryStore parity (test_lc_store_parity.py): what memtrace adds —
stored items are ordinary memories (recall, search, session context, export), history and
as-of, durable across handles, the content rule, TTL, bad input — on both transports."""

from __future__ import annotations

import asyncio
import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, SearchOp

from memtrace_core import connect
from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_langchain import MemtraceStore

NS = ("users", "u1", "prefs")


def test_stored_items_are_ordinary_memories(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle, agent_id="planner", session_id="s-1")
    store.put(NS, "drink", {"content": "Prefers green tea in the morning", "strength": 2})
    store.put(NS, "profile", {"name": "Ada", "langs": ["en", "fr"]})
    recalled = handle.recall("planner", limit=10)
    by_key = {m.key: m for m in recalled.memories}
    drink, profile = by_key["drink"], by_key["profile"]
    assert drink.content == "Prefers green tea in the morning"
    assert drink.metadata == {"content": "Prefers green tea in the morning", "strength": 2}
    assert drink.namespace == list(NS)
    assert (drink.memory_type, drink.event_type, drink.session_id) == (
        "entity",
        "store_item",
        "s-1",
    )
    # a value without a text field is its compact JSON
    assert json.loads(profile.content) == {"name": "Ada", "langs": ["en", "fr"]}
    found = handle.search_memories(query="green tea").results
    assert [m.key for m in found] == ["drink"]
    context = handle.get_session_context("s-1").context
    assert "Prefers green tea in the morning" in context
    out = io.StringIO()
    handle.export_jsonl(out)
    assert "Prefers green tea" in out.getvalue()


def test_an_update_keeps_history_and_created_at(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle)
    store.put(NS, "drink", {"content": "tea"})
    first = store.get(NS, "drink")
    assert first is not None
    store.put(NS, "drink", {"content": "coffee"})
    second = store.get(NS, "drink")
    assert second is not None
    assert second.value == {"content": "coffee"}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    versions = handle.search_memories(
        namespace=list(NS), key="drink", include_superseded=True, order="asc"
    ).results
    assert [m.content for m in versions] == ["tea", "coffee"]
    assert versions[0].superseded_by == versions[1].id
    # what the store held before the update
    then = handle.get_memory_by_key(list(NS), "drink", as_of=versions[0].recorded_at)
    assert then.content == "tea"
    # a delete removes every version (it must not bring the old one back)
    store.delete(NS, "drink")
    assert store.get(NS, "drink") is None
    assert handle.search_memories(namespace=list(NS), include_superseded=True).count == 0


def test_items_survive_the_handle(handle_url: tuple[str, Any]) -> None:
    url, options = handle_url
    with MemtraceStore(url, **options) as store:
        store.put(NS, "k", {"content": "kept across processes", "n": 1})
    reopened = MemtraceStore(url, **options)
    item = reopened.get(NS, "k")
    reopened.close()
    assert item is not None
    assert item.value == {"content": "kept across processes", "n": 1}


@pytest.mark.parametrize(
    ("value", "index", "content"),
    [
        ({"content": "the text", "text": "other"}, None, "the text"),
        ({"text": "from text"}, None, "from text"),
        ({"content": "   ", "text": "blank content is skipped"}, None, "blank content is skipped"),
        ({"content": 42}, None, '{"content":42}'),
        ({"content": "nul\x00inside"}, None, '{"content":"nul\\u0000inside"}'),
        ({"title": "T", "body": {"x": 1}}, ["title", "body"], 'T\n{"x":1}'),
        ({"a": {"b": "deep"}}, ["a.b", "missing"], "deep"),
        ({"é": "ü"}, None, '{"é":"ü"}'),
    ],
)
def test_the_memory_text_of_a_value(
    handle: MemoryAPI, value: dict[str, Any], index: list[str] | None, content: str
) -> None:
    store = MemtraceStore(handle)
    store.put(NS, "k", value, index=index)
    assert handle.get_memory_by_key(list(NS), "k").content == content
    item = store.get(NS, "k")
    assert item is not None
    assert item.value == value


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"nested": {"list": [1, 2.5, None, True, "s", {"k": []}]}},
        {"big": 2**70, "neg": -0.0, "unicode": "日本語 🎉", "quote": '"\\'},
        {"content": "x", "n": None},
    ],
)
def test_values_round_trip_exactly(handle: MemoryAPI, value: dict[str, Any]) -> None:
    store = MemtraceStore(handle)
    store.put(NS, "k", value)
    item = store.get(NS, "k")
    assert item is not None
    assert item.value == value
    assert json.dumps(item.value, sort_keys=True) == json.dumps(value, sort_keys=True)
    assert [i.value for i in store.search(NS)] == [value]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.put(("a", 1), "k", {"x": 1}), "must be strings"),  # type: ignore[arg-type]
        (lambda s: s.put(("",), "k", {"x": 1}), "empty"),
        (lambda s: s.put((), "k", {"x": 1}), "empty"),
        (lambda s: s.put(("a",), "", {"x": 1}), "key"),
        (lambda s: s.put(("a",), "k", {"x": "y" * 20_000}), "metadata"),
        (lambda s: s.put(("a",), "k", _deep(40)), "deep"),
        (lambda s: s.put(("a" * 300,), "k", {"x": 1}), "namespace"),
        (lambda s: s.search(("a",), filter={"x": {"$in": [1]}}), "unsupported operator"),
        (lambda s: s.search(("a",), filter={"x": {"$gt": "abc"}}), "number"),
        (lambda s: s.batch([PutOp(("a",), "k", ["not", "a", "dict"])]), "JSON object"),  # type: ignore[arg-type]
        (lambda s: s.batch(["not an op"]), "Unknown operation"),  # type: ignore[list-item]
    ],
)
def test_bad_input_is_a_clear_value_error(handle: MemoryAPI, call: Any, message: str) -> None:
    store = MemtraceStore(handle)
    with pytest.raises(ValueError, match=message):
        call(store)
    assert handle.list_memories().count == 0


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"d": value}
    return value


def test_a_batch_reads_before_it_writes(handle: MemoryAPI) -> None:
    """LangGraph's stores run a batch's reads against the state before the batch and apply its
    puts after them, the last put of a key winning; so does this store."""
    store = MemtraceStore(handle)
    store.put(NS, "k", {"v": 0})
    results = store.batch(
        [
            PutOp(NS, "k", {"v": 1}),
            GetOp(NS, "k"),
            PutOp(NS, "k", {"v": 2}),
            PutOp(NS, "gone", {"v": 9}),
            PutOp(NS, "gone", None),
            SearchOp(NS, filter={"v": 0}),
            ListNamespacesOp(),
        ]
    )
    got = results[1]
    assert got is not None
    assert got.value == {"v": 0}
    assert [i.value for i in results[5]] == [{"v": 0}]  # type: ignore[union-attr]
    assert results[6] == [NS]
    assert [results[i] for i in (0, 2, 3, 4)] == [None] * 4
    after = store.get(NS, "k")
    assert after is not None
    assert after.value == {"v": 2}
    assert store.get(NS, "gone") is None


def test_query_search_is_ranked_and_scored(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle)
    store.put(("docs",), "a", {"content": "the deploy failed on staging"})
    store.put(("docs",), "b", {"content": "deploy deploy rollback of the deploy"})
    store.put(("docs",), "c", {"content": "lunch menu"})
    store.put(("other",), "d", {"content": "deploy elsewhere"})
    items = store.search(("docs",), query="deploy")
    engine = handle.search_memories(query="deploy", namespace_prefix=["docs"]).results
    assert [i.key for i in items] == [m.key for m in engine]
    assert {i.key for i in items} == {"a", "b"}
    assert all(isinstance(i.score, float) and i.score > 0 for i in items)
    # without a query: newest first, no score
    plain = store.search(("docs",))
    assert [i.key for i in plain] == ["c", "b", "a"]
    assert all(i.score is None for i in plain)
    # a blank query is no query
    assert [i.key for i in store.search(("docs",), query="  ")] == ["c", "b", "a"]
    # the empty prefix is every namespace the store wrote
    assert {i.key for i in store.search((), query="deploy")} == {"a", "b", "d"}


def test_memories_written_without_the_store_are_readable(handle: MemoryAPI) -> None:
    handle.remember("bot", "an ordinary memory")
    handle.add_memory(agent_id="bot", content="namespaced, no key", namespace=["notes"])
    handle.add_memory(agent_id="bot", content="keyed, no metadata", namespace=["notes"], key="k")
    store = MemtraceStore(handle)
    items = {i.key: i for i in store.search(())}
    assert len(items) == 2  # the memory without a namespace is not an item
    keyed = items["k"]
    assert keyed.value == {"content": "keyed, no metadata"}
    (unkeyed,) = (i for k, i in items.items() if k != "k")
    assert unkeyed.key.startswith("mem_")  # an item without a key is named by its id
    assert unkeyed.value == {"content": "namespaced, no key"}


def test_ttl_expires_an_item(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle)
    assert store.supports_ttl
    store.put(NS, "short", {"content": "soon gone"}, ttl=0.5 / 60)  # half a second
    store.put(NS, "long", {"content": "stays"}, ttl=60)
    memory = handle.get_memory_by_key(list(NS), "long")
    assert memory.expires_at is not None
    assert (memory.expires_at - memory.recorded_at) == timedelta(hours=1)
    assert store.get(NS, "short") is not None
    time.sleep(0.7)
    assert store.get(NS, "short") is None
    assert [i.key for i in store.search(NS)] == ["long"]


def test_default_ttl_and_refresh(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle, ttl={"default_ttl": 5})
    store.put(NS, "k", {"x": 1})
    memory = handle.get_memory_by_key(list(NS), "k")
    assert memory.expires_at is not None
    assert memory.expires_at - memory.recorded_at == timedelta(minutes=5)
    store.put(NS, "forever", {"x": 1}, ttl=None)
    assert handle.get_memory_by_key(list(NS), "forever").expires_at is None
    with pytest.raises(ValueError, match="refresh"):
        MemtraceStore(handle, ttl={"refresh_on_read": True})


def test_concurrent_puts_of_one_key_leave_one_current_item(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle)

    async def main() -> None:
        await asyncio.gather(*(store.aput(NS, "k", {"n": n}) for n in range(20)))

    asyncio.run(main())
    current = handle.search_memories(namespace=list(NS), key="k").results
    assert len(current) == 1
    history = handle.search_memories(namespace=list(NS), key="k", include_superseded=True)
    assert history.count == 20
    item = store.get(NS, "k")
    assert item is not None
    assert item.value == current[0].metadata


async def test_an_async_only_handle(async_handle: AsyncMemoryAPI) -> None:
    store = MemtraceStore(async_handle)
    await store.aput(NS, "k", {"content": "async only"})
    item = await store.aget(NS, "k")
    assert item is not None
    assert item.value == {"content": "async only"}
    assert [i.key for i in await store.asearch(NS, query="async")] == ["k"]
    assert await store.alist_namespaces(prefix=("users",)) == [NS]
    await store.adelete(NS, "k")
    assert await store.aget(NS, "k") is None
    with pytest.raises(TypeError, match="async-only"):
        store.get(NS, "k")


async def test_async_batch_from_a_blocking_handle(handle: MemoryAPI) -> None:
    """A blocking handle serves coroutines too (its calls run on its own loop thread)."""
    store = MemtraceStore(handle)
    results = await store.abatch(
        [PutOp(NS, "a", {"v": 1}), PutOp(("x",), "b", {"v": 2}), GetOp(NS, "a")]
    )
    assert results == [None, None, None]
    got = await asyncio.gather(store.aget(NS, "a"), store.aget(("x",), "b"))
    assert [i.value for i in got if i is not None] == [{"v": 1}, {"v": 2}]


def test_items_are_timezone_aware(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle)
    before = datetime.now(UTC)
    store.put(NS, "k", {"x": 1})
    item = store.get(NS, "k")
    assert item is not None
    assert item.created_at.tzinfo is not None
    assert before - timedelta(seconds=5) <= item.created_at <= datetime.now(UTC)


def test_a_url_store_owns_its_handle(db_url: str) -> None:
    store = MemtraceStore(db_url)
    store.put(NS, "k", {"x": 1})
    store.close()
    with connect(db_url) as mt:
        assert mt.get_memory_by_key(list(NS), "k").metadata == {"x": 1}
    with pytest.raises(TypeError, match="only when"):
        MemtraceStore(connect(db_url), api_key="mtk_x")


def test_a_failing_batch_changes_nothing_and_names_the_op(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle)
    store.put(NS, "keep", {"v": 1})
    with pytest.raises(ValueError, match=r"^op 2 of the batch: .*metadata") as info:
        store.batch(
            [
                PutOp(NS, "keep", None),  # a delete: not applied, since a put below fails
                PutOp(NS, "new", {"v": 2}),
                PutOp(NS, "big", {"x": "y" * 20_000}),
            ]
        )
    assert info.value.index == 2  # type: ignore[attr-defined]
    kept = store.get(NS, "keep")
    assert kept is not None
    assert kept.value == {"v": 1}
    assert store.get(NS, "new") is None


async def test_a_failing_async_batch_changes_nothing(handle: MemoryAPI) -> None:
    store = MemtraceStore(handle)
    await store.aput(NS, "keep", {"v": 1})
    with pytest.raises(ValueError, match=r"^op 1 of the batch"):
        await store.abatch([PutOp(NS, "keep", None), PutOp(NS, "bad", {"x": _deep(40)})])
    assert await store.aget(NS, "keep") is not None
