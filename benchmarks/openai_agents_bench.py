"""MemtraceSession vs the OpenAI Agents SDK's SQLiteSession, side by side in one run.

    python benchmarks/openai_agents_bench.py            # sessions of 100 and 10,000 items
    python benchmarks/openai_agents_bench.py --quick    # sessions of 100 and 2,000 items

(in an environment with openai-agents, e.g. ``.venv-openai-agents`` built by
``scripts/dev.py test``). Arms, each on its own file in a temporary directory:

* ``memtrace`` — ``MemtraceSession`` over ``connect("sqlite:///…")`` (the embedded engine);
* ``engine`` — the engine calls that ``MemtraceSession`` makes, made directly on the same kind
  of handle: ``add_memories`` with the same memory dicts, and ``search_memories(namespace=…,
  order="desc", limit=20)`` for the latest 20 (the adapter's overhead is memtrace / engine),
  awaited where the session's handle awaits them: on this loop for an engine that may run on
  any (SQLite), else on the handle's portal loop;
* ``SQLiteSession`` — the SDK's file-backed session (``SQLiteSession(id, db_path)``).

Figures: ``add_items`` of 3 items per call (a user message, a function call and its output —
one tool-calling turn) p50 and throughput, and ``get_items(limit=20)`` p50, on a session that
already holds 100 or 10,000 items. The arms are interleaved call by call, after warm-up, in an
order that rotates every round.
Targets (issue 10): adapter / engine ≤ 1.10; memtrace / SQLiteSession ≤ 1.5 on both figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for pkg in ("memtrace-core", "memtrace-server", "memtrace-openai-agents"):
    sys.path.insert(0, str(ROOT / "packages" / pkg / "src"))

from agents import SQLiteSession  # noqa: E402

from memtrace_core import connect  # noqa: E402
from memtrace_openai_agents import MemtraceSession  # noqa: E402
from memtrace_openai_agents.session import (  # noqa: E402
    NAMESPACE,
    item_content,
    item_event_type,
)


def turn(n: int) -> list[dict[str, Any]]:
    """One tool-calling turn: the user's message, the model's call and the tool's output."""
    call_id = f"call_{n}"
    return [
        {"role": "user", "content": f"What is the status of order {n}? Please check it."},
        {
            "type": "function_call",
            "call_id": call_id,
            "name": "order_status",
            "arguments": f'{{"order_id": {n}}}',
            "id": f"fc_{n}",
        },
        {
            "type": "function_call_output",
            "call_id": call_id,
            "output": f"Order {n} shipped on 2026-11-{1 + n % 28:02d} via carrier {n % 7}.",
        },
    ]


def engine_memories(items: list[dict[str, Any]], sid: str) -> list[dict[str, Any]]:
    """The memory dicts ``MemtraceSession.add_items`` writes for ``items``."""
    return [
        {
            "agent_id": "openai-agents",
            "memory_type": "session",
            "event_type": item_event_type(item),
            "content": item_content(item),
            "payload": item,
            "dedup": False,
            "namespace": [*NAMESPACE, sid],
            "session_id": sid,
        }
        for item in items
    ]


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


