"""The CrewAI tests' setup: no tracing, no telemetry, and CrewAI's home and storage directories
in a temporary directory, set before crewai is first imported (it reads them at import and on
first use). The fixtures every integration shares (``handle`` on both transports,
``handle_url``, ``live_server`` …) are in tests/integrations/conftest.py."""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="memtrace-crewai-home-")
for _name, _value in {
    "CREWAI_TESTING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "OTEL_SDK_DISABLED": "true",
    "HOME": _HOME,
    "CREWAI_STORAGE_DIR": os.path.join(_HOME, "storage"),
}.items():
    os.environ[_name] = _value
