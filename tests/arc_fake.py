"""A protocol-level fake of the Arc time-series database (Basekick-Labs/arc) for the tests.

It follows ``/work/shared/reference/arc-protocol.md``: the msgpack write route (204, type
inference from the first non-null value, time-unit guessing, size caps), the JSON query route
(SQL validation, ``db.table`` rewriting, row-major replies, the two "no files yet" shapes), the
rewrite-based delete, the flush routes, health, and token auth. ``version="go"`` (default) is the
current Go server, ``version="python"`` the last Python one (section 7 of the document).

Storage model: every written batch first sits in an in-memory buffer until its visible-at time
(``now + flush_delay``); then it becomes one DuckDB table (one "Parquet file"), and a measurement
is read as ``SELECT * FROM f1 UNION ALL BY NAME SELECT * FROM f2 …`` (Arc reads its files with
``union_by_name=true``). A measurement with more than 16 files is compacted into one table.

Fault injection (:meth:`FakeArc.fail_writes`, :meth:`FakeArc.drop_write_replies`, …) and an
outage switch (:meth:`FakeArc.down` / :meth:`FakeArc.up`, same port, same data) serve the
resilience tests. Only the standard library, ``duckdb`` and ``msgpack`` are used.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import decimal
import itertools
import json
import math
import os
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import msgpack  # type: ignore[import-untyped]

TOKEN = "test-token-" + "0123456789abcdef0123456789abcdef"

_DB_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_MEAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
_COMPACT_ABOVE = 16
#: A file takes appended batches of its own schema up to this many rows.
_APPEND_BELOW = 50_000
_MAX_DELETE_ROWS = 1_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Python's datetime range (the Python server failed its flush outside it and dropped the rows)
_PY_MIN_US = -62135596800 * 1_000_000
_PY_MAX_US = 253402300799 * 1_000_000 + 999_999

_BIGINT = "BIGINT"
_DOUBLE = "DOUBLE"
_VARCHAR = "VARCHAR"
_BOOLEAN = "BOOLEAN"

# --- SQL validation (Go, internal/api) -------------------------------------------------------
_GO_DENIED = [
    (re.compile(r"\bDROP\s+(TABLE|DATABASE|INDEX|VIEW)\b", re.I), "DROP"),
    (re.compile(r"\bDELETE\s+FROM\b", re.I), "DELETE"),
    (re.compile(r"\bTRUNCATE\s+TABLE\b", re.I), "TRUNCATE"),
    (re.compile(r"\bALTER\s+TABLE\b", re.I), "ALTER"),
    (re.compile(r"\bCREATE\s+(TABLE|DATABASE|INDEX)\b", re.I), "CREATE"),
    (re.compile(r"\bINSERT\s+INTO\b", re.I), "INSERT"),
    (re.compile(r"\bUPDATE\s+\w+\s+SET\b", re.I), "UPDATE"),
    *[
        (re.compile(rf"\b{word}\b", re.I), word)
        for word in (
            "ATTACH",
            "DETACH",
            "COPY",
            "EXPORT",
            "IMPORT",
            "PRAGMA",
            "SET",
            "RESET",
            "LOAD",
            "INSTALL",
            "CALL",
            "SECRET",
        )
    ],
]
_GO_DENIED_FUNCS = re.compile(
    r"\b(read_parquet|parquet_scan|read_csv|read_csv_auto|read_json|read_json_auto|"
    r"read_json_objects|glob|read_text|read_blob|parquet_metadata|iceberg_scan)\s*\(",
    re.I,
)
_FROM_LITERAL = re.compile(r"\b(FROM|JOIN)\s+'", re.I)
_PY_DENIED = re.compile(r"\b(DROP|DELETE|INSERT|UPDATE|ALTER|CREATE|TRUNCATE)\b", re.I)

_QUALIFIED = re.compile(r"\b(FROM|JOIN)(\s+)([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\b(?!\s*[.(])", re.I)
_BARE = re.compile(r"\b(FROM|JOIN)(\s+)([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*[.(])", re.I)
_CTE = re.compile(
    r"(?:\bWITH\s+(?:RECURSIVE\s+)?|,\s*)([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^()]*\)\s*)?"
    r"AS\s+(?:NOT\s+)?(?:MATERIALIZED\s+)?\(",
    re.I,
)
_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "main", "temp", "system"}
# words after FROM/JOIN that are not a table name, and words after a table that are not an alias
_NOT_A_TABLE = {
    "select",
    "lateral",
    "unnest",
    "values",
    "with",
    "only",
}
_NOT_AN_ALIAS = {
    "where",
    "group",
    "order",
    "limit",
    "offset",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "full",
    "cross",
    "natural",
    "asof",
    "positional",
    "anti",
    "semi",
    "on",
    "using",
    "union",
    "except",
    "intersect",
    "having",
    "qualify",
    "window",
    "sample",
    "tablesample",
    "pivot",
    "unpivot",
    "returning",
    "lateral",
}
_SHOW_DATABASES = re.compile(r"^\s*SHOW\s+DATABASES\s*;?\s*$", re.I)
_SHOW_TABLES = re.compile(
    r"^\s*SHOW\s+(?:TABLES|MEASUREMENTS)(?:\s+FROM\s+([A-Za-z0-9_-]+))?\s*;?\s*$", re.I
)

# --- delete WHERE validation -----------------------------------------------------------------
_DELETE_WORDS = re.compile(
    r"\b(DROP|DELETE|INSERT|UPDATE|EXEC|EXECUTE|UNION|SELECT|CREATE|ALTER|COPY|ATTACH|DETACH|"
    r"LOAD|INSTALL|PRAGMA|CALL|SET)\b",
    re.I,
)
_FULL_TABLE = re.compile(r"^\s*(1\s*=\s*1|true|1)\s*$", re.I)


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Batch:
    """Rows of one write for one measurement: columns in order, each with its DuckDB type."""

    columns: dict[str, tuple[str, list[Any]]]
    visible_at: float

    @property
    def n(self) -> int:
        return len(self.columns["time"][1])

    def schema(self) -> tuple[tuple[str, str], ...]:
        return tuple((name, typ) for name, (typ, _) in self.columns.items())


@dataclass
class _File:
    table: str
    path: str
    #: The columns and types it was written with (None: a compacted or rewritten file), and
    #: its rows: a later batch of the same schema is appended to it (see _write_file).
    schema: tuple[tuple[str, str], ...] | None = None
    rows: int = 0


@dataclass
class _Measurement:
    files: list[_File] = field(default_factory=list)
    buffer: list[_Batch] = field(default_factory=list)


@dataclass
class _Faults:
    fail_writes: list[tuple[int, dict[str, Any] | None]] = field(default_factory=list)
    fail_queries: list[int] = field(default_factory=list)
    drop_write_replies: int = 0
    cut_query_replies: list[int] = field(default_factory=list)


def _now_us() -> int:
    return time.time_ns() // 1000


def _rfc3339(value: dt.datetime) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction trimmed, ``Z`` suffix."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += ("." + f"{value.microsecond:06d}").rstrip("0")
    return text + "Z"


def _mask(sql: str) -> str:
    """Same-length copy of ``sql`` with comments blanked and '…' literal contents blanked (the
    quotes themselves kept, so a literal's position stays visible)."""
    out = list(sql)
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'":
                    if j + 1 < n and sql[j + 1] == "'":
                        out[j] = out[j + 1] = " "
                        j += 2
                        continue
                    break
                out[j] = " " if sql[j] != "\n" else "\n"
                j += 1
            i = j + 1
        elif ch == '"':
            j = sql.find('"', i + 1)
            i = n if j < 0 else j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                out[k] = " " if sql[k] != "\n" else "\n"
            i = j
        else:
            i += 1
    return "".join(out)


def _json_value(value: Any, typ: str, go: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if typ in ("HUGEINT", "UBIGINT", "UHUGEINT"):
            return str(value)
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, dt.datetime):
        if go:
            return _rfc3339(value)
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_json_value(v, "", go) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v, "", go) for k, v in value.items()}
    return str(value)


