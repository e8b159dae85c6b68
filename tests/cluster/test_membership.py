"""Membership changes on a running cluster (Consul's `-retry-join`, `operator raft`, autopilot).

Real processes: servers join a running 3-server cluster and become voters; a SIGKILLed server is
replaced by a new one with a fresh data dir while clients write; autopilot removes a dead server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import Cluster, Server, wait_for
from .fault_scenario import Workload, check

pytestmark = pytest.mark.integration

CLI = "import sys; from meshctl.cli import main; sys.exit(main(sys.argv[1:]))"


def meshctl(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """The meshctl CLI against `server` (its address in CONSUL_HTTP_ADDR, as users set it)."""
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CONSUL_HTTP_ADDR": server.url},
                          cwd=str(Path(__file__).resolve().parents[2]))


def list_peers(server: Server) -> list[list[str]]:
    """`meshctl operator raft list-peers`: its rows (header dropped), each split in columns."""
    out = meshctl(server, "operator", "raft", "list-peers")
    assert out.returncode == 0, out.stderr
    return [line.split() for line in out.stdout.splitlines()[1:]]


def voters(server: Server) -> list[str]:
    conf = server.get("/v1/operator/raft/configuration?stale", timeout=5).json()
    return sorted(s["Address"] for s in conf["Servers"] if s["Voter"])


def add_server(cluster: Cluster, root: Path, name: str, extra: list[str] | None = None) -> Server:
    """A new server (fresh data dir) started with -retry-join to the cluster's servers, no -bootstrap-expect."""
    s = Server(name, root / name, root / f"{name}.log", extra=list(extra or cluster.servers[0].extra))
    s.join = [f"127.0.0.1:{o.serf_port}" for o in cluster.servers if o.alive]
    cluster.servers.append(s)
    s.start(0)
    return s


@contextmanager
def checked_load(cluster: Cluster) -> Iterator[Workload]:
    """fault_scenario's CAS and PUT workload through every live server while the body runs; then
    no acknowledged write may be missing, doubled or overwritten on any server."""
    work = Workload(cluster)
    work.start()
    try:
        work.progress()
        yield work
    finally:
        work.finish()
    report = check(cluster, work)
    assert report.acked > 0
    assert report.ok, report


def all_agree(cluster: Cluster, expected: list[str]) -> bool:
    return all(voters(s) == expected for s in cluster.servers if s.alive)


