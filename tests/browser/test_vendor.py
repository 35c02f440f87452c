"""axe-core is vendored as published (tests/browser/vendor/VERSION): the file is the one whose
checksum the note records, with its licence beside it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).parent / "vendor"


def test_axe_is_the_recorded_release() -> None:
    note = (VENDOR / "VERSION").read_text()
    version = re.search(r"^axe-core (\d+\.\d+\.\d+)", note, re.M)
    digest = re.search(r"^axe\.min\.js:\s+sha256 ([0-9a-f]{64})$", note, re.M)
    assert version
    assert digest
    body = (VENDOR / "axe.min.js").read_bytes()
    assert hashlib.sha256(body).hexdigest() == digest.group(1)
    assert body.startswith(f"/*! axe v{version.group(1)}".encode())
    assert "Mozilla Public License, version 2.0" in (VENDOR / "LICENSE.axe-core").read_text()
    # no registry host names in the repository (the note says how to fetch, not where from)
    assert not re.search(r"registry\.|npmjs", note)
