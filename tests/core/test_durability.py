"""Durability: every write acknowledged before a SIGKILL is still there after reopening, and the
database and its full-text indexes are consistent."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from memtrace_core import Memtrace

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from memtrace_core import PluginRegistry, aconnect

    async def main() -> None:
        mt = await aconnect(sys.argv[1], plugins=PluginRegistry(load_entry_points=False))
        print("ready", flush=True)
        n = 0

        async def one(i: int) -> None:
            m = await mt.remember(
                f"agent_{i % 3}", f"durable memory {i} about deployments", tags=[f"t{i % 5}"],
                session_id="sess_dur",
            )
            print(m.id, flush=True)  # acknowledged: remember() returned

        while True:  # runs until killed; several writes in flight at any time
            await asyncio.gather(*(one(n + k) for k in range(8)))
            n += 8

    asyncio.run(main())
    """
)


def test_acknowledged_writes_survive_sigkill(tmp_path: Path, db_path: Path, mt: Memtrace) -> None:
    mt.close()  # the fixture created the schema; the writer owns the file from here
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), f"sqlite:///{db_path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[str] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        while len(acknowledged) < 300:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "writer died"
            acknowledged.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream
        # Lines already written to the pipe were acknowledged before the kill, too.
        acknowledged += [line.strip() for line in proc.stdout if line.strip()]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 300
    assert all(a.startswith("mem_") for a in acknowledged)

    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO memories_fts(memories_fts) VALUES('integrity-check')")
        conn.execute("INSERT INTO memories_trigram(memories_trigram) VALUES('integrity-check')")
        stored = {row[0] for row in conn.execute("SELECT id FROM memories")}
        fts_rows = conn.execute(
            "SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH 'durable'"
        ).fetchone()[0]
        tag_rows = conn.execute("SELECT COUNT(*) FROM memory_tags").fetchone()[0]
    finally:
        conn.close()
    assert set(acknowledged) <= stored
    assert fts_rows == len(stored)
    assert tag_rows == len(stored)

    from memtrace_core import PluginRegistry, connect

    with connect(f"sqlite:///{db_path}", plugins=PluginRegistry(load_entry_points=False)) as again:
        for mem_id in acknowledged:
            assert again.get_memory(mem_id).id == mem_id
        found = again.search_memories(query="durable deployments", limit=1000)
        assert found.count == min(len(stored), 1000)
        assert again.search_memories(content_contains="durable memory", limit=1000).count == min(
            len(stored), 1000
        )
        # The store is writable after the crash.
        assert again.remember("agent_0", "after the crash").content == "after the crash"
