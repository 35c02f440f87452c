"""The Arc store: memories on the Arc time-series database (``arc+http://host:port/database``).

The original Memtrace kept every memory in Arc and acknowledged a write from an in-memory buffer
that dropped the oldest records when full. This store keeps the data on Arc without losing any
(docs/architecture.md, "The Arc store"; protocol: docs/deployment.md, "Arc"):

* **Arc holds every memory's full row** (one measurement, default ``memories``): all of its
  fields, plus the analyzer's term frequencies for keyword search. Keyword search and substring
  search run as SQL on Arc (DuckDB), feeding the engine's ranking; exports read every body back
  from Arc with bounded queries whose replies are checked.
* **The metadata store beside Arc** (``meta=``: a SQLite file or a PostgreSQL database, any
  memtrace store) holds what Arc cannot change in place: the index of every memory (its id,
  times, agent, session, types, tags, metadata, namespace and key, and a digest of its body),
  deletions, supersession links, expiry, dedup keys, sessions, agents, API keys, retention
  policies and the sweep lease. Arc only appends, so a delete, a supersession or an expiry
  changes the metadata store, and every read goes through it: a deleted memory is gone at once
  although its row stays on Arc's disk until it is purged (``purge=1`` with an admin token and
  Arc's delete API enabled; docs/deployment.md says how to remove the rows otherwise).
* **Writes go to a local durable spool first** (:mod:`.arc_spool`) and are acknowledged once
  they are there and in the metadata store; a forwarder sends them to Arc with retries, exactly
  once (see that module). Reads take a body from the spool while it is there, else from Arc, so
  a client always reads its own writes.

Every SQL text sent to Arc is built here: string literals that could trip Arc's keyword
denylist (which the Python Arc applies inside literals too) are sent hex-encoded, and long id
lists are split so that no statement passes Arc's 10,000-character limit.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import os
import re
import ssl
import time as _time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from ..errors import ConflictError, CorruptRowError, StoreError, ValidationError
from ..models import Agent, Memory, MemorySummary, Session, trusted_memory
from ..timeutil import from_us, now_us, to_us
from .arc_spool import (
    LANDED,
    PENDING,
    SENT,
    Forwarder,
    SendRefused,
    SendUnknown,
    Spool,
    SpoolRow,
    cancel,
    chunks,
    gzip_if_smaller,
)
from .auth import ApiKeyRecord, OrgRecord
from .base import (
    AgedBatch,
    AgeRule,
    BucketCount,
    Candidate,
    FeedPage,
    InsertOutcome,
    KeywordQuery,
    MemoryFilter,
    MemoryRecord,
    StoreHealth,
    SupersedeError,
    bucket_window,
    check_org,
)
from .postgres import _WEIGHT_OF_FIELD, BM25_B, BM25_K1, _phrase, term_counts
from .sqlite import _dumps, _longest_literal

log = logging.getLogger("memtrace.store.arc")

try:  # the optional codec (memtrace-core[arc]); checked at open()
    import msgpack  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the extra is not installed
    msgpack = None

#: The columns of a memory's row on Arc, in the order of a spooled row. Names avoid Arc's
#: pitfalls: no leading "_" (the Python Arc drops such columns), none of the bare words its SQL
#: check refuses (set, load, call, copy, reset, pragma), no "sp_"/"xp_" (refused in a delete's
#: WHERE). Every column has one type and is never null (an all-null column would be written as
#: VARCHAR): "" is an absent string, 0 an absent time, -1.0 an absent importance.
ARC_COLUMNS: tuple[str, ...] = (
    "time",  # when the row was spooled (µs): Arc's partitioning time
    "id",
    "org_id",
    "agent_id",
    "session_id",
    "memory_type",
    "event_type",
    "content",
    "metadata",
    "tags",
    "importance",
    "parent_id",
    "event_time",
    "recorded_at",
    "expires_at",
    "supersedes",
    "namespace",
    "memory_key",
    "dedup_key",
    "key_created_at",
    "payload",
    "body_hash",
    "terms",
    "n_tokens",
)
_COL = {name: i for i, name in enumerate(ARC_COLUMNS)}
_CONTENT, _PAYLOAD, _TERMS, _NTOKENS = (
    _COL["content"],
    _COL["payload"],
    _COL["terms"],
    _COL["n_tokens"],
)

#: Arc's SQL limit (both versions) and what a statement keeps free for its fixed parts.
MAX_SQL = 10_000
_SQL_RESERVE = 1_500

#: Words that must not appear in a literal sent to Arc as is (the Python Arc refuses a few of
#: them anywhere in the text, the Go Arc some bare words, a delete's WHERE more): such a
#: literal is sent hex-encoded instead, as ``decode(unhex('…'))``.
_RISKY = re.compile(
    r"drop|delete|insert|update|alter|create|truncate|attach|detach|copy|export|import|pragma"
    r"|set|reset|load|install|call|secret|select|union|exec|xp_|sp_|read_|glob|scan"
    r"|--",  # a comment opener, should an Arc strip comments before it masks literals
    re.IGNORECASE,
)
_PLAIN = re.compile(r"[A-Za-z0-9 _.:,~#@/+=-]*")


def sql_literal(value: str) -> str:
    """``value`` as a DuckDB string expression that passes both Arcs' SQL checks."""
    if _PLAIN.fullmatch(value) and not _RISKY.search(value):
        return "'" + value + "'"
    return "decode(unhex('" + value.encode("utf-8", "surrogatepass").hex() + "'))"


