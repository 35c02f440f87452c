"""How CrewAI's memory model maps onto memtrace's, in one place (docs/integrations/crewai.md).

=====================  ==========================================================================
CrewAI                 memtrace
=====================  ==========================================================================
``scope`` ``/a/b``     ``namespace`` ``[*root, "a", "b"]`` (root ``["crewai"]`` by default;
                       ``/`` is the root itself). A scope prefix is a namespace prefix.
record ``id``          the memory's ``key``: every record this integration writes has one
                       (CrewAI's id for stock ``Memory``'s records, a new UUID for
                       ``MemtraceMemory``'s), so an update keeps the id and a delete by id
                       removes every version. A memory without a key (written by other means)
                       reads with its memory id ``mem_…``.
(dedup)                ``MemtraceMemory`` names each write's ``dedup_key``: a hash of namespace,
                       agent, event type, source, privacy and the full content, so the engine's
                       dedup window catches a repeated fact and never merges two scopes, two
                       users' private facts or two facts that share a long prefix.
``content``            ``content``
``categories``         ``tags`` (a category filter matches any of them: ``tags_any``)
``importance``         ``importance`` (0..1; a memory without one reads as 0.5)
``metadata``           ``metadata`` (the user's keys, verbatim), plus the reserved keys
                       ``crewai_source``, ``crewai_private`` and ``crewai_audience``
``source``             ``metadata.crewai_source``
``private``            ``metadata.crewai_private``; a private record also gets
                       ``crewai_audience`` = its source, so the privacy rule ("visible only to
                       its source, or with include_private") is one metadata filter
``created_at``         ``time`` (the event time; naive UTC on the CrewAI side)
``last_accessed``      ``recorded_at`` (memtrace does not rewrite a memory when it is read)
agent role             ``agent_id``: the role made an id (``"Senior Researcher"`` ->
                       ``senior-researcher``), else the integration's ``agent_id``
(the crew run)         ``session_id``: the integration's session (one per MemtraceMemory unless
                       given)
=====================  ==========================================================================
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crewai.memory.types import MemoryRecord
from crewai.memory.utils import normalize_scope_path

from memtrace_core.models import Memory

__all__ = [
    "AUDIENCE",
    "PRIVATE",
    "RESERVED",
    "SOURCE",
    "Layout",
    "agent_id_for",
    "metadata_filter",
    "naive_utc",
    "privacy_filter",
]

SOURCE = "crewai_source"
PRIVATE = "crewai_private"
AUDIENCE = "crewai_audience"
#: Metadata keys this integration writes itself; a user's metadata may not use them.
RESERVED = frozenset({SOURCE, PRIVATE, AUDIENCE})

_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")


def agent_id_for(role: str | None, default: str) -> str:
    """A memtrace agent id for a CrewAI agent role: runs of characters an id cannot hold become
    ``-``, lower case, at most 128 characters, starting with a letter (``agent-`` is put in
    front otherwise); ``default`` when there is no role or nothing of it is left."""
    if not role:
        return default
    slug = _NOT_ID.sub("-", role.strip().lower()).strip("-")
    if not slug:
        return default
    if not slug[0].isalpha() or not slug[0].isascii():
        slug = f"agent-{slug}"
    return slug[:128].rstrip("-_") or default


def naive_utc(value: datetime) -> datetime:
    """A datetime as CrewAI keeps them: naive, in UTC."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def aware_utc(value: datetime) -> datetime:
    """A CrewAI datetime (naive = UTC) as an aware one."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def metadata_filter(flt: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """CrewAI's ``metadata_filter`` (every key's value equal, as LanceDB compares) as a
    memtrace metadata filter. A value that is an object, or a list holding one, is refused:
    memtrace would match an object as a subset (and ``$``-keys inside it as operators), not as
    an equal object."""
    if not flt:
        return None
    if not isinstance(flt, Mapping):
        raise TypeError(f"metadata_filter must be a dict, got {type(flt).__name__}")
    for key, value in flt.items():
        if isinstance(value, Mapping) or (
            isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value)
        ):
            raise ValueError(
                f"metadata_filter[{key!r}]: an object value is not supported (compare its "
                "fields one by one, e.g. {'owner.team': ...} is not a path either: filter on "
                "a top-level scalar or list)"
            )
    return dict(flt)


def privacy_filter(source: str | None, include_private: bool) -> dict[str, Any] | None:
    """The metadata filter of CrewAI's privacy rule: a private record is visible only to a
    recall with the same ``source``, or with ``include_private``."""
    if include_private:
        return None
    if source:
        return {AUDIENCE: {"$in": [None, source]}}
    return {AUDIENCE: None}


class Layout:
    """Where CrewAI's records live in memtrace: the namespace root under which scopes are
    namespaces."""

    def __init__(self, root: Sequence[str] = ("crewai",)) -> None:
        root = tuple(root)
        if not root or not all(isinstance(p, str) and p for p in root):
            raise ValueError("namespace root: a non-empty list of non-empty strings")
        self.root = root

    def namespace(self, scope: str | None) -> list[str]:
        """The namespace of a CrewAI scope (``None`` and ``/``: the root)."""
        if scope is None:
            return list(self.root)
        if not isinstance(scope, str):
            raise TypeError(f"a scope is a string path such as '/project/x', got {scope!r}")
        parts = [p for p in normalize_scope_path(scope).split("/") if p]
        if "*" in parts:
            raise ValueError(f"invalid scope {scope!r}: '*' is not a scope name (it is a wildcard)")
        return [*self.root, *parts]

    def scope(self, namespace: Sequence[str] | None) -> str:
        """The CrewAI scope of a memtrace namespace (``/`` outside the root)."""
        if not namespace or tuple(namespace[: len(self.root)]) != self.root:
            return "/"
        rest = namespace[len(self.root) :]
        return "/" + "/".join(rest) if rest else "/"

    def record(self, memory: Memory) -> MemoryRecord:
        """A memtrace memory as a CrewAI record."""
        meta = dict(memory.metadata or {})
        source = meta.pop(SOURCE, None)
        private = meta.pop(PRIVATE, False)
        meta.pop(AUDIENCE, None)
        return MemoryRecord(
            id=memory.key if memory.key is not None else memory.id,
            content=memory.content,
            scope=self.scope(memory.namespace),
            categories=list(memory.tags or ()),
            metadata=meta,
            importance=0.5 if memory.importance is None else memory.importance,
            created_at=naive_utc(memory.time),
            last_accessed=naive_utc(memory.recorded_at),
            source=source if isinstance(source, str) else None,
            private=private is True,
        )

    def write(
        self,
        content: str,
        *,
        scope: str | None,
        agent_id: str,
        session_id: str | None,
        categories: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        key: str | None = None,
        time: datetime | None = None,
        event_type: str = "general",
        memory_type: str = "episodic",
        dedup: bool = False,
    ) -> dict[str, Any]:
        """The memtrace write (``MemoryCreate`` fields) of one CrewAI record; ``dedup`` names
        its ``dedup_key`` (see the module docstring)."""
        if not isinstance(content, str):
            raise TypeError(f"memory content must be a string, got {type(content).__name__}")
        if not content.strip():
            raise ValueError("memory content must be a non-empty string")
        meta = dict(metadata or {})
        clash = sorted(RESERVED & meta.keys())
        if clash:
            raise ValueError(
                f"metadata keys {clash} are reserved by memtrace-crewai (source and private are "
                "arguments of their own)"
            )
        source = source or None
        if source is not None:
            meta[SOURCE] = source
        if private:
            meta[PRIVATE] = True
            meta[AUDIENCE] = source or ""
        namespace = self.namespace(scope)
        write: dict[str, Any] = {
            "agent_id": agent_id,
            "content": content,
            "event_type": event_type,
            "memory_type": memory_type,
            "namespace": namespace,
            "metadata": meta or None,
        }
        if dedup:
            identity = [namespace, agent_id, event_type, source, bool(private), content]
            digest = hashlib.sha256(
                json.dumps(identity, ensure_ascii=False).encode("utf-8", "surrogatepass")
            )
            write["dedup_key"] = "crewai:" + digest.hexdigest()
        if session_id is not None:
            write["session_id"] = session_id
        tags = list(categories or ())
        if tags:
            write["tags"] = tags
        if importance is not None:
            write["importance"] = importance
        if key is not None:
            write["key"] = key
        if time is not None:
            write["time"] = aware_utc(time)
        return write
