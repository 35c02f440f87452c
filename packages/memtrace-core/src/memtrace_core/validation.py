"""Input validation and the rules derived from it (dedup keys, limits).

Every problem raises :class:`~memtrace_core.errors.ValidationError` with the field and, for
batch items, the index. Messages for the original's checks keep the original's wording
(``agent_id is required``, ``invalid memory_type: foo`` …) so existing clients see the same text.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from .errors import ValidationError
from .models import (
    ID_FORMAT_MSG,
    ID_PATTERN,
    MEMORY_TYPES,
    TAG_FORMAT_MSG,
    TAG_PATTERN,
    TYPE_FORMAT_MSG,
    TYPE_PATTERN,
    MemoryCreate,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The largest offset a store can take (SQLite and PostgreSQL use signed 64-bit integers).
MAX_OFFSET = 2**63 - 1


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


def dedup_key(agent_id: str, event_type: str, content: str) -> str:
    """The original's dedup key: first 32 hex chars of SHA-256 over
    ``agent_id|event_type|first 200 bytes of content`` (bytes, so a multi-byte character may be
    cut — exactly as the original, so keys match across implementations)."""
    head = agent_id.encode() + b"|" + event_type.encode() + b"|"
    raw = head + content.encode()[:200]
    return hashlib.sha256(raw).hexdigest()[:32]


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


def check_memory_type(value: Any, field: str = "memory_type", *, index: int | None = None) -> str:
    if value not in MEMORY_TYPES:
        raise ValidationError(
            f"invalid {field}: {value} (expected one of {', '.join(MEMORY_TYPES)})",
            field=field,
            index=index,
        )
    return str(value)


def check_tags(
    values: Any, *, field: str = "tags", index: int | None = None, limits: Limits | None = None
) -> list[str] | None:
    if values is None:
        return None
    if not isinstance(values, list):
        raise ValidationError(
            f"invalid {field}: must be a list of strings", field=field, index=index
        )
    out: list[str] = []
    for tag in values:
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
            raise ValidationError(
                f"invalid tag '{tag}': {TAG_FORMAT_MSG}", field=field, index=index
            )
        if tag not in out:
            out.append(tag)
    if limits is not None and len(out) > limits.max_tags:
        raise ValidationError(
            f"too many tags: {len(out)} (max {limits.max_tags})", field=field, index=index
        )
    return out or None


def check_batch(memories: Any) -> None:
    """A batch to write must be a list (a sequence that is not a string or an object)."""
    if isinstance(memories, (str, bytes, Mapping)) or not isinstance(memories, Sequence):
        raise ValidationError("memories must be a list", field="memories")


def _json_size(value: Any, field: str, index: int | None) -> int:
    try:
        return len(
            json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        )
    except (TypeError, ValueError):
        raise ValidationError(
            f"invalid {field}: must be JSON-serialisable", field=field, index=index
        ) from None


_REQUIRED_MESSAGES = {"agent_id": "agent_id is required", "content": "content is required"}


def _from_pydantic(exc: PydanticValidationError, index: int | None) -> ValidationError:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    top = str(err["loc"][0]) if err["loc"] else "body"
    if err["type"] == "missing" and top in _REQUIRED_MESSAGES:
        return ValidationError(_REQUIRED_MESSAGES[top], field=top, index=index)
    if top == "memory_type" and err["type"] == "literal_error":
        return ValidationError(
            f"invalid memory_type: {err.get('input')} (expected one of {', '.join(MEMORY_TYPES)})",
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
) -> MemoryCreate:
    """Validate one memory to write and return it normalised (defaults filled, tags de-duplicated).

    Accepts a :class:`MemoryCreate` or a mapping (e.g. parsed JSON)."""
    if isinstance(data, MemoryCreate):
        mem = data
    elif isinstance(data, Mapping):
        try:
            mem = MemoryCreate.model_validate(data)
        except PydanticValidationError as exc:
            raise _from_pydantic(exc, index) from None
    else:
        raise ValidationError("each memory must be a JSON object", field="body", index=index)
    check_id(mem.agent_id, "agent_id", index=index, required=True)
    if not mem.content:
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
    metadata = mem.metadata or None
    if metadata is not None and _json_size(metadata, "metadata", index) > limits.max_metadata_bytes:
        raise ValidationError(
            f"metadata too large (max {limits.max_metadata_bytes} bytes as JSON)",
            field="metadata",
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
