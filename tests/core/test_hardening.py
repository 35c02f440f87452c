"""Regressions of the adversarial probe (issue 7) at the engine: nothing accepted may break a
read, every bound is checked before work is done, and no org can change another's results.

Each test here failed before the fix it names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from memtrace_core import (
    AsyncMemtrace,
    NotFoundError,
    ValidationError,
    validation,
)
from memtrace_core.timeutil import MAX_US, MIN_US, format_us
from memtrace_core.validation import Limits, check_tags

EDGE_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]


def nested(depth: int) -> dict[str, Any]:
    """An object nested ``depth`` levels (the top level is 1)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def every_read(mt: AsyncMemtrace, agent: str = "a1") -> None:
    """Every read path of an org, which must all succeed whatever was accepted."""
    listed = await mt.list_memories(limit=1000)
    await mt.list_memories(agent_id=agent, order="asc")
    await mt.search_memories(query="probe edge")
    await mt.search_memories(content_contains="probe")
    await mt.get_agent_stats(agent)
    if listed.count:  # an agent with neither memories nor registration has no context (404)
        for fmt in ("markdown", "xml", "jsonl"):
            await mt.get_agent_context(agent, format=fmt, since="0001-01-01T00:00:00Z")
    await mt.list_agents()
    await mt.list_sessions()
    lines = [line async for line in mt.iter_export()]
    assert sum('"kind":"memory"' in line for line in lines) == len(listed.memories)
    for memory in listed.memories:
        assert (await mt.get_memory(memory.id)).content == memory.content


async def count(mt: AsyncMemtrace) -> int:
    return (await mt.list_memories(limit=1000)).count


# -- 1. poison writes ---------------------------------------------------------------------


@pytest.mark.parametrize("edge", EDGE_TIMES)
async def test_time_outside_the_calendar_is_refused_before_it_is_stored(
    engine: AsyncMemtrace, edge: str
) -> None:
    await engine.add_memory(agent_id="a1", content="probe before")
    with pytest.raises(ValidationError) as err:
        await engine.add_memory(agent_id="a1", content="probe edge", time=edge)
    assert err.value.field == "time"
    assert "0001-01-01T00:00:00Z" in err.value.message
    # the batch is refused whole: the good items are not stored either
    with pytest.raises(ValidationError) as batch_err:
        await engine.add_memories(
            [{"agent_id": "a1", "content": f"probe good {i}"} for i in range(3)]
            + [{"agent_id": "a1", "content": "probe edge", "time": edge}]
        )
    assert batch_err.value.index == 3
    line = json.dumps(
        {
            "kind": "memory",
            "id": "mem_01M8R8R3G0EQXMS6YTVKBW9F65",
            "agent_id": "a1",
            "content": "probe edge",
            "time": edge,
        }
    )
    with pytest.raises(ValidationError):
        await engine.import_jsonl([line], require_trailer=False)
    assert await count(engine) == 1
    await every_read(engine)


async def test_the_first_and_last_representable_instants_are_readable_everywhere(
    engine: AsyncMemtrace,
) -> None:
    first = await engine.add_memory(agent_id="a1", content="probe first", time=format_us(MIN_US))
    # a new write may not be in the future: the last instant arrives by import
    last_line = {
        "kind": "memory",
        "id": "mem_01M8R8R3G0EQXMS6YTVKBW9F66",
        "agent_id": "a1",
        "content": "probe last",
        "time": format_us(MAX_US),
    }
    await engine.import_jsonl([json.dumps(last_line)], require_trailer=False)
    last = await engine.get_memory(last_line["id"])
    assert format_us(MIN_US) == "0001-01-01T00:00:00Z"  # RFC 3339, not glibc's "1-01-01"
    await every_read(engine)
    ordered = await engine.list_memories(order="asc")
    assert [m.id for m in ordered.memories] == [first.id, last.id]
    window = await engine.list_memories(since="0001-01-01T00:00:00Z", until="0001-01-02")
    assert [m.id for m in window.memories] == [first.id]
    await engine.delete_memory(first.id)
    await engine.delete_memory(last.id)
    assert await count(engine) == 0


@pytest.mark.parametrize("field", ["since", "until"])
async def test_time_filters_outside_the_calendar_are_a_validation_error(
    engine: AsyncMemtrace, field: str
) -> None:
    for edge in EDGE_TIMES:
        with pytest.raises(ValidationError) as err:
            await engine.list_memories(**{field: edge})
        assert err.value.field == field


