"""``MemtraceStore`` against LangGraph's ``InMemoryStore``: one suite, run unchanged on three
stores — ``inmemory`` (``langgraph.store.memory.InMemoryStore()``), ``memtrace-sqlite``
(``MemtraceStore`` over the embedded engine) and ``memtrace-http`` (``MemtraceStore`` over the
HTTP client against a live memtrace server). The expectations are ported from LangGraph's own
tests (``libs/checkpoint/tests/test_store.py``, the store tests of ``libs/checkpoint-sqlite``)
and from the code of ``InMemoryStore`` / ``BaseStore`` (langgraph-checkpoint 4.x).

Where the two overlap, every store must give the same answer. Where they legitimately differ,
the test says so per store (``_is_memtrace``) and the difference is listed here:

=====================================  ===============================  ===============================
behaviour                              InMemoryStore                    MemtraceStore
=====================================  ===============================  ===============================
``search(query=...)``                  no index: the query is ignored,  memtrace's ranked keyword
                                       every filtered item returned in  search: matching items only,
                                       storage order, ``score=None``    best first, ``score`` a float
``created_at`` after an update         reset to the update's time       kept (the first put's time, as
                                       (``created_at == updated_at``    LangGraph's SqliteStore and
                                       up to microseconds)              PostgresStore do)
``put(..., ttl=...)``                  ``NotImplementedError``          accepted (minutes); the item
                                       (``supports_ttl = False``)       expires (no refresh on read)
namespaces after the last item of a    still listed; a ``GetOp`` on a   only namespaces holding a
namespace is deleted / after a get of  missing namespace also creates   current item are listed
an unknown namespace                   a listed namespace (defaultdict)
raw ``batch([PutOp(ns, ...)])`` with   accepted and stored as given     refused with ``ValueError``
``()``, ``("",)``, a non-str label     (only the public methods check)  (memtrace cannot store them)
raw ``PutOp`` with a ``"."`` label     stored                           refused, or stored exactly
                                                                        (never read as two labels)
``$gt/$gte/$lt/$lte`` on a numeric     coerced with ``float()``:        strings are not numbers: the
string / a missing field / ``inf``     ``"3" > 1``; a missing field     item does not match; a missing
                                       raises ``TypeError``; ``inf`` ok field does not match; a
                                                                        non-finite operand ValueError
values over memtrace's limits          stored                           ``ValueError`` (16 KiB, 32
                                                                        levels), nothing stored
=====================================  ===============================  ===============================

Search order without a query: ``InMemoryStore`` returns items in the order of its dicts
(namespace by first touch — a get counts — then first put of each key), LangGraph's
persistent stores (``SqliteStore``, ``PostgresStore``) newest update first
(``ORDER BY updated_at DESC``); ``MemtraceStore`` orders as the persistent ones (memtrace's
timeline, newest first — with ``limit`` the recent items). ``test_search_order_without_a_query``
asserts each store's order; everything else about search results is asserted as sets.

Parity tests never read an unknown namespace or delete before ``list_namespaces`` (the
defaultdict artefact above); ``test_deleted_and_unknown_namespaces_are_not_listed`` covers it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchItem,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

STORES = ["inmemory", "memtrace-sqlite", "memtrace-http"]
_TRANSPORT = {"memtrace-sqlite": "sqlite", "memtrace-http": "http"}


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def transport(store_kind: str) -> str:
    """Overrides the conftest's parametrised ``transport`` so that its ``handle`` fixture (and
    ``handle_url`` / ``live_server`` behind it) serves the memtrace params of ``store``."""
    return _TRANSPORT.get(store_kind, "none")


@pytest.fixture
def store(store_kind: str, request: pytest.FixtureRequest) -> Iterator[BaseStore]:
    """The store under test: a fresh ``InMemoryStore``, or a ``MemtraceStore`` over the
    conftest's ``handle`` on a fresh database (sqlite file, or a live server over it)."""
    if store_kind == "inmemory":
        yield InMemoryStore()
        return
    handle = request.getfixturevalue("handle")
    from memtrace_langchain.store import MemtraceStore  # lazy: not on main yet

    yield MemtraceStore(handle)


def _is_memtrace(store: BaseStore) -> bool:
    return not isinstance(store, InMemoryStore)


def _keys(items: list[SearchItem]) -> set[str]:
    return {item.key for item in items}


def _put_all(store: BaseStore, rows: list[tuple[tuple[str, ...], str, dict[str, Any]]]) -> None:
    for namespace, key, value in rows:
        store.put(namespace, key, value)


# -- put / get ------------------------------------------------------------------------------

VALUES: dict[str, dict[str, Any]] = {
    "content": {"content": "likes dark mode"},
    "no-content": {"theme": "dark", "size": 12},
    "content-not-a-string": {"content": {"text": "nested"}, "text": 3},
    "nested": {"a": {"b": {"c": [1, {"d": [True, None, "x"]}]}}, "e": []},
    "empty-containers": {"o": {}, "l": [], "s": ""},
    "unicode": {"zh": "这是中文", "emoji": "🧠💾", "ключ": "значение", "mixed": "naïve café"},
    "numbers": {"i": 0, "neg": -17, "f": 0.1, "tiny": 1e-300, "big": 1.5e300, "e": 2.5},
    "big-int": {"n": 2**70, "m": -(2**63) - 1},
    "bools-and-null": {"t": True, "f": False, "none": None},
    "list-of-objects": {"rows": [{"k": 1}, {"k": 2, "deep": {"x": [[], [[]]]}}]},
    "quotes-and-escapes": {'we"ird': 'a "quoted" \\ back\\slash\n\ttab', "$dollar": "ok"},
    "nul-in-string": {"s": "a\u0000b"},
    "empty-object": {},
}


@pytest.mark.parametrize("case", list(VALUES))
def test_put_get_round_trips_any_json_object(store: BaseStore, case: str) -> None:
    value = VALUES[case]
    store.put(("users", "u1"), "k", value)
    item = store.get(("users", "u1"), "k")
    assert isinstance(item, Item)
    assert item.value == value
    assert json.dumps(item.value) == json.dumps(value)  # types and key order too
    assert item.key == "k"
    assert item.namespace == ("users", "u1")
    assert isinstance(item.created_at, datetime)
    assert item.created_at.tzinfo is not None
    assert isinstance(item.updated_at, datetime)
    assert item.updated_at.tzinfo is not None
    found = store.search(("users",))
    assert [(i.namespace, i.key, i.value) for i in found] == [(("users", "u1"), "k", value)]


