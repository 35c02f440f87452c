"""Where a blocking handle runs its engine (memtrace_core/sync.py): over the embedded SQLite
store (a ``loop_agnostic`` engine) each call runs on a private event loop of the calling
thread, one thread hop fewer each way than the handle's portal loop; watches, exports,
``close`` and every call made where a loop already runs stay on the portal; over any other
store everything does. Threads, their loops' lifetimes and a fork are exercised for real."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import connect
from memtrace_core.stores.sqlite import SQLiteStore
from memtrace_core.sync import _thread_loop


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
        got: list[str] = []
        follower = threading.Thread(
            target=lambda: got.extend(
                e.memory.content for _, e in zip(range(40), watch, strict=False)
            )
        )
        follower.start()

        def write(t: int) -> None:
            for j in range(10):
                mt.remember("w", f"t{t} m{j}")

        writers = [threading.Thread(target=write, args=(t,)) for t in range(4)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(30)
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


def test_a_threads_loop_is_closed_when_the_thread_ends(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        refs: list[weakref.ref[asyncio.AbstractEventLoop]] = []

        def work() -> None:
            mt.remember("bot", "from a short-lived thread")
            loop = _thread_loop()
            refs.append(weakref.ref(loop))
            assert not loop.is_closed()
            assert not loop.is_running()

        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)  # an unclosed loop would warn
            thread = threading.Thread(target=work)
            thread.start()
            thread.join(10)
            gc.collect()
        assert refs
        loop = refs[0]()
        assert loop is None or loop.is_closed()
        assert mt.recall("bot").count == 1


def test_many_threads_write_and_read_at_once(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'm.db'}") as mt:
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for j in range(25):
                    mt.remember("bot", f"t{t} m{j}", tags=[f"t{t}"])
                    if j % 10 == 0:
                        mt.register_agent(name=f"agent-{t}-{j}")
                        mt.delete_agent(f"agent-{t}-{j}")
                    mine = mt.list_memories(agent_id="bot", tags=[f"t{t}"], limit=100)
                    assert mine.count == j + 1
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert mt.list_memories(agent_id="bot", limit=1000).count == 200


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_makes_its_own_loop_and_leaves_the_parents(tmp_path: Path) -> None:
    """The calling thread's loop survives a fork in the child as an object sharing the
    parent's epoll instance: the child must make a new one and never close the old one (that
    would unregister the parent's descriptors), so the parent's calls go on working."""
    with connect(f"sqlite:///{tmp_path / 'parent.db'}") as mt:
        mt.remember("bot", "before the fork")  # this thread now has its private loop
        inherited = _thread_loop()
        pid = os.fork()
        if pid == 0:  # the child: a store of its own, then exit without pytest's teardown
            code = 1
            try:
                with connect(f"sqlite:///{tmp_path / 'child.db'}") as child:
                    child.remember("bot", "in the child")
                    ok = child.recall("bot").count == 1 and _thread_loop() is not inherited
                code = 0 if ok else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _thread_loop() is inherited
        # the parent's loop still wakes up (a hang ends the process at the alarm: a failure)
        signal.alarm(60)
        try:
            for n in range(20):
                mt.remember("bot", f"after the fork {n}")
            assert mt.recall("bot", limit=100).count == 21
        finally:
            signal.alarm(0)
