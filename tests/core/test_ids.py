"""Memory ids: the table encoding of a ULID equals Crockford base32 of its bits, ids sort by
creation (time first, then the order within a millisecond), the time reads back, and the pool
of random bytes (ids, request ids) never hands out the same bytes twice, not across a fork."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memtrace_core import ids


@pytest.fixture(autouse=True)
def _fresh_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from no id made (the module keeps the last millisecond and random
    part; an explicit far-future time would hold every later id at that time)."""
    monkeypatch.setattr(ids, "_last_ms", -1)
    monkeypatch.setattr(ids, "_last_rand", 0)
    monkeypatch.setattr(ids, "_last_time_text", ids._encode_time(-1))


def _reference(value: int, length: int) -> str:
    """Crockford base32 by the spec: 5 bits per character, most significant first."""
    return "".join(
        "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[(value >> (5 * i)) & 31] for i in reversed(range(length))
    )


@given(st.integers(min_value=0, max_value=2**48 - 1), st.integers(min_value=0, max_value=2**80 - 1))
def test_the_encoding_is_crockford_base32_of_the_bits(ms: int, rand: int) -> None:
    assert ids._encode_time(ms) == _reference(ms, 10)
    assert ids._encode_rand(rand) == _reference(rand, 16)
    text = ids._encode_time(ms) + ids._encode_rand(rand)
    assert int("".join(f"{ids._DECODE[c]:05b}" for c in text), 2) == (ms << 80) | rand


@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_an_explicit_time_reads_back(ms: int) -> None:
    ids._last_ms = -1  # hypothesis runs the examples in one test (one fixture)
    value = ids.ulid(ms)
    assert len(value) == 26
    assert ids.ulid_time_ms(value) == ms
    assert ids.is_memory_id("mem_" + value)


def test_ids_sort_in_creation_order_within_and_across_milliseconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([1000.0005] * 50 + [1000.0015] * 50 + [999.0] * 20 + [1000.0025] * 5)
    monkeypatch.setattr(ids.time, "time", lambda: next(clock))
    made = [ids.memory_id() for _ in range(125)]
    assert made == sorted(made)
    assert len(set(made)) == 125
    times = [ids.ulid_time_ms(m[4:]) for m in made]
    # a clock going back keeps the last millisecond (and the order)
    assert times[:50] == [1_000_000] * 50
    assert times[50:120] == [1_000_001] * 70
    assert times[120:] == [1_000_002] * 5
    # within a millisecond the random part counts up by one
    rand = [int("".join(f"{ids._DECODE[c]:05b}" for c in m[14:]), 2) for m in made[:50]]
    assert rand == list(range(rand[0], rand[0] + 50))


def test_an_explicit_time_is_encoded_as_given_and_new_ids_stay_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids.time, "time", lambda: 2000.0)
    first = ids.memory_id()
    assert ids.ulid_time_ms(ids.ulid(5)) == 5  # an earlier time than the last id's
    assert ids.ulid_time_ms(ids.memory_id()[4:]) == 2_000_000  # the clock did not go back
    assert ids.ulid_time_ms(ids.ulid(2_000_000)) == 2_000_000
    assert ids.ulid_time_ms(ids.ulid(2_000_007)) == 2_000_007  # a later one
    after = ids.memory_id()  # never sorts before an id already made
    assert ids.ulid_time_ms(after[4:]) == 2_000_007
    assert after > first


def test_an_earlier_explicit_time_leaves_the_order_of_new_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids.time, "time", lambda: 3000.0)
    made = [ids.memory_id() for _ in range(20)]
    for _ in range(20):  # an import's ids in between (a fresh random part each)
        ids.ulid(1_000)
        ids.ulid(3_000_000)  # the same millisecond as the new ids
        made.append(ids.memory_id())
    assert made == sorted(made)
    assert len(set(made)) == 40


def test_a_bad_explicit_time_raises_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids.time, "time", lambda: 4000.0)
    first = ids.memory_id()
    with pytest.raises(TypeError):
        ids.ulid(1e15)  # type: ignore[arg-type]
    after = ids.memory_id()
    assert after > first
    assert ids.ulid_time_ms(after[4:]) == 4_000_000
    # -1 (before any id) as the old encoder wrote it: the low 50 bits, all ones
    assert ids.ulid(-1)[:10] == "ZZZZZZZZZZ"
    assert len(ids.ulid(-1)) == 26


def test_random_hex_and_the_pool_refill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_pool", b"")
    monkeypatch.setattr(ids, "_pool_at", 0)
    drawn = [ids.random_hex(16) for _ in range(600)]  # more than one pool of 4 KiB
    assert all(len(h) == 32 and int(h, 16) >= 0 for h in drawn)
    assert len(set(drawn)) == 600
    assert len(ids.random_hex(5000)) == 10_000  # larger than a pool: its own draw


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_makes_other_ids_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids.time, "time", lambda: 5000.0)  # parent and child: one millisecond
    ids.memory_id()  # the state a child would inherit
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids and bytes, then exit without running pytest's teardown
        try:
            os.write(write, " ".join([ids.memory_id() for _ in range(5)]).encode())
            os.write(write, (" " + ids.random_hex(16)).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = {ids.memory_id() for _ in range(5)} | {ids.random_hex(16)}
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    assert len(child) == 6
    assert not parent & child  # inherited state would make both count up the same ids
