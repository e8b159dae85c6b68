"""The web UI: `GET /` and the static single-page app under `/ui/`.

As Consul: `GET /` redirects (301) to `/ui/` when the UI is on, and answers a 200 plain text
saying it is off otherwise (so an HTTP check pointed at an agent's own port passes). The app
is static files shipped inside the package (meshctl/server/ui/static/); it speaks only the
public HTTP API, whose calls are ACL-checked, so the files themselves carry no data.

`/ui/assets/<file>` are the app's files; any other `/ui/...` path is the app's own routing
and answers index.html. Files are read once, from the package, into memory; only names found
there are ever served (a request path is never joined onto a directory).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

from aiohttp import web

from meshctl.server.http.common import HTTPError, Request, Route, route

ROUTES: list[Route] = []

# set on the aiohttp app by the agent that builds it (off when absent)
UI_ENABLED = web.AppKey("meshctl_ui_enabled", bool)

DISABLED_TEXT = ("Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration "
                 "and restart.")
PREFIX = "/ui/"
ASSETS = "assets/"
TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
    ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json", ".txt": "text/plain",
}
TEXT_TYPES = {"text/html", "text/javascript", "text/css", "image/svg+xml", "application/json", "text/plain"}
# the app loads only its own files and talks only to this agent; nothing renders data as markup
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


_FILES: dict[str, StaticFile] | None = None


def static_root() -> Traversable:
    return resources.files("meshctl.server.ui").joinpath("static")


def _walk(node: Traversable, prefix: str, out: dict[str, StaticFile]) -> None:
    for child in node.iterdir():
        name = prefix + child.name
        if child.is_dir():
            _walk(child, name + "/", out)
            continue
        suffix = "." + child.name.rpartition(".")[2] if "." in child.name else ""
        kind = TYPES.get(suffix)
        if kind is None:  # licences, notes: not served
            continue
        body = child.read_bytes()
        out[name] = StaticFile(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def static_files() -> dict[str, StaticFile]:
    """Every servable file of the app, by its path under /ui/ (`index.html`, `assets/app.js` ...)."""
    global _FILES
    if _FILES is None:
        files: dict[str, StaticFile] = {}
        _walk(static_root(), "", files)
        _FILES = files
    return _FILES


def enabled(req: Request) -> bool:
    return bool(req.raw.app.get(UI_ENABLED, False))


def _not_found() -> HTTPError:
    # Consul's answer for a path of no API endpoint
    return HTTPError(404, "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n")


def _serve(req: Request, file: StaticFile) -> web.Response:
    headers = {"ETag": file.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if file.content_type == "text/html":
        headers["Content-Security-Policy"] = CSP
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
    if file.etag in [t.strip() for t in req.raw.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if file.content_type in TEXT_TYPES else None
    return web.Response(body=file.body, content_type=file.content_type, charset=charset, headers=headers)


@route(ROUTES, "GET", "/")
async def root(req: Request) -> web.Response:
    if not enabled(req):
        return web.Response(text=DISABLED_TEXT, content_type="text/plain", charset="utf-8")
    return web.Response(status=301, headers={"Location": PREFIX})


@route(ROUTES, "GET", "/ui")
async def ui_bare(req: Request) -> web.Response:
    if not enabled(req):
        raise _not_found()
    return web.Response(status=301, headers={"Location": PREFIX})


@route(ROUTES, "GET", "/ui/{path:.*}")
async def ui_file(req: Request) -> web.Response:
    """An asset by name; any other path under /ui/ is a page of the app: index.html."""
    if not enabled(req):
        raise _not_found()
    files = static_files()
    path = req.match.get("path", "")
    file = files.get(path) if path.startswith(ASSETS) else None
    if file is None:
        if path.startswith(ASSETS):
            raise HTTPError(404, "not found\n")
        file = files["index.html"]
    return _serve(req, file)


def set_enabled(app: web.Application, on: bool) -> None:
    """Turn the UI on or off for an app (before it starts)."""
    app[UI_ENABLED] = on
