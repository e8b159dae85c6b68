"""/v1/agent: this node's view — self, members, services, checks, registration, TTL updates, maintenance."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from aiohttp import web

from meshctl.durations import parse_duration
from meshctl.server import selectors
from meshctl.server import watchkeys as wk
from meshctl.server.agent.definitions import STATUSES, DefinitionError, parse_check
from meshctl.server.agent.local import AgentError
from meshctl.server.commands import Deregister
from meshctl.server.http.common import (
    DEFAULT_WAIT,
    MAX_WAIT,
    HTTPError,
    Request,
    Route,
    apply_filter,
    respond,
    route,
)
from meshctl.server.state import SERF_CHECK_ID, aggregated_status

log = logging.getLogger(__name__)

ROUTES: list[Route] = []
HASH_POLL = 1.0  # a ?hash= read looks again at least this often


async def _call(coro: Any) -> None:
    """Run an agent operation, turning its errors into Consul's HTTP answers."""
    try:
        await coro
    except AgentError as exc:
        raise HTTPError(exc.status, exc.text) from None


@route(ROUTES, "GET", "/v1/agent/self")
async def agent_self(req: Request) -> web.Response:
    req.authorize("agent", req.ctx.agent.node_name, "read")
    body = req.ctx.agent.self_json()
    if req.ctx.coordinates is not None:  # a server's own estimate (meshctl/server/coordinates.py)
        body["Coord"] = req.ctx.coordinates.coordinate()
    return respond(req, body)


@route(ROUTES, "GET", "/v1/agent/members")
async def members(req: Request) -> web.Response:
    """The LAN pool (servers, then client agents), or with `?wan` the WAN pool: every server of every datacenter."""
    cluster = req.ctx.cluster
    items = cluster.members(req.ctx.agent.member_json()) if cluster is not None else [req.ctx.agent.member_json()]
    if req.flag("wan"):  # presence, as meshctl's other flags (Consul's Go API sends wan=1)
        if req.param("segment") not in ("", "_all"):
            raise HTTPError(400, "Cannot provide a segment with wan=true")
        items = _wan_members(req, items)
    else:
        items += _client_members(req, {m["Name"] for m in items})
    return respond(req, req.ctx.acl.filter_members(req, items))


