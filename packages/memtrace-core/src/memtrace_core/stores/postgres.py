"""The PostgreSQL store: several stateless servers sharing one database.

``postgresql://user:password@host:5432/database`` (also ``postgres://``), with the optional
query parameters ``pool_min`` / ``pool_max`` (connections per process, default 1 / 10),
``statement_cache_size`` (asyncpg's prepared-statement cache; 0 behind pgbouncer in
transaction mode), ``command_timeout`` (seconds, default 30), ``connect_timeout`` (seconds,
default 5) and ``max_group`` (write requests per group commit, default 64: each is a
savepoint, and PostgreSQL keeps up to 64 subtransactions per transaction in shared memory); every other
parameter (``sslmode``, ``application_name`` …) is passed to the driver. Needs the ``postgres``
extra (``pip install 'memtrace-core[postgres]'``: asyncpg) and the ``pg_trgm`` extension
(created by the first migration; PostgreSQL ≥ 13 lets a database owner create it).

Design (docs/architecture.md, "The PostgreSQL store"):

* **Driver**: asyncpg, pooled, every statement prepared and cached by the driver.
* **Group commit**: the memory writes of a process go through one writer task, which runs
  every request queued while the previous transaction committed in one transaction
  (consecutive plain writes with one dedup query and one INSERT; a savepoint per request only
  when one fails and the group is replayed) and acknowledges them only after COMMIT returns
  (``synchronous_commit`` as the server has it: keep it ``on``). Other writes run in their own
  short transactions.
* **Atomic dedup across servers**: a write takes transaction-scoped advisory locks on its dedup
  keys (in sorted order, so two transactions never deadlock) before its check-and-insert, at
  READ COMMITTED, so each check sees what the previous holder committed. Anything that changes
  supersession links (a keyed write, ``supersedes``, a delete, a pop, the sweeps, an import)
  also takes the org's link lock: chains are only ever changed by one transaction at a time.
* **Keyword search**: each row keeps a ``tsvector`` built from memtrace's own analyzer (the
  one that mirrors SQLite FTS5's ``porter unicode61`` tokenizer), never PostgreSQL's parser,
  with the field as the position's weight (A content, B agent, C event type, D tags), in a GIN
  index. Stage 1 computes FTS5's BM25 from it (per-org statistics in ``org_text_stats``), so
  the candidates — and so the engine's ranking — match the embedded store's.
* **Substring search**: a ``pg_trgm`` GIN index pre-filters ``content_contains`` (as the
  SQLite trigram index does), the exact test follows.
* **Sharding**: every key and index leads with ``org_id`` and every query filters by it, so
  the tables distribute by org on Citus unchanged (docs/deployment.md).
* **Migrations** are numbered, recorded in ``schema_migrations`` and run under an advisory
  lock, so servers starting together migrate once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import re
import time as _time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConflictError, CorruptRowError, NotFoundError, StoreError, ValidationError
from ..models import Agent, Memory, MemorySummary, Session
from ..text import analyze
from ..timeutil import MAX_US, MIN_US, from_us, now_us, to_us
from ..validation import JSON_NUL
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
    MetaCondition,
    StoreHealth,
    SupersedeError,
    bucket_window,
    check_org,
)
from .sqlite import (
    _MAX_CHAIN,
    FOLDS_TO_ASCII,
    RowDecoding,
    UnreadableRow,
    _agent_from_row,
    _dumps,
    _horizon,
    _longest_literal,
    _namespace_column,
    _namespace_prefix,
    _policy,
    _row_to_memory,
    _session_from_row,
    encode_namespace,
)
from .sqlite_auth import _key_from_row

T = TypeVar("T")

log = logging.getLogger("memtrace.store")

try:  # the optional driver: imported lazily by from_url's users, checked at open()
    import asyncpg  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the extra is not installed
    asyncpg = None

Conn = Any  # asyncpg.Connection (asyncpg ships no type information)

#: FTS5's BM25 parameters (fts5_aux.c).
BM25_K1 = 1.2
BM25_B = 0.75
#: PostgreSQL keeps positions up to 16383 and 256 positions per lexeme (see docs/search.md).
_MAX_POSITION = 16383
_MAX_POSITIONS = 256
_WEIGHT_OF_FIELD = {"content": "A", "agent_id": "B", "event_type": "C", "tags": "D"}
#: Document frequencies of query words are counted exactly up to this many memories; past it
#: (a common word in a big org) they are estimated (PostgresStore._common). At this count the
#: idf of an org of N memories is ln(N / 4000) or less: the words that decide a ranking are rare.
DF_EXACT_LIMIT = 4000
_COMMON_SECONDS = 300.0
#: Shards of the per-org text statistics: concurrent writers update different rows.
_STAT_SHARDS = 16
#: The advisory lock of the migrations (an arbitrary constant).
_MIGRATION_LOCK = 0x6D656D7472616365  # "memtrace"

# -- schema -------------------------------------------------------------------------------------

_MIGRATION_1 = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE memories (
  org_id text NOT NULL,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  id text NOT NULL,
  agent_id text NOT NULL,
  session_id text,
  memory_type text NOT NULL,
  event_type text NOT NULL,
  content text NOT NULL,
  metadata json,
  tags text[],
  dedup_key text,
  importance double precision,
  parent_id text,
  time bigint NOT NULL,
  recorded_at bigint NOT NULL,
  expires_at bigint,
  supersedes text,
  superseded_by text,
  superseded_at bigint,
  superseded_until bigint,
  namespace text COLLATE "C",
  key text,
  key_created_at bigint,
  payload text,
  tsv tsvector NOT NULL,
  n_tokens integer NOT NULL,
  tf jsonb NOT NULL,
  PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX memories_seq ON memories (org_id, seq);
CREATE INDEX memories_org_time ON memories (org_id, time, seq);
CREATE INDEX memories_agent_time ON memories (org_id, agent_id, time, seq);
CREATE INDEX memories_session_time ON memories (org_id, session_id, time, seq)
  WHERE session_id IS NOT NULL;
CREATE INDEX memories_type_time ON memories (org_id, memory_type, time, seq);
CREATE INDEX memories_event_time ON memories (org_id, event_type, time, seq);
CREATE INDEX memories_dedup ON memories (org_id, dedup_key, recorded_at)
  WHERE dedup_key IS NOT NULL;
CREATE INDEX memories_importance ON memories (org_id, importance) WHERE importance IS NOT NULL;
CREATE INDEX memories_org_recorded ON memories (org_id, recorded_at);
CREATE INDEX memories_key ON memories (org_id, key) WHERE key IS NOT NULL;
CREATE INDEX memories_namespace ON memories (org_id, namespace, time)
  WHERE namespace IS NOT NULL;
CREATE UNIQUE INDEX memories_supersedes ON memories (org_id, supersedes)
  WHERE supersedes IS NOT NULL;
CREATE INDEX memories_expires ON memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX memories_tsv ON memories USING gin (tsv);
CREATE INDEX memories_trigram ON memories USING gin (content gin_trgm_ops);
CREATE INDEX memories_tags ON memories USING gin (tags);
CREATE TABLE org_text_stats (
  org_id text NOT NULL,
  shard integer NOT NULL,
  docs bigint NOT NULL,
  tokens bigint NOT NULL,
  PRIMARY KEY (org_id, shard)
);
CREATE TABLE agents (
  org_id text NOT NULL,
  id text NOT NULL,
  name text NOT NULL,
  description text,
  config text,
  created_at bigint NOT NULL,
  last_active_at bigint,
  PRIMARY KEY (org_id, id),
  UNIQUE (org_id, name)
);
CREATE TABLE sessions (
  org_id text NOT NULL,
  id text NOT NULL,
  agent_id text NOT NULL,
  status text NOT NULL,
  metadata text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  closed_at bigint,
  PRIMARY KEY (org_id, id)
);
CREATE INDEX sessions_org ON sessions (org_id, created_at);
CREATE INDEX sessions_agent ON sessions (org_id, agent_id, created_at);
CREATE TABLE retention_policies (
  org_id text PRIMARY KEY,
  policy text NOT NULL,
  updated_at bigint NOT NULL
);
CREATE TABLE leases (
  name text PRIMARY KEY,
  holder text NOT NULL,
  expires_at bigint NOT NULL
);
CREATE TABLE orgs (
  id text PRIMARY KEY,
  name text NOT NULL,
  created_at bigint NOT NULL
);
CREATE TABLE api_keys (
  org_id text NOT NULL,
  id text NOT NULL,
  name text NOT NULL,
  key_hash text NOT NULL,
  key_prefix text NOT NULL,
  permissions text NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint,
  enabled boolean NOT NULL DEFAULT true,
  last_used_at bigint,
  PRIMARY KEY (org_id, id),
  UNIQUE (org_id, name)
);
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_prefix ON api_keys (key_prefix);
CREATE TABLE auth_state (
  id integer PRIMARY KEY CHECK (id = 1),
  revision bigint NOT NULL
);
INSERT INTO auth_state (id, revision) VALUES (1, 0);
"""

# v2: the live feed's commit order: the id of the transaction that wrote each row (rows
# written before have 0: history, in seq order). A feed returns rows in (xid, seq) order and
# only those whose transaction id is below the statement snapshot's xmin: every such
# transaction has ended, and every later one gets a larger id, so that set never grows
# behind a reader (seq alone is taken at insert, not at commit: two servers' transactions
# commit in any order).
_MIGRATION_2 = """
ALTER TABLE memories ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE memories ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX memories_stream ON memories (org_id, xid, seq);
"""

#: Schema migrations, applied in order; ``schema_migrations`` records each one applied.
MIGRATIONS: list[str] = [_MIGRATION_1, _MIGRATION_2]
SCHEMA_VERSION = len(MIGRATIONS)

_MEMORY_COLUMNS = (
    "m.id, m.org_id, m.agent_id, m.session_id, m.memory_type, m.event_type, m.content, "
    "m.metadata::text, array_to_json(m.tags)::text, m.dedup_key, m.importance, m.parent_id, "
    "m.time, m.recorded_at, m.expires_at, m.supersedes, m.superseded_by, m.superseded_at, "
    "m.superseded_until, m.namespace, m.key, m.key_created_at, m.payload"
)
_N_MEMORY_COLUMNS = 23

_INSERT_SQL = """
INSERT INTO memories (org_id, id, agent_id, session_id, memory_type, event_type, content,
  metadata, tags, dedup_key, importance, parent_id, time, recorded_at, expires_at, supersedes,
  namespace, key, key_created_at, payload, tsv, n_tokens, tf)
SELECT r.org_id, r.id, r.agent_id, r.session_id, r.memory_type, r.event_type, r.content,
  r.metadata::json,
  CASE WHEN r.tags IS NULL THEN NULL ELSE ARRAY(SELECT json_array_elements_text(r.tags::json)) END,
  r.dedup_key, r.importance, r.parent_id, r.time, r.recorded_at, r.expires_at, r.supersedes,
  r.namespace, r.key, r.key_created_at, r.payload, r.tsv::tsvector, r.n_tokens, r.tf::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
  $7::text[], $8::text[], $9::text[], $10::text[], $11::float8[], $12::text[], $13::int8[],
  $14::int8[], $15::int8[], $16::text[], $17::text[], $18::text[], $19::int8[], $20::text[],
  $21::text[], $22::int4[], $23::text[])
  AS r(org_id, id, agent_id, session_id, memory_type, event_type, content, metadata, tags,
       dedup_key, importance, parent_id, time, recorded_at, expires_at, supersedes, namespace,
       key, key_created_at, payload, tsv, n_tokens, tf)
"""


#: PostgreSQL refuses lexemes of 2,047 bytes or more; a longer stem (a base64 blob, a run of
#: CJK characters) is indexed and searched as a fixed-size digest of itself.
_MAX_LEXEME_BYTES = 2000


