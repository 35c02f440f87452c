"""Server configuration: ``memtrace.toml``, then ``MEMTRACE_*`` environment variables, then
command-line flags.

Where the file comes from (the first that applies):

1. the ``path`` argument (``memtrace serve --config PATH``), or the ``MEMTRACE_CONFIG``
   environment variable — an explicit file that does not exist is an error;
2. ``./memtrace.toml``, ``/etc/memtrace/memtrace.toml``, ``~/.memtrace/memtrace.toml`` — the
   first that exists; none at all is fine (defaults apply).

Every key ``section.key`` can be overridden by the environment variable
``MEMTRACE_<SECTION>_<KEY>`` (upper case, e.g. ``MEMTRACE_SERVER_PORT``,
``MEMTRACE_DEDUP_WINDOW_HOURS``), as in the original. Then ``overrides`` (dotted keys such as
``"server.port"``, from CLI flags) win. ``auth.db_path`` / ``MEMTRACE_AUTH_DB_PATH`` (the
original's SQLite path) is accepted as a legacy spelling of ``storage.url = "sqlite:///<path>"``.

Unknown keys in the file, values of the wrong type and values out of range raise
:class:`ConfigError` with a message naming the key and where the value came from. The full list
of keys is in ``docs/configuration.md`` and :data:`KEYS`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtrace_core import EngineConfig, RetentionPolicy
from memtrace_core.errors import ValidationError as CoreValidationError
from memtrace_core.ranking import RankingConfig
from memtrace_core.retention import check_policy, parse_max_age
from memtrace_core.timeutil import parse_time_bound
from memtrace_core.validation import LIMIT_CEILINGS, Limits

#: Searched in this order when no explicit file is given.
SEARCH_PATHS: tuple[str, ...] = (
    "./memtrace.toml",
    "/etc/memtrace/memtrace.toml",
    "~/.memtrace/memtrace.toml",
)
#: Environment variable naming an explicit config file (like ``--config``).
CONFIG_ENV = "MEMTRACE_CONFIG"
#: Internal: the fully resolved configuration as JSON, set by ``memtrace serve`` so that the
#: worker processes it spawns rebuild exactly the same configuration.
RESOLVED_ENV = "MEMTRACE__RESOLVED_CONFIG"

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("console", "json")


class ConfigError(Exception):
    """A configuration problem; the message names the offending key and its source."""


# ------------------------------------------------------------------------------------------------
# The configuration objects


@dataclass(frozen=True)
class ServerSection:
    """``[server]``: where and how the HTTP server listens.

    Timeouts, in seconds: ``header_timeout`` — the request line and headers must arrive within
    this time of the request's first byte (of the connection, for its first request), however
    slowly they trickle; ``body_timeout`` — the longest pause while a body is being received;
    ``read_timeout`` — the whole request, headers and body, must arrive within this time;
    each is a 408 and a closed connection. ``write_timeout`` bounds handling and sending the
    response (503); ``keepalive_timeout`` is how long an idle connection is kept open between
    requests. ``shutdown_timeout`` is how long a graceful shutdown waits for in-flight
    requests;
    ``max_body_bytes`` is the largest request body accepted (413 above it); ``cors_origins`` are
    the origins allowed by CORS (empty: no CORS headers; ``"*"``: any origin); ``ui`` serves
    the memory explorer at ``/ui`` (docs/ui.md)."""

    host: str = "127.0.0.1"
    port: int = 9100
    workers: int = 1
    header_timeout: float = 10
    body_timeout: float = 10
    read_timeout: float = 30
    write_timeout: float = 30
    keepalive_timeout: float = 120
    shutdown_timeout: float = 30
    max_body_bytes: int = 4 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    ui: bool = True
    #: the live stream (``GET /api/v1/memories/stream``): a comment line every
    #: ``stream_heartbeat_seconds`` while idle (at most half ``write_timeout``); a client that
    #: takes no data for ``stream_stall_seconds`` is dropped; at most ``max_streams`` open
    #: streams per worker and ``max_streams_per_key`` per API key (503 beyond); a stream is ended after ``stream_max_seconds`` (the
    #: client resumes with Last-Event-ID: long connections are rebalanced; 0: never)
    stream_heartbeat_seconds: float = 15
    stream_stall_seconds: float = 10
    max_streams: int = 1000
    max_streams_per_key: int = 32
    stream_max_seconds: float = 3600


@dataclass(frozen=True)
class LogSection:
    """``[log]``: ``level`` (debug|info|warning|error|critical), ``format`` (console|json)."""

    level: str = "info"
    format: str = "console"


@dataclass(frozen=True)
class AuthSection:
    """``[auth]``: API-key authentication.

    ``cache_seconds`` is how long a verified key is cached in a process (0 disables the cache);
    ``revocation_poll_seconds`` bounds how long a key revoked by another process keeps working
    here; ``bcrypt_cost`` is the bcrypt work factor of newly created keys."""

    enabled: bool = True
    cache_seconds: float = 300
    revocation_poll_seconds: float = 1.0
    bcrypt_cost: int = 10


@dataclass(frozen=True)
class StorageSection:
    """``[storage]``: the store URL (``sqlite:///relative.db``, ``sqlite:////abs.db``, or any
    scheme a plugin registers)."""

    url: str = "sqlite:///data/memtrace.db"


@dataclass(frozen=True)
class SweepSection:
    """The sweep settings of ``[retention]`` (its ``max_age`` and ``rules`` are the default
    retention policy, in :attr:`EngineConfig.retention`): ``sweep`` runs the sweeper inside
    ``memtrace serve`` (one process at a time holds the store's sweep lease); every
    ``sweep_interval_seconds`` it deletes expired memories and memories past their org's
    retention, ``sweep_batch`` per write transaction, pausing ``sweep_pause_seconds`` between
    batches."""

    sweep: bool = True
    sweep_interval_seconds: float = 60.0
    sweep_batch: int = 50
    sweep_pause_seconds: float = 0.01


@dataclass(frozen=True)
class ServerConfig:
    """The whole server configuration (see :func:`load_config`)."""

    server: ServerSection = field(default_factory=ServerSection)
    log: LogSection = field(default_factory=LogSection)
    auth: AuthSection = field(default_factory=AuthSection)
    storage: StorageSection = field(default_factory=StorageSection)
    engine: EngineConfig = field(default_factory=EngineConfig)
    sweep: SweepSection = field(default_factory=SweepSection)


# ------------------------------------------------------------------------------------------------
# Key table: every key, its type, default and checks


@dataclass(frozen=True)
class KeySpec:
    """One configuration key: ``section.name``, its kind, default and range check."""

    section: str
    name: str
    kind: str  # "int" | "float" | "bool" | "str" | "strlist" | "tables"
    default: Any
    check: Callable[[Any], str | None] | None = None
    help: str = ""

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"MEMTRACE_{self.section.upper()}_{self.name.upper()}"


def _min(lo: float, *, strict: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if strict and not value > lo:
            return f"must be greater than {lo:g}"
        if not strict and not value >= lo:
            return f"must be at least {lo:g}"
        return None

    return check


def _number(value: float) -> str:
    """A bound as written (``67108864``, not ``6.71089e+07``)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _between(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not lo <= value <= hi:
            return f"must be between {_number(lo)} and {_number(hi)}"
        return None

    return check


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value not in choices:
            return f"must be one of {', '.join(choices)}"
        return None

    return check


def _non_empty(value: Any) -> str | None:
    return "must not be empty" if not str(value).strip() else None


_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _store_url(value: Any) -> str | None:
    if not _URL_RE.match(str(value)):
        return "must be a store URL such as sqlite:///data/memtrace.db"
    return None


_ORIGIN_RE = re.compile(r"^https?://[^\s/]+$")


def _origins(value: Any) -> str | None:
    for origin in value:
        if origin != "*" and not _ORIGIN_RE.match(origin):
            return f"{origin!r} is not an origin (expected * or scheme://host[:port])"
    return None


def _time_window(value: Any) -> str | None:
    try:
        parse_time_bound(value, field="since")
    except CoreValidationError as exc:
        return exc.message
    return None


def _max_age(value: Any) -> str | None:
    try:
        parse_max_age(value or None, "max_age")
    except CoreValidationError as exc:
        return exc.message
    return None


def _rules(value: Any) -> str | None:
    try:
        check_policy({"rules": list(value)}, Limits())
    except CoreValidationError as exc:
        return exc.message
    return None


def _kind_of(tp: Any, default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    raise TypeError(f"unsupported config field type {tp!r}")  # pragma: no cover


def _ranking_keys() -> list[KeySpec]:
    specs = []
    positive_ints = {"candidates", "prf_docs", "prf_terms", "proximity_window"}
    for f in dataclasses.fields(RankingConfig):
        default = f.default
        kind = _kind_of(f.type, default)
        check: Callable[[Any], str | None] | None = None
        if f.name in positive_ints:
            check = _min(1)
        elif f.name == "b":
            check = _between(0, 1)
        elif kind in ("int", "float"):
            check = _min(0)
        specs.append(KeySpec("search", f.name, kind, default, check, "ranking knob"))
    return specs


def _limit_keys() -> list[KeySpec]:
    return [
        KeySpec(
            "limits",
            f.name,
            "int",
            f.default,
            _between(1, LIMIT_CEILINGS[f.name]) if f.name in LIMIT_CEILINGS else _min(1),
            "size limit",
        )
        for f in dataclasses.fields(Limits)
    ]


_ENGINE_DEFAULTS = EngineConfig()

#: Every configuration key, in documentation order.
KEYS: tuple[KeySpec, ...] = (
    KeySpec("server", "host", "str", "127.0.0.1", _non_empty, "address to bind"),
    KeySpec("server", "port", "int", 9100, _between(1, 65535), "TCP port"),
    KeySpec("server", "workers", "int", 1, _between(1, 256), "worker processes"),
    KeySpec("server", "header_timeout", "float", 10.0, _min(0, strict=True), "seconds"),
    KeySpec("server", "body_timeout", "float", 10.0, _min(0, strict=True), "seconds"),
    KeySpec("server", "read_timeout", "float", 30.0, _min(0, strict=True), "seconds"),
    KeySpec("server", "write_timeout", "float", 30.0, _min(0, strict=True), "seconds"),
    KeySpec("server", "keepalive_timeout", "float", 120.0, _min(0, strict=True), "seconds"),
    KeySpec("server", "shutdown_timeout", "float", 30.0, _min(0), "seconds"),
    KeySpec("server", "max_body_bytes", "int", 4 * 1024 * 1024, _min(1024), "bytes"),
    KeySpec("server", "cors_origins", "strlist", (), _origins, "allowed CORS origins"),
    KeySpec("server", "ui", "bool", True, None, "serve the memory explorer at /ui"),
    KeySpec("server", "stream_heartbeat_seconds", "float", 15.0, _between(0.05, 3600), "seconds"),
    KeySpec("server", "stream_stall_seconds", "float", 10.0, _between(0.05, 3600), "seconds"),
    KeySpec("server", "max_streams", "int", 1000, _between(1, 1_000_000), "per worker"),
    KeySpec("server", "max_streams_per_key", "int", 32, _between(1, 1_000_000), "per worker"),
    KeySpec("server", "stream_max_seconds", "float", 3600.0, _between(0, 86400 * 7), "0: never"),
    KeySpec("log", "level", "str", "info", _one_of(LOG_LEVELS), "log level"),
    KeySpec("log", "format", "str", "console", _one_of(LOG_FORMATS), "log format"),
    KeySpec("auth", "enabled", "bool", True, None, "require API keys"),
    KeySpec("auth", "cache_seconds", "float", 300.0, _between(0, 86400), "key cache TTL"),
    KeySpec(
        "auth", "revocation_poll_seconds", "float", 1.0, _between(0.05, 60), "revision poll period"
    ),
    KeySpec("auth", "bcrypt_cost", "int", 10, _between(4, 16), "bcrypt work factor"),
    KeySpec("auth", "db_path", "str", None, _non_empty, "legacy: storage.url=sqlite:///<path>"),
    KeySpec("storage", "url", "str", "sqlite:///data/memtrace.db", _store_url, "store URL"),
    KeySpec("dedup", "enabled", "bool", _ENGINE_DEFAULTS.dedup_enabled, None, "reject duplicates"),
    KeySpec(
        "dedup",
        "window_hours",
        "float",
        _ENGINE_DEFAULTS.dedup_window_hours,
        _between(0.001, 24 * 366),
        "dedup window",
    ),
    *_limit_keys(),
    *_ranking_keys(),
    KeySpec("context", "since", "str", _ENGINE_DEFAULTS.context_since, _time_window, "window"),
    KeySpec(
        "context",
        "max_memories",
        "int",
        _ENGINE_DEFAULTS.context_max_memories,
        _between(1, 1000),
        "memories per context",
    ),
    KeySpec("retention", "max_age", "str", "", _max_age, "default retention (empty: forever)"),
    KeySpec("retention", "rules", "tables", (), _rules, "default retention rules"),
    KeySpec("retention", "sweep", "bool", True, None, "run the sweeper in serve"),
    KeySpec("retention", "sweep_interval_seconds", "float", 60.0, _between(0.05, 86400), "seconds"),
    KeySpec("retention", "sweep_batch", "int", 50, _between(1, 100_000), "memories per batch"),
    KeySpec("retention", "sweep_pause_seconds", "float", 0.01, _between(0, 60), "seconds"),
    KeySpec(
        "retention",
        "policy_cache_seconds",
        "float",
        _ENGINE_DEFAULTS.policy_cache_seconds,
        _between(0, 3600),
        "per-process policy cache",
    ),
)

_BY_DOTTED: dict[str, KeySpec] = {spec.dotted: spec for spec in KEYS}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(spec.section for spec in KEYS))


# ------------------------------------------------------------------------------------------------
# Parsing and checking values

#: One source of values: dotted key -> (raw value, where it came from, strict typing?).
_Layer = dict[str, tuple[Any, str, bool]]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(spec: KeySpec, raw: Any, source: str, *, strict: bool = False) -> Any:
    """Check one value. Strings are parsed (environment, flags) unless ``strict`` (a TOML file,
    where a value must already have the right type: ``port = "9100"`` is an error)."""

    def fail(reason: str) -> ConfigError:
        return ConfigError(f"invalid value for {spec.dotted} ({source}): {reason}")

    kind = spec.kind
    value: Any
    if strict and isinstance(raw, str) and kind != "str":
        expected = {"int": "an integer", "float": "a number", "bool": "a boolean"}.get(
            kind, "a list of strings"
        )
        raise fail(f"{raw!r} is a string, expected {expected}")
    if kind == "bool":
        if isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            value = raw.strip().lower() in _TRUE
        else:
            raise fail(f"{raw!r} is not a boolean (use true or false)")
    elif kind == "int":
        if isinstance(raw, bool):
            raise fail(f"{raw!r} is not an integer")
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, str):
            try:
                value = int(raw.strip())
            except ValueError:
                raise fail(f"{raw!r} is not an integer") from None
        else:
            raise fail(f"{raw!r} is not an integer")
    elif kind == "float":
        if isinstance(raw, bool):
            raise fail(f"{raw!r} is not a number")
        if isinstance(raw, (int, float)):
            value = float(raw)
        elif isinstance(raw, str):
            try:
                value = float(raw.strip())
            except ValueError:
                raise fail(f"{raw!r} is not a number") from None
        else:
            raise fail(f"{raw!r} is not a number")
        if not math.isfinite(value):
            raise fail(f"{raw!r} is not a finite number")
    elif kind == "str":
        if not isinstance(raw, str):
            raise fail(f"{raw!r} is not a string")
        value = raw.strip()
    elif kind == "tables":
        # TOML: [[retention.rules]] tables; environment and flags: the same as a JSON array
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip() else []
            except json.JSONDecodeError as exc:
                raise fail(f"not a JSON array of objects ({exc.msg})") from None
        if not isinstance(raw, (list, tuple)) or not all(isinstance(x, Mapping) for x in raw):
            raise fail(f"{raw!r} is not a list of tables")
        value = tuple(dict(x) for x in raw)
    elif kind == "strlist":
        if isinstance(raw, str):
            value = tuple(part.strip() for part in raw.split(",") if part.strip())
        elif isinstance(raw, (list, tuple)) and all(isinstance(x, str) for x in raw):
            value = tuple(x.strip() for x in raw if x.strip())
        else:
            raise fail(f"{raw!r} is not a list of strings")
    else:  # pragma: no cover - programming error
        raise AssertionError(kind)
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise fail(f"{raw!r} {problem}")
    return value


def _flatten_file(data: Mapping[str, Any], source: str) -> _Layer:
    out: _Layer = {}
    for section, table in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section [{section}] in {source} (known: {', '.join(SECTIONS)})"
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"invalid value for {section} ({source}): expected a table")
        for name, value in table.items():
            dotted = f"{section}.{name}"
            if dotted not in _BY_DOTTED:
                known = ", ".join(s.name for s in KEYS if s.section == section)
                raise ConfigError(
                    f"unknown key {dotted} in {source} (known in [{section}]: {known})"
                )
            out[dotted] = (value, source, True)
    return out


