"""The servers a client agent knows, and failing over between them (Consul's client RPC rules).

A Consul client agent learns every server of its datacenter (through gossip) and sends each
request to one of them; when that one is unreachable it tries the next and keeps the one that
answered. Here the servers answer discovery on their serf port (`SERF_INFO_PATH`: who they are,
their HTTP address, the servers they know), and their /v1/agent/members lists every voter's
serf address (role "consul"), so a client learns them all from any one server. `ServerPool`
asks again every `period` seconds and after each failover, as gossip would keep it current.

What is retried on the next server follows what is safe to repeat:

* a request whose connection could not be made was never sent: any request moves on;
* a read (GET, HEAD, or a call the caller marks `safe`) may be repeated after any failure;
* a write that may have reached a server is not repeated (it could be applied twice):
  it fails with `Unsent(False)` and the caller answers an error, as Consul's RPC would.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from meshctl.server.periodic import Periodic

log = logging.getLogger(__name__)

# Where a server answers discovery on its serf port; defined here (not in cluster.py, which
# pulls in Raft) so that client agents and servers share it.
SERF_INFO_PATH = "/v1/meshctl/serf/info"
INFO_PATH = "/v1/internal/meshctl/info"
READ_METHODS = frozenset({"GET", "HEAD"})
REFRESH_INTERVAL = 30.0  # how often the server list is re-learned (Consul rebalances every few minutes)
CONNECT_TIMEOUT = 3.0  # a server that does not accept a connection by then is skipped
DISCOVERY_TIMEOUT = aiohttp.ClientTimeout(total=2)
# failures that happen before any byte of the request is sent: safe to send again anywhere
NOT_SENT: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError,) + (
    (aiohttp.ConnectionTimeoutError,) if hasattr(aiohttp, "ConnectionTimeoutError") else ())


@dataclass
class Server:
    """One server as a client sees it."""

    http: str  # host:port of its HTTP API
    serf: str = ""  # host:port of its discovery listener ("" when it was joined by its HTTP address)
    node: str = ""
    dns_port: int = 0


@dataclass
class Reply:
    """A server's whole answer (bodies are read before the connection is given back)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class NoServers(ConnectionError):
    """No server answered. `unsent` says whether the request surely reached none of them."""

    def __init__(self, message: str, unsent: bool = True) -> None:
        super().__init__(message)
        self.unsent = unsent


def _host(address: str) -> str:
    return address.rpartition(":")[0]


def http_address(item: Mapping[str, Any], fallback_host: str) -> str:
    """A server's reachable HTTP `host:port` from what it announces about itself.

    `item["HTTP"]` is the server's own `client_addr:port`, which may be a wildcard bind or list
    several addresses: the first one is used, and a wildcard is replaced by `fallback_host`, the
    host the server was reached at (its serf or WAN address). Client discovery (`ServerPool`)
    and the WAN pool (wan.py) both read announcements this way.
    """
    http = str(item.get("HTTP") or "")
    host, _, port = http.rpartition(":")
    host = host.split()[0] if host.split() else ""  # `client_addr` may list several addresses
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = fallback_host
    return f"{host}:{port}"


