"""Client agents on servers: internal endpoints (apply, heartbeat, info) and the failure detector.

A client agent has no store: it applies its catalog writes on a server through
`PUT /v1/internal/meshctl/apply`, which accepts only the catalog commands a client needs
(`register`, `deregister`, `check_update`) and authorizes them as `node:write` on the
command's node — nothing a caller could not already do with /v1/catalog/register, so the
endpoint opens no new door. Each client also sends `PUT /v1/internal/meshctl/heartbeat`
every second to the server it uses (any server: it fails over), with its network coordinate and
the round trip of its last heartbeat, and gets the server's coordinate back (coordinates.py); `HeartbeatMonitor` turns a
silent node's serfHealth check critical (which invalidates its sessions in the state machine
and takes its services out of DNS and ?passing), and passing again when it is heard from. Client agents resolve the tokens of
their local requests through `GET /v1/internal/meshctl/acl/resolve` (meshctl/server/acl/remote.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from meshctl.server.commands import CheckUpdate, decode
from meshctl.server.http.common import CTX_KEY, HTTPError, Request, Route, respond, route
from meshctl.server.periodic import Periodic
from meshctl.server.state import SERF_CHECK_ID, StateError

log = logging.getLogger(__name__)

ALLOWED_OPS = {"register", "deregister", "check_update"}
ALIVE_OUTPUT = "Agent alive and reachable"
DEAD_OUTPUT = "Agent not live or unreachable"
HEARTBEAT_INTERVAL = 1.0
FAILURE_TIMEOUT = 6.0  # silence after which a node is failed (well within Consul's ~10 s)
ROUTES: list[Route] = []


class HeartbeatMonitor(Periodic):
    """Marks nodes whose heartbeats stopped as failed (serfHealth critical), and alive again."""

    failure = "heartbeat monitor failed"
    logger = log

    def __init__(self, store: Any, timeout: float = FAILURE_TIMEOUT, period: float = 0.5) -> None:
        self.store = store
        self.timeout = timeout
        self.period = period
        self.last_seen: dict[str, float] = {}

    def _serf_status(self, node: str) -> str | None:
        check = self.store.state.checks.get(node, {}).get(SERF_CHECK_ID)
        return None if check is None else check["Status"]

    async def beat(self, node: str) -> None:
        """A heartbeat from `node`: remember it; revive a failed node."""
        self.last_seen[node] = time.monotonic()
        if self._serf_status(node) == "critical":
            log.info("node %s is alive again", node)
            await self._set(node, "passing", ALIVE_OUTPUT)

    async def _set(self, node: str, status: str, output: str) -> bool:
        try:
            await self.store.apply(CheckUpdate(node, SERF_CHECK_ID, status, output))
            return True
        except StateError as exc:
            log.debug("serfHealth of %s not updated: %s", node, exc)
            return False

    async def scan(self, now: float) -> list[str]:
        """One pass: the nodes newly marked failed."""
        failed = []
        for node, seen in list(self.last_seen.items()):
            if now - seen < self.timeout:
                continue
            status = self._serf_status(node)
            if status is None:
                del self.last_seen[node]  # deregistered: forget it
            elif status != "critical":
                log.warning("node %s: no heartbeat for %.1fs, marking it failed", node, now - seen)
                if await self._set(node, "critical", DEAD_OUTPUT):
                    failed.append(node)
                    # forget it once marked: if it failed over to another server, that server revives
                    # it and this one must not mark it failed again and again (flapping)
                    del self.last_seen[node]
        return failed

    async def tick(self) -> None:
        await self.scan(time.monotonic())


def _monitor(req: Request) -> HeartbeatMonitor:
    monitor = req.ctx.hooks.monitor
    if monitor is None:
        raise HTTPError(404, "")
    return monitor


@route(ROUTES, "PUT", "/v1/internal/meshctl/apply")
async def internal_apply(req: Request) -> web.Response:
    """A client agent's catalog write for its own node."""
    _monitor(req)  # servers only
    command = await req.json()
    if not isinstance(command, dict) or command.get("Op") not in ALLOWED_OPS or not command.get("Node"):
        raise HTTPError(400, "Request decode failed: not a client agent catalog command")
    req.authorize("node", str(command["Node"]), "write")
    command.pop("Now", None)
    result = await req.ctx.store.apply(decode(command))
    return respond(req, result)


@route(ROUTES, "PUT", "/v1/internal/meshctl/heartbeat")
async def internal_heartbeat(req: Request) -> web.Response:
    """A client agent is alive."""
    monitor = _monitor(req)
    body = await req.json(default={})
    node = str((body or {}).get("Node") or "")
    if not node:
        raise HTTPError(400, "Missing node name")
    req.authorize("node", node, "write")
    await monitor.beat(node)
    batcher = req.ctx.coordinates
    if batcher is None or "Coord" not in body:  # a client agent that sends no coordinate gets what it always got
        return respond(req, True)
    rtt = body.get("RTT")
    if body["Coord"] is not None and isinstance(rtt, (int, float)) and not isinstance(rtt, bool):
        batcher.observe(node, body["Coord"], float(rtt))
    return respond(req, {"Coord": batcher.coordinate()})


@route(ROUTES, "GET", "/v1/internal/meshctl/info")
async def internal_info(req: Request) -> web.Response:
    """What a joining client needs: datacenter and this server's DNS port."""
    _monitor(req)
    return respond(req, {"Datacenter": req.ctx.datacenter, "DNSPort": req.ctx.hooks.dns_port,
                         "Node": req.ctx.agent.node_name, "ACLEnabled": req.ctx.acl.enabled})


def add_routes(app: web.Application) -> None:
    """Add the internal routes to a server's HTTP app (before it starts), ACL resolution included."""
    from meshctl.server.acl import remote

    for r in ROUTES + remote.ROUTES:
        async def handler(raw: web.Request, r: Route = r) -> web.StreamResponse:
            return await r.handler(Request(raw, raw.app[CTX_KEY]))

        for method in r.methods:
            app.router.add_route(method, r.path, handler)
