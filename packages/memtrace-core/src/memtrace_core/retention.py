"""Retention: how long an org keeps its memories, and the sweep that deletes what is past it.

A :class:`~memtrace_core.models.RetentionPolicy` is a default ``max_age`` and ordered rules
(each narrowed by agent, memory types and/or event types, with its own ``max_age``); the first
rule that covers a memory decides its age, measured on the event ``time``. ``None`` (or
``"forever"``) keeps forever. The rules are the engine's (:meth:`AsyncMemtrace.set_retention_policy`
validates, :meth:`AsyncMemtrace.apply_retention` applies, writes already past their age are
refused); a store only evaluates the resolved form (:class:`~memtrace_core.stores.base.AgeRule`).

:class:`Sweeper` is the background job ``memtrace serve`` runs: every ``interval`` seconds it
takes the store's sweep lease (one sweeper at a time across every worker and process on one
store), deletes expired memories, then applies each org's policy, in bounded batches with a
pause between them so that writes and reads keep flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ValidationError
from .models import RetentionPolicy, RetentionRule
from .stores.base import AgeRule, MemoryFilter, MemoryRecord
from .timeutil import now_us, parse_relative
from .validation import (
    Limits,
    check_id,
    check_memory_type,
    check_type_name,
    check_values,
    coerce,
)

if TYPE_CHECKING:
    from .engine import AsyncMemtrace

log = logging.getLogger("memtrace.retention")

FOREVER = "forever"
#: The store lease that makes one sweeper at a time.
SWEEP_LEASE = "memtrace-sweep"
#: Most rules a policy may have.
MAX_RULES = 64


def parse_max_age(value: Any, field: str) -> int | None:
    """A ``max_age`` in microseconds; None for ``None`` / ``"forever"`` (kept forever)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == FOREVER):
        return None
    if isinstance(value, str):
        try:
            age = parse_relative(value)
        except ValidationError as exc:
            raise ValidationError(f"invalid {field}: {exc.message}", field=field) from None
        if age is not None:
            return age
    raise ValidationError(
        f"invalid {field}: {value!r} (a duration such as 12h, 7d, 2w, or 'forever')",
        field=field,
    )


def check_policy(
    policy: RetentionPolicy | Mapping[str, Any] | None, limits: Limits
) -> RetentionPolicy:
    """Validate a policy and return it normalised (``"forever"`` → None, ages checked, list
    values de-duplicated). Raises ValidationError naming the field (``rules[1].max_age``)."""
    pol = coerce(RetentionPolicy, policy, {})
    parse_max_age(pol.max_age, "max_age")
    if len(pol.rules) > MAX_RULES:
        raise ValidationError(f"too many rules: {len(pol.rules)} (max {MAX_RULES})", field="rules")
    rules: list[RetentionRule] = []
    for i, rule in enumerate(pol.rules):
        where = f"rules[{i}]"
        agent = check_id(rule.agent_id, f"{where}.agent_id")
        mtypes = check_values(rule.memory_types, f"{where}.memory_types", check_memory_type, limits)
        etypes = check_values(rule.event_types, f"{where}.event_types", check_type_name, limits)
        if agent is None and mtypes is None and etypes is None:
            raise ValidationError(
                f"invalid {where}: a rule needs agent_id, memory_types or event_types (the "
                "policy's own max_age covers every other memory)",
                field=where,
            )
        age = parse_max_age(rule.max_age, f"{where}.max_age")
        rules.append(
            RetentionRule(
                agent_id=agent,
                memory_types=list(mtypes) if mtypes else None,
                event_types=list(etypes) if etypes else None,
                max_age=None if age is None else rule.max_age,
            )
        )
    default = None if parse_max_age(pol.max_age, "max_age") is None else pol.max_age
    return RetentionPolicy(max_age=default, rules=rules)