def _lexeme(stem: str) -> str:
    if len(stem) * 4 <= _MAX_LEXEME_BYTES or len(stem.encode()) <= _MAX_LEXEME_BYTES:
        return stem
    # "~" never comes out of the analyzer (only letters and digits do): no stem collides
    return "~" + hashlib.blake2b(stem.encode(), digest_size=16).hexdigest()


def _stems(text: str) -> list[str]:
    return [_lexeme(s) for s in analyze(text)]


#: A NUL in a JSON string is the escape \u0000, which PostgreSQL's json type stores but its
#: operators refuse ("unsupported Unicode escape sequence": a filter on the org would fail).
#: The store keeps it as the escaped pair \udbff\udfff instead — an escape memtrace never
#: writes otherwise (its JSON keeps non-ASCII characters as they are) — and turns it back on
#: read.
_NUL_STORED = re.compile(r"(?<!\\)((?:\\\\)*)\\udbff\\udfff")


def _metadata_text(value: Any) -> str | None:
    text = _dumps(value)
    if text is not None and "\\u0000" in text:
        text = JSON_NUL.sub(r"\1\\udbff\\udfff", text)
    return text


def _memory_row(row: Sequence[Any]) -> Memory:
    """A memory from its row (the SQLite store's decoder, after the NUL escape is undone)."""
    raw = row[7]
    if type(raw) is str and "\\udbff\\udfff" in raw:
        row = [*row[:7], _NUL_STORED.sub(r"\1\\u0000", raw), *row[8:]]
    return _row_to_memory(row)


