"""The one table of operations (:data:`OPERATIONS`): from it the app registers its Sanic routes
(:mod:`memtrace_server.app`), :mod:`memtrace_server.openapi` builds the OpenAPI document, and
the MCP server will derive its tools, so none of them can drift from another.

Each :class:`Operation` names its HTTP method and path, the handler in
:mod:`memtrace_server.routes`, the permission it needs and its documentation. Imports go one
way: app / openapi → operations → routes → http, auth, state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, Field

from memtrace_core import (
    Activity,
    AgentContext,
    AgentList,
    AgentStats,
    BatchResult,
    ContextOptions,
    CreateSessionRequest,
    DeleteFilter,
    ImportResult,
    KeyLookup,
    ListOptions,
    Memory,
    MemoryCreate,
    MemoryList,
    MemorySummary,
    NamespaceList,
    NamespaceQuery,
    PopResult,
    RegisterAgentRequest,
    RetentionInfo,
    RetentionPolicy,
    RetentionReport,
    SearchQuery,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
    SummaryQuery,
    UpdateSessionRequest,
)
from memtrace_core.models import ID_PATTERN, TYPE_PATTERN, Agent

from .http import NDJSON
from .routes import (
    Handler,
    activity,
    admin_apply_retention,
    admin_clear_retention,
    admin_create_key,
    admin_create_org,
    admin_delete_org,
    admin_get_retention,
    admin_list_keys,
    admin_list_orgs,
    admin_revoke_key,
    admin_rotate_key,
    admin_set_retention,
    agent_context,
    agent_memories,
    agent_stats,
    apply_retention,
    clear_retention,
    create_memories,
    create_session,
    delete_agent,
    delete_memories,
    delete_memory,
    delete_session,
    docs_page,
    export,
    get_agent,
    get_memory,
    get_memory_by_key,
    get_retention,
    get_session,
    health,
    import_,
    list_agents,
    list_memories,
    list_namespaces,
    list_sessions,
    metrics,
    openapi_json,
    pop_memory,
    purge_org,
    ready,
    register_agent,
    search,
    session_context,
    session_memories,
    set_retention,
    stream_memories,
    summarize_memories,
    update_session,
    whoami,
)

# --------------------------------------------------------------------------------------------
# The operation type


@dataclass(frozen=True)
class Param:
    """A query parameter, with the constraints the engine enforces (for the document: generated
    clients and fuzzers then send what the server accepts)."""

    name: str
    type: str = "string"  # OpenAPI scalar type
    description: str = ""
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: int | None = None
    #: a time bound (``since`` / ``until``): a duration or an RFC 3339 timestamp
    time: bool = False


@dataclass(frozen=True)
class Operation:
    """One route: HTTP method and OpenAPI path (``{param}``), the handler, the permission it
    needs (``None`` = any valid key, ``""`` = public) and its documentation."""

    method: str
    path: str
    handler: Handler
    permission: str | None
    op_id: str
    summary: str
    tag: str
    status: int = 200
    body: type[BaseModel] | dict[str, Any] | None = None
    body_required: bool = True
    body_content_type: str = "application/json"
    query: tuple[Param, ...] = ()
    response: type[BaseModel] | dict[str, Any] | None = None
    response_content_type: str = "application/json"
    description: str = ""
    errors: tuple[int, ...] = field(default=(400,))
    #: OpenAPI links from the success response to operations that take its ids:
    #: (link name, operationId, {parameter: runtime expression}).
    links: tuple[tuple[str, str, dict[str, str]], ...] = ()
    #: Path parameters found by id *or name* (printable text) rather than by an id pattern.
    by_reference: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return self.permission == ""

    @property
    def sanic_path(self) -> str:
        return self.path.replace("{", "<").replace("}", ":str>")


# --------------------------------------------------------------------------------------------
# Schemas that are not models


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "field": {"type": "string"},
        "index": {"type": "integer"},
        "existing_id": {"type": "string"},
        "current_id": {"type": "string"},
        "dedup_key": {"type": "string"},
        "request_id": {"type": "string"},
        "hint": {"type": "string"},
    },
    "required": ["error"],
}


class DeleteResultBody(BaseModel):
    deleted: int


class Principal(BaseModel):
    org_id: str
    key_id: str | None = None
    key_name: str | None = None
    permissions: list[str]


class CreateMemoryBody(BaseModel):
    """Either one memory or ``{"memories": [...]}`` (a batch, written atomically)."""

    memories: list[MemoryCreate]


class CreateOrgBody(BaseModel):
    name: str = Field(json_schema_extra={"pattern": r"^[!-~]([ -~]{0,126}[!-~])?$"})


class CreateKeyBody(BaseModel):
    org_id: str | None = None
    """Default: the caller's org (an org admin can only name its own)."""
    name: str = Field(json_schema_extra={"pattern": r"^[!-~]([ -~]{0,126}[!-~])?$"})
    permissions: list[str] | str | None = None
    expires_at: str | None = None


