"""memtrace for LangChain / LangGraph: long-term memory the framework's own way.

* :class:`MemtraceStore` — a LangGraph store (``create_agent(..., store=MemtraceStore(mt))``,
  ``ToolRuntime.store``) whose items are ordinary memtrace memories.

Every class takes a handle from :func:`memtrace_core.connect` (embedded store or memtrace
server) or a memtrace URL. memtrace makes no embedding and no LLM call.
"""

from __future__ import annotations

from .store import MemtraceStore

__version__ = "0.1.0"

__all__ = ["MemtraceStore", "__version__"]
