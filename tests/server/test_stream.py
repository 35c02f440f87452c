"""``GET /api/v1/memories/stream`` over a real socket (issue 14): the event format, filters,
org isolation, permissions, a slow subscriber dropped, a revoked key ending its stream, the
per-worker cap, streams ended at shutdown, the HTTP client's ``watch()`` resuming across a
server restart with nothing missed and nothing twice, and ``memtrace serve --workers 2`` on
SQLite and PostgreSQL delivering a memory written through one worker to a subscriber on the
other."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_support import ServeProcess, clean_env, free_port

from memtrace_core import AsyncMemtrace, StreamEvent, aconnect
from memtrace_core.client import AsyncMemtraceClient
from memtrace_server.config import ServerConfig
from memtrace_server.testing import LiveServer, bootstrap_admin_key, config_for, serve_in_thread


def fast(db_url: str, **server: Any) -> ServerConfig:
    """A server whose stream heartbeat (and key re-check) runs every 0.2 s."""
    return config_for(db_url, stream_heartbeat_seconds=0.2, **server)


@pytest.fixture
def live(db_url: str, admin_key: str) -> Iterator[LiveServer]:
    with serve_in_thread(fast(db_url)) as server:
        yield server


async def read_events(
    lines: AsyncIterator[str], until: int, timeout: float = 10
) -> list[tuple[str, str | None, str]]:
    """(event, id, data) of a raw SSE response, comments included as ("comment", None, text),
    until ``until`` events of kind memory/error arrived."""
    out: list[tuple[str, str | None, str]] = []
    event, event_id, data = "message", None, []

    async def run() -> None:
        nonlocal event, event_id, data
        async for line in lines:
            if line.startswith(":"):
                out.append(("comment", None, line))
                continue
            if not line:
                if data or event_id is not None:
                    out.append((event, event_id, "\n".join(data)))
                    if sum(e in ("memory", "error") for e, _, _ in out) >= until:
                        return
                event, event_id, data = "message", None, []
                continue
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)

    await asyncio.wait_for(run(), timeout)
    return out


async def new_key(http: httpx.AsyncClient, **body: Any) -> str:
    created = await http.post("/api/v1/admin/keys", json={"name": f"k{time.time_ns()}", **body})
    assert created.status_code == 201, created.text
    return str(created.json()["api_key"])


async def test_the_event_format_filters_and_heartbeats(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    await http.post("/api/v1/memories", json={"agent_id": "a", "content": "before"})
    async with http.stream(
        "GET", "/api/v1/memories/stream", params={"agent_id": "a", "tags": "x"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        lines = response.aiter_lines()
        assert await anext(lines) == "retry: 2000"
        writes = [
            {"agent_id": "a", "content": "wrong tag", "tags": ["y"]},
            {"agent_id": "b", "content": "wrong agent", "tags": ["x"]},
            {"agent_id": "a", "content": "<b>match</b>\nline two", "tags": ["x", "z"]},
        ]
        for body in writes:
            assert (await http.post("/api/v1/memories", json=body)).status_code == 201
        await asyncio.sleep(0.5)  # at least one heartbeat
        await http.post("/api/v1/memories", json={"agent_id": "a", "content": "2nd", "tags": ["x"]})
        events = await read_events(lines, until=2)
    kinds = [e for e, _, _ in events]
    assert kinds[0] == "ready"
    ready_id = events[0][1]
    assert json.loads(events[0][2]) == {"position": ready_id}
    memories = [(i, json.loads(d)) for e, i, d in events if e == "memory"]
    assert [m["content"] for _, m in memories] == ["<b>match</b>\nline two", "2nd"]
    # the data is the memory as GET /memories/{id} answers it; the id is its position
    got = (await http.get(f"/api/v1/memories/{memories[0][1]['id']}")).json()
    assert memories[0][1] == got
    assert memories[0][0] != memories[1][0]
    assert "comment" in kinds  # ": ping" while idle


async def test_last_event_id_resumes_and_wins_over_after(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    async with http.stream("GET", "/api/v1/memories/stream") as response:
        for n in range(3):
            await http.post("/api/v1/memories", json={"agent_id": "a", "content": f"m{n}"})
        events = [e for e in await read_events(response.aiter_lines(), until=3) if e[0] == "memory"]
    first_id = events[0][1]
    assert first_id is not None
    headers = {"Last-Event-ID": first_id}
    async with http.stream(
        "GET", "/api/v1/memories/stream", params={"after": "s0"}, headers=headers
    ) as response:
        again = [e for e in await read_events(response.aiter_lines(), until=2) if e[0] == "memory"]
    assert [json.loads(d)["content"] for _, _, d in again] == ["m1", "m2"]
    assert [i for _, i, _ in again] == [i for _, i, _ in events[1:]]


async def test_bad_input_is_a_plain_400_before_the_stream(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    for params, headers in (
        ({"after": "garbage"}, {}),
        ({}, {"Last-Event-ID": "s99999999"}),
        ({"memory_types": "bogus"}, {}),
        ({"agent_id": "bad id with spaces"}, {}),
        ({"unknown": "x"}, {}),
    ):
        resp = await http.get("/api/v1/memories/stream", params=params, headers=headers)
        assert resp.status_code == 400, (params, resp.text)
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.json()["error"]


async def test_streams_are_per_org_and_need_read(live: LiveServer, http: httpx.AsyncClient) -> None:
    org = (await http.post("/api/v1/admin/orgs", json={"name": "other"})).json()["id"]
    other_key = await new_key(http, org_id=org, permissions=["read", "write"])
    writer_only = await new_key(http, permissions=["write"])
    assert (
        await http.get("/api/v1/memories/stream", headers={"x-api-key": writer_only})
    ).status_code == 403
    assert (
        await http.get("/api/v1/memories/stream", headers={"x-api-key": "mtk_nope"})
    ).status_code == 401
    async with (
        httpx.AsyncClient(base_url=live.url, headers={"x-api-key": other_key}) as other,
        other.stream("GET", "/api/v1/memories/stream") as response,
    ):
        await http.post("/api/v1/memories", json={"agent_id": "a", "content": "default org"})
        await other.post("/api/v1/memories", json={"agent_id": "a", "content": "other org"})
        events = [e for e in await read_events(response.aiter_lines(), until=1) if e[0] == "memory"]
    assert [json.loads(d)["content"] for _, _, d in events] == ["other org"]


async def test_a_revoked_key_ends_its_stream_with_an_error_event(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    key = await new_key(http, permissions=["read"])
    key_id = next(
        k["id"]
        for k in (await http.get("/api/v1/admin/keys")).json()["keys"]
        if k["permissions"] == ["read"]
    )
    async with (
        httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key}) as reader,
        reader.stream("GET", "/api/v1/memories/stream") as response,
    ):
        assert (await http.delete(f"/api/v1/admin/keys/{key_id}")).status_code in (200, 204)
        lines = response.aiter_lines()
        events = await read_events(lines, until=1)
        assert events[-1][0] == "error"
        assert json.loads(events[-1][2])["error"]
        rest = [line async for line in lines]  # the stream ended
    assert not any(line.startswith("event: memory") for line in rest)
    assert live.state.metrics.streams_dropped["revoked"] == 1


async def test_a_busy_stream_checks_its_key_too(live: LiveServer, http: httpx.AsyncClient) -> None:
    """The key is re-checked every heartbeat even when memories keep coming."""
    key = await new_key(http, permissions=["read"], name="busy-reader")
    key_id = next(
        k["id"]
        for k in (await http.get("/api/v1/admin/keys")).json()["keys"]
        if k["name"] == "busy-reader"
    )

    async def keep_writing() -> None:
        for n in range(400):
            await http.post("/api/v1/memories", json={"agent_id": "a", "content": f"busy {n}"})
            await asyncio.sleep(0.02)

    async with (
        httpx.AsyncClient(base_url=live.url, headers={"x-api-key": key}) as reader,
        reader.stream("GET", "/api/v1/memories/stream") as response,
    ):
        writer = asyncio.ensure_future(keep_writing())
        try:
            lines = response.aiter_lines()
            await read_events(lines, until=3)  # memories are flowing
            assert (await http.delete(f"/api/v1/admin/keys/{key_id}")).status_code in (200, 204)

            async def until_error() -> tuple[str, str]:
                """(the id of the last memory event, the error event's id)."""
                event_id = last_memory = ""
                async for line in lines:
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line == "event: memory":
                        last_memory = event_id
                    elif line == "event: error":
                        return last_memory, event_id
                raise AssertionError("the stream ended without an error event")

            last_memory, error_id = await asyncio.wait_for(until_error(), 5)
            # a client resuming from the error's id misses nothing it was not sent
            assert error_id == last_memory
        finally:
            writer.cancel()


async def test_a_client_that_reads_nothing_is_dropped(db_url: str, admin_key: str) -> None:
    """Bounded memory per subscriber: nothing is queued for a stream (it reads the store from
    its position); a client whose socket stops draining is disconnected after the stall
    time, and the others go on."""
    with serve_in_thread(fast(db_url, stream_stall_seconds=0.5)) as live:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", live.port))
        stalled.sendall(
            b"GET /api/v1/memories/stream HTTP/1.1\r\nHost: x\r\nx-api-key: "
            + admin_key.encode()
            + b"\r\n\r\n"
        )
        client = await aconnect(live.url, api_key=admin_key)
        try:
            healthy = client.watch()
            await healthy.start()
            big = "x" * 60_000
            for n in range(6):  # dedup keys read the start of a long text: vary it
                await client.add_memories(
                    [{"agent_id": "a", "content": f"{n} {i} {big}"} for i in range(20)]
                )
            events = []
            async for event in healthy:
                events.append(event)
                if len(events) == 120:
                    break
            deadline = time.monotonic() + 15
            while live.state.metrics.streams_dropped["slow"] == 0:
                assert time.monotonic() < deadline, "the stalled stream was never dropped"
                await asyncio.sleep(0.1)
            assert len({e.position for e in events}) == 120
        finally:
            stalled.close()
            await client.close()


async def test_the_caps_are_503s_and_hold_under_concurrent_opens(
    db_url: str, admin_key: str
) -> None:
    with serve_in_thread(fast(db_url, max_streams=3, max_streams_per_key=2)) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            async with httpx.AsyncClient(
                base_url=live.url, headers={"x-api-key": admin_key}
            ) as admin:
                other = await new_key(admin, permissions=["read"])

            async def open_stream(key: str) -> int:
                async with http.stream(
                    "GET", "/api/v1/memories/stream", headers={"x-api-key": key}
                ) as response:
                    if response.status_code == 200:
                        await asyncio.sleep(1.0)  # hold it while the others try
                    else:
                        await response.aread()
                        assert "too many live streams" in response.json()["error"]
                    return response.status_code

            codes = await asyncio.gather(*(open_stream(admin_key) for _ in range(10)))
            assert sorted(codes) == [200] * 2 + [503] * 8  # per key, opened all at once
            # the first round's streams free their slots once the server sees them closed
            deadline = time.monotonic() + 5
            for _ in range(100):
                if not live.state.metrics.streams_active or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            codes = await asyncio.gather(*(open_stream(k) for k in [admin_key] * 2 + [other] * 2))
            assert sorted(codes) == [200] * 3 + [503]  # per worker
        deadline = time.monotonic() + 5  # the server sees each close at its next send
        for _ in range(100):
            if not live.state.metrics.streams_active or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert live.state.metrics.streams_active == 0
        assert live.state.streams_per_key == {}


# -- the client over restarts and workers ------------------------------------------------------


async def collect(stream: Any, into: list[StreamEvent], n: int) -> None:
    async for event in stream:
        into.append(event)
        if len(into) >= n:
            return


async def test_the_client_resumes_across_a_server_restart(tmp_path: Path) -> None:
    """Nothing missed, nothing twice: memories written while the server is down (by another
    process on the store) and after it is back all reach the same ``watch()``."""
    store = f"sqlite:///{tmp_path / 'memtrace.db'}"
    key = await bootstrap_admin_key(store)
    env = clean_env(tmp_path, MEMTRACE_SERVER_STREAM_HEARTBEAT_SECONDS="0.5")
    port = free_port()
    server = ServeProcess(store, tmp_path, env, port=port)
    embedded = await aconnect(store)
    client = await aconnect(server.url, api_key=key)
    assert isinstance(client, AsyncMemtraceClient)
    assert isinstance(embedded, AsyncMemtrace)
    try:
        server.wait_ready()
        stream = client.watch(agent_id="a")
        await stream.start()
        got: list[StreamEvent] = []
        task = asyncio.ensure_future(collect(stream, got, 6))
        for n in range(3):
            await client.add_memory(agent_id="a", content=f"before {n}")
        deadline = time.monotonic() + 10
        while len(got) < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        started = time.monotonic()
        assert server.stop() == 0
        # open streams are ended at shutdown: no wait for the 30 s shutdown timeout
        assert time.monotonic() - started < 10
        for n in range(2):
            await embedded.add_memory(agent_id="a", content=f"while down {n}")
        server = ServeProcess(store, tmp_path, env, port=port)
        server.wait_ready()
        await client.add_memory(agent_id="a", content="after")
        await asyncio.wait_for(task, 30)
        assert [e.memory.content for e in got] == [
            "before 0", "before 1", "before 2", "while down 0", "while down 1", "after",
        ]  # fmt: skip
        assert len({e.position for e in got}) == 6
    finally:
        await client.close()
        await embedded.close()
        server.kill_all()


def _streams_active(metrics: str) -> int:
    for line in metrics.splitlines():
        if line.startswith("memtrace_streams_active "):
            return int(float(line.split()[1]))
    raise AssertionError("no memtrace_streams_active in /metrics")


@pytest.fixture(params=["sqlite", "postgresql"])
def worker_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'memtrace.db'}"
        return
    import pg_harness

    with pg_harness.database() as url:
        yield url


