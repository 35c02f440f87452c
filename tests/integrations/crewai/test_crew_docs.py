"""docs/integrations/crewai.md and the README's CrewAI section run as written: their Python
blocks in order in a fresh process, with ``llm`` — "your LLM" in the docs — a scripted offline
LLM and ``embedder`` a deterministic local one; then what the examples promise is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DOC = ROOT / "docs" / "integrations" / "crewai.md"

SETUP = """
import os
from crew_fakes import HashEmbedder, ScriptedLLM

llm = ScriptedLLM([
    "Findings:\\n- Project Falcon launches on March 3rd.\\n- Its budget is 2 million euros.",
    lambda prompt: "March 3rd." if "Project Falcon launches on March 3rd." in prompt else "?",
])
embedder = HashEmbedder()
"""

CHECKS = """
assert "Findings: Project Falcon launches on March 3rd." in llm.prompts[1]
context = memory.session_context()
assert "March 3rd" in context and memory.session_id in context
print("DOC-OK")
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}


def _run(script: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_crewai_docs_examples_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 4
    out = _run(SETUP + "".join(blocks) + CHECKS, tmp_path)
    assert out.startswith("March 3rd.\n## Session Context (crew-")
    assert "- (score=" in out
    assert "Project Falcon launches on March 3rd." in out
    assert "\n1\n" in out  # also_stock.info("/ops").record_count
    assert (
        "['memtrace_remember', 'memtrace_recall', 'memtrace_search', 'memtrace_decide', "
        "'memtrace_session_context', 'memtrace_forget']" in out
    )
    assert "DOC-OK" in out
    assert (tmp_path / "crew-memory.db").exists()


def test_the_readme_crewai_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## CrewAI\n(.*?)(?=^## )", readme, re.M | re.S)
    assert section
    (block,) = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    out = _run(SETUP + block + CHECKS, tmp_path)
    assert out.startswith("March 3rd.")
    assert "DOC-OK" in out
