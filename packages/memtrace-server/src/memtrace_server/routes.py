"""The REST routes: one table (:data:`OPERATIONS`) from which the app registers its Sanic routes
and :mod:`memtrace_server.openapi` builds the OpenAPI document, so the two cannot drift apart.

Handlers only translate HTTP to engine calls and back: every rule (validation, limits, dedup,
tenancy, time windows) lives in :class:`memtrace_core.AsyncMemtrace`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sanic.http import Http, Stage
from sanic.request import Request
from sanic.response import HTTPResponse

from memtrace_core import (
    AgentContext,
    AgentList,
    AgentStats,
    AsyncMemtrace,
    BatchResult,
    ContextOptions,
    CreateSessionRequest,
    DeleteFilter,
    DuplicateMemoryError,
    ImportResult,
    ListOptions,
    Memory,
    MemoryCreate,
    MemoryList,
    MemtraceError,
    NotFoundError,
    RegisterAgentRequest,
    SearchQuery,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
    UpdateSessionRequest,
    ValidationError,
)
from memtrace_core import (
    __version__ as core_version,
)
from memtrace_core.models import Agent

from . import __version__
from .auth import AuthAdmin, Permission, principal_summary
from .http import (
    NDJSON,
    bool_param,
    int_param,
    json_object,
    json_response,
    list_response,
    model_response,
    no_content,
    query,
)
from .state import State

Handler = Callable[..., Awaitable[HTTPResponse | None]]

log = logging.getLogger("memtrace.server")


# --------------------------------------------------------------------------------------------
# The operation table


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


def _count_written(state: State, n: int, dups: int = 0) -> None:
    m = state.metrics
    m.memories_written += n
    m.duplicates += dups


async def create_memories(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    data = json_object(request)
    batch = data.get("memories")
    if isinstance(batch, list) and batch:
        result = await mt.add_memories(batch)
        _count_written(state, result.count, result.duplicates)
        return await list_response(result, 201)
    try:
        memory = await mt.add_memory(data)
    except DuplicateMemoryError:
        state.metrics.duplicates += 1
        raise
    _count_written(state, 1)
    return model_response(memory, 201)


async def list_memories(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return await list_response(await mt.list_memories(query(request)))


async def get_memory(
    request: Request, mt: AsyncMemtrace, state: State, memory_id: str
) -> HTTPResponse:
    return model_response(await mt.get_memory(memory_id))


async def delete_memory(
    request: Request, mt: AsyncMemtrace, state: State, memory_id: str
) -> HTTPResponse:
    await mt.delete_memory(memory_id)
    state.metrics.memories_deleted += 1
    return no_content()


async def delete_memories(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    deleted = await mt.delete_memories(json_object(request))
    state.metrics.memories_deleted += deleted
    return json_response({"deleted": deleted})


async def search(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return await list_response(await mt.search_memories(json_object(request, allow_empty=True)))


# --------------------------------------------------------------------------------------------
# Agents


async def register_agent(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return model_response(await mt.register_agent(json_object(request)), 201)


async def list_agents(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return model_response(await mt.list_agents())


async def get_agent(
    request: Request, mt: AsyncMemtrace, state: State, agent_id: str
) -> HTTPResponse:
    return model_response(await mt.get_agent(agent_id))


async def delete_agent(
    request: Request, mt: AsyncMemtrace, state: State, agent_id: str
) -> HTTPResponse:
    await mt.delete_agent(agent_id, delete_memories=bool_param(query(request), "delete_memories"))
    return no_content()


async def agent_stats(
    request: Request, mt: AsyncMemtrace, state: State, agent_id: str
) -> HTTPResponse:
    return model_response(await mt.get_agent_stats(agent_id))


async def agent_memories(
    request: Request, mt: AsyncMemtrace, state: State, agent_id: str
) -> HTTPResponse:
    params = query(request)
    params.pop("agent_id", None)
    return await list_response(await mt.get_agent_memories(agent_id, params))


async def agent_context(
    request: Request, mt: AsyncMemtrace, state: State, agent_id: str
) -> HTTPResponse:
    opts = json_object(request, allow_empty=True)
    return model_response(await mt.get_agent_context(agent_id, opts))


# --------------------------------------------------------------------------------------------
# Sessions


async def create_session(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return model_response(await mt.create_session(json_object(request)), 201)


async def list_sessions(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    params = query(request)
    result = await mt.list_sessions(
        params.get("agent_id") or None,
        status=params.get("status") or None,
        limit=int_param(params, "limit"),
        offset=int_param(params, "offset"),
    )
    return model_response(result)


async def get_session(
    request: Request, mt: AsyncMemtrace, state: State, session_id: str
) -> HTTPResponse:
    return model_response(await mt.get_session(session_id))


async def update_session(
    request: Request, mt: AsyncMemtrace, state: State, session_id: str
) -> HTTPResponse:
    body = json_object(request, allow_empty=True)
    return model_response(await mt.update_session(session_id, body))


async def delete_session(
    request: Request, mt: AsyncMemtrace, state: State, session_id: str
) -> HTTPResponse:
    delete = bool_param(query(request), "delete_memories")
    await mt.delete_session(session_id, delete_memories=delete)
    return no_content()


async def session_memories(
    request: Request, mt: AsyncMemtrace, state: State, session_id: str
) -> HTTPResponse:
    params = query(request)
    params.pop("session_id", None)
    return await list_response(await mt.get_session_memories(session_id, params))


async def session_context(
    request: Request, mt: AsyncMemtrace, state: State, session_id: str
) -> HTTPResponse:
    opts = json_object(request, allow_empty=True)
    return model_response(await mt.get_session_context(session_id, opts))


# --------------------------------------------------------------------------------------------
# Export / import / org


_EXPORT_CHUNK = 65536


async def export(request: Request, mt: AsyncMemtrace, state: State) -> None:
    lines = mt.iter_export(query(request))
    # Fill the first chunk before responding: a bad filter is still a plain 400, and an export
    # failing before that (any export smaller than a chunk) a plain error response.
    first: list[str] = []
    size = 0
    finished = True
    async for line in lines:
        first.append(line)
        size += len(line)
        if size >= _EXPORT_CHUNK:
            finished = False
            break
    response = await request.respond(content_type=NDJSON)
    sent = 0
    try:
        await response.send("".join(first))
        sent = size
        if not finished:
            chunk: list[str] = []
            size = 0
            async for line in lines:
                chunk.append(line)
                size += len(line)
                if size >= _EXPORT_CHUNK:
                    await response.send("".join(chunk))
                    sent += size
                    chunk.clear()
                    size = 0
            if chunk:
                await response.send("".join(chunk))
    except Exception as exc:
        # The status line is gone: the only honest signal left is to drop the connection
        # without the chunked terminator, so that every client sees an incomplete body
        # (httpx: RemoteProtocolError; curl: exit 18) rather than a short export that ends
        # cleanly. (Sanic would end the stream cleanly after a handler error.)
        state.metrics.exports_aborted += 1
        log.error(
            "export of org %s aborted after %d bytes, connection closed: %s",
            mt.org_id,
            sent,
            exc,
            exc_info=not isinstance(exc, MemtraceError),
        )
        _abort_connection(request)
        return
    await response.eof()


def _abort_connection(request: Request) -> None:
    """Close the connection at once (no terminator, no keep-alive) and stop Sanic from ending
    the response it believes is still open."""
    stream = request.stream
    if isinstance(stream, Http):
        stream.keep_alive = False
        # Sanic ends a response left open by the handler (``send(end_stream=True)``): mark it
        # complete so that nothing more is written to the aborted transport.
        stream.stage = Stage.IDLE
    abort = getattr(request.transport, "abort", None)
    if callable(abort):
        abort()


async def import_(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    body = request.body or b""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"invalid request body: not UTF-8 ({exc.reason} at byte {exc.start})", field="body"
        ) from None
    no_trailer = bool_param(query(request), "no_trailer")
    result = await mt.import_jsonl(text.split("\n"), require_trailer=not no_trailer)
    state.metrics.memories_written += result.imported
    return model_response(result)


async def purge_org(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    deleted = await mt.purge_org()
    state.metrics.memories_deleted += deleted
    return json_response({"deleted": deleted})


async def whoami(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return json_response(principal_summary(request.ctx.principal))


# --------------------------------------------------------------------------------------------
# Admin (orgs and keys)


def _plain(value: Any) -> Any:
    return to_jsonable_python(value)


def _admin(state: State) -> AuthAdmin:
    admin: AuthAdmin | None = state.admin
    if admin is None:
        raise NotFoundError("admin API unavailable")
    return admin


async def admin_list_orgs(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    principal = request.ctx.principal
    if principal.is_service_admin:
        orgs = await _admin(state).list_orgs()
    else:
        orgs = [await _admin(state).get_org(principal.org_id)]
    return json_response({"orgs": _plain(orgs), "count": len(orgs)})


async def admin_create_org(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    request.ctx.principal.require_service_admin()
    org = await _admin(state).create_org(json_object(request).get("name", ""))
    return json_response(_plain(org), 201)


async def admin_delete_org(
    request: Request, mt: AsyncMemtrace, state: State, org_id: str
) -> HTTPResponse:
    request.ctx.principal.require_service_admin()
    await _admin(state).delete_org(org_id, state.view(org_id))
    state.forget(org_id)
    return no_content()


async def admin_list_keys(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    principal = request.ctx.principal
    org_id = query(request).get("org_id") or (
        None if principal.is_service_admin else principal.org_id
    )
    if org_id is not None:
        principal.require_org_admin(org_id)
    keys = await _admin(state).list_keys(org_id)
    return json_response({"keys": _plain(keys), "count": len(keys)})


async def admin_create_key(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    body = json_object(request)
    org_id = body.get("org_id", request.ctx.principal.org_id)
    name = body.get("name", "")
    if not isinstance(org_id, str) or not org_id:
        raise ValidationError("invalid org_id: expected a string", field="org_id")
    request.ctx.principal.require_org_admin(org_id)
    info, plaintext = await _admin(state).create_key(
        org_id, name, body.get("permissions"), body.get("expires_at")
    )
    return json_response({"key": _plain(info), "api_key": plaintext}, 201)


def _key_id(raw: str) -> str:
    if 0 < len(raw) <= 128 and raw.isprintable():
        return raw
    raise ValidationError(f"invalid key id: {raw!r}", field="key_id")


async def _administered_key(request: Request, admin: AuthAdmin, raw: str) -> str:
    """The key id, once the caller may administer that key. Another org's key is answered
    exactly like an unknown one (404, same message), so that key ids of other orgs cannot be
    probed for existence."""
    key_id = _key_id(raw)
    principal = request.ctx.principal
    principal.require(Permission.ADMIN)
    info = await admin.get_key(key_id)
    if info.org_id != principal.org_id and not principal.is_service_admin:
        raise NotFoundError(f"API key '{key_id}' not found")
    return key_id


async def admin_revoke_key(
    request: Request, mt: AsyncMemtrace, state: State, key_id: str
) -> HTTPResponse:
    admin = _admin(state)
    key_id = await _administered_key(request, admin, key_id)
    await admin.revoke_key(key_id)
    return no_content()


async def admin_rotate_key(
    request: Request, mt: AsyncMemtrace, state: State, key_id: str
) -> HTTPResponse:
    admin = _admin(state)
    key_id = await _administered_key(request, admin, key_id)
    info, plaintext = await admin.rotate_key(key_id)
    return json_response({"key": _plain(info), "api_key": plaintext})


# --------------------------------------------------------------------------------------------
# Health


def go_duration(seconds: float) -> str:
    """A duration in Go's ``time.Duration.String()`` style, e.g. ``2h30m15.5s``."""
    if seconds < 1:
        return f"{seconds * 1000:.3f}ms".rstrip("0").rstrip(".") if seconds > 0 else "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.6f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


