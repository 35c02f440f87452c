"""HTTP helpers shared by the route handlers: JSON bodies in, JSON (pydantic) out, query strings.

Every problem with the input raises :class:`memtrace_core.ValidationError`, which the app's
error handler turns into a 400 ``{"error": …, "field": …}``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sanic.request import Request
from sanic.response import HTTPResponse

from memtrace_core import ValidationError
from memtrace_core.validation import as_int

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


def json_body(request: Request, *, empty: Any = None) -> Any:
    """The parsed JSON body. An empty body gives ``empty`` when it is not None, else a 400."""
    body = request.body
    if not body or body.isspace():
        if empty is not None:
            return empty
        raise ValidationError("invalid request body: empty body", field="body")
    try:
        return loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"invalid request body: {exc}", field="body") from None


def json_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The JSON body, which must be an object (``{}`` when empty and ``allow_empty``)."""
    data = json_body(request, empty={} if allow_empty else None)
    if not isinstance(data, dict):
        raise ValidationError("invalid request body: expected a JSON object", field="body")
    return data


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def model_response(model: BaseModel, status: int = 200) -> HTTPResponse:
    """A pydantic model as JSON; ``None`` fields are omitted (as the original's ``omitempty``)."""
    body = model.__pydantic_serializer__.to_json(model, exclude_none=True)
    return HTTPResponse(body, status=status, content_type=JSON)


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
