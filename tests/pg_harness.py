"""A throw-away PostgreSQL server for the tests and benchmarks.

Debian's ``postgresql`` package (installed by ``scripts/dev.py`` when it is missing) provides
the binaries; this module runs ``initdb`` in a temporary directory and starts the server on
127.0.0.1 and a free port, with its socket in that directory too. ``initdb`` and ``postgres``
refuse to run as root, so as root (CI) they run as the unprivileged ``postgres`` user (created
by the package) through ``runuser``.

``fsync=off`` because a test database need not survive an OS crash; ``synchronous_commit`` stays
``on`` (a COMMIT still returns only after its WAL is written), so a server killed with SIGKILL
(:meth:`PgServer.kill`) still keeps every committed transaction, which the fault tests rely on.

Each test gets its own database, cloned from a template (``CREATE DATABASE … TEMPLATE``) with
pytest-postgresql's :class:`DatabaseJanitor`, which also drops it afterwards.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

INSTALL_HINT = (
    "the PostgreSQL server is not installed: run `python3 scripts/dev.py test` (it installs it) "
    "or `apt-get install -y postgresql postgresql-contrib`"
)


def pg_bindir() -> Path:
    """The directory of ``initdb`` / ``pg_ctl`` (Debian keeps them off PATH)."""
    explicit = os.environ.get("MEMTRACE_PG_BINDIR")
    if explicit:
        return Path(explicit)
    with contextlib.suppress(OSError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if out.returncode == 0 and (bindir / "initdb").exists():
            return bindir
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL server in a temporary directory (see the module docstring)."""

    def __init__(self, *, max_connections: int = 300) -> None:
        self.bindir = pg_bindir()
        self.base = Path(tempfile.mkdtemp(prefix="memtrace-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.max_connections = max_connections
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(INSTALL_HINT + " (no `postgres` user)") from None
            os.chown(self.base, account.pw_uid, account.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self.running = False

    def _run(self, *args: str, timeout: float = 120) -> None:
        out = subprocess.run(
            [*self._prefix, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if out.returncode != 0:
            log = ""
            with contextlib.suppress(OSError):
                log = (self.base / "pg.log").read_text()[-2000:]
            raise RuntimeError(f"{args[0]} failed ({out.returncode}): {out.stderr}{log}")

    def init(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses={self.host} -p {self.port} "
            f"-c unix_socket_directories={self.base} -c fsync=off -c full_page_writes=off "
            f"-c synchronous_commit=on -c max_connections={self.max_connections} "
            "-c shared_buffers=128MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "pg.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart | fast | immediate — immediate is a crash: no
        checkpoint, recovery from the WAL at the next start)."""
        if not self.running:
            return
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


_server: PgServer | None = None
_lock = threading.Lock()
_names = itertools.count()
TEMPLATE = "memtrace_template"


def server() -> PgServer:
    """The process's test server, started on first use and stopped at exit (with a migrated
    template database, :data:`TEMPLATE`)."""
    global _server
    with _lock:
        if _server is None:
            pg = PgServer()
            atexit.register(pg.destroy)
            pg.init()
            pg.start()
            _make_template(pg)
            _server = pg
        return _server


def _make_template(pg: PgServer) -> None:
    import asyncio

    from pytest_postgresql.janitor import DatabaseJanitor

    from memtrace_core.stores.postgres import PostgresStore

    janitor = DatabaseJanitor(
        user=pg.user, host=pg.host, port=pg.port, dbname=TEMPLATE, as_template=True
    )
    janitor.init()

    async def migrate() -> None:
        store = PostgresStore.from_url(pg.url(TEMPLATE))
        await store.open()
        await store.close()

    # in a thread of its own: the caller may be running an event loop already
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate()).result()


def new_database(*, template: str | None = TEMPLATE) -> str:
    """A fresh database (the migrated template's copy, or an empty one with ``template=None``)
    on the test server; its URL. Dropped by :func:`drop_database` or with the server."""
    from pytest_postgresql.janitor import DatabaseJanitor

    pg = server()
    name = f"t{os.getpid()}_{next(_names)}"
    DatabaseJanitor(
        user=pg.user,
        host=pg.host,
        port=pg.port,
        dbname=name,
        template_dbname=template or "template0",
    ).init()
    return pg.url(name)


def drop_database(url: str) -> None:
    from pytest_postgresql.janitor import DatabaseJanitor

    pg = server()
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    deadline = time.monotonic() + 10
    while True:
        try:
            DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=name).drop()
            return
        except Exception:  # a pool still closing its connections: retry briefly
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def database(*, template: str | None = TEMPLATE) -> Iterator[str]:
    url = new_database(template=template)
    try:
        yield url
    finally:
        drop_database(url)
