"""Server hardening (issue 7): overflowing offsets, lone surrogates, content types, timeouts.

Every case is a clear 4xx JSON error over a real socket, never a 5xx or a plain-text page."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

API = "/api/v1"
MAX_INT64 = 2**63 - 1


def _error(r: httpx.Response, status: int, *, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body: dict[str, Any] = r.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    if field is not None:
        assert body.get("field") == field, body
    return body


# -- offsets -----------------------------------------------------------------------------------


async def _seed(http: httpx.AsyncClient) -> None:
    items = [{"agent_id": "a", "content": f"deploy number {i}"} for i in range(3)]
    assert (await http.post(f"{API}/memories", json={"memories": items})).status_code == 201


@pytest.mark.parametrize("offset", [MAX_INT64, MAX_INT64 - 50, 10**12])
async def test_ranked_search_offset_overflow_is_a_400(http: httpx.AsyncClient, offset: int) -> None:
    await _seed(http)
    r = await http.post(f"{API}/search", json={"query": "deploy", "offset": offset})
    body = _error(r, 400, field="offset")
    assert "1000" in body["error"], body


async def test_ranked_search_window_edge(http: httpx.AsyncClient) -> None:
    await _seed(http)
    ok = await http.post(f"{API}/search", json={"query": "deploy", "offset": 900, "limit": 100})
    assert ok.status_code == 200, ok.text
    assert ok.json()["results"] == []
    assert ok.json()["has_more"] is False
    r = await http.post(f"{API}/search", json={"query": "deploy", "offset": 901, "limit": 100})
    _error(r, 400, field="offset")
    # the first page still finds everything
    page = (await http.post(f"{API}/search", json={"query": "deploy"})).json()
    assert page["count"] == 3


@pytest.mark.parametrize("offset", [MAX_INT64, MAX_INT64 - 1])
async def test_filter_search_and_list_with_huge_offsets(
    http: httpx.AsyncClient, offset: int
) -> None:
    await _seed(http)
    r = await http.post(f"{API}/search", json={"agent_id": "a", "offset": offset})
    assert r.status_code == 200, r.text
    assert r.json()["results"] == []
    r = await http.get(f"{API}/memories", params={"offset": offset})
    assert r.status_code == 200, r.text
    assert r.json()["memories"] == []


# -- lone surrogates ---------------------------------------------------------------------------

S = "\ud800"
SURROGATE_BODIES: list[tuple[str, str, Any]] = [
    ("POST", "/memories", {"agent_id": "a", "content": "x", "tags": [S]}),
    ("POST", "/memories", {"agent_id": "a", "content": S}),
    ("POST", "/memories", {"agent_id": "a", "content": "x", "metadata": {"k": S}}),
    ("POST", "/memories", {"memories": [{"agent_id": "a", "content": "x", "tags": ["ok", S]}]}),
    ("POST", "/search", {"tags": [S]}),
    ("POST", "/search", {"memory_types": [S]}),
    ("POST", "/search", {"content_contains": S}),
    ("POST", "/search", {"query": f"deploy {S}"}),
    ("POST", "/memories/delete", {"tags": [S]}),
    ("POST", "/memories/pop", {"tags": [S]}),
    ("POST", "/memories", {"agent_id": "a", "content": "x", "payload": [{"k": S}]}),
    ("POST", "/memories", {"agent_id": "a", "content": "x", "payload": S}),
    ("POST", "/agents/a/context", {"include_types": [S]}),
    ("POST", "/sessions/sess_x/context", {"include_types": [S]}),
    ("POST", "/agents", {"name": "bot", "description": S}),
    ("POST", "/agents", {"name": "bot", "config": {"k": S}}),
    ("POST", "/agents", {"name": "bot", "config": {S: 1}}),
    ("POST", "/sessions", {"agent_id": "a", "metadata": {"k": S}}),
    ("POST", "/sessions", {"agent_id": "a", "metadata": {"k": [{"deep": S}]}}),
]


def _raw(body: Any, *, escaped: bool) -> bytes:
    text = json.dumps(body)  # ensure_ascii: the surrogate is written as the escape \ud800
    assert "\\ud800" in text
    if escaped:
        return text.encode()
    return (
        text.replace("\\ud800", "\udcff")
        .encode("utf-8", "surrogateescape")
        .replace(b"\xff", b"\xed\xa0\x80")
    )


@pytest.mark.parametrize("escaped", [True, False], ids=["escaped", "raw-ED-A0-80"])
@pytest.mark.parametrize(("method", "path", "body"), SURROGATE_BODIES)
async def test_lone_surrogates_are_a_4xx_json_error(
    http: httpx.AsyncClient, method: str, path: str, body: Any, escaped: bool
) -> None:
    content = _raw(body, escaped=escaped)
    r = await http.request(
        method, API + path, content=content, headers={"content-type": "application/json"}
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    _error(r, r.status_code)
    # nothing was written
    assert (await http.get(f"{API}/memories")).json()["count"] == 0
    assert (await http.get(f"{API}/agents")).json()["count"] == 0
    assert (await http.get(f"{API}/sessions")).json()["count"] == 0


async def test_session_update_with_a_surrogate(http: httpx.AsyncClient) -> None:
    created = await http.post(f"{API}/sessions", json={"agent_id": "a"})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    for escaped in (True, False):
        content = _raw({"metadata": {"k": S}}, escaped=escaped)
        r = await http.put(
            f"{API}/sessions/{sid}", content=content, headers={"content-type": "application/json"}
        )
        _error(r, 400)
    assert (await http.get(f"{API}/sessions/{sid}")).json().get("metadata") in (None, {})


def test_dumps_never_fails_on_surrogates() -> None:
    from memtrace_server.http import dumps

    out = dumps({"error": f"invalid tag {S!s}", S: [S, "é"]})
    assert json.loads(out) == {"error": f"invalid tag {S}", S: [S, "é"]}
    assert "é".encode() in out


def test_model_response_escapes_text_pydantic_cannot_encode() -> None:
    from memtrace_core import AgentList
    from memtrace_core.models import Agent
    from memtrace_server.http import model_response

    agent = Agent.model_construct(id="agent_x", org_id="o", name="x", description=f"bad {S}")
    response = model_response(AgentList.model_construct(agents=[agent], count=1))
    assert response.status == 200
    assert json.loads(response.body)["agents"][0]["description"] == f"bad {S}"


def test_error_handler_never_fails_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Even when an error cannot be rendered, the answer is a JSON 500 and the failure is
    logged (it used to be Sanic's plain-text "An error occurred while handling an error")."""
    from types import SimpleNamespace

    from memtrace_core import MemtraceError
    from memtrace_server.app import JsonErrorHandler

    class Unrenderable(MemtraceError):
        status_code = 400

        def to_dict(self) -> dict[str, Any]:
            raise RuntimeError("cannot render")

    request: Any = SimpleNamespace(method="POST", path="/api/v1/x", ctx=SimpleNamespace())
    with caplog.at_level("ERROR", logger="memtrace.server"):
        response = JsonErrorHandler().default(request, Unrenderable("boom"))
    assert response.status == 500
    assert json.loads(response.body) == {"error": "internal server error"}
    assert any("error handler failed" in r.getMessage() for r in caplog.records)


