"""Configuration: memtrace.toml discovery, MEMTRACE_* environment overrides, CLI overrides,
legacy keys, and errors that name the offending key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from memtrace_core.ranking import RankingConfig
from memtrace_core.validation import Limits
from memtrace_server import config as config_module
from memtrace_server.config import (
    KEYS,
    RESOLVED_ENV,
    AuthSection,
    ConfigError,
    LogSection,
    ServerConfig,
    ServerSection,
    StorageSection,
    config_from_dict,
    config_from_env,
    config_to_dict,
    export_to_env,
    load_config,
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every test in an empty directory, with search paths confined to tmp_path."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(
        config_module,
        "SEARCH_PATHS",
        ("./memtrace.toml", str(tmp_path / "etc" / "memtrace.toml"), str(tmp_path / "home.toml")),
    )
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file() -> None:
    cfg = load_config(env={})
    assert cfg.server == ServerSection()
    assert cfg.server.host == "127.0.0.1"
    assert cfg.server.port == 9100
    assert cfg.server.workers == 1
    assert cfg.server.max_body_bytes == 4 * 1024 * 1024
    assert cfg.server.cors_origins == ()
    assert cfg.log == LogSection(level="info", format="console")
    assert cfg.auth == AuthSection()
    assert cfg.auth.enabled is True
    assert cfg.auth.revocation_poll_seconds == 1.0
    assert cfg.storage == StorageSection(url="sqlite:///data/memtrace.db")
    assert cfg.engine.dedup_enabled is True
    assert cfg.engine.dedup_window_hours == 24
    assert cfg.engine.limits == Limits()
    assert cfg.engine.ranking == RankingConfig()


def test_sections_are_frozen() -> None:
    cfg = load_config(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.server.port = 1  # type: ignore[misc]


def test_full_file_is_read(isolated: Path) -> None:
    write(
        Path("memtrace.toml"),
        """
[server]
host = "0.0.0.0"
port = 9200
workers = 3
read_timeout = 5
write_timeout = 7.5
shutdown_timeout = 12
max_body_bytes = 65536
cors_origins = ["https://app.example.com", "http://localhost:3000"]

[log]
level = "debug"
format = "json"

[auth]
enabled = false
cache_seconds = 10
revocation_poll_seconds = 0.5
bcrypt_cost = 12

[storage]
url = "sqlite:////var/lib/memtrace/m.db"

[dedup]
enabled = false
window_hours = 2

[limits]
max_content_bytes = 1000
max_metadata_bytes = 2000
max_payload_bytes = 4096
max_payload_depth = 7
max_tags = 5
max_batch = 50

[search]
candidates = 99
k1 = 1.5
b = 0.25
prf = false

