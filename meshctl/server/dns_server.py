"""The DNS interface's sockets: asyncio UDP and TCP on one port, and recursor forwarding.

Answers come from a `Resolver` (dns.py) synchronously; only names outside our domains
are forwarded, to each recursor in turn (UDP for UDP clients, TCP for TCP clients), until
one answers NOERROR or NXDOMAIN. All failing gives SERVFAIL with RA set, as Consul.

A `Pending` answer (a CNAME to a hostname outside our domains) has its targets looked up
the same way, over UDP as Consul does, all at once; a target no recursor resolves in time
leaves its CNAME alone in the answer, never a SERVFAIL.

A `Remote` answer (a name of another datacenter) has its data fetched with `fetch_remote`
(the agent wires in the WAN pool's `get`: an HTTP GET on a server of that datacenter) and is
then built by the resolver; no data within REMOTE_TIMEOUT is SERVFAIL, as Consul answers a
failed RPC. Identical fetches in flight at the same moment are shared (a burst of queries for
one remote name costs one request); nothing is kept once they are done.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from dnslib import RCODE, DNSRecord

from meshctl.server.dns import FORWARD, Pending, Remote, Resolver
from meshctl.server.metrics import TELEMETRY
from meshctl.server.ratelog import RateLimitedLog

log = logging.getLogger(__name__)
failures = RateLimitedLog(log)  # query failures: input can provoke them, so never a flood of tracebacks

MAX_PARALLEL_LOOKUPS = 16  # CNAME targets of one answer asked of the recursors at once
REMOTE_TIMEOUT = 4.0  # seconds for another datacenter's data: SERVFAIL before a DNS client's 5 s retry
TCP_IDLE_TIMEOUT = 30.0  # seconds a TCP client may wait between queries
TCP_READ_TIMEOUT = 5.0  # seconds for a query's bytes once its length prefix came: a stalled client is dropped

# (datacenter, HTTP path) -> that datacenter's JSON answer; raises when it cannot be had
RemoteFetch = Callable[[str, str], Awaitable[Any]]


def split_hostport(address: str, default_port: int) -> tuple[str, int]:
    """"1.2.3.4", "1.2.3.4:53", "[::1]:53" -> (host, port)."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, int(port)
    return address, default_port


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        started = time.perf_counter()
        try:
            reply = self.server.resolver.answer(data, "udp")
        except Exception as exc:
            failures.warning("query", "DNS query failed: %s", _describe(exc), exc=exc)
            reply = _servfail(data)
        if reply is None:
            return
        if isinstance(reply, Pending):
            self.server.spawn(self._send_later(self.server.complete(reply), addr, data, started))
        elif isinstance(reply, Remote):
            self.server.spawn(self._send_later(self.server.remote(reply), addr, data, started))
        elif reply == FORWARD:
            self.server.spawn(self._send_later(self.server.recurse(data, "udp"), addr, data, started))
        elif self.transport is not None:
            self.transport.sendto(reply, addr)
            TELEMETRY.dns_answered(data, reply, started)

    async def _send_later(self, reply: Awaitable[bytes | None], addr: Any, query: bytes, started: float) -> None:
        data = await reply
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)
            TELEMETRY.dns_answered(query, data, started)


