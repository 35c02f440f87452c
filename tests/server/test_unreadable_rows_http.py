"""Unreadable rows over a real socket (issue 7): reads serve the rest, /metrics counts the
skipped rows, get-by-id is a clear 500, delete works, an export fails visibly."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from memtrace_core import aconnect

API = "/api/v1"


def _db_path(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


def _damage_memory(db_url: str, memory_id: str) -> None:
    conn = sqlite3.connect(_db_path(db_url))
    try:
        with conn:
            n = conn.execute(
                "UPDATE memories SET metadata = '{broken' WHERE id = ?", (memory_id,)
            ).rowcount
        assert n == 1
    finally:
        conn.close()


async def _write(http: httpx.AsyncClient, n: int) -> list[str]:
    """``n`` memories, oldest first, each line of the export a few hundred bytes."""
    base = datetime(2025, 1, 1, tzinfo=UTC)
    ids: list[str] = []
    for start in range(0, n, 500):
        items = [
            {
                "agent_id": "bulk",
                "content": f"memory {i} " + "padding " * 20,
                "time": (base + timedelta(seconds=i)).isoformat(),
            }
            for i in range(start, min(n, start + 500))
        ]
        r = await http.post(f"{API}/memories", json={"memories": items})
        assert r.status_code == 201, r.text
        ids.extend(m["id"] for m in r.json()["memories"])
    return ids


async def test_reads_skip_an_unreadable_row_and_metrics_count_it(
    http: httpx.AsyncClient, db_url: str
) -> None:
    ids = await _write(http, 6)
    bad = ids[2]
    _damage_memory(db_url, bad)
    r = await http.get(f"{API}/memories", params={"since": "2000-01-01", "order": "asc"})
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["memories"]] == [i for i in ids if i != bad]
    r = await http.post(f"{API}/search", json={"query": "memory padding", "since": "2000-01-01"})
    assert r.status_code == 200
    assert bad not in {m["id"] for m in r.json()["results"]}
    assert r.json()["count"] == 5
    metrics = (await http.get("/metrics")).text
    line = next(x for x in metrics.splitlines() if x.startswith("memtrace_unreadable_rows_total"))
    assert int(line.split()[1]) >= 2
    r = await http.get(f"{API}/memories/{bad}")
    assert r.status_code == 500
    assert bad in r.json()["error"]
    assert "memtrace doctor" in r.json()["error"]
    # Without any memory line sent yet, a failing export is a plain error response.
    r = await http.get(f"{API}/export")
    assert r.status_code == 500
    assert bad in r.json()["error"]
    assert (await http.delete(f"{API}/memories/{bad}")).status_code == 204
    assert (await http.get(f"{API}/memories/{bad}")).status_code == 404
    assert (await http.delete(f"{API}/memories/{bad}")).status_code == 404


async def test_the_cli_export_of_a_damaged_store_fails_and_leaves_no_file(
    db_url: str, admin_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from memtrace_server.cli import main

    engine = await aconnect(db_url)
    try:
        ids = [(await engine.remember("a", f"note {i}")).id for i in range(3)]
    finally:
        await engine.close()
    _damage_memory(db_url, ids[1])
    out = tmp_path / "backup.jsonl"
    code = await asyncio.to_thread(main, ["export", "--store", db_url, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert ids[1] in err
    assert not out.exists()
    assert not list(tmp_path.glob(".memtrace-export-*"))
