"""Data models (pydantic v2): what the engine accepts and returns, and what travels on the wire.

Field names follow the original Memtrace API and the published ``memtrace-sdk`` so that JSON
produced here validates against the SDK's models; additions (``id``, ``recorded_at``, ``score``,
``has_more`` on search …) are extra fields that older clients ignore.

Validation of user input happens in :mod:`memtrace_core.validation`, which turns every problem
into a single :class:`~memtrace_core.errors.ValidationError` carrying the field and, for batches,
the item index.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

MemoryType = Literal["episodic", "session", "decision", "entity"]
MEMORY_TYPES: tuple[MemoryType, ...] = ("episodic", "session", "decision", "entity")
SessionStatus = Literal["active", "closed"]
SESSION_STATUSES: tuple[str, ...] = ("active", "closed")
Order = Literal["asc", "desc"]

#: ``agent_id`` / ``session_id``: starts with a letter, then letters, digits, ``_`` or ``-``; ≤ 128.
ID_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,127}$")
#: ``event_type`` (and memory type filters): starts with a letter, then letters, digits, ``_``; ≤ 64.
TYPE_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")
#: tags: letters, digits, ``_``, ``.``, ``-``; 1..64 characters.
TAG_PATTERN = re.compile(r"^[a-zA-Z0-9_.\-]{1,64}$")

ID_FORMAT_MSG = "invalid ID format: must be alphanumeric with underscores/hyphens, max 128 chars"
TYPE_FORMAT_MSG = "invalid type format: must be alphanumeric with underscores, max 64 chars"
TAG_FORMAT_MSG = (
    "invalid tag format: must be alphanumeric with underscores/hyphens/dots, max 64 chars"
)


def _split_csv(value: Any) -> Any:
    """Accept ``"a,b"`` as well as ``["a", "b"]`` for list filters (query strings use CSV)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str] | None, BeforeValidator(_split_csv)]


