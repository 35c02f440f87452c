"""``MemtraceStorage``: memtrace as a CrewAI ``StorageBackend``, for crews that keep CrewAI's
stock ``Memory`` (with its embedder and analysis LLM) and want memtrace to hold the records.

::

    from crewai.memory import Memory
    from memtrace_crewai import MemtraceStorage

    memory = Memory(storage=MemtraceStorage("sqlite:///crew.db"), llm=..., embedder=...)

or, process-wide, ``register_memtrace("sqlite:///crew.db")`` and then
``Memory(storage="memtrace")``.

**What memtrace does not do here: vectors.** ``search`` receives only the query's embedding, and
memtrace stores no embeddings (records are stored without theirs). It returns the scope's
records that pass the filters, ranked by recency and importance over the newest candidates,
with the score ``0.5 * (0.6 * 0.5 ** (age_days / 30) + 0.4 * importance)``: at most 0.5, since
it is not a similarity and stock ``Memory`` reads it as one (it asks its LLM to consolidate a
new record with stored ones whose score reaches ``consolidation_threshold``, 0.85 by default:
a recency score must never look like a near-duplicate). Stock ``Memory`` still calls its embedder on
every save and recall and its LLM to analyse saves and deep recalls: the recommended path is
:class:`memtrace_crewai.MemtraceMemory`, which ranks by keywords (the engine's ranked search)
and calls neither.

Every method maps onto one or a few memtrace calls (never a scan of the store): scopes are
namespaces, categories tags (any-of filters), record ids keys — see :mod:`memtrace_crewai._mapping`.
The blocking methods call memtrace's blocking method set; the ``a…`` methods await its async
one without blocking the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from crewai.memory.types import MemoryRecord, ScopeInfo
from crewai.memory.utils import normalize_scope_path

from memtrace_core.errors import (
    ConflictError,
    DuplicateMemoryError,
    NotFoundError,
    SupersededError,
)
from memtrace_core.ids import is_memory_id
from memtrace_core.integration import Call, MemtraceTarget, Program, as_handle, drive, drive_async
from memtrace_core.models import Memory

from ._mapping import Layout
from ._mapping import metadata_filter as metadata_filter_of

__all__ = ["MemtraceStorage", "register_memtrace"]

#: Most memories one engine call returns or writes.
_PAGE = 1000
#: How far a record id is followed through later versions (an update supersedes).
_MAX_HOPS = 64


class _Owner(Protocol):
    handle: Any
    layout: Layout
    agent_id: str
    session_id: str | None


# -- programs shared with MemtraceMemory --------------------------------------------------------


def current_memory(layout: Layout, record_id: str) -> Generator[Call, Any, Memory | None]:
    """The current memory of a CrewAI record id under the layout's root (None if none): a
    memory id is followed to its latest version, any other id is a key."""
    if not isinstance(record_id, str) or not record_id:
        return None
    prefix = list(layout.root)
    if is_memory_id(record_id):
        memory_id = record_id
        for _ in range(_MAX_HOPS):
            try:
                memory: Memory = yield Call("get_memory", (memory_id,))
            except NotFoundError:
                break
            if memory.superseded_by is None:
                if _under(memory.namespace, prefix):
                    return memory
                break
            memory_id = memory.superseded_by
        # a CrewAI id may look like a memory id (a record copied from another store): a key
    found = yield Call(
        "search_memories", (), {"key": record_id, "namespace_prefix": prefix, "limit": 1}
    )
    return found.results[0] if found.results else None


def refuse_async_only(handle: Any) -> None:
    """CrewAI calls its memory synchronously (recall before a task, saves in a thread): an
    ``aconnect()`` handle cannot serve those calls, so it is refused here, not at the first
    task."""
    if handle.is_async_only:
        raise TypeError(
            "CrewAI calls memory synchronously: give a URL or a connect() handle, not an "
            "aconnect() handle (the a… methods run on either)"
        )


def _under(namespace: Sequence[str] | None, prefix: Sequence[str]) -> bool:
    return namespace is not None and list(namespace[: len(prefix)]) == list(prefix)


def delete_program(
    layout: Layout,
    scope_prefix: str | None,
    categories: list[str] | None,
    record_ids: list[str] | None,
    older_than: datetime | None,
    metadata_filter: dict[str, Any] | None,
) -> Program:
    """CrewAI's ``delete`` / ``forget``: every filter given must hold; ``record_ids`` are memory
    ids or keys. A record goes with all of its versions (an updated record is a supersession
    chain: deleting only its current version would make the previous one current again).
    Returns how many memories (versions included) were deleted."""
    base: dict[str, Any] = {
        "namespace_prefix": layout.namespace(scope_prefix),
        "all_versions": True,
    }
    if categories:
        base["tags_any"] = list(categories)
    if older_than is not None:
        base["until"] = older_than.replace(tzinfo=UTC) if older_than.tzinfo is None else older_than
    meta = metadata_filter_of(metadata_filter)
    if meta:
        base["metadata"] = meta
    if not record_ids:
        return (yield Call("delete_memories", (), base))
    ids = [i for i in record_ids if isinstance(i, str) and is_memory_id(i)]
    # every id is also tried as a key: a CrewAI id may look like a memory id
    keys = [i for i in record_ids if isinstance(i, str) and i]
    deleted = 0
    for name, values in (("ids", ids), ("keys", keys)):
        for start in range(0, len(values), _PAGE):
            deleted += yield Call(
                "delete_memories", (), {**base, name: values[start : start + _PAGE]}
            )
    return deleted


def list_program(
    layout: Layout, scope_prefix: str | None, limit: int, offset: int
) -> Generator[Call, Any, list[MemoryRecord]]:
    """Records of a scope (and below), newest first."""
    if limit <= 0 or offset < 0:
        return []
    out: list[MemoryRecord] = []
    prefix = layout.namespace(scope_prefix)
    while len(out) < limit:
        page = min(_PAGE, limit - len(out))
        found = yield Call(
            "search_memories",
            (),
            {"namespace_prefix": prefix, "limit": page, "offset": offset + len(out)},
        )
        out.extend(layout.record(m) for m in found.results)
        if len(found.results) < page or not found.has_more:
            break
    return out


def scopes_program(layout: Layout, parent: str | None) -> Generator[Call, Any, list[str]]:
    """The immediate child scopes of ``parent``, sorted."""
    prefix = layout.namespace(parent)
    depth = len(prefix) + 1
    children: list[str] = []
    offset = 0
    while True:
        found = yield Call(
            "list_namespaces",
            (),
            {"prefix": prefix, "max_depth": depth, "limit": _PAGE, "offset": offset},
        )
        # exact prefix: a stored "*" part would otherwise match every part
        children.extend(
            layout.scope(ns)
            for ns in found.namespaces
            if len(ns) == depth and list(ns[: len(prefix)]) == prefix
        )
        if len(found.namespaces) < _PAGE:
            break
        offset += _PAGE
    return sorted(set(children))


def summary_program(layout: Layout, scope: str | None) -> Program:
    """The engine's summary (count, oldest, newest, tags) of a scope and below."""
    return (
        yield Call(
            "summarize_memories",
            (),
            {"namespace_prefix": layout.namespace(scope), "tag_limit": 1000},
        )
    )


