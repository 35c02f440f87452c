"""``scripts/dev.py``: help exits 0 on stdout; a missing or unknown command (or environment) is
a usage error (exit 2, help and the reason on stderr); the table of test environments and what
each one runs for given arguments. None of these creates or touches a virtualenv."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "dev.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def _ran_something(output: str) -> bool:
    """dev.py echoes every command it runs (pip, ruff, pytest, ...) as a ``+ `` line."""
    return any(line.startswith("+ ") for line in output.splitlines())


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_exits_0_on_stdout(flag: str) -> None:
    proc = _run(flag)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "python3 scripts/dev.py serve" in proc.stdout
    assert "python3 scripts/dev.py test" in proc.stdout
    assert not _ran_something(proc.stdout)


@pytest.mark.parametrize("args", [(), ("deploy",), ("--verbose",)])
def test_missing_or_unknown_command_is_a_usage_error(args: tuple[str, ...]) -> None:
    proc = _run(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "python3 scripts/dev.py serve" in proc.stderr
    if args:
        assert f"unknown command: {args[0]!r}" in proc.stderr


def test_an_unknown_environment_is_a_usage_error() -> None:
    proc = _run("test", "--env", "nope")
    assert proc.returncode == 2
    assert "unknown environment: 'nope' (expected one of main, langchain-floor" in proc.stderr
    assert not _ran_something(proc.stdout + proc.stderr)


# --- the environment table and what each environment runs (no virtualenv involved) ------------


def _load_dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memtrace_dev_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


dev = _load_dev()


@pytest.fixture(autouse=True)
def _logs_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dev.test() writes the background environments' logs: never into the checkout, where a
    real run (this suite's own, in CI) is writing them at the same time."""
    monkeypatch.setattr(dev, "LOGS", tmp_path)


FLOOR_SKIPS = [
    "--ignore=tests/integrations/langchain/test_lc_classic.py",
    "--deselect=tests/integrations/langchain/test_lc_docs.py::test_the_langchain_docs_examples_run",
]


def _plan(*args: str, envs: Any = None) -> dict[str, list[str] | None]:
    return {env.name: a for env, a in dev.plan(list(args), envs or dev.ENVS)}


def test_the_table_points_at_files_that_exist() -> None:
    root = SCRIPT.parent.parent
    assert dev.ENVS[0].name == "main"
    assert dev.ENVS[0].venv == ".venv"
    assert (
        len({env.venv for env in dev.ENVS}) == len({env.name for env in dev.ENVS}) == len(dev.ENVS)
    )
    for env in dev.ENVS:
        for path in (*env.packages, *env.requirements, *env.tests, *env.mypy):
            assert (root / path).exists(), (env.name, path)
        for skip in env.exclude:
            assert (root / skip.split("::")[0]).exists(), (env.name, skip)
            assert any(dev.covers(t, skip) for t in dev.env_tests(env)), (env.name, skip)
        assert set(env.extras) <= set(env.packages)


@pytest.mark.parametrize(
    ("pins_file", "package", "only"),
    [
        ("requirements-langchain-floor.txt", "packages/memtrace-langchain", None),
        ("requirements-openai-agents-0.20.txt", "packages/memtrace-openai-agents", None),
        ("requirements-mcp-floor.txt", "packages/memtrace-server", ("mcp",)),
    ],
)
def test_the_floor_pins_are_the_lower_bounds_the_package_declares(
    pins_file: str, package: str, only: tuple[str, ...] | None
) -> None:
    root = SCRIPT.parent.parent
    pins = {}
    for line in (root / pins_file).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    project = tomllib.loads((root / package / "pyproject.toml").read_text())
    floors = {}
    for dep in project["project"]["dependencies"]:
        name, sep, rest = dep.partition(">=")
        if sep and not name.startswith("memtrace") and (only is None or name.strip() in only):
            floors[name.strip()] = rest.split(",")[0].strip()
    assert set(pins) == set(floors)
    for name, floor in floors.items():  # "1.4" is the floor of "1.4.0"
        assert pins[name].split(".")[: len(floor.split("."))] == floor.split("."), name


OA = "tests/integrations/openai_agents"
CREW = "tests/integrations/crewai"
BROWSER = "tests/browser"
# main leaves the exclusive environments' tests to them
OA_SKIP = f"--ignore={OA}"
CREW_SKIP = f"--ignore={CREW}"
BROWSER_SKIP = f"--ignore={BROWSER}"
SKIPS = [OA_SKIP, CREW_SKIP, BROWSER_SKIP]