def _lexeme_literal(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


@functools.lru_cache(maxsize=4096)
def _short_field_stems(text: str) -> tuple[str, ...]:
    """The stems of an agent id, event type or tag list: few distinct values, many rows."""
    return tuple(_stems(text))


def _field_stems(record: MemoryRecord) -> tuple[Sequence[str], ...]:
    """The analyzer's stems of what FTS5 indexes, field by field: content, agent id, event
    type and the tags' JSON text."""
    return (
        _stems(record.content),
        _short_field_stems(record.agent_id),
        _short_field_stems(record.event_type),
        _short_field_stems(_dumps(record.tags) or ""),
    )


def term_counts(record: MemoryRecord) -> tuple[dict[str, list[int]], int]:
    """A memory's term frequencies ``{stem: [content, agent, event type, tags]}`` (what BM25
    reads) and its number of tokens (FTS5's document length); the Arc store's too."""
    counts: dict[str, list[int]] = {}
    total = 0
    for column, stems in enumerate(_field_stems(record)):
        total += len(stems)
        for stem in stems:
            counts.setdefault(stem, [0, 0, 0, 0])[column] += 1
    return counts, total


def text_vector(record: MemoryRecord) -> tuple[str, int, str]:
    """The ``tsvector`` literal of a memory, its number of tokens and its term frequencies
    (:func:`term_counts`) as a JSON object (what BM25 reads, without the position limits of a
    tsvector): each position weighted by its field, one unused position between fields so
    that no phrase matches across two."""
    positions: dict[str, list[str]] = {}
    position = 0
    for stems, weight in zip(_field_stems(record), "ABCD", strict=True):
        for stem in stems:
            position = min(position + 1, _MAX_POSITION)
            slots = positions.setdefault(stem, [])
            if len(slots) < _MAX_POSITIONS:
                slots.append(f"{position}{weight}")
        position = min(position + 1, _MAX_POSITION)
    counts, total = term_counts(record)
    return (
        " ".join(f"{_lexeme_literal(s)}:{','.join(p)}" for s, p in positions.items()),
        total,
        json.dumps(counts, separators=(",", ":"), ensure_ascii=False),
    )


def _phrase(term: str) -> tuple[str, ...]:
    """The stems a query term matches as a phrase (FTS5 reads a quoted string so)."""
    return tuple(_stems(term))


def _tsquery(phrases: Iterable[tuple[str, ...]]) -> str:
    """A ``tsquery`` literal matching any of ``phrases`` ('' when there is none)."""
    parts = []
    for stems in dict.fromkeys(phrases):
        if not stems:
            continue
        if len(stems) == 1:
            parts.append(_lexeme_literal(stems[0]))
        else:
            parts.append("(" + " <-> ".join(_lexeme_literal(s) for s in stems) + ")")
    return " | ".join(parts)


def lock_id(*parts: str) -> int:
    """A signed 64-bit advisory lock id for ``parts`` (stable across processes)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _links_lock(org_id: str) -> int:
    return lock_id(org_id, "links")


# -- filters ------------------------------------------------------------------------------------


class _Params:
    """Numbered query parameters ($1, $2, …)."""

    def __init__(self, *initial: Any) -> None:
        self.values: list[Any] = list(initial)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _any(column: str, values: Sequence[Any], p: _Params, cast: str = "text") -> str:
    if len(values) == 1:
        return f"{column} = {p.add(values[0])}"
    return f"{column} = ANY({p.add(list(values))}::{cast}[])"


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _json_step(expr: str, part: str | int, p: _Params) -> str:
    if isinstance(part, int):
        return f"(CASE WHEN json_typeof({expr}) = 'array' THEN {expr} -> {p.add(part)}::int END)"
    return f"(CASE WHEN json_typeof({expr}) = 'object' THEN {expr} -> {p.add(part)}::text END)"


def _meta_term(column: str, cond: MetaCondition, p: _Params) -> str:
    """The SQL of one metadata condition (see :class:`MetaCondition`), with SQLite's
    ``json_extract`` semantics: numbers compare numerically, booleans as 1 / 0."""
    if cond.op == "not":
        terms = " AND ".join(_meta_term(column, c, p) for c in cond.value)
        return f"NOT COALESCE(({terms}), false)"
    value = column
    for part in cond.path:
        value = _json_step(value, part, p)
    kind = f"json_typeof({value})"
    text = f"({value}::text)"
    missing = f"({value} IS NULL OR {kind} = 'null')"

    def compared(sign: str, operand: Any) -> str:
        """``value <sign> operand`` as SQLite compares json_extract's result: a JSON integer
        is an integer and a boolean 1 / 0, both compared exactly (with a float operand too);
        any other number is a double."""
        if isinstance(operand, bool):
            operand = int(operand)
        if isinstance(operand, int) and not _INT64_MIN <= operand <= _INT64_MAX:
            operand = float(operand)  # past 64 bits SQLite binds a double
        exact = p.add(Decimal(operand))  # a float's exact binary value
        double = p.add(float(operand)) if isinstance(operand, float) else f"{exact}::float8"
        return (
            f"(CASE WHEN {kind} = 'boolean' THEN (CASE WHEN {text} = 'true' THEN 1 ELSE 0 END)"
            f"::numeric {sign} {exact}::numeric "
            f"WHEN {kind} <> 'number' THEN NULL "
            f"WHEN {text} ~ '^-?[0-9]{{1,19}}$' AND {text}::numeric BETWEEN {_INT64_MIN} AND "
            f"{_INT64_MAX} THEN {text}::numeric {sign} {exact}::numeric "
            f"WHEN abs({text}::numeric) < {_MAX_DOUBLE} THEN {text}::float8 {sign} "
            f"{double}::float8 "
            f"ELSE sign({text}::numeric)::float8 * 'Infinity'::float8 {sign} {double}::float8 END)"
        )

    def eq(scalar: Any) -> str:
        if isinstance(scalar, str):
            test = f"({kind} = 'string' AND ({value} #>> '{{}}') = {p.add(scalar)}::text)"
        else:
            test = compared("=", scalar)
        return f"COALESCE({test}, false)"  # never NULL: "not equal" holds for a missing value

    op = cond.op
    if op == "eq":
        return missing if cond.value is None else eq(cond.value)
    if op == "ne":
        return f"NOT {missing}" if cond.value is None else f"NOT {eq(cond.value)}"
    if op == "in":
        alts = [missing if v is None else eq(v) for v in cond.value]
        return "(" + " OR ".join(alts) + ")" if alts else "false"
    if op == "length":
        return f"({kind} = 'array' AND json_array_length({value}) = {p.add(cond.value)}::int)"
    if op == "object":
        return f"COALESCE({kind} = 'object', false)"
    sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    return f"COALESCE({compared(sign, cond.value)}, false)"


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: The largest double: a JSON number beyond it is no double (SQLite reads it as infinity, and
#: so does this store).
_MAX_DOUBLE = "1.7976931348623157e308"


def build_where(org_id: str, flt: MemoryFilter, p: _Params, alias: str = "m") -> str:
    """The WHERE clause (without the keyword) of a memory filter; parameters go to ``p``."""
    a = alias
    clauses = [f"{a}.org_id = {p.add(org_id)}"]
    for column, values in (
        ("id", flt.ids),
        ("agent_id", flt.agent_ids),
        ("memory_type", flt.memory_types),
        ("event_type", flt.event_types),
    ):
        if values is not None:
            clauses.append(_any(f"{a}.{column}", values, p))
    if flt.namespace is not None:
        clauses.append(f"{a}.namespace = {p.add(encode_namespace(flt.namespace))}")
    if flt.namespace_prefix is not None:
        term, term_params = _namespace_prefix(f"{a}.namespace", flt.namespace_prefix)
        for value in term_params:
            term = term.replace("?", p.add(value), 1)
        clauses.append(term)
    for term, value, cast in (
        ("key = {}", flt.key, "text"),
        ("session_id = {}", flt.session_id, "text"),
        ("time >= {}", flt.since, "int8"),
        ("time < {}", flt.until, "int8"),
        ("importance >= {}", flt.min_importance, "float8"),
        ("recorded_at >= {}", flt.recorded_since, "int8"),
        ("recorded_at < {}", flt.recorded_until, "int8"),
    ):
        if value is not None:
            clauses.append(f"{a}." + term.format(f"{p.add(value)}::{cast}"))
    if flt.keys is not None:
        clauses.append(_any(f"{a}.key", flt.keys, p))
    if flt.tags:
        clauses.append(f"{a}.tags @> {p.add(list(flt.tags))}::text[]")
    if flt.tags_any is not None:
        clauses.append(f"{a}.tags && {p.add(list(flt.tags_any))}::text[]")
    if flt.content_contains is not None:
        needle = flt.content_contains
        literal = _longest_literal(needle)
        if len(literal) >= 3:  # the trigram index (a superset: ASCII folds in every locale)
            clauses.append(f"{a}.content ILIKE {p.add('%' + _like_literal(literal) + '%')}")
        folded = p.add(needle.lower())
        unicode_lower = f'strpos(lower({a}.content COLLATE "und-x-icu"), {folded}) > 0'
        if needle.isascii():  # ASCII letters fold alike in every locale (translate: fast)
            if len(literal) < 3:  # no index: ILIKE (in C) skips most rows before translate
                clauses.append(
                    f"({a}.content ILIKE {p.add('%' + _like_literal(needle) + '%')} OR "
                    f"{a}.content LIKE '%{FOLDS_TO_ASCII[0]}%' OR "
                    f"{a}.content LIKE '%{FOLDS_TO_ASCII[1]}%')"
                )
            clauses.append(
                f"(strpos(translate({a}.content, '{_ASCII_UPPER}', '{_ASCII_UPPER.lower()}'), "
                f"{folded}) > 0 OR (({a}.content LIKE '%{FOLDS_TO_ASCII[0]}%' OR "
                f"{a}.content LIKE '%{FOLDS_TO_ASCII[1]}%') AND {unicode_lower}))"
            )
        else:  # Unicode case folding (ICU's, as Python's str.lower())
            clauses.append(unicode_lower)
    for cond in flt.metadata or ():
        clauses.append(_meta_term(f"{a}.metadata", cond, p))
    if flt.as_of is not None:
        clauses.append(f"{a}.recorded_at <= {p.add(flt.as_of)}::int8")
    if flt.live_at is not None:
        clauses.append(f"({a}.expires_at IS NULL OR {a}.expires_at > {p.add(flt.live_at)}::int8)")
    if flt.current:
        terms = [f"{a}.superseded_by IS NULL"]
        if flt.as_of is not None:
            terms.append(f"{a}.superseded_at > {p.add(flt.as_of)}::int8")
        if flt.live_at is not None:
            terms.append(f"{a}.superseded_until <= {p.add(flt.live_at)}::int8")
        clauses.append("(" + " OR ".join(terms) + ")" if len(terms) > 1 else terms[0])
    return " AND ".join(clauses)


# -- errors -------------------------------------------------------------------------------------


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        return True
    if asyncpg is None:  # pragma: no cover
        return False
    return isinstance(
        exc,
        (
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.exceptions.CannotConnectNowError,
            asyncpg.exceptions.InsufficientResourcesError,
        ),
    )


def _store_error(exc: BaseException) -> StoreError:
    if _is_unavailable(exc):
        return StoreError(f"database unavailable: {type(exc).__name__}: {exc}")
    return StoreError(f"database error: {type(exc).__name__}: {exc}")


def _bad_text(exc: BaseException) -> bool:
    """A parameter PostgreSQL cannot hold (a NUL character): the input's fault, not the
    database's (the engine refuses NUL where it validates; this catches the rest)."""
    return asyncpg is not None and isinstance(
        exc,
        (
            asyncpg.exceptions.CharacterNotInRepertoireError,
            asyncpg.exceptions.UntranslatableCharacterError,
        ),
    )


def _bad_text_error() -> ValidationError:
    return ValidationError("invalid text: NUL characters are not allowed", field="text")


def _unique_violation(exc: BaseException) -> bool:
    return asyncpg is not None and isinstance(exc, asyncpg.UniqueViolationError)


# -- the group writer ---------------------------------------------------------------------------


@dataclass
class _Effects:
    """Row updates every write of a transaction shares — agents' ``last_active_at`` and the
    orgs' BM25 statistics — collected while its writes run and applied once at its end, in a
    fixed order (sorted), so that two servers' transactions never wait for each other's rows
    in opposite orders (a deadlock)."""

    agents: dict[tuple[str, str], int] = field(default_factory=dict)
    text: dict[str, list[int]] = field(default_factory=dict)

    def touch(self, org_id: str, agents: Iterable[str], at: int) -> None:
        for agent in agents:
            key = (org_id, agent)
            self.agents[key] = max(at, self.agents.get(key, at))

    def count(self, org_id: str, docs: int, tokens: int) -> None:
        totals = self.text.setdefault(org_id, [0, 0])
        totals[0] += docs
        totals[1] += tokens

    def merge(self, other: _Effects) -> None:
        for (org, agent), at in other.agents.items():
            self.touch(org, [agent], at)
        for org, (docs, tokens) in other.text.items():
            self.count(org, docs, tokens)

    async def apply(self, conn: Conn) -> None:
        if self.agents:
            keys = sorted(self.agents)
            await conn.execute(
                "WITH want(org_id, ref, at) AS (SELECT * FROM unnest($1::text[], $2::text[], "
                "$3::int8[])), hit AS (SELECT a.org_id, a.id, max(w.at) AS at FROM agents a "
                "JOIN want w ON a.org_id = w.org_id AND (a.id = w.ref OR a.name = w.ref) "
                "GROUP BY a.org_id, a.id), locked AS (SELECT a.org_id, a.id, h.at FROM agents a "
                "JOIN hit h ON a.org_id = h.org_id AND a.id = h.id "
                'ORDER BY a.org_id COLLATE "C", a.id COLLATE "C" FOR UPDATE OF a) '
                "UPDATE agents a SET last_active_at = l.at FROM locked l "
                "WHERE a.org_id = l.org_id AND a.id = l.id "
                "AND (a.last_active_at IS NULL OR a.last_active_at < l.at)",
                [k[0] for k in keys],
                [k[1] for k in keys],
                [self.agents[k] for k in keys],
            )
        text = sorted((org, n) for org, n in self.text.items() if n[0])
        if text:
            await conn.execute(
                "INSERT INTO org_text_stats AS s (org_id, shard, docs, tokens) "
                f"SELECT t.org_id, pg_backend_pid() % {_STAT_SHARDS}, t.docs, t.tokens "
                "FROM unnest($1::text[], $2::int8[], $3::int8[]) WITH ORDINALITY "
                "AS t(org_id, docs, tokens, i) ORDER BY t.i "
                "ON CONFLICT (org_id, shard) DO UPDATE "
                "SET docs = s.docs + excluded.docs, tokens = s.tokens + excluded.tokens",
                [org for org, _ in text],
                [n[0] for _, n in text],
                [n[1] for _, n in text],
            )


@dataclass
class _Job:
    run: Callable[[Conn, _Effects], Awaitable[Any]]
    locks: tuple[int, ...]
    future: asyncio.Future[Any]
    #: set for a write the group writer may batch with its neighbours (see _insert_plain)
    plain: _Plain | None = None


class _GroupWriter:
    """Group commit of memory writes (see the module docstring)."""

    def __init__(self, store: PostgresStore, max_group: int) -> None:
        self._store = store
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._max_group = max_group
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.requests = 0

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Commit what was submitted before, refuse what comes after."""
        if self._task is None:
            return
        self._closing = True
        await self._queue.put(None)
        await self._task
        self._task = None
        while not self._queue.empty():  # nothing is queued after the stop mark; to be sure
            job = self._queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_exception(StoreError("store is closed"))

    async def submit(
        self,
        run: Callable[[Conn, _Effects], Awaitable[T]],
        locks: Iterable[int],
        plain: _Plain | None = None,
    ) -> T:
        if self._closing or self._task is None or self._task.done():
            raise StoreError("store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(run, tuple(locks), future, plain))
        return await future

    async def _loop(self) -> None:
        stopping = False
        while not stopping:
            job = await self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self._max_group and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True  # run this group, then stop
                    break
                jobs.append(nxt)
            jobs = [j for j in jobs if not j.future.cancelled()]
            if jobs:
                try:
                    await self._run_group(jobs)
                except BaseException as exc:  # never let the writer die
                    err = exc if isinstance(exc, StoreError) else _store_error(exc)
                    for j in jobs:
                        if not j.future.done():
                            j.future.set_exception(err)
                    if isinstance(exc, asyncio.CancelledError):
                        raise

    async def _run_group(self, jobs: list[_Job]) -> None:
        async with self._store._acquire() as conn:
            # Fast path: every request straight in the one transaction (two round trips per
            # request fewer than with savepoints). If one fails, the transaction is rolled back
            # and the group replayed with a savepoint per request, so only that one fails;
            # requests only touch the database, so a replay is safe.
            results = await self._attempt(conn, jobs, savepoints=False)
            if results is None:
                results = await self._attempt(conn, jobs, savepoints=True)
            if results is None:  # pragma: no cover - with savepoints every request has one
                raise StoreError("write failed")
        self.commits += 1
        self.requests += len(jobs)
        for (ok, value), j in zip(results, jobs, strict=True):
            if j.future.done():
                continue
            if ok:
                j.future.set_result(value)
            else:
                if _bad_text(value):
                    value = _bad_text_error()
                elif asyncpg is not None and isinstance(value, asyncpg.PostgresError):
                    value = _store_error(value)
                j.future.set_exception(value)

    @staticmethod
    async def _attempt(
        conn: Conn, jobs: list[_Job], *, savepoints: bool
    ) -> list[tuple[bool, Any]] | None:
        """Run the group in one transaction: its advisory locks (sorted), the requests, the
        shared row updates, COMMIT. Without ``savepoints`` a failing request rolls everything
        back and returns None (to replay) — unless it is the only one: then its failure is
        the result. A failure of the database itself propagates (nothing is acknowledged)."""
        results: list[tuple[bool, Any]] = []
        tx = conn.transaction()
        await tx.start()
        try:
            locks = sorted({lock for j in jobs for lock in j.locks})
            if locks:
                await conn.executemany(
                    "SELECT pg_advisory_xact_lock($1)", [(lock,) for lock in locks]
                )
            effects = _Effects()
            at = 0
            while at < len(jobs):
                run = [] if savepoints else _plain_run(jobs, at)
                if len(run) > 1:  # consecutive plain writes: one dedup query, one INSERT
                    shares = [(j.plain, _Effects()) for j in run if j.plain is not None]
                    try:
                        batch = await _insert_plain(conn, shares)
                    except Exception as exc:
                        if _is_unavailable(exc):
                            raise
                        await tx.rollback()
                        return None
                    for outcomes, (_, mine) in zip(batch, shares, strict=True):
                        effects.merge(mine)
                        results.append((True, outcomes))
                    at += len(run)
                    continue
                j = jobs[at]
                at += 1
                mine = _Effects()
                try:
                    if savepoints:
                        async with conn.transaction():
                            value = await j.run(conn, mine)
                    else:
                        value = await j.run(conn, mine)
                except Exception as exc:
                    if _is_unavailable(exc):
                        raise
                    if not savepoints:
                        await tx.rollback()
                        return [(False, exc)] if len(jobs) == 1 else None
                    results.append((False, exc))
                else:
                    effects.merge(mine)
                    results.append((True, value))
            await effects.apply(conn)
        except BaseException:
            with contextlib.suppress(Exception):
                await tx.rollback()
            raise
        await tx.commit()  # a failure here reaches every request: none is acknowledged
        return results


def _plain_run(jobs: list[_Job], start: int) -> list[_Job]:
    """The plain writes from ``start`` on, up to the first other job."""
    end = start
    while end < len(jobs) and jobs[end].plain is not None:
        end += 1
    return jobs[start:end]


# -- the store ----------------------------------------------------------------------------------

_OWN_PARAMS = {
    "pool_min",
    "pool_max",
    "statement_cache_size",
    "command_timeout",
    "connect_timeout",
    "max_group",
}


class PostgresStore(RowDecoding):
    """The PostgreSQL store (see the module docstring)."""

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 1,
        pool_max: int = 10,
        statement_cache_size: int = 100,
        command_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_group: int = 64,
    ) -> None:
        self.dsn = dsn
        self.pool_min = pool_min
        self.pool_max = max(pool_max, pool_min, 1)
        self.statement_cache_size = statement_cache_size
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        #: How long a request waits for a free pooled connection (a new one connects within
        #: connect_timeout of it) before it is refused with "database busy".
        self.pool_wait = connect_timeout + 5.0
        self._pool: Any = None
        self._writer = _GroupWriter(self, max_group)
        self._common_cache: tuple[float, dict[str, float]] | None = None
        self._init_decoding()

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Build from ``postgresql://…`` (see the module docstring for the parameters)."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValidationError(f"not a postgresql URL: {url!r}", field="url")
        if not parts.path.strip("/"):
            raise ValidationError(
                "postgresql URL needs a database name, e.g. postgresql://user@host:5432/memtrace",
                field="url",
            )
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {k: v for k, v in query if k in _OWN_PARAMS}
        rest = [(k, v) for k, v in query if k not in _OWN_PARAMS]
        kwargs: dict[str, Any] = {}
        try:
            for name in ("pool_min", "pool_max", "statement_cache_size", "max_group"):
                if name in own:
                    kwargs[name] = int(own[name])
                    if kwargs[name] < (1 if name in ("pool_max", "max_group") else 0):
                        raise ValueError(name)
            for name in ("command_timeout", "connect_timeout"):
                if name in own:
                    kwargs[name] = float(own[name])
                    if not math.isfinite(kwargs[name]) or kwargs[name] <= 0:
                        raise ValueError(name)
        except ValueError:
            raise ValidationError(
                f"invalid postgresql URL parameter in {url!r}", field="url"
            ) from None
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
        return cls(dsn, **kwargs)

    # -- connections ----------------------------------------------------------------------------

    async def open(self) -> None:
        if asyncpg is None:
            raise StoreError(
                "the PostgreSQL store needs asyncpg: pip install 'memtrace-core[postgres]'"
            )
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self.pool_min,
                max_size=self.pool_max,
                statement_cache_size=self.statement_cache_size,
                command_timeout=self.command_timeout,
                timeout=self.connect_timeout,
                max_inactive_connection_lifetime=300.0,
                # every statement planned for its parameters: a generic plan of "tsv @@ $n"
                # cannot know how rare the words are (it seq-scanned for a rare one). Without
                # a statement cache (pgbouncer, which refuses unknown startup parameters)
                # statements are unnamed, and those are planned for their parameters anyway.
                server_settings=(
                    {"plan_cache_mode": "force_custom_plan"} if self.statement_cache_size else None
                ),
            )
            async with self._pool.acquire() as conn:
                await migrate(conn)
                icu = await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')"
                )
            if not icu:  # content_contains folds case as Python's str.lower() with it
                raise StoreError(
                    "the PostgreSQL server has no ICU collations (it was built without ICU); "
                    "memtrace needs the collation und-x-icu"
                )
        except StoreError:
            await self._close_pool()
            raise
        except Exception as exc:
            await self._close_pool()
            raise StoreError(
                f"cannot open the PostgreSQL store: {type(exc).__name__}: {exc}"
            ) from None
        self._writer.start()

    async def _close_pool(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 10)

    async def close(self) -> None:
        await self._writer.stop()
        await self._close_pool()

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Conn]:
        if self._pool is None:
            raise StoreError("store is closed")
        try:
            pool = self._pool
            try:
                conn = await pool.acquire(timeout=self.pool_wait)
            except TimeoutError:
                raise StoreError(
                    f"database busy: no free connection within {self.pool_wait:g} s "
                    f"(all {self.pool_max} of this process's pool in use; raise pool_max)"
                ) from None
            try:
                yield conn
            finally:
                await pool.release(conn)
        except (StoreError, ConflictError, NotFoundError, SupersedeError, ValidationError):
            raise
        except CorruptRowError:
            raise
        except Exception as exc:
            if _bad_text(exc):
                raise _bad_text_error() from None
            if (asyncpg is not None and isinstance(exc, asyncpg.PostgresError | OSError)) or (
                _is_unavailable(exc)
            ):
                raise _store_error(exc) from None
            raise

    async def _read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        async with self._acquire() as conn:
            return await fn(conn)

    async def _write(self, fn: Callable[[Conn], Awaitable[T]], *locks: int) -> T:
        """``fn`` in its own transaction, after the advisory ``locks`` (sorted)."""
        async with self._acquire() as conn, conn.transaction():
            for lock in sorted(set(locks)):
                await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
            return await fn(conn)

    async def _change(self, fn: Callable[[Conn, _Effects], Awaitable[T]], *locks: int) -> T:
        """A change of memories outside the group writer (deletes, imports): ``fn`` in its own
        transaction after the ``locks``, its shared row updates applied at the end."""

        async def run(conn: Conn) -> T:
            effects = _Effects()
            value = await fn(conn, effects)
            await effects.apply(conn)
            return value

        return await self._write(run, *locks)

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(transactions committed, write requests served) since open — shows group commit."""
        return (self._writer.commits, self._writer.requests)

    async def health(self) -> StoreHealth:
        started = _time.perf_counter()
        try:
            await asyncio.wait_for(self._read(lambda conn: conn.fetchval("SELECT 1")), 5)
        except Exception as exc:
            return StoreHealth(False, (_time.perf_counter() - started) * 1000, f"{exc!r}")
        return StoreHealth(True, (_time.perf_counter() - started) * 1000)

    def _page_rows(self, rows: Iterable[Any], org_id: str, *, strict: bool = False) -> list[Memory]:
        return self._decode(rows, _memory_row, "memory", org_id, strict=strict)

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
        locks = []
        if dedup_since is not None:
            locks = [lock_id(org_id, "dedup", r.dedup_key) for r in records if r.dedup_key]
        if any(r.key is not None or r.supersedes is not None for r in records):
            locks.append(_links_lock(org_id))
        plain = None
        if not any(r.key is not None or r.supersedes is not None for r in records):
            plain = _Plain(org_id, records, dedup_since, now)
        return await self._writer.submit(
            lambda conn, effects: _insert(conn, effects, org_id, records, dedup_since, now),
            locks,
            plain,
        )

    async def import_memories(self, org_id: str, records: Sequence[MemoryRecord]) -> int:
        check_org(org_id, records, "memory")
        if not records:
            return 0

        async def run(conn: Conn, effects: _Effects) -> int:
            ids = list(dict.fromkeys(r.id for r in records))
            existing = {
                row[0]
                for row in await conn.fetch(
                    "SELECT id FROM memories WHERE org_id = $1 AND id = ANY($2::text[])",
                    org_id,
                    ids,
                )
            }
            fresh: list[MemoryRecord] = []
            for record in records:
                if record.id not in existing:
                    existing.add(record.id)
                    fresh.append(record)
            try:  # the partial unique index on (org_id, supersedes), at insert or at linking
                await _write_rows(conn, effects, fresh)
                await _link_imported(conn, org_id, fresh)
            except Exception as exc:
                if _unique_violation(exc):
                    raise ConflictError(
                        "import would make two memories supersede the same memory"
                    ) from None
                raise
            return len(fresh)

        return await self._change(run, _links_lock(org_id))

    async def get_memory(self, org_id: str, memory_id: str) -> Memory | None:
        async def run(conn: Conn) -> Memory | None:
            row = await conn.fetchrow(
                f"SELECT {_MEMORY_COLUMNS} FROM memories m WHERE m.org_id = $1 AND m.id = $2",
                org_id,
                memory_id,
            )
            return self._decode_one(row, _memory_row, "memory", org_id)

        return await self._read(run)

    async def list_memories(
        self, org_id: str, flt: MemoryFilter, *, limit: int, offset: int, order: str
    ) -> list[Memory]:
        p = _Params()
        where = build_where(org_id, flt, p)
        direction = "ASC" if order == "asc" else "DESC"
        sql = (
            f"SELECT {_MEMORY_COLUMNS} FROM memories m WHERE {where} "
            f"ORDER BY m.time {direction}, m.seq {direction} "
            f"LIMIT {p.add(limit)}::int8 OFFSET {p.add(offset)}::int8"
        )

        async def run(conn: Conn) -> list[Memory]:
            out: list[Memory] = []
            want, at = limit, offset
            args = p.values
            while want > 0:
                rows = await conn.fetch(sql, *args[:-2], want, at)
                got = self._page_rows(rows, org_id)
                out.extend(got)
                if len(got) == len(rows) or len(rows) < want:
                    break
                at += want
                want = len(rows) - len(got)
            return out

        return await self._read(run)

    async def keyword_candidates(
        self, org_id: str, flt: MemoryFilter, query: KeywordQuery
    ) -> list[Candidate]:
        """Stage 1 (see :meth:`Store.keyword_candidates`): FTS5's BM25 computed from the
        rows' text vectors, or with ``query.recent_first`` the newest matches."""
        phrases = [_phrase(t) for t in query.terms]
        match = _tsquery(phrases)
        if not match:
            return []
        if query.recent_first:
            exprs = []
            if len(query.groups) > 1:
                groups = [_tsquery(_phrase(t) for t in g) for g in query.groups]
                if all(groups):
                    exprs.append(" & ".join(f"({g})" for g in groups))
            exprs.append(match)
            return await self._read(lambda conn: self._newest(conn, org_id, flt, exprs, query))
        return await self._read(lambda conn: self._bm25(conn, org_id, flt, phrases, match, query))

    async def _newest(
        self, conn: Conn, org_id: str, flt: MemoryFilter, exprs: list[str], query: KeywordQuery
    ) -> list[Candidate]:
        out: list[Candidate] = []
        seen: set[str] = set()
        for expr in exprs:
            if len(out) >= query.limit:
                break
            p = _Params()
            where = build_where(org_id, flt, p)
            sql = (
                f"SELECT {_MEMORY_COLUMNS} FROM memories m WHERE {where} "
                f"AND m.tsv @@ {p.add(expr)}::tsquery ORDER BY m.seq DESC "
                f"LIMIT {p.add(query.limit)}::int8"
            )
            rows = [r for r in await conn.fetch(sql, *p.values) if r[0] not in seen]
            for memory in self._page_rows(rows, org_id):
                if memory.id not in seen and len(out) < query.limit:
                    seen.add(memory.id)
                    out.append(Candidate(memory, 0.0))
        return out

    async def _bm25(
        self,
        conn: Conn,
        org_id: str,
        flt: MemoryFilter,
        phrases: list[tuple[str, ...]],
        match: str,
        query: KeywordQuery,
    ) -> list[Candidate]:
        """FTS5's ``bm25()`` (fts5_aux.c) over the matches: for each phrase, idf ·
        f·(k1 + 1) / (f + k1·(1 − b + b·D / avgdl)), f the field-weighted hits, D the row's
        tokens; N, avgdl and each phrase's document count are the org's."""
        # every query term is a phrase of its own, even two that stem alike ("error",
        # "errors"): FTS5 scores each (only an empty one matches nothing)
        phrases = [ph for ph in phrases if ph]
        docs, tokens = await conn.fetchrow(
            "SELECT COALESCE(sum(docs), 0)::int8, COALESCE(sum(tokens), 0)::int8 "
            "FROM org_text_stats WHERE org_id = $1",
            org_id,
        )
        docs = max(int(docs), 1)
        avgdl = max(int(tokens), 1) / docs
        # documents of the org holding each phrase (FTS5 reads each phrase's doclist): counted
        # exactly up to DF_EXACT_LIMIT (past half the documents the idf is floored anyway),
        # a common word's beyond that estimated from the table's statistics (see _common)
        cap = min(docs // 2 + 1, DF_EXACT_LIMIT)
        hits = await conn.fetch(
            "SELECT q.i, (SELECT count(*) FROM (SELECT 1 FROM memories m WHERE m.org_id = $1 "
            "AND m.tsv @@ q.phrase LIMIT $2) s) FROM unnest($3::tsquery[]) WITH ORDINALITY "
            "AS q(phrase, i)",
            org_id,
            cap,
            [_tsquery([ph]) for ph in phrases],
        )
        common = await self._common(conn) if any(n >= cap for _, n in hits) else {}
        idf: list[float] = [0.0] * len(phrases)
        for i, n in hits:
            if n >= cap and cap < docs // 2 + 1:
                share = (
                    common.get(phrases[int(i) - 1][0], 0.0)
                    if len(phrases[int(i) - 1]) == 1
                    else 0.0
                )
                n = max(n, round(share * docs))
            value = math.log((docs - n + 0.5) / (n + 0.5))
            idf[int(i) - 1] = value if value > 0 else 1e-6
        weights = [float(query.field_weights.get(f, 1.0)) for f in _WEIGHT_OF_FIELD]
        if all(len(ph) == 1 for ph in phrases):
            scored = await self._bm25_sql(
                conn, org_id, flt, phrases, match, idf, weights, avgdl, query.limit
            )
        else:  # a phrase of several words: its hits need positions
            scored = await self._bm25_positions(
                conn, org_id, flt, phrases, match, idf, weights, avgdl, query.limit
            )
        best = [seq for _, seq in scored]
        full = await conn.fetch(
            f"SELECT {_MEMORY_COLUMNS}, m.seq FROM memories m WHERE m.org_id = $1 "
            "AND m.seq = ANY($2::int8[])",
            org_id,
            best,
        )
        by_seq = {int(r[_N_MEMORY_COLUMNS]): r for r in full}
        out: list[Candidate] = []
        for score, seq in scored:
            row = by_seq.get(seq)
            if row is None:  # deleted between the two reads
                continue
            for memory in self._page_rows([row], org_id):
                out.append(Candidate(memory, score))
        return out

    async def _common(self, conn: Conn) -> dict[str, float]:
        """The share of memories holding each of the most common words, from PostgreSQL's own
        statistics of the text vectors (``pg_stats.most_common_elems``, refreshed by ANALYZE;
        over the whole table), cached for a few minutes: what a common word's document count
        is estimated from instead of counting hundreds of thousands of matches."""
        now = _time.monotonic()
        if self._common_cache is None or now - self._common_cache[0] > _COMMON_SECONDS:
            row = await conn.fetchrow(
                "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
                "WHERE schemaname = current_schema() AND tablename = 'memories' "
                "AND attname = 'tsv'"
            )
            shares: dict[str, float] = {}
            if row is not None and row[0] is not None and row[1] is not None:
                shares = dict(zip(row[0], (float(f) for f in row[1]), strict=False))
            self._common_cache = (now, shares)
        return self._common_cache[1]

    @staticmethod
    async def _bm25_sql(
        conn: Conn,
        org_id: str,
        flt: MemoryFilter,
        phrases: list[tuple[str, ...]],
        match: str,
        idf: list[float],
        weights: list[float],
        avgdl: float,
        limit: int,
    ) -> list[tuple[float, int]]:
        """BM25 of one-word phrases in SQL, from each row's term frequencies: the best
        ``limit`` as (FTS5's negative score, seq), best first (ties in insertion order)."""
        p = _Params()
        where = build_where(org_id, flt, p)
        wa, wb, wc, wd = (f"{p.add(w)}::float8" for w in weights)
        # each phrase's frequencies looked up once per row (OFFSET 0: not inlined, so the
        # jsonb lookup is not repeated in every use), then the sum in float8
        looked_up = ", ".join(
            f"m.tf -> {p.add(ph[0])}::text AS t{i}" for i, ph in enumerate(phrases)
        )
        hits = ", ".join(
            f"COALESCE({wa} * (r.t{i} ->> 0)::float8 + {wb} * (r.t{i} ->> 1)::float8 + "
            f"{wc} * (r.t{i} ->> 2)::float8 + {wd} * (r.t{i} ->> 3)::float8, 0::float8) AS f{i}"
            for i in range(len(phrases))
        )
        norm = (
            f"({BM25_K1}::float8 * (1::float8 - {BM25_B}::float8 + {BM25_B}::float8 * "
            f"r.n_tokens / {p.add(avgdl)}::float8))"
        )
        score = " + ".join(
            f"{p.add(idf[i])}::float8 * x.f{i} * {BM25_K1 + 1}::float8 / (x.f{i} + {norm})"
            for i in range(len(phrases))
        )
        sql = (
            f"SELECT -({score}), r.seq FROM (SELECT m.seq, m.n_tokens, {looked_up} "
            f"FROM memories m WHERE {where} AND m.tsv @@ {p.add(match)}::tsquery OFFSET 0) r "
            f"CROSS JOIN LATERAL (SELECT {hits} OFFSET 0) x "
            f"ORDER BY 1, r.seq LIMIT {p.add(limit)}::int8"
        )
        return [(float(r[0]), int(r[1])) for r in await conn.fetch(sql, *p.values)]

    @staticmethod
    async def _bm25_positions(
        conn: Conn,
        org_id: str,
        flt: MemoryFilter,
        phrases: list[tuple[str, ...]],
        match: str,
        idf: list[float],
        weights: list[float],
        avgdl: float,
        limit: int,
    ) -> list[tuple[float, int]]:
        """BM25 with phrases of several words: each match's positions of the query's words
        (a phrase hits where its words follow one another), scored here."""
        p = _Params()
        where = build_where(org_id, flt, p)
        lex = p.add(sorted({s for ph in phrases for s in ph}))
        rows = await conn.fetch(
            "SELECT m.seq, m.n_tokens, (SELECT string_agg(u.lexeme || ':' || "
            "array_to_string(u.positions, ',') || ':' || array_to_string(u.weights, ''), ' ') "
            f"FROM unnest(m.tsv) u WHERE u.lexeme = ANY({lex}::text[])) "
            f"FROM memories m WHERE {where} AND m.tsv @@ {p.add(match)}::tsquery",
            *p.values,
        )
        weight_of = dict(zip("ABCD", weights, strict=True))
        scored: list[tuple[float, int]] = []
        for seq, n_tokens, packed in rows:
            positions: dict[str, dict[int, str]] = {}
            for entry in (packed or "").split(" "):
                if entry:
                    lexeme, pos, wts = entry.split(":")
                    positions[lexeme] = dict(zip(map(int, pos.split(",")), wts, strict=True))
            norm = BM25_K1 * (1 - BM25_B + BM25_B * int(n_tokens) / avgdl)
            score = 0.0
            for k, ph in enumerate(phrases):
                f = sum(
                    weight_of.get(weight, 1.0)
                    for at, weight in positions.get(ph[0], {}).items()
                    if all(at + j in positions.get(s, {}) for j, s in enumerate(ph[1:], 1))
                )
                if f:
                    score += idf[k] * (f * (BM25_K1 + 1)) / (f + norm)
            scored.append((-score, int(seq)))
        scored.sort()
        return scored[:limit]

    async def count_keyword_matches(
        self, org_id: str, flt: MemoryFilter, terms: tuple[str, ...], cap: int
    ) -> int:
        match = _tsquery(_phrase(t) for t in terms)
        if not match:
            return 0
        p = _Params()
        where = build_where(org_id, flt, p)
        sql = (
            f"SELECT count(*) FROM (SELECT 1 FROM memories m WHERE {where} "
            f"AND m.tsv @@ {p.add(match)}::tsquery LIMIT {p.add(cap)}::int8) s"
        )
        return int(await self._read(lambda conn: conn.fetchval(sql, *p.values)))

    async def count_memories(
        self, org_id: str, flt: MemoryFilter, *, cap: int | None = None
    ) -> int:
        p = _Params()
        where = build_where(org_id, flt, p)
        if cap is None:
            sql = f"SELECT count(*) FROM memories m WHERE {where}"
        else:
            sql = (
                f"SELECT count(*) FROM (SELECT 1 FROM memories m WHERE {where} "
                f"LIMIT {p.add(cap)}::int8) s"
            )
        return int(await self._read(lambda conn: conn.fetchval(sql, *p.values)))

    async def summarize_memories(
        self, org_id: str, flt: MemoryFilter, *, tag_limit: int
    ) -> MemorySummary:
        p = _Params()
        where = build_where(org_id, flt, p)
        dated = f"CASE WHEN m.time BETWEEN {MIN_US} AND {MAX_US} THEN m.time END"
        totals = f"SELECT count(*), min({dated}), max({dated}) FROM memories m WHERE {where}"
        tags = (
            f"SELECT t.tag, count(*) AS n FROM memories m, unnest(m.tags) AS t(tag) "
            f'WHERE {where} GROUP BY t.tag ORDER BY n DESC, t.tag COLLATE "C" '
            f"LIMIT ${len(p.values) + 1}"
        )

        async def run(conn: Conn) -> MemorySummary:
            # one snapshot: the totals and the tags agree
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                count, oldest, newest = await conn.fetchrow(totals, *p.values)
                rows = await conn.fetch(tags, *p.values, tag_limit + 1) if count else []
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
        p = _Params()
        where = build_where(org_id, flt, p)
        if all_versions:
            org = p.add(org_id)
            select = (
                "WITH RECURSIVE chain(id, supersedes) AS ("
                f"SELECT m.id, m.supersedes FROM memories m WHERE {where} "
                "UNION SELECT o.id, o.supersedes FROM chain c "
                f"JOIN memories o ON o.org_id = {org} "
                "AND (o.id = c.supersedes OR o.supersedes = c.id)) "
                "SELECT id FROM chain"
            )
        else:
            select = f"SELECT m.id FROM memories m WHERE {where}"

        async def run(conn: Conn, effects: _Effects) -> int:
            ids = [r[0] for r in await conn.fetch(select, *p.values)]
            return await _delete_ids(conn, effects, org_id, ids)

        return await self._change(run, _links_lock(org_id))

    async def pop_memory(self, org_id: str, flt: MemoryFilter, *, now: int) -> Memory | None:
        p = _Params()
        where = build_where(org_id, replace(flt, current=True, live_at=now), p)
        select = (
            f"SELECT {_MEMORY_COLUMNS} FROM memories m WHERE {where} "
            "ORDER BY m.time DESC, m.seq DESC LIMIT 1"
        )

        async def run(conn: Conn, effects: _Effects) -> Memory | None:
            # chosen and deleted under the org's link lock: concurrent pops serialise
            row = await conn.fetchrow(select, *p.values)
            memory = self._decode_one(row, _memory_row, "memory", org_id)
            if row is None or memory is None:
                return None
            await _delete_ids(conn, effects, org_id, [row[0]])
            return memory

        return await self._change(run, _links_lock(org_id))

    async def delete_expired(self, now: int, *, limit: int) -> int:
        rows = await self._read(
            lambda conn: conn.fetch(
                "SELECT org_id, id FROM memories WHERE expires_at IS NOT NULL "
                "AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
                now,
                limit,
            )
        )
        by_org: dict[str, list[str]] = {}
        for org, memory_id in rows:
            by_org.setdefault(org, []).append(memory_id)
        deleted = 0
        for org, ids in by_org.items():

            async def run(
                conn: Conn, effects: _Effects, org: str = org, ids: list[str] = ids
            ) -> int:
                still = [
                    r[0]
                    for r in await conn.fetch(
                        "SELECT id FROM memories WHERE org_id = $1 AND id = ANY($2::text[]) "
                        "AND expires_at <= $3",
                        org,
                        ids,
                        now,
                    )
                ]
                return await _delete_ids(conn, effects, org, still)

            deleted += await self._change(run, _links_lock(org))
        return deleted

    @staticmethod
    def _aged_select(org_id: str, rules: Sequence[AgeRule], p: _Params) -> str | None:
        cutoffs = [rule.cutoff for rule in rules if rule.cutoff is not None]
        if not cutoffs:
            return None
        org = p.add(org_id)
        top = p.add(max(cutoffs))
        cases: list[str] = []
        for rule in rules:
            where = build_where(org_id, rule.flt, p)
            cutoff = rule.cutoff if rule.cutoff is not None else MIN_US - 1
            cases.append(f"WHEN ({where}) THEN {p.add(cutoff)}::int8")
        return (
            f"SELECT m.id, m.time, m.seq FROM memories m WHERE m.org_id = {org} "
            f"AND m.time < {top}::int8 AND m.time < (CASE {' '.join(cases)} "
            f"ELSE {p.add(MIN_US - 1)}::int8 END)"
        )

    async def count_aged(self, org_id: str, rules: Sequence[AgeRule]) -> int:
        p = _Params()
        select = self._aged_select(org_id, rules, p)
        if select is None:
            return 0
        return int(
            await self._read(
                lambda conn: conn.fetchval(f"SELECT count(*) FROM ({select}) s", *p.values)
            )
        )

    async def delete_aged(
        self, org_id: str, rules: Sequence[AgeRule], *, limit: int, after: Any = None
    ) -> AgedBatch:
        p = _Params()
        select = self._aged_select(org_id, rules, p)
        if select is None or limit < 1:
            return AgedBatch(0, None)
        if after is not None:
            t, s = p.add(after[0]), p.add(after[1])
            select += f" AND (m.time > {t}::int8 OR (m.time = {t}::int8 AND m.seq > {s}::int8))"
        select += f" ORDER BY m.time, m.seq LIMIT {p.add(limit)}::int8"
        rows = await self._read(lambda conn: conn.fetch(select, *p.values))
        resume = (rows[-1][1], rows[-1][2]) if len(rows) == limit else None
        ids = [row[0] for row in rows]
        if not ids:
            return AgedBatch(0, resume)
        deleted = await self._change(
            lambda conn, effects: _delete_ids(conn, effects, org_id, ids), _links_lock(org_id)
        )
        return AgedBatch(deleted, resume)

    async def list_namespaces(
        self, org_id: str, prefix: tuple[str, ...] | None = None
    ) -> list[tuple[str, ...]]:
        hi: str | None = None
        lo = ""
        exact: str | None = None
        if prefix is not None:
            _, (exact, lo, hi) = _namespace_prefix("namespace", prefix)
        bound = "" if hi is None else " AND namespace < $3"
        extra: tuple[Any, ...] = () if hi is None else (hi,)
        select = (
            "SELECT min(namespace) FROM memories WHERE org_id = $1 AND namespace IS NOT NULL "
            "AND namespace {op} $2" + bound
        )
        first, step = select.format(op=">="), select.format(op=">")
        live = (
            "SELECT 1 FROM memories WHERE org_id = $1 AND namespace = $2 "
            "AND (expires_at IS NULL OR expires_at > $3) "
            "AND (superseded_by IS NULL OR superseded_until <= $3) LIMIT 1"
        )

        async def run(conn: Conn) -> list[tuple[str, ...]]:
            now = now_us()
            out: list[tuple[str, ...]] = []
            if exact is not None and await conn.fetchval(live, org_id, exact, now):
                out.append(tuple(prefix or ()))
            raw = await conn.fetchval(first, org_id, lo, *extra)
            while raw is not None:
                if await conn.fetchval(live, org_id, raw, now):
                    try:
                        out.append(tuple(_namespace_column(raw)))
                    except UnreadableRow as exc:
                        self._unreadable("namespace", (raw,), org_id, exc, False)
                raw = await conn.fetchval(step, org_id, raw, *extra)
            return sorted(out)

        return await self._read(run)

    async def memory_orgs(self) -> list[str]:
        sql = (
            "WITH RECURSIVE o(id) AS (SELECT min(org_id) FROM memories UNION ALL "
            "SELECT (SELECT min(org_id) FROM memories WHERE org_id > o.id) FROM o "
            "WHERE o.id IS NOT NULL) SELECT id FROM o WHERE id IS NOT NULL"
        )
        return await self._read(lambda conn: _column(conn, sql))

    async def get_retention_policy(self, org_id: str) -> dict[str, Any] | None:
        raw = await self._read(
            lambda conn: conn.fetchval(
                "SELECT policy FROM retention_policies WHERE org_id = $1", org_id
            )
        )
        return None if raw is None else _policy(raw, org_id)

    async def set_retention_policy(self, org_id: str, policy: dict[str, Any] | None) -> None:
        async def run(conn: Conn) -> None:
            if policy is None:
                await conn.execute("DELETE FROM retention_policies WHERE org_id = $1", org_id)
                return
            await conn.execute(
                "INSERT INTO retention_policies (org_id, policy, updated_at) VALUES ($1,$2,$3) "
                "ON CONFLICT (org_id) DO UPDATE SET policy = excluded.policy, "
                "updated_at = excluded.updated_at",
                org_id,
                _dumps(policy),
                now_us(),
            )

        await self._write(run)

    async def list_retention_policies(self) -> dict[str, dict[str, Any]]:
        rows = await self._read(
            lambda conn: conn.fetch("SELECT org_id, policy FROM retention_policies")
        )
        out: dict[str, dict[str, Any]] = {}
        for org, raw in rows:
            try:
                out[str(org)] = _policy(raw, str(org))
            except CorruptRowError as exc:
                self._unreadable("retention policy", (org,), str(org), exc, False)
        return out

    async def acquire_lease(self, name: str, holder: str, *, now: int, duration: int) -> bool:
        async def run(conn: Conn) -> bool:
            await conn.execute(
                "INSERT INTO leases AS l (name, holder, expires_at) VALUES ($1,$2,$3) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at "
                "WHERE l.holder = excluded.holder OR l.expires_at <= $4",
                name,
                holder,
                now + duration,
                now,
            )
            return bool(
                await conn.fetchval("SELECT holder FROM leases WHERE name = $1", name) == holder
            )

        return await self._write(run)

    async def release_lease(self, name: str, holder: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder
            )
        )

    async def count_by_type(self, org_id: str, flt: MemoryFilter) -> dict[str, int]:
        p = _Params()
        where = build_where(org_id, flt, p)
        sql = f"SELECT m.memory_type, count(*) FROM memories m WHERE {where} GROUP BY m.memory_type"
        rows = await self._read(lambda conn: conn.fetch(sql, *p.values))
        return {str(t): int(n) for t, n in rows}

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
        p = _Params()
        where = build_where(org_id, bucket_window(flt, start, bucket, buckets), p)
        # the time is at least `start`: bigint division truncates, which is then a floor
        sql = (
            f"SELECT (m.time - {p.add(start)}::int8) / {p.add(bucket)}::int8 AS b, "
            f"m.memory_type, count(*), count(*) FILTER (WHERE m.event_type = {p.add(error_type)}) "
            f"FROM memories m WHERE {where} GROUP BY 1, 2"
        )
        rows = await self._read(lambda conn: conn.fetch(sql, *p.values))
        return [BucketCount(int(b), str(t), int(n), int(e)) for b, t, n, e in rows]

    async def iter_memories(
        self, org_id: str, flt: MemoryFilter, *, batch: int = 1000
    ) -> AsyncIterator[list[Memory]]:
        last: tuple[int, int] | None = None
        while True:
            p = _Params()
            where = build_where(org_id, flt, p)
            if last is not None:
                t, s = p.add(last[0]), p.add(last[1])
                where += f" AND (m.time > {t}::int8 OR (m.time = {t}::int8 AND m.seq > {s}::int8))"
            sql = (
                f"SELECT {_MEMORY_COLUMNS}, m.seq FROM memories m WHERE {where} "
                f"ORDER BY m.time, m.seq LIMIT {p.add(batch)}::int8"
            )
            rows = await self._read(lambda conn, s=sql, a=p.values: conn.fetch(s, *a))  # type: ignore[misc]
            if not rows:
                return
            yield self._page_rows(rows, org_id, strict=True)
            last = (rows[-1][12], rows[-1][_N_MEMORY_COLUMNS])
            if len(rows) < batch:
                return

    # -- the live feed --------------------------------------------------------------------------

    async def feed_head(self, org_id: str) -> str:
        xmin = await self._read(
            lambda conn: conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        )
        return f"p{xmin}.0"

    async def feed_version(self) -> tuple[int, int]:
        """Changes whenever a memory may have been committed, by any server, or rows held
        back behind an older transaction may have become final (the feed hub's cheap poll:
        the memory sequence's last value and the snapshot's xmin)."""
        row = await self._read(
            lambda conn: conn.fetchrow(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence('memories', 'seq')), "
                "pg_snapshot_xmin(pg_current_snapshot())::text"
            )
        )
        return int(row[0] or 0), int(row[1])

    async def feed_memories(
        self, org_id: str, flt: MemoryFilter, *, after: str | None, limit: int, scan: int
    ) -> FeedPage:
        xid, seq = (0, 0) if after is None else _feed_position(after)
        # the window: at most ``scan`` final rows after the position, its last one and size
        window = (
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text, w.xid::text, w.seq, w.n "
            "FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT xid, seq, count(*) OVER () AS n "
            "FROM (SELECT m.xid, m.seq FROM memories m WHERE m.org_id = $1 "
            "AND (m.xid, m.seq) > ($2::text::xid8, $3::int8) "
            "AND m.xid < pg_snapshot_xmin(pg_current_snapshot()) "
            "ORDER BY m.xid, m.seq LIMIT $4::int8) w0 "
            "ORDER BY xid DESC, seq DESC LIMIT 1) w ON true"
        )
        p = _Params()
        where = build_where(org_id, flt, p)
        lo_x, lo_s, hi_x, hi_s = p.add(str(xid)), p.add(seq), p.add("0"), p.add(0)
        hits = (
            f"SELECT {_MEMORY_COLUMNS}, m.xid::text, m.seq FROM memories m WHERE {where} "
            f"AND (m.xid, m.seq) > ({lo_x}::text::xid8, {lo_s}::int8) "
            f"AND (m.xid, m.seq) <= ({hi_x}::text::xid8, {hi_s}::int8) "
            f"ORDER BY m.xid, m.seq LIMIT {p.add(limit)}::int8"
        )

        async def run(conn: Conn) -> FeedPage:
            xmax, last_x, last_s, n = await conn.fetchrow(window, org_id, str(xid), seq, scan)
            if xid > int(xmax):
                raise ValidationError(
                    f"invalid after: position {after} is beyond this database's transactions "
                    "(a position of another database?)",
                    field="after",
                )
            if last_x is None:  # nothing new is final yet
                return FeedPage([], f"p{xid}.{seq}")
            args = list(p.values)
            args[-3:-1] = [last_x, last_s]
            rows = await conn.fetch(hits, *args)
            items: list[tuple[str, Memory]] = []
            for row in rows:
                for memory in self._page_rows([row], org_id):
                    items.append(
                        (f"p{row[_N_MEMORY_COLUMNS]}.{row[_N_MEMORY_COLUMNS + 1]}", memory)
                    )
            if len(rows) >= limit:
                last = rows[-1]
                cursor = f"p{last[_N_MEMORY_COLUMNS]}.{last[_N_MEMORY_COLUMNS + 1]}"
                more = True
            else:
                cursor, more = f"p{last_x}.{last_s}", n >= scan
            return FeedPage(items, cursor, more=more)

        return await self._read(run)

    # -- agents ---------------------------------------------------------------------------------

    async def create_agent(self, org_id: str, agent: Agent) -> None:
        check_org(org_id, [agent], "agent")

        async def run(conn: Conn) -> None:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO agents (id, org_id, name, description, config, created_at, "
                        "last_active_at) VALUES ($1,$2,$3,$4,$5,$6,$7)",
                        agent.id,
                        agent.org_id,
                        agent.name,
                        agent.description,
                        _dumps(agent.config),
                        to_us(agent.created_at),
                        to_us(agent.last_active_at) if agent.last_active_at else None,
                    )
            except Exception as exc:
                if _unique_violation(exc):
                    raise ConflictError(
                        f"agent '{agent.name}' already exists in this organization"
                    ) from None
                raise

        await self._write(run)

    _AGENT_COLUMNS = "id, org_id, name, description, config, created_at, last_active_at"

    async def get_agent(self, org_id: str, id_or_name: str) -> Agent | None:
        cols = self._AGENT_COLUMNS

        async def run(conn: Conn) -> Agent | None:
            row = await conn.fetchrow(
                f"(SELECT {cols} FROM agents WHERE org_id = $1 AND id = $2) UNION ALL "
                f"(SELECT {cols} FROM agents WHERE org_id = $1 AND name = $2) LIMIT 1",
                org_id,
                id_or_name,
            )
            return self._decode_one(row, _agent_from_row, "agent", org_id)

        return await self._read(run)

    async def list_agents(self, org_id: str, *, strict: bool = False) -> list[Agent]:
        rows = await self._read(
            lambda conn: conn.fetch(
                f"SELECT {self._AGENT_COLUMNS} FROM agents WHERE org_id = $1 "
                'ORDER BY created_at DESC, id COLLATE "C"',
                org_id,
            )
        )
        return self._decode(rows, _agent_from_row, "agent", org_id, strict=strict)

    async def delete_agent(self, org_id: str, agent_id: str) -> bool:
        status = await self._write(
            lambda conn: conn.execute(
                "DELETE FROM agents WHERE org_id = $1 AND id = $2", org_id, agent_id
            )
        )
        return _affected(status) > 0

    # -- sessions -------------------------------------------------------------------------------

    _SESSION_COLUMNS = "id, org_id, agent_id, status, metadata, created_at, updated_at, closed_at"

    async def create_session(self, org_id: str, session: Session) -> None:
        check_org(org_id, [session], "session")

        async def run(conn: Conn) -> None:
            try:
                async with conn.transaction():
                    await conn.execute(
                        f"INSERT INTO sessions ({self._SESSION_COLUMNS}) "
                        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                        *_session_row(session),
                    )
            except Exception as exc:
                if _unique_violation(exc):
                    raise ConflictError(f"session '{session.id}' already exists") from None
                raise

        await self._write(run)

    async def get_session(self, org_id: str, session_id: str) -> Session | None:
        async def run(conn: Conn) -> Session | None:
            row = await conn.fetchrow(
                f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE org_id = $1 AND id = $2",
                org_id,
                session_id,
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
        p = _Params(org_id)
        clauses = ["org_id = $1"]
        if agent_ids is not None:
            clauses.append(_any("agent_id", agent_ids, p))
        if status is not None:
            clauses.append(f"status = {p.add(status)}")
        sql = (
            f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE {' AND '.join(clauses)} "
            f'ORDER BY created_at DESC, id COLLATE "C" '
            f"LIMIT {p.add(limit)}::int8 OFFSET {p.add(offset)}::int8"
        )
        rows = await self._read(lambda conn: conn.fetch(sql, *p.values))
        return self._decode(rows, _session_from_row, "session", org_id, strict=strict)

    async def update_session(
        self, org_id: str, session_id: str, change: Callable[[Session], Session]
    ) -> Session | None:
        async def run(conn: Conn) -> Session | None:
            row = await conn.fetchrow(
                f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE org_id = $1 AND id = $2 "
                "FOR UPDATE",
                org_id,
                session_id,
            )
            current = self._decode_one(row, _session_from_row, "session", org_id)
            if current is None:
                return None
            updated = change(current)
            new = _session_row(updated)
            await conn.execute(
                "UPDATE sessions SET status = $1, metadata = $2, updated_at = $3, closed_at = $4 "
                "WHERE org_id = $5 AND id = $6",
                new[3],
                new[4],
                new[6],
                new[7],
                org_id,
                session_id,
            )
            return updated

        return await self._write(run)

    async def delete_session(self, org_id: str, session_id: str) -> bool:
        status = await self._write(
            lambda conn: conn.execute(
                "DELETE FROM sessions WHERE org_id = $1 AND id = $2", org_id, session_id
            )
        )
        return _affected(status) > 0

    async def count_sessions(self, org_id: str, agent_ids: tuple[str, ...]) -> tuple[int, int]:
        row = await self._read(
            lambda conn: conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE status = 'active') FROM sessions "
                "WHERE org_id = $1 AND agent_id = ANY($2::text[])",
                org_id,
                list(agent_ids),
            )
        )
        return int(row[0]), int(row[1])

    async def purge_org(self, org_id: str) -> int:
        async def run(conn: Conn) -> int:
            deleted = _affected(
                await conn.execute("DELETE FROM memories WHERE org_id = $1", org_id)
            )
            await conn.execute("DELETE FROM agents WHERE org_id = $1", org_id)
            await conn.execute("DELETE FROM sessions WHERE org_id = $1", org_id)
            await conn.execute("DELETE FROM retention_policies WHERE org_id = $1", org_id)
            await conn.execute("DELETE FROM org_text_stats WHERE org_id = $1", org_id)
            return deleted

        return await self._write(run, _links_lock(org_id))

    # -- auth storage (stores/auth.py) ----------------------------------------------------------

    async def auth_revision(self) -> int:
        return int(
            await self._read(
                lambda conn: conn.fetchval("SELECT revision FROM auth_state WHERE id = 1")
            )
        )

    async def create_org(self, org: OrgRecord) -> None:
        async def run(conn: Conn) -> None:
            inserted = await conn.fetchval(
                "INSERT INTO orgs (id, name, created_at) VALUES ($1,$2,$3) "
                "ON CONFLICT (id) DO NOTHING RETURNING 1",
                org.id,
                org.name,
                org.created_at,
            )
            if inserted is None:
                raise ConflictError(f"organization '{org.id}' already exists")

        await self._write(run)

    async def get_org(self, org_id: str) -> OrgRecord | None:
        row = await self._read(
            lambda conn: conn.fetchrow(
                "SELECT id, name, created_at FROM orgs WHERE id = $1", org_id
            )
        )
        return None if row is None else OrgRecord(row[0], row[1], int(row[2]))

    async def list_orgs(self) -> list[OrgRecord]:
        rows = await self._read(
            lambda conn: conn.fetch(
                'SELECT id, name, created_at FROM orgs ORDER BY created_at, id COLLATE "C"'
            )
        )
        return [OrgRecord(r[0], r[1], int(r[2])) for r in rows]

    async def delete_org(self, org_id: str) -> bool:
        async def run(conn: Conn) -> bool:
            await conn.execute("DELETE FROM api_keys WHERE org_id = $1", org_id)
            deleted = _affected(await conn.execute("DELETE FROM orgs WHERE id = $1", org_id)) > 0
            await _bump(conn)
            return deleted

        return await self._write(run)

    async def bootstrap_org(self, org: OrgRecord, key: ApiKeyRecord) -> bool:
        async def run(conn: Conn) -> bool:
            if await conn.fetchval("SELECT 1 FROM orgs LIMIT 1") is not None:
                return False
            await conn.execute(
                "INSERT INTO orgs (id, name, created_at) VALUES ($1,$2,$3)",
                org.id,
                org.name,
                org.created_at,
            )
            await _insert_key(conn, key)
            return True

        return await self._write(run, lock_id("bootstrap"))

    async def create_api_key(self, key: ApiKeyRecord) -> None:
        await self._write(lambda conn: _insert_key(conn, key), lock_id(key.org_id, "keys"))

    _KEY_COLUMNS = (
        "id, org_id, name, key_hash, key_prefix, permissions, created_at, expires_at, enabled, "
        "last_used_at"
    )

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._read(
            lambda conn: conn.fetchrow(
                f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id
            )
        )
        return None if row is None else _key_from_row(row)

    async def list_api_keys(self, org_id: str | None = None) -> list[ApiKeyRecord]:
        order = 'ORDER BY created_at, id COLLATE "C"'
        if org_id is None:
            rows = await self._read(
                lambda conn: conn.fetch(f"SELECT {self._KEY_COLUMNS} FROM api_keys {order}")
            )
        else:
            rows = await self._read(
                lambda conn: conn.fetch(
                    f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE org_id = $1 {order}", org_id
                )
            )
        return [_key_from_row(r) for r in rows]

    async def find_api_keys(self, key_prefix: str) -> list[ApiKeyRecord]:
        rows = await self._read(
            lambda conn: conn.fetch(
                f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE key_prefix = $1", key_prefix
            )
        )
        return [_key_from_row(r) for r in rows]

    async def delete_api_key(self, key_id: str) -> bool:
        async def run(conn: Conn) -> bool:
            deleted = _affected(await conn.execute("DELETE FROM api_keys WHERE id = $1", key_id))
            if deleted:
                await _bump(conn)
            return deleted > 0

        return await self._write(run)

    async def update_api_key(
        self,
        key_id: str,
        *,
        key_hash: str | None = None,
        key_prefix: str | None = None,
        enabled: bool | None = None,
        permissions: Sequence[str] | None = None,
        expires_at: int | None = None,
        clear_expiry: bool = False,
    ) -> ApiKeyRecord | None:
        p = _Params()
        sets: list[str] = []
        if key_hash is not None:
            sets.append(f"key_hash = {p.add(key_hash)}")
        if key_prefix is not None:
            sets.append(f"key_prefix = {p.add(key_prefix)}")
        if enabled is not None:
            sets.append(f"enabled = {p.add(bool(enabled))}")
        if permissions is not None:
            sets.append(f"permissions = {p.add(','.join(permissions))}")
        if clear_expiry:
            sets.append("expires_at = NULL")
        elif expires_at is not None:
            sets.append(f"expires_at = {p.add(expires_at)}::int8")
        key = p.add(key_id)

        async def run(conn: Conn) -> ApiKeyRecord | None:
            if sets:
                changed = _affected(
                    await conn.execute(
                        f"UPDATE api_keys SET {', '.join(sets)} WHERE id = {key}", *p.values
                    )
                )
                if changed:
                    await _bump(conn)
            row = await conn.fetchrow(
                f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id
            )
            return None if row is None else _key_from_row(row)

        return await self._write(run)

    async def touch_api_key(self, key_id: str, used_at: int) -> None:
        await self._write(
            lambda conn: conn.execute(
                "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 "
                "AND (last_used_at IS NULL OR last_used_at < $2)",
                key_id,
                used_at,
            )
        )


