#!/usr/bin/env python3
"""memtrace-server benchmark over loopback: write throughput against a minimal Sanic floor,
write latency, batch ingest, and read latencies on a store of 1,000,000 memories.

Requirements: the workspace venv (memtrace-server installed, ``memtrace`` CLI) and, for the
real figures, ``wrk`` (Debian: ``apt-get install -y wrk``). Without wrk the script falls back
to a bounded Python load generator (httpx + asyncio), which saturates long before the server
does — its throughput figures are a floor of the client, not of the server; the output says
which generator was used.

Usage::

    .venv/bin/python benchmarks/core_bench.py                     # builds/caches the 1M store
    .venv/bin/python benchmarks/server_bench.py                   # all phases, ~10 s each
    .venv/bin/python benchmarks/server_bench.py --quick           # 50k store, 3 s phases
    .venv/bin/python benchmarks/server_bench.py --duration 5 --workers 2 --json

Phases (every server listens on 127.0.0.1 only, every phase is bounded by ``--duration``,
every server this script starts is stopped at the end):

1. **floor** — a tiny Sanic app (same Sanic, same ``--workers``, access log off) answering
   ``POST /api/v1/memories`` with ``{"ok": true}`` without reading the body, driven exactly like
   phase 2. Its requests/s is the floor the write throughput is divided by (target ≥ 0.3);
   driven like phase 3 too (one connection), its latencies are the machine's own tail.
2. **single writes** — ``POST /api/v1/memories`` with one memory, ``--connections`` (64)
   connections; every request carries unique content (a wrk Lua counter per thread plus a run
   id) so dedup does not turn writes into 409s (409s are counted and reported separately).
3. **write latency** — the same request with one connection: p50/p99 (target p50 < 2 ms).
   wrk reports latencies corrected for coordinated omission (:func:`wrk_correct`: each
   slow request also counts for the requests a steady-rate client would have sent while it
   waited); where every wrk thread has one connection the Lua script also records each
   request's own latency (``recorded_latency_us``, printed beside wrk's figures).
4. **batch writes** — ``POST /api/v1/memories`` with ``{"memories": [100 memories]}``:
   memories/s (target ≥ 20,000/s).
5. **reads** on a copy of the cached N-memory store from ``core_bench.py`` (built if missing):
   list (one agent, 24 h, limit 100), keyword search (2–4 word queries) and session context
   (the 500-memory session), one connection each: p50/p99.

Auth: an API key is created on the store before the server starts (``memtrace key create``);
if the CLI cannot, the first-run admin key the server prints is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _data  # noqa: E402

VENV_BIN = Path(sys.executable).parent
KEY_RE = re.compile(r"mtk_[A-Za-z0-9_\-]+=*")

FLOOR_APP = """
from sanic import Sanic
from sanic.response import json as json_response

app = Sanic("floor")


@app.post("/api/v1/memories")
async def create(request):
    return json_response({"ok": True}, status=201)


@app.get("/health")
async def health(request):
    return json_response({"status": "ok"})
"""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str = "/health", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
                )
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not become healthy within {timeout} s")


@dataclass
class Server:
    """A server subprocess in its own process group (stopped with SIGTERM, then SIGKILL)."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start(
    name: str,
    cmd: Sequence[str],
    cwd: Path,
    port: int,
    logdir: Path,
    env: dict[str, str] | None = None,
) -> Server:
    log = logdir / f"{name}.log"
    fh = open(log, "wb")  # noqa: SIM115 - kept open by the child
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    server = Server(name, proc, port, log)
    try:
        wait_http(port)
    except BaseException:
        server.stop()
        _log(server.output()[-3000:])
        raise
    return server


def memtrace_cli() -> list[str]:
    exe = VENV_BIN / "memtrace"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("memtrace")
    if found:
        return [found]
    return [sys.executable, "-m", "memtrace_server"]


