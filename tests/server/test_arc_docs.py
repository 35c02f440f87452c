"""The Arc commands of the README and docs/deployment.md run as written: ``memtrace serve`` on
the Arc store URL they give (Arc's address and the data directory pointed at the fake Arc of
tests/arc_fake.py and a temporary directory), with the token from ``MEMTRACE_ARC_TOKEN``;
a memory written over HTTP reaches Arc and reads back, and ``/ready`` reports Arc."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from cluster_support import ServeProcess, clean_env, wait_for

import arc_fake

ROOT = Path(__file__).resolve().parents[2]


def serve_urls(doc: Path, section: str) -> list[str]:
    """The ``memtrace serve --store '…'`` URLs of a section of ``doc``."""
    text = doc.read_text()
    match = re.search(rf"^(#+) {re.escape(section)}\n(.*?)(?=^#{{1,2}} |\Z)", text, re.M | re.S)
    assert match, f"{doc.name} has no section {section!r}"
    return re.findall(r"memtrace serve --store '(arc\+http://[^']+)'", match.group(2))


EXAMPLES = [
    (ROOT / "README.md", "On Arc, the original's time-series database"),
    (ROOT / "docs" / "deployment.md", "Arc"),
]


@pytest.mark.parametrize(("doc", "section"), EXAMPLES, ids=["README", "deployment"])
def test_the_documented_arc_command_serves(doc: Path, section: str, tmp_path: Path) -> None:
    (url,) = serve_urls(doc, section)
    assert "token=" not in url  # the docs keep the token out of the URL
    with arc_fake.running(tokens={arc_fake.TOKEN: {"read", "write"}}) as fake:
        local = url.replace("arc.internal:8000", f"127.0.0.1:{fake.port}").replace(
            "/data/", f"{tmp_path}/data/"
        )
        (tmp_path / "data").mkdir()
        server = ServeProcess(
            local, tmp_path, clean_env(tmp_path, MEMTRACE_ARC_TOKEN=arc_fake.TOKEN)
        )
        try:
            server.wait_ready()
            wait_for("the admin key is shown", lambda: bool(server.keys_shown()), 10)
            key = server.keys_shown()[0]
            client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})
            ready = client.get("/ready").json()
            assert ready["store"]["arc"] == "ok"
            made = client.post("/api/v1/memories", json={"agent_id": "a", "content": "on Arc"})
            assert made.status_code in (200, 201), made.text
            memory_id = made.json()["id"]
            database = local.split("?")[0].rsplit("/", 1)[1]
            wait_for(
                "the memory is on Arc",
                lambda: any(r["id"] == memory_id for r in fake.rows(database, "memories")),
                20,
            )
            got = client.get(f"/api/v1/memories/{memory_id}")
            assert got.status_code == 200
            assert got.json()["content"] == "on Arc"
            assert (tmp_path / "data" / "arc-spool.db").exists()
            assert (tmp_path / "data" / "arc-meta.db").exists()
        finally:
            assert server.stop() == 0


def test_the_documented_purge_loop_removes_deleted_rows(tmp_path: Path) -> None:
    """docs/deployment.md's `arc-purge --dry-run` + curl loop, run with bash against the fake
    Arc (its delete API enabled), the grace period shortened to 0 s."""
    import asyncio
    import os
    import shutil
    import subprocess
    import sys

    from memtrace_core import aconnect

    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text.split("### Removing deleted rows from Arc", 1)[1]
    (script,) = re.findall(r"```bash\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    script = "\n".join(line.removeprefix("  ") for line in script.splitlines())
    with arc_fake.running(
        tokens={arc_fake.TOKEN: {"read", "write", "admin"}}, delete_enabled=True
    ) as fake:
        url = (
            f"arc+http://127.0.0.1:{fake.port}/memtrace?token={arc_fake.TOKEN}"
            f"&meta=sqlite:///{tmp_path}/meta.db&spool={tmp_path}/spool.db&flush_ms=0"
        )

        async def write_and_delete() -> tuple[str, str]:
            mt = await aconnect(url + "&sync_forward=1")
            try:
                kept = await mt.remember("a", "kept")  # type: ignore[attr-defined]
                gone = await mt.remember("a", "gone")  # type: ignore[attr-defined]
                await mt.delete_memory(gone.id)  # type: ignore[attr-defined]
                return kept.id, gone.id
            finally:
                await mt.close()

        kept, gone = asyncio.run(write_and_delete())
        assert {r["id"] for r in fake.rows("memtrace", "memories")} == {kept, gone}
        memtrace = shutil.which("memtrace", path=os.path.dirname(sys.executable))
        assert memtrace is not None
        script = (
            script.replace("'arc+http://arc.internal:8000/memtrace?meta=…'", f"'{url}'")
            .replace("--dry-run", "--grace 0 --dry-run")
            .replace("http://arc.internal:8000", fake.url)
            .replace("memtrace arc-purge", f"{memtrace} arc-purge")
        )
        done = subprocess.run(
            ["bash", "-euc", script],
            cwd=tmp_path,
            env={**os.environ, "ADMIN": arc_fake.TOKEN},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "1 rows on Arc belong to no memory" in done.stderr
        assert {r["id"] for r in fake.rows("memtrace", "memories")} == {kept}