# -- helpers ------------------------------------------------------------------------------------


def _affected(status: str) -> int:
    """The row count of a command status (``DELETE 3``)."""
    try:
        return int(str(status).rsplit(" ", 1)[-1])
    except ValueError:
        return 0


async def _column(conn: Conn, sql: str, *args: Any) -> list[str]:
    return [str(r[0]) for r in await conn.fetch(sql, *args)]


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


async def _bump(conn: Conn) -> None:
    await conn.execute("UPDATE auth_state SET revision = revision + 1 WHERE id = 1")


async def _insert_key(conn: Conn, key: ApiKeyRecord) -> None:
    if await conn.fetchval("SELECT 1 FROM orgs WHERE id = $1", key.org_id) is None:
        raise NotFoundError(f"organization '{key.org_id}' not found")
    if (
        await conn.fetchval(
            "SELECT 1 FROM api_keys WHERE org_id = $1 AND name = $2", key.org_id, key.name
        )
        is not None
    ):
        raise ConflictError(
            f"an API key named '{key.name}' already exists in organization '{key.org_id}'"
        )
    inserted = await conn.fetchval(
        "INSERT INTO api_keys (id, org_id, name, key_hash, key_prefix, permissions, created_at, "
        "expires_at, enabled, last_used_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        key.id,
        key.org_id,
        key.name,
        key.key_hash,
        key.key_prefix,
        ",".join(key.permissions),
        key.created_at,
        key.expires_at,
        bool(key.enabled),
        key.last_used_at,
    )
    if inserted is None:
        raise ConflictError(f"API key '{key.id}' already exists")


