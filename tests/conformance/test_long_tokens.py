"""Words longer than a full-text engine likes (a base64 blob, a minified token, a run of CJK
characters, which the tokenizer keeps as one word) are stored, found by keyword and by
substring, on every store. (PostgreSQL refuses lexemes of 2,047 bytes or more: its store
indexes such a word as a digest of itself.)"""

from __future__ import annotations

from typing import Any


async def test_a_very_long_word_is_written_and_found(mt: Any) -> None:
    blob = "Q" * 3000
    cjk = "中" * 700  # 2,100 bytes of UTF-8, one token
    for content in (f"payload {blob} end", f"note {cjk}", "plain neighbour"):
        await mt.add_memory(agent_id="long", content=content)
    found = await mt.search_memories(query=cjk, agent_id="long")
    assert [m.content for m in found.results] == [f"note {cjk}"]
    found = await mt.search_memories(query="payload", agent_id="long")
    assert [m.content for m in found.results] == [f"payload {blob} end"]
    page = await mt.search_memories(agent_id="long", content_contains="q" * 1999)
    assert [m.content for m in page.results] == [f"payload {blob} end"]


async def test_a_query_word_longer_than_any_stored_one_finds_nothing(mt: Any) -> None:
    await mt.add_memory(agent_id="long", content="short words only")
    found = await mt.search_memories(query="中" * 690 + " short", agent_id="long")
    assert [m.content for m in found.results] == ["short words only"]