# --------------------------------------------------------------------------------------------
# Memories


# --------------------------------------------------------------------------------------------
# The table


def _links(
    param: str, expression: str, *targets: str
) -> tuple[tuple[str, str, dict[str, str]], ...]:
    """Links from a create to the operations that take the created id as ``param``."""
    return tuple((target, target, {param: expression}) for target in targets)


_ID_RE = ID_PATTERN.pattern
_TYPE_RE = TYPE_PATTERN.pattern
_TAGS_RE = r"^[a-zA-Z0-9_.\-]{1,64}(,[a-zA-Z0-9_.\-]{1,64})*$"
_MEMORY_TYPES_RE = r"^(episodic|session|decision|entity)(,(episodic|session|decision|entity))*$"
_TYPES_RE = r"^[a-zA-Z][a-zA-Z0-9_]{0,63}(,[a-zA-Z][a-zA-Z0-9_]{0,63})*$"
_LIST_PARAMS = (
    Param(
        "agent_id",
        description="agent id or name (a registered agent matches both)",
        pattern=_ID_RE,
    ),
    Param("session_id", pattern=_ID_RE),
    Param("memory_type", enum=("episodic", "session", "decision", "entity")),
    Param("event_type", pattern=_TYPE_RE),
    Param("tags", description="comma-separated; every tag must match exactly", pattern=_TAGS_RE),
    Param(
        "tags_any",
        description="comma-separated; at least one of these tags (with `tags`: both hold)",
        pattern=_TAGS_RE,
    ),
    Param("since", description="relative (30m, 24h, 7d, 2w) or ISO 8601; inclusive", time=True),
    Param("until", description="relative or ISO 8601; exclusive; `now` = no bound", time=True),
    Param("limit", "integer", "page size, default 100, capped at 1000 (not refused)", minimum=1),
    Param("offset", "integer", "rows to skip, default 0", minimum=0),
    Param("order", enum=("asc", "desc"), description="by time; default desc"),
    Param("recorded_since", description="on recorded_at (when stored); inclusive", time=True),
    Param("recorded_until", description="on recorded_at; exclusive", time=True),
    _AS_OF_PARAM := Param(
        "as_of",
        description="read as memtrace knew it then (a recorded time, not in the future): "
        "later memories are invisible, later supersessions undone, relative windows count "
        "back from it",
        time=True,
    ),
    Param(
        "include_superseded",
        "boolean",
        "also list memories a later memory superseded (marked by superseded_by)",
    ),
)
_STREAM_PARAMS = (
    _LIST_PARAMS[0],
    Param("session_id", pattern=_ID_RE),
    Param("memory_types", description="comma-separated", pattern=_MEMORY_TYPES_RE),
    Param("event_types", description="comma-separated", pattern=_TYPES_RE),
    Param("tags", description="comma-separated; every tag must match exactly", pattern=_TAGS_RE),
    Param(
        "tags_any",
        description="comma-separated; at least one of these tags (with `tags`: both hold)",
        pattern=_TAGS_RE,
    ),
    Param(
        "after",
        description="a position (an event's id) to resume just past; the `Last-Event-ID` "
        "header wins over it; none: only memories committed from now on",
        pattern=r"^[!-~]{1,64}$",
    ),
)
#: The event format of ``GET /api/v1/memories/stream`` (its OpenAPI description).
STREAM_FORMAT = (
    "text/event-stream. First `retry: 2000` and a `ready` event whose id and data "
    '(`{"position": …}`) are the starting position; then, per memory, `id: <position>`, '
    "`event: memory`, `data: <the memory as JSON, as GET /api/v1/memories/{memory_id}>`; "
    "a comment line `: ping` every `server.stream_heartbeat_seconds` while idle; "
    '`event: error` with `data: {"error": …}` when the key is revoked, disabled or expired '
    "(the stream then ends)."
)
#: One event of the stream (OpenAPI describes an event stream by the schema of its events).
STREAM_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": STREAM_FORMAT,
    "properties": {
        "event": {"type": "string", "enum": ["ready", "memory", "error"]},
        "id": {"type": "string", "description": "the position (Last-Event-ID resumes here)"},
        "data": {"type": "string", "description": "JSON: the memory, or the position"},
        "retry": {"type": "integer"},
    },
}
_FILTER_PARAMS = (
    Param("agent_id", pattern=_ID_RE),
    Param("session_id", pattern=_ID_RE),
    Param("memory_types", description="comma-separated", pattern=_MEMORY_TYPES_RE),
    Param("event_types", description="comma-separated", pattern=_TYPES_RE),
    Param("tags", description="comma-separated; every tag must match exactly", pattern=_TAGS_RE),
    Param("tags_any", description="comma-separated; at least one of these tags", pattern=_TAGS_RE),
    Param("ids", description="comma-separated memory ids: one of these"),
    Param("since", time=True),
    Param("until", time=True),
    Param("recorded_since", time=True),
    Param("recorded_until", time=True),
)
_DELETE_PARAMS = (Param("delete_memories", "boolean", "also delete the memories"),)
_ACTIVITY_PARAMS = (
    Param(
        "since",
        description="inclusive, rounded down to a bucket start; relative (30m, 24h, 7d) or "
        "ISO 8601; default 24 hours before until",
        time=True,
    ),
    Param("until", description="exclusive; relative or ISO 8601; default now", time=True),
    Param(
        "bucket",
        description="bucket length: a duration (1m, 5m, 15m, 1h, 6h, 1d, 1w; at least 1m) or "
        "whole seconds (at least 60); default 1h; at most 1000 buckets in the window",
        pattern=r"^[0-9]{1,15}[smhdw]?$",
    ),
    Param("agent_id", description="agent id or name", pattern=_ID_RE),
    Param("session_id", pattern=_ID_RE),
    Param("memory_types", description="comma-separated", pattern=_MEMORY_TYPES_RE),
    Param("event_types", description="comma-separated", pattern=_TYPES_RE),
    Param("tags", description="comma-separated; every tag must match exactly", pattern=_TAGS_RE),
    Param("tags_any", description="comma-separated; at least one of these tags", pattern=_TAGS_RE),
    _AS_OF_PARAM,
)