def test_servers_join_leave_and_are_forced_out_3_to_5_to_3(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 3)
    c.start()
    try:
        leader = c.leader()
        assert leader.put("/v1/kv/before", b"written before the join").json() is True
        for name in ("s4", "s5"):
            new = add_server(c, tmp_path, name)
            expected = sorted(s.raft_address for s in c.servers)
            wait_for(lambda e=expected: all_agree(c, e), 90, f"{name} to be a voter everywhere", interval=0.5)
            # caught up: it has what was written before it joined
            wait_for(lambda s=new: s.get("/v1/kv/before?raw&stale").content == b"written before the join", 60,
                     f"{name} to catch up")
        rows = list_peers(c.servers[0])
        assert sorted(r[0] for r in rows) == ["s1", "s2", "s3", "s4", "s5"]
        assert sorted(r[3] for r in rows) == ["follower"] * 4 + ["leader"]
        assert all(r[4] == "true" for r in rows)
        leader = c.wait_ready(60)
        assert leader.put("/v1/kv/after", b"five").json() is True
        # a joined server restarts from its peers.json, as the others do
        s5 = c.servers[4]
        s5.signal(signal.SIGTERM)
        s5.start(0)
        c.wait_ready(60)
        wait_for(lambda: s5.get("/v1/kv/after?raw&stale").content == b"five", 60, "s5 back with its data")
        assert voters(s5) == sorted(s.raft_address for s in c.servers)
        wait_for(lambda: "s5" in c.servers[0].get("/v1/catalog/nodes").text, 30, "s5 in the catalog")

        # members -detailed: Consul's tags
        out = meshctl(c.servers[0], "members", "-detailed")
        assert out.returncode == 0, out.stderr
        row = next(line.split() for line in out.stdout.splitlines() if line.startswith("s5 "))
        assert row[2] == "alive"
        tags = dict(t.split("=", 1) for t in row[3].split(","))
        assert tags["role"] == "consul" and tags["dc"] == "dc1" and tags["port"] == str(s5.server_port)
        assert "build" in tags and tags["id"]

        # 5 -> 3: s5 leaves gracefully (it shuts down, shows `left`, leaves the catalog) ...
        out = meshctl(s5, "leave")
        assert out.returncode == 0 and "Graceful leave complete" in out.stdout, out.stderr
        assert s5.proc is not None
        s5.proc.wait(30)
        c.servers.remove(s5)
        four = sorted(s.raft_address for s in c.servers)
        wait_for(lambda: all_agree(c, four), 60, "s5 out of the Raft configuration")

        def status_of(name: str) -> str | None:
            out = meshctl(c.servers[0], "members")
            row = next((line.split() for line in out.stdout.splitlines() if line.startswith(name + " ")), None)
            return row[2] if row else None

        assert status_of("s5") == "left"
        wait_for(lambda: "s5" not in c.servers[0].get("/v1/catalog/nodes").text, 30, "s5 out of the catalog")
        # ... and s4 dies; `force-leave` removes it (autopilot would too, later)
        s4 = c.servers[3]
        s4.signal(signal.SIGKILL)
        c.servers.remove(s4)
        wait_for(lambda: status_of("s4") == "failed", 30, "s4 seen failed")
        out = meshctl(c.servers[0], "force-leave", "s4")
        assert out.returncode == 0, out.stderr
        three = sorted(s.raft_address for s in c.servers)
        wait_for(lambda: all_agree(c, three), 60, "s4 out of the Raft configuration")
        assert status_of("s4") == "left"
        assert meshctl(c.servers[0], "force-leave", "nobody").returncode == 1
        assert sorted(r[0] for r in list_peers(c.servers[1])) == ["s1", "s2", "s3"]
        leader = c.wait_ready(60)
        assert leader.put("/v1/kv/three", b"again").json() is True
        # `join` with a server of this cluster
        out = meshctl(c.servers[0], "join", f"127.0.0.1:{c.servers[1].serf_port}")
        assert out.returncode == 0 and "Successfully joined cluster by contacting 1 nodes." in out.stdout
    finally:
        c.stop()


def test_a_killed_server_is_replaced_under_write_load_and_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 3, extra=["-sync-writes", "-raft-snapshot-threshold", "300"])
    c.start()
    try:
        with checked_load(c) as work:
            _replace_two_servers(c, tmp_path, work)
        assert sorted(r[2] for r in list_peers(c.servers[-1])) == sorted(s.raft_address for s in c.servers)
    finally:
        c.stop()