def test_reads_of_what_cannot_be_stored_find_nothing(store: BaseStore) -> None:
    """Parity: InMemoryStore answers None / [] for a namespace or key that holds nothing,
    including ones beyond memtrace's limits (17 labels, a 300-character label, a 600-character
    key, an empty key), which memtrace cannot hold either."""
    store.put(("a",), "k", {"v": 1})
    deep = tuple(f"l{i}" for i in range(17))
    assert store.list_namespaces(prefix=deep) == []  # before any get (module docstring)
    assert store.get(deep, "k") is None
    assert store.get(("x" * 300,), "k") is None
    assert store.get(("a",), "k" * 600) is None
    assert store.get(("a",), "") is None
    assert store.search(deep) == []
    assert store.search(("x" * 300,)) == []
    assert store.batch([GetOp(deep, "k"), SearchOp(deep, None, 10, 0)]) == [None, []]


def test_get_of_a_missing_key_is_none(store: BaseStore) -> None:
    store.put(("a", "b"), "k", {"v": 1})
    assert store.get(("a", "b"), "other") is None
    assert store.get(("a",), "k") is None  # a prefix is another namespace
    assert store.get(("a", "b", "c"), "k") is None
    assert store.get(("x",), "k") is None


def test_one_key_in_two_namespaces_is_two_items(store: BaseStore) -> None:
    store.put(("a",), "k", {"v": "a"})
    store.put(("a", "b"), "k", {"v": "ab"})
    store.put(("b",), "k", {"v": "b"})
    assert store.get(("a",), "k").value == {"v": "a"}  # type: ignore[union-attr]
    assert store.get(("a", "b"), "k").value == {"v": "ab"}  # type: ignore[union-attr]
    store.delete(("a",), "k")
    assert store.get(("a",), "k") is None
    assert store.get(("a", "b"), "k").value == {"v": "ab"}  # type: ignore[union-attr]
    assert store.get(("b",), "k").value == {"v": "b"}  # type: ignore[union-attr]


def test_keys_are_strings(store: BaseStore) -> None:
    store.put(("a",), 5, {"v": 1})  # type: ignore[arg-type]  # BaseStore.put str()s the key
    item = store.get(("a",), "5")
    assert item is not None
    assert item.key == "5"
    assert store.get(("a",), 5) is not None  # type: ignore[arg-type]
    store.put(("a",), "clé/🔑 with spaces", {"v": 2})
    assert store.get(("a",), "clé/🔑 with spaces").value == {"v": 2}  # type: ignore[union-attr]


def test_update_replaces_the_value(store: BaseStore) -> None:
    ns = ("test", "documents")
    store.put(ns, "doc1", {"title": "Test Document", "content": "Hello, World!", "extra": 1})
    first = store.get(ns, "doc1")
    assert first is not None
    time.sleep(0.01)
    store.put(ns, "doc1", {"title": "Updated Document"})
    second = store.get(ns, "doc1")
    assert second is not None
    assert second.value == {"title": "Updated Document"}  # replaced, not merged
    assert second.updated_at > first.updated_at
    assert second.created_at <= second.updated_at
    # still one item under the key
    assert [(i.key, i.value) for i in store.search(ns)] == [("doc1", {"title": "Updated Document"})]
    # the old value is no longer found by a filter
    assert store.search(ns, filter={"extra": 1}) == []
    assert _keys(store.search(ns, filter={"title": "Updated Document"})) == {"doc1"}


def test_putting_the_same_value_again_updates(store: BaseStore) -> None:
    store.put(("s",), "k", {"v": 1})
    first = store.get(("s",), "k")
    assert first is not None
    time.sleep(0.01)
    store.put(("s",), "k", {"v": 1})
    second = store.get(("s",), "k")
    assert second is not None
    assert second.value == {"v": 1}
    assert second.updated_at > first.updated_at
    assert len(store.search(("s",))) == 1


def test_a_key_put_again_after_a_delete_is_new(store: BaseStore) -> None:
    store.put(("r",), "k", {"v": 1})
    first = store.get(("r",), "k")
    assert first is not None
    time.sleep(0.01)
    store.delete(("r",), "k")
    store.put(("r",), "k", {"v": 2})
    again = store.get(("r",), "k")
    assert again is not None
    assert again.value == {"v": 2}
    assert again.created_at > first.created_at
    assert [i.value for i in store.search(("r",))] == [{"v": 2}]


def test_created_at_after_an_update(store: BaseStore) -> None:
    """A legitimate difference (module docstring): InMemoryStore stamps both times on every
    put; memtrace keeps the first put's ``created_at``, as LangGraph's persistent stores do."""
    store.put(("a",), "k", {"v": 1})
    first = store.get(("a",), "k")
    assert first is not None
    time.sleep(0.01)
    store.put(("a",), "k", {"v": 2})
    second = store.get(("a",), "k")
    assert second is not None
    if _is_memtrace(store):
        assert second.created_at == first.created_at
        assert second.updated_at > first.updated_at
    else:
        assert second.created_at > first.created_at
        assert abs((second.updated_at - second.created_at).total_seconds()) < 0.005


def test_delete_and_put_none(store: BaseStore) -> None:
    ns = ("test",)
    _put_all(store, [(ns, "key1", {"data": "value1"}), (ns, "key2", {"data": "value2"})])
    store.delete(ns, "key1")
    assert store.get(ns, "key1") is None
    assert _keys(store.search(ns)) == {"key2"}
    store.batch([PutOp(ns, "key2", None)])
    assert store.get(ns, "key2") is None
    assert store.search(ns) == []
    # deleting what is not there is not an error
    store.delete(ns, "never")
    store.batch([PutOp(ns, "never", None)])
    # a delete does not resurrect an earlier version, and the key can be written again
    store.put(ns, "key3", {"v": 1})
    store.put(ns, "key3", {"v": 2})
    store.delete(ns, "key3")
    assert store.get(ns, "key3") is None
    assert store.search(ns, filter={"v": 1}) == []
    store.put(ns, "key3", {"v": 3})
    assert store.get(ns, "key3").value == {"v": 3}  # type: ignore[union-attr]


