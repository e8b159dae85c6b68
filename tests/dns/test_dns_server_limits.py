"""The DNS sockets under hostile input: stalled TCP clients are dropped, failures log one line."""

from __future__ import annotations

import asyncio
import logging
import struct

from dnslib import DNSRecord

from meshctl.server import dns_server
from meshctl.server.dns import Resolver
from meshctl.server.dns_server import DNSServer
from meshctl.server.ratelog import RateLimitedLog
from meshctl.server.state import State


async def _serving(**timeouts: float) -> tuple[DNSServer, int]:
    state = State()
    server = DNSServer(Resolver(lambda: state), ["127.0.0.1"], 0, **timeouts)
    await server.start()
    port = server._tcp[0].sockets[0].getsockname()[1]
    return server, port


def test_a_tcp_client_that_sends_only_the_length_prefix_is_disconnected() -> None:
    async def scenario() -> bytes:
        server, port = await _serving(tcp_read_timeout=0.2)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(struct.pack("!H", 40))  # promises 40 bytes, sends none
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 60)  # b"" once the server hangs up
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == b""


def test_a_whole_tcp_query_is_answered_with_the_read_timeout_in_force() -> None:
    async def scenario() -> DNSRecord:
        server, port = await _serving()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            query = DNSRecord.question("consul.service.consul", "A").pack()
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = DNSRecord.parse(await reader.readexactly(length))
            writer.close()
            return reply
        finally:
            await server.stop()

    assert asyncio.run(scenario()).header.rcode in (0, 3)  # answered (NOERROR or NXDOMAIN), not dropped


def test_query_failures_log_one_line_per_interval_without_a_traceback(caplog, monkeypatch) -> None:
    clock = [100.0]
    limited = RateLimitedLog(logging.getLogger("meshctl.server.dns_server"), interval=60, clock=lambda: clock[0])
    monkeypatch.setattr(dns_server, "failures", limited)

    async def scenario() -> None:
        server, port = await _serving()

        def broken(data: bytes, transport: str = "udp") -> bytes:
            raise ValueError("a label the resolver cannot take")

        server.resolver.answer = broken  # type: ignore[method-assign]
        try:
            query = DNSRecord.question("web.service.consul", "A").pack()
            for _ in range(50):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(struct.pack("!H", len(query)) + query)
                await writer.drain()
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                assert DNSRecord.parse(await reader.readexactly(length)).header.rcode == 2  # SERVFAIL
                writer.close()
            clock[0] += 61
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            await reader.readexactly(2)
            writer.close()
        finally:
            await server.stop()

    with caplog.at_level(logging.INFO, logger="meshctl.server.dns_server"):
        asyncio.run(scenario())
    lines = [r for r in caplog.records if "DNS query failed" in r.getMessage()]
    assert len(lines) == 2
    assert "49 more since the last report" in lines[1].getMessage()
    assert all(r.exc_info is None for r in lines)
