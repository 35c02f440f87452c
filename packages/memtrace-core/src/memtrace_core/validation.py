"""Input validation and the rules derived from it (dedup keys, limits).

Every problem raises :class:`~memtrace_core.errors.ValidationError` with the field and, for
batch items, the index. Messages for the original's checks keep the original's wording
(``agent_id is required``, ``invalid memory_type: foo`` …) so existing clients see the same text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .errors import ValidationError, show_value
from .ids import is_memory_id
from .models import (
    ID_FORMAT_MSG,
    ID_PATTERN,
    MAX_FILTER_IDS,
    MEMORY_TYPES,
    TAG_FORMAT_MSG,
    TAG_PATTERN,
    TYPE_FORMAT_MSG,
    TYPE_PATTERN,
    MemoryCreate,
)
from .stores.base import MetaCondition
from .timeutil import MAX_US, MIN_US, format_us, parse_relative, to_us

M = TypeVar("M", bound=BaseModel)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The largest offset a store can take (SQLite and PostgreSQL use signed 64-bit integers).
MAX_OFFSET = 2**63 - 1


#: The deepest JSON a read path serialises back (the SQLite store's read check uses the same
#: value; pydantic gives up near 255 levels): ``max_json_depth`` may not exceed it.
JSON_DEPTH_CEILING = 200
#: Upper bounds of the configurable limits where a larger value would break a read or a query
#: (each tag of a filter is one term of an AND chain; SQLite's expression depth is 1000).
LIMIT_CEILINGS: dict[str, int] = {
    "max_json_depth": JSON_DEPTH_CEILING,
    "max_payload_depth": JSON_DEPTH_CEILING,
    # the largest body a server takes is 4 MiB by default; the ceiling bounds one memory
    "max_payload_bytes": 64 * 1024 * 1024,
    "max_tags": 200,
    "max_filter_values": 1000,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits the original lacks. All are configurable (``[limits]`` in memtrace.toml)."""

    max_content_bytes: int = 64 * 1024
    max_metadata_bytes: int = 16 * 1024
    max_tags: int = 32
    max_batch: int = 1000
    max_dedup_key_chars: int = 256
    max_parent_id_chars: int = 128
    max_query_chars: int = 2000
    #: Deepest nesting of a JSON value (metadata, agent config, session metadata); the top-level
    #: object is depth 1. Deeper values are refused before anything is written: serialisers give
    #: up somewhere past 250 levels, so an unbounded depth could be stored and never read back.
    max_json_depth: int = 32
    #: Most values in one list filter (``event_types``, ``memory_types``), counted before
    #: de-duplication; a tag filter is bounded by ``max_tags``.
    max_filter_values: int = 64
    #: How far in the future a new write's event ``time`` may be (clock skew between hosts);
    #: imports keep whatever time the export had.
    max_future_skew_seconds: int = 300
    #: Largest memory ``payload`` (any JSON value, kept verbatim) as compact UTF-8 JSON.
    max_payload_bytes: int = 3 * 1024 * 1024
    #: Deepest nesting of a ``payload`` (a top-level array or object is depth 1).
    max_payload_depth: int = 128

    def __post_init__(self) -> None:
        for name, ceiling in LIMIT_CEILINGS.items():
            if getattr(self, name) > ceiling:
                raise ValueError(
                    f"limits.{name} must be at most {ceiling} (above it an accepted value could "
                    "not be read back or queried)"
                )


#: ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, the compact JSON text
#: memtrace stores and hashes: one encoder made once (``json.dumps`` with arguments builds a
#: new ``JSONEncoder`` per call, a third of the cost of encoding a small value). The same
#: text and the same errors; an encoder holds no state between calls (thread-safe).
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: :data:`compact_json` refusing NaN and infinity (``allow_nan=False``), as strict JSON.
_strict_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def dedup_key(agent_id: str, event_type: str, content: str) -> str:
    """The original's dedup key: first 32 hex chars of SHA-256 over
    ``agent_id|event_type|first 200 bytes of content`` (bytes, so a multi-byte character may be
    cut — exactly as the original, so keys match across implementations)."""
    head = agent_id.encode() + b"|" + event_type.encode() + b"|"
    raw = head + content.encode()[:200]
    return hashlib.sha256(raw).hexdigest()[:32]


