"""``MemtraceStore``: LangGraph's long-term memory store (``langgraph.store.base.BaseStore``)
over memtrace, so that what a LangGraph agent stores is also an ordinary memtrace memory —
in recall, search, session context and export — and survives the process.

The mapping (docs/integrations/langchain.md):

============================  ===============================================================
LangGraph                     memtrace
============================  ===============================================================
namespace ``("users", "u1")``  the memory's ``namespace`` ``["users", "u1"]``
key                           the memory's ``key``; a put of an existing key writes a new
                              version that supersedes the current one (history stays, readable
                              with ``include_superseded`` / ``as_of``)
value (a JSON object)         the memory's ``metadata``, exactly (``filter`` is a metadata
                              filter)
memory text                   ``value["content"]``, else ``value["text"]`` (a string with a
                              non-blank character), else the fields named by ``index=[…]``,
                              else the value's compact JSON
``Item.created_at``           the event time of the key's first version (``key_created_at``)
``Item.updated_at``           the event time of the current version
``put(value=None)``/delete    every version of the key is deleted
``search(query=…)``           memtrace's ranked keyword search (``SearchItem.score`` set); without
                              a query: newest first
``ttl`` (minutes)             the memory's ``ttl``: it expires and is swept like any memory
agent / memory type / event   constructor options (``langgraph`` / ``entity`` / ``store_item``)
============================  ===============================================================

Every operation is a call of memtrace's method set (``memtrace_core.api``) through a
:class:`~memtrace_core.bridge.MemtraceHandle`, so the store works the same over the embedded
engine (``connect("sqlite:///…")``) and a memtrace server (``connect("http://…", api_key=…)``).
Nothing here re-implements a rule of the engine: validation, limits, filters, ranking,
supersession and expiry are the engine's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)

from memtrace_core.errors import NotFoundError, ValidationError
from memtrace_core.models import Memory

from ._context import Call, MemtraceTarget, Program, as_handle, drive, drive_async

try:  # langgraph-checkpoint >= 4.3
    from langgraph.store.base import validate_op_namespace
except ImportError:  # pragma: no cover - older langgraph-checkpoint: the same rule, its own way

    def validate_op_namespace(op: Op) -> None:
        """LangGraph's label rule for ops given to ``batch`` directly (older releases check
        it only in ``BaseStore.put``): non-empty strings without ``.`` or NUL."""
        if isinstance(op, (GetOp, PutOp)):
            labels: tuple[str, ...] = op.namespace
        elif isinstance(op, SearchOp):
            labels = op.namespace_prefix
        else:
            labels = tuple(p for c in op.match_conditions or () for p in c.path)
        for label in labels:
            if not isinstance(label, str) or not label or "." in label or "\x00" in label:
                raise InvalidNamespaceError(
                    f"Invalid namespace label {label!r}: labels must be non-empty strings "
                    "without periods or NUL"
                )


__all__ = ["MemtraceStore"]

#: Value fields whose text becomes the memory's content when present (in this order).
DEFAULT_CONTENT_FIELDS: tuple[str, ...] = ("content", "text")
#: Most memories per engine write call (the engine's default ``limits.max_batch``).
_WRITE_CHUNK = 1000
#: The memory text of an empty value.
_EMPTY = "{}"


class MemtraceStore(BaseStore):
    """A LangGraph store on memtrace: ``create_agent(model, tools, store=MemtraceStore(mt))``.

    Args:
        memtrace: a handle from :func:`memtrace_core.connect` (sync and async use) or
            :func:`memtrace_core.aconnect` (async use only), or a memtrace URL —
            ``sqlite:///memtrace.db`` or ``http://host:9100`` with ``api_key`` — which the
            store opens and :meth:`close` closes.
        api_key: the API key when ``memtrace`` is an ``http(s)://`` URL.
        agent_id: the agent the stored memories are attributed to.
        memory_type: their memory type (``entity``: facts about things).
        event_type: their event type.
        session_id: a session to attach them to (their session context then shows them).
        content_fields: value fields read, in order, for the memory text.
        ttl: LangGraph's TTL settings. ``default_ttl`` (minutes) applies to puts without a
            ``ttl``. memtrace does not move an expiry on read: ``refresh_on_read`` must be
            False (the default here) and ``refresh_ttl`` of a read is not applied. Expired
            items are never returned; memtrace's sweep removes them from the store
            (``sweep_interval_minutes`` is not used).
    """

    supports_ttl = True

    def __init__(
        self,
        memtrace: MemtraceTarget,
        *,
        api_key: str | None = None,
        agent_id: str = "langgraph",
        memory_type: str = "entity",
        event_type: str = "store_item",
        session_id: str | None = None,
        content_fields: Sequence[str] = DEFAULT_CONTENT_FIELDS,
        ttl: TTLConfig | None = None,
    ) -> None:
        if ttl is not None and ttl.get("refresh_on_read"):
            raise ValueError(
                "memtrace does not refresh a TTL on read: use refresh_on_read=False (an item "
                "expires ttl minutes after its last put)"
            )
        self._handle = as_handle(memtrace, api_key=api_key)
        self.agent_id = agent_id
        self.memory_type = memory_type
        self.event_type = event_type
        self.session_id = session_id
        self.content_fields = tuple(content_fields)
        self.ttl_config: TTLConfig = {**(ttl or {}), "refresh_on_read": False}

    # -- BaseStore ----------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` and return their results in order. As in LangGraph's own stores the
        reads see the store as it was before the batch, and the batch's puts are applied
        after them (the last put of a key wins)."""
        plan = _Plan(ops)
        results: list[Result] = [None] * plan.size
        for index, op in plan.reads:
            results[index] = drive(self._handle, _read(op))
        drive(self._handle, self._write(plan.puts))
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` without blocking the event loop (the reads run concurrently)."""
        plan = _Plan(ops)
        results: list[Result] = [None] * plan.size
        values = await asyncio.gather(
            *(drive_async(self._handle, _read(op)) for _, op in plan.reads)
        )
        for (index, _), value in zip(plan.reads, values, strict=True):
            results[index] = value
        await drive_async(self._handle, self._write(plan.puts))
        return results

    def close(self) -> None:
        """Close the memtrace handle if the store opened it from a URL."""
        self._handle.close()

    async def aclose(self) -> None:
        """:meth:`close` from a coroutine."""
        await self._handle.aclose()

    def __enter__(self) -> MemtraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MemtraceStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, puts: Sequence[tuple[int, PutOp]]) -> Program:
        """The engine calls of a batch's puts (one body for the sync and the async path)."""
        for indices, chunk in self._write_chunks(puts):
            with _at_op(indices):
                yield Call("add_memories", (chunk,))
        for index, op in puts:
            if op.value is None:
                with _at_op([index]):
                    yield Call(
                        "delete_memories", (), {"namespace": list(op.namespace), "key": op.key}
                    )

    def _write_chunks(
        self, puts: Sequence[tuple[int, PutOp]]
    ) -> list[tuple[list[int], list[dict[str, Any]]]]:
        """The writes of a batch's puts with values, in engine calls of at most 1000 (each one
        atomic), with the batch position of each write. The values are all checked here
        first, and the writes go before the deletes: a bad value leaves the store as it was
        (the puts are of distinct keys, so their order does not matter)."""
        writes = [(index, self._memory(op)) for index, op in puts if op.value is not None]
        return [
            (
                [index for index, _ in writes[start : start + _WRITE_CHUNK]],
                [memory for _, memory in writes[start : start + _WRITE_CHUNK]],
            )
            for start in range(0, len(writes), _WRITE_CHUNK)
        ]

    def _memory(self, op: PutOp) -> dict[str, Any]:
        """The memtrace write of a put with a value."""
        value = op.value
        if not isinstance(value, Mapping):
            raise ValueError(f"a store value must be a JSON object (a dict), got {type(value)}")
        value = dict(value)
        memory: dict[str, Any] = {
            "agent_id": self.agent_id,
            "content": self._content(value, op.index),
            "memory_type": self.memory_type,
            "event_type": self.event_type,
            "metadata": value,
            "namespace": list(op.namespace),
            "key": op.key,
        }
        if self.session_id is not None:
            memory["session_id"] = self.session_id
        if op.ttl is not None:  # BaseStore.put already applied ttl_config's default_ttl
            memory["ttl"] = float(op.ttl) * 60  # LangGraph's unit is minutes, memtrace's seconds
        return memory

    def _content(self, value: dict[str, Any], index: Any) -> str:
        """The memory text of a value (see the module docstring)."""
        for name in self.content_fields:
            text = value.get(name)
            if _usable(text):
                return str(text)
        if isinstance(index, list) and index:
            parts = [_field_text(value, path) for path in index]
            joined = "\n".join(p for p in parts if p)
            if _usable(joined):
                return joined
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


#: Fields of a read whose refusal means "nothing can be stored there": such a read finds
#: nothing, as in LangGraph's stores (a namespace or key longer than memtrace accepts).
_WHERE_FIELDS = frozenset({"namespace", "namespace_prefix", "key", "prefix", "suffix"})


def _read(op: Op) -> Program:
    """The engine call of one read op and its result (one body for the sync and the async
    path). A read of something that could never have been stored finds nothing, as in
    LangGraph's stores; any other refusal (a bad filter, a limit) is raised."""
    nothing: Result = None if isinstance(op, GetOp) else []
    try:
        if isinstance(op, GetOp):
            try:
                memory = yield Call("get_memory_by_key", (op.namespace, op.key))
            except NotFoundError:
                return None
            return _item(memory)
        if isinstance(op, SearchOp):
            if op.limit == 0:
                return nothing
            found = yield Call("search_memories", (_search_fields(op),))
            return _search_items(found.results)
        assert isinstance(op, ListNamespacesOp)
        if op.limit == 0:
            return nothing
        listed = yield Call("list_namespaces", (), _namespace_fields(op))
        return _namespaces(listed.namespaces)
    except ValidationError as exc:
        if exc.field in _WHERE_FIELDS:
            return nothing
        raise


class _Plan:
    """A batch split as LangGraph's stores run it: reads in order, then the puts, one per key
    (the last wins). Namespaces are checked first (LangGraph's own check, which ops passed to
    ``batch`` directly skip)."""

    def __init__(self, ops: Iterable[Op]) -> None:
        self.reads: list[tuple[int, Op]] = []
        puts: dict[tuple[tuple[str, ...], str], tuple[int, PutOp]] = {}
        size = 0
        for index, op in enumerate(ops):
            size += 1
            if not isinstance(op, (GetOp, SearchOp, ListNamespacesOp, PutOp)):
                raise ValueError(f"Unknown operation type: {type(op)}")
            validate_op_namespace(op)
            if isinstance(op, PutOp):
                puts.pop((tuple(op.namespace), op.key), None)  # the last put of a key wins
                puts[(tuple(op.namespace), op.key)] = (index, op)
            else:
                self.reads.append((index, op))
        self.size = size
        self.puts = list(puts.values())


@contextmanager
def _at_op(indices: Sequence[int]) -> Iterator[None]:
    """Name the failing op of a batch in a memtrace ValidationError: ``indices[i]`` is the
    batch position of the ``i``-th memory of the engine call (its ``index``)."""
    try:
        yield
    except ValidationError as exc:
        if exc.index is not None and 0 <= exc.index < len(indices):
            position = indices[exc.index]
        elif len(indices) == 1:
            position = indices[0]
        else:
            raise
        message = exc.message.removeprefix(f"memories[{exc.index}]: ")
        error = ValidationError(f"op {position} of the batch: {message}", field=exc.field)
        error.index = position
        raise error from exc


def _usable(text: Any) -> bool:
    """A string that can be a memory's text as it is (a non-blank character, no NUL)."""
    return isinstance(text, str) and "\x00" not in text and bool(text.strip())


def _field_text(value: Mapping[str, Any], path: str) -> str:
    """The text of one ``index`` field path (``a.b``): a string as it is, else its JSON."""
    current: Any = value
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if isinstance(current, str):
        return current
    return json.dumps(current, ensure_ascii=False, separators=(",", ":"), default=str)


#: Operators of memtrace's metadata filter that LangGraph's store filter does not have
#: (``InMemoryStore`` refuses them): refused here too, so a graph behaves the same on both.
_NOT_LANGGRAPH_OPERATORS = frozenset({"$in", "$nin"})


def _check_langgraph_operators(flt: Mapping[str, Any]) -> None:
    """Refuse ``$in`` / ``$nin`` below the top level (top-level keys are field names)."""
    stack = [v for v in flt.values() if isinstance(v, Mapping)]
    while stack:
        node = stack.pop()
        for key, value in node.items():
            if key in _NOT_LANGGRAPH_OPERATORS:
                raise ValidationError(
                    f"invalid metadata: unsupported operator {key!r} (a LangGraph store filter "
                    "takes $eq $ne $gt $gte $lt $lte)",
                    field="metadata",
                )
            if isinstance(value, Mapping):
                stack.append(value)


def _search_fields(op: SearchOp) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "namespace_prefix": list(op.namespace_prefix),
        "limit": op.limit,
        "offset": op.offset,
    }
    if op.filter:
        _check_langgraph_operators(op.filter)
        fields["metadata"] = op.filter
    if op.query is not None and op.query.strip():
        fields["query"] = op.query
    return fields


def _namespace_fields(op: ListNamespacesOp) -> dict[str, Any]:
    options: dict[str, Any] = {"max_depth": op.max_depth, "limit": op.limit, "offset": op.offset}
    for condition in op.match_conditions or ():
        kind = condition.match_type
        if kind not in ("prefix", "suffix"):
            raise ValueError(f"Unsupported match type: {kind}")
        if kind in options:
            raise ValueError(f"at most one {kind} condition per list_namespaces call")
        options[kind] = list(condition.path)
    return options


def _times(memory: Memory) -> tuple[datetime, datetime]:
    created = memory.key_created_at or memory.time
    return created, memory.time


def _value(memory: Memory) -> dict[str, Any]:
    """A memory's value: its metadata (what a put stored), or for a memory written another way
    without metadata, its text as ``{"content": …}``. The engine keeps no empty metadata
    object, so an empty value is read back from its text (``{}``, what a put writes for it)."""
    if memory.metadata is not None:
        return dict(memory.metadata)
    if memory.key is not None and memory.content == _EMPTY:
        return {}
    return {"content": memory.content}


def _item(memory: Memory) -> Item:
    created, updated = _times(memory)
    return Item(
        value=_value(memory),
        key=memory.key or memory.id,
        namespace=tuple(memory.namespace or ()),
        created_at=created,
        updated_at=updated,
    )


def _search_items(memories: Sequence[Memory]) -> list[SearchItem]:
    items: list[SearchItem] = []
    for memory in memories:
        created, updated = _times(memory)
        items.append(
            SearchItem(
                namespace=tuple(memory.namespace or ()),
                key=memory.key or memory.id,
                value=_value(memory),
                created_at=created,
                updated_at=updated,
                score=memory.score,
            )
        )
    return items


def _namespaces(namespaces: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    return [tuple(ns) for ns in namespaces]
