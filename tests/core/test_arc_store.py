"""What is particular to the Arc store (everything a store must do is in tests/conformance,
which runs on it too, over the fake Arc server of tests/arc_fake.py): its URL, the spool and
the forwarder (reads from the spool, outages, lost replies, every refusal Arc gives, a process
killed while Arc is down), the SQL it sends (Arc's keyword checks and length cap), exports that
fail visibly, the purge, readiness and metrics, and a PostgreSQL metadata store."""

from __future__ import annotations

import asyncio
import collections
import io
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import arc_fake
from memtrace_core import AsyncMemtrace, aconnect
from memtrace_core.errors import CorruptRowError, StoreError, ValidationError
from memtrace_core.stores.arc import ArcStore, parse_url, sql_literal
from memtrace_core.stores.base import MemoryFilter

DB = "mem"


def arc_url(fake: arc_fake.FakeArc, tmp: Path, **params: Any) -> str:
    base: dict[str, Any] = {
        "token": arc_fake.TOKEN,
        "meta": f"sqlite:///{tmp}/meta.db",
        "spool": f"{tmp}/spool.db",
        "flush_ms": 0,
        "visibility_seconds": 0.5,
        "drain_seconds": 0,
    }
    base.update(params)
    return f"arc+http://127.0.0.1:{fake.port}/{DB}?" + "&".join(f"{k}={v}" for k, v in base.items())


@pytest.fixture
def fake() -> Iterator[arc_fake.FakeArc]:
    with arc_fake.running(tokens={arc_fake.TOKEN: {"read", "write", "admin"}}) as f:
        yield f


@pytest.fixture
def admin_fake() -> Iterator[arc_fake.FakeArc]:
    """A fake Arc with deletes enabled and an admin token (what the purge needs)."""
    with arc_fake.running(
        tokens={arc_fake.TOKEN: {"read", "write", "admin"}}, delete_enabled=True
    ) as f:
        yield f


