"""The two transports of the same method set, on every store of ``store_urls.STORE_URLS``:
the engine in-process (``aconnect(url)``) and the HTTP client against a live server over the
same kind of store. Every conformance test runs against each pair, with the same assertions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from memtrace_core import aconnect
from memtrace_core.client import AsyncMemtraceClient
from memtrace_server.testing import bootstrap_admin_key, config_for, serve_in_thread
from store_urls import STORE_URLS, scheme


@pytest.fixture(
    params=[(url, transport) for url in STORE_URLS for transport in ("engine", "http")],
    ids=lambda p: f"{scheme(p[0])}-{p[1]}",
)
async def mt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    template, transport = request.param
    db_url = template.format(tmp=tmp_path)
    if transport == "engine":
        engine = await aconnect(db_url)
        yield engine
        await engine.close()
        return
    key = await bootstrap_admin_key(db_url)
    with serve_in_thread(config_for(db_url)) as live:
        client = await aconnect(live.url, api_key=key)
        assert isinstance(client, AsyncMemtraceClient)
        yield client
        await client.close()