def keyed_dedup_key(
    agent_id: str, event_type: str, content: str, namespace: Sequence[str] | None, key: str
) -> str:
    """The default dedup key of a write with a ``key``: the content's, scoped to its namespace
    and key (two keys may hold the same value; re-writing a key supersedes, see the store)."""
    scope = compact_json([list(namespace or ()), key])
    raw = scope.encode() + b"|" + dedup_key(agent_id, event_type, content).encode()
    return "k" + hashlib.sha256(raw).hexdigest()[:31]


def namespaced_dedup_key(
    agent_id: str, event_type: str, content: str, namespace: Sequence[str]
) -> str:
    """The default dedup key of a write with a ``namespace`` and no ``key``: agent, event type
    and the whole content (not its first 200 bytes: the original had no namespaces, so there is
    no key to match), scoped to the namespace — the same fact in two namespaces is two
    memories."""
    raw = compact_json([list(namespace), agent_id, event_type, content])
    return "n" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:31]


def check_id(
    value: Any, field: str, *, index: int | None = None, required: bool = False
) -> str | None:
    """Validate an ``agent_id`` / ``session_id`` style identifier."""
    if value is None or value == "":
        if required:
            raise ValidationError(f"{field} is required", field=field, index=index)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"invalid {field}: must be a string", field=field, index=index)
    if not ID_PATTERN.fullmatch(value):
        raise ValidationError(f"invalid {field}: {ID_FORMAT_MSG}", field=field, index=index)
    return value


def check_type_name(value: Any, field: str, *, index: int | None = None) -> str:
    if not isinstance(value, str) or not TYPE_PATTERN.fullmatch(value):
        raise ValidationError(
            f"invalid {field}: {TYPE_FORMAT_MSG}"
            if isinstance(value, str)
            else f"invalid {field}: must be a string",
            field=field,
            index=index,
        )
    return value


def check_values(
    values: Iterable[str] | None,
    field: str,
    check: Callable[..., str],
    limits: Limits,
) -> tuple[str, ...] | None:
    """A list filter (memory or event types): counted before anything else, each value checked,
    de-duplicated in order."""
    if not values:
        return None
    items = list(values)
    if len(items) > limits.max_filter_values:
        raise ValidationError(
            f"too many {field}: {len(items)} (max {limits.max_filter_values})", field=field
        )
    return tuple(dict.fromkeys(check(value, field) for value in items))


def check_memory_type(value: Any, field: str = "memory_type", *, index: int | None = None) -> str:
    if value not in MEMORY_TYPES:
        raise ValidationError(
            f"invalid {field}: {_plain(value)} (expected one of {', '.join(MEMORY_TYPES)})",
            field=field,
            index=index,
        )
    return str(value)


def check_tags(
    values: Any, *, field: str = "tags", index: int | None = None, limits: Limits | None = None
) -> list[str] | None:
    """A list of tags, de-duplicated in order (``values`` itself when it has no duplicate;
    ``None`` when empty). The count is checked before anything else, so the cost of a request
    is bounded by the limit, not by the size of the list sent."""
    if values is None:
        return None
    if not isinstance(values, list):
        raise ValidationError(
            f"invalid {field}: must be a list of strings", field=field, index=index
        )
    if limits is not None and len(values) > limits.max_tags:
        raise ValidationError(
            f"too many tags: {len(values)} (max {limits.max_tags})", field=field, index=index
        )
    for tag in values:
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
            raise ValidationError(
                f"invalid tag {_quoted(tag)}: {TAG_FORMAT_MSG}", field=field, index=index
            )
    if not values:
        return None
    if len(set(values)) == len(values):
        return values  # validate_memory then keeps its model: a copy costs ~7 us a memory
    return list(dict.fromkeys(values))


def _quoted(value: Any) -> str:
    """``'x y'`` as the original quoted a bad tag, or :func:`~memtrace_core.errors.show_value`'s escaped form."""
    if isinstance(value, str) and len(value) <= 80 and value.isprintable():
        return f"'{value}'"
    return show_value(value)


def _plain(value: Any) -> str:
    """``value`` as the original printed it (``invalid memory_type: foo``) when it is a short
    printable string, else as :func:`~memtrace_core.errors.show_value` does."""
    if isinstance(value, str) and len(value) <= 80 and value.isprintable():
        return value
    return show_value(value)


