"""Authentication and tenancy administration over a real SQLite file.

Covers the key format, bcrypt + prefix storage, the verification cache, revocation (immediate in
the revoking process, bounded by the poll period in other processes), expiry, disabled keys,
the permission matrix and the org-delete cascade."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memtrace_core import (
    AsyncMemtrace,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PluginRegistry,
    ValidationError,
    aconnect,
)
from memtrace_core.stores.auth import ApiKeyRecord, AuthStore
from memtrace_core.timeutil import now_us
from memtrace_server import auth as auth_module
from memtrace_server.auth import (
    KEY_RE,
    PERMISSIONS,
    AuthAdmin,
    Authenticator,
    KeyInfo,
    Permission,
    Principal,
    anonymous_principal,
    auth_store_of,
    extract_api_key,
    generate_api_key,
    hash_api_key,
    key_lookup_prefix,
    normalize_permissions,
)

COST = 4  # the lowest bcrypt cost: fast tests (the default, 10, is checked once below)


class ManualClock:
    """A clock and a sleep for :class:`Authenticator` that move only when the test says so:
    the poll and cache periods are checked against simulated time, not the machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0
        self.requested: list[float] = []  # every sleep the poller asked for
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._asleep = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.requested.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, fut))
        self._asleep.set()
        await fut

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for target, fut in self._sleepers:
            if target <= self.now and not fut.done():
                fut.set_result(None)
        self._sleepers = [(t, f) for t, f in self._sleepers if not f.done()]
        if not self._sleepers:
            self._asleep.clear()

    async def advance_to_next_wakeup(self) -> None:
        """Move the clock to the end of the earliest pending sleep (waiting for one to begin)."""
        await self._asleep.wait()
        self.advance(min(t for t, _ in self._sleepers) - self.now)


async def _eventually(predicate: Callable[[], bool]) -> None:
    """Yield to the event loop until ``predicate`` holds (pytest-timeout bounds a hang)."""
    while True:
        if predicate():
            return
        await asyncio.sleep(0.001)


async def _refused_after_the_next_poll(
    remote: Authenticator, clock: ManualClock, key: str, revoked_at: float, poll: float
) -> None:
    """``key`` was revoked elsewhere at ``revoked_at``: ``remote`` (started, its clock and
    sleep on ``clock``) accepts it until its poller reads the revision again, refuses it right
    after that read, and the read comes at most ``poll`` after the revocation."""
    reads = remote.stats["revision_reads"]
    assert (await remote.authenticate(key)).key_name == "ci"  # no poll yet: still cached
    assert remote.stats["revision_reads"] == reads
    await clock.advance_to_next_wakeup()
    await _eventually(lambda: remote.stats["revision_reads"] > reads)  # the poller's read
    assert clock() - revoked_at <= poll
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await remote.authenticate(key)


@pytest.fixture
def registry() -> PluginRegistry:
    return PluginRegistry(load_entry_points=False)


async def _open(db_url: str, registry: PluginRegistry) -> AsyncMemtrace:
    engine: AsyncMemtrace = await aconnect(db_url, plugins=registry)
    return engine


@pytest.fixture
async def engine(db_url: str, registry: PluginRegistry) -> AsyncIterator[AsyncMemtrace]:
    mt = await _open(db_url, registry)
    try:
        yield mt
    finally:
        await mt.close()


@pytest.fixture
def store(engine: AsyncMemtrace) -> AuthStore:
    return auth_store_of(engine)


@pytest.fixture
async def authn(store: AuthStore) -> AsyncIterator[Authenticator]:
    auth = Authenticator(store, cache_seconds=300, revocation_poll_seconds=3600)
    await auth.start()
    try:
        yield auth
    finally:
        await auth.stop()


@pytest.fixture
def admin(store: AuthStore, authn: Authenticator) -> AuthAdmin:
    return AuthAdmin(store, authn, bcrypt_cost=COST)


