"""A server's place in its datacenter: finding the other servers, the member list, startup.

Discovery (Consul's -bootstrap-expect + -retry-join): every server answers on its serf
port with who it is (node, raft and HTTP addresses) and which servers it knows. A new
server asks the -retry-join addresses (and whatever they know, transitively) until it knows
-bootstrap-expect servers, then starts Raft with exactly those voters. The voter set is kept
in <data-dir>/raft/peers.json, so a restarted server needs nobody to start again; it follows
the live Raft configuration (rewritten whenever the voters change, e.g. after
`operator raft remove-peer`), so a restart never brings a removed server back.

A removed server is not told (the leader drops it as soon as the removal is in its log) and
keeps its old peers.json. Restarted with that data dir, it cannot disturb the others: they
refuse Raft connections from a server outside their configuration, so it never gets a leader
(writes answer "No cluster leader") and never starts an election they would hear of. It
warns in its log once another server's voter set shows it was removed; as in Consul, it
serves again only once it is re-joined.

The serf port also answers the WAN exchange of meshctl/server/wan.py (`-retry-join-wan`):
servers of other datacenters announce themselves there and learn this one's servers
(`lan_servers`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from meshctl import __version__
from meshctl.server.agent.servers import SERF_INFO_PATH
from meshctl.server.raft import DEFAULT_RAFT_MULTIPLIER, RaftConfig, RaftStore
from meshctl.server.server_health import ServerHealth

if TYPE_CHECKING:
    from meshctl.server.agentconfig import AgentConfig
    from meshctl.server.context import ServerContext
    from meshctl.server.http.forward import LeaderForwarder
    from meshctl.server.state import State
    from meshctl.server.wan import WanPool

log = logging.getLogger(__name__)

STATUS_ALIVE, STATUS_FAILED = 1, 4
REMOVED_CHECK_EVERY = 5.0  # seconds; while no leader is known, ask the others whether this server is a voter


@dataclass
class ClusterConfig:
    """What a server needs to find its peers and run Raft."""

    node: str
    datacenter: str
    bind: str
    server_port: int
    serf_port: int
    http_address: str
    data_dir: str | None = None
    bootstrap_expect: int = 1
    retry_join: list[str] = field(default_factory=list)
    sync_writes: bool = True
    snapshot_threshold: int = 8192
    raft_multiplier: int | None = None  # None: raft.DEFAULT_RAFT_MULTIPLIER

    @property
    def raft_address(self) -> str:
        return f"{self.bind}:{self.server_port}"

    @property
    def serf_address(self) -> str:
        return f"{self.bind}:{self.serf_port}"


def node_id_for(data_dir: str | None) -> str | None:
    """This server's persistent node ID (kept in <data-dir>/node-id)."""
    if not data_dir:
        return None
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "node-id")
    if os.path.exists(path):
        with open(path) as f:
            value = f.read().strip()
            if value:
                return value
    value = str(uuid.uuid4())
    with open(path, "w") as f:
        f.write(value)
    return value


