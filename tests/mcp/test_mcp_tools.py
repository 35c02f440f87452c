"""Every tool over every setup (stdio / streamable HTTP × embedded store / memtrace server),
with the SDK's own client: valid calls do what they say and answer compact text beside
structured content that matches the advertised output schema; invalid calls are tool results
with ``isError`` and a clear message, and the server keeps answering."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jsonschema
import pytest
from mcp_support import AGENT, Setup, dump

from mcp import ClientSession

TOOL_NAMES = {
    "memtrace_remember",
    "memtrace_recall",
    "memtrace_search",
    "memtrace_decide",
    "memtrace_session_create",
    "memtrace_session_context",
    "memtrace_agent_register",
    "memtrace_forget",
    "memtrace_session_close",
    "memtrace_sessions_list",
    "memtrace_agent_stats",
}
MEM_ID = re.compile(r"mem_[0-9A-HJKMNP-TV-Z]{26}")


async def call(session: ClientSession, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Call a tool; the SDK client has already checked structuredContent against the tool's
    output schema when the call succeeded."""
    return dump(await session.call_tool(name, args))


def ok(result: dict[str, Any]) -> str:
    assert not result.get("isError"), result
    assert "structuredContent" in result, result
    return "\n".join(c["text"] for c in result["content"])


def refused(result: dict[str, Any], *needles: str) -> str:
    assert result.get("isError") is True, result
    text = "\n".join(c["text"] for c in result["content"])
    for needle in needles:
        assert needle in text, text
    return text


