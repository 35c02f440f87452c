"""The embedded store: one SQLite file, safe for several threads and processes.

Design:

* **WAL** journal, ``busy_timeout`` (default 10 s) and ``synchronous=NORMAL`` by default: a
  committed transaction survives a crash of the process (SIGKILL included); use
  ``?synchronous=full`` in the URL to also survive a power loss, at the cost of an fsync per
  commit.
* **Group commit**: all writes of a process go through one writer thread. The thread drains every
  write request queued while the previous transaction was committing and runs them in a single
  ``BEGIN IMMEDIATE … COMMIT`` (each request inside its own savepoint, so one failing request
  does not fail the others). A request is acknowledged only after the COMMIT returns.
* **Atomic dedup**: the dedup check and the insert run in the same IMMEDIATE transaction, which
  SQLite serialises against every other writer, in this process or another one on the same file.
* **Reads** run on a small pool of reader threads, each with its own connection; WAL lets them
  proceed while a write commits, and they always see every acknowledged write.
* **Indexes** for every filter: (org, time), (org, agent, time), (org, session, time),
  (org, memory_type, time), (org, event_type, time), (org, dedup_key, recorded_at),
  (org, importance); exact tags in ``memory_tags``; FTS5 (porter) for keyword search and an FTS5
  trigram index for ``content_contains``. The store writes the index entries in the same
  transaction as the row (batched, much faster than per-row triggers) and a delete trigger
  removes them, so the indexes are exactly in sync, deletes included. The FTS5 indexes merge
  8 segments at a time (migration 9) and the writer merges further when idle
  (:meth:`SQLiteStore._merge_step`), so merge work stays out of most commits.
* **Migrations** are numbered and recorded in ``PRAGMA user_version``; :data:`MIGRATIONS`.

URL forms: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``; query parameters
``synchronous`` (normal | full), ``busy_timeout`` (ms), ``read_threads``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import ConflictError, CorruptRowError, StoreError, ValidationError
from ..models import (
    MEMORY_TYPES,
    SESSION_STATUSES,
    Agent,
    Memory,
    MemorySummary,
    Session,
    trusted_memory,
)
from ..timeutil import MAX_US, MIN_US, from_us, now_us, to_us
from ..validation import JSON_DEPTH_CEILING, compact_json
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
    MetaCondition,
    StoreHealth,
    SupersedeError,
    bucket_window,
    check_org,
)
from .sqlite_auth import SQLiteAuthMixin

T = TypeVar("T")

log = logging.getLogger("memtrace.store")

FTS_COLUMNS = ("content", "agent_id", "event_type", "tags")

# Inserts into the full-text indexes and the tag table are made by the store itself, in the same
# transaction as the row (executemany is ~4x faster than per-row insert triggers); deletes are
# kept in sync by a trigger, so no delete path can forget an index.
_TRIGGERS_V1 = """
CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, content, agent_id, event_type, tags)
    VALUES ('delete', old.rowid, old.content, old.agent_id, old.event_type, old.tags);
  DELETE FROM memory_tags WHERE memory_rowid = old.rowid;
END;
"""

_MIGRATION_1 = (
    """