def _wan_members(req: Request, lan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The WAN pool's servers (`<node>.<dc>`, wan.py), this datacenter's with their LAN tags and status.

    The WAN pool only knows who this datacenter's servers are; their LAN entries know their
    Raft port, ID, build and whether they are alive. A server without a WAN pool (none wired)
    lists itself alone.
    """
    wan = req.ctx.wan
    items = wan.members() if wan is not None else []
    dc = req.ctx.datacenter
    if not items:
        me = req.ctx.agent.member_json()
        items = [{**me, "Name": f"{me['Name']}.{dc}"}]
    by_name = {m["Name"]: m for m in lan if (m.get("Tags") or {}).get("role") == "consul"}
    suffix = f".{dc}"
    for item in items:
        if item["Tags"].get("dc") != dc or not item["Name"].endswith(suffix):
            continue
        own = by_name.get(item["Name"][: -len(suffix)])
        if own is not None:
            item["Tags"] = {**own["Tags"], **item["Tags"]}
            item["Status"] = own["Status"]
    return items


@route(ROUTES, "PUT", "/v1/agent/force-leave/{node}")
async def force_leave(req: Request) -> web.Response:
    """Consul's force-leave: a failed member becomes `left` (a server also leaves the Raft configuration,
    a client agent's node leaves the catalog); `?prune` forgets it at once. An alive member is left alone."""
    req.authorize("operator", "", "write")
    node, prune = req.match["node"], req.flag("prune")
    cluster = req.ctx.cluster
    if cluster is not None:
        for addr, info in cluster.directory().items():
            if info.get("Node") != node:
                continue
            if addr in cluster.store.peers() and cluster.store.connected(addr):
                log.info("force-leave %s: the server is alive, nothing to do", node)
                return respond(req, None)
            if addr in cluster.store.peers() or (prune and info.get("Status") == "left"):
                await cluster.mark_left(addr, prune=prune)
                return respond(req, None)
    state = req.ctx.store.state
    check = state.checks.get(node, {}).get(SERF_CHECK_ID)
    if check is not None:
        if check["Status"] == "critical":  # failed: Consul's leader deregisters a left member
            await req.ctx.store.apply(Deregister(node))
        return respond(req, None)
    raise HTTPError(500, f"agent: No node found with name '{node}'")


def _client_members(req: Request, known: set[str]) -> list[dict[str, Any]]:
    """Client agents, as gossip would list them: catalog nodes that carry a serfHealth check.

    Only agents register serfHealth (external nodes registered through the catalog do not);
    the check's status is the member's: passing is alive (1), critical is failed (4).
    """
    state = req.ctx.store.state
    out = []
    for name in sorted(state.nodes):
        check = state.checks.get(name, {}).get(SERF_CHECK_ID)
        if name in known or check is None:
            continue
        node = state.nodes[name]
        member = req.ctx.agent.member_json()
        member.update(Name=name, Addr=node["Address"], Status=1 if check["Status"] == "passing" else 4)
        member["Tags"] = dict(member["Tags"], role="node", id=node["ID"])
        member["Tags"].pop("port", None)
        out.append(member)
    return out



@route(ROUTES, "GET", "/v1/agent/services")
async def services(req: Request) -> web.Response:
    agent = req.ctx.agent
    items = [agent.service_json(sid) for sid in sorted(agent.services)]
    items = req.ctx.acl.filter_services(req, apply_filter(req, items, selectors.AGENT_SERVICE))
    return respond(req, {s["ID"]: s for s in items})


def _content_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _hash_wait(req: Request) -> float:
    """How long a `?hash=` read may block: ?wait (Consul's default 5m, at most 10m)."""
    if "wait" not in req.query:
        return DEFAULT_WAIT
    try:
        wait = parse_duration(req.query["wait"])
    except ValueError:
        raise HTTPError(400, "Invalid wait time") from None
    return min(max(wait, 0.0), MAX_WAIT)


@route(ROUTES, "GET", "/v1/agent/service/{id}")
async def service(req: Request) -> web.Response:
    """One local service; `?hash=<ContentHash>` blocks until its definition no longer has that hash."""
    agent = req.ctx.agent
    sid = req.match["id"]

    def current() -> tuple[dict[str, Any], str]:
        if sid not in agent.services:
            raise HTTPError(404, f"unknown service ID: {sid}")
        req.authorize("service", agent.services[sid]["Service"], "read")
        body = agent.service_json(sid)
        return body, _content_hash(body)

    body, digest = current()
    wanted = req.param("hash")
    if wanted and wanted == digest:
        deadline = time.monotonic() + _hash_wait(req)
        while digest == wanted and (remaining := deadline - time.monotonic()) > 0:
            # the agent's registrations touch its node's key; the short timeout also covers client
            # agents, whose store is not the one that wakes
            await req.ctx.store.hub.wait([wk.node(agent.node_name)], [], min(remaining, HASH_POLL))
            body, digest = current()
    body["ContentHash"] = digest
    return respond(req, body, headers={"X-Consul-ContentHash": digest})


@route(ROUTES, "GET", "/v1/agent/checks")
async def checks(req: Request) -> web.Response:
    agent = req.ctx.agent
    items = apply_filter(req, [agent.check_json(cid) for cid in sorted(agent.checks)], selectors.HEALTH_CHECK)
    items = req.ctx.acl.filter_checks(req, items)
    return respond(req, {c["CheckID"]: c for c in items})


# /v1/agent/health/service/*: load balancers read the status code (Consul's agentHealthService)
HEALTH_CODES = {"passing": 200, "warning": 429}  # critical and maintenance: 503


def _service_health(req: Request, sid: str) -> tuple[int, dict[str, Any]]:
    """One local instance's aggregated health (its checks and the node's): status code and AgentServiceChecksInfo."""
    agent = req.ctx.agent
    checks = [agent.check_json(c) for c, d in agent.checks.items() if d.service_id in ("", sid)]
    status = aggregated_status(checks)
    return HEALTH_CODES.get(status, 503), {"AggregatedStatus": status, "Service": agent.service_json(sid),
                                           "Checks": checks}


def _wants_text(req: Request) -> bool:
    """?format=text, or (without ?format) an Accept of text/plain, as Consul's returnTextPlain."""
    if "format" in req.query:
        return req.param("format") == "text"
    return req.raw.headers.get("Accept", "").startswith("text/plain")


@route(ROUTES, "GET", "/v1/agent/health/service/id/{id}")
async def health_by_id(req: Request) -> web.Response:
    agent = req.ctx.agent
    sid = req.match["id"]
    if sid not in agent.services:
        return respond(req, f"ServiceId {sid} not found".encode(), 404, content_type="text/plain")
    req.authorize("service", agent.services[sid]["Service"], "read")
    code, info = _service_health(req, sid)
    if _wants_text(req):
        return respond(req, info["AggregatedStatus"].encode(), code, content_type="text/plain")
    return respond(req, info, code)


@route(ROUTES, "GET", "/v1/agent/health/service/name/{name}")
async def health_by_name(req: Request) -> web.Response:
    """Every local instance of the service; the status code is the worst of theirs (404: none)."""
    name = req.match["name"]
    req.authorize("service", name, "read")
    agent = req.ctx.agent
    code, text, infos = 404, f"ServiceName {name} Not Found", []
    for sid in sorted(agent.services):
        if agent.services[sid]["Service"] != name:
            continue
        instance_code, info = _service_health(req, sid)
        infos.append(info)
        if code == 404 or instance_code > code:  # 200 < 429 < 503
            code, text = instance_code, info["AggregatedStatus"]
    if _wants_text(req):
        return respond(req, text.encode(), code, content_type="text/plain")
    return respond(req, infos, code)


@route(ROUTES, "PUT", "/v1/agent/service/register")
async def service_register(req: Request) -> web.Response:
    body = await req.json()
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: body must be a JSON object")
    name = body.get("Name") or body.get("name") or ""
    req.authorize("service", name, "write")
    await _call(req.ctx.agent.add_service(body, replace_existing_checks="replace-existing-checks" in req.query))
    return respond(req, None)


@route(ROUTES, "PUT", "/v1/agent/service/deregister/{id}")
async def service_deregister(req: Request) -> web.Response:
    agent = req.ctx.agent
    sid = req.match["id"]
    svc = agent.services.get(sid)
    req.authorize("service", svc["Service"] if svc else sid, "write")
    await _call(agent.remove_service(sid))
    return respond(req, None)


@route(ROUTES, "PUT", "/v1/agent/check/register")
async def check_register(req: Request) -> web.Response:
    body = await req.json()
    if not isinstance(body, dict) or not (body.get("Name") or body.get("name")):
        raise HTTPError(400, "Missing check name")
    try:
        check = parse_check(body)
    except DefinitionError as exc:
        raise HTTPError(400, str(exc)) from None
    req.authorize("node", req.ctx.agent.node_name, "write")
    await _call(req.ctx.agent.add_check(check))
    return respond(req, None)


@route(ROUTES, "PUT", "/v1/agent/check/deregister/{id}")
async def check_deregister(req: Request) -> web.Response:
    req.authorize("node", req.ctx.agent.node_name, "write")
    await _call(req.ctx.agent.remove_check(req.match["id"]))
    return respond(req, None)


# pass / warn / fail: (status) — Consul's old docs use GET, so both are accepted
TTL_VERBS = {"pass": "passing", "warn": "warning", "fail": "critical"}


def _ttl_handler(status: str):
    async def handler(req: Request) -> web.Response:
        req.authorize("node", req.ctx.agent.node_name, "write")
        await _call(req.ctx.agent.ttl_update(req.match["id"], status, req.param("note")))
        return respond(req, None)

    return handler


for _verb, _status in TTL_VERBS.items():
    route(ROUTES, "PUT,GET", f"/v1/agent/check/{_verb}/{{id}}")(_ttl_handler(_status))


@route(ROUTES, "PUT", "/v1/agent/check/update/{id}")
async def check_update(req: Request) -> web.Response:
    body = await req.json(default={})
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: body must be a JSON object")
    status = body.get("Status", "")
    if status not in STATUSES:
        raise HTTPError(400, f"Invalid check status: '{status}'")
    req.authorize("node", req.ctx.agent.node_name, "write")
    await _call(req.ctx.agent.ttl_update(req.match["id"], status, str(body.get("Output", ""))))
    return respond(req, None)


@route(ROUTES, "PUT", "/v1/agent/maintenance")
async def node_maintenance(req: Request) -> web.Response:
    enable = req.bool_value("enable", "Missing value for enable", 'Invalid value for enable: "{value}"')
    req.authorize("node", req.ctx.agent.node_name, "write")
    await _call(req.ctx.agent.node_maintenance(enable, req.param("reason")))
    return respond(req, None)


@route(ROUTES, "PUT", "/v1/agent/service/maintenance/{id}")
async def service_maintenance(req: Request) -> web.Response:
    sid = req.match["id"]
    if not sid:
        raise HTTPError(400, "Missing service ID")
    enable = req.bool_value("enable", "Missing value for enable", 'Invalid value for enable: "{value}"')
    svc = req.ctx.agent.services.get(sid)
    req.authorize("service", svc["Service"] if svc else sid, "write")
    await _call(req.ctx.agent.service_maintenance(sid, enable, req.param("reason")))
    return respond(req, None)


# reload / leave / join: run the agent's hook for it (set by run.py), if there is one
AGENT_HOOKS = (("/v1/agent/reload", "reload", None), ("/v1/agent/leave", "leave", None),
               ("/v1/agent/join/{address}", "join", "address"))


def _hook_handler(name: str, path_arg: str | None):
    async def handler(req: Request) -> web.Response:
        req.authorize("agent", req.ctx.agent.node_name, "write")
        hook = getattr(req.ctx.hooks, name)  # AgentHooks.reload / leave / join
        if hook is not None:
            await (hook(req.match[path_arg]) if path_arg else hook())
        return respond(req, None)

    handler.__name__ = name
    return handler


for _path, _name, _arg in AGENT_HOOKS:
    route(ROUTES, "PUT", _path)(_hook_handler(_name, _arg))
