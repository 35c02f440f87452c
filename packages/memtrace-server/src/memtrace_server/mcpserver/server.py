"""The memtrace MCP server: the tools of :mod:`.tools`, resources and a prompt, over stdio or
streamable HTTP, on an embedded store or a memtrace server.

Who a call acts as:

* **stdio, embedded** (``sqlite:///…``): the local user, with every permission, in one org
  (``--org``, default the store's default org).
* **stdio, memtrace server** (``http(s)://…``): the process's ``MEMTRACE_API_KEY``.
* **HTTP**: every MCP client sends its own memtrace API key (``Authorization: Bearer`` or
  ``x-api-key``); a request without a valid key gets 401 before it reaches the SDK. On an
  embedded store the key is checked against the store's keys (as ``memtrace serve`` does, with
  its cache and revocation bound) and its org and permissions apply; against a memtrace server
  the caller's key is what this process sends for that caller's calls (checked once through
  ``GET /api/v1/me``, then on every call by the server). The process's own key is never used
  over HTTP.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from pydantic import Field, WrapValidator

from memtrace_core import (
    AuthenticationError,
    ConflictError,
    MemtraceError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    StoreError,
    SupersededError,
    TransportError,
    ValidationError,
)
from memtrace_core.api import AsyncMemoryAPI
from memtrace_core.integration import memory_lines

from .. import __version__
from ..auth import extract_api_key
from . import compat
from .backend import Backend, Caller, ServerOptions
from .compat import CallToolResult, Context, ToolError
from .tools import TOOLS, Argument, Defaults, ToolSpec, arguments

_logger = logging.getLogger("memtrace_server.mcp")

INSTRUCTIONS = (
    "Memtrace provides persistent memory for AI agents. Use these tools to store, recall, and "
    "search memories. Memories are temporal: recall looks at the last 24 hours unless you give "
    "a time window (since), and search looks at all time. Use memtrace_search with query for "
    "keywords, memtrace_recall for what happened recently, memtrace_session_context for a "
    "markdown summary to work from, memtrace_decide to record a decision and why."
)
#: Where the ASGI middleware leaves the caller for the tools (``scope["state"]``).
STATE_KEY = "memtrace_caller"
#: The same, for resources and prompts (the SDK gives them no request context); set per
#: HTTP request by the middleware, which works because the HTTP transport is stateless.
_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "memtrace_mcp_caller", default=None
)
_PROMPT_SESSION_DOC = (
    "Session ID (default: the configured session, else the configured agent's memories across "
    "its sessions)"
)
_RECENT_LIMIT = 50


# -- errors -------------------------------------------------------------------------------------


def error_text(exc: MemtraceError, args: Mapping[str, Any] | None = None) -> str:
    """What the model reads when a memtrace call fails: what went wrong, and what to do about
    it (the SDK puts "Error executing tool <name>: " before it). ``args`` are the call's: a
    "not found" names the ids it was given."""
    message = exc.message.rstrip(".")
    if message[:200].lstrip().lower().startswith(("<!doctype", "<html")):
        message = (
            f"HTTP {exc.status_code}: the server answered with an HTML page, not like a memtrace "
            "server: check MEMTRACE_URL (the server's base URL, e.g. http://host:9100)"
        )
    if isinstance(exc, NotFoundError) and args:
        named = [
            f"{k} {args[k]!r}"
            for k, noun in (
                ("memory_id", "memory"),
                ("session_id", "session"),
                ("agent_id", "agent"),
            )
            if noun in message.lower() and isinstance(args.get(k), str) and args[k] not in message
        ]
        if named:
            message = f"{message} ({', '.join(named)})"
    if isinstance(exc, ValidationError):
        where = f"invalid argument {exc.field}: " if exc.field and exc.field not in message else ""
        return f"{where}{message}. Fix the arguments and call the tool again."
    if isinstance(exc, PermissionDeniedError):
        return f"refused: {message}."
    if isinstance(exc, AuthenticationError):
        return f"refused: the memtrace API key was not accepted ({message})."
    if isinstance(exc, PayloadTooLargeError):
        return f"too large: {message}."
    if isinstance(exc, (StoreError, TransportError)):
        return f"memtrace is unavailable ({message}). Try again later."
    if isinstance(exc, (NotFoundError, ConflictError, SupersededError)):
        return f"{message}."
    return f"{type(exc).__name__}: {message}."


# -- the server ---------------------------------------------------------------------------------


def _passthrough(value: Any, handler: Any) -> Any:
    return value


def _annotation(arg: Argument) -> Any:
    """The parameter annotation the SDK builds its argument model from: the argument's schema
    exactly (with its description and default), and no validation, so that every check and its
    message is the engine's (the SDK's pydantic errors are hard to read). Arguments that may be
    strings are annotated ``str`` so the SDK never parses a string that looks like JSON
    (``content='[1]'``, ``payload='{"a":1}'``) into a list or an object; the others (lists,
    objects, numbers) are ``Any``, so a list sent as a JSON string is parsed (some clients do
    that)."""
    schema = dict(arg.schema)
    schema["description"] = arg.description
    if arg.default is not None:
        schema["default"] = arg.default

    def exact(target: dict[str, Any]) -> None:
        target.clear()
        target.update(schema)

    base: Any = str if arg.allows_string else Any
    return Annotated[base, WrapValidator(_passthrough), Field(json_schema_extra=exact)]


def _tool_function(
    spec: ToolSpec,
    backend: Backend,
    options: ServerOptions,
    args: list[Argument],
) -> Callable[..., Awaitable[Any]]:
    # every parameter is optional for the SDK: a missing required one gets memtrace's message
    # (the advertised schema still lists them as required: see build_server)
    params = [
        inspect.Parameter(
            a.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_annotation(a)
        )
        for a in args
    ]
    required = [a for a in args if a.required]
    known = {a.name for a in args}
    params.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))
    returns = Annotated[CallToolResult, spec.output]

    async def tool(**kwargs: Any) -> Any:
        ctx = kwargs.pop("ctx", None)
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ToolError(
                f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"{spec.name} takes {', '.join(a.name for a in args)}"
            )
        # null and "" mean "not given", as omitting it: the documented default applies
        given = {k: v for k, v in kwargs.items() if v is not None and v != ""}
        missing = [a for a in required if a.name not in given]
        if missing:
            raise ToolError(
                "missing required argument"
                + ("s " if len(missing) > 1 else " ")
                + "; ".join(f"{a.name} ({a.description.rstrip('.')})" for a in missing)
                + ". Call the tool again with "
                + ("them." if len(missing) > 1 else "it.")
            )
        for name, default in spec.defaults.items():
            given.setdefault(name, default)
        caller = compat.request_state(ctx, STATE_KEY) if ctx is not None else None
        text, result = await _call(
            spec.name,
            spec.permission,
            backend,
            caller,
            options,
            lambda api: spec.run(api, given, options.defaults),
            {**given, **_configured(spec, options.defaults, given)},
        )
        return compat.text_result(text, result.model_dump(mode="json", exclude_none=True))

    tool.__name__ = spec.name
    tool.__doc__ = spec.description
    tool.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    return tool


def _configured(spec: ToolSpec, defaults: Defaults, given: Mapping[str, Any]) -> dict[str, Any]:
    """The configured ids a call of ``spec`` uses because the model gave none."""
    return {
        k: v
        for k, v in (("agent_id", defaults.agent_id), ("session_id", defaults.session_id))
        if v is not None and k not in given and k in spec.configured
    }


async def _call(
    name: str,
    permission: str,
    backend: Backend,
    caller: Caller | None,
    options: ServerOptions,
    run: Callable[[AsyncMemoryAPI], Awaitable[Any]],
    args: Mapping[str, Any] | None = None,
) -> Any:
    """Run ``run`` on the caller's method set, every failure a :class:`ToolError` with a clear
    message (the SDK returns it as a tool result with ``isError``)."""
    try:
        api, principal = backend.api_for(caller)
        if principal is not None and not principal.has(permission):
            raise PermissionDeniedError(
                f"this API key lacks the '{permission}' permission ({name} needs it)"
            )
        return await asyncio.wait_for(run(api), options.timeout)
    except MemtraceError as exc:
        raise ToolError(error_text(exc, args)) from None
    except TimeoutError:
        raise ToolError(
            f"no answer from memtrace within {options.timeout:g} s (a write may "
            "still complete: check with memtrace_recall before retrying)"
        ) from None
    except ToolError:
        raise
    except Exception as exc:  # a bug: say so, keep the server up
        _logger.exception("memtrace MCP tool %s failed", name)
        raise ToolError(f"internal error ({type(exc).__name__}: {exc})") from None


def build_server(backend: Backend, options: ServerOptions) -> Any:
    """The SDK server object with memtrace's tools, resources and prompt."""
    server = compat.make_server("memtrace", instructions=INSTRUCTIONS, server_version=__version__)
    from mcp.types import ToolAnnotations

    for spec in TOOLS:
        args = arguments(spec, options.defaults)
        server.add_tool(
            _tool_function(spec, backend, options, args),
            name=spec.name,
            title=spec.title,
            description=spec.description,
            annotations=ToolAnnotations(
                title=spec.title,
                readOnlyHint=spec.read_only,
                destructiveHint=spec.destructive,
                idempotentHint=spec.idempotent,
                openWorldHint=False,
            ),
        )
        compat.set_required(server, spec.name, [a.name for a in args if a.required])
    _add_resources(server, backend, options)
    return server


