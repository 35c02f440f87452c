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
        if path == "/ui" or path.startswith("/ui/"):
            continue  # the explorer's static files are not API operations (docs/ui.md)
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


async def test_the_document_states_what_the_engine_enforces(http: httpx.AsyncClient) -> None:
    """Patterns, enums and ranges of the validation are in the schema (so that generated
    clients and fuzzers send what the server accepts), and each value the document claims
    valid or invalid is treated so by the server."""
    from memtrace_core.models import ID_PATTERN, TAG_PATTERN

    spec = (await http.get("/openapi.json")).json()
    create = spec["components"]["schemas"]["MemoryCreate"]["properties"]
    assert create["agent_id"]["pattern"] == ID_PATTERN.pattern
    assert create["tags"]["items"]["pattern"] == TAG_PATTERN.pattern
    assert create["tags"]["maxItems"] == 32
    assert create["importance"]["anyOf"][0]["maximum"] == 1
    search = spec["components"]["schemas"]["SearchQuery"]["properties"]
    assert search["order"]["enum"] == ["asc", "desc"]
    assert search["limit"]["minimum"] == 1
    params = {p["name"]: p for p in spec["paths"]["/api/v1/memories"]["get"]["parameters"]}
    assert params["agent_id"]["schema"]["pattern"] == ID_PATTERN.pattern
    assert params["offset"]["schema"]["minimum"] == 0
    memory_path = spec["paths"]["/api/v1/memories/{memory_id}"]["get"]["parameters"][0]
    pattern = memory_path["schema"]["pattern"]
    created = await http.post("/api/v1/memories", json={"agent_id": "a", "content": "x"})
    assert re.fullmatch(pattern, created.json()["id"])  # what the server makes, the doc allows
    assert (await http.get("/api/v1/memories/mem_short")).status_code == 400  # and not this
    assert not re.fullmatch(pattern, "mem_short")


async def test_creates_link_to_the_operations_that_take_their_ids(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    operation_ids = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    links = spec["paths"]["/api/v1/sessions"]["post"]["responses"]["201"]["links"]
    assert links["getSessionContext"] == {
        "operationId": "getSessionContext",
        "parameters": {"session_id": "$response.body#/id"},
    }
    for path, method, code in (
        ("/api/v1/memories", "post", "201"),
        ("/api/v1/agents", "post", "201"),
        ("/api/v1/admin/keys", "post", "201"),
    ):
        found = spec["paths"][path][method]["responses"][code]["links"]
        assert found
        assert {link["operationId"] for link in found.values()} <= operation_ids