def test_no_arguments_run_every_environment_on_its_own_tests() -> None:
    assert _plan() == {
        "main": SKIPS,
        "langchain-floor": [*FLOOR_SKIPS, "tests/integrations/langchain"],
        "mcp-1.23": ["tests/mcp"],
        "openai-agents": [OA],
        "openai-agents-0.20": [OA],
        "crewai": [CREW],
        "browser": [BROWSER],
    }


def test_pytest_arguments_go_to_main_and_to_the_environments_their_paths_select() -> None:
    assert _plan("tests/core", "-x") == {"main": ["-x", *SKIPS, "tests/core"]}
    assert _plan("-x") == {"main": ["-x", *SKIPS]}
    lc = "tests/integrations/langchain"
    assert _plan(lc, "-x") == {
        "main": ["-x", *SKIPS, lc],
        "langchain-floor": ["-x", *FLOOR_SKIPS, lc],
    }
    # a parent of an environment's paths selects all of them; a -k value is not a path
    assert _plan("tests", "-k", "tests") == {
        "main": ["-k", "tests", *SKIPS, "tests"],
        "langchain-floor": ["-k", "tests", *FLOOR_SKIPS, lc],
        "mcp-1.23": ["-k", "tests", "tests/mcp"],
        "openai-agents": ["-k", "tests", OA],
        "openai-agents-0.20": ["-k", "tests", OA],
        "crewai": ["-k", "tests", CREW],
        "browser": ["-k", "tests", BROWSER],
    }
    # a path or node id inside: as given; one the environment excludes: not there
    store = f"{lc}/test_lc_store.py::test_put_get"
    assert _plan(store)["langchain-floor"] == [*FLOOR_SKIPS, store]
    assert _plan(f"{lc}/test_lc_classic.py") == {"main": [*SKIPS, f"{lc}/test_lc_classic.py"]}
    docs = f"{lc}/test_lc_docs.py::test_the_langchain_docs_examples_run"
    assert _plan(docs) == {"main": [*SKIPS, docs]}


def test_env_runs_only_the_named_environments_with_every_argument() -> None:
    assert _plan("--env", "langchain-floor", "-k", "store") == {
        "langchain-floor": ["-k", "store", *FLOOR_SKIPS, "tests/integrations/langchain"]
    }
    assert _plan("--env=main", "tests/core") == {"main": [*SKIPS, "tests/core"]}
    assert list(_plan("--env", "langchain-floor", "--env", "main")) == ["main", "langchain-floor"]
    with pytest.raises(ValueError, match="unknown environment: ''"):
        _plan("--env")


def _table_with_an_exclusive_env() -> tuple[Any, ...]:
    agents = dev.Env(
        name="agents",
        venv=".venv-agents",
        packages=("packages/memtrace-core",),
        tests=("tests/server",),  # any existing folder stands in for the future tests
        mypy=("packages/memtrace-openai-agents/src",),
        exclusive=True,
    )
    return (*dev.ENVS, agents)


def test_an_exclusive_environment_owns_its_tests_and_mypy_targets() -> None:
    envs = _table_with_an_exclusive_env()
    agents = "tests/server"
    assert _plan(envs=envs)["main"] == [*SKIPS, f"--ignore={agents}"]
    assert _plan(envs=envs)["agents"] == [agents]
    # asking only for its tests: main still lints and type-checks, but runs no pytest
    assert _plan(f"{agents}/test_auth.py", "-x", envs=envs) == {
        "main": None,
        "agents": ["-x", f"{agents}/test_auth.py"],
    }
    assert "packages/memtrace-openai-agents/src" not in dev.mypy_targets(envs[0], envs)
    assert "packages/memtrace-core/src" in dev.mypy_targets(envs[0], envs)
    assert dev.mypy_targets(envs[-1], envs) == ["packages/memtrace-openai-agents/src"]
    assert dev.mypy_targets(dev.ENVS[1], dev.ENVS) == []


