"""memtrace for LangChain / LangGraph: long-term memory the framework's own way.

* :class:`MemtraceStore` — a LangGraph store (``create_agent(..., store=MemtraceStore(mt))``,
  ``ToolRuntime.store``) whose items are ordinary memtrace memories;
* :func:`memtrace_tools` — ``remember``, ``recall``, ``search``, ``decide``,
  ``session_context`` and ``forget`` as LangChain tools;
* :class:`MemtraceMiddleware` — agent middleware that injects the session (or agent) context
  into each model call and can record the turns;
* :class:`MemtraceRetriever` — memtrace's ranked keyword search as a ``BaseRetriever``;
* ``MemtraceMemory`` — the classic ``BaseMemory`` (extra ``memtrace-langchain[classic]``),
  imported on first use.

Every class takes a handle from :func:`memtrace_core.connect` (embedded store or memtrace
server) or a memtrace URL. memtrace makes no embedding and no LLM call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .middleware import DEFAULT_HEADING, MemtraceMiddleware
from .retriever import MemtraceRetriever, memory_to_document
from .store import MemtraceStore
from .tools import TOOL_NAMES, memtrace_tools

if TYPE_CHECKING:
    from .classic import MemtraceMemory

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_HEADING",
    "TOOL_NAMES",
    "MemtraceMemory",
    "MemtraceMiddleware",
    "MemtraceRetriever",
    "MemtraceStore",
    "__version__",
    "memory_to_document",
    "memtrace_tools",
]


def __getattr__(name: str) -> Any:
    """``MemtraceMemory`` on first use: it needs langchain-classic (the ``classic`` extra)."""
    if name == "MemtraceMemory":
        from .classic import MemtraceMemory

        return MemtraceMemory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
