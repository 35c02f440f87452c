"""The plugin contract (pluggy, project name ``memtrace``, entry-point group ``memtrace``).

Hooks are synchronous (pluggy never awaits); they *register* things whose methods may be async,
or observe / transform memories at two points of the write path. Built-in stores and context
formats register through the same hooks as third-party plugins.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`, installed with an
entry point::

    [project.entry-points.memtrace]
    myplugin = "my_package.memtrace_plugin"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .models import Memory, MemoryCreate
    from .stores.base import Store

hookspec = pluggy.HookspecMarker("memtrace")
hookimpl = pluggy.HookimplMarker("memtrace")

StoreFactory = Callable[[str], "Store"]


@hookspec
def register_stores(register: Callable[..., None]) -> None:
    """Register store factories by URL scheme: ``register("sqlite", factory)``, where
    ``factory(url)`` returns an unopened :class:`~memtrace_core.stores.base.Store`.

    A scheme another plugin already registered is a
    :class:`~memtrace_core.errors.PluginConflictError` naming both plugins, unless the call
    says ``register(scheme, factory, override=True)`` (built-ins register first, so a plugin
    can replace the built-in SQLite store that way)."""


@hookspec
def register_context_formats(register: Callable[..., None]) -> None:
    """Register context formats (objects with ``name`` and ``render(...)``, see
    :class:`~memtrace_core.context.ContextFormat`): ``register(fmt)``; a name already taken
    is a :class:`~memtrace_core.errors.PluginConflictError` unless
    ``register(fmt, override=True)``."""


@hookspec
def before_write(memory: MemoryCreate, org_id: str) -> MemoryCreate | None:
    """Called for each validated memory before it is written.

    Return a (possibly modified) :class:`~memtrace_core.models.MemoryCreate` to replace it, or
    None to keep it unchanged. Raise :class:`~memtrace_core.errors.WriteRejectedError` to refuse
    the memory (a batch is then refused whole, before anything is written). Implementations are
    chained: each one sees the result of the previous one. The result is validated again.
    """


@hookspec
def after_write(memories: list[Memory], org_id: str) -> None:
    """Called with the memories of one write call after they are committed (duplicates
    excluded). Exceptions raised here are logged and do not fail the write."""


def _unused(*_: Any) -> None:  # pragma: no cover - keeps Any imported for type checkers
    return None