def _replace_two_servers(c: Cluster, tmp_path: Path, work: Workload) -> None:
    """A killed leader replaced by a new server, then a server on a new disk at its old address."""
    # the leader dies for good; the operator removes it and starts a new server elsewhere
    dead = c.leader()
    dead.signal(signal.SIGKILL)
    c.servers.remove(dead)
    c.wait_ready(60)
    work.progress()
    out = meshctl(c.servers[0], "operator", "raft", "remove-peer", f"-address={dead.raft_address}")
    assert out.returncode == 0, out.stderr
    assert f"Removed peer with address {dead.raft_address!r}" in out.stdout
    add_server(c, tmp_path, "s4")
    expected = sorted(s.raft_address for s in c.servers)
    wait_for(lambda: all_agree(c, expected), 90, "s4 to be a voter everywhere", interval=0.5)
    work.progress()
    # a server replaced at the same address, with a fresh data dir (a new disk): a new node ID
    old = c.servers[1]
    old.signal(signal.SIGKILL)
    c.wait_ready(60)
    work.progress()
    for path in sorted(old.data_dir.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    old.join = [f"127.0.0.1:{o.serf_port}" for o in c.servers if o.alive]
    old.start(0)
    wait_for(lambda: "joined the cluster" in old.log(), 90, f"{old.name} to join again", interval=0.5)
    wait_for(lambda: all_agree(c, expected), 90, "the same voters everywhere", interval=0.5)
    work.progress()


def test_autopilot_removes_a_dead_server_by_itself(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 3)
    c.start()
    try:
        leader = c.leader()
        config = leader.get("/v1/operator/autopilot/configuration").json()
        assert config["CleanupDeadServers"] is False and config["ServerStabilizationTime"] == "10s"
        out = meshctl(leader, "operator", "autopilot", "set-config", "-cleanup-dead-servers=true",
                      "-server-stabilization-time=3s")
        assert out.returncode == 0 and "Configuration updated!" in out.stdout, out.stderr
        out = meshctl(c.servers[0], "operator", "autopilot", "get-config")
        assert "ServerStabilizationTime = 3s" in out.stdout and "CleanupDeadServers = true" in out.stdout
        wait_for(lambda: leader.get("/v1/operator/autopilot/health").status_code == 200, 30, "a healthy cluster")
        victim = c.followers()[0]
        victim.signal(signal.SIGKILL)
        rest = [s for s in c.servers if s is not victim]
        # while it is dead and not yet removed: the health endpoint says so (429, its serf status failed)
        def victim_failed() -> dict[str, object] | None:
            r = c.leader().get("/v1/operator/autopilot/health")
            entry = [s for s in r.json()["Servers"] if s["Address"] == victim.raft_address]
            return entry[0] if r.status_code == 429 and entry and entry[0]["SerfStatus"] == "failed" else None

        failed = wait_for(victim_failed, 30, "an unhealthy report naming the dead server")
        assert failed["Healthy"] is False
        expected = sorted(s.raft_address for s in rest)
        wait_for(lambda: all(voters(s) == expected for s in rest), 60, "autopilot to remove the dead server",
                 interval=0.5)
        assert "autopilot: removing dead server" in "".join(s.log() for s in rest)
        state = meshctl(rest[0], "operator", "autopilot", "state")
        assert state.returncode == 0, state.stderr
        assert "Healthy:" in state.stdout and victim.raft_address not in state.stdout
        leader = c.wait_ready(60)
        assert leader.put("/v1/kv/after", b"two").json() is True
    finally:
        c.stop()


def test_a_rolling_restart_of_five_servers_loses_no_acknowledged_write(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 5, extra=["-sync-writes", "-raft-snapshot-threshold", "300"])
    c.start()
    try:
        with checked_load(c) as work:
            expected = sorted(s.raft_address for s in c.servers)
            for s in list(c.servers):  # one at a time, as an operator upgrades them
                s.signal(signal.SIGTERM)
                c.wait_ready(60)
                work.progress()
                s.start(5)
                wait_for(lambda s=s: s.get("/v1/status/leader?stale", timeout=2).json() != "", 60,
                         f"{s.name} back with a leader")
                wait_for(lambda: all_agree(c, expected), 60, "every server to see the five voters", interval=0.5)
                work.progress()
    finally:
        c.stop()


def test_the_leader_leaves_gracefully(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 3)
    c.start()
    try:
        leader = c.leader()
        out = meshctl(leader, "leave")
        assert out.returncode == 0 and "Graceful leave complete" in out.stdout, out.stderr
        assert leader.proc is not None
        leader.proc.wait(30)
        c.servers.remove(leader)
        expected = sorted(s.raft_address for s in c.servers)
        wait_for(lambda: all_agree(c, expected), 60, "the old leader out of the Raft configuration")
        new = c.wait_ready(60)
        assert new.put("/v1/kv/after", b"left").json() is True
        members = {m["Name"]: m["Status"] for m in new.get("/v1/agent/members").json()}
        assert members[leader.name] == 3  # left, not failed
    finally:
        c.stop()
