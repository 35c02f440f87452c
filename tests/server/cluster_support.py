"""Helpers for tests/server/test_postgres_cluster.py: ``memtrace serve`` processes sharing one
PostgreSQL database, and bounded concurrent writers that record every answer.

:class:`ServeProcess` follows ``test_cli.ServerProcess`` (a subprocess, stderr/stdout drained by
threads) with two differences the cluster tests need: every wait has a deadline (each test must
stay well under a minute), and the server runs in a session of its own, so that
:meth:`ServeProcess.kill_all` can SIGKILL the main process *and* its Sanic worker(s) — the
worker of ``memtrace serve`` is a child process that would otherwise keep serving (and writing)
after only the main process was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from memtrace_server.auth import KEY_RE

CLI = [sys.executable, "-m", "memtrace_server.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_closed(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any ``MEMTRACE_*`` setting, ``HOME`` moved to
    ``home`` (no ~/.memtrace/memtrace.toml), cheap bcrypt, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTRACE_")}
    env.update(HOME=str(home), MEMTRACE_AUTH_BCRYPT_COST="4", MEMTRACE_LOG_LEVEL="warning")
    env.update(extra)
    return env


def wait_for(what: str, predicate: Callable[[], bool], timeout: float, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(poll)


class ServeProcess:
    """``memtrace serve --store URL`` on 127.0.0.1 and a free port (or ``port``: a restart on
    the same address), in its own session."""

    def __init__(
        self, store: str, cwd: Path, env: dict[str, str], *args: str, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(self.port), "--store", store, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def keys_shown(self) -> list[str]:
        return [w.strip('",') for w in self.output.split() if KEY_RE.match(w.strip('",'))]

    def wait_until(self, what: str, predicate: Callable[[], bool], timeout: float = 30) -> None:
        def check() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode} before {what}:\n{self.output}"
                )
            return predicate()

        wait_for(what, check, timeout)

    def status(self, path: str) -> int | None:
        try:
            return httpx.get(f"{self.url}{path}", timeout=5).status_code
        except httpx.TransportError:
            return None

    def wait_ready(self, timeout: float = 30) -> None:
        self.wait_until("it answered /ready", lambda: self.status("/ready") == 200, timeout)

    def stop(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise AssertionError(f"server did not stop on SIGTERM:\n{self.output}") from None
        self._close()
        return code

    def kill_all(self) -> None:
        """SIGKILL every process of the server's session (main process and workers)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self._close()

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def start_servers(
    count: int, store: str, cwd: Path, env: dict[str, str], started: list[ServeProcess]
) -> list[ServeProcess]:
    """``count`` servers on ``store``, launched at once (so a first-run bootstrap races), each
    appended to ``started`` (for the fixture's cleanup) and waited for."""
    new = [ServeProcess(store, cwd, env) for _ in range(count)]
    started.extend(new)
    for server in new:
        server.wait_ready()
    return new


# ------------------------------------------------------------------------------------------------
# Writers


@dataclass
class Attempt:
    """One HTTP attempt of one logical write."""

    status: int | None  # None: a transport error (connection refused/reset, timeout)
    body: Any
    at: float


@dataclass
class LogicalWrite:
    """One memory a writer wants stored: its body, and every attempt made to store it."""

    name: str
    body: dict[str, Any]
    server: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acknowledged_id(self) -> str | None:
        """The id of a 201 (an acknowledged write), if any attempt got one."""
        for a in self.attempts:
            if a.status == 201:
                return str(a.body["id"])
        return None

    @property
    def resolved_id(self) -> str | None:
        """The memory this write is stored as: a 201's id, or the ``existing_id`` of a 409 (the
        write had landed on an earlier, unacknowledged attempt)."""
        ack = self.acknowledged_id
        if ack is not None:
            return ack
        for a in self.attempts:
            if a.status == 409:
                return str(a.body["existing_id"])
        return None


async def attempt(client: httpx.AsyncClient, write: LogicalWrite) -> Attempt:
    try:
        resp = await client.post("/api/v1/memories", json=write.body)
    except httpx.TransportError as exc:
        result = Attempt(None, repr(exc), time.monotonic())
    else:
        try:
            body: Any = resp.json()
        except ValueError:
            body = resp.text
        result = Attempt(resp.status_code, body, time.monotonic())
    write.attempts.append(result)
    return result


async def fetch_all(
    client: httpx.AsyncClient, paths: Iterable[str], concurrency: int = 16
) -> dict[str, httpx.Response]:
    """GET each path (bounded concurrency); path → response."""
    sem = asyncio.Semaphore(concurrency)
    out: dict[str, httpx.Response] = {}

    async def one(path: str) -> None:
        async with sem:
            out[path] = await client.get(path)

    await asyncio.gather(*(one(p) for p in paths))
    return out


async def list_all(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every memory of the org visible to a list (pages of 1000, oldest first)."""
    memories: list[dict[str, Any]] = []
    offset = 0
    while True:
        resp = await client.get(
            "/api/v1/memories",
            params={"limit": 1000, "offset": offset, "order": "asc", "since": "3650d", **params},
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        memories.extend(page["memories"])
        if not page["has_more"]:
            return memories
        offset += len(page["memories"])