# -- batch ----------------------------------------------------------------------------------


def test_batch_results_are_in_op_order(store: BaseStore) -> None:
    store.put(("test", "foo"), "key1", {"data": "value1"})
    store.put(("test", "bar"), "key2", {"data": "value2"})
    results = store.batch(
        [
            GetOp(("test", "foo"), "key1"),
            PutOp(("test", "bar"), "key2", {"data": "value2"}),
            SearchOp(("test",), {"data": "value1"}, 10, 0),
            ListNamespacesOp(None, None, 10, 0),
            GetOp(("test", "foo"), "key3"),
        ]
    )
    assert len(results) == 5
    assert isinstance(results[0], Item)
    assert (results[0].namespace, results[0].key, results[0].value) == (
        ("test", "foo"),
        "key1",
        {"data": "value1"},
    )
    assert results[1] is None
    assert isinstance(results[2], list)
    assert [(i.key, i.value) for i in results[2]] == [("key1", {"data": "value1"})]
    assert results[3] == [("test", "bar"), ("test", "foo")]
    assert results[4] is None

    results = store.batch(
        [
            SearchOp(("test",), None, 5, 0),
            GetOp(("test", "bar"), "key2"),
            ListNamespacesOp(None, None, 5, 0),
            PutOp(("test",), "key3", {"data": "value3"}),
            GetOp(("test", "foo"), "key1"),
        ]
    )
    assert _keys(results[0]) == {"key1", "key2"}  # type: ignore[arg-type]
    assert results[1].value == {"data": "value2"}  # type: ignore[union-attr]
    assert results[2] == [("test", "bar"), ("test", "foo")]
    assert results[3] is None
    assert results[4].value == {"data": "value1"}  # type: ignore[union-attr]
    assert store.get(("test",), "key3").value == {"data": "value3"}  # type: ignore[union-attr]


def test_batch_reads_see_the_state_before_the_batch(store: BaseStore) -> None:
    """InMemoryStore answers every read of a batch from the state before the batch and applies
    its writes afterwards (the last write of a key wins)."""
    ns = ("b",)
    store.put(ns, "old", {"v": 0})
    results = store.batch(
        [
            PutOp(ns, "new", {"v": 1}),
            GetOp(ns, "new"),
            PutOp(ns, "old", {"v": 1}),
            GetOp(ns, "old"),
            SearchOp(ns, None, 10, 0),
            SearchOp(ns, {"v": 1}, 10, 0),
        ]
    )
    assert results[0] is None
    assert results[2] is None
    assert results[1] is None
    assert results[3].value == {"v": 0}  # type: ignore[union-attr]
    assert [(i.key, i.value) for i in results[4]] == [("old", {"v": 0})]  # type: ignore[union-attr]
    assert results[5] == []
    assert store.get(ns, "new").value == {"v": 1}  # type: ignore[union-attr]
    assert store.get(ns, "old").value == {"v": 1}  # type: ignore[union-attr]


def test_batch_last_write_of_a_key_wins(store: BaseStore) -> None:
    ns = ("w",)
    assert store.batch(
        [PutOp(ns, "k", {"v": 1}), PutOp(ns, "k", {"v": 2}), PutOp(ns, "k", {"v": 3})]
    ) == [None, None, None]
    assert store.get(ns, "k").value == {"v": 3}  # type: ignore[union-attr]
    assert len(store.search(ns)) == 1
    store.batch([PutOp(ns, "k", {"v": 4}), PutOp(ns, "k", None)])
    assert store.get(ns, "k") is None
    store.batch([PutOp(ns, "k", None), PutOp(ns, "k", {"v": 5})])
    assert store.get(ns, "k").value == {"v": 5}  # type: ignore[union-attr]
    assert [i.value for i in store.search(ns)] == [{"v": 5}]


def test_batch_of_puts_and_gets(store: BaseStore) -> None:
    ns = ("test",)
    results = store.batch(
        [
            PutOp(ns, "key1", {"data": "value1"}),
            PutOp(ns, "key2", {"data": "value2"}),
            PutOp(ns, "key3", None),
        ]
    )
    assert results == [None, None, None]
    results = store.batch([GetOp(ns, "key1"), GetOp(ns, "key2"), GetOp(ns, "key3")])
    assert [r.value if r else None for r in results] == [  # type: ignore[union-attr]
        {"data": "value1"},
        {"data": "value2"},
        None,
    ]
    assert store.batch([]) == []


def test_a_large_batch(store: BaseStore) -> None:
    ns = ("bulk",)
    ops = [PutOp(ns, f"k{i:04d}", {"i": i}) for i in range(1100)]
    assert store.batch(ops) == [None] * 1100
    assert store.get(ns, "k0000").value == {"i": 0}  # type: ignore[union-attr]
    assert store.get(ns, "k1099").value == {"i": 1099}  # type: ignore[union-attr]
    assert len(store.search(ns, limit=10, offset=1095)) == 5
    assert _keys(store.search(ns, filter={"i": {"$gte": 1098}})) == {"k1098", "k1099"}
    gets = store.batch([GetOp(ns, f"k{i:04d}") for i in range(0, 1100, 7)])
    assert [g.value["i"] for g in gets if g is not None] == list(range(0, 1100, 7))


def test_batch_of_searches_and_listings(store: BaseStore) -> None:
    _put_all(
        store,
        [
            (("test", "foo"), "key1", {"data": "value1", "tag": "a"}),
            (("test", "bar"), "key2", {"data": "value2", "tag": "a"}),
            (("test", "baz"), "key3", {"data": "value3", "tag": "b"}),
            (("prod", "documents", "public"), "doc3", {"content": "prod doc"}),
        ],
    )
    results = store.batch(
        [
            SearchOp(("test",), {"tag": "a"}, 10, 0),
            SearchOp(("test",), None, 2, 0),
            SearchOp(("test", "foo"), None, 10, 0),
            ListNamespacesOp(None, 2, 10, 0),
            ListNamespacesOp((MatchCondition("suffix", ("public",)),), None, 10, 0),
        ]
    )
    assert _keys(results[0]) == {"key1", "key2"}  # type: ignore[arg-type]
    assert len(results[1]) == 2  # type: ignore[arg-type]
    assert [(i.namespace, i.key) for i in results[2]] == [(("test", "foo"), "key1")]  # type: ignore[union-attr]
    assert results[3] == [("prod", "documents"), ("test", "bar"), ("test", "baz"), ("test", "foo")]
    assert results[4] == [("prod", "documents", "public")]