async def _current_version(conn: Conn, org_id: str, memory_id: str, now: int) -> str:
    current = memory_id
    for _ in range(_MAX_CHAIN):
        row = await conn.fetchrow(
            "SELECT superseded_by, superseded_until FROM memories WHERE org_id = $1 AND id = $2",
            org_id,
            current,
        )
        if row is None or row[0] is None or (row[1] is not None and row[1] <= now):
            return current
        current = row[0]
    return current


async def _current_of_key(
    conn: Conn, org_id: str, record: MemoryRecord, now: int
) -> tuple[str, int] | None:
    row = await conn.fetchrow(
        "SELECT id, COALESCE(key_created_at, time) FROM memories WHERE org_id = $1 "
        "AND key = $2 AND namespace IS NOT DISTINCT FROM $3 "
        "AND (superseded_by IS NULL OR superseded_until <= $4) "
        "AND (expires_at IS NULL OR expires_at > $4) ORDER BY recorded_at DESC, seq DESC LIMIT 1",
        org_id,
        record.key,
        None if record.namespace is None else encode_namespace(record.namespace),
        now,
    )
    return None if row is None else (str(row[0]), int(row[1]))


async def _refresh_until(conn: Conn, org_id: str, ids: Iterable[str]) -> None:
    """As the SQLite store's: the ``superseded_until`` horizons up each chain."""
    for start in ids:
        current, first = start, True
        for _ in range(_MAX_CHAIN):
            row = await conn.fetchrow(
                "SELECT supersedes, expires_at, superseded_by, superseded_until FROM memories "
                "WHERE org_id = $1 AND id = $2",
                org_id,
                current,
            )
            if row is None or row[0] is None:
                break
            horizon = _horizon(row[1], row[2], row[3])
            pred = await conn.fetchrow(
                "SELECT superseded_by, superseded_until FROM memories WHERE org_id = $1 AND id = $2",
                org_id,
                row[0],
            )
            if pred is None or pred[0] != current or (pred[1] == horizon and not first):
                break
            await conn.execute(
                "UPDATE memories SET superseded_until = $1 WHERE org_id = $2 AND id = $3",
                horizon,
                org_id,
                row[0],
            )
            current, first = row[0], False


