"""/v1/status: leader and peers (never blocking)."""

from __future__ import annotations

from aiohttp import web

from meshctl.server.http.common import Request, Route, respond, route

ROUTES: list[Route] = []


@route(ROUTES, "GET", "/v1/status/leader")
async def leader(req: Request) -> web.Response:
    store = req.ctx.store
    return respond(req, store.leader_address() if store.known_leader else "")


@route(ROUTES, "GET", "/v1/status/peers")
async def peers(req: Request) -> web.Response:
    return respond(req, req.ctx.store.peers())
