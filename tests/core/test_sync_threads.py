"""Where a blocking handle runs its engine (memtrace_core/sync.py): over the embedded SQLite
store without write plugins (a ``loop_agnostic`` engine) each call runs on the calling
thread, on a private event loop from a small pool, one thread hop fewer each way than the
handle's portal loop; watches, exports, ``close``, calls made where a loop already runs and
calls beyond the pool stay on the portal; over any other store everything does. Threads,
the pool's bound on descriptors and forks are exercised for real."""

from __future__ import annotations

import asyncio
import gc
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import connect, hookimpl, sync
from memtrace_core.plugins import PluginRegistry
from memtrace_core.stores.sqlite import SQLiteStore
from memtrace_core.sync import LOOP_POOL_SIZE, Portal
from threads import follow, run_threads


def _record_threads(mt: Any) -> list[str]:
    """The thread names the store's insert and list calls run their engine side on."""
    names: list[str] = []
    store = mt.aio.store
    insert, list_ = store.insert_memories, store.list_memories

    async def insert_memories(*args: Any, **kwargs: Any) -> Any:
        names.append(threading.current_thread().name)
        return await insert(*args, **kwargs)

    async def list_memories(*args: Any, **kwargs: Any) -> Any:
        names.append(threading.current_thread().name)
        return await list_(*args, **kwargs)

    store.insert_memories, store.list_memories = insert_memories, list_memories
    return names


@pytest.mark.parametrize("any_loop", [True, False])
def test_calls_run_on_the_calling_thread_over_sqlite_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, any_loop: bool
) -> None:
    if not any_loop:  # a store that does not say it may run on any loop
        monkeypatch.setattr(SQLiteStore, "loop_agnostic", False)
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        names = _record_threads(mt)
        mt.remember("bot", "one")
        assert [m.content for m in mt.recall("bot").memories] == ["one"]
        here = threading.current_thread().name
        assert names == ([here, here] if any_loop else ["memtrace-portal"] * 2)


def test_a_call_from_a_running_loop_goes_through_the_portal(tmp_path: Path) -> None:
    """A blocking method called inside a coroutine cannot run a second loop on that thread:
    it goes to the portal (and blocks the caller's loop, as a blocking call does)."""
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        names = _record_threads(mt)

        async def inside() -> int:
            mt.remember("bot", "from a coroutine")
            return mt.recall("bot").count

        assert asyncio.run(inside()) == 1
        assert names == ["memtrace-portal"] * 2


def test_watches_exports_and_views_stay_consistent(tmp_path: Path) -> None:
    """A blocking watch runs on the portal and sees writes made on other threads' loops; an
    export iterates there too; an org view shares the engine."""
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        watch = mt.watch(agent_id="w")
        follower, got = follow(watch, 40)

        def write(t: int) -> None:
            for j in range(10):
                mt.remember("w", f"t{t} m{j}")

        run_threads(write, 4)
        follower.join(30)
        watch.close()
        expected = sorted(f"t{t} m{j}" for t in range(4) for j in range(10))
        assert sorted(got) == expected
        lines = list(mt.iter_export(agent_id="w"))
        assert sum('"kind":"memory"' in line for line in lines) == 40
        other = mt.with_org("org_other")
        other.remember("w", "elsewhere")
        assert other.recall("w").count == 1
        assert mt.recall("w", limit=100).count == 40


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_the_pool_bounds_loops_and_descriptors_however_many_threads_call(tmp_path: Path) -> None:
    """40 threads, all alive and calling at once: at most LOOP_POOL_SIZE private loops (two
    descriptors each) are made, the calls beyond them go through the portal, and every call
    succeeds; the same threads calling again make no new loop."""
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        mt.remember("bot", "warm-up")  # the store's own descriptors are open
        base = len(os.listdir("/proc/self/fd"))
        names = _record_threads(mt)
        start = threading.Barrier(40)

        def work(i: int) -> None:
            for round_ in range(2):
                start.wait(10)
                mt.remember("bot", f"thread {i} round {round_}")

        run_threads(work, 40)
        grown = len(os.listdir("/proc/self/fd")) - base
        assert grown <= 2 * LOOP_POOL_SIZE + 2  # (+2: a reader connection's journal files)
        assert mt.recall("bot", limit=100).count == 81
        on_portal = names.count("memtrace-portal")
        assert len(names) == 80 + 1  # every write, and the recall
        assert on_portal < 80  # most ran on their callers' threads


def test_write_plugins_keep_every_call_on_the_portal(tmp_path: Path) -> None:
    """A before_write / after_write hook may be slow or schedule work on the loop it runs on
    (a webhook task): with one, calls run on the portal, whose loop always runs."""
    delivered: list[str] = []

    class Webhook:
        @hookimpl
        def after_write(self, memories: list[Any], org_id: str) -> None:
            async def post(contents: list[str]) -> None:
                await asyncio.sleep(0.01)
                delivered.extend(contents)

            asyncio.get_running_loop().create_task(post([m.content for m in memories]))

    registry = PluginRegistry(load_entry_points=False, plugins=[Webhook()])
    with connect(f"sqlite:///{tmp_path / 'm.db'}", plugins=registry) as mt:
        assert mt.aio.loop_agnostic is False
        names = _record_threads(mt)
        mt.remember("bot", "main thread")
        thread = threading.Thread(target=lambda: mt.remember("bot", "other thread"))
        thread.start()
        thread.join(10)
        for _ in range(100):
            if len(delivered) == 2:
                break
            threading.Event().wait(0.02)
        assert sorted(delivered) == ["main thread", "other thread"]
        assert names == ["memtrace-portal"] * 2