async def _delete_ids(conn: Conn, effects: _Effects, org_id: str, ids: Sequence[str]) -> int:
    """Delete these memories of the org and mend the supersession links around them, with
    the result SQLite's per-row delete trigger gives: the nearest surviving predecessor of a
    run of deleted versions is superseded by its nearest surviving successor (with the
    supersession time and horizon of the run's last version), which supersedes it in turn."""
    if not ids:
        return 0
    rows = await conn.fetch(
        "DELETE FROM memories WHERE org_id = $1 AND id = ANY($2::text[]) "
        "RETURNING id, supersedes, superseded_by, superseded_at, superseded_until, n_tokens",
        org_id,
        list(dict.fromkeys(ids)),
    )
    effects.count(org_id, -len(rows), -sum(int(r[5]) for r in rows))
    gone = {r[0]: r for r in rows}
    preds: set[str] = set()
    for row in rows:
        pred = row[1]
        if pred in gone:
            continue  # not the first of its run
        last = row
        while last[2] is not None and last[2] in gone:
            last = gone[last[2]]
        successor = last[2]
        if pred is not None:
            await conn.execute(
                "UPDATE memories SET superseded_by = $1, superseded_at = $2, "
                "superseded_until = $3 WHERE org_id = $4 AND id = $5",
                successor,
                last[3] if successor is not None else None,
                last[4] if successor is not None else None,
                org_id,
                pred,
            )
            preds.add(pred)
        if successor is not None:
            await conn.execute(
                "UPDATE memories SET supersedes = $1 WHERE org_id = $2 AND id = $3",
                pred,
                org_id,
                successor,
            )
    await _refresh_until(conn, org_id, sorted(preds))
    return len(rows)


