"""API-key authentication, permissions and tenancy administration.

**Keys** have the original's format: ``mtk_`` + URL-safe base64 (padded) of 32 random bytes,
48 characters in all. Only a bcrypt hash is stored, plus the first 16 hex characters of the
key's SHA-256 as a lookup index (``key_prefix``); the plaintext is shown once, at creation.

**Verification** (:class:`Authenticator`): a verified key is cached in the process, keyed by the
SHA-256 of the key, for ``cache_seconds``; on a miss the store returns the rows with the key's
prefix and each is compared with bcrypt in a worker thread (bcrypt is deliberately slow and must
not block the event loop). Concurrent misses for one key share one verification. Unknown,
disabled and expired keys are all answered with ``invalid API key``.

**Revocation is bounded.** Every change that takes access away (revoke, disable, rotate, change
of permissions or expiry, org deletion) bumps a persistent *auth revision* in the store, in the
same transaction. Each cache entry remembers the revision it was verified under and is used only
while that is still the latest revision known, and the known revision is never older than
``revocation_poll_seconds``: a background task polls it, and a request that finds the last poll
too old reads it itself. So a revoked key stops working immediately in the process that revoked
it (:class:`AuthAdmin` invalidates its authenticator) and within ``revocation_poll_seconds``
(1 s by default) in every other worker and process sharing the store.

**Permissions**: ``read``, ``write``, ``admin``; ``admin`` implies the other two.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import bcrypt
from pydantic import BaseModel

from memtrace_core import AsyncMemtrace, AuthenticationError, PermissionDeniedError
from memtrace_core.engine import DEFAULT_ORG
from memtrace_core.errors import ConflictError, NotFoundError, StoreError, ValidationError
from memtrace_core.ids import random_id
from memtrace_core.stores.auth import ApiKeyRecord, AuthStore, OrgRecord
from memtrace_core.timeutil import from_us, now_us, parse_relative, parse_timestamp, to_us

log = logging.getLogger("memtrace.auth")

KEY_PREFIX = "mtk_"
#: ``mtk_`` + 44 characters of padded URL-safe base64 (32 bytes).
KEY_RE = re.compile(r"^mtk_[A-Za-z0-9_-]{43}=$")
KEY_ID_RE = re.compile(r"^key_[0-9a-f]{24}$")
ORG_ID_RE = re.compile(r"^org_[0-9a-zA-Z_-]{1,64}$")
DEFAULT_BCRYPT_COST = 10
BOOTSTRAP_ORG_NAME = "Default"
BOOTSTRAP_KEY_NAME = "admin"
#: ``last_used_at`` is written at most this often per key and process.
TOUCH_INTERVAL_SECONDS = 60.0
#: Upper bound on cached keys per process (oldest entries are dropped first).
MAX_CACHE_ENTRIES = 10_000


class Permission(StrEnum):
    """What an API key may do. ``admin`` implies ``read`` and ``write``."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