def check_text(
    value: Any,
    field: str,
    *,
    index: int | None = None,
    max_chars: int | None = None,
) -> str:
    """A free-text string that every store and serialiser can hold: valid Unicode (no lone
    surrogate, which UTF-8 cannot encode), no NUL (C-string APIs and some stores truncate at
    it), at most ``max_chars`` characters."""
    if not isinstance(value, str):
        raise ValidationError(f"invalid {field}: must be a string", field=field, index=index)
    if max_chars is not None and len(value) > max_chars:
        raise ValidationError(
            f"{field} too long: {len(value)} characters (max {max_chars})",
            field=field,
            index=index,
        )
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValidationError(
                f"invalid {field}: not valid Unicode (lone surrogate)", field=field, index=index
            ) from None
    if "\x00" in value:
        raise ValidationError(
            f"invalid {field}: NUL characters are not allowed", field=field, index=index
        )
    return value


#: A NUL character in JSON text: ``\u0000`` not preceded by an escaping backslash (group 1:
#: the escaped backslashes before it). Stores that keep NUL another way rewrite it with this.
JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def check_json(
    value: Any,
    field: str,
    limits: Limits,
    *,
    index: int | None = None,
    max_bytes: int | None = None,
    max_depth: int | None = None,
    allow_nul: bool = True,
) -> int:
    """A JSON value to store (metadata, agent config, session metadata): serialisable as
    strict JSON (no NaN/Infinity, valid Unicode), at most ``max_bytes`` (default
    ``limits.max_metadata_bytes``) as compact UTF-8 JSON, nested at most
    ``max_depth`` (default ``limits.max_json_depth``) levels, object keys strings; with
    ``allow_nul=False`` (a metadata filter) no NUL character in any string or key (no store
    can compare one). Returns the size in bytes.

    The size is measured first (by the C encoder, linear in the input), so the walk that checks
    depth and keys only ever sees a bounded value."""
    cap = limits.max_metadata_bytes if max_bytes is None else max_bytes
    max_depth = limits.max_json_depth if max_depth is None else max_depth
    try:
        text = _strict_json(value)
        size = len(text.encode())
    except UnicodeEncodeError:
        raise ValidationError(
            f"invalid {field}: not valid Unicode (lone surrogate)", field=field, index=index
        ) from None
    except RecursionError:
        raise ValidationError(
            f"invalid {field}: nested deeper than {max_depth} levels",
            field=field,
            index=index,
        ) from None
    except (TypeError, ValueError):
        raise ValidationError(
            f"invalid {field}: must be JSON-serialisable", field=field, index=index
        ) from None
    if size > cap:
        raise ValidationError(
            f"{field} too large: {size} bytes as JSON (max {cap})", field=field, index=index
        )
    if not allow_nul and "\\u0000" in text and JSON_NUL.search(text):
        # a filter: PostgreSQL cannot compare a NUL in JSON
        raise ValidationError(
            f"invalid {field}: NUL characters are not allowed", field=field, index=index
        )
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
            if any(not isinstance(key, str) for key in node):
                raise ValidationError(
                    f"invalid {field}: object keys must be strings", field=field, index=index
                )
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > max_depth:
            raise ValidationError(
                f"invalid {field}: nested deeper than {max_depth} levels",
                field=field,
                index=index,
            )
        stack.extend((child, depth + 1) for child in children)
    return size


def check_time_us(value: int, field: str, *, index: int | None = None) -> int:
    """A time (microseconds since the epoch) inside the range every read path can represent:
    0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z, in UTC (so ``9999-12-31T23:59:59-14:00``,
    which is in the year 10000 in UTC, is refused)."""
    if not MIN_US <= value <= MAX_US:
        raise ValidationError(
            f"invalid {field}: must be between {format_us(MIN_US)} and {format_us(MAX_US)} in UTC",
            field=field,
            index=index,
        )
    return value


def check_batch(memories: Any) -> None:
    """A batch to write must be a list (a sequence that is not a string or an object)."""
    if isinstance(memories, (str, bytes, Mapping)) or not isinstance(memories, Sequence):
        raise ValidationError("memories must be a list", field="memories")


_REQUIRED_MESSAGES = {"agent_id": "agent_id is required", "content": "content is required"}


def unknown_field(name: str, model: type[BaseModel], index: int | None = None) -> ValidationError:
    """The error for a field ``model`` does not have, naming the fields it accepts."""
    accepted = ", ".join(model.model_fields)
    return ValidationError(
        f"unknown field {_quoted(name)} (accepted: {accepted})", field=name, index=index
    )