# -- search: namespaces ---------------------------------------------------------------------


def test_search_namespace_prefix_stops_at_label_boundaries(store: BaseStore) -> None:
    for ns in [
        ("foo",),
        ("foo", "child"),
        ("foo", "child", "deep"),
        ("foobar",),
        ("foobar", "baz"),
        ("foo2",),
    ]:
        store.put(ns, "k", {"v": 1})

    def namespaces(prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
        return {item.namespace for item in store.search(prefix, limit=100)}

    assert namespaces(("foo",)) == {("foo",), ("foo", "child"), ("foo", "child", "deep")}
    assert namespaces(("foo", "child")) == {("foo", "child"), ("foo", "child", "deep")}
    assert namespaces(("foobar",)) == {("foobar",), ("foobar", "baz")}
    assert namespaces(("foo2",)) == {("foo2",)}
    assert namespaces(("fo",)) == set()
    assert namespaces(("foo", "chi")) == set()
    assert namespaces(("foo", "child", "deep", "deeper")) == set()
    assert namespaces(()) == {
        ("foo",),
        ("foo", "child"),
        ("foo", "child", "deep"),
        ("foobar",),
        ("foobar", "baz"),
        ("foo2",),
    }


def test_search_namespace_labels_are_literal_and_case_sensitive(store: BaseStore) -> None:
    for ns in [
        ("user_1",),
        ("user_1", "child"),
        ("userX1",),
        ("a%b",),
        ("axxb",),
        ("star*",),
        ("starX",),
        ("Foo",),
        ("foo",),
    ]:
        store.put(ns, "k", {"v": 1})

    def namespaces(prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
        return {item.namespace for item in store.search(prefix, limit=100)}

    assert namespaces(("user_1",)) == {("user_1",), ("user_1", "child")}
    assert namespaces(("a%b",)) == {("a%b",)}
    assert namespaces(("star*",)) == {("star*",)}
    assert namespaces(("*",)) == set()  # "*" is a wildcard of list_namespaces only
    assert namespaces(("foo",)) == {("foo",)}
    assert namespaces(("Foo",)) == {("Foo",)}


def test_search_order_without_a_query(store: BaseStore) -> None:
    """One namespace, fresh keys: put order on InMemoryStore, newest first on memtrace (as
    LangGraph's SqliteStore / PostgresStore); pagination follows that order."""
    ns = ("ordered",)
    for key in ["c", "a", "d", "b", "e"]:
        store.put(ns, key, {"k": key})
        time.sleep(0.002)
    order = ["c", "a", "d", "b", "e"]
    if _is_memtrace(store):
        order.reverse()
    assert [i.key for i in store.search(ns)] == order
    assert [i.key for i in store.search(ns, limit=2, offset=1)] == order[1:3]


# -- search: limit / offset -----------------------------------------------------------------


def test_search_limit_and_offset(store: BaseStore) -> None:
    ns = ("page",)
    for i in range(12):
        store.put(ns, f"k{i:02d}", {"i": i, "even": i % 2 == 0})
    everything = {f"k{i:02d}" for i in range(12)}
    assert len(store.search(ns)) == 10  # the default limit
    assert _keys(store.search(ns, limit=100)) == everything
    pages = [store.search(ns, limit=5, offset=o) for o in (0, 5, 10)]
    assert [len(p) for p in pages] == [5, 5, 2]
    keys = [i.key for p in pages for i in p]
    assert len(keys) == len(set(keys)) == 12
    assert set(keys) == everything
    assert store.search(ns, offset=12) == []
    assert _keys(store.search(ns, limit=5000)) == everything
    assert store.search(ns, offset=100) == []
    assert len(store.search(ns, limit=1)) == 1
    evens = [store.search(ns, filter={"even": True}, limit=4, offset=o) for o in (0, 4)]
    assert [len(p) for p in evens] == [4, 2]
    assert {i.key for p in evens for i in p} == {f"k{i:02d}" for i in range(0, 12, 2)}


def test_a_zero_limit_finds_nothing(store: BaseStore) -> None:
    store.put(("z",), "k", {"v": 1})
    assert store.search(("z",), limit=0) == []
    assert store.search(("z",), limit=0, filter={"v": 1}) == []
    assert store.list_namespaces(limit=0) == []


# -- search: filters ------------------------------------------------------------------------

FILTER_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("one", {"n": 1, "kind": "x", "flag": True, "tags": [1, 2], "deep": {"a": {"b": 1}}}),
    ("two", {"n": 2.5, "kind": "y", "flag": False, "tags": [2, 1], "deep": {"a": {"b": 2}}}),
    ("three", {"n": 3, "kind": "x", "deep": {"a": {"b": 2}, "c": 0}, "name": "Alice"}),
    ("four", {"n": -10, "kind": "z", "name": "Bob", "deep": {"a": {"b": 3, "x": "y"}}}),
]


@pytest.fixture
def filtered(store: BaseStore) -> BaseStore:
    for key, value in FILTER_ROWS:
        store.put(("items",), key, value)
    store.put(("elsewhere",), "one", {"n": 1, "kind": "x"})
    return store


FILTERS: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {"one", "two", "three", "four"}),
    ({"kind": "x"}, {"one", "three"}),
    ({"kind": "x", "n": 3}, {"three"}),
    ({"kind": "nope"}, set()),
    ({"n": 1}, {"one"}),
    ({"n": 1.0}, {"one"}),  # numbers compare as numbers
    ({"n": "1"}, set()),  # a string is not a number
    ({"flag": True}, {"one"}),
    ({"flag": False}, {"two"}),
    ({"name": "Alice"}, {"three"}),
    ({"name": "alice"}, set()),
    ({"missing": None}, {"one", "two", "three", "four"}),
    ({"tags": [1, 2]}, {"one"}),  # lists element by element
    ({"tags": [2, 1]}, {"two"}),
    ({"tags": [1]}, set()),
    ({"deep": {"a": {"b": 1}}}, {"one"}),  # nested objects match their keys recursively
    ({"deep": {"a": {"b": 2}}}, {"two", "three"}),
    ({"deep": {"c": 0}}, {"three"}),
    ({"deep": {"a": {"x": "y"}}}, {"four"}),
    ({"deep": {}}, {"one", "two", "three", "four"}),
    ({"kind": {"x": 1}}, set()),  # an object never equals a string
    ({"n": True}, {"one"}),  # as Python compares: True == 1
    ({"flag": 1}, {"one"}),
    ({"flag": 0}, {"two"}),
    ({"n": {"$eq": 2.5}}, {"two"}),
    ({"name": {"$eq": None}}, {"one", "two"}),
    ({"name": {"$ne": None}}, {"three", "four"}),
    ({"kind": {"$eq": "y"}}, {"two"}),
    ({"kind": {"$ne": "x"}}, {"two", "four"}),
    ({"name": {"$ne": "Alice"}}, {"one", "two", "four"}),  # a missing field is "not equal"
    ({"tags": {"$eq": [1, 2]}}, {"one"}),
    ({"n": {"$gt": 1}}, {"two", "three"}),
    ({"n": {"$gte": 1}}, {"one", "two", "three"}),
    ({"n": {"$lt": 1}}, {"four"}),
    ({"n": {"$lte": 2.5}}, {"one", "two", "four"}),
    ({"n": {"$gt": 0, "$lt": 3}}, {"one", "two"}),
    ({"n": {"$gte": -10, "$lte": -10}}, {"four"}),
    ({"n": {"$gt": 2.4999}}, {"two", "three"}),
    ({"n": {"$lt": 10**100}}, {"one", "two", "three", "four"}),
    ({"n": {"$gt": "2"}}, {"two", "three"}),  # InMemoryStore float()s a numeric operand
    ({"deep": {"a": {"b": {"$gt": 1}}}}, {"two", "three", "four"}),
    ({"kind": "x", "n": {"$lt": 5}, "deep": {"a": {"b": 2}}}, {"three"}),
]


