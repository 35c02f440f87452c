"""MemtraceRetriever: langchain-tests' standard retriever suite and memtrace's own checks, on
the embedded engine (sqlite file) and on a live memtrace server (http), sync and async."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.tools import tool
from langchain_tests.integration_tests import RetrieversIntegrationTests
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from memtrace_core import ValidationError
from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_core.bridge import MemtraceHandle
from memtrace_langchain.retriever import MemtraceRetriever, memory_to_document

QUERY = "deploy failure rollback"


def _seed_deploys(mt: MemoryAPI) -> list[str]:
    """Five memories that match QUERY (to different degrees) and two that do not."""
    ids = [
        mt.remember("ops", "deploy failure on api-gateway: rollback started", session_id="s1").id,
        mt.remember("ops", "deploy failure again, rollback of release 42", session_id="s1").id,
        mt.remember("ops", "the deploy of billing failed (failure in migrations)").id,
        mt.remember("ops", "rollback finished, traffic back on the old release").id,
        mt.remember("ops", "deploy of the search service succeeded", session_id="s2").id,
    ]
    mt.remember("ops", "lunch order: two pizzas for the on-call team")
    mt.remember("ops", "the weekly report was mailed to the managers")
    return ids


class TestLcStandardRetriever(RetrieversIntegrationTests):
    """langchain-tests' RetrieversIntegrationTests, unchanged, once per transport: the
    autouse fixture seeds the store through the ``handle`` fixture (sqlite / http) and the
    constructor params hand that handle to MemtraceRetriever."""

    @pytest.fixture(autouse=True)
    def _seeded(self, handle: MemoryAPI) -> None:
        _seed_deploys(handle)
        self._handle = handle

    @property
    def retriever_constructor(self) -> type[MemtraceRetriever]:
        return MemtraceRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memtrace": self._handle, "agent_id": "ops"}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


# -- mapping ----------------------------------------------------------------------------------


def test_document_carries_content_id_and_memory_fields(handle: MemoryAPI) -> None:
    mem = handle.remember(
        "ops",
        "disk full on db-3, rotated the logs",
        session_id="inc-7",
        event_type="incident",
        tags=["disk", "db"],
        importance=0.8,
        metadata={"host": "db-3", "nested": {"pct": 97}},
    )
    [doc] = MemtraceRetriever(memtrace=handle).invoke("disk full")
    assert isinstance(doc, Document)
    assert doc.page_content == "disk full on db-3, rotated the logs"
    assert doc.id == mem.id
    score = doc.metadata.pop("score")
    assert isinstance(score, float)
    assert score > 0
    assert doc.metadata == {
        "id": mem.id,
        "agent_id": "ops",
        "session_id": "inc-7",
        "memory_type": "episodic",
        "event_type": "incident",
        "time": mem.time.isoformat(),
        "recorded_at": mem.recorded_at.isoformat(),
        "tags": ["disk", "db"],
        "importance": 0.8,
        "metadata": {"host": "db-3", "nested": {"pct": 97}},
    }
    assert datetime.fromisoformat(doc.metadata["time"]) == mem.time


def test_keyed_memory_adds_namespace_and_key(handle: MemoryAPI) -> None:
    keyed = handle.add_memory(
        agent_id="ops",
        content="prefers dark mode",
        memory_type="entity",
        namespace=["users", "u1"],
        key="ui",
    )
    other = handle.remember("ops", "dark mode shipped in the release")
    docs = MemtraceRetriever(memtrace=handle).invoke("dark mode")
    by_id = {d.id: d for d in docs}
    assert set(by_id) == {keyed.id, other.id}
    assert by_id[keyed.id].metadata["namespace"] == ["users", "u1"]
    assert by_id[keyed.id].metadata["key"] == "ui"
    assert by_id[keyed.id].metadata["memory_type"] == "entity"
    plain = by_id[other.id]
    assert "namespace" not in plain.metadata
    assert "key" not in plain.metadata
    assert plain.metadata["metadata"] is None
    assert plain.metadata["session_id"] is None


def test_memory_to_document_matches_the_retriever(handle: MemoryAPI) -> None:
    _seed_deploys(handle)
    found = handle.search_memories(query=QUERY, limit=3).results
    docs = MemtraceRetriever(memtrace=handle, k=3).invoke(QUERY)
    assert docs == [memory_to_document(m) for m in found]


# -- ranking and k ----------------------------------------------------------------------------


def test_order_and_scores_are_the_engines(handle: MemoryAPI) -> None:
    _seed_deploys(handle)
    for i in range(20):
        handle.remember("ops", f"rollback drill {i}: " + "deploy " * (i % 4) + "ok")
    expected = handle.search_memories(query=QUERY, agent_id="ops", limit=12).results
    docs = MemtraceRetriever(memtrace=handle, agent_id="ops", k=12).invoke(QUERY)
    assert len(docs) == 12
    assert [d.id for d in docs] == [m.id for m in expected]
    assert [d.metadata["score"] for d in docs] == [m.score for m in expected]
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_k_from_constructor_and_per_call(handle: MemoryAPI) -> None:
    ids = _seed_deploys(handle)
    retriever = MemtraceRetriever(memtrace=handle)
    assert len(retriever.invoke(QUERY)) == 4  # default k
    assert len(MemtraceRetriever(memtrace=handle, k=2).invoke(QUERY)) == 2
    assert len(retriever.invoke(QUERY, k=1)) == 1
    everything = retriever.invoke(QUERY, k=50)  # more than match: all the matches
    assert {d.id for d in everything} == set(ids)
    assert retriever.k == 4  # a per-call k does not stick


def test_empty_query_returns_nothing(handle: MemoryAPI) -> None:
    _seed_deploys(handle)
    retriever = MemtraceRetriever(memtrace=handle)
    # the engine answers a blank query with the newest memories; the retriever does not
    assert handle.search_memories(query="  ", limit=4).count == 4
    assert retriever.invoke("") == []
    assert retriever.invoke("   \n") == []


def test_engine_errors_pass_through(handle: MemoryAPI) -> None:
    handle.remember("ops", "something")
    retriever = MemtraceRetriever(memtrace=handle)
    with pytest.raises(ValidationError, match="query"):
        retriever.invoke("x" * 5000)
    with pytest.raises(ValidationError, match="limit"):
        retriever.invoke("something", k=-1)
    assert retriever.invoke("something", k=0) == []  # nothing asked for, as the store's limit=0


def test_unknown_invoke_kwarg_is_refused(handle: MemoryAPI) -> None:
    retriever = MemtraceRetriever(memtrace=handle)
    with pytest.raises(TypeError, match="top_k"):
        retriever.invoke(QUERY, top_k=3)


def test_unknown_constructor_option_is_refused(handle: MemoryAPI) -> None:
    with pytest.raises(Exception, match="top_k"):
        MemtraceRetriever(memtrace=handle, top_k=3)
    with pytest.raises(TypeError, match="memtrace handle"):
        MemtraceRetriever(memtrace=42)


# -- filters ----------------------------------------------------------------------------------


def _ids(docs: list[Document]) -> set[str | None]:
    return {d.id for d in docs}


def test_filters_reach_the_engine(handle: MemoryAPI) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    a = handle.remember(
        "ops", "alpha deploy notes", session_id="s1", tags=["deploy", "prod"], importance=0.9
    )
    b = handle.remember("ops", "alpha deploy decided", session_id="s2", event_type="decision")
    c = handle.remember("dev", "alpha deploy on staging", session_id="s1", tags=["deploy"])
    d = handle.add_memory(agent_id="ops", content="alpha deploy of last week", time=old)
    e = handle.add_memory(
        agent_id="ops",
        content="alpha deploy config",
        memory_type="entity",
        namespace=["cfg", "alpha"],
        key="deploy",
        metadata={"env": "prod", "replicas": 3},
    )
    r = MemtraceRetriever(memtrace=handle, k=10)
    q = "alpha deploy"
    assert _ids(r.invoke(q)) == {a.id, b.id, c.id, d.id, e.id}
    assert _ids(MemtraceRetriever(memtrace=handle, k=10, agent_id="dev").invoke(q)) == {c.id}
    assert _ids(r.invoke(q, agent_id="ops", session_id="s1")) == {a.id}
    assert _ids(r.invoke(q, session_id="s1")) == {a.id, c.id}
    assert _ids(r.invoke(q, memory_types=["entity"])) == {e.id}
    assert _ids(r.invoke(q, event_types=["decision"])) == {b.id}
    assert _ids(r.invoke(q, tags=["deploy", "prod"])) == {a.id}
    assert _ids(r.invoke(q, tags=["deploy"])) == {a.id, c.id}
    assert _ids(r.invoke(q, until=old + timedelta(hours=1))) == {d.id}
    assert d.id not in _ids(r.invoke(q, since="24h"))
    assert _ids(r.invoke(q, min_importance=0.5)) == {a.id}
    assert _ids(r.invoke(q, namespace_prefix=["cfg"])) == {e.id}
    assert _ids(r.invoke(q, metadata_filter={"replicas": {"$gte": 3}})) == {e.id}
    assert _ids(r.invoke(q, metadata_filter={"env": "dev"})) == set()
    # constructor filters and a per-call override of one of them
    scoped = MemtraceRetriever(memtrace=handle, k=10, agent_id="ops", session_id="s2")
    assert _ids(scoped.invoke(q)) == {b.id}
    assert _ids(scoped.invoke(q, session_id="s1")) == {a.id}


def test_runtime_context_scopes_the_search_inside_a_graph(handle: MemoryAPI) -> None:
    """Inside a LangGraph run the runtime context's agent_id/session_id override the
    constructor's (here a tool built on the retriever, called from a graph node)."""
    mine = handle.remember("alice-bot", "alpha deploy for alice", session_id="a1")
    handle.remember("bob-bot", "alpha deploy for bob", session_id="b1")
    retriever = MemtraceRetriever(memtrace=handle, agent_id="bob-bot", k=10)

    @tool
    def lookup(query: str) -> list[str]:
        """Search memory."""
        return [d.id or "" for d in retriever.invoke(query)]

    class State(TypedDict):
        query: str
        found: list[str]

    class Ctx(TypedDict):
        agent_id: str

    def node(state: State) -> dict[str, Any]:
        return {"found": lookup.invoke({"query": state["query"]})}

    graph = StateGraph(State, context_schema=Ctx)
    graph.add_node("search", node)
    graph.add_edge(START, "search")
    graph.add_edge("search", END)
    app = graph.compile()
    out = app.invoke({"query": "alpha deploy", "found": []}, context={"agent_id": "alice-bot"})
    assert out["found"] == [mine.id]
    # outside a run the constructor's agent applies
    assert [d.metadata["agent_id"] for d in retriever.invoke("alpha deploy")] == ["bob-bot"]


