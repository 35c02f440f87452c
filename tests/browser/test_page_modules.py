"""The explorer's own modules, run in the browser: its text analysis matches the engine's (so a
highlight marks exactly the words a search matched), and its event-stream parser follows the
SSE format (line ends, comments, fields, ids) that the live timeline depends on."""

from __future__ import annotations

from typing import Any

from browser_support import ROOT, UI

from memtrace_core.text import STOP_WORDS, query_terms, stem, tokenize


def _module(ui: UI, name: str, body: str, arg: Any = None) -> Any:
    """Evaluate ``body`` (a function of the module ``m`` and ``arg``) with /ui/lib/<name>."""
    return ui.page.evaluate(
        f"async (arg) => {{ const m = await import('./lib/{name}'); return ({body})(m, arg); }}",
        arg,
    )


def _vocabulary() -> list[str]:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "docs").rglob("*.md")))
    text += (ROOT / "README.md").read_text()
    return sorted({t for t in tokenize(text) if not t.isdigit()})


def test_the_stems_are_the_engine_s(ui: UI) -> None:
    ui.open()
    words = _vocabulary()
    assert len(words) > 2000
    js = _module(ui, "text.js", "(m, words) => words.map(m.stem)", words)
    mismatched = [(w, j, stem(w)) for w, j in zip(words, js, strict=True) if j != stem(w)]
    assert mismatched == []


def test_the_tokens_and_stop_words_are_the_engine_s(ui: UI) -> None:
    ui.open()
    samples = [
        "Hey Mel! Café's open, 2023.",
        "e-mail ÀÉÎÕÜ naïve coöperate ﬁnance",
        "日本語のテキスト and 中文 mixed",
        "emoji 🚀launch🚀 x_y snake_case",
        "Straße İstanbul ΣΊΣΥΦΟΣ",
    ]
    js = _module(ui, "text.js", "(m, xs) => xs.map(m.tokenize)", samples)
    assert js == [tokenize(s) for s in samples]
    js_stop = _module(ui, "text.js", "(m) => [...m.STOP_WORDS].sort()")
    assert js_stop == sorted(STOP_WORDS)
    # the query's keywords are the engine's (stop-words dropped)
    query = "When did Caroline go to the LGBTQ support group?"
    stems = _module(ui, "text.js", "(m, q) => [...m.queryStems(q)]", query)
    assert {stem(t) for t in query_terms(query)} <= set(stems)
    assert stem("the") not in stems


def test_the_highlighter_marks_whole_words_of_the_original_text(ui: UI) -> None:
    ui.open()
    runs = _module(
        ui,
        "text.js",
        "(m) => m.matchRuns('Café closed; the CAFES reopened. Went home; going again.',"
        " m.queryStems('cafe go the'))",
    )
    assert [r["text"] for r in runs if r["match"]] == ["Café", "CAFES", "Went", "going"]
    assert "".join(r["text"] for r in runs) == (
        "Café closed; the CAFES reopened. Went home; going again."
    )
    assert _module(ui, "text.js", "(m) => m.matchRuns('nothing', new Set())") == [
        {"text": "nothing", "match": False}
    ]


PARSER = """(m, chunks) => {
    const events = [], comments = [], retries = [];
    const p = new m.EventStreamParser({
        onEvent: e => events.push(e), onComment: c => comments.push(c),
        onRetry: r => retries.push(r),
    });
    for (const c of chunks) p.feed(c);
    return {events, comments, retries, last: p.lastEventId};
}"""


def _parse(ui: UI, *chunks: str) -> dict[str, Any]:
    result: dict[str, Any] = _module(ui, "sse.js", PARSER, list(chunks))
    return result


def test_the_event_stream_parser(ui: UI) -> None:
    ui.open()
    got = _parse(ui, "\ufeffretry: 2000\n\n", "id: s1.5\nevent: ready\ndata: {}\n\n")
    assert got["retries"] == [2000]
    assert got["events"] == [{"type": "ready", "data": "{}", "id": "s1.5"}]
    # split anywhere, CRLF split between chunks, CR-only lines, comments, multi-line data
    got = _parse(ui, "id: 7\r", "\nevent: mem", "ory\rdata: a\r\ndata:b\n", ": ping\n\n")
    assert got["events"] == [{"type": "memory", "data": "a\nb", "id": "7"}]
    assert got["comments"] == ["ping"]
    # an event without data dispatches nothing but its id counts; an id with NUL is ignored;
    # unknown fields and a bad retry are ignored; no event type means "message"
    got = _parse(ui, "id: 9\n\nid: bad\0id\nfoo: bar\nretry: 1s\ndata: x\n\n")
    assert got["events"] == [{"type": "message", "data": "x", "id": "9"}]
    assert got["last"] == "9"
    assert got["retries"] == []
    # a field without a colon, a value without the space
    got = _parse(ui, "data\ndata:x\n\n")
    assert got["events"] == [{"type": "message", "data": "\nx", "id": ""}]
    # an unfinished event is not dispatched
    assert _parse(ui, "data: partial\n")["events"] == []
