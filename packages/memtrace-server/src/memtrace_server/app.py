"""The Sanic application: :func:`create_app` builds a server for one :class:`ServerConfig`.

Per request: a request id (``X-Request-ID`` in and out), the API key → :class:`Principal` (cached
by the authenticator), the permission the route needs, then the engine scoped to the principal's
org. Every error becomes a JSON ``{"error": …}`` body with the right status; only a genuine bug is
a 500 (logged with its traceback, never sent to the client).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError
from sanic import Sanic
from sanic.exceptions import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SanicException,
    ServiceUnavailable,
)
from sanic.handlers import ErrorHandler
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from memtrace_core import AuthenticationError, MemtraceError
from memtrace_core import open_engine as open_store_engine
from memtrace_core.ids import random_hex
from memtrace_core.retention import Sweeper

from .http import JSON, dumps, escape_text
from .logs import ACCESS_LOGGER, configure_logging
from .openapi import docs_html, openapi_bytes
from .operations import OPERATIONS, Operation
from .protocol import BODY_TIMEOUT, HEADER_TIMEOUT, READ_TIMEOUT, MemtraceProtocol
from .state import Documents, State

if TYPE_CHECKING:
    from .config import ServerConfig

log = logging.getLogger("memtrace.server")
access_log = logging.getLogger(ACCESS_LOGGER)

_perf = time.perf_counter
_CORS_HEADERS = "Authorization, Content-Type, X-API-Key, X-Request-ID"


def _error(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> HTTPResponse:
    return HTTPResponse(dumps(body), status=status, content_type=JSON, headers=headers)


class JsonErrorHandler(ErrorHandler):
    """Renders every exception as JSON; unexpected ones are logged and become a bare 500."""

    def __init__(self, state: State | None = None) -> None:
        super().__init__()
        self.state = state

    def default(self, request: Request, exception: BaseException) -> HTTPResponse:
        try:
            return self._render(request, exception)
        except Exception as failure:  # the error path itself must never fail (or stay silent)
            log.error(
                "error handler failed on %s %s while rendering %r",
                getattr(request, "method", "?"),
                getattr(request, "path", "?"),
                exception,
                exc_info=failure,
            )
            return HTTPResponse(b'{"error":"internal server error"}', status=500, content_type=JSON)

    def _render(self, request: Request, exception: BaseException) -> HTTPResponse:
        if isinstance(exception, MemtraceError):
            status = exception.status_code if exception.status_code >= 400 else 500
            if isinstance(exception, AuthenticationError) and self.state is not None:
                self.state.metrics.auth_failures += 1
            return _error(status, exception.to_dict())
        if isinstance(exception, NotFound):
            return _error(404, {"error": f"not found: {request.method} {request.path}"})
        if isinstance(exception, MethodNotAllowed):
            allowed = dict(getattr(exception, "headers", None) or {})
            return _error(
                405, {"error": f"method not allowed: {request.method} {request.path}"}, allowed
            )
        if isinstance(exception, PayloadTooLarge):
            limit = request.app.config.REQUEST_MAX_SIZE
            return _error(413, {"error": f"request body too large (max {limit} bytes)"})
        if isinstance(exception, ServiceUnavailable):  # Sanic's response timeout
            log.warning("response timeout on %s %s", request.method, request.path)
            return _error(503, {"error": "response timeout (server.write_timeout)"})
        if isinstance(exception, SanicException):
            status = int(getattr(exception, "status_code", 500) or 500)
            if status < 500:
                return _error(status, {"error": escape_text(str(exception)) or "bad request"})
        if isinstance(exception, PydanticValidationError):
            err = exception.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"]) or "body"
            return _error(400, {"error": f"invalid {loc}: {err['msg']}", "field": loc})
        rid = getattr(request.ctx, "rid", None) if request is not None else None
        if isinstance(exception, asyncio.CancelledError):  # sanic's RequestCancelled
            # the client went away mid-request: nobody reads this answer; not a server error
            log.info("client closed the connection during %s %s", request.method, request.path)
            return _error(499, {"error": "client closed request"})
        log.error(
            "unhandled error on %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            exc_info=exception,
            extra={"request_id": rid},
        )
        return _error(500, {"error": "internal server error", "request_id": rid or ""})


#: Media types an NDJSON route (import) accepts besides ``application/json``.
_NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl"}
)


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    """``application/json`` or a structured-syntax ``+json`` type (RFC 6839), any parameters."""
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def _content_type_check(op: Operation) -> Callable[[Request], HTTPResponse | None] | None:
    """For routes that read a body: a 415 when a body is sent with a content type the route
    cannot read. No ``Content-Type`` at all is read as the route's type (many HTTP clients
    send none); a request without a body is never refused (its defaults apply)."""
    if op.body is None:
        return None
    ndjson = op.body_content_type != JSON
    expected = op.body_content_type

    def check(request: Request) -> HTTPResponse | None:
        header = request.headers.get("content-type")
        if header is None:
            return None
        media = _media_type(header)
        if _is_json(media) or (ndjson and media in _NDJSON_TYPES):
            return None
        body = request.body
        if not body or body.isspace():
            return None
        shown = header if len(header) <= 100 and header.isprintable() else header[:100] + "…"
        hint = "-H 'content-type: " + expected + "'"
        return _error(
            415,
            {
                "error": f"unsupported content type {shown!r}: send the body as {expected} "
                f"with Content-Type: {expected} (curl: {hint}, not -d alone)",
                "field": "content-type",
            },
        )

    return check


def _make_handler(op: Operation, state: State) -> Callable[..., Any]:
    fn = op.handler
    permission = op.permission
    name = op.op_id
    metrics = state.metrics
    config = state.config
    auth_enabled = config.auth.enabled
    content_type_check = _content_type_check(op)
    timed = op.response_content_type != "text/event-stream"
    from .auth import anonymous_principal, extract_api_key

    anonymous = anonymous_principal()

    if op.public:

        async def public(request: Request, **path: str) -> HTTPResponse | None:
            return await fn(request, None, state, **path)

        public.__name__ = name
        return public

    async def handler(request: Request, **path: str) -> HTTPResponse | None:
        if auth_enabled:
            principal = await state.authenticator.authenticate(extract_api_key(request.headers))
        else:
            principal = anonymous
        if permission:
            principal.require(permission)
        if content_type_check is not None:
            refused = content_type_check(request)
            if refused is not None:
                return refused
        ctx = request.ctx
        ctx.principal = principal
        ctx.org = principal.org_id
        mt = state.view(principal.org_id)
        if not timed:  # a live stream: its whole connection is not store time
            return await fn(request, mt, state, **path)
        started = _perf()
        try:
            return await fn(request, mt, state, **path)
        finally:
            metrics.observe_store(name, _perf() - started)

    handler.__name__ = name
    return handler


class MemtraceSanic(Sanic[Any, Any]):
    """Sanic, serving with :class:`~memtrace_server.protocol.MemtraceProtocol` (absolute
    header/body read deadlines) unless a protocol is given explicitly — for ``app.run``,
    ``app.prepare`` + ``Sanic.serve`` (``memtrace serve``) and ``create_server`` alike."""

    def prepare(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("protocol") is None:
            kwargs["protocol"] = MemtraceProtocol
        super().prepare(*args, **kwargs)

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("protocol") is None:
            kwargs["protocol"] = MemtraceProtocol
        return await super().create_server(*args, **kwargs)


def create_app(
    config: ServerConfig,
    *,
    name: str | None = None,
    setup_logging: bool = True,
    touchup: bool = True,
) -> Sanic[Any, Any]:
    """Build the memtrace Sanic app for ``config``. ``name`` must be unique per process (tests
    build one app per test). The engine is opened in ``before_server_start`` and closed
    (pending writes committed) in ``after_server_stop``.

    ``touchup=False`` turns off Sanic's start-up source rewriting of its own classes, which is
    process-global and therefore wrong when several apps run in one process (tests)."""
    if setup_logging:
        configure_logging(config.log.level, config.log.format)
    state = State(config, documents=Documents(openapi_bytes(), docs_html()))
    app: Sanic[Any, Any] = MemtraceSanic(
        name or "memtrace", error_handler=JsonErrorHandler(state), configure_logging=False
    )
    srv = config.server
    app.config.REQUEST_MAX_SIZE = int(srv.max_body_bytes)
    app.config.REQUEST_TIMEOUT = float(srv.header_timeout)
    app.config[HEADER_TIMEOUT] = float(srv.header_timeout)
    app.config[BODY_TIMEOUT] = float(srv.body_timeout)
    app.config[READ_TIMEOUT] = float(srv.read_timeout)
    app.config.RESPONSE_TIMEOUT = float(srv.write_timeout)
    app.config.KEEP_ALIVE_TIMEOUT = float(srv.keepalive_timeout)
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = float(srv.shutdown_timeout)
    app.config.ACCESS_LOG = False
    app.config.NOISY_EXCEPTIONS = False
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.MOTD = False
    if not touchup:
        app.config.TOUCHUP = False
    app.ctx.state = state

    cors_origins = tuple(srv.cors_origins or ())
    paths_seen: dict[str, set[str]] = {}
    for op in OPERATIONS:
        app.add_route(
            _make_handler(op, state),
            op.sanic_path,
            methods=[op.method],
            name=op.op_id,
            unquote=True,
            ctx_label=op.path,
        )
        paths_seen.setdefault(op.sanic_path, set()).add(op.method)
    if cors_origins:
        for path, methods in paths_seen.items():
            allow = ", ".join(sorted(methods | {"OPTIONS"}))

            async def preflight(request: Request, _allow: str = allow, **_: str) -> HTTPResponse:
                return HTTPResponse(status=204, headers={"Allow": _allow})

            app.add_route(
                preflight,
                path,
                methods=["OPTIONS"],
                name="preflight_"
                + path.replace("/", "_").replace("<", "").replace(">", "").replace(":", ""),
                unquote=True,
                ctx_label=path,
            )

    if srv.ui:  # the memory explorer's static files (not API operations: docs/ui.md)
        from .ui import install as install_ui

        install_ui(app)
    _install_middleware(app, state, cors_origins)
    _install_listeners(app, state)
    return app


def _new_request_id() -> str:
    """32 random hex digits (the format of ``uuid4().hex``, without building a UUID; from
    memtrace's pool of ``os.urandom`` bytes, not one system call per request)."""
    return random_hex(16)


def _install_middleware(app: Sanic[Any, Any], state: State, cors_origins: tuple[str, ...]) -> None:
    metrics = state.metrics
    any_origin = "*" in cors_origins
    origins = frozenset(cors_origins)

    async def on_request(request: Request) -> HTTPResponse | None:
        ctx = request.ctx
        ctx.t0 = _perf()
        rid = request.headers.get("x-request-id")
        if not rid or len(rid) > 128 or not rid.isprintable() or not rid.isascii():
            rid = _new_request_id()
        ctx.rid = rid
        if (
            origins
            and request.method == "OPTIONS"
            and "access-control-request-method" in request.headers
        ):
            origin = request.headers.get("origin")
            if origin and (any_origin or origin in origins):
                return HTTPResponse(
                    status=204,
                    headers={
                        "Access-Control-Allow-Origin": "*" if any_origin else origin,
                        "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                        "Access-Control-Allow-Headers": request.headers.get(
                            "access-control-request-headers", _CORS_HEADERS
                        ),
                        "Access-Control-Max-Age": "600",
                        "Vary": "Origin",
                    },
                )
        return None

    async def on_response(request: Request, response: BaseHTTPResponse) -> None:
        ctx = request.ctx
        rid = getattr(ctx, "rid", None) or _new_request_id()
        headers = response.headers
        headers["X-Request-ID"] = rid
        if origins:
            origin = request.headers.get("origin")
            if origin and (any_origin or origin in origins):
                headers["Access-Control-Allow-Origin"] = "*" if any_origin else origin
                headers["Access-Control-Expose-Headers"] = "X-Request-ID"
                if not any_origin:
                    headers["Vary"] = "Origin"
        t0 = getattr(ctx, "t0", None)
        duration = _perf() - t0 if t0 is not None else 0.0
        route = request.route
        label = (
            route.ctx.label if route is not None and hasattr(route.ctx, "label") else "unmatched"
        )
        status = response.status
        metrics.observe_request(request.method, label, status, duration)
        if access_log.isEnabledFor(logging.INFO):
            org = getattr(ctx, "org", None)
            access_log.info(
                "%s %s %s %.2fms",
                request.method,
                request.path,
                status,
                duration * 1000,
                extra={
                    "request_id": rid,
                    "method": request.method,
                    "path": request.path,
                    "route": label,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "org_id": org,
                },
            )

    app.register_middleware(on_request, "request")
    app.register_middleware(on_response, "response")


