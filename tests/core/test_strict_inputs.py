"""Inputs that never fail silently (issue 8): a misspelt field is an error naming it and the
accepted ones, at the library and over HTTP (tests/server/test_strict_inputs.py)."""

from __future__ import annotations

from typing import Any

import pytest

from memtrace_core import AsyncMemtrace, ValidationError


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda mt: mt.add_memory({"agent_id": "a", "content": "x", "sesion_id": "s1"}), "sesion_id"),
        (lambda mt: mt.add_memories([{"agent_id": "a", "content": "x"}, {"agent_id": "a", "content": "y", "tag": ["t"]}]), "tag"),
        (lambda mt: mt.search_memories({"qurey": "canary"}), "qurey"),
        (lambda mt: mt.delete_memories({"agent": "a"}), "agent"),
        (lambda mt: mt.register_agent({"name": "n", "descripton": "d"}), "descripton"),
        (lambda mt: mt.create_session({"agent_id": "a", "meta": {}}), "meta"),
        (lambda mt: mt.get_session_context("s1", {"max_token": 5}), "max_token"),
        (lambda mt: mt.get_agent_context("a", {"formatt": "xml"}), "formatt"),
    ],
)  # fmt: skip
async def test_an_unknown_field_is_refused_naming_it_and_the_accepted_ones(
    engine: AsyncMemtrace, call: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        await call(engine)
    assert err.value.field == field
    assert f"unknown field '{field}'" in err.value.message
    assert "(accepted: " in err.value.message
    assert (await engine.list_memories()).count == 0
    assert (await engine.list_agents()).count == 0


async def test_the_batch_index_is_named_for_an_unknown_field(engine: AsyncMemtrace) -> None:
    with pytest.raises(ValidationError) as err:
        await engine.add_memories(
            [{"agent_id": "a", "content": "x"}, {"agent_id": "a", "content": "y", "tag": ["t"]}]
        )
    assert err.value.index == 1
    assert err.value.message.startswith("memories[1]: unknown field 'tag'")
    assert "tags" in err.value.message


async def test_the_obvious_positional_argument_is_accepted(engine: AsyncMemtrace) -> None:
    agent = await engine.register_agent("bot1")
    assert agent.name == "bot1"
    session = await engine.create_session("bot1")
    assert session.agent_id == agent.id
    with pytest.raises(ValidationError) as err:
        await engine.register_agent(42)  # type: ignore[arg-type]
    assert err.value.field == "name"


@pytest.mark.parametrize("blank", [" ", "\t\n", "\u3000 "])
async def test_whitespace_only_content_is_refused_like_empty_content(
    engine: AsyncMemtrace, blank: str
) -> None:
    with pytest.raises(ValidationError) as err:
        await engine.add_memory(agent_id="a", content=blank)
    assert (err.value.field, err.value.message) == ("content", "content is required")


async def test_an_id_error_says_it_must_start_with_a_letter(engine: AsyncMemtrace) -> None:
    with pytest.raises(ValidationError) as err:
        await engine.add_memory(agent_id="1bot", content="x")
    assert "starting with a letter" in err.value.message
    assert err.value.message.startswith("invalid agent_id: invalid ID format:")  # original's


async def test_time_takes_what_since_takes_with_the_same_help(engine: AsyncMemtrace) -> None:
    from memtrace_core.timeutil import now_us, to_us

    two_hours = 2 * 3600 * 10**6
    before = now_us()
    memory = await engine.add_memory(agent_id="a", content="backfilled", time="2h")
    after = now_us()
    assert before - two_hours <= to_us(memory.time) <= after - two_hours
    with pytest.raises(ValidationError) as err:
        await engine.add_memory(agent_id="a", content="x", time="yesterday")
    assert err.value.field == "time"
    assert "use a duration such as 30m, 24h, 7d, 2w or an ISO 8601 timestamp" in err.value.message
    naive = await engine.add_memory(agent_id="a", content="naive", time="2026-02-07T20:15:00")
    assert naive.time.isoformat() == "2026-02-07T20:15:00+00:00"


async def test_an_event_time_far_in_the_future_is_refused_on_new_writes(
    engine: AsyncMemtrace,
) -> None:
    from datetime import UTC, datetime, timedelta

    soon = datetime.now(UTC) + timedelta(seconds=60)  # within the allowed clock skew
    assert (await engine.add_memory(agent_id="a", content="soon", time=soon)).time == soon
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(ValidationError) as err:
        await engine.add_memory(agent_id="a", content="later", time=later)
    assert err.value.field == "time"
    assert "max_future_skew_seconds" in err.value.message
    with pytest.raises(ValidationError) as batch:
        await engine.add_memories(
            [{"agent_id": "a", "content": "ok"}, {"agent_id": "a", "content": "x", "time": later}]
        )
    assert batch.value.index == 1


async def test_a_duplicate_names_the_existing_memory(engine: AsyncMemtrace) -> None:
    from memtrace_core import DuplicateMemoryError

    first = await engine.remember("bot", "Deployed v1")
    with pytest.raises(DuplicateMemoryError) as err:
        await engine.remember("bot", "Deployed v1")
    assert first.id in str(err.value)
    assert err.value.existing_id == first.id
    # the wire keeps the original's error string; the id travels in its own field
    assert err.value.to_dict() == {
        "error": "duplicate memory",
        "existing_id": first.id,
        "dedup_key": first.dedup_key,
    }


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"kind": "memory", "id": "mem_01M8R8R3G0EQXMS6YTVKBW9F65", "agent_id": "a",
          "content": "x", "time": "2026-01-01T00:00:00Z", "sesion_id": "s1"}, "sesion_id"),
        ({"kind": "agent", "id": "agent_1", "name": "n", "created_at": "2026-01-01T00:00:00Z",
          "descripton": "d"}, "descripton"),
        ({"kind": "session", "id": "sess_1", "agent_id": "a", "status": "active",
          "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
          "metdata": {}}, "metdata"),
    ],
)  # fmt: skip
async def test_an_unknown_field_in_an_import_line_is_refused(
    engine: AsyncMemtrace, line: dict[str, Any], field: str
) -> None:
    import json

    with pytest.raises(ValidationError) as err:
        await engine.import_jsonl([json.dumps(line)], require_trailer=False)
    assert err.value.field == field
    assert f"line 1: unknown field '{field}'" in err.value.message
    assert (await engine.list_memories()).count == 0


@pytest.mark.parametrize("recorded", ["2h", "now", 5, "yesterday"])
async def test_an_imported_recorded_at_must_be_a_timestamp(
    engine: AsyncMemtrace, recorded: Any
) -> None:
    """Exports write RFC 3339 only: a duration, 'now' or a number would be read relative to the
    import, or as microseconds since 1970; each is refused rather than stored."""
    import json

    line = {
        "kind": "memory",
        "id": "mem_01M8R8R3G0EQXMS6YTVKBW9F65",
        "agent_id": "a",
        "content": "x",
        "time": "2026-01-01T00:00:00Z",
        "recorded_at": recorded,
    }
    with pytest.raises(ValidationError) as err:
        await engine.import_jsonl([json.dumps(line)], require_trailer=False)
    assert err.value.field == "recorded_at"
    assert (await engine.list_memories(since="0001-01-01T00:00:00Z")).count == 0
