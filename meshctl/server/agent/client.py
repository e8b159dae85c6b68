"""Client agents: `meshctl agent -join SERVER` on every node that is not a server.

A client keeps no store. It learns every server of its datacenter from the ones it joins
and talks to one of them, failing over to the next when that one cannot be reached
(servers.py: reads are retried anywhere, writes only when they surely were not sent).
`RemoteStore` applies its catalog commands on a server through the internal endpoint
(heartbeat.py); the HTTP API serves /v1/agent/* locally (members: the server's LAN list)
and proxies every other /v1/* call to the server unchanged (blocking queries included);
the DNS port forwards queries to the servers' DNS interfaces. Local /v1/agent/* requests
are enforced with ACL tokens resolved by the server (meshctl/server/acl/remote.py); the
agent's own registrations use its agent token. A heartbeat every second keeps the node's
serfHealth passing; anti-entropy repairs the catalog's copy of the node every minute.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from meshctl.server.acl.remote import ACLResolver, RemoteACLEnforcer, guarded
from meshctl.server.agent.antientropy import AntiEntropy
from meshctl.server.agent.checks import CriticalReaper, close_shared
from meshctl.server.agent.heartbeat import HEARTBEAT_INTERVAL
from meshctl.server.agent.local import LocalAgent
from meshctl.server.agent.runtime import (
    ConfigError,
    Definitions,
    configure_local,
    dns_config_from,
    reload_files,
)
from meshctl.server.agent.servers import CONNECT_TIMEOUT, NoServers, ServerPool
from meshctl.server.commands import Command, to_wire
from meshctl.server.context import AgentHooks, ServerContext
from meshctl.server.coordinates import Coordinate, Vivaldi
from meshctl.server.dns import FORWARD, DNSConfig
from meshctl.server.http import agent as agent_area
from meshctl.server.http import ui
from meshctl.server.http.app import consul_errors
from meshctl.server.http.cache import AgentCache
from meshctl.server.http.common import (
    CTX_KEY,
    ORIGIN_NODE_HEADER,
    HTTPError,
    Request,
    Route,
    read_body,
    respond,
)
from meshctl.server.http.limits import HEADER_TIMEOUT, MAX_BODY, MAX_FIELD_SIZE
from meshctl.server.state import State, StateError
from meshctl.server.store import FixedLeader
from meshctl.server.watch import WatchHub

if TYPE_CHECKING:
    from meshctl.server.agentconfig import AgentConfig, AgentOptions

log = logging.getLogger("meshctl.agent")

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade",
               "proxy-connection", "te", "trailer"}
APPLY_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=CONNECT_TIMEOUT)
HEARTBEAT_TIMEOUT = aiohttp.ClientTimeout(total=3, sock_connect=CONNECT_TIMEOUT)
MEMBERS_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=CONNECT_TIMEOUT)
# a proxied blocking query may wait up to 10 minutes (plus jitter) for its answer
PROXY_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_read=700, sock_connect=CONNECT_TIMEOUT)


class RemoteStore(FixedLeader):
    """The store of a client agent: writes and its own node's view go to a server over HTTP.

    Requests go through the agent's `ServerPool`, so they fail over to another server; its
    leader, as far as the agent can tell, is the server in use (`leader`, host:port of its HTTP API).
    """

    is_leader = False

    def __init__(self, pool: ServerPool, datacenter: str) -> None:
        self.pool = pool
        self.state = State(datacenter)  # always empty: reads are proxied
        self.hub = WatchHub()
        self.vivaldi = Vivaldi()  # this node's network coordinate, moved by each heartbeat's round trip
        self.last_rtt: float | None = None

    @property
    def leader(self) -> str:  # type: ignore[override]  # FixedLeader's attribute, computed here
        return self.pool.current.http if self.pool.current is not None else ""

    @property
    def base(self) -> str:
        return self.pool.base

    @property
    def known_servers(self) -> int:
        """How many servers this agent knows (Consul's agent/self Stats.consul.known_servers)."""
        return len(self.pool.servers)

    async def apply(self, command: Command | dict[str, Any]) -> Any:
        try:
            # a write: sent to another server only if it surely never reached the first
            reply = await self.pool.call("PUT", "/v1/internal/meshctl/apply", json_body=to_wire(command),
                                         timeout=APPLY_TIMEOUT)
        except NoServers as exc:
            raise StateError(str(exc)) from None
        if reply.status != 200:
            raise StateError(reply.text or f"server answered {reply.status}")
        return reply.json()

    async def _get(self, path: str) -> Any:
        reply = await self.pool.call("GET", path, timeout=APPLY_TIMEOUT)
        if reply.status != 200:
            raise StateError(f"GET {path}: server answered {reply.status}: {reply.text[:200]}")
        return reply.json()

    async def node_view(self, node: str) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any]]:
        body = await self._get(f"/v1/catalog/node/{quote(node, safe='')}")
        if body is None:
            return None, {}, {}
        checks = await self._get(f"/v1/health/node/{quote(node, safe='')}") or []
        return body["Node"], dict(body.get("Services") or {}), {c["CheckID"]: c for c in checks}

    async def heartbeat(self, node: str) -> None:
        """One heartbeat; its round trip moves this node's coordinate (meshctl/server/coordinates.py)."""
        body = {"Node": node, "Coord": self.vivaldi.coordinate.to_json(), "RTT": self.last_rtt}
        started = time.monotonic()
        # repeating a heartbeat is harmless: it may go to the next server after any failure
        reply = await self.pool.call("PUT", "/v1/internal/meshctl/heartbeat", json_body=body,
                                     timeout=HEARTBEAT_TIMEOUT, safe=True)
        rtt = time.monotonic() - started
        if reply.status != 200:
            raise StateError(reply.text)
        answer = reply.json()
        if isinstance(answer, dict):
            try:
                server = Coordinate.from_json(answer.get("Coord"))
            except ValueError:
                return
            self.vivaldi.update(server, rtt)
            self.last_rtt = rtt


