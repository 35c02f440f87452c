#!/usr/bin/env python3
"""One entry point for the two commands of the README (stdlib only, Python 3.11+).

    python3 scripts/dev.py serve [memtrace serve options]            # run the memtrace server
    python3 scripts/dev.py test [--env NAME] [pytest options/paths]  # lint, type-check, test

``serve`` creates ``.venv`` next to this repository on first use and installs memtrace-core and
memtrace-server into it (editable).

``test`` runs every test environment of the ENVS table below, in order, and exits non-zero if
any step of any environment failed (every environment runs; a summary at the end lists them).
Framework sets that cannot share one virtualenv get their own environment:

    main             .venv                  every workspace package editable, with TEST_EXTRAS, and
                                            requirements-dev.txt; ruff check, ruff format --check,
                                            mypy and pytest over the default testpaths, as
                                            two processes at once (tests/conformance in the
                                            second: Env.split) when no path is given (the
                                            Debian PostgreSQL server is installed first when
                                            missing: DEBIAN_NEEDS)
    langchain-floor  .venv-langchain-floor  core, server and langchain editable with the oldest
                                            LangChain releases memtrace-langchain declares
                                            (requirements-langchain-floor.txt); pytest over
                                            tests/integrations/langchain (minus langchain-classic)
    mcp-1.23         .venv-mcp-1.23         core and server editable with the oldest mcp SDK
                                            memtrace-server declares (requirements-mcp-floor.txt;
                                            the 1.x API); pytest over tests/mcp (main has 2.x)
    openai-agents    .venv-openai-agents    core, server and openai-agents editable with the newest
                                            openai-agents (openai 3); mypy of that package and
                                            pytest over tests/integrations/openai_agents
    openai-agents-0.20  .venv-openai-agents-0.20  the same tests on openai-agents 0.20 (openai 2,
                                            what a user who also has crewai gets)
    crewai           .venv-crewai           core, server and crewai editable with the newest
                                            crewai (requirements-crewai.txt; openai 2, mcp 1);
                                            mypy of that package and pytest over
                                            tests/integrations/crewai
    browser          .venv-browser          core and server editable, Playwright for Python
                                            (requirements-browser.txt; it drives Debian's
                                            chromium, installed first when missing: no
                                            browser download); pytest over tests/browser
                                            (the memory explorer at /ui in headless Chromium)

A new environment (say openai-agents) is one more Env entry: its packages, requirement files,
test paths (``exclusive=True``: the main environment then leaves them out), mypy targets
(checked there instead of in the main environment) and the Debian packages its tests need
(``debian``: names in DEBIAN_NEEDS; whatever the chosen environments miss is installed in one
``apt-get install`` when running as root, or the command to run is printed and dev.py stops).

Each environment installs in ONE pip call (its editable packages and requirement files, so the
resolver honours both) and keeps a stamp: the install is skipped while the Python version, the
packages' pyproject.toml files, the requirement files and the table entry are unchanged.
pytest collecting no test (exit 5) counts as a failure. The first environment installs and runs
in the foreground; the others install and run one after another in a background thread beside
it (at low CPU priority, each pytest with its own ``--basetemp``), their output in
``<venv>.install.log`` and ``<venv>.test.log``, printed when the foreground is done. On two
cores the second one would otherwise sit idle while the main tests run.

Arguments after ``test``:

    --env NAME        run only that environment (repeatable); all other arguments go to its pytest
    (no arguments)    every environment, each on its own test paths
    pytest arguments  the main environment's pytest gets them all (but the paths of exclusive
                      environments; its ruff and mypy run too); another environment runs only
                      if a path argument selects some of its tests
                      (a parent of its paths, e.g. ``tests``, or a path or node id inside them),
                      and then gets the same options with only those paths. A path argument is
                      one that exists relative to the repository root (``::node`` allowed);
                      pytest runs from the repository root.

    python3 scripts/dev.py test tests/core -x                 # main only
    python3 scripts/dev.py test tests/integrations/langchain  # main, then langchain-floor
    python3 scripts/dev.py test tests -x                      # every environment, with -x
    python3 scripts/dev.py test --env langchain-floor -k store
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
#: where the background environments' logs go (tests point it elsewhere)
LOGS = ROOT
BINDIR = "Scripts" if os.name == "nt" else "bin"
EXE = ".exe" if os.name == "nt" else ""
PACKAGES = [
    "packages/memtrace-core",
    "packages/memtrace-server",
    "packages/memtrace-langchain",
    "packages/memtrace-openai-agents",
    "packages/memtrace-crewai",
]
SERVE_PACKAGES = PACKAGES[:2]
#: Optional extras installed with a workspace package for the tests (main environment).
TEST_EXTRAS = {"packages/memtrace-core": "postgres,arc", "packages/memtrace-langchain": "classic"}
#: Where the browser tests find Chromium (tests/browser/conftest.py reads the same variable).
CHROMIUM_ENV = "MEMTRACE_CHROMIUM"


def postgresql_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or bool(
        os.environ.get("MEMTRACE_PG_BINDIR")
    )


def chromium_installed() -> bool:
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return Path(explicit).exists()
    return shutil.which("chromium") is not None or Path("/usr/bin/chromium").exists()


@dataclass(frozen=True)
class DebianNeed:
    """Something a test environment needs from Debian: the packages that bring it, how to tell
    it is there (the name of a function of this module, looked up when checked), and what to
    do instead on a system without apt."""

    packages: tuple[str, ...]
    check: str
    what: str
    elsewhere: str

    def installed(self) -> bool:
        check: Callable[[], bool] = globals()[self.check]
        return check()


#: What the environments' ``debian`` names mean.
DEBIAN_NEEDS: dict[str, DebianNeed] = {
    # a real PostgreSQL server: the tests start their own, as an unprivileged user, on
    # 127.0.0.1 (tests/pg_harness.py)
    "postgresql": DebianNeed(
        ("postgresql", "postgresql-contrib"),
        "postgresql_installed",
        "a PostgreSQL server (they start their own on 127.0.0.1)",
        "install PostgreSQL >= 13 with pg_trgm and set MEMTRACE_PG_BINDIR to the directory "
        "of its initdb",
    ),
    # headless Chromium for the browser tests (Playwright drives it by its executable path;
    # the font gives the screenshots real glyphs)
    "chromium": DebianNeed(
        ("chromium", "fonts-dejavu-core"),
        "chromium_installed",
        "headless Chromium (the browser tests)",
        f"install Chromium or Chrome and set {CHROMIUM_ENV} to its executable",
    ),
}


@dataclass(frozen=True)
class Env:
    """One test environment: a virtualenv, what goes into it, and what runs in it.

    The first entry of ENVS is the main environment: it lints, type-checks every file of
    pyproject's [tool.mypy] except the other environments' ``mypy`` targets, and runs pytest over
    the default testpaths except the other environments' ``exclusive`` test paths.
    """

    name: str
    venv: str  # directory relative to the repository root
    packages: tuple[str, ...]  # workspace packages, installed editable
    requirements: tuple[str, ...] = ()  # requirement files, installed in the same pip call
    extras: dict[str, str] = field(default_factory=dict)  # package -> extra
    tests: tuple[str, ...] = ()  # pytest paths; () = pyproject's testpaths
    exclude: tuple[str, ...] = ()  # paths (--ignore) or node ids (--deselect) not run here
    mypy: tuple[str, ...] = ()  # mypy targets checked in this env (and not in main)
    exclusive: bool = False  # its tests run only here (main ignores ``tests``)
    lint: bool = False  # ruff check + ruff format --check
    debian: tuple[str, ...] = ()  # what its tests need from Debian (DEBIAN_NEEDS keys)
    #: test paths run by a second pytest process beside the first (a whole run only, i.e. no
    #: path asked for): the main environment's suite is the longest step of the run
    split: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return ROOT / self.venv

    @property
    def bin(self) -> Path:
        return self.path / BINDIR

    @property
    def python(self) -> Path:
        return self.bin / f"python{EXE}"


#: The OpenAI Agents integration and its tests: openai-agents >= 0.21 needs openai 3, which
#: crewai (and so a later environment) cannot share; it gets environments of its own, on the
#: newest release its range allows and on 0.20 (the last on openai 2).
OPENAI_AGENTS = (
    "packages/memtrace-core",
    "packages/memtrace-server",
    "packages/memtrace-openai-agents",
)

#: The CrewAI integration: crewai pins openai < 3 (and mcp < 2) and weighs ~1 GB; its own
#: environment.
CREWAI = ("packages/memtrace-core", "packages/memtrace-server", "packages/memtrace-crewai")
#: Packages only their own environments install (main leaves them out).
EXCLUSIVE_PACKAGES = ("packages/memtrace-openai-agents", "packages/memtrace-crewai")

ENVS: tuple[Env, ...] = (
    Env(
        name="main",
        venv=".venv",
        packages=tuple(p for p in PACKAGES if p not in EXCLUSIVE_PACKAGES),
        extras=TEST_EXTRAS,
        requirements=("requirements-dev.txt", "requirements-langchain-test.txt"),
        lint=True,
        debian=("postgresql",),
        split=("tests/conformance",),
    ),
    Env(
        name="langchain-floor",
        venv=".venv-langchain-floor",
        packages=(
            "packages/memtrace-core",
            "packages/memtrace-server",
            "packages/memtrace-langchain",
        ),
        requirements=(
            "requirements-dev.txt",
            "requirements-langchain-test.txt",
            "requirements-langchain-floor.txt",
        ),
        tests=("tests/integrations/langchain",),
        # both need langchain-classic, which has its own floor
        exclude=(
            "tests/integrations/langchain/test_lc_classic.py",
            "tests/integrations/langchain/test_lc_docs.py::test_the_langchain_docs_examples_run",
        ),
    ),
    Env(
        name="mcp-1.23",
        venv=".venv-mcp-1.23",
        packages=SERVE_PACKAGES,
        requirements=("requirements-dev.txt", "requirements-mcp-floor.txt"),
        tests=("tests/mcp",),
    ),
    Env(
        name="openai-agents",
        venv=".venv-openai-agents",
        packages=OPENAI_AGENTS,
        requirements=("requirements-dev.txt",),
        tests=("tests/integrations/openai_agents",),
        mypy=("packages/memtrace-openai-agents/src",),
        exclusive=True,
    ),
    Env(
        name="openai-agents-0.20",
        venv=".venv-openai-agents-0.20",
        packages=OPENAI_AGENTS,
        requirements=("requirements-dev.txt", "requirements-openai-agents-0.20.txt"),
        tests=("tests/integrations/openai_agents",),
        exclusive=True,
    ),
    Env(
        name="crewai",
        venv=".venv-crewai",
        packages=CREWAI,
        requirements=("requirements-dev.txt", "requirements-crewai.txt"),
        tests=("tests/integrations/crewai",),
        mypy=("packages/memtrace-crewai/src",),
        exclusive=True,
    ),
    Env(
        name="browser",
        venv=".venv-browser",
        packages=SERVE_PACKAGES,
        requirements=("requirements-browser.txt",),
        tests=("tests/browser",),
        exclusive=True,
        debian=("chromium",),
    ),
)
MAIN = ENVS[0]


def run_logged(cmd: list[str | Path], log: IO[str] | None) -> int:
    """Run ``cmd`` on the terminal, or — for a background environment (``log`` given) — with
    its output to ``log`` and at low CPU priority, so the foreground tests keep the CPU."""
    if log is None:
        return run(cmd)
    nice = {"preexec_fn": lambda: os.nice(10)} if hasattr(os, "nice") else {}
    return run(cmd, stdout=log, stderr=subprocess.STDOUT, log=log, **nice)


def run(cmd: list[str | Path], log: IO[str] | None = None, **kwargs: object) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True, file=log or sys.stdout)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)  # type: ignore[arg-type]


def ensure_debian_packages(names: list[str]) -> None:
    """Install what the ``names`` (DEBIAN_NEEDS keys) need and is missing, in one ``apt-get
    install`` (as root, after ``apt-get update``), or stop with the exact command to run."""
    missing = [DEBIAN_NEEDS[n] for n in dict.fromkeys(names) if not DEBIAN_NEEDS[n].installed()]
    if not missing:
        return
    packages = [p for need in missing for p in need.packages]
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if os.name == "posix" and os.geteuid() == 0 and Path("/usr/bin/apt-get").exists():
        print("+ " + " ".join(command), flush=True)
        environ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        code = subprocess.call(["apt-get", "update", "-q"], env=environ)
        if code == 0:
            code = subprocess.call(command, env=environ)
        missing = [need for need in missing if not need.installed()]
        if code == 0 and not missing:
            return
    sys.exit(
        f"the tests need {' and '.join(need.what for need in missing)}: run\n"
        f"    sudo {' '.join(command)}\n"
        f"(Debian/Ubuntu; elsewhere {'; '.join(need.elsewhere for need in missing)}), "
        "then run this command again"
    )


def check_python() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the venv exists
        sys.exit("memtrace needs Python 3.11 or newer")


def requirement_files(requirements: tuple[str, ...]) -> list[Path]:
    """The requirement files and every file they include (``-r`` / ``-c`` lines, relative to
    the including file), each once: what an environment's stamp covers."""
    seen: list[Path] = []
    todo = [ROOT / r for r in requirements]
    while todo:
        path = todo.pop(0).resolve()
        if path in seen:
            continue
        seen.append(path)
        for line in path.read_text().splitlines():
            option, _, target = line.strip().partition(" ")
            if option in ("-r", "-c", "--requirement", "--constraint") and target.strip():
                todo.append(path.parent / target.strip())
    return seen


