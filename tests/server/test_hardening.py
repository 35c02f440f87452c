"""Server hardening (issue 7): overflowing offsets, lone surrogates, content types, timeouts.

Every case is a clear 4xx JSON error over a real socket, never a 5xx or a plain-text page."""

from __future__ import annotations

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
    assert "10000" in body["error"], body


async def test_ranked_search_window_edge(http: httpx.AsyncClient) -> None:
    await _seed(http)
    ok = await http.post(f"{API}/search", json={"query": "deploy", "offset": 9000, "limit": 1000})
    assert ok.status_code == 200, ok.text
    assert ok.json()["results"] == []
    assert ok.json()["has_more"] is False
    r = await http.post(f"{API}/search", json={"query": "deploy", "offset": 9001, "limit": 1000})
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
