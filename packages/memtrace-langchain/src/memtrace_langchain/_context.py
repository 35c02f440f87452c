"""Which agent and session a tool call or a model call belongs to, and the memtrace handle.

The tools, the middleware and the retriever are built with defaults (``agent_id=``,
``session_id=``); the LangChain runtime context of a run (``create_agent(...,
context_schema=Ctx)`` then ``agent.invoke(..., context=Ctx(agent_id=..., session_id=...))``)
overrides them per call, so one agent graph serves many agents and sessions. The context may
be any object with ``agent_id`` / ``session_id`` attributes (a dataclass, a pydantic model) or
a mapping with those keys (a ``TypedDict``); a missing, ``None`` or empty value leaves the
default in place. The org is never taken from the context: it is the handle's.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, cast

from pydantic import BaseModel, BeforeValidator, ModelWrapValidatorHandler, SecretStr

from memtrace_core.api import AsyncMemoryAPI, MemoryAPI
from memtrace_core.bridge import MemtraceHandle
from memtrace_core.errors import MemtraceError, NotFoundError
from memtrace_core.models import AgentContext, SessionContext

__all__ = [
    "Call",
    "HandleField",
    "MemtraceTarget",
    "Program",
    "Scope",
    "as_handle",
    "context_ids",
    "context_program",
    "drive",
    "drive_async",
    "open_handle",
    "resolve_scope",
]

M = TypeVar("M", bound=BaseModel)

#: What the integration's constructors accept: a handle from ``memtrace_core.connect`` /
#: ``aconnect``, a :class:`MemtraceHandle`, or a memtrace URL (``sqlite:///…``, ``http://…``).
MemtraceTarget = MemoryAPI | AsyncMemoryAPI | MemtraceHandle | str


@dataclass(frozen=True)
class Scope:
    """The agent and (optional) session of one call."""

    agent_id: str
    session_id: str | None


def as_handle(target: MemtraceTarget, *, api_key: str | None = None) -> MemtraceHandle:
    """``target`` as a :class:`MemtraceHandle` (a URL is opened with ``connect``; ``api_key``
    only applies to a URL)."""
    if isinstance(target, MemtraceHandle):
        if api_key is not None:
            raise TypeError("api_key applies only when a URL is given")
        return target
    return MemtraceHandle(target, api_key=api_key)


def open_handle(data: Any, handler: ModelWrapValidatorHandler[M]) -> M:
    """A ``model_validator(mode="wrap")`` body for pydantic models with the fields
    ``memtrace`` (:data:`HandleField`) and ``api_key``: wraps ``memtrace`` in a
    :class:`MemtraceHandle` (opening a URL with the key) and closes what it opened if the other
    fields are invalid."""
    if not (isinstance(data, Mapping) and "memtrace" in data):
        return handler(data)
    data = dict(data)
    key = data.get("api_key")
    if isinstance(key, SecretStr):
        key = key.get_secret_value()
    handle = data["memtrace"] = as_handle(data["memtrace"], api_key=key)
    try:
        return handler(data)
    except BaseException:
        handle.close()  # closes only a connection it opened from a URL
        raise


#: The pydantic field type of a memtrace handle in the integration's models: accepts what
#: :func:`as_handle` accepts and stores the :class:`MemtraceHandle`.
HandleField = Annotated[MemtraceHandle, BeforeValidator(lambda value: as_handle(value))]


def context_ids(context: Any) -> dict[str, str]:
    """The ``agent_id`` / ``session_id`` a runtime context sets (see the module docstring)."""
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
        raise TypeError(
            f"the runtime context's {name} must be a string, got {type(value).__name__}"
        )
    return value


def resolve_scope(
    runtime: Any,
    *,
    agent_id: str | None,
    session_id: str | None,
) -> Scope:
    """The agent and session of a call: ``runtime.context``'s ``agent_id`` / ``session_id``
    when set (``runtime`` is a ``ToolRuntime``, a LangGraph ``Runtime`` or ``None``), else the
    given defaults.

    Raises ValueError when no agent is known either way (a configuration error: the model
    cannot fix it), TypeError when the context holds a non-string id.
    """
    context = getattr(runtime, "context", None)
    agent = _context_value(context, "agent_id") or agent_id
    session = _context_value(context, "session_id") or session_id
    if not agent:
        raise ValueError(
            "no memtrace agent_id for this call: pass agent_id=... when building the memtrace "
            "tools/middleware, or give the agent a context with an agent_id "
            "(create_agent(..., context_schema=...), invoke(..., context=...))"
        )
    return Scope(agent_id=agent, session_id=session)


# -- one body for the sync and the async path -----------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of the memtrace method set: ``api.<method>(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


#: A tool or middleware body written once: it yields the memtrace calls it needs, receives
#: each result (or has the call's MemtraceError thrown in) and returns its value. :func:`drive`
#: runs it on the blocking method set, :func:`drive_async` on the async one.
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
    ``since``, ``format`` …); the budget is the engine's."""
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