@pytest.fixture
async def org_id(admin: AuthAdmin) -> str:
    return (await admin.create_org("Acme")).id


# ------------------------------------------------------------------------------------------------
# Key format and storage


def test_key_format_matches_the_original() -> None:
    keys = {generate_api_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith("mtk_")
        assert len(key) == 48
        assert key.endswith("=")
        assert KEY_RE.match(key)
        raw = base64.urlsafe_b64decode(key[4:])
        assert len(raw) == 32
        assert "+" not in key
        assert "/" not in key


async def test_key_is_stored_as_bcrypt_hash_with_sha256_prefix(
    admin: AuthAdmin, store: AuthStore, org_id: str, db_url: str, engine: AsyncMemtrace
) -> None:
    info, plaintext = await admin.create_key(org_id, "ci")
    record = await store.get_api_key(info.id)
    assert record is not None
    assert record.key_hash.startswith(f"$2b$0{COST}$")
    assert record.key_prefix == hashlib.sha256(plaintext.encode()).hexdigest()[:16]
    assert record.key_prefix == key_lookup_prefix(plaintext)
    assert record.permissions == ("read", "write")
    assert info.id.startswith("key_")
    assert len(info.id) == 4 + 24
    int(info.id[4:], 16)
    # The plaintext is nowhere on disk (database or WAL).
    await engine.close()
    db_file = Path(db_url.removeprefix("sqlite:///"))
    blobs = b"".join(p.read_bytes() for p in db_file.parent.iterdir() if p.is_file())
    assert plaintext.encode() not in blobs
    assert record.key_hash.encode() in blobs


async def test_default_bcrypt_cost_is_10(store: AuthStore, org_id: str) -> None:
    info, _ = await AuthAdmin(store).create_key(org_id, "default-cost")
    record = await store.get_api_key(info.id)
    assert record is not None
    assert record.key_hash.startswith("$2b$10$")


def test_key_info_never_exposes_secrets() -> None:
    fields = set(KeyInfo.model_fields)
    assert fields == {
        "id",
        "org_id",
        "name",
        "permissions",
        "created_at",
        "expires_at",
        "enabled",
        "last_used_at",
    }


# ------------------------------------------------------------------------------------------------
# Header extraction


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"x-api-key": "mtk_a"}, "mtk_a"),
        ({"X-API-Key": "mtk_a"}, "mtk_a"),
        ({"x-api-key": "mtk_a", "authorization": "Bearer mtk_b"}, "mtk_a"),
        ({"x-api-key": "", "authorization": "Bearer mtk_b"}, "mtk_b"),
        ({"Authorization": "Bearer mtk_b"}, "mtk_b"),
        ({"authorization": "mtk_raw"}, "mtk_raw"),
        ({"authorization": "bearer mtk_c"}, "bearer mtk_c"),  # prefix is case-sensitive
        ({"authorization": "Bearer "}, None),
        ({"x-api-key": "   "}, None),
    ],
)
def test_extract_api_key(headers: dict[str, str], expected: str | None) -> None:
    assert extract_api_key(headers) == expected


# ------------------------------------------------------------------------------------------------
# Verification and cache


async def test_authenticate_valid_key(admin: AuthAdmin, authn: Authenticator, org_id: str) -> None:
    info, key = await admin.create_key(org_id, "ci", ["read"])
    principal = await authn.authenticate(key)
    assert principal == Principal(
        org_id=org_id, key_id=info.id, key_name="ci", permissions=frozenset({"read"})
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "missing API key"),
        ("", "missing API key"),
        ("   ", "missing API key"),
        ("not-a-key", "invalid API key"),
        ("mtk_" + "A" * 43 + "=", "invalid API key"),
        ("mtk_" + "A" * 200 + "=", "invalid API key"),
    ],
)
async def test_authenticate_rejects(authn: Authenticator, key: str | None, message: str) -> None:
    with pytest.raises(AuthenticationError) as exc:
        await authn.authenticate(key)
    assert exc.value.message == message
    assert exc.value.status_code == 401


