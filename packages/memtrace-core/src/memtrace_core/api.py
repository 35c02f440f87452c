"""The method set, as one typed contract.

:class:`AsyncMemoryAPI` lists every public method of memtrace with its signature;
:class:`MemoryAPI` is the same set, blocking. Four classes implement them, and a test
(``tests/conformance/test_contract.py``) fails when any of them lacks a method or differs in a
signature:

==============================================  ==============================================
async                                           blocking
==============================================  ==============================================
:class:`~memtrace_core.engine.AsyncMemtrace`     :class:`~memtrace_core.sync.Memtrace`
:class:`~memtrace_core.client.AsyncMemtraceClient` :class:`~memtrace_core.client.MemtraceClient`
==============================================  ==============================================

:func:`memtrace_core.connect` returns a :class:`MemoryAPI` and :func:`memtrace_core.aconnect`
an :class:`AsyncMemoryAPI`, whatever the URL, so code typed against these protocols (the
framework integrations, the MCP server) works unchanged on the embedded engine and over HTTP.

The blocking twins do not write the method set out again: :data:`METHODS` names it once and
:class:`memtrace_core.sync.BlockingMethods` derives each of :data:`BLOCKING_DERIVED` from the
protocol's own method (a test checks the two lists are the same).

Conventions of the method set (the original SDK's names): a write or query takes either a
model, a mapping or keyword fields (``add_memory({"agent_id": …})`` and
``add_memory(agent_id=…)`` are the same call); errors are the classes of
:mod:`memtrace_core.errors` on every transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, Any, Protocol, runtime_checkable

from .feed import WatchStream
from .models import (
    Activity,
    ActivityQuery,
    Agent,
    AgentContext,
    AgentList,
    AgentStats,
    BatchResult,
    ContextOptions,
    CreateSessionRequest,
    DeleteFilter,
    ImportResult,
    ListOptions,
    Memory,
    MemoryCreate,
    MemoryList,
    MemorySummary,
    NamespaceList,
    RegisterAgentRequest,
    RetentionInfo,
    RetentionPolicy,
    RetentionReport,
    SearchQuery,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
    StreamEvent,
    SummaryQuery,
    UpdateSessionRequest,
    WatchOptions,
)


@runtime_checkable
class AsyncMemoryAPI(Protocol):
    """Every public method of memtrace, async (the engine and the HTTP client)."""

    # -- shortcuts ----------------------------------------------------------------------------

    async def remember(
        self,
        /,
        agent_id: str,
        content: str,
        *,
        session_id: str | None = None,
        memory_type: str = "episodic",
        event_type: str = "general",
        tags: list[str] | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory:
        """Store an episodic memory (what the agent did or saw)."""
        ...

    async def decide(
        self,
        /,
        agent_id: str,
        decision: str,
        reasoning: str,
        *,
        session_id: str | None = None,
        tags: list[str] | None = None,
        importance: float | None = None,
    ) -> Memory:
        """Record a decision and why (``memory_type=decision``, ``event_type=decision``)."""
        ...

    async def recall(
        self,
        /,
        agent_id: str,
        since: str | None = "24h",
        *,
        limit: int = 100,
        **filters: Any,
    ) -> MemoryList:
        """The agent's recent memories, newest first (``since`` defaults to 24 h)."""
        ...

    # -- memories -----------------------------------------------------------------------------

    async def add_memory(
        self, memory: MemoryCreate | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> Memory:
        """Write one memory. Raises DuplicateMemoryError (naming the existing memory) if the
        same dedup key was written within the dedup window."""
        ...

    async def add_memories(
        self, memories: Sequence[MemoryCreate | Mapping[str, Any]]
    ) -> BatchResult:
        """Write a batch atomically: validated whole before anything is written; duplicates
        are skipped and reported."""
        ...

    async def list_memories(
        self, options: ListOptions | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> MemoryList:
        """Memories matching the filters, by time (newest first by default), paginated with
        an exact ``has_more``; ``limit`` is capped at 1000."""
        ...

    async def search_memories(
        self, query: SearchQuery | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> SearchResult:
        """Filters plus, with ``query``, ranked keyword search (best first)."""
        ...

    async def get_memory(self, memory_id: str, *, as_of: str | datetime | None = None) -> Memory:
        """The memory with this id (superseded or not), as known at ``as_of`` when given.
        Raises NotFoundError (also for an expired memory)."""
        ...

    async def get_memory_by_key(
        self, namespace: Sequence[str], key: str, *, as_of: str | datetime | None = None
    ) -> Memory:
        """The current memory with this key in this namespace. Raises NotFoundError."""
        ...

    async def list_namespaces(
        self,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> NamespaceList:
        """The distinct namespaces of the org's memories (``"*"`` matches any one part)."""
        ...

    async def delete_memory(self, memory_id: str) -> None:
        """Delete one memory from every index. Raises NotFoundError."""
        ...

    async def delete_memories(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> int:
        """Delete every memory matching the criteria; returns the count deleted. With
        ``all_versions=True`` every other version of each matched memory (its whole
        supersession chain) is deleted too, and counted."""
        ...

    async def pop_memory(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> Memory | None:
        """Remove and return the newest current (not superseded, unexpired) memory matching
        the filters of :meth:`delete_memories` (at least one; ``all_versions`` is refused),
        or None. Atomic: two concurrent pops never return the same memory."""
        ...

    async def summarize_memories(
        self, filters: SummaryQuery | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> MemorySummary:
        """Count, oldest / newest event time and the most frequent tags (``tag_limit``, default
        100) of the memories matching the filters of :meth:`search_memories` (no ranking or
        paging), without reading them."""
        ...

    # -- agents -------------------------------------------------------------------------------

    async def register_agent(
        self,
        request: RegisterAgentRequest | Mapping[str, Any] | str | None = None,
        /,
        **fields: Any,
    ) -> Agent:
        """Register an agent; a string is its name (``register_agent("bot1")``). Names are
        unique per org (ConflictError)."""
        ...

    async def list_agents(self) -> AgentList:
        """The org's registered agents, newest first."""
        ...

    async def get_agent(self, agent_id: str) -> Agent:
        """An agent by id or by name. Raises NotFoundError."""
        ...

    async def get_agent_stats(
        self, agent_id: str, *, as_of: str | datetime | None = None
    ) -> AgentStats:
        """Counts for an agent (an unknown agent gets zeros, as the original), of its current,
        unexpired memories, as known at ``as_of`` when given."""
        ...

    async def get_activity(
        self, options: ActivityQuery | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> Activity:
        """Memories per ``bucket`` of event time (default ``1h``, at least ``1m``) from
        ``since`` (default 24 hours before ``until``, rounded down to a bucket start) to
        ``until`` (default now), per memory type and with the errors among them, of the
        current, unexpired memories matching the filters; dense, oldest first, at most 1000
        buckets."""
        ...

    async def get_agent_memories(
        self,
        agent_id: str,
        options: ListOptions | Mapping[str, Any] | None = None,
        /,
        **filters: Any,
    ) -> MemoryList:
        """An agent's memories across sessions; ``since`` defaults to 24 h."""
        ...

    async def get_agent_context(
        self,
        agent_id: str,
        options: ContextOptions | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> AgentContext:
        """LLM-ready context of one agent's recent memories across its sessions."""
        ...

    async def delete_agent(self, agent_id: str, *, delete_memories: bool = False) -> None:
        """Delete an agent; its memories stay unless ``delete_memories``."""
        ...

    # -- sessions -----------------------------------------------------------------------------

    async def create_session(
        self,
        request: CreateSessionRequest | Mapping[str, Any] | str | None = None,
        /,
        **fields: Any,
    ) -> Session:
        """Open a session for an agent; a string is the agent (``create_session("bot1")``)."""
        ...

    async def get_session(self, session_id: str) -> Session:
        """A session by id. Raises NotFoundError."""
        ...

    async def list_sessions(
        self,
        agent_id: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> SessionList:
        """Sessions, newest first, optionally of one agent and/or one status."""
        ...

    async def update_session(
        self,
        session_id: str,
        request: UpdateSessionRequest | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> Session:
        """Change status and merge metadata (RFC 7386)."""
        ...

    async def close_session(self, session_id: str) -> Session:
        """Close a session (sets ``closed_at``)."""
        ...

    async def delete_session(self, session_id: str, *, delete_memories: bool = False) -> None:
        """Delete a session; its memories stay unless ``delete_memories``."""
        ...

    async def get_session_memories(
        self,
        session_id: str,
        options: ListOptions | Mapping[str, Any] | None = None,
        /,
        **filters: Any,
    ) -> MemoryList:
        """A session's memories (the filters of :meth:`list_memories`)."""
        ...

    async def get_session_context(
        self,
        session_id: str,
        options: ContextOptions | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> SessionContext:
        """LLM-ready context of a session (markdown by default)."""
        ...

    # -- export / import / org ----------------------------------------------------------------

    def iter_export(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> AsyncIterator[str]:
        """JSON Lines of the org's agents, sessions and memories."""
        ...

    def watch(
        self,
        options: WatchOptions | Mapping[str, Any] | None = None,
        /,
        *,
        after: str | None = None,
        **filters: Any,
    ) -> WatchStream:
        """Follow new memories as they are committed (the live feed; see
        :meth:`~memtrace_core.engine.AsyncMemtrace.watch`)."""
        ...

    async def export_jsonl(
        self,
        out: IO[str],
        criteria: DeleteFilter | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> int:
        """Write :meth:`iter_export` to a text stream; returns the lines written."""
        ...

    async def import_jsonl(
        self,
        lines: Iterable[str | bytes],
        *,
        batch_size: int = 500,
        require_trailer: bool = True,
    ) -> ImportResult:
        """Import JSON Lines (an export of any store) into the org. The file is checked whole
        against its trailer before anything is kept; ``require_trailer=False`` accepts a file
        written before exports had one."""
        ...

    async def purge_org(self) -> int:
        """Delete every memory, agent and session of the org; returns the memories deleted."""
        ...

    # -- retention ----------------------------------------------------------------------------

    async def get_retention_policy(self) -> RetentionInfo:
        """The org's effective retention policy and its source (org, default or none)."""
        ...

    async def set_retention_policy(
        self, policy: RetentionPolicy | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> RetentionInfo:
        """Set the org's retention policy (it wins over the configured default). Needs the
        ``admin`` permission over HTTP."""
        ...

    async def clear_retention_policy(self) -> RetentionInfo:
        """Remove the org's own policy (the configured default applies again)."""
        ...

    async def apply_retention(self, *, dry_run: bool = False) -> RetentionReport:
        """Delete the org's memories past their retention age now (``dry_run``: count them)."""
        ...

    async def close(self) -> None:
        """Commit pending writes and release the store or connection."""
        ...


@runtime_checkable
class MemoryAPI(Protocol):
    """:class:`AsyncMemoryAPI`, blocking (:class:`~memtrace_core.sync.Memtrace` and
    :class:`~memtrace_core.client.MemtraceClient`). Each method has the async method's
    parameters and returns what it returns."""

    def remember(
        self,
        /,
        agent_id: str,
        content: str,
        *,
        session_id: str | None = None,
        memory_type: str = "episodic",
        event_type: str = "general",
        tags: list[str] | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory: ...

    def decide(
        self,
        /,
        agent_id: str,
        decision: str,
        reasoning: str,
        *,
        session_id: str | None = None,
        tags: list[str] | None = None,
        importance: float | None = None,
    ) -> Memory: ...

    def recall(
        self,
        /,
        agent_id: str,
        since: str | None = "24h",
        *,
        limit: int = 100,
        **filters: Any,
    ) -> MemoryList: ...

    def add_memory(
        self, memory: MemoryCreate | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> Memory: ...

    def add_memories(self, memories: Sequence[MemoryCreate | Mapping[str, Any]]) -> BatchResult: ...

    def list_memories(
        self, options: ListOptions | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> MemoryList: ...

    def search_memories(
        self, query: SearchQuery | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> SearchResult: ...

    def get_memory(self, memory_id: str, *, as_of: str | datetime | None = None) -> Memory: ...

    def get_memory_by_key(
        self, namespace: Sequence[str], key: str, *, as_of: str | datetime | None = None
    ) -> Memory: ...

    def list_namespaces(
        self,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> NamespaceList: ...

    def delete_memory(self, memory_id: str) -> None: ...

    def delete_memories(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> int: ...

    def pop_memory(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> Memory | None: ...

    def summarize_memories(
        self, filters: SummaryQuery | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> MemorySummary: ...

    def register_agent(
        self,
        request: RegisterAgentRequest | Mapping[str, Any] | str | None = None,
        /,
        **fields: Any,
    ) -> Agent: ...

    def list_agents(self) -> AgentList: ...

    def get_agent(self, agent_id: str) -> Agent: ...

    def get_agent_stats(
        self, agent_id: str, *, as_of: str | datetime | None = None
    ) -> AgentStats: ...

    def get_activity(
        self, options: ActivityQuery | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> Activity: ...

    def get_agent_memories(
        self,
        agent_id: str,
        options: ListOptions | Mapping[str, Any] | None = None,
        /,
        **filters: Any,
    ) -> MemoryList: ...

    def get_agent_context(
        self,
        agent_id: str,
        options: ContextOptions | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> AgentContext: ...

    def delete_agent(self, agent_id: str, *, delete_memories: bool = False) -> None: ...

    def create_session(
        self,
        request: CreateSessionRequest | Mapping[str, Any] | str | None = None,
        /,
        **fields: Any,
    ) -> Session: ...

    def get_session(self, session_id: str) -> Session: ...

    def list_sessions(
        self,
        agent_id: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> SessionList: ...

    def update_session(
        self,
        session_id: str,
        request: UpdateSessionRequest | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> Session: ...

    def close_session(self, session_id: str) -> Session: ...

    def delete_session(self, session_id: str, *, delete_memories: bool = False) -> None: ...

    def get_session_memories(
        self,
        session_id: str,
        options: ListOptions | Mapping[str, Any] | None = None,
        /,
        **filters: Any,
    ) -> MemoryList: ...

    def get_session_context(
        self,
        session_id: str,
        options: ContextOptions | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> SessionContext: ...

    def iter_export(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> Iterator[str]: ...

    def watch(
        self,
        options: WatchOptions | Mapping[str, Any] | None = None,
        /,
        *,
        after: str | None = None,
        **filters: Any,
    ) -> Iterator[StreamEvent]: ...

    def export_jsonl(
        self,
        out: IO[str],
        criteria: DeleteFilter | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> int: ...

    def import_jsonl(
        self,
        lines: Iterable[str | bytes],
        *,
        batch_size: int = 500,
        require_trailer: bool = True,
    ) -> ImportResult: ...

    def purge_org(self) -> int: ...

    def get_retention_policy(self) -> RetentionInfo: ...

    def set_retention_policy(
        self, policy: RetentionPolicy | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> RetentionInfo: ...

    def clear_retention_policy(self) -> RetentionInfo: ...

    def apply_retention(self, *, dry_run: bool = False) -> RetentionReport: ...

    def close(self) -> None: ...


#: The names of the method set, in the order above (``iter_export`` and ``close`` are not
#: derived: they are not plain coroutines / need the twin's own handling).
METHODS: tuple[str, ...] = tuple(
    name
    for name in AsyncMemoryAPI.__dict__
    if not name.startswith("_") and callable(getattr(AsyncMemoryAPI, name))
)
#: The methods a blocking twin derives with :func:`memtrace_core.sync.blocking`.
BLOCKING_DERIVED: tuple[str, ...] = tuple(
    m for m in METHODS if m not in ("iter_export", "watch", "close")
)

__all__ = ["BLOCKING_DERIVED", "METHODS", "AsyncMemoryAPI", "MemoryAPI"]