# -- content types -----------------------------------------------------------------------------

MEMORY = b'{"agent_id": "a", "content": "typed"}'


@pytest.mark.parametrize(
    "ctype",
    [
        "text/plain",
        "text/plain;charset=UTF-8",  # fetch() with a string body and no header
        "application/x-www-form-urlencoded",  # curl -d without -H
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonx",
        "application/x-ndjson",
        "json",
    ],
)
async def test_non_json_content_type_is_a_415(http: httpx.AsyncClient, ctype: str) -> None:
    for method, path in (
        ("POST", "/memories"),
        ("POST", "/search"),
        ("POST", "/agents"),
        ("POST", "/sessions"),
        ("POST", "/memories/delete"),
        ("POST", "/memories/pop"),
        ("POST", "/agents/a/context"),
        ("PUT", "/sessions/sess_x"),
        ("POST", "/admin/orgs"),
        ("POST", "/admin/keys"),
    ):
        r = await http.request(method, API + path, content=MEMORY, headers={"content-type": ctype})
        body = _error(r, 415)
        assert "application/json" in body["error"], body
    assert (await http.get(f"{API}/memories")).json()["count"] == 0


@pytest.mark.parametrize(
    "ctype",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/merge-patch+json",
        "application/vnd.memtrace+json; version=1",
        None,  # no Content-Type at all: the body is read as JSON (see docs/api.md)
    ],
)
async def test_json_content_types_are_accepted(http: httpx.AsyncClient, ctype: str | None) -> None:
    headers = {} if ctype is None else {"content-type": ctype}
    r = await http.post(f"{API}/memories", content=MEMORY, headers=headers)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
@pytest.mark.parametrize("body", [b"", b"  \r\n"])
async def test_bodyless_requests_keep_their_defaults(
    http: httpx.AsyncClient, ctype: str | None, body: bytes
) -> None:
    """No body: the content type does not matter (the original's context endpoint fell back
    to its defaults); the routes whose body is optional answer with their defaults."""
    await _seed(http)
    headers = {} if ctype is None else {"content-type": ctype}
    ctx = await http.post(f"{API}/agents/a/context", content=body, headers=headers)
    assert ctx.status_code == 200, ctx.text
    assert ctx.json()["memory_count"] == 3
    found = await http.post(f"{API}/search", content=body, headers=headers)
    assert found.status_code == 200, found.text
    assert found.json()["count"] == 3


async def test_import_keeps_its_own_content_types(http: httpx.AsyncClient) -> None:
    await _seed(http)
    line = (await http.get(f"{API}/export")).content
    assert line.count(b"\n") >= 3
    for ctype in ("application/x-ndjson", "application/jsonl", "application/json", None):
        headers = {} if ctype is None else {"content-type": ctype}
        r = await http.post(f"{API}/import", content=line, headers=headers)
        assert r.status_code == 200, (ctype, r.text)
    for ctype in ("application/x-www-form-urlencoded", "text/html", "multipart/form-data"):
        r = await http.post(f"{API}/import", content=line, headers={"content-type": ctype})
        body = _error(r, 415)
        assert "application/x-ndjson" in body["error"], body


def test_response_timeout_is_a_json_503(caplog: pytest.LogCaptureFixture) -> None:
    """Sanic's response timeout (``server.write_timeout``) used to fall through to the
    "unhandled error" 500."""
    from types import SimpleNamespace

    from sanic.exceptions import ServiceUnavailable

    from memtrace_server.app import JsonErrorHandler

    request: Any = SimpleNamespace(method="POST", path="/api/v1/search", ctx=SimpleNamespace())
    with caplog.at_level("WARNING", logger="memtrace.server"):
        response = JsonErrorHandler().default(request, ServiceUnavailable("Response Timeout"))
    assert response.status == 503
    assert "response timeout" in json.loads(response.body)["error"]
    assert not any("unhandled" in r.getMessage() for r in caplog.records)
