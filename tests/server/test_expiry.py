"""One expiry syntax for new API keys: the HTTP ``expires_at`` (``POST /api/v1/admin/keys``)
and the CLI's ``--expires`` both go through :func:`memtrace_server.auth.parse_expiry`, so they
accept and refuse the same forms."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from memtrace_core import ValidationError
from memtrace_server import config as config_module
from memtrace_server.auth import parse_expiry
from memtrace_server.cli import main
from memtrace_server.testing import LiveServer

NOW = datetime(2026, 1, 1, tzinfo=UTC)
YEAR = datetime.now(UTC).year + 2  # a year that stays in the future


def test_parse_expiry_forms() -> None:
    assert parse_expiry("30d", now=NOW) == NOW + timedelta(days=30)
    assert parse_expiry("12h", now=NOW) == NOW + timedelta(hours=12)
    assert parse_expiry("2w", now=NOW) == NOW + timedelta(weeks=2)
    assert parse_expiry("90m", now=NOW) == NOW + timedelta(minutes=90)
    assert parse_expiry(" 3600s ", now=NOW) == NOW + timedelta(hours=1)
    june = datetime(2027, 6, 1, tzinfo=UTC)
    assert parse_expiry("2027-06-01T00:00:00Z", now=NOW) == june
    assert parse_expiry("2027-06-01T02:00:00+02:00", now=NOW) == june
    assert parse_expiry("2027-06-01T00:00:00", now=NOW) == june  # no offset: UTC
    assert parse_expiry("2027-06-01", now=NOW) == june
    assert parse_expiry(datetime(2027, 6, 1), now=NOW) == june  # naive: UTC
    assert parse_expiry(june, now=NOW) == june


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "expected a duration"),
        ("", "expected a duration"),
        ("0d", "invalid duration"),
        ("2025-12-31T23:59:59Z", "must be in the future"),
        (datetime(2025, 1, 1, tzinfo=UTC), "must be in the future"),
        (30, "expected a string"),
    ],
)
def test_parse_expiry_refuses(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as exc:
        parse_expiry(value, now=NOW)  # type: ignore[arg-type]
    assert exc.value.field == "expires_at"


# Each form and how far in the future it must land (None: the timestamp itself).
FORMS: list[tuple[str, timedelta | datetime]] = [
    ("30d", timedelta(days=30)),
    ("12h", timedelta(hours=12)),
    ("2w", timedelta(weeks=2)),
    (f"{YEAR}-06-01T00:00:00Z", datetime(YEAR, 6, 1, tzinfo=UTC)),
    (f"{YEAR}-06-01T02:00:00+02:00", datetime(YEAR, 6, 1, tzinfo=UTC)),
    (f"{YEAR}-06-01", datetime(YEAR, 6, 1, tzinfo=UTC)),
]
BAD = ["soon", "0d", "2001-01-01T00:00:00Z", "tomorrow"]


def _check(expires_at: str, expected: timedelta | datetime, before: datetime) -> None:
    got = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    if isinstance(expected, datetime):
        assert got == expected
    else:
        assert before + expected <= got <= datetime.now(UTC) + expected


@pytest.fixture
def isolated_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI sees no config file and no MEMTRACE_* variable but a cheap bcrypt cost."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("MEMTRACE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEMTRACE_AUTH_BCRYPT_COST", "4")
    monkeypatch.setattr(config_module, "SEARCH_PATHS", ())


async def test_http_and_cli_accept_and_refuse_the_same_forms(
    live: LiveServer,
    http: httpx.AsyncClient,
    db_url: str,
    isolated_cli: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def cli(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, [*args, "--org", "org_default", "--store", db_url])
        out, err = capsys.readouterr()
        return code, out, err

    for i, (form, expected) in enumerate(FORMS):
        before = datetime.now(UTC)
        resp = await http.post("/api/v1/admin/keys", json={"name": f"http{i}", "expires_at": form})
        assert resp.status_code == 201, (form, resp.text)
        _check(resp.json()["key"]["expires_at"], expected, before)
        code, out, err = await cli(
            "key", "create", "--name", f"cli{i}", "--expires", form, "--json"
        )
        assert code == 0, (form, err)
        _check(json.loads(out)["expires_at"], expected, before)
    for form in BAD:
        resp = await http.post("/api/v1/admin/keys", json={"name": "bad", "expires_at": form})
        assert resp.status_code == 400, (form, resp.text)
        assert resp.json()["field"] == "expires_at"
        code, _, err = await cli("key", "create", "--name", "bad", "--expires", form)
        assert code == 1, form
        assert err.startswith("error: ")
        assert "--expires" in err
    # nothing was created for the refused forms
    keys = (await http.get("/api/v1/admin/keys")).json()["keys"]
    assert "bad" not in {k["name"] for k in keys}
    assert len([k for k in keys if k["expires_at"] is not None]) == 2 * len(FORMS)