[context]
since = "7d"
max_memories = 250
""",
    )
    cfg = load_config(env={})
    assert cfg.server == ServerSection(
        host="0.0.0.0",
        port=9200,
        workers=3,
        read_timeout=5,
        write_timeout=7.5,
        shutdown_timeout=12,
        max_body_bytes=65536,
        cors_origins=("https://app.example.com", "http://localhost:3000"),
    )
    assert cfg.log == LogSection(level="debug", format="json")
    assert cfg.auth == AuthSection(
        enabled=False, cache_seconds=10, revocation_poll_seconds=0.5, bcrypt_cost=12
    )
    assert cfg.storage.url == "sqlite:////var/lib/memtrace/m.db"
    engine = cfg.engine
    assert engine.dedup_enabled is False
    assert engine.dedup_window_hours == 2
    assert engine.limits == dataclasses.replace(
        Limits(),
        max_content_bytes=1000,
        max_metadata_bytes=2000,
        max_payload_bytes=4096,
        max_payload_depth=7,
        max_tags=5,
        max_batch=50,
    )
    assert engine.ranking == dataclasses.replace(
        RankingConfig(), candidates=99, k1=1.5, b=0.25, prf=False
    )
    assert engine.context_since == "7d"
    assert engine.context_max_memories == 250


def test_every_ranking_field_is_a_search_key() -> None:
    names = {spec.name for spec in KEYS if spec.section == "search"}
    assert names == {f.name for f in dataclasses.fields(RankingConfig)}
    # ...and each one really reaches the engine config (generic, not a hand-kept list).
    for f in dataclasses.fields(RankingConfig):
        default = getattr(RankingConfig(), f.name)
        if isinstance(default, bool):
            value: object = not default
        elif isinstance(default, int):
            value = default + 1
        else:
            value = round(min(default + 0.125, 1.0) if f.name == "b" else default + 0.125, 4)
            if value == default:
                value = default - 0.125
        cfg = load_config(env={}, overrides={f"search.{f.name}": value})
        assert getattr(cfg.engine.ranking, f.name) == value, f.name


def test_search_order_cwd_then_etc_then_home(isolated: Path) -> None:
    write(isolated / "home.toml", "[server]\nport = 3\n")
    assert load_config(env={}).server.port == 3
    write(isolated / "etc" / "memtrace.toml", "[server]\nport = 2\n")
    assert load_config(env={}).server.port == 2
    write(Path("memtrace.toml"), "[server]\nport = 1\n")
    assert load_config(env={}).server.port == 1


def test_explicit_path_wins_and_must_exist(isolated: Path) -> None:
    write(Path("memtrace.toml"), "[server]\nport = 1\n")
    explicit = write(isolated / "custom.toml", "[server]\nport = 4\n")
    assert load_config(str(explicit), env={}).server.port == 4
    assert load_config(env={"MEMTRACE_CONFIG": str(explicit)}).server.port == 4
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.toml"):
        load_config(str(isolated / "nope.toml"), env={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(env={"MEMTRACE_CONFIG": str(isolated / "nope.toml")})


def test_env_overrides_file_and_overrides_win(isolated: Path) -> None:
    write(Path("memtrace.toml"), "[server]\nport = 1000\nhost = '10.0.0.1'\n[log]\nformat='json'\n")
    env = {
        "MEMTRACE_SERVER_PORT": "2000",
        "MEMTRACE_DEDUP_WINDOW_HOURS": "6",
        "MEMTRACE_LOG_FORMAT": "console",
        "MEMTRACE_AUTH_ENABLED": "false",
        "MEMTRACE_STORAGE_URL": "sqlite:///env.db",
        "MEMTRACE_SEARCH_PRF": "0",
        "MEMTRACE_LIMITS_MAX_TAGS": "7",
        "MEMTRACE_SERVER_CORS_ORIGINS": "https://a.example, https://b.example",
        "MEMTRACE_UNRELATED_THING": "ignored",
    }
    cfg = load_config(env=env)
    assert cfg.server.port == 2000
    assert cfg.server.host == "10.0.0.1"  # from the file
    assert cfg.engine.dedup_window_hours == 6
    assert cfg.log.format == "console"
    assert cfg.auth.enabled is False
    assert cfg.storage.url == "sqlite:///env.db"
    assert cfg.engine.ranking.prf is False
    assert cfg.engine.limits.max_tags == 7
    assert cfg.server.cors_origins == ("https://a.example", "https://b.example")
    cfg = load_config(
        env=env,
        overrides={"server.port": 3000, "storage.url": "sqlite:///flag.db", "server.host": None},
    )
    assert cfg.server.port == 3000
    assert cfg.storage.url == "sqlite:///flag.db"
    assert cfg.server.host == "10.0.0.1"  # None means "flag not given"


def test_default_env_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMTRACE_SERVER_WORKERS", "5")
    assert load_config().server.workers == 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MEMTRACE_SERVER_PORT": "abc"},
            "invalid value for server.port (MEMTRACE_SERVER_PORT): 'abc' is not an integer",
        ),
        (
            {"MEMTRACE_SERVER_PORT": "0"},
            "server.port (MEMTRACE_SERVER_PORT): '0' must be between 1",
        ),
        ({"MEMTRACE_SERVER_PORT": "65536"}, "server.port"),
        ({"MEMTRACE_SERVER_WORKERS": "0"}, "server.workers (MEMTRACE_SERVER_WORKERS)"),
        ({"MEMTRACE_SERVER_READ_TIMEOUT": "-1"}, "server.read_timeout"),
        ({"MEMTRACE_SERVER_READ_TIMEOUT": "nan"}, "server.read_timeout"),
        ({"MEMTRACE_SERVER_HOST": " "}, "server.host"),
        ({"MEMTRACE_SERVER_MAX_BODY_BYTES": "10"}, "server.max_body_bytes"),
        ({"MEMTRACE_SERVER_CORS_ORIGINS": "example.com"}, "server.cors_origins"),
        ({"MEMTRACE_LOG_LEVEL": "verbose"}, "log.level (MEMTRACE_LOG_LEVEL)"),
        ({"MEMTRACE_LOG_FORMAT": "xml"}, "log.format (MEMTRACE_LOG_FORMAT): 'xml' must be one of"),
        (
            {"MEMTRACE_AUTH_ENABLED": "maybe"},
            "auth.enabled (MEMTRACE_AUTH_ENABLED): 'maybe' is not a boolean",
        ),
        ({"MEMTRACE_AUTH_CACHE_SECONDS": "-5"}, "auth.cache_seconds"),
        ({"MEMTRACE_AUTH_REVOCATION_POLL_SECONDS": "0"}, "auth.revocation_poll_seconds"),
        ({"MEMTRACE_AUTH_BCRYPT_COST": "3"}, "auth.bcrypt_cost"),
        ({"MEMTRACE_STORAGE_URL": "data/memtrace.db"}, "storage.url (MEMTRACE_STORAGE_URL)"),
        ({"MEMTRACE_DEDUP_WINDOW_HOURS": "-1"}, "dedup.window_hours"),
        ({"MEMTRACE_LIMITS_MAX_BATCH": "0"}, "limits.max_batch"),
        ({"MEMTRACE_SEARCH_B": "2"}, "search.b (MEMTRACE_SEARCH_B)"),
        ({"MEMTRACE_SEARCH_CANDIDATES": "0"}, "search.candidates"),
        ({"MEMTRACE_SEARCH_K1": "-0.1"}, "search.k1"),
        ({"MEMTRACE_CONTEXT_SINCE": "yesterday"}, "context.since (MEMTRACE_CONTEXT_SINCE)"),
        ({"MEMTRACE_CONTEXT_MAX_MEMORIES": "5000"}, "context.max_memories"),
    ],
)
def test_bad_env_values_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(env=env)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nprot = 1\n", "unknown key server.prot in"),
        ("[serve]\nport = 1\n", "unknown section [serve]"),
        ("[server]\nport = '9100'\n", "invalid value for server.port"),
        ("[server]\nport = true\n", "server.port"),
        ("[auth]\nenabled = 'yes'\n", "auth.enabled"),
        ("[server]\nhost = 1\n", "server.host"),
        ("[server]\ncors_origins = 'https://x.example'\n", "server.cors_origins"),
        ("[server]\ncors_origins = [1]\n", "server.cors_origins"),
        ("server = 1\n", "server"),
        ("[server\nport=1", "invalid TOML in"),
    ],
)
def test_bad_file_values_name_the_key(toml: str, message: str) -> None:
    path = write(Path("memtrace.toml"), toml)
    with pytest.raises(ConfigError) as exc:
        load_config(env={})
    assert message in str(exc.value)
    if "TOML" not in message and "section" not in message:
        assert str(path.name) in str(exc.value)


def test_toml_numbers_are_strict_but_ints_are_accepted_for_floats() -> None:
    write(Path("memtrace.toml"), "[dedup]\nwindow_hours = 3\n[server]\nread_timeout = 2\n")
    cfg = load_config(env={})
    assert cfg.engine.dedup_window_hours == 3.0
    assert cfg.server.read_timeout == 2.0
    write(Path("memtrace.toml"), "[server]\nworkers = 2.5\n")
    with pytest.raises(ConfigError, match=r"server\.workers"):
        load_config(env={})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("1", True),
        ("YES", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("off", False),
    ],
)
def test_env_booleans(raw: str, expected: bool) -> None:
    assert load_config(env={"MEMTRACE_DEDUP_ENABLED": raw}).engine.dedup_enabled is expected


def test_unknown_override_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"server\.prot"):
        load_config(env={}, overrides={"server.prot": 1})
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_config(env={}, overrides={"server.port": "x"})


def test_legacy_auth_db_path(isolated: Path) -> None:
    write(Path("memtrace.toml"), "[auth]\ndb_path = './data/legacy.db'\n")
    assert load_config(env={}).storage.url == "sqlite:///./data/legacy.db"
    # The original's env variable, with an absolute path.
    cfg = load_config(env={"MEMTRACE_AUTH_DB_PATH": "/srv/memtrace/memtrace.db"})
    assert cfg.storage.url == "sqlite:////srv/memtrace/memtrace.db"
    # storage.url in the same layer wins over the legacy key ...
    write(
        Path("memtrace.toml"),
        "[auth]\ndb_path = 'legacy.db'\n[storage]\nurl = 'sqlite:///modern.db'\n",
    )
    assert load_config(env={}).storage.url == "sqlite:///modern.db"
    # ... and a later layer wins over an earlier one, whichever spelling it uses.
    assert load_config(env={"MEMTRACE_AUTH_DB_PATH": "env.db"}).storage.url == "sqlite:///env.db"
    assert (
        load_config(
            env={"MEMTRACE_AUTH_DB_PATH": "env.db"}, overrides={"storage.url": "sqlite:///flag.db"}
        ).storage.url
        == "sqlite:///flag.db"
    )


def test_snapshot_round_trip_for_workers() -> None:
    cfg = load_config(
        env={
            "MEMTRACE_SERVER_PORT": "9300",
            "MEMTRACE_SERVER_WORKERS": "4",
            "MEMTRACE_SERVER_CORS_ORIGINS": "*",
            "MEMTRACE_AUTH_REVOCATION_POLL_SECONDS": "0.25",
            "MEMTRACE_SEARCH_K1": "1.7",
            "MEMTRACE_LIMITS_MAX_QUERY_CHARS": "99",
            "MEMTRACE_CONTEXT_SINCE": "2026-01-01T00:00:00Z",
        }
    )
    assert config_from_dict(config_to_dict(cfg)) == cfg
    environ: dict[str, str] = {}
    export_to_env(cfg, environ)
    assert RESOLVED_ENV in environ
    # Other MEMTRACE_* variables do not change a snapshot: workers get exactly what serve had.
    environ["MEMTRACE_SERVER_PORT"] = "1"
    rebuilt = config_from_env(environ)
    assert rebuilt == cfg
    assert isinstance(rebuilt, ServerConfig)
    assert rebuilt.engine.limits.max_query_chars == 99


def test_config_from_env_without_snapshot_loads_normally() -> None:
    assert config_from_env({"MEMTRACE_SERVER_PORT": "9400"}).server.port == 9400
    with pytest.raises(ConfigError, match=RESOLVED_ENV):
        config_from_env({RESOLVED_ENV: "{not json"})


def test_every_key_has_a_distinct_env_name() -> None:
    names = [spec.env for spec in KEYS]
    assert len(names) == len(set(names))
    assert "MEMTRACE_SERVER_PORT" in names
    assert "MEMTRACE_DEDUP_WINDOW_HOURS" in names
    assert "MEMTRACE_AUTH_DB_PATH" in names


@pytest.mark.parametrize(
    ("key", "value", "ceiling"),
    [
        ("MAX_JSON_DEPTH", "250", 200),
        ("MAX_TAGS", "5000", 200),
        ("MAX_FILTER_VALUES", "2000", 1000),
        ("MAX_PAYLOAD_DEPTH", "201", 200),
        ("MAX_PAYLOAD_BYTES", str(64 * 1024 * 1024 + 1), 64 * 1024 * 1024),
    ],
)
def test_limits_that_would_break_reads_are_refused(key: str, value: str, ceiling: int) -> None:
    """A configured limit above its ceiling would let a write in that no read path can serve
    (JSON deeper than the reads serialise) or no query can run (a tag filter past SQLite's
    expression depth): startup refuses it, naming the key."""
    with pytest.raises(ConfigError) as exc:
        load_config(env={f"MEMTRACE_LIMITS_{key}": value})
    assert f"limits.{key.lower()}" in str(exc.value)
    assert f"{ceiling}" in str(exc.value)
    assert load_config(env={f"MEMTRACE_LIMITS_{key}": str(ceiling)})  # the ceiling itself is fine
    with pytest.raises(ValueError, match=key.lower()):
        Limits(**{key.lower(): ceiling + 1})
