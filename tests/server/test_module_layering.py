"""The server's modules import one way (docs/architecture.md, "The seams"): app and openapi
use the operations table, the table uses the handlers, the handlers use http/auth/state —
never back up. Checked on the source, so that a lazy import inside a function counts too."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import memtrace_server

PACKAGE = Path(memtrace_server.__file__).parent
#: module -> the server modules it must not import (directly or in a function)
FORBIDDEN = {
    "routes": {"operations", "openapi", "app"},
    "operations": {"openapi", "app"},
    "openapi": {"app", "routes"},
    "http": {"routes", "operations", "openapi", "app"},
    "auth": {"routes", "operations", "openapi", "app"},
    "state": {"routes", "operations", "openapi", "app"},
}


def server_imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("memtrace_server."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("memtrace_server."):
                    found.add(alias.name.split(".")[1])
    return found


def test_server_modules_import_one_way() -> None:
    for module, forbidden in FORBIDDEN.items():
        assert not server_imports(module) & forbidden, module


def test_every_handler_is_in_the_table() -> None:
    from memtrace_server import routes
    from memtrace_server.operations import OPERATIONS

    handlers = [op.handler for op in OPERATIONS]  # one may serve two routes (PUT and PATCH)
    defined = {
        fn
        for name, fn in inspect.getmembers(routes, inspect.iscoroutinefunction)
        if fn.__module__ == routes.__name__ and not name.startswith("_")
    }
    assert defined == set(handlers), "a handler missing from the table, or not a handler"
