"""The OpenAI Agents SDK tests' setup: tracing is disabled. The fixtures every integration
shares (``handle`` on both transports, ``handle_url``, ``live_server`` …) are in
tests/integrations/conftest.py."""

from __future__ import annotations

import os

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import set_tracing_disabled

set_tracing_disabled(True)