def _in_lists(column: str, values: Sequence[str], budget: int) -> list[str]:
    """``column IN (…)`` clauses covering ``values``, each within ``budget`` characters."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for value in values:
        lit = sql_literal(value)
        if current and size + len(lit) + 1 > budget:
            out.append(f"{column} IN ({','.join(current)})")
            current, size = [], 0
        current.append(lit)
        size += len(lit) + 1
    if current:
        out.append(f"{column} IN ({','.join(current)})")
    return out


def where_clauses(digests: Sequence[str], budget: int = 8000) -> list[str]:
    """``body_hash IN (…)`` clauses naming these rows, each short enough for Arc's delete API
    (whose WHERE check refuses a few words and ``sp_``/``xp_``: a digest is hex, never those)."""
    return _in_lists("body_hash", list(digests), budget)


def body_hash(org_id: str, memory_id: str, content: str, payload: str) -> str:
    """The digest that ties a memory's index row to its body on Arc: unique to the org, the id
    and the body (so it tells two bodies of one id apart — a re-imported id, an orphan of a
    crashed write — and names one org's row alone, even where another org imported the same
    file: the purge deletes by it)."""
    h = hashlib.blake2b(digest_size=16)
    for part in (org_id, memory_id, content, payload):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def _term_key(stem: str) -> str:
    """A stem as Arc's ``terms`` column keys it: itself, or a digest of a long one (a word of
    hundreds of characters would make every query that names it pass Arc's length cap)."""
    if len(stem) <= 48:
        return stem
    return "~" + hashlib.blake2b(stem.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _terms_text(counts: dict[str, list[int]]) -> str:
    """The term frequencies as Arc stores them: `` stem:c,a,e,t stem:… `` (content, agent,
    event type, tags), searchable with ``contains(terms, ' stem:')``."""
    merged: dict[str, list[int]] = {}
    for stem, c in counts.items():
        key = _term_key(stem)
        if key in merged:  # pragma: no cover - a digest collision
            merged[key] = [x + y for x, y in zip(merged[key], c, strict=True)]
        else:
            merged[key] = list(c)
    return " " + " ".join(f"{s}:{','.join(map(str, c))}" for s, c in merged.items()) + " "


def _parse_terms(text: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for part in text.split():
        stem, _, counts = part.rpartition(":")
        out[stem] = [int(c) for c in counts.split(",")]
    return out


#: The environment variable the Arc token is read from (unless ``token`` / ``token_env``).
TOKEN_ENV = "MEMTRACE_ARC_TOKEN"
DEFAULT_META = "sqlite:///memtrace-arc/meta.db"
DEFAULT_SPOOL = "memtrace-arc/spool.db"


@dataclass(frozen=True, slots=True)
class ArcSettings:
    """What an ``arc+http(s)://`` URL configures (docs/deployment.md, "Arc")."""

    base_url: str
    database: str
    measurement: str = "memories"
    token: str | None = None
    meta_url: str = DEFAULT_META
    spool_path: str = DEFAULT_SPOOL
    spool_max_bytes: int = 1 << 30
    spool_min_free_bytes: int = 64 << 20
    spool_synchronous: str = "FULL"
    batch_rows: int = 1000
    batch_bytes: int = 4 << 20
    #: Arc's ingest buffer age (``ingest.max_buffer_age_ms``): when a batch it accepted is
    #: visible. Go's default is 5 s.
    flush_ms: int = 5000
    #: How long after sending a batch without an answer (or after a 204 without the rows
    #: showing) the forwarder decides from what Arc shows: after this, anything Arc accepted
    #: is visible (Arc's buffer has been flushed).
    visibility_seconds: float = 20.0
    timeout: float = 10.0
    #: The live feed waits this long for a memory written through another server to reach
    #: Arc (its body is in that server's spool) before it skips it as unreadable: a forwarder
    #: backlog or an Arc outage shorter than this delays the feed and loses nothing.
    feed_hold_seconds: float = 900.0
    sync_forward: bool = False
    sync_timeout: float = 30.0
    purge: bool = False
    purge_grace_seconds: float = 3600.0
    gzip_min: int = 1024
    max_sql: int = MAX_SQL
    drain_seconds: float = 5.0


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def parse_url(url: str) -> ArcSettings:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("arc+http", "arc+https"):
        raise ValidationError(f"not an Arc URL: {url!r}", field="url")
    if not parts.hostname:
        raise ValidationError("an Arc URL needs a host: arc+http://host:8000/database", field="url")
    database = unquote(parts.path.strip("/"))
    if not _NAME.fullmatch(database):
        raise ValidationError(
            "an Arc URL needs a database name (letters, digits, _; a letter first): "
            "arc+http://host:8000/memtrace",
            field="url",
        )
    params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    known = {
        "meta",
        "spool",
        "token",
        "token_env",
        "measurement",
        "spool_max_bytes",
        "spool_min_free_bytes",
        "spool_synchronous",
        "batch_rows",
        "batch_bytes",
        "flush_ms",
        "visibility_seconds",
        "timeout",
        "feed_hold_seconds",
        "sync_forward",
        "sync_timeout",
        "purge",
        "purge_grace_seconds",
        "gzip_min",
        "max_sql",
        "drain_seconds",
    }
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValidationError(
            f"unknown Arc URL parameter(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})",
            field="url",
        )
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise ValidationError(f"invalid port in the Arc URL {url!r}", field="url") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    base = f"{scheme.removeprefix('arc+')}://{host}{port}"
    token = params.get("token") or os.environ.get(params.get("token_env", TOKEN_ENV))
    measurement = params.get("measurement", "memories")
    if not _NAME.fullmatch(measurement):
        raise ValidationError(f"invalid Arc measurement name: {measurement!r}", field="url")

    def number(name: str, kind: Callable[[str], Any], default: Any, low: float = 0) -> Any:
        if name not in params:
            return default
        try:
            value = kind(params[name])
        except ValueError:
            raise ValidationError(f"invalid Arc URL parameter {name}={params[name]!r}") from None
        if value < low or (isinstance(value, float) and not math.isfinite(value)):
            raise ValidationError(f"invalid Arc URL parameter {name}={params[name]!r}")
        return value

    def flag(name: str) -> bool:
        value = params.get(name, "0").lower()
        if value not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ValidationError(f"invalid Arc URL parameter {name}={params[name]!r}")
        return value in ("1", "true", "yes", "on")

    meta = params.get("meta", DEFAULT_META)
    if meta.split(":", 1)[0].lower().startswith("arc"):
        raise ValidationError("the Arc store's metadata store cannot be Arc", field="url")
    flush_ms = number("flush_ms", int, 5000)
    settings = ArcSettings(
        base_url=base,
        database=database,
        measurement=measurement,
        token=token or None,
        meta_url=meta,
        spool_path=params.get("spool", DEFAULT_SPOOL),
        spool_max_bytes=number("spool_max_bytes", int, 1 << 30, 1),
        spool_min_free_bytes=number("spool_min_free_bytes", int, 64 << 20),
        spool_synchronous=params.get("spool_synchronous", "FULL"),
        batch_rows=number("batch_rows", int, 1000, 1),
        batch_bytes=number("batch_bytes", int, 4 << 20, 1),
        flush_ms=flush_ms,
        visibility_seconds=number(
            "visibility_seconds", float, max(20.0, 3 * flush_ms / 1000 + 5), 0
        ),
        timeout=number("timeout", float, 10.0, 0.001),
        feed_hold_seconds=number("feed_hold_seconds", float, 900.0, 0),
        sync_forward=flag("sync_forward"),
        sync_timeout=number("sync_timeout", float, 30.0, 0.001),
        purge=flag("purge"),
        purge_grace_seconds=number("purge_grace_seconds", float, 3600.0),
        gzip_min=number("gzip_min", int, 1024),
        max_sql=number("max_sql", int, MAX_SQL, 2 * _SQL_RESERVE),
        drain_seconds=number("drain_seconds", float, 5.0),
    )
    if settings.spool_synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
        raise ValidationError(f"invalid spool_synchronous: {settings.spool_synchronous!r}")
    return settings


class ArcClient:
    """Arc's HTTP API as this store uses it: msgpack writes, JSON SQL queries, deletes."""

    def __init__(self, settings: ArcSettings) -> None:
        self.settings = settings
        headers = {"User-Agent": "memtrace-arc-store"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=headers,
            verify=_tls_context() if settings.base_url.startswith("https:") else False,
            timeout=httpx.Timeout(settings.timeout),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )
        self.table = f"{settings.database}.{settings.measurement}"
        self._queries = 0

    async def close(self) -> None:
        await self._http.aclose()

    async def write(self, columns: dict[str, list[Any]]) -> None:
        """One columnar batch; SendRefused when Arc answers anything but 204, SendUnknown
        when it does not answer."""
        body = msgpack.packb(
            {"m": self.settings.measurement, "columns": columns}, use_bin_type=True
        )
        body, zipped = gzip_if_smaller(body, self.settings.gzip_min)
        headers = {
            "Content-Type": "application/msgpack",
            "x-arc-database": self.settings.database,
        }
        if zipped:
            headers["Content-Encoding"] = "gzip"  # the Python Arc needs it, Go ignores it
        try:
            reply = await self._http.post("/api/v1/write/msgpack", content=body, headers=headers)
        except httpx.ConnectError as exc:  # nothing was sent: Arc refused the connection
            raise SendRefused(0, f"cannot connect: {exc}") from None
        except httpx.HTTPError as exc:
            raise SendUnknown(f"{type(exc).__name__}: {exc}") from None
        if reply.status_code in (502, 504):
            # a proxy's answer: Arc behind it may have stored the batch
            raise SendUnknown(f"{reply.status_code} from a proxy: {_error_text(reply)}")
        if reply.status_code not in (200, 204):
            raise SendRefused(reply.status_code, _error_text(reply))

    async def query(self, sql: str, *, retries: int = 2) -> list[list[Any]]:
        """The rows of one SELECT; both Arcs' empty replies are no rows. A reply whose
        ``row_count`` disagrees with its rows (a stream cut short still closes as valid JSON)
        is an error, never a short result."""
        if len(sql) > self.settings.max_sql:  # pragma: no cover - the builders keep to it
            raise StoreError(f"internal error: an Arc query of {len(sql)} characters")
        # The Python Arc caches results by SQL text for 60 s: a cached answer from before a
        # batch landed would hide it from reads (and from the forwarder's check), so every
        # query's text is unique (a comment; both Arcs strip comments before their checks).
        self._queries += 1
        marked = f"/* memtrace {os.getpid()}.{self._queries} */ {sql}"
        if len(marked) <= self.settings.max_sql:
            sql = marked
        attempt = 0
        while True:
            try:
                reply = await self._http.post("/api/v1/query", json={"sql": sql})
            except httpx.HTTPError as exc:
                if attempt < retries:
                    attempt += 1
                    await asyncio.sleep(0.05 * attempt)
                    continue
                raise StoreError(f"Arc unavailable: {type(exc).__name__}: {exc}") from None
            if reply.status_code in (429, 502, 503, 504) and attempt < retries:
                attempt += 1
                await asyncio.sleep(0.1 * attempt)
                continue
            return _rows_of(reply)

    async def delete(self, where: str) -> int:
        reply = await self._http.post(
            "/api/v1/delete",
            json={
                "database": self.settings.database,
                "measurement": self.settings.measurement,
                "where": where,
                "dry_run": False,
                "confirm": True,
            },
        )
        if reply.status_code != 200:
            raise StoreError(f"Arc refused a purge ({reply.status_code}): {_error_text(reply)}")
        return int(reply.json().get("deleted_count", 0))

    async def health(self) -> tuple[bool, str]:
        try:
            reply = await self._http.get("/health", timeout=min(self.settings.timeout, 5.0))
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return reply.status_code == 200, f"/health answered {reply.status_code}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's certificate store, loaded once per process (loading it takes ~50 ms)."""
    return ssl.create_default_context()


def _error_text(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:300] or reply.reason_phrase
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)[:300]
    return str(body)[:300]


def _rows_of(reply: httpx.Response) -> list[list[Any]]:
    if reply.status_code == 400 and "No files found" in reply.text:
        return []  # the Python Arc's answer for a measurement without data
    if reply.status_code != 200:
        raise StoreError(f"Arc query failed ({reply.status_code}): {_error_text(reply)}")
    try:
        body = reply.json()
    except ValueError:
        raise StoreError("Arc sent a reply that is not JSON") from None
    if not isinstance(body, dict) or body.get("success") is False:
        raise StoreError(f"Arc query failed: {_error_text(reply)}")
    columns = body.get("columns") or []
    data = body.get("data") or []
    if not columns:
        return []  # the Go Arc's answer for a measurement without data
    if not isinstance(data, list) or body.get("row_count") != len(data):
        raise StoreError(
            f"Arc's reply is incomplete: row_count {body.get('row_count')!r}, "
            f"{len(data) if isinstance(data, list) else 'no'} rows (the reply was cut short)"
        )
    return data


class _Body:
    __slots__ = ("_counts", "content", "hash", "n_tokens", "payload", "stored", "terms")

    def __init__(self, content: str, payload: Any, terms: str, n_tokens: int, digest: str):
        #: None only from a pre-filtered fetch (``_bodies(where=…)``): the row did not match
        self.content = content
        self.payload = payload
        self.terms = terms
        self.n_tokens = n_tokens
        self.hash = digest
        self._counts: dict[str, list[int]] | None = None
        #: when it was spooled (µs; Arc's ``time``), where known
        self.stored = 0

    def counts(self) -> dict[str, list[int]]:
        """The term frequencies, parsed once."""
        if self._counts is None:
            self._counts = _parse_terms(self.terms)
        return self._counts


def _body_of_row(values: Sequence[Any]) -> _Body:
    payload_text = values[_PAYLOAD]
    body = _Body(
        values[_CONTENT],
        None if payload_text == "" else json.loads(payload_text),
        values[_TERMS],
        int(values[_NTOKENS]),
        values[_COL["body_hash"]],
    )
    body.stored = int(values[0])
    return body


def _with_body(skeleton: Memory, body: _Body) -> Memory:
    values = dict(skeleton.__dict__)
    values["content"] = body.content
    values["payload"] = body.payload
    return trusted_memory(values)


def _contains(content: str, needle: str) -> bool:
    return needle.lower() in content.lower()


def _prefilter(needle: str) -> str | None:
    """The SQL pre-filter of a substring search on Arc: the longest run of ``needle`` that
    DuckDB's ``lower`` folds as Python does (ASCII, not k/i, whose capitals have non-ASCII
    forms that fold to them); the exact test runs here on what it returns."""
    run = _longest_literal(needle).lower()
    return f"contains(lower(content), {sql_literal(run)})" if run else None


def _skeleton(record: MemoryRecord, digest: str, stored_at: int) -> MemoryRecord:
    """The metadata store's copy of a record: every field but the body (content, payload);
    the content holds the body's digest and when it was spooled (``digest@µs``: Arc's ``time``
    of the row, which narrows the body's fetch to its hour and tells a body still on its way
    from another server from a lost one)."""
    return replace(record, content=f"{digest}@{stored_at}", payload=None)


def _digest_of(index_content: str) -> str:
    """The body digest an index row names (see :func:`_skeleton`)."""
    return index_content.split("@", 1)[0]


def _spooled_at(index_content: str) -> int | None:
    """When the index row's body was spooled (µs), or None if it does not say."""
    _digest, _, at = index_content.partition("@")
    return int(at) if at.isdigit() else None


def _is_body_filter(flt: MemoryFilter) -> bool:
    return flt.content_contains is not None


def _inner(flt: MemoryFilter) -> MemoryFilter:
    return replace(flt, content_contains=None) if flt.content_contains is not None else flt


class ArcStore:
    """The Arc store (see the module docstring)."""

    def __init__(self, settings: ArcSettings) -> None:
        self.settings = settings
        self.meta: Any = None
        self.spool = Spool(
            settings.spool_path,
            max_bytes=settings.spool_max_bytes,
            min_free_bytes=settings.spool_min_free_bytes,
            synchronous=settings.spool_synchronous,
        )
        self.arc = ArcClient(settings)
        self.forwarder: Forwarder | None = None
        self._missing_bodies = 0
        self._purge_task: asyncio.Task[None] | None = None
        self.purged = 0

    @classmethod
    def from_url(cls, url: str) -> ArcStore:
        return cls(parse_url(url))

    @property
    def unreadable_rows(self) -> int:
        return int(getattr(self.meta, "unreadable_rows", 0)) + self._missing_bodies

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        if msgpack is None:
            raise StoreError(
                "the Arc store needs msgpack: pip install 'memtrace-core[arc]'"
            )  # pragma: no cover
        from ..plugins import default_registry

        self.meta = default_registry().store_for(self.settings.meta_url)
        await self.meta.open()
        try:
            await asyncio.to_thread(self.spool.open)
        except BaseException:
            await self.meta.close()
            raise
        s = self.settings
        self.forwarder = Forwarder(
            self.spool,
            send=self._send,
            held=self._held,
            batch_rows=s.batch_rows,
            batch_bytes=s.batch_bytes,
            first_check=s.flush_ms / 1000 + (0.1 if s.flush_ms else 0.0),
            deadline=s.visibility_seconds,
            in_flight=s.timeout,
            # a fifth of Arc's flush interval, at most 100 ms: batches, not one row per write
            linger=min(0.1, s.flush_ms / 5000),
        )
        self.forwarder.start()
        if s.purge:
            self._purge_task = asyncio.create_task(self._purge_loop(), name="memtrace-arc-purge")

    async def close(self) -> None:
        await cancel(self._purge_task)
        if self.forwarder is not None:
            await self.forwarder.stop(self.settings.drain_seconds)
        await asyncio.to_thread(self.spool.close)
        await self.arc.close()
        if self.meta is not None:
            await self.meta.close()

    async def health(self) -> StoreHealth:
        start = _time.perf_counter()
        meta = await self.meta.health()
        reachable, why = await self.arc.health()
        try:
            states = await asyncio.to_thread(self.spool.state_counts)
            used = await asyncio.to_thread(self.spool.used_bytes)
            parked = await asyncio.to_thread(self.spool.parked)
            spool_ok = used < self.settings.spool_max_bytes
        except StoreError as exc:
            states, used, parked, spool_ok = {}, 0, 0, False
            why = f"{why}; spool: {exc}"
        latency = (_time.perf_counter() - start) * 1000
        pending = sum(states.values())
        extra: dict[str, Any] = {
            "arc": "ok" if reachable else "unreachable",
            "spool_pending": pending,
            "spool_bytes": used,
            "spool_full": not spool_ok,
            "spool_parked": parked,
        }
        detail = None
        if not meta.ok:
            detail = f"metadata store: {meta.detail}"
        elif not spool_ok:
            detail = "the Arc spool is full"
        elif not reachable:
            detail = f"Arc unreachable ({why}); writes are spooled"
        return StoreHealth(
            ok=meta.ok and spool_ok,
            latency_ms=latency,
            detail=detail,
            arc={self.settings.database: "ok" if reachable else "unreachable"},
            extra=extra,
        )

    async def store_metrics(self) -> list[tuple[str, str, str, float]]:
        """This store's series for the server's ``/metrics`` (name, type, help, value)."""
        stats = self.forwarder.stats if self.forwarder is not None else None
        out: list[tuple[str, str, str, float]] = []
        try:
            spool = await self.spool_stats()
            parked = await asyncio.to_thread(self.spool.parked)
        except StoreError:
            spool, parked = {}, 0
        if spool:
            out += [
                (
                    "memtrace_arc_spool_pending",
                    "gauge",
                    "Memories in the spool that Arc has not shown yet.",
                    spool["pending"] + spool["sent"] + spool["landed"],
                ),
                ("memtrace_arc_spool_bytes", "gauge", "Bytes the spool file uses.", spool["bytes"]),
                (
                    "memtrace_arc_spool_parked",
                    "gauge",
                    "Spooled memories Arc refused on their own, waiting to be tried again.",
                    parked,
                ),
            ]
        if stats is not None:
            out += [
                (
                    "memtrace_arc_forwarded_total",
                    "counter",
                    "Memories Arc confirmed.",
                    stats.forwarded,
                ),
                ("memtrace_arc_batches_total", "counter", "Batches Arc accepted.", stats.batches),
                (
                    "memtrace_arc_retried_total",
                    "counter",
                    "Memories whose batch Arc refused or did not answer (retried).",
                    stats.retried,
                ),
                (
                    "memtrace_arc_resent_total",
                    "counter",
                    "Memories sent again because Arc did not show them by the deadline.",
                    stats.resent_after_check,
                ),
                (
                    "memtrace_arc_failures_total",
                    "counter",
                    "Failed forwarder steps.",
                    stats.failures,
                ),
                (
                    "memtrace_arc_parked_total",
                    "counter",
                    "Times a memory Arc refused on its own was set aside to be tried later.",
                    stats.parked,
                ),
            ]
        out.append(("memtrace_arc_purged_total", "counter", "Rows purged from Arc.", self.purged))
        return out

    async def spool_stats(self) -> dict[str, int]:
        states = await asyncio.to_thread(self.spool.state_counts)
        return {
            "pending": states.get(PENDING, 0),
            "sent": states.get(SENT, 0),
            "landed": states.get(LANDED, 0),
            "bytes": await asyncio.to_thread(self.spool.used_bytes),
        }

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until the spool is empty (every memory confirmed on Arc); StoreError after
        ``timeout``. For tests, benchmarks and a planned shutdown."""
        assert self.forwarder is not None
        deadline = _time.monotonic() + timeout
        while await asyncio.to_thread(self.spool.pending_count):
            if _time.monotonic() > deadline:
                raise StoreError("the Arc spool did not drain in time")
            self.forwarder.kick()
            await asyncio.sleep(0.02)

    # -- forwarding ---------------------------------------------------------------------------
    async def _send(self, rows: list[SpoolRow], batch: str) -> None:
        columns: dict[str, list[Any]] = {name: [] for name in ARC_COLUMNS}
        for row in rows:
            values = msgpack.unpackb(row.row, raw=False)
            for name, value in zip(ARC_COLUMNS, values, strict=True):
                columns[name].append(value)
        columns["fwd_batch"] = [batch] * len(rows)
        await self.arc.write(columns)

    async def _held(self, batch: str, rows: list[tuple[int, str, str, int]]) -> set[str]:
        """The ids of a batch's rows that Arc shows (the batch's time range narrows the
        files Arc reads)."""
        low = min(r[3] for r in rows)
        high = max(r[3] for r in rows)
        found = await self.arc.query(
            f"SELECT id FROM {self.arc.table} WHERE fwd_batch = {sql_literal(batch)} "
            f"AND time >= {_ts(low)} AND time <= {_ts(high)}"
        )
        return {str(r[0]) for r in found}

    # -- bodies -------------------------------------------------------------------------------
    async def _bodies(
        self, org_id: str, skeletons: Sequence[Memory], *, where: str | None = None
    ) -> dict[str, _Body]:
        """The bodies of these memories (spool first, then Arc), by id; only those whose digest
        matches the index row. ``where``: an extra SQL condition on Arc's rows (a
        pre-filter)."""
        wanted = {m.id: _digest_of(m.content) for m in skeletons}
        out: dict[str, _Body] = {}
        if not wanted:
            return out
        spooled = await asyncio.to_thread(self.spool.bodies, org_id, list(wanted))
        for (memory_id, digest), packed in spooled.items():
            if wanted.get(memory_id) == digest:
                out[memory_id] = _body_of_row(msgpack.unpackb(packed, raw=False))
        rest = [i for i in wanted if i not in out]
        if not rest:
            return out
        later = set(rest)
        # Arc's time is when the row was spooled: the fetch reads the hours the rows are in
        # (an index row that does not say when, edited by hand, reads every hour)
        at = [_spooled_at(m.content) for m in skeletons if m.id in later]
        times = [t for t in at if t is not None]
        # with a pre-filter, a row that fails it comes back without its content (None), so
        # that a body missing everywhere is still told apart from one that does not match
        content = f"CASE WHEN {where} THEN content END" if where else "content"
        head = (
            f"SELECT id, body_hash, {content}, payload, terms, n_tokens FROM "
            f"{self.arc.table} WHERE org_id = {sql_literal(org_id)}"
        )
        if times and len(times) == len(at):
            head += f" AND time >= {_ts(min(times))} AND time <= {_ts(max(times))}"
        budget = self.settings.max_sql - len(head) - 50
        for clause in _in_lists("id", rest, budget):
            for memory_id, digest, text, payload, terms, n_tokens in await self.arc.query(
                f"{head} AND {clause}"
            ):
                if wanted.get(memory_id) == digest and memory_id not in out:
                    out[memory_id] = _Body(
                        text,
                        None if payload == "" or text is None else json.loads(payload),
                        terms,
                        int(n_tokens),
                        digest,
                    )
        return out

    async def _attach(
        self, org_id: str, skeletons: Sequence[Memory], *, strict: bool = False
    ) -> list[Memory]:
        """The memories with their bodies; one whose body is nowhere is skipped as unreadable
        (``strict``: CorruptRowError)."""
        bodies = await self._bodies(org_id, skeletons)
        out: list[Memory] = []
        for skeleton in skeletons:
            body = bodies.get(skeleton.id)
            if body is None:
                self._missing(org_id, skeleton, strict)
                continue
            out.append(_with_body(skeleton, body))
        return out

    def _on_its_way(self, skeleton: Memory, hold: float | None = None) -> bool:
        """Whether a memory whose body is nowhere was spooled within the visibility deadline
        (or ``hold`` seconds), by another server whose forwarder has not landed it on Arc
        yet."""
        at = _spooled_at(skeleton.content)
        s = self.settings
        wait = s.visibility_seconds + s.timeout if hold is None else max(hold, s.visibility_seconds)
        return at is not None and now_us() - at < wait * 1_000_000

    def _missing(self, org_id: str, skeleton: Memory, strict: bool) -> None:
        """A memory whose body is neither in this process's spool nor on Arc. Spooled within
        the visibility deadline, it was written through another server (another spool) and
        is on its way: not shown yet (a read by id or an export says so, 503), not counted.
        Otherwise it is an unreadable row (skipped and counted; CorruptRowError if strict)."""
        if self._on_its_way(skeleton):
            if strict:
                raise StoreError(
                    f"memory {skeleton.id} was written through another server and is not on "
                    "Arc yet; retry in a few seconds"
                )
            log.debug("memory %s of org %s is not on Arc yet", skeleton.id, org_id)
            return
        reason = "its body is neither in the spool nor on Arc"
        if strict:
            raise CorruptRowError("memory", skeleton.id, org_id, reason)
        self._missing_bodies += 1
        log.warning("skipped memory %s of org %s: %s", skeleton.id, org_id, reason)

    async def _scan(
        self, org_id: str, flt: MemoryFilter, order: str, *, page: int = 500
    ) -> AsyncIterator[list[Memory]]:
        """Memories matching ``flt`` with a substring filter, in ``order``: the index gives the
        candidates in order, Arc's SQL pre-filters their bodies, the exact test runs here."""
        needle = flt.content_contains
        assert needle is not None
        inner = _inner(flt)
        where = _prefilter(needle)
        offset = 0
        while True:
            skeletons = await self.meta.list_memories(
                org_id, inner, limit=page, offset=offset, order=order
            )
            if not skeletons:
                return
            offset += len(skeletons)
            bodies = await self._bodies(org_id, skeletons, where=where)
            hits = []
            for s in skeletons:
                body = bodies.get(s.id)
                if body is None:
                    self._missing(org_id, s, False)  # skipped (unreadable: counted)
                elif body.content is not None and _contains(body.content, needle):
                    hits.append(_with_body(s, body))
            if hits:
                yield hits
            if len(skeletons) < page:
                return

    async def _matching(self, org_id: str, flt: MemoryFilter) -> list[Memory]:
        out: list[Memory] = []
        async for hits in self._scan(org_id, flt, "asc"):
            out.extend(hits)
        return out

    # -- memories: writes ---------------------------------------------------------------------
    def _arc_row(self, record: MemoryRecord, stored_at: int) -> tuple[str, bytes]:
        payload = _dumps(record.payload) or ""
        digest = body_hash(record.org_id, record.id, record.content, payload)
        counts, total = term_counts(record)
        values = [
            stored_at,
            record.id,
            record.org_id,
            record.agent_id,
            record.session_id or "",
            record.memory_type,
            record.event_type,
            record.content,
            _dumps(record.metadata) or "",
            _dumps(record.tags) or "",
            -1.0 if record.importance is None else float(record.importance),
            record.parent_id or "",
            record.time,
            record.recorded_at,
            record.expires_at or 0,
            record.supersedes or "",
            "" if record.namespace is None else _dumps(list(record.namespace)) or "",
            record.key or "",
            record.dedup_key or "",
            record.key_created_at or 0,
            payload,
            digest,
            _terms_text(counts),
            total,
        ]
        return digest, msgpack.packb(values, use_bin_type=True)

    async def _spool(self, records: Sequence[MemoryRecord]) -> tuple[list[int], list[str], int]:
        """Spool the rows of ``records``: their seqs, body digests and the spool time."""
        stored_at = now_us()
        rows = []
        digests = []
        for record in records:
            digest, packed = self._arc_row(record, stored_at)
            rows.append((record.org_id, record.id, digest, packed, stored_at))
            digests.append(digest)
        seqs = await asyncio.to_thread(self.spool.add, rows)
        return seqs, digests, stored_at

    async def _forwarded(self, seqs: list[int]) -> None:
        assert self.forwarder is not None
        if self.settings.sync_forward and seqs:
            try:
                await self.forwarder.forward_now(seqs, self.settings.sync_timeout)
            except StoreError as exc:
                # the write is committed (spool and index): it succeeded; Arc shows it later
                log.warning("sync_forward: %s", exc)
                self.forwarder.kick()
        else:
            self.forwarder.kick()

    async def insert_memories(
        self,
        org_id: str,
        records: Sequence[MemoryRecord],
        *,
        dedup_since: int | None,
        now: int,
    ) -> list[InsertOutcome]:
        check_org(org_id, records, "record")
        if not records:
            return []
        seqs, digests, stored_at = await self._spool(records)
        skeletons = [_skeleton(r, d, stored_at) for r, d in zip(records, digests, strict=True)]
        try:
            outcomes: list[InsertOutcome] = await self.meta.insert_memories(
                org_id, skeletons, dedup_since=dedup_since, now=now
            )
        except _REFUSED:
            # the metadata store refused the write: nothing of it was committed
            await asyncio.to_thread(self.spool.discard, seqs)
            raise
        # (Any other failure — cancelled, the database gone mid-commit — may have committed,
        # so it leaves the spooled rows: forwarded, and if no index row names them, orphans
        # that no read shows and the purge removes.)
        # duplicates were not inserted: their rows leave the spool
        dropped = {s for s, o in zip(seqs, outcomes, strict=True) if not o.inserted}
        if dropped:
            await asyncio.to_thread(self.spool.discard, sorted(dropped))
        await self._forwarded([s for s in seqs if s not in dropped])
        return outcomes

    async def import_memories(self, org_id: str, records: Sequence[MemoryRecord]) -> int:
        check_org(org_id, records, "record")
        if not records:
            return 0
        existing = {
            m.id
            for chunk in chunks([r.id for r in records], 500)
            for m in await self.meta.list_memories(
                org_id, MemoryFilter(ids=tuple(chunk)), limit=len(chunk), offset=0, order="asc"
            )
        }
        fresh = [r for r in records if r.id not in existing]
        if not fresh:
            return 0
        seqs, digests, stored_at = await self._spool(fresh)
        skeletons = [_skeleton(r, d, stored_at) for r, d in zip(fresh, digests, strict=True)]
        try:
            inserted: int = await self.meta.import_memories(org_id, skeletons)
        except _REFUSED:
            await asyncio.to_thread(self.spool.discard, seqs)
            raise
        await self._forwarded(seqs)
        return inserted

    # -- memories: reads ----------------------------------------------------------------------
    async def get_memory(self, org_id: str, memory_id: str) -> Memory | None:
        skeleton = await self.meta.get_memory(org_id, memory_id)
        if skeleton is None:
            return None
        return (await self._attach(org_id, [skeleton], strict=True))[0]

    async def list_memories(
        self, org_id: str, flt: MemoryFilter, *, limit: int, offset: int, order: str
    ) -> list[Memory]:
        if not _is_body_filter(flt):
            skeletons = await self.meta.list_memories(
                org_id, flt, limit=limit, offset=offset, order=order
            )
            return await self._attach(org_id, skeletons)
        out: list[Memory] = []
        skip = offset
        async for hits in self._scan(org_id, flt, order, page=max(200, min(limit + offset, 2000))):
            for memory in hits:
                if skip:
                    skip -= 1
                    continue
                out.append(memory)
                if len(out) >= limit:
                    return out
        return out

    async def count_memories(
        self, org_id: str, flt: MemoryFilter, *, cap: int | None = None
    ) -> int:
        if not _is_body_filter(flt):
            n: int = await self.meta.count_memories(org_id, flt, cap=cap)
            return n
        total = 0
        async for hits in self._scan(org_id, flt, "asc"):
            total += len(hits)
            if cap is not None and total >= cap:
                return cap
        return total

    async def count_by_type(self, org_id: str, flt: MemoryFilter) -> dict[str, int]:
        if not _is_body_filter(flt):
            counts: dict[str, int] = await self.meta.count_by_type(org_id, flt)
            return counts
        out: dict[str, int] = {}
        for memory in await self._matching(org_id, flt):
            out[memory.memory_type] = out.get(memory.memory_type, 0) + 1
        return out

    async def count_by_bucket(
        self,
        org_id: str,
        flt: MemoryFilter,
        *,
        start: int,
        bucket: int,
        buckets: int,
        error_type: str,
    ) -> list[BucketCount]:
        if not _is_body_filter(flt):
            rows: list[BucketCount] = await self.meta.count_by_bucket(
                org_id, flt, start=start, bucket=bucket, buckets=buckets, error_type=error_type
            )
            return rows
        groups: dict[tuple[int, str], list[int]] = {}
        for memory in await self._matching(org_id, bucket_window(flt, start, bucket, buckets)):
            index = (to_us(memory.time) - start) // bucket
            group = groups.setdefault((index, memory.memory_type), [0, 0])
            group[0] += 1
            group[1] += memory.event_type == error_type
        return [BucketCount(b, t, n, e) for (b, t), (n, e) in groups.items()]

    async def summarize_memories(
        self, org_id: str, flt: MemoryFilter, *, tag_limit: int
    ) -> MemorySummary:
        if not _is_body_filter(flt):
            summary: MemorySummary = await self.meta.summarize_memories(
                org_id, flt, tag_limit=tag_limit
            )
            return summary
        memories = await self._matching(org_id, flt)
        tags: dict[str, int] = {}
        for memory in memories:
            for tag in set(memory.tags or ()):
                tags[tag] = tags.get(tag, 0) + 1
        ranked = sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))
        times = [m.time for m in memories]
        return MemorySummary(
            count=len(memories),
            oldest=min(times) if times else None,
            newest=max(times) if times else None,
            tags=dict(ranked[:tag_limit]),
            tags_truncated=len(ranked) > tag_limit,
        )

    async def iter_memories(
        self, org_id: str, flt: MemoryFilter, *, batch: int = 1000
    ) -> AsyncIterator[list[Memory]]:
        needle = flt.content_contains
        async for skeletons in self.meta.iter_memories(org_id, _inner(flt), batch=batch):
            memories = await self._attach(org_id, skeletons, strict=True)
            if needle is not None:
                memories = [m for m in memories if _contains(m.content, needle)]
            if memories:
                yield memories

    # -- the live feed: the metadata store's commit order ------------------------------------
    async def feed_head(self, org_id: str) -> str:
        head: str = await self.meta.feed_head(org_id)
        return head

    async def feed_version(self) -> Any:
        version = getattr(self.meta, "feed_version", None)
        return await version() if version is not None else 0

    async def feed_changed_orgs(self, before: Any, now: Any) -> set[str] | None:
        changed = getattr(self.meta, "feed_changed_orgs", None)
        orgs: set[str] | None = await changed(before, now) if changed is not None else None
        return orgs

    async def feed_memories(
        self, org_id: str, flt: MemoryFilter, *, after: str | None, limit: int, scan: int
    ) -> FeedPage:
        """The metadata store's feed with the bodies attached. A memory written through
        another server whose body is not on Arc yet ends the page just before it (it is read
        again on the next call: a feed must not pass a memory it could not show) for up to
        ``feed_hold_seconds``; after that it is an unreadable row (skipped and counted)."""
        needle = flt.content_contains
        page: FeedPage = await self.meta.feed_memories(
            org_id, _inner(flt), after=after, limit=limit, scan=scan
        )
        bodies = await self._bodies(org_id, [m for _, m in page.items])
        items: list[tuple[str, Memory]] = []
        for position, skeleton in page.items:
            body = bodies.get(skeleton.id)
            if body is None and self._on_its_way(skeleton, self.settings.feed_hold_seconds):
                if items:
                    return FeedPage(items, items[-1][0])
                if after is None:
                    raise StoreError(
                        f"memory {skeleton.id} was written through another server and is not "
                        "on Arc yet; retry in a few seconds"
                    )
                return FeedPage([], after)
            if body is None:
                self._missing(org_id, skeleton, False)
                continue
            memory = _with_body(skeleton, body)
            if needle is None or _contains(memory.content, needle):
                items.append((position, memory))
        return FeedPage(items, page.cursor, more=page.more)

    # -- keyword search -----------------------------------------------------------------------
    def _pushdown(self, flt: MemoryFilter, budget: int = 2500) -> str:
        """The conditions of ``flt`` that Arc's rows answer exactly (they never change), as
        many as fit in ``budget`` characters, the most selective first: they only narrow what
        Arc reads (the metadata store applies the whole filter afterwards), so one that does
        not fit is left out."""
        parts: list[str] = []
        if flt.session_id is not None:
            parts.append(f"session_id = {sql_literal(flt.session_id)}")
        for column, values in (
            ("id", flt.ids),
            ("agent_id", flt.agent_ids),
            ("memory_type", flt.memory_types),
            ("event_type", flt.event_types),
        ):
            if values is not None:
                clauses = _in_lists(column, list(values), budget)
                if not clauses:
                    return " AND false"  # an empty list matches nothing
                if len(clauses) == 1:
                    parts.append(clauses[0])
        for column, low, high in (
            ("event_time", flt.since, flt.until),
            ("recorded_at", flt.recorded_since, flt.recorded_until),
        ):
            if low is not None:
                parts.append(f"{column} >= {int(low)}")
            if high is not None:
                parts.append(f"{column} < {int(high)}")
        if flt.content_contains is not None:
            pre = _prefilter(flt.content_contains)
            if pre:
                parts.append(pre)
        out = ""
        for part in parts:
            if len(out) + len(part) + 5 <= budget:
                out += f" AND {part}"
        return out

    def _phrase_match(self, stems: tuple[str, ...]) -> str:
        return (
            "("
            + " AND ".join(f"contains(terms, {sql_literal(' ' + s + ':')})" for s in stems)
            + ")"
        )

    @staticmethod
    def _phrases(terms: Iterable[str]) -> list[tuple[str, ...]]:
        """The stems of each query term as Arc's ``terms`` column keys them."""
        return [tuple(_term_key(s) for s in p) for p in (_phrase(t) for t in terms) if p]

    async def _pending(self, org_id: str) -> list[tuple[str, _Body]]:
        rows = await asyncio.to_thread(self.spool.org_rows, org_id)
        return [(i, _body_of_row(msgpack.unpackb(p, raw=False))) for i, _h, p in rows]

    async def _live(
        self, org_id: str, flt: MemoryFilter, pairs: Sequence[tuple[str, str]]
    ) -> dict[str, Memory]:
        """Of these (id, body digest) pairs, the index rows that ``flt`` selects (state,
        filters) and whose body is that one (an id may come with several digests: only the
        index row's counts)."""
        inner = _inner(flt)
        wanted: dict[str, set[str]] = {}
        for memory_id, digest in pairs:
            wanted.setdefault(memory_id, set()).add(digest)
        ids = list(wanted)
        if inner.ids is not None:
            allowed = set(inner.ids)
            ids = [i for i in ids if i in allowed]
        out: dict[str, Memory] = {}
        for chunk in chunks(ids, 500):
            for m in await self.meta.list_memories(
                org_id, replace(inner, ids=tuple(chunk)), limit=len(chunk), offset=0, order="asc"
            ):
                if _digest_of(m.content) in wanted.get(m.id, ()):
                    out[m.id] = m
        return out

    async def count_keyword_matches(
        self, org_id: str, flt: MemoryFilter, terms: tuple[str, ...], cap: int
    ) -> int:

        phrases = list(dict.fromkeys(self._phrases(terms)))
        if not phrases:
            return 0
        pairs = [
            (memory_id, body.hash)
            for memory_id, body in await self._pending(org_id)
            if _matches(body, phrases)
        ]
        needle = flt.content_contains
        # the ids counted: a memory counts once, whichever of its rows (an id may have several
        # on Arc, and one in the spool too) is the live one
        counted: set[str] = set()

        async def tally(batch: list[tuple[str, str]]) -> None:
            live = await self._live(org_id, flt, [p for p in batch if p[0] not in counted])
            if needle is not None:
                bodies = await self._bodies(org_id, list(live.values()))
                live = {
                    i: m
                    for i, m in live.items()
                    if i in bodies and _contains(bodies[i].content, needle)
                }
            counted.update(live)

        await tally(pairs)
        page = 1000
        head = (
            f"SELECT DISTINCT id, body_hash FROM {self.arc.table} WHERE org_id = "
            f"{sql_literal(org_id)}{self._pushdown(flt)} AND "
        )
        rest = [self._phrase_match(p) for p in phrases]
        while rest and len(counted) < cap:
            # as many words per statement as Arc's length cap allows
            part = self._fitting(len(head) + 60, rest)
            if not part:
                raise StoreError("a search word too long for one Arc query")
            rest = rest[len(part) :]
            sql = f"{head}({' OR '.join(part)}) ORDER BY id, body_hash"
            offset = 0
            while len(counted) < cap:
                rows = await self.arc.query(f"{sql} LIMIT {page} OFFSET {offset}")
                offset += len(rows)
                await tally([(str(i), str(h)) for i, h in rows])
                if len(rows) < page:
                    break
        return min(len(counted), cap)

    def _fitting(self, fixed: int, parts: Sequence[str]) -> list[str]:
        """As many of ``parts`` (in order) as fit in one statement beside ``fixed`` characters."""
        out: list[str] = []
        size = fixed
        for part in parts:
            size += len(part) + 5
            if size > self.settings.max_sql - 100:
                break
            out.append(part)
        return out

    async def _keyword_stats(
        self,
        org_id: str,
        matches: Sequence[str],
        pending: Sequence[tuple[str, _Body]],
        phrases: Sequence[tuple[str, ...]],
    ) -> tuple[int, float, list[int]]:
        """The org's documents, average length and each phrase's documents (Arc + spool),
        in as many statements as Arc's length cap needs."""
        head = f" FROM {self.arc.table} WHERE org_id = {sql_literal(org_id)}"
        docs = tokens = 0
        dfs: list[int] = []
        first = True
        rest = list(matches)
        while first or rest:
            cols = self._fitting(len(head) + 60, [f"count(*) FILTER (WHERE {m})" for m in rest])
            if rest and not cols:
                raise StoreError("a search word too long for one Arc query")
            rows = await self.arc.query(
                "SELECT count(*), coalesce(sum(n_tokens), 0)"
                + "".join(f", {c}" for c in cols)
                + head
            )
            values = [int(v) for v in rows[0]] if rows else [0, 0, *([0] * len(cols))]
            if first:
                docs, tokens = values[0], values[1]
                first = False
            dfs.extend(values[2:])
            rest = rest[len(cols) :]
        for _id, body in pending:
            docs += 1
            tokens += body.n_tokens
            counts = body.counts()
            for i, ph in enumerate(phrases):
                if all(s in counts for s in ph):
                    dfs[i] += 1
        docs = max(docs, 1)
        return docs, max(tokens, 1) / docs, dfs

    async def keyword_candidates(
        self, org_id: str, flt: MemoryFilter, query: KeywordQuery
    ) -> list[Candidate]:
        """Stage 1 on Arc. Arc's SQL chooses a pool of candidates — the rows matching the most
        informative words (the sum of the idf of the words a row holds, shorter rows first) —
        and their term frequencies come back with them; FTS5's BM25 of each is computed here,
        exactly as on the other stores (docs/architecture.md, "Keyword search on Arc")."""
        phrases = self._phrases(query.terms)
        if not phrases or query.limit <= 0:
            return []
        weights = [float(query.field_weights.get(f, 1.0)) for f in _WEIGHT_OF_FIELD]
        org = sql_literal(org_id)
        matches = [self._phrase_match(p) for p in phrases]
        pending = await self._pending(org_id)
        needle = flt.content_contains
        docs, avgdl, dfs = await self._keyword_stats(org_id, matches, pending, phrases)
        idf = []
        for n in dfs:
            value = math.log((docs - n + 0.5) / (n + 0.5))
            idf.append(value if value > 0 else 1e-6)

        def score(body: _Body) -> float:
            counts = body.counts()
            norm = BM25_K1 * (1 - BM25_B + BM25_B * body.n_tokens / avgdl)
            total = 0.0
            for i, ph in enumerate(phrases):
                f = min(
                    sum(w * c for w, c in zip(weights, counts.get(s, (0, 0, 0, 0)), strict=True))
                    for s in ph
                )
                total += idf[i] * f * (BM25_K1 + 1) / (f + norm)
            return -total

        pushdown = self._pushdown(flt)
        head = (
            f"SELECT id, body_hash, n_tokens, terms, epoch_us(time) FROM {self.arc.table} "
            f"WHERE org_id = {org}{pushdown} AND "
        )
        # the most informative words first: what is left out of a long query is the commonest
        order = sorted(range(len(phrases)), key=lambda i: -idf[i])
        # the spool's matches, ranked as Arc's are: by recency (recent_first), else by BM25
        spooled = [
            (memory_id, body)
            for memory_id, body in pending
            if _matches(body, phrases) and (needle is None or _contains(body.content, needle))
        ]
        # (selection SQL, the spool's rows that join its ranking)
        selections: list[tuple[str, list[tuple[float, str, str]]]] = []
        if query.recent_first:
            groups = [tuple(self._phrases(g)) for g in query.groups]
            every_local: list[tuple[float, str, str]] = []
            if groups and all(groups):
                every = " AND ".join(
                    "(" + " OR ".join(self._phrase_match(p) for p in g) + ")" for g in groups
                )
                every_local = [
                    (-float(b.stored), i, b.hash) for i, b in spooled if _matches_all(b, groups)
                ]
                selections.append((f"{every} ORDER BY time DESC, id", every_local))
            kept = self._fitting(len(head) + 40, [matches[i] for i in order])
            rest_local = [(-float(b.stored), i, b.hash) for i, b in spooled]
            selections.append(("(" + " OR ".join(kept) + ") ORDER BY time DESC, id", rest_local))
        else:
            # each kept word appears twice: in the match and in the pool's order
            costs = [f"{matches[i]} OR {idf[i]!r} * {matches[i]}::INT +" for i in order]
            kept_i = order[: len(self._fitting(len(head) + 80, costs))]
            if not kept_i:  # pragma: no cover - a stem is at most ~100 characters of SQL
                raise StoreError("the search's filters leave no room for its words in Arc's SQL")
            any_kept = " OR ".join(matches[i] for i in kept_i)
            approx = " + ".join(f"{idf[i]!r} * {matches[i]}::INT" for i in kept_i)
            selections.append(
                (
                    f"({any_kept}) ORDER BY {approx} DESC, n_tokens, time DESC, id",
                    [(score(b), i, b.hash) for i, b in spooled],
                )
            )
        for sql, _local in selections:
            if len(head) + len(sql) + 30 > self.settings.max_sql:
                raise StoreError("the search has too many words for one Arc query")

        out: list[Candidate] = []
        taken: set[str] = set()
        pool = max(query.limit * 4, 100)
        for selection, local in selections:
            offset = 0
            while len(out) < query.limit:
                got = await self.arc.query(f"{head}{selection} LIMIT {pool} OFFSET {offset}")
                offset += len(got)
                found: list[tuple[float, str, str]] = []
                for memory_id, digest, n_tokens, terms, stored in got:
                    body = _Body("", None, str(terms), int(n_tokens), str(digest))
                    rank = -float(stored) if query.recent_first else score(body)
                    found.append((rank, str(memory_id), str(digest)))
                # the spool's matches join the first page's ranking
                found += local
                local = []
                found.sort(key=lambda t: (t[0], t[1]))
                fresh = [t for t in found if t[1] not in taken]
                live = await self._live(org_id, flt, [(i, h) for _s, i, h in fresh])
                chosen = [
                    t for t in fresh if t[1] in live and _digest_of(live[t[1]].content) == t[2]
                ]
                bodies = await self._bodies(org_id, [live[i] for _s, i, _h in chosen])
                for rank, memory_id, _h in chosen:
                    found_body = bodies.get(memory_id)
                    if memory_id in taken:
                        continue
                    if found_body is None:  # its body is nowhere: unreadable, counted
                        self._missing(org_id, live[memory_id], False)
                        taken.add(memory_id)
                        continue
                    body = found_body
                    if needle is not None and not _contains(body.content, needle):
                        continue
                    taken.add(memory_id)
                    native = 0.0 if query.recent_first else rank
                    out.append(Candidate(_with_body(live[memory_id], body), native))
                    if len(out) >= query.limit:
                        break
                if len(got) < pool:
                    break
        return out

    # -- memories: deletes --------------------------------------------------------------------
    async def delete_memories(
        self, org_id: str, flt: MemoryFilter, *, all_versions: bool = False
    ) -> int:
        kwargs = {"all_versions": True} if all_versions else {}
        if not _is_body_filter(flt):
            n: int = await self.meta.delete_memories(org_id, flt, **kwargs)
            return n
        ids = [m.id for m in await self._matching(org_id, flt)]
        total = 0
        for chunk in chunks(ids, 500):
            total += await self.meta.delete_memories(
                org_id, replace(_inner(flt), ids=tuple(chunk)), **kwargs
            )
        return total

    async def pop_memory(self, org_id: str, flt: MemoryFilter, *, now: int) -> Memory | None:
        # choose (the newest current match, its body read first: an unreadable one is not
        # removed), then pop exactly that one; the metadata store's pop is atomic, so of two
        # concurrent pops one gets it and the other chooses again
        current = replace(flt, current=True, live_at=now)
        for _attempt in range(50):
            if _is_body_filter(current):
                found = await self.list_memories(org_id, current, limit=1, offset=0, order="desc")
                if not found:
                    return None
                chosen = found[0]
            else:
                skeletons = await self.meta.list_memories(
                    org_id, current, limit=1, offset=0, order="desc"
                )
                if not skeletons:
                    return None
                chosen = (await self._attach(org_id, skeletons, strict=True))[0]
            popped = await self.meta.pop_memory(
                org_id, replace(_inner(current), ids=(chosen.id,)), now=now
            )
            if popped is not None:
                return chosen
        raise StoreError("pop: too many concurrent pops of the same memories")

    async def delete_expired(self, now: int, *, limit: int) -> int:
        n: int = await self.meta.delete_expired(now, limit=limit)
        return n

    async def delete_aged(
        self, org_id: str, rules: Sequence[AgeRule], *, limit: int, after: Any = None
    ) -> AgedBatch:
        _no_body_rules(rules)
        batch: AgedBatch = await self.meta.delete_aged(org_id, rules, limit=limit, after=after)
        return batch

    async def count_aged(self, org_id: str, rules: Sequence[AgeRule]) -> int:
        _no_body_rules(rules)
        n: int = await self.meta.count_aged(org_id, rules)
        return n

    async def list_namespaces(
        self, org_id: str, prefix: tuple[str, ...] | None = None
    ) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = await self.meta.list_namespaces(org_id, prefix)
        return out

    async def memory_orgs(self) -> list[str]:
        out: list[str] = await self.meta.memory_orgs()
        return out

    async def purge_org(self, org_id: str) -> int:
        n: int = await self.meta.purge_org(org_id)
        return n

    # -- the physical purge ---------------------------------------------------------------------
    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(min(self.settings.purge_grace_seconds, 600.0) or 1.0)
            try:
                await self.purge_arc()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Arc purge failed (retried later)")

    async def arc_orphans(self, *, grace_seconds: float | None = None) -> list[str]:
        """The ``body_hash`` of every row on Arc spooled more than ``grace_seconds`` ago
        (default ``purge_grace_seconds``) that no index row names any more: deleted, expired
        and swept, purged orgs, and orphans of writes that failed after spooling. What
        :meth:`purge_arc` deletes (``memtrace arc-purge --dry-run`` prints it)."""
        grace = self.settings.purge_grace_seconds if grace_seconds is None else grace_seconds
        cutoff = now_us() - int(grace * 1_000_000)
        dead: list[str] = []
        last = ""
        while True:
            rows = await self.arc.query(
                f"SELECT org_id, id, body_hash FROM {self.arc.table} WHERE time < "
                f"{_ts(cutoff)} AND body_hash > {sql_literal(last)} "
                "ORDER BY body_hash LIMIT 1000"
            )
            if not rows:
                return dead
            last = str(rows[-1][2])
            by_org: dict[str, list[tuple[str, str]]] = {}
            for org_id, memory_id, digest in rows:
                by_org.setdefault(str(org_id), []).append((str(memory_id), str(digest)))
            for org_id, pairs in by_org.items():
                live = await self._live(org_id, MemoryFilter(), pairs)
                # an index row that cannot be read (until `memtrace doctor` mends it) is not
                # "gone": its body stays
                absent = await self._absent(org_id, sorted({i for i, _d in pairs} - set(live)))
                dead.extend(
                    d
                    for i, d in pairs
                    if (i in live and _digest_of(live[i].content) != d)
                    or (i not in live and i in absent)
                )
            if len(rows) < 1000:
                return dead

    async def _absent(self, org_id: str, ids: list[str]) -> set[str]:
        """Of these ids, those with no index row at all, readable or not (counts include
        unreadable rows): by halves, so that a run of deleted ids costs a few counts."""
        if not ids:
            return set()
        n = await self.meta.count_memories(org_id, MemoryFilter(ids=tuple(ids)))
        if n == 0:
            return set(ids)
        if len(ids) == 1 or n == len(ids):
            return set()
        half = len(ids) // 2
        return await self._absent(org_id, ids[:half]) | await self._absent(org_id, ids[half:])

    async def purge_arc(self, *, grace_seconds: float | None = None) -> int:
        """Delete the rows :meth:`arc_orphans` names from Arc, with Arc's delete API (an admin
        token and ``delete.enabled`` on Arc; StoreError with Arc's reason otherwise). One
        process at a time (a lease in the metadata store). Returns the rows Arc deleted."""
        holder = f"arc-purge-{os.getpid()}-{id(self)}"
        if not await self.meta.acquire_lease(
            "arc-purge", holder, now=now_us(), duration=600_000_000
        ):
            return 0
        try:
            purged = 0
            orphans = await self.arc_orphans(grace_seconds=grace_seconds)
            for clause in where_clauses(orphans):
                purged += await self.arc.delete(clause)
            self.purged += purged
            return purged
        finally:
            await self.meta.release_lease("arc-purge", holder)

    # -- delegated to the metadata store ----------------------------------------------------------
    async def get_retention_policy(self, org_id: str) -> dict[str, Any] | None:
        out: dict[str, Any] | None = await self.meta.get_retention_policy(org_id)
        return out

    async def set_retention_policy(self, org_id: str, policy: dict[str, Any] | None) -> None:
        await self.meta.set_retention_policy(org_id, policy)

    async def list_retention_policies(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = await self.meta.list_retention_policies()
        return out

    async def acquire_lease(self, name: str, holder: str, *, now: int, duration: int) -> bool:
        ok: bool = await self.meta.acquire_lease(name, holder, now=now, duration=duration)
        return ok

    async def release_lease(self, name: str, holder: str) -> None:
        await self.meta.release_lease(name, holder)

    async def create_agent(self, org_id: str, agent: Agent) -> None:
        await self.meta.create_agent(org_id, agent)

    async def get_agent(self, org_id: str, id_or_name: str) -> Agent | None:
        out: Agent | None = await self.meta.get_agent(org_id, id_or_name)
        return out

    async def list_agents(self, org_id: str, *, strict: bool = False) -> list[Agent]:
        out: list[Agent] = await self.meta.list_agents(org_id, strict=strict)
        return out

    async def delete_agent(self, org_id: str, agent_id: str) -> bool:
        ok: bool = await self.meta.delete_agent(org_id, agent_id)
        return ok

    async def create_session(self, org_id: str, session: Session) -> None:
        await self.meta.create_session(org_id, session)

    async def get_session(self, org_id: str, session_id: str) -> Session | None:
        out: Session | None = await self.meta.get_session(org_id, session_id)
        return out

    async def list_sessions(
        self,
        org_id: str,
        *,
        agent_ids: tuple[str, ...] | None,
        status: str | None,
        limit: int,
        offset: int,
        strict: bool = False,
    ) -> list[Session]:
        out: list[Session] = await self.meta.list_sessions(
            org_id, agent_ids=agent_ids, status=status, limit=limit, offset=offset, strict=strict
        )
        return out

    async def update_session(
        self, org_id: str, session_id: str, change: Callable[[Session], Session]
    ) -> Session | None:
        out: Session | None = await self.meta.update_session(org_id, session_id, change)
        return out

    async def delete_session(self, org_id: str, session_id: str) -> bool:
        ok: bool = await self.meta.delete_session(org_id, session_id)
        return ok

    async def count_sessions(self, org_id: str, agent_ids: tuple[str, ...]) -> tuple[int, int]:
        out: tuple[int, int] = await self.meta.count_sessions(org_id, agent_ids)
        return out

    # -- orgs and API keys (the AuthStore protocol) ------------------------------------------------
    async def auth_revision(self) -> int:
        n: int = await self.meta.auth_revision()
        return n

    async def create_org(self, org: OrgRecord) -> None:
        await self.meta.create_org(org)

    async def get_org(self, org_id: str) -> OrgRecord | None:
        out: OrgRecord | None = await self.meta.get_org(org_id)
        return out

    async def list_orgs(self) -> list[OrgRecord]:
        out: list[OrgRecord] = await self.meta.list_orgs()
        return out

    async def delete_org(self, org_id: str) -> bool:
        ok: bool = await self.meta.delete_org(org_id)
        return ok

    async def bootstrap_org(self, org: OrgRecord, key: ApiKeyRecord) -> bool:
        ok: bool = await self.meta.bootstrap_org(org, key)
        return ok

    async def create_api_key(self, key: ApiKeyRecord) -> None:
        await self.meta.create_api_key(key)

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        out: ApiKeyRecord | None = await self.meta.get_api_key(key_id)
        return out

    async def list_api_keys(self, org_id: str | None = None) -> list[ApiKeyRecord]:
        out: list[ApiKeyRecord] = await self.meta.list_api_keys(org_id)
        return out

    async def find_api_keys(self, key_prefix: str) -> list[ApiKeyRecord]:
        out: list[ApiKeyRecord] = await self.meta.find_api_keys(key_prefix)
        return out

    async def delete_api_key(self, key_id: str) -> bool:
        ok: bool = await self.meta.delete_api_key(key_id)
        return ok

    async def update_api_key(self, key_id: str, **changes: Any) -> ApiKeyRecord | None:
        out: ApiKeyRecord | None = await self.meta.update_api_key(key_id, **changes)
        return out

    async def touch_api_key(self, key_id: str, used_at: int) -> None:
        await self.meta.touch_api_key(key_id, used_at)


#: What a metadata store raises when it refuses a write outright (nothing committed).
_REFUSED = (SupersedeError, ConflictError, ValidationError, ValueError)


def _matches_all(body: _Body, groups: Iterable[Iterable[tuple[str, ...]]]) -> bool:
    """Whether the body matches some phrase of every group."""
    return all(_matches(body, g) for g in groups)


def _matches(body: _Body, phrases: Iterable[tuple[str, ...]]) -> bool:
    counts = body.counts()
    return any(all(s in counts for s in ph) for ph in phrases)


def _no_body_rules(rules: Sequence[AgeRule]) -> None:
    if any(_is_body_filter(r.flt) for r in rules):  # pragma: no cover - the engine has none
        raise ValidationError("retention rules cannot filter on content on the Arc store")


def _ts(us: int) -> str:
    """A µs time as a TIMESTAMP literal (what lets Arc skip whole hourly partitions)."""
    try:
        return "'" + from_us(max(us, 0)).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00'"
    except (OverflowError, ValueError):  # pragma: no cover - outside the calendar
        return "'1970-01-01 00:00:00+00'"


__all__ = [
    "ARC_COLUMNS",
    "ArcSettings",
    "ArcStore",
    "body_hash",
    "parse_url",
    "sql_literal",
    "where_clauses",
]
