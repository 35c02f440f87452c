"""memtrace as LangChain tools: ``remember``, ``recall``, ``search``, ``decide``,
``session_context`` and ``forget``, for any ``create_agent`` (or any tool-calling model).

::

    from langchain.agents import create_agent
    from memtrace_langchain.tools import memtrace_tools

    tools = memtrace_tools("sqlite:///memory.db", agent_id="support-bot")
    agent = create_agent(model, tools)

Each tool is a ``StructuredTool`` with a pydantic args schema and a description a model can
follow, sync and natively async (the async path awaits memtrace without blocking the loop).
Each takes an injected ``runtime: ToolRuntime`` (hidden from the model's schema): the run's
context (``context=Ctx(agent_id=..., session_id=...)``) overrides the agent and session the
factory was given, per call (see :mod:`memtrace_langchain._context`).

Outputs are compact text for the model: one line per memory,
``- [mem_…] 2026-12-01T10:00:00Z episodic/general (session s1; tags: a, b): content``;
``session_context`` returns the engine's markdown context. memtrace errors (bad arguments, an
unknown id, the service unreachable) come back as a tool message with ``status="error"`` saying
what to do, never as an exception that ends the agent run; a duplicate ``remember`` says the
memory is already stored and under which id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool, ToolException
from pydantic import BaseModel, Field

from memtrace_core.errors import (
    DuplicateMemoryError,
    MemtraceError,
    NotFoundError,
    ValidationError,
)
from memtrace_core.integration import count_text, memory_lines, tool_error_message
from memtrace_core.models import Agent, Memory, MemoryList, SearchResult

from ._context import (
    Call,
    MemtraceTarget,
    Program,
    Scope,
    as_handle,
    context_program,
    drive,
    drive_async,
    resolve_scope,
)

__all__ = ["TOOL_NAMES", "memtrace_tools"]

logger = logging.getLogger(__name__)

#: The tools :func:`memtrace_tools` builds, in this order.
TOOL_NAMES: tuple[str, ...] = (
    "remember",
    "recall",
    "search",
    "decide",
    "session_context",
    "forget",
)

_SINCE = (
    "How far back to look: a duration ending in s, m, h, d or w (e.g. '30m', '2h', '7d', "
    "'4w'), or an ISO 8601 date-time such as '2026-12-01T09:00:00Z'."
)
_TAGS = (
    "Optional labels, each 1-64 characters of letters, digits, '_', '.', '-' "
    "(e.g. ['billing', 'customer-42'])."
)
_IMPORTANCE = "Optional importance from 0.0 (trivial) to 1.0 (critical)."

_ARG_MEMORY_TYPE = Literal["episodic", "entity", "session", "decision"]


# -- argument schemas (what the model sees) ---------------------------------------------------


class RememberArgs(BaseModel):
    """Arguments of ``remember``."""

    content: str = Field(
        description="What to remember, as one self-contained statement that will make sense "
        "later without this conversation (e.g. 'The customer prefers email over phone').",
    )
    event_type: str = Field(
        default="general",
        description="A short snake_case label of what kind of event or fact this is (e.g. "
        "'user_preference', 'task_done', 'error'); letters, digits and '_', up to 64.",
    )
    memory_type: Literal["episodic", "entity", "session"] = Field(
        default="episodic",
        description="'episodic' for something that happened or was observed (default), "
        "'entity' for a lasting fact about a person or thing, 'session' for state of the "
        "current session. Use the decide tool for decisions.",
    )
    tags: list[str] | None = Field(default=None, description=_TAGS)
    importance: float | None = Field(default=None, description=_IMPORTANCE)


class RecallArgs(BaseModel):
    """Arguments of ``recall``."""

    since: str = Field(default="24h", description=_SINCE)
    limit: int = Field(default=20, description="The most memories to return (newest first).")
    memory_type: _ARG_MEMORY_TYPE | None = Field(
        default=None, description="Only memories of this type."
    )
    event_type: str | None = Field(
        default=None, description="Only memories with this event_type (e.g. 'error')."
    )
    tags: list[str] | None = Field(
        default=None, description="Only memories carrying all of these tags."
    )
    this_session_only: bool = Field(
        default=False,
        description="True to recall only the current session's memories; false (default) "
        "for all of your sessions.",
    )


class SearchArgs(BaseModel):
    """Arguments of ``search``."""

    query: str = Field(
        description="Keywords to look for (e.g. 'refund policy customer 42'); memories that "
        "match more of them rank first. Plain words, not a question.",
    )
    limit: int = Field(default=10, description="The most results to return (best first).")
    since: str | None = Field(
        default=None, description=_SINCE + " Omit to search all of your memories."
    )
    memory_type: _ARG_MEMORY_TYPE | None = Field(
        default=None, description="Only memories of this type."
    )
    tags: list[str] | None = Field(
        default=None, description="Only memories carrying all of these tags."
    )


class DecideArgs(BaseModel):
    """Arguments of ``decide``."""

    decision: str = Field(
        description="The decision taken, as one statement (e.g. 'Escalate ticket 42 to tier 2').",
    )
    reasoning: str = Field(description="Why: the facts and trade-offs behind the decision.")
    tags: list[str] | None = Field(default=None, description=_TAGS)
    importance: float | None = Field(default=None, description=_IMPORTANCE)


class SessionContextArgs(BaseModel):
    """Arguments of ``session_context``."""

    max_tokens: int | None = Field(
        default=None,
        description="Keep the summary within about this many tokens (newest memories kept "
        "first). Omit for the default budget.",
    )
    since: str | None = Field(default=None, description=_SINCE + " Omit for the last 24 hours.")


class ForgetArgs(BaseModel):
    """Arguments of ``forget``."""

    memory_id: str = Field(
        description="The id of the memory to delete, as shown in brackets by recall or "
        "search (e.g. 'mem_01JEXAMPLE...').",
    )


_DESCRIPTIONS: dict[str, str] = {
    "remember": (
        "Store a fact, observation or event in long-term memory so it is available in later "
        "turns and future sessions. Use it for anything worth knowing later: user preferences, "
        "facts learned, tasks done, errors met. Returns the new memory's id. Storing the same "
        "content again is reported as already remembered (nothing is duplicated)."
    ),
    "recall": (
        "List your recent memories, newest first, within a time window (since='24h' by "
        "default; e.g. '2h', '7d'). Use it to see what happened recently. Each line shows "
        "[id] time type/event_type (session; tags): content."
    ),
    "search": (
        "Search all of your memories by keywords, best match first. Use it to find a specific "
        "fact or past event whatever its age (e.g. query='customer email preference'). Each "
        "line shows [id] time type/event_type (session; tags): content."
    ),
    "decide": (
        "Record a decision you made and the reasoning behind it, so that later turns and other "
        "sessions know what was decided and why. Returns the decision's memory id."
    ),
    "session_context": (
        "Get a markdown summary of the current session's memories (recent actions, decisions, "
        "errors), or of your memories across sessions when this session has none yet. Use it "
        "to catch up on where things stand."
    ),
    "forget": (
        "Permanently delete one of your memories by its id (from recall or search). Use it "
        "when a memory is wrong or must be removed. Only your own memories can be deleted."
    ),
}

_SCHEMAS: dict[str, type[BaseModel]] = {
    "remember": RememberArgs,
    "recall": RecallArgs,
    "search": SearchArgs,
    "decide": DecideArgs,
    "session_context": SessionContextArgs,
    "forget": ForgetArgs,
}


def _tool_error(tool: str, exc: MemtraceError) -> ToolException:
    """The message a model gets for a memtrace error (the wording all integrations share)."""
    return ToolException(tool_error_message(tool, exc))


# -- the tool bodies (one per tool; the same body serves the sync and the async path) --------


def _remember(scope: Scope, args: RememberArgs) -> Program:
    try:
        memory: Memory = yield Call(
            "remember",
            (scope.agent_id, args.content),
            {
                "session_id": scope.session_id,
                "memory_type": args.memory_type,
                "event_type": args.event_type,
                "tags": args.tags,
                "importance": args.importance,
            },
        )
    except DuplicateMemoryError as dup:
        ref = f" as {dup.existing_id}" if dup.existing_id else ""
        return (
            f"Already remembered{ref}: the same content is stored already; nothing new was written."
        )
    return f"Remembered as {memory.id} ({memory.memory_type}/{memory.event_type})."


def _recall(scope: Scope, args: RecallArgs) -> Program:
    filters: dict[str, Any] = {}
    if args.memory_type is not None:
        filters["memory_type"] = args.memory_type
    if args.event_type is not None:
        filters["event_type"] = args.event_type
    if args.tags:
        filters["tags"] = args.tags
    where = ""
    if args.this_session_only:
        if scope.session_id is None:
            return "There is no current session: call recall with this_session_only=false."
        filters["session_id"] = scope.session_id
        where = f" in session {scope.session_id}"
    found: MemoryList = yield Call(
        "recall", (scope.agent_id, args.since), {"limit": args.limit, **filters}
    )
    if not found.memories:
        return f"No memories{where} since {args.since}."
    more = " More exist: narrow since or raise limit." if found.has_more else ""
    return (
        f"{count_text(found.count)}{where} since {args.since}, newest first:{more}\n"
        + memory_lines(found.memories)
    )


def _search(scope: Scope, args: SearchArgs) -> Program:
    fields: dict[str, Any] = {
        "query": args.query,
        "agent_id": scope.agent_id,
        "limit": args.limit,
    }
    if args.since is not None:
        fields["since"] = args.since
    if args.memory_type is not None:
        fields["memory_types"] = [args.memory_type]
    if args.tags:
        fields["tags"] = args.tags
    found: SearchResult = yield Call("search_memories", (), fields)
    if not found.results:
        return f"No memories match {args.query!r}. Try fewer or other keywords."
    return f"{count_text(found.count)} match {args.query!r}, best first:\n" + memory_lines(
        found.results
    )


def _decide(scope: Scope, args: DecideArgs) -> Program:
    try:
        memory: Memory = yield Call(
            "decide",
            (scope.agent_id, args.decision, args.reasoning),
            {"session_id": scope.session_id, "tags": args.tags, "importance": args.importance},
        )
    except DuplicateMemoryError as dup:
        ref = f" as {dup.existing_id}" if dup.existing_id else ""
        return f"Decision already recorded{ref}; nothing new was written."
    return f"Decision recorded as {memory.id}."


def _session_context(scope: Scope, args: SessionContextArgs, default_tokens: int | None) -> Program:
    options: dict[str, Any] = {}
    max_tokens = args.max_tokens if args.max_tokens is not None else default_tokens
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if args.since is not None:
        options["since"] = args.since
    context = yield from context_program(scope, options)
    if context is None or context.memory_count == 0:
        return "No memories yet for this session or agent."
    return context.context


def _forget(scope: Scope, args: ForgetArgs) -> Program:
    try:
        memory: Memory = yield Call("get_memory", (args.memory_id,))
    except NotFoundError:
        return _raise(
            f"forget failed: no memory {args.memory_id!r} (wrong id, or already forgotten). "
            "Use recall or search to find the id."
        )
    except ValidationError as exc:
        return _raise(f"forget failed: {exc.message}. Use the id shown in brackets by recall.")
    if memory.agent_id != scope.agent_id:
        # the memory's agent_id may be the registered name or id of this same agent
        try:
            agent: Agent = yield Call("get_agent", (memory.agent_id,))
            same = scope.agent_id in (agent.id, agent.name)
        except NotFoundError:
            same = False
        if not same:
            return _raise(
                f"forget refused: memory {args.memory_id} belongs to another agent; you can only "
                "forget your own memories."
            )
    yield Call("delete_memory", (args.memory_id,))
    return f"Forgot {args.memory_id}: {memory.content[:80]}"


def _raise(message: str) -> str:
    raise ToolException(message)


# -- the tools ---------------------------------------------------------------------------------


def _make_tool(
    name: str,
    body: Callable[[Scope, Any], Program],
    handle: Any,
    agent_id: str | None,
    session_id: str | None,
) -> BaseTool:
    schema = _SCHEMAS[name]

    def program(runtime: ToolRuntime | None, kwargs: dict[str, Any]) -> Program:
        scope = resolve_scope(runtime, agent_id=agent_id, session_id=session_id)
        return body(scope, schema.model_validate(kwargs))

    def run(runtime: Annotated[ToolRuntime | None, InjectedToolArg] = None, **kwargs: Any) -> str:
        try:
            return str(drive(handle, program(runtime, kwargs)))
        except MemtraceError as exc:
            raise _tool_error(name, exc) from exc

    async def arun(
        runtime: Annotated[ToolRuntime | None, InjectedToolArg] = None, **kwargs: Any
    ) -> str:
        try:
            return str(await drive_async(handle, program(runtime, kwargs)))
        except MemtraceError as exc:
            raise _tool_error(name, exc) from exc

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=name,
        description=_DESCRIPTIONS[name],
        args_schema=schema,
        infer_schema=False,
        handle_tool_error=True,
        metadata={"memtrace": True},
    )


def memtrace_tools(
    memtrace: MemtraceTarget,
    *,
    agent_id: str | None = None,
    session_id: str | None = None,
    include: Iterable[str] | None = None,
    context_max_tokens: int | None = 2000,
    api_key: str | None = None,
) -> list[BaseTool]:
    """The memtrace tools for a LangChain agent: ``remember``, ``recall``, ``search``,
    ``decide``, ``session_context`` and ``forget`` (or the subset named in ``include``, in
    that order).

    Args:
        memtrace: a handle from ``memtrace_core.connect``/``aconnect``, a ``MemtraceHandle``,
            or a memtrace URL (``sqlite:///…``, ``http://…`` with ``api_key``). An
            ``aconnect`` handle serves only the async path (``agent.ainvoke``).
        agent_id: the agent whose memories the tools read and write, unless the run's context
            has an ``agent_id``.
        session_id: the session new memories belong to (and ``session_context`` describes),
            unless the run's context has a ``session_id``; ``None`` writes memories without a
            session and makes ``session_context`` describe the agent.
        include: the names of the tools wanted (default all of :data:`TOOL_NAMES`).
        context_max_tokens: the token budget of ``session_context`` when the model gives none
            (the engine enforces it); ``None`` for the engine's default size.
        api_key: the server key when ``memtrace`` is an ``http(s)://`` URL.

    Raises ValueError for an unknown tool name in ``include``.
    """
    wanted = TOOL_NAMES if include is None else tuple(include)
    unknown = [n for n in wanted if n not in TOOL_NAMES]
    if unknown:
        raise ValueError(f"unknown memtrace tool(s) {unknown}: choose from {', '.join(TOOL_NAMES)}")
    handle = as_handle(memtrace, api_key=api_key)

    def session_context(scope: Scope, args: Any) -> Program:
        return _session_context(scope, args, context_max_tokens)

    bodies: dict[str, Callable[[Scope, Any], Program]] = {
        "remember": _remember,
        "recall": _recall,
        "search": _search,
        "decide": _decide,
        "session_context": session_context,
        "forget": _forget,
    }
    return [
        _make_tool(name, bodies[name], handle, agent_id, session_id)
        for name in TOOL_NAMES
        if name in wanted
    ]
