"""The ``memtrace`` command: run the server and administer orgs, API keys and data.

::

    memtrace serve [--host H] [--port P] [--workers N] [--store URL] [--config PATH]
    memtrace mcp [--url URL] [--agent-id ID] [--transport stdio|http] [...]  (docs/mcp.md)
    memtrace org create NAME | list | delete ORG_ID [--yes]
    memtrace key create --name NAME [--org ORG] [--permissions read,write] [--expires 30d|ISO]
    memtrace key list [--org ORG] | revoke KEY_ID | rotate KEY_ID | disable KEY_ID | enable KEY_ID
    memtrace memories list|search WORDS|get ID|tail [--url URL] [--api-key KEY] [filters] [--json]
    memtrace export [--org ORG] [--agent A] [--session S] [-o FILE|-]
    memtrace import [--org ORG] [--no-trailer] FILE|-
    memtrace doctor [STORE_URL] [--fix [--quarantine FILE]] [--json]
    memtrace config
    memtrace version

Every command accepts ``--config PATH`` and ``--store URL`` (default: the configuration's
``storage.url``). The admin commands work directly on the store, so they can run while the
server is running (on SQLite, in another process on the same file): a revoked or rotated key
stops working in the server within ``auth.revocation_poll_seconds``.

Errors print ``error: <message>`` on stderr and exit with status 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from memtrace_core import AsyncMemtrace, MemtraceError
from memtrace_core.engine import DEFAULT_ORG
from memtrace_core.errors import ValidationError
from memtrace_core.plugins import default_registry

from . import __version__
from .auth import PERMISSIONS, AuthAdmin, KeyInfo, OrgInfo, auth_store_of
from .auth import parse_expiry as parse_key_expiry
from .config import ConfigError, ServerConfig, export_to_env, load_config
from .logs import JsonFormatter
from .progress import INTERVAL, Progress, stream_is_terminal

T = TypeVar("T")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error (printed as ``error: <message>``)."""


# ------------------------------------------------------------------------------------------------
# Helpers


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _config(args: argparse.Namespace, **overrides: Any) -> ServerConfig:
    values = {"storage.url": getattr(args, "store", None), **overrides}
    return load_config(getattr(args, "config", None), overrides=values)


def _sqlite_path(url: str) -> str | None:
    if not url.lower().startswith("sqlite:"):
        return None
    from memtrace_core.stores.sqlite import SQLiteStore

    return SQLiteStore.from_url(url).path


def _check_exists(url: str) -> None:
    """Refuse to create a new SQLite file for commands that only make sense on existing data
    (a mistyped --store would otherwise silently create an empty database)."""
    path = _sqlite_path(url)
    if path is not None and not os.path.exists(path):
        raise CliError(
            f"no database at {path} (start the server once with `memtrace serve`, "
            "or pass --store / --config)"
        )


async def _open_engine(config: ServerConfig, org_id: str = DEFAULT_ORG) -> AsyncMemtrace:
    store = default_registry().store_for(config.storage.url)
    engine = AsyncMemtrace(store, config=config.engine, org_id=org_id)
    return await engine.open()


async def _with_admin(
    config: ServerConfig,
    fn: Callable[[AuthAdmin, AsyncMemtrace], Awaitable[T]],
    *,
    must_exist: bool = True,
) -> T:
    if must_exist:
        _check_exists(config.storage.url)
    engine = await _open_engine(config)
    try:
        admin = AuthAdmin(auth_store_of(engine), None, bcrypt_cost=config.auth.bcrypt_cost)
        return await fn(admin, engine)
    finally:
        await engine.close()


