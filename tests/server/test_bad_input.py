"""Bad input never gets a 5xx: every case is a clear 4xx JSON error, and nothing is partially
written (checked in the store afterwards)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memtrace_core import AsyncMemtrace, aconnect
from memtrace_server.testing import LiveServer, bootstrap_admin_key, config_for, serve_in_thread

API = "/api/v1"


@pytest.fixture
async def store(db_url: str, live: LiveServer) -> AsyncIterator[AsyncMemtrace]:
    """A second engine on the server's SQLite file, to check what was (not) written."""
    engine = await aconnect(db_url)
    yield engine
    await engine.close()


async def _nothing_written(store: AsyncMemtrace) -> None:
    assert (await store.list_memories()).count == 0
    assert (await store.list_agents()).count == 0
    assert (await store.list_sessions()).count == 0


def _check(
    r: httpx.Response, status: int, *, contains: str = "", field: str | None = None
) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert isinstance(body.get("error"), str)
    assert body["error"]
    assert "Traceback" not in r.text
    if contains:
        assert contains in body["error"], body
    if field is not None:
        assert body.get("field") == field, body
    return body


MALFORMED = [b"{", b"{bad json}", b"[1,2", b"nul", b'{"a": NaN}', b"\xff\xfe", b'{"a":' * 5000]


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize(
    "path",
    [
        "/memories",
        "/search",
        "/agents",
        "/sessions",
        "/memories/delete",
        "/sessions/sess_x/context",
    ],
)
async def test_malformed_json(
    http: httpx.AsyncClient, store: AsyncMemtrace, path: str, body: bytes
) -> None:
    r = await http.post(API + path, content=body, headers={"content-type": "application/json"})
    _check(r, 400, contains="invalid request body", field="body")
    await _nothing_written(store)


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"true"])
async def test_non_object_bodies(
    http: httpx.AsyncClient, store: AsyncMemtrace, body: bytes
) -> None:
    for path in ("/memories", "/agents", "/sessions", "/search"):
        _check(await http.post(API + path, content=body), 400)
    await _nothing_written(store)


WRONG_MEMORIES: list[tuple[dict[str, Any], str, str]] = [
    ({"content": "x"}, "agent_id", "agent_id is required"),
    ({"agent_id": "a"}, "content", "content is required"),
    ({"agent_id": "a", "content": ""}, "content", "content is required"),
    ({"agent_id": 5, "content": "x"}, "agent_id", "agent_id"),
    ({"agent_id": "a", "content": 5}, "content", "content"),
    ({"agent_id": "a", "content": ["x"]}, "content", "content"),
    ({"agent_id": "1abc", "content": "x"}, "agent_id", "invalid agent_id"),
    ({"agent_id": "a" * 200, "content": "x"}, "agent_id", "invalid agent_id"),
    (
        {"agent_id": "a", "content": "x", "memory_type": "dream"},
        "memory_type",
        "invalid memory_type: dream",
    ),
    ({"agent_id": "a", "content": "x", "memory_type": 3}, "memory_type", "invalid memory_type"),
    (
        {"agent_id": "a", "content": "x", "event_type": "has-hyphen"},
        "event_type",
        "invalid event_type",
    ),
    (
        {"agent_id": "a", "content": "x", "session_id": "bad id!"},
        "session_id",
        "invalid session_id",
    ),
    ({"agent_id": "a", "content": "x", "tags": "notalist"}, "tags", "tags"),
    ({"agent_id": "a", "content": "x", "tags": ["x y"]}, "tags", "invalid tag 'x y'"),
    ({"agent_id": "a", "content": "x", "tags": [1]}, "tags", "tags"),
    ({"agent_id": "a", "content": "x", "importance": 2}, "importance", "importance"),
    ({"agent_id": "a", "content": "x", "importance": "high"}, "importance", "importance"),
    ({"agent_id": "a", "content": "x", "metadata": [1, 2]}, "metadata", "metadata"),
    ({"agent_id": "a", "content": "x", "metadata": "str"}, "metadata", "metadata"),
    ({"agent_id": "a", "content": "x", "time": "not a time"}, "time", "time"),
    ({"agent_id": "a", "content": "x", "time": 1e300}, "time", "time"),
    ({"agent_id": "a", "content": "x\u0000y"}, "content", "NUL"),
    ({"agent_id": "a", "content": "x" * 70_000}, "content", "content too large"),
    ({"agent_id": "a", "content": "x", "dedup_key": "k" * 300}, "dedup_key", "dedup_key"),
]


