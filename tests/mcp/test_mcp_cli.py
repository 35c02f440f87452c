"""``memtrace mcp`` / ``memtrace-mcp`` on the command line: start-up errors are clear and exit
2, stdout carries nothing but the protocol, the default store is created under the data
directory, and a memtrace server that is down gives a quick tool error, not a hang."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp_support import INITIALIZE, base_env, dump, mcp_command, stdio_session

from memtrace_server.mcpserver.cli import data_dir, default_store_url, main


def _run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mcp_command(*args), env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--url", "http://127.0.0.1:9"],
            {},
            "MEMTRACE_API_KEY is required to use the memtrace server at http://127.0.0.1:9",
        ),
        ([], {"MEMTRACE_URL": "https://memtrace.example"}, "MEMTRACE_API_KEY is required"),
        (["--agent-id", "has spaces"], {}, "invalid agent id 'has spaces'"),
        (["--session-id", "x" * 200], {}, "invalid session id"),
        (["--timeout", "0"], {}, "--timeout must be a positive number"),
        (["--transport", "http", "--port", "70000"], {}, "--port must be between"),
        (["--transport", "http", "--org", "org_x"], {}, "--org is for stdio"),
        (
            ["--url", "http://h:1", "--org", "o"],
            {"MEMTRACE_API_KEY": "k"},
            "--org is for an embedded",
        ),
        (["--config", "/nonexistent/memtrace.toml"], {}, "/nonexistent/memtrace.toml"),
    ],
)
def test_startup_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name in [k for k in os.environ if k.startswith("MEMTRACE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MEMTRACE_DATA_DIR", str(tmp_path / "data"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert err.startswith("error: ")
    assert out == ""
    assert not (tmp_path / "data").exists()  # nothing created on a refused start


def test_a_startup_error_in_a_real_process(tmp_path: Path) -> None:
    done = _run(["--url", "http://127.0.0.1:9"], base_env(tmp_path))
    assert done.returncode == 2, done
    assert done.stderr == (
        "error: MEMTRACE_API_KEY is required to use the memtrace server at http://127.0.0.1:9 "
        "(create one there with `memtrace key create --name mcp`)\n"
    )
    assert done.stdout == ""


def test_console_script_and_subcommand(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("memtrace-mcp")
    assert script.exists()
    for command in ([str(script), "--help"], [*mcp_command("--help")]):
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=60, env=base_env(tmp_path)
        )
        assert done.returncode == 0, done
        assert "--transport" in done.stdout
        assert "--agent-id" in done.stdout


def test_stdout_is_only_the_protocol_and_the_default_store_is_created(tmp_path: Path) -> None:
    """Raw JSON-RPC over the pipe: every stdout line is a JSON-RPC message; the embedded store
    appears under MEMTRACE_DATA_DIR on first use."""
    env = base_env(tmp_path)
    messages = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "memtrace_remember",
                "arguments": {"agent_id": "raw", "content": "first use"},
            },
        },
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in messages)
    process = subprocess.Popen(
        mcp_command(),
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(stdin)
    process.stdin.flush()
    replies = [json.loads(process.stdout.readline()) for _ in range(2)]
    process.stdin.close()
    process.wait(30)
    rest = process.stdout.read()
    assert all(r["jsonrpc"] == "2.0" for r in replies)
    assert replies[0]["result"]["serverInfo"]["name"] == "memtrace"
    assert replies[1]["id"] == 2
    assert replies[1]["result"].get("isError") is not True
    assert rest.strip() == ""
    db = tmp_path / "data" / "memtrace.db"
    assert db.exists()
    assert default_store_url().endswith("memtrace.db")


def test_data_dir_follows_the_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEMTRACE_DATA_DIR", str(tmp_path / "explicit"))
    assert data_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MEMTRACE_DATA_DIR")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "memtrace"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert data_dir() == Path.home() / ".local" / "share" / "memtrace"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert data_dir() == Path.home() / "Library" / "Application Support" / "memtrace"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert data_dir() == tmp_path / "local" / "memtrace"


def test_a_server_that_is_down_is_a_quick_tool_error(tmp_path: Path) -> None:
    env = {
        **base_env(tmp_path),
        "MEMTRACE_URL": f"http://127.0.0.1:{_closed_port()}",
        "MEMTRACE_API_KEY": "mtk_" + "A" * 44,
        "MEMTRACE_AGENT_ID": "a1",
    }

    async def main() -> None:
        async with stdio_session([], env) as s:
            started = time.monotonic()
            result = dump(await s.call_tool("memtrace_recall", {}))
            assert time.monotonic() - started < 10
            assert result["isError"] is True
            assert "memtrace is unavailable" in result["content"][0]["text"]
            # and the server is still up
            assert len((await s.list_tools()).tools) == 11

    asyncio.run(main())


def test_a_wrong_process_key_is_a_clear_tool_error(tmp_path: Path, rest: object) -> None:
    env = {
        **base_env(tmp_path),
        "MEMTRACE_URL": rest.url,  # type: ignore[attr-defined]
        "MEMTRACE_API_KEY": "mtk_" + "B" * 44,
        "MEMTRACE_AGENT_ID": "a1",
    }

    async def main() -> None:
        async with stdio_session([], env) as s:
            result = dump(await s.call_tool("memtrace_remember", {"content": "x"}))
            assert result["isError"] is True
            assert "API key was not accepted" in result["content"][0]["text"]

    asyncio.run(main())
