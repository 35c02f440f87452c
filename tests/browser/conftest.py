"""Fixtures of the browser tests: the memory explorer (/ui) in headless Chromium, driven by
Playwright for Python, against a real ``memtrace serve`` process on 127.0.0.1 over a SQLite
file (docs/ui.md, docs/testing.md).

- Chromium is the system's (Debian's ``chromium``; ``MEMTRACE_CHROMIUM`` names another
  executable): Playwright never downloads a browser here (``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD``).
- One server and one browser for the whole session; each test gets an organization of its own
  (so its timeline holds only its memories) with a read-write and a read-only key, and a fresh
  browser context (its own session storage) with a page.
- Every request the page makes goes through a route that lets loopback addresses through and
  aborts and records anything else: each test ends by asserting that nothing tried to leave the
  machine, that no JavaScript error was thrown and that no dialog (alert, confirm) was opened.
- Screenshots go to ``MEMTRACE_BROWSER_ARTIFACTS`` (default ``tests/browser/artifacts``,
  ignored by git).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    UI,
    Org,
    Server,
    make_org,
    new_ui,
    start_server,
)
from playwright.sync_api import Browser, Playwright, sync_playwright


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("serve"))
    yield started
    started.serve.stop()


@pytest.fixture
def org(server: Server) -> Iterator[Org]:
    yield from make_org(server)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's chromium (python3 scripts/dev.py test "
            "--env browser does) or set MEMTRACE_CHROMIUM to a Chromium or Chrome executable"
        )
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def ui(browser: Browser, server: Server) -> Iterator[UI]:
    page_ui, context = new_ui(browser, server)
    try:
        yield page_ui
        page_ui.watch.check()
    finally:
        context.close()


@pytest.fixture(scope="session", autouse=True)
def _artifacts() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