class ServerCluster:
    """Discovery listener, Raft store startup and the member list of one server."""

    def __init__(self, cfg: ClusterConfig, store: RaftStore, node_id: str) -> None:
        self.cfg = cfg
        self.store = store
        self.node_id = node_id
        self.known: dict[str, dict[str, Any]] = {cfg.raft_address: self.info()}  # raft addr -> info
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.bootstrapped: asyncio.Future[None] | None = None  # discovery + Raft start (see `start`)
        self._forwarder: LeaderForwarder | None = None
        self.wan: WanPool | None = None  # the WAN pool (meshctl/server/wan.py), answered on the serf port (attach)

    def spawn(self, coro: Any) -> None:
        """Run a background task owned by this server (cancelled by `stop`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def attach(self, app: web.Application, ctx: ServerContext) -> None:
        """Wire the HTTP app (before `start`) to Raft: leader forwarding, leader-side timers, the WAN pool.

        `ctx` is the server's context, which holds this cluster (/v1/agent/members lists its servers).
        """
        from meshctl.server.http.forward import LeaderForwarder

        self._forwarder = LeaderForwarder()
        app.middlewares.append(self._forwarder.middleware)
        self.wan = ctx.wan
        timers = ctx.timers

        def leader_changed(is_leader: bool) -> None:
            if timers is None:
                return
            if is_leader:
                timers.restart_all()  # Consul: session TTLs restart in full on a new leader
            else:
                timers.stop()

        self.store.on_leader_change.append(leader_changed)

    def info(self) -> dict[str, Any]:
        c = self.cfg
        return {"Node": c.node, "ID": self.node_id, "Raft": c.raft_address, "Serf": c.serf_address,
                "HTTP": c.http_address, "Datacenter": c.datacenter, "Expect": c.bootstrap_expect}

    # ------------------------------------------------------------------ startup

    async def start(self) -> None:
        """Listen on the serf port; find the voters and start Raft in the background (`bootstrapped`).

        As in Consul, the agent serves meanwhile: a server waiting for -bootstrap-expect
        servers answers /v1/status/leader with "" and writes with "No cluster leader".
        """
        app = web.Application()
        app.router.add_get(SERF_INFO_PATH, self._serve_info)
        if self.wan is not None:
            from meshctl.server.wan import WAN_PATH

            app.router.add_post(WAN_PATH, self.wan.serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.cfg.bind, self.cfg.serf_port, reuse_address=True).start()
        self.bootstrapped = asyncio.ensure_future(self._bootstrap())

    async def _bootstrap(self) -> None:
        """The voters (peers.json, else discovery), then Raft."""
        peers = self._saved_peers()
        if peers is None:
            peers = await self._discover()
            self._save_peers(peers)
        log.info("raft voters: %s", ", ".join(peers))
        self.store.cfg.peers = peers
        self.store.cfg.info = {k: v for k, v in self.info().items() if k != "Expect"}
        self.store.on_voters_change.append(self._voters_changed)
        await self.store.start()
        self.spawn(self._watch_removed())
        self.spawn(ServerHealth(self).run())

    async def stop(self) -> None:
        if self.bootstrapped is not None and not self.bootstrapped.done():
            self.bootstrapped.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._forwarder is not None:
            await self._forwarder.close()
        await self.store.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def _peers_path(self) -> str | None:
        return os.path.join(self.cfg.data_dir, "raft", "peers.json") if self.cfg.data_dir else None

    def _saved_peers(self) -> list[str] | None:
        path = self._peers_path()
        if path and os.path.exists(path):
            with open(path) as f:
                return list(json.load(f))
        return None

    def _save_peers(self, peers: list[str]) -> None:
        path = self._peers_path()
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "w") as f:
                json.dump(peers, f)
                f.flush()
                os.fsync(f.fileno())  # replaced only by a complete file: a crash keeps old or new
            os.replace(path + ".tmp", path)

    def _voters_changed(self, voters: list[str]) -> None:
        """The Raft configuration changed: keep peers.json (and discovery's answer) on it."""
        self._save_peers(voters)
        # a removed server is no longer handed out to joining servers and client agents
        for addr in [a for a in self.known if a not in voters and a != self.cfg.raft_address]:
            del self.known[addr]

    async def _serve_info(self, _request: web.Request) -> web.Response:
        return web.json_response({**self.info(), "Known": list(self.known.values()), "Voters": self.store.peers()})

    def lan_servers(self) -> list[dict[str, Any]]:
        """This server, then the other voters: node, HTTP and serf address (what the WAN pool announces)."""
        directory = {**self.known, **self.store.members}
        out = [{"Node": self.cfg.node, "HTTP": self.cfg.http_address, "WAN": self.cfg.serf_address}]
        for addr in self.store.peers():
            info = directory.get(addr) or {}
            if addr != self.cfg.raft_address and info.get("Serf") and info.get("HTTP"):
                out.append({"Node": info.get("Node") or addr, "HTTP": info["HTTP"], "WAN": info["Serf"]})
        return out

    def _peer_serf_addresses(self) -> list[str]:
        """Serf addresses of the other voters this server knows of, then its -retry-join ones."""
        directory = {**self.known, **self.store.members}
        out = [str(directory.get(addr, {}).get("Serf") or "") for addr in self.store.peers()
               if addr != self.cfg.raft_address]
        out += self.cfg.retry_join
        return list(dict.fromkeys(a for a in out if a and a != self.cfg.serf_address))

    async def _watch_removed(self) -> None:
        """While no leader is known, warn if another server's voter set leaves this one out.

        That is what a server removed by `operator raft remove-peer` sees after a restart:
        nothing tells it, and the others refuse its Raft connections.
        """
        warned: list[str] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                await asyncio.sleep(REMOVED_CHECK_EVERY)
                if self.store.known_leader:
                    continue
                for serf in self._peer_serf_addresses():
                    try:
                        async with session.get(f"http://{serf}{SERF_INFO_PATH}") as resp:
                            body = await resp.json()
                    except (TimeoutError, aiohttp.ClientError, ValueError):
                        continue
                    voters = body.get("Voters") if isinstance(body, dict) else None
                    if not voters or self.cfg.raft_address in voters:
                        continue
                    if voters != warned:
                        warned = list(voters)
                        log.warning("this server (%s) is not in the Raft configuration of %s (voters: %s): it "
                                    "was removed (operator raft remove-peer) and gets no leader until it is "
                                    "re-joined", self.cfg.raft_address, body.get("Node") or serf,
                                    ", ".join(voters))
                    break

    async def _discover(self) -> list[str]:
        """Ask -retry-join addresses (transitively) until -bootstrap-expect servers are known."""
        expect = max(1, self.cfg.bootstrap_expect)
        to_ask = set(self.cfg.retry_join)
        waited = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while len(self.known) < expect:
                for serf in sorted(to_ask):
                    try:
                        async with session.get(f"http://{serf}{SERF_INFO_PATH}") as resp:
                            body = await resp.json()
                    except (TimeoutError, aiohttp.ClientError, ValueError):
                        continue
                    if body.get("Datacenter") != self.cfg.datacenter:
                        log.warning("retry-join %s: datacenter %s, not %s", serf, body.get("Datacenter"),
                                    self.cfg.datacenter)
                        continue
                    for item in [body, *body.get("Known", [])]:
                        self.known.setdefault(item["Raft"],
                                              {k: v for k, v in item.items() if k not in ("Known", "Voters")})
                        if item.get("Serf") and item["Serf"] != self.cfg.serf_address:
                            to_ask.add(item["Serf"])
                if len(self.known) >= expect:
                    break
                waited += 1
                if waited % 20 == 0:
                    log.info("waiting for %d servers (bootstrap-expect), know %d", expect, len(self.known))
                await asyncio.sleep(0.25)
        return sorted(self.known)

    # ------------------------------------------------------------------ members

    def members(self, local_member: dict[str, Any]) -> list[dict[str, Any]]:
        """Every server of the datacenter as /v1/agent/members shows it (role, status)."""
        out = []
        directory = {**self.known, **self.store.members}
        for addr in self.store.peers():
            if addr == self.cfg.raft_address:
                out.append(local_member)
                continue
            info = directory.get(addr, {})
            host, _, port = addr.rpartition(":")
            serf_host, _, serf_port = (info.get("Serf") or f"{host}:0").rpartition(":")
            out.append({
                "Name": info.get("Node") or addr, "Addr": serf_host, "Port": int(serf_port),
                "Tags": {"dc": self.cfg.datacenter, "role": "consul", "port": port, "id": info.get("ID", ""),
                         "vsn": "2", "build": __version__, "expect": str(self.cfg.bootstrap_expect)},
                "Status": STATUS_ALIVE if self.store.connected(addr) else STATUS_FAILED,
                "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
                "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
            })
        return out

    async def register_when_led(self, register: Any) -> None:
        """Once a leader exists: publish this server in the directory and register it in the catalog."""
        while True:
            try:
                if await self.store.wait_leader(30):
                    await self.store.publish_self()
                    await register()
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("registering this server failed (%s); retrying", exc)
            await asyncio.sleep(0.5)


def raft_config(cfg: ClusterConfig) -> RaftConfig:
    """The Raft settings of a cluster config (voters are filled in by discovery)."""
    return RaftConfig(address=cfg.raft_address, peers=[cfg.raft_address], data_dir=cfg.data_dir,
                      sync_writes=cfg.sync_writes, snapshot_threshold=cfg.snapshot_threshold,
                      raft_multiplier=cfg.raft_multiplier or DEFAULT_RAFT_MULTIPLIER)


def server_cluster(agent_cfg: AgentConfig, state: State, password: str | None = None) -> ServerCluster:
    """The cluster half of `meshctl agent -server` (see run.AgentConfig); `password`: -encrypt's key."""
    c = agent_cfg
    expect = c.bootstrap_expect or 1
    cfg = ClusterConfig(node=c.node, datacenter=c.datacenter, bind=c.bind, server_port=c.server_port,
                        serf_port=c.serf_port, http_address=f"{c.client}:{c.http_port}", data_dir=c.data_dir,
                        bootstrap_expect=expect, retry_join=list(c.retry_join),
                        sync_writes=True if c.sync_writes is None else bool(c.sync_writes),
                        snapshot_threshold=c.raft_snapshot_threshold, raft_multiplier=c.raft_multiplier)
    raft = raft_config(cfg)
    raft.password = password  # Raft traffic encrypted
    store = RaftStore(state, raft)
    return ServerCluster(cfg, store, node_id_for(cfg.data_dir) or str(uuid.uuid4()))
