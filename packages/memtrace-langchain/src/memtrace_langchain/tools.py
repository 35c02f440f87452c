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

The bodies, descriptions and argument schemas are memtrace's framework-neutral tool set
(:class:`memtrace_core.memory_tools.ToolSet`, here without a name prefix), shared with the
OpenAI Agents and CrewAI integrations; this module only wraps each as a ``StructuredTool``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool, ToolException

from memtrace_core.bridge import MemtraceHandle
from memtrace_core.memory_tools import ToolFailure, ToolSet

from ._context import MemtraceTarget, Scope, as_handle, resolve_scope

__all__ = ["TOOL_NAMES", "memtrace_tools"]

#: The tools :func:`memtrace_tools` builds, in this order.
TOOL_NAMES: tuple[str, ...] = ToolSet(prefix="").names


def _make_tool(
    tools: ToolSet,
    kind: str,
    handle: MemtraceHandle,
    agent_id: str | None,
    session_id: str | None,
) -> BaseTool:
    schema = tools.args_schema(kind)

    def arguments(
        runtime: ToolRuntime | None, kwargs: dict[str, Any]
    ) -> tuple[Scope, dict[str, Any]]:
        scope = resolve_scope(runtime, agent_id=agent_id, session_id=session_id)
        return scope, schema.model_validate(kwargs).model_dump()

    def run(runtime: Annotated[ToolRuntime | None, InjectedToolArg] = None, **kwargs: Any) -> str:
        scope, args = arguments(runtime, kwargs)
        try:
            return tools.run(handle, kind, scope, args)
        except ToolFailure as failure:
            raise ToolException(str(failure)) from failure

    async def arun(
        runtime: Annotated[ToolRuntime | None, InjectedToolArg] = None, **kwargs: Any
    ) -> str:
        scope, args = arguments(runtime, kwargs)
        try:
            return await tools.arun(handle, kind, scope, args)
        except ToolFailure as failure:
            raise ToolException(str(failure)) from failure

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=tools.name(kind),
        description=tools.description(kind),
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
    tools = ToolSet(prefix="", context_max_tokens=context_max_tokens)
    kinds = tools.kinds(include)
    handle = as_handle(memtrace, api_key=api_key)
    return [_make_tool(tools, kind, handle, agent_id, session_id) for kind in kinds]
