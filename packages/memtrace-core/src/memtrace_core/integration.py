"""Framework-neutral helpers of memtrace's framework integrations (LangChain / LangGraph,
OpenAI Agents, CrewAI, …): one place for what every integration does the same way.

* :func:`as_handle` turns what a user passes — a ``connect``/``aconnect`` handle, a
  :class:`~memtrace_core.bridge.MemtraceHandle`, a memtrace URL with an optional ``api_key``,
  or the original SDK's client ``memtrace.AsyncMemtrace`` / ``memtrace.Memtrace`` (the
  ``memtrace-sdk`` package) — into one :class:`MemtraceHandle`. The original client is not
  used for calls: its base URL and API key open memtrace's own HTTP client, so code written
  for the original integrations keeps its ``AsyncMemtrace(url, key)`` line.
* :func:`resolve_scope` picks the agent and session of one call: the defaults an integration
  object was built with, overridden by the framework's run context. The context may be any
  object with ``agent_id`` / ``session_id`` attributes (a dataclass, a pydantic model) or a
  mapping with those keys; a missing, ``None`` or empty value leaves the default in place. The
  org is never taken from the context: it is the handle's.
* :data:`Program` with :func:`drive` / :func:`drive_async`: a body written once as a generator
  of memtrace calls, run on the blocking or the async method set.
* :func:`context_program`: the context an integration injects — the session's once it has
  memories, else the agent's across its sessions.
* :func:`memory_line` / :func:`memory_lines` / :func:`count_text` / :func:`tool_error_message`:
  what memory tools tell a model, worded the same in every framework.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from .api import AsyncMemoryAPI, MemoryAPI
from .bridge import MemtraceHandle
from .errors import MemtraceError, NotFoundError, ValidationError
from .models import AgentContext, Memory, SessionContext
from .timeutil import format_dt

_logger = logging.getLogger("memtrace_core.integration")

__all__ = [
    "Call",
    "MemtraceTarget",
    "Program",
    "Scope",
    "as_handle",
    "context_ids",
    "context_program",
    "count_text",
    "drive",
    "drive_async",
    "is_original_client",
    "memory_line",
    "memory_lines",
    "resolve_scope",
    "tool_error_message",
]

#: What the integration accepts as ``memtrace``: a handle from ``memtrace_core.connect`` /
#: ``aconnect``, a :class:`MemtraceHandle`, a memtrace URL (``sqlite:///…``, ``http://…``), or
#: the original SDK's ``memtrace.AsyncMemtrace`` / ``memtrace.Memtrace`` client (typed ``Any``:
#: that package is not a dependency).
MemtraceTarget = MemoryAPI | AsyncMemoryAPI | MemtraceHandle | str | Any

_ORIGINAL_CLASSES = ("AsyncMemtrace", "Memtrace")


@dataclass(frozen=True)
class Scope:
    """The agent and (optional) session of one call."""

    agent_id: str
    session_id: str | None


def is_original_client(target: object) -> bool:
    """True for the original ``memtrace-sdk`` client (``memtrace.AsyncMemtrace`` or
    ``memtrace.Memtrace``), recognised by its module (``memtrace`` / ``memtrace.*``), never by
    its methods: memtrace's own handles have the same method names."""
    cls = type(target)
    module = cls.__module__ or ""
    return (module == "memtrace" or module.startswith("memtrace.")) and (
        cls.__name__ in _ORIGINAL_CLASSES
    )


def _original_connection(client: Any) -> tuple[str, str | None, float | None]:
    """(base URL, API key, timeout) of an original ``memtrace-sdk`` client: it keeps them only
    in its ``httpx`` client (``_client``: ``base_url``, the ``x-api-key`` header, ``timeout``)."""
    http = getattr(client, "_client", None)
    base_url = getattr(http, "base_url", None)
    if http is None or base_url is None:
        raise TypeError(
            f"cannot read the server URL of this {type(client).__module__}."
            f"{type(client).__name__} (memtrace-sdk 0.2 is supported): pass the memtrace URL "
            "and api_key instead"
        )
    headers = getattr(http, "headers", {}) or {}
    key = headers.get("x-api-key") or None
    timeout = getattr(getattr(http, "timeout", None), "read", None)
    return str(base_url).rstrip("/"), key, timeout


def as_handle(target: MemtraceTarget, *, api_key: str | None = None) -> MemtraceHandle:
    """``target`` as a :class:`MemtraceHandle`.

    A URL is opened with ``memtrace_core.connect`` (with ``api_key``); the original SDK's
    client opens memtrace's HTTP client on its base URL and key (the original client itself
    stays the caller's, open or closed as they choose). ``api_key`` applies to a URL only.
    Raises TypeError for anything else.
    """
    if isinstance(target, MemtraceHandle):
        if api_key is not None:
            raise TypeError("api_key applies only when a URL is given")
        return target
    if is_original_client(target):
        if api_key is not None:
            raise TypeError("api_key applies only when a URL is given (the client has its own)")
        url, key, timeout = _original_connection(target)
        options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        return MemtraceHandle(url, api_key=key, **options)
    return MemtraceHandle(target, api_key=api_key)


def context_ids(context: Any) -> dict[str, str]:
    """The ``agent_id`` / ``session_id`` a run context sets (see the module docstring)."""
    ids: dict[str, str] = {}
    for name in ("agent_id", "session_id"):
        value = _context_value(context, name)
        if value is not None:
            ids[name] = value
    return ids


def _context_value(context: Any, name: str) -> str | None:
    if context is None:
        return None
    value = context.get(name) if isinstance(context, Mapping) else getattr(context, name, None)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"the run context's {name} must be a string, got {type(value).__name__}")
    return value


