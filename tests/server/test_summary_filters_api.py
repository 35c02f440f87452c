"""``POST /api/v1/memories/summary`` and the new filters (``tags_any``, ``ids``, ``keys``,
metadata ``$in`` / ``$nin``, ``metadata`` on deletes) over a real socket, with the raw HTTP
and with the HTTP client (``connect("http://…")``)."""

from __future__ import annotations

import httpx
import pytest

from memtrace_core import MemorySummary, ValidationError, aconnect, connect
from memtrace_server.testing import LiveServer

API = "/api/v1"


async def _seed(http: httpx.AsyncClient) -> list[dict[str, object]]:
    items = [
        {
            "agent_id": "crew",
            "content": "one",
            "tags": ["x", "y"],
            "namespace": ["scope", "a"],
            "key": "k1",
            "metadata": {"aud": "u7"},
            "time": "2026-01-01T00:00:00Z",
        },
        {
            "agent_id": "crew",
            "content": "two",
            "tags": ["y"],
            "namespace": ["scope", "b"],
            "key": "k2",
            "time": "2026-02-01T00:00:00Z",
        },
        {
            "agent_id": "crew",
            "content": "three",
            "namespace": ["elsewhere"],
            "metadata": {"aud": "u8"},
            "time": "2026-03-01T00:00:00Z",
        },
    ]
    r = await http.post(f"{API}/memories", json={"memories": items})
    assert r.status_code == 201, r.text
    return r.json()["memories"]


