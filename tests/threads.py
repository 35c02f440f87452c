"""Thread helpers of the tests: run a function on several threads at once (failing with what
any of them raised), follow a blocking watch on a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


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


def follow(watch: Iterable[Any], count: int) -> tuple[threading.Thread, list[str]]:
    """A started thread collecting the contents of the first ``count`` events of a blocking
    watch (join the thread, then read the list)."""
    seen: list[str] = []
    events = zip(range(count), watch, strict=False)  # the watch never ends by itself
    thread = threading.Thread(target=lambda: seen.extend(e.memory.content for _, e in events))
    thread.start()
    return thread, seen
