"""Property-based fuzzing with schemathesis against ``/openapi.json`` of a live server: for
generated valid and invalid requests to every operation, no 5xx, documented status codes and
content types, and bodies that conform to the documented schemas. Bounded (a few examples per
operation and mode) so that it stays well under a minute."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from memtrace_server.testing import LiveServer

CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 12


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """Import bodies: whatever was generated, as text (most of it is not valid JSON Lines)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


def test_fuzz_every_operation(live: LiveServer, admin_key: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"x-api-key": admin_key}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    exercised = 0
    no_negative = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal exercised
                response = case.call(base_url=live.url, headers=headers, timeout=30)
                case.validate_response(response, checks=CHECKS)
                exercised += 1

            try:
                run()
            except Unsatisfiable:
                # nothing in this operation can be made invalid (e.g. no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
                no_negative += 1
    assert exercised > 200
    assert no_negative < len(operations)
    # and the server is still healthy and the admin key still works afterwards
    import httpx

    assert httpx.get(f"{live.url}/ready").status_code == 200
