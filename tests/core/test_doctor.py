"""``memtrace doctor`` core (stores/sqlite_doctor.py) on a store damaged by hand: unreadable rows
and index drift are found, and repaired (rows quarantined then removed, indexes rebuilt)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from memtrace_core import AsyncMemtrace, StoreError
from memtrace_core.stores import sqlite_doctor

NEW_ID = "mem_01J00000000000000000000NEW"


async def _damaged(engine: AsyncMemtrace, db_path: Path) -> dict[str, str]:
    """A store with one unreadable memory, agent and session, a memory missing from every
    index (written behind the store's back) and an orphan tag row."""
    mems = (
        await engine.add_memories(
            [{"agent_id": "w", "content": f"alpha note {i}", "tags": ["t"]} for i in range(4)]
        )
    ).memories
    agent = await engine.register_agent(name="broken")
    session = await engine.create_session(agent_id="w")
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            conn.execute("UPDATE memories SET metadata = '{bad' WHERE id = ?", (mems[1].id,))
            conn.execute("UPDATE agents SET config = '[' WHERE id = ?", (agent.id,))
            conn.execute("UPDATE sessions SET status = 'zombie' WHERE id = ?", (session.id,))
            conn.execute(
                "UPDATE memories SET content = CAST(X'6F6BFF' AS TEXT) WHERE id = ?", (mems[2].id,)
            )
            conn.execute(
                "INSERT INTO memories (id, org_id, agent_id, memory_type, event_type, content, "
                "tags, time, recorded_at) VALUES (?, 'org_default', 'w', 'episodic', 'general', "
                "'zebra crossing', '[\"hidden\"]', 1700000000000000, 1700000000000000)",
                (NEW_ID,),
            )
            conn.execute("INSERT INTO memory_tags VALUES ('org_default', 'ghost', 987654)")
    finally:
        conn.close()
    return {"memory": mems[1].id, "agent": agent.id, "session": session.id, "utf8": mems[2].id}


async def test_a_clean_store_is_ok(engine: AsyncMemtrace, db_path: Path) -> None:
    await engine.add_memories([{"agent_id": "w", "content": "x", "tags": ["a", "b"]}])
    report = sqlite_doctor.scan(str(db_path))
    assert report.ok, report.problems()
    assert report.problems() == []
    assert sqlite_doctor.repair(str(db_path)).actions == []


async def test_scan_finds_unreadable_rows_and_index_drift(
    engine: AsyncMemtrace, db_path: Path
) -> None:
    bad = await _damaged(engine, db_path)
    report = sqlite_doctor.scan(str(db_path))
    assert not report.ok
    assert {u.row_id for u in report.unreadable} == set(bad.values())
    by_id = {u.row_id: u.reason for u in report.unreadable}
    assert by_id[bad["memory"]] == "invalid JSON in metadata"
    assert by_id[bad["utf8"]] == "content is not valid UTF-8"
    reasons = {u.kind: u.reason for u in report.unreadable if u.row_id != bad["utf8"]}
    assert reasons["session"] == "unknown status 'zombie'"
    drift = "\n".join(report.drift)
    assert "memories_fts: 1 memories missing from the index" in drift
    assert "memories_trigram: 1 memories missing from the index" in drift
    assert "memories_fts does not match" in drift
    assert "memories_trigram does not match" in drift
    assert "1 tag entries missing" in drift
    assert "1 orphan entries" in drift
    assert report.file_errors == []
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False


async def test_repair_quarantines_removes_and_rebuilds(
    engine: AsyncMemtrace, db_path: Path, tmp_path: Path
) -> None:
    bad = await _damaged(engine, db_path)
    # before: the hidden memory is invisible to keyword search and tag filters
    assert (await engine.search_memories(query="zebra", since="2020-01-01")).count == 0
    assert (await engine.list_memories(tags=["hidden"], since="2020-01-01")).count == 0
    quarantine = tmp_path / "q.jsonl"
    report = sqlite_doctor.repair(str(db_path), quarantine=str(quarantine))
    assert report.quarantine == str(quarantine)
    assert any("rebuilt" in a for a in report.actions)
    saved = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert {(r["table"], r["id"]) for r in saved} == {
        ("memories", bad["memory"]),
        ("memories", bad["utf8"]),
        ("agents", bad["agent"]),
        ("sessions", bad["session"]),
    }
    utf8_row = next(r for r in saved if r["id"] == bad["utf8"])
    assert utf8_row["row"]["content"] == {"hex": "6f6bff", "invalid_utf8": True}
    memory_row = next(r for r in saved if r["table"] == "memories")
    assert memory_row["row"]["metadata"] == "{bad"
    assert memory_row["row"]["content"] == "alpha note 1"
    # after: clean, and every index serves the memory written behind the store's back
    assert sqlite_doctor.scan(str(db_path)).ok
    hits = await engine.search_memories(query="zebra", since="2020-01-01")
    assert [m.id for m in hits.results] == [NEW_ID]
    assert (await engine.search_memories(content_contains="ebra cross", since="2020-01-01")).count
    assert (await engine.list_memories(tags=["hidden"], since="2020-01-01")).count == 1
    assert (await engine.list_memories(tags=["t"])).count == 2
    assert (await engine.search_memories(query="alpha")).count == 2
    lines = [line async for line in engine.iter_export()]
    assert json.loads(lines[-1])["memories"] == 3
    # the quarantine file is never overwritten, and nothing is deleted without it
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE memories SET time = 'later' WHERE id = ?", (NEW_ID,))
    conn.close()
    with pytest.raises(FileExistsError):
        sqlite_doctor.repair(str(db_path), quarantine=str(quarantine))
    assert [u.row_id for u in sqlite_doctor.scan(str(db_path)).unreadable] == [NEW_ID]


async def test_scan_finds_stale_index_entries(engine: AsyncMemtrace, db_path: Path) -> None:
    """A memory deleted behind the store's back (trigger dropped) leaves index entries."""
    mem = await engine.add_memory(agent_id="w", content="ghost of a memory", tags=["g"])
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DROP TRIGGER memories_ad")
        conn.execute("DELETE FROM memories WHERE id = ?", (mem.id,))
    conn.close()
    drift = "\n".join(sqlite_doctor.scan(str(db_path)).drift)
    assert "memories_fts: 1 entries for memories that no longer exist" in drift
    assert "memories_trigram: 1 entries for memories that no longer exist" in drift
    assert "memory_tags: 1 orphan entries" in drift
    assert "trigger memories_ad is missing" in drift
    assert "recreated trigger memories_ad" in sqlite_doctor.repair(str(db_path)).actions
    assert sqlite_doctor.scan(str(db_path)).ok
    # deletes keep the indexes in sync again
    other = await engine.add_memory(agent_id="w", content="another ghost", tags=["g"])
    await engine.delete_memory(other.id)
    assert sqlite_doctor.scan(str(db_path)).ok


def test_refuses_a_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        sqlite_doctor.scan(str(tmp_path / "absent.db"))
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(StoreError, match="schema version 0"):
        sqlite_doctor.scan(str(other))


async def test_fix_never_deletes_a_good_row_that_took_a_freed_rowid(
    engine: AsyncMemtrace, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan runs before --fix's transaction. If the unreadable row is deleted meanwhile
    (through the API) and a new memory gets its rowid (MAX(rowid) + 1: what memtrace before
    schema 8 did, and an older process on the file still does), the fix must delete nothing,
    not the new memory."""
    first = await engine.add_memory(agent_id="w", content="old and fine")
    bad = await engine.add_memory(agent_id="w", content="about to break")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE memories SET metadata = '{bad' WHERE id = ?", (bad.id,))
    conn.close()
    stale = sqlite_doctor.scan(str(db_path))
    assert [u.row_id for u in stale.unreadable] == [bad.id]
    await engine.delete_memory(bad.id)  # the race: deleted through the API ...
    conn = sqlite3.connect(db_path)
    with conn:  # ... and an older memtrace's next rowid: MAX(rowid) + 1
        conn.execute("UPDATE memory_seq SET last = (SELECT MAX(rowid) FROM memories)")
    conn.close()
    good = await engine.add_memory(agent_id="w", content="brand new and good")  # ... rowid reused
    conn = sqlite3.connect(db_path)
    rowids = dict(conn.execute("SELECT id, rowid FROM memories").fetchall())
    conn.close()
    assert rowids[good.id] == stale.unreadable[0].rowid  # the rowid really was reused
    real_scan = sqlite_doctor._scan
    monkeypatch.setattr(sqlite_doctor, "_scan", lambda conn, path: stale)
    sqlite_doctor.repair(str(db_path), quarantine=str(db_path) + ".q.jsonl")
    monkeypatch.setattr(sqlite_doctor, "_scan", real_scan)
    assert (await engine.get_memory(good.id)).content == "brand new and good"
    assert (await engine.get_memory(first.id)).content == "old and fine"
