"""memtrace-server: the memtrace REST API (Sanic), API-key auth with orgs, configuration and the
``memtrace`` command-line tool."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
