"""``scripts/dev.py``: help exits 0 on stdout; a missing or unknown command is a usage error
(exit 2, help and the reason on stderr). None of these creates or touches the virtualenv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "dev.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_exits_0_on_stdout(flag: str) -> None:
    proc = _run(flag)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "python3 scripts/dev.py serve" in proc.stdout
    assert "python3 scripts/dev.py test" in proc.stdout
    assert "+ " not in proc.stdout  # ran nothing (pip, pytest, ...)


@pytest.mark.parametrize("args", [(), ("deploy",), ("--verbose",)])
def test_missing_or_unknown_command_is_a_usage_error(args: tuple[str, ...]) -> None:
    proc = _run(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "python3 scripts/dev.py serve" in proc.stderr
    if args:
        assert f"unknown command: {args[0]!r}" in proc.stderr
