"""Helpers of the MCP server's tests (the fixtures built on them are in conftest.py; a module
of its own name, so that ``from mcp_support import …`` never meets another folder's conftest):
the SDK's own client over stdio and streamable HTTP on whichever ``mcp`` major is installed, a
stdio session shared from a background thread, spawned HTTP servers, and the four setups —
``stdio-embedded`` (``memtrace mcp --url sqlite:///…``), ``stdio-server`` (``MEMTRACE_URL`` = a
live ``memtrace serve`` and ``MEMTRACE_API_KEY``), ``http-embedded`` and ``http-server``
(``--transport http``; the client sends its key)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memtrace_server.auth import AuthAdmin, auth_store_of
from memtrace_server.testing import LiveServer, bootstrap_admin_key

try:
    import mcp.server.mcpserver  # noqa: F401

    MCP_V2 = True
except ImportError:
    MCP_V2 = False

from mcp.client.stdio import stdio_client

from mcp import ClientSession, StdioServerParameters

#: A raw JSON-RPC ``initialize`` request (tests that speak the protocol without the SDK).
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}


SETUPS = ("stdio-embedded", "stdio-server", "http-embedded", "http-server")


AGENT = "claude-code"


def dump(result: Any) -> dict[str, Any]:
    """A result as camelCase JSON, the same on both majors (2.x attributes are snake_case)."""
    data: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True, mode="json")
    return data


def text_of(result: Any) -> str:
    return "\n".join(c["text"] for c in dump(result)["content"] if c.get("type") == "text")


@dataclass
class Keys:
    admin: str  # org_default, read + write + admin
    reader: str  # org_default, read only
    other: str  # another org, read + write
    other_org: str


@dataclass
class Store:
    url: str
    path: Path
    keys: Keys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _make_keys(url: str) -> Keys:
    from memtrace_core import open_engine

    admin = await bootstrap_admin_key(url)
    engine = await open_engine(url)
    try:
        auth = AuthAdmin(auth_store_of(engine), bcrypt_cost=4)
        _, reader = await auth.create_key("org_default", "reader", permissions=["read"])
        org = await auth.create_org("Other team")
        _, other = await auth.create_key(org.id, "other", permissions=["read", "write"])
    finally:
        await engine.close()
    return Keys(admin=admin, reader=reader, other=other, other_org=org.id)


def make_store(directory: Path) -> Store:
    path = directory / "memtrace.db"
    url = f"sqlite:///{path}"
    return Store(url, path, asyncio.run(_make_keys(url)))


def base_env(tmp: Path) -> dict[str, str]:
    """The environment of a spawned MCP server: no memtrace settings leak in from outside,
    the data directory is the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMTRACE_", "FASTMCP_"))}
    env["MEMTRACE_DATA_DIR"] = str(tmp / "data")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def mcp_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "memtrace_server", "mcp", *args]


@contextlib.asynccontextmanager
async def stdio_session(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> AsyncIterator[ClientSession]:
    """A client session with a freshly spawned ``memtrace mcp`` over stdio."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "memtrace_server", "mcp", *args],
        env=env,
        cwd=str(cwd) if cwd else None,
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def http_session(url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    """A client session over streamable HTTP with these headers (the API key)."""
    if MCP_V2:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as client,
            streamable_http_client(url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    else:
        from mcp.client import streamable_http

        if hasattr(streamable_http, "streamable_http_client"):  # 1.24+ (the old name warns)
            import httpx

            async with (
                httpx.AsyncClient(headers=headers, timeout=30) as client,
                streamable_http.streamable_http_client(url, http_client=client) as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                yield session
        else:  # 1.23
            async with (
                streamable_http.streamablehttp_client(url, headers=headers) as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                yield session


class ThreadSession:
    """One stdio MCP session on its own event loop thread, shared by many tests (a spawn
    costs ~2 s): ``session(fn)`` runs ``fn(client_session)`` there and returns its result."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.session: ClientSession | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(args, env), daemon=True)
        self.thread.start()
        if not self.ready.wait(60) or self.session is None:
            raise RuntimeError(f"no MCP session: {self.error!r}")

    def _run(self, args: list[str], env: dict[str, str]) -> None:
        async def main() -> None:
            self.stop = asyncio.Event()
            try:
                async with stdio_session(args, env) as session:
                    self.session = session
                    self.ready.set()
                    await self.stop.wait()
            except BaseException as exc:
                self.error = exc
                self.ready.set()

        self.loop.run_until_complete(main())
        self.loop.close()

    def __call__(self, fn: Callable[[ClientSession], Awaitable[Any]]) -> Any:
        assert self.session is not None
        return asyncio.run_coroutine_threadsafe(fn(self.session), self.loop).result(120)

    def close(self) -> None:
        if self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


@dataclass
class HttpMcp:
    url: str
    process: subprocess.Popen[str]
    log: Path

    def stderr(self) -> str:
        return self.log.read_text()


@contextlib.contextmanager
def spawn_http(args: list[str], env: dict[str, str], log: Path) -> Iterator[HttpMcp]:
    """``memtrace mcp --transport http`` on a free loopback port, until the block ends."""
    port = _free_port()
    with log.open("w") as err:
        process = subprocess.Popen(
            mcp_command("--transport", "http", "--host", "127.0.0.1", "--port", str(port), *args),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    server = HttpMcp(f"http://127.0.0.1:{port}/mcp", process, log)
    try:
        deadline = time.monotonic() + 60
        while "streamable HTTP at" not in server.stderr():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"memtrace mcp did not start:\n{server.stderr()}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Setup:
    """One of the four setups: ``run(fn)`` runs ``fn(client_session)``; over HTTP ``key`` picks
    the caller (default the admin key), over stdio the process's configuration decides."""

    name: str
    store: Store
    stdio: ThreadSession | None = None
    http: HttpMcp | None = None
    rest: LiveServer | None = None

    def run(self, fn: Callable[[ClientSession], Awaitable[Any]], key: str | None = None) -> Any:
        if self.stdio is not None:
            return self.stdio(fn)
        assert self.http is not None
        url = self.http.url

        async def main() -> Any:
            async with http_session(url, {"x-api-key": key or self.store.keys.admin}) as session:
                return await fn(session)

        return asyncio.run(main())