def scope_info_program(layout: Layout, scope: str) -> Generator[Call, Any, ScopeInfo]:
    path = normalize_scope_path(scope or "/")
    summary = yield from summary_program(layout, path)
    children = yield from scopes_program(layout, path)
    return ScopeInfo(
        path=path,
        record_count=summary.count,
        categories=sorted(summary.tags),
        oldest_record=None if summary.oldest is None else _naive(summary.oldest),
        newest_record=None if summary.newest is None else _naive(summary.newest),
        child_scopes=children,
    )


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


#: How often an update retries when another writer updated the record first.
_UPDATE_ATTEMPTS = 8


def update_program(
    layout: Layout, record_id: str, changes: dict[str, Any], *, dedup: bool = False
) -> Generator[Call, Any, Memory | None]:
    """Write a new version of a record with ``changes`` (MemoryRecord fields) applied: it
    supersedes the current version (history stays readable with ``as_of``), keeps its key (so
    a keyed record keeps its id), agent, session, types and expiry, and is never taken for a
    duplicate of another memory. Concurrent updates: the last one wins (a write that lost the
    race retries on the newer version). With ``dedup`` the new version gets the dedup key of
    what it now says (so a later repeat of it is caught), unless another memory says that
    already: then it is written without one. None when there is no such record."""
    for _ in range(_UPDATE_ATTEMPTS):
        current = yield from current_memory(layout, record_id)
        if current is None:
            return None
        merged = layout.record(current).model_copy(update=changes)
        write = layout.write(
            merged.content,
            scope=merged.scope,
            agent_id=current.agent_id,
            session_id=current.session_id,
            categories=merged.categories,
            metadata=merged.metadata,
            importance=merged.importance
            if current.importance is not None or "importance" in changes
            else None,
            source=merged.source,
            private=merged.private,
            key=current.key,
            time=merged.created_at,
            event_type=current.event_type,
            memory_type=current.memory_type,
            dedup=dedup,
        )
        write["supersedes"] = current.id
        for name in ("expires_at", "parent_id", "payload"):
            value = getattr(current, name)
            if value is not None:
                write[name] = value
        if not dedup:
            write["dedup"] = False
        try:
            try:
                memory: Memory = yield Call("add_memory", (write,))
            except DuplicateMemoryError:
                # another memory says this already; this record says it too
                write.pop("dedup_key", None)
                memory = yield Call("add_memory", ({**write, "dedup": False},))
        except SupersededError:
            continue  # another update won the race: apply this one on top of it
        return memory
    raise ConflictError(f"record {record_id} is being updated by others; try again")


