"""The auth storage of every store (the ``AuthStore`` protocol, stores/auth.py): orgs and API
keys persisted and read back field by field, the conflict and not-found cases, the bootstrap
that happens once even when raced by several engines, and the auth revision, which every
change that takes access away bumps (revoke, disable, rotate, permissions, expiry, org
delete) and a touch does not. Plus the server's rules over it (``AuthAdmin``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from memtrace_core import (
    AsyncMemtrace,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    aconnect,
)
from memtrace_core.stores.auth import ApiKeyRecord, AuthStore, OrgRecord
from memtrace_server.auth import AuthAdmin, Authenticator, auth_store_of

_seq = itertools.count(1)


def org(oid: str | None = None, name: str = "Acme") -> OrgRecord:
    n = next(_seq)
    return OrgRecord(id=oid or f"org_{n:024x}", name=name, created_at=1_700_000_000_000_000 + n)


def key(org_id: str, name: str = "ci", **fields: Any) -> ApiKeyRecord:
    n = next(_seq)
    values: dict[str, Any] = {
        "id": f"key_{n:024x}",
        "org_id": org_id,
        "name": name,
        "key_hash": f"$2b$04$hash{n}",
        "key_prefix": f"{n:016x}",
        "permissions": ("read", "write"),
        "created_at": 1_700_000_000_000_000 + n,
    }
    return ApiKeyRecord(**(values | fields))


@pytest.fixture
def store(engine: AsyncMemtrace) -> AuthStore:
    auth = auth_store_of(engine)
    assert isinstance(auth, AuthStore)
    return auth


async def test_orgs_are_stored_listed_and_deleted(store: AuthStore) -> None:
    assert await store.list_orgs() == []
    first, second = org(name="Acme"), org(name="Globex ✓")
    await store.create_org(first)
    await store.create_org(second)
    assert await store.get_org(first.id) == first
    assert await store.get_org(second.id) == second
    assert await store.get_org("org_missing") is None
    assert await store.list_orgs() == [first, second]  # oldest first
    with pytest.raises(ConflictError):
        await store.create_org(OrgRecord(first.id, "again", 1))
    assert await store.list_orgs() == [first, second]
    assert await store.delete_org(first.id) is True
    assert await store.delete_org(first.id) is False
    assert await store.list_orgs() == [second]


async def test_api_keys_are_stored_found_updated_and_deleted(store: AuthStore) -> None:
    a, b = org(), org()
    await store.create_org(a)
    await store.create_org(b)
    k1 = key(a.id, "ci", expires_at=1_900_000_000_000_000, permissions=("read",))
    k2 = key(a.id, "deploy", permissions=("read", "write", "admin"))
    k3 = key(b.id, "ci", key_prefix=k1.key_prefix, enabled=False)  # same name, other org
    for k in (k1, k2, k3):
        await store.create_api_key(k)
    assert await store.get_api_key(k1.id) == k1
    assert await store.get_api_key(k3.id) == k3
    assert await store.get_api_key("key_missing") is None
    assert await store.list_api_keys(a.id) == [k1, k2]
    assert await store.list_api_keys(b.id) == [k3]
    assert await store.list_api_keys() == [k1, k2, k3]
    # the verification candidates: every key with the prefix, enabled or not, of any org
    assert sorted(k.id for k in await store.find_api_keys(k1.key_prefix)) == sorted([k1.id, k3.id])
    assert await store.find_api_keys(k2.key_prefix) == [k2]
    assert await store.find_api_keys("0" * 16) == []

    with pytest.raises(ConflictError):
        await store.create_api_key(key(a.id, "ci"))  # names are unique per org
    with pytest.raises(ConflictError):
        await store.create_api_key(key(a.id, "other", id=k1.id))  # ids are unique
    with pytest.raises(NotFoundError):
        await store.create_api_key(key("org_nowhere", "ci"))
    assert await store.list_api_keys() == [k1, k2, k3]

    updated = await store.update_api_key(
        k1.id, key_hash="$2b$04$new", key_prefix="f" * 16, enabled=False, permissions=["admin"]
    )
    expected = ApiKeyRecord(
        **{
            **{f: getattr(k1, f) for f in k1.__dataclass_fields__},
            "key_hash": "$2b$04$new",
            "key_prefix": "f" * 16,
            "enabled": False,
            "permissions": ("admin",),
        }
    )
    assert updated == expected
    assert await store.get_api_key(k1.id) == expected
    assert await store.find_api_keys("f" * 16) == [expected]
    assert await store.find_api_keys(k1.key_prefix) == [k3]
    cleared = await store.update_api_key(k1.id, clear_expiry=True)
    assert cleared is not None
    assert cleared.expires_at is None
    later = await store.update_api_key(k1.id, expires_at=1_950_000_000_000_000)
    assert later is not None
    assert later.expires_at == 1_950_000_000_000_000
    assert await store.update_api_key("key_missing", enabled=True) is None

    await store.touch_api_key(k2.id, 1_800_000_000_000_123)
    touched = await store.get_api_key(k2.id)
    assert touched is not None
    assert touched.last_used_at == 1_800_000_000_000_123

    assert await store.delete_api_key(k2.id) is True
    assert await store.delete_api_key(k2.id) is False
    assert await store.get_api_key(k2.id) is None
    # deleting an org deletes its keys, and only its keys
    assert await store.delete_org(a.id) is True
    assert await store.list_api_keys() == [k3]
    assert await store.get_api_key(k1.id) is None


async def test_the_revision_moves_on_every_access_removal_and_only_then(store: AuthStore) -> None:
    a = org()
    await store.create_org(a)
    k = key(a.id)
    await store.create_api_key(k)
    steps: list[tuple[str, Callable[[], Awaitable[Any]], bool]] = [
        ("touch", lambda: store.touch_api_key(k.id, 1_800_000_000_000_000), False),
        ("disable", lambda: store.update_api_key(k.id, enabled=False), True),
        ("enable", lambda: store.update_api_key(k.id, enabled=True), True),
        ("rotate", lambda: store.update_api_key(k.id, key_hash="$2b$x", key_prefix="e" * 16), True),
        ("permissions", lambda: store.update_api_key(k.id, permissions=["read"]), True),
        ("expiry", lambda: store.update_api_key(k.id, expires_at=1_900_000_000_000_000), True),
        ("clear expiry", lambda: store.update_api_key(k.id, clear_expiry=True), True),
        ("touch again", lambda: store.touch_api_key(k.id, 1_800_000_000_000_001), False),
        ("revoke", lambda: store.delete_api_key(k.id), True),
        ("org delete", lambda: store.delete_org(a.id), True),
    ]
    for name, step, bumps in steps:
        before = await store.auth_revision()
        await step()
        after = await store.auth_revision()
        assert (after > before) if bumps else (after == before), name


async def test_the_revision_is_shared_by_every_engine_on_the_store(
    store: AuthStore, store_url: str
) -> None:
    a = org()
    await store.create_org(a)
    k = key(a.id)
    await store.create_api_key(k)
    other = await aconnect(store_url)
    try:
        remote = auth_store_of(other)
        before = await remote.auth_revision()
        assert before == await store.auth_revision()
        await store.delete_api_key(k.id)
        assert await remote.auth_revision() > before
        assert await remote.get_api_key(k.id) is None
    finally:
        await other.close()


async def test_bootstrap_happens_once_when_raced(store: AuthStore, store_url: str) -> None:
    engines = [await aconnect(store_url) for _ in range(3)]
    try:
        stores = [store, *(auth_store_of(e) for e in engines)]
        attempts = [(s, org(f"org_boot{i}"), i) for i, s in enumerate(stores * 3)]
        won = await asyncio.gather(
            *(s.bootstrap_org(o, key(o.id, "admin")) for s, o, _ in attempts)
        )
        assert sum(won) == 1
        (winner,) = [o for (_, o, _), w in zip(attempts, won, strict=True) if w]
        assert await store.list_orgs() == [winner]
        (admin_key,) = await store.list_api_keys()
        assert admin_key.org_id == winner.id
        assert await store.bootstrap_org(org(), key(winner.id, "admin2")) is False
        assert len(await store.list_api_keys()) == 1
    finally:
        for e in engines:
            await e.close()


async def test_bootstrap_is_refused_once_any_org_exists(store: AuthStore) -> None:
    existing = org()
    await store.create_org(existing)
    other = org()
    assert await store.bootstrap_org(other, key(other.id, "admin")) is False
    assert await store.list_orgs() == [existing]
    assert await store.list_api_keys() == []


async def test_the_servers_rules_work_over_the_store(
    store: AuthStore, engine: AsyncMemtrace
) -> None:
    """AuthAdmin and Authenticator (memtrace_server.auth) over this store: a key created
    authenticates, and is refused once revoked; an org delete purges its memories too."""
    authn = Authenticator(store, cache_seconds=0, revocation_poll_seconds=3600)
    await authn.start()
    try:
        admin = AuthAdmin(store, authn, bcrypt_cost=4)
        created = await admin.create_org("Acme")
        info, secret = await admin.create_key(created.id, "ci")
        principal = await authn.authenticate(secret)
        assert (principal.org_id, principal.key_name) == (created.id, "ci")
        await engine.with_org(created.id).remember("bot", "tenant memory")
        kept = await admin.create_org("Kept")
        await engine.with_org(kept.id).remember("bot", "kept memory")
        await admin.revoke_key(info.id)
        with pytest.raises(AuthenticationError, match="invalid API key"):
            await authn.authenticate(secret)
        assert await admin.delete_org(created.id, engine) == 1
        assert (await engine.with_org(created.id).list_memories()).count == 0
        assert (await engine.with_org(kept.id).list_memories()).count == 1
        assert [o.id for o in await store.list_orgs()] == [kept.id]
    finally:
        await authn.stop()
