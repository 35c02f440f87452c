"""The explorer ships inside the memtrace-server wheel: its files are package data that the
server finds with importlib.resources, from an installed wheel and even from the zipped wheel
itself (no source tree, no build step). Here because the browser environment has hatchling,
the package's build backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from browser_support import ROOT
from hatchling.builders.wheel import WheelBuilder

SERVER = ROOT / "packages" / "memtrace-server"
STATIC = SERVER / "src" / "memtrace_server" / "ui" / "static"

PROBE = """
import json, memtrace_server.ui as ui
assets = ui.load_assets()
print(json.dumps({"file": ui.__file__, "assets": {k: len(v.body) for k, v in assets.items()}}))
"""


def _probe(path: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def test_the_wheel_carries_the_explorer(tmp_path: Path) -> None:
    (wheel,) = WheelBuilder(str(SERVER)).build(directory=str(tmp_path), versions=["standard"])
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "memtrace_server/ui/static/" + str(p.relative_to(STATIC))
        for p in STATIC.rglob("*")
        if p.is_file()
    }
    assert {"memtrace_server/ui/static/index.html", "memtrace_server/ui/static/app.js"} <= expected
    assert expected <= names
    sizes = {str(p.relative_to(STATIC)): p.stat().st_size for p in STATIC.rglob("*") if p.is_file()}
    # installed (unpacked), and imported straight from the zip: the same files, found
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    for location in (unpacked, Path(wheel)):
        found = _probe(location)
        assert str(found["file"]).startswith(str(location)), found["file"]
        assert found["assets"] == sizes
