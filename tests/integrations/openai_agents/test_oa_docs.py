"""docs/integrations/openai-agents.md runs as written: its Python blocks in order in a fresh
process (a block with ``await`` inside an ``asyncio.run``), with ``model`` — "your model" in
the docs — an offline scripted model that calls ``memtrace_remember`` once and then answers;
then what the examples promise is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[2] / "docs" / "integrations" / "openai-agents.md"

MODEL = """
from oa_fakes import call, scripted_model, text

model = scripted_model([
    [call("memtrace_remember", {"content": "The user deploys on Fridays", "event_type": None,
      "memory_type": None, "tags": None, "importance": None}, call_id="c1")],
    [text("Noted: you deploy on Fridays.")],
])
"""

CHECKS = """
assert result.final_output == "Noted: you deploy on Fridays."
facts = [m.content for m in mt.recall("assistant").memories if m.memory_type != "session"]
assert facts == ["The user deploys on Fridays"], facts
# the session block: the run's items, then the added item popped again, then cleared
assert [i.get("role") or i.get("type") for i in items][:2] == ["user", "function_call"], items
assert last == {"role": "user", "content": "hi"}
assert asyncio.run(MemtraceSession("chat-1", mt).get_items()) == []
print("DOC-OK")
"""


def test_the_openai_agents_docs_examples_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 5
    parts = ["import asyncio\n", MODEL]
    for block in blocks:
        if "await " in block:
            parts.append("async def _block():\n" + textwrap.indent(block, "    "))
            parts.append("    globals().update(locals())\n\nasyncio.run(_block())\n")
        else:
            parts.append(block)
    script = "".join(parts) + CHECKS
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Noted: you deploy on Fridays." in out
    assert "'memtrace_remember', 'memtrace_recall', 'memtrace_search', 'memtrace_decide'" in out
    assert "DOC-OK" in out


def test_the_readme_openai_agents_example_runs(tmp_path: Path) -> None:
    readme = (HERE.parents[2] / "README.md").read_text()
    section = re.search(r"^## OpenAI Agents SDK\n(.*?)(?=^## )", readme, re.M | re.S)
    assert section
    (block,) = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    script = MODEL + block + 'print([m.content for m in mt.recall("assistant").memories])\n'
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "The user deploys on Fridays" in done.stdout
