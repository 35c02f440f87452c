"""memtrace as an MCP server (``memtrace mcp`` / ``memtrace-mcp``): persistent, searchable,
time-aware memory for Claude Code, Cursor and any MCP client, on an embedded store or a shared
memtrace server. See docs/mcp.md.

* :mod:`.tools` — the tools, derived from the REST operations table;
* :mod:`.server` — backends, the SDK server with tools, resources and the prompt, stdio and
  streamable HTTP with per-client API keys;
* :mod:`.cli` — the command line;
* :mod:`.compat` — the differences between the ``mcp`` SDK's 1.x and 2.x.

Importing this package does not import the ``mcp`` SDK.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
