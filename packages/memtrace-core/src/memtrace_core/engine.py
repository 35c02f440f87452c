"""The engine: :class:`AsyncMemtrace` holds every business rule; stores only store.

Rules owned here: validation and limits, dedup keys and the dedup window, time windows, tenancy
(every call is scoped to one org), agent resolution by id or name, keyword ranking, context
assembly, stats, export/import. :class:`~memtrace_core.sync.Memtrace` is its blocking twin and
:class:`~memtrace_core.client.AsyncMemtraceClient` serves the same methods over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import re
import tempfile
import time as _time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from . import ranking
from .context import estimate_tokens, render_within
from .errors import (
    ConflictError,
    CorruptRowError,
    DuplicateMemoryError,
    NotFoundError,
    SupersededError,
    ValidationError,
    WriteRejectedError,
    show_value,
)
from .feed import FeedHub, Watch, WatchStream
from .ids import is_memory_id, memory_id, random_id
from .models import (
    SESSION_STATUSES,
    Activity,
    ActivityBucket,
    ActivityQuery,
    Agent,
    AgentContext,
    AgentList,
    AgentStats,
    BatchResult,
    ContextOptions,
    CreateSessionRequest,
    DeleteFilter,
    DuplicateInfo,
    ImportResult,
    ListOptions,
    Memory,
    MemoryCreate,
    MemoryList,
    MemorySummary,
    NamespaceList,
    RegisterAgentRequest,
    RetentionInfo,
    RetentionPolicy,
    RetentionReport,
    SearchQuery,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
    SummaryQuery,
    UpdateSessionRequest,
    WatchOptions,
    trusted_memory,
)
from .plugins import PluginRegistry, default_registry
from .retention import Resolved, Scope, check_policy, describe, parse_max_age
from .shortcuts import Shortcuts
from .stores.base import (
    InsertOutcome,
    KeywordQuery,
    MemoryFilter,
    MemoryRecord,
    Store,
    StoreHealth,
    SupersedeError,
)
from .timeutil import (
    MAX_RELATIVE_SECONDS,
    MIN_US,
    format_us,
    from_us,
    now_us,
    parse_as_of,
    parse_timestamp,
    to_us,
    window,
)
from .validation import (
    DEFAULT_LIMIT,
    LIMIT_CEILINGS,
    Limits,
    check_batch,
    check_export_criteria,
    check_id,
    check_json,
    check_key,
    check_limit,
    check_memory_type,
    check_namespace,
    check_offset,
    check_one_of,
    check_order,
    check_pop_criteria,
    check_ref,
    check_tags,
    check_text,
    check_time_us,
    check_type_name,
    check_values,
    coerce,
    dedup_key,
    keyed_dedup_key,
    merge_item,
    metadata_conditions,
    namespaced_dedup_key,
    resolve_expiry,
    validate_memory,
)

R = TypeVar("R")

DEFAULT_ORG = "org_default"
#: The ``event_type`` that agent stats count as an error (the original's rule).
ERROR_EVENT_TYPE = "error"
_HOUR_US = 3600 * 1_000_000

#: A ranked search (``query``) scores ``offset + limit + 1`` candidates: offset + limit may not
#: exceed this (a 400 above it; filter-only searches and lists page without such a bound).
MAX_RANKED_WINDOW = 1_000
#: Above these sizes CPU-bound steps run in a worker thread instead of on the event loop: a
#: batch's validation (items), a search's reranking (candidates x query terms), and the query
#: analysis of long queries (terms).
_OFF_LOOP_BATCH = 100
_OFF_LOOP_RANKING = 20_000
_OFF_LOOP_TERMS = 32
#: :meth:`AsyncMemtrace.get_activity`: the most buckets one answer has, the shortest bucket,
#: and the origin of the bucket grid (Monday 1970-01-05T00:00:00Z: bucket starts are whole
#: minutes, hours and UTC midnights, and a 1w bucket starts on a Monday).
MAX_ACTIVITY_BUCKETS = 1000
_MIN_BUCKET_SECONDS = 60
_BUCKET_ORIGIN_US = 4 * 86400 * 1_000_000
#: ``tag_limit`` of :meth:`AsyncMemtrace.summarize_memories`: default and largest.
DEFAULT_TAG_LIMIT = 100
MAX_TAG_LIMIT = 1000
#: Memories :meth:`AsyncMemtrace.apply_retention` deletes per store call.
_RETENTION_BATCH = 1000
#: What stored retention policies are checked against (see :meth:`AsyncMemtrace._policy`).
_CEILING_LIMITS = Limits(
    **{k: v for k, v in LIMIT_CEILINGS.items() if k in Limits.__dataclass_fields__}
)

_log = logging.getLogger("memtrace.retention")


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings (``[dedup]``, ``[limits]``, ``[search]``, ``[context]`` in memtrace.toml).

    Attributes:
        dedup_enabled: reject duplicates (same dedup key) within the window.
        dedup_window_hours: the dedup window, measured on ``recorded_at`` (default 24 h).
        limits: size limits for content, metadata, tags and batches.
        ranking: keyword-ranking knobs (see :mod:`memtrace_core.ranking`).
        context_since: default ``since`` of session and agent contexts (the original's 24 h).
        context_max_memories: default number of memories a context considers (max 1000).
        agent_cache_seconds: how long an agent id/name resolution is cached in this process.
        retention: the default retention policy (``[retention]``) of every org that has none
            of its own; None keeps everything.
        policy_cache_seconds: how long this process caches an org's retention policy (a policy
            set through another process applies here within that time).
    """

    dedup_enabled: bool = True
    dedup_window_hours: float = 24.0
    limits: Limits = field(default_factory=Limits)
    ranking: ranking.RankingConfig = field(default_factory=ranking.RankingConfig)
    context_since: str = "24h"
    context_max_memories: int = 100
    agent_cache_seconds: float = 2.0
    retention: RetentionPolicy | None = None
    policy_cache_seconds: float = 5.0


def _record_to_memory(r: MemoryRecord) -> Memory:
    return trusted_memory(
        {
            "id": r.id,
            "time": from_us(r.time),
            "recorded_at": from_us(r.recorded_at),
            "org_id": r.org_id,
            "agent_id": r.agent_id,
            "session_id": r.session_id,
            "memory_type": r.memory_type,
            "event_type": r.event_type,
            "content": r.content,
            "metadata": r.metadata,
            "tags": r.tags,
            "dedup_key": r.dedup_key,
            "importance": r.importance,
            "parent_id": r.parent_id,
            "score": None,
            "expires_at": None if r.expires_at is None else from_us(r.expires_at),
            "supersedes": r.supersedes,
            "superseded_by": None,
            "superseded_at": None,
            "namespace": None if r.namespace is None else list(r.namespace),
            "key": r.key,
            "key_created_at": None if r.key_created_at is None else from_us(r.key_created_at),
            "payload": r.payload,
        }
    )


def _stored(record: MemoryRecord, outcome: InsertOutcome) -> Memory:
    """The memory a write stored (with the supersession the store chose for a keyed one)."""
    memory = _record_to_memory(record)
    if outcome.supersedes is not None:
        memory.__dict__["supersedes"] = outcome.supersedes  # a fresh, unshared model
    if outcome.key_created_at is not None:
        memory.__dict__["key_created_at"] = from_us(outcome.key_created_at)
    return memory


def _merge_patch(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386)."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            # RFC 7386: a patch object applies to an empty object when the target's value is
            # not one (so its own nulls are dropped, not stored)
            current = out.get(key)
            out[key] = _merge_patch(current if isinstance(current, dict) else {}, value)
        else:
            out[key] = value
    return out


class _Core:
    """State shared by an engine and its per-org views."""

    def __init__(self, store: Store, config: EngineConfig, plugins: PluginRegistry) -> None:
        self.store = store
        self.config = config
        self.plugins = plugins
        self.agent_cache: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = {}
        self.policy_cache: dict[str, tuple[float, Resolved]] = {}
        self.opened = False
        self.hub: FeedHub | None = None

    def feed_hub(self) -> FeedHub:
        """The hub that wakes this engine's watchers (made on first use)."""
        if self.hub is None:
            self.hub = FeedHub(self.store)
        return self.hub

    def notify(self, org_id: str) -> None:
        """Memories of ``org_id`` were committed through this engine: wake its watchers."""
        if self.hub is not None:
            self.hub.notify(org_id)