PERMISSIONS: tuple[str, ...] = (Permission.READ, Permission.WRITE, Permission.ADMIN)
DEFAULT_PERMISSIONS: tuple[str, ...] = (Permission.READ, Permission.WRITE)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the org its key belongs to, the key, and its permissions."""

    org_id: str
    key_id: str | None
    key_name: str
    permissions: frozenset[str]

    def has(self, permission: str) -> bool:
        """True if the principal holds ``permission`` (``admin`` implies every permission)."""
        return permission in self.permissions or Permission.ADMIN in self.permissions

    def require(self, permission: str) -> None:
        """Raise PermissionDeniedError (403) unless the principal holds ``permission``."""
        if not self.has(permission):
            raise PermissionDeniedError(f"API key lacks the '{permission}' permission")

    @property
    def is_service_admin(self) -> bool:
        """An ``admin`` key of the bootstrap org (``org_default``) administers the whole service
        (every org and key); an ``admin`` key of any other org administers only its own org."""
        return self.org_id == DEFAULT_ORG and Permission.ADMIN in self.permissions

    def require_org_admin(self, org_id: str) -> None:
        """Raise PermissionDeniedError unless the principal may administer ``org_id``."""
        self.require(Permission.ADMIN)
        if org_id != self.org_id and not self.is_service_admin:
            raise PermissionDeniedError("an org admin key can only administer its own organization")

    def key_org(self, requested: Any) -> str:
        """The org a key this principal creates belongs to: ``requested`` when given (it must
        be an org the principal administers), else the principal's own org (absent and
        ``null`` both mean the default)."""
        org_id = self.org_id if requested is None or requested == "" else requested
        if not isinstance(org_id, str):
            raise ValidationError("invalid org_id: expected a string", field="org_id")
        self.require_org_admin(org_id)
        return org_id

    def keys_scope(self, requested: str | None) -> str | None:
        """Whose keys a key listing shows: ``requested`` (an administered org); by default
        every org's for a service admin, the principal's own org for anyone else."""
        org_id = requested or (None if self.is_service_admin else self.org_id)
        if org_id is not None:
            self.require_org_admin(org_id)
        return org_id

    def require_service_admin(self) -> None:
        """Raise PermissionDeniedError unless the principal administers the whole service."""
        self.require(Permission.ADMIN)
        if not self.is_service_admin:
            raise PermissionDeniedError(
                "only an admin key of the bootstrap organization can manage organizations"
            )


def anonymous_principal(org_id: str = DEFAULT_ORG) -> Principal:
    """The principal used when ``auth.enabled`` is false: every permission in one org (the
    original used org "" there, which broke every route)."""
    return Principal(
        org_id=org_id, key_id=None, key_name="anonymous", permissions=frozenset(PERMISSIONS)
    )


# ------------------------------------------------------------------------------------------------
# Keys and hashes


def generate_api_key() -> str:
    """A new plaintext API key: ``mtk_`` + URL-safe base64 (padded) of 32 random bytes."""
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def key_digest(api_key: str) -> str:
    """SHA-256 hex of the key (the cache key)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_lookup_prefix(api_key: str) -> str:
    """The stored lookup index of a key: the first 16 hex characters of its SHA-256."""
    return key_digest(api_key)[:16]


def hash_api_key(api_key: str, *, cost: int = DEFAULT_BCRYPT_COST) -> str:
    """The bcrypt hash (``$2b$…``) of a key with the given cost (4–31)."""
    return bcrypt.hashpw(api_key.encode(), bcrypt.gensalt(rounds=cost)).decode()


def verify_api_key(api_key: str, key_hash: str) -> bool:
    """Constant-time bcrypt comparison; False for a malformed hash."""
    try:
        return bool(bcrypt.checkpw(api_key.encode(), key_hash.encode()))
    except ValueError:
        return False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def extract_api_key(headers: Mapping[str, str]) -> str | None:
    """The API key of a request, as the original reads it: ``x-api-key``; if that is empty,
    ``Authorization`` with an exact ``Bearer `` prefix stripped (any other Authorization value is
    used whole). Header names are case-insensitive. None when there is no key."""
    key = (_header(headers, "x-api-key") or "").strip()
    if key:
        return key
    auth = (_header(headers, "authorization") or "").lstrip()
    if auth.startswith("Bearer "):
        auth = auth[len("Bearer ") :]
    return auth.strip() or None


def normalize_permissions(permissions: Iterable[str] | str) -> tuple[str, ...]:
    """Validate and order permissions (``"read,write"`` or an iterable). Raises
    ValidationError naming the unknown permission."""
    if isinstance(permissions, str):
        items: list[Any] = permissions.split(",")
    elif isinstance(permissions, (list, tuple, set, frozenset)):
        items = list(permissions)
    else:
        items = [None]  # e.g. a number from a JSON body
    wanted: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValidationError(
                "invalid permissions: expected a list of strings", field="permissions"
            )
        name = item.strip().lower()
        if not name:
            continue
        if name not in PERMISSIONS:
            raise ValidationError(
                f"invalid permission {item.strip()!r} (expected read, write or admin)",
                field="permissions",
            )
        wanted.add(name)
    if not wanted:
        raise ValidationError("at least one permission is required", field="permissions")
    return tuple(p for p in PERMISSIONS if p in wanted)


