"""The aiohttp application: every area's route table, and Consul's error conventions."""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from meshctl.server.http import (
    acl,
    agent,
    catalog,
    coordinate,
    event,
    health,
    kv,
    operator,
    query,
    session,
    status,
    telemetry,
    txn,
    ui,
)
from meshctl.server.http.common import CTX_KEY, HTTPError, Request, Route, ServerContext
from meshctl.server.http.limits import HEADER_TIMEOUT, MAX_BODY, MAX_FIELD_SIZE
from meshctl.server.metrics import TELEMETRY
from meshctl.server.state import StateError

log = logging.getLogger(__name__)
AREAS = [kv, txn, catalog, health, agent, session, event, status, operator, acl, query, coordinate, ui, telemetry]


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, headers=headers, content_type="text/plain", charset="utf-8")


@web.middleware
async def consul_errors(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Plain-text errors as Consul writes them; nothing a client sends can crash the server."""
    try:
        return await handler(request)
    except HTTPError as exc:
        return _text(exc.status, exc.text, exc.headers)
    except StateError as exc:
        return _text(500, str(exc))
    except web.HTTPMethodNotAllowed as exc:
        allowed = ",".join(["OPTIONS", *sorted(exc.allowed_methods)])
        if request.method == "OPTIONS":
            return web.Response(status=200, headers={"Allow": allowed})
        return _text(405, f"method {request.method} not allowed", {"Allow": allowed})
    except web.HTTPRequestEntityTooLarge:
        return _text(413, f"Request body too large, max size: {MAX_BODY} bytes")
    except web.HTTPNotFound:
        return web.Response(status=404)
    except web.HTTPException:
        raise
    except Exception as exc:  # a bug must answer 500, not take the server down
        log.exception("internal error on %s %s", request.method, request.path)
        return _text(500, f"internal error: {exc}")


_PARAM = re.compile(r"\{(\w+)\}")


def _redirect_if_unclean(request: web.Request) -> web.Response | None:
    """Paths with `//` or `/./` are redirected with a 301, as Go's ServeMux does.

    `..` segments are not resolved by a redirect: a redirect followed by the client would
    turn `a/../b` into a write of `b`. They reach the endpoints, and KV refuses them (400).
    """
    path = request.raw_path.split("?", 1)[0]
    if "//" in path or "/./" in path or path.endswith("/."):
        cleaned = posixpath.normpath(path) + ("/" if path.endswith("/") and path != "/" else "")
        location = cleaned + (f"?{request.query_string}" if request.query_string else "")
        return web.Response(status=301, headers={"Location": location})
    return None


def _wrap(route: Route, exact: dict[str, set[str]]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(raw: web.Request) -> web.StreamResponse:
        redirect = _redirect_if_unclean(raw)
        if redirect is not None:
            return redirect
        # `/v1/agent/service/register` also matches `/v1/agent/service/{id}`: as Go's mux,
        # an exact path answers 405 for the methods it does not take.
        methods = exact.get(raw.path)
        if methods is not None and raw.method not in methods:
            raise web.HTTPMethodNotAllowed(raw.method, sorted(methods))
        return await route.handler(Request(raw, raw.app[CTX_KEY]))

    handler.__name__ = route.handler.__name__
    return TELEMETRY.instrument_http(route.path, handler)  # consul.api.http


def make_app(ctx: ServerContext, extra_routes: list[Route] | None = None) -> web.Application:
    """The HTTP API: all areas' routes plus any extra ones (ACL, operator, snapshot ...)."""
    app = web.Application(middlewares=[consul_errors], client_max_size=MAX_BODY,
                          handler_args={"max_field_size": MAX_FIELD_SIZE, "keepalive_timeout": HEADER_TIMEOUT})
    app[CTX_KEY] = ctx
    TELEMETRY.attach(ctx)  # /v1/agent/metrics reads this agent's store
    routes = [r for area in AREAS for r in area.ROUTES] + list(extra_routes or [])
    exact: dict[str, set[str]] = {}
    for r in routes:
        if "{" not in r.path:
            exact.setdefault(r.path, set()).update(r.methods)
    for r in routes:
        # an empty path parameter reaches the handler, which answers Consul's "Missing ..." 400
        path = _PARAM.sub(r"{\1:[^/]*}", r.path)
        for method in r.methods:
            app.router.add_route(method, path, _wrap(r, exact))
    return app
