"""The ``memtrace`` command: org and key administration, export/import between stores, config
errors, and ``memtrace serve`` as a real process (first-run key, /health, SIGTERM, workers,
revocation seen by a running multi-worker server)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from memtrace_core import AuthenticationError, PluginRegistry, connect
from memtrace_server.auth import KEY_RE, Authenticator, auth_store_of
from memtrace_server.cli import build_parser, main, parse_expiry
from memtrace_server.testing import bootstrap_admin_key

CLI = [sys.executable, "-m", "memtrace_server.cli"]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def run(
    *args: str, cwd: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env={**os.environ, **env},
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


# ------------------------------------------------------------------------------------------------
# Basics


def test_no_subcommand_prints_help_and_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys)
    assert code == 2
    assert "usage: memtrace" in err
    assert "serve" in err
    code, _, err = cli(capsys, "key")
    assert code == 2
    assert "usage: memtrace key" in err


def test_version(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "version")
    assert code == 0
    assert out.startswith("memtrace-server 0.1.0 (memtrace-core ")


def test_python_dash_m_entry_points(workdir: Path) -> None:
    for module in ("memtrace_server.cli", "memtrace_server"):
        proc = subprocess.run(
            [sys.executable, "-m", module, "version"],
            capture_output=True,
            text=True,
            cwd=workdir,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("memtrace-server ")


def test_parse_expiry() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry("30d", now=now) == now + timedelta(days=30)
    assert parse_expiry("12h", now=now) == now + timedelta(hours=12)
    assert parse_expiry("2027-06-01T00:00:00Z", now=now) == datetime(2027, 6, 1, tzinfo=UTC)
    assert parse_expiry("2027-06-01", now=now) == datetime(2027, 6, 1, tzinfo=UTC)
    for bad in ("soon", "0d", "2020-01-01T00:00:00Z"):
        with pytest.raises(Exception, match="--expires"):
            parse_expiry(bad, now=now)


# ------------------------------------------------------------------------------------------------
# Orgs and keys


def test_org_lifecycle(workdir: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "org", "list", "--store", store_url)
    assert code == 1
    assert "error: no database at" in err

    code, out, _ = cli(capsys, "org", "create", "Acme Corp", "--store", store_url)
    assert code == 0
    assert out.startswith("Organization created\n  id:   org_")
    assert "  name: Acme Corp" in out
    org_id = out.split("id:", 1)[1].split()[0]

    orgs = cli_json(capsys, "org", "list", "--store", store_url)
    assert [(o["id"], o["name"]) for o in orgs] == [(org_id, "Acme Corp")]
    code, out, _ = cli(capsys, "org", "list", "--store", store_url)
    assert out.splitlines()[0].split() == ["ID", "NAME", "CREATED"]
    assert org_id in out

    # Without --yes and without a terminal: refused, nothing deleted.
    proc = run("org", "delete", org_id, "--store", store_url, cwd=workdir)
    assert proc.returncode == 1
    assert "error: refusing to delete without confirmation: pass --yes" in proc.stderr
    assert len(cli_json(capsys, "org", "list", "--store", store_url)) == 1

    code, out, _ = cli(capsys, "org", "delete", org_id, "--yes", "--store", store_url)
    assert code == 0
    assert f"Organization {org_id} deleted" in out
    assert cli_json(capsys, "org", "list", "--store", store_url) == []
    code, _, err = cli(capsys, "org", "delete", org_id, "--yes", "--store", store_url)
    assert code == 1
    assert err.strip() == f"error: organization '{org_id}' not found"


def _authenticate(store_url: str, key: str) -> Any:
    async def go() -> Any:
        from memtrace_core import aconnect

        engine = await aconnect(store_url, plugins=PluginRegistry(load_entry_points=False))
        try:
            return await Authenticator(auth_store_of(engine)).authenticate(key)
        finally:
            await engine.close()

    return asyncio.run(go())


def test_key_create_defaults_the_org_like_export_and_import(
    workdir: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(bootstrap_admin_key(store_url, bcrypt_cost=4))  # org_default, as `serve` does
    parser = build_parser()
    for argv in (["key", "create", "--name", "x"], ["export"], ["import", "-"]):
        assert parser.parse_args(argv).org == "org_default", argv
    created = cli_json(capsys, "key", "create", "--name", "bot", "--store", store_url)
    assert created["org_id"] == "org_default"
    assert _authenticate(store_url, created["key"]).org_id == "org_default"
    # an explicit --org still wins
    other = cli_json(capsys, "org", "create", "Acme", "--store", store_url)["id"]
    created = cli_json(
        capsys, "key", "create", "--org", other, "--name", "bot", "--store", store_url
    )
    assert created["org_id"] == other


def test_key_lifecycle(workdir: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    org = cli_json(capsys, "org", "create", "Acme", "--store", store_url)["id"]

    code, out, _ = cli(capsys, "key", "create", "--org", org, "--name", "ci", "--store", store_url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "API key created (shown only once — save it now):"
    assert KEY_RE.match(lines[1])
    assert "  permissions: read,write" in out
    assert "  expires:     never" in out
    ci_key = lines[1]

    created = cli_json(
        capsys,
        "key", "create", "--org", org, "--name", "reader", "--permissions", "read",
        "--expires", "30d", "--store", store_url,
    )  # fmt: skip
    assert created["permissions"] == ["read"]
    expires = datetime.fromisoformat(created["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert "key_hash" not in created
    reader_key = created["key"]

    principal = _authenticate(store_url, reader_key)
    assert principal.org_id == org
    assert principal.permissions == frozenset({"read"})

    keys = cli_json(capsys, "key", "list", "--org", org, "--store", store_url)
    assert [k["name"] for k in keys] == ["ci", "reader"]
    assert all("key" not in k and "key_hash" not in k for k in keys)
    code, out, _ = cli(capsys, "key", "list", "--store", store_url)
    assert out.splitlines()[0].split()[:5] == ["ID", "ORG", "NAME", "PERMS", "ENABLED"]

    # Duplicate name in the same org, unknown org, bad permission, bad expiry: exit 1 + message.
    for args, message in [
        (("--org", org, "--name", "ci"), "error: an API key named 'ci' already exists"),
        (("--org", "org_nope", "--name", "x"), "error: organization 'org_nope' not found"),
        (("--org", org, "--name", "x", "--permissions", "read,root"), "invalid permission 'root'"),
        (("--org", org, "--name", "x", "--expires", "2001-01-01"), "--expires"),
    ]:
        code, _, err = cli(capsys, "key", "create", *args, "--store", store_url)
        assert code == 1, args
        assert err.startswith("error: ")
        assert message in err

    ci_id = keys[0]["id"]
    rotated = cli_json(capsys, "key", "rotate", ci_id, "--store", store_url)
    assert rotated["id"] == ci_id
    assert rotated["key"] != ci_key
    with pytest.raises(AuthenticationError):
        _authenticate(store_url, ci_key)
    assert _authenticate(store_url, rotated["key"]).key_id == ci_id

    code, out, _ = cli(capsys, "key", "disable", ci_id, "--store", store_url)
    assert (code, out.strip()) == (0, f"Key {ci_id} disabled")
    with pytest.raises(AuthenticationError):
        _authenticate(store_url, rotated["key"])
    code, _, _ = cli(capsys, "key", "enable", ci_id, "--store", store_url)
    assert code == 0
    assert _authenticate(store_url, rotated["key"]).key_id == ci_id

    code, out, _ = cli(capsys, "key", "revoke", ci_id, "--store", store_url)
    assert (code, out.strip()) == (0, f"Key {ci_id} revoked")
    with pytest.raises(AuthenticationError):
        _authenticate(store_url, rotated["key"])
    code, _, err = cli(capsys, "key", "revoke", ci_id, "--store", store_url)
    assert code == 1
    assert f"error: API key '{ci_id}' not found" in err
    assert [k["name"] for k in cli_json(capsys, "key", "list", "--store", store_url)] == ["reader"]


def test_org_delete_from_cli_removes_data(
    workdir: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    org = cli_json(capsys, "org", "create", "Doomed", "--store", store_url)["id"]
    keep = cli_json(capsys, "org", "create", "Kept", "--store", store_url)["id"]
    with connect(store_url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        for org_id in (org, keep):
            view = mt.with_org(org_id)
            view.register_agent(name="bot")
            view.remember("bot", f"hello from {org_id}")
    code, out, _ = cli(capsys, "org", "delete", org, "-y", "--store", store_url)
    assert code == 0
    assert "(1 memories removed)" in out
    with connect(store_url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        assert mt.with_org(org).list_memories().count == 0
        assert mt.with_org(org).list_agents().count == 0
        assert mt.with_org(keep).list_memories().count == 1


# ------------------------------------------------------------------------------------------------
# Configuration errors


def test_bad_config_value_stops_with_the_key_name(workdir: Path) -> None:
    proc = run("serve", cwd=workdir, MEMTRACE_SERVER_PORT="abc")
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == "error: invalid value for server.port (MEMTRACE_SERVER_PORT): 'abc' is not an integer"
    )
    proc = run("serve", "--port", "70000", cwd=workdir)
    assert proc.returncode == 1
    assert "server.port" in proc.stderr
    (workdir / "memtrace.toml").write_text("[server]\nworkers = 0\n")
    proc = run("org", "list", cwd=workdir)
    assert proc.returncode == 1
    assert "error: invalid value for server.workers" in proc.stderr
    assert "memtrace.toml" in proc.stderr
    bad = workdir / "bad.toml"
    bad.write_text("[dedup]\nwindow_hour = 3\n")
    proc = run("key", "list", "--config", str(bad), cwd=workdir)
    assert proc.returncode == 1
    assert "error: unknown key dedup.window_hour" in proc.stderr
    proc = run("key", "list", "--config", str(workdir / "missing.toml"), cwd=workdir)
    assert proc.returncode == 1
    assert "error: config file not found" in proc.stderr


def test_config_command_prints_effective_toml(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    from memtrace_server.config import config_from_dict, load_config

    monkeypatch.setenv("MEMTRACE_SERVER_PORT", "9999")
    monkeypatch.setenv("MEMTRACE_SERVER_CORS_ORIGINS", "https://a.example")
    code, out, _ = cli(capsys, "config", "--store", "sqlite:///elsewhere.db")
    assert code == 0
    data = tomllib.loads(out)
    assert data["server"]["port"] == 9999
    assert data["storage"]["url"] == "sqlite:///elsewhere.db"
    expected = load_config(overrides={"storage.url": "sqlite:///elsewhere.db"})
    # The printed file is a valid memtrace.toml that reproduces the configuration exactly.
    assert config_from_dict(data) == expected


def test_config_file_sets_the_store(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "from-config.db"
    (workdir / "memtrace.toml").write_text(f'[storage]\nurl = "sqlite:///{db}"\n')
    code, _, _ = cli(capsys, "org", "create", "Configured")
    assert code == 0
    assert db.exists()
    assert [o["name"] for o in cli_json(capsys, "org", "list")] == ["Configured"]


# ------------------------------------------------------------------------------------------------
# Export / import


def _seed(url: str) -> None:
    base = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    with connect(url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        agent = mt.register_agent(name="deployer", description="ships code", config={"x": 1})
        other = mt.register_agent(name="watcher")
        session = mt.create_session(agent_id=agent.id, metadata={"ticket": "OPS-1"})
        for i in range(25):
            mt.add_memory(
                agent_id="deployer" if i % 2 else "watcher",
                content=f"event number {i} — ünïcode ✓",
                memory_type=["episodic", "session", "entity", "decision"][i % 4],
                event_type="error" if i % 5 == 0 else "action",
                session_id=session.id if i % 3 == 0 else None,
                tags=[f"t{i % 3}", "all"],
                metadata={"i": i, "nested": {"ok": True}},
                importance=(i % 10) / 10 if i % 4 else None,
                time=base + timedelta(minutes=i, microseconds=i * 7),
            )
        mt.close_session(session.id)
        assert other.id


def _dump(url: str, org: str = "org_default") -> dict[str, Any]:
    with connect(url, org_id=org, plugins=PluginRegistry(load_entry_points=False)) as mt:
        memories = mt.list_memories(order="asc", limit=1000, since="3650d")
        return {
            "memories": [
                m.model_dump(mode="json", exclude={"org_id", "score"}) for m in memories.memories
            ],
            "agents": [
                a.model_dump(mode="json", exclude={"org_id"}) for a in mt.list_agents().agents
            ],
            "sessions": [
                s.model_dump(mode="json", exclude={"org_id"}) for s in mt.list_sessions().sessions
            ],
        }


def test_export_import_round_trip_between_sqlite_files(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    target = f"sqlite:///{tmp_path / 'b.db'}"
    _seed(source)
    dump = tmp_path / "dump.jsonl"

    code, out, err = cli(capsys, "export", "--store", source, "-o", str(dump))
    assert code == 0, err
    assert out == ""
    lines = dump.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 + 1 + 25 + 1
    assert {json.loads(line)["kind"] for line in lines} == {"agent", "session", "memory", "trailer"}
    assert json.loads(lines[-1])["memories"] == 25
    assert "exported 28 records of org_default" in err
    assert not list(tmp_path.glob(".memtrace-export-*"))  # the temp file was renamed

    code, _, err = cli(capsys, "import", "--store", target, str(dump))
    assert code == 0, err
    assert "imported 25 memories (0 already present), 2 agents, 1 sessions" in err

    before, after = _dump(source), _dump(target)
    assert len(before["memories"]) == 25
    assert after == before  # ids, times (µs), recorded_at, content, metadata, tags, agents...

    # Importing again is idempotent.
    code, _, err = cli(capsys, "import", "--store", target, str(dump))
    assert code == 0
    assert "imported 0 memories (25 already present), 0 agents, 0 sessions" in err
    assert _dump(target) == before


def test_the_store_url_may_be_the_first_argument_of_export_and_import(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    target = f"sqlite:///{tmp_path / 'b.db'}"
    _seed(source)
    dump = tmp_path / "dump.jsonl"
    code, _, err = cli(capsys, "export", source, "-o", str(dump))
    assert code == 0, err
    code, _, err = cli(capsys, "import", target, str(dump))
    assert code == 0, err
    assert "imported 25 memories" in err
    assert _dump(target) == _dump(source)
    # a URL and --store that disagree, a positional that is no URL, too many arguments
    for args in (
        ("export", source, "--store", target),
        ("export", "a.db"),
        ("import", target, str(dump), "extra"),
    ):
        code, _, err = cli(capsys, *args)
        assert code != 0, args
        assert "error:" in err, args


def test_export_filters_and_stdout_stdin_pipeline(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    target = f"sqlite:///{tmp_path / 'c.db'}"
    _seed(source)
    # Create the target with an org so the import has to create the missing one.
    cli_json(capsys, "org", "create", "Existing", "--store", target)

    code, out, _ = cli(capsys, "export", "--store", source, "--agent", "deployer")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records
    assert [r["kind"] for r in records] == ["memory"] * (len(records) - 1) + ["trailer"]
    assert {r["agent_id"] for r in records[:-1]} == {"deployer"}

    exported = run("export", "--store", source, cwd=workdir)
    assert exported.returncode == 0, exported.stderr
    imported = run(
        "import", "--store", target, "--org", "org_migrated", "--org-name", "Migrated", "-",
        cwd=workdir, stdin=exported.stdout,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "created organization org_migrated (Migrated)" in imported.stderr
    assert _dump(target, "org_migrated") == _dump(source)
    names = {o["id"]: o["name"] for o in cli_json(capsys, "org", "list", "--store", target)}
    assert names["org_migrated"] == "Migrated"


def test_import_rejects_bad_input(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"sqlite:///{tmp_path / 'd.db'}"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind":"memory","id":"mem_nope"}\n')
    code, _, err = cli(capsys, "import", "--store", target, str(bad))
    assert code == 1
    assert err.startswith("error: line 1: invalid id")
    code, _, err = cli(capsys, "import", "--store", target, str(tmp_path / "absent.jsonl"))
    assert code == 1
    assert "error: cannot read" in err


def test_import_refuses_a_truncated_export_unless_no_trailer(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    target = f"sqlite:///{tmp_path / 'e.db'}"
    _seed(source)
    dump = tmp_path / "dump.jsonl"
    assert cli(capsys, "export", "--store", source, "-o", str(dump))[0] == 0
    lines = dump.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-3]), encoding="utf-8")  # lost the last memories + trailer
    cli_json(capsys, "org", "create", "Existing", "--store", target)
    code, _, err = cli(capsys, "import", "--store", target, str(cut))
    assert code == 1
    assert err.startswith("error: no export trailer")  # no org was created either
    assert "--no-trailer" in err
    assert "org_default" not in {
        o["id"] for o in cli_json(capsys, "org", "list", "--store", target)
    }
    assert _dump(target)["memories"] == []
    assert _dump(target)["agents"] == []
    # A miscounted file is refused even with --no-trailer.
    miscounted = tmp_path / "miscounted.jsonl"
    miscounted.write_text("".join(lines[:-3] + lines[-1:]), encoding="utf-8")
    code, _, err = cli(capsys, "import", "--no-trailer", "--store", target, str(miscounted))
    assert code == 1
    assert "export trailer does not match the file" in err
    assert _dump(target)["memories"] == []
    # An old (trailer-less) file imports only when asked to.
    code, _, err = cli(capsys, "import", "--no-trailer", "--store", target, str(cut))
    assert code == 0, err
    assert "imported 23 memories (0 already present), 2 agents, 1 sessions" in err


# ------------------------------------------------------------------------------------------------
# memtrace serve as a real process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``memtrace serve`` in a subprocess; stderr is collected by a thread."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(self.port), *args],
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until(self, what: str, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate`` holds; fail at once if the server exits first. There is no
        time limit here (a hang is bounded by pytest-timeout): these waits are for events, and
        the tests assert what happened and in which order, never how long it took."""
        while not predicate():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode} before {what}:\n{self.output}"
                )
            time.sleep(0.05)

    def wait_ready(self) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        self.wait_until("it answered /health", healthy)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server did not stop on {sig!r}:\n{self.output}") from None
        self._close()
        return code

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._close()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def _start(servers: list[ServerProcess], cwd: Path, *args: str, **env: str) -> ServerProcess:
    server = ServerProcess(list(args), cwd, env)
    servers.append(server)
    server.wait_ready()
    return server