def _from_pydantic(
    exc: PydanticValidationError, index: int | None, model: type[BaseModel] = MemoryCreate
) -> ValidationError:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    top = str(err["loc"][0]) if err["loc"] else "body"
    if err["type"] == "extra_forbidden":
        return unknown_field(top, model, index)
    if err["type"] == "missing" and top in _REQUIRED_MESSAGES:
        return ValidationError(_REQUIRED_MESSAGES[top], field=top, index=index)
    if top == "memory_type" and err["type"] == "literal_error":
        return ValidationError(
            f"invalid memory_type: {_plain(err.get('input'))} (expected one of {', '.join(MEMORY_TYPES)})",
            field=top,
            index=index,
        )
    msg = str(err["msg"]).removeprefix("Value error, ")
    return ValidationError(f"invalid {loc}: {msg}", field=top, index=index)


def validate_memory(
    data: MemoryCreate | Mapping[str, Any],
    limits: Limits,
    *,
    index: int | None = None,
    now: int | None = None,
) -> MemoryCreate:
    """Validate one memory to write and return it normalised (defaults filled, tags de-duplicated).

    Accepts a :class:`MemoryCreate` or a mapping (e.g. parsed JSON). With ``now`` (new writes,
    not imports) an event time more than ``limits.max_future_skew_seconds`` ahead is refused."""
    data_tags: list[str] | None = None  # a list the caller owns (a model validated here owns its)
    if isinstance(data, MemoryCreate):
        mem = data
        data_tags = data.tags
    elif isinstance(data, Mapping):
        try:
            mem = MemoryCreate.model_validate(data)
        except PydanticValidationError as exc:
            raise _from_pydantic(exc, index) from None
    else:
        raise ValidationError("each memory must be a JSON object", field="body", index=index)
    check_id(mem.agent_id, "agent_id", index=index, required=True)
    if not mem.content or mem.content.isspace():
        raise ValidationError("content is required", field="content", index=index)
    if not mem.content.isascii():
        try:
            mem.content.encode()
        except UnicodeEncodeError:
            raise ValidationError(
                "invalid content: not valid Unicode (lone surrogate)", field="content", index=index
            ) from None
    if (
        len(mem.content) * 4 > limits.max_content_bytes
        and len(mem.content.encode()) > limits.max_content_bytes
    ):
        raise ValidationError(
            f"content too large: {len(mem.content.encode())} bytes (max {limits.max_content_bytes})",
            field="content",
            index=index,
        )
    if "\x00" in mem.content:
        raise ValidationError(
            "invalid content: NUL characters are not allowed", field="content", index=index
        )
    check_memory_type(mem.memory_type, index=index)
    check_type_name(mem.event_type, "event_type", index=index)
    session_id = check_id(mem.session_id, "session_id", index=index)
    tags = check_tags(mem.tags, index=index, limits=limits)
    if tags is not None and tags is data_tags:
        tags = list(tags)  # the caller's model keeps its list, the memory written gets its own
    metadata = mem.metadata or None
    if metadata is not None:
        check_json(metadata, "metadata", limits, index=index)
    if mem.payload is not None:
        check_json(
            mem.payload,
            "payload",
            limits,
            index=index,
            max_bytes=limits.max_payload_bytes,
            max_depth=limits.max_payload_depth,
        )
    if mem.dedup is not None and not isinstance(mem.dedup, bool):
        raise ValidationError("invalid dedup: must be a boolean", field="dedup", index=index)
    if mem.time is not None:
        event_us = check_time_us(to_us(mem.time), "time", index=index)
        if now is not None and event_us > now + limits.max_future_skew_seconds * 1_000_000:
            raise ValidationError(
                f"invalid time: more than {limits.max_future_skew_seconds} s in the future "
                "(it would sort first in every newest-first list; [limits] "
                "max_future_skew_seconds)",
                field="time",
                index=index,
            )
    if mem.importance is not None and not (
        0.0 <= mem.importance <= 1.0 and math.isfinite(mem.importance)
    ):
        raise ValidationError(
            "invalid importance: must be between 0 and 1", field="importance", index=index
        )
    key = mem.dedup_key or None
    if key is not None and (len(key) > limits.max_dedup_key_chars or not key.isprintable()):
        raise ValidationError(
            f"invalid dedup_key: printable, max {limits.max_dedup_key_chars} chars",
            field="dedup_key",
            index=index,
        )
    if key is not None and mem.dedup is False:
        raise ValidationError(
            "invalid dedup_key: not with dedup=false (a memory that is never deduplicated has "
            "no dedup key)",
            field="dedup_key",
            index=index,
        )
    if mem.supersedes is not None and not (
        isinstance(mem.supersedes, str) and is_memory_id(mem.supersedes)
    ):
        raise ValidationError(
            f"invalid supersedes: {_quoted(mem.supersedes)} (expected a memory id, mem_ + 26 "
            "characters)",
            field="supersedes",
            index=index,
        )
    if mem.expires_at is not None:
        check_time_us(to_us(mem.expires_at), "expires_at", index=index)
    if mem.namespace is not None:
        check_namespace(mem.namespace, "namespace", index=index)
    if mem.key is not None:
        check_key(mem.key, index=index)
    parent = mem.parent_id or None
    if parent is not None and (
        len(parent) > limits.max_parent_id_chars or not parent.isprintable()
    ):
        raise ValidationError(
            f"invalid parent_id: printable, max {limits.max_parent_id_chars} chars",
            field="parent_id",
            index=index,
        )
    if (
        session_id is mem.session_id
        and tags is mem.tags
        and metadata is mem.metadata
        and key is mem.dedup_key
        and parent is mem.parent_id
    ):
        return mem
    return mem.model_copy(
        update={
            "session_id": session_id,
            "tags": tags,
            "metadata": metadata,
            "dedup_key": key,
            "parent_id": parent,
        }
    )


