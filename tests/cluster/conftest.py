"""A real 3-server cluster of `meshctl agent -server` processes on free 127.0.0.1 ports."""

from __future__ import annotations

import os
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