# -- load generation -----------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    seconds: float
    ok: int
    conflicts: int
    errors: int
    latency_us: dict[str, float] = field(default_factory=dict)  # "50" -> µs
    generator: str = "wrk"
    #: The same percentiles over the requests actually made, each request's own latency.
    #: wrk reports ``latency_us`` after a coordinated-omission correction (see
    #: :func:`wrk_correct`): at one connection a single slow request then also stands for
    #: the dozens of requests a steady-rate client would have sent meanwhile. Recorded by the
    #: Lua script where every wrk thread has one connection (else empty); equal to
    #: ``latency_us`` for the Python load generator, which corrects nothing.
    recorded_latency_us: dict[str, float] = field(default_factory=dict)
    #: :func:`wrk_correct` applied to the recorded latencies: reproduces wrk's figures, which
    #: shows that the two describe the same requests.
    recorded_corrected_latency_us: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _lua_str(s: str) -> str:
    return "[==[" + s + "]==]"


@dataclass
class Workload:
    """Requests for one phase: a fixed method + path list or body list; ``{n}``, ``{t}`` and
    ``{run}`` in a body are replaced per request (counter, wrk thread, run id)."""

    method: str
    paths: list[str]
    bodies: list[str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _lua_script(w: Workload, recorded: bool = False) -> str:
    paths = ",\n".join(_lua_str(p) for p in w.paths)
    bodies = ",\n".join(_lua_str(b) for b in (w.bodies or []))
    headers = ", ".join(f"[ {_lua_str(k)} ] = {_lua_str(v)}" for k, v in w.headers.items())
    return f"""
local paths = {{ {paths} }}
local bodies = {{ {bodies} }}
local headers = {{ {headers} }}
local method = "{w.method}"
local recorded = {"true" if recorded else "false"}
local run = tostring(os.time()) .. tostring(math.random(100000, 999999))
local threads = {{}}
local tcount = 0
-- each request's own latency, measured here (wrk's histogram is corrected, see wrk_correct):
-- clock_gettime(CLOCK_MONOTONIC) through LuaJIT's ffi, from request() (called just before
-- wrk writes the request) to response(); only where a thread has one connection, so that
-- a response always answers the thread's last request
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} mtbench_timespec;
int clock_gettime(int clk_id, mtbench_timespec *tp);
]]
local ts = ffi.new("mtbench_timespec")
local CLOCK_MONOTONIC = (ffi.os == "OSX") and 6 or 1
local function now_us()
  if ffi.C.clock_gettime(CLOCK_MONOTONIC, ts) ~= 0 then
    recorded = false  -- no clock: record nothing rather than zeros
    return 0
  end
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
function setup(thread)
  thread:set("tid", tcount)
  tcount = tcount + 1
  table.insert(threads, thread)
end
function init(args)
  n = 0
  s2xx = 0
  s409 = 0
  sother = 0
  hist = {{}}
  sent = nil
end
function request()
  n = n + 1
  local path = paths[(n % #paths) + 1]
  local body = nil
  if #bodies > 0 then
    body = bodies[(n % #bodies) + 1]
    body = string.gsub(body, "{{n}}", tostring(n))
    body = string.gsub(body, "{{t}}", tostring(tid))
    body = string.gsub(body, "{{run}}", run)
  end
  local req = wrk.format(method, path, headers, body)
  if recorded then
    sent = now_us()  -- wrk starts its own clock right after this returns
  end
  return req
end
function response(status, hdrs, body)
  if recorded and sent ~= nil then
    local us = math.floor(now_us() - sent)
    hist[us] = (hist[us] or 0) + 1
    sent = nil
  end
  if status == 409 then
    s409 = s409 + 1
  elseif status >= 200 and status < 300 then
    s2xx = s2xx + 1
  else
    sother = sother + 1
  end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("s2xx")
    b = b + t:get("s409")
    c = c + t:get("sother")
  end
  io.write(string.format("MTBENCH_STATUS %d %d %d\\n", a, b, c))
  for _, p in ipairs({{50, 90, 99, 99.9}}) do
    io.write(string.format("MTBENCH_LAT %g %d\\n", p, latency:percentile(p)))
  end
  io.write(string.format("MTBENCH_REQ %d %d\\n", summary.requests, summary.duration))
  if recorded then
    for _, t in ipairs(threads) do
      for us, count in pairs(t:get("hist")) do
        io.write(string.format("MTBENCH_HIST %d %d\\n", us, count))
      end
    end
  end
end
"""


def wrk_correct(hist: dict[int, int], expected: int) -> dict[int, int]:
    """wrk's coordinated-omission correction (``stats_correct`` in its stats.c), on a
    histogram of µs value -> count: every recorded latency ``n`` of at least twice the
    ``expected`` interval between two requests of a connection also counts once at
    ``n - expected``, ``n - 2 * expected``, ... while that stays above ``expected`` (the
    requests a client sending at that steady rate would have made meanwhile)."""
    out = dict(hist)
    if expected <= 0:
        return out
    for n, count in hist.items():
        if n < 2 * expected or not count:
            continue
        m = n - expected
        while m > expected:
            out[m] = out.get(m, 0) + count
            m -= expected
    return out


def hist_percentile(hist: dict[int, int], p: float) -> int:
    """wrk's ``stats_percentile`` on a histogram: the smallest value whose cumulative count
    reaches ``round(p / 100 * count + 0.5)``."""
    total = sum(hist.values())
    rank = math.floor(p / 100 * total + 1.0)  # C's round(x + 0.5), halves away from zero
    seen = 0
    for v in sorted(hist):
        seen += hist[v]
        if seen >= rank:
            return v
    return 0


#: The percentiles every load result reports.
PERCENTILES = (50, 90, 99, 99.9)


def run_wrk(port: int, w: Workload, connections: int, duration: float, tmp: Path) -> LoadResult:
    script = tmp / f"wl-{time.monotonic_ns()}.lua"
    threads = max(1, min(connections, os.cpu_count() or 1))
    one_each = threads == connections  # one connection per thread: latencies recorded too
    script.write_text(_lua_script(w, recorded=one_each))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=duration + 60, check=True
    ).stdout
    return parse_wrk_output(out, connections)


