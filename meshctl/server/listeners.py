"""The sockets an agent will listen on, checked before it starts: a busy port is named, not a traceback.

Consul fails its start with the listener's address; meshctl's listeners start in several
places (aiohttp, the DNS server, pysyncobj's Raft port), some after "agent running" is
logged, so each is tried here first with a plain bind() and released at once.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshctl.server.agentconfig import AgentConfig


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
        family = socket.AF_INET6 if ":" in item.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM if item.udp else socket.SOCK_STREAM)
        try:
            if not item.udp:  # as aiohttp binds (reuse_address); a UDP socket would share the port with it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((item.host, item.port))
            if not item.udp:
                sock.listen(1)
        except OSError as exc:
            where = f"{item.host}:{item.port}" if family == socket.AF_INET else f"[{item.host}]:{item.port}"
            proto = "udp" if item.udp else "tcp"
            return (f"cannot listen on {where} ({proto}) for the {item.name} listener: "
                    f"{(exc.strerror or str(exc)).lower()} (set by {item.setting})")
        finally:
            sock.close()
    return None
