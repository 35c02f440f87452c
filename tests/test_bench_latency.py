"""The latency bookkeeping of ``benchmarks/server_bench.py``: wrk's coordinated-omission
correction as the benchmark models it, wrk's percentile rule, and the parsing of a wrk run's
output into corrected and recorded percentiles. (wrk itself is not installed by the test
command. A benchmark run's JSON carries wrk's figures beside the model applied to the
recorded latencies, ``recorded_corrected_latency_us``; docs/benchmarks.md compares them.)"""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
server_bench = importlib.import_module("server_bench")

hists = st.dictionaries(st.integers(1, 5_000), st.integers(1, 50), min_size=1, max_size=40)


def test_the_correction_adds_the_requests_a_steady_client_would_have_sent() -> None:
    # expected interval 100 µs: 150 µs is under twice that (kept as is); each 450 µs
    # request also counts at 350 and 250 and 150 µs (not at 50: not above the interval)
    assert server_bench.wrk_correct({150: 1, 450: 2}, 100) == {150: 3, 250: 2, 350: 2, 450: 2}
    assert server_bench.wrk_correct({150: 1, 450: 2}, 0) == {150: 1, 450: 2}


@settings(max_examples=200, deadline=None)
@given(hist=hists, expected=st.integers(1, 2_000))
def test_the_correction_matches_a_sample_by_sample_expansion(
    hist: dict[int, int], expected: int
) -> None:
    samples: list[int] = []
    for n, count in hist.items():
        for _ in range(count):
            samples.append(n)
            if n >= 2 * expected:
                samples.extend(range(n - expected, expected, -expected))
    corrected = server_bench.wrk_correct(hist, expected)
    assert corrected == dict(Counter(samples))
    # the recorded requests are all still there; the correction only adds
    assert all(corrected[n] >= c for n, c in hist.items())


def test_percentiles_follow_wrks_rank_rule() -> None:
    hist = dict.fromkeys(range(1, 101), 1)  # 1..100 µs, once each
    # rank = C round(p / 100 * count + 0.5): 50 -> round(50.5) = 51, 99 -> round(99.5) = 100
    assert server_bench.hist_percentile(hist, 50) == 51
    assert server_bench.hist_percentile(hist, 99) == 100
    assert server_bench.hist_percentile({7: 3}, 99.9) == 7
    # halves round away from zero as in C: rank round(2.5) = 3 (Python's round gives 2)
    assert server_bench.hist_percentile({10: 1, 20: 1, 30: 1, 40: 1}, 50) == 30


def test_a_wrk_run_gives_both_the_corrected_and_the_recorded_latencies() -> None:
    # one connection, 1,000 requests in 1 s (wrk's interval: 1,000 µs): 990 fast requests
    # and 10 of 20 ms. wrk's own histogram counts each slow one 19 times more.
    recorded = {500: 990, 20_000: 10}
    corrected = server_bench.wrk_correct(recorded, 1_000)
    lat = {p: server_bench.hist_percentile(corrected, p) for p in (50, 90, 99, 99.9)}
    out = "\n".join(
        [
            "Running 1s test @ http://127.0.0.1:1",
            "MTBENCH_STATUS 1000 0 0",
            *(f"MTBENCH_LAT {p:g} {v}" for p, v in lat.items()),
            "MTBENCH_REQ 1000 1000000",
            # one line per value and thread (two threads' lines for one value add up)
            "MTBENCH_HIST 500 600",
            "MTBENCH_HIST 500 390",
            "MTBENCH_HIST 20000 10",
        ]
    )
    res = server_bench.parse_wrk_output(out, connections=1)
    assert (res.requests, res.ok, res.errors, res.seconds) == (1000, 1000, 0, 1.0)
    assert res.latency_us["99"] > 15_000  # the slow requests' echoes reach the p99
    assert res.recorded_latency_us == {"50": 500.0, "90": 500.0, "99": 20_000.0, "99.9": 20_000.0}
    # 1 % slow: the recorded p99 is the first slow request's rank; at 98 % it is still fast
    assert server_bench.hist_percentile(recorded, 98) == 500
    # the model of wrk's correction, applied to the recorded latencies, gives wrk's figures
    assert res.recorded_corrected_latency_us == res.latency_us
    assert res.latency_us == {str(p): float(v) for p, v in lat.items()}


