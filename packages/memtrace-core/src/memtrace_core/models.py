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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from .ids import MEMORY_ID_RE

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

#: The original's wording, then what it left out (an id must start with a letter).
ID_FORMAT_MSG = (
    "invalid ID format: must be alphanumeric with underscores/hyphens, max 128 chars, "
    "starting with a letter"
)
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


def _event_time(value: Any) -> Any:
    """``time`` takes what ``since`` takes: an ISO 8601 timestamp (naive = UTC) or a relative
    duration meaning that long ago (``"30m"``), with the same helpful error."""
    if isinstance(value, str):
        from .errors import ValidationError
        from .timeutil import from_us, parse_time_bound

        try:
            us = parse_time_bound(value, field="time")
        except ValidationError as exc:
            raise ValueError(exc.message.removeprefix("invalid time ")) from None
        return None if us is None else from_us(us)
    return value


#: An event time (see :func:`_event_time`).
EventTime = Annotated[datetime | None, BeforeValidator(_event_time)]

#: A number field that refuses booleans.
Number = Annotated[float | None, BeforeValidator(_not_bool)]


def _doc(**schema: Any) -> Any:
    """A field's JSON-schema constraints, for the OpenAPI document only: the engine enforces
    them itself, with the original's error messages (pydantic would word them its own way).
    The values are the defaults of ``[limits]``."""
    return Field(default=None, json_schema_extra=schema)


_ID: dict[str, Any] = {"pattern": ID_PATTERN.pattern, "maxLength": 128}
_TYPE: dict[str, Any] = {"pattern": TYPE_PATTERN.pattern, "maxLength": 64}
_TAGS: dict[str, Any] = {
    "items": {"type": "string", "pattern": TAG_PATTERN.pattern},
    "maxItems": 32,
}
#: ``since`` / ``until``: a duration (``30m``), ``now`` or an RFC 3339 timestamp.
_TIME: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^[1-9][0-9]{0,5}[smhdw]$"},
        {"type": "string", "enum": ["now"]},
        {"type": "string", "format": "date-time"},
        {"type": "null"},
    ]
}
#: A namespace: 1..16 non-empty parts of at most 256 characters (no NUL).
_NAMESPACE: dict[str, Any] = {
    "items": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\x00]+$"},
    "minItems": 1,
    "maxItems": 16,
}
_NAMESPACE_PREFIX: dict[str, Any] = {**_NAMESPACE, "minItems": 0}
#: ``as_of``: what memtrace knew then (a bound on ``recorded_at``); not in the future.
_AS_OF: dict[str, Any] = {
    **_TIME,
    "description": "read as of this recorded time (a duration ago, or RFC 3339): later "
    "memories are invisible and later supersessions undone; relative windows count back "
    "from it; not in the future",
}
_INCLUDE_SUPERSEDED = "also return memories a later memory superseded (marked by superseded_by)"
_METADATA_FILTER = (
    'conditions on metadata values: {"k": v} (equal; a nested object matches its keys '
    'recursively, a list element-wise), or {"k": {"$op": v}} with $eq $ne $gt $gte $lt $lte '
    "(the comparisons are numeric), $in / $nin (a non-empty list of scalars: equal to one of "
    "them / to none; null matches a null or absent value); every condition must hold"
)
_MEMORY_TYPE_ITEMS: dict[str, Any] = {
    "items": {"enum": ["episodic", "session", "decision", "entity"]}
}