@dataclass(frozen=True, slots=True)
class Scope:
    """A rule of a resolved policy: agent aliases (id and name), types, and the age in µs
    (None: forever). ``label`` describes it in error messages."""

    agent_ids: tuple[str, ...] | None
    memory_types: tuple[str, ...] | None
    event_types: tuple[str, ...] | None
    age: int | None
    label: str
    age_text: str = "forever"

    def covers(self, agent_id: str, memory_type: str, event_type: str) -> bool:
        return (
            (self.agent_ids is None or agent_id in self.agent_ids)
            and (self.memory_types is None or memory_type in self.memory_types)
            and (self.event_types is None or event_type in self.event_types)
        )


@dataclass(frozen=True, slots=True)
class Resolved:
    """A policy ready to apply: its rules (agents resolved) and the default age."""

    scopes: tuple[Scope, ...] = ()
    default_age: int | None = None
    default_text: str = "forever"

    @property
    def keeps_everything(self) -> bool:
        return self.default_age is None and all(s.age is None for s in self.scopes)

    def age_of(
        self, agent_id: str, memory_type: str, event_type: str
    ) -> tuple[int | None, str, str]:
        """The age a memory is kept (µs, None: forever), the rule's description and its
        ``max_age`` as written."""
        for scope in self.scopes:
            if scope.covers(agent_id, memory_type, event_type):
                return scope.age, scope.label, scope.age_text
        return self.default_age, "memories no rule covers", self.default_text

    def check_write(self, record: MemoryRecord, now: int, index: int | None = None) -> None:
        """Refuse a memory already older than its age: the next sweep would delete it."""
        if self.keeps_everything:
            return
        age, label, text = self.age_of(record.agent_id, record.memory_type, record.event_type)
        if age is not None and record.time < now - age:
            raise ValidationError(
                f"invalid time: older than this organization's retention policy keeps "
                f"{label} ({text}); the memory would be deleted at once",
                field="time",
                index=index,
            )

    def age_rules(self, now: int) -> list[AgeRule]:
        """The store's form (:meth:`~memtrace_core.stores.base.Store.delete_aged`)."""
        rules = [
            AgeRule(
                MemoryFilter(
                    agent_ids=s.agent_ids, memory_types=s.memory_types, event_types=s.event_types
                ),
                None if s.age is None else now - s.age,
            )
            for s in self.scopes
        ]
        rules.append(
            AgeRule(MemoryFilter(), None if self.default_age is None else now - self.default_age)
        )
        return rules


def describe(rule: RetentionRule) -> str:
    parts = []
    if rule.memory_types:
        parts.append("/".join(rule.memory_types) + " memories")
    if rule.event_types:
        parts.append("event types " + ", ".join(rule.event_types))
    if rule.agent_id:
        parts.append(f"of agent {rule.agent_id}")
    return " ".join(parts) if parts else "memories"


# --------------------------------------------------------------------------------------------
# The sweep


@dataclass
class SweepReport:
    """What one sweep did. ``ran`` is False when another sweeper held the lease."""

    ran: bool = False
    expired: int = 0
    aged: int = 0
    batches: int = 0
    seconds: float = 0.0
    orgs: dict[str, int] = field(default_factory=dict)


@dataclass
class SweepTotals:
    """Running totals of a :class:`Sweeper` (the server's metrics)."""

    runs: int = 0
    skipped: int = 0
    failures: int = 0
    expired: int = 0
    aged: int = 0
    last_seconds: float = 0.0


