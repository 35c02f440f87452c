"""Defence in depth on reads (issue 7): one unreadable row (an older version's data, a manual
edit, a bug) never fails a whole list, search, context or stats — it is skipped, logged with its
org and id and counted — except in an export, which fails visibly naming the row. Rows are
damaged by hand in the real SQLite file."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, CorruptRowError, NotFoundError, StoreError
from memtrace_core.timeutil import MAX_US, MIN_US

DEEP = "[" * 300 + "]" * 300


class SQL(str):
    """A damaged value given as an SQL expression (e.g. text that is not valid UTF-8, which
    Python cannot bind)."""


BAD_UTF8 = SQL("CAST(X'68FF' AS TEXT)")

#: (column, damaged value) for a memory row: each makes the row unreadable in its own way.
MEMORY_DAMAGE: list[tuple[str, Any]] = [
    ("metadata", "{not json"),
    ("metadata", "[1, 2]"),  # valid JSON, wrong type
    ("metadata", '{"deep": ' + DEEP + "}"),  # too deep to serialise
    ("tags", '{"a": 1}'),
    ("tags", "[1, 2]"),
    ("content", b"\x00\xff"),  # a BLOB where text belongs
    ("content", BAD_UTF8),  # fails the whole query in sqlite3 ("Could not decode to UTF-8")
    ("metadata", BAD_UTF8),
    ("memory_type", "alien"),
    ("importance", "high"),
    ("time", MAX_US + 3600 * 1_000_000),  # "9999-12-31T23:59:59-14:00" as stored
    ("time", MIN_US - 1),
    ("time", "yesterday"),
    ("recorded_at", MAX_US + 1),
]


def damage(db_path: Path, table: str, row_id: str, column: str, value: Any) -> None:
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            if isinstance(value, SQL):
                changed = conn.execute(
                    f"UPDATE {table} SET {column} = {value} WHERE id = ?", (row_id,)
                ).rowcount
            else:
                changed = conn.execute(
                    f"UPDATE {table} SET {column} = ? WHERE id = ?", (value, row_id)
                ).rowcount
        assert changed == 1
    finally:
        conn.close()


async def _seed(engine: AsyncMemtrace, n: int = 9) -> list[str]:
    now = datetime.now(UTC)
    result = await engine.add_memories(
        [
            {
                "agent_id": "worker",
                "session_id": "sess_s1",
                "content": f"deploy step {i} finished",
                "tags": ["prod"],
                "metadata": {"i": i},
                "time": now - timedelta(minutes=n - i),
            }
            for i in range(n)
        ]
    )
    return [m.id for m in result.memories]  # oldest first


def _unreadable(engine: AsyncMemtrace) -> int:
    return int(engine.store.unreadable_rows)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("column", "value"), MEMORY_DAMAGE, ids=lambda v: str(v)[:20])
async def test_one_unreadable_memory_never_fails_a_read(
    engine: AsyncMemtrace,
    db_path: Path,
    column: str,
    value: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = await _seed(engine)
    bad = ids[4]
    good = [i for i in ids if i != bad]
    damage(db_path, "memories", bad, column, value)
    caplog.set_level(logging.WARNING, logger="memtrace.store")
    before = _unreadable(engine)

    # list (unfiltered, both orders, filtered, by ids via tags), skipping only the bad row
    assert [m.id for m in (await engine.list_memories(order="asc")).memories] == good
    assert [m.id for m in (await engine.list_memories()).memories] == good[::-1]
    assert [m.id for m in (await engine.list_memories(agent_id="worker", tags=["prod"])).memories][
        ::-1
    ] == good
    # pagination over the bad row stays exact: full pages, has_more true until the end
    seen: list[str] = []
    offset = 0
    while True:
        page = await engine.list_memories(order="asc", limit=3, offset=offset)
        seen.extend(m.id for m in page.memories)
        if not page.has_more:
            break
        assert page.count == 3
        offset += 3
    assert set(seen) == set(good)
    # search: ranked keyword, substring, filters only
    hits = await engine.search_memories(query="deploy step finished", limit=50)
    assert {m.id for m in hits.results} == set(good)
    # ranked pages stay full around the bad row too, and the offsets count readable rows
    ranked: list[str] = []
    for offset in range(0, 9, 3):
        page = await engine.search_memories(query="deploy step finished", limit=3, offset=offset)
        ranked.extend(m.id for m in page.results)
        assert page.count == (3 if offset < 6 else 2)
        assert page.has_more is (offset < 6)
    assert sorted(ranked) == sorted(good)
    assert {m.id for m in (await engine.search_memories(content_contains="STEP")).results} == set(
        good
    )
    assert (await engine.search_memories(tags=["prod"], limit=50)).count == len(good)
    # contexts, stats
    ctx = await engine.get_session_context("sess_s1", format="jsonl")
    assert ctx.memory_count == len(good)
    assert (await engine.get_agent_context("worker")).memory_count == len(good)
    stats = await engine.get_agent_stats("worker")
    assert stats.memory_count == len(ids)  # counted from the table, not read
    assert stats.last_active_at is not None
    # reported: logged with org and id, counted
    assert _unreadable(engine) > before
    messages = [r.getMessage() for r in caplog.records if r.name == "memtrace.store"]
    assert any(bad in m and "org_default" in m for m in messages), messages

    # get-by-id: a clear error naming the row (not a crash, not "not found")
    with pytest.raises(CorruptRowError) as info:
        await engine.get_memory(bad)
    assert bad in info.value.message
    assert "memtrace doctor" in info.value.message
    assert info.value.status_code == 500
    # export fails visibly, naming the row, instead of silently skipping it
    with pytest.raises(CorruptRowError) as info:
        async for _ in engine.iter_export():
            pass
    assert bad in info.value.message
    # and the row can be deleted by id
    await engine.delete_memory(bad)
    with pytest.raises(NotFoundError):
        await engine.delete_memory(bad)
    assert [line async for line in engine.iter_export()][-1].startswith('{"kind":"trailer"')


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("config", "{nope"),
        ("config", '{"d": ' + DEEP + "}"),
        ("created_at", MAX_US + 1),
        ("description", BAD_UTF8),
    ],
)
async def test_one_unreadable_agent_never_fails_the_list(
    engine: AsyncMemtrace, db_path: Path, column: str, value: Any
) -> None:
    bad = await engine.register_agent(name="broken", config={"a": 1})
    fine = await engine.register_agent(name="fine")
    await engine.remember("broken", "still recallable by name")
    damage(db_path, "agents", bad.id, column, value)
    assert [a.id for a in (await engine.list_agents()).agents] == [fine.id]
    # Reads that resolve the agent still work, by id and by name.
    assert (await engine.list_memories(agent_id="broken")).count == 1
    assert (await engine.get_agent_stats("broken")).memory_count == 1
    with pytest.raises(CorruptRowError) as info:
        await engine.get_agent(bad.id)
    assert bad.id in info.value.message
    with pytest.raises(CorruptRowError):
        async for _ in engine.iter_export():
            pass
    # it can be deleted, by name, with its memories
    await engine.delete_agent("broken", delete_memories=True)
    assert [a.id for a in (await engine.list_agents()).agents] == [fine.id]
    assert (await engine.list_memories(agent_id="broken")).count == 0
    with pytest.raises(NotFoundError):
        await engine.get_agent(bad.id)
    assert json.loads([line async for line in engine.iter_export()][-1])["agents"] == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("metadata", "{nope"),
        ("updated_at", MIN_US - 5),
        ("status", "alien"),
        ("created_at", "soon"),
        ("metadata", BAD_UTF8),
    ],
)
async def test_one_unreadable_session_never_fails_the_list(
    engine: AsyncMemtrace, db_path: Path, column: str, value: Any
) -> None:
    sessions = [await engine.create_session(agent_id="worker") for _ in range(5)]
    bad = sessions[2]
    damage(db_path, "sessions", bad.id, column, value)
    listed = await engine.list_sessions(limit=2)
    assert listed.count == 2
    assert listed.has_more
    page2 = await engine.list_sessions(limit=2, offset=2)
    all_ids = {s.id for s in listed.sessions} | {s.id for s in page2.sessions}
    rest = await engine.list_sessions(limit=100)
    assert {s.id for s in rest.sessions} == {s.id for s in sessions} - {bad.id}
    assert all_ids <= {s.id for s in rest.sessions}
    assert (await engine.list_sessions(agent_id="worker")).count == 4
    assert (await engine.get_agent_stats("worker")).session_count == 5
    with pytest.raises(CorruptRowError) as info:
        await engine.get_session(bad.id)
    assert bad.id in info.value.message
    with pytest.raises(CorruptRowError):
        async for _ in engine.iter_export():
            pass
    # deleting it by id works
    await engine.delete_session(bad.id)
    assert (await engine.list_sessions(limit=100)).count == 4
    with pytest.raises(NotFoundError):
        await engine.get_session(bad.id)


def test_corrupt_row_error_is_a_store_error() -> None:
    err = CorruptRowError("memory", "mem_x", "org_a", "invalid JSON in metadata")
    assert isinstance(err, StoreError)
    assert (err.kind, err.row_id, err.org_id) == ("memory", "mem_x", "org_a")
    assert err.to_dict()["error"] == err.message
