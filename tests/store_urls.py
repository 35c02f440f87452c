"""The store URLs the conformance suite runs on (tests/conformance).

A URL template names a fresh, empty store for one test: ``{tmp}`` is replaced by the test's
temporary directory, ``{pg}`` by a new database on the test harness's PostgreSQL server
(tests/pg_harness.py: user, host, port and database name, e.g.
``postgres@127.0.0.1:5433/t1234_7``), dropped after the test. By default the suite runs on the
embedded SQLite store and on PostgreSQL; ``MEMTRACE_CONFORMANCE_URLS`` (comma-separated URL
templates) runs it on others instead, e.g. a store plugin's own::

    MEMTRACE_CONFORMANCE_URLS='mystore:///{tmp}/x.db' python3 scripts/dev.py test tests/conformance

(docs/plugins.md, "Writing a store")."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

DEFAULT = "sqlite:///{tmp}/conformance.db,postgresql://{pg}"

STORE_URLS: list[str] = [
    url.strip()
    for url in os.environ.get("MEMTRACE_CONFORMANCE_URLS", DEFAULT).split(",")
    if url.strip()
]


def scheme(url: str) -> str:
    return url.split(":", 1)[0]


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
    if "{pg}" not in url:
        yield url
        return
    import pg_harness

    database = pg_harness.new_database()
    try:
        yield url.replace("{pg}", database.split("://", 1)[1])
    finally:
        pg_harness.drop_database(database)