def install(
    env: Env,
    packages: tuple[str, ...],
    extras: dict[str, str],
    requirements: tuple[str, ...],
    stamp: str,
    log: IO[str] | None = None,
) -> int | None:
    """Create ``env``'s venv if needed and install into it unless its stamp is current
    (pip's output to ``log`` when given, else to the terminal).

    Returns pip's exit code, or None when the stamp was current (nothing to do)."""
    if not env.python.exists():
        print(f"+ creating {env.venv}", flush=True, file=log or sys.stdout)
        venv.EnvBuilder(with_pip=True).create(env.path)
    digest = hashlib.sha256(sys.version.encode())
    digest.update(repr((packages, sorted(extras.items()), requirements)).encode())
    for path in [ROOT / p / "pyproject.toml" for p in packages] + requirement_files(requirements):
        digest.update(path.read_bytes())
    stamp_file = env.path / f".installed-{stamp}"
    if stamp_file.exists() and stamp_file.read_text() == digest.hexdigest():
        return None
    cmd: list[str | Path] = [env.python, "-m", "pip", "install"]
    # --no-compile: no .pyc for every installed file (crewai's ~1 GB); imports compile what
    # they use
    cmd += ["--disable-pip-version-check", "-q", "--no-compile"]
    for pkg in packages:
        cmd += ["-e", f"{pkg}[{extras[pkg]}]" if pkg in extras else pkg]
    for req in requirements:
        cmd += ["-r", req]
    code = run_logged(cmd, log)
    if code == 0:
        stamp_file.write_text(digest.hexdigest())
    return code


