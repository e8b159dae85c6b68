"""A real 3-server cluster of `meshctl agent -server` processes on free 127.0.0.1 ports."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

RUN = "import sys; from meshctl.server.run import main; sys.exit(main(sys.argv[1:]))"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One server process (restartable: same ports, same data dir)."""

    name: str
    data_dir: Path
    log_path: Path
    http_port: int = field(default_factory=free_port)
    serf_port: int = field(default_factory=free_port)
    server_port: int = field(default_factory=free_port)
    dns_port: int = field(default_factory=free_port)
    join: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    bind: str = "127.0.0.1"  # -bind: the Raft and serf address (HTTP stays on 127.0.0.1)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def raft_address(self) -> str:
        return f"{self.bind}:{self.server_port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, expect: int) -> None:
        cmd = [sys.executable, "-c", RUN, "-server", "-bootstrap-expect", str(expect), "-node", self.name,
               "-data-dir", str(self.data_dir), "-bind", self.bind, "-client", "127.0.0.1", "-http-port", str(self.http_port),
               "-serf-port", str(self.serf_port), "-server-port", str(self.server_port),
               "-dns-port", str(self.dns_port), *[a for j in self.join for a in ("-retry-join", j)], *self.extra]
        env = {k: v for k, v in os.environ.items() if k != "CONSUL_HTTP_ADDR"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=str(Path(__file__).resolve().parents[2]))

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, timeout: float = 5, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=timeout, **kw)

    def put(self, path: str, data: Any = None, timeout: float = 10, **kw: Any) -> requests.Response:
        return requests.put(self.url + path, data=data, timeout=timeout, **kw)


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `pred` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = pred()
            if value:
                return value
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Cluster:
    """N servers that bootstrap together (-bootstrap-expect N, -retry-join each other)."""

    def __init__(self, root: Path, size: int = 3, extra: list[str] | None = None) -> None:
        self.servers = [Server(f"s{i + 1}", root / f"s{i + 1}", root / f"s{i + 1}.log", extra=list(extra or []))
                        for i in range(size)]
        for s in self.servers:
            s.join = [f"127.0.0.1:{o.serf_port}" for o in self.servers if o is not s]

    def start(self) -> None:
        for s in self.servers:
            s.start(len(self.servers))
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> Server:
        """Every live server knows the same leader, and that leader accepts writes."""
        def ready() -> Server | None:
            live = [s for s in self.servers if s.alive]
            leaders = {s.get("/v1/status/leader?stale", timeout=2).json() for s in live}
            if len(leaders) != 1 or "" in leaders:
                return None
            leader = self.by_raft(leaders.pop())
            if leader is None or not leader.alive:
                return None
            r = leader.put("/v1/kv/_ready", b"1", timeout=5)
            return leader if r.status_code == 200 else None

        try:
            return wait_for(ready, timeout, "a leader known to every live server")
        except AssertionError:
            raise AssertionError("no leader:\n" + "\n".join(f"--- {s.name}\n{s.log()[-3000:]}"
                                                            for s in self.servers)) from None

    def by_raft(self, address: str) -> Server | None:
        return next((s for s in self.servers if s.raft_address == address), None)

    def leader(self) -> Server:
        return self.wait_ready()

    def followers(self) -> list[Server]:
        leader = self.leader()
        return [s for s in self.servers if s is not leader]

    def stop(self) -> None:
        for s in self.servers:
            if s.alive:
                assert s.proc is not None
                s.proc.send_signal(signal.SIGCONT)
                s.signal(signal.SIGKILL)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh 3-server cluster per test (snapshots every 1000 entries)."""
    c = Cluster(tmp_path, 3, extra=["-raft-snapshot-threshold", "1000"])
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One 3-server cluster for a module's read-mostly tests."""
    c = Cluster(tmp_path_factory.mktemp("cluster"), 3)
    c.start()
    yield c
    c.stop()


def iptables_usable() -> bool:
    """Whether this process may add iptables rules (root with a working iptables)."""
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        return False
    return subprocess.run(["iptables", "-w", "-L", "INPUT", "-n"], capture_output=True).returncode == 0


class RaftPartition:
    """Cuts one server's Raft traffic off with iptables DROP rules on loopback (a chain of its own).

    pysyncobj opens one connection per pair of servers, from the greater address to the smaller,
    so every Raft connection of the server with the smallest address ends on its own port: dropping
    packets to and from that port isolates it (HTTP and discovery keep working). `isolate` needs
    that server; `lowest_first` makes it the leader. Always `heal()` (the rules outlive the test).
    """

    def __init__(self) -> None:
        self.chain = f"MESHCTL-T{os.getpid()}"
        self.active = False

    def _ipt(self, *args: str, check: bool = True) -> None:
        subprocess.run(["iptables", "-w", *args], check=check, capture_output=True)

    def isolate(self, server: Server) -> None:
        port = str(server.server_port)
        self._ipt("-N", self.chain)
        self.active = True
        self._ipt("-A", self.chain, "-p", "tcp", "--dport", port, "-j", "DROP")
        self._ipt("-A", self.chain, "-p", "tcp", "--sport", port, "-j", "DROP")
        self._ipt("-I", "INPUT", "-i", "lo", "-j", self.chain)

    def heal(self) -> None:
        if not self.active:
            return
        self._ipt("-D", "INPUT", "-i", "lo", "-j", self.chain, check=False)
        self._ipt("-F", self.chain, check=False)
        self._ipt("-X", self.chain, check=False)
        self.active = False


def lowest(cluster: Cluster) -> Server:
    """The server with the smallest Raft address (the one `RaftPartition.isolate` can cut off)."""
    return min(cluster.servers, key=lambda s: s.raft_address)


def make_leader(cluster: Cluster, server: Server, timeout: float = 30) -> None:
    """Move leadership to `server` (operator API) and wait until every server agrees."""
    def moved() -> bool:
        leader = cluster.wait_ready()
        if leader is server:
            return True
        leader.put(f"/v1/operator/raft/transfer-leader?address={server.raft_address}", timeout=10)
        return cluster.wait_ready() is server

    wait_for(moved, timeout, f"{server.name} to lead", interval=0.5)


def settled_views(servers: list[Server], prefix: str = "", timeout: float = 60) -> list[tuple[int, str]]:
    """(X-Consul-Index, a hash of every entry under `prefix` with its indexes) per server, once all
    servers report the same index (read with ?stale, from each server's own state)."""
    def views() -> list[tuple[int, str]] | None:
        out = []
        for s in servers:
            r = s.get(f"/v1/kv/{prefix}?recurse&stale", timeout=10)
            if r.status_code not in (200, 404):
                return None
            body = r.content if r.status_code == 200 else b"[]"
            out.append((int(r.headers["X-Consul-Index"]), hashlib.sha256(body).hexdigest()))
        return out if len({i for i, _ in out}) == 1 else None

    return wait_for(views, timeout, "every server to report the same index", interval=0.2)  # type: ignore[no-any-return]
