"""No request holds the event loop: the CPU-heavy step of the worst requests the limits allow
(validating a max-size batch, reranking a search with the longest query over the largest
window, encoding a list of 1,000 memories) runs off the loop, so a ``/health`` sent while that
step runs is answered before the step ends.

The heavy step is observed, not replaced: a wrapper notes when it starts and when it ends
(and holds the end for a moment, so that the ordering does not depend on the machine's
speed; where the step runs — loop or worker thread — is the code's own decision). The tests
assert an ordering, never a duration."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from memtrace_core import engine as engine_module
from memtrace_core import ranking
from memtrace_core.models import Memory, MemoryList
from memtrace_server import http as http_module
from memtrace_server.http import list_response, model_response

API = "/api/v1"
HOLD = 0.3  # seconds the observed step is held at its end (a sleep: the GIL is free meanwhile)


class Observed:
    def __init__(self) -> None:
        self.started = threading.Event()
        self.order: list[str] = []
        self.lock = threading.Lock()

    def note(self, what: str) -> None:
        with self.lock:
            self.order.append(what)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def observed(*args: Any, **kwargs: Any) -> Any:
            self.started.set()
            try:
                return fn(*args, **kwargs)
            finally:
                time.sleep(HOLD)
                self.note("heavy step done")

        return observed


@pytest.fixture
def observed() -> Observed:
    return Observed()


def _words(n: int) -> list[str]:
    rng = random.Random(5)
    return ["".join(rng.choice("abcdefghij") for _ in range(7)) for _ in range(n)]


VOCAB = _words(3000)


def _batch(n: int = 1000, words: int = 500) -> dict[str, Any]:
    rng = random.Random(9)
    return {
        "memories": [
            {
                "agent_id": "heavy",
                "content": f"m{i} " + " ".join(rng.choice(VOCAB) for _ in range(words)),
            }
            for i in range(n)
        ]
    }


async def _health_during(
    http: httpx.AsyncClient, observed: Observed, heavy: Any
) -> tuple[httpx.Response, httpx.Response]:
    task = asyncio.create_task(heavy)
    assert await asyncio.to_thread(observed.started.wait, 120), "the heavy step never ran"
    health = await http.get("/health")
    observed.note("health answered")
    response = await task
    return health, response


async def test_batch_validation_does_not_hold_the_loop(
    http: httpx.AsyncClient, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _batch()
    assert len(httpx.Request("POST", "http://x", json=body).content) < 4 * 1024 * 1024
    monkeypatch.setattr(
        engine_module.AsyncMemtrace,
        "_prepare",
        observed.wrap(engine_module.AsyncMemtrace._prepare),
    )
    health, created = await _health_during(http, observed, http.post(f"{API}/memories", json=body))
    assert created.status_code == 201, created.text[:300]
    assert created.json()["count"] == 1000
    assert health.status_code == 200
    assert observed.order == ["health answered", "heavy step done"]


async def test_staging_a_big_import_does_not_hold_the_loop(
    http: httpx.AsyncClient, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    lines = [
        json.dumps(
            {
                "kind": "memory",
                "id": f"mem_01M8R8R3G0EQXMS6YTVK{i:06d}",
                "agent_id": "heavy",
                "content": f"imported {i} " + " ".join(VOCAB[i % 2000 : i % 2000 + 40]),
                "time": "2026-01-01T00:00:00Z",
            }
        )
        for i in range(5000)
    ]
    trailer = {"kind": "trailer", "format": "memtrace-export", "version": 1}
    trailer |= {"memories": len(lines), "agents": 0, "sessions": 0}
    body = "\n".join([*lines, json.dumps(trailer)]).encode()
    assert len(body) < 4 * 1024 * 1024
    monkeypatch.setattr(
        engine_module.AsyncMemtrace,
        "_stage_import",
        observed.wrap(engine_module.AsyncMemtrace._stage_import),
    )
    request = http.post(
        f"{API}/import", content=body, headers={"content-type": "application/x-ndjson"}
    )
    health, imported = await _health_during(http, observed, request)
    assert imported.status_code == 200, imported.text[:300]
    assert imported.json()["imported"] == 5000
    assert health.status_code == 200
    assert observed.order == ["health answered", "heavy step done"]


async def test_ranking_the_longest_query_does_not_hold_the_loop(
    http: httpx.AsyncClient, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await http.post(f"{API}/memories", json=_batch(600, 300))).status_code == 201
    query = " ".join(VOCAB[:300])[:2000]  # limits.max_query_chars
    monkeypatch.setattr(ranking, "rerank", observed.wrap(ranking.rerank))
    search = http.post(f"{API}/search", json={"query": query, "limit": 1000, "agent_id": "heavy"})
    health, found = await _health_during(http, observed, search)
    assert found.status_code == 200, found.text[:300]
    assert health.status_code == 200
    assert observed.order[0] == "health answered", observed.order


async def test_encoding_a_long_list_does_not_hold_the_loop(
    http: httpx.AsyncClient, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await http.post(f"{API}/memories", json=_batch(1000, 60))).status_code == 201
    monkeypatch.setattr(http_module, "_encode_items", observed.wrap(http_module._encode_items))
    listed = http.get(f"{API}/memories", params={"limit": 1000})
    health, page = await _health_during(http, observed, listed)
    assert page.status_code == 200
    assert page.json()["count"] == 1000
    assert health.status_code == 200
    assert observed.order == ["health answered", "heavy step done"]


async def test_long_lists_encode_exactly_like_short_ones() -> None:
    memories = [
        Memory.model_construct(
            id=f"mem_{i:026d}",
            org_id="o",
            agent_id="a",
            memory_type="episodic",
            event_type="general",
            content=f"c{i} \ud800" if i == 7 else f"c{i} é",
            time=None,
            metadata={"k": i, "none": None} if i % 2 else None,
            tags=["t"] if i % 3 else None,
        )
        for i in range(450)
    ]
    page = MemoryList.model_construct(memories=memories, count=450, has_more=True)
    fast = await list_response(page)
    assert fast.body == http_module.dumps(page.model_dump(mode="json", exclude_none=True)) or (
        fast.body == model_response(page).body
    )
    short = MemoryList.model_construct(memories=memories[:3], count=3, has_more=True)
    assert (await list_response(short)).body == model_response(short).body


async def test_huge_tag_lists_are_refused_before_any_per_tag_work(http: httpx.AsyncClient) -> None:
    """100,000 unique tags (1.1 MB, under the body limit) on a write and on a search: refused by
    their count, as sent, before they are de-duplicated or matched (this used to be a quadratic
    de-duplication on the loop: ~45 s during which /health timed out)."""
    tags = [f"t{i}" for i in range(100_000)]
    write = http.post(f"{API}/memories", json={"agent_id": "a", "content": "x", "tags": tags})
    search = http.post(f"{API}/search", json={"tags": tags})
    delete = http.post(f"{API}/memories/delete", json={"tags": tags})
    health, *answers = await asyncio.gather(http.get("/health"), write, search, delete)
    assert health.status_code == 200
    for answer in answers:
        assert answer.status_code == 400, answer.text[:300]
        assert "100000" in answer.json()["error"], answer.json()