class DNSServer:
    """UDP+TCP listeners on (host, port) for each host; `start()` / `stop()`."""

    def __init__(self, resolver: Resolver, hosts: list[str], port: int, *,
                 tcp_idle_timeout: float = TCP_IDLE_TIMEOUT, tcp_read_timeout: float = TCP_READ_TIMEOUT) -> None:
        self.resolver = resolver
        self.hosts = hosts
        self.port = port
        self.tcp_idle_timeout = tcp_idle_timeout
        self.tcp_read_timeout = tcp_read_timeout
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[Any]] = set()  # answers in flight: the loop keeps only weak references
        self.fetch_remote: RemoteFetch | None = None  # other datacenters' data; None: their names SERVFAIL
        self._fetching: dict[tuple[str, str], asyncio.Task[Any]] = {}  # shared fetches in flight

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background, keeping it alive until done."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for host in self.hosts:
            transport, _ = await loop.create_datagram_endpoint(lambda: _UDPProtocol(self), local_addr=(host, self.port))
            self._udp.append(transport)
            self._tcp.append(await asyncio.start_server(self._serve_tcp, host, self.port, reuse_address=True))
        log.info("DNS listening on %s port %d (udp+tcp), domain %s", ",".join(self.hosts), self.port,
                 self.resolver.config.domain)

    async def stop(self) -> None:
        for transport in self._udp:
            transport.close()
        for server in self._tcp:
            server.close()
        for server in self._tcp:
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except (TimeoutError, asyncio.CancelledError):
                pass
        for task in list(self._tasks):
            task.cancel()
        self._udp.clear()
        self._tcp.clear()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), self.tcp_idle_timeout)
                (length,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(length), self.tcp_read_timeout)
                started = time.perf_counter()
                try:
                    reply = self.resolver.answer(data, "tcp")
                except Exception as exc:
                    failures.warning("query", "DNS query failed: %s", _describe(exc), exc=exc)
                    reply = _servfail(data)
                if isinstance(reply, Pending):
                    reply = await self.complete(reply)
                elif isinstance(reply, Remote):
                    reply = await self.remote(reply)
                elif reply == FORWARD:
                    reply = await self.recurse(data, "tcp")
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                TELEMETRY.dns_answered(data, reply, started)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except OSError as exc:
            failures.warning("tcp", "DNS TCP connection failed: %s", _describe(exc))
        finally:
            writer.close()

    async def recurse(self, data: bytes, transport: str) -> bytes | None:
        """Ask each recursor in turn; SERVFAIL (with RA) when none gives a usable answer."""
        reply = await self.ask_recursors(data, transport)
        return reply if reply is not None else _servfail(data, recursion=True)

    async def ask_recursors(self, data: bytes, transport: str) -> bytes | None:
        """The first NOERROR/NXDOMAIN reply of the recursors, tried in turn, each within
        recursor_timeout; None if none gives one."""
        cfg = self.resolver.config
        for recursor in cfg.recursors:
            host, port = split_hostport(recursor, 53)
            try:
                if transport == "tcp":
                    reply = await asyncio.wait_for(_tcp_exchange(host, port, data), cfg.recursor_timeout)
                else:
                    reply = await asyncio.wait_for(_udp_exchange(host, port, data), cfg.recursor_timeout)
                rcode = reply[3] & 0x0F if len(reply) >= 4 else RCODE.SERVFAIL
                if rcode in (RCODE.NOERROR, RCODE.NXDOMAIN):
                    return reply
                log.debug("recursor %s answered rcode %d", recursor, rcode)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                log.debug("recursor %s failed: %s", recursor, exc)
        return None

    async def complete(self, pending: Pending) -> bytes | None:
        """Finish a Pending answer with the recursors' records for its CNAME targets."""
        gate = asyncio.Semaphore(MAX_PARALLEL_LOOKUPS)

        async def lookup(query: bytes) -> bytes | None:
            async with gate:
                return await self.ask_recursors(query, "udp")

        keys = list(pending.queries)
        replies = await asyncio.gather(*(lookup(pending.queries[k]) for k in keys))
        try:
            return pending.finish(dict(zip(keys, replies, strict=True)))
        except Exception as exc:  # the recursors' records are input too
            failures.warning("cname", "DNS answer with recursor records failed; sending the CNAME alone: %s",
                             _describe(exc), exc=exc)
        try:
            return pending.finish({})
        except Exception as exc:
            failures.warning("query", "DNS query failed: %s", _describe(exc), exc=exc)
            return _servfail(pending.request.pack())

    async def remote(self, remote: Remote) -> bytes | None:
        """Answer a name of another datacenter from its data; SERVFAIL when none comes in time."""
        try:
            body = await asyncio.wait_for(asyncio.shield(self._fetch(remote.datacenter, remote.path)),
                                          REMOTE_TIMEOUT)
        except Exception as exc:  # whatever the reason, the datacenter did not answer: Consul's RPC error
            log.debug("DNS: datacenter %s did not answer %s: %s", remote.datacenter, remote.path,
                      exc or type(exc).__name__)
            return remote.fail()
        try:
            reply = remote.finish(body)
            return await self.complete(reply) if isinstance(reply, Pending) else reply
        except Exception as exc:
            failures.warning("remote", "DNS answer from datacenter %s failed: %s", remote.datacenter,
                             _describe(exc), exc=exc)
            return remote.fail()

    def _fetch(self, datacenter: str, path: str) -> asyncio.Task[Any]:
        """The fetch of (datacenter, path) in flight, started if none is (shared, never cached)."""
        key = (datacenter, path)
        task = self._fetching.get(key)
        if task is None:
            if self.fetch_remote is None:
                raise ConnectionError("no WAN: other datacenters cannot be asked")
            task = asyncio.ensure_future(self.fetch_remote(datacenter, path))
            self._fetching[key] = task
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._fetched(key, t))
        return task

    def _fetched(self, key: tuple[str, str], task: asyncio.Task[Any]) -> None:
        if self._fetching.get(key) is task:
            del self._fetching[key]
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: its waiters may all have timed out


class _OneShot(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


async def _udp_exchange(host: str, port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _OneShot(done), remote_addr=(host, port))
    try:
        transport.sendto(data)
        return await done
    finally:
        transport.close()


async def _tcp_exchange(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(length)
    finally:
        writer.close()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _servfail(data: bytes, recursion: bool = False) -> bytes | None:
    try:
        request = DNSRecord.parse(data)
    except Exception:
        return None
    reply = request.reply()
    reply.header.rcode = RCODE.SERVFAIL
    reply.header.ra = 1 if recursion else 0
    reply.header.aa = 0
    return reply.pack()
