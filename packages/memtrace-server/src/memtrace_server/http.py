"""HTTP helpers shared by the route handlers: JSON bodies in, JSON (pydantic) out, query strings.

Every problem with the input raises :class:`memtrace_core.ValidationError`, which the app's
error handler turns into a 400 ``{"error": …, "field": …}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from sanic.request import Request
from sanic.response import HTTPResponse

from memtrace_core import ValidationError
from memtrace_core.validation import as_int

log = logging.getLogger("memtrace.server")

JSON = "application/json"
NDJSON = "application/x-ndjson"


def _no_constants(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def loads(body: bytes) -> Any:
    """Parse a JSON document; NaN/Infinity are rejected (they are not JSON).

    Same result as ``json.loads(body, parse_constant=…)`` (UTF-8/16/32 detection included),
    without building a new decoder per call."""
    return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))


# A lone surrogate can only come from a raw ED A0..BF xx sequence (decoded with surrogatepass)
# or from a \uD800-\uDFFF escape; bodies with neither skip the walk below.
_MAYBE_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]|\\u[dD][89a-fA-F]")


def escape_text(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udxxx`` (safe to print, log and encode)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _find_surrogate(value: Any) -> list[str | int] | None:
    """The path to the first string (key or value) in ``value`` holding a lone surrogate.
    Iterative, so that deep documents cannot exhaust the stack; linear in the document."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return path
        elif isinstance(item, dict):
            for key, sub in item.items():
                if _has_surrogate(key):
                    return [*path, key]
                stack.append((sub, [*path, key]))
        elif isinstance(item, list):
            stack.extend((sub, [*path, i]) for i, sub in enumerate(item))
    return None


def _reject_surrogates(data: Any) -> None:
    """Lone surrogates are not Unicode text: no store can keep them and no client can read
    them back, so they are a 400 naming where they are (batch index included)."""
    path = _find_surrogate(data)
    if path is None:
        return
    index: int | None = None
    if len(path) >= 2 and path[0] == "memories" and isinstance(path[1], int):
        index, path = path[1], path[2:]
    dotted = ""
    for part in path:
        dotted += (
            f"[{part}]" if isinstance(part, int) else (("." if dotted else "") + escape_text(part))
        )
    field = dotted or "body"
    raise ValidationError(
        f"invalid {field}: contains a lone surrogate (not valid Unicode text)",
        field=field.split("[", 1)[0].split(".", 1)[0] or "body",
        index=index,
    )


def json_body(request: Request, *, empty: Any = None) -> Any:
    """The parsed JSON body. An empty body gives ``empty`` when it is not None, else a 400.
    Strings with lone surrogates (escaped or raw) are a 400 too."""
    body = request.body
    if not body or body.isspace():
        if empty is not None:
            return empty
        raise ValidationError("invalid request body: empty body", field="body")
    try:
        data = loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(
            f"invalid request body: {escape_text(str(exc))}", field="body"
        ) from None
    if _MAYBE_SURROGATE.search(body) or b"\x00" in body[:4]:
        _reject_surrogates(data)  # (UTF-16/32 bodies, detected by their NULs, always walk)
    return data


def json_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The JSON body, which must be an object (``{}`` when empty and ``allow_empty``)."""
    data = json_body(request, empty={} if allow_empty else None)
    if not isinstance(data, dict):
        raise ValidationError("invalid request body: expected a JSON object", field="body")
    return data


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON. Never fails on text: a lone surrogate (from a message that quotes
    bad input, or an old row) is written as its ``\\udxxx`` escape, which is valid JSON."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def _model_bytes(model: BaseModel) -> bytes:
    try:
        return model.__pydantic_serializer__.to_json(model, exclude_none=True)
    except PydanticSerializationError:
        # text pydantic cannot encode (a lone surrogate stored by an older version): escaped
        log.warning("response of %s holds text that is not valid Unicode", type(model).__name__)
        return dumps(model.model_dump(mode="json", exclude_none=True))


def model_response(model: BaseModel, status: int = 200) -> HTTPResponse:
    """A pydantic model as JSON; ``None`` fields are omitted (as the original's ``omitempty``)."""
    return HTTPResponse(_model_bytes(model), status=status, content_type=JSON)


#: Lists longer than this are encoded in a worker thread, one item at a time (see below).
_OFF_LOOP_ITEMS = 200
_LIST_FIELDS = ("memories", "results")


def _encode_items(model: BaseModel, name: str, items: list[Any]) -> bytes:
    """``model`` as JSON, its list ``name`` encoded item by item: each item is a short,
    GIL-holding call, so between items the event loop thread gets to run."""
    parts = [_model_bytes(item) for item in items]
    shell = _model_bytes(model.model_copy(update={name: []}))
    marker = f'"{name}":[]'.encode()
    head, found, tail = shell.partition(marker)
    if not found:  # pragma: no cover - the field is always serialised
        return _model_bytes(model)
    return b"".join((head, f'"{name}":['.encode(), b",".join(parts), b"]", tail))


async def list_response(model: BaseModel, status: int = 200) -> HTTPResponse:
    """:func:`model_response` for results that can be long (memories, search results): a list
    of more than a few hundred items (up to 1,000 memories of 64 KiB each) is encoded in a
    worker thread, item by item, so that one big answer does not hold the event loop."""
    for name in _LIST_FIELDS:
        items = getattr(model, name, None)
        if isinstance(items, list) and len(items) > _OFF_LOOP_ITEMS:
            body = await asyncio.to_thread(_encode_items, model, name, items)
            return HTTPResponse(body, status=status, content_type=JSON)
    return model_response(model, status)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    return HTTPResponse(dumps(data), status=status, content_type=JSON, headers=headers)


def no_content() -> HTTPResponse:
    return HTTPResponse(status=204)


def query(request: Request) -> dict[str, str]:
    """Query parameters as a flat dict (first value wins; repeated ``tags`` are joined)."""
    args = request.args
    if not args:
        return {}
    out = {key: values[0] for key, values in args.items()}
    if "tags" in args:
        values = args.getlist("tags")
        if len(values) > 1:
            out["tags"] = ",".join(values)
    return out


def int_param(params: dict[str, str], name: str) -> int | None:
    """An optional integer query parameter (400 on anything else)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    return as_int(raw, name)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def bool_param(params: dict[str, str], name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValidationError(f"invalid {name}: expected true or false", field=name)
