"""A NUL character may be stored in a memory's metadata (a LangGraph store value is the
metadata, and holds whatever the application put), in values and in keys, on every store: it
reads back exactly, and filters on the other keys of those memories still work. (PostgreSQL's
JSON operators refuse the escape ``\\u0000``; its store keeps it another way.) A filter with a
NUL in it is refused: no store can compare one."""

from __future__ import annotations

from typing import Any

import pytest

from memtrace_core import ValidationError

VALUES: list[dict[str, Any]] = [
    {"content": "nul\x00inside", "n": 1},
    {"k\x00ey": "v", "n": 2},
    {"a": "\\u0000 is six characters", "n": 3},
    {"a": "\\\x00", "n": 4},
    {"a": "\U0010ffff", "nested": [{"x": "\x00"}], "n": 5},
]


async def test_metadata_with_nul_reads_back_and_filters_still_work(mt: Any) -> None:
    for value in VALUES:
        await mt.add_memory(agent_id="nul", content=f"memory {value['n']}", metadata=value)
    for value in VALUES:
        page = await mt.search_memories(agent_id="nul", metadata={"n": value["n"]})
        assert [m.metadata for m in page.results] == [value]
    page = await mt.search_memories(agent_id="nul", metadata={"a": "\U0010ffff"})
    assert [m.metadata["n"] for m in page.results] == [5]
    page = await mt.search_memories(agent_id="nul", metadata={"n": {"$gte": 2}}, order="asc")
    assert [m.metadata["n"] for m in page.results] == [2, 3, 4, 5]
    exported = await mt.search_memories(agent_id="nul", limit=10, order="asc")
    assert [m.metadata for m in exported.results] == VALUES


@pytest.mark.parametrize("flt", [{"content": "nul\x00inside"}, {"k\x00ey": "v"}])
async def test_a_filter_with_nul_is_refused(mt: Any, flt: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        await mt.search_memories(agent_id="nul", metadata=flt)