async def test_two_workers_deliver_each_others_writes(tmp_path: Path, worker_store: str) -> None:
    """``memtrace serve --workers 2``: a memory written through the worker without the stream
    reaches the subscriber on the other worker (found by its ``memtrace_streams_active``
    gauge on the same keep-alive connection as the write), exactly once each."""
    key = await bootstrap_admin_key(worker_store)
    server = ServeProcess(worker_store, tmp_path, clean_env(tmp_path), "--workers", "2")
    client = await aconnect(server.url, api_key=key)
    try:
        server.wait_ready()
        stream = client.watch()
        await stream.start()
        got: list[StreamEvent] = []
        task = asyncio.ensure_future(collect(stream, got, 5))
        other_worker = 0
        sent = []
        headers = {"x-api-key": key}
        for attempt in range(200):
            if len(sent) == 5:
                break
            # one connection: the same worker answers /metrics and the write
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as http:
                if _streams_active((await http.get("/metrics")).text) != 0:
                    continue
                body = {"agent_id": "w", "content": f"through the other worker {attempt}"}
                assert (await http.post("/api/v1/memories", json=body)).status_code == 201
                sent.append(body["content"])
                other_worker += 1
        assert other_worker == 5, "no connection reached the second worker"
        await asyncio.wait_for(task, 20)
        assert [e.memory.content for e in got] == sent
    finally:
        await client.close()
        server.kill_all()


