"""Property-based fuzzing with schemathesis against ``/openapi.json`` of a live server: for
generated valid and invalid requests to **every** operation (key admin and the NDJSON import
included), no 5xx, only status codes the operation lists explicitly, documented content types,
and bodies that conform to the documented schemas.

The fuzzer acts as the service admin, so it can reach every route. Its own key cannot be
revoked or rotated: its id is never sent as a ``key_id`` (those cases get the id of a throw-away
key instead, which also exercises the success paths of revoke and rotate).

Bounded in the default run (a few examples per operation and mode); ``MEMTRACE_EXHAUSTIVE=1``
runs ≥ 5,000 cases: ``MEMTRACE_EXHAUSTIVE=1 pytest tests/server/test_fuzz.py -s`` (see
docs/testing.md).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from memtrace_server.testing import LiveServer, config_for, serve_in_thread


@pytest.fixture
def live(db_url: str, admin_key: str) -> Iterator[LiveServer]:
    """The server of tests/server/conftest.py, whose live streams end after 0.3 s (the
    fuzzer reads every response to its end)."""
    with serve_in_thread(config_for(db_url, stream_max_seconds=0.3)) as server:
        yield server


CHECKS: list[Any] = [not_a_server_error, content_type_conformance, response_schema_conformance]
EXHAUSTIVE = os.environ.get("MEMTRACE_EXHAUSTIVE", "") not in ("", "0")
#: per operation and mode; exhaustive: 36 operations x 2 modes x up to 100 (some operations
#: have fewer distinct cases) > 5,000 cases
EXAMPLES = 100 if EXHAUSTIVE else 12


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """Import bodies: whatever was generated, as text (most of it is not valid JSON Lines)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


class _Victims:
    """Throw-away keys (and their ids) handed to the revoke/rotate cases."""

    def __init__(self, live: LiveServer, admin_key: str) -> None:
        self.http = httpx.Client(base_url=live.url, headers={"x-api-key": admin_key}, timeout=30)
        self.counter = itertools.count()

    def key_id(self) -> str:
        created = self.http.post("/api/v1/admin/keys", json={"name": f"victim{next(self.counter)}"})
        assert created.status_code == 201, created.text
        return str(created.json()["key"]["id"])


def _runner(
    operation: Any, mode: GenerationMode, max_examples: int, documented: set[str], call: Any
) -> Any:
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        call(case, documented)

    return run


def _fuzz(live: LiveServer, admin_key: str, max_examples: int) -> dict[str, int]:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"x-api-key": admin_key}
    with httpx.Client(base_url=live.url, headers=headers) as http:
        me = http.get("/api/v1/me").json()
    own_key_id = me["key_id"]
    assert own_key_id
    victims = _Victims(live, admin_key)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    stats = {"cases": 0, "operations": len(operations), "no_negative": 0, "server_errors": 0}
    exercised: dict[str, int] = {}
    undocumented: dict[tuple[str, int], str] = {}

    def call(case: Any, documented: set[str]) -> None:
        params = case.path_parameters or {}
        if params.get("key_id") == own_key_id or ("key_id" in params and stats["cases"] % 2 == 0):
            params["key_id"] = victims.key_id()
        response = case.call(base_url=live.url, headers=headers, timeout=30)
        stats["cases"] += 1
        if response.status_code >= 500:
            stats["server_errors"] += 1
        case.validate_response(response, checks=CHECKS)
        # "default" is documented everywhere; the codes that do occur must be listed
        if str(response.status_code) not in documented:
            undocumented.setdefault((case.operation.label, response.status_code), response.text)
        exercised[case.operation.label] = exercised.get(case.operation.label, 0) + 1

    for operation in operations:
        documented = {code for code in operation.definition.raw["responses"] if code != "default"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _runner(operation, mode, max_examples, documented, call)
            try:
                run()
            except Unsatisfiable:
                # nothing in this operation can be made invalid (e.g. no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
                stats["no_negative"] += 1
    victims.http.close()
    assert not undocumented, "\n".join(f"{k}: {v[:200]}" for k, v in sorted(undocumented.items()))
    # every operation was really called, key admin and the NDJSON import included
    assert set(exercised) == {op.label for op in operations}
    assert "POST /api/v1/import" in exercised
    assert "DELETE /api/v1/admin/keys/{key_id}" in exercised
    assert stats["no_negative"] < len(operations)
    # and the server is still healthy and the fuzzer's admin key still works afterwards
    assert httpx.get(f"{live.url}/ready").status_code == 200
    whoami = httpx.get(f"{live.url}/api/v1/me", headers=headers)
    assert whoami.status_code == 200
    assert whoami.json()["key_id"] == own_key_id
    return stats


def test_fuzz_every_operation(live: LiveServer, admin_key: str) -> None:
    """Bounded by default; ``MEMTRACE_EXHAUSTIVE=1`` runs ≥ 5,000 cases and prints the figures."""
    started = time.monotonic()
    stats = _fuzz(live, admin_key, EXAMPLES)
    print(
        f"\nschemathesis: {stats['cases']} cases over {stats['operations']} operations, "
        f"{stats['server_errors']} server errors, {time.monotonic() - started:.1f} s"
    )
    assert stats["cases"] >= (5000 if EXHAUSTIVE else 200)
    assert stats["server_errors"] == 0
