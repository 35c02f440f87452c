"""``MemtraceRetriever``: memtrace's ranked keyword search as a LangChain ``BaseRetriever``.

A RAG chain, ``create_retriever_tool`` or any LCEL pipeline gets memtrace memories as
:class:`~langchain_core.documents.Document` objects, best match first, ranked by the engine
(no embedding, no LLM call)::

    from memtrace_core import connect
    from memtrace_langchain.retriever import MemtraceRetriever

    retriever = MemtraceRetriever(memtrace=connect("sqlite:///memtrace.db"), agent_id="bot", k=4)
    docs = retriever.invoke("why did the deploy fail")

Each document is one memory: ``page_content`` is its text, ``id`` its memtrace id, and
``metadata`` the fields a chain may cite or filter on (see :func:`memory_to_document`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, ModelWrapValidatorHandler, SecretStr, model_validator

from memtrace_core.models import Memory

from ._context import HandleField, context_ids, open_handle

__all__ = ["MemtraceRetriever", "memory_to_document"]


#: The search filters a retriever passes to ``search_memories`` (constructor fields, and
#: per-call overrides given to ``invoke``/``ainvoke`` as keyword arguments).
FILTERS: tuple[str, ...] = (
    "agent_id",
    "session_id",
    "memory_types",
    "event_types",
    "tags",
    "since",
    "until",
    "min_importance",
    "namespace_prefix",
    "metadata_filter",
)


def memory_to_document(memory: Memory) -> Document:
    """The :class:`Document` of one memory: ``page_content`` = ``memory.content``,
    ``id`` = ``memory.id``, and ``metadata`` with ``id``, ``agent_id``, ``session_id``,
    ``memory_type``, ``event_type``, ``time`` and ``recorded_at`` (ISO 8601), ``tags``,
    ``importance``, ``score`` (the engine's ranking score), the memory's own metadata under
    ``"metadata"`` (None when it has none) and, when the memory has them, ``namespace``,
    ``key``, ``parent_id`` and ``expires_at``."""
    meta: dict[str, Any] = {
        "id": memory.id,
        "agent_id": memory.agent_id,
        "session_id": memory.session_id,
        "memory_type": memory.memory_type,
        "event_type": memory.event_type,
        "time": memory.time.isoformat(),
        "recorded_at": memory.recorded_at.isoformat(),
        "tags": list(memory.tags) if memory.tags is not None else None,
        "importance": memory.importance,
        "score": memory.score,
        "metadata": memory.metadata,
    }
    if memory.namespace is not None:
        meta["namespace"] = list(memory.namespace)
    if memory.key is not None:
        meta["key"] = memory.key
    if memory.parent_id is not None:
        meta["parent_id"] = memory.parent_id
    if memory.expires_at is not None:
        meta["expires_at"] = memory.expires_at.isoformat()
    return Document(page_content=memory.content, metadata=meta, id=memory.id)


def runtime_scope() -> dict[str, str]:
    """``agent_id`` / ``session_id`` of the LangGraph runtime context of the current run, when
    the retriever is called inside one (a tool or node of ``create_agent``) and the context
    has them (as attributes or mapping keys); else ``{}``."""
    try:
        from langgraph.runtime import get_runtime

        runtime = get_runtime()
    except (ImportError, RuntimeError, KeyError):
        return {}
    return context_ids(getattr(runtime, "context", None))


class MemtraceRetriever(BaseRetriever):
    """Retrieve memtrace memories relevant to a query, best first, as ``Document`` objects.

    The query goes to memtrace's ranked keyword search (``search_memories(query=…,
    limit=k, …)``); ranking, validation and limits are the engine's, so the documents come in
    exactly the order ``search_memories`` returns, each with its ``score`` in the metadata.

    Fields:
        memtrace: a handle from ``memtrace_core.connect(...)`` (sync and async use) or
            ``aconnect(...)`` (async use only), or a URL opened with ``connect`` (and closed
            by :meth:`close`).
        api_key: the API key of a memtrace server URL (only with a URL).
        k: how many documents to return at most (default 4); ``invoke(query, k=…)``
            overrides it for one call.
        agent_id, session_id, memory_types, event_types, tags, since, until, min_importance,
        namespace_prefix, metadata_filter: search filters passed to the engine (``tags`` match
        exactly, all of them; ``metadata_filter`` is ``search_memories``' ``metadata``
        filter). Each can be overridden for one call as a keyword argument of ``invoke``.
        Inside a LangGraph run, ``agent_id``/``session_id`` of the runtime context override
        the constructor's (an explicit keyword argument wins over both).

    An empty or whitespace-only query returns ``[]`` without a search: memtrace would answer
    it with the newest memories in time order, which are not "relevant" to anything. A query
    too long for the engine raises its ``ValidationError``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    memtrace: HandleField
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    k: int = 4
    agent_id: str | None = None
    session_id: str | None = None
    memory_types: list[str] | None = None
    event_types: list[str] | None = None
    tags: list[str] | None = None
    since: str | datetime | None = None
    until: str | datetime | None = None
    min_importance: float | None = None
    namespace_prefix: list[str] | None = None
    metadata_filter: dict[str, Any] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _open(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        return open_handle(data, handler)

    def _search_fields(self, query: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """The ``search_memories`` keyword arguments of one call."""
        unknown = sorted(set(overrides) - {"k", *FILTERS})
        if unknown:
            raise TypeError(
                f"MemtraceRetriever got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"accepted: k, {', '.join(FILTERS)}"
            )
        values = {name: getattr(self, name) for name in FILTERS}
        values.update(runtime_scope())
        values.update({name: v for name, v in overrides.items() if name != "k"})
        fields: dict[str, Any] = {
            ("metadata" if name == "metadata_filter" else name): value
            for name, value in values.items()
            if value is not None
        }
        fields["query"] = query
        fields["limit"] = overrides.get("k", self.k)
        return fields

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        kwargs.pop("verbose", None)  # BaseRetriever.invoke leaves it among the extra kwargs
        fields = self._search_fields(query, kwargs)
        if not query.strip() or fields["limit"] == 0:  # nothing asked for
            return []
        result = self.memtrace.sync.search_memories(**fields)
        return [memory_to_document(m) for m in result.results]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        kwargs.pop("verbose", None)
        fields = self._search_fields(query, kwargs)
        if not query.strip() or fields["limit"] == 0:  # nothing asked for
            return []
        result = await self.memtrace.run(lambda api: api.search_memories(**fields))
        return [memory_to_document(m) for m in result.results]

    def close(self) -> None:
        """Close the memtrace connection if this retriever opened it from a URL."""
        self.memtrace.close()

    async def aclose(self) -> None:
        """:meth:`close` from a coroutine."""
        await self.memtrace.aclose()