def test_every_environment_runs_and_any_failure_fails_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[Any], **kwargs: object) -> int:
        calls.append([str(c) for c in cmd])
        # main's mypy fails, the floor's pytest collects nothing (exit 5 is a failure)
        if cmd[0].name == "mypy":
            return 1
        return 5 if ".venv-langchain-floor" in str(cmd[0]) else 0

    monkeypatch.setattr(dev, "install", lambda *a, **k: None)  # stamps current
    monkeypatch.setattr(dev, "run", fake_run)
    with pytest.raises(SystemExit) as exc:
        dev.test([])
    assert exc.value.code == 1
    steps = [(Path(c[0]).parent.parent.name, Path(c[0]).name, c[1:3]) for c in calls]
    # the foreground (main) and the background environments interleave; each keeps its order
    by_venv: dict[str, list[str]] = {}
    for venv_name, tool, _ in steps:
        by_venv.setdefault(venv_name, []).append(tool)
    assert by_venv == {
        ".venv": ["ruff", "ruff", "mypy", "python", "python"],  # the suite in two processes
        ".venv-langchain-floor": ["python"],
        ".venv-mcp-1.23": ["python"],
        ".venv-openai-agents": ["mypy", "python"],
        ".venv-openai-agents-0.20": ["python"],
        ".venv-crewai": ["mypy", "python"],
        ".venv-browser": ["python"],
    }
    background = [s for s in steps if s[0] != ".venv"]
    assert [s[0] for s in background] == [
        ".venv-langchain-floor",
        ".venv-mcp-1.23",
        ".venv-openai-agents",
        ".venv-openai-agents",
        ".venv-openai-agents-0.20",
        ".venv-crewai",
        ".venv-crewai",
        ".venv-browser",
    ]  # one after another, in the table's order
    # a background pytest gets its own --basetemp
    floor = next(c for c in calls if ".venv-langchain-floor" in c[0])
    assert floor[3].startswith("--basetemp=")
    # main's whole suite: tests/conformance in a second process (its own --basetemp), the
    # rest without it, at the same time
    mains = [c for c in calls if c[0].endswith(".venv/bin/python")]
    assert len(mains) == 2
    split = next(c for c in mains if c[-1] == "tests/conformance")
    rest = next(c for c in mains if c is not split)
    assert any(a.startswith("--basetemp=") for a in split)
    assert "--ignore=tests/conformance" in rest
    out = capsys.readouterr().out
    assert re.search(
        r"^main +ruff check ok in 0 s; ruff format ok in 0 s; mypy FAILED \(exit 1\) in 0 s; "
        r"pytest ok in 0 s$",
        out,
        re.M,
    )
    assert re.search(r"^langchain-floor +pytest FAILED \(exit 1\) in 0 s$", out, re.M)


def test_an_install_failure_skips_that_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    monkeypatch.setattr(dev, "install", lambda env, *a, **k: 3 if env.name == "main" else None)
    monkeypatch.setattr(dev, "run", lambda cmd, **k: ran.append(str(cmd[0])) or 0)
    with pytest.raises(SystemExit) as exc:
        dev.test([])
    assert exc.value.code == 3
    assert ".venv" not in {Path(r).parent.parent.name for r in ran}  # main skipped
    assert any(".venv-langchain-floor" in r for r in ran)


def test_a_stamp_covers_the_files_a_requirement_file_includes(tmp_path: Path) -> None:
    files = dev.requirement_files(("requirements-crewai.txt",))
    root = SCRIPT.parent.parent.resolve()
    assert files == [root / "requirements-crewai.txt", root / "requirements-crewai-lock.txt"]
    # nested and repeated includes, each file once
    (tmp_path / "a.txt").write_text("-r b.txt\n-c c.txt\nfoo==1\n")
    (tmp_path / "b.txt").write_text("-c c.txt\n")
    (tmp_path / "c.txt").write_text("foo==1\n")
    assert [p.name for p in dev.requirement_files((str(tmp_path / "a.txt"),))] == [
        "a.txt",
        "b.txt",
        "c.txt",
    ]


def test_the_first_environment_installs_in_front_the_others_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    installs: list[tuple[str, bool, str]] = []

    def fake_install(env: Any, *args: Any) -> None:
        log = args[-1]
        installs.append((env.name, log is not None, threading.current_thread().name))
        if log is not None:
            log.write(f"installed {env.name}\n")

    monkeypatch.setattr(dev, "install", fake_install)
    monkeypatch.setattr(dev, "run", lambda cmd, **kwargs: 0)
    with pytest.raises(SystemExit) as exc:
        dev.test([])
    assert exc.value.code == 0
    by_name = {name: (logged, thread) for name, logged, thread in installs}
    assert len(installs) == len(by_name) == len(dev.ENVS)
    assert by_name.pop("main") == (False, "MainThread")
    assert all(logged and thread.startswith("background") for logged, thread in by_name.values())
    for env in dev.ENVS[1:]:
        log = dev.LOGS / f"{env.venv}.install.log"
        assert log.read_text() == f"installed {env.name}\n"


def test_ctrl_c_starts_no_other_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    release = threading.Event()
    started: list[str] = []

    def fake_install(env: Any, *args: Any) -> None:
        started.append(env.name)
        if env.name == "main":
            raise KeyboardInterrupt
        release.wait(10)  # the first background environment is busy when Ctrl-C comes

    monkeypatch.setattr(dev, "install", fake_install)
    monkeypatch.setattr(dev, "run", lambda cmd, **kwargs: 0)
    with pytest.raises(SystemExit) as exc:
        dev.test([])
    assert exc.value.code == 130
    release.set()
    time.sleep(0.3)  # a queued environment that was not cancelled would start now
    # main, and at most the background environment that was already running
    assert started[0] == "main" or started[:2] == ["langchain-floor", "main"]
    assert set(started) <= {"main", "langchain-floor"}


