"""Which agent and session a tool call or a model call belongs to, and the memtrace handle:
memtrace's framework-neutral helpers (:mod:`memtrace_core.integration`) plus what is
LangChain's own.

The tools, the middleware and the retriever are built with defaults (``agent_id=``,
``session_id=``); the LangChain runtime context of a run (``create_agent(...,
context_schema=Ctx)`` then ``agent.invoke(..., context=Ctx(agent_id=..., session_id=...))``)
overrides them per call, so one agent graph serves many agents and sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ModelWrapValidatorHandler, SecretStr

from memtrace_core.bridge import MemtraceHandle
from memtrace_core.integration import (
    Call,
    MemtraceTarget,
    Program,
    Scope,
    as_handle,
    context_ids,
    context_program,
    drive,
    drive_async,
)
from memtrace_core.integration import resolve_scope as _resolve_scope

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


def resolve_scope(runtime: Any, *, agent_id: str | None, session_id: str | None) -> Scope:
    """The agent and session of a call (``runtime`` is a ``ToolRuntime``, a LangGraph
    ``Runtime`` or ``None``); see :func:`memtrace_core.integration.resolve_scope`."""
    return _resolve_scope(
        runtime,
        agent_id=agent_id,
        session_id=session_id,
        hint=" (create_agent(..., context_schema=...), invoke(..., context=...))",
    )


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
