"""The Store protocol: what a storage backend implements.

Stores *store*; the engine owns every rule (validation, dedup keys and windows, time parsing,
tenancy, ranking, context). Every method takes the org explicitly and a store must enforce it in
its own queries. Methods are async; a store backed by a blocking driver runs it in threads.

Dedup is the one rule that needs the store's help to be atomic: the engine computes each
memory's key and the window, and :meth:`Store.insert_memories` must check-and-insert inside one
transaction (serialised against other writers, including other processes on the same database)
so that no two memories with the same key land within the window.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..models import Agent, Memory, Session


@dataclass(slots=True)
class MemoryRecord:
    """A validated memory ready to be stored (times in microseconds since the epoch, UTC)."""

    id: str
    org_id: str
    agent_id: str
    session_id: str | None
    memory_type: str
    event_type: str
    content: str
    metadata: dict[str, Any] | None
    tags: list[str] | None
    dedup_key: str | None
    importance: float | None
    parent_id: str | None
    time: int
    recorded_at: int


@dataclass(frozen=True, slots=True)
class MemoryFilter:
    """Resolved filters. ``None`` means "no constraint". ``agent_ids`` matches any of the given
    values (an agent's id and its name); ``tags`` must all be present (exact match);
    ``since`` is inclusive and ``until`` exclusive (microseconds); ``content_contains`` is a
    case-insensitive substring."""

    agent_ids: tuple[str, ...] | None = None
    session_id: str | None = None
    memory_types: tuple[str, ...] | None = None
    event_types: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    since: int | None = None
    until: int | None = None
    min_importance: float | None = None
    content_contains: str | None = None
    ids: tuple[str, ...] | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    """Per-record result of :meth:`Store.insert_memories`: inserted, or the id it duplicates."""

    inserted: bool
    duplicate_of: str | None = None


@dataclass(slots=True)
class Candidate:
    """A keyword-search candidate: the memory plus the store's native relevance score
    (FTS5 ``bm25()``: lower is better). Only used to choose candidates; the engine computes
    the final ranking itself so that it is the same on every store."""

    memory: Memory
    native_score: float


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    """Stage-1 keyword retrieval: memories matching ANY of ``terms`` (each a word; the store
    applies its own stemming), best ``limit`` by the store's BM25 with the given field weights.

    ``groups`` are the query's own words, each with its variants. With ``recent_first`` (the
    engine sets it when the terms match too many memories for exact BM25) the store returns
    the newest memories matching every group, then the newest matching any term (stage 2
    re-ranks either way)."""

    terms: tuple[str, ...]
    limit: int
    field_weights: dict[str, float] = field(default_factory=dict)
    groups: tuple[tuple[str, ...], ...] = ()
    recent_first: bool = False


@dataclass(slots=True)
class StatsRow:
    memory_count: int = 0
    memories_24h: int = 0
    errors_24h: int = 0
    memory_types: dict[str, int] = field(default_factory=dict)
    last_memory_at: int | None = None


@runtime_checkable
class Store(Protocol):
    """An async storage backend. Implementations register a URL scheme through the
    ``register_stores`` plugin hook.

    Unreadable rows (invalid JSON, an unrepresentable time, a wrong type: old data, a manual
    edit, a bug) never fail a list or search: the store skips them, logs them (logger
    ``memtrace.store``, with org and id) and counts them in an ``unreadable_rows`` attribute
    (the server's ``memtrace_unreadable_rows_total``). Reading one such row by id, and the
    ``strict`` reads of an export (``iter_memories``, ``strict=True``), raise
    :class:`~memtrace_core.errors.CorruptRowError` naming it instead."""

    async def open(self) -> None:
        """Connect / create / migrate. Called once before use."""

    async def close(self) -> None:
        """Release every resource; pending writes are committed first."""

    # -- memories -----------------------------------------------------------------------------
    async def insert_memories(
        self,
        records: Sequence[MemoryRecord],
        *,
        dedup_since: int | None,
    ) -> list[InsertOutcome]:
        """Insert atomically-deduplicated memories, all in one org.

        A record whose ``dedup_key`` is set is skipped (``InsertOutcome(False, existing_id)``) if a
        memory of the same org with that key has ``recorded_at >= dedup_since``, including one
        inserted earlier in the same call. ``dedup_since=None`` disables the check. Records are
        acknowledged only once committed."""
        ...

    async def import_memories(self, records: Sequence[MemoryRecord]) -> int:
        """Insert records (all of one org) keeping their ids; a record whose id already exists in
        that org is skipped (ids are unique per org). Returns the number inserted."""
        ...

    async def get_memory(self, org_id: str, memory_id: str) -> Memory | None: ...

    async def list_memories(
        self, org_id: str, flt: MemoryFilter, *, limit: int, offset: int, order: str
    ) -> list[Memory]:
        """Memories matching ``flt`` ordered by (time, id) in ``order``; returns at most ``limit``."""
        ...

    async def keyword_candidates(
        self, org_id: str, flt: MemoryFilter, query: KeywordQuery
    ) -> list[Candidate]: ...

    async def count_keyword_matches(
        self, org_id: str, flt: MemoryFilter, terms: tuple[str, ...], cap: int
    ) -> int:
        """How many memories of ``org_id`` that match ``flt`` also match any of ``terms``,
        counting no further than ``cap``. The engine picks its search path from it, so it must
        be exact for the org and the filters: a count that included another org's memories
        would let that org change (and observe through) this org's results."""
        ...

    async def count_memories(self, org_id: str, flt: MemoryFilter) -> int: ...

    async def delete_memories(self, org_id: str, flt: MemoryFilter) -> int:
        """Delete every memory matching ``flt`` (from every index). Returns the count."""
        ...

    async def memory_stats(
        self, org_id: str, agent_ids: tuple[str, ...], since_24h: int
    ) -> StatsRow: ...

    def iter_memories(
        self, org_id: str, flt: MemoryFilter, *, batch: int = 1000
    ) -> AsyncIterator[list[Memory]]:
        """Every matching memory in (time, id) order, in batches (for export). Never skips: an
        unreadable row raises CorruptRowError."""
        ...

    # -- agents -------------------------------------------------------------------------------
    async def create_agent(self, agent: Agent) -> None:
        """Raise ConflictError if the org already has an agent with that name."""
        ...

    async def get_agent(self, org_id: str, id_or_name: str) -> Agent | None: ...

    async def list_agents(self, org_id: str, *, strict: bool = False) -> list[Agent]:
        """The org's agents, newest first; ``strict``: raise on an unreadable row, not skip."""
        ...

    async def delete_agent(self, org_id: str, agent_id: str) -> bool: ...

    # -- sessions -----------------------------------------------------------------------------
    async def create_session(self, session: Session) -> None: ...

    async def get_session(self, org_id: str, session_id: str) -> Session | None: ...

    async def list_sessions(
        self,
        org_id: str,
        *,
        agent_ids: tuple[str, ...] | None,
        status: str | None,
        limit: int,
        offset: int,
        strict: bool = False,
    ) -> list[Session]:
        """Sessions, newest first; ``strict``: raise on an unreadable row instead of skipping."""
        ...

    async def update_session(
        self, org_id: str, session_id: str, change: Callable[[Session], Session]
    ) -> Session | None:
        """Atomically read the session, apply ``change`` (the engine's rule: status, timestamps,
        metadata merge) and store the result, serialised against other writers so that two
        concurrent updates never lose one another. Returns None if the session does not exist;
        an exception raised by ``change`` aborts the update."""
        ...

    async def delete_session(self, org_id: str, session_id: str) -> bool: ...

    async def count_sessions(self, org_id: str, agent_ids: tuple[str, ...]) -> tuple[int, int]:
        """(all sessions, active sessions) of the given agent aliases."""
        ...

    # -- orgs ---------------------------------------------------------------------------------
    async def purge_org(self, org_id: str) -> int:
        """Delete every memory, agent and session of the org. Returns the memories deleted."""
        ...