def test_green_threads_keep_every_call_on_the_portal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under gevent's monkey patching a private loop's poll would block every greenlet."""

    class Monkey:
        @staticmethod
        def is_module_patched(name: str) -> bool:
            return name == "threading"

    monkeypatch.setitem(sys.modules, "gevent.monkey", Monkey())
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        names = _record_threads(mt)
        mt.remember("bot", "green")
        assert names == ["memtrace-portal"]


def test_many_threads_write_and_read_at_once(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:

        def work(t: int) -> None:
            for j in range(25):
                mt.remember("bot", f"t{t} m{j}", tags=[f"t{t}"])
                if j % 10 == 0:
                    mt.register_agent(name=f"agent-{t}-{j}")
                    mt.delete_agent(f"agent-{t}-{j}")
                mine = mt.list_memories(agent_id="bot", tags=[f"t{t}"], limit=100)
                assert mine.count == j + 1

        run_threads(work, 8)
        assert mt.list_memories(agent_id="bot", limit=1000).count == 200


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
@pytest.mark.timeout(60)
def test_a_forked_child_leaves_the_parents_loops_working(tmp_path: Path) -> None:
    """The pool's loops survive a fork in the child as objects sharing the parent's sockets:
    the child makes its own pool and leaves the inherited one untouched (a collection there
    must not close them), and the parent's threads (the forking one and a worker whose loop
    went back to the pool) go on working."""
    with connect(f"sqlite:///{tmp_path / 'parent.db'}") as mt:
        jobs: queue.Queue[Any] = queue.Queue()
        done: queue.Queue[Any] = queue.Queue()

        def worker() -> None:
            while (job := jobs.get()) is not None:
                done.put(job())

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        barrier = threading.Barrier(3)

        def at_once() -> None:
            barrier.wait(10)
            mt.remember("bot", f"at once {threading.get_ident()}")

        pair = [threading.Thread(target=at_once) for _ in range(2)]
        for t in pair:
            t.start()
        barrier.wait(10)
        mt.remember("bot", "before the fork")  # three loops in the pool now
        for t in pair:
            t.join(10)
        jobs.put(lambda: mt.remember("bot", "worker before").id)
        assert done.get(timeout=10)
        pid = os.fork()
        if pid == 0:  # the child: drop what it inherited, a store of its own, exit at once
            code = 1
            try:
                gc.collect()
                with connect(f"sqlite:///{tmp_path / 'child.db'}") as child:
                    child.remember("bot", "in the child")
                    code = 0 if child.recall("bot").count == 1 else 2
                gc.collect()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        try:
            jobs.put(lambda: mt.remember("bot", "worker after").id)
            assert done.get(timeout=10)
            for n in range(10):  # a hang here fails at the test's timeout
                mt.remember("bot", f"after the fork {n}")
            assert mt.recall("bot", limit=100).count == 15
        finally:
            jobs.put(None)


def test_close_while_threads_call_ends_every_call(tmp_path: Path) -> None:
    """close() while eight threads write and read: each call ends, with its result or an
    error saying the store or handle is closed (a write queued after the writer stopped was
    never answered: its thread hung)."""
    from memtrace_core import StoreError

    mt = connect(f"sqlite:///{tmp_path / 'm.db'}")
    mt.remember("bot", "seed")
    stop = threading.Event()
    outcomes: dict[int, str] = {}

    def caller(i: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                if i % 2:
                    mt.remember("bot", f"t{i} n{n}")
                else:
                    mt.list_memories(limit=5)
            except (StoreError, RuntimeError) as exc:
                outcomes[i] = str(exc)
                return
            n += 1
        outcomes[i] = "stopped"

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(8)]
    for thread in threads:
        thread.start()
    threading.Event().wait(0.3)
    mt.close()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert [i for i, t in enumerate(threads) if t.is_alive()] == []
    assert all(o == "stopped" or "closed" in o for o in outcomes.values()), outcomes
    with pytest.raises(RuntimeError, match="closed"):
        mt.remember("bot", "after close")


def test_a_memory_written_from_a_model_has_its_own_tags_list(tmp_path: Path) -> None:
    from memtrace_core.models import MemoryCreate

    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        template = MemoryCreate(agent_id="bot", content="template", tags=["billing"], dedup=False)
        first = mt.add_memory(template)
        second = mt.add_memories([template, template]).memories
        assert first.tags is not template.tags
        assert second[0].tags is not second[1].tags
        first.tags.append("urgent")  # the caller annotates what it got back
        assert template.tags == ["billing"]
        assert mt.get_memory(mt.add_memory(template).id).tags == ["billing"]


def test_big_batches_on_private_loops_share_one_worker_pool(tmp_path: Path) -> None:
    """A batch of more than 100 memories is validated in a worker thread (asyncio.to_thread):
    on the private loops that is one shared pool, not one per loop."""
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:

        def write(t: int) -> None:
            for round_ in range(3):
                batch = [{"agent_id": "bot", "content": f"t{t} r{round_} m{i}"} for i in range(150)]
                assert mt.add_memories(batch).count == 150

        before = {thread.name for thread in threading.enumerate()}
        run_threads(write, 6)
        new = {thread.name for thread in threading.enumerate()} - before
        assert any(name.startswith("memtrace-call") for name in new)
        assert not [name for name in new if name.startswith("asyncio_")]  # loops' own pools
        assert mt.list_memories(agent_id="bot", limit=1).has_more


def _interrupt() -> None:
    raise KeyboardInterrupt  # what Ctrl-C raises in the thread running the loop


def test_an_interrupted_call_is_wound_down_and_its_loop_reused(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        mt.remember("a", "before")
        store = mt.aio.store
        list_ = store.list_memories
        seen: dict[str, Any] = {}

        async def interrupted(*args: Any, **kwargs: Any) -> Any:
            seen["loop"] = asyncio.get_running_loop()
            seen["loop"].call_soon(_interrupt)
            try:
                return await list_(*args, **kwargs)
            except asyncio.CancelledError:
                seen["cancelled"] = True
                raise

        store.list_memories = interrupted
        with pytest.raises(KeyboardInterrupt):
            mt.list_memories(agent_id="a")
        assert seen.get("cancelled") is True  # wound down before the interrupt went on
        store.list_memories = list_

        async def where() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        assert mt._portal.call(where(), here=True) is seen["loop"]  # given back, and clean
        assert [m.content for m in mt.list_memories(agent_id="a").memories] == ["before"]


def test_an_interrupt_while_winding_down_retires_the_loop() -> None:
    portal = Portal()
    try:
        loops: list[asyncio.AbstractEventLoop] = []
        resumed = threading.Event()

        async def stubborn() -> None:
            loop = asyncio.get_running_loop()
            loops.append(loop)
            loop.call_soon(_interrupt)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                loop.call_soon(_interrupt)  # Ctrl-C again, during the wind-down
                await asyncio.sleep(0.05)
                resumed.set()  # where the call would go on, in whichever call ran its loop
                raise

        async def where() -> asyncio.AbstractEventLoop:
            await asyncio.sleep(0.2)
            return asyncio.get_running_loop()

        with pytest.raises(KeyboardInterrupt):
            portal.call(stubborn(), here=True)
        (loop,) = loops
        for _ in range(3):
            assert portal.call(where(), here=True) is not loop
        assert not resumed.is_set()  # the interrupted call never ran inside a later one
        assert loop in sync._retired
        assert loop not in sync._pool._idle
        assert loop not in sync._pool._loops
        assert len(sync._pool._loops) == sync._pool._made  # its place is free for a new loop
    finally:
        portal.close()


def test_an_interrupt_after_the_calls_last_step_retires_the_loop() -> None:
    """Ctrl-C landing as the call ends: its task is done, but the callback that stops the
    loop is still queued on it; given back, that callback would stop the next call's run
    ("Event loop stopped before Future completed") after its first step."""
    portal = Portal()
    try:
        loops: list[asyncio.AbstractEventLoop] = []

        async def ends_interrupted() -> None:
            loops.append(asyncio.get_running_loop())
            raise KeyboardInterrupt  # as the call's last step (the task is done with it)

        async def where() -> asyncio.AbstractEventLoop:
            await asyncio.sleep(0)
            return asyncio.get_running_loop()

        with pytest.raises(KeyboardInterrupt):
            portal.call(ends_interrupted(), here=True)
        (loop,) = loops
        for _ in range(3):
            assert portal.call(where(), here=True) is not loop
        assert loop in sync._retired
        assert len(sync._pool._loops) == sync._pool._made
    finally:
        portal.close()


def test_a_calls_own_error_gives_its_loop_back() -> None:
    portal = Portal()
    try:
        loops: list[asyncio.AbstractEventLoop] = []

        async def fails() -> None:
            loops.append(asyncio.get_running_loop())
            await asyncio.sleep(0)
            raise ValueError("the call's own error")

        async def cancelled() -> None:
            loops.append(asyncio.get_running_loop())
            raise asyncio.CancelledError

        async def where() -> asyncio.AbstractEventLoop:
            await asyncio.sleep(0)
            return asyncio.get_running_loop()

        with pytest.raises(ValueError, match="own error"):
            portal.call(fails(), here=True)
        assert portal.call(where(), here=True) is loops[0]  # given back, and clean
        with pytest.raises(asyncio.CancelledError):
            portal.call(cancelled(), here=True)
        assert portal.call(where(), here=True) is loops[1] is loops[0]
        assert loops[0] not in sync._retired
    finally:
        portal.close()