async def health(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    return json_response(
        {
            "status": "ok",
            "service": "memtrace",
            "version": __version__,
            "core_version": core_version,
            "uptime": go_duration(time.monotonic() - state.started),
            "arc": {},
        }
    )


async def ready(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    engine = state.engine
    if engine is None:
        return json_response({"status": "not ready", "reason": "starting"}, 503)
    started = time.perf_counter()
    try:
        ping = getattr(engine.store, "ping", None)
        if ping is not None:
            await ping()
        else:
            await engine.store.get_agent("org_ready_probe", "ready_probe")
    except Exception:  # details go to the log, not to this unauthenticated endpoint
        log.exception("readiness probe: store unreachable")
        return json_response({"status": "not ready", "reason": "store_unreachable"}, 503)
    return json_response(
        {
            "status": "ready",
            "store": {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 3)},
        }
    )


async def metrics(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    if state.engine is not None:
        state.metrics.unreadable_rows = int(getattr(state.engine.store, "unreadable_rows", 0))
    return HTTPResponse(
        state.metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def openapi_json(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    from .openapi import openapi_bytes

    return HTTPResponse(openapi_bytes(), content_type="application/json")


async def docs_page(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    from .openapi import docs_html

    return HTTPResponse(docs_html(), content_type="text/html; charset=utf-8")


# --------------------------------------------------------------------------------------------


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
