"""The REST handlers: each translates an HTTP request to one engine call and the result back.

Every rule (validation, limits, dedup, tenancy, time windows) lives in
:class:`memtrace_core.AsyncMemtrace`; auth rules (key scoping, defaults) in
:mod:`memtrace_server.auth`. Which handler serves which route, with which permission and
documentation, is the table in :mod:`memtrace_server.operations`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from pydantic_core import to_jsonable_python
from sanic.http import Http, Stage
from sanic.request import Request
from sanic.response import HTTPResponse

from memtrace_core import (
    AsyncMemtrace,
    DuplicateMemoryError,
    KeyLookup,
    MemtraceError,
    NamespaceQuery,
    NotFoundError,
    PopResult,
    StoreError,
    ValidationError,
)
from memtrace_core import (
    __version__ as core_version,
)
from memtrace_core.feed import FeedClosed, Watch
from memtrace_core.validation import coerce

from . import __version__
from .auth import AuthAdmin, extract_api_key, principal_summary
from .http import (
    NDJSON,
    _model_bytes,
    bool_param,
    dumps,
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
    as_of = query(request).get("as_of") or None
    return model_response(await mt.get_memory(memory_id, as_of=as_of))


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


async def pop_memory(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    popped = await mt.pop_memory(json_object(request))
    if popped is None:
        return json_response({"memory": None})
    state.metrics.memories_deleted += 1
    return model_response(PopResult(memory=popped))


async def summarize_memories(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return model_response(await mt.summarize_memories(json_object(request, allow_empty=True)))


async def activity(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return model_response(await mt.get_activity(query(request)))


async def get_memory_by_key(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    q = coerce(KeyLookup, json_object(request), {})
    return model_response(await mt.get_memory_by_key(q.namespace, q.key, as_of=q.as_of))


async def list_namespaces(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    q = coerce(NamespaceQuery, json_object(request, allow_empty=True), {})
    result = await mt.list_namespaces(
        prefix=q.prefix, suffix=q.suffix, max_depth=q.max_depth, limit=q.limit, offset=q.offset
    )
    return model_response(result)


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
    as_of = query(request).get("as_of") or None
    return model_response(await mt.get_agent_stats(agent_id, as_of=as_of))


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


def _sse(event: str, event_id: str, data: bytes | str) -> bytes:
    """One Server-Sent Event (``data`` is one line of JSON: JSON text has no raw newline)."""
    body = data if isinstance(data, bytes) else data.encode()
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), event.encode(), body)


async def stream_memories(request: Request, mt: AsyncMemtrace, state: State) -> None:
    """``GET /api/v1/memories/stream``: each new memory of the key's org matching the filters,
    as Server-Sent Events in the store's commit order (docs/api.md, "The live stream")."""
    params = query(request)
    in_query = params.pop("after", None)
    after = request.headers.get("last-event-id") or in_query or None
    server = state.config.server
    metrics = state.metrics
    key = extract_api_key(request.headers)
    holder = key or ""
    per_key = state.streams_per_key
    if metrics.streams_active >= server.max_streams:
        metrics.streams_dropped["full"] += 1
        raise StoreError(
            f"too many live streams on this server ({server.max_streams}); retry later"
        )
    if per_key.get(holder, 0) >= server.max_streams_per_key:
        metrics.streams_dropped["full"] += 1
        raise StoreError(
            f"too many live streams for this API key ({server.max_streams_per_key} per "
            "server worker); close one or retry later"
        )
    # the slot is taken before the first await: concurrent opens cannot pass the caps
    metrics.streams_active += 1
    per_key[holder] = per_key.get(holder, 0) + 1
    watch = cast(Watch, mt.watch(params, after=after))
    try:
        try:
            await watch.start()  # a bad filter or position is still a plain 400
        except FeedClosed:
            raise StoreError("the server is stopping; retry in a moment") from None
        heartbeat = min(server.stream_heartbeat_seconds, server.write_timeout / 2)
        loop = asyncio.get_running_loop()
        ends = loop.time() + server.stream_max_seconds if server.stream_max_seconds else None
        stall = server.stream_stall_seconds
        next_check = loop.time() + heartbeat
        org = mt.org_id
        response = await request.respond(
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            content_type="text/event-stream; charset=utf-8",
        )
        start = sent = pending = watch.position or ""
        chunks = [b"retry: 2000\n\n", _sse("ready", start, dumps({"position": start}))]
        while True:
            if chunks:
                try:
                    await asyncio.wait_for(response.send(b"".join(chunks)), stall)
                except TimeoutError:
                    # bounded memory: what a stalled client holds is the transport's buffer
                    # and this one page; it reads nothing, so it is dropped
                    metrics.streams_dropped["slow"] += 1
                    log.warning("live stream of org %s dropped: the client reads too slowly", org)
                    _abort_connection(request)
                    return
                chunks = []
                sent = pending
            wait = heartbeat
            if ends is not None:
                wait = ends - loop.time()
                if wait <= 0:  # long enough: the client reconnects (and may land elsewhere)
                    break
                wait = min(wait, heartbeat)
            try:
                events = await watch.next_batch(timeout=wait)
            except FeedClosed:  # the server is stopping: the client resumes elsewhere
                break
            now = loop.time()
            if now >= next_check:  # every heartbeat, busy or idle: is the key still good?
                next_check = now + heartbeat
                refused = await _key_refused(state, key, org)
                if refused is not None:
                    metrics.streams_dropped["revoked"] += 1
                    # its id: the last memory sent (the page in hand was not)
                    error = _sse("error", sent, dumps({"error": refused}))
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(response.send(error), stall)
                    break
            if events:
                metrics.stream_events += len(events)
                chunks = [_sse("memory", e.position, _model_bytes(e.memory)) for e in events]
                pending = events[-1].position
                continue
            if ends is not None and now >= ends:
                break
            position = watch.position or ""
            if position != pending:
                # past rows a filter skipped: a reconnect resumes here, not where the last
                # memory was (an id without data moves Last-Event-ID and dispatches nothing)
                pending = position
                chunks = [b"id: %s\n: ping\n\n" % position.encode()]
            else:
                chunks = [b": ping\n\n"]
        await response.eof()
    finally:
        metrics.streams_active -= 1
        per_key[holder] -= 1
        if not per_key[holder]:
            del per_key[holder]
        await watch.aclose()