async def test_deep_metadata_is_refused_and_the_limit_itself_is_readable(
    engine: AsyncMemtrace,
) -> None:
    depth = engine.config.limits.max_json_depth
    ok = await engine.add_memory(agent_id="a1", content="probe deep", metadata=nested(depth))
    assert (await engine.get_memory(ok.id)).metadata == nested(depth)
    for too_deep in (depth + 1, 300, 5000):
        with pytest.raises(ValidationError) as err:
            await engine.add_memory(agent_id="a1", content="probe", metadata=nested(too_deep))
        assert err.value.field == "metadata"
        assert "deeper than" in err.value.message
    deep_list: Any = []
    for _ in range(depth + 5):
        deep_list = [deep_list]
    with pytest.raises(ValidationError):
        await engine.add_memory(agent_id="a1", content="probe", metadata={"x": deep_list})
    with pytest.raises(ValidationError) as batch:
        await engine.add_memories(
            [
                {"agent_id": "a1", "content": "probe fine"},
                {"agent_id": "a1", "content": "probe", "metadata": nested(400)},
            ]
        )
    assert batch.value.index == 1
    assert await count(engine) == 1
    await every_read(engine)


async def test_deep_agent_config_and_session_metadata_are_refused(engine: AsyncMemtrace) -> None:
    deep = nested(400)
    with pytest.raises(ValidationError) as err:
        await engine.register_agent(name="lead", config=deep)
    assert err.value.field == "config"
    with pytest.raises(ValidationError) as err:
        await engine.create_session(agent_id="a1", metadata=deep)
    assert err.value.field == "metadata"
    session = await engine.create_session(agent_id="a1", metadata={"k": 1})
    with pytest.raises(ValidationError):
        await engine.update_session(session.id, metadata={"k": deep})
    assert (await engine.get_session(session.id)).metadata == {"k": 1}
    assert (await engine.list_agents()).count == 0
    assert (await engine.list_sessions()).count == 1
    await every_read(engine)


def test_json_checks_refuse_non_string_keys_nan_and_unserialisable_values() -> None:
    limits = Limits()
    for bad in ({"a": {1: "x"}}, {"a": float("nan")}, {"a": {1, 2}}, {"a": "\ud800"}):
        with pytest.raises(ValidationError):
            validation.check_json(bad, "metadata", limits)
    assert validation.check_json({"a": [1, 2.5, None, True, "é\x00"]}, "config", limits) > 0
    # a metadata filter compares: no NUL in it, in a value or a key
    for bad in ({"a": [1, "é\x00"]}, {"k\x00": 1}, {"a": "\\\x00"}):
        with pytest.raises(ValidationError, match="NUL"):
            validation.check_json(bad, "metadata", limits, allow_nul=False)
    assert validation.check_json({"a": "\\u0000"}, "metadata", limits, allow_nul=False) > 0


# -- 3. bounds before work -------------------------------------------------------------------


def test_the_tag_count_is_checked_before_de_duplication() -> None:
    limits = Limits()
    with pytest.raises(ValidationError) as err:
        check_tags([f"t{i}" for i in range(100_000)], limits=limits)
    assert "100000" in err.value.message
    with pytest.raises(ValidationError):
        check_tags(["same"] * (limits.max_tags + 1), limits=limits)
    assert check_tags(["b", "a", "b"], limits=limits) == ["b", "a"]


async def test_long_filter_lists_are_a_validation_error_not_a_store_error(
    engine: AsyncMemtrace,
) -> None:
    await engine.add_memory(agent_id="a1", content="probe", tags=["t1"])
    many = [f"t{i}" for i in range(1000)]
    with pytest.raises(ValidationError) as err:
        await engine.search_memories(query="probe", tags=many)
    assert err.value.field == "tags"
    with pytest.raises(ValidationError):
        await engine.delete_memories(tags=many[:500])
    with pytest.raises(ValidationError) as err:
        await engine.search_memories(event_types=[f"e{i}" for i in range(5000)])
    assert err.value.field == "event_types"
    limit = engine.config.limits.max_tags
    found = await engine.search_memories(tags=["t1", *[f"x{i}" for i in range(limit - 1)]])
    assert found.count == 0  # the longest allowed AND of tags runs (and matches nothing)
    found = await engine.search_memories(memory_types=["episodic"] * 60, tags=["t1"])
    assert found.count == 1
    assert await count(engine) == 1


# -- 4. no cross-tenant side channel ---------------------------------------------------------


