"""The store URLs the conformance suite runs on (tests/conformance).

A URL template names a fresh, empty store for one test: ``{tmp}`` is replaced by the test's
temporary directory, ``{pg}`` by a new database on the test harness's PostgreSQL server
(tests/pg_harness.py: user, host, port and database name, e.g.
``postgres@127.0.0.1:5433/t1234_7``), dropped after the test; ``{arc}``, ``{arcdb}`` and
``{arctoken}`` by the address of this process's fake Arc server (tests/arc_fake.py), a new
database on it and its token. By default the suite runs on the
embedded SQLite store, on PostgreSQL and on Arc; ``MEMTRACE_CONFORMANCE_URLS`` (comma-separated URL
templates) runs it on others instead, e.g. a store plugin's own::

    MEMTRACE_CONFORMANCE_URLS='mystore:///{tmp}/x.db' python3 scripts/dev.py test tests/conformance

(docs/plugins.md, "Writing a store")."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

#: The Arc store over the fake Arc server (tests/arc_fake.py), its metadata store a SQLite
#: file; ``sync_forward``: a write returns once Arc shows it, so that every read of the suite
#: reads Arc's copy (tests/core/test_arc_store.py covers reads from the spool).
ARC = (
    "arc+http://{arc}/{arcdb}?token={arctoken}&meta=sqlite:///{tmp}/conformance.db"
    "&spool={tmp}/conformance.db.spool&spool_synchronous=NORMAL&sync_forward=1&flush_ms=0"
    "&drain_seconds=0"
)
DEFAULT = f"sqlite:///{{tmp}}/conformance.db,postgresql://{{pg}},{ARC}"

STORE_URLS: list[str] = [
    url.strip()
    for url in os.environ.get("MEMTRACE_CONFORMANCE_URLS", DEFAULT).split(",")
    if url.strip()
]


def scheme(url: str) -> str:
    name = url.split(":", 1)[0]
    return "arc" if name.startswith("arc+") else name


_ARC_DATABASES = itertools.count()


def arc_url(template: str) -> str:
    """``{arc}``, ``{arcdb}`` and ``{arctoken}``: the shared fake Arc server of this process,
    a new database on it, and its token."""
    import arc_fake

    fake = arc_fake.shared()
    return (
        template.replace("{arc}", f"127.0.0.1:{fake.port}")
        .replace("{arcdb}", f"t{os.getpid()}_{next(_ARC_DATABASES)}")
        .replace("{arctoken}", arc_fake.TOKEN)
    )


@contextlib.contextmanager
def fresh_url(template: str, tmp_path: Path, name: str = "conformance") -> Iterator[str]:
    """The URL of a fresh store from ``template`` (``name``: a distinct store of the same
    test for ``{tmp}`` templates: ``conformance.db`` becomes ``<name>.db``; a template without
    ``conformance.db`` gets its own directory ``{tmp}/<name>/`` instead)."""
    tmp = tmp_path
    if name != "conformance" and "conformance.db" not in template and "{tmp}" in template:
        tmp = tmp_path / name
        tmp.mkdir(exist_ok=True)
    url = template.replace("{tmp}", str(tmp))
    if name != "conformance":
        url = url.replace("conformance.db", f"{name}.db")
    if "{arc}" in url:
        url = arc_url(url)
    if "{pg}" not in url:
        yield url
        return
    import pg_harness

    database = pg_harness.new_database()
    try:
        yield url.replace("{pg}", database.split("://", 1)[1])
    finally:
        pg_harness.drop_database(database)
