"""docs/mcp.md: the tool reference is the generated one, and every copy-paste configuration
(the JSON entries and the ``claude mcp add`` lines) starts a server the SDK client can use —
with the placeholders (server URL, key, port) replaced by the test's."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import httpx
from mcp.client.stdio import stdio_client
from mcp_support import HttpMcp, Store, base_env, dump, http_session

from mcp import ClientSession, StdioServerParameters
from memtrace_server.mcpserver.tools import with_reference
from memtrace_server.testing import LiveServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"
BIN = Path(sys.executable).parent


README = DOC.parent.parent / "README.md"


def _blocks(kind: str, doc: Path = DOC) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", doc.read_text(), re.S)


def test_the_reference_is_generated() -> None:
    text = DOC.read_text()
    assert text == with_reference(text), (
        "docs/mcp.md's tool reference is stale: regenerate it (see the comment above it)"
    )


def _substitute(value: str, store: Store, rest: LiveServer, http: HttpMcp) -> str:
    return (
        value.replace("${MEMTRACE_API_KEY}", store.keys.admin)
        .replace("mtk_…", store.keys.admin)
        .replace("http://memtrace.internal:9100", rest.url)
        .replace("http://127.0.0.1:9101/mcp", http.url)
    )


async def _use(session: ClientSession) -> None:
    assert len((await session.list_tools()).tools) == 11
    written = dump(await session.call_tool("memtrace_remember", {"content": "from the docs"}))
    assert not written.get("isError"), written


async def _stdio(command: str, args: list[str], env: dict[str, str], tmp: Path) -> None:
    if command.startswith("/absolute/path/to/") or command == "memtrace-mcp":
        command = str(BIN / "memtrace-mcp")
    params = StdioServerParameters(command=command, args=args, env={**base_env(tmp), **env})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await _use(session)


def test_every_json_configuration_works(
    store: Store, rest: LiveServer, http_server: HttpMcp, tmp_path: Path
) -> None:
    entries: list[dict[str, Any]] = []
    for block in _blocks("json"):
        config = json.loads(block)
        entries.extend(config["mcpServers"].values())
    assert len(entries) == 5

    async def main() -> None:
        for entry in entries:
            if "command" in entry:
                env = {
                    k: _substitute(v, store, rest, http_server)
                    for k, v in entry.get("env", {}).items()
                }
                await _stdio(entry["command"], entry["args"], env, tmp_path)
            else:
                url = _substitute(entry["url"], store, rest, http_server)
                headers = {
                    k: _substitute(v, store, rest, http_server) for k, v in entry["headers"].items()
                }
                async with http_session(url, headers) as session:
                    await _use(session)

    asyncio.run(main())


def test_every_claude_mcp_add_line_works(
    store: Store, rest: LiveServer, http_server: HttpMcp, tmp_path: Path
) -> None:
    lines = [
        line
        for doc in (DOC, README)
        for block in _blocks("bash", doc)
        for line in block.splitlines()
        if line.startswith("claude mcp add")
    ]
    assert len(lines) == 4  # three in docs/mcp.md, one in the README

    async def main() -> None:
        for line in lines:
            words = shlex.split(_substitute(line, store, rest, http_server), comments=True)
            if "--" in words:
                cut = words.index("--")
                options, command = words[:cut], words[cut + 1 :]
                env = dict(
                    options[i + 1].split("=", 1)
                    for i, word in enumerate(options)
                    if word in ("--env", "-e")
                )
                await _stdio(command[0], command[1:], env, tmp_path)
            else:
                assert words[:5] == ["claude", "mcp", "add", "--transport", "http"]
                url = words[6]
                header = words[words.index("--header") + 1]
                name, _, value = header.partition(": ")
                async with http_session(url, {name: value}) as session:
                    await _use(session)
                # and the header form is what the server needs: without it, 401
                async with httpx.AsyncClient(timeout=10) as client:
                    assert (await client.post(url, json={})).status_code == 401

    asyncio.run(main())


def test_the_documented_commands_parse() -> None:
    """The ``memtrace mcp …`` / ``memtrace-mcp …`` lines are valid command lines (the HTTP
    servers the fixtures start run the same options on a free port)."""
    from memtrace_server.mcpserver.cli import build_parser

    seen = 0
    for block in _blocks("bash"):
        for line in block.splitlines():
            command = line.split("#")[0].strip()
            for prefix in ("memtrace mcp ", "memtrace-mcp "):
                if command.startswith(prefix) and "--help" not in command:
                    args = build_parser().parse_args(shlex.split(command[len(prefix) :]))
                    assert args.transport == "http"
                    assert args.port == 9101
                    seen += 1
    assert seen == 2