async def test_wrong_secret_with_same_prefix_is_rejected(
    admin: AuthAdmin, store: AuthStore, authn: Authenticator, org_id: str
) -> None:
    """The prefix is only an index: a row whose prefix matches but whose bcrypt hash does not
    is rejected."""
    info, _key = await admin.create_key(org_id, "ci")
    other = generate_api_key()
    # Point the stored row's prefix at `other`: the lookup finds it, bcrypt must refuse it.
    await store.update_api_key(info.id, key_prefix=key_lookup_prefix(other))
    authn.invalidate()
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await authn.authenticate(other)
    assert authn.stats["bcrypt"] == 1


async def test_cache_avoids_bcrypt(admin: AuthAdmin, authn: Authenticator, org_id: str) -> None:
    _, key = await admin.create_key(org_id, "ci")
    for _ in range(5):
        await authn.authenticate(key)
    assert authn.stats["bcrypt"] == 1
    assert authn.stats["hits"] == 4


async def test_cache_can_be_disabled(store: AuthStore, org_id: str) -> None:
    auth = Authenticator(store, cache_seconds=0)
    _, key = await AuthAdmin(store, auth, bcrypt_cost=COST).create_key(org_id, "ci")
    for _ in range(3):
        await auth.authenticate(key)
    assert auth.stats["bcrypt"] == 3


async def test_cache_entries_expire(store: AuthStore, org_id: str) -> None:
    clock = ManualClock()
    auth = Authenticator(store, cache_seconds=0.2, revocation_poll_seconds=3600, clock=clock)
    _, key = await AuthAdmin(store, auth, bcrypt_cost=COST).create_key(org_id, "ci")
    await auth.authenticate(key)
    clock.advance(0.199)
    await auth.authenticate(key)
    assert auth.stats["bcrypt"] == 1  # still cached just before the period ends
    clock.advance(0.001)
    await auth.authenticate(key)
    assert auth.stats["bcrypt"] == 2  # verified again once it has


async def test_concurrent_misses_share_one_bcrypt(
    admin: AuthAdmin, authn: Authenticator, org_id: str
) -> None:
    _, key = await admin.create_key(org_id, "ci")
    results = await asyncio.gather(*(authn.authenticate(key) for _ in range(20)))
    assert {p.key_name for p in results} == {"ci"}
    assert authn.stats["bcrypt"] == 1