class ForwardingResolver:
    """A client's DNS: every query goes to a server's DNS interface, the one in use first."""

    def __init__(self, pool: ServerPool) -> None:
        self.pool = pool
        self.config = DNSConfig(recursor_timeout=3.0)
        self.update()

    def update(self) -> None:
        """Follow the pool: its servers' DNS addresses, in the order requests try them."""
        self.config.recursors = [f"{s.http.rpartition(':')[0]}:{s.dns_port}" for s in self.pool.ordered()
                                 if s.dns_port]

    def answer(self, data: bytes, transport: str = "udp") -> bytes:
        return FORWARD

    def reconfigure(self, config: DNSConfig) -> None:
        return None


class ClientAgent:
    """A client agent process: local agent + proxy HTTP API + DNS forwarder + heartbeat."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.opts: AgentOptions = cfg.options
        self.join = list(self.opts.join) + list(cfg.retry_join)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.session: aiohttp.ClientSession | None = None
        self.proxy_session: aiohttp.ClientSession | None = None
        self.local: LocalAgent | None = None
        self.store: RemoteStore | None = None
        self._runner: web.AppRunner | None = None
        self.cache = AgentCache()  # ?cached reads: answered by this agent (cache.py)
        self.dns: Any = None
        self.definitions: Definitions | None = None
        self.acl: RemoteACLEnforcer | None = None
        self.pool: ServerPool | None = None

    async def start(self) -> None:
        cfg = self.cfg
        from meshctl.server.security import agent_headers

        self.session = aiohttp.ClientSession(headers=agent_headers(cfg))  # ACLs: the agent's own token
        self.proxy_session = aiohttp.ClientSession(auto_decompress=False,
                                                   connector=aiohttp.TCPConnector(limit=0))
        self.pool = ServerPool(self.session, self.join)
        info = await self.pool.join_servers()
        server = self.pool.base
        if info.get("Datacenter") and info["Datacenter"] != cfg.datacenter:
            log.warning("server %s is in datacenter %s; using it", server, info["Datacenter"])
            cfg.datacenter = info["Datacenter"]
        self.pool.datacenter = cfg.datacenter  # from now on, servers of other datacenters are ignored
        log.info("joined server %s (node %s); %d server(s) known", server, info.get("Node"), len(self.pool.servers))
        self.pool.start()
        self.store = RemoteStore(self.pool, cfg.datacenter)
        self.local = LocalAgent(self.store, cfg.node, address=cfg.bind, datacenter=cfg.datacenter, server=False,
                                ports={"server": cfg.server_port, "serf_lan": cfg.serf_port})
        configure_local(self.local, self.opts)
        self.definitions = Definitions(self.local)
        self.acl = self._acl_enforcer(info)
        ctx = ServerContext(store=self.store, agent=self.local, datacenter=cfg.datacenter,  # type: ignore[arg-type]
                            acl=self.acl, hooks=AgentHooks(reload=self.reload, leave=self._leave,
                                                                          join=self._join))
        app = self._make_app(ctx, self.acl)
        # in-flight blocking queries are not waited for: a stopping agent answers nothing more
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        for host in cfg.client.split():
            await web.TCPSite(self._runner, host, cfg.http_port, reuse_address=True).start()
        self.cache.listening(cfg.client.split()[0], cfg.http_port)
        if cfg.dns_port > 0 and info.get("DNSPort"):
            from meshctl.server.dns_server import DNSServer

            resolver = ForwardingResolver(self.pool)
            self.pool.on_change.append(resolver.update)
            self.dns = DNSServer(resolver, cfg.client.split(), cfg.dns_port)  # type: ignore[arg-type]
            await self.dns.start()
        await self._register()
        await self.definitions.sync(self.opts.files)
        self.reaper = CriticalReaper(self.local)
        self.reaper.start()
        self.anti_entropy = AntiEntropy(self.local, self.opts.ae_interval)
        self.anti_entropy.start()
        self._tasks.append(asyncio.ensure_future(self._heartbeats()))
        log.info("meshctl client agent running: node=%s dc=%s http=%s:%d server=%s", cfg.node, cfg.datacenter,
                 cfg.client, cfg.http_port, server)

    async def _register(self) -> None:
        assert self.local is not None
        while True:
            try:
                await self.local.start()
                return
            except StateError as exc:
                log.warning("registering node failed: %s; retrying", exc)
                await asyncio.sleep(1)

    async def _heartbeats(self) -> None:
        assert self.store is not None and self.local is not None
        while True:
            try:
                await self.store.heartbeat(self.local.node_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    def _acl_enforcer(self, info: dict[str, Any]) -> RemoteACLEnforcer:
        """Local requests are enforced with tokens the servers resolve (ACLs off there: all allowed).

        Always installed, whatever this agent's own `acl.enabled`: the servers decide, so a client
        started without ACL settings is no open door into an ACL-enforcing cluster.
        """
        sec = self.cfg.security
        assert self.session is not None and self.store is not None
        store = self.store
        resolver = ACLResolver(self.session, lambda: store.base, sec.acl.token_ttl,
                               enabled_guess=bool(info.get("ACLEnabled", True)) or sec.acl.enabled)
        return RemoteACLEnforcer(sec.acl, resolver)

    def _make_app(self, ctx: ServerContext, acl: RemoteACLEnforcer) -> web.Application:
        app = web.Application(middlewares=[consul_errors, self.cache.middleware], client_max_size=MAX_BODY,
                              handler_args={"max_field_size": MAX_FIELD_SIZE, "keepalive_timeout": HEADER_TIMEOUT})
        app[CTX_KEY] = ctx
        for r in agent_area.ROUTES:
            # the local routes only: proxied calls are enforced by the server they go to
            handler = self._members if r.path == "/v1/agent/members" else _local(r)
            for method in r.methods:
                app.router.add_route(method, r.path, guarded(acl, handler))
        ui.set_enabled(app, self.cfg.ui)  # the UI's files are served here; its API calls go the usual way
        for r in ui.ROUTES:
            for method in r.methods:
                app.router.add_route(method, r.path, _local(r))
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        return app

    async def _members(self, raw: web.Request) -> web.StreamResponse:
        """The LAN pool as a server lists it (servers, then client agents); only this agent if none answers.

        Consul agents share one gossip view, filtered by the caller's token: the list is asked for
        with the agent's token, then filtered here with the caller's.
        """
        assert self.pool is not None and self.local is not None
        if "wan" in raw.query:  # a client is in no WAN pool: the servers' view, as they list it
            return await self._proxy(raw)
        req = Request(raw, raw.app[CTX_KEY])
        me = self.local.member_json()  # an agent always sees itself alive, with its own ports
        items: Any = None
        try:
            reply = await self.pool.call("GET", "/v1/agent/members", timeout=MEMBERS_TIMEOUT)
            if reply.status == 200:
                items = reply.json()
            else:
                log.debug("members from %s: %d %s", self.pool.base, reply.status, reply.text[:200])
        except (NoServers, ValueError) as exc:
            log.debug("members: %s", exc)
        members = [m for m in items if isinstance(m, dict)] if isinstance(items, list) else []
        names = [m.get("Name") for m in members]
        if me["Name"] in names:
            members[names.index(me["Name"])] = me
        else:
            members.append(me)
        return respond(req, req.ctx.acl.filter_members(req, members))

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        """Any API call the client does not own goes to a server as it is (failing over as `ServerPool` allows)."""
        assert self.pool is not None and self.proxy_session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        if request.method == "GET":  # reads: `near=_agent` (and a query's Near "_agent") is this node
            headers[ORIGIN_NODE_HEADER] = self.cfg.node
        body = await read_body(request)
        try:
            reply = await self.pool.call(request.method, request.raw_path, body=body or None, headers=headers,
                                         timeout=PROXY_TIMEOUT, session=self.proxy_session)
        except NoServers as exc:
            raise HTTPError(500, str(exc)) from None
        out_headers = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_HEADERS}
        return web.Response(status=reply.status, body=reply.body, headers=out_headers)

    async def reload(self) -> None:
        assert self.definitions is not None
        try:
            await reload_files(self.opts, self.definitions)
        except ConfigError as exc:
            raise HTTPError(500, f"Failed reloading: {exc}") from None
        log.info("configuration reloaded")

    async def _leave(self) -> None:
        self._stop.set()

    async def _join(self, address: str) -> None:
        """PUT /v1/agent/join/ADDR: learn the servers from one more server's serf address."""
        assert self.pool is not None
        if address not in self.pool.join:
            self.pool.join.append(address)
        if await self.pool.discover() is None:
            raise HTTPError(500, f"Error joining address '{address}': no server answered")

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._tasks.append(asyncio.ensure_future(self._reload_logged())))
        start = asyncio.ensure_future(self.start())
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait([start, stop], return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
        elif start.exception() is not None:
            stop.cancel()
            await self.shutdown()
            raise start.exception()  # type: ignore[misc]
        await stop
        log.info("shutting down")
        await self.shutdown()

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception as exc:
            log.error("reload failed: %s", exc)

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pool is not None:
            self.pool.stop()
        for part in ("reaper", "anti_entropy"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if self.local is not None:
            await self.local.stop()
            await close_shared(self.local)
        if self.dns is not None:
            await self.dns.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.cache.close()
        for session in (self.session, self.proxy_session):
            if session is not None:
                await session.close()


def _local(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An agent-area route served by this client agent."""

    async def handler(raw: web.Request) -> web.StreamResponse:
        return await route.handler(Request(raw, raw.app[CTX_KEY]))

    return handler


def run_client(cfg: AgentConfig) -> int:
    """Run a client agent until SIGINT/SIGTERM; the exit status."""
    try:
        asyncio.run(ClientAgent(cfg).run())
    except OSError as exc:
        print(f"meshctl agent: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["ClientAgent", "RemoteStore", "dns_config_from", "run_client"]
