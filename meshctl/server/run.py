"""`meshctl agent`: start a store (dev or server) and its local agent, serve until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from meshctl.configfile import ConfigError
from meshctl.server import listeners, security
from meshctl.server.acl.expiry import ExpiredTokenReaper
from meshctl.server.agent import runtime as agent_runtime
from meshctl.server.agent.local import LocalAgent
from meshctl.server.agentconfig import AgentConfig, build_parser, config_from_args, startup_problem
from meshctl.server.context import AgentHooks, ServerContext
from meshctl.server.coordinates import CoordinateBatcher
from meshctl.server.http import ui
from meshctl.server.http.app import make_app
from meshctl.server.http.cache import AgentCache
from meshctl.server.http.forward import DatacenterForwarder
from meshctl.server.reaper import TombstoneReaper
from meshctl.server.sessions import SessionTimers
from meshctl.server.state import State
from meshctl.server.store import LocalStore, Store
from meshctl.server.wan import WAN_PATH, WanPool

if TYPE_CHECKING:
    from meshctl.server.cluster import ServerCluster

log = logging.getLogger("meshctl.agent")


def setup_logging(level: str) -> None:
    levels = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
              "error": logging.ERROR}
    logging.basicConfig(level=levels.get(level, logging.INFO),
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class Agent:
    """One running agent: store, local agent, HTTP API; `run()` serves until stopped.

    The composition root of servers and -dev: `__init__` builds every part once, in order
    (config -> store, local or Raft -> ACL enforcer -> session timers -> WAN pool -> the
    typed `ServerContext` -> HTTP app and DNS); `start()` only starts them.
    """

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.state = State(cfg.datacenter)
        # the store: Raft for a replicated server, in memory for -dev
        self.cluster: ServerCluster | None = None
        self.store: Store
        if cfg.server and not cfg.dev:
            from meshctl.server.cluster import server_cluster

            self.cluster = server_cluster(cfg, self.state, password=security.encryption_key(cfg))
            self.store = self.cluster.store
        else:
            self.store = LocalStore(self.state, f"{cfg.bind}:{cfg.server_port}")
        self.local = LocalAgent(self.store, cfg.node, address=cfg.advertise or cfg.bind, datacenter=cfg.datacenter, server=cfg.server,
                                node_id=self.cluster.node_id if self.cluster is not None else None,
                                ports={"server": cfg.server_port, "serf_lan": cfg.serf_port})
        store = self.store
        self.acl = security.enforcer_for(cfg.security, lambda: store.state)
        self.timers = SessionTimers(self.store)
        # the WAN: a Raft server announces its serf address, a -dev server its HTTP address
        self.wan = WanPool(cfg.datacenter, cfg.retry_join_wan, self._lan_servers, default_port=cfg.serf_port)
        self.runtime = agent_runtime.AgentRuntime(cfg, self.local, self.store, self.acl)  # DNS, heartbeats
        self.coordinates = CoordinateBatcher(self.store, cfg.node)
        self.ctx = ServerContext(
            store=self.store, agent=self.local, datacenter=cfg.datacenter, acl=self.acl, timers=self.timers,
            wan=self.wan, cluster=self.cluster, coordinates=self.coordinates, encrypt_key=cfg.security.encrypt,
            hooks=AgentHooks(reload=self.runtime.reload, leave=self._leave, join=self._join,
                             monitor=self.runtime.monitor, dns_port=cfg.dns_port,
                             acl_tokens_changed=self.runtime.acl_tokens_changed))
        self.dc_forwarder = DatacenterForwarder(self.wan)
        self.cache = AgentCache()
        self.app = self._make_app()
        self._stop = asyncio.Event()
        self.failure: str | None = None  # why the agent stopped by itself (main's exit status 1)
        self._runner: web.AppRunner | None = None
        self.reaper = TombstoneReaper(self.store)
        self.token_reaper = ExpiredTokenReaper(self.store)
        self.security = security.Security(cfg.security, self.store, self.acl, self.cluster)
        self._loopback: aiohttp.ClientSession | None = None  # DNS prepared queries: this agent's HTTP API

    def _make_app(self) -> web.Application:
        app = make_app(self.ctx)
        app.middlewares.insert(1, self.cache.middleware)  # ?cached: answered here, before any forwarding
        ui.set_enabled(app, self.cfg.ui)
        app.middlewares.append(self.dc_forwarder.middleware)  # ?dc=: before any leader forwarding
        if self.cluster is None:
            app.router.add_post(WAN_PATH, self.wan.serve)
        self.runtime.attach(app)
        if self.cluster is not None:
            self.cluster.attach(app, self.ctx)  # leader forwarding; the WAN pool on the serf port
        return app

    async def start(self) -> None:
        if self.cluster is not None:
            await self.cluster.start()
        # in-flight blocking queries are not waited for: a stopping agent answers nothing more
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        if self.cfg.http_port > 0:  # Consul's ports { http = -1 }: no HTTP listener
            site = web.TCPSite(self._runner, self.cfg.client, self.cfg.http_port, reuse_address=True, backlog=1024)
            await site.start()
            self.cache.listening(self.cfg.client.split()[0], self.cfg.http_port)
        await self.security.start(self._runner, self.cfg.client)
        if self.cluster is not None:  # registers once a leader exists
            self.cluster.spawn(self.cluster.register_when_led(self.local.start))
        else:
            await self.local.start()
        log.info("meshctl agent running: node=%s dc=%s http=%s:%d%s", self.cfg.node, self.cfg.datacenter,
                 self.cfg.client, self.cfg.http_port, " (dev mode, in memory)" if self.cfg.dev else "")
        await self.runtime.start()
        self._wire_remote_dns()
        self.reaper.start()
        if self.cfg.security.acl.enabled:
            self.token_reaper.start()
        self.wan.start()
        self.coordinates.start()

    def _wire_remote_dns(self) -> None:
        """DNS names of other datacenters: the WAN pool knows them and fetches their catalog data."""
        resolver, dns = self.runtime.resolver, self.runtime.dns
        if resolver is not None and dns is not None:
            resolver.find_datacenter = self.wan.datacenter_named
            dns.fetch_remote = self._fetch_remote

    async def _fetch_remote(self, datacenter: str, path: str) -> Any:
        """Another datacenter's data for a DNS answer, asked with the DNS token (Consul's DNS RPCs carry it).

        A prepared query's execution (which may fail over, or be another datacenter's: `?dc=`) is
        asked of this agent's own HTTP API, so it runs exactly as `GET /v1/query/<name>/execute`
        does; a 404 (no such query) or a 403 (a DNS token that may read nothing, as names
        elsewhere in DNS) is None.
        """
        tokens = self.cfg.security.acl.tokens
        token = tokens.get("dns") or tokens.get("default")
        headers = {"X-Consul-Token": token} if token else None
        if datacenter != self.cfg.datacenter:
            return await self.wan.get(datacenter, path, headers=headers)
        if self._loopback is None:
            self._loopback = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        host = self.cfg.client.split()[0]
        async with self._loopback.get(f"http://{host}:{self.cfg.http_port}{path}", headers=headers) as resp:
            if resp.status in (403, 404):  # no such query, or a DNS token that reads nothing: NXDOMAIN
                return None
            if resp.status != 200:
                raise ConnectionError(f"{path}: {resp.status} {(await resp.text())[:200]}")
            return await resp.json(content_type=None)

    def _lan_servers(self) -> list[dict[str, Any]]:
        """The servers of this datacenter for the WAN pool (a -dev server is alone)."""
        if self.cluster is not None:
            return self.cluster.lan_servers()
        http = f"{self.cfg.client.split()[0]}:{self.cfg.http_port}"
        return [{"Node": self.cfg.node, "HTTP": http, "WAN": http}]

    def stop(self) -> None:
        self._stop.set()

    async def _leave(self) -> None:
        """PUT /v1/agent/leave: a server leaves the Raft configuration (it shows `left`); then shut down."""
        if self.cluster is not None:
            await self.cluster.leave()
        log.info("graceful leave complete; shutting down")
        asyncio.get_running_loop().call_later(0.2, self.stop)  # the answer goes out first

    async def _join(self, address: str) -> None:
        """PUT /v1/agent/join/ADDR: a server checks ADDR is a server of its cluster."""
        from meshctl.server.http.common import HTTPError

        if self.cluster is None:
            raise HTTPError(500, "a -dev agent is a cluster of its own: it cannot join another")
        try:
            await self.cluster.join_address(address)
        except ValueError as exc:
            raise HTTPError(500, f"Error joining address '{address}': {exc}") from None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        await self.start()
        if self.cluster is not None and self.cluster.bootstrapped is not None:
            self.cluster.bootstrapped.add_done_callback(self._bootstrap_done)
        await self._stop.wait()
        log.info("shutting down")
        await self.shutdown()

    def _bootstrap_done(self, task: asyncio.Future[None]) -> None:
        """Raft could not start (its port, its journal): the agent stops with that one line."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.failure = f"cannot start Raft: {exc}"
        self.stop()

    async def shutdown(self) -> None:
        self.reaper.stop()
        self.coordinates.stop()
        self.token_reaper.stop()
        await self.wan.close()
        if self._loopback is not None:
            await self._loopback.close()
        await self.dc_forwarder.close()
        await self.cache.close()
        await self.runtime.stop()
        self.timers.stop()
        await self.local.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.cluster is not None:
            await self.cluster.stop()


def main(argv: list[str]) -> int:
    """Entry point of `meshctl agent`: a start-up mistake is one line on stderr and exit status 1."""
    try:
        cfg = config_from_args(argv)
    except (ConfigError, security.SecurityError) as exc:
        return _fail(str(exc))
    problem = startup_problem(cfg) or listeners.busy_port(cfg)
    if problem:
        return _fail(problem)
    try:
        security.encryption_key(cfg)
    except security.SecurityError as exc:
        return _fail(str(exc))
    setup_logging(cfg.log_level)
    if not cfg.dev and not cfg.server:
        from meshctl.server.agent.client import run_client

        return run_client(cfg)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        agent = Agent(cfg)
        asyncio.run(agent.run())
    except (OSError, security.SecurityError) as exc:
        return _fail(f"cannot start: {exc}")
    return _fail(agent.failure) if agent.failure else 0


def _fail(message: str) -> int:
    print(f"meshctl agent: {message}", file=sys.stderr)
    return 1


__all__ = ["Agent", "AgentConfig", "build_parser", "config_from_args", "main"]