#: Most parts of a namespace, longest part, longest key.
MAX_NAMESPACE_PARTS = 16
MAX_NAMESPACE_PART_CHARS = 256
MAX_KEY_CHARS = 512


def check_namespace(
    value: Any, field: str, *, index: int | None = None, prefix: bool = False
) -> tuple[str, ...]:
    """A namespace: 1..16 non-empty strings of at most 256 characters (valid Unicode, no
    NUL). Returned as a tuple. A ``prefix`` may also be empty (every namespaced memory)."""
    if not isinstance(value, (list, tuple)) or (not value and not prefix):
        raise ValidationError(
            f"invalid {field}: expected a non-empty list of strings", field=field, index=index
        )
    if len(value) > MAX_NAMESPACE_PARTS:
        raise ValidationError(
            f"invalid {field}: {len(value)} parts (max {MAX_NAMESPACE_PARTS})",
            field=field,
            index=index,
        )
    for part in value:
        if not isinstance(part, str) or not part:
            raise ValidationError(
                f"invalid {field}: every part must be a non-empty string, got {_quoted(part)}",
                field=field,
                index=index,
            )
        check_text(part, field, max_chars=MAX_NAMESPACE_PART_CHARS, index=index)
    return tuple(value)


def check_key(value: Any, *, index: int | None = None, field: str = "key") -> str:
    """A memory key: 1..512 characters of valid Unicode, no NUL."""
    if not isinstance(value, str) or not value:
        raise ValidationError(
            f"invalid {field}: expected a non-empty string", field=field, index=index
        )
    check_text(value, field, max_chars=MAX_KEY_CHARS, index=index)
    return value


def check_one_of(values: Any, field: str, limits: Limits) -> tuple[str, ...]:
    """A non-empty "one of these" filter, de-duplicated in order: ``tags_any`` (tags, at most
    ``limits.max_tags``), ``ids`` (memory ids) or ``keys`` (as ``key``), at most
    :data:`MAX_FILTER_IDS` each; counted before anything else is checked."""
    if not isinstance(values, (list, tuple)):
        raise ValidationError(f"invalid {field}: must be a list of strings", field=field)
    if not values:
        raise _empty_list(field)
    if field == "tags_any":
        return tuple(check_tags(list(values), field=field, limits=limits) or ())
    if len(values) > MAX_FILTER_IDS:
        raise ValidationError(
            f"too many {field}: {len(values)} (max {MAX_FILTER_IDS})", field=field
        )
    for value in values:
        if field == "ids":
            if not isinstance(value, str) or not is_memory_id(value):
                raise ValidationError(
                    f"invalid {field}: {show_value(value)} is not a memory id (mem_…)",
                    field=field,
                )
        else:
            check_key(value, field=field)
    return tuple(dict.fromkeys(values))


def _empty_list(field: str) -> ValidationError:
    return ValidationError(
        f"invalid {field}: an empty list matches nothing; give at least one value or leave "
        f"{field} out",
        field=field,
    )


def check_query_lists(model: Any) -> None:
    """A query string cannot carry an empty list (``tags_any=`` is dropped as blank): the HTTP
    client refuses one before sending, as the engine does (:func:`check_one_of`)."""
    for name in ("tags_any", "ids"):
        if getattr(model, name, None) == []:
            raise _empty_list(name)