def test_the_stream_is_in_the_openapi_document(live: LiveServer) -> None:
    doc = httpx.get(f"{live.url}/openapi.json").json()
    op = doc["paths"]["/api/v1/memories/stream"]["get"]
    assert op["operationId"] == "streamMemories"
    assert "text/event-stream" in op["responses"]["200"]["content"]
    params = {p["name"] for p in op["parameters"]}
    assert {"agent_id", "session_id", "memory_types", "event_types", "tags", "after"} <= params


async def test_a_stream_ended_by_its_time_limit_is_resumed_by_the_client(
    db_url: str, admin_key: str
) -> None:
    """``server.stream_max_seconds`` ends long streams (rebalancing connections); the HTTP
    client reconnects with Last-Event-ID: nothing missed, nothing twice."""
    with serve_in_thread(fast(db_url, stream_max_seconds=0.4)) as live:
        client = await aconnect(live.url, api_key=admin_key)
        try:
            stream = client.watch()
            await stream.start()
            got: list[StreamEvent] = []
            task = asyncio.ensure_future(collect(stream, got, 3))
            for n in range(3):
                await client.add_memory(agent_id="a", content=f"m{n}")
                await asyncio.sleep(0.7)  # each write lands on a new connection
            await asyncio.wait_for(task, 15)
            assert [e.memory.content for e in got] == ["m0", "m1", "m2"]
        finally:
            await client.close()


async def test_heartbeats_carry_the_position_past_skipped_memories(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    async with http.stream("GET", "/api/v1/memories/stream", params={"agent_id": "rare"}) as r:
        lines = r.aiter_lines()
        for n in range(3):
            await http.post("/api/v1/memories", json={"agent_id": "common", "content": f"c{n}"})

        async def until_moved() -> str:
            previous = ""
            async for line in lines:
                if line == ": ping" and previous.startswith("id: "):
                    return previous[4:]
                previous = line
            raise AssertionError("the stream ended")

        moved = await asyncio.wait_for(until_moved(), 5)
    # resuming from the heartbeat's id: only what comes after
    await http.post("/api/v1/memories", json={"agent_id": "rare", "content": "finally"})
    async with http.stream(
        "GET",
        "/api/v1/memories/stream",
        params={"agent_id": "rare"},
        headers={"Last-Event-ID": moved},
    ) as r:
        events = [e for e in await read_events(r.aiter_lines(), until=1) if e[0] == "memory"]
    assert [json.loads(d)["content"] for _, _, d in events] == ["finally"]
