"""The Store protocol: what a storage backend implements.

Stores *store*; the engine owns every rule (validation, dedup keys and windows, time parsing,
tenancy, ranking, context). Every method takes the org explicitly and a store must enforce it in
its own queries. Methods are async; a store backed by a blocking driver runs it in threads.

Dedup is the one rule that needs the store's help to be atomic: the engine computes each
memory's key and the window, and :meth:`Store.insert_memories` must check-and-insert inside one
transaction (serialised against other writers, including other processes on the same database)
so that no two memories with the same key land within the window.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ..models import Agent, Memory, MemorySummary, Session


@dataclass(slots=True)
class MemoryRecord:
    """A validated memory ready to be stored (times in microseconds since the epoch, UTC)."""

    id: str
    org_id: str
    agent_id: str
    session_id: str | None
    memory_type: str
    event_type: str
    content: str
    metadata: dict[str, Any] | None
    tags: list[str] | None
    dedup_key: str | None
    importance: float | None
    parent_id: str | None
    time: int
    recorded_at: int
    expires_at: int | None = None
    supersedes: str | None = None
    namespace: tuple[str, ...] | None = None
    key: str | None = None
    #: For a keyed record: the event time of the first version of its key. The store sets it
    #: on insert (inherited from the memory the record supersedes, else the record's ``time``);
    #: an import carries the exported value.
    key_created_at: int | None = None
    #: The caller's JSON value, stored verbatim (not indexed, not searched); None: none.
    payload: Any = None


@dataclass(frozen=True, slots=True)
class MetaCondition:
    """One condition on a metadata value at ``path`` (object keys from the top), resolved by
    the engine from a filter (:func:`memtrace_core.validation.metadata_conditions`):

    * ``eq``: the value is the scalar ``value`` (``None``: the value is null or absent); numbers
      compare numerically and booleans as 1 / 0, as Python's ``==`` does;
    * ``ne``: not ``eq`` (an absent value is "not equal");
    * ``in``: ``eq`` holds for one of the scalars of the tuple ``value`` (a ``None`` among them:
      the value is null or absent); ``$nin`` is ``not`` of one ``in``;
    * ``gt``, ``gte``, ``lt``, ``lte``: the value is a number (or a boolean) and compares so with
      the float ``value``;
    * ``length``: the value is an array of ``value`` elements;
    * ``object``: the value is an object;
    * ``not``: not all of the conditions in ``value`` (a tuple of :class:`MetaCondition`) hold
      (an absent value makes them fail, so ``not`` holds).

    A path part that is an ``int`` indexes an array (the element-wise conditions of a list).
    """

    path: tuple[str | int, ...]
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class MemoryFilter:
    """Resolved filters. ``None`` means "no constraint". ``agent_ids`` matches any of the given
    values (an agent's id and its name); ``tags`` must all be present (exact match),
    ``tags_any`` at least one of them (both may be given); ``ids`` is one of these memory ids,
    ``keys`` one of these keys (as ``key``, which may be given too);
    ``since`` is inclusive and ``until`` exclusive (microseconds, on the event ``time``), as are
    ``recorded_since`` / ``recorded_until`` (on ``recorded_at``); ``content_contains`` is a
    case-insensitive substring.

    Scopes: ``namespace`` is an exact namespace, ``namespace_prefix`` that namespace or any
    below it (``("a",)`` matches ``("a",)`` and ``("a", "b")``), ``key`` a memory's key;
    ``metadata`` conditions must all hold (:class:`MetaCondition`).

    Time (see docs/time.md): ``live_at`` drops memories whose ``expires_at <= live_at`` (the
    engine sets it to now on every read: an expired memory is gone at once). ``as_of`` keeps
    only memories with ``recorded_at <= as_of``. ``current`` drops superseded memories: those
    with ``superseded_by`` set, or, with ``as_of``, those with ``superseded_at <= as_of`` (a
    supersession made after ``as_of`` does not count)."""

    agent_ids: tuple[str, ...] | None = None
    session_id: str | None = None
    memory_types: tuple[str, ...] | None = None
    event_types: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    since: int | None = None
    until: int | None = None
    min_importance: float | None = None
    content_contains: str | None = None
    ids: tuple[str, ...] | None = None
    recorded_since: int | None = None
    recorded_until: int | None = None
    live_at: int | None = None
    as_of: int | None = None
    current: bool = False
    namespace: tuple[str, ...] | None = None
    namespace_prefix: tuple[str, ...] | None = None
    key: str | None = None
    metadata: tuple[MetaCondition, ...] | None = None
    tags_any: tuple[str, ...] | None = None
    keys: tuple[str, ...] | None = None

    def is_empty(self) -> bool:
        """Whether the filter selects every memory of the org."""
        return self == _EVERYTHING

    def without_view(self) -> MemoryFilter:
        """The filter without its time view (``live_at``, ``as_of``, ``current``): an upper
        bound of what it selects, which the (org, time) index can count with no row reads."""
        return replace(self, live_at=None, as_of=None, current=False)


_EVERYTHING = MemoryFilter()


@dataclass(frozen=True, slots=True)
class AgeRule:
    """One rule of a resolved retention policy (:meth:`Store.delete_aged`): the memories
    ``flt`` matches are deleted once their event ``time`` is before ``cutoff`` (None: kept
    forever)."""

    flt: MemoryFilter
    cutoff: int | None


@dataclass(frozen=True, slots=True)
class AgedBatch:
    """What one :meth:`Store.delete_aged` call did: ``deleted`` memories, and ``resume``, an
    opaque position to pass as ``after`` to continue past every memory this call examined
    (None: nothing is left to examine)."""

    deleted: int
    resume: Any = None


@dataclass(frozen=True, slots=True)
class BucketCount:
    """One group of :meth:`Store.count_by_bucket`: ``count`` memories of ``memory_type`` in
    the time bucket numbered ``bucket`` (0 is the first), ``errors`` of them with the error
    event type."""

    bucket: int
    memory_type: str
    count: int
    errors: int


def bucket_window(flt: MemoryFilter, start: int, bucket: int, buckets: int) -> MemoryFilter:
    """``flt`` narrowed to the buckets of :meth:`Store.count_by_bucket` (a store helper):
    ``start <= time < start + bucket * buckets``, within ``flt``'s own ``since`` / ``until``."""
    end = start + bucket * buckets
    since = start if flt.since is None else max(flt.since, start)
    until = end if flt.until is None else min(flt.until, end)
    return replace(flt, since=since, until=until)


class SupersedeError(Exception):
    """Raised by :meth:`Store.insert_memories` (the whole call is rolled back) when a record's
    ``supersedes`` cannot be applied: ``current`` is None when the target does not exist in the
    org (or has expired), else the id of the chain's current version (the target was already
    superseded). ``index`` is the record's position in the call."""

    def __init__(self, index: int, target: str, current: str | None) -> None:
        super().__init__(f"record {index}: cannot supersede {target} (current: {current})")
        self.index = index
        self.target = target
        self.current = current


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    """Per-record result of :meth:`Store.insert_memories`: inserted, or the id it duplicates;
    ``supersedes`` names the memory a keyed record superseded (the store decides it) and
    ``key_created_at`` the event time of the first version of a keyed record's key."""

    inserted: bool
    duplicate_of: str | None = None
    supersedes: str | None = None
    key_created_at: int | None = None


@dataclass(slots=True)
class Candidate:
    """A keyword-search candidate: the memory plus the store's native relevance score
    (FTS5 ``bm25()``: lower is better). Only used to choose candidates; the engine computes
    the final ranking itself so that it is the same on every store."""

    memory: Memory
    native_score: float


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    """Stage-1 keyword retrieval: memories matching ANY of ``terms`` (each a word; the store
    applies its own stemming), best ``limit`` by the store's BM25 with the given field weights.

    ``groups`` are the query's own words, each with its variants. With ``recent_first`` (the
    engine sets it when the terms match too many memories for exact BM25) the store returns
    the newest memories matching every group, then the newest matching any term (stage 2
    re-ranks either way).

    ``known`` are ids of memories the caller already holds (the first pool, when the engine
    fetches again for a feedback round): they still count toward ``limit`` and keep their
    place, but a store may leave them out of its result instead of decoding them again, so
    that the caller's merged pool is the same either way. A store may ignore it."""

    terms: tuple[str, ...]
    limit: int
    field_weights: dict[str, float] = field(default_factory=dict)
    groups: tuple[tuple[str, ...], ...] = ()
    recent_first: bool = False
    known: frozenset[str] = frozenset()


@dataclass(slots=True)
class StoreHealth:
    """What :meth:`Store.health` reports; the server's ``/ready`` and ``/health`` are filled
    from it.

    Attributes:
        ok: the backend answered a trivial query.
        latency_ms: how long that took.
        detail: why not, when not ``ok`` (logged by the server, never sent to a client).
        arc: the original service's ``arc`` field of ``/health``: for each org, whether its Arc
            database is reachable (``{"org_x": "ok"}``). Empty for stores that are not Arc.
        extra: further facts for ``/ready`` (JSON values).
    """

    ok: bool
    latency_ms: float
    detail: str | None = None
    arc: dict[str, str] = field(default_factory=dict)
    #: What else the store reports (the Arc store: Arc's reachability and the spool's depth),
    #: shown as is in ``/ready``'s ``store`` object.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FeedPage:
    """What one :meth:`Store.feed_memories` call read.

    Attributes:
        items: the matching memories in commit order, each with its own position (the
            stream's event id: passed as ``after`` it resumes just past that memory).
        cursor: the position past every row the call examined, matching or not (pass it as
            ``after`` to go on); equal to ``after`` when nothing new was final yet.
        more: the call stopped at ``limit`` or ``scan`` with rows left: call again at once
            rather than waiting for a change.
    """

    items: list[tuple[str, Memory]]
    cursor: str
    more: bool = False


def check_org(org_id: str, items: Sequence[Any], what: str) -> None:
    """Refuse records of another org than the one a store method was given (a store helper:
    the org is an argument of every method and a record's own ``org_id`` is never trusted)."""
    for item in items:
        if item.org_id != org_id:
            raise ValueError(f"{what} of org {item.org_id!r} given to a call for org {org_id!r}")


@runtime_checkable
class Store(Protocol):
    """An async storage backend; implementations register a URL scheme through the
    ``register_stores`` plugin hook and must pass ``tests/conformance`` (see docs/plugins.md).

    Contract, for every method:

    * **Tenancy.** The org is the first argument of every method that reads or writes data,
      and the store enforces it in its own queries: nothing of another org is ever read,
      counted, changed or deleted. A record handed to a write whose ``org_id`` differs from
      the ``org_id`` argument is refused with ``ValueError`` (helper: :func:`check_org`).
    * **No business rules.** Validation, dedup keys and windows, time parsing, agent name
      resolution, ranking, context and stats are the engine's. A store applies the filters it
      is given (:class:`MemoryFilter`), exactly, and nothing else.
    * **Times** are integers of microseconds since the Unix epoch (UTC) in
      :class:`MemoryRecord` and :class:`MemoryFilter`; models (:class:`Memory`,
      :class:`Agent`, :class:`Session`) carry aware datetimes.
    * **Durability.** A write returns only once it is committed (for a remote store: once it is
      in a local durable spool that is forwarded with retries). A read sees every write that
      has returned.
    * **Errors.** A failure of the backend (I/O, lock timeout, connection) is a
      :class:`~memtrace_core.errors.StoreError`; :class:`~memtrace_core.errors.ConflictError`
      where a method says so.
    * **Unreadable rows** (invalid JSON, an unrepresentable time, a wrong type: old data, a
      manual edit, a bug) never fail a list or search: the store skips them, logs them (logger
      ``memtrace.store``, with org and id) and counts them in an ``unreadable_rows``
      attribute (the server's ``memtrace_unreadable_rows_total``). Reading one such row by id,
      and the ``strict`` reads of an export, raise
      :class:`~memtrace_core.errors.CorruptRowError` naming it instead.
    * **Order.** Memories are ordered by ``time``, ties broken by insertion order (SQLite: the
      rowid; a store without one keeps an insertion sequence). Not by ``id``: an import writes
      ids of any age, and ties must keep the order they were stored in, as on every store.
    * **Supersession links** (docs/time.md). A memory B with ``supersedes = A`` makes A
      superseded: the store keeps, on A, ``superseded_by = B`` and ``superseded_at =
      B.recorded_at`` (returned in A's :class:`Memory`), and at most one memory of an org
      supersedes any one memory (SQLite: a unique index). Deleting a memory (by any path:
      delete, purge, the expiry and retention sweeps) is as if it had never been written: if it
      superseded A and was itself superseded by C, C now supersedes A (``A.superseded_by = C``,
      ``A.superseded_at = C.recorded_at``); if nothing superseded it, A is current again; a
      memory that superseded it supersedes nothing any more. So a link always names a stored
      memory, chains stay linear and no cycle can form.
    * **Keys.** A record with a ``key`` and no ``supersedes`` supersedes the current, unexpired
      memory of ``org_id`` with the same ``namespace`` (None included) and ``key``, if there is
      one — decided inside :meth:`insert_memories`' serialised transaction, so that of two
      concurrent writes of one key the later supersedes the earlier and a key has at most one
      current memory. (The engine refuses two records with one namespace and key in a call.)
    * **Expiry.** ``expires_at`` is stored and returned; reads apply ``MemoryFilter.live_at``;
      :meth:`get_memory` returns an expired memory (the engine hides it). An expired memory is
      as if it had never been written from the moment it expires, before any sweep: a memory
      whose successors have *all* expired is current again (``current`` keeps it, its
      ``superseded_by`` / ``superseded_at`` are not returned, a write may supersede it and
      dedup compares against it). SQLite keeps, on each superseded memory, when the last of
      its successors expires (``superseded_until``).
    * **Event loops.** A store is opened, used and closed on one event loop unless it sets the
      optional class attribute ``loop_agnostic = True``: then every method but ``open`` and
      ``close`` may be awaited on any loop, from several threads at once (SQLite: its threads
      deliver each result to the loop that awaited it), and a blocking handle runs engine
      calls on its callers' threads and loops instead of its own (one thread hop fewer; not
      with write plugins: docs/architecture.md).
    """

    async def open(self) -> None:
        """Connect, create the schema or migrate it. Called once before any other method."""

    async def close(self) -> None:
        """Commit pending writes, then release every resource (threads, connections)."""

    async def health(self) -> StoreHealth:
        """Whether the backend answers (a trivial query, timed). Never raises: a failure is
        ``StoreHealth(ok=False, detail=…)``."""
        ...

    # -- memories -----------------------------------------------------------------------------
    async def insert_memories(
        self,
        org_id: str,
        records: Sequence[MemoryRecord],
        *,
        dedup_since: int | None,
        now: int,
    ) -> list[InsertOutcome]:
        """Insert ``records`` (all of ``org_id``) in one transaction, atomically deduplicated;
        one :class:`InsertOutcome` per record, in order.

        A record whose ``dedup_key`` is set is skipped (``InsertOutcome(False, existing_id)``)
        when a *current* (not superseded), unexpired (``expires_at`` null or after ``now``)
        memory of ``org_id`` with that key has ``recorded_at >= dedup_since`` — including one
        inserted earlier in the same call — unless that memory is the one the record
        supersedes. The check and the insert must be serialised against every other writer of
        the same database (other processes included), so that no two memories with one key
        land within the window. ``dedup_since=None`` disables the check.

        A record with ``supersedes`` needs its target to be a memory of ``org_id`` that is
        unexpired at ``now`` and current, checked in the same serialised transaction (of two
        concurrent supersessions of one memory exactly one succeeds); otherwise the whole call
        is rolled back with :class:`SupersedeError`. On success the target gets
        ``superseded_by`` / ``superseded_at`` (the record's ``recorded_at``).

        Each inserted memory is added to every index the store keeps (keyword, substring,
        tags) in the same transaction. Also sets ``last_active_at`` of the agent whose id or
        name is the record's ``agent_id`` to the newest ``recorded_at`` written (never back)."""
        ...

    async def import_memories(self, org_id: str, records: Sequence[MemoryRecord]) -> int:
        """Insert ``records`` (all of ``org_id``) keeping their ids and times, in one
        transaction; a record whose id already exists in that org is skipped (ids are unique
        per org). No dedup or supersession check (the engine checked the file). Links are made
        in both directions, so the order of the records does not matter: a record's
        ``supersedes`` target, if stored, gets ``superseded_by`` / ``superseded_at`` (unless it
        already has them), and a record that a stored memory supersedes gets them too. Returns
        the number inserted."""
        ...

    async def get_memory(self, org_id: str, memory_id: str) -> Memory | None:
        """The memory of ``org_id`` with this id, or None."""
        ...

    async def list_memories(
        self, org_id: str, flt: MemoryFilter, *, limit: int, offset: int, order: str
    ) -> list[Memory]:
        """Memories of ``org_id`` matching ``flt``, ordered by time (then insertion order) ascending
        (``order="asc"``) or descending (``"desc"``), skipping ``offset``, at most ``limit``."""
        ...

    async def keyword_candidates(
        self, org_id: str, flt: MemoryFilter, query: KeywordQuery
    ) -> list[Candidate]:
        """Stage 1 of keyword search (:class:`KeywordQuery`): memories of ``org_id`` matching
        ``flt`` and any of ``query.terms`` under the store's own stemming, at most
        ``query.limit``. Without ``recent_first``: the best by the store's BM25 with
        ``query.field_weights`` over the fields content, agent_id, event_type, tags. With it:
        the newest matching every group of ``query.groups``, topped up with the newest matching
        any term. The engine re-ranks the candidates itself; ``native_score`` only helps choose
        them and never reaches the final order."""
        ...

    async def count_keyword_matches(
        self, org_id: str, flt: MemoryFilter, terms: tuple[str, ...], cap: int
    ) -> int:
        """How many memories of ``org_id`` that match ``flt`` also match any of ``terms``,
        counting no further than ``cap``. The engine picks its search path from it, so it must
        be exact for the org and the filters: a count that included another org's memories
        would let that org change (and observe through) this org's results."""
        ...

    async def count_memories(
        self, org_id: str, flt: MemoryFilter, *, cap: int | None = None
    ) -> int:
        """How many memories of ``org_id`` match ``flt`` (counting no further than ``cap``
        when given: then the cost is bounded by ``cap`` rows, not by the org's size)."""
        ...

    async def count_by_type(self, org_id: str, flt: MemoryFilter) -> dict[str, int]:
        """How many memories of ``org_id`` matching ``flt`` there are of each ``memory_type``
        (types with none are left out)."""
        ...

    async def summarize_memories(
        self, org_id: str, flt: MemoryFilter, *, tag_limit: int
    ) -> MemorySummary:
        """What the memories of ``org_id`` matching ``flt`` add up to, exactly and without
        reading them one by one (SQLite: aggregates over the filter's indexes): their
        ``count``, the ``oldest`` and ``newest`` event ``time`` (None when there are none), and
        ``tags``: for the ``tag_limit`` most frequent tags among them, how many of them carry
        each (the most frequent first, ties by tag name), with ``tags_truncated`` set when more
        distinct tags were found. Unreadable rows are counted as stored (as
        :meth:`count_memories` does)."""
        ...

    async def count_by_bucket(
        self,
        org_id: str,
        flt: MemoryFilter,
        *,
        start: int,
        bucket: int,
        buckets: int,
        error_type: str,
    ) -> list[BucketCount]:
        """The memories of ``org_id`` matching ``flt`` counted per time bucket and
        ``memory_type``, in one aggregate query (no per-row work in Python): bucket ``i``
        holds the event ``time`` values ``start + i * bucket <= time < start + (i + 1) *
        bucket`` (µs), for ``i`` in ``0 .. buckets - 1``; memories outside those buckets are
        not counted (helper: :func:`bucket_window`). One :class:`BucketCount` per (bucket,
        type) that has memories, in any order; ``errors`` counts those whose ``event_type``
        is ``error_type``. Unreadable rows are counted as :meth:`count_memories` counts
        them."""
        ...

    async def delete_memories(
        self, org_id: str, flt: MemoryFilter, *, all_versions: bool = False
    ) -> int:
        """Delete every memory of ``org_id`` matching ``flt`` from the table and from every
        index (a later keyword or substring search must not find it), mending the supersession
        links (see the class docstring). Returns the count. An empty filter deletes every
        memory of the org (the engine guards against that).

        ``all_versions``: also delete every other version of each matched memory, i.e. its
        whole supersession chain within ``org_id`` (follow ``supersedes`` to the older
        versions and the memories that supersede it to the newer ones, transitively; those
        versions need not match ``flt``), in the same transaction, so that no earlier version
        becomes current again. Nothing outside those chains changes. The count is every memory
        deleted. (The engine passes the keyword only when it is true: a store written before
        it existed keeps working for every other delete.)"""
        ...

    async def pop_memory(self, org_id: str, flt: MemoryFilter, *, now: int) -> Memory | None:
        """Remove and return the newest *current* memory of ``org_id`` matching ``flt``: not
        superseded and unexpired at ``now`` (as ``flt`` with ``current=True`` and
        ``live_at=now`` selects), the latest ``time`` first, ties broken by the latest
        insertion. The choice and the delete (as :meth:`delete_memories` does it: every index,
        links mended) happen in one serialised write transaction, so two concurrent pops never
        return the same memory. Returns the memory as it was stored, or None if none matches.
        An unreadable row chosen raises CorruptRowError (nothing is deleted)."""
        ...

    async def delete_expired(self, now: int, *, limit: int) -> int:
        """Delete at most ``limit`` memories, of any org, whose ``expires_at <= now`` (as
        :meth:`delete_memories` does: every index, links mended); the oldest expiry first.
        Returns the count. (A maintenance method: the sweep's, not scoped to one org.)"""
        ...

    async def delete_aged(
        self, org_id: str, rules: Sequence[AgeRule], *, limit: int, after: Any = None
    ) -> AgedBatch:
        """Retention: delete the first ``limit`` memories of ``org_id``, in (time, insertion)
        order, that are past their age. For each memory, the *first* rule whose ``flt`` it
        matches decides: the memory is past its age when that rule's ``cutoff`` is set and
        ``time < cutoff``; a memory no rule matches is kept. Deleted as by
        :meth:`delete_memories`. ``after`` (the ``resume`` of the previous call of one run)
        skips what that call examined, so a run reads each kept memory once, not once per
        batch. The scan must not hold up writers for long (SQLite: the selection runs on a
        reader, only the deletion by id on the writer)."""
        ...

    async def count_aged(self, org_id: str, rules: Sequence[AgeRule]) -> int:
        """How many memories of ``org_id`` :meth:`delete_aged` would delete (a dry run)."""
        ...

    async def list_namespaces(
        self, org_id: str, prefix: tuple[str, ...] | None = None
    ) -> list[tuple[str, ...]]:
        """The distinct namespaces of ``org_id``'s memories that hold at least one memory that
        reads show — not expired and current (a superseded memory counts only once every
        successor has expired: a namespace that only an older version of a moved record
        occupies is not listed) — or only those equal to or below ``prefix``,
        sorted by their parts. The cost must be bounded by the number of namespaces, not of
        memories (SQLite: a skip-scan of an index)."""
        ...

    async def memory_orgs(self) -> list[str]:
        """Every org that has at least one memory (for the retention sweep)."""
        ...

    async def get_retention_policy(self, org_id: str) -> dict[str, Any] | None:
        """The retention policy stored for ``org_id`` (the JSON object the engine stored), or
        None."""
        ...

    async def set_retention_policy(self, org_id: str, policy: dict[str, Any] | None) -> None:
        """Store ``policy`` for ``org_id`` (a JSON object, replacing any), or remove it (None)."""
        ...

    async def list_retention_policies(self) -> dict[str, dict[str, Any]]:
        """Every stored retention policy, by org."""
        ...

    async def acquire_lease(self, name: str, holder: str, *, now: int, duration: int) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``now + duration`` (µs), if no
        other holder has it unexpired at ``now``; whether ``holder`` has it now. Atomic across
        every process using the store: this is how one sweeper at a time is guaranteed."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give up the lease ``name`` if ``holder`` has it."""
        ...

    def iter_memories(
        self, org_id: str, flt: MemoryFilter, *, batch: int = 1000
    ) -> AsyncIterator[list[Memory]]:
        """Every memory of ``org_id`` matching ``flt`` in (time, insertion) order, in lists of at
        most ``batch`` (for export: keyset pagination, so that it is linear and stable while
        writes go on). Never skips: an unreadable row raises CorruptRowError."""
        ...

    # -- the live feed ------------------------------------------------------------------------
    async def feed_head(self, org_id: str) -> str:
        """The position of "now" for ``org_id``: :meth:`feed_memories` after it returns only
        memories committed after this call began (never one twice, never one missed). Cheap,
        no scan (SQLite: the last rowid handed out; PostgreSQL: the snapshot's xmin)."""
        ...

    async def feed_memories(
        self, org_id: str, flt: MemoryFilter, *, after: str | None, limit: int, scan: int
    ) -> FeedPage:
        """Memories of ``org_id`` matching ``flt`` in the store's **commit order**, after the
        position ``after`` (None: from the first memory stored): at most ``limit`` of them,
        examining at most ``scan`` rows, matching or not (a rare filter still moves the
        cursor; see :class:`FeedPage`).

        Commit order is a total order of every memory inserted (by :meth:`insert_memories`
        and :meth:`import_memories` alike) that a reader can follow without missing one: a
        memory is returned only once no memory before it in that order can still be
        committed. SQLite: one writer, positions are rowids never handed out twice;
        PostgreSQL: (transaction id, seq) of rows whose transaction id is below the
        statement snapshot's xmin. So the same ``after`` always yields the same sequence,
        except that memories deleted since (or expired, with ``flt.live_at``) are left out,
        their positions passed. Positions only grow and are never reused, even after a
        delete. Supersession links and deletes are not items.

        Unreadable rows are skipped, logged and counted as in lists (their positions
        passed). Positions are opaque strings; a malformed one, one of another kind of store,
        or one beyond the store's head (a position from a restored or another database)
        raises ValidationError(field="after"). Passing a position of another org is just a
        point in the order: it reads nothing of that org. (The built-in stores' positions are
        store-wide counters, so they do show how many memories the whole store took between
        two of them, not whose.)"""
        ...

    # -- agents -------------------------------------------------------------------------------
    async def create_agent(self, org_id: str, agent: Agent) -> None:
        """Store a new agent of ``org_id``. ConflictError if the org already has an agent with
        that name or id."""
        ...

    async def get_agent(self, org_id: str, id_or_name: str) -> Agent | None:
        """The agent of ``org_id`` whose id — or else whose name — is ``id_or_name``."""
        ...

    async def list_agents(self, org_id: str, *, strict: bool = False) -> list[Agent]:
        """Every agent of ``org_id``, newest ``created_at`` first (then by id); ``strict``:
        raise CorruptRowError on an unreadable row instead of skipping it."""
        ...

    async def delete_agent(self, org_id: str, agent_id: str) -> bool:
        """Delete the agent of ``org_id`` with this id (not name). Whether it existed."""
        ...

    # -- sessions -----------------------------------------------------------------------------
    async def create_session(self, org_id: str, session: Session) -> None:
        """Store a new session of ``org_id``. ConflictError if that id exists in the org."""
        ...

    async def get_session(self, org_id: str, session_id: str) -> Session | None:
        """The session of ``org_id`` with this id, or None."""
        ...

    async def list_sessions(
        self,
        org_id: str,
        *,
        agent_ids: tuple[str, ...] | None,
        status: str | None,
        limit: int,
        offset: int,
        strict: bool = False,
    ) -> list[Session]:
        """Sessions of ``org_id`` (of any of ``agent_ids`` and with ``status`` when given),
        newest ``created_at`` first (then by id), skipping ``offset``, at most ``limit``;
        ``strict``: raise CorruptRowError on an unreadable row instead of skipping it."""
        ...

    async def update_session(
        self, org_id: str, session_id: str, change: Callable[[Session], Session]
    ) -> Session | None:
        """Atomically read the session, apply ``change`` (the engine's rule: status, timestamps,
        metadata merge) and store the result (status, metadata, updated_at, closed_at),
        serialised against other writers so that two concurrent updates never lose one
        another. Returns None if the session does not exist; an exception raised by ``change``
        aborts the update and propagates."""
        ...

    async def delete_session(self, org_id: str, session_id: str) -> bool:
        """Delete the session of ``org_id`` (not its memories). Whether it existed."""
        ...

    async def count_sessions(self, org_id: str, agent_ids: tuple[str, ...]) -> tuple[int, int]:
        """(all sessions, sessions with status ``active``) of ``org_id`` whose agent is any
        of ``agent_ids``."""
        ...

    # -- orgs ---------------------------------------------------------------------------------
    async def purge_org(self, org_id: str) -> int:
        """Delete every memory (from every index), agent, session and the retention policy of
        ``org_id``, in one transaction. Returns the memories deleted."""
        ...