class ServerPool(Periodic):
    """Known servers, the one in use (`current`), failover (`call`) and re-discovery (a Periodic)."""

    period = REFRESH_INTERVAL

    def __init__(self, session: aiohttp.ClientSession, join: list[str], datacenter: str = "") -> None:
        self.session = session
        self.join = list(join)
        self.datacenter = datacenter  # "" until the first server told us its own
        self.servers: list[Server] = []
        self.current: Server | None = None
        self.on_change: list[Callable[[], None]] = []  # called when the list or the current server changes
        self._refreshing: asyncio.Task[Any] | None = None

    # ------------------------------------------------------------------ the server in use

    @property
    def base(self) -> str:
        """http://host:port of the server in use."""
        if self.current is None:
            raise NoServers("No known Consul servers")
        return f"http://{self.current.http}"

    def ordered(self) -> list[Server]:
        """The servers in the order a request tries them: the one in use, then the others in turn."""
        addresses = [s.http for s in self.servers]
        if self.current is None or self.current.http not in addresses:
            return list(self.servers) if self.current is None else [self.current, *self.servers]
        i = addresses.index(self.current.http)
        return self.servers[i:] + self.servers[:i]

    def _use(self, server: Server) -> None:
        if self.current is not None and server.http == self.current.http:
            return  # (a request that started before a refresh holds the list's older entries)
        previous = self.current
        self.current = next((s for s in self.servers if s.http == server.http), server)
        log.warning("server %s unreachable; now using server %s (%s)", previous.http if previous else "-",
                    server.http, server.node or "?")
        self.refresh_soon()  # the failure may mean the membership changed
        self._changed()

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    # ------------------------------------------------------------------ requests with failover

    async def call(self, method: str, path: str, *, json_body: Any = None, body: bytes | None = None,
                   headers: Mapping[str, str] | None = None, timeout: aiohttp.ClientTimeout | None = None,
                   session: aiohttp.ClientSession | None = None, safe: bool | None = None) -> Reply:
        """`method path` on the server in use, or on the next ones when it cannot be reached.

        `safe` (default: reads only) allows a retry after a failure that may have come after the
        request was sent. Raises NoServers when no server answered.
        """
        session = session or self.session
        retry_any = method.upper() in READ_METHODS if safe is None else safe
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=30, sock_connect=CONNECT_TIMEOUT)
        errors = []
        for server in self.ordered():
            kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout, "allow_redirects": False}
            if json_body is not None:
                kwargs["json"] = json_body
            elif body is not None:
                kwargs["data"] = body
            try:
                async with session.request(method, f"http://{server.http}{path}", **kwargs) as resp:
                    reply = Reply(resp.status, resp.headers, await resp.read())
            except NOT_SENT as exc:
                errors.append(f"{server.http}: {exc}")
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{server.http}: {exc or type(exc).__name__}")
                if not retry_any:  # it may have been applied: sending it again could apply it twice
                    raise NoServers(f"rpc error: {exc or type(exc).__name__} (request to {server.http} "
                                    "may or may not have been applied)", unsent=False) from None
                continue
            self._use(server)
            return reply
        raise NoServers(f"No known Consul servers ({'; '.join(errors) or 'none known'})")

    # ------------------------------------------------------------------ discovery

    async def join_servers(self, max_delay: float = 5.0) -> dict[str, Any]:
        """Discover until some server answers; its /v1/internal/meshctl/info (datacenter, DNS port ...)."""
        delay = 0.2
        while True:
            info = await self.discover()
            if info is not None:
                return info
            log.warning("join failed: no server answered at %s; retrying", ", ".join(self.join))
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    async def discover(self) -> dict[str, Any] | None:
        """Learn the servers from the join addresses and the servers known (transitively).

        Returns the info of the server in use (None when no server answered at all). The first
        answering join address becomes the server in use, unless one is in use and still answers.
        """
        seeds = [s.serf for s in self.ordered() if s.serf] + self.join
        found: dict[str, Server] = {}
        asked: set[str] = set()
        await self._crawl(seeds, asked, found)
        # a server restarted from its saved peers knows only itself on its serf port;
        # its member list still names every voter
        extra = await self._member_serf_addresses(list(found.values()), asked)
        if extra:
            await self._crawl(extra, asked, found)
        if not found:
            return None
        infos = await asyncio.gather(*(self._info(s) for s in found.values()))
        answering = [s for s, info in zip(found.values(), infos, strict=True) if info is not None]
        if not answering:
            return None
        previous = {s.http: s for s in self.servers}
        for server, info in zip(found.values(), infos, strict=True):
            if info is not None:
                server.dns_port = int(info.get("DNSPort") or 0)
                server.node = server.node or str(info.get("Node") or "")
            elif server.http in previous:  # down right now: keep what it said when it answered
                server.dns_port = previous[server.http].dns_port
        self._install(list(found.values()), answering)
        assert self.current is not None
        return next(info for s, info in zip(found.values(), infos, strict=True) if s.http == self.current.http)

    def _install(self, found: list[Server], answering: list[Server]) -> None:
        """Replace the list; keep the server in use while it answers."""
        current = self.current
        keep = current is not None and any(s.http == current.http for s in answering)
        before = [(s.http, s.dns_port) for s in self.servers]
        self.servers = found
        if keep:
            assert current is not None
            self.current = next(s for s in found if s.http == current.http)
        else:
            self.current = answering[0]
            log.info("using server %s (%s)", self.current.http, self.current.node or "?")
        if not keep or before != [(s.http, s.dns_port) for s in self.servers]:
            log.info("known servers: %s", ", ".join(f"{s.node or '?'}={s.http}" for s in self.servers))
            self._changed()

    async def _crawl(self, to_ask: list[str], asked: set[str], found: dict[str, Server]) -> None:
        """Ask each address's serf port who it and its peers are; addresses that are HTTP ports join as they are."""
        queue = list(to_ask)
        while queue:
            address = queue.pop(0)
            if address in asked:
                continue
            asked.add(address)
            try:
                async with self.session.get(f"http://{address}{SERF_INFO_PATH}", timeout=DISCOVERY_TIMEOUT) as resp:
                    body = await resp.json(content_type=None) if resp.status == 200 else None
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("discovery at %s: %s", address, exc)
                continue
            except ValueError:
                body = None
            if not isinstance(body, dict) or "HTTP" not in body:
                if address in self.join:  # a join address that is a server's HTTP API
                    found.setdefault(address, Server(address))
                continue
            if self.datacenter and body.get("Datacenter") and body["Datacenter"] != self.datacenter:
                log.warning("server at %s is in datacenter %s, not %s; ignored", address, body["Datacenter"],
                            self.datacenter)
                continue
            for item in [body, *(body.get("Known") or [])]:
                if not isinstance(item, dict) or not item.get("HTTP"):
                    continue
                serf = str(item.get("Serf") or "")
                http = http_address(item, _host(serf) or _host(address))
                found.setdefault(http, Server(http, serf, str(item.get("Node") or "")))
                if serf and serf not in asked:
                    queue.append(serf)

    async def _member_serf_addresses(self, servers: list[Server], asked: set[str]) -> list[str]:
        """Serf addresses of the servers in one server's member list that were not asked yet.

        Only servers that answer discovery are asked: a -dev server (joined by its HTTP address)
        lists a serf port it does not listen on.
        """
        for server in [s for s in servers if s.serf]:
            try:
                async with self.session.get(f"http://{server.http}/v1/agent/members",
                                            timeout=DISCOVERY_TIMEOUT) as resp:
                    members = await resp.json(content_type=None) if resp.status == 200 else None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
            if isinstance(members, list):
                return [f"{m['Addr']}:{m['Port']}" for m in members
                        if isinstance(m, dict) and (m.get("Tags") or {}).get("role") == "consul"
                        and m.get("Addr") and m.get("Port") and f"{m['Addr']}:{m['Port']}" not in asked]
        return []

    async def _info(self, server: Server) -> dict[str, Any] | None:
        try:
            async with self.session.get(f"http://{server.http}{INFO_PATH}", timeout=DISCOVERY_TIMEOUT) as resp:
                if resp.status == 200:
                    info = await resp.json(content_type=None)
                    return info if isinstance(info, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("server %s: %s", server.http, exc)
        return None

    # ------------------------------------------------------------------ keeping the list current

    async def tick(self) -> None:
        await self.discover()

    def failed(self, exc: Exception) -> None:
        log.warning("refreshing the server list failed: %s", exc)

    def refresh_soon(self) -> None:
        """Re-learn the servers in the background (one refresh at a time)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh_logged())

    async def _refresh_logged(self) -> None:
        try:
            await self.discover()
        except Exception as exc:
            self.failed(exc)

    def stop(self) -> None:
        super().stop()
        if self._refreshing is not None:
            self._refreshing.cancel()


__all__ = ["NOT_SENT", "NoServers", "Reply", "Server", "ServerPool", "http_address"]
