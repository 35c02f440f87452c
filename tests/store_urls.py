"""The store URLs the conformance suite runs on (tests/conformance).

``{tmp}`` in a URL is replaced by the test's temporary directory. By default the suite runs
on the embedded SQLite store; ``MEMTRACE_CONFORMANCE_URLS`` (comma-separated URL templates)
runs it on others, e.g. a store plugin's own::

    MEMTRACE_CONFORMANCE_URLS='mystore:///{tmp}/x.db' python3 scripts/dev.py test tests/conformance

(docs/plugins.md, "Writing a store")."""

from __future__ import annotations

import os

DEFAULT = "sqlite:///{tmp}/conformance.db"

STORE_URLS: list[str] = [
    url.strip()
    for url in os.environ.get("MEMTRACE_CONFORMANCE_URLS", DEFAULT).split(",")
    if url.strip()
]


def scheme(url: str) -> str:
    return url.split(":", 1)[0]