def parse_wrk_output(out: str, connections: int) -> LoadResult:
    """The :class:`LoadResult` of one wrk run from its output with the Lua script's
    ``MTBENCH_*`` lines (``MTBENCH_HIST`` lines, if any: the recorded latencies)."""
    status = re.search(r"MTBENCH_STATUS (\d+) (\d+) (\d+)", out)
    req = re.search(r"MTBENCH_REQ (\d+) (\d+)", out)
    if not status or not req:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    lat = {m.group(1): float(m.group(2)) for m in re.finditer(r"MTBENCH_LAT ([\d.]+) (\d+)", out)}
    recorded: dict[int, int] = {}
    for m in re.finditer(r"MTBENCH_HIST (\d+) (\d+)", out):
        recorded[int(m.group(1))] = recorded.get(int(m.group(1)), 0) + int(m.group(2))
    requests, duration_us = int(req.group(1)), int(req.group(2))
    # wrk's own interval for its correction: runtime / (requests per connection), in µs
    per_conn = requests // connections
    expected = duration_us // per_conn if per_conn else 0
    errors = int(status.group(3))
    sock_err = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sock_err:
        errors += sum(int(x) for x in sock_err.groups())
    corrected = wrk_correct(recorded, expected)
    return LoadResult(
        requests=requests,
        seconds=duration_us / 1e6,
        ok=int(status.group(1)),
        conflicts=int(status.group(2)),
        errors=errors,
        latency_us=lat,
        generator="wrk",
        recorded_latency_us={str(p): float(hist_percentile(recorded, p)) for p in PERCENTILES}
        if recorded
        else {},
        recorded_corrected_latency_us={
            str(p): float(hist_percentile(corrected, p)) for p in PERCENTILES
        }
        if recorded
        else {},
    )


