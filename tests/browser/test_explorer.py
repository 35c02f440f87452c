"""The memory explorer in headless Chromium against a real ``memtrace serve`` (docs/ui.md):
sign-in, the timeline (filters in the URL, ranked search with highlights, paging, live
updates), a memory in full, delete, read-only keys, agents with the activity chart, sessions
with the context as an LLM gets it. Each test checks, at its end, that the page sent nothing
off the machine, threw no error and opened no dialog (conftest.Watch)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from browser_support import UI, Org, Server
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime(STAMP)


# --- sign-in ----------------------------------------------------------------------------------


def test_sign_in_keeps_the_key_in_the_tab_and_out_of_urls(ui: UI, org: Org) -> None:
    ui.open()
    expect(ui.page.get_by_role("heading", name="Sign in to the memory explorer")).to_be_visible()
    expect(ui.page.get_by_label("API key")).to_be_focused()
    ui.sign_in(org.key)
    expect(ui.page.get_by_role("heading", name="Timeline", level=1)).to_be_visible()
    expect(ui.page.locator("#account")).to_contain_text(org.id)  # the org comes from the key
    page = ui.page
    assert page.evaluate("() => sessionStorage.getItem('memtrace.apiKey')") == org.key
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""
    assert page.context.cookies() == []
    assert org.key not in page.url
    assert all(org.key not in url for url in ui.watch.requests)  # never in a URL
    assert org.key not in page.content()  # nor in the document
    # a reload of the tab stays signed in (session storage), a new tab does not
    page.reload()
    expect(page.get_by_role("heading", name="Timeline", level=1)).to_be_visible()
    other = page.context.new_page()
    other.goto(f"{ui.server.url}/ui/")
    expect(other.get_by_label("API key")).to_be_visible()
    other.close()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_text("Signed out.")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0


def test_a_refused_key_is_said_and_not_kept(ui: UI, org: Org) -> None:
    ui.open()
    ui.page.get_by_label("API key").fill("mtk_not-a-key")
    ui.page.get_by_role("button", name="Sign in").click()
    expect(ui.page.get_by_role("alert")).to_contain_text("not accepted (401)")
    expect(ui.page.get_by_label("API key")).to_be_focused()
    assert ui.page.evaluate("() => sessionStorage.length") == 0
    # a key revoked while signed in: the live stream ends with an error event, and the tab
    # signs out by itself; so would the next request of any view (a 401)
    ui.sign_in(org.read_key)
    ui.wait_live()
    expect(ui.page.locator("#result-info")).to_contain_text("0 memories")
    admin = httpx.Client(base_url=ui.server.url, headers={"x-api-key": ui.server.admin_key})
    with admin:
        keys = admin.get("/api/v1/admin/keys", params={"org_id": org.id}).json()["keys"]
        viewer = next(k for k in keys if k["name"] == "viewer")
        assert admin.delete(f"/api/v1/admin/keys/{viewer['id']}").status_code == 204
    expect(ui.page.get_by_text("no longer accepts this key")).to_be_visible(timeout=20_000)
    expect(ui.page.get_by_label("API key")).to_be_visible()
    assert ui.page.evaluate("() => sessionStorage.length") == 0
    assert ui.page.locator("#nav").is_hidden()


# --- the timeline -----------------------------------------------------------------------------


def test_filters_narrow_the_timeline_and_live_in_the_url(ui: UI, org: Org) -> None:
    a = org.remember("checked the disk usage", agent_id="disk-agent", tags=["infra"])
    b = org.remember("rotated the TLS certificate", agent_id="cert-agent", tags=["infra", "tls"])
    c = org.remember("chose to renew yearly", agent_id="cert-agent", memory_type="decision")
    d = org.remember("the renewal job crashed", agent_id="cert-agent", event_type="error")
    old = org.remember("a week-old note", agent_id="cert-agent", time=_ago(days=8))
    ui.sign_in(org.key)
    assert ui.cards(5) == [d["id"], c["id"], b["id"], a["id"], old["id"]]  # newest first
    page = ui.page
    page.get_by_label("Agent", exact=True).fill("cert-agent")
    page.get_by_label("Time window").select_option("7d")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#feed li.card")).to_have_count(3)
    assert ui.cards() == [d["id"], c["id"], b["id"]]
    assert "agent_id=cert-agent" in page.url
    assert "since=7d" in page.url
    page.get_by_label("Memory type").select_option("decision")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#feed li.card")).to_have_count(1)
    assert ui.cards() == [c["id"]]
    # the URL is the view: opened again (after signing in), the same filters and memories
    shared = page.url
    page.goto("about:blank")
    page.goto(shared)
    expect(page.get_by_label("Memory type")).to_have_value("decision")
    expect(page.get_by_label("Agent", exact=True)).to_have_value("cert-agent")
    ui.wait_cards([c["id"]])  # the reopened page fetches the timeline anew
    # event type and tags; then a tag link of a card
    ui.go("#/timeline?event_type=error")
    ui.wait_cards([d["id"]])  # the previous view had one card too
    ui.go("#/timeline?tags=infra,tls")
    ui.wait_cards([b["id"]])  # the previous view had one card too
    ui.go("#/timeline?agent_id=disk-agent")
    ui.wait_cards([a["id"]])
    page.locator("#feed").get_by_role("link", name="infra").click()
    expect(page.locator("#feed li.card")).to_have_count(2)
    assert set(ui.cards()) == {a["id"], b["id"]}
    page.get_by_role("button", name="Reset").click()
    expect(page.locator("#feed li.card")).to_have_count(5)


def test_search_ranks_and_highlights_the_matched_words(ui: UI, org: Org) -> None:
    best = org.remember("Deploying the payments service; the deploy was rolled back")
    other = org.remember("Deployed the search service")
    org.remember("Lunch order for the team")
    long = org.remember("filler " * 200 + "and at the very end a deploy")
    ui.sign_in(org.key)
    page = ui.page
    page.get_by_role("searchbox", name="Search").fill("deploys")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#feed li.card")).to_have_count(3)
    ranked = org.http.post("/api/v1/search", json={"query": "deploys"}).json()["results"]
    assert ui.cards() == [m["id"] for m in ranked]  # the server's ranking, kept
    assert set(ui.cards()) == {best["id"], other["id"], long["id"]}
    # a long memory is cut around its first match, which stays in view
    cut = page.locator(f'#feed li[data-id="{long["id"]}"] .content')
    expect(cut).to_contain_text("at the very end a deploy")
    assert cut.inner_text().startswith("…")
    assert len(cut.inner_text()) < 600
    assert "q=deploys" in page.url
    marks = page.locator(f'#feed li[data-id="{best["id"]}"] mark').all_inner_texts()
    assert marks == ["Deploying", "deploy"]  # every form of the word, as the engine stems it
    assert page.locator(f'#feed li[data-id="{other["id"]}"] mark').all_inner_texts() == ["Deployed"]
    expect(page.locator("#live-state")).to_contain_text("pause during a search")
    expect(page.locator("#feed .score").first).to_be_visible()
    page.get_by_role("button", name="Clear search").click()
    expect(page.locator("#feed li.card")).to_have_count(4)
    assert page.locator("#feed mark").count() == 0


def test_the_timeline_pages(ui: UI, org: Org) -> None:
    r = org.http.post(
        "/api/v1/memories",
        json={
            "memories": [
                {
                    "agent_id": "batch",
                    "content": f"step {i}",
                    "time": _ago(minutes=120 - i),
                    "dedup": False,
                }
                for i in range(60)
            ]
        },
    )
    assert r.status_code == 201, r.text
    ui.sign_in(org.key)
    page = ui.page
    expect(page.locator("#feed li.card")).to_have_count(50)
    expect(page.locator("#result-info")).to_contain_text("more below")
    page.get_by_role("button", name="Load more").click()
    expect(page.locator("#feed li.card")).to_have_count(60)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    contents = page.locator("#feed li.card .content").all_inner_texts()
    assert contents == [f"step {i}" for i in reversed(range(60))]


# --- a memory ---------------------------------------------------------------------------------


def test_a_memory_in_full_with_its_thread(ui: UI, org: Org) -> None:
    agent = org.agent("planner", "Plans the work")
    session = org.session(agent["id"], ticket="OPS-7")
    root = org.remember("Incident opened", agent_id=agent["id"], session_id=session["id"])
    event_time = _ago(hours=2)
    memory = org.remember(
        "Found the cause: a full disk",
        agent_id=agent["id"],
        session_id=session["id"],
        parent_id=root["id"],
        memory_type="decision",
        tags=["disk", "cause"],
        importance=0.8,
        time=event_time,
        metadata={"host": "db-2"},
        dedup_key="incident-7-cause",
    )
    reply = org.remember(
        "Freed 20 GB", agent_id=agent["id"], session_id=session["id"], parent_id=memory["id"]
    )
    ui.sign_in(org.key, f"#/memory/{memory['id']}")
    page = ui.page
    expect(page.get_by_role("heading", level=1)).to_contain_text(memory["id"])
    expect(page.locator("pre.content")).to_have_text("Found the cause: a full disk")
    details = page.locator("dl.meta")
    expect(details).to_contain_text("planner")
    expect(details).to_contain_text(session["id"])
    expect(details).to_contain_text("decision")
    expect(details).to_contain_text("incident-7-cause")
    expect(details).to_contain_text("0.8")
    expect(details).to_contain_text("2 h after the event")  # recorded vs event time
    assert page.locator(f'dl.meta time[datetime="{memory["time"]}"]').count() == 1
    assert page.locator(f'dl.meta time[datetime="{memory["recorded_at"]}"]').count() == 1
    expect(details.get_by_role("link", name="disk")).to_be_visible()
    expect(page.locator("pre.json")).to_contain_text('"host": "db-2"')
    # the thread: root > this memory > its reply
    tree = page.get_by_role("list", name="Thread")
    expect(tree.get_by_role("link", name="Incident opened")).to_be_visible()
    expect(tree.locator("[aria-current=true]")).to_contain_text("Found the cause")
    nested = tree.locator("li li li")
    expect(nested.get_by_role("link", name="Freed 20 GB")).to_be_visible()
    # copy the id
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui.server.url)
    page.get_by_role("button", name="Copy id").click()
    expect(page.locator("#toast")).to_have_text(f"Copied {memory['id']}")
    assert page.evaluate("() => navigator.clipboard.readText()") == memory["id"]
    # the reply's page links back
    tree.get_by_role("link", name="Freed 20 GB").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reply["id"])
    expect(page.get_by_role("heading", level=1)).to_be_focused()


def test_delete_asks_first_then_the_memory_is_gone(ui: UI, org: Org) -> None:
    keep = org.remember("keep me")
    doomed = org.remember("delete me")
    ui.sign_in(org.key)
    page = ui.page
    page.get_by_role("link", name=f"Open memory {doomed['id']}").click()
    delete = page.get_by_role("button", name="Delete…")
    delete.click()
    dialog = page.get_by_role("dialog", name="Delete this memory?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")  # closes, nothing deleted, focus back on the button
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    assert org.http.get(f"/api/v1/memories/{doomed['id']}").status_code == 200
    delete.click()
    dialog.get_by_role("button", name="Delete memory").click()
    expect(page.get_by_role("heading", name="Timeline", level=1)).to_be_visible()
    expect(page.locator("#toast")).to_contain_text(f"Deleted memory {doomed['id']}")
    expect(page.locator("#feed li.card")).to_have_count(1)
    assert ui.cards() == [keep["id"]]
    assert org.http.get(f"/api/v1/memories/{doomed['id']}").status_code == 404
    # its page now says so
    ui.go(f"#/memory/{doomed['id']}")
    expect(page.get_by_role("alert")).to_contain_text(f"There is no memory {doomed['id']}")


def test_a_read_only_key_sees_no_delete_nor_close(ui: UI, org: Org) -> None:
    agent = org.agent("reader-test")
    session = org.session(agent["id"])
    memory = org.remember("look, do not touch", agent_id=agent["id"], session_id=session["id"])
    ui.sign_in(org.read_key)
    page = ui.page
    expect(page.locator("#account")).to_contain_text("read-only")
    expect(page.locator("#feed li.card")).to_have_count(1)
    assert page.get_by_role("button", name=re.compile("Delete")).count() == 0
    ui.go(f"#/memory/{memory['id']}")
    expect(page.get_by_role("button", name="Copy id")).to_be_visible()
    assert page.get_by_role("button", name=re.compile("Delete")).count() == 0
    ui.go("#/sessions")
    expect(page.get_by_role("link", name=session["id"])).to_be_visible()
    assert page.get_by_role("button", name=re.compile("Close")).count() == 0
    ui.go(f"#/sessions/{session['id']}")
    expect(page.locator("#context-stats")).to_contain_text("1 memory")
    assert page.get_by_role("button", name=re.compile("Close")).count() == 0


# --- live -------------------------------------------------------------------------------------


def test_a_memory_written_through_the_api_appears_without_a_reload(ui: UI, org: Org) -> None:
    first = org.remember("before the page opened", agent_id="watcher")
    ui.sign_in(org.key, "#/timeline?agent_id=watcher")
    ui.wait_live()
    page = ui.page
    page.evaluate("() => { window.__sameDocument = true }")
    org.remember("another agent's memory", agent_id="someone-else")  # filtered out
    fresh = org.remember("written while the page watched", agent_id="watcher")
    card = page.locator(f'#feed li[data-id="{fresh["id"]}"]')
    expect(card).to_be_visible(timeout=10_000)
    expect(card).to_have_class(re.compile("fresh"))
    assert ui.cards() == [fresh["id"], first["id"]]
    expect(page.locator("#toast")).to_contain_text("1 new memory")
    assert page.evaluate("() => window.__sameDocument") is True  # no reload
    # a backfilled memory (an older event time) takes its place in time order
    t0 = datetime.strptime(first["time"], STAMP).replace(tzinfo=UTC)
    t1 = datetime.strptime(fresh["time"], STAMP).replace(tzinfo=UTC)
    between = (t0 + (t1 - t0) / 2).strftime(STAMP)
    middle = org.remember("backfilled", agent_id="watcher", time=between)
    expect(page.locator(f'#feed li[data-id="{middle["id"]}"]')).to_be_visible(timeout=10_000)
    assert ui.cards() == [fresh["id"], middle["id"], first["id"]]


def test_the_live_timeline_resumes_after_a_server_restart(browser: Any, tmp_path: Any) -> None:
    """The stream ends when the server stops; the page reconnects with Last-Event-ID once it is
    back, and a memory committed while it was down is delivered (nothing missed)."""
    from browser_support import make_org, new_ui, run_async, start_server

    from memtrace_core import open_engine

    own = start_server(tmp_path)
    try:
        orgs = make_org(own)
        org = next(orgs)
        page_ui, context = new_ui(browser, own)
        try:
            page_ui.sign_in(org.key)
            page_ui.wait_live()
            page = page_ui.page
            page.evaluate("() => { window.__sameDocument = true }")
            before = org.remember("before the restart")
            expect(page.locator(f'#feed li[data-id="{before["id"]}"]')).to_be_visible()
            own.serve.stop()
            expect(page.locator("#live-state")).to_contain_text("Reconnecting")

            async def write_while_down() -> str:
                engine = await open_engine(own.serve.store, org_id=org.id)
                try:
                    memory = await engine.add_memory(
                        {"agent_id": "ops-agent", "content": "committed while the server was down"}
                    )
                finally:
                    await engine.close()
                return memory.id

            down_id = run_async(write_while_down)
            own.serve.start()
            expect(page.locator(f'#feed li[data-id="{down_id}"]')).to_be_visible(timeout=40_000)
            page_ui.wait_live()
            after = org.remember("after the restart")
            expect(page.locator(f'#feed li[data-id="{after["id"]}"]')).to_be_visible()
            assert page_ui.cards() == [after["id"], down_id, before["id"]]
            assert page.evaluate("() => window.__sameDocument") is True
            page_ui.watch.check()
        finally:
            context.close()
            orgs.close()
    finally:
        own.serve.stop()


# --- untrusted content ------------------------------------------------------------------------

PAYLOADS = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'; alert('img')\">",
    "<svg onload=\"window.__pwned = 'svg'\"></svg>",
    '"><iframe src="javascript:window.parent.__pwned=\'iframe\'"></iframe>',
    "<a href=\"javascript:window.__pwned='link'\">click</a> <style>body{display:none}</style>",
    "{{constructor.constructor('window.__pwned=1')()}} ${window.__pwned='tpl'}",
]


def test_stored_xss_payloads_are_inert_text(ui: UI, org: Org) -> None:
    agent = org.agent("xss-agent")
    session = org.session(agent["id"], note="<img src=x onerror=alert('meta')>")
    ids = [
        org.remember(
            f"payload {i}: {p}",
            agent_id=agent["id"],
            session_id=session["id"],
            metadata={"html": p},
            payload={"html": p},
            event_type="error",
        )["id"]
        for i, p in enumerate(PAYLOADS)
    ]
    org.remember(
        "child <img src=x onerror=alert(2)>",
        agent_id=agent["id"],
        session_id=session["id"],
        parent_id=ids[1],
    )
    ui.sign_in(org.key)
    page = ui.page

    def inert() -> None:
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("main img, main iframe, main svg image, main style").count() == 0
        assert page.locator("main script, main [onerror], main [onload]").count() == 0
        assert page.locator("a[href^='javascript']").count() == 0
        assert page.locator("body").is_visible()

    expect(page.locator("#feed li.card")).to_have_count(len(PAYLOADS) + 1)
    for payload in PAYLOADS:  # shown as the text it is
        expect(page.locator("#feed").get_by_text(payload, exact=False).first).to_be_visible()
    inert()
    # highlighted search results: the markup words are marked, still text
    page.get_by_role("searchbox", name="Search").fill("img onerror script")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#feed mark").first).to_be_visible()
    inert()
    ui.go(f"#/memory/{ids[1]}")
    expect(page.locator("pre.content")).to_have_text(f"payload 1: {PAYLOADS[1]}")
    expect(page.get_by_role("list", name="Thread")).to_contain_text("child <img src=x")
    expect(page.locator("pre.json").first).to_contain_text("onerror")
    inert()
    ui.go(f"#/sessions/{session['id']}")
    expect(page.locator("#context")).to_contain_text("<script>window.__pwned")
    page.get_by_label("XML").check()
    expect(page.locator("#context")).to_contain_text("&lt;script&gt;")  # the format's escaping
    inert()
    ui.go(f"#/agents/{agent['id']}")
    expect(page.locator("svg.chart")).to_be_visible()
    inert()
    # nothing asked for the payloads' URL "x" (an <img src=x> would have)
    assert not [u for u in ui.watch.requests if re.search(r"/x$|/ui/x\b", u)]


# --- agents -----------------------------------------------------------------------------------


def test_agents_with_their_stats_and_activity_chart(ui: UI, org: Org) -> None:
    busy = org.agent("busy-agent", "Does a lot")
    quiet = org.agent("quiet-agent")
    for hours, event in [(5, "general"), (5, "error"), (3, "deploy"), (1, "error"), (0, "deploy")]:
        org.remember(f"work {hours} {event}", agent_id=busy["id"], event_type=event,
                     time=_ago(hours=hours, minutes=1))  # fmt: skip
    org.remember("a decision", agent_id=busy["id"], memory_type="decision")
    org.remember("a fact", agent_id=quiet["id"], memory_type="entity", time=_ago(days=3))
    ui.sign_in(org.key, "#/agents")
    page = ui.page
    expect(page.get_by_role("heading", name="Agents", level=1)).to_be_visible()
    row = page.get_by_role("row", name=re.compile("busy-agent"))
    expect(row).to_contain_text("6")  # memories
    expect(row.locator(".errors")).to_have_text("2")  # errors in 24 h
    expect(row).to_contain_text("episodic 5")
    expect(row).to_contain_text("decision 1")
    expect(page.get_by_role("row", name=re.compile("quiet-agent"))).to_contain_text("entity 1")
    # the org's chart over 24 h: 7 memories in the window minus the 3-day-old one
    chart = page.get_by_role("img", name=re.compile("Memories per hour"))
    expect(chart).to_have_attribute("aria-label", re.compile("6 memories, 2 errors"))
    assert page.locator("svg.chart rect.bar-error").count() == 2
    assert page.locator("svg.chart path.error-mark").count() == 2
    page.get_by_text("Show the figures as a table").click()
    expect(page.locator("table.data tr.has-errors")).to_have_count(2)
    # a wider window takes in the old memory
    page.get_by_label("Activity window").select_option("7d")
    expect(page.get_by_role("img", name=re.compile("7 memories, 2 errors"))).to_be_visible()
    assert "window=7d" in page.url
    # one agent
    page.get_by_role("link", name="busy-agent").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Agent busy-agent")
    expect(page.get_by_role("img", name=re.compile("of busy-agent per hour"))).to_be_visible()
    types = page.get_by_role("table", name="Memories per type")
    expect(types.get_by_role("row", name="episodic")).to_contain_text("5")
    expect(types.get_by_role("row", name="decision")).to_contain_text("1")
    expect(page.locator(".agent-info")).to_contain_text("Does a lot")
    page.get_by_role("link", name="Show this agent's memories in the timeline").click()
    expect(page.locator("#feed li.card")).to_have_count(6)


# --- sessions ---------------------------------------------------------------------------------


def test_sessions_and_the_context_as_an_llm_gets_it(ui: UI, org: Org) -> None:
    agent = org.agent("support-bot")
    session = org.session(agent["id"], customer="ACME")
    closed = org.session(agent["id"])
    assert org.http.patch(f"/api/v1/sessions/{closed['id']}", json={"status": "closed"}).is_success
    for i in range(12):
        org.remember(
            f"answered question {i} about invoices and refunds " + "details " * 20,
            agent_id=agent["id"],
            session_id=session["id"],
            time=_ago(minutes=60 - i),
        )
    ui.sign_in(org.key, "#/sessions")
    page = ui.page
    expect(page.get_by_role("row", name=re.compile(closed["id"]))).to_contain_text("closed")
    page.get_by_label("Status").select_option("active")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("row", name=re.compile(closed["id"]))).to_have_count(0)
    page.get_by_role("link", name=session["id"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(session["id"])
    expect(page.locator("pre.json")).to_contain_text("ACME")

    def api_context(fmt: str, budget: int) -> dict[str, Any]:
        r = org.http.post(
            f"/api/v1/sessions/{session['id']}/context",
            json={"format": fmt, "max_tokens": budget, "since": "24h"},
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    context = page.locator("#context")
    stats = page.locator("#context-stats")
    expected = api_context("markdown", 2000)
    expect(stats).to_have_text(
        f"Markdown · 12 memories · {expected['token_estimate']:,} of 2,000 tokens"
    )
    assert context.inner_text().strip() == expected["context"].strip()
    page.get_by_label("XML").check()
    expect(stats).to_contain_text("XML")
    assert context.inner_text().strip() == api_context("xml", 2000)["context"].strip()
    assert context.inner_text().startswith("<session_context")
    page.get_by_label("JSON Lines").check()
    expect(stats).to_contain_text("JSON Lines")
    lines = context.inner_text().strip().splitlines()
    assert len(lines) == 12
    assert all(json.loads(line)["agent_id"] == agent["id"] for line in lines)
    assert "format=jsonl" in page.url
    # a smaller budget: fewer memories, within it
    page.locator("#budget").evaluate(
        "el => { el.value = '300'; el.dispatchEvent(new Event('input', {bubbles: true})) }"
    )
    expect(page.locator("#budget-value")).to_have_text("300 tokens")
    small = api_context("jsonl", 300)
    assert 0 < small["memory_count"] < 12
    assert small["token_estimate"] <= 300
    expect(stats).to_have_text(
        f"JSON Lines · {small['memory_count']} memories · {small['token_estimate']} of 300 tokens"
    )
    expect(page.locator("#budget-meter")).to_have_attribute("max", "300")
    assert "max_tokens=300" in page.url
    # close it
    page.get_by_role("button", name="Close session").click()
    page.get_by_role("dialog").get_by_role("button", name="Close session").click()
    expect(page.locator("dl.meta")).to_contain_text("closed")
    assert org.http.get(f"/api/v1/sessions/{session['id']}").json()["status"] == "closed"
    expect(page.get_by_role("button", name="Close session")).to_have_count(0)


# --- keyboard only ----------------------------------------------------------------------------


def _tab_to(ui: UI, predicate: str, *, limit: int = 60, shift: bool = False) -> None:
    """Press Tab until the focused element satisfies ``predicate`` (a JS expression over
    ``el``): only the keyboard moves; the page is only read."""
    for _ in range(limit):
        if ui.page.evaluate(
            f"() => {{ const el = document.activeElement; return !!({predicate}) }}"
        ):
            return
        ui.page.keyboard.press("Shift+Tab" if shift else "Tab")
    raise AssertionError(f"Tab never reached {predicate}")


def test_keyboard_only_sign_in_search_and_delete(ui: UI, org: Org) -> None:
    org.remember("routine heartbeat")
    target = org.remember("the flaky migration needs a retry")
    ui.open()
    page = ui.page
    page.keyboard.type(org.key)  # the key field has the focus on arrival
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Timeline", level=1)).to_be_visible()
    _tab_to(ui, "el.id === 'q'")
    page.keyboard.type("migration")
    page.keyboard.press("Enter")
    expect(page.locator("#feed li.card")).to_have_count(1)
    _tab_to(ui, f"el.matches('a.open') && el.closest('li').dataset.id === '{target['id']}'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(target["id"])
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    _tab_to(ui, "el.id === 'delete-memory'")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Delete memory")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Timeline", level=1)).to_be_focused()
    # the search is still on, and nothing matches it now
    expect(page.locator("#feed")).to_contain_text("No memory matches this search.")
    expect(page.locator("#feed li.card")).to_have_count(0)
    assert org.http.get(f"/api/v1/memories/{target['id']}").status_code == 404
    # backwards to the skip link (before the navigation), which moves to the content
    _tab_to(ui, "el.classList.contains('skip-link')", shift=True)
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Timeline", level=1)).to_be_focused()


# --- the guards themselves --------------------------------------------------------------------


def test_a_request_to_an_outside_host_would_be_caught(ui: UI, server: Server) -> None:
    """The checks every test ends with can fail: the page's CSP refuses to connect anywhere but
    its own server, and a request to a non-loopback host that gets past it (here a navigation)
    is aborted before it leaves the browser, and recorded."""
    ui.open()
    outcome = ui.page.evaluate(
        """() => new Promise(resolve => {
            document.addEventListener('securitypolicyviolation',
                e => resolve('refused by ' + e.violatedDirective), {once: true});
            fetch('http://example.invalid/probe').catch(() => {});
        })"""
    )
    assert outcome == "refused by connect-src"
    with pytest.raises(PlaywrightError):
        ui.page.goto("http://example.invalid/page")
    assert ui.watch.outside == ["http://example.invalid/page"]
    ui.watch.outside.clear()