class _Model(BaseModel):
    """What memtrace returns: unknown fields are ignored, so that a client keeps reading the
    answers of a newer server."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Request(BaseModel):
    """What memtrace is asked: a field it does not know is an error naming the field (a
    misspelt ``sesion_id`` must not be silently dropped)."""

    # NaN and infinity are kept as such when dumped (not turned into null), so that a client
    # refuses them instead of sending a different value (JSON cannot carry them)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, ser_json_inf_nan="constants")


# --------------------------------------------------------------------------------------------
# Memories


class Memory(_Model):
    """One memory: something an agent did, saw, decided or learned, at a point in time.

    ``time`` is the event time (clients may set it, e.g. for imports and backfills) and
    ``recorded_at`` is when memtrace stored it. ``score`` is set only on keyword search results.

    Time (docs/time.md): ``expires_at`` is when the memory stops being readable (set from
    ``ttl`` or ``expires_at`` on write); ``supersedes`` names the memory this one replaced;
    ``superseded_by`` / ``superseded_at`` are set on a memory that a later one replaced (only
    shown with ``include_superseded``, or by get-by-id).
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
    expires_at: datetime | None = None
    supersedes: str | None = None
    superseded_by: str | None = None
    superseded_at: datetime | None = None
    namespace: list[str] | None = None
    key: str | None = None
    key_created_at: datetime | None = Field(
        default=None,
        description=(
            "set on a memory with a key: the event time of the first version of that key "
            "(a keyed write supersedes the key's current memory and keeps this time; after a "
            "delete the key starts again)"
        ),
    )
    payload: Any = Field(
        default=None,
        description="the caller's JSON value, returned verbatim (not indexed nor searched)",
    )


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