@pytest.mark.parametrize(("body", "field", "message"), WRONG_MEMORIES)
async def test_wrong_memory_fields(
    http: httpx.AsyncClient, store: AsyncMemtrace, body: dict[str, Any], field: str, message: str
) -> None:
    _check(await http.post(f"{API}/memories", json=body), 400, contains=message, field=field)
    # the same item inside a batch: rejected whole, the index is reported
    batch = {"memories": [{"agent_id": "ok", "content": "fine"}, body]}
    err = _check(await http.post(f"{API}/memories", json=batch), 400, contains=message, field=field)
    assert err["index"] == 1
    assert err["error"].startswith("memories[1]: ")
    await _nothing_written(store)


async def test_batch_is_all_or_nothing(http: httpx.AsyncClient, store: AsyncMemtrace) -> None:
    items: list[Any] = [{"agent_id": "a", "content": f"ok {i}"} for i in range(50)]
    items.append("not an object")
    _check(await http.post(f"{API}/memories", json={"memories": items}), 400)
    too_many = [{"agent_id": "a", "content": f"n{i}"} for i in range(1001)]
    _check(
        await http.post(f"{API}/memories", json={"memories": too_many}),
        400,
        contains="batch too large",
    )
    await _nothing_written(store)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("order=sideways", "order"),
        ("since=7x", "since"),
        ("since=yesterday", "since"),
        ("until=2026-13-45", "until"),
        ("since=0h", "since"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
        ("agent_id=bad!id", "agent_id"),
        ("session_id=%20", "session_id"),
        ("memory_type=dream", "memory_types"),
        ("event_type=has-hyphen", "event_types"),
        ("tags=a%20b", "tags"),
    ],
)
async def test_bad_query_strings(http: httpx.AsyncClient, query: str, field: str) -> None:
    _check(await http.get(f"{API}/memories?{query}"), 400, field=field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": "many"}, "limit"),
        ({"limit": 0}, "limit"),
        ({"order": "up"}, "order"),
        ({"memory_types": ["dream"]}, "memory_types"),
        ({"memory_types": "episodic,dream"}, "memory_types"),
        ({"min_importance": 3}, "min_importance"),
        ({"min_importance": "x"}, "min_importance"),
        ({"since": "whenever"}, "since"),
        ({"tags": [1, 2]}, "tags.0"),
        ({"content_contains": 5}, "content_contains"),
        ({"query": "x" * 5000}, "query"),
        ({"offset": -1}, "offset"),
    ],
)
async def test_bad_search(http: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    _check(await http.post(f"{API}/search", json=body), 400, field=field)


async def test_bad_ids_and_params(http: httpx.AsyncClient, store: AsyncMemtrace) -> None:
    _check(await http.get(f"{API}/memories/not-a-memory-id"), 400, field="id")
    _check(await http.delete(f"{API}/memories/mem_123"), 400, field="id")
    _check(await http.get(f"{API}/memories/mem_01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404)
    _check(await http.get(f"{API}/agents/%00"), 400)
    _check(await http.get(f"{API}/agents/bad!id/stats"), 400, field="agent_id")
    _check(await http.get(f"{API}/sessions/sess_none"), 404, contains="session not found")
    _check(await http.delete(f"{API}/sessions/sess_none"), 404)
    _check(await http.get(f"{API}/sessions?limit=x"), 400, field="limit")
    _check(await http.get(f"{API}/sessions?status=paused"), 400, field="status")
    _check(await http.delete(f"{API}/agents/x?delete_memories=maybe"), 400, field="delete_memories")
    _check(
        await http.post(f"{API}/sessions/sess_x/context", json={"max_tokens": 0}),
        400,
        field="max_tokens",
    )
    _check(
        await http.post(f"{API}/sessions/sess_x/context", json={"format": "pdf"}),
        400,
        field="format",
    )
    _check(await http.post(f"{API}/sessions/sess_x/context", json={"include_types": ["x"]}), 400)
    _check(await http.post(f"{API}/agents", json={"name": ""}), 400, contains="name is required")
    _check(await http.post(f"{API}/agents", json={"name": 5}), 400, field="name")
    _check(await http.post(f"{API}/agents", json={"name": "n", "config": "x"}), 400, field="config")
    _check(await http.post(f"{API}/sessions", json={}), 400, field="agent_id")
    _check(
        await http.post(f"{API}/sessions", json={"agent_id": "a", "metadata": 3}),
        400,
        field="metadata",
    )
    _check(await http.post(f"{API}/memories/delete", json={"since": "nope"}), 400, field="since")
    _check(await http.post(f"{API}/admin/keys/key_nope/rotate"), 404)
    _check(
        await http.post(
            f"{API}/admin/keys",
            json={"org_id": "org_default", "name": "k", "permissions": ["root"]},
        ),
        400,
    )
    _check(
        await http.post(
            f"{API}/admin/keys", json={"org_id": "org_default", "name": "k", "expires_at": "soon"}
        ),
        400,
        field="expires_at",
    )
    _check(await http.post(f"{API}/admin/keys", json={"org_id": "org_nope", "name": "k"}), 404)
    _check(await http.post(f"{API}/admin/orgs", json={}), 400, field="name")
    _check(await http.post(f"{API}/import", content=b"\xff\xfe"), 400, field="body")
    _check(await http.post(f"{API}/import", content=b'{"kind":"alien"}'), 400, contains="line 1")
    _check(
        await http.post(f"{API}/import", content=b'{"kind":"memory","id":"mem_x"}'), 400, field="id"
    )
    await _nothing_written(store)


async def test_out_of_range_integers_are_400(http: httpx.AsyncClient, store: AsyncMemtrace) -> None:
    # "²".isdigit() is True but int("²") fails; offsets past 2**63 overflow SQLite: both were 500s
    _check(await http.get(f"{API}/sessions?limit=²"), 400, field="limit")
    _check(await http.get(f"{API}/sessions?offset=²"), 400, field="offset")
    huge = str(2**64)
    _check(await http.get(f"{API}/memories?offset={huge}"), 400, field="offset")
    _check(await http.get(f"{API}/agents/a/memories?offset={huge}"), 400, field="offset")
    _check(await http.post(f"{API}/search", json={"offset": 2**64}), 400, field="offset")
    _check(await http.post(f"{API}/search", json={"query": "x", "offset": 2**64}), 400)
    _check(await http.get(f"{API}/sessions?offset=99999999999999"), 400, field="offset")
    await _nothing_written(store)


async def test_unknown_routes_and_methods(http: httpx.AsyncClient) -> None:
    body = _check(await http.get("/x"), 404)
    assert body == {"error": "not found: GET /x"}
    _check(await http.get(f"{API}/nothing/here"), 404)
    r = await http.delete(f"{API}/search")
    _check(r, 405, contains="method not allowed")
    assert "POST" in r.headers.get("allow", "")


async def test_auth_failures(
    live: LiveServer, http: httpx.AsyncClient, store: AsyncMemtrace
) -> None:
    async with httpx.AsyncClient(base_url=live.url) as anon:
        _check(
            await anon.post(f"{API}/memories", json={"agent_id": "a", "content": "x"}),
            401,
            contains="missing API key",
        )
        _check(
            await anon.get(f"{API}/agents", headers={"x-api-key": "garbage"}),
            401,
            contains="invalid API key",
        )
        _check(await anon.get(f"{API}/agents", headers={"Authorization": "Bearer x"}), 401)
        _check(await anon.get(f"{API}/admin/orgs"), 401)
    writer = (
        await http.post(
            f"{API}/admin/keys", json={"org_id": "org_default", "name": "w", "permissions": "write"}
        )
    ).json()
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": writer["api_key"]}) as w:
        _check(await w.get(f"{API}/memories"), 403, contains="read")
        _check(await w.post(f"{API}/search", json={}), 403)
        _check(await w.post(f"{API}/admin/keys", json={"org_id": "org_default", "name": "x"}), 403)
        _check(await w.post(f"{API}/org/purge"), 403)
        await http.delete(f"{API}/admin/keys/{writer['key']['id']}")
        _check(await w.post(f"{API}/memories", json={"agent_id": "a", "content": "x"}), 401)
    await _nothing_written(store)


async def test_oversized_body(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'small.db'}"
    key = await bootstrap_admin_key(db_url)
    with serve_in_thread(config_for(db_url, max_body_bytes=2048)) as live:
        async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key}) as h:
            big = {"agent_id": "a", "content": "x" * 4096}
            body = _check(await h.post(f"{API}/memories", json=big), 413, contains="too large")
            assert "2048" in body["error"]
            _check(await h.post(f"{API}/import", content=b"x" * 5000), 413)
            r = await h.post(f"{API}/memories", json={"agent_id": "a", "content": "small"})
            assert r.status_code == 201
    engine = await aconnect(db_url)
    try:
        assert [m.content for m in (await engine.list_memories()).memories] == ["small"]
    finally:
        await engine.close()


async def test_cross_org_ids(http: httpx.AsyncClient, live: LiveServer) -> None:
    org = (await http.post(f"{API}/admin/orgs", json={"name": "other"})).json()
    key = (await http.post(f"{API}/admin/keys", json={"org_id": org["id"], "name": "o"})).json()[
        "api_key"
    ]
    agent = (await http.post(f"{API}/agents", json={"name": "mine"})).json()
    sess = (await http.post(f"{API}/sessions", json={"agent_id": agent["id"]})).json()
    mem = (
        await http.post(
            f"{API}/memories",
            json={"agent_id": "mine", "session_id": sess["id"], "content": "secret"},
        )
    ).json()
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key}) as o:
        _check(await o.get(f"{API}/memories/{mem['id']}"), 404)
        _check(await o.delete(f"{API}/memories/{mem['id']}"), 404)
        _check(await o.get(f"{API}/agents/{agent['id']}"), 404)
        _check(await o.delete(f"{API}/agents/{agent['id']}"), 404)
        _check(await o.get(f"{API}/sessions/{sess['id']}"), 404)
        _check(await o.put(f"{API}/sessions/{sess['id']}", json={"status": "closed"}), 404)
        _check(await o.delete(f"{API}/sessions/{sess['id']}"), 404)
        _check(await o.post(f"{API}/sessions/{sess['id']}/context", json={}), 404)
        assert (await o.get(f"{API}/sessions/{sess['id']}/memories")).json()["count"] == 0
        assert (await o.post(f"{API}/memories/delete", json={"agent_id": "mine"})).json() == {
            "deleted": 0
        }
        assert [
            json.loads(x)["kind"] for x in (await o.get(f"{API}/export")).text.splitlines()
        ] == ["trailer"]
    assert (await http.get(f"{API}/memories/{mem['id']}")).status_code == 200
    assert (await http.get(f"{API}/sessions/{sess['id']}")).json()["status"] == "active"
