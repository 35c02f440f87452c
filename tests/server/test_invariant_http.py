"""The invariant of issue 7 over HTTP, property-based, against a real server on a socket: a
write the API accepts (201) is readable by every read route and deletable; a write it refuses
is a 4xx with a JSON ``{"error"}`` and stores nothing; no route ever answers 5xx. Bodies are
sent both with lone surrogates escaped (``"\\ud800"``) and as the raw bytes (ED A0 80) a
careless client produces. Inputs: tests/invariants.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from invariants import agent_inputs, memory_inputs, session_inputs, substring_needle
from memtrace_server.testing import LiveServer

API = "/api/v1"
EVER = "0001-01-01T00:00:00Z"


@pytest.fixture
def client(live: LiveServer, admin_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, headers={"x-api-key": admin_key}, timeout=30) as c:
        yield c


def body(value: Any, raw: bool) -> bytes:
    """JSON with non-ASCII escaped (surrogates as ``\\udXXX``) or sent as UTF-8, where a lone
    surrogate becomes the bytes a lenient encoder writes (surrogatepass)."""
    if raw:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    if "content" in kwargs:
        kwargs.setdefault("headers", {})["content-type"] = "application/json"
    response = client.request(method, path, **kwargs)
    assert response.status_code < 500, (method, path, response.status_code, response.text)
    if response.status_code >= 400:
        assert "error" in response.json(), response.text
    return response


def ok(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = call(client, method, path, **kwargs)
    assert response.status_code < 300, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


def memory_count(client: httpx.Client) -> int:
    return int(ok(client, "GET", f"{API}/memories", params={"limit": 1000, "since": EVER})["count"])


def check_readable_everywhere(client: httpx.Client, memory: dict[str, Any]) -> None:
    mid, agent = memory["id"], memory["agent_id"]
    assert ok(client, "GET", f"{API}/memories/{mid}") == memory
    listed = ok(client, "GET", f"{API}/memories", params={"agent_id": agent, "limit": 1000})
    assert mid in {m["id"] for m in listed["memories"]}  # each example leaves the org empty
    ok(client, "GET", f"{API}/memories", params={"limit": 1000, "since": EVER, "order": "asc"})
    needle = substring_needle(memory["content"])
    if needle is not None:
        found = ok(
            client,
            "POST",
            f"{API}/search",
            content=body({"content_contains": needle, "limit": 1000}, raw=False),
        )
        assert mid in {m["id"] for m in found["results"]}
    ok(
        client,
        "POST",
        f"{API}/search",
        content=body({"query": memory["content"][:200] or "x", "limit": 20}, raw=False),
    )
    ok(client, "GET", f"{API}/agents/{agent}/stats")
    ok(client, "GET", f"{API}/agents/{agent}/memories", params={"since": EVER})
    for fmt in ("markdown", "xml", "jsonl"):
        options = body({"format": fmt, "since": EVER}, raw=False)
        ok(client, "POST", f"{API}/agents/{agent}/context", content=options)
        if memory.get("session_id"):
            ok(client, "POST", f"{API}/sessions/{memory['session_id']}/context", content=options)
    exported = call(client, "GET", f"{API}/export")
    assert exported.status_code == 200
    assert f'"id":"{mid}"' in exported.text
    assert call(client, "DELETE", f"{API}/memories/{mid}").status_code == 204
    assert call(client, "GET", f"{API}/memories/{mid}").status_code == 404


@given(
    items=st.lists(memory_inputs(), min_size=1, max_size=3),
    raw=st.booleans(),
    batch=st.booleans(),
)
def test_what_the_api_accepts_it_can_read_back(
    client: httpx.Client, items: list[dict[str, Any]], raw: bool, batch: bool
) -> None:
    before = memory_count(client)
    payload: Any = {"memories": items} if batch or len(items) > 1 else items[0]
    response = call(client, "POST", f"{API}/memories", content=body(payload, raw))
    if response.status_code >= 400:
        event(f"refused {response.status_code}: {response.json().get('field')}")
        assert response.status_code in (400, 409), response.text
        assert memory_count(client) == before
        return
    assert response.status_code == 201, response.text
    event("accepted")
    data = response.json()
    stored = data.get("memories", [data])
    for memory in stored:
        check_readable_everywhere(client, memory)
    assert memory_count(client) == before


@given(agent=agent_inputs(), session=session_inputs(), raw=st.booleans())
def test_accepted_agents_and_sessions_keep_the_org_readable(
    client: httpx.Client, agent: dict[str, Any], session: dict[str, Any], raw: bool
) -> None:
    created = call(client, "POST", f"{API}/agents", content=body(agent, raw))
    if created.status_code == 201:
        agent_id = created.json()["id"]
        assert ok(client, "GET", f"{API}/agents/{agent_id}") == created.json()
    else:
        assert created.status_code in (400, 409), created.text
    opened = call(client, "POST", f"{API}/sessions", content=body(session, raw))
    if opened.status_code == 201:
        session_id = opened.json()["id"]
        assert ok(client, "GET", f"{API}/sessions/{session_id}") == opened.json()
        ok(client, "POST", f"{API}/sessions/{session_id}/context", content=b"{}")
    else:
        assert opened.status_code == 400, opened.text
    agents = ok(client, "GET", f"{API}/agents")
    sessions = ok(client, "GET", f"{API}/sessions", params={"limit": 1000})
    exported = call(client, "GET", f"{API}/export")
    assert exported.status_code == 200
    assert exported.text.count('"kind":"agent"') == agents["count"]
    for listed in agents["agents"]:
        assert call(client, "DELETE", f"{API}/agents/{listed['id']}").status_code == 204
    for listed in sessions["sessions"]:
        assert call(client, "DELETE", f"{API}/sessions/{listed['id']}").status_code == 204
