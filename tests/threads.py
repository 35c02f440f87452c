"""Run a function on several threads at once and fail with what any of them raised."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_threads(target: Callable[[int], object], count: int, *, timeout: float = 60.0) -> None:
    """``target(i)`` on ``count`` threads at once; raises AssertionError naming every
    exception a thread raised, or the threads still running after ``timeout`` seconds."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    hung = [i for i, thread in enumerate(threads) if thread.is_alive()]
    assert not hung, f"threads still running: {hung}"
    assert not errors, errors