def check_export_criteria(crit: Any) -> None:
    """An export's filter travels as a query string (``GET /api/v1/export``), which cannot
    carry ``keys`` (a key may hold a comma) or a ``metadata`` filter: refused on every
    transport alike."""
    for name in ("keys", "metadata"):
        if getattr(crit, name, None) is not None:
            raise ValidationError(
                f"invalid {name}: an export does not filter by {name} (export a namespace, "
                "or by tags, ids, agent, session, types or time)",
                field=name,
            )
    if getattr(crit, "all_versions", False):
        raise ValidationError(
            "invalid all_versions: all_versions applies to deletes (an export holds the "
            "memories its filter matches, superseded ones included)",
            field="all_versions",
        )


def check_pop_criteria(crit: Any) -> None:
    """A pop removes one memory, the newest current one: ``all_versions`` (delete whole
    supersession chains) applies to deletes only, and is refused on every transport alike."""
    if getattr(crit, "all_versions", False):
        raise ValidationError(
            "invalid all_versions: all_versions applies to deletes (a pop removes one memory)",
            field="all_versions",
        )


#: The operators of a metadata filter and the :class:`MetaCondition` op of each.
_FILTER_OPS = {
    "$eq": "eq",
    "$ne": "ne",
    "$gt": "gt",
    "$gte": "gte",
    "$lt": "lt",
    "$lte": "lte",
    "$in": "in",
    "$nin": "nin",
}


def _weight(cond: MetaCondition) -> int:
    """What a condition counts toward ``limits.max_filter_values``: each value of an ``in``
    one, a ``not`` what it negates, any other condition 1."""
    if cond.op == "in":
        return len(cond.value)
    if cond.op == "not":
        return sum(_weight(c) for c in cond.value)
    return 1


def metadata_conditions(
    flt: Any, limits: Limits, *, field: str = "metadata"
) -> tuple[MetaCondition, ...] | None:
    """Resolve a metadata filter (LangGraph's store filter, as ``InMemoryStore`` reads it):
    ``{"k": v}`` — ``v`` equal (a nested object matches its keys recursively, a list element by
    element, numbers by value), or ``{"k": {"$op": v, …}}`` with ``$eq $ne $gt $gte $lt $lte``
    (the comparisons numeric), ``$in`` (a non-empty list of scalars: the value equals one of
    them, each as ``$eq`` compares; ``None`` matches null or absent) and ``$nin`` (none of
    them; an absent value holds unless ``None`` is listed). Each ``$in`` / ``$nin`` value
    counts toward ``limits.max_filter_values``. The top-level keys are always field names
    (``{"$ne": 1}`` is the field ``$ne``); below them any other ``$`` key is a ValidationError naming it. A filter key
    is non-empty, without quotes, backslashes or control characters."""
    if flt is None:
        return None
    if not isinstance(flt, Mapping):
        raise ValidationError(f"invalid {field}: expected an object", field=field)
    check_json(dict(flt), field, limits, allow_nul=False)
    out: list[MetaCondition] = []

    def walk(path: tuple[str | int, ...], value: Any) -> None:
        if isinstance(value, Mapping):
            ops = [k for k in value if isinstance(k, str) and k.startswith("$")]
            if ops:
                where = f"{field}.{_where(path)}"
                for op, operand in value.items():
                    if op not in _FILTER_OPS:
                        raise ValidationError(
                            f"invalid {where}: unsupported operator {_quoted(op)} "
                            f"(supported: {', '.join(_FILTER_OPS)})",
                            field=field,
                        )
                    out.extend(_operator(path, _FILTER_OPS[op], operand, where))
                return
            out.append(MetaCondition(path, "object"))
            for key, sub in value.items():
                walk((*path, _filter_key(key, field)), sub)
        else:
            out.extend(_equal(path, value, f"{field}.{_where(path)}"))

    for key, sub in flt.items():
        walk((_filter_key(key, field),), sub)
    weight = sum(_weight(c) for c in out)
    if weight > limits.max_filter_values:
        raise ValidationError(
            f"too many {field} conditions: {weight} (max {limits.max_filter_values}; each "
            "value of $in / $nin counts)",
            field=field,
        )
    return tuple(out) or None