CREATE TABLE memories (
  rowid INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  org_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  session_id TEXT,
  memory_type TEXT NOT NULL,
  event_type TEXT NOT NULL,
  content TEXT NOT NULL,
  metadata TEXT,
  tags TEXT,
  dedup_key TEXT,
  importance REAL,
  parent_id TEXT,
  time INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX memories_id ON memories(org_id, id);
CREATE INDEX memories_org_time ON memories(org_id, time);
CREATE INDEX memories_agent_time ON memories(org_id, agent_id, time);
CREATE INDEX memories_session_time ON memories(org_id, session_id, time) WHERE session_id IS NOT NULL;
CREATE INDEX memories_type_time ON memories(org_id, memory_type, time);
CREATE INDEX memories_event_time ON memories(org_id, event_type, time);
CREATE INDEX memories_dedup ON memories(org_id, dedup_key, recorded_at) WHERE dedup_key IS NOT NULL;
CREATE INDEX memories_importance ON memories(org_id, importance) WHERE importance IS NOT NULL;
CREATE TABLE memory_tags (
  org_id TEXT NOT NULL,
  tag TEXT NOT NULL,
  memory_rowid INTEGER NOT NULL,
  PRIMARY KEY (org_id, tag, memory_rowid)
) WITHOUT ROWID;
CREATE INDEX memory_tags_rowid ON memory_tags(memory_rowid);
CREATE VIRTUAL TABLE memories_fts USING fts5(
  content, agent_id, event_type, tags,
  content='memories', content_rowid='rowid',
  tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TABLE agents (
  id TEXT NOT NULL,
  org_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT,
  config TEXT,
  created_at INTEGER NOT NULL,
  last_active_at INTEGER,
  PRIMARY KEY (org_id, id),
  UNIQUE (org_id, name)
);
CREATE TABLE sessions (
  id TEXT NOT NULL,
  org_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  status TEXT NOT NULL,
  metadata TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  closed_at INTEGER,
  PRIMARY KEY (org_id, id)
);
CREATE INDEX sessions_org ON sessions(org_id, created_at);
CREATE INDEX sessions_agent ON sessions(org_id, agent_id, created_at);
"""
    + _TRIGGERS_V1
)

# v2: a trigram index so that content_contains (substring) does not scan the table.
_MIGRATION_2 = """
CREATE VIRTUAL TABLE memories_trigram USING fts5(
  content, content='memories', content_rowid='rowid', tokenize='trigram', detail='none'
);
INSERT INTO memories_trigram(memories_trigram) VALUES ('rebuild');
DROP TRIGGER memories_ad;
CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, content, agent_id, event_type, tags)
    VALUES ('delete', old.rowid, old.content, old.agent_id, old.event_type, old.tags);
  INSERT INTO memories_trigram(memories_trigram, rowid, content)
    VALUES ('delete', old.rowid, old.content);
  DELETE FROM memory_tags WHERE memory_rowid = old.rowid;
END;
"""

# v3: organizations, API keys and the auth revision (see stores/auth.py and stores/sqlite_auth.py).
_MIGRATION_3 = """
CREATE TABLE orgs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  name TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  key_prefix TEXT NOT NULL,
  permissions TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  enabled INTEGER NOT NULL DEFAULT 1,
  last_used_at INTEGER,
  UNIQUE (org_id, name)
);
CREATE INDEX api_keys_prefix ON api_keys(key_prefix);
CREATE INDEX api_keys_org ON api_keys(org_id, created_at);
CREATE TABLE auth_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  revision INTEGER NOT NULL
);
INSERT INTO auth_state (id, revision) VALUES (1, 0);
"""

# v4: time (docs/time.md): expiry, supersession links, recorded-time index, retention
# policies and leases (one sweeper at a time). ALTER TABLE … ADD COLUMN is O(1) in SQLite; the
# new indexes are built once (seconds on 1M memories). A delete mends the supersession links
# (as if the deleted memory had never been written): its predecessor takes over its successor,
# and its successor its predecessor. ``superseded_until`` on a superseded memory is when the
# last of its successors expires (NULL: one never does): from then on it is current again, as
# if the expired successors had never been written (see :func:`_refresh_until`).
_MIGRATION_4 = """
ALTER TABLE memories ADD COLUMN expires_at INTEGER;
ALTER TABLE memories ADD COLUMN supersedes TEXT;
ALTER TABLE memories ADD COLUMN superseded_by TEXT;
ALTER TABLE memories ADD COLUMN superseded_at INTEGER;
ALTER TABLE memories ADD COLUMN superseded_until INTEGER;
CREATE INDEX memories_expires ON memories(expires_at) WHERE expires_at IS NOT NULL;
CREATE UNIQUE INDEX memories_supersedes ON memories(org_id, supersedes) WHERE supersedes IS NOT NULL;
CREATE INDEX memories_org_recorded ON memories(org_id, recorded_at);
CREATE TABLE retention_policies (
  org_id TEXT PRIMARY KEY,
  policy TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TRIGGER memories_ad_links AFTER DELETE ON memories
WHEN old.supersedes IS NOT NULL OR old.superseded_by IS NOT NULL BEGIN
  UPDATE memories SET superseded_by = old.superseded_by, superseded_at = old.superseded_at,
    superseded_until = old.superseded_until
    WHERE old.supersedes IS NOT NULL AND org_id = old.org_id AND id = old.supersedes;
  UPDATE memories SET supersedes = old.supersedes
    WHERE old.superseded_by IS NOT NULL AND org_id = old.org_id AND id = old.superseded_by;
END;
"""

# v5: namespaces and keys (caller-chosen scopes and keys, for key/value style integrations
# such as LangGraph's store). The namespace is stored as its compact JSON array text, so that
# a namespace and everything below it is one index range (see _namespace_prefix).
_MIGRATION_5 = """
ALTER TABLE memories ADD COLUMN namespace TEXT;
ALTER TABLE memories ADD COLUMN key TEXT;
CREATE INDEX memories_key ON memories(org_id, key) WHERE key IS NOT NULL;
CREATE INDEX memories_namespace ON memories(org_id, namespace, time) WHERE namespace IS NOT NULL;
"""

# v6: the event time of the first version of a key (LangGraph's Item.created_at survives
# updates), set on insert from the memory a keyed write supersedes.
_MIGRATION_6 = """
ALTER TABLE memories ADD COLUMN key_created_at INTEGER;
UPDATE memories SET key_created_at = time WHERE key IS NOT NULL;
"""

# v7: a memory's payload, the caller's JSON value kept verbatim (compact JSON text; not
# indexed, not searched).
_MIGRATION_7 = """
ALTER TABLE memories ADD COLUMN payload TEXT;
"""

# v8: the live feed's commit sequence: the last memory rowid handed out, so that a rowid is
# never handed out twice (before, a new row took MAX(rowid) + 1: deleting the newest memory
# gave its rowid to the next one, behind a reader's position).
_MIGRATION_8 = """
CREATE TABLE memory_seq (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  last INTEGER NOT NULL
);
INSERT INTO memory_seq (id, last) VALUES (1, (SELECT COALESCE(MAX(rowid), 0) FROM memories));
"""

# v9: FTS5 merge settings for both keyword indexes (persisted in each table's %_config). With
# FTS5's default automerge=4, every 64 index leaf pages written (every ~64 single-memory commits)
# a COMMIT also did 64 x (number of index levels) pages of merging: 20-45 ms at 1M memories,
# the p99 of single writes. Merging 8 segments at a time (fewer levels, less total merge work)
# leaves that work on fewer than 1 % of commits, and crisismerge=32 keeps a level from being
# merged all at once in one commit as soon as it holds 16 segments. Segments left by sustained
# writes are merged further by the writer when it is idle (SQLiteStore._merge_step).
# Measured in docs/benchmarks.md.
_MIGRATION_9 = """
INSERT INTO memories_fts(memories_fts, rank) VALUES ('automerge', 8);
INSERT INTO memories_fts(memories_fts, rank) VALUES ('crisismerge', 32);
INSERT INTO memories_trigram(memories_trigram, rank) VALUES ('automerge', 8);
INSERT INTO memories_trigram(memories_trigram, rank) VALUES ('crisismerge', 32);
"""

#: Schema migrations, applied in order; ``PRAGMA user_version`` records how many have run.
MIGRATIONS: list[str] = [
    _MIGRATION_1,
    _MIGRATION_2,
    _MIGRATION_3,
    _MIGRATION_4,
    _MIGRATION_5,
    _MIGRATION_6,
    _MIGRATION_7,
    _MIGRATION_8,
    _MIGRATION_9,
]
SCHEMA_VERSION = len(MIGRATIONS)

_MEMORY_COLUMNS = (
    "m.id, m.org_id, m.agent_id, m.session_id, m.memory_type, m.event_type, m.content, "
    "m.metadata, m.tags, m.dedup_key, m.importance, m.parent_id, m.time, m.recorded_at, "
    "m.expires_at, m.supersedes, m.superseded_by, m.superseded_at, m.superseded_until, "
    "m.namespace, m.key, m.key_created_at, m.payload"
)
#: Columns of a memory row (the rowid, a score … come after them).
_N_MEMORY_COLUMNS = 23
_INSERT_SQL = (
    "INSERT INTO memories (rowid, id, org_id, agent_id, session_id, memory_type, event_type, "
    "content, metadata, tags, dedup_key, importance, parent_id, time, recorded_at, expires_at, "
    "supersedes, namespace, key, key_created_at, payload) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_FTS_SQL = (
    "INSERT INTO memories_fts(rowid, content, agent_id, event_type, tags) VALUES (?,?,?,?,?)"
)
_INSERT_TRIGRAM_SQL = "INSERT INTO memories_trigram(rowid, content) VALUES (?,?)"
_INSERT_TAG_SQL = "INSERT OR IGNORE INTO memory_tags(org_id, tag, memory_rowid) VALUES (?,?,?)"


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return compact_json(value)


#: The deepest JSON value (metadata, tags, config) a read accepts: a deeper one cannot be
#: serialised into a response (pydantic-core stops at ~255 levels, the model wrapping included).
MAX_READ_DEPTH = JSON_DEPTH_CEILING  # the validation's ceiling: what is accepted is readable


class UnreadableRow(Exception):
    """A stored row that cannot be decoded; the message says why (see :class:`CorruptRowError`)."""


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value (iterative: no recursion limit), stopping past the cap."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > MAX_READ_DEPTH:
                break
        stack.extend((child, depth + 1) for child in children)
    return deepest


#: The C scanner behind ``json.loads``, called directly (see :func:`_loads`).
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(raw: str) -> Any:
    """``json.loads(raw)`` for a column's text, ~2.5× cheaper for the compact JSON the store
    writes: the C scanner at offset 0, whose value is the text's when it ends the text. Any
    other text (leading or trailing whitespace, a BOM, invalid JSON) takes ``json.loads``,
    which gives the same value or raises — the same result either way."""
    try:
        value, end = _scan_json(raw, 0)
    except StopIteration:
        return json.loads(raw)
    return value if end == len(raw) else json.loads(raw)


def _json_column(raw: Any, name: str, expect: type | None) -> Any:
    if raw is None or raw == "":
        return None
    if type(raw) is not str:
        raise UnreadableRow(f"{name} is not {_what_text(raw)}")
    try:
        value = _loads(raw)
    except (ValueError, RecursionError):
        raise UnreadableRow(f"invalid JSON in {name}") from None
    if expect is not None and not isinstance(value, expect):
        raise UnreadableRow(f"{name} is not a JSON {'object' if expect is dict else 'array'}")
    # Only a value with many brackets can be deep: count them in C before walking it.
    if raw.count("[") + raw.count("{") > MAX_READ_DEPTH and _depth(value) > MAX_READ_DEPTH:
        raise UnreadableRow(f"{name} is nested deeper than {MAX_READ_DEPTH} levels")
    return value


def _time_column(raw: Any, name: str) -> Any:
    if type(raw) is not int:
        raise UnreadableRow(f"{name} is not an integer time")
    if not MIN_US <= raw <= MAX_US:
        raise UnreadableRow(f"{name} ({raw} µs) is outside the representable range (years 1-9999)")
    return from_us(raw)


def _what_text(raw: Any) -> str:
    return "valid UTF-8" if isinstance(raw, BadText) else "text"


def _text(raw: Any, name: str, *, optional: bool = False) -> Any:
    if type(raw) is str or (optional and raw is None):
        return raw
    raise UnreadableRow(f"{name} is not {_what_text(raw)}")


def _row_to_memory(row: Sequence[Any]) -> Memory:
    """A memory from its row; raises :class:`UnreadableRow` for a row that cannot be served
    (every check is a type test, cheap next to the JSON parsing a row needs anyway)."""
    tags = _json_column(row[8], "tags", list)
    if tags is not None and not all(type(t) is str for t in tags):
        raise UnreadableRow("tags is not an array of strings")
    importance = row[10]
    if importance is not None and type(importance) is not float:
        if type(importance) is not int:
            raise UnreadableRow("importance is not a number")
        importance = float(importance)
    if row[4] not in MEMORY_TYPES:
        raise UnreadableRow(f"unknown memory_type {row[4]!r}")
    time_fields = (
        _NO_TIME_FIELDS
        if row[14] is None and row[15] is None and row[16] is None
        else _time_fields(row)
    )
    namespace = None if row[19] is None else _namespace_column(row[19])
    return trusted_memory(
        {
            "id": _text(row[0], "id"),
            "time": _time_column(row[12], "time"),
            "recorded_at": _time_column(row[13], "recorded_at"),
            "org_id": row[1],
            "agent_id": _text(row[2], "agent_id"),
            "session_id": _text(row[3], "session_id", optional=True),
            "memory_type": row[4],
            "event_type": _text(row[5], "event_type"),
            "content": _text(row[6], "content"),
            "metadata": _json_column(row[7], "metadata", dict),
            "tags": tags,
            "dedup_key": _text(row[9], "dedup_key", optional=True),
            "importance": importance,
            "parent_id": _text(row[11], "parent_id", optional=True),
            "score": None,
            **time_fields,
            "namespace": namespace,
            "key": _text(row[20], "key", optional=True),
            "key_created_at": None if row[21] is None else _time_column(row[21], "key_created_at"),
            "payload": None if row[22] is None else _payload_column(row[22]),
        }
    )


def _payload_column(raw: Any) -> Any:
    """A stored payload: any JSON value (its depth bounded as every JSON column's)."""
    if raw == "":  # the empty string is not JSON: not what a write stores
        raise UnreadableRow("invalid JSON in payload")
    value = _json_column(raw, "payload", None)
    if isinstance(value, float) and not math.isfinite(value):
        raise UnreadableRow("payload is not finite")  # 1e999 in a hand-edited row
    return value


def encode_namespace(parts: Sequence[str]) -> str:
    """A namespace as stored: its compact JSON array text (``["a","b"]``)."""
    return compact_json(list(parts))


#: Decoded namespaces by their stored text (few distinct values, read on every row of a
#: namespace): a bounded cache, emptied when full.
_NAMESPACES: dict[str, tuple[str, ...]] = {}
_NAMESPACES_MAX = 4096


def _namespace_column(raw: Any) -> list[str]:
    cached = _NAMESPACES.get(raw) if type(raw) is str else None
    if cached is not None:
        return list(cached)
    parts = _json_column(raw, "namespace", list)
    if not parts or not all(type(p) is str for p in parts):
        raise UnreadableRow("namespace is not a non-empty array of strings")
    if len(_NAMESPACES) >= _NAMESPACES_MAX:
        _NAMESPACES.clear()
    _NAMESPACES[raw] = tuple(parts)
    return list(parts)


def _namespace_prefix(column: str, prefix: Sequence[str]) -> tuple[str, list[Any]]:
    """``column`` is ``prefix`` or below it, as one index range: the encoding of a namespace
    below ``["a","b"]`` starts with ``["a","b","`` (the next part's opening quote, 0x22), and
    every such text sorts before ``["a","b",#`` (0x23). The empty prefix is every namespace."""
    if not prefix:
        return f"{column} IS NOT NULL", []
    head = encode_namespace(prefix)[:-1] + ","
    return (
        f"({column} IS NOT NULL AND ({column} = ? OR ({column} >= ? AND {column} < ?)))",
        [encode_namespace(prefix), head + '"', head + "#"],
    )


def _json_path(path: Sequence[str | int]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f'."{p}"' for p in path)


def _meta_term(column: str, cond: MetaCondition) -> tuple[str, list[Any]]:
    """The SQL of one metadata condition (see :class:`MetaCondition`)."""
    path = _json_path(cond.path)
    value = f"json_extract({column}, ?)"
    kind = f"json_type({column}, ?)"
    scalar_eq = f"({kind} NOT IN ('array', 'object') AND {value} = ?)"
    op = cond.op
    if op == "eq":
        if cond.value is None:
            return f"{value} IS NULL", [path]
        return scalar_eq, [path, path, cond.value]
    if op == "ne":
        if cond.value is None:
            return f"{value} IS NOT NULL", [path]
        return f"NOT COALESCE({scalar_eq}, 0)", [path, path, cond.value]
    if op == "in":
        # eq of each value, as one IN: SQLite compares 1 and 1.0 (and true, read as 1) equal
        scalars = [v for v in cond.value if v is not None]
        alts: list[str] = []
        args: list[Any] = []
        if len(scalars) < len(cond.value):
            alts.append(f"{value} IS NULL")
            args.append(path)
        if scalars:
            alts.append(f"({kind} NOT IN ('array', 'object') AND {_in(value, scalars)})")
            args.extend([path, path, *scalars])
        return "(" + " OR ".join(alts) + ")", args
    if op == "length":
        return (
            f"({kind} = 'array' AND json_array_length({column}, ?) = ?)",
            [path, path, cond.value],
        )
    if op == "not":
        terms = [_meta_term(column, c) for c in cond.value]
        sql = " AND ".join(t for t, _ in terms)
        return f"NOT COALESCE(({sql}), 0)", [p for _, params in terms for p in params]
    if op == "object":
        return f"{kind} = 'object'", [path]
    compare = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    return (
        f"({kind} IN ('integer', 'real', 'true', 'false') AND {value} {compare} ?)",
        [path, path, cond.value],
    )


#: The time fields of a memory that neither expires nor takes part in a chain (most).
_NO_TIME_FIELDS: dict[str, Any] = {
    "expires_at": None,
    "supersedes": None,
    "superseded_by": None,
    "superseded_at": None,
}


def _time_fields(row: Sequence[Any]) -> dict[str, Any]:
    superseded_by, superseded_at, until = row[16], row[17], row[18]
    if until is not None and (type(until) is not int or until <= now_us()):
        # every successor has expired: as if they had never been written, it is current
        superseded_by = superseded_at = None
    return {
        "expires_at": None if row[14] is None else _time_column(row[14], "expires_at"),
        "supersedes": _text(row[15], "supersedes", optional=True),
        "superseded_by": _text(superseded_by, "superseded_by", optional=True),
        "superseded_at": None
        if superseded_at is None
        else _time_column(superseded_at, "superseded_at"),
    }


class BadText(str):
    """A TEXT value that is not valid UTF-8 (written by another tool), decoded with
    replacement characters; ``raw`` holds the stored bytes. The row decoders reject it (they
    accept exact ``str`` only), so the row is reported as unreadable instead of failing the
    whole query."""

    raw: bytes


def lenient_text(data: bytes) -> str:
    """``text_factory`` that never fails: invalid UTF-8 becomes a :class:`BadText`."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = BadText(data.decode("utf-8", "replace"))
        text.raw = data
        return text


def _fetch(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """``execute(...).fetchall()``; if a value is not valid UTF-8 (which sqlite3 reports for
    the whole query), the query is run again decoding leniently so that the row decoders can
    skip just that row. The fast path is untouched."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode to UTF-8" not in str(exc):
            raise
    conn.text_factory = lenient_text
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.text_factory = str


def _fetch_one(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Any:
    rows = _fetch(conn, sql, params)
    return rows[0] if rows else None


def _record_row(r: MemoryRecord, rowid: int) -> tuple[Any, ...]:
    return (
        rowid,
        r.id,
        r.org_id,
        r.agent_id,
        r.session_id,
        r.memory_type,
        r.event_type,
        r.content,
        _dumps(r.metadata),
        _dumps(r.tags),
        r.dedup_key,
        r.importance,
        r.parent_id,
        r.time,
        r.recorded_at,
        r.expires_at,
        r.supersedes,
        None if r.namespace is None else encode_namespace(r.namespace),
        r.key,
        r.key_created_at,
        _dumps(r.payload),
    )


def _agent_from_row(row: Sequence[Any]) -> Agent:
    """An agent from its row; raises :class:`UnreadableRow` (checked here, then built without
    a second validation)."""
    return Agent.model_construct(
        id=_text(row[0], "id"),
        org_id=row[1],
        name=_text(row[2], "name"),
        description=_text(row[3], "description", optional=True),
        config=_json_column(row[4], "config", dict),
        created_at=_time_column(row[5], "created_at"),
        last_active_at=_time_column(row[6], "last_active_at") if row[6] is not None else None,
    )


_SESSION_COLUMNS = "id, org_id, agent_id, status, metadata, created_at, updated_at, closed_at"


def _session_from_row(row: Sequence[Any]) -> Session:
    if row[3] not in SESSION_STATUSES:
        raise UnreadableRow(f"unknown status {row[3]!r}")
    return Session.model_construct(
        id=_text(row[0], "id"),
        org_id=row[1],
        agent_id=_text(row[2], "agent_id"),
        status=row[3],
        metadata=_json_column(row[4], "metadata", dict),
        created_at=_time_column(row[5], "created_at"),
        updated_at=_time_column(row[6], "updated_at"),
        closed_at=_time_column(row[7], "closed_at") if row[7] is not None else None,
    )


def fts_quote(term: str) -> str:
    """``term`` as an FTS5 string literal: double-quoted, embedded quotes doubled, so that no
    query word can be an operator or a column filter. The only FTS quoting in memtrace."""
    return '"' + term.replace('"', '""') + '"'


def fts_any(terms: Sequence[str]) -> str:
    """The FTS5 ``MATCH`` expression for any of ``terms`` (``""`` when there are none)."""
    return " OR ".join(fts_quote(term) for term in terms)


#: Filter values that surely hold a token (an ASCII letter or digit is a token character in
#: every FTS5 tokenizer configuration here), from characters FTS5's unicode61 splits the same
#: way as any other: such a value's phrase matches its own column.
_PHRASE_SAFE = re.compile(r"[A-Za-z0-9_.:@/ -]*[A-Za-z0-9][A-Za-z0-9_.:@/ -]*")


def _scoped_match(match: str, flt: MemoryFilter) -> str:
    """``match`` narrowed inside the full-text index to the filter's agents and event types
    (their phrases in the ``agent_id`` / ``event_type`` columns), when every value is
    phrase-safe: a superset of the filtered rows (the SQL filter still decides), found by
    intersecting doclists instead of joining each match of other agents to its row — 17 ms
    instead of 564 ms to count a common word's matches of one agent out of 50 on 1M memories.
    Only for statements that do not rank by ``bm25()``: the extra phrase would add to scores."""
    for column, values in (("agent_id", flt.agent_ids), ("event_type", flt.event_types)):
        if values and all(_PHRASE_SAFE.fullmatch(v) for v in values):
            # one column filter per phrase: every FTS5 version takes `col : "phrase"` (a filter
            # on a parenthesised expression is not in the oldest ones)
            either = " OR ".join(f"{column} : {fts_quote(v)}" for v in values)
            match = f"({match}) AND ({either})"
    return match


def _scoped_match_count(
    org_id: str, flt: MemoryFilter, terms: Sequence[str], cap: int
) -> tuple[str, list[Any]]:
    """SQL and parameters counting the org's memories matching ``flt`` and any of ``terms``,
    no further than ``cap``."""
    where, params = build_where(org_id, flt)
    # CROSS JOIN keeps the full-text index as the outer loop. Left to itself SQLite walked
    # the org's rows and re-evaluated the MATCH for each one: 45 s for a 2,000-character
    # query (285 terms) on 2,000 memories, 0.03 s this way. The count stops at ``cap``
    # matches of the org, so it costs no more than the exact BM25 path it chooses between,
    # which reads every match anyway.
    sql = (
        "SELECT COUNT(*) FROM (SELECT m.rowid FROM memories_fts "
        "CROSS JOIN memories m ON m.rowid = memories_fts.rowid "
        f"WHERE memories_fts MATCH ? AND {where} LIMIT ?)"
    )
    return sql, [_scoped_match(fts_any(terms), flt), *params, cap]


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def _in(column: str, values: Sequence[Any]) -> str:
    """``column = ?`` for one value, else ``column IN (?,…)`` (parameters: ``values``)."""
    if len(values) == 1:
        return f"{column} = ?"
    return f"{column} IN ({_placeholders(len(values))})"


def _in_implies_not_null() -> bool:
    """Whether this SQLite sees that ``x IN (…)`` implies a partial index's ``x IS NOT NULL``
    (recent versions do: the implication rule covers every comparison but ``IS``)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t(a, b)")
        conn.execute("CREATE INDEX t_b ON t(a, b) WHERE b IS NOT NULL")
        conn.execute(
            "EXPLAIN QUERY PLAN SELECT 1 FROM t INDEXED BY t_b WHERE a = 1 AND b IN (1, 2)"
        )
        return True
    except sqlite3.OperationalError:  # "no query solution": this SQLite cannot use it so
        return False
    finally:
        conn.close()


_IN_IMPLIES_NOT_NULL = _in_implies_not_null()


def _in_not_null(column: str, values: Sequence[Any]) -> str:
    """:func:`_in` on a column with a partial index ``WHERE column IS NOT NULL``.

    An explicit ``column IS NOT NULL`` beside an ``IN`` list made SQLite (3.40) seek the index
    by the range ``column > NULL`` and test each of the org's entries against the list, instead
    of one seek per value: the dedup check of a batch of 1,000 read every dedup key of the org
    (20 ms on 30k memories, growing with the store). Where SQLite derives the ``IS NOT NULL``
    from the ``IN`` itself the term is left out; elsewhere it stays, or the partial index
    could not be used at all."""
    term = _in(column, values)
    return term if _IN_IMPLIES_NOT_NULL else f"{column} IS NOT NULL AND {term}"


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


#: The only non-ASCII characters whose ``str.lower()`` holds ASCII letters (KELVIN SIGN -> "k",
#: CAPITAL I WITH DOT ABOVE -> "i" + a combining dot): an ASCII needle may match them.
FOLDS_TO_ASCII = "\u212a\u0130"


def _longest_literal(needle: str) -> str:
    """The longest run of ``needle`` without LIKE wildcards (used to pre-filter on the index)."""
    best = ""
    current: list[str] = []
    for ch in needle:
        # LIKE is case-insensitive for ASCII only: non-ASCII characters cannot pre-filter, nor
        # can the letters that FOLDS_TO_ASCII characters fold to (the index would miss them).
        if ch in "%_kKiI" or not ch.isascii():
            best = max(best, "".join(current), key=len)
            current = []
        else:
            current.append(ch)
    return max(best, "".join(current), key=len)


def build_where(org_id: str, flt: MemoryFilter, alias: str = "m") -> tuple[str, list[Any]]:
    """The WHERE clause (without the keyword) and parameters for a memory filter."""
    a = alias
    clauses = [f"{a}.org_id = ?"]
    params: list[Any] = [org_id]
    for column, values in (
        ("id", flt.ids),
        ("agent_id", flt.agent_ids),
        ("memory_type", flt.memory_types),
        ("event_type", flt.event_types),
    ):
        if values is not None:
            clauses.append(_in(f"{a}.{column}", values))
            params.extend(values)
    if flt.namespace is not None:
        # "IS NOT NULL": what lets SQLite use the partial index (a bound ? could be NULL)
        clauses.append(f"{a}.namespace IS NOT NULL AND {a}.namespace = ?")
        params.append(encode_namespace(flt.namespace))
    if flt.namespace_prefix is not None:
        term, term_params = _namespace_prefix(f"{a}.namespace", flt.namespace_prefix)
        clauses.append(term)
        params.extend(term_params)
    for term, value in (
        ("key IS NOT NULL AND key = ?", flt.key),  # the partial index memories_key
        ("session_id = ?", flt.session_id),
        ("time >= ?", flt.since),
        ("time < ?", flt.until),
        ("importance >= ?", flt.min_importance),
        ("recorded_at >= ?", flt.recorded_since),
        ("recorded_at < ?", flt.recorded_until),
    ):
        if value is not None:
            clauses.append(f"{a}.{term}")
            params.append(value)
    if flt.keys is not None:
        clauses.append(_in_not_null(f"{a}.key", flt.keys))  # memories_key
        params.extend(flt.keys)
    for tag in flt.tags or ():
        clauses.append(
            f"EXISTS (SELECT 1 FROM memory_tags t WHERE t.org_id = {a}.org_id "
            f"AND t.tag = ? AND t.memory_rowid = {a}.rowid)"
        )
        params.append(tag)
    if flt.tags_any is not None:
        clauses.append(
            f"EXISTS (SELECT 1 FROM memory_tags t WHERE t.org_id = {a}.org_id "
            f"AND {_in('t.tag', flt.tags_any)} AND t.memory_rowid = {a}.rowid)"
        )
        params.extend(flt.tags_any)
    if flt.content_contains is not None:
        needle = flt.content_contains
        literal = _longest_literal(needle)
        if len(literal) >= 3:
            clauses.append(
                f"{a}.rowid IN (SELECT rowid FROM memories_trigram WHERE content LIKE ?)"
            )
            params.append(f"%{literal}%")
        if needle.isascii():
            # SQLite's lower() folds ASCII only; the two characters whose str.lower() holds
            # ASCII letters go through Python's (the rule: needle.lower() in content.lower())
            clauses.append(
                f"(instr(lower({a}.content), lower(?)) > 0 OR "
                f"((instr({a}.content, ?) > 0 OR instr({a}.content, ?) > 0) AND "
                f"instr(memtrace_lower({a}.content), ?) > 0))"
            )
            params.extend([needle, *FOLDS_TO_ASCII, needle.lower()])
        else:  # SQLite's lower() folds ASCII only; use Python's Unicode lower()
            clauses.append(f"instr(memtrace_lower({a}.content), ?) > 0")
            params.append(needle.lower())
    for cond in flt.metadata or ():
        term, term_params = _meta_term(f"{a}.metadata", cond)
        clauses.append(term)
        params.extend(term_params)
    # The time view comes last: SQLite tests the terms in order, and the tag and substring
    # terms above need only the index entry's rowid, these the row (read only for matches).
    if flt.as_of is not None:
        # unary +: not an index term (a time-ordered page must not be planned on
        # (org, recorded_at), which would read and sort the whole org)
        clauses.append(f"+{a}.recorded_at <= ?")
        params.append(flt.as_of)
    if flt.live_at is not None:
        clauses.append(f"({a}.expires_at IS NULL OR {a}.expires_at > ?)")
        params.append(flt.live_at)
    if flt.current:
        # superseded, unless the supersession is after as_of or every successor has expired
        terms = [f"{a}.superseded_by IS NULL"]
        if flt.as_of is not None:
            terms.append(f"{a}.superseded_at > ?")
            params.append(flt.as_of)
        if flt.live_at is not None:
            terms.append(f"{a}.superseded_until <= ?")
            params.append(flt.live_at)
        clauses.append("(" + " OR ".join(terms) + ")" if len(terms) > 1 else terms[0])
    return " AND ".join(clauses), params


def summary_tags_sql(where: str) -> str:
    """The tags of the memories ``where`` selects, counted (parameters: the org, then the
    WHERE's, then the LIMIT), the most frequent first, ties by tag. CROSS JOIN keeps the
    memories as the outer loop (planned as a count is, on the filter's index), so a narrow
    scope never reads the tags of the whole org."""
    return (
        "SELECT t.tag, COUNT(*) AS n FROM memories m CROSS JOIN memory_tags t "
        f"ON t.memory_rowid = m.rowid AND t.org_id = ? WHERE {where} "
        "GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?"
    )


class _Writer(threading.Thread):
    """The single writer thread of a store: group commit of queued write requests."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        max_group: int,
        busy_timeout_ms: int = 10_000,
        idle_work: Callable[[sqlite3.Connection], bool] | None = None,
        idle_after: float = 1.0,
    ) -> None:
        super().__init__(name="memtrace-sqlite-writer", daemon=True)
        self._connect = connect
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._idle_work = idle_work
        self._idle_after = idle_after
        self._queue: queue.SimpleQueue[
            tuple[
                Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop
            ]
            | None
        ] = queue.SimpleQueue()
        self._max_group = max_group
        self._stop_lock = threading.Lock()
        self._stopped = False
        self.ready = threading.Event()
        self.error: BaseException | None = None
        #: Number of transactions committed and requests served (for tests and metrics).
        self.commits = 0
        self.requests = 0
        #: Idle-work transactions run, how many of them found work to do, how many found
        #: nothing left (the indexes at rest), and how many were not run because another
        #: connection held the write lock.
        self.idle_steps = 0
        self.idle_worked = 0
        self.idle_rests = 0
        self.idle_busy = 0

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        with self._stop_lock:
            # nothing is queued after the stop marker: it would never be run nor answered
            if self._stopped:
                raise StoreError("store is closed")
            self._queue.put((fn, fut, loop))
        return fut

    def stop(self) -> None:
        """Run what is queued, then end (later submits raise StoreError)."""
        with self._stop_lock:
            if not self._stopped:
                self._stopped = True
                self._queue.put(None)

    def run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # pragma: no cover - reported through open()
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        stopping = False
        # Idle work (FTS5 merge steps) is due after a commit; it starts once no request has
        # come for ``idle_after`` seconds, then runs step after step (IDLE_STEP_GAP_SECONDS
        # apart) while the queue stays empty, until a step finds nothing to do. A request
        # arriving meanwhile waits for at most the one step in progress. Also due at open: a
        # store reopened after a bulk import finishes the merges the import started once it
        # is idle.
        idle_due = self._idle_work is not None
        idling = False
        try:
            while not stopping:
                if idle_due:
                    try:
                        # between two idle steps a short gap, in which another connection
                        # waiting for the write lock can take it (else back-to-back steps
                        # would hold it off until the merge is done)
                        wait = IDLE_STEP_GAP_SECONDS if idling else self._idle_after
                        item = self._queue.get(timeout=wait)
                    except queue.Empty:
                        worked = self._run_idle(conn)
                        # busy (another process writing): wait another idle period, no spinning
                        idling = worked is True
                        idle_due = worked is not False
                        continue
                    idling = False
                else:
                    item = self._queue.get()
                if item is None:
                    break
                jobs = [item]
                while len(jobs) < self._max_group:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    jobs.append(nxt)
                idle_due = self._idle_work is not None
                try:
                    self._run_group(conn, jobs)
                except Exception as exc:  # e.g. ROLLBACK failing after SQLite aborted a txn
                    # Never let the writer die: fail this group, reset the connection, go on.
                    with contextlib.suppress(sqlite3.Error):
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                    err = StoreError(f"write failed: {exc}")
                    for _, fut, loop in jobs:
                        _deliver(loop, fut, False, err)
        finally:
            conn.close()

    def _run_group(
        self,
        conn: sqlite3.Connection,
        jobs: list[
            tuple[
                Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop
            ]
        ],
    ) -> None:
        try:
            self._begin(conn)
        except sqlite3.Error as exc:
            err = StoreError(f"database unavailable: {exc}")
            for _, fut, loop in jobs:
                _deliver(loop, fut, False, err)
            return
        # Fast path: run every job in the one transaction without savepoints (FTS5 flushes its
        # pending index data at each savepoint, which made small concurrent writes write tiny
        # index segments). If any job fails, roll back and replay the group with one savepoint
        # per job so only the failing job is undone; jobs only touch the database, so a replay
        # is safe.
        results = self._run_jobs(conn, jobs, savepoints=False)
        if len(jobs) > 1 and not all(ok for ok, _ in results):
            conn.execute("ROLLBACK")
            self._begin(conn)
            results = self._run_jobs(conn, jobs, savepoints=True)
        try:
            if len(jobs) == 1 and not results[0][0]:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            err = StoreError(f"commit failed: {exc}")
            results = [(False, err) for _ in jobs]
        self.commits += 1
        self.requests += len(jobs)
        for (ok, value), (_, fut, loop) in zip(results, jobs, strict=True):
            _deliver(loop, fut, ok, value)

    def _run_idle(self, conn: sqlite3.Connection) -> bool | None:
        """One idle-work transaction; True while there is more to do, None if another
        connection holds the write lock (it never waits for it: the caller retries after the
        next idle period). On any other error (logged) it gives up until the next commit: idle
        work must never stop the writer thread."""
        assert self._idle_work is not None
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                self.idle_busy += 1
                return None
            finally:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            self.idle_steps += 1
            worked = self._idle_work(conn)
            conn.execute("COMMIT")
            self.idle_rests += not worked
        except Exception:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            log.warning("sqlite idle merge step failed", exc_info=True)
            return False
        self.idle_worked += worked
        return worked

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting for another process's write transaction in sub-ms steps.

        SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between attempts, so when
        several server processes share one file, each hand-over of the write lock cost
        milliseconds of idle time (most of a worker's time under write load). Here the wait
        polls every 0.1–1 ms for the same total ``busy_timeout``; the connection's own busy
        timeout applies again to every statement once the lock is held."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + self._busy_timeout_ms / 1000
            delay = 0.0001
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 1.5, 0.001)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")

    @staticmethod
    def _run_jobs(
        conn: sqlite3.Connection,
        jobs: list[
            tuple[
                Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop
            ]
        ],
        *,
        savepoints: bool,
    ) -> list[tuple[bool, Any]]:
        """Run each job; with ``savepoints`` a failing job's changes are undone alone. Without
        them the first failure stops the run (the caller then replays with savepoints)."""
        results: list[tuple[bool, Any]] = []
        for fn, _, _ in jobs:
            if savepoints:
                conn.execute("SAVEPOINT job")
            try:
                value = fn(conn)
            except BaseException as exc:  # delivered to the caller
                if savepoints:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                results.append((False, _wrap_error(exc)))
                if not savepoints:
                    break
            else:
                if savepoints:
                    conn.execute("RELEASE job")
                results.append((True, value))
        return results


class _Checkpointer(threading.Thread):
    """Checkpoints the WAL into the database file every ``interval`` seconds (PASSIVE: never
    waits for readers or writers), and once more, fully, when the store closes. The writer
    connection checkpoints inline only past :data:`WRITER_AUTOCHECKPOINT_PAGES` (a safety net),
    so commits do not pay for checkpoints; when the WAL grows past :data:`WAL_RESTART_BYTES` a
    RESTART checkpoint bounds its size. A RESTART blocks new writers while it waits for readers
    still on older snapshots, so it waits at most :data:`RESTART_WAIT_MS` and otherwise goes on
    as a PASSIVE one (a long read, such as an export, never stalls the writes behind it); the
    next round tries again."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], interval: float) -> None:
        super().__init__(name="memtrace-sqlite-checkpoint", daemon=True)
        self._connect = connect
        self._interval = interval
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error:  # pragma: no cover - the store failed to open already
            return
        try:
            normal_wait = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
            conn.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
            while not self._stop_event.wait(self._interval):
                self._checkpoint(conn, "PASSIVE")
            conn.execute(f"PRAGMA busy_timeout = {normal_wait}")  # closing: wait as long as needed
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection, mode: str) -> None:
        with contextlib.suppress(sqlite3.Error):  # busy/locked: the next round retries
            _, wal_frames, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            if mode == "PASSIVE" and wal_frames * page_size > WAL_RESTART_BYTES:
                conn.execute("PRAGMA wal_checkpoint(RESTART)")


#: WAL size above which the checkpointer forces a RESTART checkpoint (waits for readers and
#: the writer, then the next commit starts the WAL again from its beginning). PASSIVE rounds
#: alone rarely let the WAL restart under a steady stream of commits (one always lands
#: before the round ends), so this is what bounds the WAL file in practice. Measured (2 cores,
#: docs/benchmarks.md): at 256 MB, 10,000 single writes grew the WAL to 311 MB and batch ingest
#: to 284 MB; at 32 MB, 62 and 58 MB, with batch ingest 7 % faster and the single-write tail
#: unchanged (p99.9 5.8 vs 7.1 ms).
WAL_RESTART_BYTES = 32 * 1024 * 1024

#: The keyword indexes (FTS5 tables) the writer merges when idle (SQLiteStore._merge_step).
_FTS_TABLES = ("memories_fts", "memories_trigram")

#: Seconds without a write request before the writer merges index segments (the default of
#: SQLiteStore's ``idle_merge_seconds``).
IDLE_MERGE_SECONDS = 1.0

#: Pause between two idle merge steps: another connection waiting for the write lock (SQLite's
#: busy handler retries after 1, 2, 5, 10 … ms) gets it in one of these gaps instead of waiting
#: for the whole merge; a write request arriving in it is served at once.
IDLE_STEP_GAP_SECONDS = 0.005

#: Pages of merge output per idle merge step (one transaction). Measured on a 1M store after
#: 20,000 single writes (automerge 8): a few dozen steps of 16 pages, each a few ms (the
#: longest a write arriving during an idle merge waits), brought 32/34 segments down to 5/6.
#: A store left mid-merge by a bulk import needs more and longer steps once (docs/benchmarks.md).
MERGE_STEP_PAGES = 16

#: How long (ms) the checkpointer's RESTART waits for readers and the writer before it goes on
#: as a PASSIVE checkpoint (writers are held off while it waits).
RESTART_WAIT_MS = 50

#: The writer's inline autocheckpoint threshold in pages: only a safety net (four times
#: :data:`WAL_RESTART_BYTES` with 4 KiB pages) for when the checkpointer thread cannot keep up;
#: all routine checkpointing runs on that thread. An inline checkpoint runs inside the COMMIT a
#: caller waits for: with SQLite's default (1000 pages) nearly every batch commit paid for one,
#: and with the earlier 10,000 pages every ~400th single-memory commit took 25-35 ms (the p99.9
#: of ``remember()`` and the p99 of a single POST at one connection). Measured (2 cores, 10,000
#: single writes, docs/benchmarks.md): 10,000 pages + 1 s thread → p99.9 30.6 ms, 23 writes over
#: 20 ms; safety net only + 0.25 s thread → p99.9 8.3 ms, 2 over 20 ms; p50 unchanged (0.6 ms).
WRITER_AUTOCHECKPOINT_PAGES = 4 * WAL_RESTART_BYTES // 4096


def _wrap_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"database error: {exc}")
    return exc


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (int(code) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)  # pragma: no cover - Python < 3.11


def _deliver(
    loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], ok: bool, value: Any
) -> None:
    def _set() -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    with contextlib.suppress(RuntimeError):  # the caller's loop is gone
        loop.call_soon_threadsafe(_set)


class RowDecoding:
    """Decoding of stored rows with the Store protocol's rule for unreadable ones (skipped,
    logged, counted in ``unreadable_rows``; ``strict`` reads raise CorruptRowError). Shared by
    the stores of this package."""

    def _init_decoding(self) -> None:
        #: Unreadable rows skipped by reads since open (``memtrace_unreadable_rows_total``).
        self.unreadable_rows = 0
        self._unreadable_lock = threading.Lock()
        self._reported: set[tuple[str, str, str]] = set()

    def _decode(
        self,
        rows: Iterable[Sequence[Any]],
        decode: Callable[[Sequence[Any]], T],
        kind: str,
        org_id: str,
        *,
        strict: bool = False,
    ) -> list[T]:
        """Decode rows, skipping (logging, counting) the unreadable ones; with ``strict`` the
        first unreadable row raises :class:`CorruptRowError` instead (exports, get-by-id)."""
        out: list[T] = []
        for row in rows:
            try:
                out.append(decode(row))
            except (UnreadableRow, ValueError, TypeError, OverflowError, RecursionError) as exc:
                self._unreadable(kind, row, org_id, exc, strict)
        return out

    def _decode_one(
        self,
        row: Sequence[Any] | None,
        decode: Callable[[Sequence[Any]], T],
        kind: str,
        org_id: str,
    ) -> T | None:
        if row is None:
            return None
        return self._decode([row], decode, kind, org_id, strict=True)[0]

    def _unreadable(
        self, kind: str, row: Sequence[Any], org_id: str, exc: BaseException, strict: bool
    ) -> None:
        row_id = str(row[0])
        reason = str(exc) if isinstance(exc, UnreadableRow) else f"{type(exc).__name__}: {exc}"
        if strict:
            raise CorruptRowError(kind, row_id, org_id, reason) from None
        key = (kind, org_id, row_id)
        with self._unreadable_lock:
            self.unreadable_rows += 1
            first = key not in self._reported
            if first:
                if len(self._reported) > 10_000:
                    self._reported.clear()
                self._reported.add(key)
        # Every skip is counted; the first of each row is a warning, repeats are debug.
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "skipped unreadable %s %s of org %s: %s (run `memtrace doctor` to list and remove "
            "unreadable rows)",
            kind,
            row_id,
            org_id,
            reason,
        )


class SQLiteStore(RowDecoding, SQLiteAuthMixin):
    """The embedded SQLite store (see the module docstring)."""

    #: Its coroutines may be awaited on any event loop, from several threads at once: each
    #: hands its work to the writer thread or the reader pool, which deliver the result to
    #: the loop that awaited it (see ``Store`` in ``stores/base.py``).
    loop_agnostic = True

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "normal",
        busy_timeout_ms: int = 10_000,
        read_threads: int = 2,
        max_group: int = 512,
        checkpoint_seconds: float = 0.25,
        idle_merge_seconds: float | None = IDLE_MERGE_SECONDS,
    ) -> None:
        if synchronous.lower() not in ("normal", "full", "extra"):
            raise ValidationError(
                f"invalid sqlite synchronous mode: {synchronous!r}", field="synchronous"
            )
        self.path = path
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = busy_timeout_ms
        self.read_threads = read_threads
        self._writer: _Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._max_group = max_group
        self.checkpoint_seconds = checkpoint_seconds
        if idle_merge_seconds is not None and (
            isinstance(idle_merge_seconds, bool)
            or not isinstance(idle_merge_seconds, (int, float))
            or not 0 <= idle_merge_seconds < math.inf
        ):
            raise ValidationError(
                f"invalid idle_merge_seconds: {idle_merge_seconds!r} (seconds >= 0, or None)",
                field="idle_merge_seconds",
            )
        #: Seconds without a write before the writer merges the keyword indexes' segments
        #: (:meth:`_merge_step`); None: never (FTS5's automerge at commit only).
        self.idle_merge_seconds = idle_merge_seconds
        self._checkpointer: _Checkpointer | None = None
        self._init_decoding()

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Build from ``sqlite:///relative.db`` / ``sqlite:////abs.db`` (+ query parameters)."""
        parts = urlsplit(url)
        if parts.scheme != "sqlite":
            raise ValidationError(f"not a sqlite URL: {url!r}", field="url")
        path = unquote(parts.path)
        if parts.netloc:
            raise ValidationError(
                "sqlite URLs have no host: use sqlite:///relative/path.db or sqlite:////abs/path.db",
                field="url",
            )
        path = path[1:] if path.startswith("/") else path
        if not path or path == ":memory:":
            raise ValidationError(
                "sqlite URL needs a file path, e.g. sqlite:///data/memtrace.db", field="url"
            )
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        kwargs: dict[str, Any] = {}
        try:
            if "synchronous" in params:
                kwargs["synchronous"] = params["synchronous"]
            if "busy_timeout" in params:
                kwargs["busy_timeout_ms"] = int(params["busy_timeout"])
            if "read_threads" in params:
                kwargs["read_threads"] = max(1, int(params["read_threads"]))
        except ValueError:
            raise ValidationError(f"invalid sqlite URL parameter in {url!r}", field="url") from None
        return cls(path, **kwargs)

    # -- connections ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout_ms / 1000,
        )
        conn.create_function("memtrace_lower", 1, _unicode_lower, deterministic=True)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA cache_size = -32768")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA mmap_size = 268435456")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def open(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        await asyncio.to_thread(self._migrate)
        self._writer = _Writer(
            self._writer_connect,
            self._max_group,
            self.busy_timeout_ms,
            idle_work=None if self.idle_merge_seconds is None else self._merge_step,
            idle_after=self.idle_merge_seconds or 0.0,
        )
        self._writer.start()
        await asyncio.to_thread(self._writer.ready.wait)
        if self._writer.error is not None:  # pragma: no cover
            raise StoreError(f"cannot open {self.path}: {self._writer.error}")
        self._readers = ThreadPoolExecutor(
            max_workers=self.read_threads, thread_name_prefix="memtrace-sqlite-read"
        )
        self._checkpointer = _Checkpointer(self._connect, self.checkpoint_seconds)
        self._checkpointer.start()

    @staticmethod
    def _merge_step(conn: sqlite3.Connection) -> bool:
        """One step of merging each keyword index's segments (the writer's idle work, inside
        its transaction): FTS5 ``merge`` of :data:`MERGE_STEP_PAGES` pages on levels holding
        at least ``usermerge`` (4) segments. Sustained writes leave up to 7 segments per level
        (``automerge`` 8, migration 9), each one more lookup per search term; once writes
        pause this brings every level below 4. True if a step changed an index (FTS5 rewrites
        its structure record, rowid 10 of ``%_data``, whenever it merges)."""
        worked = False
        for table in _FTS_TABLES:
            sql = f"SELECT block FROM {table}_data WHERE id = 10"
            before = conn.execute(sql).fetchone()
            conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('merge', {MERGE_STEP_PAGES})")
            worked = worked or conn.execute(sql).fetchone() != before
        return worked

    def _writer_connect(self) -> sqlite3.Connection:
        # Checkpointing runs on the checkpointer thread, not inside the commits callers wait
        # for; the writer's inline threshold is only a bound on WAL growth if that thread
        # falls behind (WRITER_AUTOCHECKPOINT_PAGES).
        conn = self._connect()
        conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
        return conn

    def _migrate(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from None
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network filesystem
                raise StoreError(f"cannot enable WAL on {self.path} (got {mode})")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from None
        finally:
            conn.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        with self._reader_lock:
            for conn in self._reader_conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._reader_conns.clear()

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        writer = self._writer  # (read once: another thread's close may clear it)
        if writer is None:
            raise StoreError("store is closed")
        return await writer.submit(fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        readers = self._readers
        if readers is None:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()

        def run() -> T:
            try:
                return fn(self._reader())
            except sqlite3.Error as exc:
                raise StoreError(f"database error: {exc}") from None

        try:
            return await loop.run_in_executor(readers, run)
        except RuntimeError as exc:
            if "shutdown" not in str(exc):
                raise
            # closed by another thread meanwhile (its pool no longer takes work)
            raise StoreError("store is closed") from None

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(transactions committed, write requests served) since open — shows group commit."""
        if self._writer is None:
            return (0, 0)
        return (self._writer.commits, self._writer.requests)

    async def health(self) -> StoreHealth:
        started = time.perf_counter()
        try:
            await self._read(lambda conn: conn.execute("SELECT 1").fetchone())
        except Exception as exc:  # reported, not raised: a health check must answer
            return StoreHealth(False, (time.perf_counter() - started) * 1000, f"{exc!r}")
        return StoreHealth(True, (time.perf_counter() - started) * 1000)

    # -- memories -------------------------------------------------------------------------------

    async def insert_memories(
        self,
        org_id: str,
        records: Sequence[MemoryRecord],
        *,
        dedup_since: int | None,
        now: int,
    ) -> list[InsertOutcome]:
        check_org(org_id, records, "memory")
        if not records:
            return []
        return await self._write(lambda conn: _insert(conn, org_id, records, dedup_since, now))

    async def import_memories(self, org_id: str, records: Sequence[MemoryRecord]) -> int:
        check_org(org_id, records, "memory")
        if not records:
            return 0

        def run(conn: sqlite3.Connection) -> int:
            existing: set[str] = set()
            ids = list(dict.fromkeys(r.id for r in records))
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                existing.update(
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM memories WHERE org_id = ? AND id IN "
                        f"({_placeholders(len(chunk))})",
                        (org_id, *chunk),
                    )
                )
            fresh: list[MemoryRecord] = []
            for record in records:
                if record.id not in existing:
                    existing.add(record.id)
                    fresh.append(record)
            try:  # the unique index on (org_id, supersedes), at insert or at linking
                _write_rows(conn, fresh)
                _link_imported(conn, org_id, fresh)
            except sqlite3.IntegrityError:
                raise ConflictError(
                    "import would make two memories supersede the same memory"
                ) from None
            return len(fresh)

        return await self._write(run)

    async def get_memory(self, org_id: str, memory_id: str) -> Memory | None:
        def run(conn: sqlite3.Connection) -> Memory | None:
            row = _fetch_one(
                conn,
                f"SELECT {_MEMORY_COLUMNS} FROM memories m WHERE m.id = ? AND m.org_id = ?",
                (memory_id, org_id),
            )
            return self._decode_one(row, _row_to_memory, "memory", org_id)

        return await self._read(run)

    async def list_memories(
        self, org_id: str, flt: MemoryFilter, *, limit: int, offset: int, order: str
    ) -> list[Memory]:
        where, params = build_where(org_id, flt)
        direction = "ASC" if order == "asc" else "DESC"
        # An agent filter is usually a registered agent's aliases (id and name): with
        # ``agent_id IN (?, ?)`` and no sqlite_stat1, SQLite prefers memories_org_time (it
        # yields the ORDER BY) and scans the whole window of every agent — 9 ms instead of
        # 0.3 ms for a 24 h recall on 1M memories. The agent index is the right choice whenever
        # an agent is given without a session or ids (agents are selective).
        # A key has a handful of versions: its index beats any time order (get-by-key, the
        # versions of a key). So do given ids (the page of a ranked search): left to itself
        # SQLite walked the org's rows by time and tested each id, 5 ms for 50 ids on 10k.
        if flt.ids is not None:
            index = " INDEXED BY memories_id"
        elif flt.key is not None or flt.keys is not None:
            index = " INDEXED BY memories_key"
        elif flt.agent_ids is not None and flt.session_id is None:
            index = " INDEXED BY memories_agent_time"
        else:
            index = ""
        sql = (
            f"SELECT {_MEMORY_COLUMNS} FROM memories m{index} WHERE {where} "
            f"ORDER BY m.time {direction}, m.rowid {direction} LIMIT ? OFFSET ?"
        )
        return await self._read(
            lambda conn: self._page(
                conn, sql, params, limit, offset, _row_to_memory, "memory", org_id
            )
        )

    def _page(
        self,
        conn: sqlite3.Connection,
        sql: str,
        params: Sequence[Any],
        limit: int,
        offset: int,
        decode: Callable[[Sequence[Any]], T],
        kind: str,
        org_id: str,
    ) -> list[T]:
        """A ``LIMIT ? OFFSET ?`` page with unreadable rows skipped and the page topped up from
        the rows after it, so a page stays full and the engine's ``has_more`` exact. Offsets
        still count stored rows (an unreadable row keeps its place), so a client paging past
        one may see a row twice, never miss one."""
        out: list[T] = []
        want, at = limit, offset
        while want > 0:
            rows = _fetch(conn, sql, [*params, want, at])
            got = self._decode(rows, decode, kind, org_id)
            out.extend(got)
            if len(got) == len(rows) or len(rows) < want:
                break
            at += want
            want = len(rows) - len(got)
        return out

    async def keyword_candidates(
        self, org_id: str, flt: MemoryFilter, query: KeywordQuery
    ) -> list[Candidate]:
        """Stage 1: FTS5 BM25 order, or with ``query.recent_first`` the newest memories matching
        every query word (AND of ``query.groups``), topped up with the newest matching any
        term. (The engine picks recent-first for large match sets: FTS5's bm25() reads
        every matching row (its docsize row, the joined memory row, and each phrase's whole
        doclist for idf), which costs ~5 µs per match — 0.5 s for a common word on 1M memories;
        rowid-ordered MATCH with LIMIT stops after ``limit`` rows.)"""
        if not query.terms:
            return []
        match = fts_any(query.terms)
        weights = ", ".join(str(float(query.field_weights.get(col, 1.0))) for col in FTS_COLUMNS)
        where, params = build_where(org_id, flt)
        exact_sql = (
            f"SELECT {_MEMORY_COLUMNS}, bm25(memories_fts, {weights}) AS score "
            "FROM memories_fts JOIN memories m ON m.rowid = memories_fts.rowid "
            f"WHERE memories_fts MATCH ? AND {where} ORDER BY score LIMIT ?"
        )
        newest_sql = (
            f"SELECT {_MEMORY_COLUMNS}, 0.0 "
            "FROM memories_fts JOIN memories m ON m.rowid = memories_fts.rowid "
            f"WHERE memories_fts MATCH ? AND {where} ORDER BY memories_fts.rowid DESC LIMIT ?"
        )
        exprs: list[str] = []  # the recent-first rounds (rowid order: no bm25)
        if len(query.groups) > 1:
            exprs.append(" AND ".join("(" + fts_any(g) + ")" for g in query.groups))
        exprs.append(match)
        exprs = [_scoped_match(expr, flt) for expr in exprs]

        def candidate(r: Sequence[Any]) -> Candidate:
            return Candidate(_row_to_memory(r), float(r[_N_MEMORY_COLUMNS]))

        known = query.known

        def run(conn: sqlite3.Connection) -> list[Candidate]:
            if not query.recent_first:
                rows = _fetch(conn, exact_sql, [match, *params, query.limit])
                if known:  # the caller holds these already: not decoded again
                    rows = [r for r in rows if r[0] not in known]
                return self._decode(rows, candidate, "memory", org_id)
            out: list[Candidate] = []
            seen: set[str] = set()
            taken = 0  # what `out` would hold with the known memories in it
            for expr in exprs:
                if taken >= query.limit:
                    break
                rows = [
                    r
                    for r in _fetch(conn, newest_sql, [expr, *params, query.limit])
                    if r[0] not in seen
                ]
                fresh = {
                    c.memory.id: c
                    for c in self._decode(
                        [r for r in rows if r[0] not in known], candidate, "memory", org_id
                    )
                }
                for r in rows:
                    rid = r[0]
                    if taken >= query.limit:
                        break
                    if rid in seen or (rid not in known and rid not in fresh):
                        continue  # a repeat, or an unreadable row (skipped, not counted)
                    seen.add(rid)
                    taken += 1
                    if rid in fresh:
                        out.append(fresh[rid])
            return out

        return await self._read(run)

    async def count_keyword_matches(
        self, org_id: str, flt: MemoryFilter, terms: tuple[str, ...], cap: int
    ) -> int:
        if not terms:
            return 0
        sql, args = _scoped_match_count(org_id, flt, terms, cap)
        return await self._read(lambda conn: int(conn.execute(sql, args).fetchone()[0]))

    async def keyword_matches_exceed(
        self, org_id: str, flt: MemoryFilter, terms: tuple[str, ...], limit: int
    ) -> bool:
        """Whether more than ``limit`` memories of ``org_id`` matching ``flt`` match any of
        ``terms``: ``count_keyword_matches(…, limit + 1) > limit`` (exact for the org and the
        filters, so the same search path), answered in one read from the cheapest bound that
        settles it. The match count of the whole index (no join: ~0.5 µs a match, a third of
        the scoped count's cost; narrowed in the index to the filter's agents and event types,
        :func:`_scoped_match`) bounds the org's from above, as does the size of the scope;
        only when both exceed ``limit`` is the scoped match count read."""
        if not terms:
            return False
        cls = type(self)
        if (
            cls.count_keyword_matches is not SQLiteStore.count_keyword_matches
            or cls.count_memories is not SQLiteStore.count_memories
        ):  # a subclass counts its own way (it may hide rows): the engine's decision, on it
            if await self.count_memories(org_id, flt.without_view(), cap=limit + 1) <= limit:
                return False
            return await self.count_keyword_matches(org_id, flt, terms, limit + 1) > limit
        match = _scoped_match(fts_any(terms), flt)
        every = "SELECT COUNT(*) FROM (SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)"
        scope_where, scope_params = build_where(org_id, flt.without_view())
        scope = f"SELECT COUNT(*) FROM (SELECT 1 FROM memories m WHERE {scope_where} LIMIT ?)"
        scoped, scoped_args = _scoped_match_count(org_id, flt, terms, limit + 1)

        def run(conn: sqlite3.Connection) -> bool:
            if conn.execute(every, [match, limit + 1]).fetchone()[0] <= limit:
                return False
            if conn.execute(scope, [*scope_params, limit + 1]).fetchone()[0] <= limit:
                return False
            return bool(conn.execute(scoped, scoped_args).fetchone()[0] > limit)

        return await self._read(run)

    async def count_memories(
        self, org_id: str, flt: MemoryFilter, *, cap: int | None = None
    ) -> int:
        where, params = build_where(org_id, flt)
        if cap is None:
            sql = f"SELECT COUNT(*) FROM memories m WHERE {where}"
            args: list[Any] = params
        else:
            sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM memories m WHERE {where} LIMIT ?)"
            args = [*params, cap]
        return await self._read(lambda conn: int(conn.execute(sql, args).fetchone()[0]))

    async def summarize_memories(
        self, org_id: str, flt: MemoryFilter, *, tag_limit: int
    ) -> MemorySummary:
        where, params = build_where(org_id, flt)
        # a time that is not a representable integer (an unreadable row) is counted, not dated
        dated = (
            f"CASE WHEN typeof(m.time) = 'integer' AND m.time BETWEEN {MIN_US} AND {MAX_US} "
            "THEN m.time END"
        )
        totals = f"SELECT COUNT(*), MIN({dated}), MAX({dated}) FROM memories m WHERE {where}"
        tags = summary_tags_sql(where)

        def run(conn: sqlite3.Connection) -> MemorySummary:
            conn.execute("BEGIN")  # one snapshot: the totals and the tags agree
            try:
                count, oldest, newest = conn.execute(totals, params).fetchone()
                rows = (
                    conn.execute(tags, [org_id, *params, tag_limit + 1]).fetchall() if count else []
                )
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
            return MemorySummary(
                count=int(count),
                oldest=None if oldest is None else from_us(oldest),
                newest=None if newest is None else from_us(newest),
                tags={str(tag): int(n) for tag, n in rows[:tag_limit]},
                tags_truncated=len(rows) > tag_limit,
            )

        return await self._read(run)

    async def delete_memories(
        self, org_id: str, flt: MemoryFilter, *, all_versions: bool = False
    ) -> int:
        where, params = build_where(org_id, flt)
        if all_versions:
            sql = chain_delete_sql(where)
            args = [*params, org_id, org_id, org_id]
            return await self._write(lambda conn: _delete(conn, sql, args))
        sql = (
            f"DELETE FROM memories WHERE rowid IN (SELECT m.rowid FROM memories m WHERE {where}) "
            "RETURNING org_id, supersedes"
        )
        return await self._write(lambda conn: _delete(conn, sql, params))

    async def pop_memory(self, org_id: str, flt: MemoryFilter, *, now: int) -> Memory | None:
        where, params = build_where(org_id, replace(flt, current=True, live_at=now))
        select = (
            f"SELECT {_MEMORY_COLUMNS}, m.rowid FROM memories m WHERE {where} "
            "ORDER BY m.time DESC, m.rowid DESC LIMIT 1"
        )

        def run(conn: sqlite3.Connection) -> Memory | None:
            # chosen and deleted inside the writer's transaction: concurrent pops serialise
            row = _fetch_one(conn, select, params)
            memory = self._decode_one(row, _row_to_memory, "memory", org_id)
            if row is None or memory is None:
                return None
            _delete(
                conn,
                "DELETE FROM memories WHERE rowid = ? RETURNING org_id, supersedes",
                (row[_N_MEMORY_COLUMNS],),
            )
            return memory

        return await self._write(run)

    async def delete_expired(self, now: int, *, limit: int) -> int:
        sql = (
            "DELETE FROM memories WHERE rowid IN (SELECT rowid FROM memories "
            "WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?) "
            "RETURNING org_id, supersedes"
        )
        return await self._write(lambda conn: _delete(conn, sql, (now, limit)))

    @staticmethod
    def _aged_select(org_id: str, rules: Sequence[AgeRule]) -> tuple[str, list[Any]] | None:
        """``SELECT m.id, m.time, m.rowid`` of the memories past their age, in (time, rowid)
        order (None when every rule keeps forever)."""
        cutoffs = [rule.cutoff for rule in rules if rule.cutoff is not None]
        if not cutoffs:
            return None
        # The first rule a memory matches decides its cutoff (CASE takes the first true WHEN);
        # a rule that keeps forever, and a memory no rule matches, get one nothing is before.
        cases: list[str] = []
        params: list[Any] = [org_id, max(cutoffs)]
        for rule in rules:
            where, where_params = build_where(org_id, rule.flt)
            cases.append(f"WHEN ({where}) THEN ?")
            params.extend(where_params)
            params.append(rule.cutoff if rule.cutoff is not None else MIN_US - 1)
        params.append(MIN_US - 1)
        sql = (
            "SELECT m.id, m.time, m.rowid FROM memories m WHERE m.org_id = ? AND m.time < ? "
            f"AND m.time < (CASE {' '.join(cases)} ELSE ? END)"
        )
        return sql, params

    async def count_aged(self, org_id: str, rules: Sequence[AgeRule]) -> int:
        query = self._aged_select(org_id, rules)
        if query is None:
            return 0
        sql = f"SELECT COUNT(*) FROM ({query[0]})"
        return await self._read(lambda conn: int(conn.execute(sql, query[1]).fetchone()[0]))

    async def delete_aged(
        self, org_id: str, rules: Sequence[AgeRule], *, limit: int, after: Any = None
    ) -> AgedBatch:
        query = self._aged_select(org_id, rules)
        if query is None or limit < 1:
            return AgedBatch(0, None)
        select, params = query
        if after is not None:  # resume past what the previous call examined
            select += " AND (m.time > ? OR (m.time = ? AND m.rowid > ?))"
            params = [*params, after[0], after[0], after[1]]
        select += " ORDER BY m.time, m.rowid LIMIT ?"
        params.append(limit)
        # Select on a reader (it may scan memories kept longer), delete by id on the writer.
        rows = await self._read(lambda conn: _fetch(conn, select, params))
        resume = (rows[-1][1], rows[-1][2]) if len(rows) == limit else None
        ids = [row[0] for row in rows]
        if not ids:
            return AgedBatch(0, resume)

        def run(conn: sqlite3.Connection) -> int:
            deleted = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                deleted += _delete(
                    conn,
                    f"DELETE FROM memories WHERE org_id = ? AND id IN ({_placeholders(len(chunk))}) "
                    "RETURNING org_id, supersedes",
                    (org_id, *chunk),
                )
            return deleted

        return AgedBatch(await self._write(run), resume)

    async def list_namespaces(
        self, org_id: str, prefix: tuple[str, ...] | None = None
    ) -> list[tuple[str, ...]]:
        # a skip-scan of (org_id, namespace, time): one seek per namespace
        hi: str | None = None
        lo = ""
        exact: str | None = None
        if prefix is not None:  # the prefix itself, then the range of everything below it
            _, (exact, lo, hi) = _namespace_prefix("namespace", prefix)
        bound = "" if hi is None else " AND namespace < ?"
        extra: tuple[Any, ...] = () if hi is None else (hi,)
        select = (
            "SELECT MIN(namespace) FROM memories WHERE org_id = ? AND namespace IS NOT NULL "
            "AND namespace {op} ?" + bound
        )
        first, step = select.format(op=">="), select.format(op=">")

        # a namespace is listed while it holds a memory that reads show: not expired, and not
        # superseded (unless every successor has expired) — a namespace that only an older
        # version of a moved record occupies is not listed
        live = (
            "SELECT 1 FROM memories WHERE org_id = ? AND namespace IS NOT NULL AND namespace = ? "
            "AND (expires_at IS NULL OR expires_at > ?) "
            "AND (superseded_by IS NULL OR superseded_until <= ?) LIMIT 1"
        )

        def run(conn: sqlite3.Connection) -> list[tuple[str, ...]]:
            now = now_us()
            out: list[tuple[str, ...]] = []
            if exact is not None and _fetch_one(conn, live, (org_id, exact, now, now)):
                out.append(tuple(prefix or ()))
            row = _fetch_one(conn, first, (org_id, lo, *extra))
            while row is not None and row[0] is not None:
                raw = row[0]
                if _fetch_one(conn, live, (org_id, raw, now, now)):
                    try:
                        out.append(tuple(_namespace_column(raw)))
                    except UnreadableRow as exc:
                        self._unreadable("namespace", (raw,), org_id, exc, False)
                row = _fetch_one(conn, step, (org_id, raw, *extra))
            return sorted(out)  # by parts (the stored JSON text sorts "a","b" before "a")

        return await self._read(run)

    async def memory_orgs(self) -> list[str]:
        # a skip-scan of the (org_id, time) index: one seek per org, not one step per memory
        sql = (
            "WITH RECURSIVE o(id) AS (SELECT MIN(org_id) FROM memories UNION ALL "
            "SELECT (SELECT MIN(org_id) FROM memories WHERE org_id > o.id) FROM o "
            "WHERE o.id IS NOT NULL) SELECT id FROM o WHERE id IS NOT NULL"
        )
        return await self._read(lambda conn: [str(r[0]) for r in _fetch(conn, sql, ())])

    async def get_retention_policy(self, org_id: str) -> dict[str, Any] | None:
        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = _fetch_one(
                conn, "SELECT policy FROM retention_policies WHERE org_id = ?", (org_id,)
            )
            return _policy(row[0], org_id) if row else None

        return await self._read(run)

    async def set_retention_policy(self, org_id: str, policy: dict[str, Any] | None) -> None:
        def run(conn: sqlite3.Connection) -> None:
            if policy is None:
                conn.execute("DELETE FROM retention_policies WHERE org_id = ?", (org_id,))
                return
            conn.execute(
                "INSERT INTO retention_policies (org_id, policy, updated_at) VALUES (?,?,?) "
                "ON CONFLICT (org_id) DO UPDATE SET policy = excluded.policy, "
                "updated_at = excluded.updated_at",
                (org_id, _dumps(policy), time.time_ns() // 1000),
            )

        await self._write(run)

    async def list_retention_policies(self) -> dict[str, dict[str, Any]]:
        def run(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            rows = _fetch(conn, "SELECT org_id, policy FROM retention_policies", ())
            out: dict[str, dict[str, Any]] = {}
            for org, raw in rows:
                try:
                    out[str(org)] = _policy(raw, str(org))
                except CorruptRowError as exc:  # a list never fails on one row: skip it
                    self._unreadable("retention policy", (org,), str(org), exc, False)
            return out

        return await self._read(run)

    async def acquire_lease(self, name: str, holder: str, *, now: int, duration: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            # inside the writer's IMMEDIATE transaction: serialised against every process
            conn.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?,?,?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at "
                "WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                (name, holder, now + duration, now),
            )
            row = conn.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
            return row is not None and row[0] == holder

        return await self._write(run)

    async def release_lease(self, name: str, holder: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)
            )
        )

    async def count_by_type(self, org_id: str, flt: MemoryFilter) -> dict[str, int]:
        where, params = build_where(org_id, flt)
        sql = f"SELECT m.memory_type, COUNT(*) FROM memories m WHERE {where} GROUP BY m.memory_type"
        return await self._read(
            lambda conn: {str(t): int(n) for t, n in conn.execute(sql, params).fetchall()}
        )

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
        where, params = build_where(org_id, bucket_window(flt, start, bucket, buckets))
        # one pass over the window on the filter's (org, time) index; the time is at least
        # `start`, so the integer division is a floor (CAST: a REAL time of an unreadable row)
        sql = (
            "SELECT CAST((m.time - ?) / ? AS INTEGER) AS b, m.memory_type, COUNT(*), "
            f"SUM(m.event_type = ?) FROM memories m WHERE {where} GROUP BY b, m.memory_type"
        )
        args = [start, bucket, error_type, *params]
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [BucketCount(int(b), str(t), int(n), int(e)) for b, t, n, e in rows]

    async def iter_memories(
        self, org_id: str, flt: MemoryFilter, *, batch: int = 1000
    ) -> AsyncIterator[list[Memory]]:
        where, params = build_where(org_id, flt)
        last: tuple[int, int] | None = None
        while True:
            extra = " AND (m.time > ? OR (m.time = ? AND m.rowid > ?))" if last else ""
            sql = (
                f"SELECT {_MEMORY_COLUMNS}, m.rowid FROM memories m WHERE {where}{extra} "
                "ORDER BY m.time, m.rowid LIMIT ?"
            )
            args = [*params, *((last[0], last[0], last[1]) if last else ()), batch]
            rows = await self._read(lambda conn, s=sql, a=args: _fetch(conn, s, a))  # type: ignore[misc]
            if not rows:
                return
            # An export must not skip a row: an unreadable one fails it (CorruptRowError).
            yield self._decode(rows, _row_to_memory, "memory", org_id, strict=True)
            last = (rows[-1][12], rows[-1][_N_MEMORY_COLUMNS])
            if len(rows) < batch:
                return

    # -- the live feed --------------------------------------------------------------------------

    async def feed_head(self, org_id: str) -> str:
        return f"s{await self._read(_feed_last)}"

    async def feed_version(self) -> int:
        """Changes whenever a memory may have been committed, by any process (the feed hub's
        cheap poll)."""
        return await self._read(_feed_last)

    async def feed_changed_orgs(self, before: int, now: int) -> set[str] | None:
        """The orgs of the memories committed between two :meth:`feed_version` values (so
        the hub wakes only their watchers); None (every org) past 10,000 rows."""
        if now - before > 10_000:
            return None
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT DISTINCT org_id FROM memories WHERE rowid > ? AND rowid <= ?",
                (before, now),
            ).fetchall()
        )
        return {str(r[0]) for r in rows}

    async def feed_memories(
        self, org_id: str, flt: MemoryFilter, *, after: str | None, limit: int, scan: int
    ) -> FeedPage:
        start = 0 if after is None else _feed_position(after)
        where, params = build_where(org_id, flt)
        # NOT INDEXED: the rowid range is the scan, whatever the filter (an index of the org's
        # times would read the whole org)
        sql = (
            f"SELECT {_MEMORY_COLUMNS}, m.rowid FROM memories m NOT INDEXED WHERE {where} "
            "AND m.rowid > ? AND m.rowid <= ? ORDER BY m.rowid LIMIT ?"
        )

        def run(conn: sqlite3.Connection) -> FeedPage:
            last = _feed_last(conn)
            if start > last:
                raise ValidationError(
                    f"invalid after: position {after} is beyond this store's newest memory "
                    "(a position of another database?)",
                    field="after",
                )
            upper = min(last, start + max(1, scan))
            rows = _fetch(conn, sql, [*params, start, upper, limit])
            items: list[tuple[str, Memory]] = []
            for row in rows:
                for memory in self._decode([row], _row_to_memory, "memory", org_id):
                    items.append((f"s{row[_N_MEMORY_COLUMNS]}", memory))
            cursor = int(rows[-1][_N_MEMORY_COLUMNS]) if len(rows) >= limit else upper
            return FeedPage(items, f"s{cursor}", more=cursor < last)

        return await self._read(run)

    # -- agents ---------------------------------------------------------------------------------

    async def create_agent(self, org_id: str, agent: Agent) -> None:
        check_org(org_id, [agent], "agent")

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO agents (id, org_id, name, description, config, created_at, last_active_at) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (
                        agent.id,
                        agent.org_id,
                        agent.name,
                        agent.description,
                        _dumps(agent.config),
                        to_us(agent.created_at),
                        to_us(agent.last_active_at) if agent.last_active_at else None,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f"agent '{agent.name}' already exists in this organization"
                ) from None

        await self._write(run)

    async def get_agent(self, org_id: str, id_or_name: str) -> Agent | None:
        def run(conn: sqlite3.Connection) -> Agent | None:
            row = _fetch_one(
                conn,
                "SELECT id, org_id, name, description, config, created_at, last_active_at FROM agents "
                "WHERE org_id = ? AND id = ? UNION ALL "
                "SELECT id, org_id, name, description, config, created_at, last_active_at FROM agents "
                "WHERE org_id = ? AND name = ? LIMIT 1",
                (org_id, id_or_name, org_id, id_or_name),
            )
            return self._decode_one(row, _agent_from_row, "agent", org_id)

        return await self._read(run)

    async def list_agents(self, org_id: str, *, strict: bool = False) -> list[Agent]:
        def run(conn: sqlite3.Connection) -> list[Agent]:
            rows = _fetch(
                conn,
                "SELECT id, org_id, name, description, config, created_at, last_active_at FROM agents "
                "WHERE org_id = ? ORDER BY created_at DESC, id",
                (org_id,),
            )
            return self._decode(rows, _agent_from_row, "agent", org_id, strict=strict)

        return await self._read(run)

    async def delete_agent(self, org_id: str, agent_id: str) -> bool:
        return await self._write(
            lambda conn: (
                conn.execute(
                    "DELETE FROM agents WHERE org_id = ? AND id = ?", (org_id, agent_id)
                ).rowcount
                > 0
            )
        )

    # -- sessions -------------------------------------------------------------------------------

    async def create_session(self, org_id: str, session: Session) -> None:
        check_org(org_id, [session], "session")

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO sessions (id, org_id, agent_id, status, metadata, created_at, updated_at, closed_at) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    _session_row(session),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"session '{session.id}' already exists") from None

        await self._write(run)

    async def get_session(self, org_id: str, session_id: str) -> Session | None:
        def run(conn: sqlite3.Connection) -> Session | None:
            row = _fetch_one(
                conn,
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE org_id = ? AND id = ?",
                (org_id, session_id),
            )
            return self._decode_one(row, _session_from_row, "session", org_id)

        return await self._read(run)

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
        clauses = ["org_id = ?"]
        params: list[Any] = [org_id]
        if agent_ids is not None:
            clauses.append(_in("agent_id", agent_ids))
            params.extend(agent_ids)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        sql = (
            "SELECT id, org_id, agent_id, status, metadata, created_at, updated_at, closed_at FROM sessions "
            f"WHERE {' AND '.join(clauses)} ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
        )
        if strict:
            params.extend((limit, offset))
            return await self._read(
                lambda conn: self._decode(
                    _fetch(conn, sql, params), _session_from_row, "session", org_id, strict=True
                )
            )
        return await self._read(
            lambda conn: self._page(
                conn, sql, params, limit, offset, _session_from_row, "session", org_id
            )
        )

    async def update_session(
        self, org_id: str, session_id: str, change: Callable[[Session], Session]
    ) -> Session | None:
        def run(conn: sqlite3.Connection) -> Session | None:
            row = _fetch_one(
                conn,
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE org_id = ? AND id = ?",
                (org_id, session_id),
            )
            current = self._decode_one(row, _session_from_row, "session", org_id)
            if current is None:
                return None
            updated = change(current)
            new = _session_row(updated)
            conn.execute(
                "UPDATE sessions SET status = ?, metadata = ?, updated_at = ?, closed_at = ? "
                "WHERE org_id = ? AND id = ?",
                (new[3], new[4], new[6], new[7], org_id, session_id),
            )
            return updated

        return await self._write(run)

    async def delete_session(self, org_id: str, session_id: str) -> bool:
        return await self._write(
            lambda conn: (
                conn.execute(
                    "DELETE FROM sessions WHERE org_id = ? AND id = ?", (org_id, session_id)
                ).rowcount
                > 0
            )
        )

    async def count_sessions(self, org_id: str, agent_ids: tuple[str, ...]) -> tuple[int, int]:
        sql = (
            "SELECT COUNT(*), COALESCE(SUM(status = 'active'), 0) FROM sessions "
            f"WHERE org_id = ? AND agent_id IN ({_placeholders(len(agent_ids))})"
        )

        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            total, active = conn.execute(sql, (org_id, *agent_ids)).fetchone()
            return int(total), int(active)

        return await self._read(run)

    async def purge_org(self, org_id: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            deleted = conn.execute("DELETE FROM memories WHERE org_id = ?", (org_id,)).rowcount
            conn.execute("DELETE FROM agents WHERE org_id = ?", (org_id,))
            conn.execute("DELETE FROM sessions WHERE org_id = ?", (org_id,))
            conn.execute("DELETE FROM retention_policies WHERE org_id = ?", (org_id,))
            return deleted

        return await self._write(run)


def _session_row(session: Session) -> tuple[Any, ...]:
    return (
        session.id,
        session.org_id,
        session.agent_id,
        session.status,
        _dumps(session.metadata),
        to_us(session.created_at),
        to_us(session.updated_at),
        to_us(session.closed_at) if session.closed_at else None,
    )


def _policy(raw: Any, org_id: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if type(raw) is str else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CorruptRowError("retention policy", org_id, org_id, "not a JSON object")
    return value


#: Longest supersession chain followed to name its current version (chains are linear and
#: acyclic by construction; the bound only guards against a hand-edited database).
_MAX_CHAIN = 100_000


def _current_version(conn: sqlite3.Connection, org_id: str, memory_id: str, now: int) -> str:
    """The current version of the chain ``memory_id`` belongs to: its last successor that has
    not expired (a memory whose successors have all expired is current again)."""
    current = memory_id
    for _ in range(_MAX_CHAIN):
        row = conn.execute(
            "SELECT superseded_by, superseded_until FROM memories WHERE org_id = ? AND id = ?",
            (org_id, current),
        ).fetchone()
        if row is None or row[0] is None or (row[1] is not None and row[1] <= now):
            return current
        current = row[0]
    return current


def _current_of_key(
    conn: sqlite3.Connection, org_id: str, record: MemoryRecord, now: int
) -> tuple[str, int] | None:
    """The current, unexpired memory with ``record``'s namespace and key (at most one): its
    id and the event time of its key's first version."""
    row = conn.execute(
        # memories_key, named: without "key IS NOT NULL" SQLite cannot use the partial index (a
        # bound parameter could be NULL), and it prefers the recorded_at index for the ORDER BY;
        # either way it read every row of the org per keyed write (puts slowed with the store)
        "SELECT id, COALESCE(key_created_at, time) FROM memories INDEXED BY memories_key "
        "WHERE org_id = ? "
        "AND key IS NOT NULL AND key = ? AND namespace IS ? "
        "AND (superseded_by IS NULL OR superseded_until <= ?) "
        "AND (expires_at IS NULL OR expires_at > ?) ORDER BY recorded_at DESC LIMIT 1",
        (
            org_id,
            record.key,
            None if record.namespace is None else encode_namespace(record.namespace),
            now,
            now,
        ),
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def _horizon(expires_at: int | None, superseded_by: str | None, until: int | None) -> int | None:
    """When a memory and every successor after it have expired (None: never)."""
    if expires_at is None or superseded_by is None:
        return expires_at
    return None if until is None else max(expires_at, until)


def _refresh_until(conn: sqlite3.Connection, org_id: str, ids: Iterable[str]) -> None:
    """Set ``superseded_until`` of the predecessor of each memory in ``ids`` to when that
    memory and its successors have all expired, and so on up the chain while it changes (a
    link made or mended below changes the horizon of everything above it)."""
    for start in ids:
        current, first = start, True
        for _ in range(_MAX_CHAIN):
            row = conn.execute(
                "SELECT supersedes, expires_at, superseded_by, superseded_until FROM memories "
                "WHERE org_id = ? AND id = ?",
                (org_id, current),
            ).fetchone()
            if row is None or row[0] is None:
                break
            horizon = _horizon(row[1], row[2], row[3])
            pred = conn.execute(
                "SELECT superseded_by, superseded_until FROM memories WHERE org_id = ? AND id = ?",
                (org_id, row[0]),
            ).fetchone()
            if pred is None or pred[0] != current or (pred[1] == horizon and not first):
                break
            conn.execute(
                "UPDATE memories SET superseded_until = ? WHERE org_id = ? AND id = ?",
                (horizon, org_id, row[0]),
            )
            current, first = row[0], False


def chain_delete_sql(where: str) -> str:
    """The ``DELETE … RETURNING org_id, supersedes`` of ``delete_memories(all_versions=True)``:
    the memories matching ``where`` (over ``memories m``; its parameters first) and every
    version of their supersession chains, older (``o.id = c.supersedes``, on the
    ``(org_id, id)`` key) and newer (``n.supersedes = c.id``, on the unique
    ``(org_id, supersedes)`` index), within the org (three more parameters: the org id). One
    statement: the chains are collected before any row is deleted, so the links the delete
    trigger mends between two doomed versions change nothing outside the chains."""
    return (
        "WITH RECURSIVE chain(id, supersedes) AS ("
        f"SELECT m.id, m.supersedes FROM memories m WHERE {where} "
        "UNION SELECT o.id, o.supersedes FROM chain c "
        "JOIN memories o ON o.org_id = ? AND o.id = c.supersedes "
        "UNION SELECT n.id, n.supersedes FROM chain c "
        "JOIN memories n ON n.org_id = ? AND n.supersedes = c.id) "
        "DELETE FROM memories WHERE org_id = ? AND id IN (SELECT id FROM chain) "
        "RETURNING org_id, supersedes"
    )


def _delete(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    """Run a ``DELETE … RETURNING org_id, supersedes`` and refresh the chains it changed (the
    delete trigger mends each link; the horizons above it are recomputed here). Returns the
    number of memories deleted."""
    count = 0
    mended: dict[str, set[str]] = {}
    for org, supersedes in conn.execute(sql, params):
        count += 1
        if supersedes is not None:
            mended.setdefault(org, set()).add(supersedes)
    for org, ids in mended.items():
        _refresh_until(conn, org, ids)
    return count


def _check_supersedes(
    conn: sqlite3.Connection,
    org_id: str,
    records: Iterable[tuple[int, MemoryRecord]],
    now: int,
) -> None:
    """Every ``supersedes`` target must be a current, unexpired memory of the org, claimed by
    one record only (inside the writer's transaction: concurrent supersessions serialise). A
    target whose successors have all expired is current: they are deleted first (as the sweep
    would), so that the new link is the target's only one."""
    claimed: dict[str, str] = {}
    for index, record in records:
        target = record.supersedes
        if target is None:
            continue
        if target in claimed:
            raise SupersedeError(index, target, claimed[target])
        row = conn.execute(
            "SELECT superseded_by, expires_at, superseded_until FROM memories "
            "WHERE org_id = ? AND id = ?",
            (org_id, target),
        ).fetchone()
        if row is None or (row[1] is not None and row[1] <= now):
            raise SupersedeError(index, target, None)
        if row[0] is not None:
            if row[2] is None or row[2] > now:
                raise SupersedeError(index, target, _current_version(conn, org_id, target, now))
            _drop_successors(conn, org_id, row[0])
        claimed[target] = record.id


def _drop_successors(conn: sqlite3.Connection, org_id: str, first: str) -> None:
    """Delete ``first`` and the successors after it (all expired)."""
    chain: list[str] = []
    current: str | None = first
    while current is not None and len(chain) < _MAX_CHAIN:
        chain.append(current)
        row = conn.execute(
            "SELECT superseded_by FROM memories WHERE org_id = ? AND id = ?", (org_id, current)
        ).fetchone()
        current = row[0] if row else None
    for memory_id in chain:
        _delete(
            conn,
            "DELETE FROM memories WHERE org_id = ? AND id = ? RETURNING org_id, supersedes",
            (org_id, memory_id),
        )


def _link(
    conn: sqlite3.Connection, org_id: str, links: Iterable[tuple[str, int, str | None]]
) -> None:
    """Mark each target superseded: (superseding id, its recorded_at, target id); then the
    horizons (``superseded_until``) of the chain above."""
    items = [(by, at, target) for by, at, target in links if target is not None]
    if not items:
        return
    conn.executemany(
        "UPDATE memories SET superseded_by = ?, superseded_at = ? "
        "WHERE org_id = ? AND id = ? AND superseded_by IS NULL",
        [(by, at, org_id, target) for by, at, target in items],
    )
    _refresh_until(conn, org_id, [by for by, _, _ in items])


def _link_imported(conn: sqlite3.Connection, org_id: str, records: Sequence[MemoryRecord]) -> None:
    """Links of imported records, in both directions (a target may come later in the file)."""
    _link(conn, org_id, ((r.id, r.recorded_at, r.supersedes) for r in records if r.supersedes))
    ids = [r.id for r in records]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = conn.execute(
            "SELECT id, recorded_at, supersedes FROM memories WHERE org_id = ? AND supersedes IN "
            f"({_placeholders(len(chunk))})",
            (org_id, *chunk),
        ).fetchall()
        _link(conn, org_id, rows)


def _dedup_sql(n: int) -> str:
    """The stored memories holding one of ``n`` dedup keys that can still be duplicated
    (recorded since the window's start, current, unexpired), newest first (the last written
    among those recorded in the same microsecond, whatever the plan). Parameters: the
    org, the keys, the window's start, now, now."""
    # memories_dedup, named: one seek per key (without it SQLite took the recorded_at index
    # for the ORDER BY and scanned the org's whole dedup window per write); _in_not_null: see
    # there
    return (
        "SELECT dedup_key, id FROM memories INDEXED BY memories_dedup WHERE org_id = ? "
        f"AND {_in_not_null('dedup_key', range(n))} "
        "AND recorded_at >= ? AND (superseded_by IS NULL OR superseded_until <= ?) "
        "AND (expires_at IS NULL OR expires_at > ?) ORDER BY recorded_at DESC, rowid DESC"
    )


def _insert(
    conn: sqlite3.Connection,
    org_id: str,
    records: Sequence[MemoryRecord],
    dedup_since: int | None,
    now: int,
) -> list[InsertOutcome]:
    """Check dedup keys and supersessions and insert, inside the writer's IMMEDIATE
    transaction."""
    # a keyed record supersedes the current memory of its key (decided first: a superseding
    # write is never a duplicate of the memory it supersedes). On copies: the writer may replay
    # this job, and the caller's records must stay as given.
    keyed: set[int] = set()
    resolved: list[MemoryRecord] = []
    for index, record in enumerate(records):
        if record.key is not None and record.supersedes is None:
            current = _current_of_key(conn, org_id, record, now)
            if current is not None:
                record = replace(record, supersedes=current[0], key_created_at=current[1])
                keyed.add(index)
        if record.key is not None and record.key_created_at is None:
            record = replace(record, key_created_at=record.time)
        resolved.append(record)
    records = resolved
    seen: dict[str, list[str]] = {}
    if dedup_since is not None:
        keys = list({r.dedup_key for r in records if r.dedup_key})
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = conn.execute(_dedup_sql(len(chunk)), (org_id, *chunk, dedup_since, now, now))
            for key, mem_id in rows:
                seen.setdefault(key, []).append(mem_id)
    outcomes: list[InsertOutcome] = []
    accepted: list[MemoryRecord] = []
    superseding: list[tuple[int, MemoryRecord]] = []
    agents: set[str] = set()
    for index, record in enumerate(records):
        key = record.dedup_key
        if dedup_since is not None and key:
            # never a duplicate of the memory it supersedes
            existing = next((i for i in seen.get(key, ()) if i != record.supersedes), None)
            if existing is not None:
                outcomes.append(InsertOutcome(False, existing))
                continue
            seen.setdefault(key, []).insert(0, record.id)
        outcomes.append(
            InsertOutcome(
                True,
                supersedes=record.supersedes if index in keyed else None,
                key_created_at=record.key_created_at,
            )
        )
        accepted.append(record)
        if record.supersedes is not None:
            superseding.append((index, record))
        agents.add(record.agent_id)
    if accepted:
        _check_supersedes(conn, org_id, superseding, now)
        _write_rows(conn, accepted)
        _link(conn, org_id, ((r.id, r.recorded_at, r.supersedes) for _, r in superseding))
        latest = max(r.recorded_at for r in accepted)
        for agent in agents:
            conn.execute(
                "UPDATE agents SET last_active_at = ? WHERE org_id = ? AND (id = ? OR name = ?) "
                "AND (last_active_at IS NULL OR last_active_at < ?)",
                (latest, org_id, agent, agent, latest),
            )
    return outcomes


def _feed_last(conn: sqlite3.Connection) -> int:
    """The last memory rowid handed out (the feed's head)."""
    return int(conn.execute("SELECT last FROM memory_seq WHERE id = 1").fetchone()[0])


def _feed_position(after: str) -> int:
    """The rowid of a SQLite feed position (``s<rowid>``); ValidationError otherwise."""
    digits = after[1:]
    if not (after.startswith("s") and digits.isascii() and digits.isdigit() and len(digits) < 19):
        raise ValidationError(
            f"invalid after: {after[:40]!r} is not a position of this store", field="after"
        )
    return int(digits)


def _write_rows(conn: sqlite3.Connection, records: Sequence[MemoryRecord]) -> None:
    """Insert rows and their full-text and tag index entries (inside the caller's transaction,
    which holds SQLite's write lock, so the explicit rowids cannot collide)."""
    if not records:
        return
    # the commit sequence (migration 8): rowids in commit order (one writer), never reused
    # (MAX(rowid) too: a row written by an older memtrace still running on the file)
    conn.execute(
        "UPDATE memory_seq SET last = max(last, (SELECT COALESCE(MAX(rowid), 0) FROM memories))"
        " + ? WHERE id = 1",
        (len(records),),
    )
    start = _feed_last(conn) - len(records) + 1
    rows = [_record_row(r, start + i) for i, r in enumerate(records)]
    conn.executemany(_INSERT_SQL, rows)
    conn.executemany(_INSERT_FTS_SQL, [(row[0], row[7], row[3], row[6], row[9]) for row in rows])
    conn.executemany(_INSERT_TRIGRAM_SQL, [(row[0], row[7]) for row in rows])
    tag_rows = [(r.org_id, tag, start + i) for i, r in enumerate(records) for tag in r.tags or ()]
    if tag_rows:
        conn.executemany(_INSERT_TAG_SQL, tag_rows)


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Apply pending migrations (up to ``target``) atomically; safe when several processes open
    the same file at once. Returns the resulting schema version."""
    goal = SCHEMA_VERSION if target is None else target
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {version} is newer than this memtrace ({SCHEMA_VERSION}); upgrade memtrace"
            )
        for number in range(version, goal):
            for statement in _split_sql(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
        return max(version, goal)
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (trigger bodies kept whole)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
