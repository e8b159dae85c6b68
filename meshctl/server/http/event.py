"""/v1/event: fire and list user events."""

from __future__ import annotations

import base64
import uuid

from aiohttp import web

from meshctl.server import watchkeys as wk
from meshctl.server.commands import EventDef, EventFire
from meshctl.server.http.common import (
    HTTPError,
    Request,
    Result,
    Route,
    Watch,
    blocking,
    check_dc,
    respond,
    route,
)

ROUTES: list[Route] = []
MAX_PAYLOAD = 100 * 1024


@route(ROUTES, "PUT", "/v1/event/fire/{name}")
async def fire(req: Request) -> web.Response:
    check_dc(req)
    name = req.match["name"]
    if not name:
        raise HTTPError(400, "Missing name")
    if name.startswith("_"):
        raise HTTPError(400, "Event names starting with '_' are reserved")
    req.authorize("event", name, "write")
    payload = await req.body(MAX_PAYLOAD)
    event: EventDef = {
        "ID": str(uuid.uuid4()),
        "Name": name,
        "Payload": base64.b64encode(payload).decode() if payload else None,
        "NodeFilter": req.param("node"),
        "ServiceFilter": req.param("service"),
        "TagFilter": req.param("tag"),
    }
    stored = await req.ctx.store.apply(EventFire(event))
    return respond(req, dict(stored, LTime=0))


@route(ROUTES, "GET", "/v1/event/list")
async def event_list(req: Request) -> web.Response:
    state = req.ctx.store.state
    name = req.param("name")

    def run() -> Result:
        index, events = state.event_list(name)
        return Result(index, req.ctx.acl.filter_events(req, events))

    return await blocking(req, run, Watch(keys=[wk.EVENTS]), wake_on_equal_only=True)