def test_every_tool_works_and_reports_errors(setup: Setup) -> None:
    tag = "t" + uuid.uuid4().hex[:12]

    async def scenario(s: ClientSession) -> None:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == TOOL_NAMES
        for tool in tools.values():
            data = tool.model_dump(by_alias=True, exclude_none=True)
            jsonschema.Draft202012Validator.check_schema(data["inputSchema"])
            jsonschema.Draft202012Validator.check_schema(data["outputSchema"])

        # agents and sessions
        name = f"researcher-{tag}"
        agent = await call(s, "memtrace_agent_register", {"name": name, "description": "reads"})
        text = ok(agent)
        agent_id = agent["structuredContent"]["id"]
        assert agent_id.startswith("agent_")
        assert agent_id != name
        assert agent_id in text
        dup = await call(s, "memtrace_agent_register", {"name": name})
        refused(dup, name)

        created = await call(s, "memtrace_session_create", {"metadata": {"task": tag}})
        session_id = created["structuredContent"]["id"]
        assert session_id in ok(created)
        assert created["structuredContent"]["agent_id"] == AGENT

        # writes
        first = await call(
            s,
            "memtrace_remember",
            {
                "content": f"The deploy of {tag} failed on a missing env var",
                "event_type": "error",
                "session_id": session_id,
                "tags": [tag, "deploy"],
                "importance": 0.9,
                "metadata": {"service": "api"},
            },
        )
        mem_id = first["structuredContent"]["id"]
        assert mem_id in ok(first)
        assert first["structuredContent"]["session_id"] == session_id
        again = await call(
            s,
            "memtrace_remember",
            {
                "content": f"The deploy of {tag} failed on a missing env var",
                "event_type": "error",
                "session_id": session_id,
                "tags": [tag, "deploy"],
            },
        )
        assert "Already stored as " + mem_id in ok(again)
        assert again["structuredContent"]["id"] == mem_id

        decided = await call(
            s,
            "memtrace_decide",
            {
                "decision": f"Roll back {tag}",
                "reasoning": "the env var cannot be added today",
                "session_id": session_id,
                "tags": [tag],
            },
        )
        ok(decided)
        assert decided["structuredContent"]["memory_type"] == "decision"
        assert decided["structuredContent"]["metadata"] == {
            "reasoning": "the env var cannot be added today"
        }
        by_researcher = await call(
            s, "memtrace_remember", {"content": f"{tag} notes", "agent_id": name, "tags": [tag]}
        )
        ok(by_researcher)

        # reads
        recalled = await call(s, "memtrace_recall", {"session_id": session_id})
        text = ok(recalled)
        assert mem_id in text
        assert f"Roll back {tag}" in text
        assert "newest first" in text
        assert recalled["structuredContent"]["count"] == 2
        assert text.index(f"Roll back {tag}") < text.index(mem_id)  # newest first
        assert "{" not in text.splitlines()[1]  # lines, not JSON

        found = await call(s, "memtrace_search", {"query": f"deploy {tag} env var"})
        text = ok(found)
        assert found["structuredContent"]["results"][0]["id"] == mem_id
        assert "best first" in text
        contains = await call(
            s, "memtrace_search", {"content_contains": "MISSING ENV", "tags": [tag]}
        )
        assert [r["id"] for r in contains["structuredContent"]["results"]] == [mem_id]
        typed = await call(
            s, "memtrace_search", {"memory_types": ["decision"], "tags": [tag], "limit": 5}
        )
        assert [r["content"] for r in typed["structuredContent"]["results"]] == [f"Roll back {tag}"]

        context = await call(s, "memtrace_session_context", {"session_id": session_id})
        markdown = ok(context)
        assert markdown == context["structuredContent"]["context"]
        assert f"Roll back {tag}" in markdown
        assert "missing env var" in markdown
        assert markdown.lstrip().startswith("#")

        listed = await call(s, "memtrace_sessions_list", {"agent_id": AGENT, "status": "active"})
        assert session_id in ok(listed)

        stats = await call(s, "memtrace_agent_stats", {"agent_id": name})
        assert "1 memory" in ok(stats)
        assert stats["structuredContent"]["memory_count"] == 1

        # forget and close
        gone = await call(s, "memtrace_forget", {"memory_id": mem_id})
        assert ok(gone) == "Deleted 1 memory."
        assert gone["structuredContent"] == {"deleted": 1}
        refused(await call(s, "memtrace_forget", {"memory_id": mem_id}), mem_id)
        filtered = await call(s, "memtrace_forget", {"agent_id": name, "tags": [tag]})
        assert filtered["structuredContent"] == {"deleted": 1}
        closed = await call(s, "memtrace_session_close", {"session_id": session_id})
        assert closed["structuredContent"]["status"] == "closed"
        assert session_id in ok(closed)
        after = await call(s, "memtrace_recall", {"session_id": session_id})
        assert mem_id not in ok(after)
        assert after["structuredContent"]["count"] == 1

        # invalid calls: a tool result with isError, then the server still answers
        bad: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
            ("memtrace_remember", {}, ("content",)),
            ("memtrace_remember", {"content": "x", "importance": 3}, ("importance",)),
            ("memtrace_remember", {"content": "x", "memory_type": "dream"}, ("memory_type",)),
            ("memtrace_remember", {"content": "x", "tags": "not a list"}, ("tags",)),
            ("memtrace_remember", {"content": "   "}, ("content",)),
            ("memtrace_remember", {"content": "x", "metadata": [1, 2]}, ("metadata",)),
            ("memtrace_recall", {"since": "yesterday-ish"}, ("since",)),
            ("memtrace_recall", {"limit": -1}, ("limit",)),
            ("memtrace_search", {"order": "sideways"}, ("order",)),
            ("memtrace_search", {"min_importance": "high"}, ("min_importance",)),
            ("memtrace_decide", {"decision": "x"}, ("reasoning",)),
            ("memtrace_session_create", {"agent_id": "bad id with spaces"}, ("agent_id",)),
            ("memtrace_session_context", {"session_id": "sess_nope", "max_tokens": 0}, ()),
            ("memtrace_agent_register", {}, ("name",)),
            ("memtrace_forget", {}, ("memory_id",)),
            ("memtrace_forget", {"memory_id": "mem_nope"}, ("mem_nope",)),
            ("memtrace_session_close", {"session_id": "sess_" + tag}, ("sess_" + tag,)),
            ("memtrace_sessions_list", {"status": "sleeping"}, ("status",)),
            ("memtrace_agent_stats", {"as_of": "tomorrow"}, ("as_of",)),
            ("memtrace_nope", {}, ("memtrace_nope",)),
        ]
        for name_, args, needles in bad:
            refused(await call(s, name_, args), *needles)
        assert len((await s.list_tools()).tools) == len(TOOL_NAMES)

    setup.run(scenario)


