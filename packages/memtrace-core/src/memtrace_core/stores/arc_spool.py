"""The Arc store's local durable spool and its forwarder (docs/architecture.md, "The Arc store").

A write is acknowledged once its rows are committed here: a SQLite file in WAL mode
(``synchronous=FULL`` by default, so a commit survives a power cut as well as a crash). The
forwarder sends them to Arc in columnar msgpack batches and removes them only once Arc shows
them to a query, so every row is always readable from the spool or from Arc.

**Exactly once on an append-only database.** Arc cannot update or deduplicate a row, so the
forwarder never sends a row twice unless Arc has shown that it does not hold it:

1. A batch is *claimed* before it is sent: its rows get a fresh batch id and state ``SENT``
   in one spool transaction, and every row carries that id to Arc (column ``fwd_batch``).
2. **204**: the rows are in Arc's ingest buffer (state ``LANDED``). Once Arc's flush interval has
   passed the forwarder asks Arc which rows of the batch it holds and deletes those from the
   spool. Rows still missing after the visibility deadline (Arc restarted and lost its buffer)
   are sent again in a new batch.
3. **An answer from Arc that refuses the batch** (400, 401, 403, 413, 429, 5xx, or a refused
   connection) means nothing was stored: the rows return to ``PENDING``. An answer that refuses
   every batch alike (a refused connection, 401, 403, 408, 429, 503) is retried with backoff;
   any other (400, 413, 500, …) may be one row's fault, so the batch is halved until that row
   is alone, and a row Arc refuses on its own is *parked* — kept, reported and tried again
   later (1 s, doubling up to an hour), never dropped — while the others go on.
4. **No answer** (a timeout, a reset connection, a proxy's 502 or 504: the outcome is
   unknown): the batch stays ``SENT``. After the visibility deadline plus the request timeout
   — when anything Arc accepted is visible — the forwarder asks Arc which of its rows it
   holds, deletes those and sends only the others again. The same check, past the deadline, of
   a ``LANDED`` batch whose rows Arc does not show (it lost its buffer) resends those.
   A process killed at any point leaves its claimed batches in that state, and whichever
   process opens the spool next verifies them the same way.

Several processes may share one spool file: claims, and every check that may resend, are taken
in a transaction (compare-and-set on the batch and its time), and a release only changes rows
still in the batch it was computed for, so one batch is sent or resent by one process at a
time.

The spool is bounded by disk, never by memory: a write that would take it past
``spool_max_bytes`` (or leave less than ``spool_min_free_bytes`` free on its file system) is
refused with a 503 ``StoreError`` and nothing is written.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import random
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import StoreError

log = logging.getLogger("memtrace.store.arc")

T = TypeVar("T")

PENDING, SENT, LANDED = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id TEXT NOT NULL,
  id TEXT NOT NULL,
  hash TEXT NOT NULL,
  row BLOB NOT NULL,
  size INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  state INTEGER NOT NULL DEFAULT 0,
  batch TEXT,
  sent_at REAL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  not_before REAL
);
CREATE INDEX IF NOT EXISTS spool_org_id ON spool (org_id, id);
CREATE INDEX IF NOT EXISTS spool_state ON spool (state, seq);
CREATE INDEX IF NOT EXISTS spool_batch ON spool (batch) WHERE batch IS NOT NULL;
"""


@dataclass(slots=True)
class SpoolRow:
    seq: int
    org_id: str
    id: str
    hash: str
    row: bytes
    stored_at: int


@dataclass(slots=True)
class ForwarderStats:
    """Counters of this process's forwarder (the server's ``memtrace_arc_*`` metrics)."""

    forwarded: int = 0
    batches: int = 0
    retried: int = 0
    resent_after_check: int = 0
    failures: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    #: Times a row Arc refused on its own was parked (tried again later, never dropped).
    parked: int = 0