def _install_listeners(app: Sanic[Any, Any], state: State) -> None:
    config = state.config

    async def open_engine(app: Sanic[Any, Any]) -> None:
        from .auth import AuthAdmin, Authenticator, AuthStore

        engine = await open_store_engine(config.storage.url, config=config.engine)
        authenticator: Authenticator | None = None
        admin: AuthAdmin | None = None
        try:
            store = engine.store
            if config.auth.enabled or isinstance(store, AuthStore):
                from .auth import auth_store_of

                auth_store = auth_store_of(engine)
                authenticator = Authenticator(
                    auth_store,
                    cache_seconds=config.auth.cache_seconds,
                    revocation_poll_seconds=config.auth.revocation_poll_seconds,
                )
                await authenticator.start()
                admin = AuthAdmin(auth_store, authenticator, bcrypt_cost=config.auth.bcrypt_cost)
            if config.auth.enabled and admin is not None:
                key = await admin.bootstrap()
                if key:
                    state.bootstrap_key = key
                    log.warning("FIRST RUN: save your admin API key (shown only once): %s", key)
        except BaseException:
            await engine.close()
            raise
        state.engine = engine
        state.authenticator = authenticator
        state.admin = admin
        state.started = time.monotonic()
        sweep = config.sweep
        if sweep.sweep:
            # every worker runs one; the store's sweep lease lets one sweep at a time
            state.sweeper = Sweeper(
                engine,
                interval=sweep.sweep_interval_seconds,
                batch=sweep.sweep_batch,
                pause=sweep.sweep_pause_seconds,
            )
            state.metrics.sweep = state.sweeper.totals
            state.sweeper.start()

    async def end_streams(app: Sanic[Any, Any]) -> None:
        """Live streams never finish by themselves: end them (their clients reconnect, with
        Last-Event-ID, to another worker or to this server once it is back), or every stop
        would wait the whole shutdown timeout for them."""
        if state.engine is not None:
            await state.engine.end_watches()

    async def close_engine(app: Sanic[Any, Any]) -> None:
        sweeper, state.sweeper = state.sweeper, None
        if sweeper is not None:
            await sweeper.stop()
        engine, state.engine = state.engine, None
        state._views.clear()
        if state.authenticator is not None:
            await state.authenticator.stop()
        if engine is not None:
            await engine.close()

    async def watch_parent(app: Sanic[Any, Any]) -> None:
        """A worker whose main process died (``kill -9`` of the pid a supervisor started)
        stops, gracefully, instead of serving on as an orphan that holds the port."""
        parent = os.getppid()
        while True:
            await asyncio.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent:
                log.error("the memtrace serve main process is gone: stopping this worker")
                # the worker's own SIGTERM handling: a graceful stop (app.stop() would ask
                # the worker manager, which is gone)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    async def start_watching(app: Sanic[Any, Any]) -> None:
        if os.environ.get("SANIC_WORKER_NAME"):  # a worker of Sanic's worker manager
            app.add_task(watch_parent(app), name="memtrace-watch-parent")

    app.register_listener(open_engine, "before_server_start")
    app.register_listener(start_watching, "after_server_start")
    app.register_listener(end_streams, "before_server_stop")
    app.register_listener(close_engine, "after_server_stop")


#: How often a worker checks that its main process is alive (seconds).
PARENT_POLL_SECONDS = 0.5

__all__ = ["JsonErrorHandler", "create_app"]
