#!/usr/bin/env python3
"""One entry point for the two commands of the README (stdlib only, Python 3.11+).

    python3 scripts/dev.py serve [memtrace serve options]   # run the memtrace server
    python3 scripts/dev.py test  [pytest options]           # lint, type-check and run every test

Both create ``.venv`` next to this repository on first use and install what they need into it
(the workspace packages in editable mode; for ``test`` also requirements-dev.txt). Installation
is skipped when nothing it depends on changed since the last run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
PACKAGES = [
    "packages/memtrace-core",
    "packages/memtrace-server",
    "packages/memtrace-langchain",
    "packages/memtrace-openai-agents",
    "packages/memtrace-crewai",
]
SERVE_PACKAGES = PACKAGES[:2]
#: Optional extras installed with a workspace package for the tests.
TEST_EXTRAS = {"packages/memtrace-langchain": "classic"}


def run(cmd: list[str], **kwargs: object) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, **kwargs)  # type: ignore[arg-type]


def check(cmd: list[str]) -> None:
    code = run(cmd)
    if code != 0:
        sys.exit(code)


def ensure_venv(packages: list[str], dev: bool) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the venv exists
        sys.exit("memtrace needs Python 3.11 or newer")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    inputs = [ROOT / p / "pyproject.toml" for p in packages]
    if dev:
        inputs.append(ROOT / "requirements-dev.txt")
    digest = hashlib.sha256(sys.version.encode())
    for path in inputs:
        digest.update(path.read_bytes())
    stamp = VENV / f".installed-{'dev' if dev else 'run'}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    cmd = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for pkg in packages:
        extra = TEST_EXTRAS.get(pkg) if dev else None
        cmd += ["-e", f"{pkg}[{extra}]" if extra else pkg]
    if dev:
        cmd += ["-r", "requirements-dev.txt"]
    check(cmd)
    stamp.write_text(digest.hexdigest())


def serve(args: list[str]) -> None:
    ensure_venv(SERVE_PACKAGES, dev=False)
    os.execv(str(BIN / "memtrace"), [str(BIN / "memtrace"), "serve", *args])


def test(args: list[str]) -> None:
    ensure_venv(PACKAGES, dev=True)
    check([str(BIN / "ruff"), "check", "."])
    check([str(BIN / "ruff"), "format", "--check", "."])
    check([str(BIN / "mypy")])
    code = run([str(PY), "-m", "pytest", *args])
    if code == 5:
        print("pytest collected no tests: that is a failure here", file=sys.stderr)
        sys.exit(1)
    sys.exit(code)


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] in ("-h", "--help", "help"):
        print(__doc__)
        return
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test"):
        print(__doc__, file=sys.stderr)
        if len(sys.argv) >= 2:
            print(f"unknown command: {sys.argv[1]!r} (expected serve or test)", file=sys.stderr)
        sys.exit(2)
    {"serve": serve, "test": test}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
