"""docs/api.md's live-stream example runs as written: the ``follow`` coroutine of its
```python block, on a SQLite store, prints the planner's decisions written by another
connection and stops at the one that says done."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import Any

from memtrace_core import aconnect

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def stream_example() -> str:
    text = API_MD.read_text()
    section = text[text.index("#### The live stream") : text.index("### Agents")]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return block


async def test_the_documented_watch_example_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'memtrace.db'}"
    namespace: dict[str, Any] = {}
    exec(compile(stream_example(), str(API_MD), "exec"), namespace)
    out = io.StringIO()
    writer = await aconnect(url)
    try:
        with contextlib.redirect_stdout(out):
            task = asyncio.ensure_future(namespace["follow"](url))
            await asyncio.sleep(0.5)  # the watch starts "now"
            await writer.add_memory(agent_id="planner", content="an episode, not shown")
            await writer.add_memory(agent_id="planner", memory_type="decision", content="use B")
            await writer.add_memory(agent_id="crawler", memory_type="decision", content="no")
            await writer.add_memory(agent_id="planner", memory_type="decision", content="done")
            await asyncio.wait_for(task, 10)
    finally:
        await writer.close()
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["use B", "done"]
    assert all(line.startswith("s") for line in lines)
