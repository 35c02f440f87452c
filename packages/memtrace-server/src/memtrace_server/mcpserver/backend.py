"""Where the memories are and who a call acts as: :class:`EmbeddedBackend` (a store in this
process, API keys checked against it over HTTP) and :class:`RemoteBackend` (a memtrace server,
each HTTP caller's own key). No ``mcp`` SDK import here: the command line builds these before
it starts the server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from memtrace_core import (
    AsyncMemtrace,
    AuthenticationError,
    NotFoundError,
    StoreError,
    open_engine,
)
from memtrace_core.api import AsyncMemoryAPI
from memtrace_core.client import AsyncMemtraceClient
from memtrace_core.engine import DEFAULT_ORG, EngineConfig

from ..auth import KEY_RE, AuthAdmin, Authenticator, Principal, auth_store_of, key_digest
from .tools import Defaults

DEFAULT_TIMEOUT = 60.0
_logger = logging.getLogger("memtrace_server.mcp")


@dataclass(frozen=True)
class Caller:
    """An authenticated HTTP caller: its principal (embedded store) or its key (server)."""

    principal: Principal | None = None
    api_key: str | None = None


@dataclass
class ServerOptions:
    defaults: Defaults
    timeout: float = DEFAULT_TIMEOUT


# -- backends -----------------------------------------------------------------------------------


class Backend:
    """Where the memories are, and who a call acts as."""

    #: shown on the start-up line
    description = ""

    async def start(self, *, http: bool) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def authenticate(self, api_key: str | None) -> Caller:
        """The caller of an HTTP request. Raises AuthenticationError (401) or StoreError /
        TransportError (503)."""
        raise NotImplementedError

    def api_for(self, caller: Caller | None) -> tuple[AsyncMemoryAPI, Principal | None]:
        """The method set a call uses, and the principal whose permissions it must hold
        (None: the backend enforces them itself, or stdio's local user holds them all)."""
        raise NotImplementedError


class EmbeddedBackend(Backend):
    """An embedded store (``sqlite:///…``, or any store URL a plugin registers)."""

    def __init__(
        self,
        url: str,
        *,
        org_id: str,
        engine_config: EngineConfig | None = None,
        cache_seconds: float = 300,
        revocation_poll_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.org_id = org_id
        self.engine_config = engine_config
        self.cache_seconds = cache_seconds
        self.revocation_poll_seconds = revocation_poll_seconds
        self.engine: AsyncMemtrace | None = None
        self.authenticator: Authenticator | None = None
        self._views: dict[str, AsyncMemtrace] = {}
        self.description = f"embedded store {url}"

    async def start(self, *, http: bool) -> None:
        path = _sqlite_path(self.url)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine = await open_engine(self.url, org_id=self.org_id, config=self.engine_config)
        if self.org_id != DEFAULT_ORG:
            try:
                await AuthAdmin(auth_store_of(self.engine), None).get_org(self.org_id)
            except NotFoundError:
                await self.engine.close()
                raise NotFoundError(
                    f"no org {self.org_id!r} in {self.url} (see `memtrace org list --store "
                    f"{self.url}`)"
                ) from None
        if http:
            self.authenticator = Authenticator(
                auth_store_of(self.engine),
                cache_seconds=self.cache_seconds,
                revocation_poll_seconds=self.revocation_poll_seconds,
            )
            await self.authenticator.start()
            if not await AuthAdmin(auth_store_of(self.engine), None).list_keys():
                _logger.warning(
                    "memtrace mcp: %s has no API keys yet, so every HTTP client gets 401: "
                    "create one with `memtrace key create --store %s --name <name>`",
                    self.url,
                    self.url,
                )

    async def close(self) -> None:
        if self.authenticator is not None:
            await self.authenticator.stop()
        if self.engine is not None:
            await self.engine.close()

    async def authenticate(self, api_key: str | None) -> Caller:
        assert self.authenticator is not None
        return Caller(principal=await self.authenticator.authenticate(api_key))

    def api_for(self, caller: Caller | None) -> tuple[AsyncMemoryAPI, Principal | None]:
        engine = self.engine
        if engine is None:
            raise StoreError("the memtrace MCP server is not started")
        if caller is None or caller.principal is None:
            if self.authenticator is not None:
                # over HTTP every call has an authenticated caller; never fall back to the
                # local user's unrestricted access
                raise AuthenticationError("no authenticated caller for this request")
            return engine, None
        org = caller.principal.org_id
        view = self._views.get(org)
        if view is None:
            if len(self._views) > 10_000:
                self._views.clear()
            view = self._views[org] = engine.with_org(org)
        return view, caller.principal


class RemoteBackend(Backend):
    """A memtrace server (``http(s)://…``)."""

    #: how long a caller's key checked through /api/v1/me is trusted before it is checked
    #: again (every call is also checked by the server itself)
    KEY_CHECK_SECONDS = 30.0
    MAX_CLIENTS = 256

    def __init__(self, url: str, *, api_key: str | None, timeout: float = 30.0) -> None:
        # the base URL, also when given with the API prefix (http://host:9100/api/v1)
        self.url = url.rstrip("/").removesuffix("/api/v1")
        self.api_key = api_key
        self.timeout = timeout
        self.client: AsyncMemtraceClient | None = None
        self._clients: OrderedDict[str, AsyncMemtraceClient] = OrderedDict()
        self._checked: dict[str, float] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self.description = f"memtrace server {self.url}"

    async def start(self, *, http: bool) -> None:
        if not http:
            self.client = AsyncMemtraceClient(self.url, api_key=self.api_key, timeout=self.timeout)

    async def close(self) -> None:
        clients = list(self._clients.values())
        if self.client is not None:
            clients.append(self.client)
        self._clients.clear()
        for client in clients:
            await client.close()

    def _client_for(self, api_key: str, *, keep: bool = True) -> AsyncMemtraceClient:
        digest = key_digest(api_key)
        client = self._clients.get(digest)
        if client is None:
            client = AsyncMemtraceClient(self.url, api_key=api_key, timeout=self.timeout)
            if not keep:  # a key not checked yet: it must not evict a caller's client
                return client
            self._clients[digest] = client
            while len(self._clients) > self.MAX_CLIENTS:
                _, old = self._clients.popitem(last=False)
                task = asyncio.ensure_future(old.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        else:
            self._clients.move_to_end(digest)
        return client

    async def authenticate(self, api_key: str | None) -> Caller:
        if api_key is None or not api_key.strip():
            raise AuthenticationError("missing API key")
        api_key = api_key.strip()
        digest = key_digest(api_key)
        now = time.monotonic()
        if not KEY_RE.match(api_key):
            raise AuthenticationError("invalid API key")
        if now - self._checked.get(digest, -1e18) >= self.KEY_CHECK_SECONDS:
            known = digest in self._clients
            client = self._client_for(api_key, keep=known)
            try:
                await client._request("GET", "/me")
            finally:
                if not known:
                    await client.close()
            if len(self._checked) > 10_000:
                self._checked.clear()
            self._checked[digest] = now
        return Caller(api_key=api_key)

    def api_for(self, caller: Caller | None) -> tuple[AsyncMemoryAPI, Principal | None]:
        if caller is not None and caller.api_key is not None:
            return self._client_for(caller.api_key), None
        if self.client is None:
            raise AuthenticationError("no API key for this call")
        return self.client, None


def _sqlite_path(url: str) -> str | None:
    if not url.lower().startswith("sqlite:"):
        return None
    from memtrace_core.stores.sqlite import SQLiteStore

    path: str = SQLiteStore.from_url(url).path
    return None if path == ":memory:" else path