def _env_layer(env: Mapping[str, str]) -> _Layer:
    out: _Layer = {}
    for spec in KEYS:
        if spec.env in env:
            out[spec.dotted] = (env[spec.env], spec.env, False)
    return out


def _override_layer(overrides: Mapping[str, Any]) -> _Layer:
    out: _Layer = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        if dotted not in _BY_DOTTED:
            raise ConfigError(f"unknown configuration key {dotted!r}")
        out[dotted] = (value, f"override {dotted}", False)
    return out


def sqlite_url_for_path(path: str) -> str:
    """The store URL of a SQLite file path (relative paths stay relative to the working
    directory): ``data/m.db`` → ``sqlite:///data/m.db``, ``/var/m.db`` → ``sqlite:////var/m.db``."""
    return "sqlite:///" + path


def _apply_legacy(layer: _Layer) -> None:
    """``auth.db_path`` in a layer means ``storage.url = sqlite:///<path>`` in that layer (an
    explicit ``storage.url`` in the same layer wins)."""
    legacy = layer.pop("auth.db_path", None)
    if legacy is None or "storage.url" in layer:
        return
    raw, source, strict = legacy
    path = _convert(_BY_DOTTED["auth.db_path"], raw, source, strict=strict)
    layer["storage.url"] = (sqlite_url_for_path(path), source, strict)