async def test_summary_route_body_and_answer(http: httpx.AsyncClient) -> None:
    r = await http.post(f"{API}/memories/summary")  # no body: the whole org
    assert r.status_code == 200, r.text
    # nulls are left out, as in every answer of the server
    assert r.json() == {"count": 0, "tags": {}, "tags_truncated": False}
    await _seed(http)
    r = await http.post(f"{API}/memories/summary", json={"namespace_prefix": ["scope"]})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert body["oldest"].startswith("2026-01-01T00:00:00")
    assert body["newest"].startswith("2026-02-01T00:00:00")
    assert body["tags"] == {"y": 2, "x": 1}
    assert body["tags_truncated"] is False
    r = await http.post(f"{API}/memories/summary", json={"tag_limit": 1})
    assert (r.json()["tags"], r.json()["tags_truncated"]) == ({"y": 2}, True)
    r = await http.post(
        f"{API}/memories/summary", json={"metadata": {"aud": {"$in": [None, "u7"]}}}
    )
    assert r.json()["count"] == 2  # "one" (u7) and "two" (no audience)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tag_limit": 0}, "tag_limit"),
        ({"tag_limit": 1001}, "tag_limit"),
        ({"tag_limit": "5"}, "tag_limit"),
        ({"tag_limit": True}, "tag_limit"),
        ({"query": "deploy"}, "query"),
        ({"limit": 5}, "limit"),
        ({"order": "asc"}, "order"),
        ({"tags_any": []}, "tags_any"),
        ({"tags_any": ["bad tag"]}, "tags_any"),
        ({"ids": ["nope"]}, "ids"),
        ({"keys": [""]}, "keys"),
        ({"metadata": {"a": {"$in": []}}}, "metadata"),
        ({"metadata": {"a": {"$nin": [{"b": 1}]}}}, "metadata"),
        ({"metadata": {"a": {"$in": list(range(65))}}}, "metadata"),
    ],
)
async def test_summary_bad_bodies_are_400(
    http: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    r = await http.post(f"{API}/memories/summary", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"].startswith(field)
    assert r.json()["error"]


async def test_summary_not_json_is_400(http: httpx.AsyncClient) -> None:
    r = await http.post(
        f"{API}/memories/summary", content=b"[1,2]", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    r = await http.post(
        f"{API}/memories/summary", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400


async def test_summary_auth_read_permission(http: httpx.AsyncClient, live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as anon:
        r = await anon.post(f"{API}/memories/summary", json={})
        assert r.status_code == 401
        r = await anon.post(f"{API}/memories/summary", json={}, headers={"x-api-key": "mtk_nope"})
        assert r.status_code == 401
    r = await http.post(
        f"{API}/admin/keys",
        json={"org_id": "org_default", "name": "reader", "permissions": ["read"]},
    )
    reader = r.json()["api_key"]
    r = await http.post(
        f"{API}/admin/keys",
        json={"org_id": "org_default", "name": "writer", "permissions": ["write"]},
    )
    writer = r.json()["api_key"]
    await _seed(http)
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": reader}) as h:
        r = await h.post(f"{API}/memories/summary", json={})
        assert r.status_code == 200  # a summary reads
        assert r.json()["count"] == 3
        r = await h.post(f"{API}/memories/delete", json={"metadata": {"aud": "u7"}})
        assert r.status_code == 403
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": writer}) as h:
        r = await h.post(f"{API}/memories/summary", json={})
        assert r.status_code == 403
        assert "read" in r.json()["error"]


async def test_openapi_lists_the_summary_route_and_the_new_fields(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    op = spec["paths"]["/api/v1/memories/summary"]["post"]
    assert op["operationId"] == "summarizeMemories"
    schemas = spec["components"]["schemas"]
    summary = schemas["MemorySummary"]["properties"]
    assert set(summary) == {"count", "oldest", "newest", "tags", "tags_truncated"}
    query = schemas["SummaryQuery"]["properties"]
    assert {"tag_limit", "tags_any", "ids", "keys", "metadata", "namespace_prefix"} <= set(query)
    assert not {"query", "limit", "offset", "order"} & set(query)
    assert query["tag_limit"]["maximum"] == 1000
    for name in ("SearchQuery", "DeleteFilter"):
        props = schemas[name]["properties"]
        assert {"tags_any", "ids", "keys", "metadata"} <= set(props), name
    assert "$in" in schemas["SearchQuery"]["properties"]["metadata"]["description"]
    listing = spec["paths"]["/api/v1/memories"]["get"]["parameters"]
    assert "tags_any" in {p["name"] for p in listing}


async def test_filters_over_rest(http: httpx.AsyncClient) -> None:
    made = await _seed(http)
    r = await http.post(f"{API}/search", json={"tags_any": ["x", "zzz"]})
    assert [m["content"] for m in r.json()["results"]] == ["one"]
    r = await http.post(
        f"{API}/search", json={"ids": [made[0]["id"], made[2]["id"]], "namespace_prefix": ["scope"]}
    )
    assert [m["content"] for m in r.json()["results"]] == ["one"]  # "three" is elsewhere
    r = await http.post(f"{API}/search", json={"ids": [made[0]["id"], made[2]["id"]]})
    assert [m["content"] for m in r.json()["results"]] == ["three", "one"]
    r = await http.post(f"{API}/search", json={"keys": ["k1", "k2"], "namespace_prefix": ["scope"]})
    assert sorted(m["content"] for m in r.json()["results"]) == ["one", "two"]
    r = await http.get(f"{API}/memories", params={"tags_any": "y", "tags": "x"})
    assert [m["content"] for m in r.json()["memories"]] == ["one"]
    r = await http.post(f"{API}/search", json={"metadata": {"aud": {"$nin": ["u7"]}}})
    assert sorted(m["content"] for m in r.json()["results"]) == ["three", "two"]
    r = await http.post(f"{API}/memories/pop", json={"metadata": {"aud": {"$in": ["u7", "u8"]}}})
    assert r.json()["memory"]["content"] == "three"
    r = await http.post(f"{API}/memories/delete", json={"tags_any": ["x"], "keys": ["k1"]})
    assert r.json() == {"deleted": 1}
    r = await http.post(f"{API}/memories/summary", json={})
    assert (r.json()["count"], r.json()["tags"]) == (1, {"y": 1})


async def test_http_client_async_and_blocking(live: LiveServer, admin_key: str) -> None:
    client = await aconnect(live.url, api_key=admin_key)
    try:
        await client.add_memory(agent_id="c", content="a", tags=["p"], metadata={"aud": None})
        await client.add_memory(agent_id="c", content="b", tags=["p", "q"])
        summary = await client.summarize_memories(tags_any=["q", "zz"])
        assert isinstance(summary, MemorySummary)
        assert (summary.count, summary.tags) == (1, {"p": 1, "q": 1})
        with pytest.raises(ValidationError) as info:
            await client.summarize_memories(tag_limit=0)
        assert info.value.field == "tag_limit"
    finally:
        await client.close()
    with connect(live.url, api_key=admin_key) as sync_client:
        whole = sync_client.summarize_memories({"agent_id": "c"}, tag_limit=1)
        assert (whole.count, whole.tags, whole.tags_truncated) == (2, {"p": 2}, True)
        assert sync_client.delete_memories(metadata={"aud": {"$in": [None]}}, tags_any=["q"]) == 1
