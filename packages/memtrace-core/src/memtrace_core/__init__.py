"""memtrace-core: durable, time-ordered memory for AI agents — plain text on a timeline.

Three lines::

    from memtrace_core import connect
    mt = connect("sqlite:///memtrace.db")
    mt.remember("my-agent", "Deployed v1.2 to staging")

``connect`` picks the transport from the URL: ``sqlite:///path`` runs the engine in-process on
the embedded store; ``http(s)://…`` talks to a memtrace server. :func:`aconnect` is the async
variant.
"""

from __future__ import annotations

from typing import Any

from .api import AsyncMemoryAPI, MemoryAPI
from .engine import DEFAULT_ORG, AsyncMemtrace, EngineConfig
from .errors import (
    AuthenticationError,
    ConflictError,
    CorruptRowError,
    DuplicateMemoryError,
    MemtraceError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    StoreError,
    SupersededError,
    TransportError,
    ValidationError,
    WriteRejectedError,
)
from .feed import WatchStream
from .hookspecs import hookimpl
from .models import (
    Activity,
    ActivityBucket,
    ActivityQuery,
    AddMemoryRequest,
    Agent,
    AgentContext,
    AgentList,
    AgentStats,
    BatchResult,
    ContextOptions,
    CreateSessionRequest,
    DeleteFilter,
    ImportResult,
    KeyLookup,
    ListOptions,
    Memory,
    MemoryCreate,
    MemoryList,
    MemorySummary,
    NamespaceList,
    NamespaceQuery,
    PopResult,
    RegisterAgentRequest,
    RetentionInfo,
    RetentionPolicy,
    RetentionReport,
    RetentionRule,
    SearchQuery,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
    StreamEvent,
    SummaryQuery,
    UpdateSessionRequest,
    WatchOptions,
)
from .plugins import PluginRegistry, default_registry
from .sync import Memtrace

__version__ = "0.1.0"

_HTTP_SCHEMES = ("http://", "https://")


def _engine(
    url: str, *, org_id: str, config: EngineConfig | None, plugins: PluginRegistry | None
) -> AsyncMemtrace:
    registry = plugins or default_registry()
    store = registry.store_for(url)
    return AsyncMemtrace(store, config=config, plugins=registry, org_id=org_id)


def connect(
    url: str,
    *,
    api_key: str | None = None,
    org_id: str = DEFAULT_ORG,
    config: EngineConfig | None = None,
    plugins: PluginRegistry | None = None,
    **client_options: Any,
) -> MemoryAPI:
    """Open memtrace at ``url`` and return a blocking handle (a :class:`MemoryAPI`).

    * ``sqlite:///relative.db`` / ``sqlite:////absolute.db`` (and any scheme a plugin
      registers): a :class:`Memtrace` engine over that store, scoped to ``org_id``;
    * ``http://`` / ``https://``: a :class:`~memtrace_core.client.MemtraceClient` for a memtrace
      server (the org comes from ``api_key``).
    """
    if url.startswith(_HTTP_SCHEMES):
        from .client import MemtraceClient

        return MemtraceClient(url, api_key=api_key, **client_options)
    engine = _engine(url, org_id=org_id, config=config, plugins=plugins)
    twin = Memtrace(engine)
    try:
        twin._portal.call(engine.open())
    except BaseException:
        twin._portal.close()
        raise
    return twin


async def aconnect(
    url: str,
    *,
    api_key: str | None = None,
    org_id: str = DEFAULT_ORG,
    config: EngineConfig | None = None,
    plugins: PluginRegistry | None = None,
    **client_options: Any,
) -> AsyncMemoryAPI:
    """Async :func:`connect` (an :class:`AsyncMemoryAPI`): an opened :class:`AsyncMemtrace` (or an
    :class:`~memtrace_core.client.AsyncMemtraceClient` for ``http(s)://``)."""
    if url.startswith(_HTTP_SCHEMES):
        from .client import AsyncMemtraceClient

        return AsyncMemtraceClient(url, api_key=api_key, **client_options)
    return await open_engine(url, org_id=org_id, config=config, plugins=plugins)


async def open_engine(
    url: str,
    *,
    org_id: str = DEFAULT_ORG,
    config: EngineConfig | None = None,
    plugins: PluginRegistry | None = None,
) -> AsyncMemtrace:
    """The engine itself (not only its method set) over the store at ``url``, opened: for code
    that needs the engine's own attributes (``store``, ``with_org``), such as the server."""
    return await _engine(url, org_id=org_id, config=config, plugins=plugins).open()


__all__ = [
    "DEFAULT_ORG",
    "Activity",
    "ActivityBucket",
    "ActivityQuery",
    "AddMemoryRequest",
    "Agent",
    "AgentContext",
    "AgentList",
    "AgentStats",
    "AsyncMemoryAPI",
    "AsyncMemtrace",
    "AuthenticationError",
    "BatchResult",
    "ConflictError",
    "ContextOptions",
    "CorruptRowError",
    "CreateSessionRequest",
    "DeleteFilter",
    "DuplicateMemoryError",
    "EngineConfig",
    "ImportResult",
    "KeyLookup",
    "ListOptions",
    "Memory",
    "MemoryAPI",
    "MemoryCreate",
    "MemoryList",
    "MemorySummary",
    "Memtrace",
    "MemtraceError",
    "NamespaceList",
    "NamespaceQuery",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PluginRegistry",
    "PopResult",
    "RegisterAgentRequest",
    "RetentionInfo",
    "RetentionPolicy",
    "RetentionReport",
    "RetentionRule",
    "SearchQuery",
    "SearchResult",
    "Session",
    "SessionContext",
    "SessionList",
    "StoreError",
    "StreamEvent",
    "SummaryQuery",
    "SupersededError",
    "TransportError",
    "UpdateSessionRequest",
    "ValidationError",
    "WatchOptions",
    "WatchStream",
    "WriteRejectedError",
    "__version__",
    "aconnect",
    "connect",
    "hookimpl",
    "open_engine",
]
