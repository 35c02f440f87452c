"""``memtrace mcp`` / ``memtrace-mcp``: the arguments, the backend they choose, and the run.

::

    memtrace mcp [--url URL] [--agent-id ID] [--session-id ID] [--org ORG] [--config PATH]
                 [--transport stdio|http] [--host 127.0.0.1] [--port 9101] [--allow-host H:P]
                 [--timeout SECONDS]

The store is ``--url``, else ``MEMTRACE_URL``, else an embedded SQLite file under the user's
data directory (:func:`default_store_url`), created on first use. An ``http(s)://`` URL is a
memtrace server: over stdio the process calls it with ``MEMTRACE_API_KEY`` (required); over
HTTP every MCP client sends its own key. ``--agent-id`` / ``MEMTRACE_AGENT_ID`` and
``--session-id`` / ``MEMTRACE_SESSION_ID`` are the defaults the tools use when the model gives
none.

This module does not import the ``mcp`` SDK (``memtrace serve`` does not pay for it); the run
does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backend import Backend, ServerOptions

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
DEFAULT_PORT = 9101
_HTTP = ("http://", "https://")


class McpConfigError(Exception):
    """A start-up problem the user must fix (printed as ``error: …``, exit status 2)."""


def data_dir() -> Path:
    """The user's data directory for memtrace: ``MEMTRACE_DATA_DIR`` if set, else
    ``$XDG_DATA_HOME/memtrace`` (``~/.local/share/memtrace``) on Linux and other Unixes,
    ``~/Library/Application Support/memtrace`` on macOS, ``%LOCALAPPDATA%\\memtrace`` on
    Windows."""
    explicit = os.environ.get("MEMTRACE_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "memtrace"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "memtrace"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "memtrace"


def default_store_url() -> str:
    """``sqlite:///<data_dir()>/memtrace.db``."""
    from ..config import sqlite_url_for_path

    return sqlite_url_for_path(str(data_dir() / "memtrace.db"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``memtrace mcp`` (shared by the ``memtrace-mcp`` script)."""
    parser.add_argument(
        "--url",
        "--store",
        dest="url",
        default=argparse.SUPPRESS,
        help="store URL (sqlite:///path.db) or memtrace server (http://host:9100); default "
        "MEMTRACE_URL, else the configuration's storage.url when a memtrace.toml is found, "
        "else an embedded store under the user's data directory",
    )
    parser.add_argument("--agent-id", help="default agent of the tools (default MEMTRACE_AGENT_ID)")
    parser.add_argument(
        "--session-id", help="default session of the tools (default MEMTRACE_SESSION_ID)"
    )
    parser.add_argument(
        "--org", help="org of an embedded store over stdio (default: the store's default org)"
    )
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="memtrace.toml (store, dedup window, limits, auth cache); default: as memtrace serve",
    )
    parser.add_argument(
        "--transport", choices=("stdio", "http"), default="stdio", help="default stdio"
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP: address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP: port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="HTTP: also accept this Host header (behind a proxy; '*' for any port); repeatable",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds a tool call may take before it fails (default 60)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memtrace-mcp",
        description="memtrace memory for MCP clients (Claude Code, Cursor, …): stdio by "
        "default, or streamable HTTP with --transport http.",
    )
    add_arguments(parser)
    return parser


def _check_id(value: str | None, what: str) -> str | None:
    if value is None or value == "":
        return None
    from memtrace_core.models import ID_PATTERN

    if not ID_PATTERN.match(value):
        raise McpConfigError(
            f"invalid {what} {value!r}: a letter, then up to 127 letters, digits, '_' or '-'"
        )
    return value


def configure(args: argparse.Namespace) -> tuple[Backend, ServerOptions]:
    """The backend and options ``args`` choose. Raises McpConfigError."""
    from ..config import ConfigError, config_file, load_config
    from .backend import EmbeddedBackend, RemoteBackend, ServerOptions
    from .tools import Defaults

    config_path = getattr(args, "config", None)
    url = getattr(args, "url", None) or getattr(args, "store", None)
    url = url or os.environ.get("MEMTRACE_URL") or None
    try:
        if url is None and (
            config_file(config_path) is not None
            or os.environ.get("MEMTRACE_STORAGE_URL")
            or os.environ.get("MEMTRACE_AUTH_DB_PATH")
        ):
            url = load_config(config_path).storage.url  # the store `memtrace serve` uses
    except ConfigError as exc:
        raise McpConfigError(str(exc)) from None
    url = url or default_store_url()
    defaults = Defaults(
        agent_id=_check_id(args.agent_id or os.environ.get("MEMTRACE_AGENT_ID"), "agent id"),
        session_id=_check_id(
            args.session_id or os.environ.get("MEMTRACE_SESSION_ID"), "session id"
        ),
    )
    if not args.timeout > 0:
        raise McpConfigError("--timeout must be a positive number of seconds")
    if not 0 < args.port < 65536:
        raise McpConfigError("--port must be between 1 and 65535")
    options = ServerOptions(defaults=defaults, timeout=args.timeout)
    http = args.transport == "http"
    if url.startswith(_HTTP):
        if args.org:
            raise McpConfigError(
                "--org is for an embedded store: a server takes the org from the key"
            )
        key = os.environ.get("MEMTRACE_API_KEY", "").strip() or None
        if http:
            if key:
                _notice(
                    "MEMTRACE_API_KEY is not used over HTTP: every MCP client sends its own key"
                )
            key = None
        elif key is None:
            raise McpConfigError(
                f"MEMTRACE_API_KEY is required to use the memtrace server at {url} "
                "(create one there with `memtrace key create --name mcp`)"
            )
        return RemoteBackend(url, api_key=key, timeout=min(args.timeout, 30.0)), options
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise McpConfigError(str(exc)) from None
    from memtrace_core.engine import DEFAULT_ORG

    if http and args.org:
        raise McpConfigError("--org is for stdio: over HTTP the org comes from each client's key")
    backend = EmbeddedBackend(
        url,
        org_id=args.org or DEFAULT_ORG,
        engine_config=config.engine,
        cache_seconds=config.auth.cache_seconds,
        revocation_poll_seconds=config.auth.revocation_poll_seconds,
    )
    return backend, options


def _notice(text: str) -> None:
    # stderr only: on stdio, stdout carries the protocol
    print(f"memtrace mcp: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the MCP server until the client disconnects (stdio) or it is stopped (HTTP)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        backend, options = configure(args)
    except McpConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    from memtrace_core import MemtraceError

    try:
        from .server import serve_http, serve_stdio
    except ImportError as exc:  # pragma: no cover - mcp is a dependency of memtrace-server
        print(
            f"error: the mcp package is missing or too old ({exc}); pip install 'mcp>=1.23'",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        if args.transport == "stdio":
            _notice(f"stdio, {backend.description}")
            asyncio.run(serve_stdio(backend, options))
        else:
            if args.host not in ("127.0.0.1", "localhost", "::1"):
                _notice(
                    f"listening on {args.host}, beyond loopback: put TLS in front of it (API "
                    "keys travel in headers), and name the Host clients use with --allow-host "
                    "(others get 421)"
                )
            asyncio.run(
                serve_http(
                    backend,
                    options,
                    host=args.host,
                    port=args.port,
                    extra_hosts=args.allow_host,
                    ready=lambda url: _notice(f"streamable HTTP at {url}, {backend.description}"),
                )
            )
    except KeyboardInterrupt:
        return EXIT_OK
    except MemtraceError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """The ``memtrace-mcp`` console script."""
    return run(build_parser().parse_args(argv))