@pytest.mark.parametrize(
    ("flt", "expected"), FILTERS, ids=[json.dumps(f, sort_keys=True) for f, _ in FILTERS]
)
def test_search_filter(filtered: BaseStore, flt: dict[str, Any], expected: set[str]) -> None:
    found = filtered.search(("items",), filter=flt, limit=100)
    assert _keys(found) == expected
    assert all(item.namespace == ("items",) for item in found)
    for item in found:  # the items come back whole
        assert item.value == dict(FILTER_ROWS)[item.key]


def test_filter_and_prefix_combine(filtered: BaseStore) -> None:
    everywhere = filtered.search((), filter={"kind": "x", "n": 1}, limit=100)
    assert {(i.namespace, i.key) for i in everywhere} == {
        (("items",), "one"),
        (("elsewhere",), "one"),
    }
    assert filtered.search(("nowhere",), filter={"kind": "x"}) == []


def test_filter_keys_and_values_are_literal(store: BaseStore) -> None:
    ns = ("lit",)
    store.put(
        ns,
        "odd",
        {
            "a.b": 1,
            "a": {"b": 2},
            "access-level": "public",
            "123abc": "ok",
            "ключ": "значение",
            "with space": 'it\'s "quoted" \\ too',
            "%_*": "?",
        },
    )
    store.put(ns, "plain", {"a": {"b": 1}, "access-level": "private"})

    def keys(flt: dict[str, Any]) -> set[str]:
        return _keys(store.search(ns, filter=flt))

    assert keys({"a.b": 1}) == {"odd"}  # a dotted key is one key, not a path
    assert keys({"a.b": 2}) == set()
    assert keys({"a": {"b": 1}}) == {"plain"}
    assert keys({"access-level": "public", "123abc": "ok"}) == {"odd"}
    assert keys({"ключ": "значение"}) == {"odd"}
    assert keys({"with space": 'it\'s "quoted" \\ too'}) == {"odd"}
    assert keys({"%_*": "?"}) == {"odd"}
    assert keys({"access-level": "p%"}) == set()


@pytest.mark.parametrize("operator", ["$in", "$nin", "$exists", "$regex", "$contains", "$"])
def test_unknown_filter_operator_is_a_value_error(filtered: BaseStore, operator: str) -> None:
    with pytest.raises(ValueError, match=r"\$"):
        filtered.search(("items",), filter={"n": {operator: [1]}})
    with pytest.raises(ValueError):
        filtered.search(("items",), filter={"deep": {"a": {operator: 1}}})


def test_comparison_with_a_non_numeric_operand_is_a_value_error(filtered: BaseStore) -> None:
    with pytest.raises(ValueError):
        filtered.search(("items",), filter={"n": {"$gt": "abc"}})


def test_comparisons_on_strings_missing_fields_and_infinity(store: BaseStore) -> None:
    """A legitimate difference (module docstring): InMemoryStore compares with ``float()``."""
    ns = ("coerce",)
    store.put(ns, "num", {"n": 5})
    store.put(ns, "numeric-string", {"n": "7"})
    if _is_memtrace(store):
        assert _keys(store.search(ns, filter={"n": {"$gt": 1}})) == {"num"}
    else:
        assert _keys(store.search(ns, filter={"n": {"$gt": 1}})) == {"num", "numeric-string"}
    store.put(ns, "missing", {"m": 1})
    if _is_memtrace(store):
        assert _keys(store.search(ns, filter={"n": {"$gt": 1}})) == {"num"}
        with pytest.raises(ValueError):
            store.search(ns, filter={"n": {"$lt": float("inf")}})
    else:
        with pytest.raises(TypeError):
            store.search(ns, filter={"n": {"$gt": 1}})
        store.delete(ns, "missing")
        assert _keys(store.search(ns, filter={"n": {"$lt": float("inf")}})) == {
            "num",
            "numeric-string",
        }


# -- search: query --------------------------------------------------------------------------