async def test_bcrypt_does_not_block_the_event_loop(
    store: AuthStore, org_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a bcrypt verification is in progress, another task on the event loop runs: the
    verification waits (in its worker thread) until the loop has run a task of the test. Were
    it run on the loop, that task could not run and the verification would report so."""
    auth = Authenticator(store, cache_seconds=0)
    _, key = await AuthAdmin(store, auth, bcrypt_cost=COST).create_key(org_id, "ci")
    in_bcrypt = threading.Event()
    loop_ran = threading.Event()
    seen: list[bool] = []
    real_verify = auth_module.verify_api_key

    def verify(api_key: str, key_hash: str) -> bool:
        in_bcrypt.set()
        seen.append(loop_ran.wait(timeout=30))  # only a deadlock guard: never reached if sound
        return real_verify(api_key, key_hash)

    monkeypatch.setattr(auth_module, "verify_api_key", verify)

    async def other_task() -> None:
        await asyncio.to_thread(in_bcrypt.wait)
        loop_ran.set()

    other = asyncio.create_task(other_task())
    principal = await auth.authenticate(key)
    await other
    assert principal.key_name == "ci"
    assert seen == [True]


async def test_last_used_at_is_recorded(
    admin: AuthAdmin, authn: Authenticator, org_id: str
) -> None:
    info, key = await admin.create_key(org_id, "ci")
    assert (await admin.get_key(info.id)).last_used_at is None
    before = datetime.now(UTC) - timedelta(seconds=1)
    await authn.authenticate(key)
    used = (await admin.get_key(info.id)).last_used_at
    assert used is not None
    assert used >= before


# ------------------------------------------------------------------------------------------------
# Revocation, rotation, disabling, expiry


async def test_revocation_is_immediate_in_process(
    admin: AuthAdmin, authn: Authenticator, org_id: str
) -> None:
    # The poll period is an hour: only the in-process invalidation can make this pass.
    info, key = await admin.create_key(org_id, "ci")
    await authn.authenticate(key)
    await authn.authenticate(key)
    assert authn.stats["hits"] == 1
    await admin.revoke_key(info.id)
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await authn.authenticate(key)
    with pytest.raises(NotFoundError):
        await admin.revoke_key(info.id)
    assert await admin.list_keys(org_id) == []


async def test_revocation_reaches_another_store_instance_within_the_poll_period(
    db_url: str, registry: PluginRegistry, admin: AuthAdmin, org_id: str
) -> None:
    """Two engines on one SQLite file stand for two server processes: a key revoked through
    one is accepted by the other until its poller's next read of the revision, refused right
    after it, and that read comes within ``revocation_poll_seconds`` (of its clock)."""
    poll = 0.3
    clock = ManualClock()
    other_engine = await _open(db_url, registry)
    remote = Authenticator(
        auth_store_of(other_engine), revocation_poll_seconds=poll, clock=clock, sleep=clock.sleep
    )
    # A control with an hour-long poll shows the remote cache really is in play.
    control = Authenticator(auth_store_of(other_engine), revocation_poll_seconds=3600)
    await remote.start()
    await control.start()
    try:
        info, key = await admin.create_key(org_id, "ci")
        await remote.authenticate(key)
        await control.authenticate(key)
        await admin.revoke_key(info.id)
        revoked_at = clock()
        await _refused_after_the_next_poll(remote, clock, key, revoked_at, poll)
        # Still cached in the control (its bound is an hour): the poll is what limits staleness.
        assert (await control.authenticate(key)).key_id == info.id
        assert remote.stats["revision_changes"] == 1
    finally:
        await remote.stop()
        await control.stop()
        await other_engine.close()


async def test_revocation_by_another_os_process(
    db_url: str, admin: AuthAdmin, store: AuthStore, org_id: str
) -> None:
    """The CLI in a separate process revokes the key; this process refuses it from the first
    revision poll after the revocation on, which comes within the poll period."""
    poll = 0.3
    clock = ManualClock()
    remote = Authenticator(store, revocation_poll_seconds=poll, clock=clock, sleep=clock.sleep)
    await remote.start()
    try:
        info, key = await admin.create_key(org_id, "ci")
        await remote.authenticate(key)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "memtrace_server.cli",
            "key",
            "revoke",
            info.id,
            "--store",
            db_url,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "MEMTRACE_CONFIG": ""},
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert f"Key {info.id} revoked" in out.decode()
        await _refused_after_the_next_poll(remote, clock, key, clock(), poll)
    finally:
        await remote.stop()


async def test_poll_bound_holds_without_the_background_task(
    db_url: str, registry: PluginRegistry, admin: AuthAdmin, org_id: str
) -> None:
    """Even if the poller never runs (not started, or starved), a request that finds the
    revision older than the poll period re-reads it: the revoked key is served from the cache
    until exactly ``revocation_poll_seconds`` after the last read, and refused from then on."""
    poll = 0.1
    clock = ManualClock()
    other_engine = await _open(db_url, registry)
    try:
        remote = Authenticator(
            auth_store_of(other_engine), revocation_poll_seconds=poll, clock=clock
        )
        info, key = await admin.create_key(org_id, "ci")
        await remote.authenticate(key)  # reads the revision (at clock 0)
        assert remote.stats["revision_reads"] == 1
        await admin.revoke_key(info.id)
        clock.advance(poll * 0.99)
        assert (await remote.authenticate(key)).key_id == info.id  # stale, but within the bound
        assert remote.stats["revision_reads"] == 1
        clock.advance(poll * 0.01)
        with pytest.raises(AuthenticationError):
            await remote.authenticate(key)
        assert remote.stats["revision_reads"] == 2
        assert remote.stats["revision_changes"] == 1
    finally:
        await other_engine.close()


async def test_rotate_replaces_the_secret(
    admin: AuthAdmin, authn: Authenticator, org_id: str
) -> None:
    info, old = await admin.create_key(org_id, "ci", ["read", "admin"])
    await authn.authenticate(old)
    rotated, new = await admin.rotate_key(info.id)
    assert new != old
    assert KEY_RE.match(new)
    assert (rotated.id, rotated.name, rotated.org_id) == (info.id, "ci", org_id)
    assert rotated.permissions == ["read", "admin"]
    with pytest.raises(AuthenticationError):
        await authn.authenticate(old)
    principal = await authn.authenticate(new)
    assert principal.key_id == info.id
    assert principal.permissions == frozenset({"read", "admin"})
    with pytest.raises(NotFoundError):
        await admin.rotate_key("key_" + "0" * 24)


async def test_disabled_key_is_rejected_until_enabled(
    admin: AuthAdmin, authn: Authenticator, org_id: str
) -> None:
    info, key = await admin.create_key(org_id, "ci")
    await authn.authenticate(key)
    disabled = await admin.set_key_enabled(info.id, False)
    assert disabled.enabled is False
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await authn.authenticate(key)
    await admin.set_key_enabled(info.id, True)
    assert (await authn.authenticate(key)).key_id == info.id


async def test_expired_key_is_rejected_even_when_cached(
    admin: AuthAdmin, authn: Authenticator, org_id: str
) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=0.3)
    info, key = await admin.create_key(org_id, "short", expires_at=expires)
    assert info.expires_at is not None
    await authn.authenticate(key)
    await authn.authenticate(key)  # cached
    assert authn.stats["hits"] == 1
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.02)
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await authn.authenticate(key)


async def test_expired_key_in_store_is_rejected(
    store: AuthStore, authn: Authenticator, org_id: str
) -> None:
    key = generate_api_key()
    await store.create_api_key(
        ApiKeyRecord(
            id="key_" + "a" * 24,
            org_id=org_id,
            name="old",
            key_hash=hash_api_key(key, cost=COST),
            key_prefix=key_lookup_prefix(key),
            permissions=("read",),
            created_at=now_us() - 10_000_000,
            expires_at=now_us() - 1_000_000,
        )
    )
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await authn.authenticate(key)


async def test_expiry_in_the_past_is_refused(admin: AuthAdmin, org_id: str) -> None:
    with pytest.raises(ValidationError, match="future"):
        await admin.create_key(org_id, "x", expires_at=datetime.now(UTC) - timedelta(days=1))


async def test_create_key_owns_defaults_and_parsing(admin: AuthAdmin, org_id: str) -> None:
    """The rules of a new key (default permissions, RFC 3339 expiry, permission types) live in
    AuthAdmin, so the CLI and the HTTP route get the same ones."""
    info, _ = await admin.create_key(org_id, "defaults")
    assert info.permissions == ["read", "write"]
    assert info.expires_at is None
    info, _ = await admin.create_key(org_id, "dated", expires_at="2999-01-02T03:04:05Z")
    assert info.expires_at == datetime(2999, 1, 2, 3, 4, 5, tzinfo=UTC)
    for bad in ("soon", 5, "2001-01-01T00:00:00Z"):
        with pytest.raises(ValidationError) as err:
            await admin.create_key(org_id, "bad", expires_at=bad)  # type: ignore[arg-type]
        assert err.value.field == "expires_at"
    for perms in (5, ["read", 1], {"read": True}):
        with pytest.raises(ValidationError) as err:
            await admin.create_key(org_id, "bad", perms)  # type: ignore[arg-type]
        assert err.value.field == "permissions"
    assert [k.name for k in await admin.list_keys(org_id)][-2:] == ["defaults", "dated"]


# ------------------------------------------------------------------------------------------------
# Permissions


@pytest.mark.parametrize(
    ("granted", "allowed"),
    [
        (["read"], {"read"}),
        (["write"], {"write"}),
        (["read", "write"], {"read", "write"}),
        (["admin"], {"read", "write", "admin"}),
        (["read", "write", "admin"], {"read", "write", "admin"}),
    ],
)
async def test_permission_matrix(
    admin: AuthAdmin, authn: Authenticator, org_id: str, granted: list[str], allowed: set[str]
) -> None:
    _, key = await admin.create_key(org_id, "k", granted)
    principal = await authn.authenticate(key)
    for permission in PERMISSIONS:
        if permission in allowed:
            principal.require(permission)
            assert principal.has(permission)
        else:
            with pytest.raises(PermissionDeniedError) as exc:
                principal.require(permission)
            assert exc.value.status_code == 403
            assert exc.value.message == f"API key lacks the '{permission}' permission"


def test_permission_values() -> None:
    assert [p.value for p in Permission] == ["read", "write", "admin"]
    assert normalize_permissions("write, READ") == ("read", "write")
    assert normalize_permissions(["admin", "read"]) == ("read", "admin")
    with pytest.raises(ValidationError, match="'delete'"):
        normalize_permissions("read,delete")
    with pytest.raises(ValidationError, match="at least one"):
        normalize_permissions("")


def test_anonymous_principal_has_every_permission() -> None:
    principal = anonymous_principal()
    assert principal.org_id == "org_default"
    for permission in PERMISSIONS:
        principal.require(permission)


# ------------------------------------------------------------------------------------------------
# Orgs and keys administration


async def test_key_names_are_unique_per_org_not_globally(admin: AuthAdmin, org_id: str) -> None:
    other = (await admin.create_org("Other")).id
    await admin.create_key(org_id, "ci")
    await admin.create_key(other, "ci")  # same name, another org: fine
    with pytest.raises(ConflictError, match="'ci' already exists"):
        await admin.create_key(org_id, "ci")
    assert [k.name for k in await admin.list_keys(org_id)] == ["ci"]
    assert len(await admin.list_keys()) == 2


async def test_key_for_missing_org_and_bad_names(admin: AuthAdmin, org_id: str) -> None:
    with pytest.raises(NotFoundError, match="org_missing"):
        await admin.create_key("org_missing", "ci")
    with pytest.raises(ValidationError):
        await admin.create_key(org_id, "  ")
    with pytest.raises(ValidationError):
        await admin.create_key(org_id, "x" * 129)
    with pytest.raises(ValidationError):
        await admin.create_org("")


async def test_org_lifecycle(admin: AuthAdmin) -> None:
    first = await admin.create_org("Acme")
    second = await admin.create_org("Globex")
    assert first.id.startswith("org_")
    assert len(first.id) == 28
    assert [o.id for o in await admin.list_orgs()] == [first.id, second.id]
    assert (await admin.get_org(second.id)).name == "Globex"
    with pytest.raises(NotFoundError):
        await admin.get_org("org_nope")


async def test_bootstrap_creates_default_org_and_admin_key_once(
    admin: AuthAdmin, authn: Authenticator
) -> None:
    key = await admin.bootstrap()
    assert key is not None
    assert KEY_RE.match(key)
    principal = await authn.authenticate(key)
    assert principal.org_id == "org_default"
    assert principal.key_name == "admin"
    assert principal.permissions == frozenset(PERMISSIONS)
    assert (await admin.get_org("org_default")).name == "Default"
    assert await admin.bootstrap() is None
    assert len(await admin.list_keys()) == 1


async def test_bootstrap_is_atomic_across_store_instances(
    db_url: str, registry: PluginRegistry, store: AuthStore
) -> None:
    engines = [await _open(db_url, registry) for _ in range(4)]
    try:
        admins = [AuthAdmin(auth_store_of(e), bcrypt_cost=COST) for e in engines]
        keys = await asyncio.gather(*(a.bootstrap() for a in admins))
        assert sum(k is not None for k in keys) == 1
        assert len(await store.list_api_keys()) == 1
        assert len(await store.list_orgs()) == 1
    finally:
        for e in engines:
            await e.close()


async def test_bootstrap_skipped_when_an_org_exists(admin: AuthAdmin, org_id: str) -> None:
    assert await admin.bootstrap() is None
    assert [o.id for o in await admin.list_orgs()] == [org_id]


async def test_org_delete_cascades_to_everything(
    admin: AuthAdmin, authn: Authenticator, engine: AsyncMemtrace, db_url: str, org_id: str
) -> None:
    marker = "zqxjvortcascade"
    other_org = (await admin.create_org("Survivor")).id
    _, key = await admin.create_key(org_id, "ci")
    _, other_key = await admin.create_key(other_org, "ci")
    for org in (org_id, other_org):
        view = engine.with_org(org)
        agent = await view.register_agent(name="bot")
        session = await view.create_session(agent_id=agent.id)
        await view.remember("bot", f"memory {marker} of {org}", session_id=session.id, tags=["t"])
    await authn.authenticate(key)

    deleted = await admin.delete_org(org_id, engine)
    assert deleted == 1

    with pytest.raises(AuthenticationError):
        await authn.authenticate(key)
    with pytest.raises(NotFoundError):
        await admin.get_org(org_id)
    with pytest.raises(NotFoundError):
        await admin.delete_org(org_id, engine)
    gone = engine.with_org(org_id)
    assert (await gone.list_memories()).count == 0
    assert (await gone.search_memories(query=marker)).count == 0
    assert (await gone.list_agents()).count == 0
    assert (await gone.list_sessions()).count == 0
    # Straight from the file: no row of the org is left in any table.
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    try:
        for table in ("memories", "agents", "sessions", "api_keys", "memory_tags"):
            count = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE org_id = ?", (org_id,))
            assert count.fetchone()[0] == 0, table
        assert conn.execute("SELECT COUNT(*) FROM orgs WHERE id = ?", (org_id,)).fetchone()[0] == 0
        fts = conn.execute(
            "SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH ?", (marker,)
        ).fetchone()[0]
        assert fts == 1  # only the survivor's memory
    finally:
        conn.close()
    # The other org is untouched.
    kept = engine.with_org(other_org)
    assert (await kept.list_memories()).count == 1
    assert (await kept.search_memories(query=marker)).count == 1
    assert (await kept.list_agents()).count == 1
    assert (await kept.list_sessions()).count == 1
    assert (await authn.authenticate(other_key)).org_id == other_org


async def test_revision_is_bumped_by_every_access_removal(
    admin: AuthAdmin, store: AuthStore, engine: AsyncMemtrace, org_id: str
) -> None:
    start = await store.auth_revision()
    info, _ = await admin.create_key(org_id, "a")
    revisions = [await store.auth_revision()]
    await admin.set_key_enabled(info.id, False)
    revisions.append(await store.auth_revision())
    await admin.rotate_key(info.id)
    revisions.append(await store.auth_revision())
    await admin.revoke_key(info.id)
    revisions.append(await store.auth_revision())
    await admin.delete_org(org_id, engine)
    revisions.append(await store.auth_revision())
    assert revisions[0] == start
    assert all(b > a for a, b in itertools.pairwise(revisions))


def test_auth_store_of_rejects_stores_without_auth() -> None:
    from memtrace_core import StoreError

    with pytest.raises(StoreError, match="does not support API keys"):
        auth_store_of(object())
