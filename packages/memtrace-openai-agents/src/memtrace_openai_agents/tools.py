"""memtrace as OpenAI Agents SDK function tools: ``memtrace_remember``, ``memtrace_recall``,
``memtrace_search``, ``memtrace_decide``, ``memtrace_session_context`` and ``memtrace_forget``.

::

    from agents import Agent, Runner
    from memtrace_openai_agents.tools import create_memtrace_tools

    tools = create_memtrace_tools("sqlite:///memory.db", agent_id="support-bot")
    agent = Agent(name="support", instructions="...", tools=tools)

The names keep the original ``openai-agents-memtrace``'s ``memtrace_`` prefix (its four tools
keep their names; ``memtrace_session_context`` and ``memtrace_forget`` are new), so code and
prompts written for the original keep working, and the tools do not collide with a user's own
``search`` or ``remember`` tool.

Each tool is a :func:`agents.function_tool` with a **strict** JSON schema
(``strict_json_schema=True``, what the SDK and the Responses API prefer): every parameter is
``required``; an optional one is nullable (``anyOf [..., {"type": "null"}]``) and ``null`` means
its default, as each description says. The first parameter is the ``ToolContext`` (hidden from
the schema): the run's context (``Runner.run(..., context={"agent_id": ..., "session_id":
...})``) overrides the agent and session the factory was given, per call.

Differences from the original, on purpose: outputs are compact text for the model (one line
per memory, ``- [mem_…] 2026-12-01T10:00:00Z episodic/general (session s1; tags: a, b):
content``) instead of JSON dumps; the per-call ``agent_id`` argument ("cross-agent memory") is
gone — the model cannot read or write another agent's memories — and ``memtrace_forget``
deletes only the same agent's memories. Errors (memtrace errors, bad arguments, memtrace
unreachable) come back to the model as a clear message saying what to do, never as an
exception that ends the run. Same semantics and wording as ``memtrace_langchain.tools``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from agents import FunctionTool, RunContextWrapper, Tool, function_tool
from agents.tool_context import ToolContext
from pydantic import Field

from memtrace_core.errors import (
    DuplicateMemoryError,
    MemtraceError,
    NotFoundError,
    ValidationError,
)
from memtrace_core.integration import count_text, memory_line, memory_lines, tool_error_message
from memtrace_core.models import Agent, Memory, MemoryList, SearchResult

from ._context import (
    Call,
    MemtraceTarget,
    Program,
    Scope,
    as_handle,
    context_program,
    drive_async,
    resolve_scope,
)

__all__ = ["TOOL_NAMES", "create_memtrace_tools", "memory_line"]

logger = logging.getLogger(__name__)

#: The tools :func:`create_memtrace_tools` builds, in this order.
TOOL_NAMES: tuple[str, ...] = (
    "memtrace_remember",
    "memtrace_recall",
    "memtrace_search",
    "memtrace_decide",
    "memtrace_session_context",
    "memtrace_forget",
)

_PREFIX = "memtrace_"

_SINCE = (
    "How far back to look: a duration ending in s, m, h, d or w (e.g. '30m', '2h', '7d', "
    "'4w'), or an ISO 8601 date-time such as '2026-12-01T09:00:00Z'."
)
_TAGS = (
    "Labels, each 1-64 characters of letters, digits, '_', '.', '-' "
    "(e.g. ['billing', 'customer-42']); null for none."
)
_IMPORTANCE = "Importance from 0.0 (trivial) to 1.0 (critical); null for none."

_MemoryType = Literal["episodic", "entity", "session", "decision"]


class _ToolFailure(Exception):
    """A failure whose message is meant for the model as it is."""


def _failure_function(tool: str) -> Callable[[RunContextWrapper[Any], Exception], str]:
    """The SDK's ``failure_error_function`` of a tool: any exception the call raised (the SDK's
    own argument validation, a configuration error, a bug) becomes a message for the model."""

    def failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
        if isinstance(error, _ToolFailure):
            return str(error)
        if type(error).__name__ == "ModelBehaviorError":  # the SDK's bad-arguments error
            return (
                f"{tool} failed: the arguments do not match the tool's schema ({error}). Fix "
                f"the arguments and call {tool} again."
            )
        logger.warning("memtrace tool %s failed: %s: %s", tool, type(error).__name__, error)
        return (
            f"{tool} failed: {type(error).__name__}: {error}. Memory is unavailable for this "
            "call: continue without it."
        )

    return failure


# -- the tool bodies ---------------------------------------------------------------------------


def _remember(
    scope: Scope,
    content: str,
    event_type: str | None,
    memory_type: str | None,
    tags: list[str] | None,
    importance: float | None,
) -> Program:
    try:
        memory: Memory = yield Call(
            "remember",
            (scope.agent_id, content),
            {
                "session_id": scope.session_id,
                "memory_type": memory_type or "episodic",
                "event_type": event_type or "general",
                "tags": tags,
                "importance": importance,
            },
        )
    except DuplicateMemoryError as dup:
        ref = f" as {dup.existing_id}" if dup.existing_id else ""
        return (
            f"Already remembered{ref}: the same content is stored already; nothing new was written."
        )
    return f"Remembered as {memory.id} ({memory.memory_type}/{memory.event_type})."


def _recall(
    scope: Scope,
    since: str | None,
    limit: int | None,
    memory_type: str | None,
    event_type: str | None,
    tags: list[str] | None,
    this_session_only: bool | None,
) -> Program:
    since = since or "24h"
    filters: dict[str, Any] = {}
    if memory_type is not None:
        filters["memory_type"] = memory_type
    if event_type is not None:
        filters["event_type"] = event_type
    if tags:
        filters["tags"] = tags
    where = ""
    if this_session_only:
        if scope.session_id is None:
            return "There is no current session: call memtrace_recall with this_session_only=false."
        filters["session_id"] = scope.session_id
        where = f" in session {scope.session_id}"
    found: MemoryList = yield Call(
        "recall", (scope.agent_id, since), {"limit": 20 if limit is None else limit, **filters}
    )
    if not found.memories:
        return f"No memories{where} since {since}."
    more = " More exist: narrow since or raise limit." if found.has_more else ""
    return f"{count_text(found.count)}{where} since {since}, newest first:{more}\n" + memory_lines(
        found.memories
    )


def _search(
    scope: Scope,
    query: str,
    limit: int | None,
    since: str | None,
    memory_type: str | None,
    tags: list[str] | None,
) -> Program:
    fields: dict[str, Any] = {
        "query": query,
        "agent_id": scope.agent_id,
        "limit": 10 if limit is None else limit,
    }
    if since is not None:
        fields["since"] = since
    if memory_type is not None:
        fields["memory_types"] = [memory_type]
    if tags:
        fields["tags"] = tags
    found: SearchResult = yield Call("search_memories", (), fields)
    if not found.results:
        return f"No memories match {query!r}. Try fewer or other keywords."
    return f"{count_text(found.count)} match {query!r}, best first:\n" + memory_lines(found.results)


def _decide(
    scope: Scope,
    decision: str,
    reasoning: str,
    tags: list[str] | None,
    importance: float | None,
) -> Program:
    try:
        memory: Memory = yield Call(
            "decide",
            (scope.agent_id, decision, reasoning),
            {"session_id": scope.session_id, "tags": tags, "importance": importance},
        )
    except DuplicateMemoryError as dup:
        ref = f" as {dup.existing_id}" if dup.existing_id else ""
        return f"Decision already recorded{ref}; nothing new was written."
    return f"Decision recorded as {memory.id}."


def _session_context(scope: Scope, max_tokens: int | None, since: str | None) -> Program:
    options: dict[str, Any] = {}
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if since is not None:
        options["since"] = since
    context = yield from context_program(scope, options)
    if context is None or context.memory_count == 0:
        return "No memories yet for this session or agent."
    return context.context


def _forget(scope: Scope, memory_id: str) -> Program:
    try:
        memory: Memory = yield Call("get_memory", (memory_id,))
    except NotFoundError:
        raise _ToolFailure(
            f"memtrace_forget failed: no memory {memory_id!r} (wrong id, or already forgotten). "
            "Use memtrace_recall or memtrace_search to find the id."
        ) from None
    except ValidationError as exc:
        raise _ToolFailure(
            f"memtrace_forget failed: {exc.message}. Use the id shown in brackets by "
            "memtrace_recall."
        ) from None
    if memory.agent_id != scope.agent_id:
        # the memory's agent_id may be the registered name or id of this same agent
        try:
            agent: Agent = yield Call("get_agent", (memory.agent_id,))
            same = scope.agent_id in (agent.id, agent.name)
        except NotFoundError:
            same = False
        if not same:
            raise _ToolFailure(
                f"memtrace_forget refused: memory {memory_id} belongs to another agent; you can "
                "only forget your own memories."
            )
    yield Call("delete_memory", (memory_id,))
    return f"Forgot {memory_id}: {memory.content[:80]}"


# -- the tools ---------------------------------------------------------------------------------


_DESCRIPTIONS: dict[str, str] = {
    "memtrace_remember": (
        "Store a fact, observation or event in long-term memory so it is available in later "
        "turns and future sessions. Use it for anything worth knowing later: user preferences, "
        "facts learned, tasks done, errors met. Returns the new memory's id. Storing the same "
        "content again is reported as already remembered (nothing is duplicated)."
    ),
    "memtrace_recall": (
        "List your recent memories, newest first, within a time window (the last 24 hours "
        "unless since is given; e.g. '2h', '7d'). Use it to see what happened recently. Each "
        "line shows [id] time type/event_type (session; tags): content."
    ),
    "memtrace_search": (
        "Search all of your memories by keywords, best match first. Use it to find a specific "
        "fact or past event whatever its age (e.g. query='customer email preference'). Each "
        "line shows [id] time type/event_type (session; tags): content."
    ),
    "memtrace_decide": (
        "Record a decision you made and the reasoning behind it, so that later turns and other "
        "sessions know what was decided and why. Returns the decision's memory id."
    ),
    "memtrace_session_context": (
        "Get a markdown summary of the current session's memories (recent actions, decisions, "
        "errors), or of your memories across sessions when this session has none yet. Use it "
        "to catch up on where things stand."
    ),
    "memtrace_forget": (
        "Permanently delete one of your memories by its id (from memtrace_recall or "
        "memtrace_search). Use it when a memory is wrong or must be removed. Only your own "
        "memories can be deleted."
    ),
}


def _build(
    handle: Any,
    agent_id: str | None,
    session_id: str | None,
    context_max_tokens: int | None,
) -> dict[str, FunctionTool]:
    """All six tools over ``handle``, by name."""

    async def run(name: str, ctx: ToolContext[Any], body: Callable[[Scope], Program]) -> str:
        scope = resolve_scope(ctx, agent_id=agent_id, session_id=session_id)
        try:
            return str(await drive_async(handle, body(scope)))
        except MemtraceError as exc:
            raise _ToolFailure(tool_error_message(name, exc)) from exc

    def tool(name: str) -> Callable[[Callable[..., Any]], FunctionTool]:
        return function_tool(
            name_override=name,
            description_override=_DESCRIPTIONS[name],
            use_docstring_info=False,
            strict_mode=True,
            failure_error_function=_failure_function(name),
        )

    @tool("memtrace_remember")
    async def remember(
        ctx: ToolContext[Any],
        content: Annotated[
            str,
            Field(
                description="What to remember, as one self-contained statement that will make "
                "sense later without this conversation (e.g. 'The customer prefers email over "
                "phone')."
            ),
        ],
        event_type: Annotated[
            str | None,
            Field(
                description="A short snake_case label of what kind of event or fact this is "
                "(e.g. 'user_preference', 'task_done', 'error'); letters, digits and '_', up "
                "to 64. null for 'general'."
            ),
        ] = None,
        memory_type: Annotated[
            Literal["episodic", "entity", "session"] | None,
            Field(
                description="'episodic' for something that happened or was observed, 'entity' "
                "for a lasting fact about a person or thing, 'session' for state of the current "
                "session; null for 'episodic'. Use memtrace_decide for decisions."
            ),
        ] = None,
        tags: Annotated[list[str] | None, Field(description=_TAGS)] = None,
        importance: Annotated[float | None, Field(description=_IMPORTANCE)] = None,
    ) -> str:
        return await run(
            "memtrace_remember",
            ctx,
            lambda s: _remember(s, content, event_type, memory_type, tags, importance),
        )

    @tool("memtrace_recall")
    async def recall(
        ctx: ToolContext[Any],
        since: Annotated[str | None, Field(description=_SINCE + " null for '24h'.")] = None,
        limit: Annotated[
            int | None,
            Field(description="The most memories to return (newest first); null for 20."),
        ] = None,
        memory_type: Annotated[
            _MemoryType | None, Field(description="Only memories of this type; null for all.")
        ] = None,
        event_type: Annotated[
            str | None,
            Field(description="Only memories with this event_type (e.g. 'error'); null for all."),
        ] = None,
        tags: Annotated[
            list[str] | None,
            Field(description="Only memories carrying all of these tags; null for any."),
        ] = None,
        this_session_only: Annotated[
            bool | None,
            Field(
                description="true to recall only the current session's memories; false or "
                "null for all of your sessions."
            ),
        ] = None,
    ) -> str:
        return await run(
            "memtrace_recall",
            ctx,
            lambda s: _recall(s, since, limit, memory_type, event_type, tags, this_session_only),
        )

    @tool("memtrace_search")
    async def search(
        ctx: ToolContext[Any],
        query: Annotated[
            str,
            Field(
                description="Keywords to look for (e.g. 'refund policy customer 42'); memories "
                "that match more of them rank first. Plain words, not a question."
            ),
        ],
        limit: Annotated[
            int | None, Field(description="The most results to return (best first); null for 10.")
        ] = None,
        since: Annotated[
            str | None, Field(description=_SINCE + " null to search all of your memories.")
        ] = None,
        memory_type: Annotated[
            _MemoryType | None, Field(description="Only memories of this type; null for all.")
        ] = None,
        tags: Annotated[
            list[str] | None,
            Field(description="Only memories carrying all of these tags; null for any."),
        ] = None,
    ) -> str:
        return await run(
            "memtrace_search", ctx, lambda s: _search(s, query, limit, since, memory_type, tags)
        )

    @tool("memtrace_decide")
    async def decide(
        ctx: ToolContext[Any],
        decision: Annotated[
            str,
            Field(
                description="The decision taken, as one statement (e.g. 'Escalate ticket 42 to "
                "tier 2')."
            ),
        ],
        reasoning: Annotated[
            str, Field(description="Why: the facts and trade-offs behind the decision.")
        ],
        tags: Annotated[list[str] | None, Field(description=_TAGS)] = None,
        importance: Annotated[float | None, Field(description=_IMPORTANCE)] = None,
    ) -> str:
        return await run(
            "memtrace_decide", ctx, lambda s: _decide(s, decision, reasoning, tags, importance)
        )

    @tool("memtrace_session_context")
    async def session_context(
        ctx: ToolContext[Any],
        max_tokens: Annotated[
            int | None,
            Field(
                description="Keep the summary within about this many tokens (newest memories "
                "kept first); null for the default budget."
            ),
        ] = None,
        since: Annotated[str | None, Field(description=_SINCE + " null for '24h'.")] = None,
    ) -> str:
        tokens = max_tokens if max_tokens is not None else context_max_tokens
        return await run(
            "memtrace_session_context", ctx, lambda s: _session_context(s, tokens, since)
        )

    @tool("memtrace_forget")
    async def forget(
        ctx: ToolContext[Any],
        memory_id: Annotated[
            str,
            Field(
                description="The id of the memory to delete, as shown in brackets by "
                "memtrace_recall or memtrace_search (e.g. 'mem_01JEXAMPLE...')."
            ),
        ],
    ) -> str:
        return await run("memtrace_forget", ctx, lambda s: _forget(s, memory_id))

    return {t.name: t for t in (remember, recall, search, decide, session_context, forget)}


def _tool_name(name: str) -> str:
    return name if name.startswith(_PREFIX) else _PREFIX + name


def create_memtrace_tools(
    client: MemtraceTarget,
    agent_id: str | None = None,
    *,
    session_id: str | None = None,
    include: Iterable[str] | None = None,
    context_max_tokens: int | None = 2000,
    api_key: str | None = None,
) -> list[Tool]:
    """The memtrace tools for an OpenAI Agents SDK ``Agent(tools=...)``: ``memtrace_remember``,
    ``memtrace_recall``, ``memtrace_search``, ``memtrace_decide``, ``memtrace_session_context``
    and ``memtrace_forget`` (or the subset named in ``include``, in that order).

    Args:
        client: a handle from ``memtrace_core.connect``/``aconnect``, a ``MemtraceHandle``, a
            memtrace URL (``sqlite:///…``, or ``http://…`` with ``api_key``), or the original
            SDK's ``memtrace.AsyncMemtrace``/``memtrace.Memtrace`` (its URL and key are used).
            An ``aconnect`` handle must be used on the event loop that opened it (not with
            ``Runner.run_sync``, which runs its own loop).
        agent_id: the agent whose memories the tools read and write, unless the run's context
            has an ``agent_id``.
        session_id: the session new memories belong to (and ``memtrace_session_context``
            describes), unless the run's context has a ``session_id``; ``None`` writes memories
            without a session and makes ``memtrace_session_context`` describe the agent.
        include: the tools wanted, with or without the ``memtrace_`` prefix (default all of
            :data:`TOOL_NAMES`).
        context_max_tokens: the token budget of ``memtrace_session_context`` when the model
            gives none (the engine enforces it); ``None`` for the engine's default size.
        api_key: the server key when ``client`` is an ``http(s)://`` URL.

    Raises ValueError for an unknown tool name in ``include``.
    """
    wanted = TOOL_NAMES if include is None else tuple(_tool_name(n) for n in include)
    unknown = [n for n in wanted if n not in TOOL_NAMES]
    if unknown:
        raise ValueError(f"unknown memtrace tool(s) {unknown}: choose from {', '.join(TOOL_NAMES)}")
    handle = as_handle(client, api_key=api_key)
    tools = _build(handle, agent_id, session_id, context_max_tokens)
    return [tools[name] for name in TOOL_NAMES if name in wanted]
