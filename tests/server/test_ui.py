"""The memory explorer's files over HTTP (docs/ui.md): served at /ui/ without a key, with a
strict Content-Security-Policy and revalidation by ETag, switchable off, not in the OpenAPI
document. What the page does in a browser is tested in tests/browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import memtrace_server.ui
from memtrace_server.testing import LiveServer, config_for, serve_in_thread
from memtrace_server.ui import CSP, load_assets

STATIC = Path(memtrace_server.ui.__file__).parent / "static"

EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _security_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_policy_is_the_documented_one() -> None:
    assert CSP == EXPECTED_CSP


async def test_ui_redirects_to_the_page_with_its_slash(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        r = await http.get("/ui")
        assert r.status_code == 308
        # relative, so that a reverse proxy's path prefix is kept: /prefix/ui -> /prefix/ui/
        assert r.headers["location"] == "ui/"
        assert str(httpx.URL("http://proxy/prefix/ui").join(r.headers["location"])) == (
            "http://proxy/prefix/ui/"
        )
        r = await http.get("/ui?x=1")
        assert r.headers["location"] == "ui/?x=1"
        page = await http.get("/ui", follow_redirects=True)
        assert page.status_code == 200
        assert str(page.url).endswith("/ui/")


async def test_the_page_is_public_and_locked_down(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        r = await http.get("/ui/")  # no key
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        _security_headers(r)
        assert r.headers["cache-control"] == "no-cache"
        assert re.fullmatch(r'"[0-9a-f]{32}"', r.headers["etag"])
        assert "x-request-id" in r.headers  # the app's middleware ran
        assert "<title>memtrace explorer</title>" in r.text
        # the API itself still needs a key
        assert (await http.get("/api/v1/me")).status_code == 401


async def test_an_unchanged_file_is_a_304(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        first = await http.get("/ui/app.js")
        etag = first.headers["etag"]
        again = await http.get("/ui/app.js", headers={"if-none-match": etag})
        assert again.status_code == 304
        assert again.content == b""
        _security_headers(again)
        assert again.headers["etag"] == etag
        weak = await http.get("/ui/app.js", headers={"if-none-match": f'"other", W/{etag}'})
        assert weak.status_code == 304
        other = await http.get("/ui/app.js", headers={"if-none-match": '"other"'})
        assert other.status_code == 200
        assert other.content == first.content


def _references(text: str) -> set[str]:
    """The files a page or module loads: src/href attributes and module imports."""
    found = set(re.findall(r'(?:src|href)="([^"#:]+)"', text))
    found |= set(re.findall(r'(?:from|import)\s*\(?\s*"(\.[^"]+)"', text))
    return found


async def test_every_file_the_page_loads_is_served_with_its_type(live: LiveServer) -> None:
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    async with httpx.AsyncClient(base_url=live.url) as http:
        todo = ["index.html"]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            r = await http.get("/ui/" if name == "index.html" else f"/ui/{name}")
            assert r.status_code == 200, name
            _security_headers(r)
            if name != "index.html":
                assert r.headers["content-type"] == types[Path(name).suffix], name
            base = Path(name).parent
            for ref in _references(r.text):
                todo.append(str((base / ref).as_posix()).removeprefix("./"))
    assert {"app.js", "app.css", "lib/dom.js", "lib/sse.js", "lib/api.js"} <= seen
    # and nothing in the package is left unused
    assert set(load_assets()) == {str(p.relative_to(STATIC)) for p in STATIC.rglob("*.*")}
    assert set(load_assets()) == seen


async def test_an_unknown_file_is_the_api_s_404(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        for path in ("/ui/nope.js", "/ui/../openapi.json", "/ui/lib/", "/ui/%2e%2e/app.py"):
            r = await http.get(path)
            if r.status_code == 200:  # httpx normalised "..": it asked for /openapi.json
                assert path == "/ui/../openapi.json"
                continue
            assert r.status_code == 404, path
            assert r.headers["content-type"] == "application/json"
            assert "error" in r.json()


async def test_head_answers_like_get(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        get = await http.get("/ui/app.css")
        head = await http.head("/ui/app.css")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["etag"] == get.headers["etag"]


async def test_the_explorer_is_not_an_api_operation(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        spec = (await http.get("/openapi.json")).json()
    assert not [p for p in spec["paths"] if p == "/ui" or p.startswith("/ui/")]


@pytest.fixture
def ui_off(db_url: str, admin_key: str) -> Iterator[LiveServer]:
    with serve_in_thread(config_for(db_url, ui=False)) as server:
        yield server


async def test_the_explorer_can_be_switched_off(ui_off: LiveServer, admin_key: str) -> None:
    async with httpx.AsyncClient(base_url=ui_off.url) as http:
        for path in ("/ui", "/ui/", "/ui/app.js"):
            assert (await http.get(path)).status_code == 404
        me = await http.get("/api/v1/me", headers={"x-api-key": admin_key})
        assert me.status_code == 200


def test_the_config_switch() -> None:
    from memtrace_server.config import ConfigError, load_config

    assert load_config(env={}).server.ui is True
    assert load_config(env={"MEMTRACE_SERVER_UI": "false"}).server.ui is False
    with pytest.raises(ConfigError, match=r"server\.ui"):
        load_config(env={"MEMTRACE_SERVER_UI": "maybe"})


def test_the_files_never_parse_markup_nor_load_from_outside() -> None:
    """The page's defence against stored XSS is that it builds DOM nodes and text nodes only;
    these are the APIs that would parse a string as HTML or code. And every URL it loads is
    relative to the server (the SVG namespace is a name, not a request)."""
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"setTimeout\(\s*[\"'`]|createContextualFragment|DOMParser"
    )
    for path in STATIC.rglob("*.*"):
        text = path.read_text()
        assert not forbidden.search(text), (path.name, forbidden.search(text))
        urls = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, (path.name, urls)
    page = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script (CSP: none run)
    assert not re.search(r"\sstyle=|<style", page)  # no inline style either
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handler