def recency_score(record: MemoryRecord, now: datetime) -> float:
    """The storage's score of a record without vectors: recency (half-life 30 days) and
    importance, 0..0.5 (not a similarity: see the module docstring)."""
    age_days = max(0.0, (now - record.created_at).total_seconds() / 86400)
    return float(0.5 * (0.6 * 0.5 ** (age_days / 30) + 0.4 * record.importance))


class MemtraceStorage:
    """CrewAI's ``StorageBackend`` protocol over memtrace (see the module docstring).

    Args:
        memtrace: a memtrace URL (``sqlite:///…``, ``http://…`` with ``api_key``), a handle from
            ``memtrace_core.connect``/``aconnect``, a ``MemtraceHandle``, or the original SDK's
            client.
        agent_id: the memtrace agent the records are written as (CrewAI's records carry no
            agent).
        session_id: the memtrace session new records belong to (None: none).
        namespace: the namespace root under which CrewAI scopes live.
        api_key: the server key when ``memtrace`` is an ``http(s)://`` URL.
    """

    def __init__(
        self,
        memtrace: MemtraceTarget,
        *,
        agent_id: str = "crewai",
        session_id: str | None = None,
        namespace: Sequence[str] = ("crewai",),
        api_key: str | None = None,
    ) -> None:
        self.handle = as_handle(memtrace, api_key=api_key)
        refuse_async_only(self.handle)
        self.layout = Layout(namespace)
        self.agent_id = agent_id
        self.session_id = session_id

    # -- programs ------------------------------------------------------------------------------

    def _save(self, records: list[MemoryRecord]) -> Program:
        writes = [
            self.layout.write(
                r.content,
                scope=r.scope,
                agent_id=self.agent_id,
                session_id=self.session_id,
                categories=r.categories,
                metadata=r.metadata,
                importance=r.importance,
                source=r.source,
                private=r.private,
                key=r.id,
                time=r.created_at,
            )
            for r in records
        ]
        for start in range(0, len(writes), _PAGE):
            yield Call("add_memories", (writes[start : start + _PAGE],))

    def _search(
        self,
        scope_prefix: str | None,
        categories: list[str] | None,
        metadata_filter: dict[str, Any] | None,
        limit: int,
        min_score: float,
    ) -> Generator[Call, Any, list[tuple[MemoryRecord, float]]]:
        if limit <= 0:
            return []
        fields: dict[str, Any] = {
            "namespace_prefix": self.layout.namespace(scope_prefix),
            "limit": min(_PAGE, max(limit * 4, 50)),
        }
        if categories:
            fields["tags_any"] = list(categories)
        meta = metadata_filter_of(metadata_filter)
        if meta:
            fields["metadata"] = meta
        found = yield Call("search_memories", (), fields)
        now = datetime.now(UTC).replace(tzinfo=None)
        scored = [(r, recency_score(r, now)) for r in map(self.layout.record, found.results)]
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return [(r, s) for r, s in scored if s >= min_score][:limit]

    def _update(self, record: MemoryRecord) -> Program:
        changes = record.model_dump(
            include={
                "content",
                "scope",
                "categories",
                "metadata",
                "importance",
                "source",
                "private",
                "created_at",
            }
        )
        memory = yield from update_program(self.layout, record.id, changes)
        if memory is None:  # not stored (any more): store it, under its id
            yield from self._save([record])

    def _get(self, record_id: str) -> Generator[Call, Any, MemoryRecord | None]:
        memory = yield from current_memory(self.layout, record_id)
        return None if memory is None else self.layout.record(memory)

    # -- the StorageBackend protocol ---------------------------------------------------------

    def _run(self, program: Program) -> Any:
        return drive(self.handle, program)

    def save(self, records: list[MemoryRecord]) -> None:
        self._run(self._save(records))

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """The scope's records passing the filters, by recency and importance (the embedding
        is not used: memtrace stores no vectors)."""
        return self._run(self._search(scope_prefix, categories, metadata_filter, limit, min_score))  # type: ignore[no-any-return]

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        return int(
            self._run(
                delete_program(
                    self.layout, scope_prefix, categories, record_ids, older_than, metadata_filter
                )
            )
        )

    def update(self, record: MemoryRecord) -> None:
        """Replace a record: a new version that supersedes the current one (the history stays
        readable with ``as_of``); a record id that is a key keeps its id."""
        self._run(self._update(record))

    def get_record(self, record_id: str) -> MemoryRecord | None:
        return self._run(self._get(record_id))  # type: ignore[no-any-return]

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        return self._run(list_program(self.layout, scope_prefix, limit, offset))  # type: ignore[no-any-return]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        return self._run(scope_info_program(self.layout, scope))  # type: ignore[no-any-return]

    def list_scopes(self, parent: str = "/") -> list[str]:
        return self._run(scopes_program(self.layout, parent))  # type: ignore[no-any-return]

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        return dict(self._run(summary_program(self.layout, scope_prefix)).tags)

    def count(self, scope_prefix: str | None = None) -> int:
        return int(self._run(summary_program(self.layout, scope_prefix)).count)

    def reset(self, scope_prefix: str | None = None) -> None:
        """Delete every record of the scope and below (``None``: everything under the
        namespace root, nothing outside it)."""
        self._run(delete_program(self.layout, scope_prefix, None, None, None, None))

    async def asave(self, records: list[MemoryRecord]) -> None:
        await drive_async(self.handle, self._save(records))

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        return await drive_async(  # type: ignore[no-any-return]
            self.handle, self._search(scope_prefix, categories, metadata_filter, limit, min_score)
        )

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        program = delete_program(
            self.layout, scope_prefix, categories, record_ids, older_than, metadata_filter
        )
        return int(await drive_async(self.handle, program))

    def close(self) -> None:
        """Close the memtrace handle if this storage opened it from a URL."""
        self.handle.close()


