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
