"""Leader forwarding for a Raft server's HTTP API: Consul's consistency modes.

* writes go through `store.apply`, which pysyncobj forwards to the leader by itself;
* `?stale` reads are answered by any server (X-Consul-LastContact says how stale);
* `?consistent` reads are answered here after `store.barrier()` (a quorum round trip);
* default reads are the leader's: a follower forwards them to the leader's HTTP address
  (blocking ones too: if the leader dies while one waits, it is retried at the next one);
* sessions are forwarded whole, since their TTL timers live on the leader (Consul).

A leader answers reads only once it applied the first entry of its term, so an index seen
on an old leader never goes backwards on the new one.

`?dc=<another datacenter>` comes first (`DatacenterForwarder`; for catalog register and deregister,
the body's `Datacenter` as in Consul): the request goes as it is to a
server of that datacenter known to the WAN pool (meshctl/server/wan.py), which answers it as
any request of its own (leader forwarding, blocking, ACLs with the caller's token); the next
server is tried when one cannot be reached. A datacenter nobody knows is Consul's 500
"No path to datacenter".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from meshctl.server.agent.servers import NOT_SENT
from meshctl.server.fields import canonical
from meshctl.server.http.common import CTX_KEY, MAX_WAIT, ORIGIN_NODE_HEADER, HTTPError, read_body

if TYPE_CHECKING:
    from meshctl.server.wan import WanPool

log = logging.getLogger(__name__)

FORWARDED = "X-Meshctl-Forwarded"
WAN_FORWARDED = "X-Meshctl-Wan-Forwarded"  # sent to another datacenter: never sent on again
NO_PATH = "No path to datacenter"
# Requests Consul answers locally whatever their ?dc= (the agent's own view, the WAN list itself).
LOCAL_ONLY = ("/v1/agent/", "/v1/catalog/datacenters", "/v1/coordinate/datacenters", "/v1/event/list",
              "/v1/internal/", "/v1/meshctl/")
READ_AREAS = ("/v1/kv/", "/v1/catalog/", "/v1/health/", "/v1/coordinate/", "/v1/query",
              "/v1/operator/raft/configuration")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
LEADER_WAIT = 10.0  # how long a request waits for a leader during an election


def _leader_bound(request: web.Request) -> bool:
    """Does Consul answer this request on the leader?"""
    path = request.path
    if path.startswith(("/v1/operator/raft/peer", "/v1/operator/raft/transfer-leader", "/v1/operator/autopilot/")):
        return "stale" not in request.query  # autopilot's health is the leader's view
    if path == "/v1/snapshot":
        return "stale" not in request.query
    if path.startswith("/v1/session/"):
        return request.method != "GET" or ("stale" not in request.query and "consistent" not in request.query)
    if request.method != "GET" or "stale" in request.query or "consistent" in request.query:
        return False
    return path.startswith(READ_AREAS)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Proxy:
    """Sends a request on, as it is, to another server's HTTP API (one pooled session)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request, http_addr: str, body: bytes,
                       extra: dict[str, str] | None = None) -> web.Response:
        """The other server's answer (status, headers, body) to `request`; blocking queries included."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=False),
                auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers.update(extra or {})
        timeout = aiohttp.ClientTimeout(total=MAX_WAIT * 1.1 + 30, sock_connect=2)
        async with self._session.request(request.method, f"http://{http_addr}{request.path_qs}", data=body or None,
                                         headers=headers, timeout=timeout, allow_redirects=False) as resp:
            payload = await resp.read()
            out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(status=resp.status, body=payload, headers=out_headers)


# Consul reads the datacenter of these writes from their body (`Datacenter`), not from ?dc=
BODY_DATACENTER = ("/v1/catalog/register", "/v1/catalog/deregister")


async def _target_datacenter(request: web.Request) -> str | None:
    """The datacenter a request is for: ?dc=, or a catalog write's body `Datacenter` (None: this one)."""
    if "dc=" in request.query_string:  # the common case skips parsing the query
        return request.query.get("dc")
    if request.method != "PUT" or request.path not in BODY_DATACENTER or not request.body_exists:
        return None
    body = await read_body(request)  # kept on the request: the endpoint (or a forwarder) reads it again
    if b"datacenter" not in body.lower():
        return None
    try:
        decoded = canonical(json.loads(body))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None  # the endpoint answers the decode error
    dc = decoded.get("Datacenter") if isinstance(decoded, dict) else None
    return dc if isinstance(dc, str) else None


class DatacenterForwarder(Proxy):
    """aiohttp middleware sending `?dc=<another datacenter>` requests to a server of that datacenter."""

    def __init__(self, wan: WanPool | None) -> None:
        super().__init__()
        self.wan = wan

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        dc = await _target_datacenter(request)
        if not dc or dc == request.app[CTX_KEY].datacenter or request.path.startswith(LOCAL_ONLY):
            return await handler(request)
        servers = self.wan.servers(dc) if self.wan is not None else []
        if not servers or request.headers.get(WAN_FORWARDED):  # one hop only: no loops on a stale list
            raise HTTPError(500, NO_PATH)
        body = await read_body(request) if request.body_exists else b""
        errors = []
        for server in servers:
            try:
                response = await self._forward(request, server.http, body, {WAN_FORWARDED: "1"})
            except NOT_SENT as exc:  # never reached it: any request may go to the next one
                self.wan.mark_failed(server)  # type: ignore[union-attr]
                errors.append(f"{server.http}: {exc}")
            except (TimeoutError, aiohttp.ClientError) as exc:
                if request.method not in ("GET", "HEAD"):  # it may have been applied: not sent twice
                    raise HTTPError(500, f"rpc error: {exc or type(exc).__name__} (request to datacenter {dc} "
                                         "may or may not have been applied)") from None
                errors.append(f"{server.http}: {exc or type(exc).__name__}")
            else:
                server.alive = True
                return response
        log.info("?dc=%s: no server answered (%s)", dc, "; ".join(errors))
        raise HTTPError(500, NO_PATH)


class LeaderForwarder(Proxy):
    """aiohttp middleware sending leader-bound requests of a follower to the leader."""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        store = request.app[CTX_KEY].store
        if not hasattr(store, "wait_ready") or not _leader_bound(request):
            return await handler(request)
        deadline = time.monotonic() + LEADER_WAIT
        body = await read_body(request) if request.body_exists else b""
        while True:
            if store.is_leader and await store.wait_ready():
                return await handler(request)
            if request.headers.get(FORWARDED):  # sent here as to the leader: never bounce it on
                raise HTTPError(500, "No cluster leader")
            info = store.leader_info() if store.known_leader else None
            if info and info.get("HTTP"):
                origin = request.headers.get(ORIGIN_NODE_HEADER) or request.app[CTX_KEY].agent.node_name
                try:
                    return await self._forward(request, info["HTTP"], body,
                                               {FORWARDED: "1", ORIGIN_NODE_HEADER: origin})
                except (TimeoutError, aiohttp.ClientError) as exc:
                    if request.method != "GET":
                        raise HTTPError(500, f"rpc error: leader unreachable: {exc}") from None
                    log.info("forward to leader %s failed (%s); retrying", info["HTTP"], exc)
            if time.monotonic() > deadline:
                raise HTTPError(500, "No cluster leader")
            await asyncio.sleep(0.05)
