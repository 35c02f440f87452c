#!/usr/bin/env python3
"""Does one request hold the event loop? ``/health`` latency while the worst bodies the limits
allow are being processed, against ``/health`` latency on an idle server (same run).

A ``memtrace serve`` process (1 worker, 127.0.0.1, a fresh SQLite store in a temp dir) is
started; for each scenario, ``--parallel`` heavy requests run back to back for ``--rounds``
rounds while one prober sends ``GET /health`` every 5 ms on its own connection. Printed per
scenario: the heavy request's median time, and the prober's p50 / p99 / max latency (ms); the
ratio of the max to the idle p99 is the stall factor. Everything is bounded (rounds, a 60 s
timeout per request) and the server is stopped at the end.

Scenarios (defaults of ``[limits]`` and ``server.max_body_bytes``):

- ``batch``: a batch of 1,000 memories of ~4 KiB content each (just under the 4 MiB body limit);
- ``tags``: one memory with 100,000 unique tags (1.1 MB; rejected: too many tags);
- ``search_tags``: a search filtered by 100,000 tags (rejected);
- ``query``: ranked searches with a 2,000-character query of distinct words and ``limit`` 1000
  (the largest ranked window) over the store the batches filled;
- ``list``: ``GET /api/v1/memories?limit=1000`` (1,000 memories of ~4 KiB: a 4 MB response);
- ``context``: a session context over 1,000 memories.

Usage::

    .venv/bin/python benchmarks/loop_stall_bench.py [--rounds 5] [--parallel 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

API = "/api/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def words(n: int, rng: random.Random) -> list[str]:
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(n)]


def bodies(rng: random.Random) -> dict[str, tuple[str, str, Any]]:
    vocab = words(5000, rng)

    def content(i: int) -> str:
        return f"memory {i} " + " ".join(rng.choice(vocab) for _ in range(580))

    batch = {
        "memories": [
            {"agent_id": "bench", "session_id": "sess_bench", "content": content(i)}
            for i in range(1000)
        ]
    }
    query = " ".join(vocab[:285])[:2000]
    return {
        "batch": ("POST", f"{API}/memories", batch),
        "tags": (
            "POST",
            f"{API}/memories",
            {"agent_id": "a", "content": "x", "tags": [f"t{i}" for i in range(100_000)]},
        ),
        "search_tags": ("POST", f"{API}/search", {"tags": [f"t{i}" for i in range(100_000)]}),
        "query": ("POST", f"{API}/search", {"query": query, "limit": 1000}),
        "list": ("GET", f"{API}/memories?limit=1000&since=30d", None),
        "context": (
            "POST",
            f"{API}/sessions/sess_bench/context",
            {"limit": 1000, "since": "30d", "max_tokens": 10_000_000},
        ),
    }


async def probe(url: str, stop: asyncio.Event, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = await http.get("/health")
            out.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200
            await asyncio.sleep(0.005)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def scenario(
    url: str, key: str, name: str, spec: tuple[str, str, Any], rounds: int, parallel: int
) -> dict[str, Any]:
    method, path, body = spec
    raw = None if body is None else json.dumps(body).encode()
    headers = {"x-api-key": key, "content-type": "application/json"}
    stop = asyncio.Event()
    health: list[float] = []
    prober = asyncio.create_task(probe(url, stop, health))
    await asyncio.sleep(0.2)
    idle = list(health)
    health.clear()
    times: list[float] = []
    statuses: set[int] = set()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:

        async def one() -> None:
            for _ in range(rounds):
                t0 = time.perf_counter()
                r = await http.request(method, path, content=raw)
                times.append((time.perf_counter() - t0) * 1000)
                statuses.add(r.status_code)

        await asyncio.gather(*(one() for _ in range(parallel)))
    stop.set()
    await prober
    return {
        "scenario": name,
        "body_bytes": len(raw or b""),
        "statuses": sorted(statuses),
        "heavy_ms_p50": round(statistics.median(times), 1),
        "idle_health_p99_ms": round(pct(idle, 0.99), 2) if idle else None,
        "health_p50_ms": round(pct(health, 0.5), 2),
        "health_p99_ms": round(pct(health, 0.99), 2),
        "health_max_ms": round(max(health), 2),
        "health_samples": len(health),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", nargs="*", help="scenario names")
    args = parser.parse_args()
    rng = random.Random(7)
    specs = bodies(rng)
    with tempfile.TemporaryDirectory(prefix="memtrace-stall-") as tmp:
        store = f"sqlite:///{Path(tmp) / 'stall.db'}"
        sys.path.insert(
            0, str(Path(__file__).resolve().parents[1] / "packages/memtrace-server/src")
        )
        from memtrace_server.testing import bootstrap_admin_key

        key = asyncio.run(bootstrap_admin_key(store))
        port = free_port()
        env = {**os.environ, "MEMTRACE_LOG_LEVEL": "warning", "MEMTRACE_DEDUP_ENABLED": "false"}
        cmd = [sys.executable, "-m", "memtrace_server.cli", "serve", "--port", str(port)]
        proc = subprocess.Popen(
            [*cmd, "--store", store],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            results = []
            for name, spec in specs.items():
                if args.only and name not in args.only:
                    continue
                results.append(
                    asyncio.run(scenario(url, key, name, spec, args.rounds, args.parallel))
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{'scenario':<12} {'body':>9} {'status':>9} {'heavy p50':>10} "
        f"{'idle p99':>9} {'health p50':>11} {'p99':>8} {'max':>8}"
    )
    for r in results:
        print(
            f"{r['scenario']:<12} {r['body_bytes']:>9} {','.join(map(str, r['statuses'])):>9} "
            f"{r['heavy_ms_p50']:>9.1f}ms {r['idle_health_p99_ms'] or 0:>8.2f}ms "
            f"{r['health_p50_ms']:>10.2f}ms {r['health_p99_ms']:>7.2f}ms {r['health_max_ms']:>7.2f}ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