def resolve_scope(
    carrier: Any, *, agent_id: str | None, session_id: str | None, hint: str = ""
) -> Scope:
    """The agent and session of a call: ``carrier.context``'s ``agent_id`` / ``session_id``
    when set (``carrier`` is the framework's run context holder — a LangChain ``ToolRuntime``
    or LangGraph ``Runtime``, an OpenAI Agents ``RunContextWrapper`` / ``ToolContext`` — or
    ``None``), else the given defaults. ``hint`` ends the error message (how to set a context
    in that framework).

    Raises ValueError when no agent is known either way (a configuration error: the model
    cannot fix it), TypeError when the context holds a non-string id.
    """
    context = getattr(carrier, "context", None)
    agent = _context_value(context, "agent_id") or agent_id
    session = _context_value(context, "session_id") or session_id
    if not agent:
        raise ValueError(
            "no memtrace agent_id for this call: pass agent_id=... when building the memtrace "
            f"integration, or run the agent with a context that has an agent_id{hint}"
        )
    return Scope(agent_id=agent, session_id=session)


# -- one body per operation, run on the async method set -------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of the memtrace method set: ``api.<method>(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


#: A body written once for the sync and the async path: a generator that yields the memtrace
#: calls it needs, receives each result (or has the call's MemtraceError thrown in) and
#: returns its value. :func:`drive` runs it on the blocking method set, :func:`drive_async` on
#: the async one.
Program = Generator[Call, Any, Any]


def drive(handle: MemtraceHandle, program: Program) -> Any:
    """Run ``program`` with blocking calls (``handle.sync``)."""
    api = handle.sync
    try:
        call = next(program)
        while True:
            try:
                result = getattr(api, call.method)(*call.args, **call.kwargs)
            except MemtraceError as exc:
                call = program.throw(exc)
            else:
                call = program.send(result)
    except StopIteration as stop:
        return stop.value


async def drive_async(handle: MemtraceHandle, program: Program) -> Any:
    """Run ``program`` with async calls (``await handle.run(...)``), never blocking the loop."""
    try:
        call = next(program)
        while True:
            try:
                result = await handle.run(_bound(call))
            except MemtraceError as exc:
                call = program.throw(exc)
            else:
                call = program.send(result)
    except StopIteration as stop:
        return stop.value


def _bound(call: Call) -> Callable[[AsyncMemoryAPI], Coroutine[Any, Any, Any]]:
    def invoke(api: AsyncMemoryAPI) -> Coroutine[Any, Any, Any]:
        return cast(
            "Coroutine[Any, Any, Any]", getattr(api, call.method)(*call.args, **call.kwargs)
        )

    return invoke


def context_program(
    scope: Scope, options: dict[str, Any], *, session_first: bool = True
) -> Generator[Call, Any, SessionContext | AgentContext | None]:
    """The engine's context for ``scope``: the session's (``get_session_context``) when a
    session is known and already has memories, else the agent's across its sessions
    (``get_agent_context``) — so a new session starts with what the agent remembers instead of
    nothing. ``session_first=False`` always asks for the agent's. ``None`` when the engine
    knows neither (NotFoundError). ``options`` are the engine's ContextOptions (``max_tokens``,
    ``since`` …); the budget is the engine's."""
    if session_first and scope.session_id is not None:
        try:
            session: SessionContext = yield Call(
                "get_session_context", (scope.session_id,), dict(options)
            )
        except NotFoundError:
            pass
        else:
            if session.memory_count > 0:
                return session
    try:
        agent: AgentContext = yield Call("get_agent_context", (scope.agent_id,), dict(options))
    except NotFoundError:
        return None
    return agent


# -- what memory tools tell a model ------------------------------------------------------


def memory_line(memory: Memory, *, agent: bool = False) -> str:
    """One memory as one line for a model:
    ``- [id] time memory_type/event_type (session …; tags: …): content`` (with ``agent``: the
    agent first among the details, for lists that span agents)."""
    details: list[str] = [f"agent {memory.agent_id}"] if agent else []
    if memory.session_id:
        details.append(f"session {memory.session_id}")
    if memory.tags:
        details.append("tags: " + ", ".join(memory.tags))
    if memory.superseded_by:  # listed only when asked for (include_superseded)
        details.append(f"superseded by {memory.superseded_by}")
    extra = f" ({'; '.join(details)})" if details else ""
    content = memory.content
    reasoning = (memory.metadata or {}).get("reasoning")
    if memory.memory_type == "decision" and isinstance(reasoning, str) and reasoning:
        content = f"{content} — reasoning: {reasoning}"
    content = content.replace("\r\n", "\n").replace("\n", "\n  ")
    return (
        f"- [{memory.id}] {format_dt(memory.time)} "
        f"{memory.memory_type}/{memory.event_type}{extra}: {content}"
    )


def count_text(n: int) -> str:
    return "1 memory" if n == 1 else f"{n} memories"


def memory_lines(memories: Iterable[Memory], *, agent: bool = False) -> str:
    return "\n".join(memory_line(m, agent=agent) for m in memories)


def tool_error_message(tool: str, exc: MemtraceError) -> str:
    """The message a model gets for a memtrace error: what went wrong and what to do."""
    if isinstance(exc, ValidationError):
        where = f" (argument {exc.field})" if exc.field else ""
        return (
            f"{tool} failed: invalid input{where}: {exc.message.rstrip('.')}. Fix the arguments "
            f"and call {tool} again."
        )
    if isinstance(exc, NotFoundError):
        return f"{tool} failed: {exc.message.rstrip('.')}."
    _logger.warning("memtrace tool %s failed: %s: %s", tool, type(exc).__name__, exc.message)
    return (
        f"{tool} failed: the memory service reported an error ({type(exc).__name__}: "
        f"{exc.message}). Memory is unavailable for now: continue without it or try later."
    )