def test_wrks_interval_is_per_connection() -> None:
    # 2 connections, 1,000 requests in 1 s: 500 per connection, wrk's interval 2,000 µs
    # (not 1,000): a 7,000 µs request also counts at 5,000 and 3,000 µs only
    out = "\n".join(
        [
            "MTBENCH_STATUS 1000 0 0",
            "MTBENCH_LAT 50 100",
            "MTBENCH_REQ 1000 1000000",
            "MTBENCH_HIST 100 999",
            "MTBENCH_HIST 7000 1",
        ]
    )
    res = server_bench.parse_wrk_output(out, connections=2)
    # 1,002 samples: p99.9's rank floor(1000.998 + 1) = 1001 falls on the 5,000 µs echo
    # (a 1,000 µs interval would have made 1,005 samples and put it on a 6,000 µs one)
    assert res.recorded_corrected_latency_us["99.9"] == 5_000.0
    assert res.recorded_latency_us["99.9"] == 7_000.0
    assert server_bench.wrk_correct({100: 999, 7000: 1}, 2_000) == {
        100: 999,
        3000: 1,
        5000: 1,
        7000: 1,
    }


def test_without_recorded_lines_only_wrks_figures_are_given() -> None:
    out = "MTBENCH_STATUS 5 0 1\nMTBENCH_LAT 99 900\nMTBENCH_REQ 6 2000000\n"
    out += "Socket errors: connect 0, read 2, write 0, timeout 1\n"
    res = server_bench.parse_wrk_output(out, connections=64)
    assert res.latency_us == {"99": 900.0}
    assert res.recorded_latency_us == {}
    assert res.recorded_corrected_latency_us == {}
    assert res.errors == 1 + 3


def test_the_lua_script_records_latencies_only_when_asked() -> None:
    w = server_bench.Workload(method="POST", paths=["/x"], bodies=['{"n": "{n}"}'])
    on, off = server_bench._lua_script(w, recorded=True), server_bench._lua_script(w)
    assert "local recorded = true" in on
    assert "local recorded = false" in off
    # the clock is read only when recording (several connections per thread would mix up
    # which request a response answers), and the histogram is printed only then
    assert "if recorded then\n    sent = now_us()" in on
    assert "if recorded and sent ~= nil then" in on
    assert "if recorded then\n    for _, t in ipairs(threads)" in on


def test_perf_bench_judges_both_one_connection_figures() -> None:
    perf_bench = importlib.import_module("perf_bench")
    lat = {"50": 600.0, "99": 16_000.0, "99.9": 30_000.0}
    rec = {"50": 600.0, "99": 3_000.0, "99.9": 12_000.0}
    server = {
        "floor": {"requests": 20_000, "seconds": 1.0},
        "single_c64": {"ok": 4_000, "seconds": 1.0},
        "single_c1": {"latency_us": lat, "recorded_latency_us": rec},
        "floor_c1": {"latency_us": {"50": 130.0, "99": 180.0, "99.9": 1_500.0}},
    }
    rows = {r[0]: r for r in perf_bench.table({"server": server})}
    wrk_row = rows["server single POST at 1 conn, p50 / p99 / p99.9 (wrk, corrected)"]
    rec_row = rows["server single POST at 1 conn, p50 / p99 / p99.9 (as recorded)"]
    assert wrk_row[1:] == ("0.60 ms / 16.00 ms / 30.00 ms", "p99 < 5 ms", "MISS")
    assert rec_row[1:] == ("0.60 ms / 3.00 ms / 12.00 ms", "p99 < 5 ms", "PASS")
    floor_row = rows["  minimal Sanic at 1 conn, p50 / p99 / p99.9 (wrk / as recorded)"]
    assert floor_row[1] == "0.13 ms / 0.18 ms / 1.50 ms"
    # a server part without its one-connection figures: not run, no verdict
    rows_none = {r[0]: r for r in perf_bench.table({"server": server | {"single_c1": {}}})}
    assert rows_none["server single POST at 1 conn, p50 / p99 / p99.9 (wrk, corrected)"][1:] == (
        "not run",
        "p99 < 5 ms",
        "",
    )
    # an older result without recorded latencies: wrk's row only
    del server["single_c1"]["recorded_latency_us"]
    names = [r[0] for r in perf_bench.table({"server": server})]
    assert "server single POST at 1 conn, p50 / p99 / p99.9 (as recorded)" not in names
    assert "server single POST at 1 conn, p50 / p99 / p99.9 (wrk, corrected)" in names
