#!/usr/bin/env python3
"""MCP server benchmark (issue 12): what a tool call through ``memtrace mcp`` costs, against the
same operation on the method set directly and over the REST API, in one run.

Usage (the main environment: mcp installed)::

    .venv/bin/python benchmarks/mcp_bench.py            # 400 calls per arm and operation
    .venv/bin/python benchmarks/mcp_bench.py --quick    # 100

Arms, on one SQLite file in a temporary directory (removed at exit), loopback only:

* ``engine`` — ``AsyncMemtrace`` in this process (``add_memory`` / ``search_memories`` /
  ``list_memories``): the floor;
* ``rest`` — ``AsyncMemtraceClient`` against ``memtrace serve`` (in this process's thread);
* ``mcp stdio`` — the SDK's client, ``memtrace mcp --url sqlite:///…`` spawned over stdio;
* ``mcp http`` — the SDK's client over streamable HTTP, ``memtrace mcp --transport http``
  on the embedded store, one client session for the run (each call is one POST).

Operations: ``remember`` (a unique 12-word memory), ``search`` (3 keywords of a stored memory,
limit 10, ranked) and ``recall`` (last 24 h, limit 20) on a store that holds 2,000 memories
before the timed calls. Arms run call by call in turn (engine, rest, stdio, http), after 20
warm-up calls each, so machine noise hits them alike. Printed: p50 / p95 per arm and operation
in ms, and each arm's p50 as a multiple of the engine's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORDS = [f"w{i}" for i in range(5000)]


def _content(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(12)) + f" item{n}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_http(url: str) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "memtrace_server", "mcp", "--transport", "http",
         "--port", str(port), "--url", url, "--agent-id", "bench"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    while "streamable HTTP at" not in (line := proc.stderr.readline()):
        if not line:
            raise RuntimeError("memtrace mcp --transport http did not start")
    return proc, port


async def main(calls: int) -> None:
    from mcp.client.stdio import stdio_client

    from mcp import ClientSession, StdioServerParameters
    from memtrace_core import open_engine
    from memtrace_core.client import AsyncMemtraceClient
    from memtrace_server.testing import bootstrap_admin_key, config_for, serve_in_thread

    sys.path.insert(0, str(ROOT / "tests" / "mcp"))
    from mcp_support import http_session  # the tests' compat helper for both SDK majors

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        key = await bootstrap_admin_key(url)
        engine = await open_engine(url)
        for start in (1, 1001):
            await engine.add_memories(
                [
                    {"agent_id": "bench", "content": _content(rng, -i)}
                    for i in range(start, start + 1000)
                ]
            )
        http_proc, port = _start_http(url)
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "memtrace_server", "mcp", "--url", url, "--agent-id", "bench"],
        )
        with serve_in_thread(config_for(url)) as live:
            rest = AsyncMemtraceClient(live.url, api_key=key)
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(stdio_client(params))
                stdio = await stack.enter_async_context(ClientSession(read, write))
                await stdio.initialize()
                http = await stack.enter_async_context(
                    http_session(f"http://127.0.0.1:{port}/mcp", {"x-api-key": key})
                )
                await run_arms(engine, rest, stdio, http, calls, rng)
            await rest.close()
        http_proc.terminate()
        http_proc.wait(20)
        await engine.close()


async def run_arms(
    engine: Any, rest: Any, stdio: Any, http: Any, calls: int, rng: random.Random
) -> None:
    counter = [0]
    stored: list[str] = []

    def remember_args() -> dict[str, Any]:
        counter[0] += 1
        text = _content(rng, counter[0])
        stored.append(text)
        return {"agent_id": "bench", "content": text}

    def search_args() -> dict[str, Any]:
        words = rng.choice(stored).split()[:12]
        return {"query": " ".join(rng.sample(words, 3)), "limit": 10}

    recall_args = {"agent_id": "bench", "since": "24h", "limit": 20}

    async def tool(session: Any, name: str, args: dict[str, Any]) -> None:
        result = await session.call_tool(name, args)
        if result.model_dump(by_alias=True).get("isError"):
            raise RuntimeError(f"{name} failed: {result}")

    ops: dict[str, dict[str, Callable[[], Awaitable[Any]]]] = {
        "remember": {
            "engine": lambda: engine.add_memory(remember_args()),
            "rest": lambda: rest.add_memory(remember_args()),
            "mcp stdio": lambda: tool(stdio, "memtrace_remember", remember_args()),
            "mcp http": lambda: tool(http, "memtrace_remember", remember_args()),
        },
        "search": {
            "engine": lambda: engine.search_memories(search_args()),
            "rest": lambda: rest.search_memories(search_args()),
            "mcp stdio": lambda: tool(stdio, "memtrace_search", search_args()),
            "mcp http": lambda: tool(http, "memtrace_search", search_args()),
        },
        "recall": {
            "engine": lambda: engine.list_memories({**recall_args, "order": "desc"}),
            "rest": lambda: rest.list_memories({**recall_args, "order": "desc"}),
            "mcp stdio": lambda: tool(stdio, "memtrace_recall", recall_args),
            "mcp http": lambda: tool(http, "memtrace_recall", recall_args),
        },
    }
    from memtrace_server.mcpserver.compat import mcp_version

    print(f"mcp {mcp_version()} · {calls} calls per arm and operation "
          f"(after 20 warm-up) · 2,000 memories stored first")  # fmt: skip
    print(f"{'operation':<10} {'arm':<10} {'p50 ms':>8} {'p95 ms':>8} {'p50 / engine':>13}")
    for op, arms in ops.items():
        times: dict[str, list[float]] = {arm: [] for arm in arms}
        for i in range(calls + 20):
            for arm, call in arms.items():
                started = time.perf_counter()
                await call()
                if i >= 20:
                    times[arm].append((time.perf_counter() - started) * 1000)
        floor = statistics.median(times["engine"])
        for arm, samples in times.items():
            samples.sort()
            p50 = statistics.median(samples)
            p95 = samples[int(len(samples) * 0.95) - 1]
            print(f"{op:<10} {arm:<10} {p50:8.2f} {p95:8.2f} {p50 / floor:12.1f}×")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 calls per arm")
    ns = parser.parse_args()
    asyncio.run(main(100 if ns.quick else 400))
