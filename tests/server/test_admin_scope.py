"""Admin scoping: an admin key of the bootstrap org administers the service; an admin key of
any other org administers only its own org's keys."""

from __future__ import annotations

import httpx

from memtrace_server.testing import LiveServer


async def _org_with_admin(http: httpx.AsyncClient, name: str) -> tuple[str, str]:
    org = (await http.post("/api/v1/admin/orgs", json={"name": name})).json()
    created = await http.post(
        "/api/v1/admin/keys",
        json={"org_id": org["id"], "name": "boss", "permissions": ["admin"]},
    )
    assert created.status_code == 201, created.text
    return org["id"], created.json()["api_key"]


async def test_org_admin_is_confined_to_its_org(live: LiveServer, http: httpx.AsyncClient) -> None:
    org_a, key_a = await _org_with_admin(http, "A")
    org_b, key_b = await _org_with_admin(http, "B")
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key_a}) as a:
        # sees only its own org, cannot create or delete orgs
        listed = (await a.get("/api/v1/admin/orgs")).json()
        assert [o["id"] for o in listed["orgs"]] == [org_a]
        assert (await a.post("/api/v1/admin/orgs", json={"name": "C"})).status_code == 403
        assert (await a.delete(f"/api/v1/admin/orgs/{org_b}")).status_code == 403
        # manages keys of its own org (org_id defaults to its own) ...
        own = await a.post("/api/v1/admin/keys", json={"name": "reader", "permissions": ["read"]})
        assert own.status_code == 201, own.text
        assert own.json()["key"]["org_id"] == org_a
        keys = (await a.get("/api/v1/admin/keys")).json()["keys"]
        assert {k["org_id"] for k in keys} == {org_a}
        # ... and nothing of another org's
        other = await a.post("/api/v1/admin/keys", json={"org_id": org_b, "name": "x"})
        assert other.status_code == 403
        assert (await a.get("/api/v1/admin/keys", params={"org_id": org_b})).status_code == 403
        b_keys = (await http.get("/api/v1/admin/keys", params={"org_id": org_b})).json()["keys"]
        b_key_id = b_keys[0]["id"]
        # another org's key id answers exactly like an unknown one (no existence oracle)
        for key_id in (b_key_id, "key_doesnotexist"):
            revoked = await a.delete(f"/api/v1/admin/keys/{key_id}")
            rotated = await a.post(f"/api/v1/admin/keys/{key_id}/rotate")
            assert revoked.status_code == rotated.status_code == 404, (revoked.text, rotated.text)
            assert revoked.json() == rotated.json() == {"error": f"API key '{key_id}' not found"}
    # B's admin key still works: nothing was revoked or rotated by A
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key_b}) as b:
        assert (await b.get("/api/v1/admin/keys")).status_code == 200


async def test_service_admin_manages_every_org(live: LiveServer, http: httpx.AsyncClient) -> None:
    org_a, _ = await _org_with_admin(http, "A")
    listed = {o["id"] for o in (await http.get("/api/v1/admin/orgs")).json()["orgs"]}
    assert {"org_default", org_a} <= listed
    keys = (await http.get("/api/v1/admin/keys")).json()["keys"]
    assert {"org_default", org_a} <= {k["org_id"] for k in keys}
    assert (await http.delete(f"/api/v1/admin/orgs/{org_a}")).status_code == 204


async def test_bootstrap_org_cannot_be_deleted(live: LiveServer, http: httpx.AsyncClient) -> None:
    resp = await http.delete("/api/v1/admin/orgs/org_default")
    assert resp.status_code == 409
    assert "cannot be deleted" in resp.json()["error"]
    # the service admin key still works
    assert (await http.get("/api/v1/admin/orgs")).status_code == 200


async def test_key_ids_are_no_oracle_for_non_admin_keys(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    """A key without ``admin`` gets the same 403 for an existing and an unknown key id."""
    created = await http.post("/api/v1/admin/keys", json={"name": "rw"})
    assert created.status_code == 201, created.text
    keys = (await http.get("/api/v1/admin/keys")).json()["keys"]
    existing = next(k["id"] for k in keys if k["name"] != "rw")
    async with httpx.AsyncClient(
        base_url=live.url, headers={"x-api-key": created.json()["api_key"]}
    ) as rw:
        answers = []
        for key_id in (existing, "key_doesnotexist"):
            for resp in (
                await rw.delete(f"/api/v1/admin/keys/{key_id}"),
                await rw.post(f"/api/v1/admin/keys/{key_id}/rotate"),
            ):
                assert resp.status_code == 403, resp.text
                answers.append(resp.json())
        assert all(answer == answers[0] for answer in answers)
    # the admin key was neither revoked nor rotated
    assert (await http.get("/api/v1/admin/keys")).status_code == 200


async def test_a_null_org_id_means_the_callers_org(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    """The default org of a new key is an auth rule (Principal.key_org): absent and null both
    mean the caller's org; a non-string is a 400 naming the field."""
    org_a, key_a = await _org_with_admin(http, "A")
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key_a}) as a:
        made = await a.post("/api/v1/admin/keys", json={"org_id": None, "name": "n1"})
        assert made.status_code == 201, made.text
        assert made.json()["key"]["org_id"] == org_a
        bad = await a.post("/api/v1/admin/keys", json={"org_id": 7, "name": "n2"})
        assert bad.status_code == 400
        assert bad.json()["field"] == "org_id"
