"""docs/time.md's copy-paste examples run as written: its Python blocks in order (each builds
on the one before), with the results their comments state checked, then its shell commands
against the same store."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "time.md"

# What the comments in the examples say, checked after the blocks have run.
CHECKS = """
assert mt.list_memories(recorded_since="1h", include_superseded=True).count >= 1
assert scratch.expires_at is not None
assert (scratch.expires_at - scratch.recorded_at).total_seconds() == 900
assert new.supersedes == old.id
assert mt.get_memory(old.id).superseded_by == new.id
assert mt.get_memory(old.id).superseded_at == new.recorded_at
assert forgotten == 2
assert mt.list_memories(agent_id="crm", include_superseded=True).count == 0
entities = mt.list_memories(as_of=then, memory_type="entity").memories
assert [m.content for m in entities] == ["The staging database is db-7"]
assert entities[0].superseded_by is None  # superseded later: undone in the view
current = mt.list_memories(memory_type="entity").memories
assert [m.content for m in current] == ["The staging database is db-9"]
assert "db-9" not in mt.get_agent_context("ops", as_of=then).context
print("DOC-OK")
"""


def test_the_time_docs_examples_run(tmp_path: Path) -> None:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    script = "".join(blocks) + CHECKS
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "DOC-OK" in done.stdout
    (shell,) = re.findall(r"```bash\n(memtrace retention.*?)```", text, re.S)
    (tmp_path / "policy.json").write_text(json.dumps({"max_age": "30d"}))
    env = {**os.environ, "MEMTRACE_STORAGE_URL": "sqlite:///time-demo.db"}
    outputs = []
    for line in shell.strip().splitlines():
        argv = shlex.split(line)
        assert argv[0] == "memtrace"
        run = subprocess.run(
            [sys.executable, "-m", "memtrace_server.cli", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, (line, run.stderr)
        outputs.append(run.stdout)
    assert json.loads(outputs[0])["source"] == "none"  # the Python example cleared it
    assert json.loads(outputs[2])["policy"]["max_age"] == "30d"  # from @policy.json
    assert outputs[3].startswith("org_default: would delete")
    assert json.loads(outputs[4])["source"] == "none"
