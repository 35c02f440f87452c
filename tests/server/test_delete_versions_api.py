"""``all_versions`` on ``POST /api/v1/memories/delete`` over a real socket (raw HTTP and the
blocking HTTP client): a JSON boolean only, refused by pop and export, in the OpenAPI
document."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from memtrace_core import ValidationError, connect
from memtrace_server.testing import LiveServer

API = "/api/v1"


async def _chain(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for i, ns in enumerate((["crew", "a"], ["crew", "b"], ["crew", "b"])):
        body: dict[str, Any] = {"agent_id": "crew", "content": f"v{i}", "namespace": ns}
        if made:
            body["supersedes"] = made[-1]["id"]
        r = await http.post(f"{API}/memories", json=body)
        assert r.status_code == 201, r.text
        made.append(r.json())
    return made


async def _contents(http: httpx.AsyncClient) -> list[str]:
    r = await http.get(f"{API}/memories", params={"include_superseded": "true", "since": "1d"})
    return sorted(m["content"] for m in r.json()["memories"])


async def test_delete_route_takes_all_versions(http: httpx.AsyncClient) -> None:
    made = await _chain(http)
    r = await http.post(f"{API}/memories", json={"agent_id": "crew", "content": "other"})
    assert r.status_code == 201
    r = await http.post(
        f"{API}/memories/delete", json={"ids": [made[2]["id"]], "all_versions": True}
    )
    assert (r.status_code, r.json()) == (200, {"deleted": 3})
    assert await _contents(http) == ["other"]
    # without it the old version comes back (the default, and false)
    made = await _chain(http)
    r = await http.post(
        f"{API}/memories/delete", json={"ids": [made[2]["id"]], "all_versions": False}
    )
    assert r.json() == {"deleted": 1}
    r = await http.get(f"{API}/memories", params={"agent_id": "crew", "since": "1d"})
    assert sorted(m["content"] for m in r.json()["memories"]) == ["other", "v1"]


@pytest.mark.parametrize("bad", ["yes", "true", 1, 0, None, [True], {}])
async def test_all_versions_must_be_a_json_boolean(http: httpx.AsyncClient, bad: Any) -> None:
    made = await _chain(http)
    r = await http.post(
        f"{API}/memories/delete", json={"ids": [made[0]["id"]], "all_versions": bad}
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "all_versions"
    assert len(await _contents(http)) == 3


async def test_pop_and_export_refuse_all_versions(http: httpx.AsyncClient) -> None:
    await _chain(http)
    r = await http.post(f"{API}/memories/pop", json={"agent_id": "crew", "all_versions": True})
    assert r.status_code == 400
    assert r.json()["field"] == "all_versions"
    assert "all_versions applies to deletes" in r.json()["error"]
    r = await http.get(f"{API}/export", params={"agent_id": "crew", "all_versions": "true"})
    assert r.status_code == 400
    assert r.json()["field"] == "all_versions"
    assert len(await _contents(http)) == 3
    r = await http.post(f"{API}/memories/pop", json={"agent_id": "crew", "all_versions": False})
    assert r.json()["memory"]["content"] == "v2"


async def test_openapi_documents_all_versions(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    prop = spec["components"]["schemas"]["DeleteFilter"]["properties"]["all_versions"]
    assert prop["type"] == "boolean"
    assert prop["default"] is False
    assert "supersession chain" in prop["description"]


def test_blocking_client_passes_all_versions(live: LiveServer, admin_key: str) -> None:
    with connect(live.url, api_key=admin_key) as mt:
        v1 = mt.add_memory(agent_id="s", content="SSN 123", namespace=["s", "a"])
        v2 = mt.add_memory(agent_id="s", content="SSN 987", namespace=["s", "b"], supersedes=v1.id)
        assert mt.delete_memories(namespace=["s", "b"], all_versions=True) == 2
        assert mt.list_memories(agent_id="s", include_superseded=True).memories == []
        again = mt.add_memory(agent_id="s", content="x", namespace=["s", "a"])
        with pytest.raises(ValidationError) as info:
            mt.pop_memory(agent_id="s", all_versions=True)
        assert info.value.field == "all_versions"
        assert mt.get_memory(again.id).content == "x"
        assert v2.supersedes == v1.id
