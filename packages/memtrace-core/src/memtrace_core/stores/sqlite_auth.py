"""SQLite implementation of :class:`~memtrace_core.stores.auth.AuthStore` (a mixin of
:class:`~memtrace_core.stores.sqlite.SQLiteStore`).

Tables (``_MIGRATION_3`` in :mod:`memtrace_core.stores.sqlite`): ``orgs``, ``api_keys`` (``UNIQUE(org_id, name)``, index on
``key_prefix``) and ``auth_state`` (one row holding the auth revision). Writes go through the
store's single writer thread, so every change and its revision bump commit in one
``BEGIN IMMEDIATE`` transaction, serialised against other processes on the same file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConflictError, NotFoundError
from .auth import ApiKeyRecord, OrgRecord

T = TypeVar("T")

_KEY_COLUMNS = (
    "id, org_id, name, key_hash, key_prefix, permissions, created_at, expires_at, enabled, "
    "last_used_at"
)


def _key_from_row(row: Sequence[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row[0],
        org_id=row[1],
        name=row[2],
        key_hash=row[3],
        key_prefix=row[4],
        permissions=tuple(p for p in str(row[5]).split(",") if p),
        created_at=int(row[6]),
        expires_at=int(row[7]) if row[7] is not None else None,
        enabled=bool(row[8]),
        last_used_at=int(row[9]) if row[9] is not None else None,
    )


def _org_from_row(row: Sequence[Any]) -> OrgRecord:
    return OrgRecord(id=row[0], name=row[1], created_at=int(row[2]))


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE auth_state SET revision = revision + 1 WHERE id = 1")


def _insert_key(conn: sqlite3.Connection, key: ApiKeyRecord) -> None:
    if conn.execute("SELECT 1 FROM orgs WHERE id = ?", (key.org_id,)).fetchone() is None:
        raise NotFoundError(f"organization '{key.org_id}' not found")
    if (
        conn.execute(
            "SELECT 1 FROM api_keys WHERE org_id = ? AND name = ?", (key.org_id, key.name)
        ).fetchone()
        is not None
    ):
        raise ConflictError(
            f"an API key named '{key.name}' already exists in organization '{key.org_id}'"
        )
    try:
        conn.execute(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                key.id,
                key.org_id,
                key.name,
                key.key_hash,
                key.key_prefix,
                ",".join(key.permissions),
                key.created_at,
                key.expires_at,
                1 if key.enabled else 0,
                key.last_used_at,
            ),
        )
    except sqlite3.IntegrityError:
        raise ConflictError(f"API key '{key.id}' already exists") from None


class SQLiteAuthMixin:
    """Org and API-key persistence for the SQLite store (uses its ``_read`` / ``_write``)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def auth_revision(self) -> int:
        return await self._read(
            lambda conn: int(
                conn.execute("SELECT revision FROM auth_state WHERE id = 1").fetchone()[0]
            )
        )

    # -- orgs -------------------------------------------------------------------------------------

    async def create_org(self, org: OrgRecord) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO orgs (id, name, created_at) VALUES (?,?,?)",
                    (org.id, org.name, org.created_at),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"organization '{org.id}' already exists") from None

        await self._write(run)

    async def get_org(self, org_id: str) -> OrgRecord | None:
        def run(conn: sqlite3.Connection) -> OrgRecord | None:
            row = conn.execute(
                "SELECT id, name, created_at FROM orgs WHERE id = ?", (org_id,)
            ).fetchone()
            return _org_from_row(row) if row else None

        return await self._read(run)

    async def list_orgs(self) -> list[OrgRecord]:
        return await self._read(
            lambda conn: [
                _org_from_row(r)
                for r in conn.execute(
                    "SELECT id, name, created_at FROM orgs ORDER BY created_at, id"
                )
            ]
        )

    async def delete_org(self, org_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM api_keys WHERE org_id = ?", (org_id,))
            deleted = conn.execute("DELETE FROM orgs WHERE id = ?", (org_id,)).rowcount > 0
            _bump(conn)
            return deleted

        return await self._write(run)

    async def bootstrap_org(self, org: OrgRecord, key: ApiKeyRecord) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM orgs LIMIT 1").fetchone() is not None:
                return False
            conn.execute(
                "INSERT INTO orgs (id, name, created_at) VALUES (?,?,?)",
                (org.id, org.name, org.created_at),
            )
            _insert_key(conn, key)
            return True

        return await self._write(run)

    # -- API keys ---------------------------------------------------------------------------------

    async def create_api_key(self, key: ApiKeyRecord) -> None:
        await self._write(lambda conn: _insert_key(conn, key))

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        def run(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
            return _key_from_row(row) if row else None

        return await self._read(run)

    async def list_api_keys(self, org_id: str | None = None) -> list[ApiKeyRecord]:
        if org_id is None:
            sql = f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
            params: tuple[Any, ...] = ()
        else:
            sql = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = ? ORDER BY created_at, id"
            params = (org_id,)
        return await self._read(lambda conn: [_key_from_row(r) for r in conn.execute(sql, params)])

    async def find_api_keys(self, key_prefix: str) -> list[ApiKeyRecord]:
        return await self._read(
            lambda conn: [
                _key_from_row(r)
                for r in conn.execute(
                    f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_prefix = ?", (key_prefix,)
                )
            ]
        )

    async def delete_api_key(self, key_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            deleted = conn.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount > 0
            if deleted:
                _bump(conn)
            return deleted

        return await self._write(run)

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
        sets: list[str] = []
        params: list[Any] = []
        if key_hash is not None:
            sets.append("key_hash = ?")
            params.append(key_hash)
        if key_prefix is not None:
            sets.append("key_prefix = ?")
            params.append(key_prefix)
        if enabled is not None:
            sets.append("enabled = ?")
            params.append(1 if enabled else 0)
        if permissions is not None:
            sets.append("permissions = ?")
            params.append(",".join(permissions))
        if clear_expiry:
            sets.append("expires_at = NULL")
        elif expires_at is not None:
            sets.append("expires_at = ?")
            params.append(expires_at)

        def run(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            if sets:
                changed = conn.execute(
                    f"UPDATE api_keys SET {', '.join(sets)} WHERE id = ?", (*params, key_id)
                ).rowcount
                if changed:
                    _bump(conn)
            row = conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
            return _key_from_row(row) if row else None

        return await self._write(run)

    async def touch_api_key(self, key_id: str, used_at: int) -> None:
        await self._write(
            lambda conn: conn.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ? "
                "AND (last_used_at IS NULL OR last_used_at < ?)",
                (used_at, key_id, used_at),
            )
        )


__all__ = ["SQLiteAuthMixin"]
