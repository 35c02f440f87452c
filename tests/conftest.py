"""Settings shared by every test folder.

Property-based tests that do not fix ``max_examples`` themselves run hypothesis' default
profile (100 examples). ``MEMTRACE_EXHAUSTIVE=1`` selects the ``exhaustive`` profile: many
more examples, for an opt-in run before a release (docs/testing.md)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

EXHAUSTIVE = os.environ.get("MEMTRACE_EXHAUSTIVE", "") not in ("", "0")

settings.register_profile(
    "memtrace",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "exhaustive",
    parent=settings.get_profile("memtrace"),
    max_examples=5000,
)
settings.load_profile("exhaustive" if EXHAUSTIVE else "memtrace")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In an exhaustive run a property test may take far longer than the default run's
    per-test timeout (pyproject.toml): give each test an hour."""
    if EXHAUSTIVE:
        for item in items:
            item.add_marker(pytest.mark.timeout(3600))