# ------------------------------------------------------------------------------------------------
# Authenticator


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: int | None  # the key's expiry (µs)
    revision: int
    cached_at: float  # monotonic


class Authenticator:
    """Turns an API key into a :class:`Principal` (see the module docstring for the caching and
    revocation guarantees). Call :meth:`start` / :meth:`stop` around serving to run the
    background revision poller; without it every request older than the poll period checks the
    revision itself, so the bound holds either way."""

    def __init__(
        self,
        auth_store: AuthStore,
        *,
        cache_seconds: float = 300,
        revocation_poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock`` (seconds, monotonic) measures the cache and poll periods and ``sleep``
        paces the background poller: tests pass their own to step through time."""
        if cache_seconds < 0:
            raise ValueError("cache_seconds must be >= 0")
        if revocation_poll_seconds <= 0:
            raise ValueError("revocation_poll_seconds must be > 0")
        self.store = auth_store
        self.cache_seconds = float(cache_seconds)
        self.revocation_poll_seconds = float(revocation_poll_seconds)
        self._clock = clock
        self._sleep = sleep
        self._cache: dict[str, _Entry] = {}
        self._revision: int | None = None
        self._checked_at = -math.inf
        self._revision_lock = asyncio.Lock()
        self._inflight: dict[str, asyncio.Future[_Entry]] = {}
        self._touched: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        #: Counters (for tests and metrics).
        self.stats = {
            "hits": 0,
            "misses": 0,
            "bcrypt": 0,
            "revision_reads": 0,
            "revision_changes": 0,
        }

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the current revision and start the background poller."""
        await self._refresh_revision()
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="memtrace-auth-revision-poll")

    async def stop(self) -> None:
        """Stop the poller and drop the cache."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        self._cache.clear()

    async def _poll(self) -> None:
        # Poll at half the period so that requests rarely find the revision stale.
        interval = self.revocation_poll_seconds / 2
        while True:
            await self._sleep(interval)
            try:
                await self._refresh_revision()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot read the auth revision: %s", exc)

    # -- cache control -----------------------------------------------------------------------

    def invalidate(self) -> None:
        """Drop every cached verification and re-read the revision on the next request (used by
        :class:`AuthAdmin` after a change in this process: the change is effective at once)."""
        self._cache.clear()
        self._checked_at = -math.inf

    async def _refresh_revision(self, *, force: bool = True) -> int:
        async with self._revision_lock:
            if (
                not force
                and self._revision is not None
                and self._clock() - self._checked_at < self.revocation_poll_seconds
            ):
                return self._revision  # another request refreshed it while we waited
            revision = await self.store.auth_revision()
            self.stats["revision_reads"] += 1
            if revision != self._revision:
                if self._revision is not None:
                    self.stats["revision_changes"] += 1
                self._revision = revision
                self._cache.clear()
            self._checked_at = self._clock()
            return revision

    async def _current_revision(self) -> int:
        if (
            self._revision is None
            or self._clock() - self._checked_at >= self.revocation_poll_seconds
        ):
            return await self._refresh_revision(force=False)
        return self._revision

    # -- verification -------------------------------------------------------------------------

    async def authenticate(self, api_key: str | None) -> Principal:
        """The principal of ``api_key``. Raises AuthenticationError (401) with ``missing API
        key`` or ``invalid API key``, StoreError (503) if the store cannot be read."""
        if api_key is None or not api_key.strip():
            raise AuthenticationError("missing API key")
        api_key = api_key.strip()
        if not KEY_RE.match(api_key):
            raise AuthenticationError("invalid API key")
        digest = key_digest(api_key)
        revision = await self._current_revision()
        now_mono = self._clock()
        entry = self._cache.get(digest)
        if entry is not None and (
            entry.revision != revision or now_mono - entry.cached_at >= self.cache_seconds
        ):
            self._cache.pop(digest, None)
            entry = None
        if entry is None:
            self.stats["misses"] += 1
            entry = await self._verify_shared(api_key, digest, revision)
        else:
            self.stats["hits"] += 1
        if entry.expires_at is not None and entry.expires_at <= now_us():
            self._cache.pop(digest, None)
            raise AuthenticationError("invalid API key")
        await self._maybe_touch(entry.principal)
        return entry.principal

    async def _verify_shared(self, api_key: str, digest: str, revision: int) -> _Entry:
        # One verification per key at a time, in its own task: concurrent requests share it and
        # a cancelled request does not cancel it for the others.
        # Keyed by revision too: a request that already saw a newer revision (e.g. a revocation)
        # never joins a verification that read the key before that change.
        slot = f"{digest}:{revision}"
        task = self._inflight.get(slot)
        if task is None:
            task = asyncio.ensure_future(self._verify(api_key, revision))
            self._inflight[slot] = task
            task.add_done_callback(functools.partial(self._verified, slot))
        return await asyncio.shield(task)

    def _verified(self, slot: str, task: asyncio.Future[_Entry]) -> None:
        if self._inflight.get(slot) is task:
            del self._inflight[slot]
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter may have gone away

    async def _verify(self, api_key: str, revision: int) -> _Entry:
        candidates = await self.store.find_api_keys(key_lookup_prefix(api_key))
        now = now_us()
        for record in candidates:
            if not record.enabled:
                continue
            if record.expires_at is not None and record.expires_at <= now:
                continue
            self.stats["bcrypt"] += 1
            if await asyncio.to_thread(verify_api_key, api_key, record.key_hash):
                entry = _Entry(
                    principal=Principal(
                        org_id=record.org_id,
                        key_id=record.id,
                        key_name=record.name,
                        permissions=frozenset(record.permissions),
                    ),
                    expires_at=record.expires_at,
                    revision=revision,
                    cached_at=self._clock(),
                )
                if self.cache_seconds > 0 and revision == self._revision:
                    self._store_entry(key_digest(api_key), entry)
                return entry
        raise AuthenticationError("invalid API key")

    def _store_entry(self, digest: str, entry: _Entry) -> None:
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            now_mono = self._clock()
            for key in [
                k for k, e in self._cache.items() if now_mono - e.cached_at >= self.cache_seconds
            ]:
                del self._cache[key]
            while len(self._cache) >= MAX_CACHE_ENTRIES:
                del self._cache[next(iter(self._cache))]
        self._cache[digest] = entry

    async def _maybe_touch(self, principal: Principal) -> None:
        key_id = principal.key_id
        if key_id is None:
            return
        now_mono = self._clock()
        last = self._touched.get(key_id)
        if last is not None and now_mono - last < TOUCH_INTERVAL_SECONDS:
            return
        self._touched[key_id] = now_mono
        if len(self._touched) > MAX_CACHE_ENTRIES:
            self._touched.clear()
            self._touched[key_id] = now_mono
        try:
            await self.store.touch_api_key(key_id, now_us())
        except (StoreError, OSError) as exc:  # bookkeeping must never fail a request
            log.warning("cannot record last use of key %s: %s", key_id, exc)


# ------------------------------------------------------------------------------------------------
# Administration


class OrgInfo(BaseModel):
    """An organization as shown to administrators."""

    id: str
    name: str
    created_at: datetime


class KeyInfo(BaseModel):
    """An API key as shown to administrators (never its hash or plaintext)."""

    id: str
    org_id: str
    name: str
    permissions: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    enabled: bool = True
    last_used_at: datetime | None = None


def _org_info(record: OrgRecord) -> OrgInfo:
    return OrgInfo(id=record.id, name=record.name, created_at=from_us(record.created_at))


def _key_info(record: ApiKeyRecord) -> KeyInfo:
    return KeyInfo(
        id=record.id,
        org_id=record.org_id,
        name=record.name,
        permissions=list(record.permissions),
        created_at=from_us(record.created_at),
        expires_at=from_us(record.expires_at) if record.expires_at is not None else None,
        enabled=record.enabled,
        last_used_at=from_us(record.last_used_at) if record.last_used_at is not None else None,
    )


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} name is required", field="name")
    name = value.strip()
    if len(name) > 128 or not name.isprintable():
        raise ValidationError(
            f"invalid {what} name: at most 128 printable characters", field="name"
        )
    return name


def _check_key_id(key_id: Any) -> str:
    if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
        raise NotFoundError(f"API key '{key_id}' not found")
    return key_id


EXPIRY_FORMS = (
    "a duration from now such as 30d, 12h, 2w, 90m or 3600s, or an RFC 3339 / ISO 8601 "
    "timestamp such as 2027-01-31T00:00:00Z (UTC when it has no offset)"
)


def parse_expiry(value: datetime | str, *, now: datetime | None = None) -> datetime:
    """The expiry of a new API key, as the HTTP ``expires_at`` and the CLI's ``--expires``
    both accept it: a datetime (UTC when naive), a duration from ``now`` (``30d``, ``12h``,
    ``2w``, ``90m``, ``3600s``) or an RFC 3339 / ISO 8601 timestamp (UTC when it has no
    offset; a bare date is its midnight). It must lie in the future. Raises ValidationError
    (field ``expires_at``)."""
    current = now if now is not None else datetime.now(UTC)
    if isinstance(value, datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            relative = parse_relative(text)
        except ValidationError as exc:
            raise ValidationError(
                f"invalid expires_at: {exc.message}", field="expires_at"
            ) from None
        if relative is not None:
            when = current + timedelta(microseconds=relative)
        else:
            try:
                when = from_us(parse_timestamp(text))
            except (ValueError, OverflowError):
                raise ValidationError(
                    f"invalid expires_at {value!r}: expected {EXPIRY_FORMS}", field="expires_at"
                ) from None
    else:
        raise ValidationError(
            f"invalid expires_at: expected a string, {EXPIRY_FORMS}", field="expires_at"
        )
    if when <= current:
        raise ValidationError("expires_at must be in the future", field="expires_at")
    return when


def _expiry_us(expires_at: datetime | str | None) -> int | None:
    """The expiry of a new key (µs), see :func:`parse_expiry`; None: never expires."""
    return None if expires_at is None else to_us(parse_expiry(expires_at))


class AuthAdmin:
    """Orgs and API keys: create, list, revoke, rotate, delete (used by the CLI and by the
    HTTP admin routes). Every change that takes access away bumps the store's auth revision and
    invalidates ``authenticator`` so it is effective at once in this process."""

    def __init__(
        self,
        auth_store: AuthStore,
        authenticator: Authenticator | None = None,
        *,
        bcrypt_cost: int = DEFAULT_BCRYPT_COST,
    ) -> None:
        if not 4 <= bcrypt_cost <= 31:
            raise ValueError("bcrypt_cost must be between 4 and 31")
        self.store = auth_store
        self.authenticator = authenticator
        self.bcrypt_cost = bcrypt_cost

    def _invalidate(self) -> None:
        if self.authenticator is not None:
            self.authenticator.invalidate()

    async def _hash(self, api_key: str) -> str:
        return await asyncio.to_thread(hash_api_key, api_key, cost=self.bcrypt_cost)

    async def _new_record(
        self,
        org_id: str,
        name: str,
        permissions: tuple[str, ...],
        expires_at: int | None,
    ) -> tuple[ApiKeyRecord, str]:
        plaintext = generate_api_key()
        record = ApiKeyRecord(
            id=random_id("key"),
            org_id=org_id,
            name=name,
            key_hash=await self._hash(plaintext),
            key_prefix=key_lookup_prefix(plaintext),
            permissions=permissions,
            created_at=now_us(),
            expires_at=expires_at,
        )
        return record, plaintext

    # -- orgs -----------------------------------------------------------------------------------

    async def create_org(self, name: str, *, org_id: str | None = None) -> OrgInfo:
        """Create an org (id ``org_`` + 24 hex unless ``org_id`` is given, e.g. to recreate an
        org whose export is being imported)."""
        clean = _check_name(name, "organization")
        if org_id is not None and not ORG_ID_RE.match(org_id):
            raise ValidationError(f"invalid organization id {org_id!r}", field="org_id")
        record = OrgRecord(id=org_id or random_id("org"), name=clean, created_at=now_us())
        await self.store.create_org(record)
        return _org_info(record)

    async def list_orgs(self) -> list[OrgInfo]:
        return [_org_info(r) for r in await self.store.list_orgs()]

    async def get_org(self, org_id: str) -> OrgInfo:
        record = await self.store.get_org(org_id)
        if record is None:
            raise NotFoundError(f"organization '{org_id}' not found")
        return _org_info(record)

    async def delete_org(self, org_id: str, engine: AsyncMemtrace) -> int:
        """Delete an org for real: its API keys first (access stops at once), then every memory,
        agent and session (through ``engine``), then the org. Safe to re-run if interrupted.
        Returns the number of memories deleted."""
        if await self.store.get_org(org_id) is None:
            raise NotFoundError(f"organization '{org_id}' not found")
        if org_id == DEFAULT_ORG:
            # its admin keys are the service admins: deleting it would lock everyone out
            raise ConflictError(f"the bootstrap organization '{DEFAULT_ORG}' cannot be deleted")
        for key in await self.store.list_api_keys(org_id):
            await self.store.delete_api_key(key.id)
        self._invalidate()
        deleted = await engine.with_org(org_id).purge_org()
        await self.store.delete_org(org_id)
        self._invalidate()
        return deleted

    # -- keys -------------------------------------------------------------------------------------

    async def create_key(
        self,
        org_id: str,
        name: str,
        permissions: Iterable[str] | str | None = None,
        expires_at: datetime | str | None = None,
    ) -> tuple[KeyInfo, str]:
        """Create a key; returns its info and the plaintext (shown once, never stored).
        ``permissions`` default to read and write; ``expires_at`` is anything
        :func:`parse_expiry` accepts (never expires when None)."""
        clean = _check_name(name, "API key")
        perms = normalize_permissions(DEFAULT_PERMISSIONS if permissions is None else permissions)
        expiry = _expiry_us(expires_at)
        if await self.store.get_org(org_id) is None:
            raise NotFoundError(f"organization '{org_id}' not found")
        record, plaintext = await self._new_record(org_id, clean, perms, expiry)
        await self.store.create_api_key(record)
        return _key_info(record), plaintext

    async def list_keys(self, org_id: str | None = None) -> list[KeyInfo]:
        if org_id is not None and await self.store.get_org(org_id) is None:
            raise NotFoundError(f"organization '{org_id}' not found")
        return [_key_info(r) for r in await self.store.list_api_keys(org_id)]

    async def administered_org(self, principal: Principal, org_id: str) -> OrgInfo:
        """The org ``org_id``, once ``principal`` may administer it (its own org's admin, or a
        service admin); NotFoundError for an org that does not exist."""
        principal.require_org_admin(org_id)
        return await self.get_org(org_id)

    async def administered_key(self, principal: Principal, key_id: str) -> KeyInfo:
        """The key ``key_id``, once ``principal`` may administer it. Another org's key is
        answered exactly like an unknown one (NotFoundError, same message), so that key ids of
        other orgs cannot be probed for existence."""
        principal.require(Permission.ADMIN)
        info = await self.get_key(key_id)
        if info.org_id != principal.org_id and not principal.is_service_admin:
            raise NotFoundError(f"API key '{key_id}' not found")
        return info

    async def get_key(self, key_id: str) -> KeyInfo:
        record = await self.store.get_api_key(_check_key_id(key_id))
        if record is None:
            raise NotFoundError(f"API key '{key_id}' not found")
        return _key_info(record)

    async def revoke_key(self, key_id: str) -> None:
        """Delete a key. It stops working at once here and within the poll period elsewhere."""
        if not await self.store.delete_api_key(_check_key_id(key_id)):
            raise NotFoundError(f"API key '{key_id}' not found")
        self._invalidate()

    async def set_key_enabled(self, key_id: str, enabled: bool) -> KeyInfo:
        """Disable (or re-enable) a key without deleting it."""
        record = await self.store.update_api_key(_check_key_id(key_id), enabled=enabled)
        if record is None:
            raise NotFoundError(f"API key '{key_id}' not found")
        self._invalidate()
        return _key_info(record)

    async def rotate_key(self, key_id: str) -> tuple[KeyInfo, str]:
        """Give a key a new secret (same id, name, org, permissions and expiry). The old secret
        stops working at once here and within the poll period elsewhere."""
        _check_key_id(key_id)
        if await self.store.get_api_key(key_id) is None:
            raise NotFoundError(f"API key '{key_id}' not found")
        plaintext = generate_api_key()
        record = await self.store.update_api_key(
            key_id,
            key_hash=await self._hash(plaintext),
            key_prefix=key_lookup_prefix(plaintext),
        )
        if record is None:
            raise NotFoundError(f"API key '{key_id}' not found")
        self._invalidate()
        return _key_info(record), plaintext

    async def bootstrap(self) -> str | None:
        """First run: when there are no orgs at all, create ``org_default`` ("Default") and an
        ``admin`` key with read, write and admin, and return its plaintext (to show once).
        Otherwise None. Atomic across processes."""
        if await self.store.list_orgs():
            return None
        org = OrgRecord(id=DEFAULT_ORG, name=BOOTSTRAP_ORG_NAME, created_at=now_us())
        record, plaintext = await self._new_record(
            DEFAULT_ORG, BOOTSTRAP_KEY_NAME, PERMISSIONS, None
        )
        if await self.store.bootstrap_org(org, replace(record, created_at=org.created_at)):
            return plaintext
        return None


def auth_store_of(obj: AsyncMemtrace | object) -> AuthStore:
    """The :class:`AuthStore` behind an engine (or a store). Raises StoreError if that store
    cannot hold orgs and API keys."""
    store = obj.store if isinstance(obj, AsyncMemtrace) else obj
    if not isinstance(store, AuthStore):
        raise StoreError(
            f"the {type(store).__name__} store does not support API keys; "
            "use a SQLite store or set auth.enabled = false"
        )
    return store


def principal_summary(principal: Principal) -> dict[str, Any]:
    """A JSON-friendly view of a principal (for logs and ``whoami`` style endpoints)."""
    return {
        "org_id": principal.org_id,
        "key_id": principal.key_id,
        "key_name": principal.key_name,
        "permissions": [p for p in PERMISSIONS if principal.has(p)],
    }


PermissionName = Literal["read", "write", "admin"]

__all__ = [
    "BOOTSTRAP_KEY_NAME",
    "BOOTSTRAP_ORG_NAME",
    "DEFAULT_PERMISSIONS",
    "KEY_RE",
    "PERMISSIONS",
    "ApiKeyRecord",
    "AuthAdmin",
    "AuthStore",
    "Authenticator",
    "KeyInfo",
    "OrgInfo",
    "OrgRecord",
    "Permission",
    "PermissionName",
    "Principal",
    "anonymous_principal",
    "auth_store_of",
    "extract_api_key",
    "generate_api_key",
    "hash_api_key",
    "key_lookup_prefix",
    "normalize_permissions",
    "principal_summary",
    "verify_api_key",
]
