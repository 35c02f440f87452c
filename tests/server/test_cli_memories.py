"""``memtrace memories list|search|get|tail`` over both kinds of URL — a store URL
(``sqlite:///…``, read directly) and a real memtrace server over a socket (``http://…``, with
an API key) — and the progress display of ``memtrace export`` / ``import``."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import queue
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import Memtrace, PluginRegistry, StreamEvent, connect
from memtrace_server import cli_memories
from memtrace_server import progress as progress_module
from memtrace_server.cli import build_parser, main
from memtrace_server.cli_memories import clean, display_width, fit, safe_json
from memtrace_server.progress import Progress
from memtrace_server.testing import LiveServer

CLI = [sys.executable, "-m", "memtrace_server.cli"]
#: How long a test waits for a line of a running tail before it fails (a hang guard, not a
#: timing assertion).
WAIT = 60.0
#: A memory written by an attacker: ANSI colour / clear-screen / title sequences, a carriage
#: return that would overwrite the line, BEL, backspace, DEL, an 8-bit CSI, a bidi override,
#: a line separator, a zero-width space.
HOSTILE = (
    "ok \x1b[31mred\x1b[0m \x1b[2J\x1b]0;pwned\x07 line1\r\nFAKE PROMPT $ \x08\x7f"
    "\x9b31m c1 \u202egnp.exe \u2028 after-sep \u200b end"
)


def _dangerous(text: str) -> list[str]:
    """The characters in ``text`` that could act on a terminal (newlines aside)."""
    return [
        ch
        for ch in text
        if ch != "\n"
        and (unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") and ch != "\u200d")
    ]


# ------------------------------------------------------------------------------------------------
# Fixtures


def _open(url: str) -> Memtrace:
    handle = connect(url, plugins=PluginRegistry(load_entry_points=False))
    assert isinstance(handle, Memtrace)
    return handle


@pytest.fixture
def writer(db_url: str, admin_key: str) -> Iterator[Memtrace]:
    """The store (org_default, the admin key's org) opened directly, to write and compare."""
    with _open(db_url) as mt:
        yield mt


@pytest.fixture
def seeded(writer: Memtrace) -> dict[str, str]:
    """Six memories of three agents; returns their ids by name."""
    now = datetime.now(UTC)
    session = writer.create_session(agent_id="watcher")
    rows = {
        "old": {
            "agent_id": "planner", "content": "planning the next release",
            "memory_type": "session", "time": now - timedelta(days=3),
        },
        "deploy": {
            "agent_id": "deployer", "content": "Deployed api v1.4.2 to production",
            "event_type": "action", "tags": ["deploy", "prod"],
            "time": now - timedelta(minutes=50),
        },
        "rollback": {
            "agent_id": "deployer", "content": "Decided to roll back the staging deploy",
            "memory_type": "decision", "event_type": "decision", "tags": ["deploy"],
            "time": now - timedelta(minutes=40),
        },
        "disk": {
            "agent_id": "watcher", "content": "disk full on host-7", "memory_type": "entity",
            "event_type": "error", "tags": ["disk", "prod"], "session_id": session.id,
            "time": now - timedelta(minutes=30), "importance": 0.9,
        },
        "reboot": {
            "agent_id": "watcher", "content": "rebooted host-7 after the disk alert",
            "event_type": "action", "namespace": ["ops", "hosts"],
            "time": now - timedelta(minutes=20),
        },
        "wide": {
            "agent_id": "watcher", "content": "日本語のテキスト、とても長い行です。" * 8,
            "time": now - timedelta(minutes=10),
        },
    }  # fmt: skip
    ids = {name: writer.add_memory(**fields).id for name, fields in rows.items()}
    ids["session"] = session.id
    return ids


@pytest.fixture(params=["store", "http"])
def target(request: pytest.FixtureRequest, db_url: str, admin_key: str, workdir: Path) -> list[str]:
    """The target options of a ``memories`` command: the SQLite file itself, or a real server
    (in a thread of this process, over a socket) on the same file with its admin key."""
    if request.param == "store":
        return ["--url", db_url]
    live: LiveServer = request.getfixturevalue("live")
    return ["--url", live.url, "--api-key", admin_key]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cli_lines(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


# ------------------------------------------------------------------------------------------------
# list


def test_list_filters_mirror_the_api_on_both_kinds(
    capsys: pytest.CaptureFixture[str],
    target: list[str],
    seeded: dict[str, str],
    writer: Memtrace,
) -> None:
    ids = seeded
    cases: list[tuple[list[str], dict[str, Any], list[str]]] = [
        ([], {}, ["wide", "reboot", "disk", "rollback", "deploy", "old"]),
        (["--agent", "deployer"], {"agent_id": "deployer"}, ["rollback", "deploy"]),
        (["--type", "entity,decision"], {"memory_types": ["entity", "decision"]},
         ["disk", "rollback"]),
        (["--type", "entity", "--type", "session"], {"memory_types": ["entity", "session"]},
         ["disk", "old"]),
        (["--event-type", "action"], {"event_types": ["action"]}, ["reboot", "deploy"]),
        (["--tags", "deploy,prod"], {"tags": ["deploy", "prod"]}, ["deploy"]),
        (["--tags-any", "disk", "--tags-any", "deploy"], {"tags_any": ["disk", "deploy"]},
         ["disk", "rollback", "deploy"]),
        (["--since", "1h", "--until", "25m"], {"since": "1h", "until": "25m"},
         ["disk", "rollback", "deploy"]),
        (["--session", ids["session"]], {"session_id": ids["session"]}, ["disk"]),
        (["--contains", "HOST-7"], {"content_contains": "HOST-7"}, ["reboot", "disk"]),
        (["--min-importance", "0.5"], {"min_importance": 0.5}, ["disk"]),
        (["--namespace", "ops", "--namespace", "hosts"], {"namespace": ["ops", "hosts"]},
         ["reboot"]),
        (["--namespace-prefix", "ops"], {"namespace_prefix": ["ops"]}, ["reboot"]),
        (["--order", "asc", "--limit", "2"], {"order": "asc", "limit": 2}, ["old", "deploy"]),
        (["--limit", "2", "--offset", "1"], {"limit": 2, "offset": 1}, ["reboot", "disk"]),
    ]  # fmt: skip
    for args, api_filters, expected in cases:
        got = cli_lines(capsys, "memories", "list", *target, *args)
        assert [m["id"] for m in got] == [ids[name] for name in expected], args
        # the same as the API's own answer, field for field (the API's JSON)
        direct = writer.search_memories(api_filters)
        assert got == [m.model_dump(mode="json", exclude_none=True) for m in direct.results]


def test_list_human_output_and_paging_hint(
    capsys: pytest.CaptureFixture[str], target: list[str], seeded: dict[str, str]
) -> None:
    code, out, err = cli(capsys, "memories", "list", *target, "--agent", "deployer")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[2:5] == ["deployer", "decision/decision", seeded["rollback"]]
    assert lines[0].endswith("Decided to roll back the staging deploy")
    assert lines[1].split()[2:5] == ["deployer", "episodic/action", seeded["deploy"]]
    datetime.strptime(" ".join(lines[0].split()[:2]), "%Y-%m-%d %H:%M:%S")  # UTC time first
    assert err == ""

    code, out, err = cli(capsys, "memories", "list", *target, "--limit", "4")
    assert code == 0
    assert len(out.splitlines()) == 4
    assert err == "(more: --offset 4)\n"
    code, out, err = cli(capsys, "memories", "list", *target, "--limit", "4", "--offset", "4")
    assert len(out.splitlines()) == 2
    assert err == ""

    code, out, _ = cli(capsys, "memories", "list", *target, "--agent", "nobody")
    assert (code, out) == (0, "No memories match.\n")
    assert cli_lines(capsys, "memories", "list", *target, "--agent", "nobody") == []


def test_lines_are_cut_to_the_terminal_width_only_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    target: list[str],
    seeded: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = cli(capsys, "memories", "list", *target)
    assert code == 0
    assert "日本語のテキスト、とても長い行です。" * 8 in out  # piped: not cut

    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = cli(capsys, "memories", "list", *target)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 6
    for line in lines:
        assert display_width(line) <= 120, line
    wide = next(line for line in lines if seeded["wide"] in line)
    assert wide.endswith("…")
    assert display_width(wide) >= 118  # cut at the edge, counting wide characters as two
    short = next(line for line in lines if seeded["disk"] in line)
    assert short.endswith("disk full on host-7")


# ------------------------------------------------------------------------------------------------
# search


def test_search_ranks_with_scores_on_both_kinds(
    capsys: pytest.CaptureFixture[str],
    target: list[str],
    seeded: dict[str, str],
    writer: Memtrace,
) -> None:
    got = cli_lines(capsys, "memories", "search", *target, "disk", "host-7")
    direct = writer.search_memories(query="disk host-7")
    assert [m["id"] for m in got] == [m.id for m in direct.results]
    assert {m["id"] for m in got} == {seeded["disk"], seeded["reboot"]}
    assert all(isinstance(m["score"], float) for m in got)
    assert got[0]["score"] >= got[1]["score"]

    got = cli_lines(capsys, "memories", "search", *target, "deploy", "--type", "decision")
    assert [m["id"] for m in got] == [seeded["rollback"]]
    got = cli_lines(capsys, "memories", "search", *target, "host-7", "--limit", "1")
    assert len(got) == 1

    code, out, _ = cli(capsys, "memories", "search", *target, "disk")
    assert code == 0
    first = out.splitlines()[0].split()
    assert first[4] == seeded["disk"]
    assert float(first[5]) > 0  # the score follows the id

    code, _, err = cli(capsys, "memories", "search", *target, "  ")
    assert code == 1
    assert err == "error: give the words to search for\n"


# ------------------------------------------------------------------------------------------------
# get


def test_get_prints_one_memory_in_full_on_both_kinds(
    capsys: pytest.CaptureFixture[str],
    target: list[str],
    seeded: dict[str, str],
    writer: Memtrace,
) -> None:
    memory_id = seeded["disk"]
    code, out, err = cli(capsys, "memories", "get", memory_id, *target, "--json")
    assert code == 0, err
    assert json.loads(out) == writer.get_memory(memory_id).model_dump(
        mode="json", exclude_none=True
    )

    code, out, err = cli(capsys, "memories", "get", memory_id, *target)
    assert code == 0, err
    fields = dict(
        line.split(":", 1) for line in out.splitlines() if line and not line.startswith(" ")
    )
    assert fields["id"].strip() == memory_id
    assert fields["agent"].strip() == "watcher"
    assert fields["session"].strip() == seeded["session"]
    assert fields["memory_type"].strip() == "entity"
    assert fields["event_type"].strip() == "error"
    assert fields["tags"].strip() == "disk, prod"
    assert fields["importance"].strip() == "0.9"
    assert out.endswith("content:\n  disk full on host-7\n")


def test_get_errors_on_both_kinds(
    capsys: pytest.CaptureFixture[str], target: list[str], seeded: dict[str, str]
) -> None:
    code, out, err = cli(capsys, "memories", "get", "mem_01JABCDEFGHJKMNPQRSTVWXYZ0", *target)
    assert (code, out) == (1, "")
    assert err == "error: memory not found\n"
    code, _, err = cli(capsys, "memories", "get", "not-an-id", *target)
    assert code == 1
    assert err.startswith("error: invalid memory id")
    code, _, err = cli(capsys, "memories", "get", seeded["disk"], *target, "--as-of", "soon")
    assert code == 1
    assert err.startswith("error: invalid as_of")


# ------------------------------------------------------------------------------------------------
# Untrusted content


def test_control_characters_never_reach_the_terminal(
    capsys: pytest.CaptureFixture[str], target: list[str], writer: Memtrace
) -> None:
    hostile = writer.add_memory(
        agent_id="mallory",
        content=HOSTILE,
        event_type="action",
        metadata={"title": "\x1b]0;owned\x07", "bidi": "\u202e"},
        payload={"x": "\x1b[H\x1b[2J"},
        key="k\x1b[1m",
        namespace=["ns\x1b[7m"],
    )
    outputs = {}
    for name, args in {
        "list": ["memories", "list"],
        "search": ["memories", "search", "red", "pwned"],
        "get": ["memories", "get", hostile.id],
    }.items():
        code, out, err = cli(capsys, *args, *target)
        assert code == 0, err
        assert hostile.id in out
        assert _dangerous(out) == [], (name, out)
        outputs[name] = out
    line = outputs["list"].splitlines()[0]
    assert "ok \\x1b[31mred\\x1b[0m \\x1b[2J\\x1b]0;pwned\\x07 line1\\x0d↵FAKE PROMPT" in line
    assert "\\x08\\x7f\\x9b31m c1 \\u202egnp.exe \\u2028 after-sep \\u200b end" in line
    assert "\n" not in line
    detail = outputs["get"]
    assert "line1\\x0d\n  FAKE PROMPT $ \\x08\\x7f" in detail  # newlines kept, indented
    assert '"title": "\\u001b]0;owned\\u0007"' in detail
    assert '"bidi": "\\u202e"' in detail
    assert "key:            k\\x1b[1m" in detail

    # JSON: the same value (a script reads back exactly what was stored), no raw controls
    for args in (["memories", "list"], ["memories", "get", hostile.id]):
        code, out, err = cli(capsys, *args, *target, "--json")
        assert code == 0, err
        assert _dangerous(out) == []
        first = json.loads(out) if args[1] == "get" else json.loads(out.splitlines()[0])
        assert first["content"] == HOSTILE
        assert first["metadata"] == {"title": "\x1b]0;owned\x07", "bidi": "\u202e"}
        assert first["payload"] == {"x": "\x1b[H\x1b[2J"}


def test_clean_fit_and_safe_json() -> None:
    assert clean("plain text, ünïcode ✓ 👩‍💻") == "plain text, ünïcode ✓ 👩‍💻"
    assert clean("a\x1b[0mb\rc\x00d\x9be") == "a\\x1b[0mb\\x0dc\\x00d\\x9be"
    assert clean("one\ntwo\tthree") == "one↵two three"
    assert clean("one\ntwo\tthree\r", multiline=True) == "one\ntwo\tthree\\x0d"
    assert clean("\u202e\u2066\u2028\u2029\ufeff") == "\\u202e\\u2066\\u2028\\u2029\\ufeff"
    assert clean("lone \udc80 surrogate") == "lone \\udc80 surrogate"
    assert clean("tag \U000e0041") == "tag \\U000e0041"
    assert clean("nbsp\u00a0ok") == "nbsp\u00a0ok"
    assert display_width("日本") == 4
    assert display_width("e\u0301") == 1
    assert fit("abcdef", 10) == "abcdef"
    assert fit("abcdefghijkl", 6) == "abcde…"
    assert fit("日本語のテキスト", 7) == "日本語…"
    value = {"s": "\x1b[2J\u202e\x85\U000e0041 ok ✓", "n": [1, None]}
    text = safe_json(value)
    assert _dangerous(text) == []
    assert "✓" in text  # readable non-ASCII stays as it is
    assert json.loads(text) == value
    assert json.loads(safe_json(value, indent=2)) == value


# ------------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_gives_a_clear_error_and_exit_status(
    capsys: pytest.CaptureFixture[str],
    workdir: Path,
    tmp_path: Path,
    live: LiveServer,
    admin_key: str,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = ["--url", live.url, "--api-key", admin_key]
    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    cases: list[tuple[list[str], int, str]] = [
        (["memories"], 2, "usage: memtrace memories"),
        (["memories", "list", "--url", missing], 1, "error: no database at"),
        (["memories", "list", "--url", "memtrace.db"], 1, "error: not a store or server URL"),
        (["memories", "list", *server, "--org", "org_x"], 1,
         "error: --org applies to a store URL"),
        (["memories", "list", "--url", db_url, "--api-key", admin_key], 1,
         "error: --api-key applies to a server URL"),
        (["memories", "list", "--url", live.url], 1,
         "error: missing API key: give the server's API key with --api-key or MEMTRACE_API_KEY"),
        (["memories", "list", "--url", live.url, "--api-key", "mtk_wrong"], 1, "error: "),
        (["memories", "list", "--url", "http://127.0.0.1:9", "--api-key", "k"], 1,
         "error: POST http://127.0.0.1:9/api/v1/search"),
        (["memories", "list", *server, "--since", "yesterday"], 1, "error: invalid since"),
        (["memories", "list", "--url", db_url, "--since", "yesterday"], 1,
         "error: invalid since"),
        (["memories", "list", *server, "--type", "bogus"], 2, "invalid memory type 'bogus'"),
        (["memories", "list", *server, "--limit", "0"], 2, "must be at least 1"),
        (["memories", "list", *server, "--offset", "-1"], 2, "must be at least 0"),
        (["memories", "list", *server, "--min-importance", "2"], 2, "between 0 and 1"),
        (["memories", "list", *server, "--tags", ","], 2, "give at least one value"),
        (["memories", "list", *server, "--order", "up"], 2, "invalid choice"),
        (["memories", "search", *server], 2, "the following arguments are required"),
        (["memories", "get", *server], 2, "the following arguments are required"),
        (["memories", "tail", *server, "-n", "2", "--after", "s1"], 1,
         "error: -n/--lines and --after do not go together"),
        (["memories", "tail", *server, "--after", "nonsense"], 1, "error: invalid after"),
        (["memories", "tail", "--url", db_url, "--after", "nonsense"], 1, "error: invalid after"),
        (["memories", "tail", *server, "--lines", "x"], 2, "not a whole number"),
    ]  # fmt: skip
    for args, status, message in cases:
        try:
            code = main(args)
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        assert code == status, (args, err)
        assert message in err, (args, err)
        assert "Traceback" not in err
        if status == 1:
            assert err.startswith("error: "), (args, err)
            assert out == ""

    # the key from the environment, as the MCP server takes it
    monkeypatch.setenv("MEMTRACE_API_KEY", admin_key)
    assert cli(capsys, "memories", "list", "--url", live.url)[0] == 0
    # the target from the environment
    monkeypatch.setenv("MEMTRACE_URL", live.url)
    assert cli(capsys, "memories", "list")[0] == 0


def test_the_configured_store_is_the_default_target(
    capsys: pytest.CaptureFixture[str], workdir: Path, seeded: dict[str, str], db_url: str
) -> None:
    (workdir / "memtrace.toml").write_text(f'[storage]\nurl = "{db_url}"\n', encoding="utf-8")
    got = cli_lines(capsys, "memories", "list", "--agent", "deployer")
    assert [m["id"] for m in got] == [seeded["rollback"], seeded["deploy"]]
    got = cli_lines(capsys, "memories", "list", "--org", "org_other")
    assert got == []  # another org of the same store
    (workdir / "memtrace.toml").unlink()
    got = cli_lines(capsys, "--store", db_url, "memories", "list", "--agent", "deployer")
    assert len(got) == 2  # the global option, as for `memtrace --store URL mcp`


def test_a_closed_pipe_ends_the_listing_quietly(
    workdir: Path, db_url: str, writer: Memtrace
) -> None:
    for start in range(0, 300, 100):
        writer.add_memories(
            [
                {"agent_id": "bulk", "content": f"memory {i} " + "x" * 400}
                for i in range(start, start + 100)
            ]
        )
    proc = subprocess.Popen(
        [*CLI, "memories", "list", "--url", db_url, "--limit", "300"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=WAIT) == 0
    assert err == ""


# ------------------------------------------------------------------------------------------------
# tail


class Tail:
    """``memtrace memories tail`` in a subprocess; its stdout lines arrive on a queue."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "memories", "tail", *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next(self) -> str:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                return self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError(
                        f"tail exited with {self.proc.returncode}: {self._stderr()}"
                    ) from None
        raise AssertionError("no line from tail")

    def take(self, n: int) -> list[str]:
        return [self.next() for _ in range(n)]

    def idle(self) -> bool:
        return self.lines.empty()

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: the exit status and stderr."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=WAIT)
        self._reader.join(timeout=5)
        return code, self._stderr()

    def _stderr(self) -> str:
        assert self.proc.stderr is not None
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    started: list[Tail] = []
    yield started
    for tail in started:
        tail.kill()


def test_tail_follows_new_memories_and_resumes_on_both_kinds(
    target: list[str], seeded: dict[str, str], writer: Memtrace, workdir: Path, tails: list[Tail]
) -> None:
    tail = Tail([*target, "-n", "2", "--agent", "watcher", "--json"], workdir)
    tails.append(tail)
    # the last two of the agent's memories first, oldest first (no position: they precede the
    # stream's)
    backlog = [json.loads(line) for line in tail.take(2)]
    assert [m["id"] for m in backlog] == [seeded["reboot"], seeded["wide"]]
    assert "position" not in backlog[0]
    # then what is committed from now on, filtered, in commit order
    writer.add_memory(agent_id="deployer", content="not for this tail")
    first = writer.add_memory(agent_id="watcher", content="cpu at 95% on host-2", tags=["cpu"])
    second = writer.add_memory(agent_id="watcher", content="cpu back to normal")
    live = [json.loads(line) for line in tail.take(2)]
    assert [m["id"] for m in live] == [first.id, second.id]
    assert live[0]["content"] == "cpu at 95% on host-2"
    assert live[0]["tags"] == ["cpu"]
    assert all(m["position"] for m in live)
    assert tail.idle()

    code, err = tail.interrupt()
    assert code == 130  # Ctrl-C: as every interrupted memtrace command
    assert "Traceback" not in err
    match = re.search(r"^position: (\S+) \(resume with --after (\S+)\)$", err, re.M)
    assert match is not None, err
    position = match.group(1)
    assert match.group(2) == position

    # written while no tail runs: a tail resuming from the position gets exactly these
    missed = [writer.add_memory(agent_id="watcher", content=f"missed {i}").id for i in range(3)]
    resumed = Tail([*target, "--after", position, "--agent", "watcher", "--json"], workdir)
    tails.append(resumed)
    assert [json.loads(line)["id"] for line in resumed.take(3)] == missed
    later = writer.add_memory(agent_id="watcher", content="after the resume")
    assert json.loads(resumed.next())["id"] == later.id
    assert resumed.interrupt()[0] == 130


def test_tail_without_backlog_starts_from_now_and_escapes_on_both_kinds(
    target: list[str], seeded: dict[str, str], writer: Memtrace, workdir: Path, tails: list[Tail]
) -> None:
    tail = Tail([*target, "--type", "episodic", "--event-type", "action"], workdir)
    tails.append(tail)
    # nothing already stored is printed: write probes until the tail has started
    probes: list[str] = []
    while tail.idle():
        probe = writer.add_memory(
            agent_id="probe", content=f"probe {len(probes)}", event_type="action"
        )
        probes.append(probe.id)
        time.sleep(0.2)
    first = tail.next()
    assert first.split()[4] in probes
    for _ in range(len(probes) - 1 - probes.index(first.split()[4])):
        tail.next()
    writer.add_memory(agent_id="mallory", content="a decision", memory_type="decision")
    # (U+2028 has its own test below)
    content = HOSTILE.replace("\u2028", "")
    hostile = writer.add_memory(agent_id="mallory", content=content, event_type="action")
    line = tail.next()
    assert line.split()[2:5] == ["mallory", "episodic/action", hostile.id]
    assert _dangerous(line) == []
    assert "\\x1b[2J\\x1b]0;pwned\\x07 line1\\x0d↵FAKE PROMPT" in line
    code, err = tail.interrupt()
    assert code == 130
    assert "resume with --after" in err


def test_tail_carries_line_separators_on_both_kinds(
    target: list[str],
    writer: Memtrace,
    workdir: Path,
    tails: list[Tail],
) -> None:
    """U+2028, U+2029 and NEL (U+0085) are line breaks for str.splitlines() but not for
    Server-Sent Events (whose lines end at \\n, \\r or \\r\\n): a memory holding them comes
    through the stream whole."""
    first = writer.add_memory(agent_id="sep", content="the backlog")
    tail = Tail([*target, "-n", "1", "--agent", "sep", "--json"], workdir)
    tails.append(tail)
    assert json.loads(tail.next())["id"] == first.id  # the tail has its position
    content = "one\u2028two\u2029three\x85four"
    written = writer.add_memory(agent_id="sep", content=content)
    line = tail.next()
    assert _dangerous(line) == []
    got = json.loads(line)
    assert got["id"] == written.id
    assert got["content"] == content
    assert tail.interrupt()[0] == 130


class _Racing:
    """The target's API, with a memory written just before tail's backlog is read (after the
    stream took its position) and one just after; its watch ends after the latter."""

    def __init__(self, api: Any, writer: Memtrace) -> None:
        self._api = api
        self._writer = writer
        self.written: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def search_memories(self, query: Any = None, /, **fields: Any) -> Any:
        self.written["between"] = (
            await asyncio.to_thread(self._writer.add_memory, agent_id="w", content="between")
        ).id
        result = await self._api.search_memories(query, **fields)
        self.written["after"] = (
            await asyncio.to_thread(self._writer.add_memory, agent_id="w", content="after")
        ).id
        return result

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        return _Ending(self._api.watch(*args, **kwargs), self)


class _Ending:
    def __init__(self, stream: Any, racing: _Racing) -> None:
        self._stream = stream
        self._racing = racing

    @property
    def position(self) -> str | None:
        position: str | None = self._stream.position
        return position

    async def start(self) -> _Ending:
        await self._stream.start()
        return self

    async def aclose(self) -> None:
        await self._stream.aclose()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        events = aiter(self._stream)
        while True:
            # a gap would leave "after" out: fail rather than wait for ever
            event = await asyncio.wait_for(anext(events), WAIT)
            yield event
            if event.memory.id == self._racing.written.get("after"):
                return


def test_tail_backlog_and_stream_have_no_gap_and_no_duplicate(
    capsys: pytest.CaptureFixture[str],
    target: list[str],
    seeded: dict[str, str],
    writer: Memtrace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    racing: list[_Racing] = []
    real_open = cli_memories.Target.open

    async def open_racing(self: cli_memories.Target) -> Any:
        racing.append(_Racing(await real_open(self), writer))
        return racing[0]

    monkeypatch.setattr(cli_memories.Target, "open", open_racing)
    rows = cli_lines(capsys, "memories", "tail", *target, "-n", "2")
    written = racing[0].written
    # "between" is both in the backlog (stored before it was read) and in the stream
    # (committed after its position): printed once; "after" only reaches the stream
    assert [m["id"] for m in rows] == [seeded["wide"], written["between"], written["after"]]
    assert "position" not in rows[1]
    assert rows[2]["position"]


# ------------------------------------------------------------------------------------------------
# Progress of export / import


def _seed_export(url: str, n: int = 40) -> None:
    with _open(url) as mt:
        mt.register_agent(name="bot")
        mt.create_session(agent_id="bot")
        mt.add_memories([{"agent_id": "bot", "content": f"memory {i}"} for i in range(n)])


def _on_pty(
    args: list[str], cwd: Path, *, stdout_too: bool = False, stdin: Path | None = None
) -> tuple[int, str, str]:
    """Run the CLI with stderr (and stdout, if ``stdout_too``) on a pseudo-terminal; returns
    the status, what the terminal showed (raw) and stdout (when piped)."""
    master, slave = pty.openpty()
    with open(stdin or os.devnull, "rb") as fin:
        proc = subprocess.Popen(
            [*CLI, *args],
            cwd=cwd,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
            stdin=fin,
            stdout=slave if stdout_too else subprocess.PIPE,
            stderr=slave,
        )
    os.close(slave)
    shown = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout is not None else ""
    return proc.wait(timeout=WAIT), shown.decode(), out


def test_export_and_import_show_progress_on_a_terminal(workdir: Path, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'src.db'}"
    target = f"sqlite:///{tmp_path / 'dst.db'}"
    _seed_export(source)
    dump = tmp_path / "dump.jsonl"

    code, shown, _ = _on_pty(["export", source, "-o", str(dump)], workdir)
    assert code == 0, shown
    assert "\rexporting org_default [" in shown
    assert "100%  40/40 memories" in shown
    # the bar is erased, then the final counts as before
    assert shown.replace("\r\n", "\n").endswith(
        f"\rexported 42 records of org_default to {dump} (and the trailer)\n"
    )
    assert len(dump.read_text().splitlines()) == 43

    code, shown, _ = _on_pty(["import", target, str(dump)], workdir)
    assert code == 0, shown
    assert f"\rchecking {dump} [" in shown
    assert "importing 43 lines" in shown
    assert "imported 40 memories (0 already present), 1 agents, 1 sessions" in shown

    # an export to stdout on the terminal itself: no bar in the middle of the data
    code, shown, _ = _on_pty(["export", source], workdir, stdout_too=True)
    assert code == 0
    assert "exporting org_default [" not in shown
    assert '"kind":"trailer"' in shown

    # stdin redirected from a file: the bar knows its size
    code, shown, _ = _on_pty(["import", f"sqlite:///{tmp_path / 'dst2.db'}"], workdir, stdin=dump)
    assert code == 0, shown
    assert "\rchecking stdin [" in shown
    assert "100%" in shown


def test_export_and_import_are_quiet_when_piped(workdir: Path, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'src.db'}"
    _seed_export(source)
    dump = tmp_path / "dump.jsonl"
    env = {**os.environ, "TERM": "xterm"}
    done = subprocess.run(
        [*CLI, "export", source, "-o", str(dump)], cwd=workdir, env=env,
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stderr == f"exported 42 records of org_default to {dump} (and the trailer)\n"
    done = subprocess.run(
        [*CLI, "import", f"sqlite:///{tmp_path / 'dst.db'}", str(dump)], cwd=workdir, env=env,
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stderr == (
        "imported 40 memories (0 already present), 1 agents, 1 sessions into org_default\n"
    )


def test_import_of_bad_utf8_names_the_line(
    capsys: pytest.CaptureFixture[str], workdir: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'\n\xff\xfe{"kind":"trailer"}\n')
    code = main(["import", f"sqlite:///{tmp_path / 'x.db'}", str(bad)])
    _, err = capsys.readouterr()
    assert code == 1
    assert err == "error: line 2: not valid UTF-8\n"  # (was a traceback)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(progress_module, "INTERVAL", 0.0)
    screen = _Terminal()
    with Progress("exporting org_a", total=200, unit="memories", stream=screen) as bar:
        assert bar.enabled
        bar.update(advance=50)
        assert "[######------------------]  25%  50/200 memories" in bar.text()
        bar.update(150, total=None)
        assert bar.text().startswith("exporting org_a ")
        assert "150 memories" in bar.text()
        bar.update(2 * 1024 * 1024, total=4 * 1024 * 1024, unit="bytes", label="checking f")
        assert " 50%  2.0 MiB/4.0 MiB  " in bar.text()
        bar.update(0, total=None, unit="", label="importing 9 lines")
        assert bar.text().startswith("importing 9 lines ")
        assert "lines  " not in bar.text()
    drawn = screen.getvalue()
    assert drawn.startswith("\r")
    assert drawn.endswith("\r")  # erased
    assert "25%" in drawn

    piped = io.StringIO()
    with Progress("exporting", total=10, stream=piped) as bar:
        assert not bar.enabled
        bar.update(advance=5, force=True)
    assert piped.getvalue() == ""

    monkeypatch.setenv("TERM", "dumb")
    dumb = _Terminal()
    with Progress("exporting", total=10, stream=dumb) as bar:
        bar.update(advance=5, force=True)
    assert dumb.getvalue() == ""


def test_the_documented_commands_parse() -> None:
    """Every ``memtrace memories …`` line of docs/operations.md is a valid command line."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    commands = [
        line.split("#", 1)[0].split("|", 1)[0].strip()
        for line in docs.read_text(encoding="utf-8").splitlines()
        if line.startswith("memtrace memories ")
    ]
    assert len(commands) >= 6
    actions = set()
    for command in commands:
        args = build_parser().parse_args(shlex.split(command)[1:])
        actions.add(args.action)
    assert actions == {"list", "search", "get", "tail"}
