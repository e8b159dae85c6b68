"""`meshctl agent`: start a store (dev or server) and its local agent, serve until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from meshctl.flags import FlagParser, parse_bool
from meshctl.server import security
from meshctl.server.acl.expiry import ExpiredTokenReaper
from meshctl.server.agent import runtime as agent_runtime
from meshctl.server.agent.config import setting
from meshctl.server.agent.local import LocalAgent
from meshctl.server.agent.runtime import AgentOptions
from meshctl.server.context import AgentHooks, ServerContext
from meshctl.server.coordinates import CoordinateBatcher
from meshctl.server.http import ui
from meshctl.server.http.app import make_app
from meshctl.server.http.cache import AgentCache
from meshctl.server.http.forward import DatacenterForwarder
from meshctl.server.reaper import TombstoneReaper
from meshctl.server.security import SecurityConfig
from meshctl.server.sessions import SessionTimers
from meshctl.server.state import State
from meshctl.server.store import LocalStore, Store
from meshctl.server.wan import WAN_PATH, WanPool

if TYPE_CHECKING:
    from meshctl.server.cluster import ServerCluster

log = logging.getLogger("meshctl.agent")


@dataclass
class AgentConfig:
    """Settings of one agent process (defaults < config files < flags)."""

    dev: bool = False
    server: bool = False
    node: str = field(default_factory=socket.gethostname)
    datacenter: str = "dc1"
    bind: str = "127.0.0.1"
    client: str = "127.0.0.1"
    http_port: int = 8500
    dns_port: int = 8600
    server_port: int = 8300
    serf_port: int = 8301
    log_level: str = "info"
    options: AgentOptions = field(default_factory=AgentOptions)  # config files, checks, DNS (agent/runtime.py)
    security: SecurityConfig = field(default_factory=SecurityConfig)  # ACLs, TLS, -encrypt (security.py)
    # replicated servers (raft.py, cluster.py)
    data_dir: str | None = None
    bootstrap_expect: int = 0
    retry_join: list[str] = field(default_factory=list)
    retry_join_wan: list[str] = field(default_factory=list)  # servers of other datacenters (wan.py)
    sync_writes: bool | None = None  # default: on for -server, off for -dev
    raft_snapshot_threshold: int = 8192
    ui: bool = False  # the web UI at /ui/ (http/ui.py): -ui, ui_config.enabled; default on for -dev
    raft_multiplier: int | None = None  # -raft-multiplier / performance { raft_multiplier } (1..10)


def build_parser() -> FlagParser:
    p = FlagParser(prog="meshctl agent", description="Run a meshctl agent (dev store, server or client).")
    p.bool_flag("dev", help="in-memory single server on 127.0.0.1, for development")
    p.bool_flag("server", help="run as a server")
    p.flag("node", help="node name (default: hostname)")
    p.flag("datacenter", "dc", default="dc1")
    p.flag("bind", default="127.0.0.1", help="address for server-to-server traffic")
    p.flag("client", default="127.0.0.1", help="address the HTTP and DNS interfaces listen on")
    p.flag("http-port", type=int, default=8500)
    p.flag("dns-port", type=int, default=8600)
    p.flag("server-port", type=int, default=8300)
    p.flag("serf-port", type=int, default=8301)
    p.flag("log-level", default="info", choices=["trace", "debug", "info", "warn", "error"])
    p.flag("data-dir", help="where a server keeps its Raft journal and snapshots")
    p.flag("bootstrap-expect", type=int, default=0, help="servers to wait for before bootstrapping Raft")
    p.flag("retry-join", action="append", default=[], help="serf address of another server (repeatable)")
    p.flag("retry-join-wan", "join-wan", dest="retry_join_wan", action="append", default=[],
           help="serf address of a server of another datacenter (a -dev server: its HTTP address); repeatable")
    p.bool_flag("sync-writes", default=None, help="fsync the journal before acknowledging a write "
                "(default: on for -server, off for -dev)")
    p.flag("raft-snapshot-threshold", type=int, default=8192, help="Raft log entries between snapshots")
    # a Go boolean flag (-ui, -ui=false) whose absence is seen: config files and -dev decide then
    p.flag("ui", nargs="?", const=True, default=None, type=parse_bool,
           help="serve the web UI at /ui/ (default: on for -dev; config files: ui_config { enabled = true })")
    p.flag("raft-multiplier", type=int, default=None, help="scale Raft's election and leader step-down "
           "timeouts, 1 (fastest failover) to 10 (default 3; config file: performance { raft_multiplier })")
    agent_runtime.add_flags(p)
    security.add_flags(p)
    return p


def config_from_args(argv: list[str]) -> AgentConfig:
    args = build_parser().parse_args(argv)
    cfg = AgentConfig(dev=args.dev, server=args.server or args.dev, datacenter=args.datacenter,
                      bind=args.bind, client=args.client, http_port=args.http_port, dns_port=args.dns_port,
                      server_port=args.server_port, serf_port=args.serf_port, log_level=args.log_level)
    if args.node:
        cfg.node = args.node
    cfg.data_dir, cfg.bootstrap_expect, cfg.retry_join = args.data_dir, args.bootstrap_expect, list(args.retry_join)
    cfg.sync_writes, cfg.raft_snapshot_threshold = args.sync_writes, args.raft_snapshot_threshold
    agent_runtime.apply_args(cfg, args, build_parser().parse_args([]))  # config files, checks, DNS
    cfg.retry_join_wan = list(args.retry_join_wan)
    files = cfg.options.files.settings
    for key in ("retry_join_wan", "start_join_wan"):  # Consul's config-file names
        for addr in setting(files, key, default=[]) or []:
            if str(addr) not in cfg.retry_join_wan:
                cfg.retry_join_wan.append(str(addr))
    security.apply_args(cfg, args)  # ACLs, TLS, -encrypt (flags over config files)
    cfg.ui = ui_enabled(args.ui, files, cfg.dev)
    multiplier = args.raft_multiplier
    if multiplier is None:
        multiplier = setting(files, "performance", "raft_multiplier")
    if multiplier is not None:
        if isinstance(multiplier, bool) or not isinstance(multiplier, int) or not 1 <= multiplier <= 10:
            raise agent_runtime.ConfigError(f"performance.raft_multiplier must be between 1 and 10, got {multiplier!r}")
        cfg.raft_multiplier = multiplier
    return cfg


def ui_enabled(flag: bool | None, files: dict[str, Any], dev: bool) -> bool:
    """-ui wins, then the files' `ui_config { enabled }` (or the older `ui = true`), then on for -dev only."""
    if flag is not None:
        return bool(flag)
    for value in (setting(files, "ui_config", "enabled"), setting(files, "ui")):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    return dev


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
        self.local = LocalAgent(self.store, cfg.node, address=cfg.bind, datacenter=cfg.datacenter, server=cfg.server,
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
            hooks=AgentHooks(reload=self.runtime.reload, monitor=self.runtime.monitor, dns_port=cfg.dns_port,
                             acl_tokens_changed=self.runtime.acl_tokens_changed, leave=self._leave))
        self.dc_forwarder = DatacenterForwarder(self.wan)
        self.cache = AgentCache()
        self.app = self._make_app()
        self._stop = asyncio.Event()
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
        """PUT /v1/agent/leave: shut down once the answer is on its way (Consul's graceful leave).

        A server of a Raft cluster stops as on SIGTERM; it stays in the Raft configuration until
        removed (`meshctl operator raft remove-peer`), where Consul's leave would also remove it.
        """
        log.info("leave requested over the HTTP API: shutting down")
        asyncio.get_running_loop().call_soon(self.stop)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        await self.start()
        await self._stop.wait()
        log.info("shutting down")
        await self.shutdown()

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
    """Entry point of `meshctl agent`."""
    try:
        cfg = config_from_args(argv)
    except (agent_runtime.ConfigError, security.SecurityError) as exc:
        print(f"meshctl agent: {exc}")
        return 1
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
        asyncio.run(Agent(cfg).run())
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
