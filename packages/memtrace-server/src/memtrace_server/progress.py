"""A one-line progress display for long CLI runs (``memtrace export`` / ``import``).

It is drawn on stderr only when stderr is a terminal (and ``TERM`` is not ``dumb``): piped or
redirected, a run prints nothing but its final counts. The line is redrawn in place with a
carriage return at most every :data:`INTERVAL` seconds and erased by :meth:`Progress.close`, so
the final message the command prints afterwards starts on a clean line. No dependency: plain
text, no escape sequences.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import IO

#: Seconds between two redraws.
INTERVAL = 0.1
_BAR = 24
_SPINNER = "|/-\\"
_KEEP = object()


def stream_is_terminal(stream: IO[str]) -> bool:
    """Whether a progress line belongs on ``stream``: a terminal, and not a dumb one."""
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


class Progress:
    """``label [#####-----]  42%  1,234/2,900 unit  3.1s`` (with a known total) or
    ``label |  1,234 unit  3.1s`` (without; no count when ``unit`` is empty), redrawn in place
    on ``stream``; the unit ``bytes`` is shown as KiB / MiB / GiB.

    :meth:`update` may be called from any thread (an import checks its file in a worker
    thread). Disabled (``enabled=False``, or ``stream`` not a terminal) it does nothing."""

    def __init__(
        self,
        label: str,
        *,
        total: float | None = None,
        unit: str = "records",
        stream: IO[str] | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = stream_is_terminal(self.stream) if enabled is None else enabled
        self.label = label
        self.total = total
        self.unit = unit
        self.done: float = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0
        self._spin = 0
        self._lock = threading.Lock()

    def update(
        self,
        done: float | None = None,
        *,
        advance: float = 0,
        label: str | None = None,
        total: float | object | None = _KEEP,
        unit: str | None = None,
        force: bool = False,
    ) -> None:
        """Set (``done``) or advance the count, optionally change the label, total (``None``:
        unknown) or unit, and redraw if :data:`INTERVAL` has passed (or ``force``)."""
        if not self.enabled:
            return
        with self._lock:
            if done is not None:
                self.done = done
            self.done += advance
            if label is not None:
                self.label = label
            if total is not _KEEP:
                self.total = total if isinstance(total, (int, float)) else None
            if unit is not None:
                self.unit = unit
            now = time.monotonic()
            if force or now - self._drawn_at >= INTERVAL:
                self._drawn_at = now
                self._draw(now)

    def tick(self) -> None:
        """Redraw (elapsed time, spinner) without changing the count."""
        self.update()

    def text(self, now: float | None = None) -> str:
        """The line as it is drawn now."""
        elapsed = (time.monotonic() if now is None else now) - self._started
        unit = "" if self.unit == "bytes" else f" {self.unit}"
        if self.total:
            share = min(max(self.done / self.total, 0.0), 1.0)
            filled = int(share * _BAR)
            return (
                f"{self.label} [{'#' * filled}{'-' * (_BAR - filled)}] {share * 100:3.0f}%  "
                f"{self._amount(self.done)}/{self._amount(self.total)}{unit}  {elapsed:.1f}s"
            )
        self._spin = (self._spin + 1) % len(_SPINNER)
        count = f"  {self._amount(self.done)}{unit}" if self.unit else ""
        return f"{self.label} {_SPINNER[self._spin]}{count}  {elapsed:.1f}s"

    def _amount(self, n: float) -> str:
        return _size(n) if self.unit == "bytes" else f"{int(n):,}"

    def _draw(self, now: float) -> None:
        columns = shutil.get_terminal_size((80, 24)).columns
        line = self.text(now)[: max(columns - 1, 10)]
        pad = " " * max(self._width - len(line), 0)
        self._width = len(line)
        try:
            self.stream.write("\r" + line + pad)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: stop drawing
            self.enabled = False

    def close(self) -> None:
        """Draw the final state once, then erase the line."""
        if not self.enabled:
            return
        with self._lock:
            self._draw(time.monotonic())
            try:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
