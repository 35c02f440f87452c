"""A request the client abandons is not a server error."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sanic.exceptions import RequestCancelled

from memtrace_server.app import JsonErrorHandler


def test_cancelled_request_is_499_not_500() -> None:
    request: Any = SimpleNamespace(method="POST", path="/api/v1/memories", ctx=SimpleNamespace())
    response = JsonErrorHandler().default(request, RequestCancelled())
    assert response.status == 499
    assert b"client closed request" in response.body


def test_genuine_bug_is_still_500() -> None:
    request: Any = SimpleNamespace(method="GET", path="/x", ctx=SimpleNamespace(rid="r1"))
    response = JsonErrorHandler().default(request, RuntimeError("boom"))
    assert response.status == 500
    assert b"boom" not in response.body