def register_memtrace(
    memtrace: MemtraceTarget | Callable[[], MemtraceStorage] | None = None,
    *,
    name: str = "memtrace",
    api_key: str | None = None,
    **options: Any,
) -> None:
    """Make ``Memory(storage="memtrace")`` (or ``name``) use memtrace, process-wide, through
    CrewAI's ``set_memory_storage_factory``. ``memtrace`` is what :class:`MemtraceStorage`
    takes (default: the ``MEMTRACE_URL`` / ``MEMTRACE_API_KEY`` environment variables); each
    ``Memory`` gets its own storage. Other storage names are left to CrewAI (a factory set
    before is kept for them). ``register_memtrace(None)`` with no environment is a
    ValueError."""
    import os

    from crewai.memory.storage import factory as storage_factory

    target: Any = memtrace
    if target is None:
        target = os.environ.get("MEMTRACE_URL")
        api_key = api_key or os.environ.get("MEMTRACE_API_KEY")
        if not target:
            raise ValueError(
                "register_memtrace needs a memtrace URL or handle (or MEMTRACE_URL in the "
                "environment)"
            )
    current = storage_factory._factory
    # registering again adds (or replaces) one name; other factories stay in the chain
    targets: dict[str, Callable[[], MemtraceStorage]] = dict(
        getattr(current, "memtrace_targets", {})
    )
    chained = getattr(current, "memtrace_chained", current)

    def make() -> MemtraceStorage:
        if callable(target) and not isinstance(target, str):
            return target()  # type: ignore[no-any-return]
        return MemtraceStorage(target, api_key=api_key, **options)

    targets[name] = make

    def factory(spec: str) -> Any:
        if spec in targets:
            return targets[spec]()
        return chained(spec) if chained is not None else None

    factory.memtrace_targets = targets  # type: ignore[attr-defined]
    factory.memtrace_chained = chained  # type: ignore[attr-defined]
    storage_factory.set_memory_storage_factory(factory)
