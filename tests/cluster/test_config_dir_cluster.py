"""Three servers configured only by an HCL -config-dir form a cluster; bootstrap_expect = 3 never bootstraps alone.

The file's `bootstrap_expect`, `data_dir` and `retry_join` used to be ignored, so the first
server elected itself a one-node cluster. Now the first server answers HTTP with no leader
while it waits, a second is not enough either, and the third makes the cluster.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from .conftest import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ConfiguredServer:
    """A server whose only flag is -config-dir."""

    name: str
    root: Path
    http: int = field(default_factory=free_port)
    dns: int = field(default_factory=free_port)
    raft: int = field(default_factory=free_port)
    serf: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.root / f"{self.name}.d"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def write_config(self, others: list[ConfiguredServer]) -> None:
        self.conf.mkdir(parents=True)
        joins = ", ".join(f'"127.0.0.1:{o.serf}"' for o in others)
        (self.conf / "10-server.hcl").write_text(f'''
server           = true
bootstrap_expect = 3
node_name        = "{self.name}"
data_dir         = "{self.root / self.name}"
bind_addr        = "127.0.0.1"
client_addr      = "127.0.0.1"
retry_join       = [{joins}]
''')
        (self.conf / "20-ports.hcl").write_text(f'''
ports {{
  http     = {self.http}
  dns      = {self.dns}
  server   = {self.raft}
  serf_lan = {self.serf}
  https    = -1
}}
''')

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "meshctl", "agent", "-config-dir", str(self.conf)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def leader(self) -> str:
        r = requests.get(f"http://127.0.0.1:{self.http}/v1/status/leader", timeout=5)
        r.raise_for_status()
        return str(r.json())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(15)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ConfiguredServer]]:
    trio = [ConfiguredServer(f"c{i}", tmp_path) for i in (1, 2, 3)]
    for s in trio:
        s.write_config([o for o in trio if o is not s])
    yield trio
    for s in trio:
        s.stop()


def waits_leaderless(server: ConfiguredServer, others: list[ConfiguredServer], knows: int) -> None:
    """Until `server` logs it waits knowing `knows` servers, every live one answers: no leader."""
    seen: set[str] = set()

    def waiting() -> bool:
        for s in [server, *others]:
            seen.add(s.leader())
        assert server.proc is not None and server.proc.poll() is None, server.log()
        return f"know {knows}" in server.log()

    wait_for(waiting, 120, f"{server.name} waiting for bootstrap_expect with {knows} known", interval=0.2)
    assert seen == {""}, f"a leader was elected before 3 servers were there: {seen}"


@pytest.mark.integration
def test_three_servers_from_hcl_config_dirs(servers: list[ConfiguredServer]) -> None:
    c1, c2, c3 = servers
    c1.start()
    wait_for(lambda: c1.leader() == "", 60, "c1 answering HTTP while it waits for the others")
    waits_leaderless(c1, [], knows=1)  # alone: it never elects itself
    c2.start()
    wait_for(lambda: c2.leader() == "", 60, "c2 answering HTTP")
    waits_leaderless(c2, [c1], knows=2)  # two of three: still no leader
    c3.start()
    leader = wait_for(lambda: len({s.leader() for s in servers} - {""}) == 1 and all(s.leader() for s in servers)
                      and c1.leader(), 120, "one leader known to all three")
    assert leader in {f"127.0.0.1:{s.raft}" for s in servers}
    peers = requests.get(f"http://127.0.0.1:{c1.http}/v1/status/peers", timeout=5).json()
    assert sorted(peers) == sorted(f"127.0.0.1:{s.raft}" for s in servers)
    put = wait_for(lambda: requests.put(f"http://127.0.0.1:{c2.http}/v1/kv/from-config", data=b"ok", timeout=10)
                   .status_code == 200, 60, "a write through a follower")
    assert put
    got = requests.get(f"http://127.0.0.1:{c3.http}/v1/kv/from-config?raw", timeout=10)
    assert got.status_code == 200 and got.content == b"ok"
