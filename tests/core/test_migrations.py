"""Schema migrations: a version-1 database is upgraded in place; a newer one is refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from memtrace_core import PluginRegistry, StoreError, connect
from memtrace_core.stores.sqlite import MIGRATIONS, SCHEMA_VERSION, migrate

OLD_ROWS = [
    # id, org, agent, session, type, event, content, tags, dedup_key, importance, time (us)
    ("mem_01HQ0000000000000000000001", "org_default", "legacy_bot", "sess_old", "episodic",
     "deploy", "Legacy deployment of the billing service", '["prod"]', "k1", 0.8,
     1_700_000_000_000_000),
    ("mem_01HQ0000000000000000000002", "org_default", "legacy_bot", None, "decision",
     "decision", "Chose PostgreSQL for invoices", None, "k2", None, 1_700_000_100_000_000),
    ("mem_01HQ0000000000000000000003", "org_other", "legacy_bot", None, "episodic",
     "general", "Other org billing note", None, "k3", None, 1_700_000_200_000_000),
]  # fmt: skip


def _make_v1(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        assert migrate(conn, target=1) == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "memories_fts" in tables
        assert "memories_trigram" not in tables  # added by a later migration
        # Rows as the version-1 store wrote them: the memory, its full-text entry, its tags.
        for row in OLD_ROWS:
            cur = conn.execute(
                "INSERT INTO memories (id, org_id, agent_id, session_id, memory_type, event_type, "
                "content, metadata, tags, dedup_key, importance, parent_id, time, recorded_at) "
                "VALUES (?,?,?,?,?,?,?,NULL,?,?,?,NULL,?,?)",
                (*row, row[-1]),
            )
            rowid = cur.lastrowid
            conn.execute(
                "INSERT INTO memories_fts(rowid, content, agent_id, event_type, tags) "
                "VALUES (?,?,?,?,?)",
                (rowid, row[6], row[2], row[5], row[7]),
            )
            for tag in json.loads(row[7]) if row[7] else []:
                conn.execute(
                    "INSERT INTO memory_tags(org_id, tag, memory_rowid) VALUES (?,?,?)",
                    (row[1], tag, rowid),
                )
    finally:
        conn.close()


def test_v1_database_is_upgraded_and_old_rows_are_searchable(
    db_path: Path, db_url: str, registry: PluginRegistry
) -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2
    _make_v1(db_path)
    with connect(db_url, plugins=registry) as mt:
        by_keyword = {m.id for m in mt.search_memories(query="billing").results}
        assert OLD_ROWS[0][0] in by_keyword
        assert OLD_ROWS[2][0] not in by_keyword  # another org
        assert OLD_ROWS[1][0] in {m.id for m in mt.search_memories(query="postgresql").results}
        assert [m.id for m in mt.search_memories(content_contains="POSTGRESQL").results] == [
            OLD_ROWS[1][0]
        ]
        assert [m.id for m in mt.search_memories(content_contains="vo").results] == [OLD_ROWS[1][0]]
        assert [m.id for m in mt.list_memories(tags=["prod"]).memories] == [OLD_ROWS[0][0]]
        old = mt.get_memory(OLD_ROWS[0][0])
        assert old.content == "Legacy deployment of the billing service"
        assert old.importance == 0.8
        assert old.time.timestamp() == 1_700_000_000
        # New writes work on the upgraded schema and are found by both indexes.
        new = mt.remember("legacy_bot", "Fresh billing memory after the upgrade")
        assert {m.id for m in mt.search_memories(query="billing").results} >= {
            OLD_ROWS[0][0],
            new.id,
        }
        assert mt.search_memories(content_contains="fresh billing").count == 1
        other = mt.with_org("org_other")
        assert [m.id for m in other.search_memories(content_contains="billing").results] == [
            OLD_ROWS[2][0]
        ]
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO memories_trigram(memories_trigram) VALUES('integrity-check')")
        conn.execute("INSERT INTO memories_fts(memories_fts) VALUES('integrity-check')")
    finally:
        conn.close()
    # Reopening an up-to-date database is a no-op.
    with connect(db_url, plugins=registry) as mt:
        assert mt.list_memories().count == 3


def test_migrate_is_idempotent_and_stepwise(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "steps.db", isolation_level=None)
    try:
        assert migrate(conn, target=1) == 1
        assert migrate(conn, target=1) == 1
        assert migrate(conn) == SCHEMA_VERSION
        assert migrate(conn) == SCHEMA_VERSION
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_newer_schema_is_refused_clearly(
    db_path: Path, db_url: str, registry: PluginRegistry
) -> None:
    with connect(db_url, plugins=registry) as mt:
        mt.remember("agent_1", "written by a future version")
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        connect(db_url, plugins=registry)
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "newer" in message
    assert info.value.status_code == 503
    # The database was not touched.
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 1
    finally:
        conn.close()


def test_not_a_database_is_a_store_error(tmp_path: Path, registry: PluginRegistry) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(StoreError):
        connect(f"sqlite:///{path}", plugins=registry)


def test_v5_keyed_rows_get_the_time_of_their_first_version(
    db_path: Path, db_url: str, registry: PluginRegistry
) -> None:
    """Migration 6 backfills ``key_created_at`` of keyed rows written by version 5 (their own
    event time: version 5 kept no earlier one), and a later write of the key inherits it."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        assert migrate(conn, target=5) == 5
        conn.execute(
            "INSERT INTO memories (id, org_id, agent_id, memory_type, event_type, content, "
            "time, recorded_at, namespace, key) VALUES (?,?,?,?,?,?,?,?,?,?)",
            ("mem_01HQ0000000000000000000009", "org_default", "bot", "entity", "store_item",
             "v1", 1_700_000_000_000_000, 1_700_000_000_000_000, '["users"]', "k"),
        )  # fmt: skip
    finally:
        conn.close()
    with connect(db_url, plugins=registry) as mt:
        old = mt.get_memory_by_key(["users"], "k")
        assert old.key_created_at == old.time
        new = mt.add_memory(agent_id="bot", content="v2", namespace=["users"], key="k")
        assert new.supersedes == old.id
        assert new.key_created_at == old.time
        assert mt.remember("bot", "unkeyed").key_created_at is None


def test_v6_rows_read_without_a_payload_and_new_rows_keep_theirs(
    db_path: Path, db_url: str, registry: PluginRegistry
) -> None:
    """Migration 7 adds the ``payload`` column: rows of version 6 read with none; a new write
    stores its payload as compact JSON text, verbatim."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        assert migrate(conn, target=6) == 6
        conn.execute(
            "INSERT INTO memories (id, org_id, agent_id, memory_type, event_type, content, "
            "time, recorded_at) VALUES (?,?,?,?,?,?,?,?)",
            ("mem_01HQ0000000000000000000010", "org_default", "bot", "episodic", "general",
             "old row", 1_700_000_000_000_000, 1_700_000_000_000_000),
        )  # fmt: skip
    finally:
        conn.close()
    with connect(db_url, plugins=registry) as mt:
        assert mt.get_memory("mem_01HQ0000000000000000000010").payload is None
        new = mt.add_memory(agent_id="bot", content="new row", payload={"a": [1, None, "é"]})
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 7
        stored = conn.execute("SELECT payload FROM memories WHERE id = ?", (new.id,)).fetchone()
        assert stored == ('{"a":[1,null,"é"]}',)
    finally:
        conn.close()
