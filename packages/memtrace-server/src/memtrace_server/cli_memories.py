"""``memtrace memories list|search|get|tail``: read an org's memories from a terminal.

::

    memtrace memories list   [TARGET] [FILTERS] [--since T] [--until T] [--limit N]
                             [--offset N] [--order asc|desc] [--json]
    memtrace memories search WORDS... [TARGET] [FILTERS] [--limit N] [--offset N] [--json]
    memtrace memories get    ID [TARGET] [--as-of T] [--json]
    memtrace memories tail   [TARGET] [STREAM FILTERS] [-n N | --after POSITION] [--json]

TARGET is ``--url URL`` (or ``--store URL``), else ``MEMTRACE_URL``, else the configured
``storage.url``: either a store URL (``sqlite:///path.db``, ``postgresql://…``; ``--org``
picks the organization, default org_default) or a memtrace server (``http(s)://…``; its API key
from ``--api-key`` or ``MEMTRACE_API_KEY``; the org is the key's). Both kinds are opened by
:func:`memtrace_core.aconnect` and read through the same methods (``search_memories``,
``get_memory``, ``watch``), so a command behaves the same on either.

Output: one line per memory (UTC event time, agent, memory type/event type, id, content cut
to the terminal's width), ``get`` the memory in full; with ``--json``, the API's JSON: JSON
Lines (one memory per line) for list, search and tail, one document for get.

Memory content is untrusted (agents store what they saw). The human-readable output escapes
every character that could act on a terminal — ANSI escape sequences, ``\\r``, the other C0
and C1 controls, bidi overrides, line separators, lone surrogates — and the JSON output
writes the same characters as ``\\u`` escapes (the same JSON value), so that no memory can
rewrite the operator's screen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from memtrace_core import AsyncMemoryAPI, AuthenticationError, EngineConfig, Memory, aconnect
from memtrace_core.engine import DEFAULT_ORG
from memtrace_core.models import MEMORY_TYPES

from .cli import EXIT_OK, CliError, _check_exists
from .config import load_config

_HTTP = ("http://", "https://")
#: ``list`` and ``search``: memories per page when ``--limit`` is not given.
DEFAULT_LIMIT = 50
#: Column widths are padded up to this many characters at most (longer values push the line).
_MAX_PAD = 24

# ------------------------------------------------------------------------------------------------
# Untrusted text on a terminal


def _safe_char(ch: str, multiline: bool) -> bool:
    if ch.isprintable():
        return True
    if multiline and ch in "\n\t":
        return True
    category = unicodedata.category(ch)
    # spaces (NBSP …), private-use and unassigned code points do nothing on a terminal; the
    # zero-width joiner holds emoji sequences together
    return category in ("Zs", "Co", "Cn") or ch == "\u200d"


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def clean(text: str, *, multiline: bool = False) -> str:
    """``text`` made safe to print on a terminal: every control character (C0 — ESC, ``\\r``,
    BEL, backspace … —, DEL, C1), format character (bidi overrides and isolates, zero-width
    marks), line or paragraph separator and lone surrogate is written as a visible escape
    (``\\x1b``, ``\\u202e``). One line (the default): a newline is shown as ``↵`` and a tab
    as a space; ``multiline`` keeps both."""
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if _safe_char(ch, multiline):
            out.append(ch)
        elif ch == "\n":
            out.append("↵")
        elif ch == "\t":
            out.append(" ")
        else:
            out.append(_escape(ch))
    return "".join(out)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def safe_json(data: Any, *, indent: int | None = None) -> str:
    """``data`` as JSON (UTF-8 text, compact unless ``indent``) in which every character
    :func:`clean` would escape is a ``\\u`` escape: the same JSON value, harmless on a
    terminal. (Outside strings JSON text is ASCII, so only string contents change.)"""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(data, ensure_ascii=False, indent=indent, separators=separators)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escape(ch) for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters count two)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def fit(text: str, columns: int) -> str:
    """``text`` cut to ``columns`` terminal columns, ending with ``…`` when cut."""
    if display_width(text) <= columns:
        return text
    out: list[str] = []
    used = 0
    for ch in text:
        width = _char_width(ch)
        if used + width > columns - 1:
            break
        out.append(ch)
        used += width
    return "".join(out) + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - display_width(text), 0)


# ------------------------------------------------------------------------------------------------
# Rendering


def memory_json(memory: Memory, *, indent: int | None = None, **extra: Any) -> str:
    """The memory as the API returns it (``None`` fields left out), plus ``extra`` keys."""
    data = memory.model_dump(mode="json", exclude_none=True)
    data.update(extra)
    return safe_json(data, indent=indent)


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class LinePrinter:
    """One line per memory: ``time  agent  type/event_type  id  [score]  content``, the
    content cut to ``width`` columns (None: not cut). The agent and type columns are padded
    to the widest value seen so far (at most :data:`_MAX_PAD`)."""

    def __init__(self, out: IO[str], *, width: int | None, score: bool = False) -> None:
        self.out = out
        self.width = width
        self.score = score
        self.agent_width = 0
        self.kind_width = 0

    def measure(self, memories: Sequence[Memory]) -> None:
        for memory in memories:
            self._widths(clean(memory.agent_id), clean(self._kind(memory)))

    @staticmethod
    def _kind(memory: Memory) -> str:
        return f"{memory.memory_type}/{memory.event_type}"

    def _widths(self, agent: str, kind: str) -> None:
        self.agent_width = min(max(self.agent_width, display_width(agent)), _MAX_PAD)
        self.kind_width = min(max(self.kind_width, display_width(kind)), _MAX_PAD)

    def line(self, memory: Memory) -> str:
        agent, kind = clean(memory.agent_id), clean(self._kind(memory))
        self._widths(agent, kind)
        head = [
            _when(memory.time),
            _pad(agent, self.agent_width),
            _pad(kind, self.kind_width),
            clean(memory.id),
        ]
        if self.score:
            head.append("-    " if memory.score is None else f"{memory.score:5.2f}")
        prefix = "  ".join(head) + "  "
        content = clean(memory.content)
        if self.width is not None:
            content = fit(content, max(self.width - display_width(prefix), 10))
        return prefix + content

    def print(self, memory: Memory) -> None:
        self.out.write(self.line(memory) + "\n")


def _indented(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def memory_detail(memory: Memory) -> str:
    """Every field of the memory, one per line, then its content in full (all escaped as
    :func:`clean` does; the content keeps its newlines and tabs)."""

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(UTC).isoformat()

    fields: list[tuple[str, Any]] = [
        ("id", memory.id),
        ("time", iso(memory.time)),
        ("recorded_at", iso(memory.recorded_at)),
        ("org", memory.org_id),
        ("agent", memory.agent_id),
        ("session", memory.session_id),
        ("memory_type", memory.memory_type),
        ("event_type", memory.event_type),
        ("importance", memory.importance),
        ("tags", ", ".join(memory.tags) if memory.tags else None),
        ("namespace", safe_json(memory.namespace) if memory.namespace else None),
        ("key", memory.key),
        ("key_created_at", iso(memory.key_created_at)),
        ("dedup_key", memory.dedup_key),
        ("parent_id", memory.parent_id),
        ("supersedes", memory.supersedes),
        ("superseded_by", memory.superseded_by),
        ("superseded_at", iso(memory.superseded_at)),
        ("expires_at", iso(memory.expires_at)),
        ("score", memory.score),
    ]
    lines = [f"{name + ':':<16}{clean(str(value))}" for name, value in fields if value is not None]
    if memory.metadata:
        lines.append("metadata:")
        lines.append(_indented(safe_json(memory.metadata, indent=2)))
    if memory.payload is not None:
        lines.append("payload:")
        lines.append(_indented(safe_json(memory.payload, indent=2)))
    lines.append("content:")
    lines.append(_indented(clean(memory.content, multiline=True)))
    return "\n".join(lines)


def terminal_width(out: IO[str]) -> int | None:
    """The width lines are cut to: the terminal's when ``out`` is one, else None (piped
    output is not cut)."""
    try:
        if not out.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size((100, 24)).columns


# ------------------------------------------------------------------------------------------------
# Where to read


@dataclass
class Target:
    """A store URL (read directly, ``org`` chosen) or a server URL (``api_key``)."""

    url: str
    api_key: str | None = None
    org: str = DEFAULT_ORG
    config: EngineConfig | None = None

    @property
    def remote(self) -> bool:
        return self.url.startswith(_HTTP)

    async def open(self) -> AsyncMemoryAPI:
        if self.remote:
            return await aconnect(self.url, api_key=self.api_key)
        return await aconnect(self.url, org_id=self.org, config=self.config)


def target_of(args: argparse.Namespace) -> Target:
    """The target of a ``memories`` command (see the module docstring). Raises CliError."""
    # --url of the subcommand, else the global `memtrace --store URL memories …`
    url = getattr(args, "url", None) or getattr(args, "store", None)
    url = url or os.environ.get("MEMTRACE_URL") or None
    config_path = getattr(args, "config", None)
    if url is None:
        url = load_config(config_path).storage.url
    if url.startswith(_HTTP):
        if args.org is not None:
            raise CliError(
                "--org applies to a store URL: a server takes the organization from the API key"
            )
        key = args.api_key or os.environ.get("MEMTRACE_API_KEY", "").strip() or None
        return Target(url, api_key=key)
    if "://" not in url:
        raise CliError(
            f"not a store or server URL: {url!r} (e.g. sqlite:///memtrace.db, "
            "postgresql://…, http://127.0.0.1:9100)"
        )
    if args.api_key:
        raise CliError(
            "--api-key applies to a server URL (http:// or https://); a store URL is read directly"
        )
    config = load_config(config_path, overrides={"storage.url": url})
    _check_exists(url)
    return Target(url, org=args.org or DEFAULT_ORG, config=config.engine)


def _run(args: argparse.Namespace, body: Callable[[AsyncMemoryAPI], Awaitable[int]]) -> int:
    """Open the target, run ``body`` on it, close it. A closed stdout (``| head``) ends the
    command quietly."""
    target = target_of(args)
    with_errors = getattr(sys.stdout, "reconfigure", None)
    if with_errors is not None:  # a character stdout's encoding lacks is escaped, not fatal
        with_errors(errors="backslashreplace")

    async def main() -> int:
        api = await target.open()
        try:
            return await body(api)
        finally:
            await api.close()

    try:
        return asyncio.run(main())
    except AuthenticationError as exc:
        if target.remote and target.api_key is None:
            raise CliError(
                f"{exc.message}: give the server's API key with --api-key or MEMTRACE_API_KEY"
            ) from None
        raise
    except BrokenPipeError:
        # the reader went away: stop writing, without a second error when Python flushes
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


# ------------------------------------------------------------------------------------------------
# Filters


def _split(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",")]
    values = [v for v in values if v]
    if not values:
        raise argparse.ArgumentTypeError("give at least one value")
    return values


def _memory_types(text: str) -> list[str]:
    values = _split(text)
    for value in values:
        if value not in MEMORY_TYPES:
            raise argparse.ArgumentTypeError(
                f"invalid memory type {value!r} (one of {', '.join(MEMORY_TYPES)})"
            )
    return values


def _whole(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (got {value})")
        return value

    return parse


_positive = _whole(1)
_count = _whole(0)


def _importance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {text})")
    return value


#: (option, API field) of the filters every subcommand with filters takes (the stream's).
_STREAM_FILTERS = (
    ("agent", "agent_id"),
    ("session", "session_id"),
    ("type", "memory_types"),
    ("event_type", "event_types"),
    ("tags", "tags"),
    ("tags_any", "tags_any"),
)
#: The further filters of list and search (those of POST /api/v1/search).
_SEARCH_FILTERS = (
    ("since", "since"),
    ("until", "until"),
    ("contains", "content_contains"),
    ("min_importance", "min_importance"),
    ("namespace", "namespace"),
    ("namespace_prefix", "namespace_prefix"),
    ("as_of", "as_of"),
)


def filters_of(args: argparse.Namespace, *, stream: bool = False) -> dict[str, Any]:
    """The API filters the options give (only those given)."""
    pairs = _STREAM_FILTERS if stream else _STREAM_FILTERS + _SEARCH_FILTERS
    out = {field: getattr(args, option) for option, field in pairs}
    out = {k: v for k, v in out.items() if v is not None}
    if not stream and args.include_superseded:
        out["include_superseded"] = True
    return out


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        "--store",
        dest="url",
        metavar="URL",
        help="a store URL (sqlite:///memtrace.db, postgresql://…) or a memtrace server "
        "(http://host:9100); default: MEMTRACE_URL, else the configured storage.url",
    )
    p.add_argument(
        "--api-key",
        metavar="KEY",
        help="a server's API key (default: MEMTRACE_API_KEY, which stays out of the process "
        "list); the organization is the key's",
    )
    p.add_argument("--org", help=f"with a store URL: the organization (default {DEFAULT_ORG})")
    p.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="memtrace.toml to use (default: ./memtrace.toml, /etc/memtrace/, ~/.memtrace/)",
    )
    p.add_argument("--json", action="store_true", help="print the API's JSON")


def _add_filters(p: argparse.ArgumentParser, *, stream: bool = False) -> None:
    g = p.add_argument_group("filters (those of the API; comma-separated lists may repeat)")
    g.add_argument("--agent", "--agent-id", dest="agent", help="agent id or name")
    g.add_argument("--session", "--session-id", dest="session", help="session id")
    g.add_argument(
        "--type",
        "--memory-type",
        dest="type",
        action="extend",
        type=_memory_types,
        metavar="TYPE[,TYPE]",
        help=f"memory types ({', '.join(MEMORY_TYPES)})",
    )
    g.add_argument(
        "--event-type",
        dest="event_type",
        action="extend",
        type=_split,
        metavar="E[,E]",
        help="event types (action, error, decision …)",
    )
    g.add_argument(
        "--tags", "--tag", dest="tags", action="extend", type=_split, metavar="T[,T]",
        help="every one of these tags (exact)",
    )  # fmt: skip
    g.add_argument(
        "--tags-any", dest="tags_any", action="extend", type=_split, metavar="T[,T]",
        help="at least one of these tags",
    )  # fmt: skip
    if stream:
        return
    g.add_argument("--since", help="event time from: a duration ago (30m, 24h, 7d) or RFC 3339")
    g.add_argument("--until", help="event time before: a duration ago or RFC 3339")
    g.add_argument("--contains", help="content contains this text (case-insensitive)")
    g.add_argument(
        "--min-importance", dest="min_importance", type=_importance, metavar="X",
        help="importance at least X (0-1)",
    )  # fmt: skip
    g.add_argument(
        "--namespace", action="append", metavar="PART",
        help="exactly this namespace, one part per option (--namespace users --namespace u42)",
    )  # fmt: skip
    g.add_argument(
        "--namespace-prefix", dest="namespace_prefix", action="append", metavar="PART",
        help="this namespace or any below it, one part per option",
    )  # fmt: skip
    g.add_argument(
        "--as-of", dest="as_of", help="as memtrace knew it then (duration ago or RFC 3339)"
    )
    g.add_argument(
        "--include-superseded", action="store_true",
        help="also memories a later one superseded",
    )  # fmt: skip


def _add_paging(p: argparse.ArgumentParser, *, order: bool) -> None:
    p.add_argument(
        "--limit", type=_positive, default=DEFAULT_LIMIT,
        help=f"at most N memories (default {DEFAULT_LIMIT}; the API caps it at 1000)",
    )  # fmt: skip
    p.add_argument("--offset", type=_count, default=None, help="skip the first N")
    if order:
        p.add_argument(
            "--order", choices=("desc", "asc"), default=None,
            help="by event time: desc (newest first, the default) or asc",
        )  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Commands


def _page_hint(args: argparse.Namespace, count: int, has_more: bool) -> None:
    if has_more and not args.json:
        offset = (args.offset or 0) + count
        print(f"(more: --offset {offset})", file=sys.stderr)


def _print_page(args: argparse.Namespace, memories: Sequence[Memory], *, score: bool) -> None:
    out = sys.stdout
    if args.json:
        for memory in memories:
            out.write(memory_json(memory) + "\n")
        return
    if not memories:
        out.write("No memories match.\n")
        return
    printer = LinePrinter(out, width=terminal_width(out), score=score)
    printer.measure(memories)
    for memory in memories:
        printer.print(memory)


def cmd_list(args: argparse.Namespace) -> int:
    """Memories matching the filters, by event time (newest first unless ``--order asc``):
    the filters of ``POST /api/v1/search`` without a query (those of ``GET
    /api/v1/memories`` and more)."""
    query: dict[str, Any] = {**filters_of(args), "limit": args.limit}
    if args.offset is not None:
        query["offset"] = args.offset
    if args.order is not None:
        query["order"] = args.order
    return _search_page(args, query, score=False)


def _search_page(args: argparse.Namespace, query: dict[str, Any], *, score: bool) -> int:
    """One page of ``search_memories(query)``, printed, with the hint to the next page."""

    async def body(api: AsyncMemoryAPI) -> int:
        result = await api.search_memories(query)
        _print_page(args, result.results, score=score)
        _page_hint(args, result.count, result.has_more)
        return EXIT_OK

    return _run(args, body)


def cmd_search(args: argparse.Namespace) -> int:
    """Ranked keyword search (best first, with each result's score)."""
    text = " ".join(args.words).strip()
    if not text:
        raise CliError("give the words to search for")
    query: dict[str, Any] = {**filters_of(args), "query": text, "limit": args.limit}
    if args.offset is not None:
        query["offset"] = args.offset
    return _search_page(args, query, score=True)


def cmd_get(args: argparse.Namespace) -> int:
    """One memory in full (superseded or not)."""

    async def body(api: AsyncMemoryAPI) -> int:
        memory = await api.get_memory(args.id, as_of=args.as_of)
        if args.json:
            print(memory_json(memory, indent=2))
        else:
            print(memory_detail(memory))
        return EXIT_OK

    return _run(args, body)


def cmd_tail(args: argparse.Namespace) -> int:
    """Follow the org's new memories as they are committed (the live stream), after printing
    the last ``-n`` matching ones; ``--after POSITION`` resumes where an earlier tail
    stopped. Ctrl-C ends it (exit status 130, as every command interrupted) and prints the
    position to resume from."""
    if args.lines and args.after is not None:
        raise CliError(
            "-n/--lines and --after do not go together: --after resumes exactly past a "
            "position, -n starts with the last N memories"
        )
    filters = filters_of(args, stream=True)
    out = sys.stdout

    async def body(api: AsyncMemoryAPI) -> int:
        watch = api.watch(after=args.after, **filters)
        printer = LinePrinter(out, width=terminal_width(out))
        started = False
        try:
            # the stream's position is taken first (a bad filter or position fails here):
            # every memory committed after it comes through the stream, every one before it
            # is in the backlog read next; one in both (committed in between) is printed once
            await watch.start()
            started = True
            backlog: set[str] = set()
            if args.lines:
                page = await api.search_memories(
                    {**filters, "limit": args.lines, "order": "desc", "include_superseded": True}
                )
                memories = list(reversed(page.results))
                backlog = {m.id for m in memories}
                printer.measure(memories)
                for memory in memories:
                    out.write((memory_json(memory) if args.json else printer.line(memory)) + "\n")
                out.flush()
            async for event in watch:
                memory = event.memory
                if memory.id in backlog:
                    backlog.discard(memory.id)
                    continue
                if args.json:
                    out.write(memory_json(memory, position=event.position) + "\n")
                else:
                    out.write(printer.line(memory) + "\n")
                out.flush()
        finally:
            await watch.aclose()
            if started and watch.position:
                position = clean(watch.position)
                print(f"position: {position} (resume with --after {position})", file=sys.stderr)
        return EXIT_OK

    return _run(args, body)


# ------------------------------------------------------------------------------------------------
# Parser


def add_parsers(sub: Any) -> None:
    """``memtrace memories …`` on the ``memtrace`` parser's subcommands."""
    mem = sub.add_parser(
        "memories",
        help="list, search, show and follow memories (a store URL or a server)",
        description="Read an organization's memories from a store URL (sqlite:///…, "
        "postgresql://…; --org) or a memtrace server (http://…; --api-key or "
        "MEMTRACE_API_KEY). Human-readable by default; --json prints the API's JSON.",
    )
    mem_sub = mem.add_subparsers(dest="action", metavar="ACTION")

    p = mem_sub.add_parser(
        "list",
        help="memories matching filters, newest first",
        description="Memories matching the filters, by event time (newest first). One line "
        "each: UTC time, agent, memory type/event type, id, content.",
    )
    _add_target(p)
    _add_filters(p)
    _add_paging(p, order=True)
    p.set_defaults(func=cmd_list)

    p = mem_sub.add_parser(
        "search",
        help="ranked keyword search",
        description="Ranked keyword search (BM25 over content, agent, event type and tags, "
        "with recency and importance boosts), best first; the score follows the id.",
    )
    p.add_argument("words", nargs="+", metavar="WORDS", help="the words to search for")
    _add_target(p)
    _add_filters(p)
    _add_paging(p, order=False)
    p.set_defaults(func=cmd_search)

    p = mem_sub.add_parser("get", help="one memory in full", description="One memory in full.")
    p.add_argument("id", help="the memory's id (mem_…)")
    p.add_argument("--as-of", dest="as_of", help="as memtrace knew it then")
    _add_target(p)
    p.set_defaults(func=cmd_get)

    p = mem_sub.add_parser(
        "tail",
        help="follow new memories as they are written (the live stream)",
        description="Print the org's new memories as they are committed, until Ctrl-C "
        "(which prints the position to resume from with --after). With --json each line "
        "also has the event's `position`.",
    )
    _add_target(p)
    _add_filters(p, stream=True)
    p.add_argument(
        "-n", "--lines", type=_count, default=0, metavar="N",
        help="first print the last N matching memories (default 0)",
    )  # fmt: skip
    p.add_argument(
        "--after", metavar="POSITION",
        help="resume just past this position (printed when a tail stops)",
    )  # fmt: skip
    p.set_defaults(func=cmd_tail)
    mem.set_defaults(func=None, help_parser=mem)
