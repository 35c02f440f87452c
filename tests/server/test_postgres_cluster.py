"""Several ``memtrace serve`` processes sharing one PostgreSQL database (the scale-out setup of
docs/operations.md): real processes, real sockets on 127.0.0.1, the harness's PostgreSQL
(tests/pg_harness.py).

* concurrent writers on two servers, some of them writing the same memory through both at once:
  dedup is atomic across servers, every acknowledged write is readable from both;
* a key revoked, rotated or disabled through one server (or the CLI) is refused by the other
  within ``auth.revocation_poll_seconds`` (measured);
* the published memtrace-sdk 0.2.0 writes through one server and reads through the other;
* faults: PostgreSQL stopped mid-load (503s with a clear body, ``/ready`` 503, recovery without a
  restart, retries with dedup keys never duplicate); a server SIGKILLed mid-load (every
  acknowledged write survives, read back through a third server);
* ``memtrace export`` | ``memtrace import`` SQLite → PostgreSQL → SQLite keeps every field.

Every wait has a deadline and every load is bounded in requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import memtrace as sdk
import pytest
from cluster_support import (
    CLI,
    LogicalWrite,
    ServeProcess,
    attempt,
    clean_env,
    fetch_all,
    list_all,
    port_closed,
    start_servers,
    wait_for,
)

import pg_harness
from memtrace_core import PluginRegistry, connect
from memtrace_server.testing import bootstrap_admin_key

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty working directory (no memtrace.toml) for the server and CLI processes."""
    path = tmp_path / "work"
    path.mkdir()
    (tmp_path / "home").mkdir()
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path / "home")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated database on the shared test server (dropped after the servers)."""
    with pg_harness.database() as url:
        yield url


@pytest.fixture
def servers(pg_url: str) -> Iterator[list[ServeProcess]]:
    """Every server a test starts; all of them SIGKILLed (with their workers) at the end, before
    the database is dropped."""
    started: list[ServeProcess] = []
    yield started
    for server in started:
        server.kill_all()


def _headers(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def _client(server: ServeProcess, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers=_headers(key), timeout=30)


async def _wait_async(what: str, predicate: Any, timeout: float, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        await asyncio.sleep(poll)


async def _check_readable_everywhere(
    servers: list[ServeProcess], key: str, expected: dict[str, str]
) -> None:
    """``expected`` (id → content) is exactly what each server lists, and each id reads back
    by id from each server."""
    for server in servers:
        async with _client(server, key) as client:
            listed = await list_all(client)
            ids = [m["id"] for m in listed]
            assert len(ids) == len(set(ids)), f"{server.url} lists an id twice"
            assert {m["id"]: m["content"] for m in listed} == expected, server.url
            contents = Counter(m["content"] for m in listed)
            assert [c for c, n in contents.items() if n > 1] == [], "a write landed twice"
            got = await fetch_all(client, [f"/api/v1/memories/{i}" for i in expected])
            bad = {p: r.status_code for p, r in got.items() if r.status_code != 200}
            assert bad == {}, f"{server.url}: not readable by id: {bad}"
            for path, resp in got.items():
                assert resp.json()["content"] == expected[path.rsplit("/", 1)[1]]


# ------------------------------------------------------------------------------------------------
# 1. Two servers, one database, concurrent writers


WRITERS = 8  # per server
WRITES = 25  # per writer
SHARED_EVERY = 5  # every 5th write of writer w is written through both servers at once


def test_two_servers_concurrent_writers_dedup_and_read_everything_back(
    work: Path, env: dict[str, str], pg_url: str, servers: list[ServeProcess]
) -> None:
    # Both servers start at once on a database without any organization: the first-run
    # bootstrap races, and exactly one admin key may come out of it.
    a, b = start_servers(2, pg_url, work, env, servers)
    shown = a.keys_shown() + b.keys_shown()
    assert len(shown) == 1, a.output + b.output
    assert (a.output + b.output).count("FIRST RUN") == 1
    (key,) = shown
    me = [httpx.get(f"{s.url}/api/v1/me", headers=_headers(key)) for s in (a, b)]
    assert [r.status_code for r in me] == [200, 200]
    assert me[0].json() == me[1].json()
    assert me[0].json()["permissions"] == ["read", "write", "admin"]
    keys = httpx.get(f"{b.url}/api/v1/admin/keys", headers=_headers(key)).json()
    assert keys["count"] == 1

    results: dict[tuple[str, int, int], LogicalWrite] = {}

    async def load() -> None:
        barriers = {
            (w, i): asyncio.Barrier(2)
            for w in range(WRITERS)
            for i in range(0, WRITES, SHARED_EVERY)
        }

        async def writer(name: str, server: ServeProcess, w: int) -> None:
            async with _client(server, key) as client:
                for i in range(WRITES):
                    if i % SHARED_EVERY == 0:  # the same memory, written through A and B
                        body: dict[str, Any] = {
                            "agent_id": "shared-agent",
                            "event_type": "observation",
                            "content": f"shared fact {w}/{i}: both servers saw this",
                        }
                        await barriers[(w, i)].wait()
                    else:
                        body = {
                            "agent_id": f"writer-{name}-{w}",
                            "content": f"unique write {name}/{w}/{i}",
                            "tags": [f"w{w}", name],
                            "metadata": {"i": i},
                        }
                    write = LogicalWrite(f"{name}/{w}/{i}", body, name)
                    results[(name, w, i)] = write
                    await attempt(client, write)

        await asyncio.gather(
            *(writer(name, s, w) for name, s in (("a", a), ("b", b)) for w in range(WRITERS))
        )

    asyncio.run(load())

    statuses = Counter(w.attempts[0].status for w in results.values())
    assert set(statuses) <= {201, 409}, statuses  # no 5xx, no transport error, no 400
    expected: dict[str, str] = {}
    for (_name, _w, i), write in results.items():
        (only,) = write.attempts
        if i % SHARED_EVERY:
            assert only.status == 201, (write.name, only)
            expected[only.body["id"]] = write.body["content"]
    for w in range(WRITERS):
        for i in range(0, WRITES, SHARED_EVERY):
            pair = [results[("a", w, i)].attempts[0], results[("b", w, i)].attempts[0]]
            assert sorted(p.status for p in pair) == [201, 409], pair  # exactly one landed
            won = next(p for p in pair if p.status == 201)
            lost = next(p for p in pair if p.status == 409)
            assert lost.body["error"] == "duplicate memory"
            assert lost.body["existing_id"] == won.body["id"]
            assert lost.body["dedup_key"] == won.body["dedup_key"]
            expected[won.body["id"]] = won.body["content"]
    shared = WRITERS * len(range(0, WRITES, SHARED_EVERY))
    assert len(expected) == 2 * WRITERS * WRITES - shared  # 400 requests, 360 memories

    async def verify() -> None:
        await _check_readable_everywhere([a, b], key, expected)
        for server in (a, b):
            async with _client(server, key) as client:
                resp = await client.get(
                    "/api/v1/memories", params={"agent_id": "shared-agent", "limit": 1000}
                )
                assert resp.json()["count"] == shared
                stats = await client.get("/api/v1/agents/shared-agent/stats")
                assert stats.status_code == 200, stats.text
                assert stats.json()["memory_count"] == shared

    asyncio.run(verify())


# ------------------------------------------------------------------------------------------------
# 2. Revocation across servers


REVOCATION_MARGIN = 0.5  # seconds on top of the documented bound: request latency, scheduling


def _first_refusal(server: ServeProcess, key: str, since: float, bound: float) -> float:
    """Seconds from ``since`` until ``server`` first answers 401 to ``key`` (every answer
    before that must be a 200); fails after ``bound`` + a margin + 2 s."""
    with httpx.Client(base_url=server.url, headers=_headers(key), timeout=10) as client:
        while True:
            status = client.get("/api/v1/memories", params={"limit": 1}).status_code
            now = time.monotonic()
            if status == 401:
                return now - since
            assert status == 200, status
            assert now - since < bound + REVOCATION_MARGIN + 2, "the key was never refused"
            time.sleep(0.01)


@pytest.mark.parametrize("poll", [0.3, None], ids=["poll-0.3s", "default-poll"])
def test_revocation_on_one_server_reaches_the_other_within_the_poll_period(
    work: Path,
    env: dict[str, str],
    pg_url: str,
    servers: list[ServeProcess],
    poll: float | None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = asyncio.run(bootstrap_admin_key(pg_url))
    bound = 1.0 if poll is None else poll  # docs/operations.md: default ~1 s
    if poll is not None:
        env = {**env, "MEMTRACE_AUTH_REVOCATION_POLL_SECONDS": str(poll)}
    a, b = start_servers(2, pg_url, work, env, servers)
    assert a.keys_shown() == b.keys_shown() == []  # the store already had its admin key
    measured: dict[str, float] = {}

    def new_key(name: str) -> tuple[str, str]:
        resp = httpx.post(
            f"{a.url}/api/v1/admin/keys",
            headers=_headers(admin),
            json={"name": name, "permissions": ["read", "write"]},
        )
        assert resp.status_code == 201, resp.text
        return resp.json()["key"]["id"], resp.json()["api_key"]

    def warm(key: str, *on: ServeProcess) -> None:
        """Use ``key`` on each server until it is in the server's cache."""
        for server in on:
            for i in range(3):
                resp = httpx.post(
                    f"{server.url}/api/v1/memories",
                    headers=_headers(key),
                    json={"agent_id": "rev", "content": f"{key[:12]} on {server.port} #{i}"},
                )
                assert resp.status_code == 201, resp.text

    # Revoke through A's admin API: A refuses at once, B within the bound.
    key_id, key = new_key("revoked-agent")
    warm(key, b, a)
    resp = httpx.delete(f"{a.url}/api/v1/admin/keys/{key_id}", headers=_headers(admin))
    assert resp.status_code == 204, resp.text
    revoked_at = time.monotonic()
    refused = httpx.get(f"{a.url}/api/v1/memories", headers=_headers(key))
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid API key"}
    measured["revoke"] = _first_refusal(b, key, revoked_at, bound)
    again = [httpx.get(f"{b.url}/api/v1/memories", headers=_headers(key)) for _ in range(5)]
    assert [r.status_code for r in again] == [401] * 5
    assert again[0].json() == {"error": "invalid API key"}
    listed = httpx.get(f"{b.url}/api/v1/admin/keys", headers=_headers(admin)).json()
    assert key_id not in {k["id"] for k in listed["keys"]}

    # Rotate through A: the old secret stops on B within the bound, the new one works on B.
    key_id, key = new_key("rotated-agent")
    warm(key, b)
    resp = httpx.post(f"{a.url}/api/v1/admin/keys/{key_id}/rotate", headers=_headers(admin))
    assert resp.status_code == 200, resp.text
    rotated_at = time.monotonic()
    new_secret = resp.json()["api_key"]
    assert new_secret != key
    measured["rotate"] = _first_refusal(b, key, rotated_at, bound)
    assert httpx.get(f"{b.url}/api/v1/memories", headers=_headers(new_secret)).status_code == 200

    # Disable with the CLI (a third process on the same database): both servers refuse.
    key_id, key = new_key("disabled-agent")
    warm(key, a, b)
    done = subprocess.run(
        [*CLI, "key", "disable", key_id, "--store", pg_url],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    disabled_at = time.monotonic()
    assert done.returncode == 0, done.stderr
    measured["cli-disable@a"] = _first_refusal(a, key, disabled_at, bound)
    measured["cli-disable@b"] = _first_refusal(b, key, disabled_at, bound)

    # The admin key (not changed) still works everywhere.
    for server in (a, b):
        assert httpx.get(f"{server.url}/api/v1/me", headers=_headers(admin)).status_code == 200
    with capsys.disabled():
        print(f"\nrevocation delay (bound {bound} s): " + ", ".join(
            f"{k} {v * 1000:.0f} ms" for k, v in measured.items()
        ))  # fmt: skip
    late = {k: v for k, v in measured.items() if v > bound + REVOCATION_MARGIN}
    assert late == {}, f"refused later than {bound} s + {REVOCATION_MARGIN} s: {late}"


# ------------------------------------------------------------------------------------------------
# 3. memtrace-sdk 0.2.0 against each server


def test_published_sdk_writes_through_one_server_and_reads_through_the_other(
    work: Path, env: dict[str, str], pg_url: str, servers: list[ServeProcess]
) -> None:
    assert sdk.__version__ == "0.2.0"
    key = asyncio.run(bootstrap_admin_key(pg_url))
    a, b = start_servers(2, pg_url, work, env, servers)
    for (wname, writer), (_rname, reader) in (((("a", a)), ("b", b)), (("b", b), ("a", a))):
        w = sdk.Memtrace(writer.url, key)
        r = sdk.Memtrace(reader.url, key)
        try:
            agent = w.register_agent(
                sdk.RegisterAgentRequest(name=f"sdk-{wname}", description="via " + wname)
            )
            assert r.get_agent(agent.name).id == agent.id
            assert r.get_agent(agent.id).description == "via " + wname
            session = w.create_session(
                sdk.CreateSessionRequest(agent_id=agent.id, metadata={"via": wname})
            )
            assert r.get_session(session.id).metadata == {"via": wname}
            first = w.add_memory(
                sdk.AddMemoryRequest(
                    agent_id=agent.id,
                    session_id=session.id,
                    memory_type="episodic",
                    event_type="error",
                    content=f"deploy of build {wname}-42 failed on host-7",
                    tags=["deploy", wname],
                    importance=0.9,
                    metadata={"host": "host-7"},
                )
            )
            batch = w.add_memories(
                [
                    sdk.AddMemoryRequest(
                        agent_id=agent.id,
                        memory_type="entity",
                        event_type="host",
                        content=f"host-7 runs kernel 6.{n} ({wname})",
                    )
                    for n in range(2)
                ]
            )
            decision = w.decide(agent.id, f"roll back build {wname}-42", "error rate 40%")
            written = [first, *batch, decision]
            assert len(written) == 4

            listed = r.list_memories(sdk.ListOptions(agent_id=agent.id, order="asc", limit=10))
            assert listed.count == 4
            assert listed.has_more is False
            assert [(m.content, m.dedup_key, m.time) for m in listed.memories] == [
                (m.content, m.dedup_key, m.time) for m in written
            ]
            assert listed.memories[0].tags == ["deploy", wname]
            assert listed.memories[0].importance == 0.9
            assert listed.memories[0].metadata == {"host": "host-7"}
            assert listed.memories[0].session_id == session.id
            recalled = r.recall(agent.id)
            assert recalled.memories[0].content == decision.content  # newest first
            assert recalled.memories[0].metadata == {"reasoning": "error rate 40%"}

            found = r.search_memories(
                sdk.SearchQuery(content_contains=f"build {wname}-42", limit=10, order="asc")
            )
            assert [m.content for m in found.results] == [first.content, decision.content]
            by_tag = r.list_memories(sdk.ListOptions(tags=f"deploy,{wname}", since="1h"))
            assert [m.content for m in by_tag.memories] == [first.content]

            stats = r.get_agent_stats(agent.id)
            assert stats.memory_count == 4
            assert stats.memory_types == {"episodic": 1, "entity": 2, "decision": 1}
            assert stats.session_count == 1
            ctx = r.get_session_context(session.id)
            assert ctx.memory_count == 1
            assert first.content in ctx.context
            assert "### Errors (1)" in ctx.context

            # The duplicate is caught across servers.
            with pytest.raises(sdk.ConflictError) as dup:
                r.decide(agent.id, f"roll back build {wname}-42", "error rate 40%")
            assert dup.value.status_code == 409

            closed = r.close_session(session.id)
            assert closed.status == "closed"
            assert w.get_session(session.id).status == "closed"
            assert w.list_sessions(agent.id).count == 1
            assert {x.name for x in r.list_agents().agents} >= {agent.name}
        finally:
            w.close()
            r.close()
    # Deleting through one server is seen by the other.
    w, r = sdk.Memtrace(a.url, key), sdk.Memtrace(b.url, key)
    try:
        w.delete_agent("sdk-b")
        with pytest.raises(sdk.NotFoundError):
            r.get_agent("sdk-b")
        assert [x.name for x in r.list_agents().agents] == ["sdk-a"]
    finally:
        w.close()
        r.close()


# ------------------------------------------------------------------------------------------------
# 4. Faults


@pytest.fixture
def private_pg() -> Iterator[pg_harness.PgServer]:
    """A PostgreSQL server of this test's own: stopping it leaves the shared one alone."""
    pg = pg_harness.PgServer(max_connections=100)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def private_servers(private_pg: pg_harness.PgServer) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for server in started:
        server.kill_all()


FAULT_WRITERS = 4  # per server
FAULT_MAX_WRITES = 150  # per writer: a bound on the requests of the load phase
FAULT_PACE = 0.04  # seconds between two writes of one writer


def _fault_body(name: str, w: int, n: int) -> dict[str, Any]:
    return {
        "agent_id": f"fault-{name}-{w}",
        "content": f"write {n} of writer {name}/{w}",
        "dedup_key": f"k-{name}-{w}-{n}",  # an idempotency key: retries are safe
        "metadata": {"n": n},
    }


async def _retry_unresolved(
    writes: list[LogicalWrite], server: ServeProcess, key: str, attempts: int = 5
) -> None:
    """Retry (through ``server``) every write that is not known to be stored, until it gets a
    201 or a 409 (it had landed after all)."""
    async with _client(server, key) as client:
        for write in writes:
            for _ in range(attempts):
                if write.resolved_id is not None:
                    break
                result = await attempt(client, write)
                assert result.status in (201, 409, 503), (write.name, result)
                if result.status == 503:
                    await asyncio.sleep(0.2)
            assert write.resolved_id is not None, (write.name, write.attempts)


def test_postgres_outage_mid_load_503_ready_and_recovery_without_restart(
    work: Path,
    env: dict[str, str],
    private_pg: pg_harness.PgServer,
    private_servers: list[ServeProcess],
) -> None:
    url = private_pg.url("postgres")
    key = asyncio.run(bootstrap_admin_key(url))
    a, b = start_servers(2, url, work, env, private_servers)
    named = {"a": a, "b": b}
    writes: list[LogicalWrite] = []
    timeline: dict[str, float] = {}
    ready_down: dict[str, Any] = {}

    def acked_after(name: str, t: float) -> int:
        return sum(
            1 for x in writes if x.server == name for at in x.attempts if at.status == 201
            and at.at > t
        )  # fmt: skip

    def failed_after(name: str, t: float) -> int:
        return sum(
            1 for x in writes if x.server == name for at in x.attempts if at.status == 503
            and at.at > t
        )  # fmt: skip

    async def load() -> None:
        stop = asyncio.Event()

        async def writer(name: str, w: int) -> None:
            async with _client(named[name], key) as client:
                for n in range(FAULT_MAX_WRITES):
                    if stop.is_set():
                        return
                    write = LogicalWrite(f"{name}/{w}/{n}", _fault_body(name, w, n), name)
                    writes.append(write)
                    await attempt(client, write)
                    await asyncio.sleep(FAULT_PACE)

        tasks = [
            asyncio.create_task(writer(name, w)) for name in named for w in range(FAULT_WRITERS)
        ]
        start = time.monotonic()
        await _wait_async("40 writes were acknowledged", lambda: acked_after("a", start) >= 20
                          and acked_after("b", start) >= 20, 20)  # fmt: skip

        await asyncio.to_thread(private_pg.stop, "immediate")  # a crash of PostgreSQL
        timeline["down"] = down = time.monotonic()
        await _wait_async(
            "both servers answered writes with 503",
            lambda: failed_after("a", down) >= 5 and failed_after("b", down) >= 5,
            20,
        )
        async with httpx.AsyncClient(timeout=10) as probe:
            for name, server in named.items():
                resp = await probe.get(f"{server.url}/ready")
                ready_down[name] = (resp.status_code, resp.json())
                health = await probe.get(f"{server.url}/health")
                assert health.status_code == 200  # alive, only not ready

            await asyncio.to_thread(private_pg.start)
            timeline["up"] = up = time.monotonic()
            for server in named.values():  # no restart of memtrace: it reconnects
                while (await probe.get(f"{server.url}/ready")).status_code != 200:
                    assert time.monotonic() - up < 20, (
                        "/ready stayed 503 after PostgreSQL came back"
                    )
                    await asyncio.sleep(0.05)
            timeline["ready"] = time.monotonic()
        await _wait_async("both servers acknowledged writes again",
                          lambda: acked_after("a", up) >= 20 and acked_after("b", up) >= 20,
                          20)  # fmt: skip
        stop.set()
        await asyncio.gather(*tasks)
        # Writers retry what failed, with the same dedup keys.
        for name, server in named.items():
            await _retry_unresolved([x for x in writes if x.server == name], server, key)

    asyncio.run(load())

    for name in named:
        status, body = ready_down[name]
        assert status == 503, (name, body)
        assert body == {"status": "not ready", "reason": "store_unreachable"}
    first = [x.attempts[0] for x in writes]
    # a first attempt is never a 409 (each write has its own dedup key), never a 500 or a
    # dropped connection: the servers stayed up throughout
    assert Counter(a.status for a in first).keys() <= {201, 503}, Counter(a.status for a in first)
    unavailable = [a for x in writes for a in x.attempts if a.status == 503]
    assert len(unavailable) >= 10
    for answer in unavailable:
        assert isinstance(answer.body, dict), answer
        assert set(answer.body) == {"error"}, answer.body
        assert "unavailable" in answer.body["error"], answer.body
        assert "Traceback" not in answer.body["error"]
    # 503s are answered only while PostgreSQL was down (or just after: a pooled connection that
    # died with the server is found dead by its first use)
    assert all(timeline["down"] - 1 < a.at < timeline["ready"] + 2 for a in unavailable)

    acknowledged = {x.acknowledged_id: x for x in writes if x.acknowledged_id}
    assert len(acknowledged) == sum(1 for x in writes if x.acknowledged_id)  # ids are distinct
    # A write answered 503 is acknowledged only by a later 201 of its own retry; one that had
    # committed anyway (its COMMIT reached PostgreSQL, the answer did not) is found by its retry
    # as a 409 naming the stored memory: counted as stored, never as acknowledged.
    landed_anyway = [x for x in writes if x.acknowledged_id is None]
    for x in landed_anyway:
        assert next(a.status for a in x.attempts) == 503
        assert x.attempts[-1].status == 409
    expected = {x.resolved_id: x.body["content"] for x in writes}
    assert len(expected) == len(writes)  # every logical write is one memory
    asyncio.run(_check_readable_everywhere([a, b], key, expected))
    retried = sum(1 for x in writes if len(x.attempts) > 1)
    assert retried >= 10
    print(
        f"\noutage: {len(writes)} writes, {len(unavailable)} answered 503, {retried} retried, "
        f"{len(landed_anyway)} had landed despite the 503; /ready back "
        f"{timeline['ready'] - timeline['up']:.2f} s after PostgreSQL; bodies: "
        f"{sorted(Counter(a.body['error'] for a in unavailable).items())}"
    )


def test_sigkill_of_a_server_mid_load_loses_no_acknowledged_write(
    work: Path, env: dict[str, str], pg_url: str, servers: list[ServeProcess]
) -> None:
    key = asyncio.run(bootstrap_admin_key(pg_url))
    a, b = start_servers(2, pg_url, work, env, servers)
    named = {"a": a, "b": b}
    writes: list[LogicalWrite] = []
    killed_at: list[float] = []

    def acked(name: str, after: float = 0.0) -> int:
        return sum(
            1 for x in writes if x.server == name for t in x.attempts if t.status == 201
            and t.at > after
        )  # fmt: skip

    async def load() -> None:
        stop = asyncio.Event()

        async def writer(name: str, w: int) -> None:
            async with _client(named[name], key) as client:
                for n in range(FAULT_MAX_WRITES):
                    if stop.is_set():
                        return
                    write = LogicalWrite(f"{name}/{w}/{n}", _fault_body(name, w, n), name)
                    writes.append(write)
                    result = await attempt(client, write)
                    if result.status is None:  # the server is gone
                        assert killed_at, (write.name, result)
                        return
                    assert result.status == 201, (write.name, result)
                    await asyncio.sleep(0.005)

        tasks = [
            asyncio.create_task(writer(name, w)) for name in named for w in range(FAULT_WRITERS)
        ]
        await _wait_async("A acknowledged 60 writes", lambda: acked("a") >= 60, 20)
        killed_at.append(time.monotonic())
        a.kill_all()  # SIGKILL: the main process and its worker, mid-request
        await _wait_async(
            "B acknowledged 40 more writes", lambda: acked("b", killed_at[0]) >= 40, 20
        )
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(load())
    assert a.proc.returncode is not None
    assert port_closed(a.port)
    assert all(x.attempts[0].status == 201 for x in writes if x.server == "b")  # B never noticed

    # A third server on the same database reads back everything acknowledged.
    (c,) = start_servers(1, pg_url, work, env, servers)
    acknowledged = {x.acknowledged_id: x.body["content"] for x in writes if x.acknowledged_id}
    assert sum(1 for x in writes if x.server == "a" and x.acknowledged_id) >= 60

    async def verify() -> None:
        async with _client(c, key) as client:
            got = await fetch_all(client, [f"/api/v1/memories/{i}" for i in acknowledged])
            lost = sorted(p for p, r in got.items() if r.status_code != 200)
            assert lost == [], f"acknowledged writes lost by the SIGKILL: {lost}"
        # The writes cut off by the kill (in flight, or not yet answered) are retried through C:
        # each lands once (a 201), or is found stored (a 409) if it had committed.
        await _retry_unresolved([x for x in writes if x.resolved_id is None], c, key)
        expected = {x.resolved_id: x.body["content"] for x in writes}
        assert len(expected) == len(writes)
        await _check_readable_everywhere([b, c], key, expected)

    asyncio.run(verify())


def test_sigkill_of_the_main_process_takes_its_worker_down(
    work: Path, env: dict[str, str], pg_url: str, servers: list[ServeProcess]
) -> None:
    key = asyncio.run(bootstrap_admin_key(pg_url))
    (a,) = start_servers(1, pg_url, work, env, servers)
    os.kill(a.proc.pid, signal.SIGKILL)  # only the process a supervisor knows the pid of
    a.proc.wait(timeout=10)
    try:
        wait_for("nothing listened on the port any more", lambda: port_closed(a.port), 5)
    finally:
        # what the orphan does meanwhile: it still acknowledges writes
        with contextlib.suppress(httpx.TransportError):
            resp = httpx.post(
                f"{a.url}/api/v1/memories",
                headers=_headers(key),
                json={"agent_id": "orphan", "content": "written after the main process died"},
                timeout=5,
            )
            print(f"orphaned worker answered {resp.status_code}")


# ------------------------------------------------------------------------------------------------
# 5. Export / import through the CLI: SQLite → PostgreSQL → SQLite


def _seed_every_field(url: str) -> None:
    base = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    future = datetime.now(UTC).replace(microsecond=123456) + timedelta(days=30)
    with connect(url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        agent = mt.register_agent(name="deployer", description="ships code", config={"x": [1]})
        mt.register_agent(name="watcher")
        session = mt.create_session(agent_id=agent.id, metadata={"ticket": "OPS-1"})
        open_session = mt.create_session(agent_id="watcher")
        root = mt.add_memory(
            agent_id="deployer",
            content="deploy started — ünïcode ✓ 🚀",
            memory_type="episodic",
            event_type="action",
            session_id=session.id,
            tags=["deploy", "prod"],
            metadata={"build": 42, "nested": {"ok": True, "list": [1, None, "x"]}},
            importance=0.75,
            payload={"diff": ["a", "b"], "size": 3, "deep": {"k": [True, 1.5]}},
            time=base + timedelta(microseconds=7),
        )
        mt.add_memory(
            agent_id="deployer",
            content="deploy step two",
            event_type="step",
            session_id=session.id,
            parent_id=root.id,
            dedup_key="explicit-key-1",
            payload="a plain string payload",
            expires_at=future,
            time=base + timedelta(minutes=1),
        )
        mt.add_memory(
            agent_id="watcher",
            content="expires in a week",
            memory_type="entity",
            ttl="7d",
            payload=[1, 2, 3],
            session_id=open_session.id,
            time=base + timedelta(minutes=2),
        )
        mt.add_memory(
            agent_id="watcher",
            content="never deduplicated",
            dedup=False,
            payload=0,
            time=base + timedelta(minutes=3),
        )
        # a supersedes chain of three
        v1 = mt.add_memory(agent_id="deployer", content="plan v1", memory_type="decision",
                           time=base + timedelta(minutes=4))  # fmt: skip
        v2 = mt.add_memory(agent_id="deployer", content="plan v2", memory_type="decision",
                           supersedes=v1.id, time=base + timedelta(minutes=5))  # fmt: skip
        mt.add_memory(agent_id="deployer", content="plan v3", memory_type="decision",
                      supersedes=v2.id, importance=1.0, time=base + timedelta(minutes=6))  # fmt: skip
        # namespace + key: three versions of one key (key_created_at = the first one's time),
        # a namespace without a key, and another key of the same namespace
        for n, value in enumerate(["dark", "light", "solarized"]):
            mt.add_memory(
                agent_id="deployer",
                content=f"theme is {value}",
                namespace=["users", "alice"],
                key="prefs/theme",
                payload={"theme": value, "version": n},
                tags=["prefs"],
                time=base + timedelta(hours=1, minutes=n),
            )
        mt.add_memory(agent_id="deployer", content="alice likes tea",
                      namespace=["users", "alice"], time=base + timedelta(hours=2))  # fmt: skip
        mt.add_memory(agent_id="deployer", content="bob's key", namespace=["users", "bob"],
                      key="k", expires_at=future, time=base + timedelta(hours=3))  # fmt: skip
        # event time in the future of recorded_at, and a memory written "now"
        mt.add_memory(agent_id="watcher", content="scheduled maintenance",
                      time=datetime.now(UTC) + timedelta(seconds=120))  # fmt: skip
        mt.add_memory(agent_id="watcher", content="written now", memory_type="session",
                      event_type="error", session_id=open_session.id)  # fmt: skip
        mt.close_session(session.id)


def _export(store: str, cwd: Path, env: dict[str, str], out: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [*CLI, "export", "--store", store, "-o", str(out)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _pipe(
    source: str, target: str, cwd: Path, env: dict[str, str], *, positional: bool = False
) -> str:
    """``memtrace export --store SOURCE | memtrace import --store TARGET -`` (with
    ``positional``: ``memtrace export SOURCE | memtrace import TARGET``, the form the README
    shows); import's stderr."""
    exporter = subprocess.Popen(
        [*CLI, "export", source] if positional else [*CLI, "export", "--store", source],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert exporter.stdout is not None
    importer = subprocess.run(
        [*CLI, "import", target] if positional else [*CLI, "import", "--store", target, "-"],
        cwd=cwd, env=env, stdin=exporter.stdout, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    exporter.stdout.close()
    _, export_err = exporter.communicate(timeout=60)
    assert exporter.returncode == 0, export_err
    assert importer.returncode == 0, importer.stderr
    return importer.stderr


def _models(url: str) -> dict[str, Any]:
    with connect(url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        memories = mt.list_memories(
            order="asc", limit=1000, since="3650d", until="now", include_superseded=True
        )
        assert memories.has_more is False
        return {
            "memories": [m.model_dump(mode="json", exclude={"score"}) for m in memories.memories],
            "agents": [a.model_dump(mode="json") for a in mt.list_agents().agents],
            "sessions": [s.model_dump(mode="json") for s in mt.list_sessions().sessions],
        }


def test_export_import_round_trip_sqlite_postgres_sqlite_keeps_every_field(
    work: Path, tmp_path: Path, env: dict[str, str], pg_url: str
) -> None:
    first = f"sqlite:///{tmp_path / 'first.db'}"
    last = f"sqlite:///{tmp_path / 'last.db'}"
    _seed_every_field(first)
    original = _export(first, work, env, tmp_path / "first.jsonl")
    memories = [r for r in original if r["kind"] == "memory"]
    assert len(memories) == 14
    assert original[-1]["kind"] == "trailer"
    # the dataset really exercises every field
    for name in ("metadata", "tags", "payload", "namespace", "key", "key_created_at",
                 "expires_at", "supersedes", "superseded_by", "superseded_at", "importance",
                 "parent_id", "session_id"):  # fmt: skip
        assert any(m.get(name) is not None for m in memories), name
    assert any(m["time"] != m["recorded_at"] for m in memories)
    assert any(m.get("dedup") is False for m in memories)
    keyed = [m for m in memories if m.get("key") == "prefs/theme"]
    assert len({m["key_created_at"] for m in keyed}) == 1
    assert len(keyed) == 3

    err = _pipe(first, pg_url, work, env, positional=True)
    assert "imported 14 memories (0 already present), 2 agents, 2 sessions" in err
    via_pg = _export(pg_url, work, env, tmp_path / "pg.jsonl")
    err = _pipe(pg_url, last, work, env)
    assert "imported 14 memories (0 already present), 2 agents, 2 sessions" in err
    final = _export(last, work, env, tmp_path / "last.jsonl")

    # The export files agree line by line (agents, sessions, memories, trailer), field by field.
    def by_kind(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            out.setdefault(r["kind"], []).append(r)
        return out

    for kind, lines in by_kind(original).items():
        for other, label in ((via_pg, "postgres"), (final, "last sqlite")):
            assert by_kind(other)[kind] == lines, f"{kind} lines differ after {label}"
    assert via_pg == original
    assert final == original
    # and so do the models every store reads back
    expected = _models(first)
    assert _models(pg_url) == expected
    assert _models(last) == expected
    # the chains still work on PostgreSQL: the current version of the key, the chain's head
    with connect(pg_url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        current = mt.list_memories(agent_id="deployer", since="3650d", limit=100)
        contents = {m.content for m in current.memories}
        assert "theme is solarized" in contents
        assert "theme is dark" not in contents
        assert "plan v3" in contents
        assert "plan v1" not in contents
