"""MemtraceHandle: one handle for code called both synchronously and from coroutines."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import ValidationError, aconnect, connect
from memtrace_core.bridge import MemtraceHandle
from threads import follow, run_threads


@pytest.mark.parametrize("any_loop", [True, False])
def test_a_blocking_handle_serves_both_halves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, any_loop: bool
) -> None:
    """Over SQLite (a loop-agnostic store) the async half runs on the caller's own loop; over
    any other store on the handle's portal loop."""
    mt = connect(f"sqlite:///{tmp_path / 'm.db'}")
    if not any_loop:
        monkeypatch.setattr(type(mt.aio.store), "loop_agnostic", False)
    assert mt.aio.loop_agnostic is any_loop
    handle = MemtraceHandle(mt)
    assert not handle.is_async_only
    handle.sync.remember("bot", "from sync code")

    async def main() -> list[str]:
        loop_thread = threading.get_ident()
        seen: list[int] = []

        async def call(api: Any) -> Any:
            seen.append(threading.get_ident())
            await api.remember("bot", "from async code")
            return await api.recall("bot")

        recalled = await handle.run(call)
        assert seen
        assert (seen[0] == loop_thread) is any_loop
        return [m.content for m in recalled.memories]

    assert asyncio.run(main()) == ["from async code", "from sync code"]
    handle.close()  # not owned: the caller's handle stays open
    assert mt.recall("bot").count == 2
    mt.close()


def test_errors_and_cancellation_cross_the_bridge(tmp_path: Path) -> None:
    mt = connect(f"sqlite:///{tmp_path / 'm.db'}")
    handle = MemtraceHandle(mt)
    started = threading.Event()
    cancelled = threading.Event()

    async def slow(api: Any) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main() -> None:
        with pytest.raises(ValidationError):
            await handle.run(lambda api: api.remember("bot", "   "))
        task = asyncio.ensure_future(handle.run(slow))
        assert await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cancelled.wait(5)
    mt.close()


async def test_an_async_handle_is_async_only(tmp_path: Path) -> None:
    mt = await aconnect(f"sqlite:///{tmp_path / 'm.db'}")
    handle = MemtraceHandle(mt)
    assert handle.is_async_only
    await handle.run(lambda api: api.remember("bot", "async"))
    with pytest.raises(TypeError, match="async-only"):
        handle.sync.recall("bot")
    assert (await handle.run(lambda api: api.recall("bot"))).count == 1
    await mt.close()


def test_a_url_is_opened_and_closed_by_the_handle(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    handle = MemtraceHandle(url)
    handle.sync.remember("bot", "owned")
    handle.close()
    with connect(url) as mt:
        assert mt.recall("bot").count == 1
    with pytest.raises(TypeError, match="only when"):
        MemtraceHandle(connect(url), api_key="mtk_x")
    with pytest.raises(TypeError, match="expected a memtrace handle"):
        MemtraceHandle(object())  # type: ignore[arg-type]


def test_a_blocking_only_method_set_serves_coroutines() -> None:
    class Mine:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def remember(self, agent_id: str, content: str) -> str:
            self.calls.append((agent_id, content))
            return "mem_1"

    mine = Mine()
    handle = MemtraceHandle(mine)  # type: ignore[arg-type]

    async def main() -> str:
        return str(await handle.run(lambda api: api.remember("bot", "x")))

    assert asyncio.run(main()) == "mem_1"
    assert mine.calls == [("bot", "x")]


def test_a_closed_handle_says_so(tmp_path: Path) -> None:
    mt = connect(f"sqlite:///{tmp_path / 'm.db'}")
    handle = MemtraceHandle(mt)
    mt.close()
    with pytest.raises(RuntimeError, match="closed"):
        mt.recall("bot")

    async def main() -> None:
        with pytest.raises(RuntimeError, match="closed"):
            await handle.run(lambda api: api.recall("bot"))

    asyncio.run(main())


def test_async_callers_on_many_loops_share_one_blocking_handle(tmp_path: Path) -> None:
    """Threads with a loop each await one SQLite handle at once (the engine runs on each
    caller's loop): every write lands once, reads see them, the agent cache survives
    concurrent changes, and a blocking watch on the handle's own loop sees every write."""
    mt = connect(f"sqlite:///{tmp_path / 'm.db'}")
    handle = MemtraceHandle(mt)
    watch = mt.watch(agent_id="w")
    follower, seen = follow(watch, 160)
    threads_used: set[int] = set()

    def worker(t: int) -> None:
        async def main() -> None:
            async def one(api: Any, j: int) -> None:
                threads_used.add(threading.get_ident())
                await api.remember("w", f"t{t} m{j}", tags=[f"t{t}"])
                if j % 5 == 0:
                    await api.register_agent(name=f"agent-{t}-{j}")
                    await api.delete_agent(f"agent-{t}-{j}")
                found = await api.list_memories(agent_id="w", tags=[f"t{t}"], limit=100)
                assert f"t{t} m{j}" in [m.content for m in found.memories]

            await asyncio.gather(*(handle.run(lambda api, j=j: one(api, j)) for j in range(20)))

        asyncio.run(main())

    run_threads(worker, 8)
    assert len(threads_used) == 8  # each caller's own thread, not the portal's
    follower.join(30)
    watch.close()
    assert sorted(seen) == sorted(f"t{t} m{j}" for t in range(8) for j in range(20))
    assert mt.list_memories(agent_id="w", limit=1000).count == 160
    mt.close()
