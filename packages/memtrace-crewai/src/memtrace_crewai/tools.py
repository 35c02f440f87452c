"""memtrace's memory tools as CrewAI ``BaseTool``s: ``memtrace_remember``, ``memtrace_recall``,
``memtrace_search``, ``memtrace_decide``, ``memtrace_session_context`` and ``memtrace_forget``.

::

    from crewai import Agent
    from memtrace_crewai import MemtraceMemory, memtrace_tools

    memory = MemtraceMemory("sqlite:///crew.db")
    researcher = Agent(role="Researcher", goal=..., backstory=...,
                       tools=memtrace_tools(memory, agent_role="Researcher"))

The tools are the same six every memtrace integration offers (bodies, descriptions and argument
schemas from :mod:`memtrace_core.memory_tools`), with the ``memtrace_`` prefix so they never
collide with CrewAI's own "Search memory" / "Save to memory" tools, which ``MemtraceMemory``
serves as well. Where the two differ: CrewAI's tools read and write the crew's memory by scope
(``MemtraceMemory.recall`` / ``remember``); these work on one memtrace **agent's** memories
across sessions and scopes — recall by time window, ranked search, decisions with reasoning, the
session's markdown context, forget by id.

A CrewAI tool has no run context, so the agent and session are fixed when the tools are built:
pass a :class:`MemtraceMemory` (its handle and session; ``agent_role`` maps a CrewAI role to the
memtrace agent the memory writes that role's memories as) or any memtrace target with
``agent_id``. Built from a ``MemtraceMemory``, ``memtrace_remember`` and ``memtrace_decide``
write into its namespace root (CrewAI scope ``/``), so the crew's memory recalls them too.
``memtrace_recall`` and ``memtrace_search`` never show a private CrewAI record (one written
with ``private=True``: CrewAI shows it only to a recall with its source, and a tool has none);
``memtrace_session_context`` is the session's whole context, private records included. Errors (bad arguments, an unknown id, memtrace unreachable) come back to the agent
as the tool's text result, saying what to do, never as an exception that ends the crew.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crewai.tools import BaseTool
from pydantic import ConfigDict, Field

from memtrace_core.integration import MemtraceTarget, Scope, as_handle
from memtrace_core.memory_tools import ToolFailure, ToolSet

from ._mapping import agent_id_for, privacy_filter
from .memory import MemtraceMemory

__all__ = ["TOOL_NAMES", "MemtraceTool", "memtrace_tools"]

_TOOLS = ToolSet(prefix="memtrace_")
#: The tools :func:`memtrace_tools` builds, in this order.
TOOL_NAMES: tuple[str, ...] = _TOOLS.names


class MemtraceTool(BaseTool):
    """One memtrace memory tool (see the module docstring); build them with
    :func:`memtrace_tools`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: str
    toolset: ToolSet = Field(exclude=True)
    handle: Any = Field(exclude=True, repr=False)
    agent_id: str
    session_id: str | None = None

    def _scope(self) -> Scope:
        return Scope(agent_id=self.agent_id, session_id=self.session_id)

    def _run(self, **kwargs: Any) -> str:
        try:
            return self.toolset.run(self.handle, self.kind, self._scope(), kwargs)
        except ToolFailure as failure:
            return str(failure)

    async def _arun(self, **kwargs: Any) -> str:
        try:
            return await self.toolset.arun(self.handle, self.kind, self._scope(), kwargs)
        except ToolFailure as failure:
            return str(failure)


def memtrace_tools(
    memtrace: MemtraceMemory | MemtraceTarget,
    agent_id: str | None = None,
    *,
    agent_role: str | None = None,
    session_id: str | None = None,
    include: Iterable[str] | None = None,
    context_max_tokens: int | None = 2000,
    api_key: str | None = None,
) -> list[BaseTool]:
    """The memtrace tools for a CrewAI ``Agent(tools=...)`` (or the subset named in
    ``include``, with or without the ``memtrace_`` prefix), in :data:`TOOL_NAMES` order.

    Args:
        memtrace: a :class:`MemtraceMemory` (the tools use its handle, its session and, by
            default, its agent), or what ``MemtraceMemory`` takes: a memtrace URL, a
            ``connect``/``aconnect`` handle, a ``MemtraceHandle``, the original SDK's client.
        agent_id: the memtrace agent whose memories the tools read and write.
        agent_role: instead of ``agent_id``, a CrewAI agent role, made an id the way
            ``MemtraceMemory`` does (``"Senior Researcher"`` -> ``senior-researcher``), so the
            tools see the memories the crew's memory wrote for that agent.
        session_id: the session new memories belong to and ``memtrace_session_context``
            describes (default: the memory's session; none for another target).
        include: the tools wanted (default all).
        context_max_tokens: the budget of ``memtrace_session_context`` when the agent gives
            none; ``None`` for the engine's default.
        api_key: the server key when ``memtrace`` is an ``http(s)://`` URL.

    Raises ValueError for an unknown tool name, or when no agent is given for a target that is
    not a ``MemtraceMemory``; TypeError for ``agent_id`` together with ``agent_role``.
    """
    if agent_id is not None and agent_role is not None:
        raise TypeError("give agent_id or agent_role, not both")
    if isinstance(memtrace, MemtraceMemory):
        if api_key is not None:
            raise TypeError("api_key applies only when a URL is given")
        handle = memtrace.handle
        default_agent: str | None = memtrace.agent_id
        session = session_id if session_id is not None else memtrace.session_id
        namespace: tuple[str, ...] | None = tuple(memtrace.namespace)
    else:
        handle = as_handle(memtrace, api_key=api_key)
        default_agent = None
        session = session_id
        namespace = None
    agent = agent_id or (agent_id_for(agent_role, default_agent or "") if agent_role else None)
    agent = agent or default_agent
    if not agent:
        raise ValueError(
            "memtrace_tools needs the agent whose memories the tools use: agent_id=... or "
            "agent_role=... (or pass a MemtraceMemory)"
        )
    tools = ToolSet(
        prefix="memtrace_",
        context_max_tokens=context_max_tokens,
        namespace=namespace,
        # CrewAI's privacy rule: a private record only for its source (the tools have none)
        read_filter=privacy_filter(None, include_private=False),
    )
    return [
        MemtraceTool(
            name=tools.name(kind),
            description=tools.description(kind),
            args_schema=tools.args_schema(kind),
            kind=kind,
            toolset=tools,
            handle=handle,
            agent_id=agent,
            session_id=session,
        )
        for kind in tools.kinds(include)
    ]