# --- choosing what each environment runs -------------------------------------------------------

#: pytest options whose value is the next argument (so that value is never taken for a path)
VALUE_OPTIONS = frozenset(
    {
        "-k",
        "-m",
        "-p",
        "-c",
        "-o",
        "-W",
        "-r",
        "-n",
        "--deselect",
        "--ignore",
        "--ignore-glob",
        "--rootdir",
        "--confcutdir",
        "--basetemp",
        "--maxfail",
        "--tb",
        "--durations",
        "--timeout",
        "--junitxml",
        "--junit-xml",
        "--log-level",
        "--import-mode",
        "--capture",
        "--override-ini",
        "--config-file",
        "--cov",
        "--cov-report",
    }
)


def _key(node: str) -> tuple[str, ...]:
    """``a/b.py::C::t`` -> ("a", "b.py", "::C", "::t"): a containment key over paths and nodes."""
    path, *nodes = node.split("::")
    rel = Path(os.path.normpath(path))
    return (*rel.parts, *(f"::{n}" for n in nodes))


def covers(outer: str, inner: str) -> bool:
    """True if the path / node id ``outer`` contains (or is) ``inner``."""
    a, b = _key(outer), _key(inner)
    return b[: len(a)] == a


def is_path_arg(arg: str) -> bool:
    return not arg.startswith("-") and (ROOT / arg.split("::")[0]).exists()


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """Split pytest arguments into (options, path arguments), keeping each group's order."""
    options: list[str] = []
    paths: list[str] = []
    takes_value = False
    for arg in args:
        if takes_value:
            options.append(arg)
            takes_value = False
        elif arg in VALUE_OPTIONS:
            options.append(arg)
            takes_value = True
        elif is_path_arg(arg):
            paths.append(arg)
        else:
            options.append(arg)
    return options, paths


