"""Helpers of the browser tests (tests/browser/conftest.py has the fixtures): ``memtrace
serve`` as a subprocess, an organization per test, the watch on what a browser context
requests, and the page helpers (sign-in, the timeline's cards, the axe-core audit)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    Route,
    expect,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from memtrace_server.testing import bootstrap_admin_key

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MEMTRACE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("MEMTRACE_BROWSER_ARTIFACTS") or ROOT / "tests/browser/artifacts")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
#: Chromium without its background traffic (updates, sync, safe browsing, …): on a closed
#: network it would try outside hosts at start; --no-sandbox because the tests may run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
]
T = TypeVar("T")
SERVE = [sys.executable, "-m", "memtrace_server.cli", "serve"]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """``memtrace serve`` in a subprocess on 127.0.0.1 (its output collected by a thread)."""

    def __init__(self, store: str, home: Path, port: int | None = None) -> None:
        self.store = store
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.start()

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTRACE_")}
        env.update(
            HOME=str(self.home),
            MEMTRACE_AUTH_BCRYPT_COST="4",
            MEMTRACE_LOG_LEVEL="warning",
            # the stream re-checks its key at each heartbeat: a revoked key's stream ends
            # within two seconds (defaults: 15 s, and 1 s for a revocation to be seen)
            MEMTRACE_SERVER_STREAM_HEARTBEAT_SECONDS="2",
            MEMTRACE_AUTH_REVOCATION_POLL_SECONDS="0.5",
        )
        self.proc = subprocess.Popen(
            [*SERVE, "--port", str(self.port), "--store", self.store],
            cwd=self.home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"memtrace serve exited:\n{self.output}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"memtrace serve did not become ready:\n{self.output}")
            time.sleep(0.05)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Server:
    serve: Serve
    admin_key: str

    @property
    def url(self) -> str:
        return self.serve.url


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on an event loop of its own, in a thread: the sync
    Playwright API keeps an event loop running in the test's thread, so asyncio.run() cannot
    be called there."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result(timeout=120)


def start_server(tmp: Path) -> Server:
    store = f"sqlite:///{tmp / 'memtrace.db'}"
    admin_key = run_async(lambda: bootstrap_admin_key(store))
    return Server(Serve(store, tmp), admin_key)


_orgs = itertools.count(1)


@dataclass
class Org:
    """An organization of its own for one test, with a read-write and a read-only key, and an
    HTTP client on the read-write key."""

    id: str
    key: str
    read_key: str
    http: httpx.Client

    def remember(self, content: str, **fields: Any) -> dict[str, Any]:
        body = {"agent_id": "ops-agent", "memory_type": "episodic", "content": content, **fields}
        r = self.http.post("/api/v1/memories", json=body)
        assert r.status_code == 201, r.text
        memory: dict[str, Any] = r.json()
        return memory

    def agent(self, name: str, description: str = "") -> dict[str, Any]:
        r = self.http.post("/api/v1/agents", json={"name": name, "description": description})
        assert r.status_code == 201, r.text
        agent: dict[str, Any] = r.json()
        return agent

    def session(self, agent_id: str, **metadata: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"agent_id": agent_id}
        if metadata:
            body["metadata"] = metadata
        r = self.http.post("/api/v1/sessions", json=body)
        assert r.status_code == 201, r.text
        session: dict[str, Any] = r.json()
        return session


def make_org(server: Server) -> Iterator[Org]:
    admin = httpx.Client(base_url=server.url, headers={"x-api-key": server.admin_key}, timeout=30)
    with admin:
        r = admin.post("/api/v1/admin/orgs", json={"name": f"browser test {next(_orgs)}"})
        assert r.status_code == 201, r.text
        org_id = r.json()["id"]
        keys = {}
        for name, permissions in (("explorer", "read,write"), ("viewer", "read")):
            r = admin.post(
                "/api/v1/admin/keys",
                json={"org_id": org_id, "name": name, "permissions": permissions},
            )
            assert r.status_code == 201, r.text
            keys[name] = r.json()["api_key"]
        with httpx.Client(
            base_url=server.url, headers={"x-api-key": keys["explorer"]}, timeout=30
        ) as http:
            yield Org(org_id, keys["explorer"], keys["viewer"], http)
        admin.delete(f"/api/v1/admin/orgs/{org_id}")


@dataclass
class Watch:
    """What one browser context did that a test must not see."""

    outside: list[str] = field(default_factory=list)  # requests to non-loopback hosts
    requests: list[str] = field(default_factory=list)  # every URL requested
    errors: list[str] = field(default_factory=list)  # uncaught JavaScript errors
    dialogs: list[str] = field(default_factory=list)  # alert / confirm / prompt
    console: list[str] = field(default_factory=list)  # console errors

    def check(self) -> None:
        assert self.outside == [], f"requests to outside hosts: {self.outside}"
        assert self.errors == [], f"JavaScript errors: {self.errors}"
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return (parts.hostname or "") in LOOPBACK or (parts.hostname or "").startswith("127.")


def watch_context(context: BrowserContext) -> Watch:
    watch = Watch()

    def route(route: Route, request: Request) -> None:
        watch.requests.append(request.url)
        if _is_loopback(request.url):
            route.fallback()
        else:
            watch.outside.append(request.url)
            route.abort("blockedbyclient")

    def on_page(page: Page) -> None:
        page.on("pageerror", lambda error: watch.errors.append(str(error)))

        def on_dialog(dialog: Dialog) -> None:
            watch.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                watch.console.append(message.text)

        page.on("console", on_console)

    context.route("**/*", route)
    context.on("page", on_page)
    return watch


class UI:
    """A page of the explorer, with the steps the tests share."""

    def __init__(self, page: Page, server: Server, watch: Watch) -> None:
        self.page = page
        self.server = server
        self.watch = watch

    def open(self, hash_: str = "") -> None:
        self.page.goto(f"{self.server.url}/ui/{hash_}")

    def sign_in(self, key: str, hash_: str = "") -> None:
        self.open(hash_)
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.locator("#nav:not([hidden])").wait_for()

    def go(self, hash_: str) -> None:
        """Navigate inside the page (no reload)."""
        self.page.evaluate("h => { location.hash = h }", hash_)

    def cards(self, count: int | None = None) -> list[str]:
        """The ids of the memories in the timeline, in order (once there are ``count``)."""
        if count is not None:
            expect(self.page.locator("#feed li.card")).to_have_count(count)
        ids: list[str] = self.page.locator("#feed li.card").evaluate_all(
            "cards => cards.map(c => c.dataset.id)"
        )
        return ids

    def wait_cards(self, ids: list[str], timeout: float = 5_000) -> list[str]:
        """Wait until the timeline shows exactly ``ids``, in this order, and return them. A
        count alone is not enough after a navigation: the previous view may have as many."""
        with contextlib.suppress(PlaywrightTimeout):
            self.page.wait_for_function(
                "ids => JSON.stringify([...document.querySelectorAll('#feed li.card')]"
                ".map(c => c.dataset.id)) === JSON.stringify(ids)",
                arg=ids,
                timeout=timeout,
            )
        shown = self.cards()
        assert shown == ids, f"the timeline shows {shown}, not {ids}"
        return shown

    def wait_live(self) -> None:
        self.page.locator("#live-state.live-on").wait_for()

    def audit(self, name: str) -> list[dict[str, Any]]:
        """axe-core on the current page: the violations of impact serious or critical. axe is
        injected with evaluate (the page's CSP refuses a script tag, which is the point)."""
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            self.page.evaluate(AXE.read_text())
        result = self.page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))"
        )
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        (ARTIFACTS / "axe").mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "axe" / f"{name}.json").write_text(json.dumps(result, indent=2))
        return bad


def new_ui(browser: Browser, server: Server, viewport: dict[str, int] = WIDE) -> tuple[UI, Any]:
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        locale="en-US",
        timezone_id="UTC",
        reduced_motion="reduce",
        color_scheme="light",
    )
    watch = watch_context(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return UI(page, server, watch), context