def _infer(name: str, values: list[Any]) -> tuple[str, list[Any]]:
    """The column's type from its first non-null value, and every value converted to it."""
    typ = _VARCHAR
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            typ = _BOOLEAN
        elif isinstance(v, int):
            typ = _BIGINT
        elif isinstance(v, float):
            typ = _DOUBLE
        elif isinstance(v, str):
            typ = _VARCHAR
        else:
            raise _HttpError(400, f"unsupported value type {type(v).__name__} in column {name}")
        break
    out: list[Any] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        if not isinstance(v, bool | int | float | str):
            raise _HttpError(400, f"unsupported value type {type(v).__name__} in column {name}")
        if typ == _BIGINT:
            if isinstance(v, str):
                raise _HttpError(400, f"column {name}: string value in an integer column")
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                raise _HttpError(400, f"column {name}: {v} cannot be stored as an integer")
            iv = int(v)
            if not -(1 << 63) <= iv < (1 << 63):
                raise _HttpError(400, f"column {name}: integer out of range")
            out.append(iv)
        elif typ == _DOUBLE:
            if isinstance(v, str):
                raise _HttpError(400, f"column {name}: string value in a float column")
            out.append(float(v))
        elif typ == _BOOLEAN:
            if isinstance(v, str):
                raise _HttpError(400, f"column {name}: string value in a boolean column")
            out.append(bool(v))
        else:
            if isinstance(v, bool):
                out.append("true" if v else "false")
            else:
                out.append(str(v))
    return typ, out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], fake: FakeArc) -> None:
        self.fake = fake
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    def close_connections(self) -> None:
        with self.conns_lock:
            conns = list(self.conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # one packet per reply part without Nagle: else the header and body writes meet the
    # client's delayed ACK (a 40 ms stall per request on loopback)
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        status, payload, drop = fake._handle(
            method, parts.path, parse_qs(parts.query), self.headers, body
        )
        if drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = b"" if status == 204 else json.dumps(payload).encode()
        try:
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)
        except OSError:
            self.close_connection = True


