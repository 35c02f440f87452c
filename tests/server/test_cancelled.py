"""A request the client abandons is not a server error: a real request over a real socket to a
real server, abandoned while its handler is still running, is recorded as 499 (client closed
request), logs no error, and leaves the server healthy."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from memtrace_server.app import JsonErrorHandler
from memtrace_server.testing import LiveServer


async def _eventually(predicate: Callable[[], bool]) -> None:
    """Yield until ``predicate`` holds (pytest-timeout bounds a hang)."""
    while True:
        if predicate():
            return
        await asyncio.sleep(0.005)


def _requests(live: LiveServer, status: str | None = None) -> int:
    """How many POST /api/v1/memories the server counted (with ``status``, or in all)."""
    return sum(
        n
        for (method, route, code), n in dict(live.state.metrics.requests).items()
        if method == "POST" and route.endswith("/memories") and status in (None, code)
    )


async def test_abandoned_request_is_499_and_the_server_stays_healthy(
    live: LiveServer, http: httpx.AsyncClient, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # A first write: the key is verified and cached, its last use recorded.
    first = await http.post("/api/v1/memories", json={"agent_id": "a", "content": "before"})
    assert first.status_code == 201, first.text
    authn = live.state.authenticator
    assert authn is not None
    # Another process's write transaction holds the database's write lock: the next write's
    # handler waits for it (up to the store's busy timeout) and cannot answer.
    other = sqlite3.connect(Path(db_url.removeprefix("sqlite:///")), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        seen = authn.stats["hits"]
        body = b'{"agent_id": "a", "content": "abandoned"}'
        sock = socket.create_connection(("127.0.0.1", live.port))
        sock.sendall(
            b"POST /api/v1/memories HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nx-api-key: "
            + http.headers["x-api-key"].encode()
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        # The handler is running once it has authenticated this request (a cache hit).
        await _eventually(lambda: authn.stats["hits"] > seen)
        # The client goes away before any response: reset the connection.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        await _eventually(lambda: _requests(live) == 2)  # the server has finished with it
        assert _requests(live, "499") == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    # Healthy: it answers, writes again, and nothing was a server error.
    assert (await http.get("/health")).status_code == 200
    after = await http.post("/api/v1/memories", json={"agent_id": "a", "content": "after"})
    assert after.status_code == 201, after.text
    metrics = (await http.get("/metrics")).text
    assert 'status="499"' in metrics
    assert 'status="500"' not in metrics
    assert _requests(live, "201") == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert any(
        "client closed the connection during POST /api/v1/memories" in r.getMessage()
        for r in caplog.records
    )


def test_genuine_bug_is_still_500() -> None:
    request: Any = SimpleNamespace(method="GET", path="/x", ctx=SimpleNamespace(rid="r1"))
    response = JsonErrorHandler().default(request, RuntimeError("boom"))
    assert response.status == 500
    assert b"boom" not in response.body
