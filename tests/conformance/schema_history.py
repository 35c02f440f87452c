"""Schema history adapters: how the migration conformance test
(tests/conformance/test_schema_migrations.py) builds a store at each *earlier* schema version.

Upgrading a store in place is store-specific (SQLite counts ``PRAGMA user_version``, another
store has its own migration table), so the suite asks one adapter per URL scheme to make the
old stores, and checks what every store must then do the same way: open them with the current
code (``aconnect(url)``), read every row back with every field, find them by keyword and
substring, and take new writes. A scheme without an adapter fails that test (it does not skip):
a store that has shipped a schema must prove it can upgrade it.

The interface (:class:`SchemaHistory`)::

    class MyStoreHistory:
        def versions(self) -> list[int]:
            # every earlier schema version a store can be upgraded from (oldest first;
            # [] when the store has never shipped an older schema)
            return [1, 2, 3]

        async def build(self, url: str, version: int) -> None:
            # ``url`` names a fresh, empty store (from the URL template: {tmp} / {pg} already
            # filled in). Create its schema exactly as ``version`` did, and write the rows of
            # ``expected(version)`` the way that version wrote them (raw SQL, the store's own
            # client library: whatever that version's store did, index entries included).
            # Do not open the store with the current memtrace code here.
            ...

        def expected(self, version: int) -> Expected:
            # what reading the store back with the current code must give: every memory, as
            # a full memtrace_core.Memory (fields that version could not store take the
            # current code's defaults or backfills) in the order build() wrote them (the live
            # feed must return them in that order), and the orgs of its auth tables, if any
            ...

Register it for a scheme, either here (:func:`register`, as the built-in stores do at the end
of this module) or, for a store plugin, without touching this repository: an entry point in the
group ``memtrace.schema_history`` named after the scheme, whose object is the adapter (or a
class whose no-argument instance is)::

    # the plugin's pyproject.toml
    [project.entry-points."memtrace.schema_history"]
    mystore = "mystore_memtrace.testing:MyStoreHistory"

See docs/plugins.md, "Writing a store".
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from memtrace_core import Memory
from memtrace_core.stores.auth import OrgRecord
from memtrace_core.timeutil import from_us

ENTRY_POINT_GROUP = "memtrace.schema_history"


@dataclass(frozen=True)
class Expected:
    """What a store built at an earlier version holds, read with the current code."""

    memories: list[Memory]
    orgs: list[OrgRecord] = field(default_factory=list)


@runtime_checkable
class SchemaHistory(Protocol):
    """Builds stores at earlier schema versions (see the module docstring)."""

    def versions(self) -> list[int]: ...

    async def build(self, url: str, version: int) -> None: ...

    def expected(self, version: int) -> Expected: ...


HISTORIES: dict[str, SchemaHistory] = {}


def register(scheme: str, history: SchemaHistory) -> None:
    """Use ``history`` for the stores of URL scheme ``scheme``."""
    HISTORIES[scheme] = history


def history_for(scheme: str) -> SchemaHistory | None:
    """The adapter of ``scheme``: registered here, else from an installed entry point."""
    if scheme in HISTORIES:
        return HISTORIES[scheme]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            obj = ep.load()
            history = obj() if isinstance(obj, type) else obj
            register(scheme, history)
            return history
    return None


def missing_message(scheme: str) -> str:
    return (
        f"no schema-history adapter for {scheme!r} stores: the conformance suite checks that a "
        f"store opens (and upgrades) every earlier schema version it has shipped. Register one "
        f"(tests/conformance/schema_history.py: SchemaHistory with versions(), build(url, "
        f"version) and expected(version)) through the entry point group "
        f"{ENTRY_POINT_GROUP!r} named {scheme!r}, or with schema_history.register({scheme!r}, "
        f"...); a store that never shipped an older schema returns [] from versions(). "
        f"See docs/plugins.md, 'Writing a store'."
    )


# -- SQLite -------------------------------------------------------------------------------------

T = 1_700_000_000_000_000  # µs: 2023-11-14
DAY = 86_400_000_000
FAR = 4_102_444_800_000_000  # 2100-01-01: an expiry that never comes in a test

#: Rows as the stores of every version wrote them (``since``: the first version that could).
#: ``superseded_until`` is what version 4+ kept on a superseded row (its successor's expiry).
_SQLITE_ROWS: list[dict[str, Any]] = [
    {"since": 1, "id": "mem_01HQ0000000000000000000001", "org_id": "org_default",
     "agent_id": "legacy_bot", "session_id": "sess_old", "memory_type": "episodic",
     "event_type": "deploy", "content": "Legacy deployment of the billing service",
     "metadata": {"env": "prod", "n": [1, None]}, "tags": ["prod", "billing"],
     "dedup_key": "k1", "importance": 0.8, "parent_id": None, "time": T,
     "recorded_at": T + 5_000_000},
    {"since": 1, "id": "mem_01HQ0000000000000000000002", "org_id": "org_default",
     "agent_id": "legacy_bot", "session_id": None, "memory_type": "decision",
     "event_type": "decision", "content": "Chose PostgreSQL for invoices ✓",
     "metadata": None, "tags": None, "dedup_key": "k2", "importance": None,
     "parent_id": "mem_01HQ0000000000000000000001", "time": T + 100_000_000,
     "recorded_at": T + 100_000_000},
    {"since": 1, "id": "mem_01HQ0000000000000000000003", "org_id": "org_other",
     "agent_id": "legacy_bot", "session_id": None, "memory_type": "episodic",
     "event_type": "general", "content": "Other org billing note: ÄRGER", "metadata": None,
     "tags": ["prod"], "dedup_key": "k3", "importance": 0.1, "parent_id": None,
     "time": T + 200_000_000, "recorded_at": T + 200_000_000},
    {"since": 4, "id": "mem_01HQ0000000000000000000004", "org_id": "org_default",
     "agent_id": "legacy_bot", "session_id": None, "memory_type": "entity",
     "event_type": "general", "content": "Office address Mainstreet", "metadata": None,
     "tags": ["addr"], "dedup_key": "k4", "importance": None, "parent_id": None,
     "time": T + 300_000_000, "recorded_at": T + 300_000_000,
     "superseded_by": "mem_01HQ0000000000000000000005", "superseded_at": T + 400_000_000,
     "superseded_until": FAR},
    {"since": 4, "id": "mem_01HQ0000000000000000000005", "org_id": "org_default",
     "agent_id": "legacy_bot", "session_id": None, "memory_type": "entity",
     "event_type": "general", "content": "Office address Oakavenue", "metadata": None,
     "tags": ["addr"], "dedup_key": "k5", "importance": None, "parent_id": None,
     "time": T + 400_000_000, "recorded_at": T + 400_000_000, "expires_at": FAR,
     "supersedes": "mem_01HQ0000000000000000000004"},
    {"since": 5, "id": "mem_01HQ0000000000000000000006", "org_id": "org_default",
     "agent_id": "legacy_bot", "session_id": None, "memory_type": "entity",
     "event_type": "store_item", "content": "Prefers darkmode everywhere", "metadata": None,
     "tags": None, "dedup_key": "k6", "importance": None, "parent_id": None,
     "time": T + 500_000_000, "recorded_at": T + 500_000_000, "namespace": ["users", "u1"],
     "key": "prefs", "key_created_at": T + 500_000_000 - DAY},
]  # fmt: skip

#: The columns each migration added to ``memories`` (version → columns).
_SQLITE_COLUMNS = {
    1: ["id", "org_id", "agent_id", "session_id", "memory_type", "event_type", "content",
        "metadata", "tags", "dedup_key", "importance", "parent_id", "time", "recorded_at"],
    4: ["expires_at", "supersedes", "superseded_by", "superseded_at", "superseded_until"],
    5: ["namespace", "key"],
    6: ["key_created_at"],
    7: ["payload"],
}  # fmt: skip

_SQLITE_ORG = OrgRecord(id="org_0123456789abcdef01234567", name="Legacy Org ✓", created_at=T)


def _sqlite_path(url: str) -> str:
    path = unquote(urlsplit(url).path)
    return path[1:] if path.startswith("/") else path


def _at(row: dict[str, Any], name: str) -> datetime | None:
    return None if row.get(name) is None else from_us(row[name])


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class SQLiteHistory:
    """Every SQLite schema before the current one: ``migrate(conn, target=version)`` creates
    it (the migrations are the store's own definition of each version) and the rows are
    written with that version's columns and index entries, as its store wrote them."""

    def versions(self) -> list[int]:
        from memtrace_core.stores.sqlite import SCHEMA_VERSION

        return list(range(1, SCHEMA_VERSION))

    async def build(self, url: str, version: int) -> None:
        from memtrace_core.stores.sqlite import encode_namespace, migrate

        conn = sqlite3.connect(_sqlite_path(url), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            assert migrate(conn, target=version) == version
            assert conn.execute("PRAGMA user_version").fetchone()[0] == version
            columns = [c for v, cols in _SQLITE_COLUMNS.items() if v <= version for c in cols]
            conn.execute("BEGIN")
            for rowid, row in enumerate(_SQLITE_ROWS, start=1):
                if row["since"] > version:
                    continue
                values = {
                    **row,
                    "metadata": _dumps(row["metadata"]),
                    "tags": _dumps(row["tags"]),
                    "namespace": encode_namespace(row["namespace"]) if "namespace" in row else None,
                }
                names = ", ".join(["rowid", *(f'"{c}"' for c in columns)])
                marks = ", ".join("?" * (len(columns) + 1))
                conn.execute(
                    f"INSERT INTO memories ({names}) VALUES ({marks})",
                    [rowid, *(values.get(c) for c in columns)],
                )
                # the index entries, written by the store (deletes are kept by a trigger)
                conn.execute(
                    "INSERT INTO memories_fts(rowid, content, agent_id, event_type, tags) "
                    "VALUES (?,?,?,?,?)",
                    (rowid, row["content"], row["agent_id"], row["event_type"], values["tags"]),
                )
                if version >= 2:
                    conn.execute(
                        "INSERT INTO memories_trigram(rowid, content) VALUES (?,?)",
                        (rowid, row["content"]),
                    )
                for tag in row["tags"] or ():
                    conn.execute(
                        "INSERT INTO memory_tags(org_id, tag, memory_rowid) VALUES (?,?,?)",
                        (row["org_id"], tag, rowid),
                    )
            if version >= 3:
                org = _SQLITE_ORG
                conn.execute(
                    "INSERT INTO orgs (id, name, created_at) VALUES (?,?,?)",
                    (org.id, org.name, org.created_at),
                )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def expected(self, version: int) -> Expected:
        memories = []
        for row in _SQLITE_ROWS:
            if row["since"] > version:
                continue
            keyed = row.get("key") is not None
            first = row.get("key_created_at") if version >= 6 else row["time"]  # v6 backfills

            memories.append(
                Memory(
                    id=row["id"],
                    org_id=row["org_id"],
                    agent_id=row["agent_id"],
                    session_id=row["session_id"],
                    memory_type=row["memory_type"],
                    event_type=row["event_type"],
                    content=row["content"],
                    metadata=row["metadata"],
                    tags=row["tags"],
                    dedup_key=row["dedup_key"],
                    importance=row["importance"],
                    parent_id=row["parent_id"],
                    time=from_us(row["time"]),
                    recorded_at=from_us(row["recorded_at"]),
                    expires_at=_at(row, "expires_at"),
                    supersedes=row.get("supersedes"),
                    superseded_by=row.get("superseded_by"),
                    superseded_at=_at(row, "superseded_at"),
                    namespace=row.get("namespace"),
                    key=row.get("key"),
                    key_created_at=from_us(first) if keyed and first is not None else None,
                    payload=None,
                )
            )
        return Expected(memories=memories, orgs=[_SQLITE_ORG] if version >= 3 else [])


register("sqlite", SQLiteHistory())

# -- PostgreSQL -----------------------------------------------------------------------------------


class PostgresHistory:
    """Every PostgreSQL schema before the current one: ``migrate(conn, target=version)``
    creates it (the migrations are the store's own definition of each version), and the rows
    are written by the module's own row writer on that raw connection (``_write_rows``: the
    text vector and the per-org text statistics, as every version wrote them; its INSERT names
    its columns, none added after version 1), the supersession links by SQL. That is not
    opening the store with the current code: no migration runs before the test's ``aconnect``.
    Version 1 holds every field the SQLite rows of version 7 have."""

    def versions(self) -> list[int]:
        from memtrace_core.stores.postgres import SCHEMA_VERSION

        return list(range(1, SCHEMA_VERSION))

    async def build(self, url: str, version: int) -> None:
        import asyncpg

        from memtrace_core.stores.base import MemoryRecord
        from memtrace_core.stores.postgres import _Effects, _write_rows, migrate

        assert version == 1, version
        conn = await asyncpg.connect(url)
        try:
            # the harness's databases are copies of a migrated template: start from empty
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            assert await migrate(conn, target=version) == version
            records = [
                MemoryRecord(
                    **{
                        k: (tuple(v) if k == "namespace" and v is not None else v)
                        for k, v in row.items()
                        if k in MemoryRecord.__dataclass_fields__
                    }
                )
                for row in _SQLITE_ROWS
            ]
            async with conn.transaction():
                effects = _Effects()
                await _write_rows(conn, effects, records)
                await effects.apply(conn)
                for row in _SQLITE_ROWS:
                    if "superseded_by" in row:
                        await conn.execute(
                            "UPDATE memories SET superseded_by = $1, superseded_at = $2, "
                            "superseded_until = $3 WHERE org_id = $4 AND id = $5",
                            row["superseded_by"],
                            row["superseded_at"],
                            row["superseded_until"],
                            row["org_id"],
                            row["id"],
                        )
                org = _SQLITE_ORG
                await conn.execute(
                    "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)",
                    org.id,
                    org.name,
                    org.created_at,
                )
        finally:
            await conn.close()

    def expected(self, version: int) -> Expected:
        return SQLiteHistory().expected(7)


register("postgresql", PostgresHistory())


class ArcHistory:
    """The Arc store has shipped one layout (the spool's table, Arc's row columns in
    ``stores/arc.py::ARC_COLUMNS``); its metadata store is a SQLite or PostgreSQL store with
    its own history, tested under its own scheme. No earlier version to upgrade from yet."""

    def versions(self) -> list[int]:
        return []

    async def build(self, url: str, version: int) -> None:
        raise AssertionError("no earlier Arc store layout to build")

    def expected(self, version: int) -> Expected:
        raise AssertionError("no earlier Arc store layout")


register("arc", ArcHistory())
