"""Built-in plugin: the SQLite, PostgreSQL and Arc stores and the markdown / xml / jsonl context formats, registered
through the same hooks as third-party plugins."""

from __future__ import annotations

from collections.abc import Callable

from .context import ContextFormat, JsonLinesFormat, MarkdownFormat, XmlFormat
from .hookspecs import StoreFactory, hookimpl


@hookimpl
def register_stores(register: Callable[[str, StoreFactory], None]) -> None:
    from .stores.arc import ArcStore
    from .stores.postgres import PostgresStore
    from .stores.sqlite import SQLiteStore

    register("sqlite", SQLiteStore.from_url)
    register("postgresql", PostgresStore.from_url)
    register("postgres", PostgresStore.from_url)
    register("arc+http", ArcStore.from_url)
    register("arc+https", ArcStore.from_url)


@hookimpl
def register_context_formats(register: Callable[[ContextFormat], None]) -> None:
    register(MarkdownFormat())
    register(XmlFormat())
    register(JsonLinesFormat())
