"""The tools derive from the operations table: every argument of the operation a tool maps to
is offered (with the OpenAPI document's schema for it) or excluded on purpose, the permission is
the operation's, and a field added to a request model reaches the tool by itself. Plus the
error handling of a call, in process."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from pydantic import create_model

from memtrace_core import MemoryCreate, SearchQuery
from memtrace_core.errors import StoreError
from memtrace_server.auth import Principal
from memtrace_server.mcpserver.compat import ToolError
from memtrace_server.mcpserver.server import Backend, Caller, ServerOptions, _call, error_text
from memtrace_server.mcpserver.tools import TOOLS, Defaults, arguments, operation_arguments
from memtrace_server.openapi import openapi


def test_every_operation_argument_is_offered_or_excluded() -> None:
    for spec in TOOLS:
        op_args = {name for name, *_ in operation_arguments(spec.operation, spec.body)}
        offered = {a.name for a in arguments(spec, Defaults())}
        extra = {a.name for a in spec.extra}
        assert offered == (op_args - set(spec.exclude)) | extra, spec.name
        assert set(spec.exclude) <= op_args, f"{spec.name} excludes what the operation lacks"
        assert all(reason for reason in spec.exclude.values())
        assert set(spec.docs) <= op_args | extra, spec.name
        assert set(spec.defaults) <= offered, spec.name
        assert spec.permission == spec.operation.permission, spec.name


def test_the_schemas_are_the_documents() -> None:
    """Each argument's schema is the one the OpenAPI document gives the same field."""
    document = openapi()
    for spec in TOOLS:
        op = spec.operation
        path_item = document["paths"][op.path][op.method.lower()]
        params = {p["name"]: p["schema"] for p in path_item.get("parameters", [])}
        body_model = spec.body.__name__ if spec.body else None
        if body_model is None and isinstance(op.body, type):
            body_model = op.body.__name__
        props = document["components"]["schemas"][body_model]["properties"] if body_model else {}
        for arg in arguments(spec, Defaults()):
            if arg in spec.extra:
                continue
            documented = dict(params.get(arg.name) or props[arg.name])
            for key in ("title", "description", "default"):
                documented.pop(key, None)
            schema = arg.schema
            if not arg.required and documented != schema:
                # an optional argument also takes null ("not given")
                assert schema["anyOf"][-1] == {"type": "null"}, (spec.name, arg.name)
                if len(schema) == 1 and len(schema["anyOf"]) == 2 and "anyOf" not in documented:
                    schema = schema["anyOf"][0]
                else:
                    schema = {**schema, "anyOf": schema["anyOf"][:-1]}
            assert schema == documented, (spec.name, arg.name)


def test_create_memories_takes_memory_create() -> None:
    (spec,) = [s for s in TOOLS if s.name == "memtrace_remember"]
    schema = spec.operation.body
    assert isinstance(schema, dict)
    assert {"$ref": "#/components/schemas/MemoryCreate"} in schema["oneOf"]
    assert spec.body is MemoryCreate


def test_a_new_field_reaches_the_tool_by_itself() -> None:
    """What happens when SearchQuery grows a field: the search tool offers it."""
    grown = create_model("GrownSearchQuery", __base__=SearchQuery, brand_new=(str | None, None))
    (search,) = [s for s in TOOLS if s.name == "memtrace_search"]
    op = dataclasses.replace(search.operation, body=grown)
    names = {name for name, *_ in operation_arguments(op)}
    assert "brand_new" in names
    assert set(SearchQuery.model_fields) <= names


def test_a_default_is_claimed_exactly_where_the_tool_applies_it() -> None:
    for spec in TOOLS:
        plain = {a.name: a for a in arguments(spec, Defaults())}
        configured = {a.name: a for a in arguments(spec, Defaults(agent_id="me", session_id="s"))}
        for name, value in (("agent_id", "me"), ("session_id", "s")):
            if name not in plain:
                continue
            claims = f"{value!r} (configured)" in configured[name].description
            assert claims == (name in spec.configured), (spec.name, name)
            if name in spec.configured:
                assert not configured[name].required
            else:
                assert configured[name].required == plain[name].required
    by_name = {s.name: s for s in TOOLS}
    # the tools that act for "me" by default, and the ones that span the org
    assert set(by_name["memtrace_remember"].configured) == {"agent_id", "session_id"}
    assert by_name["memtrace_search"].configured == ()
    assert by_name["memtrace_forget"].configured == ()
    assert by_name["memtrace_sessions_list"].configured == ()


def test_every_argument_is_described() -> None:
    for spec in TOOLS:
        for arg in arguments(spec, Defaults()):
            assert len(arg.description) >= 10, (spec.name, arg.name)


class _Fake(Backend):
    def __init__(self, principal: Principal | None = None) -> None:
        self.principal = principal

    def api_for(self, caller: Caller | None) -> tuple[Any, Principal | None]:
        return object(), self.principal


def _options(timeout: float = 5) -> ServerOptions:
    return ServerOptions(defaults=Defaults(), timeout=timeout)


def test_a_slow_call_times_out_as_a_tool_error() -> None:
    async def slow(api: Any) -> None:
        await asyncio.sleep(10)

    with pytest.raises(ToolError, match=r"no answer from memtrace within 0\.2 s"):
        asyncio.run(_call("memtrace_recall", "read", _Fake(), None, _options(0.2), slow))


def test_a_bug_is_a_tool_error_not_a_crash() -> None:
    async def broken(api: Any) -> None:
        raise KeyError("boom")

    with pytest.raises(ToolError, match=r"internal error \(KeyError: 'boom'\)"):
        asyncio.run(_call("memtrace_recall", "read", _Fake(), None, _options(), broken))


def test_a_missing_permission_is_refused_before_the_call() -> None:
    reader = Principal("org_a", "k1", "reader", frozenset({"read"}))
    called: list[int] = []

    async def write(api: Any) -> None:
        called.append(1)

    with pytest.raises(ToolError, match="lacks the 'write' permission"):
        asyncio.run(_call("memtrace_remember", "write", _Fake(reader), None, _options(), write))
    assert called == []


def test_error_texts() -> None:
    assert error_text(StoreError("database is locked")) == (
        "memtrace is unavailable (database is locked). Try again later."
    )