class AsyncMemtrace(Shortcuts):
    """The memtrace engine (async). Use :func:`memtrace_core.connect` to build one.

    Every method acts within one org (``org_default`` unless given); :meth:`with_org` returns a
    view of the same engine scoped to another org. Method names follow the original SDK.
    """

    def __init__(
        self,
        store: Store,
        *,
        config: EngineConfig | None = None,
        plugins: PluginRegistry | None = None,
        org_id: str = DEFAULT_ORG,
        _core: _Core | None = None,
    ) -> None:
        if _core is None and config is not None and config.retention is not None:
            config = replace(config, retention=check_policy(config.retention, config.limits))
        self._core = _core or _Core(store, config or EngineConfig(), plugins or default_registry())
        self._owner = _core is None
        self.org_id = org_id

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._core.store

    @property
    def loop_agnostic(self) -> bool:
        """Whether this engine's calls may run on any event loop, from several threads at
        once: over a store that says so (``loop_agnostic``: the SQLite store) and without
        ``before_write`` / ``after_write`` plugins (a hook may be slow, or schedule work on the
        loop it is called on). The engine's own state (caches, the feed hub) is safe for it.
        A blocking handle then runs each call on the calling thread (see ``sync.Portal``)."""
        plugins = self._core.plugins
        return (
            bool(getattr(self._core.store, "loop_agnostic", False))
            and not plugins.has_before_write
            and not plugins.has_after_write
        )

    @property
    def config(self) -> EngineConfig:
        return self._core.config

    @property
    def plugins(self) -> PluginRegistry:
        return self._core.plugins

    def with_org(self, org_id: str) -> AsyncMemtrace:
        """A view of this engine scoped to ``org_id`` (shares the store; closing it is a no-op)."""
        return AsyncMemtrace(self._core.store, org_id=org_id, _core=self._core)

    async def open(self) -> AsyncMemtrace:
        if self._owner and not self._core.opened:
            await self._core.store.open()
            self._core.opened = True
        return self

    async def close(self) -> None:
        """End every watch, commit pending writes and release the store (only the engine that
        opened it)."""
        if self._owner and self._core.opened:
            self._core.opened = False
            if self._core.hub is not None:
                await self._core.hub.close()
            await self._core.store.close()

    async def end_watches(self) -> None:
        """End every watch of this engine and its views (each returns after its last events;
        a server calls it before it stops). New watches are refused from then on."""
        if self._core.hub is None:
            self._core.hub = FeedHub(self.store)
        await self._core.hub.close()

    async def health(self) -> StoreHealth:
        """The store's health report (see :class:`~memtrace_core.stores.base.StoreHealth`);
        what the server's ``/ready`` and ``/health`` show."""
        return await self.store.health()

    async def __aenter__(self) -> AsyncMemtrace:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- writing --------------------------------------------------------------------------------

    def _prepare(
        self,
        items: Sequence[MemoryCreate | Mapping[str, Any]],
        batch: bool,
        retention: Resolved,
        now: int,
    ) -> list[MemoryRecord]:
        limits = self.config.limits
        plugins = self.plugins
        hooks = plugins.has_before_write
        dedup = self.config.dedup_enabled
        records: list[MemoryRecord] = []
        for index, item in enumerate(items):
            idx = index if batch else None
            mem = validate_memory(item, limits, index=idx, now=now)
            if hooks:
                try:
                    written = plugins.before_write(mem, self.org_id)
                    mem = validate_memory(written, limits, index=idx, now=now)
                except ValidationError as exc:
                    if batch and exc.index is None:
                        # keep the class: a plugin's WriteRejectedError stays one
                        cls = (
                            WriteRejectedError
                            if isinstance(exc, WriteRejectedError)
                            else ValidationError
                        )
                        raise cls(exc.message, field=exc.field, index=idx) from None
                    raise
            key = mem.dedup_key
            if key is None and dedup and mem.dedup is not False:
                if mem.key is not None:
                    key = keyed_dedup_key(
                        mem.agent_id, mem.event_type, mem.content, mem.namespace, mem.key
                    )
                elif mem.namespace:
                    key = namespaced_dedup_key(
                        mem.agent_id, mem.event_type, mem.content, mem.namespace
                    )
                else:
                    key = dedup_key(mem.agent_id, mem.event_type, mem.content)
            record = _to_record(
                mem,
                memory_id(),
                self.org_id,
                dedup_key=key,
                time=to_us(mem.time) if mem.time is not None else now,
                recorded_at=now,
                expires_at=resolve_expiry(mem, now, index=idx),
            )
            retention.check_write(record, now, idx)
            records.append(record)
        return records

    def _dedup_since(self) -> int | None:
        if not self.config.dedup_enabled:
            return None
        return now_us() - int(self.config.dedup_window_hours * _HOUR_US)

    async def _insert(self, records: list[MemoryRecord], *, batch: bool) -> list[InsertOutcome]:
        """Insert through the store, turning a refused supersession into the engine's error:
        a missing (or expired, or other org's) target is a 400, an already superseded one a
        409 naming the current version."""
        try:
            outcomes = await self.store.insert_memories(
                self.org_id, records, dedup_since=self._dedup_since(), now=now_us()
            )
            self._core.notify(self.org_id)
            return outcomes
        except SupersedeError as exc:
            index = exc.index if batch else None
            if exc.current is None:
                raise ValidationError(
                    f"invalid supersedes: no memory {exc.target} in this organization (it "
                    "does not exist, was deleted or has expired)",
                    field="supersedes",
                    index=index,
                ) from None
            err = SupersededError(exc.target, exc.current)
            if index is not None:
                err = SupersededError(
                    exc.target, exc.current, message=f"memories[{index}]: {err.message}"
                )
            raise err from None

    async def add_memory(
        self, memory: MemoryCreate | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> Memory:
        """Write one memory. Raises :class:`DuplicateMemoryError` (naming the existing memory) if
        the same dedup key was written within the dedup window."""
        item = merge_item(memory, fields)
        retention = await self.retention_rules()
        records = self._prepare([item], False, retention, now_us())
        outcome = (await self._insert(records, batch=False))[0]
        if not outcome.inserted:
            raise DuplicateMemoryError(outcome.duplicate_of, records[0].dedup_key)
        stored = _stored(records[0], outcome)
        if self.plugins.has_after_write:
            self.plugins.after_write([stored], self.org_id)
        return stored

    async def add_memories(
        self, memories: Sequence[MemoryCreate | Mapping[str, Any]]
    ) -> BatchResult:
        """Write a batch atomically: the whole batch is validated before anything is written,
        then committed in one transaction. Duplicates (against stored memories or earlier items
        of the same batch) are skipped and reported in ``duplicates`` / ``duplicate_of``."""
        check_batch(memories)
        if not memories:
            return BatchResult(memories=[], count=0)
        if len(memories) > self.config.limits.max_batch:
            raise ValidationError(
                f"batch too large: {len(memories)} memories (max {self.config.limits.max_batch})",
                field="memories",
            )
        retention = await self.retention_rules()
        now = now_us()
        if len(memories) > _OFF_LOOP_BATCH and not self.plugins.has_before_write:
            # validating a big batch is pure Python (tens of ms): in a thread the event loop
            # keeps serving other requests meanwhile (before_write plugins stay on the loop)
            records = await asyncio.to_thread(self._prepare, memories, True, retention, now)
        else:
            records = self._prepare(memories, True, retention, now)
        _check_keys_once(records)
        outcomes = await self._insert(records, batch=True)
        stored: list[Memory] = []
        dups: list[DuplicateInfo] = []
        for index, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
            if outcome.inserted:
                stored.append(_stored(record, outcome))
            else:
                dups.append(
                    DuplicateInfo(
                        index=index,
                        existing_id=outcome.duplicate_of,
                        dedup_key=record.dedup_key or "",
                    )
                )
        if stored and self.plugins.has_after_write:
            self.plugins.after_write(stored, self.org_id)
        return BatchResult.model_construct(
            memories=stored, count=len(stored), duplicates=len(dups), duplicate_of=dups
        )

    # -- reading --------------------------------------------------------------------------------

    async def _agent_aliases(self, agent_ref: str) -> tuple[str, ...]:
        """The values of ``agent_id`` that refer to an agent: its id and its name when it is
        registered (found by either), else just ``agent_ref``."""
        cache = self._core.agent_cache
        key = (self.org_id, agent_ref)
        hit = cache.get(key)
        clock = _time.monotonic()
        if hit is not None and hit[0] > clock:
            return hit[1]
        try:
            agent = await self.store.get_agent(self.org_id, agent_ref)
        except CorruptRowError as exc:  # its id is known; reads of its memories still work
            aliases: tuple[str, ...] = tuple(dict.fromkeys((exc.row_id, agent_ref)))
        else:
            aliases = (
                (agent_ref,)
                if agent is None
                else tuple(dict.fromkeys((agent.id, agent.name, agent_ref)))
            )
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (clock + self.config.agent_cache_seconds, aliases)
        return aliases

    async def _agent_exists(self, agent_ref: str) -> bool:
        """Whether an agent is registered under this id or name (an unreadable one counts)."""
        try:
            return await self.store.get_agent(self.org_id, agent_ref) is not None
        except CorruptRowError:
            return True

    def _forget_agent(self, *refs: str) -> None:
        cache = self._core.agent_cache
        # over a copy of the entries (one C call): another thread's engine call may add some
        for key, (_, aliases) in list(cache.items()):
            if key[0] == self.org_id and (key[1] in refs or set(aliases) & set(refs)):
                cache.pop(key, None)

    async def _filter(
        self,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        memory_types: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
        tags: list[str] | None = None,
        since: Any = None,
        until: Any = None,
        min_importance: float | None = None,
        content_contains: str | None = None,
        recorded_since: Any = None,
        recorded_until: Any = None,
        namespace: Any = None,
        namespace_prefix: Any = None,
        key: Any = None,
        metadata: Any = None,
        tags_any: Any = None,
        ids: Any = None,
        keys: Any = None,
        view: _View | None = None,
    ) -> MemoryFilter:
        """The store filter of a read (``view``: what it sees — unexpired memories, current
        ones unless ``include_superseded``, as of a time) or of a delete (``view`` None: every
        matching memory). Relative windows count back from ``as_of`` when given."""
        limits = self.config.limits
        agent = check_id(agent_id, "agent_id")
        session = check_id(session_id, "session_id")
        mtypes = check_values(memory_types, "memory_types", check_memory_type, limits)
        etypes = check_values(event_types, "event_types", check_type_name, limits)
        tag_list = check_tags(tags, field="tags", limits=limits)
        any_tags = None if tags_any is None else check_one_of(tags_any, "tags_any", limits)
        id_list = None if ids is None else check_one_of(ids, "ids", limits)
        key_list = None if keys is None else check_one_of(keys, "keys", limits)
        anchor = view.anchor if view is not None else now_us()
        lo, hi = window(since, until, now=anchor)
        rec_lo, rec_hi = window(recorded_since, recorded_until, now=anchor, prefix="recorded_")
        if min_importance is not None and (
            isinstance(min_importance, bool)
            or not isinstance(min_importance, (int, float))
            or not 0 <= min_importance <= 1
        ):
            raise ValidationError(
                "invalid min_importance: must be between 0 and 1", field="min_importance"
            )
        if content_contains is not None:
            check_text(content_contains, "content_contains", max_chars=limits.max_query_chars)
        return MemoryFilter(
            agent_ids=await self._agent_aliases(agent) if agent else None,
            session_id=session,
            memory_types=mtypes,
            event_types=etypes,
            tags=tuple(tag_list) if tag_list else None,
            since=lo,
            until=hi,
            min_importance=float(min_importance) if min_importance else None,
            content_contains=content_contains or None,
            recorded_since=rec_lo,
            recorded_until=rec_hi,
            namespace=None if namespace is None else check_namespace(namespace, "namespace"),
            namespace_prefix=None
            if namespace_prefix is None
            else check_namespace(namespace_prefix, "namespace_prefix", prefix=True),
            key=None if key is None else check_key(key),
            metadata=metadata_conditions(metadata, limits),
            tags_any=any_tags,
            ids=id_list,
            keys=key_list,
            live_at=view.now if view is not None else None,
            as_of=view.as_of if view is not None else None,
            current=view is not None and not view.include_superseded,
        )

    async def _criteria_filter(self, crit: DeleteFilter, view: _View | None = None) -> MemoryFilter:
        return await self._filter(**_filter_fields(crit), view=view)

    async def _page(
        self, flt: MemoryFilter, limit: Any, offset: Any, order: Any, view: _View
    ) -> MemoryList:
        lim = check_limit(limit)
        off = check_offset(offset)
        direction = check_order(order)
        rows = await self.store.list_memories(
            self.org_id, flt, limit=lim + 1, offset=off, order=direction
        )
        has_more = len(rows) > lim
        if has_more:
            rows = rows[:lim]
        rows = view.present(rows)
        return MemoryList.model_construct(memories=rows, count=len(rows), has_more=has_more)

    async def list_memories(
        self, options: ListOptions | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> MemoryList:
        """Memories matching the filters, by time (``desc`` by default), paginated with an exact
        ``has_more``. Filters: agent_id (id or name of a registered agent), session_id,
        memory_type, event_type, tags (all must match exactly), since/until, limit (≤ 1000),
        offset, order."""
        opts = coerce(ListOptions, options, filters)
        view = _View.of(opts.as_of, opts.include_superseded)
        flt = await self._filter(
            **_filter_fields(
                opts,
                memory_types=[opts.memory_type] if opts.memory_type else None,
                event_types=[opts.event_type] if opts.event_type else None,
            ),
            view=view,
        )
        return await self._page(flt, opts.limit, opts.offset, opts.order, view)

    def watch(
        self,
        options: WatchOptions | Mapping[str, Any] | None = None,
        /,
        *,
        after: str | None = None,
        **filters: Any,
    ) -> WatchStream:
        """Follow the org's new memories as they are committed — through this engine, another
        process or another server on the same store — in the store's commit order: an async
        iterator of :class:`~memtrace_core.models.StreamEvent` (``async for event in
        mt.watch(agent_id="planner")``). Filters: agent_id (id or name), session_id,
        memory_types, event_types, tags (all), tags_any. ``after``: a position (an event's
        ``position``) to resume just past it, without gaps or duplicates; none, only memories
        committed from now on. Every new memory is an event, superseded or not; one deleted
        or expired before it is read is left out. Breaking out of the loop (or
        ``await watch.aclose()``) ends it; closing the engine ends every watch."""
        opts = coerce(WatchOptions, options, filters)
        position = after if after is not None else opts.after
        if position is not None and (not isinstance(position, str) or len(position) > 64):
            raise ValidationError("invalid after: not a feed position", field="after")

        async def resolve() -> MemoryFilter:
            return await self._filter(
                agent_id=opts.agent_id,
                session_id=opts.session_id,
                memory_types=opts.memory_types,
                event_types=opts.event_types,
                tags=opts.tags,
                tags_any=opts.tags_any,
            )

        return Watch(self._core.feed_hub(), self.org_id, resolve, position)

    async def search_memories(
        self, query: SearchQuery | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> SearchResult:
        """Search with filters (agent, session, memory/event types, exact tags, min_importance,
        since/until, ``content_contains`` case-insensitive substring) and, with ``query``,
        ranked keyword search (see :mod:`memtrace_core.ranking`). Without ``query`` results
        are ordered by time."""
        started = _time.perf_counter()
        q = coerce(SearchQuery, query, fields)
        view = _View.of(q.as_of, q.include_superseded)
        now = view.anchor
        flt = await self._filter(**_filter_fields(q), view=view)
        if q.query is not None:
            check_text(q.query, "query", max_chars=self.config.limits.max_query_chars)
        text = (q.query or "").strip()
        if not text:
            page = await self._page(
                flt, q.limit if q.limit is not None else 50, q.offset, q.order, view
            )
            return SearchResult.model_construct(
                results=page.memories,
                count=page.count,
                has_more=page.has_more,
                query_time_ms=int((_time.perf_counter() - started) * 1000),
            )
        limit = check_limit(q.limit, default=50)
        offset = check_offset(q.offset)
        if offset + limit > MAX_RANKED_WINDOW:
            # ranking fetches and scores offset + limit + 1 candidates: bound that work (and keep
            # the SQL LIMIT far from int64) before any of it is done
            raise ValidationError(
                f"invalid offset: a ranked search (with `query`) pages through at most the first "
                f"{MAX_RANKED_WINDOW} results (offset + limit <= {MAX_RANKED_WINDOW}); narrow "
                "the filters or the time window instead",
                field="offset",
            )
        if q.order is not None:
            check_order(q.order)
        ranked = await self._keyword_search(text, flt, now, need=offset + limit + 1)
        results = [
            m.model_copy(update={"score": round(score, 6)})
            for m, score in ranked[offset : offset + limit]
        ]
        results = view.present(results)
        return SearchResult.model_construct(
            results=results,
            count=len(results),
            has_more=len(ranked) > offset + limit,
            query_time_ms=int((_time.perf_counter() - started) * 1000),
        )

    async def _keyword_search(
        self, text: str, flt: MemoryFilter, now: int, need: int
    ) -> list[tuple[Memory, float]]:
        cfg = self.config.ranking
        if need > cfg.candidates:
            cfg = replace(cfg, candidates=need)
        now_dt = from_us(now)
        plan = ranking.plan_query(text, now_dt, cfg)
        if plan.is_empty:
            return []
        match_limit = cfg.exact_match_limit
        is_large: dict[tuple[str, ...], bool] = {}
        scope_size: dict[object, int] = {}  # by time window: the feedback round reuses it
        exceed = getattr(self.store, "keyword_matches_exceed", None)

        async def large(p: ranking.QueryPlan) -> bool:
            """Whether ``p``'s words match too many memories for exact BM25 (a common word in
            a big store): stage 1 then takes the newest memories matching every word."""
            if p.terms not in is_large:
                scope = _window_filter(flt, p)
                if any(big and set(terms) <= set(p.terms) for terms, big in is_large.items()):
                    # more terms (OR) match at least as many memories in the same scope
                    is_large[p.terms] = True
                elif exceed is not None:  # the store answers it in one cheap read
                    is_large[p.terms] = await exceed(self.org_id, scope, p.terms, match_limit)
                else:
                    is_large[p.terms] = await counted(p, scope) > match_limit
            return is_large[p.terms]

        async def counted(p: ranking.QueryPlan, scope: MemoryFilter) -> int:
            # a scope of at most `match_limit` memories cannot match more: no need to count
            # the matches (which reads every match of the terms until `match_limit` of it)
            # an upper bound: the scope without its time view (the cap count then stays on
            # the (org, time) index, with no row reads; the view only removes memories)
            window = p.filter_window
            if window not in scope_size:
                scope_size[window] = await self.store.count_memories(
                    self.org_id, scope.without_view(), cap=match_limit + 1
                )
            if scope_size[window] <= match_limit:
                return scope_size[window]
            return await self.store.count_keyword_matches(
                self.org_id, scope, p.terms, match_limit + 1
            )

        if await large(plan):  # a smaller pool and, by default, no feedback round
            cfg = replace(cfg, candidates=max(need, cfg.large_candidates), prf=cfg.large_prf)
        weights = {
            "content": cfg.weight_content,
            "agent_id": cfg.weight_agent,
            "event_type": cfg.weight_event_type,
            "tags": cfg.weight_tags,
        }
        by_id: dict[str, Memory] = {}

        async def fetch(p: ranking.QueryPlan) -> list[ranking.Candidate]:
            if len(p.terms) > _OFF_LOOP_TERMS:
                groups = await asyncio.to_thread(ranking.term_groups, p)
            else:
                groups = ranking.term_groups(p)
            rows = await self.store.keyword_candidates(
                self.org_id,
                _window_filter(flt, p),
                KeywordQuery(
                    terms=p.terms,
                    limit=cfg.candidates,
                    field_weights=weights,
                    groups=groups,
                    recent_first=await large(p),
                    known=frozenset(by_id),  # a feedback round: the first pool's memories
                ),
            )
            out = []
            for row in rows:
                m = row.memory
                by_id[m.id] = m
                out.append(
                    ranking.Candidate(
                        id=m.id,
                        content=m.content,
                        time=m.time,
                        agent_id=m.agent_id,
                        event_type=m.event_type,
                        tags=tuple(m.tags or ()),
                        importance=m.importance,
                        bm25=row.native_score,
                        session_id=m.session_id,
                    )
                )
            return out

        ranked = await ranking.search(plan, fetch, now_dt, cfg, run=_cpu_step)
        return [(by_id[c.id], score) for c, score in ranked]

    async def get_memory(self, memory_id: str, *, as_of: str | datetime | None = None) -> Memory:
        """The memory with this id (``mem_…``), superseded or not (``superseded_by`` then
        names its successor). With ``as_of``, as it was known then: a memory recorded later is
        not found, a supersession made later is not shown. An expired memory is not found.
        Raises NotFoundError."""
        _check_memory_id(memory_id)
        view = _View.of(as_of, True)
        found = await self.store.get_memory(self.org_id, memory_id)
        if found is None or not view.shows(found):
            raise NotFoundError("memory not found")
        return view.present([found])[0]

    async def get_memory_by_key(
        self, namespace: Sequence[str], key: str, *, as_of: str | datetime | None = None
    ) -> Memory:
        """The current memory with this key in this namespace (a write with a key supersedes
        the current memory of that key, so there is at most one), as known at ``as_of`` when
        given. Raises NotFoundError."""
        view = _View.of(as_of, False)
        flt = MemoryFilter(
            namespace=check_namespace(namespace, "namespace"),
            key=check_key(key),
            live_at=view.now,
            as_of=view.as_of,
            current=True,
        )
        found = await self.store.list_memories(self.org_id, flt, limit=1, offset=0, order="desc")
        if not found:
            raise NotFoundError("memory not found")
        return view.present(found)[0]

    async def list_namespaces(
        self,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> NamespaceList:
        """The distinct namespaces of the org's memories, sorted: those starting with
        ``prefix`` and ending with ``suffix`` (``"*"`` in either matches any one part),
        truncated to ``max_depth`` parts (and then de-duplicated), paginated."""
        lim = check_limit(limit, default=DEFAULT_LIMIT)
        off = check_offset(offset)
        pre = _namespace_pattern(prefix, "prefix")
        suf = _namespace_pattern(suffix, "suffix")
        if max_depth is not None and (
            isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1
        ):
            raise ValidationError(
                "invalid max_depth: must be a positive integer", field="max_depth"
            )
        fixed: list[str] = []
        for part in pre or ():
            if part == "*":
                break
            fixed.append(part)
        found = await self.store.list_namespaces(self.org_id, tuple(fixed) or None)
        out: list[tuple[str, ...]] = []
        for ns in found:
            if pre and not _matches(ns, pre):
                continue
            if suf and not _matches(ns[::-1], suf[::-1]):
                continue
            out.append(ns[:max_depth] if max_depth else ns)
        unique = sorted(set(out))
        page = [list(ns) for ns in unique[off : off + lim]]
        return NamespaceList(namespaces=page, count=len(page))

    async def delete_memory(self, memory_id: str) -> None:
        """Delete one memory from every index. Raises NotFoundError. (Deletes without reading
        the row, so an unreadable memory can be deleted too.)"""
        _check_memory_id(memory_id)
        if not await self.store.delete_memories(self.org_id, MemoryFilter(ids=(memory_id,))):
            raise NotFoundError("memory not found")

    async def delete_memories(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> int:
        """Delete every memory matching the criteria (agent, session, namespace or prefix, key
        or ``keys``, ``ids``, tags (all) or ``tags_any``, types, ``metadata``, time ranges);
        ``all_memories=True`` purges the whole org's memories. ``all_versions=True`` deletes
        whole records: the criteria match the current versions (what reads show — unless
        ``ids`` names versions, which then match whatever they are), and each goes with every
        other version of its supersession chain, whatever the namespace, tags or time of those
        versions; so no earlier version becomes current again, and a record is never deleted
        for what an older version of it said. Returns the count deleted (every version)."""
        crit = coerce(DeleteFilter, criteria, fields)
        flt = await self._criteria_filter(crit)
        if flt.is_empty() and not crit.all_memories:
            raise ValidationError(
                "refusing to delete without a filter: give agent_id, session_id, namespace, key, "
                "keys, ids, tags, tags_any, types, metadata, since/until or all_memories=true",
                field="filter",
            )
        if crit.all_versions:
            if flt.ids is None:  # what reads show: current and unexpired
                flt = replace(flt, current=True, live_at=now_us())
            return await self.store.delete_memories(self.org_id, flt, all_versions=True)
        return await self.store.delete_memories(self.org_id, flt)

    async def pop_memory(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> Memory | None:
        """Remove and return the newest current memory matching the filters (the filters of
        :meth:`delete_memories`: agent, session, namespace or prefix, key, tags, types, time
        ranges; at least one, or ``all_memories=True``), or None when none matches.
        Superseded and expired memories are never popped. Atomic: the choice and the delete
        are one store transaction, so two concurrent pops never return the same memory."""
        crit = coerce(DeleteFilter, criteria, filters)
        check_pop_criteria(crit)
        flt = await self._criteria_filter(crit)
        if flt.is_empty() and not crit.all_memories:
            raise ValidationError(
                "refusing to pop without a filter: give agent_id, session_id, namespace, key, "
                "keys, ids, tags, tags_any, types, metadata, since/until or all_memories=true",
                field="filter",
            )
        now = now_us()
        return await self.store.pop_memory(
            self.org_id, replace(flt, current=True, live_at=now), now=now
        )

    async def summarize_memories(
        self, filters: SummaryQuery | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> MemorySummary:
        """What the memories matching the filters add up to, without reading them: ``count``,
        ``oldest`` / ``newest`` event time (None when none matches) and ``tags``, the
        ``tag_limit`` (default 100, 1..1000) most frequent tags with how many matching memories
        carry each (ties by tag name; ``tags_truncated`` when there were more). The filters are
        those of :meth:`search_memories` without ranking or paging (no ``query``, ``limit``,
        ``offset``, ``order``); like a search it sees current, unexpired memories (superseded
        ones with ``include_superseded``), as known at ``as_of`` when given."""
        q = coerce(SummaryQuery, filters, fields)
        tag_limit = q.tag_limit
        if tag_limit is None:
            tag_limit = DEFAULT_TAG_LIMIT
        elif isinstance(tag_limit, bool) or not 1 <= tag_limit <= MAX_TAG_LIMIT:
            raise ValidationError(
                f"invalid tag_limit: must be an integer between 1 and {MAX_TAG_LIMIT}",
                field="tag_limit",
            )
        view = _View.of(q.as_of, q.include_superseded)
        flt = await self._filter(**_filter_fields(q), view=view)
        return await self.store.summarize_memories(self.org_id, flt, tag_limit=tag_limit)

    # -- agents ---------------------------------------------------------------------------------

    async def register_agent(
        self,
        request: RegisterAgentRequest | Mapping[str, Any] | str | None = None,
        /,
        **fields: Any,
    ) -> Agent:
        """Register an agent (``agent_`` + 24 hex); a string is its name
        (``register_agent("bot1")``). Names are unique per org (ConflictError)."""
        req = coerce(RegisterAgentRequest, request, fields, positional="name")
        name = _check_agent(req.name, req.description, req.config, self.config.limits)
        agent = Agent(
            id=random_id("agent"),
            org_id=self.org_id,
            name=name,
            description=req.description or None,
            config=req.config or None,
            created_at=from_us(now_us()),
        )
        await self.store.create_agent(self.org_id, agent)
        self._forget_agent(name, agent.id)
        return agent

    async def list_agents(self) -> AgentList:
        agents = await self.store.list_agents(self.org_id)
        return AgentList(agents=agents, count=len(agents))

    async def get_agent(self, agent_id: str) -> Agent:
        """An agent by id or by name (surrounding whitespace ignored, as when it was
        registered). Raises NotFoundError."""
        check_ref(agent_id, "agent_id")
        agent = await self.store.get_agent(self.org_id, agent_id.strip() or agent_id)
        if agent is None:
            raise NotFoundError("agent not found")
        return agent

    async def delete_agent(self, agent_id: str, *, delete_memories: bool = False) -> None:
        """Delete an agent (by id or name); its memories stay unless ``delete_memories``. An
        unreadable agent can be deleted too (its memories by the id and the name given)."""
        aliases: tuple[str, ...]
        try:
            agent = await self.get_agent(agent_id)
            key, aliases = agent.id, (agent.id, agent.name)
        except CorruptRowError as exc:
            key, aliases = exc.row_id, tuple(dict.fromkeys((exc.row_id, agent_id)))
        if delete_memories:
            await self.store.delete_memories(self.org_id, MemoryFilter(agent_ids=aliases))
        if not await self.store.delete_agent(self.org_id, key):
            raise NotFoundError("agent not found")
        self._forget_agent(*aliases)

    async def get_agent_stats(
        self, agent_id: str, *, as_of: str | datetime | None = None
    ) -> AgentStats:
        """Counts for an agent (id or name; an unknown agent gets zeros, as the original):
        current, unexpired memories by type, memories and errors (``event_type``
        :data:`ERROR_EVENT_TYPE`) in the 24 hours before now (or ``as_of``) by event time,
        sessions, and the time of the newest memory."""
        check_id(agent_id, "agent_id", required=True)
        view = _View.of(as_of, False)
        aliases = await self._agent_aliases(agent_id)
        agent = MemoryFilter(agent_ids=aliases, live_at=view.now, as_of=view.as_of, current=True)
        recent = replace(agent, since=view.anchor - 24 * _HOUR_US)
        store = self.store
        by_type = await store.count_by_type(self.org_id, agent)
        recent_count = await store.count_memories(self.org_id, recent)
        errors = await store.count_memories(
            self.org_id, replace(recent, event_types=(ERROR_EVENT_TYPE,))
        )
        newest = await store.list_memories(self.org_id, agent, limit=1, offset=0, order="desc")
        total, active = await store.count_sessions(self.org_id, aliases)
        return AgentStats(
            agent_id=agent_id,
            memory_count=sum(by_type.values()),
            memories_24h=recent_count,
            errors_24h=errors,
            session_count=total,
            active_sessions=active,
            last_active_at=newest[0].time if newest else None,
            memory_types=by_type,
        )

    async def get_activity(
        self, options: ActivityQuery | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> Activity:
        """Memories per time bucket, for an activity chart: the current, unexpired memories
        matching the filters (agent by id or name, session, memory and event types, tags all /
        ``tags_any``) counted per ``bucket`` of event time and per memory type, with the
        errors among them (``event_type`` :data:`ERROR_EVENT_TYPE`), as agent stats count
        them; as known at ``as_of`` when given (relative times then count back from it).

        ``bucket`` is a duration (``1m`` … ``1w``, at least one minute; default ``1h``) or
        whole seconds. ``until`` (exclusive; default now) and ``since`` (default 24 hours
        before ``until``) take what the time filters of :meth:`list_memories` take.
        Buckets start at multiples of the bucket counted from Monday 1970-01-05T00:00:00Z,
        so a bucket has the same bounds in every answer: ``since`` is rounded down to a
        bucket start and the last bucket ends at ``until``. The buckets are dense (empty
        ones included), oldest first; more than :data:`MAX_ACTIVITY_BUCKETS` of them is a
        ValidationError, as is a ``since`` after ``until``."""
        q = coerce(ActivityQuery, options, filters)
        size = _bucket_us(q.bucket)
        view = _View.of(q.as_of, False)
        lo, hi = window(q.since, q.until, now=view.anchor)
        until = view.anchor if hi is None else hi
        since = until - 24 * _HOUR_US if lo is None else lo
        if since > until:
            raise ValidationError("invalid time window: since is after until", field="since")
        start = since - (since - _BUCKET_ORIGIN_US) % size
        if start < MIN_US:
            raise ValidationError(
                f"invalid since: its {_duration(size)} bucket would start before year 1",
                field="since",
            )
        count = -(-(until - start) // size)
        if count > MAX_ACTIVITY_BUCKETS:
            raise ValidationError(
                f"invalid bucket: {count} buckets of {_duration(size)} from "
                f"{format_us(start)} to {format_us(until)}, at most {MAX_ACTIVITY_BUCKETS}: "
                "choose a longer bucket or a shorter window",
                field="bucket",
            )
        flt = await self._filter(
            agent_id=q.agent_id,
            session_id=q.session_id,
            memory_types=q.memory_types,
            event_types=q.event_types,
            tags=q.tags,
            tags_any=q.tags_any,
            view=view,
        )
        rows = (
            await self.store.count_by_bucket(
                self.org_id,
                replace(flt, since=start, until=until),
                start=start,
                bucket=size,
                buckets=count,
                error_type=ERROR_EVENT_TYPE,
            )
            if count
            else []
        )
        counts = [0] * count
        errors = [0] * count
        types: list[dict[str, int]] = [{} for _ in range(count)]
        for row in rows:
            if 0 <= row.bucket < count and row.count:
                counts[row.bucket] += row.count
                errors[row.bucket] += row.errors
                by_type = types[row.bucket]
                by_type[row.memory_type] = by_type.get(row.memory_type, 0) + row.count
        totals: dict[str, int] = {}
        for by_type in types:
            for name, n in by_type.items():
                totals[name] = totals.get(name, 0) + n
        return Activity(
            since=from_us(start),
            until=from_us(until),
            bucket_seconds=size // 1_000_000,
            total=sum(counts),
            errors=sum(errors),
            by_type=dict(sorted(totals.items())),
            buckets=[
                ActivityBucket(
                    start=from_us(start + i * size),
                    count=counts[i],
                    errors=errors[i],
                    by_type=dict(sorted(types[i].items())),
                )
                for i in range(count)
            ],
        )

    async def get_agent_memories(
        self,
        agent_id: str,
        options: ListOptions | Mapping[str, Any] | None = None,
        /,
        **filters: Any,
    ) -> MemoryList:
        """An agent's memories (by id or name), across sessions; ``since`` defaults to 24 h."""
        opts = coerce(ListOptions, options, filters)
        check_id(agent_id, "agent_id", required=True)
        update: dict[str, Any] = {"agent_id": agent_id}
        if opts.since is None:
            update["since"] = "24h"
        return await self.list_memories(opts.model_copy(update=update))

    async def get_agent_context(
        self,
        agent_id: str,
        options: ContextOptions | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> AgentContext:
        """LLM-ready context of one agent's recent memories across all its sessions."""
        check_id(agent_id, "agent_id", required=True)
        opts = coerce(ContextOptions, options, fields)
        text, count, fmt = await self._context("agent", agent_id, opts, agent_id=agent_id)
        if count == 0 and not await self._agent_exists(agent_id):
            aliases = await self._agent_aliases(agent_id)
            # an expired memory is gone: it does not make the agent known (as a deleted one)
            live = MemoryFilter(agent_ids=aliases, live_at=now_us())
            if not await self.store.count_memories(self.org_id, live):
                raise NotFoundError("agent not found")
        return AgentContext(
            agent_id=agent_id,
            context=text,
            memory_count=count,
            format=fmt,
            token_estimate=estimate_tokens(text),
        )

    # -- sessions -------------------------------------------------------------------------------

    async def create_session(
        self,
        request: CreateSessionRequest | Mapping[str, Any] | str | None = None,
        /,
        **fields: Any,
    ) -> Session:
        """Open a session for an agent (registered or not; a registered agent may be named by id
        or name and the session records its id); a string is the agent
        (``create_session("bot1")``)."""
        req = coerce(CreateSessionRequest, request, fields, positional="agent_id")
        check_id(req.agent_id, "agent_id", required=True)
        _check_json_size(req.metadata, "metadata", self.config.limits)
        aliases = await self._agent_aliases(req.agent_id)
        now = from_us(now_us())
        session = Session(
            id=random_id("sess"),
            org_id=self.org_id,
            agent_id=aliases[0],
            status="active",
            metadata=req.metadata or None,
            created_at=now,
            updated_at=now,
        )
        await self.store.create_session(self.org_id, session)
        return session

    async def get_session(self, session_id: str) -> Session:
        check_ref(session_id, "session_id")
        session = await self.store.get_session(self.org_id, session_id)
        if session is None:
            raise NotFoundError("session not found")
        return session

    async def list_sessions(
        self,
        agent_id: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> SessionList:
        """Sessions, newest first, optionally of one agent (id or name) and/or one status."""
        aliases = None
        if agent_id:
            check_id(agent_id, "agent_id")
            aliases = await self._agent_aliases(agent_id)
        if status is not None and status not in SESSION_STATUSES:
            raise ValidationError(
                f"invalid status: {status!r} (expected active or closed)", field="status"
            )
        lim = check_limit(limit, default=DEFAULT_LIMIT)
        off = check_offset(offset)
        rows = await self.store.list_sessions(
            self.org_id, agent_ids=aliases, status=status, limit=lim + 1, offset=off
        )
        has_more = len(rows) > lim
        rows = rows[:lim]
        return SessionList(sessions=rows, count=len(rows), has_more=has_more)

    async def update_session(
        self,
        session_id: str,
        request: UpdateSessionRequest | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> Session:
        """Change status (``active`` / ``closed``; closing sets ``closed_at``, reopening clears
        it) and merge metadata (RFC 7386 merge patch; ``replace_metadata`` replaces)."""
        req = coerce(UpdateSessionRequest, request, fields)
        if req.status is not None and req.status not in SESSION_STATUSES:
            raise ValidationError(
                f"invalid status: {req.status!r} (expected active or closed)", field="status"
            )
        check_ref(session_id, "session_id")
        limits = self.config.limits

        def change(session: Session) -> Session:
            now = from_us(now_us())
            update: dict[str, Any] = {"updated_at": now}
            if req.status is not None and req.status != session.status:
                update["status"] = req.status
                update["closed_at"] = now if req.status == "closed" else None
            if req.metadata is not None:
                merged = (
                    req.metadata
                    if req.replace_metadata
                    else _merge_patch(session.metadata or {}, req.metadata)
                )
                _check_json_size(merged, "metadata", limits)
                update["metadata"] = merged or None
            return session.model_copy(update=update)

        updated = await self.store.update_session(self.org_id, session_id, change)
        if updated is None:
            raise NotFoundError("session not found")
        return updated

    async def close_session(self, session_id: str) -> Session:
        return await self.update_session(session_id, status="closed")

    async def delete_session(self, session_id: str, *, delete_memories: bool = False) -> None:
        """Delete a session; its memories stay unless ``delete_memories``. (An unreadable
        session can be deleted too.)"""
        try:
            await self.get_session(session_id)
        except CorruptRowError:
            pass
        if delete_memories:
            await self.store.delete_memories(self.org_id, MemoryFilter(session_id=session_id))
        await self.store.delete_session(self.org_id, session_id)

    async def get_session_memories(
        self,
        session_id: str,
        options: ListOptions | Mapping[str, Any] | None = None,
        /,
        **filters: Any,
    ) -> MemoryList:
        opts = coerce(ListOptions, options, filters)
        check_id(session_id, "session_id", required=True)
        return await self.list_memories(opts.model_copy(update={"session_id": session_id}))

    async def get_session_context(
        self,
        session_id: str,
        options: ContextOptions | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> SessionContext:
        """LLM-ready context of a session (markdown by default; see :mod:`memtrace_core.context`).

        Raises NotFoundError only when the session neither exists nor has memories."""
        check_id(session_id, "session_id", required=True)
        opts = coerce(ContextOptions, options, fields)
        text, count, fmt = await self._context("session", session_id, opts, session_id=session_id)
        if count == 0 and await self.store.get_session(self.org_id, session_id) is None:
            any_memory = await self.store.count_memories(
                self.org_id, MemoryFilter(session_id=session_id, live_at=now_us())
            )
            if not any_memory:
                raise NotFoundError("session not found")
        return SessionContext(
            session_id=session_id,
            context=text,
            memory_count=count,
            format=fmt,
            token_estimate=estimate_tokens(text),
        )

    async def _context(
        self,
        scope: str,
        scope_id: str,
        opts: ContextOptions,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
    ) -> tuple[str, int, str]:
        fmt_name = opts.format or "markdown"
        fmt = self.plugins.context_format(fmt_name)
        if opts.max_tokens is not None and opts.max_tokens < 1:
            raise ValidationError("invalid max_tokens: must be positive", field="max_tokens")
        included = check_values(
            opts.include_types, "include_types", check_memory_type, self.config.limits
        )
        types = list(included) if included else None
        limit = check_limit(
            opts.limit,
            default=self.config.context_max_memories if opts.max_tokens is None else 1000,
        )
        flt = await self._filter(
            **_filter_fields(
                opts,
                agent_id=agent_id,
                session_id=session_id,
                memory_types=types,
                since=opts.since if opts.since is not None else self.config.context_since,
            ),
            view=_View.of(opts.as_of, False),
        )
        memories = await self.store.list_memories(
            self.org_id, flt, limit=limit, offset=0, order="desc"
        )
        text, count = render_within(fmt, scope, scope_id, memories, opts.max_tokens)
        if count == 0 and memories and opts.max_tokens is not None:
            needed = estimate_tokens(fmt.render(scope, scope_id, memories[:1]))
            raise ValidationError(
                f"max_tokens {opts.max_tokens} is too small for even the newest memory "
                f"(it needs {needed})",
                field="max_tokens",
            )
        return text, count, fmt_name

    # -- export / import ------------------------------------------------------------------------

    async def iter_export(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> AsyncIterator[str]:
        """JSON Lines of the org's agents, sessions and memories (each line has ``kind``).
        Memories come in time order; ids and times round-trip through :meth:`import_jsonl`.

        The last line is the trailer, ``{"kind":"trailer","format":"memtrace-export",
        "version":1,"memories":N,"agents":N,"sessions":N}`` (the counts of the lines emitted),
        by which an import recognises a complete file. A row that cannot be read makes the
        export fail (StoreError naming its id) rather than skip it: no trailer is written."""
        crit = coerce(DeleteFilter, criteria, fields)
        check_export_criteria(crit)
        # an export holds superseded memories (the links round-trip), not expired ones
        flt = await self._criteria_filter(crit)
        whole_org = flt.is_empty()
        flt = replace(flt, live_at=now_us())
        counts = {"memories": 0, "agents": 0, "sessions": 0}
        if whole_org:
            for agent in await self.store.list_agents(self.org_id, strict=True):
                counts["agents"] += 1
                yield _line("agent", agent)
            offset = 0
            while True:
                sessions = await self.store.list_sessions(
                    self.org_id, agent_ids=None, status=None, limit=1000, offset=offset, strict=True
                )
                for session in sessions:
                    counts["sessions"] += 1
                    yield _line("session", session)
                if len(sessions) < 1000:
                    break
                offset += 1000
        async for batch in self.store.iter_memories(self.org_id, flt):
            for memory in batch:
                counts["memories"] += 1
                if memory.supersedes is not None or memory.superseded_by is not None:
                    memory = await self._mended(memory, flt.live_at or now_us())
                yield _memory_line(memory)
        yield export_trailer(**counts)

    async def _mended(self, memory: Memory, now: int) -> Memory:
        """``memory`` with its links as if its expired (not yet swept) neighbours had never
        been written, as the sweep will leave them: an export does not hold expired memories,
        so a link to one would be lost on import."""

        async def through(memory_id: str | None, step: str) -> str | None:
            for _ in range(10_000):
                if memory_id is None:
                    return None
                neighbour = await self.store.get_memory(self.org_id, memory_id)
                if neighbour is None or not _expired(neighbour, now):
                    return memory_id
                memory_id = getattr(neighbour, step)
            return memory_id

        supersedes = await through(memory.supersedes, "supersedes")
        superseded_by = await through(memory.superseded_by, "superseded_by")
        if (supersedes, superseded_by) == (memory.supersedes, memory.superseded_by):
            return memory
        update: dict[str, Any] = {"supersedes": supersedes, "superseded_by": superseded_by}
        if superseded_by is None:
            update["superseded_at"] = None
        elif superseded_by != memory.superseded_by:
            successor = await self.store.get_memory(self.org_id, superseded_by)
            update["superseded_at"] = successor.recorded_at if successor else None
        return memory.model_copy(update=update)

    async def import_jsonl(
        self,
        lines: Iterable[str | bytes],
        *,
        batch_size: int = 500,
        require_trailer: bool = True,
    ) -> ImportResult:
        """Import JSON Lines (from :meth:`export_jsonl` of any store) into this org. Memories
        keep their ids and times; a memory whose id already exists is skipped (so an import can
        be re-run); a memory without a ``dedup_key`` gets the one a new write would get.

        Verify, then write: every line is parsed and validated and the export trailer checked
        before anything is written. A bad line, a missing trailer (a truncated file), a trailer
        whose counts do not match the file, or data after the trailer raise ValidationError
        (naming the line) and nothing from the file is kept. ``require_trailer=False`` accepts
        a file without a trailer (written before memtrace had one); a trailer, when present, is
        still checked. The validated records are staged in a temporary file (in memory up to
        8 MiB, then on disk), so memory stays bounded for big files. The write phase commits in
        batches of ``batch_size``; should the store fail part-way, re-running the import
        completes it (existing ids are skipped)."""
        staging = _Staging()
        try:
            # parsing and validating every line is pure Python, linear in the file: in a worker
            # thread, so that one import (up to the body limit over HTTP, unbounded from the
            # CLI) does not hold the event loop
            retention = await self.retention_rules()
            await asyncio.to_thread(
                self._stage_import, lines, staging, require_trailer, retention, now_us()
            )
            return await self._commit_import(staging, batch_size)
        finally:
            staging.close()

    def _stage_import(
        self,
        lines: Iterable[str | bytes],
        staging: _Staging,
        require_trailer: bool,
        retention: Resolved,
        now: int,
    ) -> None:
        limits = self.config.limits
        dedup = self.config.dedup_enabled
        counts = {"memory": 0, "agent": 0, "session": 0}
        trailer_line: int | None = None
        for number, raw in enumerate(lines, start=1):
            try:
                text = raw.decode() if isinstance(raw, bytes) else raw
            except UnicodeDecodeError:
                raise ValidationError(f"line {number}: not valid UTF-8", field="line") from None
            if not text.strip():
                continue
            if trailer_line is not None:
                raise ValidationError(
                    f"line {number}: data after the export trailer (line {trailer_line}); "
                    "the file was altered or several exports were concatenated",
                    field="line",
                )
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    f"line {number}: invalid JSON: {exc.msg}", field="line"
                ) from None
            except RecursionError:
                raise ValidationError(
                    f"line {number}: invalid JSON: nested too deeply", field="line"
                ) from None
            if not isinstance(obj, dict):
                raise ValidationError(f"line {number}: expected a JSON object", field="line")
            kind = obj.pop("kind", "memory")
            try:
                item: Any
                if kind == "trailer":
                    _check_trailer(obj, counts)
                    trailer_line = number
                    continue
                if kind == "memory":
                    item = _import_record(obj, self.org_id, limits, dedup=dedup, now=now)
                    if item.recorded_at > now + limits.max_future_skew_seconds * 1_000_000:
                        raise ValidationError(
                            "invalid recorded_at: in the future (memtrace cannot have stored "
                            "it yet)",
                            field="recorded_at",
                        )
                    if item.expires_at is not None and item.expires_at <= now:
                        # as if it had never been written: not imported, counted for the
                        # trailer, and a line superseding it supersedes what it superseded
                        staging.drop_expired(item)
                        counts[kind] += 1
                        continue
                    retention.check_write(item, now)
                    if item.supersedes is not None:
                        staging.link(number, item)
                elif kind == "agent":
                    item = self._import_agent_item(obj)
                elif kind == "session":
                    item = self._import_session_item(obj)
                else:
                    raise ValidationError(f"unknown kind {kind!r}", field="kind")
            except ValidationError as exc:
                raise ValidationError(f"line {number}: {exc.message}", field=exc.field) from None
            except PydanticValidationError as exc:
                err = exc.errors(include_url=False)[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise ValidationError(
                    f"line {number}: invalid {loc}: {err['msg']}", field=loc
                ) from None
            counts[kind] += 1
            staging.add((kind, item))
        staging.check_links()
        if trailer_line is None and require_trailer:
            raise ValidationError(
                "no export trailer: the file is incomplete (truncated, or cut short by a failed "
                "export) or was written before memtrace exports had a trailer; nothing was "
                "imported. Re-export it, or accept it as is with require_trailer=False "
                "(CLI: memtrace import --no-trailer; HTTP: POST /api/v1/import?no_trailer=true)",
                field="trailer",
            )

    async def _unlinked(self, staging: _Staging) -> set[str]:
        """Check the file's supersessions against the org before anything is written: a link
        to a memory the org has is kept (a 409 if another memory already supersedes it), one
        to a memory in neither the file nor the org is dropped (``ImportResult.unlinked``).
        Returns the ids of the records whose link is dropped."""
        if not staging.links:
            return set()
        stored: dict[str, Memory] = {}
        wanted = list({*staging.links, *(t for t, _ in staging.links.values())})
        for start in range(0, len(wanted), 500):
            chunk = tuple(wanted[start : start + 500])
            for memory in await self.store.list_memories(
                self.org_id, MemoryFilter(ids=chunk), limit=len(chunk), offset=0, order="asc"
            ):
                stored[memory.id] = memory
        unlinked: set[str] = set()
        for record_id, (target, number) in staging.links.items():
            if record_id in stored:
                continue  # already imported: the stored memory is kept as it is
            held = stored.get(target)
            if held is None:
                if target not in staging.ids:
                    unlinked.add(record_id)
                continue
            if held.superseded_by is not None and held.superseded_by != record_id:
                raise ConflictError(
                    f"line {number}: memory {target} is already superseded by "
                    f"{held.superseded_by} in this organization; nothing was imported"
                )
        return unlinked

    async def _commit_import(self, staging: _Staging, batch_size: int) -> ImportResult:
        result = ImportResult(expired=staging.expired)
        pending: list[MemoryRecord] = []
        unlinked = await self._unlinked(staging)
        result.unlinked = len(unlinked)

        async def flush() -> None:
            if pending:
                inserted = await self.store.import_memories(self.org_id, pending)
                self._core.notify(self.org_id)
                result.imported += inserted
                result.skipped += len(pending) - inserted
                pending.clear()

        for kind, item in staging:
            if kind == "memory":
                if item.id in staging.relinked:
                    item.supersedes = staging.relinked[item.id]
                if item.id in unlinked:
                    item.supersedes = None
                pending.append(item)
                if len(pending) >= batch_size:
                    await flush()
            elif kind == "agent":
                if await self._import_agent(item):
                    result.agents += 1
            elif await self._import_session(item):
                result.sessions += 1
        await flush()
        return result

    def _import_agent_item(self, obj: dict[str, Any]) -> Agent:
        _check_line_fields(obj, _AGENT_LINE_FIELDS)
        agent = Agent.model_validate({**obj, "org_id": self.org_id})
        check_ref(agent.id, "id")
        name = _check_agent(agent.name, agent.description, agent.config, self.config.limits)
        _check_times(agent, "created_at", "last_active_at")
        if name != agent.name:
            agent = agent.model_copy(update={"name": name})
        return agent

    def _import_session_item(self, obj: dict[str, Any]) -> Session:
        _check_line_fields(obj, _SESSION_LINE_FIELDS)
        session = Session.model_validate({**obj, "org_id": self.org_id})
        if session.status not in SESSION_STATUSES:
            raise ValidationError(f"invalid status: {session.status!r}", field="status")
        check_ref(session.id, "id")
        check_id(session.agent_id, "agent_id", required=True)
        _check_json_size(session.metadata, "metadata", self.config.limits)
        _check_times(session, "created_at", "updated_at", "closed_at")
        return session

    async def _import_agent(self, agent: Agent) -> bool:
        if await self.store.get_agent(self.org_id, agent.id) or await self.store.get_agent(
            self.org_id, agent.name
        ):
            return False
        await self.store.create_agent(self.org_id, agent)
        self._forget_agent(agent.id, agent.name)
        return True

    async def _import_session(self, session: Session) -> bool:
        if await self.store.get_session(self.org_id, session.id):
            return False
        await self.store.create_session(self.org_id, session)
        return True

    async def purge_org(self) -> int:
        """Delete every memory, agent and session of this org, and its retention policy.
        Returns the memories deleted."""
        self._core.agent_cache.clear()
        self._core.policy_cache.pop(self.org_id, None)
        return await self.store.purge_org(self.org_id)

    # -- retention ------------------------------------------------------------------------------

    async def _policy(self) -> tuple[RetentionPolicy | None, str]:
        stored = await self.store.get_retention_policy(self.org_id)
        if stored is not None:
            try:
                # checked with the ceilings, not this configuration's [limits]: a policy
                # stored under higher limits stays valid when they are lowered
                return check_policy(stored, _CEILING_LIMITS), "org"
            except ValidationError as exc:  # stored by hand or an older memtrace: say so
                raise CorruptRowError(
                    "retention policy", self.org_id, self.org_id, exc.message
                ) from None
        if self.config.retention is not None:
            return self.config.retention, "default"
        return None, "none"

    async def _resolve(self, policy: RetentionPolicy | None) -> Resolved:
        if policy is None:
            return Resolved()
        scopes = []
        for rule in policy.rules:
            scopes.append(
                Scope(
                    agent_ids=await self._agent_aliases(rule.agent_id) if rule.agent_id else None,
                    memory_types=tuple(rule.memory_types) if rule.memory_types else None,
                    event_types=tuple(rule.event_types) if rule.event_types else None,
                    age=parse_max_age(rule.max_age, "max_age"),
                    label=describe(rule),
                    age_text=rule.max_age or "forever",
                )
            )
        return Resolved(
            tuple(scopes),
            parse_max_age(policy.max_age, "max_age"),
            policy.max_age or "forever",
        )

    async def retention_rules(self, *, fresh: bool = False) -> Resolved:
        """This org's effective retention policy, resolved for the write check and the sweep
        (cached for ``policy_cache_seconds`` unless ``fresh``)."""
        cache = self._core.policy_cache
        clock = _time.monotonic()
        hit = cache.get(self.org_id)
        if hit is not None and hit[0] > clock and not fresh:
            return hit[1]
        try:
            resolved = await self._resolve((await self._policy())[0])
        except CorruptRowError as exc:
            # an unreadable policy neither blocks writes nor deletes anything: the org keeps
            # everything until the policy is set again (get_retention_policy names the error)
            _log.error(
                "retention policy of org %s is unreadable (%s): nothing is deleted by retention "
                "and writes are not age-checked until it is set again",
                self.org_id,
                exc.reason,
            )
            resolved = Resolved()
        if len(cache) > 10_000:
            cache.clear()
        cache[self.org_id] = (clock + self.config.policy_cache_seconds, resolved)
        return resolved

    async def get_retention_policy(self) -> RetentionInfo:
        """This org's effective retention policy: its own (``source="org"``), else the
        configured default (``"default"``), else none (``"none"``: everything is kept)."""
        policy, source = await self._policy()
        return RetentionInfo(org_id=self.org_id, source=source, policy=policy or RetentionPolicy())

    async def set_retention_policy(
        self, policy: RetentionPolicy | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> RetentionInfo:
        """Set this org's retention policy (replacing any; it wins over the configured
        default), e.g. ``set_retention_policy(max_age="90d", rules=[{"memory_types":
        ["session"], "max_age": "7d"}, {"memory_types": ["decision"], "max_age": "forever"}])``.
        Memories already past their age are deleted by the next sweep (or
        :meth:`apply_retention`)."""
        checked = check_policy(coerce(RetentionPolicy, policy, fields), self.config.limits)
        await self.store.set_retention_policy(self.org_id, checked.model_dump(mode="json"))
        self._core.policy_cache.pop(self.org_id, None)
        return RetentionInfo(org_id=self.org_id, source="org", policy=checked)

    async def clear_retention_policy(self) -> RetentionInfo:
        """Remove this org's own policy: the configured default (if any) applies again."""
        await self.store.set_retention_policy(self.org_id, None)
        self._core.policy_cache.pop(self.org_id, None)
        return await self.get_retention_policy()

    async def apply_retention(self, *, dry_run: bool = False) -> RetentionReport:
        """Apply this org's retention policy now: delete every memory past its age (in
        batches, as the sweep does), or with ``dry_run`` count them and delete nothing."""
        resolved = await self.retention_rules(fresh=True)
        if resolved.keeps_everything:
            return RetentionReport(org_id=self.org_id, dry_run=dry_run, deleted=0)
        rules = resolved.age_rules(now_us())
        if dry_run:
            count = await self.store.count_aged(self.org_id, rules)
            return RetentionReport(org_id=self.org_id, dry_run=True, deleted=count)
        deleted = 0
        after: Any = None
        while True:
            batch = await self.store.delete_aged(
                self.org_id, rules, limit=_RETENTION_BATCH, after=after
            )
            deleted += batch.deleted
            after = batch.resume
            if after is None:
                return RetentionReport(org_id=self.org_id, dry_run=False, deleted=deleted)


def _check_agent(name: Any, description: str | None, config: Any, limits: Limits) -> str:
    """An agent's fields (registered or imported); returns the name, stripped."""
    clean: str = name.strip() if isinstance(name, str) else ""
    if not clean:
        raise ValidationError("name is required", field="name")
    if len(clean) > 128 or not clean.isprintable():
        raise ValidationError("invalid name: printable, at most 128 characters", field="name")
    if description is not None:
        check_text(description, "description", max_chars=4096)
    _check_json_size(config, "config", limits)
    return clean


def _check_memory_id(memory_id: Any) -> None:
    if not isinstance(memory_id, str) or not is_memory_id(memory_id):
        raise ValidationError(
            f"invalid memory id: {memory_id!r} (expected mem_ + 26 characters)", field="id"
        )


def _check_times(model: BaseModel, *fields: str) -> None:
    """Imported timestamps must lie in the range every read path represents (see
    :func:`~memtrace_core.validation.check_time_us`)."""
    for name in fields:
        value = getattr(model, name)
        if value is not None:
            check_time_us(to_us(value), name)


def _check_json_size(value: Any, field: str, limits: Limits) -> None:
    if value is not None:
        check_json(value, field, limits)


async def _cpu_step(step: str, size: int, work: Callable[[], R]) -> R:
    """How the engine runs the pure-Python steps of keyword search (``ranking.search``'s
    ``run``): in a worker thread when they are big enough to hold the event loop (a rerank of
    candidates x terms above :data:`_OFF_LOOP_RANKING`, the feedback expansion of a query of
    more than :data:`_OFF_LOOP_TERMS` terms), inline otherwise."""
    limit = _OFF_LOOP_RANKING if step == "rerank" else _OFF_LOOP_TERMS
    if size > limit:
        return await asyncio.to_thread(work)
    return work()


@dataclass(frozen=True, slots=True)
class _View:
    """What a read sees (docs/time.md): memories not expired at ``now``; with ``as_of``, only
    those recorded by then, with the supersessions made after it undone; superseded memories
    only with ``include_superseded``. Relative windows count back from :attr:`anchor`."""

    now: int
    as_of: int | None = None
    include_superseded: bool = False

    @classmethod
    def of(cls, as_of: Any, include_superseded: Any) -> _View:
        now = now_us()
        if as_of is not None and not isinstance(as_of, (str, datetime)):
            raise ValidationError(
                "invalid as_of: expected an RFC 3339 timestamp, a duration such as 2h, or now",
                field="as_of",
            )
        if include_superseded is not None and not isinstance(include_superseded, bool):
            raise ValidationError(
                "invalid include_superseded: expected true or false", field="include_superseded"
            )
        return cls(now, parse_as_of(as_of, now=now), bool(include_superseded))

    @property
    def anchor(self) -> int:
        return self.as_of if self.as_of is not None else self.now

    def shows(self, memory: Memory) -> bool:
        """Whether a memory read by id is visible (expiry and ``as_of``; a superseded one is)."""
        if _expired(memory, self.now):
            return False
        return self.as_of is None or to_us(memory.recorded_at) <= self.as_of

    def present(self, memories: list[Memory]) -> list[Memory]:
        """The memories as known at ``as_of``: a supersession made later is not shown."""
        if self.as_of is None:
            return memories
        bound = self.as_of
        return [
            m.model_copy(update={"superseded_by": None, "superseded_at": None})
            if m.superseded_at is not None and to_us(m.superseded_at) > bound
            else m
            for m in memories
        ]


#: The filters a request model (ListOptions, SearchQuery, DeleteFilter, ContextOptions) shares
#: with :meth:`AsyncMemtrace._filter`, by name.
_FILTER_FIELDS = (
    "agent_id",
    "session_id",
    "memory_types",
    "event_types",
    "tags",
    "since",
    "until",
    "min_importance",
    "content_contains",
    "recorded_since",
    "recorded_until",
    "namespace",
    "namespace_prefix",
    "key",
    "metadata",
    "tags_any",
    "ids",
    "keys",
)


def _filter_fields(model: BaseModel, **overrides: Any) -> dict[str, Any]:
    """The filter arguments of a request: its fields named in :data:`_FILTER_FIELDS`, then
    ``overrides``."""
    fields = type(model).model_fields
    out = {name: getattr(model, name) for name in _FILTER_FIELDS if name in fields}
    out.update(overrides)
    return out


def _check_keys_once(records: Sequence[MemoryRecord]) -> None:
    """A batch writes each (namespace, key) once: the store decides which current memory a
    keyed write supersedes, and two writes of one key in one transaction would both claim it."""
    seen: dict[tuple[tuple[str, ...] | None, str], int] = {}
    for index, record in enumerate(records):
        if record.key is None:
            continue
        slot = (record.namespace, record.key)
        if slot in seen:
            raise ValidationError(
                f"key {record.key!r} is written twice in one batch (items {seen[slot]} and "
                f"{index}): write it once, or in two calls",
                field="key",
                index=index,
            )
        seen[slot] = index


_BUCKET_HINT = "use a duration such as 1m, 15m, 1h, 6h, 1d or 1w, or a number of seconds"
#: A bucket: digits, then a unit as in time windows (none: seconds).
_BUCKET_RE = re.compile(r"^\s*(-?[0-9]{1,15})\s*([smhdw]?)\s*$", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _bucket_us(value: str | int | None) -> int:
    """The length of an activity bucket in µs: a duration (``15m``) or whole seconds (an int,
    or a string of digits as a query string carries it); None: one hour."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return _HOUR_US
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (match := _BUCKET_RE.match(value)):
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        raise ValidationError(f"invalid bucket {show_value(value)}: {_BUCKET_HINT}", field="bucket")
    # (an int is shown as the query string carries it: the same message on both transports)
    if seconds < _MIN_BUCKET_SECONDS:
        raise ValidationError(
            f"invalid bucket {show_value(str(value))}: the shortest bucket is 1m (60 seconds)",
            field="bucket",
        )
    if seconds > MAX_RELATIVE_SECONDS:
        raise ValidationError(
            f"invalid bucket {show_value(str(value))}: the longest bucket is 100 years",
            field="bucket",
        )
    return seconds * 1_000_000


def _duration(us: int) -> str:
    """A bucket length for a message: ``1h``, ``90s``, ``7d``."""
    seconds = us // 1_000_000
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _namespace_pattern(value: Sequence[str] | None, field: str) -> tuple[str, ...] | None:
    """A namespace pattern of :meth:`AsyncMemtrace.list_namespaces` (``"*"``: any one part)."""
    if value is None:
        return None
    return check_namespace(value, field)


def _matches(namespace: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether ``namespace`` starts with ``pattern`` (``"*"`` matches any one part)."""
    return len(namespace) >= len(pattern) and all(
        p == "*" or p == n for p, n in zip(pattern, namespace, strict=False)
    )


def _expired(memory: Memory, now: int) -> bool:
    return memory.expires_at is not None and to_us(memory.expires_at) <= now


def _window_filter(flt: MemoryFilter, plan: ranking.QueryPlan) -> MemoryFilter:
    """``flt`` narrowed to the time window a query names ("yesterday", "in March" …)."""
    win = plan.filter_window
    if win is None:
        return flt
    lo, hi = to_us(win[0]), to_us(win[1])
    return replace(
        flt,
        since=lo if flt.since is None else max(lo, flt.since),
        until=hi if flt.until is None else min(hi, flt.until),
    )


def _line(kind: str, model: BaseModel, **extra: Any) -> str:
    data = model.model_dump(mode="json", exclude_none=True)
    data.pop("score", None)
    data.pop("org_id", None)
    return (
        json.dumps({"kind": kind, **data, **extra}, ensure_ascii=False, separators=(",", ":"))
        + "\n"
    )


def _memory_line(memory: Memory) -> str:
    """A memory's export line: a memory without a dedup key (written with ``dedup=false``, or
    with dedup disabled) says ``"dedup":false``, so that an import does not give it one (a
    later identical write is then not its duplicate)."""
    if memory.dedup_key is None:
        return _line("memory", memory, dedup=False)
    return _line("memory", memory)


#: The ``format`` and ``version`` of the export trailer (see :meth:`AsyncMemtrace.iter_export`).
EXPORT_FORMAT = "memtrace-export"
EXPORT_VERSION = 1


def export_trailer(*, memories: int, agents: int, sessions: int) -> str:
    """The last line of an export: what it holds, so that an import can tell it is whole."""
    data = {
        "kind": "trailer",
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "memories": memories,
        "agents": agents,
        "sessions": sessions,
    }
    return json.dumps(data, separators=(",", ":")) + "\n"


def _check_trailer(obj: Mapping[str, Any], counts: Mapping[str, int]) -> None:
    """Check a trailer (its ``kind`` removed) against the lines counted before it."""
    if obj.get("format") != EXPORT_FORMAT:
        raise ValidationError(
            f"invalid export trailer: format {obj.get('format')!r} (expected {EXPORT_FORMAT!r})",
            field="trailer",
        )
    version = obj.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(f"invalid export trailer: version {version!r}", field="trailer")
    if version > EXPORT_VERSION:
        raise ValidationError(
            f"export format version {version} was written by a newer memtrace (this one reads "
            f"version {EXPORT_VERSION}); upgrade memtrace",
            field="trailer",
        )
    said: dict[str, int] = {}
    for name in ("memories", "agents", "sessions"):
        value = obj.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(
                f"invalid export trailer: {name} must be a non-negative integer, got {value!r}",
                field="trailer",
            )
        said[name] = value
    found = {"memories": counts["memory"], "agents": counts["agent"], "sessions": counts["session"]}
    if said != found:
        raise ValidationError(
            "export trailer does not match the file: it says "
            + ", ".join(f"{said[k]} {k}" for k in said)
            + "; the file holds "
            + ", ".join(f"{found[k]} {k}" for k in found)
            + ". The file is incomplete or was altered; nothing was imported",
            field="trailer",
        )


class _Staging:
    """Validated import items, kept in order until the whole file has been checked: pickled in
    batches into a temporary file that stays in memory up to :attr:`MEMORY_BYTES`, then spills
    to disk (so a big import does not hold every record in memory). Only this process writes
    and reads the file."""

    MEMORY_BYTES = 8 * 1024 * 1024
    BATCH = 1000

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=self.MEMORY_BYTES)  # noqa: SIM115
        self._batch: list[tuple[str, Any]] = []
        #: memory lines whose expires_at had passed (not staged): id -> what it superseded
        self.dropped: dict[str, str | None] = {}
        #: records whose target changed because an expired line was dropped: id -> target
        self.relinked: dict[str, str | None] = {}
        #: the file's memory ids, and its supersessions: record id -> (target id, line)
        self.ids: set[str] = set()
        self.links: dict[str, tuple[str, int]] = {}

    @property
    def expired(self) -> int:
        return len(self.dropped)

    def drop_expired(self, record: MemoryRecord) -> None:
        self.dropped[record.id] = record.supersedes

    def link(self, number: int, record: MemoryRecord) -> None:
        """Note a record's ``supersedes`` (a memory superseding itself is refused; the rest is
        checked whole by :meth:`check_links`)."""
        target = record.supersedes
        assert target is not None
        if target == record.id:
            raise ValidationError(
                "invalid supersedes: a memory cannot supersede itself", field="supersedes"
            )
        self.links[record.id] = (target, number)

    def add(self, item: tuple[str, Any]) -> None:
        if item[0] == "memory":
            self.ids.add(item[1].id)
        self._batch.append(item)
        if len(self._batch) >= self.BATCH:
            self._spill()

    def check_links(self) -> None:
        """Mend the links through dropped (expired) lines — a line superseding one supersedes
        what that one superseded, as a delete would mend them — then refuse two lines
        superseding one memory (chains are linear) and a cycle of supersessions (no order of
        writes could have made it)."""
        for record_id, (target, number) in list(self.links.items()):
            mended: str | None = target
            hops = 0
            while mended in self.dropped and hops <= len(self.dropped):
                mended = self.dropped[mended]
                hops += 1
            if mended == target:
                continue
            self.relinked[record_id] = mended
            if mended is None:
                del self.links[record_id]
            else:
                self.links[record_id] = (mended, number)
        claimed: dict[str, int] = {}
        for target, number in self.links.values():
            if target in claimed:
                first, second = sorted((claimed[target], number))
                raise ValidationError(
                    f"line {second}: invalid supersedes: line {first} supersedes {target} "
                    "already (a memory is superseded by one memory at most)",
                    field="supersedes",
                )
            claimed[target] = number
        done: set[str] = set()
        for start in self.links:
            path: list[str] = []
            node: str | None = start
            on_path: set[str] = set()
            while node is not None and node in self.links and node not in done:
                if node in on_path:
                    raise ValidationError(
                        f"line {self.links[node][1]}: invalid supersedes: the file's "
                        f"supersessions form a cycle through {node}",
                        field="supersedes",
                    )
                on_path.add(node)
                path.append(node)
                node = self.links[node][0]
            done.update(path)

    def _spill(self) -> None:
        if self._batch:
            pickle.dump(self._batch, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._batch = []

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        self._spill()
        self._file.seek(0)
        while True:
            try:
                batch: list[tuple[str, Any]] = pickle.load(self._file)  # our own file: trusted
            except EOFError:
                return
            yield from batch

    def close(self) -> None:
        self._file.close()


#: The fields an export line of each kind may carry (``org_id`` and ``score`` are accepted and
#: ignored: the import's org wins, and a score is not part of a memory).
#: ``dedup`` (false) marks a memory without a dedup key: it stays one after an import.
_MEMORY_LINE_FIELDS = frozenset(Memory.model_fields) | {"dedup"}
_AGENT_LINE_FIELDS = frozenset(Agent.model_fields)
_SESSION_LINE_FIELDS = frozenset(Session.model_fields)


def _exported_time(value: Any, field: str) -> int:
    """A timestamp of an export line: RFC 3339 only (exports write nothing else), in the
    representable range. A duration ("2h"), "now" or a number would be read relative to the
    import or as microseconds: a mistake, refused rather than stored."""
    if not isinstance(value, str):
        raise ValidationError(f"invalid {field}: expected an RFC 3339 timestamp", field=field)
    try:
        us = parse_timestamp(value)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"invalid {field}: expected an RFC 3339 timestamp such as 2026-02-07T20:15:00Z",
            field=field,
        ) from None
    return check_time_us(us, field)


def _check_line_fields(obj: Mapping[str, Any], accepted: frozenset[str]) -> None:
    """An import line with a field no export writes is refused, naming the field (a misspelt
    ``sesion_id`` must not be dropped silently)."""
    for name in obj:
        if name not in accepted:
            shown = ", ".join(sorted(accepted - {"org_id", "score"}))
            raise ValidationError(f"unknown field {name!r} (accepted: {shown})", field=name)


def _import_record(
    obj: dict[str, Any], org_id: str, limits: Limits, *, dedup: bool = True, now: int
) -> MemoryRecord:
    """A memory of an import line. Without ``recorded_at`` (files not written by an export) it
    is taken as recorded at its event time, or now if that is later."""
    _check_line_fields(obj, _MEMORY_LINE_FIELDS)
    mem_id = obj.get("id")
    if not isinstance(mem_id, str) or not is_memory_id(mem_id):
        raise ValidationError(f"invalid id: {mem_id!r}", field="id")
    recorded = obj.get("recorded_at")
    fields = {k: v for k, v in obj.items() if k in MemoryCreate.model_fields}
    mem = validate_memory(fields, limits)
    if mem.time is None:
        raise ValidationError("time is required", field="time")
    recorded_us = _exported_time(recorded, "recorded_at") if recorded is not None else None
    first = obj.get("key_created_at")
    record = _to_record(
        mem,
        mem_id,
        org_id,
        # Without a key of its own, the key a new write would get: a later identical write
        # within the window is then caught as a duplicate of the imported memory.
        dedup_key=(
            mem.dedup_key
            if mem.dedup_key is not None or not dedup or mem.dedup is False
            else dedup_key(mem.agent_id, mem.event_type, mem.content)
        ),
        time=to_us(mem.time),
        recorded_at=recorded_us if recorded_us is not None else min(to_us(mem.time), now),
        expires_at=None if mem.expires_at is None else to_us(mem.expires_at),
    )
    if mem.key is None:
        return record
    # the exported first-version time of the key (else this line's own event time)
    return replace(
        record,
        key_created_at=record.time if first is None else _exported_time(first, "key_created_at"),
    )


def _to_record(
    mem: MemoryCreate,
    memory_id: str,
    org_id: str,
    *,
    dedup_key: str | None,
    time: int,
    recorded_at: int,
    expires_at: int | None,
) -> MemoryRecord:
    """The record of a validated memory (a new write or an import line)."""
    return MemoryRecord(
        id=memory_id,
        org_id=org_id,
        agent_id=mem.agent_id,
        session_id=mem.session_id,
        memory_type=mem.memory_type,
        event_type=mem.event_type,
        content=mem.content,
        metadata=mem.metadata,
        tags=mem.tags,
        dedup_key=dedup_key,
        payload=mem.payload,
        importance=mem.importance,
        parent_id=mem.parent_id,
        time=time,
        recorded_at=recorded_at,
        expires_at=expires_at,
        supersedes=mem.supersedes,
        namespace=None if mem.namespace is None else tuple(mem.namespace),
        key=mem.key,
    )
