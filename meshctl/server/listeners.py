"""The sockets an agent will listen on, checked before it starts: a busy port is named, not a traceback.

Consul fails its start with the listener's address; meshctl's listeners start in several
places (aiohttp, the DNS server, pysyncobj's Raft port), some after "agent running" is
logged, so each is tried here first with a plain bind() and released at once.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshctl.server.agentconfig import AgentConfig

UDP_RETRY = 2.0  # seconds a busy UDP port is tried again before it is reported


@dataclass(frozen=True)
class Listener:
    """One socket an agent opens: which interface (Consul's name), where, TCP or UDP."""

    name: str  # http, https, dns, server, serf
    host: str
    port: int
    udp: bool = False
    setting: str = ""  # the flag / config key that chose the port, for the message


def planned(cfg: AgentConfig) -> list[Listener]:
    """Every listener `cfg` will open (a port <= 0 is none)."""
    out: list[Listener] = []
    clients = cfg.client.split()
    for host in clients:
        if cfg.http_port > 0:
            out.append(Listener("http", host, cfg.http_port, setting="-http-port / ports.http"))
        if cfg.security.https_port > 0:
            out.append(Listener("https", host, cfg.security.https_port, setting="-https-port / ports.https"))
        if cfg.dns_port > 0:
            out.append(Listener("dns", host, cfg.dns_port, setting="-dns-port / ports.dns"))
            out.append(Listener("dns", host, cfg.dns_port, udp=True, setting="-dns-port / ports.dns"))
    if cfg.server and not cfg.dev:
        out.append(Listener("server", cfg.bind, cfg.server_port, setting="-server-port / ports.server"))
        out.append(Listener("serf", cfg.bind, cfg.serf_port, setting="-serf-port / ports.serf_lan"))
    return out


def bad_address(cfg: AgentConfig) -> str | None:
    """An address setting that is not an IP address (Consul's rule for bind_addr and friends)."""
    for name, value in (("bind_addr (-bind)", cfg.bind), ("advertise_addr (-advertise)", cfg.advertise),
                        *(("client_addr (-client)", h) for h in cfg.client.split())):
        if not value:
            continue
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return f"{name}: {value!r} is not a valid IP address"
    return None


def busy_port(cfg: AgentConfig) -> str | None:
    """The first listener that cannot be opened, as one line; None when all can."""
    problem = bad_address(cfg)
    if problem:
        return problem
    for item in planned(cfg):
        error = _try(item)
        if error is not None:
            where = f"[{item.host}]:{item.port}" if ":" in item.host else f"{item.host}:{item.port}"
            return (f"cannot listen on {where} ({'udp' if item.udp else 'tcp'}) for the {item.name} listener: "
                    f"{(error.strerror or str(error)).lower()} (set by {item.setting})")
    return None


def _try(item: Listener) -> OSError | None:
    """Why `item` cannot be opened; None when it can, or when the port is only held for a moment.

    A TCP port can be held by a connection's local end (an ephemeral port another process
    is using right now): that is not a listener, and it goes away, so only a port something
    answers on is reported. A UDP port is tried again for a little while before it is.
    """
    family = socket.AF_INET6 if ":" in item.host else socket.AF_INET
    deadline = time.monotonic() + UDP_RETRY
    while True:
        try:
            _bind(family, item)
            return None
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return exc
            if not item.udp:
                return exc if _answers(family, item) else None
            if time.monotonic() > deadline:
                return exc
            time.sleep(0.1)


def _bind(family: int, item: Listener) -> None:
    with socket.socket(family, socket.SOCK_DGRAM if item.udp else socket.SOCK_STREAM) as sock:
        if not item.udp:  # as aiohttp binds (reuse_address); a UDP socket would share the port with it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((item.host, item.port))
        if not item.udp:
            sock.listen(1)


def _answers(family: int, item: Listener) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect((item.host, item.port))
            return True
        except OSError:
            return False
