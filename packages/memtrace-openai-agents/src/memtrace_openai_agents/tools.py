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
exception that ends the run.

The bodies, descriptions and argument descriptions are memtrace's framework-neutral tool set
(:class:`memtrace_core.memory_tools.ToolSet` with the ``memtrace_`` prefix), shared with the
LangChain and CrewAI integrations; this module keeps only the SDK's side: the strict
``Annotated`` signatures (with the ``null`` wording of :meth:`ToolSet.arg_doc`) and the
``failure_error_function``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from agents import FunctionTool, RunContextWrapper, Tool, function_tool
from agents.tool_context import ToolContext
from pydantic import Field

from memtrace_core.bridge import MemtraceHandle
from memtrace_core.integration import memory_line
from memtrace_core.memory_tools import FilterMemoryType, ToolFailure, ToolSet, WritableMemoryType

from ._context import MemtraceTarget, as_handle, resolve_scope

__all__ = ["TOOL_NAMES", "create_memtrace_tools", "memory_line"]

logger = logging.getLogger(__name__)

_PREFIX = "memtrace_"
_TOOLS = ToolSet(prefix=_PREFIX)

#: The tools :func:`create_memtrace_tools` builds, in this order.
TOOL_NAMES: tuple[str, ...] = _TOOLS.names


def _doc(kind: str, arg: str) -> str:
    """The description of an argument in a strict schema (what ``null`` means included)."""
    return _TOOLS.arg_doc(kind, arg, strict=True)


def _failure_function(tool: str) -> Callable[[RunContextWrapper[Any], Exception], str]:
    """The SDK's ``failure_error_function`` of a tool: any exception the call raised (the SDK's
    own argument validation, a configuration error, a bug) becomes a message for the model."""

    def failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
        if isinstance(error, ToolFailure):
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


# -- the tools ---------------------------------------------------------------------------------


def _build(
    toolset: ToolSet,
    handle: MemtraceHandle,
    agent_id: str | None,
    session_id: str | None,
) -> dict[str, FunctionTool]:
    """All six tools over ``handle``, by kind."""

    async def run(kind: str, ctx: ToolContext[Any], args: dict[str, Any]) -> str:
        scope = resolve_scope(ctx, agent_id=agent_id, session_id=session_id)
        return await toolset.arun(handle, kind, scope, args)

    def tool(kind: str) -> Callable[[Callable[..., Any]], FunctionTool]:
        name = toolset.name(kind)
        return function_tool(
            name_override=name,
            description_override=toolset.description(kind),
            use_docstring_info=False,
            strict_mode=True,
            failure_error_function=_failure_function(name),
        )

    @tool("remember")
    async def remember(
        ctx: ToolContext[Any],
        content: Annotated[str, Field(description=_doc("remember", "content"))],
        event_type: Annotated[str | None, Field(description=_doc("remember", "event_type"))] = None,
        memory_type: Annotated[
            WritableMemoryType | None, Field(description=_doc("remember", "memory_type"))
        ] = None,
        tags: Annotated[list[str] | None, Field(description=_doc("remember", "tags"))] = None,
        importance: Annotated[
            float | None, Field(description=_doc("remember", "importance"))
        ] = None,
    ) -> str:
        return await run(
            "remember",
            ctx,
            {
                "content": content,
                "event_type": event_type,
                "memory_type": memory_type,
                "tags": tags,
                "importance": importance,
            },
        )

    @tool("recall")
    async def recall(
        ctx: ToolContext[Any],
        since: Annotated[str | None, Field(description=_doc("recall", "since"))] = None,
        limit: Annotated[int | None, Field(description=_doc("recall", "limit"))] = None,
        memory_type: Annotated[
            FilterMemoryType | None, Field(description=_doc("recall", "memory_type"))
        ] = None,
        event_type: Annotated[str | None, Field(description=_doc("recall", "event_type"))] = None,
        tags: Annotated[list[str] | None, Field(description=_doc("recall", "tags"))] = None,
        this_session_only: Annotated[
            bool | None, Field(description=_doc("recall", "this_session_only"))
        ] = None,
    ) -> str:
        return await run(
            "recall",
            ctx,
            {
                "since": since,
                "limit": limit,
                "memory_type": memory_type,
                "event_type": event_type,
                "tags": tags,
                "this_session_only": this_session_only,
            },
        )

    @tool("search")
    async def search(
        ctx: ToolContext[Any],
        query: Annotated[str, Field(description=_doc("search", "query"))],
        limit: Annotated[int | None, Field(description=_doc("search", "limit"))] = None,
        since: Annotated[str | None, Field(description=_doc("search", "since"))] = None,
        memory_type: Annotated[
            FilterMemoryType | None, Field(description=_doc("search", "memory_type"))
        ] = None,
        tags: Annotated[list[str] | None, Field(description=_doc("search", "tags"))] = None,
    ) -> str:
        return await run(
            "search",
            ctx,
            {
                "query": query,
                "limit": limit,
                "since": since,
                "memory_type": memory_type,
                "tags": tags,
            },
        )

    @tool("decide")
    async def decide(
        ctx: ToolContext[Any],
        decision: Annotated[str, Field(description=_doc("decide", "decision"))],
        reasoning: Annotated[str, Field(description=_doc("decide", "reasoning"))],
        tags: Annotated[list[str] | None, Field(description=_doc("decide", "tags"))] = None,
        importance: Annotated[float | None, Field(description=_doc("decide", "importance"))] = None,
    ) -> str:
        return await run(
            "decide",
            ctx,
            {"decision": decision, "reasoning": reasoning, "tags": tags, "importance": importance},
        )

    @tool("session_context")
    async def session_context(
        ctx: ToolContext[Any],
        max_tokens: Annotated[
            int | None, Field(description=_doc("session_context", "max_tokens"))
        ] = None,
        since: Annotated[str | None, Field(description=_doc("session_context", "since"))] = None,
    ) -> str:
        return await run("session_context", ctx, {"max_tokens": max_tokens, "since": since})

    @tool("forget")
    async def forget(
        ctx: ToolContext[Any],
        memory_id: Annotated[str, Field(description=_doc("forget", "memory_id"))],
    ) -> str:
        return await run("forget", ctx, {"memory_id": memory_id})

    return {
        "remember": remember,
        "recall": recall,
        "search": search,
        "decide": decide,
        "session_context": session_context,
        "forget": forget,
    }


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
    toolset = ToolSet(prefix=_PREFIX, context_max_tokens=context_max_tokens)
    kinds = toolset.kinds(include)
    handle = as_handle(client, api_key=api_key)
    tools = _build(toolset, handle, agent_id, session_id)
    return [tools[kind] for kind in kinds]
