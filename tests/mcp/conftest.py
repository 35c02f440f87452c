"""Fixtures of the MCP server's tests: a store with keys, a real ``memtrace serve``, the MCP
server spawned as a subprocess over stdio (per test) and over streamable HTTP (per module),
and the SDK's own client on both transports, on whichever ``mcp`` major is installed.

Four setups (``setup`` fixture): ``stdio-embedded`` (``memtrace mcp --url sqlite:///…``),
``stdio-server`` (``MEMTRACE_URL`` = a live ``memtrace serve``, ``MEMTRACE_API_KEY``),
``http-embedded`` and ``http-server`` (``--transport http``; the client sends its key).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from memtrace_server.auth import AuthAdmin, auth_store_of
from memtrace_server.testing import LiveServer, bootstrap_admin_key, config_for, serve_in_thread

try:
    import mcp.server.mcpserver  # noqa: F401

    MCP_V2 = True
except ImportError:
    MCP_V2 = False

from mcp.client.stdio import stdio_client

from mcp import ClientSession, StdioServerParameters

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


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A SQLite store with an admin key, a read-only key and a key of another org."""
    return make_store(tmp_path_factory.mktemp("mcp-store"))


@pytest.fixture(scope="module")
def rest(store: Store) -> Iterator[LiveServer]:
    """A real ``memtrace serve`` on the store, on 127.0.0.1."""
    gc.collect()  # see tests/integrations/conftest.py (the sporadic CPython AST error)
    with serve_in_thread(config_for(store.url)) as live:
        yield live


def base_env(tmp: Path) -> dict[str, str]:
    """The environment of a spawned MCP server: no memtrace settings leak in from outside,
    the data directory is the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMTRACE_", "FASTMCP_"))}
    env["MEMTRACE_DATA_DIR"] = str(tmp / "data")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def mcp_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "memtrace_server", "mcp", *args]


# -- clients ------------------------------------------------------------------------------------


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
        from mcp.client.streamable_http import streamablehttp_client

        async with (
            streamablehttp_client(url, headers=headers) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


# -- spawned HTTP servers -----------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def http_embedded(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpMcp]:
    tmp = tmp_path_factory.mktemp("mcp-http-embedded")
    with spawn_http(["--url", store.url, "--agent-id", AGENT], base_env(tmp), tmp / "err.log") as s:
        yield s


@pytest.fixture(scope="module")
def http_server(
    rest: LiveServer, store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpMcp]:
    tmp = tmp_path_factory.mktemp("mcp-http-server")
    env = base_env(tmp)
    # the process's own key must never be lent to a caller: set one to prove it is not used
    env["MEMTRACE_API_KEY"] = store.keys.admin
    with spawn_http(["--url", rest.url, "--agent-id", AGENT], env, tmp / "err.log") as s:
        yield s


# -- the four setups ----------------------------------------------------------------------------

Open = Callable[..., contextlib.AbstractAsyncContextManager[ClientSession]]


@dataclass
class Setup:
    """How to open an MCP client session in one setup; ``key`` picks the caller over HTTP
    (over stdio the process's configuration decides)."""

    name: str
    store: Store
    open: Callable[[str | None], contextlib.AbstractAsyncContextManager[ClientSession]]
    rest: LiveServer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def http(self) -> bool:
        return self.name.startswith("http")

    def run(self, fn: Callable[[ClientSession], Awaitable[Any]], key: str | None = None) -> Any:
        async def main() -> Any:
            async with self.open(key) as session:
                return await fn(session)

        return asyncio.run(main())


def _setup(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    store: Store = request.getfixturevalue("store")
    if name == "stdio-embedded":
        env = base_env(tmp_path)
        return Setup(
            name,
            store,
            lambda key: stdio_session(["--url", store.url, "--agent-id", AGENT], env),
        )
    if name == "stdio-server":
        live: LiveServer = request.getfixturevalue("rest")
        env = {**base_env(tmp_path), "MEMTRACE_URL": live.url, "MEMTRACE_API_KEY": store.keys.admin}
        return Setup(name, store, lambda key: stdio_session(["--agent-id", AGENT], env), rest=live)
    server: HttpMcp = request.getfixturevalue(
        "http_embedded" if name == "http-embedded" else "http_server"
    )
    live_rest = request.getfixturevalue("rest") if name == "http-server" else None
    return Setup(
        name,
        store,
        lambda key: http_session(server.url, {"x-api-key": key or store.keys.admin}),
        rest=live_rest,
        extra={"server": server},
    )


@pytest.fixture(params=SETUPS)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    return _setup(str(request.param), request, tmp_path)