async def _py_load(port: int, w: Workload, connections: int, duration: float) -> LoadResult:
    import httpx

    run = f"{time.time_ns()}"
    lat: list[int] = []
    counts = {"ok": 0, "409": 0, "err": 0}
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10
    ) as client:

        async def worker(tid: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                path = w.paths[n % len(w.paths)]
                body = None
                if w.bodies:
                    body = (
                        w.bodies[n % len(w.bodies)]
                        .replace("{n}", str(n))
                        .replace("{t}", str(tid))
                        .replace("{run}", run)
                    )
                t0 = time.perf_counter_ns()
                try:
                    resp = await client.request(w.method, path, content=body, headers=w.headers)
                    code = resp.status_code
                except httpx.HTTPError:
                    code = 0
                lat.append(time.perf_counter_ns() - t0)
                if code == 409:
                    counts["409"] += 1
                elif 200 <= code < 300:
                    counts["ok"] += 1
                else:
                    counts["err"] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        seconds = time.monotonic() - started
    lat.sort()
    pcts = {str(p): _data.percentile(lat, p) * 1000 for p in PERCENTILES}
    return LoadResult(
        requests=len(lat),
        seconds=seconds,
        ok=counts["ok"],
        conflicts=counts["409"],
        errors=counts["err"],
        latency_us=pcts,
        generator="python-httpx",
        recorded_latency_us=dict(pcts),
    )


def load(port: int, w: Workload, connections: int, duration: float, tmp: Path) -> LoadResult:
    if shutil.which("wrk"):
        return run_wrk(port, w, connections, duration, tmp)
    return asyncio.run(_py_load(port, w, connections, duration))


# -- memtrace specifics --------------------------------------------------------------------------


def create_key(store_url: str, logdir: Path) -> str | None:
    """An admin/write key for org_default made with the CLI before the server starts."""
    cmd = [
        *memtrace_cli(),
        "key",
        "create",
        "--store",
        store_url,
        "--org",
        "org_default",
        "--name",
        "bench",
    ]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    (logdir / "key-create.log").write_text(res.stdout + res.stderr)
    match = KEY_RE.search(res.stdout + res.stderr)
    return match.group(0) if res.returncode == 0 and match else None


def start_memtrace(name: str, store_url: str, workers: int, logdir: Path) -> tuple[Server, str]:
    key = create_key(store_url, logdir)
    port = free_port()
    cmd = [
        *memtrace_cli(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        store_url,
        "--workers",
        str(workers),
    ]
    env = dict(os.environ, MEMTRACE_LOG_LEVEL="warning", MEMTRACE_ACCESS_LOG="false")
    server = start(name, cmd, logdir, port, logdir, env=env)
    if key is None:
        match = KEY_RE.search(server.output())
        if not match:
            server.stop()
            raise RuntimeError(
                "no API key: `memtrace key create` failed and the server printed no first-run key; "
                f"see {logdir}"
            )
        key = match.group(0)
    return server, key


def start_floor(workers: int, tmp: Path, logdir: Path) -> Server:
    appdir = tmp / "floor"
    appdir.mkdir(exist_ok=True)
    (appdir / "floor_app.py").write_text(FLOOR_APP)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "sanic",
        "floor_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-logs",
        "--no-motd",
    ]
    return start("floor", cmd, appdir, port, logdir)


def _memory_body(words: str, extra: str = "") -> str:
    return json.dumps(
        {
            "agent_id": "bench-{t}",
            "content": f"wrk {{run}} t{{t}} n{{n}}{extra}: {words}",
            "event_type": "observation",
            "tags": ["bench"],
        }
    )


def write_workloads(key: str) -> tuple[Workload, Workload]:
    import random

    rng = random.Random(7)
    headers = {"Content-Type": "application/json", "x-api-key": key}
    single = Workload(
        "POST",
        ["/api/v1/memories"],
        [_memory_body(_data.words(rng, rng.randint(6, 30))) for _ in range(200)],
        headers,
    )
    batches = []
    for _ in range(20):
        items = [
            json.loads(_memory_body(_data.words(rng, rng.randint(6, 30)), extra=f" i{i}"))
            for i in range(100)
        ]
        batches.append(json.dumps({"memories": items}))
    return single, Workload("POST", ["/api/v1/memories"], batches, headers)


def read_workloads(key: str, meta: dict[str, Any], seed: int) -> dict[str, Workload]:
    from urllib.parse import quote

    headers = {"Content-Type": "application/json", "x-api-key": key}
    since = datetime.fromtimestamp((meta["anchor_us"] - _data.DAY_US) / 1e6, tz=UTC).isoformat()
    agents: list[str] = meta["agents"]
    return {
        "list": Workload(
            "GET",
            [
                f"/api/v1/memories?agent_id={a}&since={quote(since)}&limit=100&order=desc"
                for a in agents
            ],
            None,
            headers,
        ),
        "search": Workload(
            "POST",
            ["/api/v1/search"],
            [json.dumps({"query": q}) for q in _data.make_queries(500, seed)],
            headers,
        ),
        "context": Workload(
            "POST",
            [f"/api/v1/sessions/{meta['context_session']}/context"],
            [json.dumps({"since": since})],
            headers,
        ),
    }


# -- main ----------------------------------------------------------------------------------------


def _ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="memtrace-server benchmark (loopback)")
    ap.add_argument("--memories", type=int, default=1_000_000, help="read-phase store size")
    ap.add_argument("--quick", action="store_true", help="50k store, 3 s phases")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--batch-connections", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-reads", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.memories = 50_000
        args.duration = min(args.duration, 3.0)

    import core_bench

    machine = _data.machine_info()
    results: dict[str, Any] = {
        "machine": machine,
        "workers": args.workers,
        "duration_s": args.duration,
    }
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="mt-server-bench-") as tmpname:
        tmp = Path(tmpname)
        logdir = tmp / "logs"
        logdir.mkdir()
        try:
            # 1. floor
            _log("floor: minimal Sanic app ...")
            floor = start_floor(args.workers, tmp, logdir)
            servers.append(floor)
            single_floor, _ = write_workloads("unused")
            floor_res = load(floor.port, single_floor, args.connections, args.duration, tmp)
            # and at one connection: the latency floor (the tail of this machine and Sanic)
            floor_c1 = load(floor.port, single_floor, 1, args.duration, tmp)
            floor.stop()

            # 2-4. writes on an empty store
            _log("memtrace: writes on an empty store ...")
            url = "sqlite:///" + str(tmp / "writes.db")
            srv, key = start_memtrace("memtrace-writes", url, args.workers, logdir)
            servers.append(srv)
            single, batch = write_workloads(key)
            load(srv.port, single, 4, min(2.0, args.duration), tmp)  # warm-up
            writes = load(srv.port, single, args.connections, args.duration, tmp)
            write_c1 = load(srv.port, single, 1, args.duration, tmp)
            batch_res = load(srv.port, batch, args.batch_connections, args.duration, tmp)
            srv.stop()

            results["floor"] = floor_res.__dict__
            results["floor_c1"] = floor_c1.__dict__
            results["single_c64"] = writes.__dict__
            results["single_c1"] = write_c1.__dict__
            results["batch"] = batch_res.__dict__
            results["ratio"] = round(writes.ok_rps / floor_res.rps, 3) if floor_res.rps else None

            # 5. reads on the big store
            if not args.skip_reads:
                meta = core_bench.ensure_store(args.memories, args.seed, 1000, rebuild=False)
                db, _ = core_bench.cache_paths(args.memories, args.seed)
                _log(f"memtrace: reads on a copy of the {args.memories:,}-memory store ...")
                work_db = tmp / "reads.db"
                shutil.copyfile(db, work_db)
                srv, key = start_memtrace(
                    "memtrace-reads", "sqlite:///" + str(work_db), args.workers, logdir
                )
                servers.append(srv)
                for name, wl in read_workloads(key, meta, args.seed).items():
                    load(srv.port, wl, 1, min(1.0, args.duration), tmp)  # warm-up
                    results[f"read_{name}"] = load(srv.port, wl, 1, args.duration, tmp).__dict__
                srv.stop()
        finally:
            for s in servers:
                s.stop()

    results["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    m = machine
    print(f"memtrace-server benchmark — {m['date']}")
    print(
        f"machine: {m['cpu']} ({m['nproc']} cores), Python {m['python']}, SQLite {m['sqlite']}, load at start {m['loadavg']}"
    )
    print(
        f"workers: {args.workers} (server and floor), phases {args.duration:g} s, load generator: {writes.generator}"
    )
    print()
    rows: list[tuple[str, str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    ratio = results["ratio"] or 0.0
    rows.append(
        (
            f"single POST /memories, {args.connections} conns: memtrace / Sanic floor",
            f"{ratio:.2f}  ({writes.ok_rps:,.0f}/s vs {floor_res.rps:,.0f}/s)",
            "≥ 0.30",
            verdict(ratio >= 0.3),
        )
    )
    rows.append(
        (
            "  responses 2xx / 409 / other",
            f"{writes.ok:,} / {writes.conflicts:,} / {writes.errors:,}",
            "(info)",
            "",
        )
    )
    p50 = write_c1.latency_us.get("50", float("nan"))
    rows.append(
        (
            "single POST latency, 1 conn p50 / p99 (wrk, corrected)",
            f"{_ms(p50)} / {_ms(write_c1.latency_us.get('99', float('nan')))}",
            "p50 < 2 ms",
            verdict(p50 < 2000),
        )
    )
    rec = write_c1.recorded_latency_us
    if rec:
        rows.append(
            (
                "  the same requests as recorded, p50 / p99 / p99.9",
                " / ".join(_ms(rec.get(k, float("nan"))) for k in ("50", "99", "99.9")),
                "(info)",
                "",
            )
        )
    fl = floor_c1.latency_us
    rows.append(
        (
            "  minimal Sanic floor, 1 conn p50 / p99 / p99.9",
            f"{_ms(fl.get('50', float('nan')))} / {_ms(fl.get('99', float('nan')))} / "
            f"{_ms(fl.get('99.9', float('nan')))}",
            "(info)",
            "",
        )
    )
    mem_s = batch_res.ok_rps * 100
    rows.append(
        (
            f"batch POST (100/request), {args.batch_connections} conns",
            f"{mem_s:,.0f} memories/s ({batch_res.ok:,} ok, {batch_res.conflicts + batch_res.errors} not)",
            "≥ 20,000/s",
            verdict(mem_s >= 20_000),
        )
    )
    for name, label in (
        ("list", "GET /memories (1 agent, 24 h, limit 100)"),
        ("search", "POST /search (keyword query)"),
        ("context", "POST /sessions/{id}/context (500-memory session)"),
    ):
        r = results.get(f"read_{name}")
        if r:
            rows.append(
                (
                    f"{label} p50 / p99",
                    f"{_ms(r['latency_us'].get('50', 0))} / {_ms(r['latency_us'].get('99', 0))}"
                    + (f"  ({r['errors']} errors)" if r["errors"] else ""),
                    "(info)",
                    "",
                )
            )
    widths = [
        max(len(r[i]) for r in [("figure", "measured", "target", ""), *rows]) for i in range(4)
    ]
    header = "  ".join(
        h.ljust(w) for h, w in zip(("figure", "measured", "target", ""), widths, strict=True)
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(f"\nload average at end: {results['load_at_end']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
