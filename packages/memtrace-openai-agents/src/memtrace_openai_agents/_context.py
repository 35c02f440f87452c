"""Which memtrace to talk to, and which agent and session a call belongs to: memtrace's
framework-neutral helpers (:mod:`memtrace_core.integration`: the handle — including the
original ``memtrace-sdk`` client —, the run-context scope, call programs and the injected
context), with the OpenAI Agents SDK's wording where it differs.

The SDK calls tools, dynamic instructions, hooks and sessions from coroutines only, so this
integration drives its programs with :func:`drive_async`; the run's context is
``RunContextWrapper.context`` / ``ToolContext.context`` (``Runner.run(..., context=ctx)``).
"""

from __future__ import annotations

from typing import Any

from memtrace_core.integration import (
    Call,
    MemtraceTarget,
    Program,
    Scope,
    as_handle,
    context_ids,
    context_program,
    drive_async,
    is_original_client,
)
from memtrace_core.integration import resolve_scope as _resolve_scope

__all__ = [
    "Call",
    "MemtraceTarget",
    "Program",
    "Scope",
    "as_handle",
    "context_ids",
    "context_program",
    "drive_async",
    "is_original_client",
    "resolve_scope",
]


def resolve_scope(wrapper: Any, *, agent_id: str | None, session_id: str | None) -> Scope:
    """The agent and session of a call (``wrapper`` is a ``RunContextWrapper``, a
    ``ToolContext`` or ``None``); see :func:`memtrace_core.integration.resolve_scope`."""
    return _resolve_scope(
        wrapper,
        agent_id=agent_id,
        session_id=session_id,
        hint=" (Runner.run(agent, input, context={'agent_id': ...}))",
    )
