"""Cases an adversarial review of the MCP server found (docs/mcp.md states each rule): forget
never wipes by accident, a default is applied exactly where it is claimed, errors are
memtrace's own words, nulls mean "not given", and the store is the one ``memtrace serve``
uses."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from mcp_support import AGENT, Setup, Store, base_env, dump, stdio_session

from mcp import ClientSession
from memtrace_server.mcpserver.backend import Caller, EmbeddedBackend
from memtrace_server.mcpserver.cli import build_parser, configure


def _text(result: dict[str, Any]) -> str:
    return "\n".join(c["text"] for c in result["content"])


@pytest.mark.parametrize("setup", ["stdio-embedded", "http-server"], indirect=True)
def test_forget_never_wipes_by_accident(setup: Setup) -> None:
    tag = "t" + uuid.uuid4().hex[:12]

    async def scenario(s: ClientSession) -> None:
        await s.call_tool("memtrace_remember", {"content": f"{tag} mine", "tags": [tag]})
        await s.call_tool(
            "memtrace_remember", {"content": f"{tag} alice's", "agent_id": "alice", "tags": [tag]}
        )
        for flt in (
            {},
            {"since": "7d"},
            {"since": "100w", "until": "now"},
            {"since": "100w", "tags": [], "agent_id": "", "metadata": {}},
            {"namespace_prefix": [], "since": "100w"},
        ):
            result = dump(await s.call_tool("memtrace_forget", flt))
            assert result["isError"] is True, flt
            assert "a time range alone would delete every agent's memories" in _text(result)
            assert "all_memories=true" not in _text(result)
        # an argument the tool does not have is refused, never ignored (content_contains is
        # search's: ignoring it would delete all of the agent's memories)
        for extra in ({"all_memories": True}, {"agent_id": "alice", "content_contains": "x"}):
            result = dump(await s.call_tool("memtrace_forget", extra))
            assert result["isError"] is True, extra
            unknown = next(iter(k for k in extra if k != "agent_id"))
            assert f"unknown argument {unknown}: memtrace_forget takes memory_id, " in _text(result)
            assert "pydantic" not in _text(result)
        both = dump(await s.call_tool("memtrace_search", {"tags": [tag]}))
        assert both["structuredContent"]["count"] == 2
        # search spans agents: each line says whose memory it is
        assert f"(agent alice; tags: {tag})" in _text(both)
        # clients that fill every field: empty values are "not given", forget by id works
        one = dump(await s.call_tool("memtrace_search", {"tags": [tag], "agent_id": "alice"}))
        alice_id = one["structuredContent"]["results"][0]["id"]
        gone = dump(
            await s.call_tool(
                "memtrace_forget", {"memory_id": alice_id, "tags": [], "metadata": {}, "since": ""}
            )
        )
        assert gone["structuredContent"] == {"deleted": 1}
        mixed = dump(
            await s.call_tool("memtrace_forget", {"memory_id": "mem_" + "0" * 26, "tags": [tag]})
        )
        assert "not both" in _text(mixed)

    setup.run(scenario)


@pytest.mark.parametrize("setup", ["stdio-embedded", "http-embedded"], indirect=True)
def test_forgetting_an_earlier_version_keeps_the_current_one(setup: Setup) -> None:
    tag = "t" + uuid.uuid4().hex[:12]

    async def scenario(s: ClientSession) -> None:
        async def write(content: str, **extra: Any) -> str:
            result = dump(
                await s.call_tool("memtrace_remember", {"content": content, "tags": [tag], **extra})
            )
            return str(result["structuredContent"]["id"])

        v1 = await write(f"{tag} staging is host-1")
        v2 = await write(f"{tag} staging is host-2", supersedes=v1)
        v3 = await write(f"{tag} staging is host-3", supersedes=v2)
        old = dump(await s.call_tool("memtrace_forget", {"memory_id": v1}))
        assert old["structuredContent"] == {"deleted": 1}
        current = dump(await s.call_tool("memtrace_search", {"tags": [tag]}))
        assert [r["id"] for r in current["structuredContent"]["results"]] == [v3]
        everything = dump(await s.call_tool("memtrace_forget", {"memory_id": v3}))
        assert everything["structuredContent"] == {"deleted": 2}  # v3 and its earlier v2
        history = dump(
            await s.call_tool("memtrace_search", {"tags": [tag], "include_superseded": True})
        )
        assert history["structuredContent"]["count"] == 0

    setup.run(scenario)


def test_search_and_sessions_span_the_org_recall_is_the_agents(setup: Setup) -> None:
    """The configured agent is the default where the schema says so (recall), not where it
    says the tool spans every agent (search, sessions_list)."""
    tag = "t" + uuid.uuid4().hex[:12]

    async def scenario(s: ClientSession) -> None:
        await s.call_tool(
            "memtrace_remember", {"content": f"{tag} by default agent", "tags": [tag]}
        )
        await s.call_tool(
            "memtrace_remember", {"content": f"{tag} by carol", "agent_id": "carol", "tags": [tag]}
        )
        await s.call_tool("memtrace_session_create", {"agent_id": "carol", "metadata": {"t": tag}})
        found = dump(await s.call_tool("memtrace_search", {"tags": [tag]}))
        assert {r["agent_id"] for r in found["structuredContent"]["results"]} == {AGENT, "carol"}
        recalled = dump(await s.call_tool("memtrace_recall", {"tags": tag}))
        assert {m["agent_id"] for m in recalled["structuredContent"]["memories"]} == {AGENT}
        sessions = dump(await s.call_tool("memtrace_sessions_list", {"limit": 1000}))
        assert "carol" in {x["agent_id"] for x in sessions["structuredContent"]["sessions"]}
        stats = dump(await s.call_tool("memtrace_agent_stats", {}))
        assert stats["structuredContent"]["agent_id"] == AGENT

    setup.run(scenario)


def test_nulls_mean_not_given_and_errors_are_memtraces(stdio_embedded: Any) -> None:
    tag = "t" + uuid.uuid4().hex[:12]

    async def scenario(s: ClientSession) -> None:
        await s.call_tool(
            "memtrace_remember", {"content": f"{tag} old", "tags": [tag], "time": "3d"}
        )
        await s.call_tool("memtrace_remember", {"content": f"{tag} new", "tags": [tag]})
        # null since/limit: the documented defaults (24h, 50), as when they are left out
        recalled = dump(
            await s.call_tool(
                "memtrace_recall", {"since": None, "limit": None, "tags": tag, "event_type": None}
            )
        )
        assert [m["content"] for m in recalled["structuredContent"]["memories"]] == [f"{tag} new"]
        assert "since 24h" in _text(recalled)
        # "" is "not given" too (some clients fill every field)
        empty = dump(await s.call_tool("memtrace_recall", {"since": "", "tags": tag}))
        assert [m["content"] for m in empty["structuredContent"]["memories"]] == [f"{tag} new"]
        # a payload that looks like JSON is stored verbatim, as a string
        for text in ("[1, 2]", '{"a": 1}', "null", "true"):
            stored = dump(
                await s.call_tool(
                    "memtrace_remember", {"content": f"{tag} {text}", "payload": text}
                )
            )
            assert stored["structuredContent"]["payload"] == text, text
        # a wrong type is the engine's message, not a pydantic dump
        wrong = dump(await s.call_tool("memtrace_remember", {"content": 5}))
        assert wrong["isError"] is True
        assert "pydantic" not in _text(wrong)
        assert "content" in _text(wrong)
        # a string that looks like JSON stays a string
        jsonish = dump(await s.call_tool("memtrace_remember", {"content": '["not", "a list"]'}))
        assert jsonish["structuredContent"]["content"] == '["not", "a list"]'
        # a list sent as a JSON string (some clients do) is a list
        tags = dump(
            await s.call_tool(
                "memtrace_remember", {"content": f"{tag} x", "tags": f'["{tag}", "b"]'}
            )
        )
        assert tags["structuredContent"]["tags"] == [tag, "b"]

    stdio_embedded(scenario)


def test_a_missing_required_argument_is_named_in_memtraces_words(
    store: Store, tmp_path: Path
) -> None:
    async def main() -> None:
        async with stdio_session(["--url", store.url], base_env(tmp_path)) as s:
            result = dump(await s.call_tool("memtrace_remember", {}))
            text = _text(result)
            assert result["isError"] is True
            assert "missing required arguments agent_id (Agent ID" in text
            assert "content (Memory content text)" in text
            assert "pydantic" not in text
            tools = {t.name: dump(t) for t in (await s.list_tools()).tools}
            schema = tools["memtrace_remember"]["inputSchema"]
            assert schema["required"] == ["agent_id", "content"]
            for name, prop in schema["properties"].items():
                # the schema is exactly one: no "type" over an "anyOf" that contradicts it
                assert not ("type" in prop and "anyOf" in prop), (name, prop)
                assert prop.get("description"), name
            assert (
                tools["memtrace_recall"]["inputSchema"]["properties"]["since"]["default"] == "24h"
            )

    asyncio.run(main())


def test_the_store_is_the_one_memtrace_serve_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "MEMTRACE_URL",
        "MEMTRACE_CONFIG",
        "MEMTRACE_STORAGE_URL",
        "MEMTRACE_AUTH_DB_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMTRACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)

    def url_of(*argv: str) -> str:
        backend, _ = configure(build_parser().parse_args(list(argv)))
        assert isinstance(backend, EmbeddedBackend)
        return backend.url

    assert url_of() == f"sqlite:///{tmp_path / 'data' / 'memtrace.db'}"
    (tmp_path / "memtrace.toml").write_text('[storage]\nurl = "sqlite:///served.db"\n')
    assert url_of() == "sqlite:///served.db"  # ./memtrace.toml, as memtrace serve reads it
    assert url_of("--store", "sqlite:///other.db") == "sqlite:///other.db"
    monkeypatch.setenv("MEMTRACE_URL", "sqlite:///env.db")
    assert url_of() == "sqlite:///env.db"
    assert url_of("--url", "sqlite:///flag.db") == "sqlite:///flag.db"
    # `memtrace --store URL mcp` (the global option) is honoured too
    from memtrace_server.cli import build_parser as memtrace_parser

    args = memtrace_parser().parse_args(["--store", "sqlite:///global.db", "mcp"])
    backend, _ = configure(args)
    assert isinstance(backend, EmbeddedBackend)
    assert backend.url == "sqlite:///global.db"


def test_an_unknown_org_is_refused_at_start(store: Store, tmp_path: Path) -> None:
    backend = EmbeddedBackend(store.url, org_id="org_typo")
    with pytest.raises(Exception, match="no org 'org_typo'"):
        asyncio.run(backend.start(http=False))


def test_over_http_a_missing_caller_fails_closed(store: Store) -> None:
    async def main() -> None:
        backend = EmbeddedBackend(store.url, org_id="org_default")
        await backend.start(http=True)
        try:
            with pytest.raises(Exception, match="no authenticated caller"):
                backend.api_for(None)
            with pytest.raises(Exception, match="no authenticated caller"):
                backend.api_for(Caller())
        finally:
            await backend.close()

    asyncio.run(main())
