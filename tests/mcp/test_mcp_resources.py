"""Resources, resource templates and the prompt, in every setup; and what one MCP session
writes, another MCP session and the REST API see."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_support import AGENT, Setup, Store, base_env, dump, stdio_session

from mcp import ClientSession
from memtrace_server.testing import config_for, serve_in_thread


def _text(result: Any) -> str:
    contents = dump(result)["contents"]
    assert len(contents) == 1
    assert contents[0]["mimeType"] == "text/markdown"
    return str(contents[0]["text"])


def test_resources_and_prompt(setup: Setup) -> None:
    tag = "t" + uuid.uuid4().hex[:12]

    async def scenario(s: ClientSession) -> None:
        listed = dump(await s.list_resources())["resources"]
        assert [r["uri"] for r in listed] == [
            "memtrace://memories/recent",
            "memtrace://session/current/context",
        ]
        templates = dump(await s.list_resource_templates())["resourceTemplates"]
        assert [t["uriTemplate"] for t in templates] == [
            "memtrace://sessions/{session_id}/context",
            "memtrace://agents/{agent_id}/memories/recent",
        ]
        session = dump(await s.call_tool("memtrace_session_create", {}))["structuredContent"]
        await s.call_tool(
            "memtrace_remember",
            {"content": f"{tag} opened the ticket", "session_id": session["id"]},
        )
        await s.call_tool(
            "memtrace_decide",
            {"decision": f"{tag} escalate", "reasoning": "sla", "session_id": session["id"]},
        )
        await s.call_tool("memtrace_remember", {"content": f"{tag} by bob", "agent_id": "bob"})

        recent = _text(await s.read_resource("memtrace://memories/recent"))
        assert f"{tag} opened the ticket" in recent
        assert f"{tag} by bob" not in recent  # the configured agent's
        assert recent.startswith(f"# Recent memories (agent {AGENT}")
        bob = _text(await s.read_resource("memtrace://agents/bob/memories/recent"))
        assert f"{tag} by bob" in bob
        assert "opened the ticket" not in bob

        context = _text(await s.read_resource(f"memtrace://sessions/{session['id']}/context"))
        assert f"{tag} escalate" in context
        assert f"{tag} opened the ticket" in context
        # no session configured: the current work is the configured agent's, across sessions
        current = _text(await s.read_resource("memtrace://session/current/context"))
        assert current.startswith(f"## Agent Context ({AGENT})")
        assert f"{tag} escalate" in current
        await s.call_tool("memtrace_session_create", {})  # a new, empty session hides nothing
        assert f"{tag} escalate" in _text(
            await s.read_resource("memtrace://session/current/context")
        )

        prompts = dump(await s.list_prompts())["prompts"]
        assert [p["name"] for p in prompts] == ["memtrace_session_context"]
        assert prompts[0]["arguments"][0]["name"] == "session_id"
        assert prompts[0]["arguments"][0].get("required") is not True
        prompt = dump(await s.get_prompt("memtrace_session_context", {"session_id": session["id"]}))
        (message,) = prompt["messages"]
        assert message["role"] == "user"
        assert context in message["content"]["text"]
        default = dump(await s.get_prompt("memtrace_session_context", {}))
        assert f"{tag} escalate" in default["messages"][0]["content"]["text"]

        await s.call_tool("memtrace_session_close", {"session_id": session["id"]})
        with pytest.raises(Exception, match=r"(?i)session"):  # a JSON-RPC error, with the reason
            await s.read_resource("memtrace://sessions/bad id/context")

    setup.run(scenario)


def test_the_configured_session_is_current(store: Store, tmp_path: Path) -> None:
    """--session-id is the current session of the resource and the prompt, and the default
    of the tools; session_id then stops being required."""
    tag = "t" + uuid.uuid4().hex[:12]
    session_id = f"sess-{tag}"
    env = base_env(tmp_path)

    async def main() -> None:
        args = ["--url", store.url, "--agent-id", AGENT, "--session-id", session_id]
        async with stdio_session(args, env) as s:
            tools = {t.name: dump(t) for t in (await s.list_tools()).tools}
            for name in ("memtrace_session_context", "memtrace_session_close"):
                assert "session_id" not in tools[name]["inputSchema"].get("required", [])
                desc = tools[name]["inputSchema"]["properties"]["session_id"]["description"]
                assert session_id in desc
            written = dump(await s.call_tool("memtrace_remember", {"content": f"{tag} noted"}))
            assert written["structuredContent"]["session_id"] == session_id
            current = _text(await s.read_resource("memtrace://session/current/context"))
            assert f"{tag} noted" in current
            context = dump(await s.call_tool("memtrace_session_context", {}))
            assert f"{tag} noted" in context["content"][0]["text"]

    asyncio.run(main())


def test_without_defaults_ids_are_required(store: Store, tmp_path: Path) -> None:
    env = base_env(tmp_path)

    async def main() -> None:
        async with stdio_session(["--url", store.url], env) as s:
            tools = {t.name: dump(t) for t in (await s.list_tools()).tools}
            needs_agent = {
                "memtrace_remember",
                "memtrace_recall",
                "memtrace_decide",
                "memtrace_session_create",
                "memtrace_agent_stats",
            }
            for name, tool in tools.items():
                required = set(tool["inputSchema"].get("required", []))
                assert ("agent_id" in required) == (name in needs_agent), name
                if name in ("memtrace_session_context", "memtrace_session_close"):
                    assert "session_id" in required
            assert set(tools["memtrace_remember"]["inputSchema"]["required"]) == {
                "agent_id",
                "content",
            }
            assert set(tools["memtrace_decide"]["inputSchema"]["required"]) == {
                "agent_id",
                "decision",
                "reasoning",
            }
            # the original's false claims are gone
            register = tools["memtrace_agent_register"]
            assert "Required before" not in register["description"]
            assert "used as the agent ID" not in str(register["inputSchema"])
            current = _text(await s.read_resource("memtrace://session/current/context"))
            assert current.startswith("No current session")
            missing = dump(await s.call_tool("memtrace_recall", {}))
            assert missing["isError"] is True

    asyncio.run(main())


def test_what_mcp_writes_the_rest_api_and_other_sessions_see(store: Store, tmp_path: Path) -> None:
    """Two stdio MCP processes on one embedded store, and a memtrace server on the same file:
    each sees what the others wrote."""
    tag = "t" + uuid.uuid4().hex[:12]
    env = base_env(tmp_path)
    args = ["--url", store.url, "--agent-id", AGENT]

    async def main(rest_url: str) -> None:
        async with stdio_session(args, env) as a, stdio_session(args, env) as b:
            written = dump(await a.call_tool("memtrace_remember", {"content": f"{tag} from A"}))
            mem_id = written["structuredContent"]["id"]
            found = dump(await b.call_tool("memtrace_search", {"query": f"{tag} from A"}))
            assert found["structuredContent"]["results"][0]["id"] == mem_id
            async with httpx.AsyncClient(
                base_url=rest_url, headers={"x-api-key": store.keys.admin}
            ) as rest:
                got = await rest.get(f"/api/v1/memories/{mem_id}")
                assert got.status_code == 200
                assert got.json()["content"] == f"{tag} from A"
                posted = await rest.post(
                    "/api/v1/memories", json={"agent_id": AGENT, "content": f"{tag} from REST"}
                )
                assert posted.status_code == 201
            recalled = dump(await a.call_tool("memtrace_recall", {"since": "1h"}))
            assert f"{tag} from REST" in recalled["content"][0]["text"]

    with serve_in_thread(config_for(store.url)) as live:
        asyncio.run(main(live.url))