class Spool:
    """The spool file (see the module docstring); blocking methods, run in a thread."""

    def __init__(
        self,
        path: str,
        *,
        max_bytes: int,
        min_free_bytes: int,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"invalid spool synchronous mode: {synchronous!r}")
        self.path = path
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.synchronous = synchronous.upper()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # the spool's size and its disk's free space as last measured, plus what was added
        self._used = 0
        self._free: int | None = None
        self._measured_at = -1e9

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA busy_timeout = 30000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network file system
                raise StoreError(f"the Arc spool {self.path} cannot use WAL mode ({mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the Arc spool {self.path}: {exc}") from None
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError("the Arc spool is closed")
            try:
                if not write:
                    return fn(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return out
            except sqlite3.Error as exc:
                raise StoreError(f"Arc spool {self.path}: {exc}") from None

    # -- writes -------------------------------------------------------------------------------
    def used_bytes(self, conn: sqlite3.Connection | None = None) -> int:
        def run(c: sqlite3.Connection) -> int:
            pages = c.execute("PRAGMA page_count").fetchone()[0]
            free = c.execute("PRAGMA freelist_count").fetchone()[0]
            size = c.execute("PRAGMA page_size").fetchone()[0]
            return int((pages - free) * size)

        return run(conn) if conn is not None else self._run(run)

    def add(self, rows: Sequence[tuple[str, str, str, bytes, int]]) -> list[int]:
        """Spool ``rows`` (org, id, hash, packed row, stored_at) in one transaction, or refuse
        them all (StoreError, 503) if the spool would pass its limit. Returns their seqs."""
        incoming = sum(len(r[3]) + 128 for r in rows)

        def run(conn: sqlite3.Connection) -> list[int]:
            # the exact size (three PRAGMAs) and the free disk space (a syscall) are read
            # at most once a second, and on every write once within 10 % of a bound
            now = time.monotonic()
            near = self._used + incoming > self.max_bytes * 0.9 or (
                self._free is not None and self._free - incoming < self.min_free_bytes * 1.1
            )
            if near or now - self._measured_at > 1.0:
                self._used = self.used_bytes(conn)
                try:
                    self._free = shutil.disk_usage(os.path.dirname(os.path.abspath(self.path))).free
                except OSError:  # pragma: no cover
                    self._free = None
                self._measured_at = now
            used, free = self._used, self._free
            if used + incoming > self.max_bytes:
                raise StoreError(
                    f"the Arc spool is full ({used} of {self.max_bytes} bytes used, "
                    f"{self.pending_count(conn)} memories waiting for Arc): writes are refused "
                    "until Arc accepts them again; nothing was written"
                )
            if free is not None and free - incoming < self.min_free_bytes:
                raise StoreError(
                    f"the Arc spool's disk is nearly full ({free} bytes free, "
                    f"{self.min_free_bytes} kept free): writes are refused; nothing was written"
                )
            out = []
            for org_id, memory_id, digest, packed, stored_at in rows:
                cur = conn.execute(
                    "INSERT INTO spool (org_id, id, hash, row, size, stored_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (org_id, memory_id, digest, packed, len(packed), stored_at),
                )
                out.append(int(cur.lastrowid or 0))
            self._used += incoming
            if self._free is not None:
                self._free -= incoming
            return out

        return self._run(run, write=True)

    def discard(self, seqs: Sequence[int]) -> None:
        """Remove rows that were spooled for a write that did not happen (a duplicate, a
        failed metadata transaction)."""
        if not seqs:
            return

        def run(conn: sqlite3.Connection) -> None:
            for chunk in chunks(list(seqs), 500):
                conn.execute(
                    f"DELETE FROM spool WHERE seq IN ({','.join('?' * len(chunk))})", chunk
                )

        self._run(run, write=True)

    # -- reads --------------------------------------------------------------------------------
    def pending_count(self, conn: sqlite3.Connection | None = None) -> int:
        def run(c: sqlite3.Connection) -> int:
            return int(c.execute("SELECT count(*) FROM spool").fetchone()[0])

        return run(conn) if conn is not None else self._run(run)

    def remaining(self, seqs: Sequence[int]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            n = 0
            for chunk in chunks(list(seqs), 500):
                n += conn.execute(
                    f"SELECT count(*) FROM spool WHERE seq IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchone()[0]
            return int(n)

        return self._run(run)

    def bodies(self, org_id: str, ids: Sequence[str]) -> dict[tuple[str, str], bytes]:
        """The packed rows of these memories still in the spool, by (id, hash)."""

        def run(conn: sqlite3.Connection) -> dict[tuple[str, str], bytes]:
            out: dict[tuple[str, str], bytes] = {}
            for chunk in chunks(list(dict.fromkeys(ids)), 500):
                for memory_id, digest, packed in conn.execute(
                    "SELECT id, hash, row FROM spool WHERE org_id = ? AND id IN "
                    f"({','.join('?' * len(chunk))})",
                    [org_id, *chunk],
                ):
                    out[(memory_id, digest)] = packed
            return out

        return self._run(run)

    def org_rows(self, org_id: str) -> list[tuple[str, str, bytes]]:
        """Every spooled row of an org: (id, hash, packed row)."""
        return self._run(
            lambda conn: conn.execute(
                "SELECT id, hash, row FROM spool WHERE org_id = ? ORDER BY seq", (org_id,)
            ).fetchall()
        )

    # -- the forwarder's side -------------------------------------------------------------------
    def claim(
        self, limit: int, max_bytes: int, seqs: Sequence[int] | None = None
    ) -> tuple[str, list[SpoolRow]]:
        """Take up to ``limit`` pending rows (at most ``max_bytes``, at least one; only these
        ``seqs`` when given) for a new batch: state SENT with a fresh batch id, in one
        transaction."""
        batch = uuid.uuid4().hex

        def run(conn: sqlite3.Connection) -> list[SpoolRow]:
            picked: list[SpoolRow] = []
            total = 0
            if seqs is None:
                # a row Arc refused on its own waits (not_before) behind none of the others
                found = conn.execute(
                    "SELECT seq, org_id, id, hash, row, stored_at FROM spool WHERE state = ? "
                    "AND (not_before IS NULL OR not_before <= ?) ORDER BY seq LIMIT ?",
                    (PENDING, time.time(), limit),
                ).fetchall()
            else:
                found = conn.execute(
                    "SELECT seq, org_id, id, hash, row, stored_at FROM spool WHERE state = ? "
                    f"AND seq IN ({','.join('?' * len(seqs))}) ORDER BY seq LIMIT ?",
                    (PENDING, *seqs, limit),
                ).fetchall()
            for seq, org_id, memory_id, digest, packed, stored_at in found:
                if picked and total + len(packed) > max_bytes:
                    break
                picked.append(SpoolRow(seq, org_id, memory_id, digest, packed, stored_at))
                total += len(packed)
            for chunk in chunks([r.seq for r in picked], 500):
                conn.execute(
                    "UPDATE spool SET state = ?, batch = ?, sent_at = ?, attempts = attempts + 1 "
                    f"WHERE seq IN ({','.join('?' * len(chunk))})",
                    [SENT, batch, time.time(), *chunk],
                )
            return picked

        return batch, self._run(run, write=True)

    def mark(self, batch: str, state: int, error: str | None = None) -> None:
        """After a send: LANDED (204), or PENDING again (Arc refused it: nothing landed)."""
        self._run(
            lambda conn: conn.execute(
                "UPDATE spool SET state = ?, sent_at = ?, error = ?, "
                "batch = CASE WHEN ? = 0 THEN NULL ELSE batch END WHERE batch = ?",
                (state, time.time(), error, state, batch),
            ),
            write=True,
        )

    def release(
        self,
        batch: str,
        seqs: Sequence[int],
        error: str | None,
        *,
        not_before: float | None = None,
    ) -> int:
        """Rows of ``batch`` back to PENDING (Arc refused them, or does not hold them), with the
        reason kept; ``not_before``: not claimed again before then (a row Arc refuses on its
        own, parked). Only rows still in that batch change: a release computed by a process
        whose view is stale never undoes a newer claim. Returns the rows released."""

        def run(conn: sqlite3.Connection) -> int:
            n = 0
            for chunk in chunks(list(seqs), 500):
                n += conn.execute(
                    "UPDATE spool SET state = ?, batch = NULL, error = ?, not_before = ? "
                    f"WHERE batch = ? AND seq IN ({','.join('?' * len(chunk))})",
                    [PENDING, error, not_before, batch, *chunk],
                ).rowcount
            return n

        return self._run(run, write=True)

    def due_checks(self, first_check: float, deadline: float) -> list[tuple[str, int, float]]:
        """Batches to ask Arc about: (batch, state, sent_at) of LANDED batches answered at
        least ``first_check`` seconds ago and of SENT ones (outcome unknown, or a process that
        died) claimed at least ``deadline`` seconds ago."""
        now = time.time()
        return [
            (b, int(s), float(t))
            for b, s, t in self._run(
                lambda conn: conn.execute(
                    "SELECT batch, state, min(sent_at) FROM spool WHERE batch IS NOT NULL "
                    "AND ((state = ? AND sent_at <= ?) OR (state = ? AND sent_at <= ?)) "
                    "GROUP BY batch, state",
                    (LANDED, now - first_check, SENT, now - deadline),
                ).fetchall()
            )
        ]

    def rearm(self, batch: str, state: int, sent_at: float) -> bool:
        """Take the check of ``batch`` that may resend rows (a SENT batch, or a LANDED one past
        its deadline), so that two processes never resend one batch: the batch becomes SENT
        again, claimed now, in one transaction. True if this process has it."""

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE spool SET state = ?, sent_at = ? WHERE batch = ? AND state = ? "
                "AND sent_at = ?",
                (SENT, time.time(), batch, state, sent_at),
            )
            return cur.rowcount > 0

        return self._run(run, write=True)

    def batch_rows(self, batch: str) -> list[tuple[int, str, str, int]]:
        """(seq, org, id, stored_at) of the rows of a batch."""
        return self._run(
            lambda conn: conn.execute(
                "SELECT seq, org_id, id, stored_at FROM spool WHERE batch = ?", (batch,)
            ).fetchall()
        )

    def confirm(self, seqs: Sequence[int]) -> None:
        """Arc holds these rows: they leave the spool."""

        def run(conn: sqlite3.Connection) -> None:
            for chunk in chunks(list(seqs), 500):
                conn.execute(
                    f"DELETE FROM spool WHERE seq IN ({','.join('?' * len(chunk))})", chunk
                )

        if seqs:
            self._run(run, write=True)

    def parked(self) -> int:
        """Rows Arc refused on their own, waiting to be tried again."""
        return int(
            self._run(
                lambda conn: conn.execute(
                    "SELECT count(*) FROM spool WHERE state = ? AND not_before > ?",
                    (PENDING, time.time()),
                ).fetchone()[0]
            )
        )

    def state_counts(self) -> dict[int, int]:
        return {
            int(s): int(n)
            for s, n in self._run(
                lambda conn: conn.execute(
                    "SELECT state, count(*) FROM spool GROUP BY state"
                ).fetchall()
            )
        }


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` in lists of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


#: Answers that refuse every batch alike (a refused connection is 0): retried with backoff.
_WHOLE_ARC = frozenset({0, 401, 403, 408, 429, 503})
#: How long a row Arc refuses on its own waits before it is tried again (doubling, bounded).
_PARK_SECONDS = 1.0
_PARK_MAX_SECONDS = 3600.0


class SendRefused(Exception):
    """Arc answered and refused a batch: nothing of it was stored."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Arc answered {status}: {message}")
        self.status = status


class SendUnknown(Exception):
    """No answer from Arc: the batch may or may not have been stored."""


class Forwarder:
    """Sends the spool to Arc (see the module docstring). One asyncio task per store."""

    def __init__(
        self,
        spool: Spool,
        *,
        send: Callable[[list[SpoolRow], str], Any],
        held: Callable[[str, list[tuple[int, str, str, int]]], Any],
        batch_rows: int,
        batch_bytes: int,
        first_check: float,
        deadline: float,
        in_flight: float = 0.0,
        linger: float = 0.0,
        retry_base: float = 0.2,
        retry_max: float = 30.0,
    ) -> None:
        self.spool = spool
        self._send = send
        self._held = held
        self.batch_rows = batch_rows
        self._batch_limit = batch_rows
        self.batch_bytes = batch_bytes
        self.first_check = first_check
        self.deadline = deadline
        self.in_flight = in_flight
        self.linger = linger
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.stats = ForwarderStats()
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._backoff = 0.0
        self._park_counts: dict[int, int] = {}
        self._next_check = 0.0  # monotonic: when the spool may next be asked for due checks

    def start(self) -> None:
        """Start (or, after :meth:`stop`, restart) forwarding."""
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="memtrace-arc-forwarder")

    def kick(self) -> None:
        self._wake.set()

    async def stop(self, drain_seconds: float) -> None:
        """Stop, after trying for up to ``drain_seconds`` to empty the spool."""
        if drain_seconds > 0:
            deadline = time.monotonic() + drain_seconds
            while time.monotonic() < deadline:
                if await asyncio.to_thread(self.spool.pending_count) == 0:
                    break
                self.kick()
                async with self._progress:
                    try:
                        await asyncio.wait_for(self._progress.wait(), 0.2)
                    except TimeoutError:
                        pass
        self._closing = True
        self._wake.set()
        await cancel(self._task)
        self._task = None

    async def forward_now(self, seqs: Sequence[int], timeout: float) -> None:
        """Send these rows at once and return when Arc shows them (``sync_forward``: the
        writer forwards its own rows, as the forwarder would); StoreError after ``timeout``
        (the rows stay spooled and the forwarder keeps trying)."""
        deadline = time.monotonic() + timeout
        for chunk in chunks(list(seqs), self.batch_rows):
            batch, rows = await asyncio.to_thread(self.spool.claim, len(chunk), 1 << 62, chunk)
            if not rows:
                continue  # the forwarder took them: wait for it below
            try:
                await self._send(rows, batch)
            except SendRefused as exc:
                await asyncio.to_thread(self.spool.release, batch, [r.seq for r in rows], str(exc))
                self.kick()
                raise StoreError(
                    f"Arc refused the write ({exc}); it is spooled and will be forwarded"
                ) from None
            except SendUnknown as exc:
                raise StoreError(
                    f"no answer from Arc ({exc}); the write is spooled and will be forwarded"
                ) from None
            # the rows stay SENT until confirmed just below (should this process die in
            # between, whichever opens the spool next verifies them at the deadline)
            self.stats.batches += 1
            while True:
                held = await self._held(batch, [(r.seq, r.org_id, r.id, r.stored_at) for r in rows])
                present = [r.seq for r in rows if r.id in held]
                await asyncio.to_thread(self.spool.confirm, present)
                self.stats.forwarded += len(present)
                if len(present) == len(rows):
                    break
                rows = [r for r in rows if r.id not in held]
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(max(min(self.first_check, 0.5), 0.01))
        await self.wait_forwarded(seqs, max(deadline - time.monotonic(), 0.001))

    async def wait_forwarded(self, seqs: Sequence[int], timeout: float) -> None:
        """Until Arc shows these rows; StoreError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self.spool.remaining, seqs):
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(
                    f"Arc did not show {len(seqs)} spooled memories within {timeout:g} s "
                    "(they stay in the spool and are forwarded later)"
                )
            self.kick()
            async with self._progress:
                try:
                    await asyncio.wait_for(self._progress.wait(), min(left, 0.25))
                except TimeoutError:
                    pass

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    async def _run(self) -> None:
        while not self._closing:
            try:
                busy = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the forwarder die
                log.exception("Arc forwarder step failed")
                self._failed(f"{type(exc).__name__}: {exc}")
                busy = False
                self._backoff = min(max(self._backoff * 2, self.retry_base), self.retry_max)
            await self._notify()
            if busy and self._backoff == 0:
                continue
            if self._backoff:
                # a kick does not cut a backoff short
                await asyncio.sleep(self._backoff)
                continue
            # idle: until a write kicks, or the next check of a batch may be due
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(min(self.first_check, 1.0), 0.25))
            except TimeoutError:
                continue
            if self.linger > 0:
                # woken by a write: let the writes of the next moment join its batch (Arc shows
                # nothing before its flush interval anyway)
                await asyncio.sleep(self.linger)

    def _failed(self, message: str) -> None:
        """Count a failed step (``memtrace_arc_failures_total``); the callers log it."""
        self.stats.failures += 1
        log.debug("Arc forwarder: %s", message)

    async def step(self) -> bool:
        """One round: check due batches, then send one batch. Whether there was work."""
        worked = await self._check_due()
        batch, rows = await asyncio.to_thread(self.spool.claim, self._batch_limit, self.batch_bytes)
        if not rows:
            self._backoff = 0.0
            return worked
        try:
            await self._send(rows, batch)
        except SendRefused as exc:
            self.stats.retried += len(rows)
            self._failed(str(exc))
            key = str(exc.status)
            self.stats.refused[key] = self.stats.refused.get(key, 0) + 1
            if exc.status in _WHOLE_ARC:
                # Arc is down, overloaded or refuses the token: every batch would be refused
                await asyncio.to_thread(self.spool.release, batch, [r.seq for r in rows], str(exc))
                self._backoff = self._next_backoff()
                log.warning("Arc refused a batch of %d memories: %s (retrying)", len(rows), exc)
                return False
            if len(rows) > 1:
                # perhaps one row's fault (too large, a value Arc cannot take): halve the
                # batches until the row is alone, so that the others go on
                await asyncio.to_thread(self.spool.release, batch, [r.seq for r in rows], str(exc))
                self._batch_limit = max(1, min(self._batch_limit, len(rows)) // 2)
                return True
            row = rows[0]
            wait = min(_PARK_SECONDS * 2 ** min(self._parked_times(row), 6), _PARK_MAX_SECONDS)
            await asyncio.to_thread(
                self.spool.release, batch, [row.seq], str(exc), not_before=time.time() + wait
            )
            self.stats.parked += 1
            self._batch_limit = self.batch_rows
            log.error(
                "Arc refuses memory %s of org %s on its own (%s): kept in the spool, tried "
                "again in %.0f s; the other memories go on",
                row.id,
                row.org_id,
                exc,
                wait,
            )
            return True
        except SendUnknown as exc:
            # the outcome is unknown: the batch stays SENT and is checked at the deadline
            self.stats.retried += len(rows)
            self._failed(str(exc))
            self._backoff = self._next_backoff()
            log.warning("no answer from Arc for a batch of %d memories: %s", len(rows), exc)
            return False
        await asyncio.to_thread(self.spool.mark, batch, LANDED)
        self.stats.batches += 1
        self._backoff = 0.0
        if self._batch_limit < self.batch_rows:
            self._batch_limit = min(self.batch_rows, self._batch_limit * 2)
        if self.first_check <= 0:
            await self._check_due(now=True)
        return True

    def _parked_times(self, row: SpoolRow) -> int:
        count = self._park_counts.get(row.seq, 0)
        self._park_counts[row.seq] = count + 1
        if len(self._park_counts) > 10_000:
            self._park_counts.clear()
        return count

    def _next_backoff(self) -> float:
        base = max(self._backoff * 2, self.retry_base)
        return min(base, self.retry_max) * (0.5 + random.random() / 2)

    async def _check_due(self, *, now: bool = False) -> bool:
        # Batches become due at the earliest first_check after their 204: the spool is asked at
        # most every half second (or at once: ``now``), not on every write's wake-up.
        if not now and time.monotonic() < self._next_check:
            return False
        self._next_check = time.monotonic() + min(max(self.first_check, 0.05), 0.5)
        # a SENT batch's request may still be in flight for up to the request timeout
        due = await asyncio.to_thread(
            self.spool.due_checks, self.first_check, self.deadline + self.in_flight
        )
        for batch, state, sent_at in due:
            may_resend = state == SENT or time.time() - sent_at >= self.deadline
            if may_resend and not await asyncio.to_thread(self.spool.rearm, batch, state, sent_at):
                continue  # another process took this check
            if may_resend:
                state = SENT
            rows = await asyncio.to_thread(self.spool.batch_rows, batch)
            if not rows:
                continue
            try:
                held = await self._held(batch, rows)
            except Exception as exc:
                self._failed(f"checking batch {batch}: {exc}")
                self._backoff = self._next_backoff()
                return False
            present = [seq for seq, _org, memory_id, _at in rows if memory_id in held]
            missing = [seq for seq, _org, memory_id, _at in rows if memory_id not in held]
            await asyncio.to_thread(self.spool.confirm, present)
            self.stats.forwarded += len(present)
            if missing and may_resend:
                # Arc never stored them (or lost them from its buffer): send them again
                self.stats.resent_after_check += await asyncio.to_thread(
                    self.spool.release, batch, missing, "not found on Arc"
                )
        return bool(due)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has stopped (whatever it raised)."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass


def gzip_if_smaller(body: bytes, min_size: int) -> tuple[bytes, bool]:
    """``body`` gzipped when it is at least ``min_size`` bytes and compression pays."""
    if len(body) < min_size:
        return body, False
    packed = gzip.compress(body, compresslevel=1)
    return (packed, True) if len(packed) < len(body) * 0.9 else (body, False)