def _not_bool(value: Any) -> Any:
    """``true`` is not a number: pydantic's lax mode would read it as 1.0."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


#: A number field that refuses booleans.
Number = Annotated[float | None, BeforeValidator(_not_bool)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------------------------
# Memories


class Memory(_Model):
    """One memory: something an agent did, saw, decided or learned, at a point in time.

    ``time`` is the event time (clients may set it, e.g. for imports and backfills) and
    ``recorded_at`` is when memtrace stored it. ``score`` is set only on keyword search results.
    """

    id: str
    time: datetime
    recorded_at: datetime
    org_id: str
    agent_id: str
    session_id: str | None = None
    memory_type: MemoryType
    event_type: str = "general"
    content: str
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    dedup_key: str | None = None
    importance: float | None = None
    parent_id: str | None = None
    score: float | None = None


_MEMORY_FIELDS: frozenset[str] = frozenset(Memory.model_fields)


def trusted_memory(values: dict[str, Any]) -> Memory:
    """A :class:`Memory` from already-validated values (a stored row), without validation.

    What ``Memory.model_construct`` does for this model (no extras, no private attributes),
    minus its per-field bookkeeping: ~2x faster, which matters when a recall turns 100 rows into
    models. ``values`` must hold every field of :class:`Memory`."""
    memory = Memory.__new__(Memory)
    object.__setattr__(memory, "__dict__", values)
    object.__setattr__(memory, "__pydantic_fields_set__", set(_MEMORY_FIELDS))
    object.__setattr__(memory, "__pydantic_extra__", None)
    object.__setattr__(memory, "__pydantic_private__", None)
    return memory


class MemoryCreate(_Model):
    """A memory to write (the SDK's ``AddMemoryRequest``). Only ``agent_id`` and ``content`` are
    required. ``time`` defaults to now; ``dedup_key`` defaults to the original's content hash."""

    agent_id: str
    content: str
    memory_type: MemoryType = "episodic"
    event_type: str = "general"
    session_id: str | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    importance: Number = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    dedup_key: str | None = None
    parent_id: str | None = None
    time: datetime | None = None

    @field_validator("memory_type", "event_type", mode="before")
    @classmethod
    def _empty_means_default(cls, value: Any, info: Any) -> Any:
        if value is None or value == "":
            return "episodic" if info.field_name == "memory_type" else "general"
        return value


AddMemoryRequest = MemoryCreate


class MemoryList(_Model):
    """A page of memories. ``has_more`` is exact: true only if another page has rows."""

    memories: list[Memory]
    count: int
    has_more: bool


class SearchResult(_Model):
    """Search results (best first for keyword queries, by time otherwise)."""

    results: list[Memory]
    count: int
    query_time_ms: int
    has_more: bool = False


class ListOptions(_Model):
    """Filters for listing memories (the SDK's ``ListOptions``). ``tags`` may be a list or a
    comma-separated string; every tag must match exactly (AND)."""

    agent_id: str | None = None
    session_id: str | None = None
    memory_type: str | None = None
    event_type: str | None = None
    tags: CsvList = None
    since: str | datetime | None = None
    until: str | datetime | None = None
    limit: int | None = None
    offset: int | None = None
    order: str | None = None


class SearchQuery(_Model):
    """Structured and keyword search (the SDK's ``SearchQuery`` plus ``query``, ``until``,
    ``offset``). ``query`` ranks by keyword relevance; without it results are ordered by time."""

    agent_id: str | None = None
    session_id: str | None = None
    memory_types: CsvList = None
    event_types: CsvList = None
    tags: CsvList = None
    content_contains: str | None = None
    query: str | None = None
    since: str | datetime | None = None
    until: str | datetime | None = None
    min_importance: Number = None
    limit: int | None = None
    offset: int | None = None
    order: str | None = None


class DeleteFilter(_Model):
    """Which memories :meth:`AsyncMemtrace.delete_memories` removes. At least one criterion is
    required; ``all_memories=True`` purges every memory of the org."""

    agent_id: str | None = None
    session_id: str | None = None
    tags: CsvList = None
    memory_types: CsvList = None
    event_types: CsvList = None
    since: str | datetime | None = None
    until: str | datetime | None = None
    all_memories: bool = False


class DeleteResult(_Model):
    deleted: int


class BatchResult(_Model):
    """Outcome of a batch write: the accepted memories, in input order, and what was skipped."""

    memories: list[Memory]
    count: int
    duplicates: int = 0
    duplicate_of: list[DuplicateInfo] = Field(default_factory=list)


class DuplicateInfo(_Model):
    index: int
    existing_id: str | None
    dedup_key: str


class ImportResult(_Model):
    imported: int = 0
    skipped: int = 0
    agents: int = 0
    sessions: int = 0


# --------------------------------------------------------------------------------------------
# Agents


class Agent(_Model):
    id: str
    org_id: str
    name: str
    description: str | None = None
    config: dict[str, Any] | None = None
    created_at: datetime
    last_active_at: datetime | None = None


class RegisterAgentRequest(_Model):
    name: str
    description: str | None = None
    config: dict[str, Any] | None = None


class AgentList(_Model):
    agents: list[Agent]
    count: int


class AgentStats(_Model):
    agent_id: str
    memory_count: int
    memories_24h: int
    errors_24h: int
    session_count: int
    active_sessions: int
    last_active_at: datetime | None = None
    memory_types: dict[str, int]


# --------------------------------------------------------------------------------------------
# Sessions


class Session(_Model):
    id: str
    org_id: str
    agent_id: str
    status: str
    metadata: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


class CreateSessionRequest(_Model):
    agent_id: str
    metadata: dict[str, Any] | None = None


class UpdateSessionRequest(_Model):
    """``status`` is ``active`` or ``closed``. ``metadata`` is merged into the stored metadata
    (JSON merge patch, RFC 7386: a key set to null is removed); ``replace_metadata=True``
    replaces it instead."""

    status: str | None = None
    metadata: dict[str, Any] | None = None
    replace_metadata: bool = False


class SessionList(_Model):
    sessions: list[Session]
    count: int
    has_more: bool = False


class ContextOptions(_Model):
    """Options of :meth:`AsyncMemtrace.get_session_context`.

    ``since`` defaults to ``24h`` (as the original); ``max_tokens`` is a hard budget (estimated
    as ⌈characters / 4⌉, newest memories kept first); ``format`` names a registered context
    format (``markdown`` by default, ``xml`` and ``jsonl`` built in)."""

    max_tokens: int | None = None
    include_types: CsvList = None
    since: str | datetime | None = None
    format: str | None = None
    limit: int | None = None


class SessionContext(_Model):
    session_id: str
    context: str
    memory_count: int
    format: str = "markdown"
    token_estimate: int = 0


class AgentContext(_Model):
    agent_id: str
    context: str
    memory_count: int
    format: str = "markdown"
    token_estimate: int = 0


BatchResult.model_rebuild()
