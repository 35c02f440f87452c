"""A controllable clock for the time tests (the ``clock`` fixture of conftest.py)."""

from __future__ import annotations

import time


class Clock:
    """A controllable "now" (µs) for the engine, the time helpers and the sweeper: starts at
    the real time and moves only when a test advances it."""

    def __init__(self) -> None:
        self.t = time.time_ns() // 1000

    def __call__(self) -> int:
        return self.t

    def advance(self, seconds: float) -> int:
        self.t += int(seconds * 1_000_000)
        return self.t