class MemoryCreate(_Request):
    """A memory to write (the SDK's ``AddMemoryRequest``). Only ``agent_id`` and ``content`` are
    required. ``time`` defaults to now; ``dedup_key`` defaults to the original's content hash."""

    agent_id: str = Field(json_schema_extra=_ID)
    content: str = Field(
        # 16,384 characters always fit 64 KiB of UTF-8; the engine counts the bytes
        json_schema_extra={"minLength": 1, "maxLength": 16384, "pattern": r"^[^\x00]*\S[^\x00]*$"},
        description="at most 64 KiB as UTF-8; not only whitespace; no NUL",
    )
    memory_type: MemoryType = "episodic"
    event_type: str = Field(default="general", json_schema_extra=_TYPE)
    session_id: str | None = _doc(**_ID)
    metadata: dict[str, Any] | None = _doc(description="a JSON object, ≤ 16 KiB, ≤ 32 levels")
    tags: list[str] | None = _doc(**_TAGS)
    importance: Number = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    dedup_key: str | None = _doc(pattern=r"^[ -~]{0,256}$")
    parent_id: str | None = _doc(pattern=r"^[ -~]{0,128}$")
    time: EventTime = _doc(
        description="RFC 3339 (naive = UTC) or a duration ago (30m); at most 5 minutes ahead"
    )
    supersedes: str | None = _doc(
        pattern=MEMORY_ID_RE.pattern,
        description="id of the current memory this one replaces (same org); it is then hidden "
        "from reads by default",
    )
    ttl: int | float | str | None = _doc(
        description="time to live: seconds (> 0) or a duration such as 30m, 12h, 7d; the memory "
        "expires that long after it is written",
        anyOf=[
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "string", "pattern": r"^[1-9][0-9]{0,8}[smhdw]$"},
            {"type": "null"},
        ],
    )
    expires_at: datetime | None = _doc(
        description="RFC 3339 (naive = UTC): when the memory expires; in the future; not with ttl"
    )
    namespace: list[str] | None = _doc(
        **_NAMESPACE, description='a hierarchical scope, e.g. ["users", "u42", "prefs"]'
    )
    key: str | None = _doc(
        pattern=r"^[^\x00]{1,512}$",
        description="a caller-chosen key, unique among the current memories of its namespace: "
        "a write with the key of a current memory supersedes it",
    )
    payload: Any = Field(
        default=None,
        description="any JSON value (object, array, string, number, boolean; null: none), "
        "stored and returned verbatim; not indexed, not searched, not part of the dedup key; "
        "≤ 3 MiB as compact JSON, ≤ 128 levels",
    )
    dedup: StrictBool | None = _doc(
        description="false: never deduplicated (no dedup key is stored or checked; not with "
        "dedup_key)"
    )

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl_not_bool(cls, value: Any) -> Any:
        return _not_bool(value)

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
    comma-separated string; every tag must match exactly (AND); ``tags_any``: at least one.

    Unknown keys are ignored here (not refused): these come from query strings, to which the
    original's clients send options that some routes do not use. The library methods refuse
    unknown keyword arguments themselves."""

    agent_id: str | None = None
    session_id: str | None = None
    memory_type: str | None = None
    event_type: str | None = None
    tags: CsvList = None
    tags_any: CsvList = None
    since: str | datetime | None = None
    until: str | datetime | None = None
    limit: int | None = None
    offset: int | None = None
    order: str | None = None
    recorded_since: str | datetime | None = None
    recorded_until: str | datetime | None = None
    as_of: str | datetime | None = None
    include_superseded: bool | None = None


#: ``ids``: at most this many memory ids; ``keys``: at most this many keys.
MAX_FILTER_IDS = 1000
_IDS: dict[str, Any] = {
    "items": {"type": "string", "pattern": MEMORY_ID_RE.pattern},
    "maxItems": MAX_FILTER_IDS,
    "description": "one of these memory ids",
}
_KEYS: dict[str, Any] = {
    "items": {"type": "string", "minLength": 1, "maxLength": 512},
    "maxItems": MAX_FILTER_IDS,
    "description": "its key is one of these (see MemoryCreate.key)",
}
_TAGS_ANY: dict[str, Any] = {
    **_TAGS,
    "description": "at least one of these tags (exact); with `tags`, both must hold",
}


class _MemoryFilters(_Request):
    """The filters of a search, shared by :class:`SearchQuery` and :class:`SummaryQuery`."""

    agent_id: str | None = _doc(**_ID)
    session_id: str | None = _doc(**_ID)
    memory_types: CsvList = _doc(**_MEMORY_TYPE_ITEMS, maxItems=64)
    event_types: CsvList = _doc(items=_TYPE, maxItems=64)
    tags: CsvList = _doc(**_TAGS)
    tags_any: CsvList = _doc(**_TAGS_ANY)
    content_contains: str | None = _doc(maxLength=2000)
    since: str | datetime | None = _doc(**_TIME)
    until: str | datetime | None = _doc(**_TIME)
    min_importance: Number = _doc(minimum=0, maximum=1)
    recorded_since: str | datetime | None = _doc(**_TIME)
    recorded_until: str | datetime | None = _doc(**_TIME)
    as_of: str | datetime | None = _doc(**_AS_OF)
    include_superseded: bool | None = _doc(description=_INCLUDE_SUPERSEDED)
    namespace: list[str] | None = _doc(**_NAMESPACE, description="exactly this namespace")
    namespace_prefix: list[str] | None = _doc(
        **_NAMESPACE_PREFIX, description="this namespace or any below it ([]: any namespace)"
    )
    key: str | None = _doc(description="the memory with this key (see MemoryCreate.key)")
    keys: list[str] | None = _doc(**_KEYS)
    ids: CsvList = _doc(**_IDS)
    metadata: dict[str, Any] | None = _doc(description=_METADATA_FILTER)


class WatchOptions(_Request):
    """Filters of the live feed (:meth:`~memtrace_core.engine.AsyncMemtrace.watch` and
    ``GET /api/v1/memories/stream``): each new memory matching all of them. ``after``: a
    position (an event's ``id``) to resume just past; none, only memories committed from now
    on."""

    agent_id: str | None = _doc(description="agent id or name (a registered agent matches both)")
    session_id: str | None = None
    memory_types: CsvList = _doc(**_MEMORY_TYPE_ITEMS, maxItems=64)
    event_types: CsvList = _doc(items=_TYPE, maxItems=64)
    tags: CsvList = _doc(**_TAGS)
    tags_any: CsvList = _doc(**_TAGS_ANY)
    after: str | None = _doc(maxLength=64, description="resume just past this position")


class StreamEvent(_Model):
    """One memory of the live feed and its position in the store's commit order (pass it as
    ``after``, or as the stream's ``Last-Event-ID``, to resume just past it)."""

    position: str
    memory: Memory


class SearchQuery(_MemoryFilters):
    """Structured and keyword search (the SDK's ``SearchQuery`` plus ``query``, ``until``,
    ``offset``). ``query`` ranks by keyword relevance; without it results are ordered by time."""

    query: str | None = _doc(maxLength=2000)
    limit: int | None = _doc(minimum=1, description="default 50; capped at 1000, not refused")
    offset: int | None = _doc(minimum=0, description="with `query`: offset + limit ≤ 1000")
    order: str | None = _doc(enum=["asc", "desc"])


class SummaryQuery(_MemoryFilters):
    """The filters of :meth:`AsyncMemtrace.summarize_memories` (``POST
    /api/v1/memories/summary``): those of a search, without ranking or paging."""

    tag_limit: StrictInt | None = _doc(
        minimum=1, maximum=1000, description="how many of the most frequent tags (default 100)"
    )


class MemorySummary(_Model):
    """What the memories matching a filter add up to (:meth:`AsyncMemtrace.summarize_memories`):
    how many, the oldest and newest event ``time`` (null when none matches), and the most
    frequent tags with the number of matching memories carrying each (the most frequent first,
    ties by name); ``tags_truncated``: more distinct tags than ``tag_limit`` were found."""

    count: int
    oldest: datetime | None = None
    newest: datetime | None = None
    tags: dict[str, int] = Field(default_factory=dict)
    tags_truncated: bool = False


def _bucket_value(value: Any) -> Any:
    """``bucket``: a duration string or whole seconds (``true`` is not 1 second)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
        raise ValueError("expected a duration such as 15m, 1h or 1d, or a number of seconds")
    return value


class ActivityQuery(_Request):
    """The window and filters of :meth:`AsyncMemtrace.get_activity` (``GET
    /api/v1/activity``): memories counted per ``bucket`` of event time from ``since``
    (default: 24 hours before ``until``) to ``until`` (default: now), of the current,
    unexpired memories matching the filters, as known at ``as_of`` when given."""

    since: str | datetime | None = _doc(
        **_TIME, description="inclusive; rounded down to a bucket start; default 24h before until"
    )
    until: str | datetime | None = _doc(**_TIME, description="exclusive; default now")
    bucket: Annotated[str | int | None, BeforeValidator(_bucket_value)] = _doc(
        description="the bucket's length: a duration (1m, 5m, 15m, 1h, 6h, 1d, 1w; at least "
        "1m) or whole seconds (at least 60); default 1h; at most 1000 buckets",
        anyOf=[
            {"type": "string", "pattern": r"^[1-9][0-9]{0,8}[smhdw]$"},
            {"type": "integer", "minimum": 60},
            {"type": "null"},
        ],
    )
    agent_id: str | None = _doc(**_ID, description="agent id or name")
    session_id: str | None = _doc(**_ID)
    memory_types: CsvList = _doc(**_MEMORY_TYPE_ITEMS, maxItems=64)
    event_types: CsvList = _doc(items=_TYPE, maxItems=64)
    tags: CsvList = _doc(**_TAGS)
    tags_any: CsvList = _doc(**_TAGS_ANY)
    as_of: str | datetime | None = _doc(**_AS_OF)


class ActivityBucket(_Model):
    """One bucket of :class:`Activity`: memories with ``start <= time < start + bucket``
    (the last bucket ends at ``until``), how many were errors, and the count of each memory
    type (types with none are left out)."""

    start: datetime
    count: int
    errors: int
    by_type: dict[str, int] = Field(default_factory=dict)


class Activity(_Model):
    """Memories per time bucket (:meth:`AsyncMemtrace.get_activity`): ``buckets`` cover
    ``since`` (a bucket start) to ``until`` without gaps, oldest first, empty ones included;
    ``total``, ``errors`` and ``by_type`` add them up. An error is a memory whose
    ``event_type`` is ``error`` (as in agent stats)."""

    since: datetime
    until: datetime
    bucket_seconds: int
    total: int
    errors: int
    by_type: dict[str, int] = Field(default_factory=dict)
    buckets: list[ActivityBucket]


class DeleteFilter(_Request):
    """Which memories :meth:`AsyncMemtrace.delete_memories` removes. At least one criterion is
    required; ``all_memories=True`` purges every memory of the org. ``all_versions=True``
    (deletes only; a pop or an export refuses it) also deletes every other version of each
    matched memory: its whole supersession chain, older and newer versions alike, whatever
    their namespace, tags or time. Without it, deleting the current version makes the one it
    superseded current again (docs/time.md)."""

    agent_id: str | None = _doc(**_ID)
    session_id: str | None = _doc(**_ID)
    tags: CsvList = _doc(**_TAGS)
    memory_types: CsvList = _doc(**_MEMORY_TYPE_ITEMS, maxItems=64)
    event_types: CsvList = _doc(items=_TYPE, maxItems=64)
    since: str | datetime | None = _doc(**_TIME)
    until: str | datetime | None = _doc(**_TIME)
    recorded_since: str | datetime | None = _doc(**_TIME)
    recorded_until: str | datetime | None = _doc(**_TIME)
    namespace: list[str] | None = _doc(**_NAMESPACE)
    namespace_prefix: list[str] | None = _doc(
        **_NAMESPACE_PREFIX, description="this namespace or any below it ([]: any namespace)"
    )
    key: str | None = _doc(description="every version of the memory with this key")
    tags_any: CsvList = _doc(**_TAGS_ANY)
    ids: CsvList = _doc(**_IDS)
    keys: list[str] | None = _doc(**_KEYS)
    metadata: dict[str, Any] | None = _doc(description=_METADATA_FILTER)
    all_memories: StrictBool = False  # destructive: true only, never "yes" or 1
    all_versions: StrictBool = Field(
        default=False,
        description="deletes only: also delete every other version of each matched memory (its "
        "whole supersession chain, older and newer, whatever its namespace, tags or time), so "
        "that no earlier version becomes current again",
    )


class DeleteResult(_Model):
    deleted: int


class PopResult(_Model):
    """What :meth:`AsyncMemtrace.pop_memory` removed (``POST /api/v1/memories/pop``): the
    newest current memory matching the filter, or null when none does."""

    memory: Memory | None = None


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
    """What an import did. ``skipped``: memories whose id the org already had; ``expired``:
    memories whose ``expires_at`` had passed (not imported); ``unlinked``: memories whose
    ``supersedes`` named a memory neither in the file nor in the org (imported as current,
    without the link: export the whole org to keep every link)."""

    imported: int = 0
    skipped: int = 0
    agents: int = 0
    sessions: int = 0
    expired: int = 0
    unlinked: int = 0


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


class RegisterAgentRequest(_Request):
    name: str = Field(json_schema_extra={"pattern": r"^[!-~]([ -~]{0,126}[!-~])?$"})
    description: str | None = _doc(pattern=r"^[^\x00]{0,4096}$")
    config: dict[str, Any] | None = _doc(description="a JSON object, ≤ 16 KiB, ≤ 32 levels")


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


class CreateSessionRequest(_Request):
    agent_id: str = Field(json_schema_extra=_ID)
    metadata: dict[str, Any] | None = None


class UpdateSessionRequest(_Request):
    """``status`` is ``active`` or ``closed``. ``metadata`` is merged into the stored metadata
    (JSON merge patch, RFC 7386: a key set to null is removed); ``replace_metadata=True``
    replaces it instead."""

    status: str | None = _doc(enum=["active", "closed"])
    metadata: dict[str, Any] | None = None
    replace_metadata: bool = False


class SessionList(_Model):
    sessions: list[Session]
    count: int
    has_more: bool = False


class ContextOptions(_Request):
    """Options of :meth:`AsyncMemtrace.get_session_context`.

    ``since`` defaults to ``24h`` (as the original); ``max_tokens`` is a hard budget (estimated
    as ⌈characters / 4⌉, newest memories kept first); ``format`` names a registered context
    format (``markdown`` by default, ``xml`` and ``jsonl`` built in)."""

    max_tokens: int | None = _doc(minimum=1)
    include_types: CsvList = _doc(**_MEMORY_TYPE_ITEMS, maxItems=64)
    since: str | datetime | None = _doc(**_TIME)
    format: str | None = _doc(description="a registered context format: markdown, xml, jsonl, …")
    limit: int | None = _doc(minimum=1, description="capped at 1000")
    recorded_since: str | datetime | None = _doc(**_TIME)
    recorded_until: str | datetime | None = _doc(**_TIME)
    as_of: str | datetime | None = _doc(**_AS_OF)


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


class KeyLookup(_Request):
    """The body of ``POST /api/v1/memories/by-key`` (:meth:`AsyncMemtrace.get_memory_by_key`)."""

    namespace: list[str] = Field(json_schema_extra=_NAMESPACE)
    key: str = Field(json_schema_extra={"minLength": 1, "maxLength": 512})
    as_of: str | datetime | None = _doc(**_AS_OF)


class NamespaceQuery(_Request):
    """The body of ``POST /api/v1/namespaces`` (:meth:`AsyncMemtrace.list_namespaces`):
    ``"*"`` in ``prefix`` / ``suffix`` matches any one part."""

    prefix: list[str] | None = _doc(**_NAMESPACE)
    suffix: list[str] | None = _doc(**_NAMESPACE)
    max_depth: int | None = _doc(minimum=1)
    limit: int | None = _doc(minimum=1, description="default 100, capped at 1000")
    offset: int | None = _doc(minimum=0)


class NamespaceList(_Model):
    """Distinct namespaces (see :meth:`AsyncMemtrace.list_namespaces`), sorted."""

    namespaces: list[list[str]]
    count: int


# --------------------------------------------------------------------------------------------
# Retention (docs/time.md)

#: A retention age: a duration (``7d``, ``12h``, ``2w``) or ``forever`` / null (kept forever).
_MAX_AGE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^[1-9][0-9]{0,8}[smhdw]$"},
        {"type": "string", "enum": ["forever"]},
        {"type": "null"},
    ]
}


class RetentionRule(_Request):
    """One rule of a retention policy: the memories it covers (every criterion given must
    match; ``agent_id`` is an agent's id or name) and how long they are kept, measured on the
    event ``time``. ``max_age`` null or ``"forever"`` keeps them forever."""

    agent_id: str | None = _doc(**_ID)
    memory_types: CsvList = _doc(**_MEMORY_TYPE_ITEMS, maxItems=64)
    event_types: CsvList = _doc(items=_TYPE, maxItems=64)
    max_age: str | None = _doc(**_MAX_AGE)


class RetentionPolicy(_Request):
    """How long an org keeps its memories. The first rule that covers a memory decides its
    age; a memory no rule covers is kept ``max_age`` (null or ``"forever"``: forever). The sweep
    deletes what is older; a write already older is refused."""

    max_age: str | None = _doc(**_MAX_AGE)
    rules: list[RetentionRule] = Field(default_factory=list, json_schema_extra={"maxItems": 64})


class RetentionInfo(_Model):
    """An org's effective retention policy and where it comes from: ``org`` (set for this org,
    stored in the store), ``default`` (memtrace.toml's ``[retention]``) or ``none`` (keep
    everything)."""

    org_id: str
    source: Literal["org", "default", "none"]
    policy: RetentionPolicy


class RetentionReport(_Model):
    """What a retention run deleted (or, with ``dry_run``, would delete)."""

    org_id: str
    dry_run: bool
    deleted: int


BatchResult.model_rebuild()