# --- the Debian packages the environments' tests need (PostgreSQL, Chromium) ------------------


def test_each_environment_names_what_it_needs_from_debian() -> None:
    by_name = {env.name: env for env in dev.ENVS}
    assert by_name["main"].debian == ("postgresql",)
    assert by_name["browser"].debian == ("chromium",)
    assert {n for env in dev.ENVS for n in env.debian} <= set(dev.DEBIAN_NEEDS)
    assert "chromium" in dev.DEBIAN_NEEDS["chromium"].packages


def _needs(monkeypatch: pytest.MonkeyPatch, **installed: Any) -> None:
    """Pretend each named need is installed or not (a bool, or an iterator of answers)."""
    for name, answer in installed.items():
        check = dev.DEBIAN_NEEDS[name].check
        if isinstance(answer, bool):
            monkeypatch.setattr(dev, check, lambda answer=answer: answer)
        else:
            monkeypatch.setattr(dev, check, lambda answer=answer: next(answer))


def test_what_is_present_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    _needs(monkeypatch, postgresql=True, chromium=True)
    monkeypatch.setattr(dev.subprocess, "call", lambda *a, **k: calls.append(a) or 0)
    dev.ensure_debian_packages(["postgresql", "chromium"])
    dev.ensure_debian_packages([])
    assert calls == []


def test_what_is_missing_is_installed_with_one_apt_call_as_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []
    _needs(monkeypatch, postgresql=iter([False, True]), chromium=iter([False, True]))
    monkeypatch.setattr(dev.os, "geteuid", lambda: 0)
    monkeypatch.setattr(dev.subprocess, "call", lambda cmd, **k: calls.append(cmd) or 0)
    dev.ensure_debian_packages(["postgresql", "chromium", "postgresql"])
    assert calls[0] == ["apt-get", "update", "-q"]
    assert len(calls) == 2
    assert calls[1][:2] == ["apt-get", "install"]
    assert {"postgresql", "postgresql-contrib", "chromium"} <= set(calls[1])


def test_only_the_missing_package_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    _needs(monkeypatch, postgresql=True, chromium=iter([False, True]))
    monkeypatch.setattr(dev.os, "geteuid", lambda: 0)
    monkeypatch.setattr(dev.subprocess, "call", lambda cmd, **k: calls.append(cmd) or 0)
    dev.ensure_debian_packages(["postgresql", "chromium"])
    assert "chromium" in calls[1]
    assert "postgresql" not in calls[1]


def test_a_failed_install_stops_with_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs(monkeypatch, chromium=False)
    monkeypatch.setattr(dev.os, "geteuid", lambda: 0)
    monkeypatch.setattr(dev.subprocess, "call", lambda cmd, **k: 0)  # "worked", still missing
    with pytest.raises(SystemExit) as info:
        dev.ensure_debian_packages(["chromium"])
    message = str(info.value.code)
    assert "headless Chromium" in message
    assert "sudo apt-get install -y -q --no-install-recommends chromium" in message
    assert dev.CHROMIUM_ENV in message


def test_missing_without_root_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs(monkeypatch, postgresql=False, chromium=True)
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(dev.subprocess, "call", lambda *a, **k: pytest.fail("ran a command"))
    with pytest.raises(SystemExit) as info:
        dev.ensure_debian_packages(["postgresql", "chromium"])
    message = str(info.value.code)
    assert (
        "sudo apt-get install -y -q --no-install-recommends postgresql postgresql-contrib\n"
        in message
    )
    assert "MEMTRACE_PG_BINDIR" in message


def test_the_browser_is_found_by_the_variable_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(dev.CHROMIUM_ENV, str(tmp_path / "nope"))
    assert dev.chromium_installed() is False
    (tmp_path / "chrome").write_text("")
    monkeypatch.setenv(dev.CHROMIUM_ENV, str(tmp_path / "chrome"))
    assert dev.chromium_installed() is True


def test_the_command_checks_only_what_the_chosen_environments_need(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[list[str]] = []
    monkeypatch.setattr(dev, "ensure_debian_packages", lambda names: asked.append(list(names)))
    monkeypatch.setattr(dev, "install", lambda *a, **k: None)
    monkeypatch.setattr(dev, "run", lambda cmd, **kwargs: 0)
    for args in (["--env", "browser"], ["--env", "mcp-1.23"], ["--env", "main", "tests/core"]):
        with pytest.raises(SystemExit):
            dev.test(args)
    assert asked == [["chromium"], [], ["postgresql"]]