def test_search_with_a_query(store: BaseStore) -> None:
    """A legitimate difference (module docstring): without an index InMemoryStore ignores the
    query (``score=None``); memtrace ranks by keywords and sets ``score``."""
    ns = ("docs",)
    store.put(ns, "py", {"text": "Python tutorial for beginners"})
    store.put(ns, "ts", {"text": "TypeScript guide"})
    store.put(ns, "cook", {"content": "a recipe for pancakes", "lang": "en"})
    store.put(("other",), "py2", {"text": "Python elsewhere"})
    found = store.search(ns, query="python tutorial")
    assert all(isinstance(i, SearchItem) and i.namespace == ns for i in found)
    if _is_memtrace(store):
        assert [i.key for i in found][:1] == ["py"]
        assert found[0].value == {"text": "Python tutorial for beginners"}
        assert "ts" not in _keys(found)
        assert "cook" not in _keys(found)
        assert all(isinstance(i.score, float) for i in found)
        assert [i.key for i in store.search(ns, query="pancakes")] == ["cook"]
        assert store.search(ns, query="pancakes", filter={"lang": "fr"}) == []
    else:
        assert _keys(found) == {"py", "ts", "cook"}
        assert all(i.score is None for i in found)
    # without a query there is no score on either store
    assert all(i.score is None for i in store.search(ns))


# -- list_namespaces ------------------------------------------------------------------------

NAMESPACES = [
    ("a", "b", "c"),
    ("a", "b", "d", "e"),
    ("a", "b", "d", "i"),
    ("a", "b", "f"),
    ("a", "c", "f"),
    ("b", "a", "f"),
    ("users", "123"),
    ("users", "456", "settings"),
    ("admin", "users", "789"),
]


@pytest.fixture
def spaced(store: BaseStore) -> BaseStore:
    for i, ns in enumerate(NAMESPACES):
        store.put(ns, f"id_{i}", {"data": f"value_{i:02d}"})
    store.put(NAMESPACES[0], "second", {"data": "again"})  # two items: listed once
    return store


LISTINGS: list[tuple[dict[str, Any], list[tuple[str, ...]]]] = [
    ({}, sorted(NAMESPACES)),
    (
        {"prefix": ("a", "b")},
        [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f")],
    ),
    ({"suffix": ("f",)}, [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]),
    ({"prefix": ("a",), "suffix": ("f",)}, [("a", "b", "f"), ("a", "c", "f")]),
    ({"prefix": ("a", "b"), "max_depth": 3}, [("a", "b", "c"), ("a", "b", "d"), ("a", "b", "f")]),
    ({"prefix": ("a", "b"), "limit": 2}, [("a", "b", "c"), ("a", "b", "d", "e")]),
    ({"prefix": ("a", "b"), "offset": 2}, [("a", "b", "d", "i"), ("a", "b", "f")]),
    ({"prefix": ("a", "*", "f")}, [("a", "b", "f"), ("a", "c", "f")]),
    ({"suffix": ("*", "f")}, [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]),
    ({"prefix": ("*", "users")}, [("admin", "users", "789")]),
    ({"prefix": ("*", "*", "*", "*")}, [("a", "b", "d", "e"), ("a", "b", "d", "i")]),
    ({"prefix": ("nonexistent",)}, []),
    ({"prefix": ("users", "123")}, [("users", "123")]),
    ({"prefix": ("users",), "suffix": ("settings",)}, [("users", "456", "settings")]),
    ({"prefix": ("*", "users"), "suffix": ("*", "settings")}, []),
    ({"suffix": ("a", "b", "c")}, [("a", "b", "c")]),
    ({"suffix": ("z", "a", "b", "c")}, []),
    ({"max_depth": 1}, [("a",), ("admin",), ("b",), ("users",)]),
    (
        {"max_depth": 2},
        [
            ("a", "b"),
            ("a", "c"),
            ("admin", "users"),
            ("b", "a"),
            ("users", "123"),
            ("users", "456"),
        ],
    ),
    ({"max_depth": 2, "limit": 2, "offset": 1}, [("a", "c"), ("admin", "users")]),
    ({"max_depth": 3, "suffix": ("f",)}, [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]),
    ({"max_depth": 10, "prefix": ("users",)}, [("users", "123"), ("users", "456", "settings")]),
    ({"limit": 3}, sorted(NAMESPACES)[:3]),
    ({"offset": 8}, sorted(NAMESPACES)[8:]),
    ({"offset": 9}, []),
]


@pytest.mark.parametrize(("query", "expected"), LISTINGS, ids=[json.dumps(q) for q, _ in LISTINGS])
def test_list_namespaces(
    spaced: BaseStore, query: dict[str, Any], expected: list[tuple[str, ...]]
) -> None:
    assert spaced.list_namespaces(**query) == expected


def test_list_namespaces_with_wildcards(store: BaseStore) -> None:
    for i, ns in enumerate(
        [
            ("users", "123"),
            ("users", "456"),
            ("users", "789", "settings"),
            ("admin", "users", "789"),
            ("guests", "123"),
            ("guests", "456", "preferences"),
        ]
    ):
        store.put(ns, f"id_{i}", {"data": i})
    assert store.list_namespaces(prefix=("users", "*")) == [
        ("users", "123"),
        ("users", "456"),
        ("users", "789", "settings"),
    ]
    assert store.list_namespaces(suffix=("*", "preferences")) == [("guests", "456", "preferences")]
    assert store.list_namespaces(prefix=("*", "123")) == [("guests", "123"), ("users", "123")]
    assert store.list_namespaces(prefix=("*", "users"), suffix=("*", "settings")) == []
    store.put(("admin", "users", "settings", "789"), "foo", {"data": "x"})
    assert store.list_namespaces(prefix=("*", "users"), suffix=("settings", "*")) == [
        ("admin", "users", "settings", "789")
    ]


def test_list_namespaces_pagination(store: BaseStore) -> None:
    for i in reversed(range(20)):
        store.put(("namespace", f"sub_{i:02d}"), f"id_{i:02d}", {"data": i})
    for offset in (0, 5, 15):
        assert store.list_namespaces(prefix=("namespace",), limit=5, offset=offset) == [
            ("namespace", f"sub_{i:02d}") for i in range(offset, offset + 5)
        ]
    assert len(store.list_namespaces()) == 20
    assert len(store.list_namespaces(limit=5000)) == 20
    assert store.list_namespaces(prefix=("namespace",), limit=5, offset=18) == [
        ("namespace", "sub_18"),
        ("namespace", "sub_19"),
    ]


def test_list_namespaces_max_depth_truncates_and_dedups(store: BaseStore) -> None:
    for i, ns in enumerate(
        [
            ("a", "b", "c", "d"),
            ("a", "b", "c", "e"),
            ("a", "b", "f"),
            ("a", "g"),
            ("h", "i", "j", "k"),
        ]
    ):
        store.put(ns, f"id_{i}", {"data": i})
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "g"), ("h", "i")]
    assert store.list_namespaces(max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "f"),
        ("a", "g"),
        ("h", "i", "j"),
    ]
    assert store.list_namespaces(max_depth=1) == [("a",), ("h",)]
    assert store.list_namespaces(max_depth=1, offset=1) == [("h",)]


