"""Plugin manager: loads the built-ins and every plugin installed under the ``memtrace``
entry-point group, and exposes the registries they fill."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import pluggy

from . import hookspecs
from .context import ContextFormat
from .errors import PluginConflictError, ValidationError
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
        #: Which plugin registered each store scheme / context format (by pluggy name).
        self.store_owners: dict[str, str] = {}
        self.format_owners: dict[str, str] = {}
        # Each implementation gets its own ``register`` so that a clash can name both plugins;
        # they run in registration order (built-ins first), so a plugin can override one.
        # (get_hookimpls() lists them in registration order; pluggy calls them in reverse.)
        for impl in self.pm.hook.register_stores.get_hookimpls():
            impl.function(register=self._store_registrar(_label(impl)))
        for impl in self.pm.hook.register_context_formats.get_hookimpls():
            impl.function(register=self._format_registrar(_label(impl)))

    def _claim(
        self, kind: str, name: str, owners: dict[str, str], plugin: str, override: bool
    ) -> None:
        previous = owners.get(name)
        if previous is not None and previous != plugin:
            if not override:
                raise PluginConflictError(
                    f"{kind} {name!r} is registered by two plugins: {previous!r} and "
                    f"{plugin!r} (pass override=True to register() to replace it on purpose)"
                )
            log.info("plugin %r replaces %s %r of %r", plugin, kind, name, previous)
        owners[name] = plugin

    def _store_registrar(self, plugin: str) -> Callable[..., None]:
        def register(scheme: str, factory: StoreFactory, *, override: bool = False) -> None:
            key = scheme.lower()
            self._claim("store scheme", key, self.store_owners, plugin, override)
            self.stores[key] = factory

        return register

    def _format_registrar(self, plugin: str) -> Callable[..., None]:
        def register(fmt: ContextFormat, *, override: bool = False) -> None:
            self._claim("context format", fmt.name, self.format_owners, plugin, override)
            self.context_formats[fmt.name] = fmt

        return register

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


def _label(impl: Any) -> str:
    """A plugin's name for messages: its entry-point or registration name, or its class for
    an object registered without one (pluggy names those by ``id()``)."""
    name = str(impl.plugin_name)
    if name.isdigit():
        plugin = impl.plugin
        kind = plugin.__name__ if isinstance(plugin, type) else type(plugin).__qualname__
        return f"{kind} (registered without a name)"
    return name


_default: PluginRegistry | None = None


def default_registry() -> PluginRegistry:
    """The process-wide registry (built-ins + installed entry points), created on first use."""
    global _default
    if _default is None:
        _default = PluginRegistry()
    return _default
