"""/v1/session: create, destroy, info, node, list, renew."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from meshctl.durations import format_duration
from meshctl.server import watchkeys as wk
from meshctl.server.commands import SessionCreate, SessionDef, SessionDestroy
from meshctl.server.duration import DurationError, parse_go_duration
from meshctl.server.fields import UnknownField, check_known
from meshctl.server.http.common import (
    HTTPError,
    Request,
    Result,
    Route,
    Watch,
    blocking,
    check_dc,
    duration_ns,
    respond,
    route,
)
from meshctl.server.state import SERF_CHECK_ID

ROUTES: list[Route] = []
DEFAULT_LOCK_DELAY_NS = 15 * 10**9
MIN_TTL, MAX_TTL = 10.0, 86400.0  # Consul's session_ttl_min default and SessionTTLMax
# Consul checks a session in its Session.Apply RPC, whose errors the HTTP API answers with 500
# (Patroni, for one, recognises a TTL below the minimum only by this 500 and this text's start)
APPLY_ERROR = 500


def build_session(body: Any, default_node: str) -> SessionDef:
    """A session record from a create body, with Consul's defaults and validation."""
    body = body or {}
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: body must be a JSON object")
    try:
        check_known(body)
    except UnknownField as exc:
        raise HTTPError(400, str(exc)) from None
    behavior = body.get("Behavior") or "release"
    if behavior not in ("release", "delete"):
        raise HTTPError(APPLY_ERROR, f"Invalid Behavior setting '{behavior}'")
    ttl = body.get("TTL") or ""
    if ttl:
        if not isinstance(ttl, str):  # Go's Session.TTL is a string
            kind = "number" if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) else "value"
            raise HTTPError(400, f"Request decode failed: json: cannot unmarshal {kind} into Go struct field "
                                 "Session.TTL of type string")
        try:
            seconds = parse_go_duration(ttl) / 1e9
        except DurationError as exc:
            # Consul's Session.Apply answers this with a 500; a request that can never succeed is a 400
            raise HTTPError(400, f"Session TTL '{ttl}' invalid: {exc}") from None
        if seconds != 0 and not MIN_TTL <= seconds <= MAX_TTL:
            # Go's %d of a time.Duration: the TTL in nanoseconds; the bounds as Go prints them
            raise HTTPError(APPLY_ERROR, f"Invalid Session TTL '{round(seconds * 1e9)}', must be between "
                                         f"[{format_duration(MIN_TTL)}={format_duration(MAX_TTL)}]")
    lock_delay = body.get("LockDelay")
    delay_ns = DEFAULT_LOCK_DELAY_NS if lock_delay is None else duration_ns(lock_delay, "LockDelay", 1000)
    if "NodeChecks" in body or "Checks" in body:
        checks = list(body.get("NodeChecks") or []) + list(body.get("Checks") or [])
    else:
        checks = [SERF_CHECK_ID]
    return {
        "ID": str(uuid.uuid4()),
        "Name": body.get("Name", ""),
        "Node": body.get("Node") or default_node,
        "LockDelay": delay_ns,
        "Behavior": behavior,
        "TTL": ttl,
        "NodeChecks": checks,
        "ServiceChecks": body.get("ServiceChecks") or None,
    }


@route(ROUTES, "PUT", "/v1/session/create")
async def create(req: Request) -> web.Response:
    check_dc(req)
    session = build_session(await req.json(), req.agent_node)
    req.authorize("session", session["Node"], "write")
    sid = await req.ctx.store.apply(SessionCreate(session, now=time.time()))
    if session["TTL"] and req.ctx.timers is not None:
        req.ctx.timers.reset(sid, session["TTL"])
    return respond(req, {"ID": sid})


@route(ROUTES, "PUT", "/v1/session/destroy/{id}")
async def destroy(req: Request) -> web.Response:
    check_dc(req)
    sid = req.match["id"]
    if not sid:
        raise HTTPError(400, "Missing session")
    sess = req.ctx.store.state.sessions.get(sid)
    if sess is not None:
        req.authorize("session", sess["Node"], "write")
    await req.ctx.store.apply(SessionDestroy(sid, now=time.time()))
    if req.ctx.timers is not None:
        req.ctx.timers.cancel(sid)
    return respond(req, True)


@route(ROUTES, "PUT", "/v1/session/renew/{id}")
async def renew(req: Request) -> web.Response:
    check_dc(req)
    sid = req.match["id"]
    state = req.ctx.store.state
    sess = state.sessions.get(sid)
    if sess is None:
        raise HTTPError(404, f"Session id '{sid}' not found")
    req.authorize("session", sess["Node"], "write")
    if sess.get("TTL") and req.ctx.timers is not None:
        req.ctx.timers.reset(sid, sess["TTL"])
    return respond(req, state.session_get(sid)[1])


@route(ROUTES, "GET", "/v1/session/info/{id}")
async def info(req: Request) -> web.Response:
    sid = req.match["id"]
    state = req.ctx.store.state
    return await blocking(req, lambda: _visible(req, state.session_get(sid)), Watch(keys=[wk.session(sid)]))


@route(ROUTES, "GET", "/v1/session/node/{node}")
async def by_node(req: Request) -> web.Response:
    node = req.match["node"]
    state = req.ctx.store.state
    return await blocking(req, lambda: _visible(req, state.session_list(node)), Watch(keys=[wk.SESSIONS]))


@route(ROUTES, "GET", "/v1/session/list")
async def session_list(req: Request) -> web.Response:
    state = req.ctx.store.state
    return await blocking(req, lambda: _visible(req, state.session_list()), Watch(keys=[wk.SESSIONS]))


def _visible(req: Request, found: tuple[int, list[dict[str, Any]]]) -> Result:
    """The sessions the request's token may read (ACL filter hook)."""
    index, items = found
    return Result(index, req.ctx.acl.filter_sessions(req, items))
