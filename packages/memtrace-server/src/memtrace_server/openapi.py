"""The OpenAPI 3.1 document (built from :data:`memtrace_server.operations.OPERATIONS` and the pydantic
models' JSON schemas) and a self-contained HTML rendering of it for ``/docs``."""

from __future__ import annotations

import functools
import html
import json
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from memtrace_core.models import ID_PATTERN

from . import __version__
from .operations import ERROR_SCHEMA, OPERATIONS, CreateMemoryBody, Operation

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Invalid input (field and batch index in the body)",
    401: "Missing or invalid API key",
    403: "The key lacks the permission",
    404: "Not found",
    409: "Conflict (duplicate memory or name)",
    408: "The request (headers or body) did not arrive in time",
    413: "Request body too large",
    415: "A body with a content type the route cannot read",
    503: "Store unavailable",
}

_REF = "#/components/schemas/{model}"

#: Path parameters, as the engine checks them: a memory id is ``mem_`` + a ULID (upper-case
#: Crockford base 32, as generated); an agent or session path names an id of the id pattern,
#: or — for the operations that find one by id *or name* (``by_reference``) — printable text
#: of 1..256 characters (the document says printable ASCII; the engine accepts any printable).
_ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": ID_PATTERN.pattern}
_REFERENCE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[!-~]([ -~]{0,254}[!-~])?$",
}
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "memory_id": {"type": "string", "pattern": r"^mem_[0-9A-HJKMNP-TV-Z]{26}$"},
    "agent_id": _ID_SCHEMA,
    "session_id": _ID_SCHEMA,
    "key_id": {"type": "string", "pattern": r"^[!-~]{1,128}$"},
    "org_id": {"type": "string", "pattern": r"^[!-~]{1,128}$"},
}
#: ``since`` / ``until``: a relative duration (``30m``, ``24h``, ``7d``, ``2w``), ``now``
#: (``until``: no bound), or an RFC 3339 timestamp.
_TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^[1-9][0-9]{0,5}[smhdw]$"},
        {"type": "string", "enum": ["now"]},
        {"type": "string", "format": "date-time"},
    ]
}


def _model_list() -> list[tuple[type[BaseModel], Literal["validation", "serialization"]]]:
    models: dict[tuple[type[BaseModel], str], None] = {}
    for op in OPERATIONS:
        if isinstance(op.body, type):
            models[(op.body, "validation")] = None
        if isinstance(op.response, type):
            models[(op.response, "serialization")] = None
    from memtrace_core import BatchResult, Memory, MemoryCreate

    models[(MemoryCreate, "validation")] = None
    models[(CreateMemoryBody, "validation")] = None
    models[(Memory, "serialization")] = None
    models[(BatchResult, "serialization")] = None
    return [(m, mode) for (m, mode) in models]  # type: ignore[misc]


def _schema_for(
    value: type[BaseModel] | dict[str, Any] | None,
    mode: str,
    refs: dict[Any, dict[str, Any]],
) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    return refs[(value, mode)]


def parameters(op: Operation) -> list[dict[str, Any]]:
    """The path and query parameters of an operation, as the document gives them (``name``,
    ``in``, ``required``, ``schema``, ``description``): also the MCP tools' arguments."""
    params: list[dict[str, Any]] = []
    for segment in op.path.split("/"):
        if segment.startswith("{"):
            name = segment[1:-1]
            params.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": _REFERENCE_SCHEMA
                    if name in op.by_reference
                    else _PATH_SCHEMAS.get(name, {"type": "string", "minLength": 1}),
                }
            )
    for p in op.query:
        schema: dict[str, Any] = dict(_TIME_SCHEMA) if p.time else {"type": p.type}
        if p.enum:
            schema["enum"] = list(p.enum)
        if p.pattern:
            schema["pattern"] = p.pattern
        if p.minimum is not None:
            schema["minimum"] = p.minimum
        entry: dict[str, Any] = {"name": p.name, "in": "query", "required": False, "schema": schema}
        if p.description:
            entry["description"] = p.description
        params.append(entry)
    return params