_MEMORY_CREATE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"$ref": "#/components/schemas/MemoryCreate"},
        {"$ref": "#/components/schemas/CreateMemoryBody"},
    ]
}
_MEMORY_CREATED_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"$ref": "#/components/schemas/Memory"},
        {"$ref": "#/components/schemas/BatchResult"},
    ]
}
_KEY_SECRET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"key": {"type": "object"}, "api_key": {"type": "string"}},
    "required": ["key", "api_key"],
}

_DRY_RUN = Param("dry_run", "boolean", "count what would be deleted; delete nothing")
_RETENTION_DOC = (
    "The first rule that covers a memory (by agent, memory types, event types) decides how "
    "long it is kept, measured on its event `time`; a memory no rule covers is kept "
    "`max_age`. Null or `forever` keeps forever. It wins over the server's default "
    "(`[retention]`); the sweep deletes what is past its age, and a write already past it is "
    "a 400. Servers pick a change up within `policy_cache_seconds`."
)

#: Retention of the key's org; each has an admin twin for any administered org.
_RETENTION_OPS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/api/v1/retention",
        get_retention,
        "read",
        "getRetention",
        "The org's effective retention policy",
        "retention",
        response=RetentionInfo,
    ),
    Operation(
        "PUT",
        "/api/v1/retention",
        set_retention,
        "admin",
        "setRetention",
        "Set the org's retention policy",
        "retention",
        body=RetentionPolicy,
        response=RetentionInfo,
        errors=(400, 413),
        description=_RETENTION_DOC,
    ),
    Operation(
        "DELETE",
        "/api/v1/retention",
        clear_retention,
        "admin",
        "clearRetention",
        "Remove the org's own retention policy (the configured default applies)",
        "retention",
        response=RetentionInfo,
    ),
    Operation(
        "POST",
        "/api/v1/retention/apply",
        apply_retention,
        "admin",
        "applyRetention",
        "Delete the org's memories past their retention age now",
        "retention",
        query=(_DRY_RUN,),
        response=RetentionReport,
    ),
)


