"""memtrace integration for LangChain / LangGraph — skeleton package (no public API yet).

The integration will accept any memtrace handle from :func:`memtrace_core.connect`, local or
remote, so it works the same against an embedded store and a memtrace server.
"""

from __future__ import annotations

__version__ = "0.0.1"

__all__ = ["__version__"]
