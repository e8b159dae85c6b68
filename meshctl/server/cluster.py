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

Joining a running cluster (Consul: a new server with -retry-join; autopilot makes it a voter).
When a -retry-join server answers with a non-empty voter set, the cluster already exists: the
new server starts Raft with those voters as partners (holding its elections until a leader
contacts it, so it cannot depose one) and asks on the serf port (`JOIN_PATH`) to be added. The
server asked adds it through pysyncobj's dynamic membership (one change at a time); the change
commits once the new server answers the leader, which then sends it the snapshot and the log.
peers.json is written once the server is a voter, so a server that crashed while joining asks
again. A server started at the address of a voter, with a fresh data dir (a new node ID), is a
replacement: the old voter is removed first, then the new one added. A server started without
-bootstrap-expect but with -retry-join never bootstraps alone: it waits for a cluster to join.

The serf port also answers the WAN exchange of meshctl/server/wan.py (`-retry-join-wan`):
servers of other datacenters announce themselves there and learn this one's servers
(`lan_servers`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from meshctl import __version__
from meshctl.server.agent.servers import SERF_INFO_PATH
from meshctl.server.autopilot import Autopilot
from meshctl.server.commands import Deregister, ServerMember
from meshctl.server.raft import DEFAULT_RAFT_MULTIPLIER, RaftConfig, RaftStore
from meshctl.server.server_health import ServerHealth

if TYPE_CHECKING:
    from meshctl.server.agentconfig import AgentConfig
    from meshctl.server.context import ServerContext
    from meshctl.server.http.forward import LeaderForwarder
    from meshctl.server.state import State
    from meshctl.server.wan import WanPool

log = logging.getLogger(__name__)

STATUS_ALIVE, STATUS_LEFT, STATUS_FAILED = 1, 3, 4
JOIN_PATH = "/v1/meshctl/serf/join"  # a new server asks to be added to the Raft configuration
LEAVE_PATH = "/v1/meshctl/serf/leave"  # a leaving server asks to be removed from it
AUTH_HEADER = "X-Meshctl-Serf-Auth"  # with -encrypt: HMAC-SHA256 of the body under the key
REAP_AFTER = 72 * 3600.0  # Consul's reconnect_timeout: a left server stays listed `left` this long
JOIN_RETRY = 1.0  # seconds between join attempts
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
    join_only: bool = False  # no -bootstrap-expect but -retry-join: join a cluster, never bootstrap one

    @property
    def raft_address(self) -> str:
        return f"{self.bind}:{self.server_port}"

    @property
    def serf_address(self) -> str:
        return f"{self.bind}:{self.serf_port}"


@dataclass
class Discovery:
    """What discovery found: the voters to start with, and whether this server must ask to join."""

    peers: list[str]
    join: bool = False  # a running cluster that does not have this server (yet) as a voter
    via: list[str] = field(default_factory=list)  # serf addresses of servers of that cluster
    replace: bool = False  # this address is a voter with another node ID: that one is removed first


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
        self.joined = True  # False while this server waits to be added to a running cluster
        self.autopilot = Autopilot(self)

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
        app.router.add_post(JOIN_PATH, self._serve_join)
        app.router.add_post(LEAVE_PATH, self._serve_leave)
        if self.wan is not None:
            from meshctl.server.wan import WAN_PATH

            app.router.add_post(WAN_PATH, self.wan.serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.cfg.bind, self.cfg.serf_port, reuse_address=True).start()
        self.bootstrapped = asyncio.ensure_future(self._bootstrap())

    async def _bootstrap(self) -> None:
        """The voters (peers.json, else discovery; a new server joins the running cluster), then Raft."""
        saved = self._saved_peers()
        found = Discovery(saved) if saved is not None else await self._discover()
        if found.join:
            self.joined = False
            if found.replace:  # the old server at this address leaves the configuration first
                found.peers = await self._join(found.via, started=False)
            log.info("joining the running cluster of %s", ", ".join(found.peers))
        elif saved is None:
            self._save_peers(found.peers)
        peers = found.peers
        log.info("raft voters: %s", ", ".join(peers))
        self.store.cfg.peers = peers
        self.store.cfg.joining = found.join
        self.store.cfg.info = {k: v for k, v in self.info().items() if k != "Expect"}
        self.store.on_voters_change.append(self._voters_changed)
        await self.store.start()
        if found.join:
            self.spawn(self._join(found.via, started=True))
        self.spawn(self._watch_removed())
        self.spawn(ServerHealth(self).run())
        self.spawn(self.autopilot.run())

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
        if not self.joined:
            return  # not a voter yet: a restart must ask to join again
        self._save_peers(voters)
        # a removed server is no longer handed out to joining servers and client agents
        for addr in [a for a in self.known if a not in voters and a != self.cfg.raft_address]:
            del self.known[addr]

    def directory(self) -> dict[str, dict[str, Any]]:
        """Raft address -> what this server knows of that server (discovery, then the replicated directory)."""
        return {**self.known, **self.store.members}

    async def _serve_info(self, _request: web.Request) -> web.Response:
        ids = {addr: str(info.get("ID") or "") for addr, info in self.directory().items()}
        return web.json_response({**self.info(), "Known": list(self.known.values()),
                                  "Voters": self.store.peers() if self.joined else [], "IDs": ids})

    def _signature(self, data: bytes) -> str:
        key = self.store.cfg.password or ""
        return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()

    async def _read_signed(self, request: web.Request) -> dict[str, Any]:
        """A join/leave request's body; with -encrypt it must be signed with the key (ValueError)."""
        data = await request.read()
        if self.store.cfg.password and not hmac.compare_digest(request.headers.get(AUTH_HEADER, ""),
                                                               self._signature(data)):
            raise PermissionError("not signed with this cluster's encryption key")
        body = json.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("Raft"), str):
            raise ValueError("bad request")
        return body

    async def _post_signed(self, session: aiohttp.ClientSession, serf: str, path: str,
                           body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.store.cfg.password:
            headers[AUTH_HEADER] = self._signature(data)
        try:
            async with session.post(f"http://{serf}{path}", data=data, headers=headers) as resp:
                return await resp.json()
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return {"Error": str(exc) or type(exc).__name__}

    async def _signed_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            return await self._read_signed(request)
        except PermissionError as exc:
            return web.json_response({"Error": str(exc)}, status=403)
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"Error": "bad request"}, status=400)

    async def _serve_leave(self, request: web.Request) -> web.Response:
        """A server leaves gracefully: out of the Raft configuration, `left` in the members, out of the catalog."""
        body = await self._signed_body(request)
        if isinstance(body, web.Response):
            return body
        address = str(body["Raft"])
        if not self.joined or self.store.replica is None or address == self.cfg.raft_address:
            return web.json_response({"Error": "ask another server"}, status=503)
        try:
            await self.mark_left(address)
        except Exception as exc:  # no leader, timed out...: the leaving server asks another one
            return web.json_response({"Error": str(exc)}, status=500)
        return web.json_response({"Voters": self.store.peers()})

    async def mark_left(self, address: str, prune: bool = False) -> None:
        """Remove a server from the Raft configuration and record it as left (Consul's leave/force-leave)."""
        info = dict(self.directory().get(address) or {})
        if address in self.store.peers():
            log.info("server %s (%s) leaves the Raft configuration", info.get("Node") or address, address)
            await self.store.remove_peer(address)
        if prune:
            info = {}
        else:
            info.update(Status="left", LeftAt=time.time())
        await self.store.apply(ServerMember(address, info))
        node = info.get("Node") or self.directory().get(address, {}).get("Node")
        if node and node in self.store.state.nodes:
            await self.store.apply(Deregister(str(node)))  # Consul's leader deregisters a left member

    async def leave(self) -> None:
        """`meshctl leave` on this server: leave the Raft configuration (handing leadership on first)."""
        others = [p for p in self.store.peers() if p != self.cfg.raft_address]
        if not others or not self.joined:
            return
        if self.store.is_leader:
            await self.store.transfer_leadership(None)
            await self.store.wait_leader(10)
        body = self.info()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for _ in range(3):
                for serf in self._peer_serf_addresses():
                    answer = await self._post_signed(session, serf, LEAVE_PATH, body)
                    voters = answer.get("Voters") if isinstance(answer, dict) else None
                    if voters is not None and self.cfg.raft_address not in voters:
                        log.info("left the Raft configuration: voters now %s", ", ".join(voters))
                        return
                await asyncio.sleep(1.0)
        log.warning("could not leave the Raft configuration; the others will see this server failed")

    async def join_address(self, address: str) -> None:
        """`meshctl join ADDR` on a running server: ADDR must be a server of this same cluster.

        Two Raft clusters cannot be merged (Consul cannot either): a server of another cluster is
        refused with what to do instead. ValueError says why it failed.
        """
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.get(f"http://{address}{SERF_INFO_PATH}") as resp:
                    body = await resp.json()
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise ValueError(f"no server answered at {address} ({exc or type(exc).__name__})") from None
        if not isinstance(body, dict) or "Raft" not in body:
            raise ValueError(f"{address} is not a meshctl server's serf address")
        if body.get("Datacenter") != self.cfg.datacenter:
            raise ValueError(f"{address} is in datacenter {body.get('Datacenter')!r}, not {self.cfg.datacenter!r}")
        theirs, ours = body.get("Voters") or [], self.store.peers()
        if body["Raft"] not in ours and self.cfg.raft_address not in theirs:
            raise ValueError(f"{address} is a server of another Raft cluster; to move this server there, start it "
                             f"with a fresh data dir and -retry-join {address}")
        self.known.setdefault(str(body["Raft"]), {k: v for k, v in body.items() if k not in ("Known", "Voters", "IDs")})

    async def _serve_join(self, request: web.Request) -> web.Response:
        """A new server asks to be a voter: add it (a replacement at a voter's address: swap it)."""
        body = await self._signed_body(request)
        if isinstance(body, web.Response):
            return body
        address, ident = str(body["Raft"]), str(body.get("ID") or "")
        if body.get("Datacenter") != self.cfg.datacenter:
            return web.json_response({"Error": f"datacenter {body.get('Datacenter')!r}, not "
                                               f"{self.cfg.datacenter!r}"}, status=400)
        if not self.joined or self.store.replica is None:
            return web.json_response({"Error": "this server is not a voter yet"}, status=503)
        info = {k: v for k, v in body.items() if k in ("Node", "ID", "Raft", "Serf", "HTTP", "Datacenter")}
        try:
            if address in self.store.peers():
                old = str(self.directory().get(address, {}).get("ID") or "")
                if old and ident and old != ident:
                    # a replacement (fresh data dir): the old server goes; the new one asks again
                    # once its Raft runs (the add needs its answer when the old one was needed)
                    log.info("server %s (%s) replaces node ID %s: removing the old one", body.get("Node"),
                             address, old)
                    await self.store.remove_peer(address)
                    await self.store.apply(ServerMember(address, info))  # a retry is not a replacement again
            else:
                log.info("adding server %s (%s) to the Raft configuration", body.get("Node"), address)
                await self.store.add_peer(address)
                await self.store.apply(ServerMember(address, info))
        except Exception as exc:  # StateError: no leader, timed out...; the new server asks again
            return web.json_response({"Error": str(exc)}, status=500)
        self.known[address] = info
        return web.json_response({"Voters": self.store.peers()})

    async def _join(self, via: list[str], started: bool) -> list[str]:
        """Ask the cluster's servers, one after the other, until one added this server (`started`:
        its Raft runs) or, before that, removed the old server at its address; the voters then."""
        body = self.info()
        attempt = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            while True:
                targets = list(dict.fromkeys([*(self._peer_serf_addresses() if started else []), *via]))
                for serf in targets:
                    answer = await self._post_signed(session, serf, JOIN_PATH, body)
                    voters = sorted(answer.get("Voters") or []) if isinstance(answer, dict) else []
                    if voters and not started and self.cfg.raft_address not in voters:
                        log.info("the old server at %s was removed from the Raft configuration",
                                 self.cfg.raft_address)
                        return voters
                    if voters and started and self.cfg.raft_address in voters:
                        self.joined = True
                        self._save_peers(voters)
                        log.info("joined the cluster: voters now %s", ", ".join(voters))
                        return voters
                    attempt += 1
                    if attempt % 10 == 1:
                        log.info("join through %s failed: %s; retrying", serf,
                                 answer.get("Error") if isinstance(answer, dict) else answer)
                await asyncio.sleep(JOIN_RETRY)

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
                if self.store.known_leader or not self.joined:
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

    async def _discover(self) -> Discovery:
        """Ask -retry-join addresses (transitively) until -bootstrap-expect servers are known, or
        one of them is a voter of a running cluster (then this server joins it)."""
        expect = max(1, self.cfg.bootstrap_expect)
        to_ask = set(self.cfg.retry_join)
        waited = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                running: Discovery | None = None
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
                        self.known.setdefault(item["Raft"], {k: v for k, v in item.items()
                                                             if k not in ("Known", "Voters", "IDs")})
                        if item.get("Serf") and item["Serf"] != self.cfg.serf_address:
                            to_ask.add(item["Serf"])
                    voters = [str(v) for v in body.get("Voters") or []]
                    if voters and running is None:
                        running = self._running_cluster(voters, body.get("IDs") or {}, serf)
                    elif running is not None and voters:
                        running.via.append(serf)
                if running is not None:
                    return running
                if len(self.known) >= expect and not self.cfg.join_only:
                    return Discovery(sorted(self.known))
                waited += 1
                if waited % 20 == 0:
                    if self.cfg.join_only:
                        log.info("waiting for a running cluster to join (retry-join %s)",
                                 ", ".join(self.cfg.retry_join))
                    else:
                        log.info("waiting for %d servers (bootstrap-expect), know %d", expect, len(self.known))
                await asyncio.sleep(0.25)

    def _running_cluster(self, voters: list[str], ids: dict[str, str], serf: str) -> Discovery:
        """A running cluster's voters: start with them; join unless this very server is one of them."""
        me = self.cfg.raft_address
        known_id = str(ids.get(me) or "") if isinstance(ids, dict) else ""
        if me in voters and (not known_id or known_id == self.node_id):
            return Discovery(sorted(voters))  # a voter already (bootstrapping together, or a lost peers.json)
        others = sorted(v for v in voters if v != me)
        return Discovery(others, join=True, via=[serf], replace=me in voters)

    # ------------------------------------------------------------------ members

    def members(self, local_member: dict[str, Any]) -> list[dict[str, Any]]:
        """Every server of the datacenter as /v1/agent/members shows it (role, status); then the
        servers that left, `left` until reconnect_timeout (then reaped, as Consul does)."""
        out = []
        directory = self.directory()
        voters = self.store.peers()
        for addr in voters:
            if addr == self.cfg.raft_address:
                out.append(local_member)
                continue
            status = STATUS_ALIVE if self.store.connected(addr) else STATUS_FAILED
            out.append(self._member(addr, directory.get(addr, {}), status))
        now = time.time()
        for addr, info in sorted(self.store.members.items()):
            if addr not in voters and info.get("Status") == "left" and \
                    now - float(info.get("LeftAt") or 0) <= REAP_AFTER:
                out.append(self._member(addr, info, STATUS_LEFT))
        return out

    def _member(self, addr: str, info: dict[str, Any], status: int) -> dict[str, Any]:
        host, _, port = addr.rpartition(":")
        serf_host, _, serf_port = (info.get("Serf") or f"{host}:0").rpartition(":")
        return {
            "Name": info.get("Node") or addr, "Addr": serf_host, "Port": int(serf_port),
            "Tags": {"dc": self.cfg.datacenter, "role": "consul", "port": port, "id": info.get("ID", ""),
                     "vsn": "2", "build": __version__, "expect": str(self.cfg.bootstrap_expect)},
            "Status": status, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
            "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
        }

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
                        join_only=not c.bootstrap_expect and bool(c.retry_join),
                        sync_writes=True if c.sync_writes is None else bool(c.sync_writes),
                        snapshot_threshold=c.raft_snapshot_threshold, raft_multiplier=c.raft_multiplier)
    raft = raft_config(cfg)
    raft.password = password  # Raft traffic encrypted
    store = RaftStore(state, raft)
    return ServerCluster(cfg, store, node_id_for(cfg.data_dir) or str(uuid.uuid4()))
