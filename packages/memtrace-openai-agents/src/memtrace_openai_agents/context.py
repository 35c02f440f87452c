"""Context injection that really injects: dynamic instructions carrying memtrace's context.

::

    from agents import Agent, Runner
    from memtrace_openai_agents.context import memtrace_instructions

    agent = Agent(
        name="support",
        instructions=memtrace_instructions(
            "sqlite:///memory.db", "You are a support agent.", agent_id="support-bot"
        ),
    )
    Runner.run_sync(agent, "hi", context={"session_id": "ticket-42"})

Before each model call the SDK calls the instructions with the run's ``RunContextWrapper`` and
the agent; :func:`memtrace_instructions` returns the base instructions followed by the engine's
context markdown, within a token budget (the engine enforces it): the session's context when
the session already has memories, else the agent's across its sessions — so a brand-new session
starts with what the agent remembers (the original integration asked a new, empty session for
context and so never injected anything). The agent and session come from the run context
(``agent_id`` / ``session_id`` attribute or mapping key) or the defaults given here.

If memtrace fails (unreachable, an unknown agent…) the run goes on with the base instructions
and a warning is logged: memory is an aid, not a precondition of the run.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from agents import Agent, RunContextWrapper

from memtrace_core.errors import MemtraceError, NotFoundError
from memtrace_core.models import SessionContext

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

__all__ = ["DEFAULT_HEADING", "MemtraceInstructions", "memtrace_instructions"]

logger = logging.getLogger(__name__)

#: The line that introduces the injected context (as in ``memtrace_langchain``).
DEFAULT_HEADING = (
    "Long-term memory (from memtrace): what you recorded in earlier turns and sessions, newest "
    "first. Use it when it is relevant; it may be incomplete."
)

#: Which context to inject: ``auto`` the session's when it has memories, else the agent's;
#: ``session`` only the session's (nothing without a session); ``agent`` always the agent's.
ContextScope = Literal["auto", "session", "agent"]

#: What ``base_instructions`` may be: the SDK's own ``Agent(instructions=...)`` shapes.
BaseInstructions = str | Callable[[RunContextWrapper[Any], Agent[Any]], str | Awaitable[str]] | None


class MemtraceInstructions:
    """Dynamic instructions for ``Agent(instructions=...)``: called as
    ``await instructions(run_context, agent)``, returns the base instructions followed by the
    memtrace context of the run's agent/session (see the module docstring). Built by
    :func:`memtrace_instructions`."""

    def __init__(
        self,
        memtrace: MemtraceTarget,
        base_instructions: BaseInstructions = None,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        max_tokens: int | None = 2000,
        since: str | None = "30d",
        scope: ContextScope = "auto",
        heading: str | None = DEFAULT_HEADING,
        api_key: str | None = None,
    ) -> None:
        if scope not in ("auto", "session", "agent"):
            raise ValueError(f"scope must be 'auto', 'session' or 'agent', got {scope!r}")
        self.handle = as_handle(memtrace, api_key=api_key)
        self.base_instructions = base_instructions
        self.agent_id = agent_id
        self.session_id = session_id
        self.max_tokens = max_tokens
        self.since = since
        self.scope: ContextScope = scope
        self.heading = heading

    async def __call__(self, run_context: RunContextWrapper[Any], agent: Agent[Any]) -> str:
        base = await self._base(run_context, agent)
        context = await self.context_text(run_context)
        if not context:
            return base
        addition = f"{self.heading}\n\n{context}" if self.heading else context
        return f"{base}\n\n{addition}" if base else addition

    async def _base(self, run_context: RunContextWrapper[Any], agent: Agent[Any]) -> str:
        base = self.base_instructions
        if base is None:
            return ""
        if isinstance(base, str):
            return base
        value = base(run_context, agent)
        if inspect.isawaitable(value):
            value = await value
        return str(value)

    async def context_text(self, run_context: RunContextWrapper[Any] | None) -> str | None:
        """The context markdown for the run's agent/session, ``None`` when there is none (no
        memories yet, or memtrace failed — logged)."""
        try:
            scope = resolve_scope(run_context, agent_id=self.agent_id, session_id=self.session_id)
        except (TypeError, ValueError) as exc:
            logger.warning("memtrace context not injected: %s", exc)
            return None
        try:
            context = await drive_async(self.handle, self._program(scope))
        except MemtraceError as exc:
            logger.warning("memtrace context not injected: %s: %s", type(exc).__name__, exc.message)
            return None
        if context is None or context.memory_count == 0:
            return None
        return str(context.context)

    def _program(self, scope: Scope) -> Program:
        options: dict[str, Any] = {}
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        if self.since is not None:
            options["since"] = self.since
        if self.scope == "session":
            if scope.session_id is None:
                return None
            try:
                session: SessionContext = yield Call(
                    "get_session_context", (scope.session_id,), options
                )
            except NotFoundError:
                return None
            return session
        return (yield from context_program(scope, options, session_first=self.scope == "auto"))


def memtrace_instructions(
    memtrace: MemtraceTarget,
    base_instructions: BaseInstructions = None,
    *,
    agent_id: str | None = None,
    session_id: str | None = None,
    max_tokens: int | None = 2000,
    since: str | None = "30d",
    scope: ContextScope = "auto",
    heading: str | None = DEFAULT_HEADING,
    api_key: str | None = None,
) -> MemtraceInstructions:
    """Dynamic instructions for ``Agent(instructions=...)`` that append memtrace's context.

    Args:
        memtrace: a handle from ``memtrace_core.connect``/``aconnect``, a ``MemtraceHandle``, a
            memtrace URL (with ``api_key`` for a server), or the original SDK's
            ``memtrace.AsyncMemtrace``/``memtrace.Memtrace``.
        base_instructions: the agent's own instructions: a string, or a callable
            ``(run_context, agent) -> str | Awaitable[str]`` (the SDK's shapes), or ``None``.
        agent_id / session_id: defaults, overridden by the run context's ``agent_id`` /
            ``session_id``.
        max_tokens: the context's token budget (the engine enforces it); ``None`` for the
            engine's default.
        since: how far back the context looks (``"30d"``; ``None`` for the engine's 24 h).
        scope: ``"auto"`` (the session's context when it has memories, else the agent's),
            ``"session"`` (only the session's) or ``"agent"`` (always the agent's).
        heading: the text placed before the context (``None`` for none).
        api_key: the server key when ``memtrace`` is an ``http(s)://`` URL.
    """
    return MemtraceInstructions(
        memtrace,
        base_instructions,
        agent_id=agent_id,
        session_id=session_id,
        max_tokens=max_tokens,
        since=since,
        scope=scope,
        heading=heading,
        api_key=api_key,
    )
