"""Plugins: a third-party plugin installed through a real entry point (store + context format),
and the before_write / after_write hooks."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import (
    Memory,
    MemoryCreate,
    PluginRegistry,
    ValidationError,
    WriteRejectedError,
    aconnect,
    hookimpl,
)

PLUGIN_MODULE = textwrap.dedent(
    '''
    """A third-party memtrace plugin: a store under mystore:// and a "shout" context format."""
    from memtrace_core import hookimpl
    from memtrace_core.stores.sqlite import SQLiteStore


    class MyStore(SQLiteStore):
        """SQLiteStore behind its own URL scheme; counts the writes it serves."""

        writes = 0

        @classmethod
        def from_url(cls, url):
            return cls(url.split("://", 1)[1])

        async def insert_memories(self, org_id, records, *, dedup_since, now):
            MyStore.writes += len(records)
            return await super().insert_memories(org_id, records, dedup_since=dedup_since, now=now)


    class Shout:
        name = "shout"

        def render(self, scope, scope_id, memories):
            lines = [f"{scope.upper()} {scope_id}"]
            lines += [m.content.upper() + "!" for m in memories]
            return "\\n".join(lines) + "\\n"


    @hookimpl
    def register_stores(register):
        register("mystore", MyStore.from_url)


    @hookimpl
    def register_context_formats(register):
        register(Shout())
    '''
)

CHECK = textwrap.dedent(
    """
    import json, sys
    from memtrace_core import PluginRegistry, connect
    import memtrace_core.plugins as plugins

    registry = PluginRegistry()
    names = [name for name, _ in registry.pm.list_name_plugin()]
    mt = connect("mystore://" + sys.argv[1])  # the process-wide default registry
    store = mt.aio.store
    m = mt.remember("plug_agent", "hello from a plugin store", session_id="sess_p")
    ctx = mt.get_session_context("sess_p", format="shout")
    out = {
        "in_registry": "mystore" in registry.stores and "shout" in registry.context_formats,
        "plugin_names": names,
        "store_class": type(store).__name__,
        "store_module": type(store).__module__,
        "writes": type(store).writes,
        "default_has_it": "mystore" in plugins.default_registry().stores,
        "memory_id": m.id,
        "context": ctx.context,
        "format": ctx.format,
        "count": ctx.memory_count,
    }
    mt.close()
    print(json.dumps(out))
    """
)


def test_entry_point_plugin_store_and_format(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "memtrace_myplug-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: memtrace-myplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[memtrace]\nmyplug = memtrace_myplug\n")
    (dist / "RECORD").write_text("")
    (site / "memtrace_myplug.py").write_text(PLUGIN_MODULE)
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    db = tmp_path / "data" / "plugged.db"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, str(script), str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["in_registry"] is True
    assert "myplug" in out["plugin_names"]
    assert out["default_has_it"] is True
    assert (out["store_class"], out["store_module"]) == ("MyStore", "memtrace_myplug")
    assert out["writes"] == 1
    assert out["format"] == "shout"
    assert out["count"] == 1
    assert out["context"] == "SESSION sess_p\nHELLO FROM A PLUGIN STORE!\n"
    # The plugin's store really wrote the file named by the mystore:// URL.
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT id, content FROM memories").fetchall()
    finally:
        conn.close()
    assert rows == [(out["memory_id"], "hello from a plugin store")]


def test_without_the_plugin_the_scheme_is_unknown(tmp_path: Path) -> None:
    registry = PluginRegistry(load_entry_points=False)
    assert "mystore" not in registry.stores
    with pytest.raises(ValidationError) as info:
        registry.store_for(f"mystore://{tmp_path / 'x.db'}")
    assert info.value.field == "url"
    assert "sqlite" in info.value.message


# ---------------------------------------------------------------------------------------------
# before_write / after_write


class Redact:
    @hookimpl
    def before_write(self, memory: MemoryCreate, org_id: str) -> MemoryCreate | None:
        if "4111-1111-1111-1111" in memory.content:
            return memory.model_copy(
                update={"content": memory.content.replace("4111-1111-1111-1111", "[CARD]")}
            )
        return None


class Reject:
    @hookimpl
    def before_write(self, memory: MemoryCreate) -> MemoryCreate | None:
        if "forbidden" in memory.content:
            raise WriteRejectedError("policy: forbidden content", field="content")
        return None


class Observe:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str]] = []

    @hookimpl
    def after_write(self, memories: list[Memory], org_id: str) -> None:
        self.calls.append(([m.content for m in memories], org_id))


class Explode:
    @hookimpl
    def after_write(self, memories: list[Memory]) -> None:
        raise RuntimeError("observer bug")


async def _engine(db_url: str, *plugins: Any) -> Any:
    return await aconnect(
        db_url, plugins=PluginRegistry(load_entry_points=False, plugins=list(plugins))
    )


async def test_before_write_redacts(db_url: str, db_path: Path) -> None:
    engine = await _engine(db_url, Redact())
    try:
        m = await engine.remember("agent_1", "paid with 4111-1111-1111-1111 today")
        assert m.content == "paid with [CARD] today"
        assert (await engine.get_memory(m.id)).content == "paid with [CARD] today"
        assert (await engine.search_memories(content_contains="4111")).count == 0
        batch = await engine.add_memories(
            [{"agent_id": "agent_1", "content": "card 4111-1111-1111-1111"}]
        )
        assert batch.memories[0].content == "card [CARD]"
    finally:
        await engine.close()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute(
            "SELECT COUNT(*) FROM memories WHERE content LIKE '%4111%'"
        ).fetchone() == (0,)
    finally:
        conn.close()


async def test_before_write_result_is_validated_again(db_url: str) -> None:
    class Breaker:
        @hookimpl
        def before_write(self, memory: MemoryCreate) -> MemoryCreate:
            return memory.model_copy(update={"event_type": "not-valid"})

    engine = await _engine(db_url, Breaker())
    try:
        with pytest.raises(ValidationError) as info:
            await engine.remember("agent_1", "anything")
        assert info.value.field == "event_type"
        with pytest.raises(ValidationError) as info:
            await engine.add_memories([{"agent_id": "a", "content": "x"}])
        assert info.value.index == 0
        assert (await engine.list_memories()).count == 0
    finally:
        await engine.close()


async def test_before_write_rejection_refuses_the_whole_batch(db_url: str) -> None:
    observer = Observe()
    engine = await _engine(db_url, Reject(), observer)
    try:
        with pytest.raises(WriteRejectedError) as info:
            await engine.remember("agent_1", "this is forbidden")
        assert info.value.status_code == 400
        with pytest.raises(WriteRejectedError) as info:
            await engine.add_memories(
                [
                    {"agent_id": "agent_1", "content": "fine one"},
                    {"agent_id": "agent_1", "content": "fine two"},
                    {"agent_id": "agent_1", "content": "forbidden three"},
                ]
            )
        assert info.value.index == 2
        assert info.value.field == "content"
        assert (await engine.list_memories()).count == 0
        assert observer.calls == []
        ok = await engine.remember("agent_1", "allowed")
        assert ok.content == "allowed"
    finally:
        await engine.close()


async def test_after_write_sees_committed_memories_without_duplicates(db_url: str) -> None:
    observer = Observe()
    engine = await _engine(db_url, observer)
    try:
        await engine.remember("agent_1", "first")
        with pytest.raises(Exception, match="duplicate"):
            await engine.remember("agent_1", "first")
        await engine.add_memories(
            [
                {"agent_id": "agent_1", "content": "second"},
                {"agent_id": "agent_1", "content": "first"},
                {"agent_id": "agent_1", "content": "second"},
                {"agent_id": "agent_1", "content": "third"},
            ]
        )
        await engine.add_memories([{"agent_id": "agent_1", "content": "third"}])  # all dups
        await engine.with_org("org_b").remember("agent_1", "first")
        assert observer.calls == [
            (["first"], "org_default"),
            (["second", "third"], "org_default"),
            (["first"], "org_b"),
        ]
    finally:
        await engine.close()


async def test_after_write_exception_does_not_fail_the_write(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    observer = Observe()
    engine = await _engine(db_url, Explode(), observer)
    try:
        with caplog.at_level(logging.ERROR, logger="memtrace.plugins"):
            m = await engine.remember("agent_1", "still written")
        assert (await engine.get_memory(m.id)).content == "still written"
        assert any("after_write" in r.getMessage() for r in caplog.records)
        batch = await engine.add_memories([{"agent_id": "agent_1", "content": "batch too"}])
        assert batch.count == 1
        assert (await engine.list_memories()).count == 2
    finally:
        await engine.close()


# -- registration clashes are loud ------------------------------------------------------------


class SqliteAgain:
    """A plugin that registers the scheme the built-in SQLite store already has."""

    def __init__(self, *, override: bool) -> None:
        self.override = override
        self.opened: list[str] = []

    @hookimpl
    def register_stores(self, register: Any) -> None:
        from memtrace_core.stores.sqlite import SQLiteStore

        def factory(url: str) -> SQLiteStore:
            self.opened.append(url)
            return SQLiteStore.from_url(url)

        register("SQLite", factory, override=self.override)


class MarkdownAgain:
    @hookimpl
    def register_context_formats(self, register: Any) -> None:
        from memtrace_core.context import MarkdownFormat

        register(MarkdownFormat())


def test_a_second_store_for_a_taken_scheme_is_an_error_naming_both_plugins() -> None:
    from memtrace_core.errors import PluginConflictError

    with pytest.raises(PluginConflictError) as err:
        PluginRegistry(load_entry_points=False, plugins=[SqliteAgain(override=False)])
    assert "'sqlite'" in err.value.message
    assert "memtrace.builtins" in err.value.message
    assert "SqliteAgain" in err.value.message
    assert "override=True" in err.value.message


def test_a_second_context_format_for_a_taken_name_is_an_error() -> None:
    from memtrace_core.errors import PluginConflictError

    with pytest.raises(PluginConflictError) as err:
        PluginRegistry(load_entry_points=False, plugins=[MarkdownAgain()])
    assert "'markdown'" in err.value.message


def test_a_plugin_may_override_a_store_on_purpose(tmp_path: Path) -> None:
    plugin = SqliteAgain(override=True)
    registry = PluginRegistry(load_entry_points=False, plugins=[plugin])
    assert registry.store_owners["sqlite"] != "memtrace.builtins"
    url = f"sqlite:///{tmp_path / 'o.db'}"
    registry.store_for(url)
    assert plugin.opened == [url]