def _port_closed(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_serve_first_run_key_health_and_sigterm(
    workdir: Path, store_url: str, servers: list[ServerProcess]
) -> None:
    server = _start(servers, workdir, "--store", store_url)
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    assert health["service"] == "memtrace"
    out = server.output
    assert out.count("FIRST RUN") == 1
    keys = {w for w in out.split() if KEY_RE.match(w)}
    assert len(keys) == 1
    (key,) = keys
    assert "starting on http://127.0.0.1:" in out

    assert httpx.get(f"{server.url}/api/v1/agents").status_code == 401
    resp = httpx.post(
        f"{server.url}/api/v1/memories",
        headers={"x-api-key": key},
        json={"agent_id": "cli-test", "content": "written before SIGTERM"},
    )
    assert resp.status_code == 201, resp.text

    assert server.stop(signal.SIGTERM) == 0
    assert _port_closed(server.port)
    assert "FIRST RUN" not in server.output.split("starting on", 1)[1]

    # Second run on the same store: no new admin key; the first one still works; data is there.
    again = _start(servers, workdir, "--store", store_url)
    assert "FIRST RUN" not in again.output
    assert not any(KEY_RE.match(w) for w in again.output.split())
    listed = httpx.get(f"{again.url}/api/v1/memories", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200
    assert [m["content"] for m in listed.json()["memories"]] == ["written before SIGTERM"]
    assert again.stop(signal.SIGINT) == 0
    assert _port_closed(again.port)


def _first_json_key(output: str) -> str:
    keys = [w.strip('",') for w in output.split() if KEY_RE.match(w.strip('",'))]
    assert len(keys) == 1, output
    return keys[0]


@pytest.mark.slow
def test_serve_with_json_logs_prints_only_json_and_the_key_once(
    workdir: Path, store_url: str, servers: list[ServerProcess]
) -> None:
    server = _start(servers, workdir, "--store", store_url, MEMTRACE_LOG_FORMAT="json")
    key = _first_json_key(server.output)
    resp = httpx.get(f"{server.url}/api/v1/agents", headers={"x-api-key": key})
    assert resp.status_code == 200, resp.text  # the key shown is the admin key
    assert server.stop() == 0
    lines = [line for line in server.output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    (banner,) = [r for r in records if "FIRST RUN" in r["message"]]
    assert banner["api_key"] == key
    assert (banner["level"], banner["logger"], banner["org_id"]) == (
        "warning",
        "memtrace.cli",
        "org_default",
    )
    assert banner["permissions"] == ["read", "write", "admin"]
    assert server.output.count(key) == 1  # shown exactly once
    (starting,) = [r for r in records if "starting on" in r["message"]]
    assert starting["url"] == server.url
    assert records.index(banner) < records.index(starting)


@pytest.mark.slow
def test_serve_with_two_workers_and_cross_process_revocation(
    workdir: Path, store_url: str, servers: list[ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    poll = 0.3
    server = _start(
        servers,
        workdir,
        "--workers",
        "2",
        "--store",
        store_url,
        MEMTRACE_AUTH_REVOCATION_POLL_SECONDS=str(poll),
    )
    assert "workers: 2" in server.output
    server.wait_until("both workers were ready", lambda: server.output.count("Worker ready") >= 2)
    # The admin CLI works on the same file while the server runs.
    created = cli_json(
        capsys, "key", "create", "--org", "org_default", "--name", "agent", "--store", store_url
    )
    key = created["key"]
    headers = {"x-api-key": key}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(20):  # new connections: spread over both workers
            resp = httpx.post(
                f"{server.url}/api/v1/memories",
                headers=headers,
                json={"agent_id": "a", "content": f"memory {i}"},
            )
            assert resp.status_code == 201, resp.text
        code, _, err = cli(capsys, "key", "revoke", created["id"], "--store", store_url)
        assert code == 0, err
        # Every worker comes to refuse the key: 20 new connections in a row (spread over both
        # workers) all get 401. How soon is the Authenticator's bound, tested on a simulated
        # clock in test_auth.py; here it is the cross-process path through a running server.
        rounds: list[list[int]] = []

        def all_refused() -> bool:
            statuses = [
                httpx.get(f"{server.url}/api/v1/memories", headers=headers).status_code
                for _ in range(20)
            ]
            rounds.append(statuses)
            assert set(statuses) <= {200, 401}, statuses
            return statuses == [401] * 20

        server.wait_until("every worker refused the revoked key", all_refused)
        # and it stays refused
        again = [client.get("/api/v1/memories", headers=headers).status_code for _ in range(5)]
        assert again == [401] * 5, rounds
        assert client.get("/health").status_code == 200
    code = server.stop()
    assert code == 0, server.output
    assert _port_closed(server.port)
    with connect(store_url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        assert mt.list_memories(agent_id="a").count == 20


def test_serve_reports_a_busy_port(workdir: Path, tmp_path: Path) -> None:
    """Only the error: no "starting on" line, no first-run key shown (and so lost) for a
    server that never started, no store created; a non-zero exit."""
    db = tmp_path / "busy.db"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = run("serve", "--port", str(port), "--store", f"sqlite:///{db}", cwd=workdir)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert not db.exists()


#: A partly sent request must stay in flight for as long as a shutdown test needs it: without
#: these, the body deadline (10 s) would answer it with a 408 and end the drain by itself.
_NO_READ_DEADLINES = {
    "MEMTRACE_SERVER_HEADER_TIMEOUT": "3600",
    "MEMTRACE_SERVER_BODY_TIMEOUT": "3600",
    "MEMTRACE_SERVER_READ_TIMEOUT": "3600",
}


def _start_partial_post(port: int, key: str, content: str) -> tuple[socket.socket, bytes]:
    """Open a POST whose body is only partly sent: a request in flight."""
    body = json.dumps({"agent_id": "drain", "content": content}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /api/v1/memories HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nx-api-key: " + key.encode() + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
    )
    # An ordering, not a sleep: a /health on a second connection is answered by the (single)
    # worker only after its loop has processed the earlier readable socket, i.e. after it
    # took the partial request in.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as health:
        assert health.status == 200
    return sock, body[10:]


def _first_key(output: str) -> str:
    keys = [w for w in output.split() if KEY_RE.match(w)]
    assert len(keys) == 1, output
    return keys[0]


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests(
    workdir: Path, store_url: str, servers: list[ServerProcess]
) -> None:
    # The drain limit is an hour: the server can only exit because the request completed.
    server = _start(
        servers,
        workdir,
        "--store",
        store_url,
        MEMTRACE_SERVER_SHUTDOWN_TIMEOUT="3600",
        **_NO_READ_DEADLINES,
    )
    key = _first_key(server.output)
    sock, rest = _start_partial_post(server.port, key, "finished during shutdown")
    with sock:
        time.sleep(0.3)  # the worker has the request headers
        server.proc.send_signal(signal.SIGTERM)
        server.wait_until("the shutdown began", lambda: "Shutting down" in server.output)
        assert server.proc.poll() is None  # draining: the request is still in flight
        sock.sendall(rest)
        response = sock.recv(65536)
    assert response.startswith(b"HTTP/1.1 201"), response
    assert server.proc.wait(timeout=120) == 0  # timeout: a hang guard, far below the limit
    with connect(store_url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        assert [m.content for m in mt.list_memories(agent_id="drain").memories] == [
            "finished during shutdown"
        ]


@pytest.mark.slow
def test_shutdown_timeout_bounds_a_stuck_request(
    workdir: Path, store_url: str, servers: list[ServerProcess]
) -> None:
    # The request never completes (the rest of its body is never sent): the server can only
    # exit because the 1 s drain limit ended it, and it closes the client's connection.
    server = _start(
        servers,
        workdir,
        "--store",
        store_url,
        MEMTRACE_SERVER_SHUTDOWN_TIMEOUT="1",
        **_NO_READ_DEADLINES,
    )
    key = _first_key(server.output)
    sock, _ = _start_partial_post(server.port, key, "never finished")
    with sock:
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=120)  # a hang guard, not a limit under test
        try:
            leftover = sock.recv(65536)
        except ConnectionResetError:
            leftover = b""
    assert code == 0, server.output
    assert not leftover.startswith(b"HTTP/1.1 201"), leftover  # the request was not served
    with connect(store_url, plugins=PluginRegistry(load_entry_points=False)) as mt:
        assert mt.list_memories(agent_id="drain").count == 0


def test_serve_reports_an_unusable_store(workdir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    for auth in ("true", "false"):
        proc = run(
            "serve", "--store", f"sqlite:///{blocker}/x.db", cwd=workdir, MEMTRACE_AUTH_ENABLED=auth
        )
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().startswith("error: "), proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_second_signal_kills_only_the_server(
    workdir: Path, store_url: str, servers: list[ServerProcess]
) -> None:
    """A second SIGTERM during a (long) drain stops at once. Sanic would SIGKILL the whole
    process group — this test runner included — if the CLI did not restrict it to the workers."""
    # The drain limit is an hour and the request never completes: only the second signal can
    # end the process.
    server = _start(
        servers,
        workdir,
        "--store",
        store_url,
        MEMTRACE_SERVER_SHUTDOWN_TIMEOUT="3600",
        **_NO_READ_DEADLINES,
    )
    key = _first_key(server.output)
    sock, _ = _start_partial_post(server.port, key, "abandoned")
    with sock:
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        server.wait_until("the shutdown began", lambda: "Shutting down" in server.output)
        assert server.proc.poll() is None  # draining
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=120)  # a hang guard, far below the drain limit
    assert "Killing" in server.output
    assert _port_closed(server.port)


# ------------------------------------------------------------------------------------------------
# doctor


def test_doctor_lists_problems_and_fix_repairs_them(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    db = tmp_path / "doc.db"
    url = f"sqlite:///{db}"
    _seed(url)
    code, out, err = cli(capsys, "doctor", url)
    assert (code, err) == (0, "")
    assert "no problems found" in out

    conn = sqlite3.connect(db)
    with conn:
        bad = conn.execute("SELECT id FROM memories ORDER BY time LIMIT 1 OFFSET 3").fetchone()[0]
        conn.execute("UPDATE memories SET time = ? WHERE id = ?", (2**62, bad))
        conn.execute("INSERT INTO memory_tags VALUES ('org_default', 'ghost', 424242)")
    conn.close()

    code, out, _ = cli(capsys, "doctor", url)
    assert code == 1
    assert f"unreadable memory {bad} (org org_default): time" in out
    assert "index drift: memory_tags: 1 orphan entries" in out
    assert "2 problems" in out
    assert "--fix" in out
    code, out, _ = cli(capsys, "doctor", url, "--json")
    assert code == 1
    assert json.loads(out)["unreadable"][0]["row_id"] == bad

    quarantine = tmp_path / "q.jsonl"
    code, out, err = cli(capsys, "doctor", url, "--fix", "--quarantine", str(quarantine))
    assert code == 0, out + err
    assert f"wrote 1 unreadable rows to {quarantine}" in out
    assert "no problems left" in out
    assert json.loads(quarantine.read_text())["id"] == bad
    assert cli(capsys, "doctor", url)[0] == 0
    assert len(_dump(url)["memories"]) == 24


def test_doctor_refuses_other_stores_and_missing_files(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "doctor", f"sqlite:///{tmp_path / 'nope.db'}")
    assert code == 1
    assert "no database at" in err
    code, _, err = cli(capsys, "doctor", "postgresql://localhost/x")
    assert code == 1
    assert "SQLite stores only" in err


# ------------------------------------------------------------------------------------------------
# retention


def test_retention_show_set_apply(
    workdir: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(store_url)  # 25 memories of 2025-03-01 (memory types cycle through the four)
    code, out, err = cli(capsys, "retention", "show", "--store", store_url)
    assert code == 0, err
    assert json.loads(out)["source"] == "none"
    policy = {
        "max_age": "forever",
        "rules": [{"memory_types": ["session"], "max_age": "30d"}],
    }
    code, out, err = cli(
        capsys, "retention", "set", "--store", store_url, "--policy", json.dumps(policy)
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["source"] == "org"
    assert shown["policy"]["max_age"] is None
    code, out, err = cli(capsys, "retention", "apply", "--dry-run", "--store", store_url)
    assert code == 0, err
    assert out.strip() == "org_default: would delete 6 memories"
    assert len(_dump(store_url)["memories"]) == 25
    code, out, err = cli(capsys, "retention", "apply", "--all", "--store", store_url)
    assert out.strip() == "org_default: deleted 6 memories"
    remaining = _dump(store_url)["memories"]
    assert len(remaining) == 19
    assert all(m["memory_type"] != "session" for m in remaining)
    # a bad policy is refused and changes nothing
    code, out, err = cli(capsys, "retention", "set", "--store", store_url, "--max-age", "soon")
    assert code != 0
    assert "max_age" in err
    code, out, err = cli(capsys, "retention", "show", "--store", store_url)
    assert json.loads(out)["policy"]["rules"][0]["max_age"] == "30d"
    code, out, err = cli(capsys, "retention", "set", "--store", store_url, "--clear")
    assert json.loads(out)["source"] == "none"
    code, out, err = cli(capsys, "retention", "set", "--store", store_url)
    assert code != 0
    assert "--policy" in err
