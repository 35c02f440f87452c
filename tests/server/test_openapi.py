"""The OpenAPI document matches the registered Sanic routes exactly (both directions)."""

from __future__ import annotations

import re

import httpx

from memtrace_server.testing import LiveServer

_IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _registered(live: LiveServer) -> set[tuple[str, str]]:
    out = set()
    for route in live.app.router.routes:
        path = "/" + route.path if not route.path.startswith("/") else route.path
        path = re.sub(r"<([^:>]+)(:[^>]+)?>", r"{\1}", path)
        for method in route.methods:
            if method not in _IGNORED_METHODS:
                out.add((method, path))
    return out


async def test_every_route_documented_and_vice_versa(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    r = await http.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    registered = _registered(live)
    assert registered == documented
    assert ("GET", "/api/v1/memories/{memory_id}") in registered
    assert len(registered) > 30


async def test_spec_shape(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    refs = re.findall(r'"#/components/schemas/([^"]+)"', (await http.get("/openapi.json")).text)
    assert refs
    assert set(refs) <= set(schemas), set(refs) - set(schemas)
    op_ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))
    for item in spec["paths"].values():
        for op in item.values():
            assert "default" in op["responses"]
            if op.get("security") != []:
                assert "401" in op["responses"]
                assert "403" in op["responses"]
