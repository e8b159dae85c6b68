"""WAN federation, minimal: each server knows the servers of the other datacenters.

Consul puts the servers of every datacenter in one WAN gossip pool (`-retry-join-wan`); a
request with `?dc=<other>` is then sent to a server of that datacenter. Here the pool is kept
by asking, not by gossip:

* a server POSTs to `WAN_PATH` of each `-retry-join-wan` address who it is and every server
  it knows (its own datacenter's and the remote ones); the server asked records them (so a
  join is mutual: when dc1 joins dc2, dc2 learns dc1 at once) and answers with every server
  it knows, which the asker merges (so a third datacenter is learned transitively);
* every `REFRESH_INTERVAL` seconds, and at once when it learned a server it did not know, a
  server asks again: the join addresses, every remote server it knows and the servers of its
  own datacenter. Telling its own peers is how a server without `-retry-join-wan` learns what
  a peer joined (Consul's WAN join flooding);
* a remote server that does not answer is marked failed and tried last by forwarding, but
  kept: a datacenter that is down still has a path, which fails until it is back.

The WAN address of a Raft server is its serf address (meshctl has no separate 8302 port);
a `-dev` server answers on its HTTP address.

Each exchange is timed: the round trip moves this server's WAN coordinate (Vivaldi, as the LAN
ones: meshctl/server/coordinates.py) against the one the answer carries, so the other
datacenters are listed nearest first (`datacenters()`), as Consul's WAN gossip sorts them.

What reads the pool: `?dc=` forwarding (http/forward.py), `/v1/catalog/datacenters`,
`/v1/agent/members?wan` (`members()`), and DNS names of another datacenter (`get()` fetches
that datacenter's catalog data for the DNS server, as Consul's DNS RPCs the remote servers).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from meshctl.server.agent.servers import NOT_SENT, http_address
from meshctl.server.commands import Coord
from meshctl.server.coordinates import Coordinate, Vivaldi
from meshctl.server.http.forward import WAN_FORWARDED  # the server asked answers, never sends it on
from meshctl.server.periodic import Periodic

log = logging.getLogger(__name__)

WAN_PATH = "/v1/meshctl/serf/wan"
REFRESH_INTERVAL = 10.0  # seconds between two rounds once every join address answered
JOIN_RETRY_INTERVAL = 1.0  # seconds between rounds while a join address never answered
ASK_TIMEOUT = aiohttp.ClientTimeout(total=3, sock_connect=2)
GET_TIMEOUT = 3.0  # seconds for one server's answer to get(); a DNS client gives up after 5
STATUS_ALIVE, STATUS_FAILED = 1, 4  # serf member statuses


class NoPath(Exception):
    """No server of a datacenter answered (Consul's "No path to datacenter" / RPC error)."""


@dataclass
class WanServer:
    """A server of some datacenter, as the WAN pool knows it."""

    datacenter: str
    node: str
    http: str  # host:port of its HTTP API (where ?dc= requests are forwarded)
    wan: str  # host:port where it answers WAN_PATH
    alive: bool = True
    coord: Coord | None = None  # its WAN coordinate, as its last answer gave it

    def to_json(self) -> dict[str, Any]:
        return {"Datacenter": self.datacenter, "Node": self.node, "HTTP": self.http, "WAN": self.wan}


def _host(address: str) -> str:
    return address.rpartition(":")[0]


def _default_port(address: str, port: int) -> str:
    """`host` alone means the default serf port, as Consul's join addresses do."""
    return address if ":" in address else f"{address}:{port}"


class WanPool(Periodic):
    """This server's view of the WAN: remote datacenter -> its servers; refreshed in the background.

    `local` returns the servers of this server's own datacenter (itself first), as
    `{"Node", "HTTP", "WAN"}` dicts, each time it is needed (the Raft voter set changes).
    """

    period = REFRESH_INTERVAL

    def __init__(self, datacenter: str, join: list[str], local: Callable[[], list[dict[str, Any]]],
                 default_port: int = 8301) -> None:
        self.datacenter = datacenter
        self.join = [_default_port(a, default_port) for a in join]
        self.local = local
        self.remote: dict[str, WanServer] = {}  # WAN address -> server of another datacenter
        self._answered: set[str] = set()  # join addresses that answered at least once
        self._session: aiohttp.ClientSession | None = None
        self._learned = asyncio.Event()  # a new server: tell the others now, not at the next period
        self._closed = False  # no new session once closed (a DNS query may come in during shutdown)
        self.vivaldi = Vivaldi()  # this server's WAN coordinate, moved by each exchange's round trip

    # ------------------------------------------------------------------ what forwarding reads

    def datacenters(self) -> list[str]:
        """This datacenter first, then the remote ones by round trip (the median of their servers'
        estimated distances, as Consul's GetDatacentersByDistance), those not measured yet last; ties by name."""
        here = self.vivaldi.coordinate
        by_dc: dict[str, list[float]] = {}
        for server in self.remote.values():
            if server.datacenter == self.datacenter:
                continue
            found = by_dc.setdefault(server.datacenter, [])
            if server.coord is not None:
                try:
                    found.append(here.distance(Coordinate.from_json(server.coord)))
                except ValueError:
                    pass

        def key(dc: str) -> tuple[float, str]:
            rtts = sorted(by_dc[dc])
            return (rtts[len(rtts) // 2] if rtts else math.inf, dc)

        return [self.datacenter, *sorted(by_dc, key=key)]

    def coordinates(self) -> dict[str, list[tuple[str, Coord]]]:
        """The WAN coordinates known, by datacenter: `(node, coordinate)` of each server that has one
        (this server's own estimate for itself)."""
        own = str((self.local() or [{}])[0].get("Node") or "")
        out: dict[str, list[tuple[str, Coord]]] = {self.datacenter: [(own, self.vivaldi.coordinate.to_json())]}
        for server in sorted(self.remote.values(), key=lambda s: (s.datacenter, s.node)):
            if server.coord is not None:
                out.setdefault(server.datacenter, []).append((server.node, server.coord))
        return out

    def servers(self, datacenter: str) -> list[WanServer]:
        """The servers of `datacenter` in the order to try them: those answering first."""
        found = [s for s in self.remote.values() if s.datacenter == datacenter]
        return [s for s in found if s.alive] + [s for s in found if not s.alive]

    def datacenter_named(self, label: str) -> str | None:
        """The remote datacenter a (lower-cased) DNS label names, None if the WAN knows none."""
        label = label.lower()
        for server in self.remote.values():
            if server.datacenter.lower() == label and server.datacenter != self.datacenter:
                return server.datacenter
        return None

    def members(self) -> list[dict[str, Any]]:
        """Every known server of every datacenter as Consul's WAN pool lists them.

        Names are `<node>.<dc>`, Addr/Port the WAN address; this datacenter's servers come first
        (reported alive: the LAN view knows better, see http/agent.py), then the remote ones,
        alive unless the last exchange with them failed.
        """
        found = [(self.datacenter, str(s.get("Node") or ""), str(s.get("WAN") or ""), True) for s in self.local()]
        found += [(s.datacenter, s.node, s.wan, s.alive)
                  for s in sorted(self.remote.values(), key=lambda s: (s.datacenter, s.node, s.wan))]
        out = []
        for dc, node, wan, alive in found:
            host, _, port = wan.rpartition(":")
            out.append({
                "Name": f"{node}.{dc}", "Addr": host, "Port": int(port) if port.isdigit() else 0,
                "Tags": {"dc": dc, "role": "consul", "vsn": "2"},
                "Status": STATUS_ALIVE if alive else STATUS_FAILED,
                "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
                "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
            })
        return out

    async def get(self, datacenter: str, path: str, headers: Mapping[str, str] | None = None,
                  timeout: float = GET_TIMEOUT) -> Any:
        """GET `path` on a server of `datacenter` (the next one if one fails): its JSON body.

        For data another datacenter has to give (DNS answers): only a 200 counts; anything else
        from every server raises NoPath. A server that cannot be reached is marked failed.
        """
        return await self.call("GET", datacenter, path, headers=headers, timeout=timeout)

    async def call(self, method: str, datacenter: str, path: str, body: Any = None,
                   headers: Mapping[str, str] | None = None, timeout: float = GET_TIMEOUT) -> Any:
        """`get()` with any method and a JSON body: only for requests that change nothing over
        there (a prepared query's remote execution), since the next server is tried after any failure."""
        servers = self.servers(datacenter)
        if not servers or self._closed:
            raise NoPath(f"no server known in datacenter {datacenter}" if servers else "shutting down")
        session = self._client()
        per_server = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 1.0))
        errors = []
        for server in servers:
            try:
                async with session.request(method, f"http://{server.http}{path}", json=body,
                                           headers={**(headers or {}), WAN_FORWARDED: "1"},
                                           timeout=per_server, allow_redirects=False) as resp:
                    if resp.status != 200:
                        errors.append(f"{server.http}: {resp.status} {(await resp.text())[:200]}")
                        continue
                    answer = await resp.json(content_type=None)
            except NOT_SENT as exc:
                self.mark_failed(server)
                errors.append(f"{server.http}: {exc}")
                continue
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                errors.append(f"{server.http}: {exc or type(exc).__name__}")
                continue
            server.alive = True
            return answer
        raise NoPath(f"datacenter {datacenter}: {'; '.join(errors)}")

    def mark_failed(self, server: WanServer) -> None:
        if server.alive:
            log.warning("WAN: server %s (%s) in datacenter %s is unreachable", server.node, server.http,
                        server.datacenter)
        server.alive = False

    # ------------------------------------------------------------------ the exchange

    def _own(self) -> list[dict[str, Any]]:
        return [{**s, "Datacenter": self.datacenter} for s in self.local()]

    def _message(self) -> dict[str, Any]:
        """Who this server is, its WAN coordinate and every server it knows (own datacenter first)."""
        return {"Datacenter": self.datacenter, "Coord": self.vivaldi.coordinate.to_json(),
                "Servers": self._own() + [s.to_json() for s in self.remote.values()]}

    def merge(self, servers: Any, answered_by: str = "") -> None:
        """Learn servers of other datacenters from a message (this datacenter's are the LAN's business)."""
        if not isinstance(servers, list):
            return
        for item in servers:
            if not isinstance(item, dict):
                continue
            dc, wan = str(item.get("Datacenter") or ""), str(item.get("WAN") or "")
            if not dc or not wan or dc == self.datacenter or not item.get("HTTP"):
                continue
            http = http_address(item, _host(wan))
            known = self.remote.get(wan)
            if known is None:
                log.info("WAN: learned server %s (%s) of datacenter %s", item.get("Node") or "?", http, dc)
                self.remote[wan] = WanServer(dc, str(item.get("Node") or ""), http, wan)
                self._learned.set()
            else:
                known.datacenter, known.http = dc, http
                known.node = str(item.get("Node") or known.node)
            if wan == answered_by:
                self.remote[wan].alive = True

    async def serve(self, request: web.Request) -> web.Response:
        """WAN_PATH: a server of another datacenter announces itself; answer with what we know."""
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="Request decode failed")
        if isinstance(body, dict):
            self.merge(body.get("Servers"))
        return web.json_response(self._message())

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _ask(self, address: str) -> bool:
        """One exchange with `address`; whether it answered. Its round trip moves this server's WAN
        coordinate against the one the answer carries (meshctl/server/coordinates.py)."""
        started = time.monotonic()
        try:
            async with self._client().post(f"http://{address}{WAN_PATH}", json=self._message(),
                                           timeout=ASK_TIMEOUT) as resp:
                body = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("WAN: %s did not answer: %s", address, exc)
            return False
        rtt = time.monotonic() - started
        if not isinstance(body, dict):
            return False
        self.merge(body.get("Servers"), answered_by=address)
        server = self.remote.get(address)
        if server is not None:
            try:
                theirs = Coordinate.from_json(body.get("Coord"))
            except ValueError:
                return True  # a server that sends no coordinate (an older one): not measured
            server.coord = theirs.to_json()
            self.vivaldi.update(theirs, rtt)
        return True

    async def tick(self) -> None:
        """One round: the join addresses, every remote server known, this datacenter's other servers."""
        me = self.local()
        own_wan = str(me[0].get("WAN") or "") if me else ""
        peers = [str(s.get("WAN") or "") for s in me[1:]]
        targets = [t for t in dict.fromkeys([*self.join, *self.remote, *peers]) if t and t != own_wan]
        answers = await asyncio.gather(*(self._ask(t) for t in targets))
        for address, ok in zip(targets, answers, strict=True):
            if address in self.join and ok and address not in self._answered:
                self._answered.add(address)
                log.info("WAN: joined %s", address)
            server = self.remote.get(address)
            if server is not None:
                if ok:
                    server.alive = True
                else:
                    self.mark_failed(server)

    async def run(self) -> None:
        """Ask at once, then every second until each join address answered, then every period."""
        while True:
            try:
                await self.tick()
            except Exception as exc:
                self.failed(exc)
            joined = all(a in self._answered for a in self.join)
            try:  # a round that learned something is followed by another (a finite set: it ends)
                await asyncio.wait_for(self._learned.wait(), self.period if joined else JOIN_RETRY_INTERVAL)
            except TimeoutError:
                pass
            self._learned.clear()

    def failed(self, exc: Exception) -> None:
        log.warning("WAN refresh failed: %s", exc)

    async def close(self) -> None:
        self._closed = True
        self.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["WAN_PATH", "NoPath", "WanPool", "WanServer"]
