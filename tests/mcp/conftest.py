"""The MCP tests' fixtures: a store with keys, a real ``memtrace serve``, and the MCP server
spawned over stdio and streamable HTTP, shared across the run (helpers: mcp_support.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from mcp_support import (
    AGENT,
    SETUPS,
    HttpMcp,
    Setup,
    Store,
    ThreadSession,
    base_env,
    make_store,
    spawn_http,
)

from memtrace_server.testing import LiveServer, config_for, serve_in_thread


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A SQLite store with an admin key, a read-only key and a key of another org."""
    return make_store(tmp_path_factory.mktemp("mcp-store"))


@pytest.fixture(scope="session")
def rest(store: Store) -> Iterator[LiveServer]:
    """A real ``memtrace serve`` on the store, on 127.0.0.1."""
    gc.collect()  # see tests/integrations/conftest.py (the sporadic CPython AST error)
    with serve_in_thread(config_for(store.url)) as live:
        yield live


@pytest.fixture(scope="session")
def stdio_embedded(
    store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadSession]:
    """``memtrace mcp --url sqlite:///…`` over stdio, one process for the run."""
    tmp = tmp_path_factory.mktemp("mcp-stdio-embedded")
    session = ThreadSession(["--url", store.url, "--agent-id", AGENT], base_env(tmp))
    yield session
    session.close()


@pytest.fixture(scope="session")
def stdio_server(
    rest: LiveServer, store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadSession]:
    """``memtrace mcp`` over stdio against ``memtrace serve`` (MEMTRACE_URL / MEMTRACE_API_KEY)."""
    tmp = tmp_path_factory.mktemp("mcp-stdio-server")
    env = {**base_env(tmp), "MEMTRACE_URL": rest.url, "MEMTRACE_API_KEY": store.keys.admin}
    session = ThreadSession(["--agent-id", AGENT], env)
    yield session
    session.close()


@pytest.fixture(scope="session")
def http_embedded(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpMcp]:
    tmp = tmp_path_factory.mktemp("mcp-http-embedded")
    with spawn_http(["--url", store.url, "--agent-id", AGENT], base_env(tmp), tmp / "err.log") as s:
        yield s


@pytest.fixture(scope="session")
def http_server(
    rest: LiveServer, store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpMcp]:
    tmp = tmp_path_factory.mktemp("mcp-http-server")
    env = base_env(tmp)
    # the process's own key must never be lent to a caller: set one to prove it is not used
    env["MEMTRACE_API_KEY"] = store.keys.admin
    with spawn_http(["--url", rest.url, "--agent-id", AGENT], env, tmp / "err.log") as s:
        yield s


@pytest.fixture(params=SETUPS)
def setup(request: pytest.FixtureRequest) -> Setup:
    name = str(request.param)
    store: Store = request.getfixturevalue("store")
    server = name.endswith("-server")
    rest = request.getfixturevalue("rest") if server else None
    if name.startswith("stdio"):
        stdio = request.getfixturevalue("stdio_server" if server else "stdio_embedded")
        return Setup(name, store, stdio=stdio, rest=rest)
    http = request.getfixturevalue("http_server" if server else "http_embedded")
    return Setup(name, store, http=http, rest=rest)
