"""The exception hierarchy shared by the engine, the stores and the HTTP client.

Every error carries an HTTP-like ``status_code`` so that the server can map it to a response and
the HTTP client can map a response back to the same class. The classes and their status codes
mirror the published ``memtrace-sdk`` (401 → :class:`AuthenticationError`, 404 →
:class:`NotFoundError`, 409 → :class:`ConflictError`), so code written against either catches the
same things.
"""

from __future__ import annotations

from typing import Any, ClassVar


def show_value(value: Any, limit: int = 80) -> str:
    """A value for an error message: quoted, cut to ``limit`` characters, with anything that is
    not printable (lone surrogates, controls) escaped, so a message can always be sent."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text) if isinstance(value, str) else text


class MemtraceError(Exception):
    """Base class of every memtrace error.

    Attributes:
        message: human-readable description (also ``str(error)``).
        status_code: the HTTP status this error maps to (0 for transport errors).
    """

    status_code: int = 500
    default_message: ClassVar[str] = "memtrace error"

    def __init__(self, message: str | None = None, status_code: int | None = None) -> None:
        text = message or self.default_message
        if not text.isascii():
            # a lone surrogate (echoed from the input) cannot be encoded as UTF-8: escape it
            # here, once, so that no error can fail to be logged or sent
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        self.message = text
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body the server sends: ``{"error": message, ...}``."""
        return {"error": self.message}


class ValidationError(MemtraceError, ValueError):
    """Input that breaks a rule: a missing or malformed field, a limit, a bad time string.

    Attributes:
        field: the offending field (dotted path), when known.
        index: the position of the offending item in a batch, when the input was a batch.
    """

    status_code = 400
    default_message = "invalid input"

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None) -> None:
        self.field = field
        self.index = index
        if index is not None:
            message = f"memories[{index}]: {message}"
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.field is not None:
            body["field"] = self.field
        if self.index is not None:
            body["index"] = self.index
        return body


class WriteRejectedError(ValidationError):
    """A ``before_write`` plugin refused a memory (e.g. a redaction or policy plugin)."""

    default_message = "memory rejected by a plugin"


class AuthenticationError(MemtraceError):
    """Missing, unknown, disabled, revoked or expired API key."""

    status_code = 401
    default_message = "Invalid or missing API key"


class PermissionDeniedError(MemtraceError):
    """The API key is valid but lacks the permission the operation needs."""

    status_code = 403
    default_message = "permission denied"


class NotFoundError(MemtraceError):
    """The memory, agent, session, org or key does not exist (in this org)."""

    status_code = 404
    default_message = "Resource not found"


class ConflictError(MemtraceError):
    """The operation conflicts with existing state (duplicate name, duplicate memory…)."""

    status_code = 409
    default_message = "Conflict"


class DuplicateMemoryError(ConflictError):
    """A memory with the same dedup key was written within the dedup window.

    Attributes:
        existing_id: the id of the memory this one duplicates.
        dedup_key: the effective dedup key.
    """

    default_message = "duplicate memory"

    def __init__(self, existing_id: str | None = None, dedup_key: str | None = None) -> None:
        self.existing_id = existing_id
        self.dedup_key = dedup_key
        super().__init__(
            f"duplicate memory: the same event is already stored as {existing_id}"
            if existing_id
            else "duplicate memory"
        )

    def to_dict(self) -> dict[str, Any]:
        # the wire keeps the original's error string; the id travels in its own field
        body: dict[str, Any] = {"error": self.default_message}
        if self.existing_id:
            body["existing_id"] = self.existing_id
        if self.dedup_key:
            body["dedup_key"] = self.dedup_key
        return body


class SupersededError(ConflictError):
    """A write named ``supersedes`` a memory that a later memory already superseded: chains
    are linear, so supersede the current version instead.

    Attributes:
        memory_id: the memory that was named.
        current_id: the current version of its chain (what to supersede).
    """

    default_message = "memory already superseded"

    def __init__(
        self,
        memory_id: str | None = None,
        current_id: str | None = None,
        *,
        message: str | None = None,
    ) -> None:
        self.memory_id = memory_id
        self.current_id = current_id
        super().__init__(
            message
            or f"invalid supersedes: memory {memory_id} is already superseded; its current "
            f"version is {current_id} (supersede that one)"
        )

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["field"] = "supersedes"
        if self.current_id:
            body["current_id"] = self.current_id
        return body


class PayloadTooLargeError(MemtraceError):
    """The request body exceeds the configured limit."""

    status_code = 413
    default_message = "request body too large"


class StoreError(MemtraceError):
    """The storage backend failed (I/O error, database locked for too long, …)."""

    status_code = 503
    default_message = "storage unavailable"


class CorruptRowError(StoreError):
    """A stored row cannot be read back (invalid JSON, a time outside the calendar, a value of
    the wrong type — from an older version's data, a manual edit or a bug).

    Lists and searches skip such a row (and log and count it); this error is raised where a
    skip would lie: reading that one row by id, and exports. ``memtrace doctor`` lists and
    removes such rows.

    Attributes:
        kind: ``memory``, ``agent`` or ``session``.
        row_id: the row's id.
        org_id: the row's org.
        reason: what is wrong with it.
    """

    status_code = 500
    default_message = "a stored row cannot be read"

    def __init__(self, kind: str, row_id: str, org_id: str, reason: str) -> None:
        self.kind = kind
        self.row_id = row_id
        self.org_id = org_id
        self.reason = reason
        super().__init__(
            f"{kind} {row_id} of {org_id} cannot be read: {reason} (the stored row is "
            "damaged; `memtrace doctor STORE_URL` lists such rows, `--fix` removes them)"
        )


class TransportError(MemtraceError):
    """The HTTP client could not reach the server (connection refused, timeout, TLS …)."""

    status_code = 0
    default_message = "could not reach the memtrace server"


class PluginConflictError(MemtraceError):
    """Two plugins registered the same store scheme or context format, and the later one did
    not ask to override it (``register(..., override=True)``). Raised when plugins load."""

    status_code = 500
    default_message = "plugin conflict"


STATUS_TO_ERROR: dict[int, type[MemtraceError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    503: StoreError,
}

__all__ = [
    "STATUS_TO_ERROR",
    "AuthenticationError",
    "ConflictError",
    "CorruptRowError",
    "DuplicateMemoryError",
    "MemtraceError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PluginConflictError",
    "StoreError",
    "TransportError",
    "ValidationError",
    "WriteRejectedError",
]
