"""Per-worker server state (``app.ctx.state``): the engine, the authenticator, metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memtrace_core import AsyncMemtrace
from memtrace_core.stores.base import StoreHealth

from .metrics import Metrics

if TYPE_CHECKING:
    from .config import ServerConfig

ALL_PERMISSIONS = ("read", "write", "admin")


@dataclass(frozen=True)
class Documents:
    """The API's documents, built once by the app (:mod:`memtrace_server.openapi`) and served
    by the ``/openapi.json`` and ``/docs`` handlers."""

    openapi_json: bytes = b""
    docs_html: str = ""


@dataclass
class State:
    config: ServerConfig
    metrics: Metrics = field(default_factory=Metrics)
    engine: AsyncMemtrace | None = None
    authenticator: Any = None
    admin: Any = None
    #: this worker's retention sweeper (``[retention] sweep``), or None
    sweeper: Any = None
    bootstrap_key: str | None = None
    started: float = field(default_factory=time.monotonic)
    documents: Documents = field(default_factory=Documents)
    #: the store's latest health report (taken by /ready; /health shows its ``arc``)
    last_health: StoreHealth | None = None
    #: open live streams of this worker per API key (``server.max_streams_per_key``)
    streams_per_key: dict[str, int] = field(default_factory=dict)
    _views: dict[str, AsyncMemtrace] = field(default_factory=dict)

    def view(self, org_id: str) -> AsyncMemtrace:
        """The engine scoped to ``org_id`` (views are cached: they are cheap but not free)."""
        view = self._views.get(org_id)
        if view is None:
            engine = self.engine
            if engine is None:
                from memtrace_core import StoreError

                raise StoreError("server is not ready")
            if len(self._views) > 10_000:
                self._views.clear()
            view = self._views[org_id] = engine.with_org(org_id)
        return view

    def forget(self, org_id: str) -> None:
        """Drop the cached view of ``org_id`` (after the org is deleted)."""
        self._views.pop(org_id, None)