def holder_id() -> str:
    """A lease holder id unique to this process and sweeper."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Sweeper:
    """Deletes expired memories and memories past their org's retention age, in batches.

    Args:
        engine: the engine (any org view: the sweep covers every org of the store).
        interval: seconds between sweeps.
        batch: memories deleted per store call (each call is one short write transaction).
        pause: seconds slept between batches (at least as long as the batch took), so queued
            writes and reads go first.
        lease_seconds: how long the lease outlives a sweeper that dies mid-sweep.
    """

    def __init__(
        self,
        engine: AsyncMemtrace,
        *,
        interval: float = 60.0,
        batch: int = 50,
        pause: float = 0.01,
        lease_seconds: float = 60.0,
        holder: str | None = None,
    ) -> None:
        if batch < 1 or interval <= 0 or pause < 0 or lease_seconds <= 0:
            raise ValueError("sweeper: batch >= 1, interval > 0, pause >= 0, lease_seconds > 0")
        self.engine = engine
        self.interval = interval
        self.batch = batch
        self.pause = pause
        self.lease_us = int(lease_seconds * 1_000_000)
        self.holder = holder or holder_id()
        self.totals = SweepTotals()
        self._task: asyncio.Task[None] | None = None

    async def _lease(self) -> bool:
        return await self.engine.store.acquire_lease(
            SWEEP_LEASE, self.holder, now=now_us(), duration=self.lease_us
        )

    async def sweep_once(self) -> SweepReport:
        """One sweep, if this sweeper gets the lease: expired memories first, then every
        org's retention. The lease is renewed before each batch (a batch that finds it taken
        stops the sweep) and released at the end."""
        report = SweepReport()
        started = time.perf_counter()
        if not await self._lease():
            self.totals.skipped += 1
            return report
        report.ran = True
        store = self.engine.store
        try:
            while True:
                started_batch = time.perf_counter()
                deleted = await store.delete_expired(now_us(), limit=self.batch)
                report.expired += deleted
                report.batches += 1
                if deleted < self.batch or not await self._between_batches(started_batch):
                    break
            for org_id in await self._orgs():
                try:
                    if not await self._sweep_org(org_id, report):
                        break  # the lease was lost: another sweeper goes on
                except Exception:  # one org's failure (an unreadable policy …) stops no other
                    self.totals.failures += 1
                    log.exception("retention sweep of org %s failed; the other orgs go on", org_id)
        finally:
            with contextlib.suppress(Exception):
                await store.release_lease(SWEEP_LEASE, self.holder)
        report.seconds = time.perf_counter() - started
        self.totals.runs += 1
        self.totals.expired += report.expired
        self.totals.aged += report.aged
        self.totals.last_seconds = report.seconds
        if report.expired or report.aged:
            log.info(
                "retention sweep: deleted %d expired and %d aged memories in %.2f s (%d batches)",
                report.expired,
                report.aged,
                report.seconds,
                report.batches,
            )
        return report

    async def _sweep_org(self, org_id: str, report: SweepReport) -> bool:
        """Apply one org's policy, batch by batch; False if the lease was lost."""
        resolved = await self.engine.with_org(org_id).retention_rules(fresh=True)
        if resolved.keeps_everything:
            return True
        rules = resolved.age_rules(now_us())
        after: Any = None
        while True:
            if not await self._lease():
                return False
            started_batch = time.perf_counter()
            batch = await self.engine.store.delete_aged(
                org_id, rules, limit=self.batch, after=after
            )
            report.batches += 1
            if batch.deleted:
                report.aged += batch.deleted
                report.orgs[org_id] = report.orgs.get(org_id, 0) + batch.deleted
            after = batch.resume
            if after is None:
                return True
            await self._pause(started_batch)

    async def _pause(self, started_batch: float) -> None:
        """Sleep ``pause``, and at least as long as the batch took: the sweep holds the
        store's writer at most half the time, whatever the size of its indexes."""
        await asyncio.sleep(max(self.pause, time.perf_counter() - started_batch))

    async def _between_batches(self, started_batch: float) -> bool:
        await self._pause(started_batch)
        return await self._lease()

    async def _orgs(self) -> Sequence[str]:
        store = self.engine.store
        if self.engine.config.retention is not None:
            return await store.memory_orgs()
        # without a default policy only orgs with a policy of their own can have aged memories
        return sorted(await store.list_retention_policies())

    async def run(self) -> None:
        """Sweep every ``interval`` seconds until cancelled, the first time after
        ``min(interval, 10 s)`` (not at once: a restarting server must not add its sweep to its
        start-up); a failed sweep is logged and the next one runs on schedule."""
        await asyncio.sleep(min(self.interval, 10.0))
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.totals.failures += 1
                log.exception("retention sweep failed; retrying in %.0f s", self.interval)
            await asyncio.sleep(self.interval)

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="memtrace-sweep")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