async def _check_supersedes(
    conn: Conn,
    effects: _Effects,
    org_id: str,
    records: Iterable[tuple[int, MemoryRecord]],
    now: int,
) -> None:
    claimed: dict[str, str] = {}
    for index, record in records:
        target = record.supersedes
        if target is None:
            continue
        if target in claimed:
            raise SupersedeError(index, target, claimed[target])
        row = await conn.fetchrow(
            "SELECT superseded_by, expires_at, superseded_until FROM memories "
            "WHERE org_id = $1 AND id = $2",
            org_id,
            target,
        )
        if row is None or (row[1] is not None and row[1] <= now):
            raise SupersedeError(index, target, None)
        if row[0] is not None:
            if row[2] is None or row[2] > now:
                raise SupersedeError(
                    index, target, await _current_version(conn, org_id, target, now)
                )
            await _drop_successors(conn, effects, org_id, row[0])
        claimed[target] = record.id


async def _drop_successors(conn: Conn, effects: _Effects, org_id: str, first: str) -> None:
    chain: list[str] = []
    current: str | None = first
    while current is not None and len(chain) < _MAX_CHAIN:
        chain.append(current)
        current = await conn.fetchval(
            "SELECT superseded_by FROM memories WHERE org_id = $1 AND id = $2", org_id, current
        )
    for memory_id in chain:
        await _delete_ids(conn, effects, org_id, [memory_id])