@functools.cache
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route."""
    refs, top = models_json_schema(_model_list(), ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA
    error_ref = {"$ref": "#/components/schemas/Error"}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        item: dict[str, Any] = {
            "operationId": op.op_id,
            "summary": op.summary,
            "tags": [op.tag],
        }
        if op.description:
            item["description"] = op.description
        params = parameters(op)
        if params:
            item["parameters"] = params
        body = _schema_for(op.body, "validation", refs)
        if body is not None:
            item["requestBody"] = {
                "required": op.body_required,
                "content": {op.body_content_type: {"schema": body}},
            }
        responses: dict[str, Any] = {}
        ok: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "OK")}
        schema = _schema_for(op.response, "serialization", refs)
        if schema is not None and op.status != 204:
            ok["content"] = {op.response_content_type: {"schema": schema}}
        ok["headers"] = {"X-Request-ID": {"schema": {"type": "string"}}}
        if op.links:
            ok["links"] = {
                name: {"operationId": target, "parameters": dict(parameters)}
                for name, target, parameters in op.links
            }
        responses[str(op.status)] = ok
        codes = set(op.errors)
        if not op.public:
            codes |= {401, 403, 503}
            if op.body is not None:
                codes |= {408, 413, 415}
        for code in sorted(codes):
            responses[str(code)] = {
                "description": _STATUS_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        responses["default"] = {
            "description": "Error",
            "content": {"application/json": {"schema": error_ref}},
        }
        item["responses"] = responses
        if op.public:
            item["security"] = []
        elif op.permission:
            item["x-permission"] = op.permission
        paths.setdefault(op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "memtrace",
            "version": __version__,
            "description": "Durable, time-ordered memory for AI agents. Wire-compatible with "
            "the original Memtrace API (memtrace-sdk 0.2.0) plus real memory ids, deletion, "
            "ranked keyword search, export/import and an admin API.",
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKeyHeader": []}, {"BearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "BearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
    }


@functools.cache
def openapi_bytes() -> bytes:
    return json.dumps(openapi(), separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# /docs


def type_text(schema: dict[str, Any]) -> str:
    """A schema as short text ("string | null", "array of string"), HTML-escaped."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>'
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [type_text(s) for s in schema[key] if s.get("type") != "null"]
            text = " | ".join(parts)
            return text + (" | null" if any(s.get("type") == "null" for s in schema[key]) else "")
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_text(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(html.escape(json.dumps(v)) for v in schema["enum"])
    if "const" in schema:
        return html.escape(json.dumps(schema["const"]))
    fmt = schema.get("format")
    return html.escape(f"{kind} ({fmt})" if fmt else str(kind))


def _schema_table(name: str, schema: dict[str, Any]) -> str:
    rows = []
    required = set(schema.get("required", []))
    for prop, sub in schema.get("properties", {}).items():
        desc = html.escape(str(sub.get("description", "")))
        default = f"default {html.escape(json.dumps(sub['default']))}" if "default" in sub else ""
        rows.append(
            f"<tr><td><code>{html.escape(prop)}</code></td><td>{type_text(sub)}</td>"
            f"<td>{'yes' if prop in required else ''}</td><td>{desc} {default}</td></tr>"
        )
    doc = html.escape(str(schema.get("description", "")))
    body = (
        "<table><tr><th>field</th><th>type</th><th>required</th><th>notes</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else f"<p>{type_text(schema)}</p>"
    )
    return f'<h3 id="schema-{html.escape(name)}">{html.escape(name)}</h3><p>{doc}</p>{body}'


@functools.cache
def docs_html() -> str:
    spec = openapi()
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>memtrace API</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "th{background:#f3f3f3}code{background:#f6f6f6;padding:0 3px}"
        ".m{font-weight:bold;font-family:monospace}h2{border-bottom:1px solid #ddd}",
        "</style></head><body>",
        f"<h1>memtrace API <small>{html.escape(spec['info']['version'])}</small></h1>",
        f"<p>{html.escape(spec['info']['description'])}</p>",
        "<p>Authenticate with <code>x-api-key: mtk_…</code> or "
        '<code>Authorization: Bearer mtk_…</code>. Errors are <code>{"error": …}</code>. '
        'Machine-readable spec: <a href="/openapi.json">/openapi.json</a>.</p>',
        "<h2>Routes</h2><table><tr><th>method</th><th>path</th><th>summary</th>"
        "<th>permission</th><th>status</th></tr>",
    ]
    for path, methods in spec["paths"].items():
        for method, item in methods.items():
            anchor = html.escape(item["operationId"])
            ok = next(iter(item["responses"]))
            perm = item.get("x-permission", "public" if item.get("security") == [] else "any key")
            out.append(
                f"<tr><td class='m'>{method.upper()}</td><td><a href='#{anchor}'><code>"
                f"{html.escape(path)}</code></a></td><td>{html.escape(item['summary'])}</td>"
                f"<td>{html.escape(perm)}</td><td>{ok}</td></tr>"
            )
    out.append("</table><h2>Operations</h2>")
    for path, methods in spec["paths"].items():
        for method, item in methods.items():
            out.append(
                f"<h3 id='{html.escape(item['operationId'])}'><span class='m'>{method.upper()}"
                f"</span> <code>{html.escape(path)}</code></h3>"
                f"<p>{html.escape(item['summary'])}. {html.escape(item.get('description', ''))}</p>"
            )
            params = item.get("parameters", [])
            if params:
                out.append(
                    "<table><tr><th>parameter</th><th>in</th><th>type</th><th>notes</th></tr>"
                )
                for p in params:
                    out.append(
                        f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                        f"<td>{type_text(p['schema'])}</td>"
                        f"<td>{html.escape(p.get('description', ''))}</td></tr>"
                    )
                out.append("</table>")
            if "requestBody" in item:
                for ctype, content in item["requestBody"]["content"].items():
                    out.append(
                        f"<p>Body ({html.escape(ctype)}): {type_text(content['schema'])}</p>"
                    )
            out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
            for code, resp in item["responses"].items():
                content = resp.get("content", {})
                body = ", ".join(
                    f"{type_text(c['schema'])} <small>({html.escape(t)})</small>"
                    for t, c in content.items()
                )
                out.append(
                    f"<tr><td>{code}</td><td>{html.escape(resp['description'])}</td>"
                    f"<td>{body}</td></tr>"
                )
            out.append("</table>")
    out.append("<h2>Schemas</h2>")
    for name, schema in sorted(spec["components"]["schemas"].items()):
        out.append(_schema_table(name, schema))
    out.append("</body></html>")
    return "".join(out)