def p50(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


async def run_size(size: int, samples: int, tmp: Path) -> dict[str, dict[str, float]]:
    sid = f"bench_{size}"
    mt_session = connect(f"sqlite:///{tmp / f'session-{size}.db'}")
    mt_engine = connect(f"sqlite:///{tmp / f'engine-{size}.db'}")
    memtrace = MemtraceSession(sid, mt_session)
    sqlite = SQLiteSession(sid, str(tmp / f"sdk-{size}.db"))
    # prefill: `size` items, 300 per call
    items = [item for n in range(size // 3 + 1) for item in turn(n)][:size]
    for start in range(0, len(items), 300):
        chunk = items[start : start + 300]
        await memtrace.add_items(chunk)
        await asyncio.to_thread(mt_engine.add_memories, engine_memories(chunk, sid))
        await sqlite.add_items(chunk)
    aio = mt_engine.aio
    loop = mt_engine._portal.loop  # type: ignore[attr-defined]

    async def on_engine(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        # where the session's handle runs it: on this loop when the engine may run on any
        # (SQLite), else on the handle's portal loop
        if getattr(aio, "loop_agnostic", False):
            return await coro_fn()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro_fn(), loop))  # type: ignore[arg-type]

    async def engine_latest() -> list[Any]:
        found = await on_engine(
            lambda: aio.search_memories(namespace=[*NAMESPACE, sid], order="desc", limit=20)
        )
        return [m.payload for m in reversed(found.results)]

    arms_add: dict[str, Callable[[int], Awaitable[Any]]] = {
        "memtrace": lambda n: memtrace.add_items(turn(n)),
        "engine": lambda n: on_engine(lambda: aio.add_memories(engine_memories(turn(n), sid))),
        "SQLiteSession": lambda n: sqlite.add_items(turn(n)),
    }
    arms_get: dict[str, Callable[[], Awaitable[Any]]] = {
        "memtrace": lambda: memtrace.get_items(limit=20),
        "engine": engine_latest,
        "SQLiteSession": lambda: sqlite.get_items(limit=20),
    }
    # the same answer from every arm
    latest = [await arms_get[name]() for name in arms_get]
    assert latest[0] == latest[1] == latest[2], "the arms disagree on the latest 20 items"
    out: dict[str, dict[str, float]] = {name: {} for name in arms_add}
    for phase in ("warm", "measure"):
        adds: dict[str, list[float]] = {name: [] for name in arms_add}
        gets: dict[str, list[float]] = {name: [] for name in arms_get}
        rounds = 20 if phase == "warm" else samples
        names = list(arms_add)
        for i in range(rounds):
            # the arms' order rotates every round: the first call after another arm's write
            # runs on cold caches, and a fixed order gave that cost to one arm every time
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                n = 10_000_000 + i + (0 if phase == "measure" else 5_000_000)
                adds[name].append(await timed(lambda name=name, n=n: arms_add[name](n)))
            for name in order:
                gets[name].append(await timed(arms_get[name]))
        if phase == "measure":
            for name in arms_add:
                out[name]["add_p50_ms"] = p50(adds[name])
                out[name]["add_items_per_s"] = 3 * len(adds[name]) / sum(adds[name])
                out[name]["get20_p50_ms"] = p50(gets[name])
    sqlite.close()
    mt_session.close()
    mt_engine.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sessions of 100 and 2,000 items")
    parser.add_argument("--samples", type=int, default=300, help="timed calls per arm and figure")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    args = parser.parse_args()
    sizes = (100, 2_000) if args.quick else (100, 10_000)
    samples = 100 if args.quick else args.samples
    if args.json:
        with tempfile.TemporaryDirectory() as tmp:
            sessions = {str(size): await run_size(size, samples, Path(tmp)) for size in sizes}
        print(json.dumps({"samples": samples, "sessions": sessions}, indent=1))
        return
    print(
        f"machine: {platform.processor() or platform.machine()} ×{os.cpu_count()}, "
        f"load {[round(x, 2) for x in os.getloadavg()]}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            res = await run_size(size, samples, Path(tmp))
            print(f"\n== session of {size:,} items ({samples} calls per arm, interleaved) ==")
            print(f"{'':24}{'memtrace':>14}{'engine':>14}{'SQLiteSession':>16}")
            for key, label in (
                ("add_p50_ms", "add_items(3) p50 ms"),
                ("add_items_per_s", "add items/s"),
                ("get20_p50_ms", "get_items(20) p50 ms"),
            ):
                row = [res[a][key] for a in ("memtrace", "engine", "SQLiteSession")]
                fmt = "{:>14,.0f}" if key == "add_items_per_s" else "{:>14.3f}"
                print(f"{label:24}" + "".join(fmt.format(v) for v in row))
            m, e, s = (res[a] for a in ("memtrace", "engine", "SQLiteSession"))
            print("ratios:")
            print(
                f"  adapter / engine, add p50          {m['add_p50_ms'] / e['add_p50_ms']:.3f}  (target <= 1.10)"
            )
            print(
                f"  adapter / engine, get_items(20) p50 {m['get20_p50_ms'] / e['get20_p50_ms']:.3f}  (target <= 1.10)"
            )
            print(
                f"  memtrace / SQLiteSession, add p50  {m['add_p50_ms'] / s['add_p50_ms']:.3f}  (target <= 1.5)"
            )
            print(
                f"  memtrace / SQLiteSession, get p50  {m['get20_p50_ms'] / s['get20_p50_ms']:.3f}  (target <= 1.5)"
            )


if __name__ == "__main__":
    asyncio.run(main())
