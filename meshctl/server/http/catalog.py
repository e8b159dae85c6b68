"""/v1/catalog: register, deregister, datacenters, nodes, services, service/:name, node/:node."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshctl.server import selectors
from meshctl.server import watchkeys as wk
from meshctl.server.commands import Deregister, Register
from meshctl.server.fields import UnknownField, check_known, locality, service_addresses
from meshctl.server.http.common import (
    HTTPError,
    Request,
    Result,
    Route,
    Watch,
    apply_filter,
    blocking,
    check_dc,
    meta_matches,
    node_meta_filter,
    respond,
    route,
)
from meshctl.server.http.coordinate import nearest_first
from meshctl.server.state.records import service_node_json

ROUTES: list[Route] = []


def validate_registration(body: Any) -> dict[str, Any]:
    """Consul's checks on a catalog registration, before anything is applied."""
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: body must be a JSON object")
    try:
        check_known(body)
    except UnknownField as exc:
        raise HTTPError(400, str(exc)) from None
    if not body.get("Node"):
        raise HTTPError(400, "Must provide node")
    if not body.get("Address") and not body.get("SkipNodeUpdate"):
        raise HTTPError(400, "Must provide address if SkipNodeUpdate is not set")
    svc = body.get("Service")
    if svc is not None:
        if not isinstance(svc, dict):
            raise HTTPError(400, "Request decode failed: Service must be an object")
        if not svc.get("Service"):
            raise HTTPError(400, "Must provide service name with ID" if svc.get("ID") else "Missing service name")
        if svc.get("Address") in ("0.0.0.0", "::", "[::]"):
            raise HTTPError(400, "Invalid service address")
        try:
            service_addresses(svc.get("TaggedAddresses"))
            locality(svc.get("Locality"))
        except UnknownField as exc:
            raise HTTPError(400, str(exc)) from None
    for name in ("NodeMeta", "TaggedAddresses"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise HTTPError(400, f"Request decode failed: {name} must be an object")
    meta = body.get("NodeMeta") or {}
    if len(meta) > 64:
        raise HTTPError(400, "Node metadata cannot contain more than 64 key/value pairs")
    checks = list(body.get("Checks") or [])
    if body.get("Check"):
        checks.insert(0, body["Check"])
    for chk in checks:
        if not isinstance(chk, dict):
            raise HTTPError(400, "Request decode failed: checks must be objects")
        if chk.get("Status") and chk["Status"] not in ("passing", "warning", "critical"):
            raise HTTPError(400, f"Invalid check status: '{chk['Status']}'")
        chk.setdefault("Node", body["Node"])
    body = dict(body, Op="register", Checks=checks)
    body.pop("Check", None)
    return body


def _this_datacenter(req: Request, body: Any) -> Any:
    """A body for another datacenter reached here unforwarded (forward.py sends those on): no path."""
    dc = body.get("Datacenter") if isinstance(body, dict) else None
    if dc and dc != req.ctx.datacenter:
        raise HTTPError(500, "No path to datacenter")
    return body


@route(ROUTES, "PUT", "/v1/catalog/register")
async def register(req: Request) -> web.Response:
    check_dc(req)
    body = validate_registration(_this_datacenter(req, await req.json()))
    req.authorize("node", body["Node"], "write")
    if body.get("Service"):
        req.authorize("service", body["Service"]["Service"], "write")
    await req.ctx.store.apply(Register.decode(body))
    return respond(req, True)


@route(ROUTES, "PUT", "/v1/catalog/deregister")
async def deregister(req: Request) -> web.Response:
    check_dc(req)
    body = _this_datacenter(req, await req.json())
    if not isinstance(body, dict) or not body.get("Node"):
        raise HTTPError(400, "Must provide node")
    req.authorize("node", body["Node"], "write")
    await req.ctx.store.apply(Deregister(body["Node"], body.get("ServiceID", ""), body.get("CheckID", "")))
    return respond(req, True)


@route(ROUTES, "GET", "/v1/catalog/datacenters")
async def datacenters(req: Request) -> web.Response:
    """This datacenter first, then those the WAN pool knows (Consul sorts them by round-trip time)."""
    wan = req.ctx.wan
    return respond(req, wan.datacenters() if wan is not None else [req.ctx.datacenter])


def _visible_nodes(req: Request, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    meta = node_meta_filter(req)
    return apply_filter(req, [n for n in nodes if meta_matches(n["Meta"], meta)], selectors.NODE)


@route(ROUTES, "GET", "/v1/catalog/nodes")
async def nodes(req: Request) -> web.Response:
    state = req.ctx.store.state

    def run() -> Result:
        index, items = state.catalog_nodes()
        items = nearest_first(req, req.ctx.acl.filter_nodes(req, _visible_nodes(req, items)), lambda n: n["Node"])
        return Result(index, items)

    return await blocking(req, run, Watch(keys=[wk.NODES]))


@route(ROUTES, "GET", "/v1/catalog/services")
async def services(req: Request) -> web.Response:
    state = req.ctx.store.state
    meta = node_meta_filter(req)

    def run() -> Result:
        if not meta and "filter" not in req.query:
            index, svcs = state.catalog_services()
        else:
            index = state.table_index[wk.SERVICES]
            # the filter sees each instance as /v1/catalog/service shows it (structs.ServiceNode)
            instances = [service_node_json(node, svc) for node, svc in _all_instances(state)
                         if meta_matches(node["Meta"], meta)]
            found: dict[str, set[str]] = {}
            for inst in apply_filter(req, instances, selectors.SERVICE_NODE):
                found.setdefault(inst["ServiceName"], set()).update(inst["ServiceTags"])
            svcs = {k: sorted(found[k]) for k in sorted(found)}
        return Result(index, req.ctx.acl.filter_service_map(req, svcs))

    return await blocking(req, run, Watch(keys=[wk.SERVICES]))


def _all_instances(state: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(state.nodes[n], s) for n in sorted(state.services) for s in state.services[n].values()]



@route(ROUTES, "GET", "/v1/catalog/service/{service}")
async def service(req: Request) -> web.Response:
    name = req.match["service"]
    if not name:
        raise HTTPError(400, "Missing service name")
    state = req.ctx.store.state
    tags = req.params("tag")
    meta = node_meta_filter(req)

    def run() -> Result:  # instances the token may not read are filtered out, as Consul does
        index, items = state.catalog_service(name, tags)
        items = [i for i in items if meta_matches(i["NodeMeta"], meta)]
        items = req.ctx.acl.filter_nodes(req, apply_filter(req, items, selectors.SERVICE_NODE))
        return Result(index, nearest_first(req, items, lambda i: i["Node"]))

    return await blocking(req, run, Watch(keys=[wk.service(name)]))


@route(ROUTES, "GET", "/v1/catalog/node/{node}")
async def node(req: Request) -> web.Response:
    return await _node_view(req, as_list=False)


@route(ROUTES, "GET", "/v1/catalog/node-services/{node}")
async def node_services(req: Request) -> web.Response:
    return await _node_view(req, as_list=True)


async def _node_view(req: Request, as_list: bool) -> web.Response:
    name = req.match["node"]
    if not name:
        raise HTTPError(400, "Missing node name")
    state = req.ctx.store.state

    def run() -> Result:
        index, node_rec, svcs = state.catalog_node(name)
        # a node the token may not read is filtered to null, as Consul does (no 403)
        if node_rec is None or not req.ctx.acl.filter_nodes(req, [node_rec]):
            return Result(index, b"null")
        svcs = req.ctx.acl.filter_services(req, apply_filter(req, svcs, selectors.AGENT_SERVICE))
        if as_list:
            return Result(index, {"Node": node_rec, "Services": svcs})
        return Result(index, {"Node": node_rec, "Services": {s["ID"]: s for s in svcs}})

    return await blocking(req, run, Watch(keys=[wk.node(name)]))

