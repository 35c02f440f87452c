"""Time over HTTP (docs/time.md): expiry, supersession, as_of and recorded-time filters,
retention routes (the key's org and the admin ones), the sweeper inside the server, and the
same through the HTTP client."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from memtrace_core import SupersededError, ValidationError, connect
from memtrace_server.config import SweepSection
from memtrace_server.testing import LiveServer, config_for, serve_in_thread

API = "/api/v1"


async def _write(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await http.post(f"{API}/memories", json={"agent_id": "bot", **body})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _ids(http: httpx.AsyncClient, path: str = "/memories", **params: str) -> list[str]:
    r = await http.get(f"{API}{path}", params=params)
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()["memories"]]


def _db(url: str) -> str:
    return url.removeprefix("sqlite:///")


async def test_an_expired_memory_is_gone_from_every_read_path(
    http: httpx.AsyncClient, db_url: str
) -> None:
    sess = (await http.post(f"{API}/sessions", json={"agent_id": "bot"})).json()["id"]
    keep = await _write(http, content="the sky is blue", session_id=sess)
    gone = await _write(http, content="the sky is green", session_id=sess, ttl=1)
    assert gone["expires_at"] is not None
    assert set(await _ids(http)) == {keep["id"], gone["id"]}
    await asyncio.sleep(1.2)
    assert await _ids(http) == [keep["id"]]
    assert (await http.get(f"{API}/memories/{gone['id']}")).status_code == 404
    found = (await http.post(f"{API}/search", json={"query": "sky"})).json()["results"]
    assert [m["id"] for m in found] == [keep["id"]]
    ctx = (await http.post(f"{API}/sessions/{sess}/context", json={})).json()
    assert ctx["memory_count"] == 1
    assert "green" not in ctx["context"]
    stats = (await http.get(f"{API}/agents/bot/stats")).json()
    assert stats["memory_count"] == 1
    export = (await http.get(f"{API}/export")).text
    assert keep["id"] in export
    assert gone["id"] not in export
    # the same content may be written again: an expired memory is no duplicate
    again = await _write(http, content="the sky is green", session_id=sess)
    assert again["id"] != gone["id"]
    # still in the table until the sweep (the next test shows the sweep)
    with sqlite3.connect(_db(db_url)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM memories WHERE id = ?", (gone["id"],)).fetchone()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ttl": 0}, "ttl"),
        ({"ttl": -5}, "ttl"),
        ({"ttl": "soon"}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"ttl": 60, "expires_at": "2099-01-01T00:00:00Z"}, "ttl"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "not a time"}, "expires_at"),
        ({"supersedes": "mem_nope"}, "supersedes"),
        ({"supersedes": "mem_01M87JES0EADQ5MDH4XND756J1"}, "supersedes"),
    ],
)
async def test_bad_time_fields_are_a_400_and_write_nothing(
    http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await http.post(f"{API}/memories", json={"agent_id": "bot", "content": "x", **body})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert await _ids(http) == []


async def test_supersession_over_http(http: httpx.AsyncClient) -> None:
    old = await _write(http, content="office is in Paris")
    new = await _write(http, content="office is in Lyon", supersedes=old["id"])
    assert new["supersedes"] == old["id"]
    assert await _ids(http) == [new["id"]]
    shown = await _ids(http, include_superseded="true")
    assert set(shown) == {old["id"], new["id"]}
    got = (await http.get(f"{API}/memories/{old['id']}")).json()
    assert got["superseded_by"] == new["id"]
    assert got["superseded_at"] == new["recorded_at"]
    # chains are linear: superseding the old version again names the current one
    r = await http.post(
        f"{API}/memories",
        json={"agent_id": "bot", "content": "office is in Nice", "supersedes": old["id"]},
    )
    assert r.status_code == 409
    assert r.json()["current_id"] == new["id"]
    assert r.json()["field"] == "supersedes"
    # as_of before the supersession: the old version is current again in the view
    as_of = old["recorded_at"]
    assert await _ids(http, as_of=as_of) == [old["id"]]
    view = (await http.get(f"{API}/memories/{old['id']}", params={"as_of": as_of})).json()
    assert view.get("superseded_by") is None
    assert (
        await http.get(f"{API}/memories/{new['id']}", params={"as_of": as_of})
    ).status_code == 404
    r = await http.post(f"{API}/search", json={"query": "office", "as_of": as_of})
    assert [m["id"] for m in r.json()["results"]] == [old["id"]]
    # deleting the current version makes the old one current again
    assert (await http.delete(f"{API}/memories/{new['id']}")).status_code == 204
    assert await _ids(http) == [old["id"]]
    assert "superseded_by" not in (await http.get(f"{API}/memories/{old['id']}")).json()


async def test_as_of_in_the_future_and_bad_recorded_windows_are_400(
    http: httpx.AsyncClient,
) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for params in ({"as_of": future}, {"as_of": "tomorrow"}):
        r = await http.get(f"{API}/memories", params=params)
        assert r.status_code == 400
        assert r.json()["field"] == "as_of"
    r = await http.post(f"{API}/search", json={"as_of": future})
    assert r.status_code == 400
    assert r.json()["field"] == "as_of"
    r = await http.get(f"{API}/memories", params={"recorded_since": "1h", "recorded_until": "2h"})
    assert r.status_code == 400
    assert r.json()["field"] == "recorded_since"


async def test_recorded_time_filters_differ_from_event_time(http: httpx.AsyncClient) -> None:
    backfill = await _write(http, content="happened last year", time="2025-01-01T00:00:00Z")
    fresh = await _write(http, content="happened now")
    assert set(await _ids(http, recorded_since="1h")) == {backfill["id"], fresh["id"]}
    assert await _ids(http, since="1h") == [fresh["id"]]
    assert await _ids(http, recorded_until="1h") == []
    r = await http.post(f"{API}/memories/delete", json={"recorded_since": "1h"})
    assert r.json() == {"deleted": 2}


async def _key(http: httpx.AsyncClient, name: str, *perms: str, org: str | None = None) -> str:
    body: dict[str, Any] = {"name": name, "permissions": list(perms)}
    if org:
        body["org_id"] = org
    r = await http.post(f"{API}/admin/keys", json=body)
    assert r.status_code == 201, r.text
    key: str = r.json()["api_key"]
    return key


async def test_retention_routes_of_the_keys_org(live: LiveServer, http: httpx.AsyncClient) -> None:
    reader = await _key(http, "reader", "read", "write")
    policy = {"max_age": "30d", "rules": [{"memory_types": ["session"], "max_age": "7d"}]}
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": reader}) as r_http:
        info = (await r_http.get(f"{API}/retention")).json()
        assert info["source"] == "none"
        assert info["policy"]["rules"] == []
        assert (await r_http.put(f"{API}/retention", json=policy)).status_code == 403
        assert (await r_http.post(f"{API}/retention/apply")).status_code == 403
    r = await http.put(f"{API}/retention", json=policy)
    assert r.status_code == 200
    assert r.json()["source"] == "org"
    assert (await http.get(f"{API}/retention")).json()["policy"]["max_age"] == "30d"
    # a write already older than its age is refused; a younger one is fine
    r = await http.post(
        f"{API}/memories",
        json={"agent_id": "bot", "content": "x", "memory_type": "session", "time": "8d"},
    )
    assert r.status_code == 400
    assert r.json()["field"] == "time"
    assert "7d" in r.json()["error"]
    await _write(http, content="young", memory_type="session", time="6d")
    assert (await http.post(f"{API}/retention/apply", params={"dry_run": "true"})).json() == {
        "org_id": "org_default",
        "dry_run": True,
        "deleted": 0,
    }
    for bad in (
        {"max_age": "soon"},
        {"rules": [{"max_age": "1d"}]},
        {"rules": [{"memory_types": ["nope"], "max_age": "1d"}]},
        {"max_age": "1d", "extra": 1},
    ):
        r = await http.put(f"{API}/retention", json=bad)
        assert r.status_code == 400, bad
    assert (await http.get(f"{API}/retention")).json()["policy"]["max_age"] == "30d"
    r = await http.delete(f"{API}/retention")
    assert r.status_code == 200
    assert r.json()["source"] == "none"


async def test_admin_retention_routes_are_scoped_to_administered_orgs(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    other = (await http.post(f"{API}/admin/orgs", json={"name": "other"})).json()["id"]
    policy = {"max_age": "2w"}
    r = await http.put(f"{API}/admin/orgs/{other}/retention", json=policy)
    assert r.status_code == 200
    assert r.json()["org_id"] == other
    assert (await http.get(f"{API}/retention")).json()["source"] == "none"  # own org untouched
    assert (await http.put(f"{API}/admin/orgs/org_nope/retention", json=policy)).status_code == 404
    org_admin = await _key(http, "boss", "admin", org=other)
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": org_admin}) as o_http:
        assert (await o_http.get(f"{API}/retention")).json()["policy"]["max_age"] == "2w"
        ok = await o_http.post(f"{API}/admin/orgs/{other}/retention/apply")
        assert ok.status_code == 200
        assert ok.json()["deleted"] == 0
        denied = await o_http.get(f"{API}/admin/orgs/org_default/retention")
        assert denied.status_code == 403


def test_the_http_client_speaks_time(live: LiveServer, admin_key: str) -> None:
    mt = connect(live.url, api_key=admin_key)
    try:
        old = mt.add_memory(agent_id="bot", content="deadline is Friday")
        new = mt.add_memory(agent_id="bot", content="deadline is Monday", supersedes=old.id)
        with pytest.raises(SupersededError) as info:
            mt.add_memory(agent_id="bot", content="deadline is Tuesday", supersedes=old.id)
        assert info.value.current_id == new.id
        with pytest.raises(ValidationError) as bad:
            mt.list_memories(as_of="2999-01-01T00:00:00Z")
        assert bad.value.field == "as_of"
        assert mt.get_memory(old.id).superseded_by == new.id
        assert mt.get_memory(old.id, as_of=old.recorded_at).superseded_by is None
        assert mt.get_agent_stats("bot", as_of=old.recorded_at).memory_count == 1
        assert [m.id for m in mt.list_memories(include_superseded=True).memories] == [
            new.id,
            old.id,
        ]
        info2 = mt.set_retention_policy(max_age="90d")
        assert info2.source == "org"
        assert mt.get_retention_policy().policy.max_age == "90d"
        assert mt.apply_retention(dry_run=True).deleted == 0
        assert mt.clear_retention_policy().source == "none"
    finally:
        mt.close()


def test_the_servers_sweeper_deletes_expired_memories(db_url: str, admin_key: str) -> None:
    config = dataclasses.replace(
        config_for(db_url),
        sweep=SweepSection(sweep_interval_seconds=0.1, sweep_batch=2),
    )
    with serve_in_thread(config) as server:
        mt = connect(server.url, api_key=admin_key)
        try:
            kept = mt.add_memory(agent_id="bot", content="stays")
            doomed = [mt.add_memory(agent_id="bot", content=f"goes {i}", ttl=0.3) for i in range(5)]
        finally:
            mt.close()
        path = _db(db_url)
        deadline = time.monotonic() + 15  # the first sweep runs after min(interval, 10 s)
        left = len(doomed)
        while time.monotonic() < deadline:
            with sqlite3.connect(path) as conn:
                left = conn.execute(
                    "SELECT COUNT(*) FROM memories WHERE expires_at IS NOT NULL"
                ).fetchone()[0]
                fts = conn.execute(
                    "SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH 'goes'"
                ).fetchone()[0]
            if left == 0:
                break
            time.sleep(0.1)
        assert left == 0
        assert fts == 0
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'memtrace_sweep_deleted_total{reason="expired"} 5' in metrics
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT id FROM memories").fetchall() == [(kept.id,)]


def test_retention_config_from_toml_and_environment(tmp_path: Path) -> None:
    from memtrace_server.config import ConfigError, config_from_dict, config_to_dict, load_config

    file = tmp_path / "memtrace.toml"
    file.write_text(
        '[retention]\nmax_age = "30d"\nsweep_interval_seconds = 5\n'
        '[[retention.rules]]\nmemory_types = ["session"]\nmax_age = "7d"\n'
        '[[retention.rules]]\nmemory_types = ["decision"]\nmax_age = "forever"\n'
    )
    config = load_config(str(file), env={})
    policy = config.engine.retention
    assert policy is not None
    assert policy.max_age == "30d"
    assert [(r.memory_types, r.max_age) for r in policy.rules] == [
        (["session"], "7d"),
        (["decision"], None),
    ]
    assert config.sweep.sweep_interval_seconds == 5
    # workers rebuild exactly the same configuration
    assert config_from_dict(config_to_dict(config)) == config
    env = {"MEMTRACE_RETENTION_RULES": '[{"agent_id": "bot", "max_age": "1d"}]'}
    from_env = load_config(env=env)
    assert from_env.engine.retention is not None
    assert from_env.engine.retention.rules[0].agent_id == "bot"
    assert load_config(env={}).engine.retention is None
    for bad, key in (
        ({"MEMTRACE_RETENTION_MAX_AGE": "soon"}, "retention.max_age"),
        ({"MEMTRACE_RETENTION_RULES": "[{}]"}, "retention.rules"),
        ({"MEMTRACE_RETENTION_RULES": "not json"}, "retention.rules"),
        ({"MEMTRACE_RETENTION_SWEEP_BATCH": "0"}, "retention.sweep_batch"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config(env=bad)
