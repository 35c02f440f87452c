"""Deletion is real: after every kind of delete, no API and no index returns the memory."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memtrace_core import Memtrace, NotFoundError, PluginRegistry, connect

MARK = "zqxjvort"  # a word that appears nowhere else (and that porter leaves alone)


@pytest.fixture
def store(db_url: str, registry: PluginRegistry) -> Iterator[Memtrace]:
    with connect(db_url, plugins=registry) as handle:
        yield handle


def _seed(mt: Memtrace) -> dict[str, str]:
    """Two memories carrying the marker (the victim and a neighbour in another org) plus
    unrelated ones that must survive."""
    agent = mt.register_agent(name="victim_agent")
    session = mt.create_session(agent_id="victim_agent")
    victim = mt.remember(
        "victim_agent",
        f"secret {MARK} payload with Ünïcode",
        session_id=session.id,
        tags=["gdpr_tag", "shared"],
        event_type="error",
    )
    keep = mt.remember("bystander", "ordinary memory about deploys", tags=["shared"])
    other_org = mt.with_org("org_neighbour")
    neighbour = other_org.remember("victim_agent", f"neighbour {MARK} text", tags=["gdpr_tag"])
    return {
        "victim": victim.id,
        "keep": keep.id,
        "neighbour": neighbour.id,
        "session": session.id,
        "agent": agent.id,
    }


def _raw(db_path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


DELETES: dict[str, Callable[[Memtrace, dict[str, str]], None]] = {
    "single": lambda mt, ids: mt.delete_memory(ids["victim"]),
    "by_tag": lambda mt, ids: mt.delete_memories(tags=["gdpr_tag"]) and None,
    "by_session": lambda mt, ids: mt.delete_memories(session_id=ids["session"]) and None,
    "by_agent_name": lambda mt, ids: mt.delete_memories(agent_id="victim_agent") and None,
    "by_agent_id": lambda mt, ids: mt.delete_memories(agent_id=ids["agent"]) and None,
    "by_event_type": lambda mt, ids: mt.delete_memories(event_types=["error"]) and None,
    "session_delete": lambda mt, ids: mt.delete_session(ids["session"], delete_memories=True),
    "agent_delete": lambda mt, ids: mt.delete_agent("victim_agent", delete_memories=True),
    "all_memories": lambda mt, ids: mt.delete_memories(all_memories=True) and None,
    "org_purge": lambda mt, ids: mt.purge_org() and None,
}


@pytest.mark.parametrize("how", list(DELETES))
def test_deleted_memory_leaves_no_trace(store: Memtrace, db_path: Path, how: str) -> None:
    ids = _seed(store)
    # Before: every access path finds the victim.
    assert store.get_memory(ids["victim"]).id == ids["victim"]
    assert [m.id for m in store.search_memories(query=MARK).results] == [ids["victim"]]
    assert [m.id for m in store.search_memories(content_contains="ÜN").results] == [ids["victim"]]
    assert _raw(db_path, "SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH ?", MARK) == [
        (2,)
    ]

    DELETES[how](store, ids)

    with pytest.raises(NotFoundError):
        store.get_memory(ids["victim"])
    assert ids["victim"] not in {m.id for m in store.list_memories(limit=1000).memories}
    assert store.search_memories(query=MARK).count == 0
    assert store.search_memories(query=f"secret {MARK} payload").count == 0
    assert store.search_memories(content_contains=MARK).count == 0
    assert store.search_memories(content_contains="ünïcode").count == 0
    assert store.search_memories(content_contains="ÜN").count == 0  # < 3 chars, non-ASCII
    assert store.search_memories(content_contains="payload").count == 0
    assert store.list_memories(tags=["gdpr_tag"]).count == 0
    try:
        assert MARK not in store.get_agent_context("victim_agent").context
    except NotFoundError:  # the agent had no other memory and is not registered
        assert how in ("agent_delete", "org_purge", "filter_delete")
    try:
        assert MARK not in store.get_session_context(ids["session"]).context
    except NotFoundError:
        assert how in ("session_delete", "org_purge")
    assert all(MARK not in line for line in store.iter_export())

    # The indexes hold no trace: only the neighbour (another org) still has the marker.
    neighbour_rowid = _raw(db_path, "SELECT rowid FROM memories WHERE id = ?", ids["neighbour"])
    assert (
        _raw(db_path, "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?", MARK)
        == neighbour_rowid
    )
    assert (
        _raw(db_path, "SELECT rowid FROM memories_trigram WHERE content LIKE ?", f"%{MARK}%")
        == neighbour_rowid
    )
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, memories_fts, 'row')")
        assert conn.execute("SELECT doc FROM vocab WHERE term = ?", (MARK,)).fetchall() == [(1,)]
        assert conn.execute("SELECT doc FROM vocab WHERE term = 'payload'").fetchall() == []
        assert conn.execute("SELECT doc FROM vocab WHERE term = 'secret'").fetchall() == []
        conn.execute(
            "CREATE VIRTUAL TABLE temp.trivocab USING fts5vocab(main, memories_trigram, 'row')"
        )
        for i in range(len(MARK) - 2):  # each trigram of the marker: the neighbour's only
            gram = MARK[i : i + 3]
            rows = conn.execute("SELECT doc FROM trivocab WHERE term = ?", (gram,)).fetchall()
            assert rows == [(1,)]
        assert conn.execute("SELECT doc FROM trivocab WHERE term = 'pay'").fetchall() == []
        conn.execute("INSERT INTO memories_fts(memories_fts) VALUES('integrity-check')")
        conn.execute("INSERT INTO memories_trigram(memories_trigram) VALUES('integrity-check')")
        tags = conn.execute(
            "SELECT t.org_id, t.tag FROM memory_tags t LEFT JOIN memories m "
            "ON m.rowid = t.memory_rowid WHERE m.rowid IS NULL"
        ).fetchall()
        assert tags == []  # no orphaned tag rows
        gdpr = conn.execute("SELECT org_id FROM memory_tags WHERE tag = 'gdpr_tag'").fetchall()
        assert gdpr == [("org_neighbour",)]
    finally:
        conn.close()

    # Unrelated memories survive unless the delete covered the whole org.
    if how in ("all_memories", "org_purge"):
        with pytest.raises(NotFoundError):
            store.get_memory(ids["keep"])
    else:
        assert store.get_memory(ids["keep"]).id == ids["keep"]
    assert store.with_org("org_neighbour").get_memory(ids["neighbour"]).id == ids["neighbour"]