def _administered_op(op: Operation, handler: Handler) -> Operation:
    """The admin twin of an operation on the key's org: the same under
    ``/api/v1/admin/orgs/{org_id}``, for an org the caller administers (403 / 404 otherwise);
    ``handler`` is ``routes.administered(op.handler)``."""
    return replace(
        op,
        path="/api/v1/admin/orgs/{org_id}" + op.path.removeprefix("/api/v1"),
        handler=handler,
        permission="admin",
        op_id="admin" + op.op_id[0].upper() + op.op_id[1:],
        summary=op.summary.replace("The org's", "An org's").replace("the org's", "an org's"),
        tag="admin",
        errors=tuple(sorted({*op.errors, 400, 403, 404})),
    )


OPERATIONS: tuple[Operation, ...] = (
    # memories
    Operation(
        "POST",
        "/api/v1/memories",
        create_memories,
        "write",
        "createMemories",
        "Create one memory, or a batch",
        "memories",
        status=201,
        body=_MEMORY_CREATE_SCHEMA,
        response=_MEMORY_CREATED_SCHEMA,
        errors=(400, 409, 413),
        description="A body with a non-empty `memories` array is a batch: validated whole, then "
        "written in one transaction; duplicates are skipped and reported in `duplicates` / "
        "`duplicate_of`. Otherwise the body is one memory; a duplicate is a 409 naming "
        "`existing_id`. `supersedes` of a memory that is already superseded is a 409 naming "
        "the chain's `current_id`; of a memory the org does not have, a 400.",
        links=(
            ("getMemory", "getMemory", {"memory_id": "$response.body#/id"}),
            ("deleteMemory", "deleteMemory", {"memory_id": "$response.body#/id"}),
        ),
    ),
    Operation(
        "GET",
        "/api/v1/memories",
        list_memories,
        "read",
        "listMemories",
        "List memories with filters",
        "memories",
        query=_LIST_PARAMS,
        response=MemoryList,
    ),
    Operation(
        "GET",
        "/api/v1/memories/stream",
        stream_memories,
        "read",
        "streamMemories",
        "Follow new memories as they are committed (Server-Sent Events)",
        "memories",
        query=_STREAM_PARAMS,
        response=STREAM_EVENT_SCHEMA,
        response_content_type="text/event-stream",
        description="Each new memory of the key's org matching the filters, as one event, in "
        "the store's commit order, from now on (or just past `after` / the `Last-Event-ID` "
        "header, which wins: resume without gaps or duplicates after a disconnect). A memory "
        "deleted or expired before it is sent is left out. The filters are checked before the "
        "stream starts (a plain 400). The stream ends when the server stops (reconnect with "
        "`Last-Event-ID`), with an `error` event when the key stops being valid, and a client "
        "that reads nothing for `server.stream_stall_seconds` is disconnected. "
        'See docs/api.md, "The live stream".',
        errors=(400, 503),
    ),
    Operation(
        "POST",
        "/api/v1/memories/delete",
        delete_memories,
        "write",
        "deleteMemories",
        "Delete every memory matching a filter",
        "memories",
        body=DeleteFilter,
        response=DeleteResultBody,
        errors=(400, 413),
    ),
    Operation(
        "POST",
        "/api/v1/memories/pop",
        pop_memory,
        "write",
        "popMemory",
        "Remove and return the newest current memory matching a filter",
        "memories",
        body=DeleteFilter,
        response=PopResult,
        errors=(400, 413),
        description="The filter of `deleteMemories` (at least one criterion, or "
        "`all_memories`). The newest current memory matching it (by event `time`, then "
        "insertion; superseded and expired memories are skipped) is deleted from every index "
        "and returned as `memory`; `memory` is null when none matches. Atomic: two concurrent "
        "pops never return the same memory.",
    ),
    Operation(
        "POST",
        "/api/v1/memories/summary",
        summarize_memories,
        "read",
        "summarizeMemories",
        "Count, time range and most frequent tags of the memories matching a filter",
        "memories",
        body=SummaryQuery,
        body_required=False,
        response=MemorySummary,
        errors=(400, 413),
        description="The filters of `searchMemories` without ranking or paging (no `query`, "
        "`limit`, `offset`, `order`). Counts the current, unexpired memories matching them "
        "(superseded ones too with `include_superseded`; as known then with `as_of`) without "
        "reading them: `count`, `oldest` / `newest` (event `time`, null when none match), and "
        "`tags`, the `tag_limit` (default 100, at most 1000) most frequent tags with the number "
        "of matching memories carrying each (ties by name), `tags_truncated` when there were "
        "more.",
    ),
    Operation(
        "GET",
        "/api/v1/activity",
        activity,
        "read",
        "getActivity",
        "Memories per time bucket (an activity chart), with errors and memory types",
        "memories",
        query=_ACTIVITY_PARAMS,
        response=Activity,
        description="Counts the current, unexpired memories matching the filters (as known "
        "then with `as_of`) per `bucket` of event `time`, without reading them. Buckets "
        "start at multiples of the bucket from Monday 1970-01-05T00:00:00Z (whole minutes, "
        "hours, UTC days; weeks from Monday), so a bucket has the same bounds in every "
        "answer: `since` is rounded down to a bucket start and the last bucket ends at "
        "`until`. `buckets` is dense (empty buckets included), oldest first; each has "
        "`start`, `count`, `errors` (memories with `event_type` `error`) and `by_type` (the "
        "count of each memory type that has any). `total`, `errors` and `by_type` add them "
        "up. More than 1000 buckets, a `since` after `until`, a bucket under a minute or an "
        "unknown parameter is a 400.",
    ),
    Operation(
        "GET",
        "/api/v1/memories/{memory_id}",
        get_memory,
        "read",
        "getMemory",
        "Get a memory by id",
        "memories",
        query=(_AS_OF_PARAM,),
        response=Memory,
        errors=(400, 404),
        description="A superseded memory is found too: `superseded_by` names its successor. "
        "An expired memory is a 404.",
    ),
    Operation(
        "DELETE",
        "/api/v1/memories/{memory_id}",
        delete_memory,
        "write",
        "deleteMemory",
        "Delete a memory",
        "memories",
        status=204,
        errors=(400, 404),
    ),
    Operation(
        "POST",
        "/api/v1/memories/by-key",
        get_memory_by_key,
        "read",
        "getMemoryByKey",
        "The current memory with a key in a namespace",
        "memories",
        body=KeyLookup,
        response=Memory,
        errors=(400, 404, 413),
        description="A write with `namespace` and `key` supersedes the current memory of that "
        "key, so a key has at most one current memory: this one.",
    ),
    Operation(
        "POST",
        "/api/v1/namespaces",
        list_namespaces,
        "read",
        "listNamespaces",
        "The distinct namespaces of the org's memories",
        "memories",
        body=NamespaceQuery,
        body_required=False,
        response=NamespaceList,
        errors=(400, 413),
        description='`"*"` in `prefix` or `suffix` matches any one part; `max_depth` truncates '
        "(then de-duplicates). Sorted, paginated.",
    ),
    Operation(
        "POST",
        "/api/v1/search",
        search,
        "read",
        "searchMemories",
        "Search memories (filters and ranked keyword `query`)",
        "memories",
        body=SearchQuery,
        body_required=False,
        response=SearchResult,
        errors=(400, 413),
    ),
    # agents
    Operation(
        "POST",
        "/api/v1/agents",
        register_agent,
        "write",
        "registerAgent",
        "Register an agent",
        "agents",
        status=201,
        body=RegisterAgentRequest,
        response=Agent,
        errors=(400, 409, 413),
        links=_links(
            "agent_id",
            "$response.body#/id",
            "getAgent",
            "getAgentStats",
            "getAgentMemories",
            "getAgentContext",
            "deleteAgent",
        ),
    ),
    Operation(
        "GET",
        "/api/v1/agents",
        list_agents,
        "read",
        "listAgents",
        "List agents",
        "agents",
        response=AgentList,
    ),
    Operation(
        "GET",
        "/api/v1/agents/{agent_id}",
        get_agent,
        "read",
        "getAgent",
        "Get an agent by id or name",
        "agents",
        response=Agent,
        errors=(400, 404),
        by_reference=("agent_id",),
    ),
    Operation(
        "DELETE",
        "/api/v1/agents/{agent_id}",
        delete_agent,
        "write",
        "deleteAgent",
        "Delete an agent (by id or name)",
        "agents",
        status=204,
        query=_DELETE_PARAMS,
        errors=(400, 404),
        by_reference=("agent_id",),
    ),
    Operation(
        "GET",
        "/api/v1/agents/{agent_id}/stats",
        agent_stats,
        "read",
        "getAgentStats",
        "Memory and session counts of an agent",
        "agents",
        query=(_AS_OF_PARAM,),
        response=AgentStats,
    ),
    Operation(
        "GET",
        "/api/v1/agents/{agent_id}/memories",
        agent_memories,
        "read",
        "getAgentMemories",
        "An agent's memories (since defaults to 24h)",
        "agents",
        query=tuple(p for p in _LIST_PARAMS if p.name != "agent_id"),
        response=MemoryList,
    ),
    Operation(
        "POST",
        "/api/v1/agents/{agent_id}/context",
        agent_context,
        "read",
        "getAgentContext",
        "LLM-ready context of an agent's recent memories",
        "agents",
        body=ContextOptions,
        body_required=False,
        response=AgentContext,
        errors=(400, 404, 413),
        description="404 when the agent is neither registered nor has any memory; 400 when "
        "`max_tokens` is too small for even the newest memory (the message says what it "
        "needs).",
    ),
    # sessions
    Operation(
        "POST",
        "/api/v1/sessions",
        create_session,
        "write",
        "createSession",
        "Create a session",
        "sessions",
        status=201,
        body=CreateSessionRequest,
        response=Session,
        errors=(400, 413),
        links=_links(
            "session_id",
            "$response.body#/id",
            "getSession",
            "updateSession",
            "patchSession",
            "deleteSession",
            "getSessionMemories",
            "getSessionContext",
        ),
    ),
    Operation(
        "GET",
        "/api/v1/sessions",
        list_sessions,
        "read",
        "listSessions",
        "List sessions",
        "sessions",
        query=(
            Param("agent_id", description="agent id or name", pattern=_ID_RE),
            Param("status", enum=("active", "closed")),
            Param("limit", "integer", "default 100, capped at 1000 (not refused)", minimum=1),
            Param("offset", "integer", minimum=0),
        ),
        response=SessionList,
    ),
    Operation(
        "GET",
        "/api/v1/sessions/{session_id}",
        get_session,
        "read",
        "getSession",
        "Get a session",
        "sessions",
        response=Session,
        errors=(400, 404),
        by_reference=("session_id",),
    ),
    Operation(
        "PUT",
        "/api/v1/sessions/{session_id}",
        update_session,
        "write",
        "updateSession",
        "Update a session (status; metadata is merged)",
        "sessions",
        body=UpdateSessionRequest,
        body_required=False,
        response=Session,
        errors=(400, 404, 413),
        by_reference=("session_id",),
    ),
    Operation(
        "PATCH",
        "/api/v1/sessions/{session_id}",
        update_session,
        "write",
        "patchSession",
        "Update a session (same as PUT)",
        "sessions",
        body=UpdateSessionRequest,
        body_required=False,
        response=Session,
        errors=(400, 404, 413),
        by_reference=("session_id",),
    ),
    Operation(
        "DELETE",
        "/api/v1/sessions/{session_id}",
        delete_session,
        "write",
        "deleteSession",
        "Delete a session",
        "sessions",
        status=204,
        query=_DELETE_PARAMS,
        errors=(400, 404),
        by_reference=("session_id",),
    ),
    Operation(
        "GET",
        "/api/v1/sessions/{session_id}/memories",
        session_memories,
        "read",
        "getSessionMemories",
        "A session's memories",
        "sessions",
        query=tuple(p for p in _LIST_PARAMS if p.name != "session_id"),
        response=MemoryList,
    ),
    Operation(
        "POST",
        "/api/v1/sessions/{session_id}/context",
        session_context,
        "read",
        "getSessionContext",
        "LLM-ready context of a session",
        "sessions",
        body=ContextOptions,
        body_required=False,
        response=SessionContext,
        errors=(400, 404, 413),
    ),
    # export / import / org
    Operation(
        "GET",
        "/api/v1/export",
        export,
        "read",
        "exportJsonl",
        "Export agents, sessions and memories as JSON Lines",
        "data",
        query=_FILTER_PARAMS,
        response={"type": "string"},
        response_content_type=NDJSON,
        description="Streamed. Without filters the export holds the org's agents and sessions "
        "too; with filters only the matching memories. The last line is a trailer "
        '`{"kind":"trailer","format":"memtrace-export","version":1,"memories":N,"agents":N,'
        '"sessions":N}`. An export that fails part-way is aborted (the connection is closed '
        "without the chunked terminator), so a client never mistakes it for a complete one.",
    ),
    Operation(
        "POST",
        "/api/v1/import",
        import_,
        "write",
        "importJsonl",
        "Import JSON Lines (as produced by export)",
        "data",
        body={"type": "string"},
        body_content_type=NDJSON,
        query=(
            Param(
                "no_trailer",
                "boolean",
                "Accept a file without the export trailer (one written before exports had "
                "it). A trailer that is present is still checked.",
            ),
        ),
        response=ImportResult,
        errors=(400, 409, 413),
        description="Verified, then written: every line is validated and the export trailer "
        '(`{"kind":"trailer",…}`, the last line of every export) checked against the file '
        "before anything is stored. A truncated file (no trailer), a miscounted one or data "
        "after the trailer is a 400 and nothing from the file is kept.",
    ),
    Operation(
        "POST",
        "/api/v1/org/purge",
        purge_org,
        "admin",
        "purgeOrg",
        "Delete every memory, agent and session of the caller's org",
        "data",
        response=DeleteResultBody,
    ),
    # retention of the key's org
    *_RETENTION_OPS,
    Operation(
        "GET",
        "/api/v1/me",
        whoami,
        None,
        "whoami",
        "The caller's org and permissions",
        "auth",
        response=Principal,
    ),
    # admin
    Operation(
        "GET",
        "/api/v1/admin/orgs",
        admin_list_orgs,
        "admin",
        "listOrgs",
        "List orgs",
        "admin",
        response={"type": "object"},
    ),
    Operation(
        "POST",
        "/api/v1/admin/orgs",
        admin_create_org,
        "admin",
        "createOrg",
        "Create an org",
        "admin",
        status=201,
        body=CreateOrgBody,
        response={"type": "object"},
        errors=(400, 409, 413),
        links=_links("org_id", "$response.body#/id", "deleteOrg"),
    ),
    Operation(
        "DELETE",
        "/api/v1/admin/orgs/{org_id}",
        admin_delete_org,
        "admin",
        "deleteOrg",
        "Delete an org and everything in it",
        "admin",
        status=204,
        errors=(400, 404),
    ),
    *(
        _administered_op(op, handler)
        for op, handler in zip(
            _RETENTION_OPS,
            (
                admin_get_retention,
                admin_set_retention,
                admin_clear_retention,
                admin_apply_retention,
            ),
            strict=True,
        )
    ),
    Operation(
        "GET",
        "/api/v1/admin/keys",
        admin_list_keys,
        "admin",
        "listKeys",
        "List API keys",
        "admin",
        query=(Param("org_id"),),
        response={"type": "object"},
        errors=(400, 404),
    ),
    Operation(
        "POST",
        "/api/v1/admin/keys",
        admin_create_key,
        "admin",
        "createKey",
        "Create an API key (the plaintext key is returned once)",
        "admin",
        status=201,
        body=CreateKeyBody,
        response=_KEY_SECRET_SCHEMA,
        errors=(400, 404, 409, 413),
        links=_links("key_id", "$response.body#/key/id", "revokeKey", "rotateKey"),
    ),
    Operation(
        "DELETE",
        "/api/v1/admin/keys/{key_id}",
        admin_revoke_key,
        "admin",
        "revokeKey",
        "Revoke an API key (effective immediately on this server)",
        "admin",
        status=204,
        errors=(400, 404),
    ),
    Operation(
        "POST",
        "/api/v1/admin/keys/{key_id}/rotate",
        admin_rotate_key,
        "admin",
        "rotateKey",
        "Replace an API key by a new one (same name, org and permissions)",
        "admin",
        response=_KEY_SECRET_SCHEMA,
        errors=(400, 404),
    ),
    # public
    Operation(
        "GET",
        "/health",
        health,
        "",
        "health",
        "Liveness",
        "service",
        response={"type": "object", "properties": {"status": {"type": "string"}}},
        errors=(),
    ),
    Operation(
        "GET",
        "/ready",
        ready,
        "",
        "ready",
        "Readiness (the store is reachable)",
        "service",
        response={"type": "object", "properties": {"status": {"type": "string"}}},
        errors=(503,),
    ),
    Operation(
        "GET",
        "/metrics",
        metrics,
        "",
        "metrics",
        "Prometheus metrics",
        "service",
        response={"type": "string"},
        response_content_type="text/plain",
        errors=(),
    ),
    Operation(
        "GET",
        "/openapi.json",
        openapi_json,
        "",
        "openapi",
        "This OpenAPI document",
        "service",
        response={"type": "object"},
        errors=(),
    ),
    Operation(
        "GET",
        "/docs",
        docs_page,
        "",
        "docs",
        "The API reference as HTML",
        "service",
        response={"type": "string"},
        response_content_type="text/html",
        errors=(),
    ),
)

# Response-less marker used by the OpenAPI builder for 204s.
NO_BODY = None

__all__ = [
    "ERROR_SCHEMA",
    "OPERATIONS",
    "BatchResult",
    "CreateKeyBody",
    "CreateMemoryBody",
    "CreateOrgBody",
    "DeleteResultBody",
    "ImportResult",
    "ListOptions",
    "Operation",
    "Param",
    "Principal",
]