# -- async ------------------------------------------------------------------------------------


async def test_ainvoke_with_an_async_handle(async_handle: AsyncMemoryAPI) -> None:
    for text in ("deploy failure on api", "rollback of deploy", "unrelated note"):
        await async_handle.remember("ops", text)
    expected = (await async_handle.search_memories(query=QUERY, limit=4)).results
    retriever = MemtraceRetriever(memtrace=async_handle)
    docs = await retriever.ainvoke(QUERY)
    assert [d.id for d in docs] == [m.id for m in expected]
    assert len(docs) == 2
    assert [d.page_content for d in await retriever.ainvoke(QUERY, k=1)] == [expected[0].content]
    assert await retriever.ainvoke(" ") == []
    # an aconnect handle serves coroutines only
    with pytest.raises(TypeError, match="async-only"):
        retriever.invoke(QUERY)


async def test_ainvoke_with_a_blocking_handle_matches_invoke(handle: MemoryAPI) -> None:
    _seed_deploys(handle)
    retriever = MemtraceRetriever(memtrace=handle, agent_id="ops", k=3)
    docs = await retriever.ainvoke(QUERY, session_id="s1")
    assert docs == retriever.invoke(QUERY, session_id="s1")
    assert {d.metadata["session_id"] for d in docs} == {"s1"}
    assert len(docs) == 2
    batch = await retriever.abatch([QUERY, "pizzas"])
    assert [len(b) for b in batch] == [3, 1]