def _where(path: Sequence[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _filter_key(key: Any, field: str) -> str:
    if (
        not isinstance(key, str)
        or not key
        or '"' in key
        or "\\" in key
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in key)
    ):
        raise ValidationError(
            f"invalid {field}: key {_quoted(key)} (filter keys must be non-empty, without "
            "quotes, backslashes or control characters)",
            field=field,
        )
    return key


def _equal(path: tuple[str | int, ...], value: Any, where: str) -> list[MetaCondition]:
    """The conditions of "the value at ``path`` equals ``value``": a scalar by value, a list
    as an array of that length whose elements match in order (each as a filter value: an
    object element matches its keys), an object by its keys."""
    if isinstance(value, (list, tuple)):
        conds = [MetaCondition(path, "length", len(value))]
        for index, element in enumerate(value):
            if isinstance(element, Mapping):
                conds.append(MetaCondition((*path, index), "object"))
                for key, sub in element.items():
                    conds.extend(_equal((*path, index, _filter_key(key, where)), sub, where))
            else:
                conds.extend(_equal((*path, index), element, where))
        return conds
    if isinstance(value, Mapping):
        conds = [MetaCondition(path, "object")]
        for key, sub in value.items():
            conds.extend(_equal((*path, _filter_key(key, where)), sub, where))
        return conds
    return [MetaCondition(path, "eq", _sql_scalar(value, where))]


def _sql_scalar(value: Any, where: str) -> Any:
    """A filter scalar as the store compares it: an integer beyond 64 bits as the float it is
    stored as (SQLite reads such JSON numbers as reals, and cannot bind the integer); a number
    that is not finite, or an integer beyond the float range, is refused."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        try:
            return float(value)
        except OverflowError:
            raise ValidationError(
                f"invalid {where}: the number is too large to compare", field=where.split(".")[0]
            ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"invalid {where}: needs a finite number", field=where.split(".")[0])
    return value


def _operator(
    path: tuple[str | int, ...], op: str, operand: Any, where: str
) -> list[MetaCondition]:
    if op in ("in", "nin"):
        name = f"${op}"
        if not isinstance(operand, (list, tuple)) or not operand:
            raise ValidationError(
                f"invalid {where}: {name} needs a non-empty list of scalars, got "
                f"{_quoted(operand)}",
                field=where.split(".")[0],
            )
        values: list[Any] = []
        for element in operand:
            if isinstance(element, (Mapping, list, tuple)):
                raise ValidationError(
                    f"invalid {where}: {name} takes scalars only (strings, numbers, booleans, "
                    "null), not objects or lists",
                    field=where.split(".")[0],
                )
            values.append(_sql_scalar(element, where))
        found = MetaCondition(path, "in", tuple(values))
        return [found] if op == "in" else [MetaCondition(path, "not", (found,))]
    if op in ("eq", "ne"):
        if isinstance(operand, Mapping):
            raise ValidationError(
                f"invalid {where}: ${op} compares scalars and lists; to match an object give it "
                "without an operator",
                field=where.split(".")[0],
            )
        if isinstance(operand, (list, tuple)):
            equal = _equal(path, operand, where)
            return equal if op == "eq" else [MetaCondition(path, "not", tuple(equal))]
        return [MetaCondition(path, op, _sql_scalar(operand, where))]
    if isinstance(operand, bool) or not isinstance(operand, (int, float)):
        try:
            number = float(operand)
        except (TypeError, ValueError, OverflowError):
            raise ValidationError(
                f"invalid {where}: ${op} needs a number, got {_quoted(operand)}",
                field=where.split(".")[0],
            ) from None
    else:
        try:
            number = float(operand)
        except OverflowError:
            number = math.inf
    if not math.isfinite(number):
        raise ValidationError(
            f"invalid {where}: ${op} needs a finite number", field=where.split(".")[0]
        )
    return [MetaCondition(path, op, number)]


#: The longest ``ttl`` (100 years, as the longest relative duration).
_MAX_TTL_SECONDS = 100 * 366 * 86400


def resolve_expiry(mem: MemoryCreate, now: int, *, index: int | None = None) -> int | None:
    """A new memory's ``expires_at`` (µs) from its ``ttl`` (seconds > 0, or a duration such
    as ``7d``) or its ``expires_at`` (which must be in the future); None when neither is given."""
    if mem.ttl is not None and mem.expires_at is not None:
        raise ValidationError("give ttl or expires_at, not both", field="ttl", index=index)
    if mem.ttl is not None:
        ttl = mem.ttl
        if isinstance(ttl, str):
            try:
                span = parse_relative(ttl)
            except ValidationError as exc:
                raise ValidationError(
                    f"invalid ttl: {exc.message}", field="ttl", index=index
                ) from None
            if span is None:
                raise ValidationError(
                    f"invalid ttl: {_quoted(ttl)} (seconds, or a duration such as 30m, 12h, 7d)",
                    field="ttl",
                    index=index,
                )
        elif isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl):
            raise ValidationError(
                "invalid ttl: must be a number of seconds", field="ttl", index=index
            )
        elif ttl <= 0:
            raise ValidationError("invalid ttl: must be positive", field="ttl", index=index)
        elif ttl > _MAX_TTL_SECONDS:
            raise ValidationError(
                "invalid ttl: too large (at most 100 years)", field="ttl", index=index
            )
        else:
            span = int(ttl * 1_000_000)
            if span <= 0:
                raise ValidationError(
                    "invalid ttl: must be at least 1 µs", field="ttl", index=index
                )
        return check_time_us(now + span, "ttl", index=index)
    if mem.expires_at is not None:
        at = to_us(mem.expires_at)
        if at <= now:
            raise ValidationError(
                f"invalid expires_at: {format_us(at)} is not in the future",
                field="expires_at",
                index=index,
            )
        return at
    return None


def check_limit(value: Any, *, default: int = DEFAULT_LIMIT, field: str = "limit") -> int:
    """A page size: default when absent, capped at 1000, positive."""
    if value is None or value == "":
        return default
    number = as_int(value, field)
    if number < 1:
        raise ValidationError(f"invalid {field}: must be between 1 and {MAX_LIMIT}", field=field)
    return min(number, MAX_LIMIT)


def check_offset(value: Any) -> int:
    if value is None or value == "":
        return 0
    number = as_int(value, "offset")
    if number < 0:
        raise ValidationError("invalid offset: must be 0 or more", field="offset")
    if number > MAX_OFFSET:
        raise ValidationError(f"invalid offset: must be at most {MAX_OFFSET}", field="offset")
    return number


def check_order(value: Any, default: str = "desc") -> str:
    if value is None or value == "":
        return default
    if value not in ("asc", "desc"):
        raise ValidationError(f"invalid order: {value!r} (expected asc or desc)", field="order")
    return str(value)


def as_int(value: Any, field: str) -> int:
    """An integer, or a string of ASCII digits (optionally ``-``); anything else is a
    ValidationError naming ``field``."""
    if isinstance(value, bool):
        raise ValidationError(f"invalid {field}: must be an integer", field=field)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        # isascii: str.isdigit() also accepts e.g. "²", which int() rejects
        if text.isascii() and text.lstrip("-").isdigit() and len(text) < 12:
            return int(text)
    raise ValidationError(f"invalid {field}: must be an integer", field=field)


# -- building requests (shared by every implementation of the method set) ----------------------


def coerce(
    model: type[M],
    value: M | Mapping[str, Any] | str | None,
    overrides: Mapping[str, Any],
    *,
    positional: str | None = None,
) -> M:
    """Build ``model`` from an instance, a mapping and/or keyword overrides (the calling
    convention of every method of :mod:`memtrace_core.api`), turning pydantic errors into a
    ValidationError naming the field. With ``positional``, a plain string is that field
    (``register_agent("bot1")`` is ``register_agent(name="bot1")``)."""
    if isinstance(value, model) and not overrides:
        return value
    data: dict[str, Any] = {}
    if isinstance(value, BaseModel):
        data.update(value.model_dump(exclude_unset=True))
    elif isinstance(value, Mapping):
        data.update(value)
    elif isinstance(value, str) and positional is not None:
        data[positional] = value
    elif value is not None:
        expected = f"a {positional} string, " if positional else ""
        raise ValidationError(
            f"expected {expected}{model.__name__} or a mapping", field=positional or "body"
        )
    data.update(overrides)
    unknown = set(overrides) - set(model.model_fields)
    if unknown:
        raise ValidationError(
            f"unknown argument(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            if len(err["loc"]) == 1:
                raise unknown_field(str(err["loc"][0]), model) from None
            raise ValidationError(f"unknown field {loc!r}", field=loc) from None
        raise ValidationError(f"invalid {loc}: {err['msg']}", field=loc) from None


def merge_item(
    memory: MemoryCreate | Mapping[str, Any] | None, fields: Mapping[str, Any]
) -> MemoryCreate | Mapping[str, Any]:
    """One memory to write from ``add_memory``'s arguments (a model or mapping, and/or keyword
    fields, which win)."""
    if memory is None:
        return dict(fields)
    if not fields:
        return memory
    base = (
        memory.model_dump(exclude_unset=True) if isinstance(memory, MemoryCreate) else dict(memory)
    )
    return {**base, **fields}


def check_ref(value: Any, field: str) -> str:
    """A reference to look something up by (an id or a name): a printable string of 1..256
    characters."""
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        raise ValidationError(f"invalid {field}: {show_value(value)}", field=field)
    return value
