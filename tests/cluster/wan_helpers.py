"""Single-server datacenters joined over the WAN (`-datacenter`, `-retry-join-wan`), for WAN and replicate tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

from cluster.conftest import Server, wait_for


def start_datacenter(root: Path, dc: str, join_wan: Sequence[Server] = ()) -> Server:
    """One `-server -bootstrap-expect 1` server of datacenter `dc`, WAN-joined to `join_wan`; ready for writes."""
    extra = ["-datacenter", dc]
    for other in join_wan:
        extra += ["-retry-join-wan", f"127.0.0.1:{other.serf_port}"]
    server = Server(f"{dc}-s1", root / dc, root / f"{dc}.log", extra=extra)
    server.start(1)
    wait_ready(server)
    return server


def wait_ready(server: Server, timeout: float = 30) -> None:
    """The server has a leader and takes writes."""
    try:
        wait_for(lambda: server.alive and server.put("/v1/kv/_ready", b"1", timeout=5).status_code == 200,
                 timeout, f"{server.name} to take writes")
    except AssertionError:
        raise AssertionError(f"{server.name} not ready:\n{server.log()[-3000:]}") from None


def wait_datacenters(server: Server, expected: list[str], timeout: float = 20) -> list[str]:
    """/v1/catalog/datacenters of `server` lists exactly `expected` (in any order)."""

    def listed() -> list[str] | None:
        dcs = requests.get(server.url + "/v1/catalog/datacenters", timeout=2).json()
        return dcs if sorted(dcs) == sorted(expected) else None

    return wait_for(listed, timeout, f"{server.name} to list datacenters {expected}")


def stop(*servers: Server) -> None:
    for s in servers:
        if s.alive:
            s.signal(9)


@contextmanager
def joined_datacenters(root: Path, first: str, *others: str) -> Iterator[dict[str, Server]]:
    """Datacenter `first`, then each of `others` WAN-joined to it; yielded (by name) once every
    server lists them all, SIGKILLed after."""
    servers = {first: start_datacenter(root, first)}
    try:
        for dc in others:
            servers[dc] = start_datacenter(root, dc, [servers[first]])
        for server in servers.values():
            wait_datacenters(server, list(servers))
        yield servers
    finally:
        stop(*servers.values())