# -- construction from a URL ------------------------------------------------------------------


def test_url_constructor_opens_and_closes_its_connection(
    handle: MemoryAPI, handle_url: tuple[str, Any]
) -> None:
    ids = _seed_deploys(handle)
    url, options = handle_url
    retriever = MemtraceRetriever(memtrace=url, k=2, **options)
    assert isinstance(retriever.memtrace, MemtraceHandle)
    docs = retriever.invoke(QUERY)
    assert len(docs) == 2
    assert {d.id for d in docs} <= set(ids)
    assert "api_key" not in retriever.model_dump()
    retriever.close()


def test_api_key_without_url_is_refused(handle: MemoryAPI) -> None:
    with pytest.raises(TypeError, match="api_key"):
        MemtraceRetriever(memtrace=handle, api_key="mtk_x")


def test_create_retriever_tool_returns_the_ranked_texts(handle: MemoryAPI) -> None:
    from langchain_core.tools import create_retriever_tool

    _seed_deploys(handle)
    expected = handle.search_memories(query=QUERY, limit=2).results
    memory_tool = create_retriever_tool(
        MemtraceRetriever(memtrace=handle, k=2), "memory", "Search the agent's memory."
    )
    assert memory_tool.invoke({"query": QUERY}) == "\n\n".join(m.content for m in expected)
