"""A recursor double for the DNS tests: a UDP server on 127.0.0.1 that answers from a table."""

from __future__ import annotations

import socket
import threading

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSError, DNSRecord


class Recursor:
    """A recursor double on 127.0.0.1: `records` maps (name, type) to addresses, other names get
    `default` (A records) or else NXDOMAIN; with `silent` it reads queries and never answers."""

    def __init__(self, records: dict[tuple[str, str], list[str]] | None = None, silent: bool = False,
                 default: list[str] | None = None) -> None:
        self.records = records or {}
        self.silent = silent
        self.default = default
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[tuple[str, str]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                q = DNSRecord.parse(data)
            except DNSError:
                continue
            key = (str(q.q.qname).lower(), QTYPE[q.q.qtype])
            self.queries.append(key)
            if self.silent:
                continue
            reply = q.reply()
            addresses = self.records.get(key, self.default)
            if addresses is not None:
                for address in addresses:
                    rtype, rdata = (QTYPE.AAAA, AAAA(address)) if ":" in address else (QTYPE.A, A(address))
                    reply.add_answer(RR(q.q.qname, rtype, ttl=60, rdata=rdata))
            else:
                reply.header.rcode = RCODE.NXDOMAIN
            self.sock.sendto(reply.pack(), addr)

    def close(self) -> None:
        self.sock.close()
