"""Duplicates are caught atomically on every store (the Store docstring of
``insert_memories``): within one batch, across concurrent tasks of one engine, across two
engines on one URL, and across OS processes — every time exactly one memory per dedup key
lands, and every loser is told the winner's id."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from memtrace_core import AsyncMemtrace, DuplicateMemoryError, aconnect, connect


async def _contents(mt: Any) -> Counter[str]:
    listed = await mt.list_memories(limit=1000)
    assert not listed.has_more
    return Counter(m.content for m in listed.memories)


async def test_a_batch_dedups_against_itself_and_the_store(mt: Any) -> None:
    first = await mt.remember("b", "fact 0")
    result = await mt.add_memories(
        [{"agent_id": "b", "content": f"fact {i % 3}"} for i in range(9)]
        + [{"agent_id": "b", "content": "own key", "dedup_key": "K"}] * 2
    )
    assert [m.content for m in result.memories] == ["fact 1", "fact 2", "own key"]
    assert result.duplicates == 8
    winners = {m.content: m.id for m in result.memories} | {"fact 0": first.id}
    for dup in result.duplicate_of:
        given = f"fact {dup.index % 3}" if dup.index < 9 else "own key"
        assert dup.existing_id == winners[given], dup
    assert await _contents(mt) == Counter({"fact 0": 1, "fact 1": 1, "fact 2": 1, "own key": 1})


async def test_tasks_racing_on_one_key_land_one_memory(mt: Any) -> None:
    async def write(i: int) -> str | None:
        try:
            return str((await mt.remember("racer", "the same fact", tags=[f"w{i}"])).id)
        except DuplicateMemoryError as exc:
            return f"lost:{exc.existing_id}"

    outcomes = await asyncio.gather(*(write(i) for i in range(40)))
    won = [o for o in outcomes if o and not o.startswith("lost:")]
    assert len(won) == 1
    assert {o for o in outcomes if o and o.startswith("lost:")} == {f"lost:{won[0]}"}
    batches = await asyncio.gather(
        *(
            mt.add_memories([{"agent_id": "racer", "content": f"batched {k}"} for k in range(5)])
            for _ in range(10)
        )
    )
    assert sum(b.count for b in batches) == 5
    assert await _contents(mt) == Counter(
        {"the same fact": 1} | {f"batched {k}": 1 for k in range(5)}
    )


async def test_two_engines_on_one_url_land_one_memory_per_key(store_url: str) -> None:
    engines: list[AsyncMemtrace] = [await aconnect(store_url) for _ in range(2)]  # type: ignore[misc]
    try:

        async def write(engine: AsyncMemtrace, k: int) -> None:
            try:
                await engine.remember("two", f"shared {k}")
            except DuplicateMemoryError:
                pass

        await asyncio.gather(*(write(e, k) for k in range(15) for e in engines for _ in range(2)))
        for engine in engines:
            assert await _contents(engine) == Counter({f"shared {k}": 1 for k in range(15)})
    finally:
        for engine in engines:
            await engine.close()


WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from memtrace_core import DuplicateMemoryError, connect

    url, go, worker, keys = (
        os.environ["MT_URL"], os.environ["MT_GO"], int(os.environ["MT_WORKER"]), int(os.environ["MT_KEYS"])
    )
    mt = connect(url)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(go):  # start together
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.002)
    won, lost = [], []
    for k in range(keys):
        if k % 3 == 0:  # some keys through batches (with a duplicate inside), some one by one
            res = mt.add_memories([
                {"agent_id": "racer", "content": f"shared fact {k}", "tags": [f"w{worker}"]},
                {"agent_id": "racer", "content": f"shared fact {k}"},
            ])
            won += [m.id for m in res.memories]
            lost += [d.existing_id for d in res.duplicate_of]
        else:
            try:
                won.append(mt.remember("racer", f"shared fact {k}", tags=[f"w{worker}"]).id)
            except DuplicateMemoryError as exc:
                lost.append(exc.existing_id)
    mt.close()
    print(json.dumps({"won": won, "lost": lost}), flush=True)
    """
)


def test_processes_racing_on_the_same_keys_land_one_memory_per_key(
    store_url: str, tmp_path: Path
) -> None:
    workers, keys = 4, 18
    go = tmp_path / "go"  # a signal file only; the store is wherever store_url says
    with connect(store_url) as mt:  # creates the schema once, up front
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER],
                env={
                    **os.environ,
                    "MT_URL": store_url,
                    "MT_GO": str(go),
                    "MT_WORKER": str(w),
                    "MT_KEYS": str(keys),
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w in range(workers)
        ]
        try:
            for p in procs:
                assert p.stdout is not None
                assert p.stdout.readline().strip() == "ready", p.communicate()[1]
            go.touch()
            results = []
            for p in procs:
                out, err = p.communicate(timeout=120)
                assert p.returncode == 0, err
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        won = [i for r in results for i in r["won"]]
        lost = [i for r in results for i in r["lost"]]
        assert len(won) == len(set(won)) == keys
        assert set(lost) <= set(won)  # every loser was told the winner's id
        batch_keys = (keys + 2) // 3
        assert len(lost) == workers * (keys + batch_keys) - keys
        listed = mt.list_memories(limit=1000)
        assert not listed.has_more
        assert Counter(m.content for m in listed.memories) == Counter(
            {f"shared fact {k}": 1 for k in range(keys)}
        )
        assert {m.id for m in listed.memories} == set(won)
