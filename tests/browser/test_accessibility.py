"""Every view of the explorer at 1280×800 and at 390×844: an axe-core audit with no serious or
critical violation, and a screenshot (the test artefacts; with ``MEMTRACE_UPDATE_SCREENSHOTS=1``
also the pictures of docs/ui.md, in docs/img)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from browser_support import ARTIFACTS, NARROW, ROOT, UI, WIDE, Org, Server, new_ui, watch_context
from playwright.sync_api import Browser, expect

DOCS_IMG = ROOT / "docs" / "img"
#: the screenshots docs/ui.md shows (name, size)
DOCS_SHOTS = {
    ("signin", "wide"),
    ("timeline", "wide"),
    ("search", "wide"),
    ("memory", "wide"),
    ("delete", "wide"),
    ("agents", "wide"),
    ("session", "wide"),
    ("timeline", "narrow"),
    ("memory", "narrow"),
}


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed(org: Org) -> dict[str, Any]:
    """A small, realistic org: three agents, sessions, a thread, errors over a day."""
    deploy = org.agent("deploy-bot", "Ships releases to production")
    support = org.agent("support-bot", "Answers customer tickets")
    research = org.agent("research-agent", "Reads papers and takes notes")
    release = org.session(deploy["id"], release="1.4.0")
    ticket = org.session(support["id"], ticket="SUP-1182", customer="ACME")
    org.session(research["id"])
    for hours in range(22, 0, -3):
        org.remember(
            f"Nightly health check passed on 12 hosts (run {hours})",
            agent_id=deploy["id"],
            event_type="check",
            tags=["health"],
            time=_ago(hours=hours),
        )
    org.remember(
        "Disk usage above 90% on db-2",
        agent_id=deploy["id"],
        event_type="error",
        tags=["disk", "db"],
        time=_ago(hours=7),
    )
    start = org.remember(
        "Started deploying release 1.4.0 to production (canary 5%)",
        agent_id=deploy["id"],
        session_id=release["id"],
        event_type="deploy",
        tags=["release", "prod"],
        time=_ago(minutes=42),
        importance=0.7,
    )
    failed = org.remember(
        "Deploy failed: health check timed out on 3 of 20 canary pods",
        agent_id=deploy["id"],
        session_id=release["id"],
        parent_id=start["id"],
        event_type="error",
        tags=["release", "prod"],
        time=_ago(minutes=31),
        importance=0.9,
        metadata={"pods": ["web-7", "web-12", "web-19"], "timeout_s": 30},
    )
    org.remember(
        "Rolled back to 1.3.9; error rate back to 0.1%",
        agent_id=deploy["id"],
        session_id=release["id"],
        parent_id=failed["id"],
        memory_type="decision",
        tags=["release", "rollback"],
        time=_ago(minutes=24),
    )
    for i, text in enumerate(
        [
            "Customer reports invoices are sent twice since Monday",
            "Found two webhook subscriptions for the same endpoint",
            "Removed the duplicate webhook; asked the customer to confirm",
        ]
    ):
        org.remember(
            text,
            agent_id=support["id"],
            session_id=ticket["id"],
            tags=["billing"],
            time=_ago(minutes=18 - 5 * i),
        )
    org.remember(
        "ACME prefers email over phone for incident updates",
        agent_id=support["id"],
        memory_type="entity",
        tags=["customer"],
        time=_ago(minutes=9),
    )
    org.remember(
        "Paper notes: retrieval by time window beats embeddings for audit questions",
        agent_id=research["id"],
        memory_type="decision",
        tags=["notes"],
        time=_ago(minutes=3),
    )
    return {"failed": failed, "ticket": ticket, "deploy": deploy}


@pytest.mark.parametrize(("size", "viewport"), [("wide", WIDE), ("narrow", NARROW)])
def test_every_view_passes_the_audit(
    browser: Browser, server: Server, org: Org, size: str, viewport: dict[str, int]
) -> None:
    data = seed(org)
    ui, context = new_ui(browser, server, viewport)
    page = ui.page
    failures: dict[str, list[dict[str, Any]]] = {}
    update_docs = os.environ.get("MEMTRACE_UPDATE_SCREENSHOTS", "") not in ("", "0")

    def check(name: str) -> None:
        expect(page.locator("main .loading")).to_have_count(0)
        shot = ARTIFACTS / f"{name}-{size}.png"
        page.screenshot(path=shot, full_page=True)
        if update_docs and (name, size) in DOCS_SHOTS:
            DOCS_IMG.mkdir(exist_ok=True)
            page.screenshot(path=DOCS_IMG / f"ui-{name}-{size}.png")
        bad = ui.audit(f"{name}-{size}")
        if bad:
            failures[name] = bad

    try:
        ui.open()
        expect(page.get_by_label("API key")).to_be_visible()
        check("signin")
        ui.sign_in(org.key)
        expect(page.locator("#feed li.card")).to_have_count(17)
        ui.wait_live()
        check("timeline")
        ui.go("#/timeline?q=deploy%20failed")
        expect(page.locator("#feed mark").first).to_be_visible()
        check("search")
        ui.go(f"#/memory/{data['failed']['id']}")
        expect(page.get_by_role("list", name="Thread")).to_be_visible()
        check("memory")
        page.get_by_role("button", name="Delete…").click()
        expect(page.get_by_role("dialog")).to_be_visible()
        check("delete")
        page.keyboard.press("Escape")
        ui.go("#/agents")
        expect(page.locator("svg.chart")).to_be_visible()
        expect(page.locator("table.agents-table td", has_text="…")).to_have_count(0)
        check("agents")
        ui.go(f"#/agents/{data['deploy']['id']}")
        expect(page.locator("svg.chart")).to_be_visible()
        expect(page.get_by_role("table", name="Memories per type")).to_be_visible()
        check("agent")
        ui.go("#/sessions")
        expect(page.get_by_role("link", name=data["ticket"]["id"])).to_be_visible()
        check("sessions")
        ui.go(f"#/sessions/{data['ticket']['id']}")
        expect(page.locator("#context-stats")).to_contain_text("3 memories")
        check("session")
        assert failures == {}, failures
        ui.watch.check()
    finally:
        context.close()


def test_the_dark_scheme_passes_the_audit_too(browser: Browser, server: Server, org: Org) -> None:
    data = seed(org)
    context = browser.new_context(viewport=WIDE, color_scheme="dark", locale="en-US")  # type: ignore[arg-type]
    try:
        watch = watch_context(context)
        ui = UI(context.new_page(), server, watch)
        ui.sign_in(org.key)
        expect(ui.page.locator("#feed li.card")).to_have_count(17)
        bad = {}
        for name, hash_ in [
            ("timeline", "#/timeline?q=deploy"),
            ("memory", f"#/memory/{data['failed']['id']}"),
            ("agents", "#/agents"),
            ("session", f"#/sessions/{data['ticket']['id']}"),
        ]:
            ui.go(hash_)
            expect(ui.page.locator("main .loading")).to_have_count(0)
            ui.page.screenshot(path=ARTIFACTS / f"{name}-dark.png", full_page=True)
            found = ui.audit(f"{name}-dark")
            if found:
                bad[name] = found
        assert bad == {}, bad
        watch.check()
    finally:
        context.close()


def test_the_docs_screenshots_exist() -> None:
    """docs/ui.md shows these; refresh them with MEMTRACE_UPDATE_SCREENSHOTS=1."""
    missing = [
        f"ui-{n}-{s}.png" for n, s in DOCS_SHOTS if not (DOCS_IMG / f"ui-{n}-{s}.png").exists()
    ]
    assert missing == []
    text = (ROOT / "docs" / "ui.md").read_text()
    for name, size in DOCS_SHOTS:
        assert f"img/ui-{name}-{size}.png" in text


def test_the_audit_can_fail(browser: Browser, server: Server) -> None:
    """The audit is not vacuous: an image without a text alternative and an unlabelled input,
    added to the page, are found (critical)."""
    ui, context = new_ui(browser, server)
    try:
        ui.open()
        expect(ui.page.get_by_label("API key")).to_be_visible()
        ui.page.evaluate(
            """() => {
                const main = document.getElementById('main');
                const img = document.createElement('img');
                img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
                main.append(img, document.createElement('input'));
            }"""
        )
        found = {v["id"] for v in ui.audit("planted-violations")}
        assert {"image-alt", "label"} <= found
    finally:
        context.close()
