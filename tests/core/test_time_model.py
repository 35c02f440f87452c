"""Property test of the time model (issue 15): for random histories of writes (some expiring,
some superseding — validly or not — some duplicates), deletes (one memory, or several at once),
sweeps and clock moves, every read at every ``as_of`` (each recorded time of the history, and
now) equals a straightforward in-memory model of the history kept here.

The model's rules, from docs/time.md and the Store docstrings:

* a memory is visible at ``as_of`` T when it is stored (not deleted or swept), unexpired at
  *now*, and recorded at or before T;
* it is superseded at T when the memory that (now) supersedes it was recorded at or before T;
  reads hide it unless ``include_superseded``, and then show ``superseded_by`` only if so;
* deleting is as if never written: the chain is spliced around the deleted memory;
* an expired memory is as if never written from the moment it expires: a memory whose
  successors have all expired is current again (no ``superseded_by``), before any sweep —
  though until the sweep a link may still name the expired memory (A <- B(expired) <- C: A
  is hidden and names B);
* a write names a duplicate when a stored, current, unexpired memory has its dedup key (not
  the one it supersedes), else its ``supersedes`` must be stored, unexpired and current (400 /
  409 naming the chain's last live version); superseding a memory whose successors have all
  expired deletes them first.

The example count follows the hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from fake_clock import Clock
from hypothesis import event, given
from hypothesis import strategies as st

from memtrace_core import (
    AsyncMemtrace,
    DuplicateMemoryError,
    NotFoundError,
    SupersededError,
    ValidationError,
)
from memtrace_core.retention import Sweeper
from memtrace_core.timeutil import format_us, from_us

_orgs = itertools.count()
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
AGENTS = ["a1", "a2"]


@dataclass
class M:
    id: str
    agent: str
    content: str
    recorded: int
    expires: int | None
    supersedes: str | None


class Model:
    def __init__(self) -> None:
        self.stored: dict[str, M] = {}
        self.written: list[str] = []  # every id ever written, in order
        self.times: list[int] = []  # every recorded time

    def successor(self, mid: str) -> M | None:
        return next((m for m in self.stored.values() if m.supersedes == mid), None)

    def after(self, mid: str) -> list[M]:
        """The successors of ``mid``, in chain order."""
        out = []
        while (nxt := self.successor(mid)) is not None:
            out.append(nxt)
            mid = nxt.id
        return out

    def current(self, mid: str, now: int) -> bool:
        """No successor, or every successor has expired."""
        return all(not self.live(m, now) for m in self.after(mid))

    def head(self, mid: str, now: int) -> str:
        while not self.current(mid, now):
            nxt = self.successor(mid)
            assert nxt is not None
            mid = nxt.id
        return mid

    @staticmethod
    def live(m: M, now: int) -> bool:
        return m.expires is None or m.expires > now

    def delete(self, mid: str) -> None:
        gone = self.stored.pop(mid)
        nxt = self.successor(mid)
        if nxt is not None:
            nxt.supersedes = gone.supersedes

    def superseded_by(self, mid: str, as_of: int | None, now: int) -> M | None:
        nxt = self.successor(mid)
        if nxt is None or (as_of is not None and nxt.recorded > as_of):
            return None
        if self.current(mid, now):
            return None
        return nxt

    def visible(self, now: int, as_of: int | None, include_superseded: bool) -> list[M]:
        out = [
            m
            for m in self.stored.values()
            if self.live(m, now)
            and (as_of is None or m.recorded <= as_of)
            and (include_superseded or self.superseded_by(m.id, as_of, now) is None)
        ]
        return sorted(out, key=lambda m: m.recorded)

    def duplicate_of(
        self, agent: str, content: str, supersedes: str | None, now: int
    ) -> str | None:
        same = [
            m
            for m in self.stored.values()
            if (m.agent, m.content) == (agent, content)
            and self.live(m, now)
            and self.current(m.id, now)
            and m.id != supersedes
        ]
        return max(same, key=lambda m: m.recorded).id if same else None


write_op = st.tuples(
    st.just("write"),
    st.sampled_from(AGENTS),
    st.sampled_from(WORDS),
    st.one_of(st.none(), st.none(), st.integers(1, 30)),  # ttl in seconds
    st.one_of(st.none(), st.integers(0, 999)),  # supersedes: an id written (modulo)
)
_other_ops = [
    st.tuples(st.just("delete"), st.integers(0, 999)),
    st.tuples(st.just("delete_agent"), st.sampled_from(AGENTS)),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("advance"), st.integers(1, 20)),
]
#: One step of a history: a write six times in ten, else a delete (of one memory or of an
#: agent's), a sweep or a clock move. (Chosen by a sampled number, not one_of, whose bias to
#: its first branches under shrinking-friendly generation made histories with no writes.)
step = st.sampled_from(range(10)).flatmap(lambda n: write_op if n < 6 else _other_ops[n - 6])
ops = st.lists(step, min_size=6, max_size=30)


async def check_reads(mt: AsyncMemtrace, model: Model, now: int) -> None:
    points: list[int | None] = [None, now, *sorted(set(model.times))]
    points += [t - 1 for t in model.times[:3]]
    for as_of in points:
        at = None if as_of is None else format_us(as_of)
        for include in (False, True):
            want = model.visible(now, as_of, include)
            got = (
                await mt.list_memories(
                    as_of=at, include_superseded=include, limit=1000, order="asc"
                )
            ).memories
            assert [m.id for m in got] == [m.id for m in want], (at, include)
            for g in got:
                succ = model.superseded_by(g.id, as_of, now)
                assert g.superseded_by == (succ.id if succ else None), (at, g.id)
                assert g.superseded_at == (from_us(succ.recorded) if succ else None)
                assert g.supersedes == model.stored[g.id].supersedes
            for agent in AGENTS:
                found = await mt.search_memories(
                    agent_id=agent, as_of=at, include_superseded=include, limit=1000, order="asc"
                )
                assert [m.id for m in found.results] == [m.id for m in want if m.agent == agent]
        for mid in model.written:
            m = model.stored.get(mid)
            shown = m is not None and model.live(m, now) and (as_of is None or m.recorded <= as_of)
            try:
                got_one = await mt.get_memory(mid, as_of=at)
            except NotFoundError:
                assert not shown, (at, mid)
                continue
            assert shown, (at, mid)
            succ = model.superseded_by(mid, as_of, now)
            assert got_one.superseded_by == (succ.id if succ else None), (at, mid)


@given(history=ops)
async def test_every_read_at_every_as_of_matches_the_model(
    engine: AsyncMemtrace, clock: Clock, history: list[tuple[Any, ...]]
) -> None:
    mt = engine.with_org(f"org_tm_{next(_orgs)}")
    model = Model()
    for op in history:
        clock.advance(0.001)
        now = clock.t
        kind = op[0]
        if kind == "write":
            _, agent, word, ttl, pick = op
            target = (
                model.written[pick % len(model.written)]
                if pick is not None and model.written
                else None
            )
            fields: dict[str, Any] = {"agent_id": agent, "content": f"{word} note"}
            if ttl is not None:
                fields["ttl"] = ttl
            if target is not None:
                fields["supersedes"] = target
            dup = model.duplicate_of(agent, fields["content"], target, now)
            tm = model.stored.get(target) if target else None
            outcome: Any
            try:
                outcome = await mt.add_memory(fields)
            except (DuplicateMemoryError, SupersededError, ValidationError) as exc:
                outcome = exc
            if isinstance(outcome, DuplicateMemoryError):
                event("duplicate")
                assert dup is not None, op
                assert outcome.existing_id == dup
                continue
            if isinstance(outcome, SupersededError):
                event("superseded: 409")
                assert dup is None, op
                assert tm is not None, op
                assert model.live(tm, now), op
                assert target is not None
                assert not model.current(target, now)
                assert outcome.current_id == model.head(target, now)
                continue
            if isinstance(outcome, ValidationError):
                event("supersedes: 400")
                assert dup is None, op
                assert target is not None, op
                assert outcome.field == "supersedes"
                assert tm is None or not model.live(tm, now)
                continue
            m = outcome
            event("supersedes ok" if target else "write ok")
            assert dup is None, op
            if target is not None:
                assert tm is not None
                assert model.live(tm, now)
                assert model.current(target, now)
                for gone in model.after(target):  # all expired: deleted by the write
                    model.delete(gone.id)
            assert m.recorded_at == from_us(now)
            model.stored[m.id] = M(
                m.id,
                agent,
                fields["content"],
                now,
                None if ttl is None else now + ttl * 10**6,
                target,
            )
            model.written.append(m.id)
            model.times.append(now)
        elif kind == "delete":
            if not model.written:
                continue
            mid = model.written[op[1] % len(model.written)]
            try:
                await mt.delete_memory(mid)
            except NotFoundError:
                assert mid not in model.stored
            else:
                model.delete(mid)
        elif kind == "delete_agent":
            victims = [m.id for m in model.stored.values() if m.agent == op[1]]
            assert await mt.delete_memories(agent_id=op[1]) == len(victims)
            for mid in victims:
                model.delete(mid)
        elif kind == "sweep":
            report = await Sweeper(mt, pause=0).sweep_once()
            if report.expired:
                event("swept")
            for mid in [m.id for m in model.stored.values() if not model.live(m, now)]:
                model.delete(mid)
        else:
            clock.advance(op[1])
    await check_reads(mt, model, clock.t)