async def _resource_call(
    name: str,
    backend: Backend,
    options: ServerOptions,
    run: Callable[[AsyncMemoryAPI], Awaitable[str]],
) -> str:
    try:
        result: str = await _call(name, "read", backend, _CALLER.get(), options, run)
    except ToolError as exc:
        raise compat.request_error(f"{name}: {exc}") from None
    return result


def _add_resources(server: Any, backend: Backend, options: ServerOptions) -> None:
    defaults = options.defaults

    async def recent_text(api: AsyncMemoryAPI, agent_id: str | None) -> str:
        query: dict[str, Any] = {"since": "24h", "limit": _RECENT_LIMIT, "order": "desc"}
        if agent_id:
            query["agent_id"] = agent_id
        listed = await api.list_memories(query)
        whose = f"agent {agent_id}" if agent_id else "all agents"
        if not listed.memories:
            return f"# Recent memories ({whose})\n\nNo memories in the last 24 hours.\n"
        more = f" (the newest {_RECENT_LIMIT}; more exist)" if listed.has_more else ""
        return (
            f"# Recent memories ({whose}, last 24 hours, newest first){more}\n\n"
            + memory_lines(listed.memories, agent=not agent_id)
            + "\n"
        )

    async def context_text(api: AsyncMemoryAPI, session_id: str | None) -> str:
        if session_id:
            context = await api.get_session_context(session_id)
            if context.memory_count == 0:
                return f"No memories in session {session_id} in the last 24 hours.\n"
            return context.context
        if defaults.agent_id:
            try:
                agent = await api.get_agent_context(defaults.agent_id)
            except NotFoundError:
                agent = None
            if agent is None or agent.memory_count == 0:
                return f"No memories of agent {defaults.agent_id} in the last 24 hours.\n"
            return agent.context
        return (
            "No current session: start memtrace mcp with --session-id (or MEMTRACE_SESSION_ID), "
            "or with --agent-id for that agent's memories across its sessions.\n"
        )

    async def recent_memories() -> str:
        return await _resource_call(
            "recent_memories", backend, options, lambda api: recent_text(api, defaults.agent_id)
        )

    async def current_session_context() -> str:
        return await _resource_call(
            "current_session_context",
            backend,
            options,
            lambda api: context_text(api, defaults.session_id),
        )

    async def session_context(session_id: str) -> str:
        return await _resource_call(
            "session_context", backend, options, lambda api: context_text(api, session_id)
        )

    async def agent_recent_memories(agent_id: str) -> str:
        return await _resource_call(
            "agent_recent_memories", backend, options, lambda api: recent_text(api, agent_id)
        )

    async def memtrace_session_context(
        session_id: Annotated[str | None, Field(description=_PROMPT_SESSION_DOC)] = None,
    ) -> str:
        text = await _resource_call(
            "memtrace_session_context",
            backend,
            options,
            lambda api: context_text(api, session_id or defaults.session_id),
        )
        return (
            "Here is what memtrace remembers of this work so far (memories, decisions and "
            "errors, newest first). Use it as context; store new facts with memtrace_remember "
            "and decisions with memtrace_decide.\n\n" + text
        )

    for uri, name, title, description, fn in (
        (
            "memtrace://memories/recent",
            "recent_memories",
            "Recent memories",
            "The newest memories of the last 24 hours (of the configured agent, else of every "
            "agent), one line each with id, time, type and content.",
            recent_memories,
        ),
        (
            "memtrace://session/current/context",
            "current_session_context",
            "Current session context",
            "The LLM-ready markdown context of the current work: the configured session's "
            "memories, else the configured agent's across its sessions (last 24 hours).",
            current_session_context,
        ),
        (
            "memtrace://sessions/{session_id}/context",
            "session_context",
            "Session context",
            "The LLM-ready markdown context of one session (last 24 hours).",
            session_context,
        ),
        (
            "memtrace://agents/{agent_id}/memories/recent",
            "agent_recent_memories",
            "An agent's recent memories",
            "One agent's newest memories of the last 24 hours.",
            agent_recent_memories,
        ),
    ):
        server.resource(
            uri, name=name, title=title, description=description, mime_type="text/markdown"
        )(fn)
    server.prompt(
        name="memtrace_session_context",
        title="Inject the session context",
        description="What memtrace remembers of a session, as a message to start from.",
    )(memtrace_session_context)