class FakeArc:
    """An in-process Arc server. See the module docstring."""

    def __init__(
        self,
        *,
        version: str = "go",
        tokens: dict[str, set[str]] | None = None,
        flush_delay: float = 0.0,
        max_sql: int = 10_000,
        max_payload: int = 1 << 30,
        delete_enabled: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if version not in ("go", "python"):
            raise ValueError("version must be 'go' or 'python'")
        self.version = version
        self.tokens = None if tokens is None else {t: set(p) for t, p in tokens.items()}
        self.flush_delay = flush_delay
        self.max_sql = max_sql
        self.max_payload = max_payload
        self.delete_enabled = delete_enabled
        self.host = host
        self.port = port
        self.url = ""
        self.queries: list[str] = []
        self.writes = 0
        self._lock = threading.RLock()
        self._faults = _Faults()
        self._data: dict[tuple[str, str], _Measurement] = {}
        self._ids = itertools.count(1)
        self._started = time.time()
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone='UTC'")
        self._con.execute("SET enable_external_access=false")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def go(self) -> bool:
        return self.version == "go"

    def start(self) -> FakeArc:
        self.up()
        return self

    def up(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            server = _Server((self.host, self.port), self)
            self.port = server.server_address[1]
            self.url = f"http://{self.host}:{self.port}"
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=f"fake-arc-{self.port}",
                daemon=True,
            )
            self._thread.start()

    def down(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> FakeArc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- fault injection ---------------------------------------------------------------------
    def fail_writes(self, status: int, count: int = 1, body: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._faults.fail_writes.extend([(status, body)] * count)

    def fail_queries(self, status: int, count: int = 1) -> None:
        with self._lock:
            self._faults.fail_queries.extend([status] * count)

    def drop_write_replies(self, count: int = 1) -> None:
        with self._lock:
            self._faults.drop_write_replies += count

    def cut_query_replies(self, count: int = 1, keep_rows: int = 0) -> None:
        with self._lock:
            self._faults.cut_query_replies.extend([keep_rows] * count)

    # --- inspection --------------------------------------------------------------------------
    def flush(self) -> None:
        with self._lock:
            self._promote(force=True)

    def rows(self, database: str, measurement: str) -> list[dict[str, Any]]:
        with self._lock:
            self._promote()
            out = self._file_rows(database, measurement)
            meas = self._data.get((database, measurement))
            for batch in meas.buffer if meas else []:
                names = list(batch.columns)
                for i in range(batch.n):
                    out.append({name: batch.columns[name][1][i] for name in names})
            return out

    def visible_rows(self, database: str, measurement: str) -> list[dict[str, Any]]:
        with self._lock:
            self._promote()
            return self._file_rows(database, measurement)

    def delete_rows(self, database: str, measurement: str, row_id: str) -> int:
        """Remove every row whose ``id`` is ``row_id``, buffered or visible (what an operator
        removing files by hand, or a lost buffer, does): returns how many."""
        with self._lock:
            meas = self._data.get((database, measurement))
            if meas is None:
                return 0
            removed = 0
            for batch in meas.buffer:
                ids = batch.columns.get("id")
                if ids is None:
                    continue
                keep = [i for i, v in enumerate(ids[1]) if v != row_id]
                removed += len(ids[1]) - len(keep)
                for name, (typ, values) in list(batch.columns.items()):
                    batch.columns[name] = (typ, [values[i] for i in keep])
            for f in meas.files:
                n = self._con.execute(
                    f'SELECT count(*) FROM "{f.table}" WHERE id = ?', [row_id]
                ).fetchone()
                if n and n[0]:
                    self._con.execute(f'DELETE FROM "{f.table}" WHERE id = ?', [row_id])
                    f.rows -= int(n[0])
                    removed += int(n[0])
            return removed

    def reset_stats(self) -> None:
        with self._lock:
            self.queries.clear()
            self.writes = 0

    def _file_rows(self, database: str, measurement: str) -> list[dict[str, Any]]:
        meas = self._data.get((database, measurement))
        if meas is None or not meas.files:
            return []
        cur = self._con.execute(f"SELECT * FROM {self._union(meas)}")
        names = [d[0] for d in cur.description or []]
        out = []
        for row in cur.fetchall():
            rec = dict(zip(names, row, strict=True))
            t = rec.get("time")
            if isinstance(t, dt.datetime):
                if t.tzinfo is None:
                    t = t.replace(tzinfo=dt.UTC)
                rec["time"] = (t - _EPOCH) // dt.timedelta(microseconds=1)
            out.append(rec)
        return out

    # --- storage -----------------------------------------------------------------------------
    def _union(self, meas: _Measurement) -> str:
        if len(meas.files) == 1:
            return f'"{meas.files[0].table}"'
        inner = " UNION ALL BY NAME ".join(f'SELECT * FROM "{f.table}"' for f in meas.files)
        return f"({inner})"

    def _new_file(self, database: str, measurement: str, first_us: int) -> _File:
        n = next(self._ids)
        try:
            hour = (_EPOCH + dt.timedelta(microseconds=first_us)).strftime("%Y/%m/%d/%H")
        except OverflowError:
            hour = "0000/00/00/00"
        path = f"{database}/{measurement}/{hour}/{measurement}_{first_us}_{n}.parquet"
        return _File(table=f"__arc_f{n}", path=path)

    def _promote(self, force: bool = False) -> None:
        """Turn every buffered batch whose visible-at time has passed into a file."""
        now = time.time()
        for (database, name), meas in self._data.items():
            due = [b for b in meas.buffer if force or b.visible_at <= now]
            if not due:
                continue
            meas.buffer = [b for b in meas.buffer if b not in due]
            groups: list[list[_Batch]] = []
            for batch in due:
                if not self.go:
                    times = batch.columns["time"][1]
                    if any(not _PY_MIN_US <= t <= _PY_MAX_US for t in times):
                        continue  # the Python server's flush failed and the rows were dropped
                if groups and groups[-1][0].schema() == batch.schema():
                    groups[-1].append(batch)
                else:
                    groups.append([batch])
            for group in groups:
                self._write_file(database, name, meas, group)
            if len(meas.files) > _COMPACT_ABOVE:
                self._compact(database, name, meas)

    def _write_file(
        self, database: str, name: str, meas: _Measurement, group: list[_Batch]
    ) -> None:
        schema = group[0].schema()
        params: list[list[Any]] = []
        exprs = []
        for i, (col, typ) in enumerate(schema, start=1):
            values = [v for b in group for v in b.columns[col][1]]
            params.append(values)
            ident = '"' + col.replace('"', '""') + '"'
            if col == "time":
                exprs.append(f"make_timestamp(unnest(${i}::BIGINT[]))::TIMESTAMPTZ AS {ident}")
            else:
                exprs.append(f"unnest(${i}::{typ}[]) AS {ident}")
        last = meas.files[-1] if meas.files else None
        if last is not None and last.schema == schema and last.rows < _APPEND_BELOW:
            # the same columns and types as the newest file: appending to it reads the same as
            # a file of its own would (a union by name of equal schemas is a concatenation)
            # and keeps the fake's queries to one table
            self._con.execute(f'INSERT INTO "{last.table}" SELECT {", ".join(exprs)}', params)
            last.rows += len(params[0]) if params else 0
            return
        file = self._new_file(database, name, group[0].columns["time"][1][0])
        self._con.execute(f'CREATE TABLE "{file.table}" AS SELECT {", ".join(exprs)}', params)
        file.schema = schema
        file.rows = len(params[0]) if params else 0
        meas.files.append(file)

    def _compact(self, database: str, name: str, meas: _Measurement) -> None:
        first = self._con.execute(f'SELECT min(epoch_us("time")) FROM {self._union(meas)}')
        row = first.fetchone()
        file = self._new_file(database, name, int(row[0]) if row and row[0] is not None else 0)
        try:
            self._con.execute(f'CREATE TABLE "{file.table}" AS SELECT * FROM {self._union(meas)}')
        except duckdb.Error:
            return  # incompatible files stay as they are (the query fails the same way)
        for old in meas.files:
            self._con.execute(f'DROP TABLE "{old.table}"')
        meas.files = [file]

    # --- HTTP --------------------------------------------------------------------------------
    def _error(self, status: int, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
        if self.go:
            return status, {"success": False, "error": message, **extra}
        return status, {"detail": message}

    def _stamp(self) -> str:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return _rfc3339(now) if self.go else now.replace(tzinfo=None).isoformat()

    def _auth(self, headers: Any, query: dict[str, list[str]], need: str | None) -> None:
        if self.tokens is None:
            return
        token = ""
        auth = (headers.get("Authorization") or "").strip()
        if auth:
            low = auth.lower()
            if low.startswith("bearer "):
                token = auth[7:].strip()
            elif low.startswith("token "):
                token = auth[6:].strip()
            else:
                token = auth
        if not token:
            token = (headers.get("x-api-key") or "").strip()
        if not token and query.get("p"):
            token = query["p"][0]
        if not token:
            raise _HttpError(401, "Authentication required")
        perms = self.tokens.get(token)
        if perms is None:
            raise _HttpError(401, "Invalid or expired token")
        if need is not None and need not in perms and "admin" not in perms:
            raise _HttpError(403, f"Permission denied: {need} required")

    def _handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
    ) -> tuple[int, Any, bool]:
        """(status, JSON payload, drop the connection without a reply)."""
        route = (method, path.rstrip("/") or "/")
        flush_route = "/api/v1/write/line-protocol/flush" if self.go else "/api/v1/write/flush"
        try:
            if route == ("GET", "/health"):
                return 200, self._health(), False
            if route == ("GET", "/ready"):
                ready = {"status": "ready", "time": self._stamp()}
                return 200, ready | {"uptime_sec": int(time.time() - self._started)}, False
            if route == ("POST", "/api/v1/write/msgpack"):
                return self._write(query, headers, body)
            if route == ("POST", "/api/v1/query"):
                return (*self._query(query, headers, body), False)
            if route == ("POST", "/api/v1/delete"):
                self._auth(headers, query, "admin" if self.go else None)
                return (*self._delete(body), False)
            if route == ("POST", flush_route):
                self._auth(headers, query, "admin" if self.go else None)
                if self.go:
                    self.flush()
                return 200, {"status": "success", "message": "All buffers flushed"}, False
            return (*self._error(404, f"Cannot {method} {path}"), False)
        except _HttpError as exc:
            return (*self._error(exc.status, exc.message), False)

    def _health(self) -> dict[str, Any]:
        if self.go:
            up = time.time() - self._started
            return {
                "status": "ok",
                "time": self._stamp(),
                "uptime": f"{up:.0f}s",
                "uptime_sec": int(up),
            }
        return {"status": "healthy", "service": "arc", "version": "x", "timestamp": self._stamp()}

    # --- write -------------------------------------------------------------------------------
    def _write(
        self, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, bool]:
        with self._lock:
            if self._faults.fail_writes:
                status, fbody = self._faults.fail_writes.pop(0)
                if fbody is None:
                    _, fbody = self._error(status, "injected failure")
                return status, fbody, False
        self._auth(headers, query, "write")
        database = (headers.get("x-arc-database") or "").strip() or "default"
        if not _DB_RE.match(database):
            raise _HttpError(400, f"invalid database name: {database}")
        data = self._decompress(headers, body)
        try:
            payload = msgpack.unpackb(
                data, raw=False, strict_map_key=False, unicode_errors="replace"
            )
        except Exception as exc:
            raise _HttpError(400, f"failed to decode msgpack: {exc}") from exc
        batches = self._parse_payload(payload)
        visible_at = time.time() + self.flush_delay
        with self._lock:
            stored = 0
            for name, columns in batches:
                if not columns or not columns["time"][1]:
                    continue
                meas = self._data.setdefault((database, name), _Measurement())
                meas.buffer.append(_Batch(columns, visible_at))
                stored += len(columns["time"][1])
            if stored:
                self.writes += 1
            if self.flush_delay <= 0:
                self._promote()
            drop = self._faults.drop_write_replies > 0
            if drop:
                self._faults.drop_write_replies -= 1
        return 204, None, drop

    def _decompress(self, headers: Any, body: bytes) -> bytes:
        if len(body) > self.max_payload:
            raise _HttpError(413, f"payload too large (max {self.max_payload} bytes)")
        if not body:
            raise _HttpError(400, "empty request body")
        if self.go:
            gz = body[:2] == b"\x1f\x8b"
            if body[:4] == b"\x28\xb5\x2f\xfd":
                raise _HttpError(400, "zstd not supported by fake")
        else:
            gz = "gzip" in (headers.get("Content-Encoding") or "").lower()
        if not gz:
            return body
        try:
            dec = zlib.decompressobj(wbits=31)
            out = dec.decompress(body, self.max_payload + 1)
            if len(out) > self.max_payload:
                raise _HttpError(413, "decompressed payload too large")
            if not dec.eof:
                raise _HttpError(400, "invalid gzip data: truncated")
        except zlib.error as exc:
            raise _HttpError(400, f"invalid gzip data: {exc}") from exc
        if not out:
            raise _HttpError(400, "empty request body")
        return out

    def _parse_payload(self, payload: Any) -> list[tuple[str, dict[str, tuple[str, list[Any]]]]]:
        skip_bad = False
        if isinstance(payload, dict) and "batch" in payload and "m" not in payload:
            items = payload["batch"]
            if not isinstance(items, list):
                raise _HttpError(400, "batch must be an array")
            skip_bad = True
        elif isinstance(payload, list):
            items = payload
        elif isinstance(payload, dict):
            items = [payload]
        else:
            raise _HttpError(400, "payload must be a map or an array of maps")
        out: list[tuple[str, dict[str, tuple[str, list[Any]]]]] = []
        rows: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            try:
                if not isinstance(item, dict):
                    raise _HttpError(400, "each item must be a map")
                name = self._measurement(item.get("m"))
                if "columns" in item:
                    out.append((name, self._columnar(name, item["columns"])))
                else:
                    rows.setdefault(name, []).append(self._row(item))
            except _HttpError:
                if not skip_bad:
                    raise
        for name, recs in rows.items():
            keys: dict[str, None] = {}
            for rec in recs:
                keys.update(dict.fromkeys(rec))
            cols = {k: [rec.get(k) for rec in recs] for k in keys}
            try:
                out.append((name, self._columnar(name, cols)))
            except _HttpError:
                if not skip_bad:
                    raise
        return out

    def _measurement(self, m: Any) -> str:
        if isinstance(m, int) and not isinstance(m, bool):
            return f"measurement_{m}"
        if not isinstance(m, str) or not _MEAS_RE.match(m):
            raise _HttpError(400, f"invalid measurement name: {m!r}")
        return m

    def _row(self, item: dict[str, Any]) -> dict[str, Any]:
        rec: dict[str, Any] = {}
        if "t" in item:
            rec["time"] = item["t"]
        if "f" in item and "fields" not in item:
            f = item["f"]
            if not isinstance(f, list):
                raise _HttpError(400, "f must be an array")
            rec.update({f"field_{i}": v for i, v in enumerate(f)})
        fields = item.get("fields") or {}
        tags = item.get("tags") or {}
        if not isinstance(fields, dict) or not isinstance(tags, dict):
            raise _HttpError(400, "fields and tags must be maps")
        if "h" in item:
            rec["host"] = str(item["h"])
        rec.update({str(k): None if v is None else str(v) for k, v in tags.items()})
        rec.update({str(k): v for k, v in fields.items()})
        return rec

    def _columnar(self, name: str, columns: Any) -> dict[str, tuple[str, list[Any]]]:
        if not isinstance(columns, dict):
            raise _HttpError(400, "columns must be a map")
        cols: dict[str, list[Any]] = {}
        for key, values in columns.items():
            key = str(key)
            if not isinstance(values, list):
                raise _HttpError(400, f"column {key} must be an array")
            if not self.go and key.startswith("_"):
                continue
            cols[key] = values
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise _HttpError(400, f"columns of measurement {name} have different lengths")
        n = lengths.pop() if lengths else 0
        if "time" in cols:
            times = self._times(cols.pop("time"))
        else:
            now = _now_us()
            times = [now] * n
        out: dict[str, tuple[str, list[Any]]] = {"time": ("TIMESTAMPTZ", times)}
        for key, values in cols.items():
            out[key] = _infer(key, values)
        return out

    def _times(self, values: list[Any]) -> list[int]:
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise _HttpError(400, "time column must be numeric")
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                raise _HttpError(400, "time column must be finite")
        if not values:
            return []
        first = abs(values[0])
        if first < 1e10:
            return [int(v * 1_000_000) for v in values]
        if first < 1e13:
            return [int(v * 1_000) for v in values]
        if first < 1e16 or not self.go:
            return [int(v) for v in values]
        return [int(v) // 1000 for v in values]

    # --- query -------------------------------------------------------------------------------
    def _query(
        self, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        start = time.perf_counter()
        self._auth(headers, query, "read")
        ctype = (headers.get("Content-Type") or "").lower()
        try:
            req = json.loads(body) if body else None
        except ValueError:
            req = None
        if self.go and ("application/json" not in ctype or not isinstance(req, dict)):
            raise _HttpError(400, "Invalid request body")
        if not self.go and (not isinstance(req, dict) or not isinstance(req.get("sql"), str)):
            raise _HttpError(422, "field required: sql")
        assert isinstance(req, dict)
        sql = req.get("sql")
        if not isinstance(sql, str):
            sql = ""
        with self._lock:
            self.queries.append(sql)
            if self._faults.fail_queries:
                return self._error(self._faults.fail_queries.pop(0), "injected failure")
            keep = self._faults.cut_query_replies.pop(0) if self._faults.cut_query_replies else None
        header_db = (headers.get("x-arc-database") or "").strip() if self.go else ""
        if header_db and not _DB_RE.match(header_db):
            raise _HttpError(400, f"invalid database name: {header_db}")
        self._validate_sql(sql)
        with self._lock:
            self._promote()
            shown = self._show(sql)
            if shown is not None:
                columns, data = shown
            else:
                rewritten, missing = self._rewrite(sql, header_db)
                if missing is not None:
                    if not self.go:
                        pattern = f"/data/arc/{missing[0]}/{missing[1]}/**/*.parquet"
                        raise _HttpError(
                            400, f'IO Error: No files found that match the pattern "{pattern}"'
                        )
                    columns, data = [], []
                else:
                    try:
                        cur = self._con.execute(rewritten)
                        desc = cur.description or []
                        raw = cur.fetchall()
                    except duckdb.Error as exc:
                        elapsed = int((time.perf_counter() - start) * 1000)
                        if self.go:
                            return self._error(
                                500, str(exc), execution_time_ms=elapsed, timestamp=self._stamp()
                            )
                        raise _HttpError(400, str(exc)) from exc
                    columns = [d[0] for d in desc]
                    types = [str(d[1]) for d in desc]
                    data = [
                        [_json_value(v, t, self.go) for v, t in zip(row, types, strict=True)]
                        for row in raw
                    ]
        reply: dict[str, Any] = {
            "success": True,
            "columns": columns,
            "data": data if keep is None else data[:keep],
            "row_count": len(data),
            "execution_time_ms": int((time.perf_counter() - start) * 1000),
            "timestamp": self._stamp(),
        }
        return 200, reply

    def _validate_sql(self, sql: str) -> None:
        if not sql.strip():
            raise _HttpError(400, "SQL query is required")
        if len(sql) > self.max_sql:
            raise _HttpError(400, f"SQL query exceeds maximum length of {self.max_sql} characters")
        if not self.go:
            m = _PY_DENIED.search(sql)
            if m:
                raise _HttpError(422, f"Query contains forbidden keyword: {m.group(1).upper()}")
            return
        masked = _mask(sql)
        semi = masked.rstrip().rstrip(";")
        if ";" in semi or masked.rstrip().endswith(";;"):
            raise _HttpError(400, "Multiple statements are not allowed")
        for pattern, word in _GO_DENIED:
            if pattern.search(masked):
                raise _HttpError(400, f"Query contains forbidden keyword: {word}")
        m = _GO_DENIED_FUNCS.search(masked)
        if m:
            raise _HttpError(400, f"Query contains forbidden function: {m.group(1).lower()}")
        if _FROM_LITERAL.search(masked):
            raise _HttpError(400, "String literal in table position is not allowed")

    def _show(self, sql: str) -> tuple[list[str], list[list[Any]]] | None:
        if _SHOW_DATABASES.match(sql):
            dbs = sorted({db for (db, _), m in self._data.items()})
            return ["database"], [[db] for db in dbs]
        m = _SHOW_TABLES.match(sql)
        if m:
            only = m.group(1)
            rows = [
                [db, name, f"/data/arc/{db}/{name}", len(meas.files), 0.0]
                for (db, name), meas in sorted(self._data.items())
                if meas.files and (only is None or db == only)
            ]
            return ["database", "table_name", "storage_path", "file_count", "total_size_mb"], rows
        return None

    def _rewrite(self, sql: str, header: str) -> tuple[str, tuple[str, str] | None]:
        """``sql`` with every measurement reference replaced by the union of its files, and the
        first (database, measurement) that has no visible file yet (or None)."""
        default_db = header or "default"
        masked = _mask(sql)
        edits: list[tuple[int, int, str]] = []
        missing: tuple[str, str] | None = None
        ctes = {m.group(1).lower() for m in _CTE.finditer(masked)}
        qualified = False

        def source(db: str, name: str, end: int) -> str:
            nonlocal missing
            meas = self._data.get((db, name))
            if meas is None or not meas.files:
                missing = missing or (db, name)
                return f'"{name}"'
            text = self._union(meas)
            following = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", masked[end:])
            if not following or following.group(1).lower() in _NOT_AN_ALIAS:
                text += f' AS "{name}"'
            return text

        for m in _QUALIFIED.finditer(masked):
            db, name = m.group(3), m.group(4)
            if db.lower() in _SYSTEM_SCHEMAS or db.lower().startswith(("pg_", "duckdb_")):
                continue
            qualified = True
            start = m.start(3)
            edits.append((start, m.end(), source(db, name, m.end())))
        if qualified and header:
            raise _HttpError(
                400, "database.table syntax is not allowed when the x-arc-database header is set"
            )
        for m in _BARE.finditer(masked):
            name = m.group(3)
            low = name.lower()
            if (
                low in ctes
                or low in _NOT_A_TABLE
                or low in _SYSTEM_SCHEMAS
                or low.startswith(("pg_", "duckdb_", "information_schema"))
                or not self._table_context(masked, m.start())
            ):
                continue
            if any(s <= m.start(3) < e for s, e, _ in edits):
                continue
            edits.append((m.start(3), m.end(), source(default_db, name, m.end())))
        out = sql
        for start, end, text in sorted(edits, reverse=True):
            out = out[:start] + text + out[end:]
        return out, missing

    @staticmethod
    def _table_context(masked: str, pos: int) -> bool:
        """Whether the FROM/JOIN at ``pos`` introduces a table (top level, or inside a
        parenthesised subquery), not an argument list such as ``extract(epoch FROM t)``."""
        if re.search(r"\bDISTINCT\s+$", masked[:pos], re.I):
            return False
        depth = 0
        for i in range(pos - 1, -1, -1):
            ch = masked[i]
            if ch == ")":
                depth += 1
            elif ch == "(":
                if depth == 0:
                    inner = masked[i + 1 :].lstrip().lower()
                    return inner.startswith(("select", "with", "from", "values", "("))
                depth -= 1
        return True

    # --- delete ------------------------------------------------------------------------------
    def _delete(self, body: bytes) -> tuple[int, dict[str, Any]]:
        start = time.perf_counter()
        if not self.delete_enabled:
            raise _HttpError(403, "Delete operations are disabled")
        try:
            req = json.loads(body) if body else None
        except ValueError:
            req = None
        if not isinstance(req, dict):
            raise _HttpError(400, "Invalid request body")
        database = req.get("database") or "default"
        measurement = req.get("measurement")
        where = req.get("where")
        dry_run = bool(req.get("dry_run", False))
        confirm = bool(req.get("confirm", False))
        if not isinstance(database, str) or not _DB_RE.match(database):
            raise _HttpError(400, "invalid database name")
        if not isinstance(measurement, str) or not _MEAS_RE.match(measurement):
            raise _HttpError(400, "measurement is required")
        if not isinstance(where, str) or not where.strip():
            raise _HttpError(400, "where clause is required")
        where = re.sub(r"^\s*WHERE\s+", "", where, flags=re.I)
        self._validate_where(where)
        if _FULL_TABLE.match(where) and not confirm:
            raise _HttpError(400, "Full-table delete requires confirm: true")
        if not dry_run and not confirm:
            raise _HttpError(400, "Delete requires confirm: true (or use dry_run)")
        with self._lock:
            self._promote()
            meas = self._data.get((database, measurement))
            files = list(meas.files) if meas else []
            counts: list[tuple[_File, int]] = []
            failed: list[str] = []
            for f in files:
                try:
                    row = self._con.execute(
                        f'SELECT count(*) FROM "{f.table}" WHERE ({where})'
                    ).fetchone()
                except duckdb.Error:
                    failed.append(f.path)
                    continue
                n = int(row[0]) if row else 0
                if n:
                    counts.append((f, n))
            total = sum(n for _, n in counts)
            if total > _MAX_DELETE_ROWS:
                raise _HttpError(
                    400, f"Delete would remove {total} rows (max {_MAX_DELETE_ROWS} per request)"
                )
            rewritten = 0
            if not dry_run and meas is not None:
                for f, _ in counts:
                    self._con.execute(
                        f'CREATE TABLE "{f.table}__new" AS SELECT * FROM "{f.table}" '
                        f"WHERE NOT coalesce(({where}), false)"
                    )
                    self._con.execute(f'DROP TABLE "{f.table}"')
                    self._con.execute(f'ALTER TABLE "{f.table}__new" RENAME TO "{f.table}"')
                    left = self._con.execute(f'SELECT count(*) FROM "{f.table}"').fetchone()
                    if not left or not left[0]:
                        self._con.execute(f'DROP TABLE "{f.table}"')
                        meas.files.remove(f)
                    rewritten += 1
        reply: dict[str, Any] = {
            "success": not failed,
            "deleted_count": total,
            "affected_files": len(counts),
            "rewritten_files": rewritten,
            "execution_time_ms": int((time.perf_counter() - start) * 1000),
            "dry_run": dry_run,
            "files_processed": [f.path for f, _ in counts],
        }
        if failed:
            reply["failed_files"] = failed
            reply["error"] = f"{len(failed)} file(s) failed"
        if not self.go:
            reply.pop("success")
        return 200, reply

    @staticmethod
    def _validate_where(where: str) -> None:
        if ";" in where or "--" in where or "/*" in where:
            raise _HttpError(400, "WHERE clause contains forbidden characters")
        m = _DELETE_WORDS.search(where)
        if m:
            raise _HttpError(400, f"WHERE clause contains forbidden keyword: {m.group(1).upper()}")
        low = where.lower()
        if "xp_" in low or "sp_" in low:
            raise _HttpError(400, "WHERE clause contains a forbidden pattern")
        if _GO_DENIED_FUNCS.search(where):
            raise _HttpError(400, "WHERE clause contains a forbidden function")
        if where.count("'") % 2 or where.count('"') % 2:
            raise _HttpError(400, "WHERE clause has unbalanced quotes")
        depth = 0
        for ch in _mask(where):
            depth += (ch == "(") - (ch == ")")
            if depth < 0:
                break
        if depth != 0:
            raise _HttpError(400, "WHERE clause has unbalanced parentheses")


@contextlib.contextmanager
def running(**kw: Any) -> Iterator[FakeArc]:
    """A started :class:`FakeArc` for the duration of the block."""
    fake = FakeArc(**kw).start()
    try:
        yield fake
    finally:
        fake.stop()


_shared: FakeArc | None = None
_shared_lock = threading.Lock()


def shared() -> FakeArc:
    """One process-wide fake with auth on (:data:`TOKEN`, read/write/admin), no flush delay
    and deletes enabled, Go-flavoured unless ``MEMTRACE_FAKE_ARC_VERSION=python``; stopped at
    exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FakeArc(
                # MEMTRACE_FAKE_ARC_VERSION=python runs the suite against the Python Arc's
                # behaviour (its SQL check inside literals, its empty-result 400, …)
                version=os.environ.get("MEMTRACE_FAKE_ARC_VERSION", "go"),
                tokens={TOKEN: {"read", "write", "admin"}},
                flush_delay=0.0,
                delete_enabled=True,
            ).start()
            atexit.register(_shared.stop)
        return _shared


def main(argv: list[str] | None = None) -> int:
    """Serve a fake Arc like :func:`shared`'s on 127.0.0.1 until killed, printing its port
    (the benchmarks run it in a process of its own, so that its CPU is not the measured
    process's)."""
    import argparse
    import signal

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--flush-delay", type=float, default=0.0)
    args = ap.parse_args(argv)
    fake = FakeArc(
        tokens={TOKEN: {"read", "write", "admin"}},
        flush_delay=args.flush_delay,
        delete_enabled=True,
        port=args.port,
    ).start()
    print(fake.port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: fake.stop())
    while fake._server is not None:
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
