"""Unreadable rows over a real socket (issue 7): reads serve the rest, /metrics counts the
skipped rows, get-by-id is a clear 500, delete works; and an export that fails part-way is
visibly incomplete (the connection is aborted, not the chunked stream ended cleanly)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from memtrace_core import TransportError, aconnect
from memtrace_core.client import AsyncMemtraceClient
from memtrace_server.testing import LiveServer

API = "/api/v1"


def _db_path(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


def _damage_memory(db_url: str, memory_id: str) -> None:
    conn = sqlite3.connect(_db_path(db_url))
    try:
        with conn:
            n = conn.execute(
                "UPDATE memories SET metadata = '{broken' WHERE id = ?", (memory_id,)
            ).rowcount
        assert n == 1
    finally:
        conn.close()


async def _write(http: httpx.AsyncClient, n: int) -> list[str]:
    """``n`` memories, oldest first, each line of the export a few hundred bytes."""
    base = datetime(2025, 1, 1, tzinfo=UTC)
    ids: list[str] = []
    for start in range(0, n, 500):
        items = [
            {
                "agent_id": "bulk",
                "content": f"memory {i} " + "padding " * 20,
                "time": (base + timedelta(seconds=i)).isoformat(),
            }
            for i in range(start, min(n, start + 500))
        ]
        r = await http.post(f"{API}/memories", json={"memories": items})
        assert r.status_code == 201, r.text
        ids.extend(m["id"] for m in r.json()["memories"])
    return ids


async def test_reads_skip_an_unreadable_row_and_metrics_count_it(
    http: httpx.AsyncClient, db_url: str
) -> None:
    ids = await _write(http, 6)
    bad = ids[2]
    _damage_memory(db_url, bad)
    r = await http.get(f"{API}/memories", params={"since": "2000-01-01", "order": "asc"})
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["memories"]] == [i for i in ids if i != bad]
    r = await http.post(f"{API}/search", json={"query": "memory padding", "since": "2000-01-01"})
    assert r.status_code == 200
    assert bad not in {m["id"] for m in r.json()["results"]}
    assert r.json()["count"] == 5
    metrics = (await http.get("/metrics")).text
    line = next(x for x in metrics.splitlines() if x.startswith("memtrace_unreadable_rows_total"))
    assert int(line.split()[1]) >= 2
    r = await http.get(f"{API}/memories/{bad}")
    assert r.status_code == 500
    assert bad in r.json()["error"]
    assert "memtrace doctor" in r.json()["error"]
    # Without any memory line sent yet, a failing export is a plain error response.
    r = await http.get(f"{API}/export")
    assert r.status_code == 500
    assert bad in r.json()["error"]
    assert (await http.delete(f"{API}/memories/{bad}")).status_code == 204
    assert (await http.get(f"{API}/memories/{bad}")).status_code == 404
    assert (await http.delete(f"{API}/memories/{bad}")).status_code == 404


async def test_an_export_failing_within_its_first_chunk_is_a_plain_error(
    http: httpx.AsyncClient, db_url: str
) -> None:
    """Agent and session lines come first; the unreadable memory after them is still within
    the first chunk, which is filled before the response starts: a JSON 500, not a 200."""
    assert (await http.post(f"{API}/agents", json={"name": "bulk"})).status_code == 201
    assert (await http.post(f"{API}/sessions", json={"agent_id": "bulk"})).status_code == 201
    ids = await _write(http, 50)
    _damage_memory(db_url, ids[40])
    r = await http.get(f"{API}/export")
    assert r.status_code == 500
    assert ids[40] in r.json()["error"]
    # still the normal 400 for a bad filter
    assert (await http.get(f"{API}/export", params={"since": "soonish"})).status_code == 400


@pytest.fixture
async def broken_export(http: httpx.AsyncClient, db_url: str) -> str:
    """An org whose export fails after more than one 64 KiB chunk has been sent: the unreadable
    memory is in the second batch the store reads (rows 1000+), well past the first chunk."""
    ids = await _write(http, 1300)
    _damage_memory(db_url, ids[1200])
    return ids[1200]


def _raw_get(url: str, key: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"GET {API}/export HTTP/1.1\r\nHost: {host}\r\nx-api-key: {key}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk


async def _stream_lines(http: httpx.AsyncClient, into: list[str]) -> None:
    async with http.stream("GET", f"{API}/export") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            into.append(line)


async def test_an_export_failing_part_way_aborts_the_connection(
    live: LiveServer,
    admin_key: str,
    broken_export: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="memtrace.server")
    # Raw socket: a 200 chunked response that stops without the terminating zero-size chunk.
    data = await asyncio.to_thread(_raw_get, live.url, admin_key)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    assert len(body) > 65536
    assert not body.endswith(b"0\r\n\r\n")
    assert b'"kind":"trailer"' not in body
    # httpx sees an incomplete body, not a clean end.
    async with httpx.AsyncClient(
        base_url=live.url, headers={"x-api-key": admin_key}, timeout=30
    ) as http:
        received: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):
            await _stream_lines(http, received)
        assert len(received) > 100
        assert not any('"kind":"trailer"' in line for line in received)
    # The memtrace client raises instead of returning a short export.
    async with AsyncMemtraceClient(live.url, admin_key) as client:
        with pytest.raises(TransportError):
            async for _ in client.iter_export():
                pass
    # Logged (with the row) and counted.
    messages = [r.getMessage() for r in caplog.records if r.name == "memtrace.server"]
    assert any("export" in m and broken_export in m for m in messages), messages
    metrics = (await asyncio.to_thread(httpx.get, f"{live.url}/metrics")).text
    assert "memtrace_exports_aborted_total 3" in metrics


async def test_the_cli_export_of_a_damaged_store_fails_and_leaves_no_file(
    db_url: str, admin_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from memtrace_server.cli import main

    engine = await aconnect(db_url)
    try:
        ids = [(await engine.remember("a", f"note {i}")).id for i in range(3)]
    finally:
        await engine.close()
    _damage_memory(db_url, ids[1])
    out = tmp_path / "backup.jsonl"
    code = await asyncio.to_thread(main, ["export", "--store", db_url, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert ids[1] in err
    assert not out.exists()
    assert not list(tmp_path.glob(".memtrace-export-*"))
