"""The rules of the shortcuts ``remember``, ``decide`` and ``recall``, in one place: the engine
(:class:`~memtrace_core.engine.AsyncMemtrace`) and the HTTP client
(:class:`~memtrace_core.client.AsyncMemtraceClient`) both build their request here, so the client
only sends it.
"""

from __future__ import annotations

from typing import Any

from .errors import ValidationError

#: ``recall``'s default window and page size.
RECALL_SINCE = "24h"
RECALL_LIMIT = 100


def remember_item(
    agent_id: str,
    content: str,
    *,
    session_id: str | None,
    memory_type: str,
    event_type: str,
    tags: list[str] | None,
    importance: float | None,
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    """The memory ``remember`` writes (validated as a :class:`~memtrace_core.models.MemoryCreate`
    by the engine)."""
    return {
        "agent_id": agent_id,
        "content": content,
        "session_id": session_id,
        "memory_type": memory_type,
        "event_type": event_type,
        "tags": tags,
        "importance": importance,
        "metadata": metadata,
    }


def decision_item(
    agent_id: str,
    decision: str,
    reasoning: str,
    *,
    session_id: str | None,
    tags: list[str] | None,
    importance: float | None,
) -> dict[str, Any]:
    """The memory ``decide`` writes: ``memory_type`` and ``event_type`` are ``decision`` and the
    reasoning goes to ``metadata.reasoning``."""
    return {
        "agent_id": agent_id,
        "content": decision,
        "memory_type": "decision",
        "event_type": "decision",
        "metadata": {"reasoning": reasoning},
        "session_id": session_id,
        "tags": tags,
        "importance": importance,
    }


def recall_options(
    agent_id: str, since: str | None, limit: int, filters: dict[str, Any]
) -> dict[str, Any]:
    """The :class:`~memtrace_core.models.ListOptions` of ``recall``: the agent's memories in
    the window, newest first (so ``order`` cannot be given)."""
    if "order" in filters:
        raise ValidationError("recall lists newest first: order is not accepted", field="order")
    return {**filters, "agent_id": agent_id, "since": since, "limit": limit, "order": "desc"}


__all__ = ["RECALL_LIMIT", "RECALL_SINCE", "decision_item", "recall_options", "remember_item"]
