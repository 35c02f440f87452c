"""``GET /api/v1/activity`` over a real socket: the exact JSON answer, query strings (CSV lists,
repeated tags, seconds as digits), 400s naming the parameter, the read permission, the OpenAPI
entry, and the blocking twins: the engine (``Memtrace``) and the HTTP client (``MemtraceClient``)
answer the same on the same store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from memtrace_core import Activity, connect
from memtrace_server.testing import LiveServer

API = "/api/v1"
BASE = datetime(2026, 3, 4, 10, tzinfo=UTC)


async def _seed(http: httpx.AsyncClient) -> None:
    def at(minutes: int) -> str:
        return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    items: list[dict[str, Any]] = [
        {"agent_id": "bot", "content": "start", "time": at(0), "tags": ["a"]},
        {"agent_id": "bot", "content": "oops", "time": at(59), "event_type": "error",
         "tags": ["a", "b"]},
        {"agent_id": "bot", "content": "chose", "time": at(61), "memory_type": "decision"},
        {"agent_id": "other", "content": "elsewhere", "time": at(62), "tags": ["b"]},
        {"agent_id": "bot", "content": "at until", "time": at(180)},
    ]  # fmt: skip
    r = await http.post(f"{API}/memories", json={"memories": items})
    assert r.status_code == 201, r.text


WINDOW = {"since": "2026-03-04T10:30:00Z", "until": "2026-03-04T13:00:00Z"}


async def test_the_answer_is_the_documented_json(http: httpx.AsyncClient) -> None:
    await _seed(http)
    r = await http.get(f"{API}/activity", params={**WINDOW, "bucket": "1h", "agent_id": "bot"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "since": "2026-03-04T10:00:00Z",  # rounded down to the bucket
        "until": "2026-03-04T13:00:00Z",
        "bucket_seconds": 3600,
        "total": 3,
        "errors": 1,
        "by_type": {"decision": 1, "episodic": 2},
        "buckets": [
            {"start": "2026-03-04T10:00:00Z", "count": 2, "errors": 1, "by_type": {"episodic": 2}},
            {"start": "2026-03-04T11:00:00Z", "count": 1, "errors": 0, "by_type": {"decision": 1}},
            {"start": "2026-03-04T12:00:00Z", "count": 0, "errors": 0, "by_type": {}},
        ],
    }


async def test_query_string_forms(http: httpx.AsyncClient) -> None:
    await _seed(http)

    async def total(**params: Any) -> int:
        r = await http.get(f"{API}/activity", params={**WINDOW, **params})
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    assert await total() == 4
    assert await total(memory_types="episodic,decision", agent_id="bot") == 3
    assert await total(event_types="error") == 1
    assert await total(tags_any="b") == 2
    assert await total(tags=["a", "b"]) == 1  # repeated tags: all of them
    assert await total(tags="a,b") == 1
    r = await http.get(f"{API}/activity", params={**WINDOW, "bucket": "900"})
    assert r.json()["bucket_seconds"] == 900
    assert len(r.json()["buckets"]) == 10  # 10:30 is a bucket start already
    r = await http.get(f"{API}/activity", params={"since": "", "until": "", "bucket": ""})
    assert r.status_code == 200  # empty values: the defaults (24 h by hour)
    assert r.json()["bucket_seconds"] == 3600


async def test_bad_parameters_are_400s_naming_them(http: httpx.AsyncClient) -> None:
    cases = [
        ({"bucket": "0"}, "bucket"),
        ({"bucket": "1m", "since": "30d"}, "bucket"),
        ({"bucket": "soon"}, "bucket"),
        ({"since": "2h", "until": "3h"}, "since"),
        ({"since": "2026-13-45"}, "since"),
        ({"memory_types": "episodic,dream"}, "memory_types"),
        ({"limit": "10"}, "limit"),  # not a parameter of this route
    ]
    for params, field in cases:
        r = await http.get(f"{API}/activity", params=params)
        assert r.status_code == 400, (params, r.text)
        body = r.json()
        assert body["field"] == field, (params, body)
        assert body["error"]


async def test_read_permission(http: httpx.AsyncClient, live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as anon:
        assert (await anon.get(f"{API}/activity")).status_code == 401
    keys = {}
    for name, permissions in (("reader", ["read"]), ("writer", ["write"])):
        r = await http.post(
            f"{API}/admin/keys",
            json={"org_id": "org_default", "name": name, "permissions": permissions},
        )
        keys[name] = r.json()["api_key"]
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": keys["reader"]}) as h:
        assert (await h.get(f"{API}/activity")).status_code == 200
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": keys["writer"]}) as h:
        r = await h.get(f"{API}/activity")
        assert r.status_code == 403
        assert "read" in r.json()["error"]


async def test_openapi_documents_the_route(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    op = spec["paths"]["/api/v1/activity"]["get"]
    assert op["operationId"] == "getActivity"
    params = {p["name"] for p in op["parameters"]}
    assert {"since", "until", "bucket", "agent_id", "memory_types", "tags_any", "as_of"} <= params
    schemas = spec["components"]["schemas"]
    assert set(schemas["Activity"]["properties"]) == {
        "since",
        "until",
        "bucket_seconds",
        "total",
        "errors",
        "by_type",
        "buckets",
    }
    assert set(schemas["ActivityBucket"]["properties"]) == {"start", "count", "errors", "by_type"}


async def test_the_blocking_engine_and_client_answer_the_same(
    http: httpx.AsyncClient, live: LiveServer, admin_key: str, db_url: str
) -> None:
    await _seed(http)
    queries: list[dict[str, Any]] = [
        {**WINDOW, "bucket": "1h"},
        {**WINDOW, "bucket": 600, "agent_id": "bot", "memory_types": ["episodic"]},
        {"since": BASE, "until": BASE + timedelta(days=1), "bucket": "6h", "tags_any": ["b"]},
    ]
    engine, client = connect(db_url), connect(live.url, api_key=admin_key)
    try:
        for query in queries:
            local, remote = engine.get_activity(query), client.get_activity(**query)
            assert isinstance(local, Activity)
            assert local == remote, query
            assert local.total > 0
    finally:
        engine.close()
        client.close()