@pytest.fixture
async def open_store(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await open_store(fake, **url params)``: the engine over an Arc store, closed after."""
    opened: list[AsyncMemtrace] = []

    async def make(fake: arc_fake.FakeArc, **params: Any) -> AsyncMemtrace:
        mt = await aconnect(arc_url(fake, tmp_path, **params))
        assert isinstance(mt, AsyncMemtrace)
        opened.append(mt)
        return mt

    yield make
    for mt in opened:
        await mt.close()


def store_of(mt: AsyncMemtrace) -> ArcStore:
    assert isinstance(mt.store, ArcStore)
    return mt.store


def on_arc(fake: arc_fake.FakeArc) -> collections.Counter[str]:
    """How many rows Arc holds of each memory id (buffered and visible)."""
    return collections.Counter(r["id"] for r in fake.rows(DB, "memories"))


async def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check() if asyncio.iscoroutinefunction(check) else not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


# -- the URL ------------------------------------------------------------------------------------


def test_url_settings() -> None:
    s = parse_url(
        "arc+https://arc.example:8000/memtrace?token=t&meta=postgresql://u@db/m&spool=/var/s.db"
        "&flush_ms=100&batch_rows=50&sync_forward=1&purge=on"
    )
    assert (s.base_url, s.database, s.token, s.meta_url) == (
        "https://arc.example:8000",
        "memtrace",
        "t",
        "postgresql://u@db/m",
    )
    assert (s.spool_path, s.flush_ms, s.batch_rows, s.sync_forward, s.purge) == (
        "/var/s.db",
        100,
        50,
        True,
        True,
    )
    # the visibility deadline follows Arc's flush interval unless given
    assert parse_url("arc+http://h/db?flush_ms=10000").visibility_seconds == 35.0
    assert parse_url("arc+http://[::1]:8000/db").base_url == "http://[::1]:8000"


def test_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMTRACE_ARC_TOKEN", "from-env")
    monkeypatch.setenv("MY_ARC", "mine")
    assert parse_url("arc+http://h/db").token == "from-env"
    assert parse_url("arc+http://h/db?token_env=MY_ARC").token == "mine"


@pytest.mark.parametrize(
    "url",
    [
        "arc+http://h",
        "arc+http://h/",
        "arc+http://h/my-db",  # Arc's SQL rewriter reads only [A-Za-z0-9_] in db.table
        "arc+http:///db",
        "arc+http://h/db?batch_rows=0",
        "arc+http://h/db?timeout=nan",
        "arc+http://h/db?sync_forward=maybe",
        "arc+http://h/db?meta=arc+http://h/other",
        "arc+http://h/db?measurement=1x",
        "arc+http://h/db?spool_synchronous=OFF",
        "arc+http://h/db?unknown=1",
        "arc+http://h:99999/db",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        parse_url(url)


def test_literals_that_arc_would_refuse_are_hex_encoded() -> None:
    assert sql_literal("mem_01ABC") == "'mem_01ABC'"
    for risky in ("deleted invoices", "SET", "o'brien", "résumé", "a;b", "xp_cmd"):
        lit = sql_literal(risky)
        assert lit.startswith("decode(unhex('"), lit
        assert risky.lower() not in lit.lower()


# -- the spool ---------------------------------------------------------------------------------


async def test_reads_see_writes_still_in_the_spool_then_on_arc(
    open_store: Callable[..., Any], tmp_path: Path
) -> None:
    with arc_fake.running(tokens={arc_fake.TOKEN: {"read", "write"}}, flush_delay=0.6) as fake:
        mt = await open_store(fake, flush_ms=600, visibility_seconds=5)
        first = await mt.remember("a", "the deploy of invoices failed")
        # acknowledged from the spool: Arc has not shown it yet, reads find it all the same
        assert fake.visible_rows(DB, "memories") == []
        assert [m.id for m in (await mt.recall("a")).memories] == [first.id]
        found = await mt.search_memories(query="invoices")
        assert [m.id for m in found.results] == [first.id]
        assert (await mt.get_memory(first.id)).content == first.content  # type: ignore[union-attr]
        assert (await store_of(mt).spool_stats())["landed"] + (await store_of(mt).spool_stats())[
            "pending"
        ] == 1
        await store_of(mt).drain(10)
        # forwarded and confirmed: the spool is empty and Arc holds it once
        assert await store_of(mt).spool_stats() == {
            "pending": 0,
            "sent": 0,
            "landed": 0,
            "bytes": (await store_of(mt).spool_stats())["bytes"],
        }
        assert on_arc(fake) == {first.id: 1}
        got = await mt.get_memory(first.id)
        assert got is not None
        assert got.content == first.content
        found = await mt.search_memories(query="invoices")
        assert [m.id for m in found.results] == [first.id]


async def test_an_outage_mid_load_loses_nothing_and_lands_everything_once(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, batch_rows=20)
    acked: list[str] = []
    for i in range(60):
        acked.append((await mt.remember("a", f"before the outage {i}")).id)
        if i == 20:
            fake.down()
    # Arc is down: writes are still acknowledged (spooled) and readable
    for i in range(40):
        acked.append((await mt.remember("a", f"during the outage {i}")).id)
    assert (await mt.summarize_memories()).count == 100  # the index is beside Arc
    # a memory still in the spool reads; one whose body only Arc holds fails visibly
    assert (await mt.get_memory(acked[-1])).content == "during the outage 39"  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="Arc unavailable") as err:
        await mt.list_memories(limit=1000)
    assert err.value.status_code == 503
    stats = await store_of(mt).spool_stats()
    assert stats["pending"] + stats["sent"] > 0
    await asyncio.sleep(0.5)
    fake.up()
    await store_of(mt).drain(20)
    assert on_arc(fake) == dict.fromkeys(acked, 1)
    assert store_of(mt).forwarder.stats.retried > 0  # type: ignore[union-attr]
    page = await mt.list_memories(limit=1000)
    assert {m.id for m in page.memories} == set(acked)


async def test_a_lost_reply_is_checked_before_anything_is_sent_again(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, visibility_seconds=0.3)
    fake.drop_write_replies(2)  # Arc stores the batch, the answer never arrives
    ids = [(await mt.remember("a", f"lost reply {i}")).id for i in range(5)]
    await store_of(mt).drain(20)
    assert on_arc(fake) == dict.fromkeys(ids, 1)


@pytest.mark.parametrize("status", [400, 401, 403, 413, 429, 500, 503])
async def test_every_refusal_is_retried_and_nothing_is_dropped(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any], status: int
) -> None:
    mt = await open_store(fake)
    fake.fail_writes(status, 3)
    ids = [(await mt.remember("a", f"refused {status} {i}")).id for i in range(10)]
    await store_of(mt).drain(30)
    assert on_arc(fake) == dict.fromkeys(ids, 1)
    stats = store_of(mt).forwarder.stats  # type: ignore[union-attr]
    assert stats.refused.get(str(status), 0) >= 1
    assert stats.retried >= 1


async def test_413_halves_the_batch(open_store: Callable[..., Any]) -> None:
    # Arc's payload cap below one batch of 40 rows: the forwarder splits until it fits
    with arc_fake.running(tokens={arc_fake.TOKEN: {"read", "write"}}, max_payload=12_000) as fake:
        mt = await open_store(fake, gzip_min=10**9)
        store_of(mt).forwarder.batch_rows = 40  # type: ignore[union-attr]
        fake.down()
        ids = [(await mt.remember("a", f"payload {i} " + "x" * 300)).id for i in range(40)]
        fake.up()
        await store_of(mt).drain(30)
        assert on_arc(fake) == dict.fromkeys(ids, 1)
        assert store_of(mt).forwarder.stats.refused.get("413", 0) >= 1  # type: ignore[union-attr]


async def test_a_full_spool_refuses_the_write_with_503_and_writes_nothing(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, spool_max_bytes=300_000)
    fake.down()
    written = 0
    refused: StoreError | None = None
    for i in range(2000):
        try:
            await mt.remember("a", f"filling the spool {i} " + "y" * 500)
        except StoreError as exc:
            refused = exc
            break
        written += 1
    assert refused is not None
    assert refused.status_code == 503
    assert "spool is full" in str(refused)
    assert "nothing was written" in str(refused)
    assert (await mt.summarize_memories()).count == written
    fake.up()
    await store_of(mt).drain(30)
    assert sum(on_arc(fake).values()) == written
    await mt.remember("a", "room again")  # accepted once Arc took the backlog


KILLED_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from memtrace_core import aconnect

    async def main():
        mt = await aconnect(sys.argv[1])
        for i in range(int(sys.argv[2])):
            m = await mt.remember("a", f"written while Arc is down {i}")
            print(m.id, flush=True)
        print("done", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def spawn_writer(url: str, count: int) -> subprocess.Popen[str]:
    """A process writing ``count`` memories to the store at ``url``, printing each id once
    acknowledged, then "done", then waiting to be killed."""
    return subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, url, str(count)], stdout=subprocess.PIPE, text=True
    )


async def test_killed_while_arc_is_down_loses_nothing_and_forwards_after_restart(
    fake: arc_fake.FakeArc, tmp_path: Path, open_store: Callable[..., Any]
) -> None:
    fake.down()
    proc = spawn_writer(arc_url(fake, tmp_path), 25)
    assert proc.stdout is not None
    acked = []
    for line in proc.stdout:
        if line.strip() == "done":
            break
        acked.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert len(acked) == 25
    fake.up()
    mt = await open_store(fake)
    await store_of(mt).drain(20)
    assert on_arc(fake) == dict.fromkeys(acked, 1)
    assert {m.id for m in (await mt.list_memories(limit=100)).memories} == set(acked)


async def test_a_batch_sent_by_a_killed_process_is_verified_not_resent(
    fake: arc_fake.FakeArc, tmp_path: Path, open_store: Callable[..., Any]
) -> None:
    # Arc stored the batch but the process died before it saw the 204: the next process finds
    # the batch still "sent", asks Arc, and confirms it instead of sending it again
    fake.drop_write_replies(1)
    proc = spawn_writer(arc_url(fake, tmp_path, timeout=30), 1)
    assert proc.stdout is not None
    acked = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "done"
    await wait_for(lambda: sum(on_arc(fake).values()) == 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    mt = await open_store(fake)
    await store_of(mt).drain(20)
    assert on_arc(fake) == {acked: 1}


# -- the SQL Arc receives -------------------------------------------------------------------------


async def test_denylisted_words_and_long_lists_work_on_the_python_arc(
    open_store: Callable[..., Any],
) -> None:
    with arc_fake.running(version="python", tokens={arc_fake.TOKEN: {"read", "write"}}) as fake:
        mt = await open_store(fake, sync_forward=1)
        # the Python Arc answers 400 "No files found" before the first write: no results
        assert (await mt.search_memories(query="deleted invoices")).results == []
        hit = await mt.remember(
            "drop-table", "the DELETED invoices were updated; set load call copy", tags=["x"]
        )
        for i in range(30):
            await mt.remember("drop-table", f"filler {i}")
        found = await mt.search_memories(query="deleted invoices")
        assert [m.id for m in found.results] == [hit.id]
        found = await mt.search_memories(content_contains="INVOICES were UPDATED; set")
        assert [m.id for m in found.results] == [hit.id]
        # a filter on many ids: split under Arc's length cap
        every = [m.id for m in (await mt.list_memories(limit=100)).memories]
        listed = await mt.search_memories(content_contains="e", limit=100)
        assert {m.id for m in listed.results} <= set(every)
        assert fake.queries
        assert all(len(q) <= 10_000 for q in fake.queries)
        # each text unique: the Python Arc's result cache never answers for a later query
        assert len(set(fake.queries)) == len(fake.queries)
        # a long tag list and an agent named like a denied word
        tags = [f"update-{i}-" + "x" * 40 for i in range(32)]
        tagged = await mt.remember("select", "tagged invoices", tags=tags)
        found = await mt.search_memories(query="invoices", tags=tags, agent_id="select")
        assert [m.id for m in found.results] == [tagged.id]
        for q in fake.queries:
            assert "delete" not in q.lower()
            assert "update" not in q.lower()


async def test_exports_page_under_the_length_cap_and_are_complete(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, sync_forward=1, max_sql=3100)
    ids = [
        m.id
        for m in (
            await mt.add_memories([{"agent_id": "a", "content": f"export {i}"} for i in range(300)])
        ).memories
    ]
    fake.reset_stats()
    exported = [
        m.id async for batch in mt.store.iter_memories("org_default", _all()) for m in batch
    ]  # type: ignore[attr-defined]
    assert sorted(exported) == sorted(ids)
    assert len(fake.queries) > 1
    assert max(len(q) for q in fake.queries) <= 3100


def _all() -> Any:
    from memtrace_core.stores.base import MemoryFilter

    return MemoryFilter()


async def test_a_reply_cut_short_fails_the_export_instead_of_shortening_it(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, sync_forward=1)
    for i in range(5):
        await mt.remember("a", f"cut {i}")
    fake.cut_query_replies(1, keep_rows=2)
    with pytest.raises(StoreError, match="cut short"):
        [m async for batch in mt.store.iter_memories("org_default", _all()) for m in batch]  # type: ignore[attr-defined]


async def test_a_body_missing_everywhere_is_an_unreadable_row(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, sync_forward=1, visibility_seconds=0.2, timeout=0.3)
    kept = await mt.remember("a", "kept")
    lost = await mt.remember("a", "lost")
    # a body that neither the spool nor Arc holds (Arc's files removed by hand), past the
    # time a write through another server takes to reach Arc
    fake.delete_rows(DB, "memories", lost.id)
    await asyncio.sleep(0.6)
    assert [m.id for m in (await mt.list_memories()).memories] == [kept.id]
    assert store_of(mt).unreadable_rows == 1
    with pytest.raises(CorruptRowError):
        await mt.store.get_memory("org_default", lost.id)


# -- the purge -----------------------------------------------------------------------------------


async def test_the_purge_removes_deleted_rows_from_arc(
    admin_fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    fake = admin_fake
    mt = await open_store(fake, sync_forward=1)
    keep = await mt.remember("a", "keep me")
    gone = await mt.remember("a", "forget me")
    await mt.delete_memory(gone.id)
    # deleted at once for every read, still on Arc's disk until the purge
    assert [m.id for m in (await mt.list_memories()).memories] == [keep.id]
    assert on_arc(fake) == {keep.id: 1, gone.id: 1}
    assert await store_of(mt).purge_arc(grace_seconds=0) == 1
    assert on_arc(fake) == {keep.id: 1}
    assert (await mt.get_memory(keep.id)).content == "keep me"  # type: ignore[union-attr]


async def test_the_purge_says_why_when_arc_refuses_deletes(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, sync_forward=1)
    gone = await mt.remember("a", "forget me")
    await mt.delete_memory(gone.id)
    with pytest.raises(StoreError, match="Delete operations are disabled"):
        await store_of(mt).purge_arc(grace_seconds=0)
    assert on_arc(fake) == {gone.id: 1}
    assert await store_of(mt).get_memory("org_default", gone.id) is None


# -- readiness and metrics over a real socket ------------------------------------------------------


def test_ready_reports_arc_and_the_spool_and_metrics_count_the_forwarder(
    fake: arc_fake.FakeArc, tmp_path: Path
) -> None:
    from memtrace_server.testing import bootstrap_admin_key, config_for, serve_in_thread

    url = arc_url(fake, tmp_path)
    key = asyncio.run(bootstrap_admin_key(url))
    with serve_in_thread(config_for(url)) as live:
        client = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"})
        ready = client.get("/ready").json()
        assert ready["store"]["arc"] == "ok"
        assert ready["store"]["spool_pending"] == 0
        fake.down()
        r = client.post("/api/v1/memories", json={"agent_id": "a", "content": "spooled"})
        assert "memtrace_arc_spool_pending 1" in client.get("/metrics").text
        assert r.status_code in (200, 201), r.text
        ready = client.get("/ready")
        assert ready.status_code == 200  # writes still work: the server stays in rotation
        assert ready.json()["store"]["arc"] == "unreachable"
        assert ready.json()["store"]["spool_pending"] == 1
        assert client.get("/health").json()["arc"] == {DB: "unreachable"}
        fake.up()
        deadline = time.monotonic() + 20
        while client.get("/ready").json()["store"]["spool_pending"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        metrics = client.get("/metrics").text
        assert "memtrace_arc_forwarded_total 1" in metrics
        assert "memtrace_arc_spool_pending 0" in metrics
        assert "memtrace_arc_retried_total" in metrics


# -- a PostgreSQL metadata store ---------------------------------------------------------------------


async def _scenario(mt: AsyncMemtrace) -> list[Any]:
    """Writes, a supersession, a search, a delete: what each read shows (contents)."""
    seen: list[Any] = []
    await mt.remember("a", "the invoices were deleted", tags=["billing"])
    await mt.add_memory({"agent_id": "a", "content": "invoices restored", "key": "k"})
    three = await mt.add_memory({"agent_id": "a", "content": "invoices fine", "key": "k"})
    seen.append(sorted(m.content for m in (await mt.search_memories(query="invoices")).results))
    seen.append([m.content for m in (await mt.list_memories(include_superseded=True)).memories])
    await mt.delete_memory(three.id)
    seen.append(sorted(m.content for m in (await mt.search_memories(query="invoices")).results))
    seen.append((await mt.summarize_memories()).count)
    return seen


async def test_a_postgresql_metadata_store_reads_as_sqlite_does(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any], tmp_path: Path
) -> None:
    import pg_harness

    database = pg_harness.new_database()
    try:
        mt = await open_store(fake, meta=database, sync_forward=1)
        on_arc_pg = await _scenario(mt)
        assert (await store_of(mt).spool_stats())["pending"] == 0
    finally:
        await mt.close()
        pg_harness.drop_database(database)
    reference = await aconnect(f"sqlite:///{tmp_path}/reference.db")
    assert isinstance(reference, AsyncMemtrace)
    try:
        assert on_arc_pg == await _scenario(reference)
    finally:
        await reference.close()
    assert on_arc_pg[0] == ["invoices fine", "the invoices were deleted"]


async def test_the_arc_purge_command_prints_the_where_clauses_then_purges(
    admin_fake: arc_fake.FakeArc,
    open_store: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from memtrace_server.cli import main

    fake = admin_fake
    mt = await open_store(fake, sync_forward=1)
    gone = await mt.remember("a", "forget me")
    kept = await mt.remember("a", "keep me")
    await mt.delete_memory(gone.id)
    await mt.close()
    url = arc_url(fake, tmp_path)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["arc-purge", url, "--grace", "0", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    digest = next(r["body_hash"] for r in fake.rows(DB, "memories") if r["id"] == gone.id)
    assert out.strip() == f"body_hash IN ('{digest}')"
    assert "1 rows on Arc belong to no memory" in err
    assert on_arc(fake) == {gone.id: 1, kept.id: 1}
    assert await asyncio.to_thread(main, ["arc-purge", url, "--grace", "0"]) == 0
    assert "purged 1 rows from Arc" in capsys.readouterr().err
    assert on_arc(fake) == {kept.id: 1}
    assert await asyncio.to_thread(main, ["arc-purge", f"sqlite:///{tmp_path}/meta.db"]) != 0


# -- found by the adversarial review -------------------------------------------------------------


async def exported(mt: AsyncMemtrace) -> str:
    """The org's export (JSON Lines) as text."""
    dump = io.StringIO()
    await mt.export_jsonl(dump)
    return dump.getvalue()


async def test_the_purge_never_touches_another_orgs_copy_of_the_same_file(
    admin_fake: arc_fake.FakeArc, open_store: Callable[..., Any], tmp_path: Path
) -> None:
    fake = admin_fake
    mt = await open_store(fake, sync_forward=1)
    mine = await mt.remember("a", "the same memory in two orgs")
    dump = await exported(mt)
    other = await aconnect(arc_url(fake, tmp_path, sync_forward=1), org_id="org_b")
    assert isinstance(other, AsyncMemtrace)
    try:
        await other.import_jsonl(io.StringIO(dump))
        await mt.delete_memory(mine.id)
        assert await store_of(mt).purge_arc(grace_seconds=0) == 1
        # org_b's copy (same id, same content) is still on Arc and still reads
        assert (await other.get_memory(mine.id)).content == mine.content  # type: ignore[union-attr]
        assert on_arc(fake) == {mine.id: 1}
    finally:
        await other.close()


async def test_an_id_with_several_rows_on_arc_reads_and_counts_its_live_one(
    admin_fake: arc_fake.FakeArc, open_store: Callable[..., Any], tmp_path: Path
) -> None:
    fake = admin_fake
    mt = await open_store(fake, sync_forward=1)
    first = await mt.remember("a", "zebra first version")
    text = await exported(mt)
    # the same id deleted and imported again twice, with other contents each time
    for content in ("zebra second version", "zebra third version"):
        await mt.delete_memory(first.id)
        await mt.import_jsonl(io.StringIO(text.replace("zebra first version", content)))
    assert on_arc(fake) == {first.id: 3}
    found = await mt.search_memories(query="zebra")
    assert [m.content for m in found.results] == ["zebra third version"]
    assert await store_of(mt).count_keyword_matches("org_default", _all(), ("zebra",), 100) == 1
    assert await store_of(mt).purge_arc(grace_seconds=0) == 2
    assert (await mt.get_memory(first.id)).content == "zebra third version"  # type: ignore[union-attr]


async def test_a_cancelled_write_that_committed_keeps_its_body(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake)
    fake.down()  # writes are only spooled
    meta = store_of(mt).meta
    release = asyncio.Event()
    original = meta.insert_memories

    async def slow_insert(*args: Any, **kwargs: Any) -> Any:
        # the metadata store commits although its caller is cancelled meanwhile
        task = asyncio.ensure_future(original(*args, **kwargs))
        await release.wait()
        return await asyncio.shield(task)

    meta.insert_memories = slow_insert
    write = asyncio.ensure_future(mt.remember("a", "cancelled while committing"))
    await asyncio.sleep(0.2)
    write.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await write
    meta.insert_memories = original
    await asyncio.sleep(0.2)
    stored = (await mt.list_memories()).memories
    assert [m.content for m in stored] == ["cancelled while committing"]
    fake.up()
    await store_of(mt).drain(20)
    assert [m.content for m in (await mt.list_memories()).memories] == [
        "cancelled while committing"
    ]


async def test_recent_first_keeps_spooled_rows_to_their_selection(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    from memtrace_core.stores.base import KeywordQuery

    mt = await open_store(fake)
    both = [await mt.remember("a", f"alpha beta both words {i}") for i in range(3)]
    await store_of(mt).drain(10)
    await store_of(mt).forwarder.stop(0)  # type: ignore[union-attr]
    for i in range(3):  # newer, still in the spool, matching one word only
        await mt.remember("a", f"alpha only {i}")
    assert (await store_of(mt).spool_stats())["pending"] == 3
    query = KeywordQuery(
        terms=("alpha", "beta"), limit=2, groups=(("alpha",), ("beta",)), recent_first=True
    )
    got = await store_of(mt).keyword_candidates("org_default", _all(), query)
    # the newest matching every group first (as on SQLite), then the newest matching any
    assert [c.memory.content for c in got] == [both[2].content, both[1].content]
    query = KeywordQuery(terms=("alpha",), limit=2, groups=(("alpha",),), recent_first=True)
    got = await store_of(mt).keyword_candidates("org_default", _all(), query)
    assert [c.memory.content for c in got] == ["alpha only 2", "alpha only 1"]


async def test_a_row_arc_refuses_on_its_own_is_parked_and_the_others_go_on(
    open_store: Callable[..., Any],
) -> None:
    # a body larger than Arc takes (a proxy's body limit, Arc's own cap): 413 for that row only
    with arc_fake.running(tokens={arc_fake.TOKEN: {"read", "write"}}, max_payload=64_000) as fake:
        mt = await open_store(fake, gzip_min=10**9)
        fake.down()
        big = await mt.add_memory({"agent_id": "a", "content": "big", "payload": "z" * 100_000})
        small = [(await mt.remember("a", f"small {i}")).id for i in range(5)]
        fake.up()
        await wait_for(lambda: set(on_arc(fake)) == set(small))
        assert on_arc(fake) == dict.fromkeys(small, 1)
        stats = await store_of(mt).spool_stats()
        assert stats["pending"] == 1  # kept, never dropped
        assert await asyncio.to_thread(store_of(mt).spool.parked) == 1
        assert store_of(mt).forwarder.stats.parked >= 1  # type: ignore[union-attr]
        assert (await mt.get_memory(big.id)).payload == "z" * 100_000  # type: ignore[union-attr]


async def test_a_sync_forward_write_that_arc_refuses_still_succeeds(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, sync_forward=1)
    fake.fail_writes(503, 1)
    written = await mt.remember("a", "hello once")  # committed: spooled and indexed
    assert [m.id for m in (await mt.list_memories()).memories] == [written.id]
    await store_of(mt).drain(20)
    assert on_arc(fake) == {written.id: 1}


async def test_long_filters_and_words_stay_under_arcs_length_cap(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any], tmp_path: Path
) -> None:
    mt = await open_store(fake, sync_forward=1)
    word = "zebra" + "q" * 300  # one long word: its key on Arc is a digest
    hit = await mt.remember("a", f"{word} select select select update set")
    ids = [hit.id] + [(await mt.remember("a", f"filler {i}")).id for i in range(88)]
    events = [f"update_set_{i:02d}_" + "e" * 50 for i in range(19)] + ["general"]
    fake.reset_stats()
    found = await mt.search_memories(
        query=f"zebra {word}",
        content_contains="select " * 3,
        ids=ids,
        event_types=events,
    )
    assert [m.id for m in found.results] == [hit.id]
    assert max(len(q) for q in fake.queries) <= 10_000


async def test_two_processes_on_one_spool_resend_a_lost_batch_once(
    tmp_path: Path,
) -> None:
    with arc_fake.running(tokens={arc_fake.TOKEN: {"read", "write"}}, flush_delay=0.3) as fake:
        url = arc_url(fake, tmp_path, flush_ms=300, visibility_seconds=0.6, timeout=0.5)
        one, two = await aconnect(url), await aconnect(url)
        assert isinstance(one, AsyncMemtrace)
        assert isinstance(two, AsyncMemtrace)
        try:
            ids = [(await one.remember("a", f"lost from Arc's buffer {i}")).id for i in range(4)]
            await wait_for(lambda: sum(on_arc(fake).values()) == 4)
            for memory_id in ids:  # Arc restarts and loses its buffer after the 204
                fake.delete_rows(DB, "memories", memory_id)
            for mt in (one, two):  # both processes check the batch, one resends it
                store_of(mt).forwarder.kick()  # type: ignore[union-attr]
            await store_of(one).drain(20)
            await store_of(two).drain(20)
            await asyncio.sleep(1.0)  # past another deadline: nothing is sent again
            assert on_arc(fake) == dict.fromkeys(ids, 1)
        finally:
            await one.close()
            await two.close()


async def test_a_proxys_502_is_an_unknown_outcome_checked_before_resending(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, visibility_seconds=0.3, timeout=0.5)
    fake.fail_writes(502, 2)
    ids = [(await mt.remember("a", f"behind a proxy {i}")).id for i in range(3)]
    await store_of(mt).drain(20)
    assert on_arc(fake) == dict.fromkeys(ids, 1)
    assert store_of(mt).forwarder.stats.refused.get("502") is None  # type: ignore[union-attr]


async def test_the_purge_keeps_the_body_of_an_unreadable_index_row(
    admin_fake: arc_fake.FakeArc, open_store: Callable[..., Any], tmp_path: Path
) -> None:
    import sqlite3

    fake = admin_fake
    mt = await open_store(fake, sync_forward=1)
    broken = await mt.remember("a", "its index row gets damaged")
    await mt.close()
    with sqlite3.connect(tmp_path / "meta.db") as conn:  # a hand edit: invalid JSON
        conn.execute("UPDATE memories SET metadata = '{' WHERE id = ?", (broken.id,))
    mt = await open_store(fake, sync_forward=1)
    assert (await mt.list_memories()).memories == []  # skipped as unreadable
    assert await store_of(mt).purge_arc(grace_seconds=0) == 0
    assert on_arc(fake) == {broken.id: 1}


async def test_a_substring_scan_counts_a_body_missing_everywhere(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake, sync_forward=1, visibility_seconds=0.2, timeout=0.3)
    kept = await mt.remember("a", "needle kept")
    lost = await mt.remember("a", "needle lost")
    await mt.remember("a", "no match here")
    fake.delete_rows(DB, "memories", lost.id)
    await asyncio.sleep(0.6)
    found = await mt.search_memories(content_contains="NEEDLE")
    assert [m.id for m in found.results] == [kept.id]
    assert store_of(mt).unreadable_rows == 1
    # a keyword search finds only what Arc holds: the lost row is no candidate at all
    found = await mt.search_memories(query="needle")
    assert [m.id for m in found.results] == [kept.id]
    assert store_of(mt).unreadable_rows == 1


async def test_the_go_arcs_empty_reply_is_no_rows(
    fake: arc_fake.FakeArc, open_store: Callable[..., Any]
) -> None:
    mt = await open_store(fake)
    fake.reset_stats()
    # nothing written yet: Go answers 200 with "columns": [] even for count(*)
    assert (await mt.search_memories(query="anything at all")).results == []
    assert fake.queries
    assert await store_of(mt).arc_orphans(grace_seconds=0) == []


async def test_a_write_through_another_server_is_shown_once_it_reaches_arc(
    fake: arc_fake.FakeArc, tmp_path: Path
) -> None:
    # two servers: one metadata store, a spool each
    one = await aconnect(arc_url(fake, tmp_path, spool=f"{tmp_path}/one.db"))
    two = await aconnect(arc_url(fake, tmp_path, spool=f"{tmp_path}/two.db"))
    assert isinstance(one, AsyncMemtrace)
    assert isinstance(two, AsyncMemtrace)
    try:
        await store_of(one).forwarder.stop(0)  # type: ignore[union-attr]
        written = await one.remember("a", "written through server one")
        # server two knows it (the index) but its body is still in server one's spool
        assert (await two.list_memories()).memories == []
        assert store_of(two).unreadable_rows == 0  # not counted as unreadable: on its way
        with pytest.raises(StoreError, match="another server") as err:
            await two.get_memory(written.id)
        assert err.value.status_code == 503
        # the live feed of server two stops before it (it must not pass a memory it could
        # not show), then shows it once it is on Arc
        feed = store_of(two)
        head = "s0"
        page = await feed.feed_memories(
            "org_default", MemoryFilter(), after=head, limit=10, scan=100
        )
        assert page.items == []
        assert page.cursor == head
        store_of(one).forwarder.start()  # type: ignore[union-attr]
        await store_of(one).drain(10)
        assert [m.content for m in (await two.list_memories()).memories] == [written.content]
        page = await feed.feed_memories(
            "org_default", MemoryFilter(), after=head, limit=10, scan=100
        )
        assert [m.content for _, m in page.items] == [written.content]
    finally:
        await one.close()
        await two.close()


def test_the_feed_waits_for_another_servers_bodies_for_feed_hold_seconds() -> None:
    assert parse_url("arc+http://h/db").feed_hold_seconds == 900.0
    assert parse_url("arc+http://h/db?feed_hold_seconds=60").feed_hold_seconds == 60.0
    with pytest.raises(ValidationError):
        parse_url("arc+http://h/db?feed_hold_seconds=-1")
