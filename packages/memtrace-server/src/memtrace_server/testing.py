"""Run a real memtrace server inside an asyncio program (tests, notebooks, embedding).

>>> async with serve(config) as live:                                   # doctest: +SKIP
...     async with httpx.AsyncClient(base_url=live.url) as http: ...

The server listens on a real socket (``127.0.0.1`` and a free port unless the config says
otherwise) and goes through the same lifecycle as ``memtrace serve``: the engine is opened in
``before_server_start`` and closed, pending writes committed, in ``after_server_stop``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sanic import Sanic

from .app import create_app
from .state import State

if TYPE_CHECKING:
    from .config import ServerConfig


@dataclass
class LiveServer:
    app: Sanic[Any, Any]
    url: str
    port: int

    @property
    def state(self) -> State:
        state: State = self.app.ctx.state
        return state


@asynccontextmanager
async def serve(config: ServerConfig, *, name: str | None = None) -> AsyncIterator[LiveServer]:
    """Serve ``config`` until the block exits (on ``config.server.port``; 0 = a free port)."""
    app = create_app(
        config,
        name=name or f"memtrace_{uuid.uuid4().hex[:12]}",
        setup_logging=False,
        touchup=False,
    )
    host = config.server.host or "127.0.0.1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, config.server.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    server: Any = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    if server is None:  # pragma: no cover - only with return_asyncio_server=False
        raise RuntimeError("sanic did not return a server")
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield LiveServer(app=app, url=f"http://{host}:{port}", port=port)
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        sock.close()


@contextmanager
def serve_in_thread(config: ServerConfig, *, name: str | None = None) -> Iterator[LiveServer]:
    """:func:`serve` on a private event loop in a background thread, for blocking callers (and
    for async callers whose own loop must stay free)."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        async with serve(config, name=name) as live:
            stop = asyncio.Event()
            holder.update(live=live, loop=asyncio.get_running_loop(), stop=stop)
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the caller below
            holder["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="memtrace-test-server", daemon=True)
    thread.start()
    ready.wait(60)
    if "live" not in holder:
        thread.join(5)
        raise RuntimeError("server did not start") from holder.get("error")
    try:
        yield holder["live"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(60)
        if "error" in holder:
            raise RuntimeError("server failed") from holder["error"]


def config_for(storage_url: str, *, bcrypt_cost: int = 4, **server: Any) -> ServerConfig:
    """A configuration for a throw-away server: 127.0.0.1, a free port, cheap bcrypt, quiet
    logs; ``server`` overrides ``[server]`` keys (e.g. ``max_body_bytes``, ``cors_origins``)."""
    from .config import AuthSection, LogSection, ServerConfig, ServerSection, StorageSection

    return ServerConfig(
        server=ServerSection(**{"host": "127.0.0.1", "port": 0, **server}),
        log=LogSection(level="warning"),
        auth=AuthSection(bcrypt_cost=bcrypt_cost),
        storage=StorageSection(url=storage_url),
    )


async def bootstrap_admin_key(storage_url: str, *, bcrypt_cost: int = 4) -> str:
    """Create ``org_default`` and its admin key in the store at ``storage_url`` (first run
    only) and return the plaintext key."""
    from memtrace_core import open_engine

    from .auth import AuthAdmin, auth_store_of

    engine = await open_engine(storage_url)
    try:
        key = await AuthAdmin(auth_store_of(engine), bcrypt_cost=bcrypt_cost).bootstrap()
    finally:
        await engine.close()
    if key is None:
        raise RuntimeError(f"{storage_url} already has organizations")
    return key
