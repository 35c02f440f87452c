"""The OpenAI Agents SDK tests' setup: tracing is disabled, and a full garbage collection runs
before each test (see the note on ``live_server`` in tests/integrations/conftest.py: it keeps
a sporadic "AST constructor recursion depth mismatch" away from the live server's start). The fixtures
every integration shares (``handle`` on both transports, ``handle_url``, ``live_server`` …) are
in tests/integrations/conftest.py."""

from __future__ import annotations

import gc
import os

import pytest

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import set_tracing_disabled

set_tracing_disabled(True)


@pytest.fixture(autouse=True)
def _collect_first() -> None:
    gc.collect()
