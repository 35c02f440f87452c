"""Plugin manager: loads the built-ins and every plugin installed under the ``memtrace``
entry-point group, and exposes the registries they fill."""

from __future__ import annotations

import logging
from typing import Any, cast

import pluggy

from . import hookspecs
from .context import ContextFormat
from .errors import ValidationError
from .hookspecs import StoreFactory
from .models import Memory, MemoryCreate

log = logging.getLogger("memtrace.plugins")

ENTRY_POINT_GROUP = "memtrace"


class PluginRegistry:
    """The loaded plugins and what they registered (stores by scheme, context formats by name)."""

    def __init__(self, *, load_entry_points: bool = True, plugins: list[Any] | None = None) -> None:
        self.pm = pluggy.PluginManager("memtrace")
        self.pm.add_hookspecs(hookspecs)
        from . import builtins

        self.pm.register(builtins, name="memtrace.builtins")
        if load_entry_points:
            self.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        for plugin in plugins or []:
            self.pm.register(plugin)
        self.stores: dict[str, StoreFactory] = {}
        self.context_formats: dict[str, ContextFormat] = {}
        self.pm.hook.register_stores(register=self._register_store)
        self.pm.hook.register_context_formats(register=self._register_format)

    def _register_store(self, scheme: str, factory: StoreFactory) -> None:
        self.stores[scheme.lower()] = factory

    def _register_format(self, fmt: ContextFormat) -> None:
        self.context_formats[fmt.name] = fmt

    def store_for(self, url: str) -> Any:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        factory = self.stores.get(scheme)
        if factory is None:
            known = ", ".join(sorted(self.stores)) or "none"
            raise ValidationError(
                f"no store for URL scheme {scheme!r} (registered: {known})", field="url"
            )
        return factory(url)

    def context_format(self, name: str) -> ContextFormat:
        fmt = self.context_formats.get(name)
        if fmt is None:
            known = ", ".join(sorted(self.context_formats))
            raise ValidationError(
                f"invalid format: {name!r} (expected one of {known})", field="format"
            )
        return fmt

    @property
    def has_before_write(self) -> bool:
        return bool(self.pm.hook.before_write.get_hookimpls())

    @property
    def has_after_write(self) -> bool:
        return bool(self.pm.hook.after_write.get_hookimpls())

    def before_write(self, memory: MemoryCreate, org_id: str) -> MemoryCreate:
        """Chain every ``before_write`` implementation (in pluggy's call order)."""
        for impl in reversed(self.pm.hook.before_write.get_hookimpls()):
            kwargs = {"memory": memory, "org_id": org_id}
            result = cast(
                "MemoryCreate | None",
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames}),
            )
            if result is not None:
                memory = result
        return memory

    def after_write(self, memories: list[Memory], org_id: str) -> None:
        """Call every ``after_write`` observer; one that raises is logged and the others still
        run (pluggy itself would stop at the first exception)."""
        kwargs = {"memories": memories, "org_id": org_id}
        for impl in reversed(self.pm.hook.after_write.get_hookimpls()):
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception:  # observers must not fail a committed write
                log.exception("after_write plugin %s failed", impl.plugin_name)


_default: PluginRegistry | None = None


def default_registry() -> PluginRegistry:
    """The process-wide registry (built-ins + installed entry points), created on first use."""
    global _default
    if _default is None:
        _default = PluginRegistry()
    return _default