async def _link(conn: Conn, org_id: str, links: Iterable[tuple[str, int, str | None]]) -> None:
    items = [(by, at, target) for by, at, target in links if target is not None]
    if not items:
        return
    await conn.executemany(
        "UPDATE memories SET superseded_by = $1, superseded_at = $2 "
        "WHERE org_id = $3 AND id = $4 AND superseded_by IS NULL",
        [(by, at, org_id, target) for by, at, target in items],
    )
    await _refresh_until(conn, org_id, [by for by, _, _ in items])


async def _link_imported(conn: Conn, org_id: str, records: Sequence[MemoryRecord]) -> None:
    await _link(
        conn, org_id, ((r.id, r.recorded_at, r.supersedes) for r in records if r.supersedes)
    )
    rows = await conn.fetch(
        "SELECT id, recorded_at, supersedes FROM memories WHERE org_id = $1 "
        "AND supersedes = ANY($2::text[])",
        org_id,
        [r.id for r in records],
    )
    await _link(conn, org_id, [(r[0], r[1], r[2]) for r in rows])


_DEDUP_SQL = (
    "SELECT dedup_key, id, recorded_at, superseded_by, superseded_until, expires_at "
    "FROM memories WHERE org_id = $1 AND dedup_key = ANY($2::text[]) AND recorded_at >= $3 "
    "ORDER BY recorded_at DESC, seq DESC"
)


def _dedup_hits(rows: Iterable[Any], since: int, now: int) -> dict[str, list[str]]:
    """The memories a write at ``now`` with window start ``since`` is a duplicate of, by key,
    newest first: current (not superseded, or every successor expired) and unexpired."""
    seen: dict[str, list[str]] = {}
    for key, mem_id, recorded_at, superseded_by, until, expires_at in rows:
        if recorded_at < since or (expires_at is not None and expires_at <= now):
            continue
        if superseded_by is not None and (until is None or until > now):
            continue
        seen.setdefault(key, []).append(mem_id)
    return seen


def _decide(
    records: Sequence[MemoryRecord],
    seen: dict[str, list[str]] | None,
    keyed: set[int],
) -> tuple[list[InsertOutcome], list[MemoryRecord], list[tuple[int, MemoryRecord]]]:
    """Which records are written (the SQLite store's rule, record by record: a record whose
    dedup key names a current memory in ``seen`` — one written earlier in the call included —
    is a duplicate of it, unless that is the memory it supersedes). ``seen`` None: no dedup.
    Returns the outcomes, the accepted records and the superseding ones."""
    outcomes: list[InsertOutcome] = []
    accepted: list[MemoryRecord] = []
    superseding: list[tuple[int, MemoryRecord]] = []
    for index, record in enumerate(records):
        key = record.dedup_key
        if seen is not None and key:
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
    return outcomes, accepted, superseding


async def _insert(
    conn: Conn,
    effects: _Effects,
    org_id: str,
    records: Sequence[MemoryRecord],
    dedup_since: int | None,
    now: int,
) -> list[InsertOutcome]:
    """Dedup, supersession and insert, inside the group's transaction after its locks (the
    same steps as the SQLite store's ``_insert``)."""
    keyed: set[int] = set()
    resolved: list[MemoryRecord] = []
    for index, record in enumerate(records):
        if record.key is not None and record.supersedes is None:
            current = await _current_of_key(conn, org_id, record, now)
            if current is not None:
                record = replace(record, supersedes=current[0], key_created_at=current[1])
                keyed.add(index)
        if record.key is not None and record.key_created_at is None:
            record = replace(record, key_created_at=record.time)
        resolved.append(record)
    records = resolved
    seen: dict[str, list[str]] | None = None
    if dedup_since is not None:
        keys = list({r.dedup_key for r in records if r.dedup_key})
        rows = await conn.fetch(_DEDUP_SQL, org_id, keys, dedup_since) if keys else []
        seen = _dedup_hits(rows, dedup_since, now)
    outcomes, accepted, superseding = _decide(records, seen, keyed)
    if accepted:
        await _check_supersedes(conn, effects, org_id, superseding, now)
        await _write_rows(conn, effects, accepted)
        await _link(conn, org_id, ((r.id, r.recorded_at, r.supersedes) for _, r in superseding))
        effects.touch(org_id, {r.agent_id for r in accepted}, max(r.recorded_at for r in accepted))
    return outcomes


@dataclass(frozen=True)
class _Plain:
    """A write without keys or supersessions: one the group writer may batch with others."""

    org_id: str
    records: Sequence[MemoryRecord]
    dedup_since: int | None
    now: int


async def _insert_plain(
    conn: Conn, writes: Sequence[tuple[_Plain, _Effects]]
) -> list[list[InsertOutcome]]:
    """Several plain writes as if one after the other (each sees the ones before it), with
    one dedup query per org and one INSERT for them all."""
    rows_of: dict[str, list[Any]] = {}
    for org_id in {w.org_id for w, _ in writes}:
        checked = [w for w, _ in writes if w.org_id == org_id and w.dedup_since is not None]
        keys = list({r.dedup_key for w in checked for r in w.records if r.dedup_key})
        if keys:
            since = min(w.dedup_since for w in checked if w.dedup_since is not None)
            rows_of[org_id] = list(await conn.fetch(_DEDUP_SQL, org_id, keys, since))
    by_key: dict[tuple[str, str], list[Any]] = {}  # (org, key) -> its rows, newest first
    for org_id, rows in rows_of.items():
        for row in rows:
            by_key.setdefault((org_id, row[0]), []).append(row)
    # per org and key: what this batch wrote, newest first (id, recorded_at, expires_at)
    earlier: dict[str, dict[str, list[tuple[str, int, int | None]]]] = {}
    results: list[list[InsertOutcome]] = []
    accepted: list[MemoryRecord] = []
    for write, effects in writes:
        mine_before = earlier.setdefault(write.org_id, {})
        seen: dict[str, list[str]] | None = None
        if write.dedup_since is not None:
            since, now = write.dedup_since, write.now
            own = {r.dedup_key for r in write.records if r.dedup_key}
            seen = _dedup_hits(
                (row for key in own for row in by_key.get((write.org_id, key), ())), since, now
            )
            for key, hits in mine_before.items():
                ids = [i for i, at, ends in hits if at >= since and (ends is None or ends > now)]
                if ids:
                    seen[key] = [*ids, *seen.get(key, [])]
        outcomes, mine, _ = _decide(write.records, seen, set())
        for record in mine:
            if record.dedup_key:
                mine_before.setdefault(record.dedup_key, []).insert(
                    0, (record.id, record.recorded_at, record.expires_at)
                )
        if mine:
            effects.touch(
                write.org_id, {r.agent_id for r in mine}, max(r.recorded_at for r in mine)
            )
        accepted.extend(mine)
        results.append(outcomes)
    if accepted:
        await _write_rows(conn, writes[0][1], accepted)
    return results


async def _write_rows(conn: Conn, effects: _Effects, records: Sequence[MemoryRecord]) -> None:
    """Insert rows (one statement; the text vector computed here, the other indexes by
    PostgreSQL in the same transaction)."""
    if not records:
        return
    columns: list[list[Any]] = [[] for _ in range(23)]
    for r in records:
        vector, n_tokens, frequencies = text_vector(r)
        values = (
            r.org_id,
            r.id,
            r.agent_id,
            r.session_id,
            r.memory_type,
            r.event_type,
            r.content,
            _metadata_text(r.metadata),
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
            vector,
            n_tokens,
            frequencies,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    await conn.execute(_INSERT_SQL, *columns)
    for org_id, n_tokens in zip(columns[0], columns[21], strict=True):
        effects.count(org_id, 1, n_tokens)


def _feed_position(after: str) -> tuple[int, int]:
    """(xid, seq) of a PostgreSQL feed position (``p<xid>.<seq>``); ValidationError otherwise."""
    xid, dot, seq = after[1:].partition(".")
    if not (
        after.startswith("p")
        and dot
        and all(part.isascii() and part.isdigit() and len(part) < 20 for part in (xid, seq))
        and int(xid) < 2**63
        and int(seq) < 2**63
    ):
        raise ValidationError(
            f"invalid after: {after[:40]!r} is not a position of this store", field="after"
        )
    return int(xid), int(seq)


async def migrate(conn: Conn, target: int | None = None) -> int:
    """Apply pending migrations (up to ``target``) in one transaction under an advisory lock,
    so that servers starting at once migrate once. Returns the resulting schema version."""
    goal = SCHEMA_VERSION if target is None else target
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
            "applied_at bigint NOT NULL)"
        )
        version = int(
            await conn.fetchval("SELECT COALESCE(max(version), 0) FROM schema_migrations")
        )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {version} is newer than this memtrace "
                f"({SCHEMA_VERSION}); upgrade memtrace"
            )
        for number in range(version, goal):
            await conn.execute(MIGRATIONS[number])
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                number + 1,
                now_us(),
            )
        return max(version, goal)


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "migrate", "text_vector"]
