"""``memtrace doctor`` for the SQLite store: find (and with ``fix`` repair) what reads cannot
serve or indexes that drifted from the table.

What :func:`scan` checks, in one pass over each table (memory use stays bounded: only the
findings are kept):

* **unreadable rows** in ``memories``, ``agents`` and ``sessions``: every row is decoded by the
  store's own read code (the rows lists and searches skip, and that get-by-id and exports
  refuse with :class:`~memtrace_core.errors.CorruptRowError`);
* **index drift**: memories missing from, or stale in, ``memories_fts`` (keyword search) and
  ``memories_trigram`` (``content_contains``), and the FTS5 ``integrity-check`` of both against
  the ``memories`` table (which also finds content changed behind the index's back), ``memory_tags``
  entries missing for a memory's tags, and orphan ``memory_tags`` rows (no such memory, another
  org, or a tag the memory does not have);
* the delete trigger that keeps the indexes in sync (``memories_ad``) is present;
* the file itself: ``PRAGMA quick_check`` (reported; not something ``fix`` can repair).

:func:`repair` first writes every unreadable row, whole, to a quarantine file (JSON Lines, one
``{"table", "org_id", "id", "reason", "row"}`` object per row; BLOB values as
``{"hex": …}``), fsyncs it, then in one transaction deletes those rows, deletes orphan tag rows,
adds missing ones and rebuilds both full-text indexes (a rebuild re-reads the table, so it also
undoes whatever a damaged row's delete did to them). The quarantine file keeps the data a human
may still want; nothing is deleted before it is on disk.

The scan runs on its own connection and can run while a server uses the file (WAL), but FTS5's
``integrity-check`` is an INSERT command: it holds SQLite's write lock while it runs (writers
wait, up to their busy timeout). The repair takes the write lock for its transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreError
from .sqlite import (
    _MEMORY_COLUMNS,
    _MIGRATION_2,
    _SESSION_COLUMNS,
    SCHEMA_VERSION,
    BadText,
    UnreadableRow,
    _agent_from_row,
    _row_to_memory,
    _session_from_row,
    _split_sql,
    lenient_text,
)

_AGENT_COLUMNS = "id, org_id, name, description, config, created_at, last_active_at"

#: (table, kind, SELECT list, decoder) of the tables whose rows reads decode.
_TABLES: tuple[tuple[str, str, str, Callable[[Sequence[Any]], Any]], ...] = (
    ("memories", "memory", _MEMORY_COLUMNS.replace("m.", ""), _row_to_memory),
    ("agents", "agent", _AGENT_COLUMNS, _agent_from_row),
    ("sessions", "session", _SESSION_COLUMNS, _session_from_row),
)

#: Tag entries a memory's ``tags`` call for (valid JSON arrays of strings only).
_WANTED_TAGS = (
    "SELECT m.org_id AS org_id, j.value AS tag, m.rowid AS memory_rowid FROM memories m, "
    "json_each(CASE WHEN json_valid(m.tags) AND json_type(m.tags) = 'array' THEN m.tags "
    "ELSE '[]' END) j WHERE j.type = 'text'"
)
_MISSING_TAGS = (
    f"SELECT w.org_id, w.tag, w.memory_rowid FROM ({_WANTED_TAGS}) w WHERE NOT EXISTS "
    "(SELECT 1 FROM memory_tags t WHERE t.org_id = w.org_id AND t.tag = w.tag "
    "AND t.memory_rowid = w.memory_rowid)"
)
_ORPHAN_TAGS = (
    "SELECT t.org_id, t.tag, t.memory_rowid FROM memory_tags t WHERE NOT EXISTS "
    f"(SELECT 1 FROM ({_WANTED_TAGS}) w WHERE w.org_id = t.org_id AND w.tag = t.tag "
    "AND w.memory_rowid = t.memory_rowid)"
)


@dataclass(frozen=True)
class UnreadableRowInfo:
    """One row that reads cannot serve."""

    table: str
    kind: str
    org_id: str
    row_id: str
    reason: str
    rowid: int
    #: the row's ``id`` and ``org_id`` as stored (maybe not text: the row is unreadable)
    stored_key: tuple[Any, Any] = (None, None)

    def describe(self) -> str:
        return f"unreadable {self.kind} {self.row_id} (org {self.org_id}): {self.reason}"


@dataclass
class DoctorReport:
    """What :func:`scan` found (and, after :func:`repair`, what was done)."""

    path: str
    unreadable: list[UnreadableRowInfo] = field(default_factory=list)
    #: Index drift, one human-readable line per index.
    drift: list[str] = field(default_factory=list)
    #: Problems of the file itself (``PRAGMA quick_check``), which ``fix`` cannot repair.
    file_errors: list[str] = field(default_factory=list)
    #: What a repair did (empty for a scan).
    actions: list[str] = field(default_factory=list)
    quarantine: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.unreadable or self.drift or self.file_errors)

    def problems(self) -> list[str]:
        return (
            [u.describe() for u in self.unreadable]
            + [f"index drift: {d}" for d in self.drift]
            + [f"database file: {e}" for e in self.file_errors]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "unreadable": [
                {k: v for k, v in u.__dict__.items() if k != "rowid"} for u in self.unreadable
            ],
            "drift": self.drift,
            "file_errors": self.file_errors,
            "actions": self.actions,
            "quarantine": self.quarantine,
        }


def _connect(path: str) -> sqlite3.Connection:
    if not os.path.exists(path):
        raise StoreError(f"no database at {path}")
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        conn.text_factory = lenient_text  # invalid UTF-8 is a finding, not a crash
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None
    if version != SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"{path} has schema version {version}, this memtrace expects {SCHEMA_VERSION} "
            "(open it once with this version, e.g. `memtrace serve`, to migrate it)"
        )
    return conn


def _unreadable_rows(conn: sqlite3.Connection) -> Iterator[UnreadableRowInfo]:
    """Every unreadable row."""
    for table, kind, columns, decode in _TABLES:
        for row in conn.execute(f"SELECT {columns}, rowid FROM {table}"):
            try:
                decode(row)
            except (UnreadableRow, ValueError, TypeError, OverflowError, RecursionError) as exc:
                reason = (
                    str(exc) if isinstance(exc, UnreadableRow) else f"{type(exc).__name__}: {exc}"
                )
                yield UnreadableRowInfo(
                    table, kind, str(row[1]), str(row[0]), reason, row[-1], (row[0], row[1])
                )


def _fts_problem(conn: sqlite3.Connection, table: str) -> str | None:
    try:
        conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        return f"{table} does not match the memories table ({exc}); --fix rebuilds it"
    return None


def _fts_rows(conn: sqlite3.Connection, table: str) -> list[str]:
    """Memories missing from a full-text index, and index entries of no memory (read only)."""
    found: list[str] = []
    missing = int(
        conn.execute(
            f"SELECT COUNT(*) FROM memories m WHERE NOT EXISTS "
            f"(SELECT 1 FROM {table}_docsize d WHERE d.id = m.rowid)"
        ).fetchone()[0]
    )
    if missing:
        found.append(f"{table}: {missing} memories missing from the index (search misses them)")
    stale = int(
        conn.execute(
            f"SELECT COUNT(*) FROM {table}_docsize d WHERE NOT EXISTS "
            "(SELECT 1 FROM memories m WHERE m.rowid = d.id)"
        ).fetchone()[0]
    )
    if stale:
        found.append(f"{table}: {stale} entries for memories that no longer exist")
    return found


#: The delete trigger that keeps the indexes in sync (as the latest migration defines it).
_DELETE_TRIGGER = next(
    sql for sql in _split_sql(_MIGRATION_2) if sql.startswith("CREATE TRIGGER memories_ad")
)


def _trigger_missing(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'memories_ad'"
    ).fetchone()
    return row is None


def _drift(conn: sqlite3.Connection) -> list[str]:
    found: list[str] = []
    if _trigger_missing(conn):
        found.append("trigger memories_ad is missing: deletes leave index entries behind")
    for table in ("memories_fts", "memories_trigram"):
        found.extend(_fts_rows(conn, table))
        problem = _fts_problem(conn, table)
        if problem:
            found.append(problem)
    missing = int(conn.execute(f"SELECT COUNT(*) FROM ({_MISSING_TAGS})").fetchone()[0])
    if missing:
        found.append(
            f"memory_tags: {missing} tag entries missing (tag filters miss those memories)"
        )
    orphans = int(conn.execute(f"SELECT COUNT(*) FROM ({_ORPHAN_TAGS})").fetchone()[0])
    if orphans:
        found.append(f"memory_tags: {orphans} orphan entries (no such memory or tag)")
    return found


def _scan(conn: sqlite3.Connection, path: str) -> DoctorReport:
    report = DoctorReport(path=path)
    report.unreadable.extend(_unreadable_rows(conn))
    report.drift = _drift(conn)
    try:
        checks = [str(r[0]) for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        checks = [str(exc)]
    report.file_errors = [c for c in checks if c != "ok"]
    return report


def scan(path: str) -> DoctorReport:
    """Check the SQLite store at ``path`` (read only). See the module docstring."""
    conn = _connect(path)
    try:
        return _scan(conn, path)
    finally:
        conn.close()


def _plain(value: Any) -> Any:
    if isinstance(value, BadText):
        return {"hex": value.raw.hex(), "invalid_utf8": True}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    return value


def _quarantine(conn: sqlite3.Connection, report: DoctorReport, target: str) -> None:
    with open(target, "x", encoding="utf-8") as fh:
        for info in report.unreadable:
            cursor = conn.execute(f"SELECT * FROM {info.table} WHERE rowid = ?", (info.rowid,))
            names = [d[0] for d in cursor.description]
            for row in cursor:
                record = {
                    "table": info.table,
                    "org_id": info.org_id,
                    "id": info.row_id,
                    "reason": info.reason,
                    "row": {n: _plain(v) for n, v in zip(names, row, strict=True)},
                }
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def default_quarantine_path(path: str) -> str:
    """``<db>.quarantine-<UTC timestamp>.jsonl``, next to the database."""
    from datetime import UTC, datetime

    return f"{path}.quarantine-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.jsonl"


def repair(path: str, *, quarantine: str | None = None) -> DoctorReport:
    """Scan, then fix what was found: quarantine and delete unreadable rows, repair
    ``memory_tags``, rebuild the full-text indexes. Returns the scan's report with ``actions``
    filled in; scan again to confirm."""
    conn = _connect(path)
    try:
        report = _scan(conn, path)
        if not (report.unreadable or report.drift):
            return report
        if report.unreadable:
            target = quarantine or default_quarantine_path(path)
            _quarantine(conn, report, target)
            report.quarantine = target
            report.actions.append(f"wrote {len(report.unreadable)} unreadable rows to {target}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = 0
            for info in report.unreadable:
                # by rowid AND the row's own id and org: the scan ran before this transaction,
                # so the row may have been deleted since (through the API) and its rowid given
                # to a new, good row (memtrace before schema 8 handed out MAX(rowid) + 1)
                deleted += conn.execute(
                    f"DELETE FROM {info.table} WHERE rowid = ? AND id IS ? AND org_id IS ?",
                    (info.rowid, *info.stored_key),
                ).rowcount
            if report.unreadable:
                report.actions.append(f"deleted {deleted} unreadable rows")
            orphans = conn.execute(
                "DELETE FROM memory_tags WHERE (org_id, tag, memory_rowid) IN "
                f"(SELECT * FROM ({_ORPHAN_TAGS}))"
            ).rowcount
            added = conn.execute(
                f"INSERT OR IGNORE INTO memory_tags(org_id, tag, memory_rowid) {_MISSING_TAGS}"
            ).rowcount
            if orphans or added:
                report.actions.append(
                    f"memory_tags: removed {orphans} orphan entries, added {added} missing ones"
                )
            if _trigger_missing(conn):
                conn.execute(_DELETE_TRIGGER)
                report.actions.append("recreated trigger memories_ad")
            for table in ("memories_fts", "memories_trigram"):
                conn.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")
            report.actions.append("rebuilt memories_fts and memories_trigram")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return report
    finally:
        conn.close()


__all__ = ["DoctorReport", "UnreadableRowInfo", "default_quarantine_path", "repair", "scan"]