def test_list_namespaces_sort_order(store: BaseStore) -> None:
    """Sorted as Python sorts the tuples (label by label, by code point; a prefix first)."""
    namespaces = [
        ("é",),
        ("a", "b"),
        ("a-b",),
        ("B",),
        ("a",),
        ("aa",),
        ("a", "B"),
        ("a", "b", "c"),
        ("a b",),
        ("_",),
        ("中",),
        ("~",),
        ("10",),
        ("9",),
    ]
    for i, ns in enumerate(namespaces):
        store.put(ns, "k", {"i": i})
    assert store.list_namespaces() == sorted(namespaces)


def test_list_namespaces_segment_boundaries(store: BaseStore) -> None:
    for ns in [
        ("foo",),
        ("foo", "child"),
        ("foobar",),
        ("foobar", "baz"),
        ("uid", "users", "alice"),
        ("uid", "users", "malice"),
        ("uid", "a", "b", "alice"),
        ("star*",),
        ("starX",),
    ]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces(prefix=("foo",)) == [("foo",), ("foo", "child")]
    assert store.list_namespaces(suffix=("alice",)) == [
        ("uid", "a", "b", "alice"),
        ("uid", "users", "alice"),
    ]
    assert store.list_namespaces(prefix=("uid", "*", "alice")) == [("uid", "users", "alice")]
    assert len(store.list_namespaces(prefix=("uid",))) == 3
    assert store.list_namespaces(prefix=("sta",)) == []


def test_list_namespaces_of_an_empty_store(store: BaseStore) -> None:
    assert store.list_namespaces() == []
    assert store.list_namespaces(prefix=("a",), max_depth=2) == []


def test_deleted_and_unknown_namespaces_are_not_listed(store: BaseStore) -> None:
    """A legitimate difference (module docstring): InMemoryStore keeps a namespace listed after
    its last item is deleted, and lists a namespace that was only read."""
    store.put(("keep",), "k", {"v": 1})
    store.put(("gone",), "k", {"v": 1})
    store.delete(("gone",), "k")
    assert store.get(("read", "only"), "k") is None
    if _is_memtrace(store):
        assert store.list_namespaces() == [("keep",)]
    else:
        assert store.list_namespaces() == [("gone",), ("keep",), ("read", "only")]


# -- namespace validation -------------------------------------------------------------------

BAD_LABELS: list[tuple[str, tuple[Any, ...]]] = [
    ("period", ("the", "thing.about")),
    ("empty-label", ("some", "fun", "")),
    ("non-string", ("a", 1)),
    ("none-label", ("a", None)),
    ("nul", ("a\x00b",)),
]


