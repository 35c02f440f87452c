"""The REST API end to end over a real socket: every route, envelopes, statuses, headers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from memtrace_core import aconnect
from memtrace_server.testing import (
    LiveServer,
    bootstrap_admin_key,
    serve_in_thread,
)
from memtrace_server.testing import (
    config_for as make_config,
)

API = "/api/v1"


async def test_health_ready_metrics_and_request_id(http: httpx.AsyncClient) -> None:
    r = await http.get("/health", headers={"x-api-key": ""})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["service"] == "memtrace"
    assert body["arc"] == {}
    assert body["uptime"].endswith("s")
    assert len(r.headers["x-request-id"]) == 32

    r = await http.get("/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"

    r = await http.get("/health", headers={"X-Request-ID": "trace-abc-123"})
    assert r.headers["x-request-id"] == "trace-abc-123"

    await http.post(f"{API}/memories", json={"agent_id": "a1", "content": "counted"})
    r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'memtrace_http_requests_total{method="POST",route="/api/v1/memories",status="201"} 1'
        in text
    )
    assert "memtrace_memories_written_total 1" in text
    assert (
        'memtrace_http_request_duration_seconds_bucket{method="GET",route="/health",status="200",le="+Inf"}'
        in text
    )
    assert 'memtrace_store_operation_duration_seconds_count{operation="createMemories"} 1' in text


async def test_metrics_series_are_bounded_for_invented_methods(http: httpx.AsyncClient) -> None:
    for i in range(3):
        assert (await http.request(f"XMETHOD{i}", f"/nope{i}")).status_code == 404
    text = (await http.get("/metrics")).text
    assert "XMETHOD" not in text
    assert 'memtrace_http_requests_total{method="OTHER",route="unmatched",status="404"} 3' in text


async def test_memory_create_get_list_delete(http: httpx.AsyncClient) -> None:
    r = await http.post(
        f"{API}/memories",
        json={
            "agent_id": "crawler",
            "content": "Crawled example.com",
            "event_type": "page_crawled",
            "tags": ["web", "prod"],
            "importance": 0.5,
            "metadata": {"pages": 3, "none": None},
            "session_id": "sess_x",
        },
    )
    assert r.status_code == 201, r.text
    mem = r.json()
    assert mem["id"].startswith("mem_")
    assert mem["time"].endswith("Z")
    assert mem["memory_type"] == "episodic"
    assert mem["event_type"] == "page_crawled"
    assert mem["metadata"] == {"pages": 3, "none": None}
    assert "parent_id" not in mem
    assert "score" not in mem

    r = await http.get(f"{API}/memories/{mem['id']}")
    assert r.status_code == 200
    assert r.json() == mem

    r = await http.get(f"{API}/memories", params={"agent_id": "crawler", "tags": "prod"})
    body = r.json()
    assert r.status_code == 200
    assert body["count"] == 1
    assert body["has_more"] is False
    assert body["memories"][0]["id"] == mem["id"]
    # exact tag match: "pro" is not "prod"
    r = await http.get(f"{API}/memories", params={"tags": "pro"})
    assert r.json() == {"memories": [], "count": 0, "has_more": False}
    # repeated tags are ANDed
    r = await http.get(f"{API}/memories?tags=web&tags=prod")
    assert r.json()["count"] == 1

    r = await http.delete(f"{API}/memories/{mem['id']}")
    assert r.status_code == 204
    assert r.content == b""
    r = await http.get(f"{API}/memories/{mem['id']}")
    assert r.status_code == 404
    assert r.json() == {"error": "memory not found"}
    r = await http.delete(f"{API}/memories/{mem['id']}")
    assert r.status_code == 404


async def test_duplicates_single_and_batch(http: httpx.AsyncClient) -> None:
    first = (await http.post(f"{API}/memories", json={"agent_id": "a", "content": "same"})).json()
    r = await http.post(f"{API}/memories", json={"agent_id": "a", "content": "same"})
    assert r.status_code == 409
    assert r.json() == {
        "error": "duplicate memory",
        "existing_id": first["id"],
        "dedup_key": first["dedup_key"],
    }
    r = await http.post(
        f"{API}/memories",
        json={
            "memories": [
                {"agent_id": "a", "content": "same"},
                {"agent_id": "a", "content": "new one"},
                {"agent_id": "a", "content": "new one"},
            ]
        },
    )
    assert r.status_code == 201
    body = r.json()
    assert body["count"] == 1
    assert len(body["memories"]) == 1
    assert body["memories"][0]["content"] == "new one"
    assert body["duplicates"] == 2
    assert body["duplicate_of"][0] == {
        "index": 0,
        "existing_id": first["id"],
        "dedup_key": first["dedup_key"],
    }
    assert body["duplicate_of"][1]["index"] == 2
    assert body["duplicate_of"][1]["existing_id"] == body["memories"][0]["id"]


async def test_list_pagination_order_and_has_more(http: httpx.AsyncClient) -> None:
    items = [
        {"agent_id": "p", "content": f"m{i}", "time": f"2026-01-01T00:00:0{i}Z"} for i in range(5)
    ]
    assert (await http.post(f"{API}/memories", json={"memories": items})).status_code == 201
    r = await http.get(f"{API}/memories", params={"agent_id": "p", "limit": 2, "order": "asc"})
    body = r.json()
    assert [m["content"] for m in body["memories"]] == ["m0", "m1"]
    assert body["has_more"] is True
    r = await http.get(
        f"{API}/memories", params={"agent_id": "p", "limit": 2, "offset": 4, "order": "asc"}
    )
    assert [m["content"] for m in r.json()["memories"]] == ["m4"]
    assert r.json()["has_more"] is False
    r = await http.get(f"{API}/memories", params={"agent_id": "p", "limit": 5})
    assert r.json()["has_more"] is False  # exactly full last page
    assert r.json()["memories"][0]["content"] == "m4"  # desc by default
    r = await http.get(
        f"{API}/memories", params={"since": "2026-01-01T00:00:02Z", "until": "2026-01-01T00:00:04Z"}
    )
    assert sorted(m["content"] for m in r.json()["memories"]) == ["m2", "m3"]


async def test_search_structured_and_keyword(http: httpx.AsyncClient) -> None:
    await http.post(
        f"{API}/memories",
        json={
            "memories": [
                {
                    "agent_id": "s",
                    "content": "Deploy failed on staging",
                    "event_type": "error",
                    "importance": 0.9,
                },
                {
                    "agent_id": "s",
                    "content": "Deployed v2 to production",
                    "memory_type": "decision",
                },
                {"agent_id": "s", "content": "Lunch break"},
            ]
        },
    )
    r = await http.post(f"{API}/search", json={"content_contains": "deploy"})
    body = r.json()
    assert r.status_code == 200
    assert body["count"] == 2
    assert isinstance(body["query_time_ms"], int)
    r = await http.post(f"{API}/search", json={"min_importance": 0.5})
    assert [m["content"] for m in r.json()["results"]] == ["Deploy failed on staging"]
    r = await http.post(f"{API}/search", json={"memory_types": ["decision"]})
    assert r.json()["results"][0]["memory_type"] == "decision"
    r = await http.post(f"{API}/search", json={"query": "staging deploy failure"})
    results = r.json()["results"]
    assert results[0]["content"] == "Deploy failed on staging"
    assert "score" in results[0]
    r = await http.post(f"{API}/search", content=b"")  # empty body = no filters
    assert r.status_code == 200
    assert r.json()["count"] == 3


async def test_agents(http: httpx.AsyncClient) -> None:
    r = await http.post(
        f"{API}/agents", json={"name": "planner", "description": "plans", "config": {"model": "x"}}
    )
    assert r.status_code == 201
    agent = r.json()
    assert agent["id"].startswith("agent_")
    assert agent["config"] == {"model": "x"}
    r = await http.post(f"{API}/agents", json={"name": "planner"})
    assert r.status_code == 409
    assert "already exists" in r.json()["error"]
    r = await http.get(f"{API}/agents")
    assert r.json()["count"] == 1
    assert r.json()["agents"][0]["id"] == agent["id"]
    assert (await http.get(f"{API}/agents/planner")).json()["id"] == agent["id"]
    assert (await http.get(f"{API}/agents/{agent['id']}")).json()["name"] == "planner"
    assert (await http.get(f"{API}/agents/nobody")).status_code == 404

    await http.post(
        f"{API}/memories", json={"agent_id": "planner", "content": "by name", "event_type": "error"}
    )
    await http.post(f"{API}/memories", json={"agent_id": agent["id"], "content": "by id"})
    r = await http.get(f"{API}/agents/{agent['id']}/memories")
    assert r.json()["count"] == 2
    r = await http.get(f"{API}/agents/planner/stats")
    stats = r.json()
    assert stats["memory_count"] == 2
    assert stats["errors_24h"] == 1
    assert stats["memory_types"] == {"episodic": 2}
    assert stats["agent_id"] == "planner"
    r = await http.get(f"{API}/agents/ghost/stats")
    assert r.status_code == 200
    assert r.json()["memory_count"] == 0

    r = await http.post(f"{API}/agents/planner/context", json={})
    ctx = r.json()
    assert r.status_code == 200
    assert ctx["memory_count"] == 2
    assert "by name" in ctx["context"]

    r = await http.delete(f"{API}/agents/planner", params={"delete_memories": "true"})
    assert r.status_code == 204
    assert (await http.get(f"{API}/agents/planner")).status_code == 404
    assert (await http.get(f"{API}/memories", params={"agent_id": "planner"})).json()["count"] == 0
    assert (await http.delete(f"{API}/agents/planner")).status_code == 404


async def test_sessions(http: httpx.AsyncClient) -> None:
    agent = (await http.post(f"{API}/agents", json={"name": "worker"})).json()
    r = await http.post(
        f"{API}/sessions", json={"agent_id": "worker", "metadata": {"a": 1, "b": {"c": 1}}}
    )
    assert r.status_code == 201
    sess = r.json()
    assert sess["status"] == "active"
    assert sess["agent_id"] == agent["id"]
    assert "closed_at" not in sess
    sid = sess["id"]

    await http.post(
        f"{API}/memories", json={"agent_id": "worker", "session_id": sid, "content": "did a thing"}
    )
    await http.post(
        f"{API}/memories",
        json={
            "agent_id": "worker",
            "session_id": sid,
            "content": "chose B",
            "memory_type": "decision",
            "event_type": "decision",
        },
    )
    r = await http.get(f"{API}/sessions/{sid}/memories")
    assert r.json()["count"] == 2
    for body in (None, b"", b"{}"):
        r = await http.post(f"{API}/sessions/{sid}/context", content=body)
        ctx = r.json()
        assert r.status_code == 200, r.text
        assert ctx["session_id"] == sid
        assert ctx["memory_count"] == 2
        assert ctx["context"].startswith(f"## Session Context ({sid})\n\n")
        assert "### Recent Actions (1)" in ctx["context"]
        assert "### Decisions Made (1)" in ctx["context"]
    r = await http.post(
        f"{API}/sessions/{sid}/context", json={"include_types": ["decision"], "max_tokens": 500}
    )
    assert r.json()["memory_count"] == 1

    r = await http.patch(f"{API}/sessions/{sid}", json={"metadata": {"b": {"d": 2}, "a": None}})
    assert r.status_code == 200
    assert r.json()["metadata"] == {"b": {"c": 1, "d": 2}}
    r = await http.put(f"{API}/sessions/{sid}", json={"status": "closed"})
    closed = r.json()
    assert closed["status"] == "closed"
    assert closed["closed_at"].endswith("Z")
    assert closed["metadata"] == {"b": {"c": 1, "d": 2}}
    r = await http.put(f"{API}/sessions/{sid}", json={"status": "done"})
    assert r.status_code == 400
    assert r.json()["field"] == "status"
    r = await http.put(f"{API}/sessions/sess_nope", json={"status": "closed"})
    assert r.status_code == 404

    other = (await http.post(f"{API}/sessions", json={"agent_id": "someone-else"})).json()
    r = await http.get(f"{API}/sessions", params={"agent_id": "worker"})
    assert [s["id"] for s in r.json()["sessions"]] == [sid]
    r = await http.get(f"{API}/sessions", params={"status": "active"})
    assert [s["id"] for s in r.json()["sessions"]] == [other["id"]]
    r = await http.get(f"{API}/sessions", params={"limit": 1})
    assert r.json()["count"] == 1
    assert r.json()["has_more"] is True
    assert (await http.get(f"{API}/sessions/{sid}")).json()["status"] == "closed"

    r = await http.delete(f"{API}/sessions/{sid}", params={"delete_memories": "true"})
    assert r.status_code == 204
    assert (await http.get(f"{API}/sessions/{sid}")).status_code == 404
    assert (await http.get(f"{API}/memories", params={"session_id": sid})).json()["count"] == 0
    r = await http.post(f"{API}/sessions/{sid}/context", json={})
    assert r.status_code == 404


async def test_bulk_delete_export_import(
    http: httpx.AsyncClient, live: LiveServer, tmp_path: Path
) -> None:
    await http.post(f"{API}/agents", json={"name": "exp"})
    items = [
        {"agent_id": "exp", "content": f"item {i}", "tags": ["keep" if i % 2 else "drop"]}
        for i in range(6)
    ]
    await http.post(f"{API}/memories", json={"memories": items})

    r = await http.get(f"{API}/export")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [line["kind"] for line in lines].count("memory") == 6
    assert lines[0]["kind"] == "agent"
    assert lines[-1]["kind"] == "trailer"
    r = await http.get(f"{API}/export", params={"tags": "keep"})
    assert len(r.text.splitlines()) == 3 + 1
    r = await http.get(f"{API}/export", params={"since": "yesterday-ish"})
    assert r.status_code == 400
    assert r.json()["field"] == "since"

    r = await http.post(f"{API}/memories/delete", json={"tags": ["drop"]})
    assert r.status_code == 200
    assert r.json() == {"deleted": 3}
    r = await http.post(f"{API}/memories/delete", json={})
    assert r.status_code == 400
    assert r.json()["field"] == "filter"

    # import into a fresh server (another org would need another DB): re-import is idempotent
    full = (await http.get(f"{API}/export")).content
    r = await http.post(
        f"{API}/import", content=full, headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 200
    assert r.json() == {
        "imported": 0,
        "skipped": 3,
        "agents": 0,
        "sessions": 0,
        "expired": 0,
        "unlinked": 0,
    }

    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    key = await bootstrap_admin_key(other_db)
    with serve_in_thread(make_config(other_db)) as other:
        async with httpx.AsyncClient(base_url=other.url, headers={"x-api-key": key}) as h2:
            r = await h2.post(f"{API}/import", content=full)
            assert r.json() == {
                "imported": 3,
                "skipped": 0,
                "agents": 1,
                "sessions": 0,
                "expired": 0,
                "unlinked": 0,
            }
            assert (await h2.get(f"{API}/export")).content == full
            r = await h2.post(f"{API}/import", content=b'{"kind":"memory"}\nnot json\n')
            assert r.status_code == 400
            assert "line 1" in r.json()["error"]
            # A truncated export is refused whole; ?no_trailer=true accepts an old file.
            await h2.post(f"{API}/org/purge", json={})
            cut = full[: full.rindex(b'{"kind":"trailer"')]
            r = await h2.post(f"{API}/import", content=cut)
            assert r.status_code == 400
            assert r.json()["field"] == "trailer"
            assert "no_trailer=true" in r.json()["error"]
            assert (await h2.get(f"{API}/memories")).json()["count"] == 0
            r = await h2.post(f"{API}/import", params={"no_trailer": "true"}, content=cut)
            assert r.json() == {
                "imported": 3,
                "skipped": 0,
                "agents": 1,
                "sessions": 0,
                "expired": 0,
                "unlinked": 0,
            }
            r = await h2.post(f"{API}/import", params={"no_trailer": "maybe"}, content=cut)
            assert r.status_code == 400
            assert r.json()["field"] == "no_trailer"


async def test_auth_and_permissions(http: httpx.AsyncClient, live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as anon:
        r = await anon.get(f"{API}/memories")
        assert r.status_code == 401
        assert r.json() == {"error": "missing API key"}
        r = await anon.get(f"{API}/memories", headers={"x-api-key": "mtk_nope"})
        assert r.status_code == 401
        assert r.json() == {"error": "invalid API key"}
        admin_key = http.headers["x-api-key"]
        r = await anon.get(f"{API}/memories", headers={"Authorization": f"Bearer {admin_key}"})
        assert r.status_code == 200
        r = await anon.get(f"{API}/memories", headers={"Authorization": admin_key})
        assert r.status_code == 200  # the original accepts the bare key too

    r = await http.post(
        f"{API}/admin/keys",
        json={"org_id": "org_default", "name": "reader", "permissions": ["read"]},
    )
    assert r.status_code == 201
    created = r.json()
    reader = created["api_key"]
    assert created["key"]["permissions"] == ["read"]
    assert reader.startswith("mtk_")
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": reader}) as h:
        assert (await h.get(f"{API}/memories")).status_code == 200
        r = await h.post(f"{API}/memories", json={"agent_id": "a", "content": "x"})
        assert r.status_code == 403
        assert "write" in r.json()["error"]
        assert (await h.get(f"{API}/admin/orgs")).status_code == 403
        r = await h.post(f"{API}/memories/pop", json={"agent_id": "a"})
        assert r.status_code == 403  # a pop deletes: write, as a delete
        assert "write" in r.json()["error"]
        assert (await h.get(f"{API}/me")).json()["permissions"] == ["read"]

        r = await http.post(f"{API}/admin/keys/{created['key']['id']}/rotate")
        assert r.status_code == 200
        rotated = r.json()["api_key"]
        assert (await h.get(f"{API}/memories")).status_code == 401  # old secret is dead at once
        r = await h.get(f"{API}/memories", headers={"x-api-key": rotated})
        assert r.status_code == 200

        assert (await http.delete(f"{API}/admin/keys/{created['key']['id']}")).status_code == 204
        r = await h.get(f"{API}/memories", headers={"x-api-key": rotated})
        assert r.status_code == 401
        assert (await http.delete(f"{API}/admin/keys/{created['key']['id']}")).status_code == 404


async def test_admin_orgs_and_isolation(http: httpx.AsyncClient, live: LiveServer) -> None:
    r = await http.post(f"{API}/admin/orgs", json={"name": "Acme"})
    assert r.status_code == 201
    org = r.json()
    assert org["id"].startswith("org_")
    r = await http.get(f"{API}/admin/orgs")
    assert {o["id"] for o in r.json()["orgs"]} == {"org_default", org["id"]}
    key = (
        await http.post(f"{API}/admin/keys", json={"org_id": org["id"], "name": "acme-rw"})
    ).json()["api_key"]
    r = await http.get(f"{API}/admin/keys", params={"org_id": org["id"]})
    assert [k["name"] for k in r.json()["keys"]] == ["acme-rw"]

    mine = (
        await http.post(f"{API}/memories", json={"agent_id": "a", "content": "default org"})
    ).json()
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key}) as acme:
        theirs = (
            await acme.post(f"{API}/memories", json={"agent_id": "a", "content": "acme org"})
        ).json()
        assert theirs["org_id"] == org["id"]
        r = await acme.get(f"{API}/memories")
        assert [m["id"] for m in r.json()["memories"]] == [theirs["id"]]
        assert (await acme.get(f"{API}/memories/{mine['id']}")).status_code == 404
        assert (await acme.delete(f"{API}/memories/{mine['id']}")).status_code == 404
        r = await acme.post(f"{API}/search", json={"query": "default"})
        assert r.json()["count"] == 0

        assert (await http.delete(f"{API}/admin/orgs/{org['id']}")).status_code == 204
        assert (await acme.get(f"{API}/memories")).status_code == 401
    assert (await http.get(f"{API}/memories/{mine['id']}")).status_code == 200
    assert (await http.delete(f"{API}/admin/orgs/{org['id']}")).status_code == 404


async def test_auth_disabled_acts_as_default_org(tmp_path: Path) -> None:
    from dataclasses import replace

    db_url = f"sqlite:///{tmp_path / 'open.db'}"
    cfg = make_config(db_url)
    cfg = replace(cfg, auth=replace(cfg.auth, enabled=False))
    with serve_in_thread(cfg) as live:
        async with httpx.AsyncClient(base_url=live.url) as h:
            r = await h.post(f"{API}/memories", json={"agent_id": "a", "content": "open"})
            assert r.status_code == 201
            assert r.json()["org_id"] == "org_default"
            r = await h.post(f"{API}/agents", json={"name": "n"})
            assert r.status_code == 201
            r = await h.post(f"{API}/sessions", json={"agent_id": "n"})
            assert r.status_code == 201
        assert live.state.bootstrap_key is None
    engine = await aconnect(db_url)
    try:
        assert (await engine.list_memories()).count == 1  # committed on shutdown
    finally:
        await engine.close()


async def test_server_bootstraps_admin_key_on_first_run(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with serve_in_thread(make_config(db_url)) as live:
        key = live.state.bootstrap_key
        assert key is not None
        async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key}) as h:
            assert (await h.get(f"{API}/me")).json()["permissions"] == ["read", "write", "admin"]
    with serve_in_thread(make_config(db_url)) as again:
        assert again.state.bootstrap_key is None


async def test_cors(tmp_path: Path, admin_key: str, db_url: str) -> None:
    with serve_in_thread(make_config(db_url, cors_origins=("https://app.example",))) as live:
        async with httpx.AsyncClient(base_url=live.url) as h:
            r = await h.options(
                f"{API}/memories",
                headers={
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "x-api-key, content-type",
                },
            )
            assert r.status_code == 204
            assert r.headers["access-control-allow-origin"] == "https://app.example"
            assert "POST" in r.headers["access-control-allow-methods"]
            assert r.headers["access-control-allow-headers"] == "x-api-key, content-type"
            r = await h.get(
                f"{API}/memories", headers={"Origin": "https://app.example", "x-api-key": admin_key}
            )
            assert r.headers["access-control-allow-origin"] == "https://app.example"
            r = await h.get("/health", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in r.headers
    # off by default
    with serve_in_thread(make_config(db_url)) as live:
        async with httpx.AsyncClient(base_url=live.url) as h:
            r = await h.get("/health", headers={"Origin": "https://app.example"})
            assert "access-control-allow-origin" not in r.headers


async def test_docs_page_is_self_contained(http: httpx.AsyncClient) -> None:
    r = await http.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/api/v1/memories" in r.text
    assert "<table>" in r.text
    assert "http://" not in r.text
    assert "https://" not in r.text


@pytest.mark.parametrize("path", ["/api/v1/agents/", "/api/v1/memories/"])
async def test_trailing_slash_tolerated(http: httpx.AsyncClient, path: str) -> None:
    r = await http.get(path)
    assert r.status_code == 200


async def test_json_access_log(http: httpx.AsyncClient) -> None:
    import io
    import logging

    from memtrace_server.logs import ACCESS_LOGGER, JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        r = await http.get(f"{API}/agents", headers={"X-Request-ID": "log-me-1"})
        assert r.status_code == 200
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    entry = next(e for e in lines if e.get("request_id") == "log-me-1")
    assert entry["method"] == "GET"
    assert entry["route"] == "/api/v1/agents"
    assert entry["status"] == 200
    assert entry["org_id"] == "org_default"
    assert entry["duration_ms"] >= 0
    assert entry["level"] == "info"


async def test_health_and_ready_are_filled_from_the_store_report(
    http: httpx.AsyncClient, live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memtrace_core.stores.base import StoreHealth

    engine = live.state.engine
    assert engine is not None
    ready = (await http.get("/ready")).json()
    assert ready["status"] == "ready"
    assert ready["store"]["ok"] is True
    assert (await http.get("/health")).json()["arc"] == {}

    async def arc_store() -> StoreHealth:
        return StoreHealth(True, 1.5, arc={"org_default": "ok"})

    monkeypatch.setattr(engine.store, "health", arc_store)
    assert (await http.get("/ready")).json()["store"]["latency_ms"] == 1.5
    # /health asks nothing of the store: it shows the arc of the latest report
    assert (await http.get("/health")).json()["arc"] == {"org_default": "ok"}

    async def down() -> StoreHealth:
        return StoreHealth(False, 0.1, detail="disk gone")

    monkeypatch.setattr(engine.store, "health", down)
    assert (await http.get("/health")).status_code == 200  # liveness does not ask the store
    response = await http.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "reason": "store_unreachable"}
    assert "disk gone" not in response.text


async def test_pop_route_body_and_answer(http: httpx.AsyncClient) -> None:
    """``POST /memories/pop``: the delete filter in, ``{"memory": …}`` out (null, not an
    empty object, when nothing matches); a payload comes back verbatim."""
    r = await http.post(f"{API}/memories/pop", json={"agent_id": "popper"})
    assert r.status_code == 200
    assert r.json() == {"memory": None}
    payload = {"role": "user", "content": [{"type": "input_text", "text": "hi"}], "x": None}
    r = await http.post(
        f"{API}/memories",
        json={"agent_id": "popper", "content": "turn", "payload": payload, "dedup": False},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["payload"] == payload
    assert "dedup_key" not in created  # none stored
    r = await http.post(f"{API}/memories/pop", json={"agent_id": "popper"})
    assert r.status_code == 200
    assert r.json()["memory"]["id"] == created["id"]
    assert r.json()["memory"]["payload"] == payload
    assert (await http.get(f"{API}/memories/{created['id']}")).status_code == 404
    r = await http.post(f"{API}/memories/pop", json={})
    assert r.status_code == 400
    assert r.json()["field"] == "filter"
    r = await http.post(
        f"{API}/memories", json={"agent_id": "a", "content": "x", "dedup": False, "dedup_key": "k"}
    )
    assert r.status_code == 400
    assert r.json()["field"] == "dedup_key"
