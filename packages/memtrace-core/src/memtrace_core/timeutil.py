"""Time handling: one representation (integer microseconds since the Unix epoch, UTC) inside,
RFC 3339 outside.

Time windows (``since`` / ``until``) accept, everywhere:

* relative durations ``N`` + unit, where the unit is ``s`` (seconds), ``m`` (minutes — *not*
  months, as in the original), ``h`` (hours), ``d`` (days) or ``w`` (weeks) and ``N`` is a
  positive integer; ``since="2h"`` means "newer than two hours ago" and ``until="2h"`` means
  "older than two hours ago";
* ISO 8601 / RFC 3339 timestamps (``2026-02-07T20:15:00Z``, ``2026-02-07T20:15:00+02:00``,
  ``2026-02-07``); a timestamp without an offset is taken as UTC;
* ``until="now"`` (no upper bound), as the original.

Anything else raises :class:`~memtrace_core.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from .errors import ValidationError, show_value

_RELATIVE_RE = re.compile(r"^\s*([0-9]{1,9})\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Largest relative window accepted (100 years); beyond it the value is almost surely a mistake.
MAX_RELATIVE_SECONDS = 100 * 366 * 86400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Bounds of the representable range (years 1..9999), in microseconds.
MIN_US = -62135596800 * 1_000_000
MAX_US = 253402300799 * 1_000_000 + 999_999


def now_us() -> int:
    """The current time in microseconds since the epoch (UTC)."""
    return time.time_ns() // 1000


def to_us(value: datetime) -> int:
    """A datetime as microseconds since the epoch; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(0, 0, us)  # positional: a third cheaper than microseconds=us


def format_us(us: int) -> str:
    """RFC 3339 in UTC with the fractional seconds trimmed of trailing zeros (as Go's
    ``RFC3339Nano``): ``2026-02-07T20:15:00.5Z``, ``2026-02-07T20:15:00Z``."""
    dt = from_us(us)
    # not strftime("%Y"): glibc prints year 1 as "1", which is not RFC 3339
    base = (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    )
    if dt.microsecond:
        base += "." + f"{dt.microsecond:06d}".rstrip("0")
    return base + "Z"


def format_dt(value: datetime) -> str:
    """:func:`format_us` for a datetime."""
    return format_us(to_us(value))


def parse_relative(value: str) -> int | None:
    """The length in microseconds of a relative duration such as ``24h``, or None if ``value``
    is not of that form. Raises ValidationError for zero or absurdly large durations."""
    match = _RELATIVE_RE.match(value)
    if match is None:
        return None
    amount, unit = int(match.group(1)), match.group(2)
    seconds = amount * _UNIT_SECONDS[unit]
    if amount <= 0 or seconds > MAX_RELATIVE_SECONDS:
        raise ValidationError(
            f"invalid duration {value!r}: must be between 1{unit} and 100 years",
        )
    return seconds * 1_000_000


def parse_timestamp(value: str) -> int:
    """An ISO 8601 timestamp as microseconds; naive means UTC. Raises ValueError."""
    text = value.strip()
    if not text or len(text) > 64:
        raise ValueError(value)
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return to_us(dt)


def parse_time_bound(
    value: str | datetime | int | None,
    *,
    field: str,
    now: int | None = None,
) -> int | None:
    """Resolve a ``since``/``until`` value to microseconds since the epoch (or None).

    ``value`` may be a relative duration (``"2h"``), an ISO timestamp, a datetime, or an int of
    microseconds. ``until="now"`` means no upper bound.
    """
    result = _parse_time_bound(value, field=field, now=now)
    if result is not None and not MIN_US <= result <= MAX_US:
        raise ValidationError(
            f"invalid {field}: must be between {format_us(MIN_US)} and {format_us(MAX_US)} in UTC",
            field=field,
        )
    return result


def _parse_time_bound(
    value: str | datetime | int | None, *, field: str, now: int | None
) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_us(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(f"invalid {field}: expected a string", field=field)
    if isinstance(value, int):
        return value
    text = value.strip()
    if text == "":
        return None
    if text.lower() == "now":
        return None if field == "until" else (now if now is not None else now_us())
    try:
        relative = parse_relative(text)
    except ValidationError as exc:
        raise ValidationError(f"invalid {field}: {exc.message}", field=field) from None
    if relative is not None:
        return (now if now is not None else now_us()) - relative
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"invalid {field} {show_value(value)}: use a duration such as 30m, 24h, 7d, 2w "
            "or an ISO 8601 timestamp such as 2026-02-07T20:15:00Z",
            field=field,
        ) from None


def window(
    since: str | datetime | int | None,
    until: str | datetime | int | None,
    *,
    now: int | None = None,
    prefix: str = "",
) -> tuple[int | None, int | None]:
    """Resolve a (since, until) pair; raises ValidationError if since is after until.
    ``prefix`` names the pair in errors (``"recorded_"``: ``recorded_since`` /
    ``recorded_until``); ``until="now"`` is no bound either way."""
    current = now if now is not None else now_us()
    lo = parse_time_bound(since, field=f"{prefix}since", now=current)
    hi = parse_time_bound(until, field=f"{prefix}until", now=current)
    if lo is not None and hi is not None and lo > hi:
        raise ValidationError(
            f"invalid time window: {prefix}since is after {prefix}until", field=f"{prefix}since"
        )
    return lo, hi


def parse_as_of(value: str | datetime | int | None, *, now: int) -> int | None:
    """An ``as_of`` bound (a recorded time: relative = that long before ``now``, ``now``, or an
    ISO timestamp) in microseconds, or None; a time after ``now`` is refused (nothing is known
    about the future, and a clock-skewed client must not read a moving view)."""
    if isinstance(value, str) and value.strip().lower() == "now":
        return now
    bound = parse_time_bound(value, field="as_of", now=now)
    if bound is not None and bound > now:
        raise ValidationError(
            f"invalid as_of: {format_us(bound)} is in the future (now is {format_us(now)}); "
            "as_of reads what memtrace knew at a past time",
            field="as_of",
        )
    return bound