@pytest.mark.parametrize(("case", "namespace"), BAD_LABELS, ids=[c for c, _ in BAD_LABELS])
def test_public_methods_refuse_bad_namespace_labels(
    store: BaseStore, case: str, namespace: tuple[Any, ...]
) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(namespace, "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.get(namespace, "k")
    with pytest.raises(InvalidNamespaceError):
        store.delete(namespace, "k")
    with pytest.raises(InvalidNamespaceError):
        store.search(namespace)
    with pytest.raises(InvalidNamespaceError):
        store.list_namespaces(prefix=namespace)
    with pytest.raises(InvalidNamespaceError):
        store.list_namespaces(suffix=namespace)
    assert store.search(()) == []


def test_put_refuses_an_empty_namespace_and_a_langgraph_root(store: BaseStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put((), "foo", {"foo": "bar"})
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph", "foo"), "bar", {"foo": "bar"})
    assert store.search(()) == []
    # "langgraph" below the root is an ordinary label
    store.put(("foo", "langgraph", "foo"), "bar", {"foo": "bar"})
    assert store.get(("foo", "langgraph", "foo"), "bar").value == {"foo": "bar"}  # type: ignore[union-attr]
    store.delete(("foo", "langgraph", "foo"), "bar")
    assert store.get(("foo", "langgraph", "foo"), "bar") is None


def test_a_raw_put_op_may_use_a_langgraph_root(store: BaseStore) -> None:
    """LangGraph's own test: only the public ``put`` refuses the root; a raw op goes through."""
    store.batch([PutOp(("langgraph", "foo"), "bar", {"foo": "bar"})])
    assert store.get(("langgraph", "foo"), "bar").value == {"foo": "bar"}  # type: ignore[union-attr]
    assert [i.value for i in store.search(("langgraph", "foo"))] == [{"foo": "bar"}]
    store.delete(("langgraph", "foo"), "bar")
    assert store.get(("langgraph", "foo"), "bar") is None


@pytest.mark.parametrize("namespace", [(), ("",), ("a", ""), ("a", 1), ("a", None)], ids=repr)
def test_a_raw_put_op_with_an_unstorable_namespace(
    store: BaseStore, namespace: tuple[Any, ...]
) -> None:
    """A legitimate difference (module docstring): InMemoryStore stores what a raw op gives."""
    op = PutOp(namespace, "k", {"v": 1})  # type: ignore[arg-type]
    if _is_memtrace(store):
        with pytest.raises(ValueError):
            store.batch([op])
        assert store.search((), limit=100) == []
    else:
        store.batch([op])
        assert [i.namespace for i in store.search((), limit=100)] == [namespace]


def test_a_raw_put_op_with_a_period_is_never_two_labels(store: BaseStore) -> None:
    store.put(("a", "b"), "k", {"v": "two labels"})
    try:
        store.batch([PutOp(("a.b",), "k", {"v": "one label"})])
    except ValueError:
        assert _is_memtrace(store)  # refusing is fine for memtrace; InMemoryStore stores it
    else:
        got = store.batch([GetOp(("a.b",), "k")])[0]
        assert got is not None
        assert got.value == {"v": "one label"}
        assert got.namespace == ("a.b",)
    assert store.get(("a", "b"), "k").value == {"v": "two labels"}  # type: ignore[union-attr]
    assert [i.value for i in store.search(("a", "b"))] == [{"v": "two labels"}]


# -- limits ---------------------------------------------------------------------------------


def test_values_over_memtrace_limits(store: BaseStore) -> None:
    """A legitimate difference (module docstring): memtrace refuses what it cannot store."""
    big = {"blob": "x" * (20 * 1024)}
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(40):
        deep = {"d": deep}
    for value in (big, deep):
        if _is_memtrace(store):
            with pytest.raises(ValueError):
                store.put(("lim",), "k", value)
            assert store.get(("lim",), "k") is None
        else:
            store.put(("lim",), "k", value)
            assert store.get(("lim",), "k").value == value  # type: ignore[union-attr]


# -- TTL ------------------------------------------------------------------------------------


def test_ttl_acceptance(store: BaseStore) -> None:
    """A legitimate difference (module docstring): InMemoryStore has no TTL support."""
    store.put(("t",), "none", {"v": 1}, ttl=None)  # ttl=None is accepted everywhere
    assert store.get(("t",), "none", refresh_ttl=False).value == {"v": 1}  # type: ignore[union-attr]
    assert _keys(store.search(("t",), refresh_ttl=False)) == {"none"}
    if _is_memtrace(store):
        assert store.supports_ttl is True
        store.put(("t",), "long", {"v": 2}, ttl=60)
        item = store.get(("t",), "long")
        assert item is not None
        assert item.value == {"v": 2}
        assert _keys(store.search(("t",))) == {"none", "long"}
    else:
        assert store.supports_ttl is False
        with pytest.raises(NotImplementedError):
            store.put(("t",), "long", {"v": 2}, ttl=60)
        assert store.get(("t",), "long") is None


def test_ttl_expiry_on_memtrace(store: BaseStore) -> None:
    if not _is_memtrace(store):
        with pytest.raises(NotImplementedError):
            store.put(("t",), "short", {"v": 1}, ttl=0.02)
        assert store.get(("t",), "short") is None
        return
    store.put(("t",), "short", {"v": 1}, ttl=0.02)  # 1.2 s
    store.put(("t",), "kept", {"v": 2})
    assert store.get(("t",), "short").value == {"v": 1}  # type: ignore[union-attr]
    time.sleep(1.6)
    assert store.get(("t",), "short") is None
    assert _keys(store.search(("t",))) == {"kept"}
    assert store.list_namespaces() == [("t",)]
    store.put(("t",), "short", {"v": 3})  # the key can be written again, without a TTL
    assert store.get(("t",), "short").value == {"v": 3}  # type: ignore[union-attr]


# -- async twins ----------------------------------------------------------------------------


@pytest.fixture(params=["connect", "aconnect"])
def astore(store_kind: str, request: pytest.FixtureRequest) -> BaseStore:
    """The store of the async tests: the memtrace params also over an async-only handle
    (the conftest's ``async_handle``, from ``aconnect``); ``inmemory`` is the same store."""
    if store_kind == "inmemory" or request.param == "connect":
        return request.getfixturevalue("store")  # type: ignore[no-any-return]
    from memtrace_langchain.store import MemtraceStore

    return MemtraceStore(request.getfixturevalue("async_handle"))


async def test_async_methods(astore: BaseStore) -> None:
    ns = ("users", "u1")
    await astore.aput(ns, "k1", {"content": "likes tea", "n": 1})
    await astore.aput(ns, "k2", {"n": 2, "deep": {"x": "y"}})
    await astore.aput(("users", "u2"), "k1", {"n": 3})
    item = await astore.aget(ns, "k1")
    assert item is not None
    assert item.value == {"content": "likes tea", "n": 1}
    assert await astore.aget(ns, "missing") is None
    assert _keys(await astore.asearch(("users",), limit=100)) == {"k1", "k2"}
    assert len(await astore.asearch(("users",), limit=100)) == 3
    assert _keys(await astore.asearch(ns, filter={"n": {"$gte": 2}})) == {"k2"}
    assert _keys(await astore.asearch(ns, filter={"deep": {"x": "y"}})) == {"k2"}
    assert await astore.alist_namespaces(prefix=("users",)) == [("users", "u1"), ("users", "u2")]
    assert await astore.alist_namespaces(max_depth=1) == [("users",)]
    assert await astore.alist_namespaces(suffix=("*",), limit=1, offset=1) == [("users", "u2")]
    await astore.aput(ns, "k1", {"n": 10})
    assert (await astore.aget(ns, "k1")).value == {"n": 10}  # type: ignore[union-attr]
    await astore.adelete(ns, "k1")
    assert await astore.aget(ns, "k1") is None
    with pytest.raises(InvalidNamespaceError):
        await astore.aput((), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        await astore.aput(("langgraph",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        await astore.aget(("a.b",), "k")
    with pytest.raises(ValueError):
        await astore.asearch(ns, filter={"n": {"$in": [1]}})


async def test_async_batch(astore: BaseStore) -> None:
    ns = ("ab",)
    await astore.aput(ns, "old", {"v": 0})
    results = await astore.abatch(
        [
            PutOp(ns, "new", {"v": 1}),
            GetOp(ns, "new"),
            GetOp(ns, "old"),
            SearchOp(ns, {"v": 0}, 10, 0),
            ListNamespacesOp(None, None, 10, 0),
            PutOp(ns, "old", None),
        ]
    )
    assert results[0] is None
    assert results[1] is None
    assert results[5] is None
    assert results[2].value == {"v": 0}  # type: ignore[union-attr]
    assert _keys(results[3]) == {"old"}  # type: ignore[arg-type]
    assert results[4] == [ns]
    assert (await astore.aget(ns, "new")).value == {"v": 1}  # type: ignore[union-attr]
    assert await astore.aget(ns, "old") is None


async def test_async_calls_run_concurrently(astore: BaseStore) -> None:
    ns = ("many",)
    await asyncio.gather(*(astore.aput(ns, f"k{i}", {"i": i}) for i in range(10)))
    got = await asyncio.gather(*(astore.aget(ns, f"k{i}") for i in range(10)))
    assert [g.value["i"] for g in got if g is not None] == list(range(10))
    assert len(await astore.asearch(ns, limit=100)) == 10
