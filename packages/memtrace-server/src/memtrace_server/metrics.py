"""Prometheus metrics without a dependency: counters and histograms kept in plain dicts (one
process = one worker; each worker exposes its own figures) and rendered in the Prometheus text
exposition format (version 0.0.4) by :meth:`Metrics.render`.

Recording is a dict lookup plus a bisect per observation, cheap enough for every request.
"""

from __future__ import annotations

import time
from bisect import bisect_left

from memtrace_core.retention import SweepTotals

#: Histogram bucket upper bounds in seconds (the ``le`` labels).
BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Histogram:
    """One histogram series: per-bucket counts (non-cumulative), sum and count."""

    __slots__ = ("count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value
        self.count += 1


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The server's metrics registry."""

    def __init__(self) -> None:
        self.started = time.time()
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[tuple[str, str, str], Histogram] = {}
        self.store_latency: dict[str, Histogram] = {}
        self.memories_written = 0
        self.duplicates = 0
        self.memories_deleted = 0
        self.auth_failures = 0
        #: Unreadable stored rows skipped by reads (copied from the store when rendering).
        self.unreadable_rows = 0
        #: Exports aborted part-way (the connection closed without the chunked terminator).
        self.exports_aborted = 0
        #: Live streams open now, memories sent on them, and streams dropped by reason.
        self.streams_active = 0
        self.stream_events = 0
        self.streams_dropped: dict[str, int] = {"slow": 0, "revoked": 0, "full": 0}
        #: The retention sweeper's totals (copied from it when rendering; None: no sweeper).
        self.sweep: SweepTotals | None = None
        #: The store's own series (name, type, help, value), e.g. the Arc store's forwarder.
        self.store_series: list[tuple[str, str, str, float]] = []

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # Clients choose the method: any other than the standard ones is counted as OTHER, or
        # each invented method would add series for ever.
        key = (method if method in _METHODS else "OTHER", route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(key)
        if hist is None:
            hist = self.latency[key] = Histogram()
        hist.observe(seconds)

    def observe_store(self, operation: str, seconds: float) -> None:
        hist = self.store_latency.get(operation)
        if hist is None:
            hist = self.store_latency[operation] = Histogram()
        hist.observe(seconds)

    def render(self) -> str:
        """The metrics in the Prometheus text format."""
        out: list[str] = []
        req_labels = ("method", "route", "status")
        out.append("# HELP memtrace_http_requests_total HTTP requests served.")
        out.append("# TYPE memtrace_http_requests_total counter")
        for key, value in sorted(self.requests.items()):
            out.append(f"memtrace_http_requests_total{_labels(req_labels, key)} {value}")
        self._histograms(
            out,
            "memtrace_http_request_duration_seconds",
            "HTTP request latency (from routing to response).",
            req_labels,
            {k: v for k, v in self.latency.items()},  # noqa: C416 (key type widens)
        )
        self._histograms(
            out,
            "memtrace_store_operation_duration_seconds",
            "Time spent in the engine and store per operation.",
            ("operation",),
            {(k,): v for k, v in self.store_latency.items()},
        )
        for name, help_text, value in (
            (
                "memtrace_memories_written_total",
                "Memories written (created or imported).",
                self.memories_written,
            ),
            (
                "memtrace_duplicates_total",
                "Memories rejected or skipped as duplicates.",
                self.duplicates,
            ),
            ("memtrace_memories_deleted_total", "Memories deleted.", self.memories_deleted),
            ("memtrace_auth_failures_total", "Requests rejected with 401.", self.auth_failures),
            (
                "memtrace_unreadable_rows_total",
                "Stored rows skipped by reads because they cannot be read (see memtrace doctor).",
                self.unreadable_rows,
            ),
            (
                "memtrace_exports_aborted_total",
                "Exports that failed after the response started (connection aborted).",
                self.exports_aborted,
            ),
        ):
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} counter")
            out.append(f"{name} {value}")
        out.append("# HELP memtrace_streams_active Live memory streams open in this process.")
        out.append("# TYPE memtrace_streams_active gauge")
        out.append(f"memtrace_streams_active {self.streams_active}")
        out.append("# HELP memtrace_stream_events_total Memories sent on live streams.")
        out.append("# TYPE memtrace_stream_events_total counter")
        out.append(f"memtrace_stream_events_total {self.stream_events}")
        out.append(
            "# HELP memtrace_streams_dropped_total Live streams ended by the server: a client "
            "too slow to read (slow), a key no longer valid (revoked), too many streams (full)."
        )
        out.append("# TYPE memtrace_streams_dropped_total counter")
        for reason, count in self.streams_dropped.items():
            out.append(f'memtrace_streams_dropped_total{{reason="{reason}"}} {count}')
        if self.sweep is not None:
            self._sweep(out, self.sweep)
        for series, kind, about, amount in self.store_series:
            out.append(f"# HELP {series} {about}")
            out.append(f"# TYPE {series} {kind}")
            out.append(f"{series} {_fmt(float(amount))}")
        out.append("# HELP memtrace_process_start_time_seconds Start time of the process (Unix).")
        out.append("# TYPE memtrace_process_start_time_seconds gauge")
        out.append(f"memtrace_process_start_time_seconds {_fmt(self.started)}")
        return "\n".join(out) + "\n"

    @staticmethod
    def _sweep(out: list[str], totals: SweepTotals) -> None:
        """The retention sweeper of this process (docs/time.md)."""
        out.append("# HELP memtrace_sweep_deleted_total Memories deleted by the retention sweep.")
        out.append("# TYPE memtrace_sweep_deleted_total counter")
        out.append(f'memtrace_sweep_deleted_total{{reason="expired"}} {totals.expired}')
        out.append(f'memtrace_sweep_deleted_total{{reason="retention"}} {totals.aged}')
        for name, help_text, value in (
            ("memtrace_sweep_runs_total", "Sweeps run by this process.", totals.runs),
            (
                "memtrace_sweep_skipped_total",
                "Sweeps skipped because another process held the sweep lease.",
                totals.skipped,
            ),
            ("memtrace_sweep_failures_total", "Sweeps that failed (logged).", totals.failures),
        ):
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} counter")
            out.append(f"{name} {value}")
        out.append("# HELP memtrace_sweep_last_duration_seconds Duration of the last sweep run.")
        out.append("# TYPE memtrace_sweep_last_duration_seconds gauge")
        out.append(f"memtrace_sweep_last_duration_seconds {_fmt(totals.last_seconds)}")

    @staticmethod
    def _histograms(
        out: list[str],
        name: str,
        help_text: str,
        label_names: tuple[str, ...],
        series: dict[tuple[str, ...], Histogram],
    ) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} histogram")
        for key, hist in sorted(series.items()):
            cumulative = 0
            for bound, count in zip(BUCKETS, hist.counts, strict=False):
                cumulative += count
                le = _labels(label_names, key, f'le="{_fmt(bound)}"')
                out.append(f"{name}_bucket{le} {cumulative}")
            le = _labels(label_names, key, 'le="+Inf"')
            out.append(f"{name}_bucket{le} {hist.count}")
            out.append(f"{name}_sum{_labels(label_names, key)} {hist.sum!r}")
            out.append(f"{name}_count{_labels(label_names, key)} {hist.count}")
