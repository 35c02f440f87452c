"""Request timeouts over real loopback sockets: a stalled body is a 408 JSON answer, headers or
bodies trickled slowly are cut off at an absolute deadline, a silent connection is closed.

The server runs with small timeouts; the tests assert what the server does (status, closure,
how far the client got), never how long it took. A failing run is bounded by socket timeouts."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from memtrace_server.testing import LiveServer, config_for, serve_in_thread

TIMEOUTS = {
    "header_timeout": 0.5,
    "body_timeout": 0.5,
    "read_timeout": 1.5,
    "keepalive_timeout": 1.5,
}
PATIENCE = 20.0  # seconds a socket waits before the test gives up (only reached on failure)


@pytest.fixture
def slow_live(db_url: str, admin_key: str) -> Iterator[LiveServer]:
    with serve_in_thread(config_for(db_url, **TIMEOUTS)) as server:
        yield server


def _connect(live: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=PATIENCE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _status_and_json(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    return status, json.loads(body)


def _trickle(sock: socket.socket, data: bytes, gap: float) -> int:
    """Send ``data`` one byte per ``gap`` seconds until the server answers or closes; returns
    how many bytes were sent by then."""
    for sent in range(len(data)):
        readable, _, _ = select.select([sock], [], [], gap)
        if readable:
            return sent
        try:
            sock.sendall(data[sent : sent + 1])
        except (BrokenPipeError, ConnectionResetError):
            return sent
    return len(data)


def _head(key: str, length: int) -> bytes:
    return (
        f"POST /api/v1/memories HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_stalled_body_is_a_408(slow_live: LiveServer, admin_key: str) -> None:
    with _connect(slow_live) as sock:
        sock.sendall(_head(admin_key, 100) + b'{"agent_id": "a"')
        raw = _read_all(sock)  # the server answers, then closes
    status, body = _status_and_json(raw)
    assert status == 408, raw
    assert "body" in str(body["error"]), body


def test_trickled_headers_are_cut_off(slow_live: LiveServer, admin_key: str) -> None:
    head = _head(admin_key, 2) + b"{}"
    padded = head.replace(b"Host: x\r\n", b"Host: x\r\nX-Pad: " + b"p" * 400 + b"\r\n")
    with _connect(slow_live) as sock:
        # each gap is far below every idle timeout; only an absolute deadline stops this
        sent = _trickle(sock, padded, gap=0.05)
        raw = _read_all(sock)
    assert sent < len(padded) - 2, "the server waited for the whole trickled header"
    if raw:  # a 408 may or may not make it out before the close
        assert _status_and_json(raw)[0] == 408, raw


def test_trickled_body_is_cut_off(slow_live: LiveServer, admin_key: str) -> None:
    body = json.dumps({"agent_id": "a", "content": "x" * 2000}).encode()
    with _connect(slow_live) as sock:
        sock.sendall(_head(admin_key, len(body)))
        sent = _trickle(sock, body, gap=0.05)
        raw = _read_all(sock)
    assert sent < len(body), "the server waited for the whole trickled body"
    status, answer = _status_and_json(raw)
    assert status == 408, raw
    assert "request timeout" in str(answer["error"]), answer


def test_silent_connection_is_closed(slow_live: LiveServer) -> None:
    with _connect(slow_live) as sock:
        raw = _read_all(sock)  # nothing sent: the server closes (keep-alive would be 120 s)
    assert raw == b"" or _status_and_json(raw)[0] == 408


def test_keep_alive_and_normal_requests_still_work(slow_live: LiveServer, admin_key: str) -> None:
    body = b'{"agent_id": "a", "content": "fast"}'
    with _connect(slow_live) as sock:
        for i in range(2):
            sock.sendall(_head(admin_key, len(body)).replace(b"fast", b"") + body)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 201") or b" 409 " in answer[:20], answer
            if i == 0:
                time.sleep(1.0)  # idle between requests: governed by keep-alive, not headers
            body = b'{"agent_id": "a", "content": "second"}'


def test_idle_keep_alive_connection_is_closed(slow_live: LiveServer) -> None:
    with _connect(slow_live) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = _read_all(sock)  # answered, then closed once idle for keepalive_timeout
    assert raw.startswith(b"HTTP/1.1 200"), raw
    assert raw.count(b"HTTP/1.1") == 1


def test_timeouts_are_configurable() -> None:
    from memtrace_server.config import load_config

    config = load_config(
        env={
            "MEMTRACE_SERVER_HEADER_TIMEOUT": "3",
            "MEMTRACE_SERVER_BODY_TIMEOUT": "4.5",
            "MEMTRACE_SERVER_READ_TIMEOUT": "20",
            "MEMTRACE_SERVER_KEEPALIVE_TIMEOUT": "5",
        }
    )
    assert config.server.keepalive_timeout == 5
    assert config.server.header_timeout == 3
    assert config.server.body_timeout == 4.5
    assert config.server.read_timeout == 20


@pytest.mark.slow
def test_memtrace_serve_applies_the_deadlines(tmp_path: Path) -> None:
    """``memtrace serve`` (worker processes started by Sanic's manager) uses the same protocol:
    a silent connection and a stalled body are cut off there too."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "MEMTRACE_SERVER_HEADER_TIMEOUT": "0.5",
        "MEMTRACE_SERVER_BODY_TIMEOUT": "0.5",
        "MEMTRACE_LOG_LEVEL": "warning",
    }
    store = f"sqlite:///{tmp_path / 'serve.db'}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memtrace_server.cli",
            "serve",
            "--port",
            str(port),
            "--store",
            store,
        ],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        live: Any = SimpleNamespace(port=port)
        for _ in range(600):  # wait until it listens (bounded)
            try:
                with _connect(live) as sock:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    if sock.recv(100).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("memtrace serve did not start")
        with _connect(live) as sock:
            raw = _read_all(sock)
        assert raw == b"" or _status_and_json(raw)[0] == 408
        with _connect(live) as sock:
            sock.sendall(_head("no-key-needed-before-body", 100) + b"{")
            status, _ = _status_and_json(_read_all(sock))
        # the key is checked only once the body is in; a stalled body never gets that far
        assert status == 408
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