def pyproject() -> dict[str, Any]:
    import tomllib  # imported here: Python < 3.11 gets check_python()'s message, not a traceback

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def env_tests(env: Env) -> tuple[str, ...]:
    if env.tests:
        return env.tests
    config = pyproject()
    return tuple(config["tool"]["pytest"]["ini_options"].get("testpaths", ["."]))


def select_paths(env: Env, asked: list[str], envs: tuple[Env, ...]) -> list[str]:
    """The paths among ``asked`` that ``env`` runs (a parent of its paths becomes its paths)."""
    chosen: list[str] = []
    owned = [p for other in envs if other is not env and other.exclusive for p in other.tests]
    for arg in asked:
        if any(covers(x, arg) for x in env.exclude):
            continue
        if env is envs[0]:
            if not any(covers(p, arg) for p in owned):
                chosen.append(arg)
            continue
        inside = [t for t in env.tests if covers(arg, t)]
        if inside and "::" not in arg:
            chosen += [t for t in inside if t not in chosen]
        elif any(covers(t, arg) for t in env.tests) and arg not in chosen:
            chosen.append(arg)
    return chosen


def exclusions(env: Env, envs: tuple[Env, ...]) -> list[str]:
    """``--ignore`` / ``--deselect`` options for what ``env`` does not run."""
    skip = list(env.exclude)
    if env is envs[0]:
        skip += [p for other in envs[1:] if other.exclusive for p in other.tests]
    return [f"--deselect={x}" if "::" in x else f"--ignore={x}" for x in dict.fromkeys(skip)]