def _fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _json_out(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def parse_expiry(text: str, *, now: datetime | None = None) -> datetime:
    """``--expires``: the forms the HTTP ``expires_at`` accepts (one parser,
    :func:`memtrace_server.auth.parse_expiry`): a duration from now (``30d``, ``12h``, ``2w``,
    ``90m``, ``3600s``) or an RFC 3339 / ISO 8601 timestamp (UTC when it has no offset), in the
    future."""
    try:
        return parse_key_expiry(text, now=now)
    except ValidationError as exc:
        raise CliError(exc.message.replace("expires_at", "--expires")) from None


def _key_lines(info: KeyInfo) -> list[str]:
    return [
        f"  id:          {info.id}",
        f"  org:         {info.org_id}",
        f"  name:        {info.name}",
        f"  permissions: {','.join(info.permissions)}",
        f"  expires:     {info.expires_at.isoformat() if info.expires_at else 'never'}",
    ]


def _key_json(info: KeyInfo, plaintext: str | None = None) -> dict[str, Any]:
    data = info.model_dump(mode="json")
    if plaintext is not None:
        data["key"] = plaintext
    return data


# ------------------------------------------------------------------------------------------------
# serve

BANNER_WIDTH = 72


def _print_new_key(args: argparse.Namespace, info: KeyInfo, plaintext: str, title: str) -> None:
    """A new key's plaintext (shown once) and details, as JSON with ``--json``."""
    if args.json:
        _json_out(_key_json(info, plaintext))
    else:
        print(title)
        print(plaintext)
        print("\n".join(_key_lines(info)))


def first_run_banner(api_key: str) -> str:
    """The box printed (to stderr) when ``serve`` creates the first admin key."""
    bar = "=" * BANNER_WIDTH
    return "\n".join(
        [
            "",
            bar,
            "  FIRST RUN: save your admin API key now. It is shown only once and",
            "  cannot be recovered (only its bcrypt hash is stored).",
            "",
            f"    API Key: {api_key}",
            "",
            f"  organization: {DEFAULT_ORG} (Default)    permissions: {','.join(PERMISSIONS)}",
            "  Create more keys with: memtrace key create --name NAME",
            bar,
            "",
        ]
    )


def first_run_record(api_key: str) -> dict[str, Any]:
    """The first-run notice as a log record's fields (printed as one JSON line with JSON
    logs); the key appears once, in ``api_key``."""
    return {
        "message": "FIRST RUN: save your admin API key now. It is shown only once and cannot "
        "be recovered (only its bcrypt hash is stored).",
        "api_key": api_key,
        "org_id": DEFAULT_ORG,
        "permissions": list(PERMISSIONS),
        "hint": "create more keys with: memtrace key create --name NAME",
    }


def _notice(config: ServerConfig, level: str, text: str, fields: dict[str, Any]) -> None:
    """A start-up notice of ``serve`` on stderr: ``text`` with console logs, a JSON log line
    (``fields``, with ``message``) with JSON logs, so that every line is machine-readable."""
    if config.log.format != "json":
        _err(text)
        return
    record = logging.LogRecord(
        "memtrace.cli", logging.getLevelName(level.upper()), __file__, 0, "", None, None
    )
    extra = dict(fields)
    record.msg = extra.pop("message")
    record.__dict__.update(extra)
    _err(JsonFormatter().format(record))


def _check_port(host: str, port: int) -> None:
    """Bind (host, port) as the server will, and release it: a busy port is reported before
    anything else is printed (or the store is touched)."""
    from sanic.server.socket import bind_socket

    try:
        bind_socket(host, port).close()
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


async def _prepare_store(config: ServerConfig) -> str | None:
    """Open the store once in the main process before any worker starts: creates and migrates
    it (so a bad store URL or path is reported cleanly instead of by a dying worker) and, with
    auth enabled, runs the first-run bootstrap. Returns the new admin key, if one was created."""
    if not config.auth.enabled:
        engine = await _open_engine(config)
        await engine.close()
        return None
    return await _with_admin(config, lambda admin, _engine: admin.bootstrap(), must_exist=False)


def _worker_app() -> Any:
    """The app factory run by every Sanic worker process: rebuilds the configuration that
    ``serve`` exported to the environment and builds the app from it."""
    from .app import create_app
    from .config import config_from_env

    return create_app(config_from_env())


def _install_shutdown_fix() -> None:
    """Work around two problems of Sanic's worker manager (25.x):

    * a SIGTERM/SIGINT that arrives after a worker is up but before the manager has seen its
      acknowledgement makes ``wait_for_ack`` spin forever (the shutdown message is re-queued and
      the terminated worker never acknowledges): stop waiting once a shutdown has begun, so the
      manager proceeds to its normal shutdown (joining the workers, which drain in-flight
      requests);
    * ``kill`` (a second signal during shutdown, or a worker that never starts) sends SIGKILL to
      the worker's whole *process group* — which is also the group of ``memtrace serve`` and of
      whatever started it without job control (a supervisor script, a test runner): kill only
      the worker processes;
    * the signal handler itself calls the multiprocessing manager (worker states) — if the
      signal lands while the main loop is in the middle of such a call, the handler's call is
      written into the same connection and both fail (``TypeError: 'NoneType' object is not a
      mapping``, exit status 1): the handler now only records the signal, and the manager's own
      loop starts the shutdown at its next poll (≤ 0.1 s later)."""
    import signal as _signal

    import sanic.mixins.startup as startup
    from sanic.exceptions import ServerKilled
    from sanic.log import error_logger, logger
    from sanic.worker.manager import WorkerManager

    if getattr(getattr(startup, "WorkerManager", None), "_memtrace_fixed", False):
        return

    class _WorkerManager(WorkerManager):
        _memtrace_fixed = True
        _memtrace_signal: str | None = None

        def shutdown_signal(self, signal: int, frame: Any) -> None:
            if self._shutting_down or self._memtrace_signal is not None:
                # a second signal kills, whatever stage the first one's shutdown reached:
                # Sanic's own handler kills only once ``_shutting_down`` is set, which
                # ``shutdown()`` does after terminating the workers, so a second signal in
                # between started a second graceful shutdown instead (seen under load)
                logger.info("Shutdown interrupted. Killing.")
                with contextlib.suppress(ServerKilled):
                    self.kill()
                return
            self._memtrace_signal = _signal.Signals(signal).name

        def _start_requested_shutdown(self) -> bool:
            """Run the deferred shutdown (outside the signal handler); True once shutting down."""
            if self._memtrace_signal is not None and not self._shutting_down:
                logger.info("Received signal %s. Shutting down.", self._memtrace_signal)
                self.monitor_publisher.send(None)
                self.shutdown()  # type: ignore[no-untyped-call]
            return bool(self._shutting_down)

        def _poll_monitor(self) -> Any:
            self._start_requested_shutdown()
            return super()._poll_monitor()

        def wait_for_ack(self) -> None:
            misses = 0
            while not self._all_workers_ack():  # type: ignore[no-untyped-call]
                if self._start_requested_shutdown():
                    return
                if self.monitor_subscriber.poll(0.1):
                    message = self.monitor_subscriber.recv()
                    if message != "__TERMINATE_EARLY__":
                        self.monitor_publisher.send(message)
                        continue
                    misses = self.THRESHOLD
                misses += 1
                if misses > self.THRESHOLD:
                    error_logger.error(
                        "Not all workers acknowledged a successful startup. Shutting down."
                    )
                    self.kill()

        def kill(self) -> None:
            for process in self.processes:
                logger.info("Killing %s [%s]", process.name, process.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, _signal.SIGKILL)
            raise ServerKilled

    setattr(startup, "WorkerManager", _WorkerManager)  # noqa: B010 - not a re-export


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(
        args,
        **{
            "server.host": args.host,
            "server.port": args.port,
            "server.workers": args.workers,
        },
    )
    srv = config.server
    _check_port(srv.host, srv.port)
    key = asyncio.run(_prepare_store(config))
    if key:
        _notice(config, "warning", first_run_banner(key), first_run_record(key))
    if not config.auth.enabled and not _is_loopback(srv.host):
        message = (
            f"auth.enabled is false and the server listens on {srv.host}: "
            "anyone who can reach it can read and write every memory"
        )
        _notice(config, "warning", f"warning: {message}", {"message": message})

    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    export_to_env(config)
    _install_shutdown_fix()
    loader = AppLoader(factory=_worker_app)
    app = loader.load()
    app.prepare(
        host=srv.host,
        port=srv.port,
        workers=srv.workers,
        motd=False,
        access_log=False,
        single_process=False,
    )
    scheme_host = f"[{srv.host}]" if ":" in srv.host else srv.host
    starting = (
        f"memtrace {__version__} starting on http://{scheme_host}:{srv.port} "
        f"(workers: {srv.workers}, store: {config.storage.url}, "
        f"auth: {'on' if config.auth.enabled else 'OFF'})"
    )
    _notice(
        config,
        "info",
        starting,
        {
            "message": starting,
            "url": f"http://{scheme_host}:{srv.port}",
            "workers": srv.workers,
            "auth": config.auth.enabled,
        },
    )
    try:
        Sanic.serve(primary=app, app_loader=loader)
    except OSError as exc:
        raise CliError(f"cannot listen on {srv.host}:{srv.port}: {exc.strerror or exc}") from None
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# org


def cmd_org_create(args: argparse.Namespace) -> int:
    config = _config(args)

    async def run(admin: AuthAdmin, _engine: AsyncMemtrace) -> OrgInfo:
        return await admin.create_org(args.name)

    info = asyncio.run(_with_admin(config, run, must_exist=False))
    if args.json:
        _json_out(info.model_dump(mode="json"))
    else:
        print(f"Organization created\n  id:   {info.id}\n  name: {info.name}")
    return EXIT_OK


def cmd_org_list(args: argparse.Namespace) -> int:
    config = _config(args)
    orgs = asyncio.run(_with_admin(config, lambda admin, _e: admin.list_orgs()))
    if args.json:
        _json_out([o.model_dump(mode="json") for o in orgs])
    elif not orgs:
        print("No organizations.")
    else:
        print(
            _table(
                ("ID", "NAME", "CREATED"), [(o.id, o.name, _fmt_time(o.created_at)) for o in orgs]
            )
        )
    return EXIT_OK


def _confirm(prompt: str) -> bool:
    if not sys.stdin.isatty():
        raise CliError("refusing to delete without confirmation: pass --yes")
    answer = input(f"{prompt} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def cmd_org_delete(args: argparse.Namespace) -> int:
    config = _config(args)

    async def run(admin: AuthAdmin, engine: AsyncMemtrace) -> int | None:
        org = await admin.get_org(args.org_id)
        if not args.yes and not _confirm(
            f"Delete organization {org.id} ({org.name}) with ALL its memories, agents, "
            "sessions and API keys?"
        ):
            return None
        return await admin.delete_org(org.id, engine)

    deleted = asyncio.run(_with_admin(config, run))
    if deleted is None:
        _err("aborted")
        return EXIT_ERROR
    print(f"Organization {args.org_id} deleted ({deleted} memories removed)")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# key


def cmd_key_create(args: argparse.Namespace) -> int:
    config = _config(args)
    expires = parse_expiry(args.expires) if args.expires else None

    async def run(admin: AuthAdmin, _engine: AsyncMemtrace) -> tuple[KeyInfo, str]:
        return await admin.create_key(args.org, args.name, args.permissions, expires)

    info, plaintext = asyncio.run(_with_admin(config, run))
    _print_new_key(args, info, plaintext, "API key created (shown only once — save it now):")
    return EXIT_OK


def cmd_key_list(args: argparse.Namespace) -> int:
    config = _config(args)
    keys = asyncio.run(_with_admin(config, lambda admin, _e: admin.list_keys(args.org)))
    if args.json:
        _json_out([_key_json(k) for k in keys])
    elif not keys:
        print("No API keys.")
    else:
        now = datetime.now(UTC)
        rows = [
            (
                k.id,
                k.org_id,
                k.name,
                ",".join(k.permissions),
                "expired"
                if k.expires_at is not None and k.expires_at <= now
                else ("yes" if k.enabled else "no"),
                _fmt_time(k.created_at),
                _fmt_time(k.expires_at),
                _fmt_time(k.last_used_at),
            )
            for k in keys
        ]
        headers = ("ID", "ORG", "NAME", "PERMS", "ENABLED", "CREATED", "EXPIRES", "LAST USED")
        print(_table(headers, rows))
    return EXIT_OK


def cmd_key_revoke(args: argparse.Namespace) -> int:
    config = _config(args)
    asyncio.run(_with_admin(config, lambda admin, _e: admin.revoke_key(args.key_id)))
    print(f"Key {args.key_id} revoked")
    return EXIT_OK


def cmd_key_rotate(args: argparse.Namespace) -> int:
    config = _config(args)
    info, plaintext = asyncio.run(
        _with_admin(config, lambda admin, _e: admin.rotate_key(args.key_id))
    )
    _print_new_key(
        args,
        info,
        plaintext,
        "API key rotated; the old secret no longer works. New key (shown only once):",
    )
    return EXIT_OK


def _cmd_key_enabled(enabled: bool) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        config = _config(args)
        asyncio.run(
            _with_admin(config, lambda admin, _e: admin.set_key_enabled(args.key_id, enabled))
        )
        print(f"Key {args.key_id} {'enabled' if enabled else 'disabled'}")
        return EXIT_OK

    return run


# ------------------------------------------------------------------------------------------------
# export / import


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    """stdout for ``-``; otherwise a temporary file renamed over ``path`` on success only."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".memtrace-export-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _store_argument(args: argparse.Namespace, url: str | None) -> None:
    """A store URL given as a positional argument (``memtrace export sqlite:///a.db``) is the
    same as ``--store``; giving both is an error."""
    if url is None:
        return
    if "://" not in url:
        raise CliError(f"not a store URL: {url!r} (e.g. sqlite:///memtrace.db, postgresql://…)")
    if getattr(args, "store", None) and args.store != url:
        raise CliError("give the store once: as --store or as the URL argument")
    args.store = url


async def _export_total(engine: AsyncMemtrace, criteria: dict[str, Any]) -> int | None:
    """How many memories an export will write, for its progress bar (an export holds the
    superseded memories too, not the expired ones); None if the store cannot count them."""
    try:
        summary = await engine.summarize_memories(include_superseded=True, tag_limit=1, **criteria)
    except MemtraceError:
        return None
    return summary.count


def cmd_export(args: argparse.Namespace) -> int:
    _store_argument(args, args.url)
    config = _config(args)
    _check_exists(config.storage.url)
    criteria: dict[str, Any] = {}
    if args.agent:
        criteria["agent_id"] = args.agent
    if args.session:
        criteria["session_id"] = args.session

    # a progress line on a terminal's stderr, unless the export itself goes to that terminal
    show = stream_is_terminal(sys.stderr) and not (args.output == "-" and sys.stdout.isatty())

    async def run() -> int:
        engine = await _open_engine(config, args.org)
        try:
            with (
                _output(args.output) as out,
                Progress(f"exporting {args.org}", unit="memories", enabled=show) as progress,
            ):
                if progress.enabled:
                    progress.update(total=await _export_total(engine, criteria), force=True)
                lines = 0
                async for line in engine.iter_export(criteria):
                    out.write(line)
                    lines += 1
                    if line.startswith('{"kind":"memory"'):
                        progress.update(advance=1)
                return lines
        finally:
            await engine.close()

    count = asyncio.run(run()) - 1  # the trailer is not a record
    target = "stdout" if args.output == "-" else args.output
    _err(f"exported {count} records of {args.org} to {target} (and the trailer)")
    return EXIT_OK


def cmd_arc_purge(args: argparse.Namespace) -> int:
    """Remove from Arc the rows of memories that are gone (docs/deployment.md, "Arc")."""
    _store_argument(args, args.url)
    config = _config(args)

    async def run() -> tuple[int, list[str]]:
        engine = await _open_engine(config)
        try:
            store: Any = engine.store
            if not hasattr(store, "arc_orphans"):
                raise CliError(f"not an Arc store: {config.storage.url.split('?', 1)[0]}")
            if args.dry_run:
                return 0, await store.arc_orphans(grace_seconds=args.grace)
            return await store.purge_arc(grace_seconds=args.grace), []
        finally:
            await engine.close()

    purged, orphans = asyncio.run(run())
    if args.dry_run:
        from memtrace_core.stores.arc import where_clauses

        for clause in where_clauses(orphans):
            print(clause)
        _err(
            f"{len(orphans)} rows on Arc belong to no memory; delete them with Arc's delete "
            "API, one WHERE clause (printed above) per call, or run this command without "
            "--dry-run once Arc's delete.enabled is on"
        )
    else:
        _err(f"purged {purged} rows from Arc")
    return EXIT_OK


def _input_lines(path: str, progress: Progress | None = None) -> Iterator[bytes]:
    """The file's lines as bytes (the import decodes each one, so that bad UTF-8 is an error
    naming its line), reporting the bytes read to ``progress`` (of the file's size, when it is
    a regular file: also ``< FILE`` on stdin)."""
    if path == "-":
        stdin: IO[bytes] = sys.stdin.buffer
        yield from _counted(stdin, progress)
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - generator owns the file
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        yield from _counted(fh, progress)


def _counted(fh: IO[bytes], progress: Progress | None) -> Iterator[bytes]:
    if progress is None or not progress.enabled:
        yield from fh
        return
    size: int | None = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        info = os.fstat(fh.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else None
    progress.update(0, total=size, unit="bytes", force=True)
    read = lines = 0
    for line in fh:
        read += len(line)
        lines += 1
        progress.update(read)
        yield line
    progress.update(read, force=True)
    # the file is checked whole before anything is written: what follows is the write phase
    progress.update(0, label=f"importing {lines:,} lines", total=None, unit="", force=True)


async def _tick(progress: Progress) -> None:
    """Redraw ``progress`` (its elapsed time) while a phase without counts runs."""
    while progress.enabled:
        await asyncio.sleep(INTERVAL)
        progress.tick()


def cmd_import(args: argparse.Namespace) -> int:
    # [STORE_URL] [FILE]: `memtrace import postgresql://… < file` reads stdin
    positional = list(args.file)
    if len(positional) > 2:
        raise CliError("import takes at most a store URL and a file")
    url = positional.pop(0) if positional and "://" in positional[0] else None
    if not positional:
        if url is None:
            raise CliError("import needs a file (or - for stdin)")
        positional = ["-"]
    args.file = positional[0]
    _store_argument(args, url)
    config = _config(args)
    if args.file != "-" and not os.path.isfile(args.file):
        raise CliError(f"cannot read {args.file}: no such file")
    org_id = args.org

    async def run(admin: AuthAdmin | None, engine: AsyncMemtrace) -> Any:
        create = False
        if admin is not None and await admin.store.get_org(org_id) is None:
            orgs = await admin.store.list_orgs()
            # On an empty store, org_default is created by the first `memtrace serve` (with its
            # admin key); any other missing org is created so the data can be reached.
            create = org_id != DEFAULT_ORG or bool(orgs)
        # The file is verified before anything is written: a refused file leaves no trace,
        # not even the organization.
        with Progress(f"checking {'stdin' if args.file == '-' else args.file}") as progress:
            ticker = asyncio.create_task(_tick(progress))
            try:
                result = await engine.with_org(org_id).import_jsonl(
                    _input_lines(args.file, progress), require_trailer=not args.no_trailer
                )
            finally:
                ticker.cancel()
        if create and admin is not None:
            name = args.org_name or ("Default" if org_id == DEFAULT_ORG else org_id)
            await admin.create_org(name, org_id=org_id)
            _err(f"created organization {org_id} ({name})")
        return result

    async def main() -> Any:
        engine = await _open_engine(config, org_id)
        try:
            try:
                admin: AuthAdmin | None = AuthAdmin(
                    auth_store_of(engine), None, bcrypt_cost=config.auth.bcrypt_cost
                )
            except MemtraceError:
                admin = None
            return await run(admin, engine)
        finally:
            await engine.close()

    result = asyncio.run(main())
    _err(
        f"imported {result.imported} memories ({result.skipped} already present), "
        f"{result.agents} agents, {result.sessions} sessions into {org_id}"
    )
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    """Scan a store for unreadable rows and index drift (exit 1 if any); ``--fix`` repairs."""
    from memtrace_core.stores import sqlite_doctor

    url = args.url or _config(args).storage.url
    path = _sqlite_path(url)
    if path is None:
        raise CliError(f"memtrace doctor checks SQLite stores only (got {url.split(':', 1)[0]}:)")
    if args.quarantine and not args.fix:
        raise CliError("--quarantine only applies with --fix")
    if args.fix:
        done = sqlite_doctor.repair(path, quarantine=args.quarantine)
        report = sqlite_doctor.scan(path)
        if args.json:
            _json_out({"found": done.to_dict(), "after": report.to_dict()})
        else:
            for line in done.problems():
                print(f"found: {line}")
            for line in done.actions:
                print(f"fixed: {line}")
            for line in report.problems():
                print(f"still: {line}")
            print(
                "no problems left"
                if report.ok
                else f"{len(report.problems())} problems left (not repairable by --fix)"
            )
        return EXIT_OK if report.ok else EXIT_ERROR
    report = sqlite_doctor.scan(path)
    if args.json:
        _json_out(report.to_dict())
    else:
        problems = report.problems()
        for line in problems:
            print(line)
        print(
            f"{path}: no problems found"
            if report.ok
            else f"{len(problems)} problems in {path}; `memtrace doctor {url} --fix` "
            "quarantines and removes unreadable rows and rebuilds the indexes"
        )
    return EXIT_OK if report.ok else EXIT_ERROR


# ------------------------------------------------------------------------------------------------
# retention


def _policy_arg(args: argparse.Namespace) -> dict[str, Any]:
    """The policy of ``retention set``: ``--policy`` (JSON, or @FILE), then ``--max-age``."""
    policy: dict[str, Any] = {}
    if args.policy:
        text = args.policy
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise CliError(f"cannot read {text[1:]}: {exc.strerror or exc}") from None
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"invalid --policy: not JSON ({exc.msg})") from None
        if not isinstance(loaded, dict):
            raise CliError("invalid --policy: expected a JSON object")
        policy = loaded
    if args.max_age is not None:
        policy["max_age"] = args.max_age
    if not policy:
        raise CliError("give --policy JSON (or @FILE) and/or --max-age, or use --clear")
    return policy


def cmd_retention_show(args: argparse.Namespace) -> int:
    config = _config(args)
    _check_exists(config.storage.url)

    async def run() -> dict[str, Any]:
        engine = await _open_engine(config, args.org)
        try:
            return (await engine.get_retention_policy()).model_dump(mode="json")
        finally:
            await engine.close()

    _json_out(asyncio.run(run()))
    return EXIT_OK


def cmd_retention_set(args: argparse.Namespace) -> int:
    config = _config(args)
    _check_exists(config.storage.url)
    policy = None if args.clear else _policy_arg(args)

    async def run() -> dict[str, Any]:
        engine = await _open_engine(config, args.org)
        try:
            if policy is None:
                info = await engine.clear_retention_policy()
            else:
                info = await engine.set_retention_policy(policy)
            return info.model_dump(mode="json")
        finally:
            await engine.close()

    _json_out(asyncio.run(run()))
    _err("servers apply it within [retention] policy_cache_seconds")
    return EXIT_OK


def cmd_retention_apply(args: argparse.Namespace) -> int:
    config = _config(args)
    _check_exists(config.storage.url)

    async def run() -> list[dict[str, Any]]:
        engine = await _open_engine(config, args.org)
        try:
            orgs = await engine.store.memory_orgs() if args.all else [args.org]
            reports = []
            for org_id in orgs:
                report = await engine.with_org(org_id).apply_retention(dry_run=args.dry_run)
                reports.append(report.model_dump(mode="json"))
            return reports
        finally:
            await engine.close()

    reports = asyncio.run(run())
    for report in reports:
        verb = "would delete" if report["dry_run"] else "deleted"
        print(f"{report['org_id']}: {verb} {report['deleted']} memories")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (retention.rules)
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {value!r} as TOML")  # pragma: no cover


def render_toml(config: ServerConfig) -> str:
    """The effective configuration as a memtrace.toml document."""
    from .config import config_to_dict

    out: list[str] = []
    for section, values in config_to_dict(config).items():
        out.append(f"[{section}]")
        out.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        out.append("")
    return "\n".join(out)


def cmd_config(args: argparse.Namespace) -> int:
    config = _config(args)
    print(render_toml(config), end="")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# version


def cmd_mcp(args: argparse.Namespace) -> int:
    from .mcpserver.cli import run

    return run(args)


def cmd_version(args: argparse.Namespace) -> int:
    import platform

    import memtrace_core

    print(
        f"memtrace-server {__version__} (memtrace-core {memtrace_core.__version__}, "
        f"Python {platform.python_version()})"
    )
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# Parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="memtrace.toml to use (default: ./memtrace.toml, /etc/memtrace/, ~/.memtrace/)",
    )
    common.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="store URL, e.g. sqlite:///data/memtrace.db (default: storage.url)",
    )

    parser = argparse.ArgumentParser(
        prog="memtrace",
        description="memtrace: durable, time-ordered memory for AI agents.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", parents=[common], help="run the HTTP server")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 9100)")
    p.add_argument("--workers", type=int, help="worker processes (default 1)")
    p.set_defaults(func=cmd_serve)

    from .mcpserver.cli import add_arguments as add_mcp_arguments

    p = sub.add_parser(
        "mcp",
        help="run the MCP server (stdio, or streamable HTTP with --transport http)",
        description="memtrace memory for MCP clients (Claude Code, Cursor, ...). See docs/mcp.md.",
    )
    add_mcp_arguments(p)
    p.set_defaults(func=cmd_mcp)

    org = sub.add_parser("org", help="manage organizations")
    org_sub = org.add_subparsers(dest="action", metavar="ACTION")
    p = org_sub.add_parser("create", parents=[common], help="create an organization")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_org_create)
    p = org_sub.add_parser("list", parents=[common], help="list organizations")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_org_list)
    p = org_sub.add_parser(
        "delete",
        parents=[common],
        help="delete an organization with all its memories, agents, sessions and keys",
    )
    p.add_argument("org_id")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_org_delete)
    org.set_defaults(func=None, help_parser=org)

    key = sub.add_parser("key", help="manage API keys")
    key_sub = key.add_subparsers(dest="action", metavar="ACTION")
    p = key_sub.add_parser("create", parents=[common], help="create an API key")
    p.add_argument("--org", default=DEFAULT_ORG, help=f"organization (default {DEFAULT_ORG})")
    p.add_argument("--name", required=True, help="key name (unique in the organization)")
    p.add_argument(
        "--permissions", default="read,write", help="comma-separated: read, write, admin"
    )
    p.add_argument(
        "--expires", help="expiry: a duration (30d, 12h, 2w, 90m, 3600s) or an RFC 3339 timestamp"
    )
    p.add_argument("--json", action="store_true", help="print JSON (includes the key)")
    p.set_defaults(func=cmd_key_create)
    p = key_sub.add_parser("list", parents=[common], help="list API keys")
    p.add_argument("--org", help="only this organization")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_key_list)
    p = key_sub.add_parser("revoke", parents=[common], help="delete an API key")
    p.add_argument("key_id")
    p.set_defaults(func=cmd_key_revoke)
    p = key_sub.add_parser("rotate", parents=[common], help="give an API key a new secret")
    p.add_argument("key_id")
    p.add_argument("--json", action="store_true", help="print JSON (includes the key)")
    p.set_defaults(func=cmd_key_rotate)
    p = key_sub.add_parser("disable", parents=[common], help="disable an API key")
    p.add_argument("key_id")
    p.set_defaults(func=_cmd_key_enabled(False))
    p = key_sub.add_parser("enable", parents=[common], help="re-enable a disabled API key")
    p.add_argument("key_id")
    p.set_defaults(func=_cmd_key_enabled(True))
    key.set_defaults(func=None, help_parser=key)

    from .cli_memories import add_parsers as add_memories_parsers

    add_memories_parsers(sub)

    p = sub.add_parser("export", parents=[common], help="export an org's data as JSON Lines")
    p.add_argument(
        "url",
        nargs="?",
        metavar="STORE_URL",
        help="the store to export (as --store; default: the configured store)",
    )
    p.add_argument("--org", default=DEFAULT_ORG, help=f"organization (default {DEFAULT_ORG})")
    p.add_argument("--agent", help="only this agent's memories")
    p.add_argument("--session", help="only this session's memories")
    p.add_argument("-o", "--output", default="-", help="output file (default: - for stdout)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "arc-purge",
        parents=[common],
        help="delete from Arc the rows of deleted memories (the Arc store)",
    )
    p.add_argument(
        "url", nargs="?", metavar="STORE_URL", help="the Arc store (default: the configured store)"
    )
    p.add_argument(
        "--grace",
        type=float,
        default=None,
        help="only rows spooled at least this many seconds ago (default: the URL's "
        "purge_grace_seconds, 3600)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the WHERE clauses for Arc's delete API instead of deleting",
    )
    p.set_defaults(func=cmd_arc_purge)

    p = sub.add_parser("import", parents=[common], help="import JSON Lines into an org")
    p.add_argument(
        "file",
        nargs="+",
        metavar="[STORE_URL] FILE",
        help="the store to import into (as --store; default: the configured store), then the "
        "JSON Lines file, or - for stdin (the default when a store URL is given)",
    )
    p.add_argument("--org", default=DEFAULT_ORG, help=f"organization (default {DEFAULT_ORG})")
    p.add_argument("--org-name", help="name for the organization if the import creates it")
    p.add_argument(
        "--no-trailer",
        action="store_true",
        help="accept a file without the export trailer (written before exports had one); "
        "by default such a file is refused as possibly truncated",
    )
    p.set_defaults(func=cmd_import)

    ret = sub.add_parser("retention", help="show, set or apply an org's retention policy")
    ret_sub = ret.add_subparsers(dest="action", metavar="ACTION")
    p = ret_sub.add_parser("show", parents=[common], help="print the effective policy (JSON)")
    p.add_argument("--org", default=DEFAULT_ORG, help=f"organization (default {DEFAULT_ORG})")
    p.set_defaults(func=cmd_retention_show)
    p = ret_sub.add_parser(
        "set",
        parents=[common],
        help="set the org's own policy (it wins over [retention] of memtrace.toml)",
        description='Examples: --max-age 90d; --policy \'{"max_age": "30d", "rules": '
        '[{"memory_types": ["session"], "max_age": "7d"}, {"memory_types": ["decision"], '
        '"max_age": "forever"}]}\'; --policy @policy.json; --clear.',
    )
    p.add_argument("--org", default=DEFAULT_ORG, help=f"organization (default {DEFAULT_ORG})")
    p.add_argument("--policy", help="the policy as JSON, or @FILE")
    p.add_argument("--max-age", help="default age (12h, 7d, 2w …, or forever)")
    p.add_argument("--clear", action="store_true", help="remove the org's own policy")
    p.set_defaults(func=cmd_retention_set)
    p = ret_sub.add_parser(
        "apply", parents=[common], help="delete memories past their age now (as the sweep does)"
    )
    p.add_argument("--org", default=DEFAULT_ORG, help=f"organization (default {DEFAULT_ORG})")
    p.add_argument("--all", action="store_true", help="every org that has memories")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    p.set_defaults(func=cmd_retention_apply)
    ret.set_defaults(func=None, help_parser=ret)

    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="check a store for unreadable rows and index drift (exit 1 if any)",
        description="Scan a SQLite store: rows that reads skip (invalid JSON, times out of "
        "range, wrong types) and full-text / tag index drift. With --fix: write the unreadable "
        "rows to a quarantine file (JSON Lines), delete them, repair memory_tags and rebuild "
        "the full-text indexes. Exit status 0 when the store is (now) clean, 1 otherwise.",
    )
    p.add_argument("url", nargs="?", metavar="STORE_URL", help="default: --store / storage.url")
    p.add_argument("--fix", action="store_true", help="repair what was found")
    p.add_argument(
        "--quarantine",
        metavar="FILE",
        help="with --fix: where to save removed rows (default: <db>.quarantine-<time>.jsonl)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("config", parents=[common], help="print the effective configuration as TOML")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("version", help="print versions")
    p.set_defaults(func=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``memtrace`` console script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        help_parser: argparse.ArgumentParser = getattr(args, "help_parser", None) or parser
        help_parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(func(args))
    except (CliError, ConfigError) as exc:
        _err(f"error: {exc}")
    except MemtraceError as exc:
        _err(f"error: {exc.message}")
    except OSError as exc:
        _err(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    # ``python -m memtrace_server.cli`` runs this file as __main__: run the package's module
    # instead, whose classes (CliError) the command modules importing it raise
    from memtrace_server.cli import main as _main

    sys.exit(_main())