async def _key_refused(state: State, key: str | None, org: str) -> str | None:
    """Why the key of an open stream no longer reads ``org`` (revoked, disabled, expired,
    its org deleted), or None while it does."""
    if not state.config.auth.enabled or state.authenticator is None:
        return None
    try:
        principal = await state.authenticator.authenticate(key)
        principal.require("read")
    except MemtraceError as exc:
        return exc.message
    if principal.org_id != org:
        return "api key no longer valid for this organization"
    return None


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
# Retention: the key's org (/api/v1/retention), or any administered org (/api/v1/admin/orgs/…)


async def get_retention(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return model_response(await mt.get_retention_policy())


async def set_retention(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return model_response(await mt.set_retention_policy(json_object(request)))


async def clear_retention(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    return model_response(await mt.clear_retention_policy())


async def apply_retention(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    report = await mt.apply_retention(dry_run=bool_param(query(request), "dry_run"))
    if not report.dry_run:
        state.metrics.memories_deleted += report.deleted
    return model_response(report)


def administered(handler: Handler) -> Handler:
    """The admin-route form of a handler of the key's org: it acts on the org named in the
    path (``{org_id}``), which the caller must administer (:meth:`AuthAdmin.administered_org`)."""

    async def admin_handler(
        request: Request, mt: AsyncMemtrace, state: State, org_id: str
    ) -> HTTPResponse | None:
        await _admin(state).administered_org(request.ctx.principal, org_id)
        return await handler(request, state.view(org_id), state)

    admin_handler.__name__ = f"admin_{handler.__name__}"
    admin_handler.__doc__ = handler.__doc__
    return admin_handler


admin_get_retention = administered(get_retention)
admin_set_retention = administered(set_retention)
admin_clear_retention = administered(clear_retention)
admin_apply_retention = administered(apply_retention)


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
    org_id = request.ctx.principal.keys_scope(query(request).get("org_id"))
    keys = await _admin(state).list_keys(org_id)
    return json_response({"keys": _plain(keys), "count": len(keys)})


async def admin_create_key(request: Request, mt: AsyncMemtrace, state: State) -> HTTPResponse:
    body = json_object(request)
    org_id = request.ctx.principal.key_org(body.get("org_id"))
    name = body.get("name", "")
    info, plaintext = await _admin(state).create_key(
        org_id, name, body.get("permissions"), body.get("expires_at")
    )
    return json_response({"key": _plain(info), "api_key": plaintext}, 201)


def _key_id(raw: str) -> str:
    if 0 < len(raw) <= 128 and raw.isprintable():
        return raw
    raise ValidationError(f"invalid key id: {raw!r}", field="key_id")


async def admin_revoke_key(
    request: Request, mt: AsyncMemtrace, state: State, key_id: str
) -> HTTPResponse:
    admin = _admin(state)
    info = await admin.administered_key(request.ctx.principal, _key_id(key_id))
    await admin.revoke_key(info.id)
    return no_content()


async def admin_rotate_key(
    request: Request, mt: AsyncMemtrace, state: State, key_id: str
) -> HTTPResponse:
    admin = _admin(state)
    info = await admin.administered_key(request.ctx.principal, _key_id(key_id))
    info, plaintext = await admin.rotate_key(info.id)
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
    """Liveness, in the original's shape; it asks nothing of the store (a liveness probe must
    not wait on the store's readers). ``arc`` is the original's map of each org's Arc
    reachability, from the store's latest health report (the one ``/ready`` took); empty
    unless the store is Arc."""
    arc = state.last_health.arc if state.last_health is not None else {}
    return json_response(
        {
            "status": "ok",
            "service": "memtrace",
            "version": __version__,
            "core_version": core_version,
            "uptime": go_duration(time.monotonic() - state.started),
            "arc": arc,
        }
    )


async def ready(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    """Readiness: the store's own health report (a trivial query, timed)."""
    engine = state.engine
    if engine is None:
        return json_response({"status": "not ready", "reason": "starting"}, 503)
    report = state.last_health = await engine.health()
    if not report.ok:  # details go to the log, not to this unauthenticated endpoint
        log.error("readiness probe: store unreachable: %s", report.detail)
        body: dict[str, Any] = {"status": "not ready", "reason": "store_unreachable"}
        if report.extra:
            body["store"] = {"ok": False, **report.extra}
        return json_response(body, 503)
    if report.detail:  # ready, with something to say (the Arc store: Arc unreachable)
        log.warning("readiness probe: %s", report.detail)
    store = {"ok": True, "latency_ms": round(report.latency_ms, 3), **report.extra}
    return json_response({"status": "ready", "store": store})


async def metrics(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    if state.engine is not None:
        state.metrics.unreadable_rows = int(getattr(state.engine.store, "unreadable_rows", 0))
        series = getattr(state.engine.store, "store_metrics", None)
        found = series() if callable(series) else []
        state.metrics.store_series = await found if inspect.isawaitable(found) else found
    return HTTPResponse(
        state.metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def openapi_json(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    return HTTPResponse(state.documents.openapi_json, content_type="application/json")


async def docs_page(request: Request, mt: AsyncMemtrace | None, state: State) -> HTTPResponse:
    return HTTPResponse(state.documents.docs_html, content_type="text/html; charset=utf-8")


# --------------------------------------------------------------------------------------------