def plan(args: list[str], envs: tuple[Env, ...]) -> list[tuple[Env, list[str] | None]]:
    """Each environment to run with its pytest arguments (None: its pytest is skipped).

    ``--env NAME`` (or ``--env=NAME``) picks environments; raises ValueError for a bad name.
    """
    by_name = {env.name: env for env in envs}
    picked: list[Env] = []
    rest: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--env" or arg.startswith("--env="):
            name = arg.partition("=")[2] if "=" in arg else next(it, "")
            if name not in by_name:
                raise ValueError(
                    f"unknown environment: {name!r} (expected one of {', '.join(by_name)})"
                )
            if by_name[name] not in picked:
                picked.append(by_name[name])
        else:
            rest.append(arg)
    options, asked = split_args(rest)
    result: list[tuple[Env, list[str] | None]] = []
    for env in envs:
        if picked and env not in picked:
            continue
        if picked or not rest:
            # its own tests, or everything the user asked for in this environment
            paths = asked or list(env.tests)
        else:
            paths = select_paths(env, asked, envs) if asked else []
            if not paths and (asked or env is not envs[0]):
                if env is envs[0]:
                    result.append((env, None))  # still lints and type-checks
                continue
        result.append((env, [*options, *exclusions(env, envs), *paths]))
    return result


