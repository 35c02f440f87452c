"""The memory explorer: a static single-page app served at ``/ui/`` (docs/ui.md).

The page is plain HTML, CSS and JavaScript modules shipped inside this package (``static/``);
nothing is built, nothing is fetched from outside, and the page talks to the server only through
the public API, with the API key the user signs in with (kept in the tab's session storage and
sent as ``X-API-Key``; never in a URL or a cookie).

What this module adds to the app (:func:`install`, called by :func:`memtrace_server.app.create_app`
when ``[server] ui`` is on):

- ``GET /ui`` → ``308`` to ``ui/`` (relative: the page's relative URLs, and so a reverse
  proxy's path prefix, need the slash);
- ``GET /ui/`` → ``index.html``; ``GET /ui/<file>`` → one of the files of ``static/`` (any
  other name: the API's JSON 404). ``HEAD`` too.

Every response carries a strict Content-Security-Policy (:data:`CSP`: scripts, styles and
connections only from this origin, no inline script or style, no framing, no ``<base>``, no
form posts), ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``. The files
are read once, at app creation; each has a strong ``ETag`` (a hash of its bytes) and
``Cache-Control: no-cache``, so a browser revalidates (``304``) and an upgraded server's files
are picked up at once. The routes are public (the page itself holds no data) and are not API
operations: they are not in :data:`memtrace_server.operations.OPERATIONS` nor in the OpenAPI
document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from sanic import Sanic
from sanic.exceptions import NotFound
from sanic.request import Request
from sanic.response import HTTPResponse

#: Where the explorer is served.
UI_PATH = "/ui"

#: The Content-Security-Policy of every /ui response.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

#: Headers of every /ui response (besides ETag, Cache-Control and the content type).
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    """One file of the explorer, read into memory."""

    body: bytes
    content_type: str
    etag: str


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield prefix + entry.name, entry


def load_assets() -> dict[str, Asset]:
    """The files of ``static/`` by their path under ``/ui/`` (``"app.js"``, ``"lib/sse.js"``),
    files of an unknown type left out."""
    assets: dict[str, Asset] = {}
    for name, entry in _walk(files(__name__).joinpath("static")):
        suffix = name[name.rfind(".") :] if "." in name else ""
        content_type = _TYPES.get(suffix)
        if content_type is None:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[name] = Asset(body, content_type, etag)
    if "index.html" not in assets:  # a broken installation: say so at start, not per request
        raise RuntimeError("memtrace_server/ui/static/index.html is missing from the package")
    return assets


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag in tags or "*" in tags


def _respond(request: Request, asset: Asset) -> HTTPResponse:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache"}
    if _not_modified(request, asset.etag):
        return HTTPResponse(status=304, headers=headers)
    return HTTPResponse(asset.body, content_type=asset.content_type, headers=headers)


def install(app: Sanic[Any, Any]) -> None:
    """Register the explorer's routes on ``app`` (public; ``HEAD`` answered like ``GET``)."""
    assets = load_assets()
    index = assets["index.html"]

    async def ui_redirect(request: Request) -> HTTPResponse:
        # relative ("ui/"), so that behind a proxy's path prefix it stays under the prefix
        target = "ui/" + (f"?{request.query_string}" if request.query_string else "")
        return HTTPResponse(status=308, headers={**SECURITY_HEADERS, "Location": target})

    async def ui_index(request: Request) -> HTTPResponse:
        return _respond(request, index)

    async def ui_asset(request: Request, asset: str) -> HTTPResponse:
        found = assets.get(asset)
        if found is None:
            raise NotFound(f"not found: {request.method} {request.path}")
        return _respond(request, found)

    for handler, path in (
        (ui_redirect, UI_PATH),
        (ui_index, UI_PATH + "/"),
        (ui_asset, UI_PATH + "/<asset:path>"),
    ):
        app.add_route(
            handler,
            path,
            methods=["GET", "HEAD"],
            name=handler.__name__,
            strict_slashes=True,
            ctx_label=UI_PATH,
        )


__all__ = ["CSP", "SECURITY_HEADERS", "UI_PATH", "Asset", "install", "load_assets"]