async def test_another_org_cannot_change_or_observe_my_search(
    small_limit: AsyncMemtrace, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = small_limit
    await mine.add_memories(
        [{"agent_id": "a1", "content": f"canary rollout {i} healthy"} for i in range(6)]
        + [{"agent_id": "a1", "content": "rollout paused for the canary"}]
    )
    paths: list[bool] = []
    original = mine.store.keyword_candidates

    async def record(org_id: str, flt: Any, query: Any) -> Any:
        paths.append(query.recent_first)
        return await original(org_id, flt, query)

    monkeypatch.setattr(mine.store, "keyword_candidates", record)
    before = await mine.search_memories(query="canary rollout", limit=20)
    before_paths = list(paths)
    theirs = mine.with_org("org_attacker")
    await theirs.add_memories(
        [{"agent_id": "x", "content": f"canary canary {i}"} for i in range(50)]
    )
    paths.clear()
    after = await mine.search_memories(query="canary rollout", limit=20)
    assert paths == before_paths == [False, False]  # exact BM25 and its feedback round
    assert [(m.id, m.score) for m in after.results] == [(m.id, m.score) for m in before.results]
    assert {m.org_id for m in after.results} == {"org_default"}


# -- 5. surrogates and NUL everywhere ------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda mt: mt.search_memories(content_contains="\ud800"), "content_contains"),
        (lambda mt: mt.search_memories(query="deploy \udfff"), "query"),
        (lambda mt: mt.search_memories(tags=["\ud800"]), "tags"),
        (lambda mt: mt.search_memories(memory_types=["\ud800"]), "memory_types"),
        (lambda mt: mt.search_memories(event_types=["\ud800"]), "event_types"),
        (lambda mt: mt.get_agent_context("a1", include_types=["\ud800"]), "include_types"),
        (lambda mt: mt.register_agent(name="lead", description="x\ud800"), "description"),
        (lambda mt: mt.register_agent(name="lead", description="x\x00"), "description"),
        (lambda mt: mt.register_agent(name="lead", config={"k": "\ud800"}), "config"),
        (lambda mt: mt.register_agent(name="lead", config={"\ud800": 1}), "config"),
        (lambda mt: mt.create_session(agent_id="a1", metadata={"k": "\ud800"}), "metadata"),
        (
            lambda mt: mt.add_memory(agent_id="a1", content="x", metadata={"k": "\udc80"}),
            "metadata",
        ),
        (lambda mt: mt.add_memory(agent_id="a1", content="x", tags=["\ud800"]), "tags"),
        (lambda mt: mt.add_memory(agent_id="a1", content="x", memory_type="\ud800"), "memory_type"),
        (lambda mt: mt.add_memory(agent_id="a1", content="x", dedup_key="\ud800"), "dedup_key"),
    ],
)
async def test_lone_surrogates_and_nul_are_a_validation_error_that_can_be_sent(
    engine: AsyncMemtrace, call: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        await call(engine)
    assert err.value.field == field
    str(err.value).encode("utf-8")  # the message itself is valid UTF-8 (it is sent and logged)
    json.dumps(err.value.to_dict(), ensure_ascii=False).encode("utf-8")
    assert await count(engine) == 0
    assert (await engine.list_agents()).count == 0
    await every_read(engine)


async def test_a_huge_invalid_value_is_not_echoed_whole(engine: AsyncMemtrace) -> None:
    with pytest.raises(ValidationError) as err:
        await engine.add_memory(agent_id="a1", content="x", memory_type="z" * 100_000)
    assert len(err.value.message) < 300
    with pytest.raises(ValidationError) as err:
        await engine.list_memories(since="q" * 100_000)
    assert len(err.value.message) < 300


# -- 7. small ones -----------------------------------------------------------------------------


async def test_a_trimmed_agent_name_resolves(engine: AsyncMemtrace) -> None:
    agent = await engine.register_agent(name=" lead ")
    assert agent.name == "lead"
    for ref in (" lead", "lead ", "lead", agent.id):
        assert (await engine.get_agent(ref)).id == agent.id
    await engine.delete_agent(" lead")
    with pytest.raises(NotFoundError):
        await engine.get_agent("lead")


async def test_booleans_are_not_numbers(engine: AsyncMemtrace) -> None:
    for value in (True, False):
        with pytest.raises(ValidationError) as err:
            await engine.add_memory(agent_id="a1", content="x", importance=value)
        assert err.value.field == "importance"
        with pytest.raises(ValidationError) as err:
            await engine.search_memories(min_importance=value)
        assert err.value.field == "min_importance"
    assert (await engine.add_memory(agent_id="a1", content="x", importance=1)).importance == 1.0
    assert await count(engine) == 1


@pytest.mark.parametrize(
    "line",
    [
        {"kind": "agent", "id": "agent_x", "name": "x", "created_at": EDGE_TIMES[0]},
        {"kind": "agent", "id": "agent_x", "name": "x", "created_at": "2026-01-01T00:00:00Z",
         "last_active_at": EDGE_TIMES[1]},
        {"kind": "session", "id": "sess_x", "agent_id": "a1", "status": "active",
         "created_at": EDGE_TIMES[0], "updated_at": "2026-01-01T00:00:00Z"},
        {"kind": "session", "id": "sess_x", "agent_id": "a1", "status": "closed",
         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
         "closed_at": EDGE_TIMES[1]},
        {"kind": "memory", "id": "mem_01M8R8R3G0EQXMS6YTVKBW9F65", "agent_id": "a1",
         "content": "x", "time": "2026-01-01T00:00:00Z", "recorded_at": EDGE_TIMES[0]},
    ],
)  # fmt: skip
async def test_imported_times_outside_the_calendar_are_refused(
    engine: AsyncMemtrace, line: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as err:
        await engine.import_jsonl([json.dumps(line)], require_trailer=False)
    assert "must be between" in err.value.message
    assert (await engine.list_agents()).count == 0
    assert (await engine.list_sessions()).count == 0
    await every_read(engine)