def mypy_targets(env: Env, envs: tuple[Env, ...]) -> list[str]:
    if env is not envs[0]:
        return list(env.mypy)
    config = pyproject()
    files: list[str] = config["tool"]["mypy"]["files"]
    elsewhere = [t for other in envs[1:] for t in other.mypy]
    return [f for f in files if not any(covers(t, f) for t in elsewhere)]


# --- the commands ------------------------------------------------------------------------------


def serve(args: list[str]) -> None:
    check_python()
    code = install(MAIN, tuple(SERVE_PACKAGES), {}, (), stamp="run")
    if code:
        sys.exit(code)
    memtrace = MAIN.bin / f"memtrace{EXE}"
    os.execv(str(memtrace), [str(memtrace), "serve", *args])


Step = tuple[str, int, float]  # (name, exit code, seconds)


def timed(name: str, action: Callable[[], int | None]) -> Step | None:
    start = time.monotonic()
    code = action()
    return None if code is None else (name, code, time.monotonic() - start)


def install_step(env: Env, log: IO[str] | None = None) -> Step | None:
    return timed(
        "install", lambda: install(env, env.packages, env.extras, env.requirements, "test", log)
    )


def background_envs(
    todo: list[tuple[Env, list[str] | None]], envs: tuple[Env, ...]
) -> list[Future[list[Step]]]:
    """Install and run ``todo``'s environments one after another in a background thread,
    while the first environment's tests run in the foreground (on 2 cores the second one is
    otherwise idle): pip's output to ``<venv>.install.log``, every other step's to
    ``<venv>.test.log``, both printed when the foreground is done."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background")

    def one(env: Env, pytest_args: list[str] | None) -> list[Step]:
        with (
            open(LOGS / f"{env.venv}.install.log", "w") as install_log,
            open(LOGS / f"{env.venv}.test.log", "w") as test_log,
        ):
            return run_env(env, pytest_args, envs, install_log, test_log)

    futures = [pool.submit(one, env, pytest_args) for env, pytest_args in todo]
    pool.shutdown(wait=False)
    return futures


def run_env(
    env: Env,
    pytest_args: list[str] | None,
    envs: tuple[Env, ...],
    install_log: IO[str] | None = None,
    log: IO[str] | None = None,
) -> list[Step]:
    """Install ``env`` and run all its steps (the install among them, unless its stamp was
    current), on the terminal or, in the background, into the logs."""
    print(f"\n=== environment {env.name} ({env.venv}) ===", flush=True, file=log or sys.stdout)
    steps: list[Step | None] = [install_step(env, install_log)]
    if steps[0] is not None and steps[0][1] != 0:
        return [steps[0]]
    if env.lint:
        ruff = env.bin / f"ruff{EXE}"
        steps.append(timed("ruff check", lambda: run_logged([ruff, "check", "."], log)))
        steps.append(
            timed("ruff format", lambda: run_logged([ruff, "format", "--check", "."], log))
        )
    targets = mypy_targets(env, envs)
    if targets:
        steps.append(timed("mypy", lambda: run_logged([env.bin / f"mypy{EXE}", *targets], log)))
    if pytest_args is not None:
        args = list(pytest_args)
        if log is not None:  # its own temporary directories: the foreground pytest runs too
            args = [f"--basetemp={env.path / 'pytest-tmp'}", *args]

        def pytest() -> int:
            if env.split and not any(a for a in args if not a.startswith("-")):
                return split_pytest(env, args, log)
            code = run_logged([env.python, "-m", "pytest", *args], log)
            if code == 5:
                print(
                    "pytest collected no tests: that is a failure here",
                    file=log or sys.stderr,
                    flush=True,
                )
                return 1
            return code

        steps.append(timed("pytest", pytest))
    return [step for step in steps if step is not None]


def split_pytest(env: Env, args: list[str], log: IO[str] | None) -> int:
    """The environment's whole suite as two pytest processes at once: ``env.split`` in the
    second (its own ``--basetemp``, output to ``<venv>.split.log``, printed after), the rest
    in the first. Either failing, or collecting nothing, fails the step."""
    rest = [*args, *(f"--ignore={p}" for p in env.split)]
    second = [*args, f"--basetemp={env.path / 'pytest-split-tmp'}", *env.split]
    split_log_path = LOGS / f"{env.venv}.split.log"
    with (
        open(split_log_path, "w") as split_log,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="split") as pool,
    ):
        cmd: list[str | Path] = [env.python, "-m", "pytest", *second]
        other = pool.submit(run, cmd, log=split_log, stdout=split_log, stderr=subprocess.STDOUT)
        codes = [run_logged([env.python, "-m", "pytest", *rest], log), other.result()]
    print(split_log_path.read_text(), end="", flush=True, file=log or sys.stdout)
    if 5 in codes:
        print("pytest collected no tests: that is a failure here", file=log or sys.stderr)
        return 1
    return next((c for c in codes if c), 0)


def _print_logs(env: Env) -> None:
    for suffix in ("install", "test"):
        log = LOGS / f"{env.venv}.{suffix}.log"
        if log.exists():
            print(log.read_text(), end="", flush=True)


def test(args: list[str]) -> None:
    try:
        todo = plan(args, ENVS)
    except ValueError as exc:
        print(__doc__, file=sys.stderr)
        print(exc, file=sys.stderr)
        sys.exit(2)
    check_python()
    ensure_debian_packages([name for env, _ in todo for name in env.debian])
    # Playwright drives the system's Chromium (tests/browser): it never downloads a browser
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    # the first environment runs in the foreground; the others, one after another, beside it
    background = background_envs(todo[1:], ENVS)
    first, first_args = todo[0]
    try:
        report = [(first, run_env(first, first_args, ENVS))]
        for (env, _), future in zip(todo[1:], background, strict=True):
            steps = future.result()
            _print_logs(env)
            report.append((env, steps))
    except KeyboardInterrupt:
        # Ctrl-C reached the running commands (one process group); start no other environment
        for future in background:
            future.cancel()
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
    print("\n=== summary ===")
    width = max(len(env.name) for env in ENVS)
    for env, steps in report:
        text = "; ".join(
            f"{name} {'ok' if code == 0 else f'FAILED (exit {code})'} in {secs:.0f} s"
            for name, code, secs in steps
        )
        print(f"{env.name:<{width}}  {text or 'nothing to run'}")
    why = (
        "not picked by --env"
        if any(a.startswith("--env") for a in args)
        else "none of its paths asked for"
    )
    for env in ENVS:
        if env not in [e for e, _ in todo]:
            print(f"{env.name:<{width}}  skipped ({why})")
    failures = [code for _, steps in report for _, code, _ in steps if code != 0]
    sys.exit(failures[0] if failures else 0)


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] in ("-h", "--help", "help"):
        print(__doc__)
        return
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test"):
        print(__doc__, file=sys.stderr)
        if len(sys.argv) >= 2:
            print(f"unknown command: {sys.argv[1]!r} (expected serve or test)", file=sys.stderr)
        sys.exit(2)
    {"serve": serve, "test": test}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
