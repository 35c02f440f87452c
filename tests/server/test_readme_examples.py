"""The README's copy-paste Python examples run as written, in a fresh directory, the way a
new user runs them: the library quickstart twice in a row (the second run meets only
duplicates and must not print a traceback), the async example, and the server example
against a real server on a socket."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from memtrace_server.testing import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of the README section titled ``section`` (up to the next
    heading of the same or a higher level)."""
    text = README.read_text()
    match = re.search(rf"^(#+) {re.escape(section)}\n(.*?)(?=^#{{1,2}} |\Z)", text, re.M | re.S)
    assert match, f"README has no section {section!r}"
    return re.findall(r"```python\n(.*?)```", match.group(2), re.S)


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_library_quickstart_runs_twice_in_a_row(tmp_path: Path) -> None:
    blocks = python_blocks("Library quickstart (no server)")
    assert len(blocks) == 3
    sync, more, async_example = blocks
    script = sync + more
    first = run(script, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert "2 stored, 0 duplicates skipped" in first.stdout
    assert "# Session Context" in first.stdout or "rollout-42" in first.stdout
    second = run(script, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert "already remembered: mem_" in second.stdout
    assert "0 stored, 2 duplicates skipped" in second.stdout
    wrapped = "import asyncio\n\nasync def main():\n" + textwrap.indent(async_example, "    ")
    for _ in range(2):
        done = run(wrapped + "\nasyncio.run(main())\n", tmp_path)
        assert done.returncode == 0, done.stderr
        assert "memories in the last 2 hours" in done.stdout


def test_the_server_example_runs_against_a_server(
    live: LiveServer, admin_key: str, tmp_path: Path
) -> None:
    (block,) = [b for b in python_blocks("The server") if "connect(" in b]
    assert 'connect("http://127.0.0.1:9100", api_key="mtk_...")' in block
    code = block.replace("http://127.0.0.1:9100", live.url).replace("mtk_...", admin_key)
    done = run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    listed = run(
        "from memtrace_core import connect\n"
        f"mt = connect({live.url!r}, api_key={admin_key!r})\n"
        "print([m.content for m in mt.recall('deploy-bot').memories])\n",
        tmp_path,
    )
    assert "Rolled back api v1.4.2" in listed.stdout, listed.stderr


def test_the_watch_example_prints_the_next_decision(
    live: LiveServer, admin_key: str, tmp_path: Path
) -> None:
    """The README's watch example, after its connect example, against a real server: it
    waits for the planner's next decision, prints it and stops."""
    blocks = python_blocks("The server")
    (connect_block,) = [b for b in blocks if "connect(" in b]
    (watch_block,) = [b for b in blocks if ".watch(" in b]
    code = (connect_block + watch_block).replace("http://127.0.0.1:9100", live.url)
    proc = subprocess.Popen(
        [sys.executable, "-c", code.replace("mtk_...", admin_key)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=live.url, headers={"x-api-key": admin_key}) as http:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                for body in (
                    {"agent_id": "planner", "content": "just an episode"},
                    {"agent_id": "planner", "memory_type": "decision", "content": "ship v2"},
                ):
                    http.post("/api/v1/memories", json={**body, "dedup": False})
                time.sleep(0.5)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "the planner decided: ship v2"
