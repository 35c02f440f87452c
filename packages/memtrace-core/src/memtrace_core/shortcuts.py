"""The shortcuts ``remember``, ``decide``, ``recall`` (and ``export_jsonl``), in one place: :class:`Shortcuts` is a
base class of both the engine (:class:`~memtrace_core.engine.AsyncMemtrace`) and the HTTP client
(:class:`~memtrace_core.client.AsyncMemtraceClient`), written in terms of their ``add_memory`` and
``list_memories``, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from .errors import ValidationError

if TYPE_CHECKING:
    from .models import DeleteFilter, ListOptions, Memory, MemoryCreate, MemoryList

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


class Shortcuts:
    """``remember``, ``decide``, ``recall`` and ``export_jsonl`` for any class that implements
    ``add_memory``, ``list_memories`` and ``iter_export`` (the engine and the HTTP client)."""

    async def add_memory(
        self, memory: MemoryCreate | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> Memory:
        raise NotImplementedError

    async def list_memories(
        self, options: ListOptions | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> MemoryList:
        raise NotImplementedError

    def iter_export(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> AsyncIterator[str]:
        raise NotImplementedError

    async def export_jsonl(
        self,
        out: IO[str],
        criteria: DeleteFilter | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> int:
        """Write :meth:`iter_export` to a text stream. Returns the number of lines written."""
        count = 0
        async for line in self.iter_export(criteria, **fields):
            out.write(line)
            count += 1
        return count

    async def remember(
        self,
        /,
        agent_id: str,
        content: str,
        *,
        session_id: str | None = None,
        memory_type: str = "episodic",
        event_type: str = "general",
        tags: list[str] | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory:
        """Store an episodic memory (what the agent did or saw)."""
        return await self.add_memory(
            remember_item(
                agent_id,
                content,
                session_id=session_id,
                memory_type=memory_type,
                event_type=event_type,
                tags=tags,
                importance=importance,
                metadata=metadata,
            )
        )

    async def decide(
        self,
        /,
        agent_id: str,
        decision: str,
        reasoning: str,
        *,
        session_id: str | None = None,
        tags: list[str] | None = None,
        importance: float | None = None,
    ) -> Memory:
        """Record a decision and why (``memory_type=decision``, ``event_type=decision``)."""
        return await self.add_memory(
            decision_item(
                agent_id,
                decision,
                reasoning,
                session_id=session_id,
                tags=tags,
                importance=importance,
            )
        )

    async def recall(
        self,
        /,
        agent_id: str,
        since: str | None = RECALL_SINCE,
        *,
        limit: int = RECALL_LIMIT,
        **filters: Any,
    ) -> MemoryList:
        """The agent's recent memories, newest first (``since`` defaults to 24 h)."""
        return await self.list_memories(**recall_options(agent_id, since, limit, filters))


__all__ = [
    "RECALL_LIMIT",
    "RECALL_SINCE",
    "Shortcuts",
    "decision_item",
    "recall_options",
    "remember_item",
]