def config_file(path: str | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file :func:`load_config` reads for ``path`` (``--config``), else
    ``MEMTRACE_CONFIG``, else the first of the search paths that exists; None when there is
    none. Raises ConfigError for an explicit file that does not exist."""
    return _find_file(path, os.environ if env is None else env)


def _find_file(path: str | None, env: Mapping[str, str]) -> Path | None:
    explicit = path or env.get(CONFIG_ENV) or None
    if explicit:
        candidate = Path(explicit).expanduser()
        if not candidate.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        return candidate
    for option in SEARCH_PATHS:
        candidate = Path(option).expanduser()
        if candidate.is_file():
            return candidate
    return None


def _read_file(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {file}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror or exc}") from None


def _build(values: Mapping[str, Any]) -> ServerConfig:
    def section(name: str) -> dict[str, Any]:
        return {
            spec.name: values[spec.dotted]
            for spec in KEYS
            if spec.section == name and spec.dotted in values
        }

    server = section("server")
    engine = EngineConfig(
        dedup_enabled=values["dedup.enabled"],
        dedup_window_hours=values["dedup.window_hours"],
        limits=Limits(**section("limits")),
        ranking=RankingConfig(**section("search")),
        context_since=values["context.since"],
        context_max_memories=values["context.max_memories"],
        retention=_default_policy(values["retention.max_age"], values["retention.rules"]),
        policy_cache_seconds=values["retention.policy_cache_seconds"],
    )
    retention = section("retention")
    auth = section("auth")
    auth.pop("db_path", None)
    return ServerConfig(
        server=ServerSection(**server),
        log=LogSection(**section("log")),
        auth=AuthSection(**auth),
        storage=StorageSection(**section("storage")),
        engine=engine,
        sweep=SweepSection(**{k: v for k, v in retention.items() if k.startswith("sweep")}),
    )


def _default_policy(max_age: str, rules: tuple[dict[str, Any], ...]) -> RetentionPolicy | None:
    """``[retention]``'s default policy; None when it keeps everything."""
    if not max_age and not rules:
        return None
    return check_policy({"max_age": max_age or None, "rules": list(rules)}, Limits())


def _resolve(layers: list[_Layer]) -> ServerConfig:
    values: dict[str, Any] = {
        spec.dotted: spec.default for spec in KEYS if spec.dotted != "auth.db_path"
    }
    for layer in layers:
        _apply_legacy(layer)
        for dotted, (raw, source, strict) in layer.items():
            values[dotted] = _convert(_BY_DOTTED[dotted], raw, source, strict=strict)
    return _build(values)


def load_config(
    path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """Load the configuration: defaults < ``memtrace.toml`` < ``MEMTRACE_*`` environment <
    ``overrides`` (dotted keys; ``None`` values are ignored, so CLI flags that were not given can
    be passed as None). ``env`` defaults to ``os.environ``. Raises :class:`ConfigError`."""
    environ: Mapping[str, str] = os.environ if env is None else env
    layers: list[_Layer] = []
    file = _find_file(path, environ)
    if file is not None:
        layers.append(_flatten_file(_read_file(file), str(file)))
    layers.append(_env_layer(environ))
    layers.append(_override_layer(overrides or {}))
    return _resolve(layers)


# ------------------------------------------------------------------------------------------------
# Passing a resolved configuration to worker processes


def config_to_dict(config: ServerConfig) -> dict[str, dict[str, Any]]:
    """The configuration as ``{section: {key: value}}`` with plain JSON/TOML values (the inverse
    of :func:`config_from_dict`)."""
    engine = config.engine
    sections: dict[str, dict[str, Any]] = {
        "server": dataclasses.asdict(config.server),
        "log": dataclasses.asdict(config.log),
        "auth": dataclasses.asdict(config.auth),
        "storage": dataclasses.asdict(config.storage),
        "dedup": {"enabled": engine.dedup_enabled, "window_hours": engine.dedup_window_hours},
        "limits": dataclasses.asdict(engine.limits),
        "search": {
            f.name: getattr(engine.ranking, f.name) for f in dataclasses.fields(RankingConfig)
        },
        "context": {"since": engine.context_since, "max_memories": engine.context_max_memories},
        "retention": {
            "max_age": (engine.retention.max_age or "") if engine.retention else "",
            "rules": [
                r.model_dump(mode="json", exclude_none=True)
                for r in (engine.retention.rules if engine.retention else [])
            ],
            "policy_cache_seconds": engine.policy_cache_seconds,
            **dataclasses.asdict(config.sweep),
        },
    }
    sections["server"]["cors_origins"] = list(config.server.cors_origins)
    return sections


def config_from_dict(data: Mapping[str, Any], *, source: str = "configuration") -> ServerConfig:
    """Build a configuration from ``{section: {key: value}}`` (checked like a file)."""
    return _resolve([_flatten_file(data, source)])


def export_to_env(config: ServerConfig, environ: dict[str, str] | None = None) -> None:
    """Store the resolved configuration in the environment (``MEMTRACE__RESOLVED_CONFIG``) for
    the worker processes that ``memtrace serve`` spawns (see :func:`config_from_env`)."""
    target = os.environ if environ is None else environ
    target[RESOLVED_ENV] = json.dumps(config_to_dict(config), separators=(",", ":"))


def config_from_env(environ: Mapping[str, str] | None = None) -> ServerConfig:
    """The configuration a worker process should use: the snapshot exported by
    :func:`export_to_env` when present, otherwise :func:`load_config` from scratch."""
    source = os.environ if environ is None else environ
    raw = source.get(RESOLVED_ENV)
    if not raw:
        return load_config(env=source)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid {RESOLVED_ENV}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"invalid {RESOLVED_ENV}: expected a JSON object")
    return config_from_dict(data, source=RESOLVED_ENV)


__all__ = [
    "CONFIG_ENV",
    "KEYS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "RESOLVED_ENV",
    "SEARCH_PATHS",
    "AuthSection",
    "ConfigError",
    "KeySpec",
    "LogSection",
    "ServerConfig",
    "ServerSection",
    "StorageSection",
    "SweepSection",
    "config_file",
    "config_from_dict",
    "config_from_env",
    "config_to_dict",
    "export_to_env",
    "load_config",
    "sqlite_url_for_path",
]
