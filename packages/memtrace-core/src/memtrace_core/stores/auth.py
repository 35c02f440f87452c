"""The auth store protocol: organizations, API keys and the auth revision.

Auth data lives in the same database as the memories so that every server worker and process
(and every server sharing a PostgreSQL database) sees the same organizations and keys. The
server's ``memtrace_server.auth`` module owns the rules (key format, hashing, caching,
permissions); a store only persists records.

**The auth revision.** A store keeps one persistent integer that every change able to take
access away increments in the same transaction as the change: revoking, disabling or rotating
a key, changing its expiry or permissions, deleting an org. Servers cache verified keys and poll
the revision (a single-row read); when it changes they drop their cache, which bounds how long a
revoked key keeps working in another process by the poll interval. Creating orgs or keys does
not take access away, so it does not need to bump the revision (stores may bump it anyway).

Times are integer microseconds since the Unix epoch (UTC), as everywhere in the stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """An organization (tenant). ``id`` is ``org_`` + 24 hex (``org_default`` for the bootstrap
    org)."""

    id: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key. The plaintext key is never stored: ``key_hash`` is its bcrypt hash and
    ``key_prefix`` the first 16 hex characters of its SHA-256 (the lookup index).

    ``permissions`` is a tuple of ``read`` / ``write`` / ``admin``; ``expires_at`` and
    ``last_used_at`` are optional microsecond timestamps."""

    id: str
    org_id: str
    name: str
    key_hash: str
    key_prefix: str
    permissions: tuple[str, ...]
    created_at: int
    expires_at: int | None = None
    enabled: bool = True
    last_used_at: int | None = None


@runtime_checkable
class AuthStore(Protocol):
    """Persistence of orgs and API keys (implemented by the SQLite store; see
    :class:`~memtrace_core.stores.sqlite_auth.SQLiteAuthMixin`).

    Errors: :class:`~memtrace_core.errors.ConflictError` for a duplicate id or key name,
    :class:`~memtrace_core.errors.NotFoundError` for a key created in a missing org,
    :class:`~memtrace_core.errors.StoreError` when the database fails."""

    async def auth_revision(self) -> int:
        """The current auth revision (see the module docstring)."""
        ...

    # -- orgs ---------------------------------------------------------------------------------
    async def create_org(self, org: OrgRecord) -> None:
        """Insert an org; ConflictError if the id exists."""
        ...

    async def get_org(self, org_id: str) -> OrgRecord | None: ...

    async def list_orgs(self) -> list[OrgRecord]:
        """Every org, oldest first."""
        ...

    async def delete_org(self, org_id: str) -> bool:
        """Delete the org row and every API key of the org, and bump the revision, in one
        transaction. Memories, agents and sessions are purged separately (by the engine).
        Returns False if the org did not exist."""
        ...

    async def bootstrap_org(self, org: OrgRecord, key: ApiKeyRecord) -> bool:
        """Atomically: if there are no orgs at all, insert ``org`` and ``key`` and return True;
        otherwise change nothing and return False. Safe when several processes start at once."""
        ...

    # -- API keys -----------------------------------------------------------------------------
    async def create_api_key(self, key: ApiKeyRecord) -> None:
        """Insert a key. NotFoundError if its org does not exist; ConflictError if the org
        already has a key with that name (names are unique per org) or the id exists."""
        ...

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_api_keys(self, org_id: str | None = None) -> list[ApiKeyRecord]:
        """Keys of one org (or of every org when None), oldest first."""
        ...

    async def find_api_keys(self, key_prefix: str) -> list[ApiKeyRecord]:
        """Every key (enabled or not) whose ``key_prefix`` matches: the verification
        candidates."""
        ...

    async def delete_api_key(self, key_id: str) -> bool:
        """Delete a key and bump the revision. False if it did not exist."""
        ...

    async def update_api_key(
        self,
        key_id: str,
        *,
        key_hash: str | None = None,
        key_prefix: str | None = None,
        enabled: bool | None = None,
        permissions: Sequence[str] | None = None,
        expires_at: int | None = None,
        clear_expiry: bool = False,
    ) -> ApiKeyRecord | None:
        """Change the given fields of a key (``clear_expiry`` removes the expiry) and bump the
        revision, in one transaction. Returns the updated record, or None if it does not
        exist."""
        ...

    async def touch_api_key(self, key_id: str, used_at: int) -> None:
        """Record that the key was used (``last_used_at``); does not bump the revision."""
        ...


__all__ = ["ApiKeyRecord", "AuthStore", "OrgRecord"]
