"""docs/integrations/langchain.md runs as written: its Python blocks in order (each builds on
the one before) in a fresh process, with ``model`` — "your chat model" in the docs — a fake
chat model that calls the ``remember`` tool once; then what the comments of the examples say
is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[2] / "docs" / "integrations" / "langchain.md"

MODEL = """
from langchain_core.messages import AIMessage
from lc_fakes import RecordingChatModel

model = RecordingChatModel(messages=iter([
    AIMessage(content="", tool_calls=[
        {"name": "remember", "args": {"content": "The user deploys on Fridays"}, "id": "c1"}
    ]),
    AIMessage(content="Noted: you deploy on Fridays."),
]))
"""

CHECKS = """
assert any("deploys on Fridays" in m.content for m in mt.recall("assistant").memories)
assert [h.key for h in hits] == ["drink"] and hits[0].score > 0
assert [i.value["cups"] for i in few] == [1]
assert docs[0].page_content == "Switched to coffee"
assert "Hello Ada!" in memory.load_memory_variables({})["history"]
print("DOC-OK")
"""

#: What the examples' comments promise, in the order they print it.
PRINTED = [
    "{'content': 'Switched to coffee', 'cups': 1}",
    "[('users', 'u1', 'prefs')]",
    "Switched to coffee",
    "['Prefers green tea', 'Switched to coffee']",
    "['remember', 'recall', 'search', 'decide', 'session_context', 'forget']",
    "Switched to coffee entity mem_",
    "My name is Ada.",
    "DOC-OK",
]


def test_the_langchain_docs_examples_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 7
    script = MODEL + "".join(blocks) + CHECKS
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
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
    position = 0
    for expected in PRINTED:
        found = out.find(expected, position)
        assert found >= 0, (expected, out)
        position = found + len(expected)


def test_the_readme_langchain_example_runs(tmp_path: Path) -> None:
    readme = (HERE.parents[2] / "README.md").read_text()
    section = re.search(r"^## LangChain / LangGraph\n(.*?)(?=^## )", readme, re.M | re.S)
    assert section
    (block,) = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    script = (
        MODEL
        + block
        + 'agent.invoke({"messages": [{"role": "user", "content": "I deploy on Fridays"}]})\n'
        + 'print([m.content for m in mt.recall("assistant").memories])\n'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "['The user deploys on Fridays']" in done.stdout
