"""The one table of operations (:data:`OPERATIONS`): from it the app registers its Sanic routes
(:mod:`memtrace_server.app`), :mod:`memtrace_server.openapi` builds the OpenAPI document, and
the MCP server will derive its tools, so none of them can drift from another.

Each :class:`Operation` names its HTTP method and path, the handler in
:mod:`memtrace_server.routes`, the permission it needs and its documentation. Imports go one
way: app / openapi → operations → routes → http, auth, state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from memtrace_core import (
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
    RegisterAgentRequest,
    SearchQuery,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
    UpdateSessionRequest,
)
from memtrace_core.models import Agent

from .http import NDJSON
from .routes import (
    Handler,
    admin_create_key,
    admin_create_org,
    admin_delete_org,
    admin_list_keys,
    admin_list_orgs,
    admin_revoke_key,
    admin_rotate_key,
    agent_context,
    agent_memories,
    agent_stats,
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
    get_session,
    health,
    import_,
    list_agents,
    list_memories,
    list_sessions,
    metrics,
    openapi_json,
    purge_org,
    ready,
    register_agent,
    search,
    session_context,
    session_memories,
    update_session,
    whoami,
)

# --------------------------------------------------------------------------------------------
# The operation type


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"  # OpenAPI scalar type
    description: str = ""
    enum: tuple[str, ...] | None = None


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
    name: str


class CreateKeyBody(BaseModel):
    org_id: str | None = None
    """Default: the caller's org (an org admin can only name its own)."""
    name: str
    permissions: list[str] | str | None = None
    expires_at: str | None = None


# --------------------------------------------------------------------------------------------
# Memories


# --------------------------------------------------------------------------------------------
# The table


_LIST_PARAMS = (
    Param("agent_id", description="agent id or name (a registered agent matches both)"),
    Param("session_id"),
    Param("memory_type", enum=("episodic", "session", "decision", "entity")),
    Param("event_type"),
    Param("tags", description="comma-separated; every tag must match exactly"),
    Param("since", description="relative (30m, 24h, 7d, 2w) or ISO 8601; inclusive"),
    Param("until", description="relative or ISO 8601; exclusive; `now` = no bound"),
    Param("limit", "integer", "page size, default 100, capped at 1000"),
    Param("offset", "integer", "rows to skip, default 0"),
    Param("order", enum=("asc", "desc"), description="by time; default desc"),
)
_FILTER_PARAMS = (
    Param("agent_id"),
    Param("session_id"),
    Param("memory_types", description="comma-separated"),
    Param("event_types", description="comma-separated"),
    Param("tags", description="comma-separated; every tag must match exactly"),
    Param("since"),
    Param("until"),
)
_DELETE_PARAMS = (Param("delete_memories", "boolean", "also delete the memories"),)

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
        "`existing_id`.",
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
        "GET",
        "/api/v1/memories/{memory_id}",
        get_memory,
        "read",
        "getMemory",
        "Get a memory by id",
        "memories",
        response=Memory,
        errors=(400, 404),
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
    ),
    Operation(
        "GET",
        "/api/v1/agents/{agent_id}/stats",
        agent_stats,
        "read",
        "getAgentStats",
        "Memory and session counts of an agent",
        "agents",
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
        errors=(400, 413),
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
            Param("agent_id", description="agent id or name"),
            Param("status", enum=("active", "closed")),
            Param("limit", "integer"),
            Param("offset", "integer"),
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
        errors=(400, 413),
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
