"""Inputs that never fail silently, over HTTP: a misspelt field in a JSON body is a 400 that
names it and the accepted fields, and nothing is written; query strings keep accepting the
options the original's clients send to routes that do not use them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from memtrace_core import PayloadTooLargeError, TransportError, aconnect

API = "/api/v1"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/memories", {"agent_id": "a", "content": "x", "sesion_id": "s1"}, "sesion_id"),
        ("/memories", {"memories": [{"agent_id": "a", "content": "x", "tag": ["t"]}]}, "tag"),
        ("/search", {"qurey": "canary"}, "qurey"),
        ("/memories/delete", {"agnt_id": "a"}, "agnt_id"),
        ("/memories/pop", {"agnt_id": "a"}, "agnt_id"),
        ("/memories", {"agent_id": "a", "content": "x", "dedupe": False}, "dedupe"),
        ("/agents", {"name": "n", "descripton": "d"}, "descripton"),
        ("/sessions", {"agent_id": "a", "meta": {}}, "meta"),
        ("/agents/a/context", {"max_token": 5}, "max_token"),
    ],
)
async def test_an_unknown_body_field_is_a_400_naming_it(
    http: httpx.AsyncClient, path: str, body: dict[str, object], field: str
) -> None:
    response = await http.post(API + path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["field"] == field
    assert f"unknown field '{field}'" in error["error"]
    assert "accepted: " in error["error"]
    listed = await http.get(API + "/memories")
    assert listed.json()["count"] == 0


async def test_query_strings_still_accept_options_a_route_does_not_use(
    http: httpx.AsyncClient,
) -> None:
    created = await http.post(API + "/memories", json={"agent_id": "a", "content": "x"})
    assert created.status_code == 201
    # memtrace-sdk 0.2.0 sends every ListOptions field to the agent/session memory routes
    for path in ("/memories", "/agents/a/memories", "/sessions/s1/memories"):
        response = await http.get(API + path, params={"unused_option": "1", "agent_id": "a"})
        assert response.status_code == 200, (path, response.text)
    assert (await http.get(API + "/agents/a/memories")).json()["count"] == 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/memories/pop", {"all_memories": "yes"}, "all_memories"),
        ("/memories/delete", {"all_memories": 1}, "all_memories"),
        ("/memories", {"agent_id": "a", "content": "x", "dedup": "no"}, "dedup"),
        ("/memories", {"agent_id": "a", "content": "x", "dedup": 0}, "dedup"),
    ],
)
async def test_flags_take_json_booleans_only(
    http: httpx.AsyncClient, path: str, body: dict[str, object], field: str
) -> None:
    """A destructive or dedup flag given as a string or a number is a 400, not a guess
    ("yes" once purged the org's newest memory)."""
    await http.post(API + "/memories", json={"agent_id": "a", "content": "kept"})
    response = await http.post(API + path, json=body)
    assert response.status_code == 400, response.text
    assert field in response.text
    listed = await http.get(API + "/memories")
    assert [m["content"] for m in listed.json()["memories"]] == ["kept"]


async def test_a_body_over_the_servers_limit_names_its_size(live: Any, admin_key: str) -> None:
    """The server refuses a body over max_body_bytes (4 MiB) and closes the connection; the
    client says how large the body was and why, and nothing is written."""
    client = await aconnect(live.url, api_key=admin_key)
    try:
        with pytest.raises((TransportError, PayloadTooLargeError)) as info:
            await client.add_memory(agent_id="a", content="x", payload="a" * (5 * 1024 * 1024))
        if isinstance(info.value, TransportError):
            assert "5,242,9" in str(info.value)
            assert "max_body_bytes" in str(info.value)
        assert (await client.list_memories()).count == 0
    finally:
        await client.close()
