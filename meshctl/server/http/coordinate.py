"""/v1/coordinate: datacenters, nodes, node/:node, update; and `?near=` sorting for every read.

The coordinates are the state's (state/coordinates.py), fed by the servers' batches of
client heartbeats and of `PUT /v1/coordinate/update` (meshctl/server/coordinates.py says how
the estimate is made and how it differs from Serf's). `nearest_first` is what `?near=` does on
the catalog and health reads and in prepared queries: nearest first from the named node
(`_agent`: the agent asked), nodes without a coordinate last, no sort when the source has none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from meshctl.server import watchkeys as wk
from meshctl.server.commands import Coord, CoordinateUpdate
from meshctl.server.coordinates import Coordinate, entry, sort_by_distance
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
Item = TypeVar("Item")


def near_node(req: Request, near: str) -> str:
    """The node a `near` value names: `_agent` is the agent asked; `_ip` sorts nothing here."""
    if near == "_agent":
        return req.agent_node
    return "" if near == "_ip" else near


def nearest_first(req: Request, items: list[Item], node_of: Callable[[Item], str], near: str | None = None) -> list[Item]:
    """`items` sorted by distance from the node `near` names (default: the request's `?near=`)."""
    source = near_node(req, req.param("near") if near is None else near)
    if not source:
        return items
    state = req.ctx.store.state

    def coordinate(node: str) -> Coord | None:
        found = state.coordinate_of(node)
        return found["Coord"] if found is not None else None

    return sort_by_distance(items, node_of, coordinate, source)


def _segment_filtered(req: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if "segment" not in req.query:
        return items
    return [i for i in items if i.get("Segment", "") == req.query["segment"]]


@route(ROUTES, "GET", "/v1/coordinate/datacenters")
async def datacenters(req: Request) -> web.Response:
    """Each datacenter's servers (`<node>.<dc>`) with their WAN coordinates, as this server's WAN pool
    measured them (wan.py); servers not measured yet are left out, as Serf has none for them."""
    wan = req.ctx.wan
    dc = req.ctx.datacenter
    if wan is None:
        known = {dc: [(req.ctx.agent.node_name, Coordinate().to_json())]}
        order = [dc]
    else:
        known, order = wan.coordinates(), wan.datacenters()
    return respond(req, [{"Datacenter": name, "AreaID": "WAN", "Coordinates": [
        {"Node": f"{node}.{name}", "Coord": c} for node, c in known.get(name, [])]} for name in order])


@route(ROUTES, "GET", "/v1/coordinate/nodes")
async def nodes(req: Request) -> web.Response:
    state = req.ctx.store.state

    def run() -> Result:
        index, items = state.coordinate_list()
        return Result(index, req.ctx.acl.filter_nodes(req, _segment_filtered(req, items)))

    return await blocking(req, run, Watch(keys=[wk.COORDINATES]))


@route(ROUTES, "GET", "/v1/coordinate/node/{node}")
async def node(req: Request) -> web.Response:
    name = req.match["node"]
    state = req.ctx.store.state

    def run() -> Result:
        index, items = state.coordinate_list()
        found = req.ctx.acl.filter_nodes(req, _segment_filtered(req, [i for i in items if i["Node"] == name]))
        return Result(index, found) if found else Result(index, None, status=404)

    return await blocking(req, run, Watch(keys=[wk.COORDINATES]))


@route(ROUTES, "PUT", "/v1/coordinate/update")
async def update(req: Request) -> web.Response:
    check_dc(req)
    body = await req.json()
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: body must be a JSON object")
    name, segment = body.get("Node"), body.get("Segment") or ""
    if not isinstance(name, str) or not isinstance(segment, str):
        raise HTTPError(400, "Request decode failed: Node and Segment must be strings")
    req.authorize("node", name, "write")
    try:
        coordinate = Coordinate.from_json(body.get("Coord"))
    except ValueError as exc:
        raise HTTPError(500, f"rejected bad coordinate: {exc}") from None
    update = entry(name, coordinate, segment)
    batcher = req.ctx.coordinates
    if batcher is not None:
        batcher.add(update)  # applied with the next batch, as Consul's coordinate_update_period
    else:
        await req.ctx.store.apply(CoordinateUpdate((update,)))
    return respond(req, None)