def test_structured_content_matches_the_output_schema(setup: Setup) -> None:
    """The client validates structuredContent itself; check it again explicitly against the
    advertised schema for a result with every optional field of a memory set."""

    async def scenario(s: ClientSession) -> None:
        tools = {t.name: t.model_dump(by_alias=True) for t in (await s.list_tools()).tools}
        result = await call(
            s,
            "memtrace_remember",
            {
                "content": "schema " + uuid.uuid4().hex,
                "ttl": "7d",
                "namespace": ["users", "u1"],
                "key": "pref-" + uuid.uuid4().hex,
                "payload": {"nested": [1, {"a": None}]},
                "time": "1h",
            },
        )
        ok(result)
        jsonschema.validate(result["structuredContent"], tools["memtrace_remember"]["outputSchema"])
        assert result["structuredContent"]["namespace"] == ["users", "u1"]
        assert result["structuredContent"]["payload"] == {"nested": [1, {"a": None}]}

    setup.run(scenario)


@pytest.mark.parametrize("setup", ["stdio-embedded", "http-server"], indirect=True)
def test_time_aware_tools(setup: Setup) -> None:
    """Supersedes, as_of and since reach the engine through the tools."""
    tag = "t" + uuid.uuid4().hex[:12]

    async def scenario(s: ClientSession) -> None:
        old = await call(
            s, "memtrace_remember", {"content": f"{tag} lives in Paris", "tags": [tag]}
        )
        old_id = old["structuredContent"]["id"]
        before = old["structuredContent"]["recorded_at"]
        new = await call(
            s,
            "memtrace_remember",
            {"content": f"{tag} moved to Lyon", "tags": [tag], "supersedes": old_id},
        )
        assert new["structuredContent"]["supersedes"] == old_id
        now = await call(s, "memtrace_search", {"tags": [tag]})
        assert [r["content"] for r in now["structuredContent"]["results"]] == [
            f"{tag} moved to Lyon"
        ]
        then = await call(s, "memtrace_search", {"tags": [tag], "as_of": before})
        assert [r["content"] for r in then["structuredContent"]["results"]] == [
            f"{tag} lives in Paris"
        ]
        history = await call(s, "memtrace_search", {"tags": [tag], "include_superseded": True})
        assert history["structuredContent"]["count"] == 2
        assert f"superseded by {new['structuredContent']['id']}): {tag} lives in Paris" in ok(
            history
        )
        again = await call(s, "memtrace_remember", {"content": f"{tag} x", "supersedes": old_id})
        refused(again, new["structuredContent"]["id"])  # the chain's current version
        recent = await call(s, "memtrace_recall", {"since": "1m", "tags": tag})
        assert f"{tag} moved to Lyon" in ok(recent)

    setup.run(scenario)


def test_text_results_are_compact_lines(setup: Setup) -> None:
    tag = "t" + uuid.uuid4().hex[:12]

    async def scenario(s: ClientSession) -> None:
        for i in range(3):
            await call(
                s, "memtrace_remember", {"content": f"{tag} line {i}\nsecond", "tags": [tag]}
            )
        result = await call(s, "memtrace_search", {"tags": [tag]})
        lines = ok(result).splitlines()
        assert lines[0] == "3 memories, newest first:"
        for line in lines[1::2]:
            assert MEM_ID.search(line)
            assert line.startswith("- [mem_")
            assert tag in line
        for line in lines[2::2]:
            assert line == "  second"  # a multi-line memory stays one indented item

    setup.run(scenario)
