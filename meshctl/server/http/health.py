"""/v1/health: node, checks/:service, service/:service, state/:state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from meshctl.server import selectors
from meshctl.server import watchkeys as wk
from meshctl.server.http.common import (
    HTTPError,
    Request,
    Result,
    Route,
    Watch,
    apply_filter,
    blocking,
    meta_matches,
    node_meta_filter,
    route,
)
from meshctl.server.http.coordinate import nearest_first

ROUTES: list[Route] = []


def _passing(req: Request) -> bool:
    """?passing: present means true; a value is parsed as a Go bool."""
    if "passing" not in req.query:
        return False
    value = req.query["passing"]
    if value == "":
        return True
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise HTTPError(400, "Invalid value for ?passing")



async def _checks_view(req: Request, run_query: Callable[[], tuple[int, list[dict[str, Any]]]],
                       watch: Watch) -> web.Response:
    def run() -> Result:
        index, checks = run_query()
        checks = req.ctx.acl.filter_checks(req, apply_filter(req, checks, selectors.HEALTH_CHECK))
        return Result(index, nearest_first(req, checks, lambda c: c["Node"]))

    return await blocking(req, run, watch)


@route(ROUTES, "GET", "/v1/health/node/{node}")
async def node(req: Request) -> web.Response:
    name = req.match["node"]
    if not name:
        raise HTTPError(400, "Missing node name")
    state = req.ctx.store.state
    return await _checks_view(req, lambda: state.health_node(name), Watch(keys=[wk.node(name)]))


@route(ROUTES, "GET", "/v1/health/checks/{service}")
async def checks(req: Request) -> web.Response:
    name = req.match["service"]
    if not name:
        raise HTTPError(400, "Missing service name")
    if "tag" in req.query:
        raise HTTPError(400, "Tag filtering is not supported")
    state = req.ctx.store.state
    return await _checks_view(req, lambda: state.health_checks(name), Watch(keys=[wk.service(name)]))


@route(ROUTES, "GET", "/v1/health/state/{state}")
async def by_state(req: Request) -> web.Response:
    wanted = req.match["state"]
    if not wanted:
        raise HTTPError(400, "Missing check state")
    state = req.ctx.store.state
    return await _checks_view(req, lambda: state.health_state(wanted), Watch(keys=[wk.CHECKS]))


@route(ROUTES, "GET", "/v1/health/service/{service}")
async def service(req: Request) -> web.Response:
    name = req.match["service"]
    if not name:
        raise HTTPError(400, "Missing service name")
    passing = _passing(req)
    tags = req.params("tag")
    meta = node_meta_filter(req)
    state = req.ctx.store.state

    def run() -> Result:  # entries the token may not read are filtered out, as Consul does
        index, entries = state.health_service(name, tags, passing)
        entries = [e for e in entries if meta_matches(e["Node"]["Meta"], meta)]
        entries = req.ctx.acl.filter_health(req, apply_filter(req, entries, selectors.SERVICE_ENTRY))
        return Result(index, nearest_first(req, entries, lambda e: e["Node"]["Node"]))

    return await blocking(req, run, Watch(keys=[wk.service(name)]))


@route(ROUTES, "GET", "/v1/health/connect/{service}")
async def connect(req: Request) -> web.Response:
    """No service mesh here: no instance is Connect-capable (the token is still checked, as Consul's)."""
    state = req.ctx.store.state
    return await blocking(req, lambda: Result(state.service_index_of(req.match["service"]),
                                              req.ctx.acl.filter_health(req, [])),
                          Watch(keys=[wk.service(req.match["service"])]))