# -- HTTP ---------------------------------------------------------------------------------------


def _json_response(
    status: int, body: dict[str, Any]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="memtrace"'))
    return status, headers, json.dumps(body).encode()


def with_api_key_auth(app: Any, backend: Backend) -> Callable[..., Awaitable[None]]:
    """ASGI middleware: 401 unless the request carries a valid memtrace API key; the caller
    goes to ``scope["state"]`` (tools) and a context variable (resources, prompts)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            caller = await backend.authenticate(extract_api_key(headers))
        except AuthenticationError as exc:
            answer = _json_response(401, {"error": exc.message})
        except (StoreError, TransportError) as exc:
            answer = _json_response(503, {"error": f"memtrace is unavailable: {exc.message}"})
        except MemtraceError as exc:  # e.g. a 403 from the server's /me
            answer = _json_response(exc.status_code or 500, {"error": exc.message})
        else:
            scope.setdefault("state", {})[STATE_KEY] = caller
            token = _CALLER.set(caller)
            try:
                await app(scope, receive, send)
            finally:
                _CALLER.reset(token)
            return
        status, response_headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """``Host`` header values the HTTP transport accepts (DNS-rebinding protection)."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    if host not in LOOPBACK_HOSTS and host not in ("0.0.0.0", "::", ""):
        hosts.append(f"[{host}]:*" if ":" in host else f"{host}:*")
    hosts.extend(extra)
    return hosts


async def serve_http(
    backend: Backend,
    options: ServerOptions,
    *,
    host: str,
    port: int,
    extra_hosts: list[str],
    ready: Callable[[str], None] | None = None,
) -> None:
    import uvicorn

    await backend.start(http=True)
    try:
        server = build_server(backend, options)
        app = with_api_key_auth(
            compat.http_app(server, allowed_hosts=allowed_hosts(host, extra_hosts)), backend
        )
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on", access_log=False
        )
        web = uvicorn.Server(config)
        if ready is not None:
            started = web.startup

            @functools.wraps(started)
            async def startup(*args: Any, **kwargs: Any) -> None:
                await started(*args, **kwargs)
                if web.started:
                    ready(f"http://{host}:{port}/mcp")

            web.startup = startup  # type: ignore[method-assign]
        await web.serve()
    finally:
        await backend.close()


async def serve_stdio(backend: Backend, options: ServerOptions) -> None:
    await backend.start(http=False)
    try:
        server = build_server(backend, options)
        await server.run_stdio_async()
    finally:
        await backend.close()
