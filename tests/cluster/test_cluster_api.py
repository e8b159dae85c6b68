"""A 3-server cluster seen through its API: leader, peers, consistency modes, members, operator, snapshots."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from .conftest import Cluster, wait_for

pytestmark = pytest.mark.integration


def test_every_server_knows_the_leader_and_the_peers(shared_cluster: Cluster) -> None:
    leader = shared_cluster.leader()
    peers = sorted(s.raft_address for s in shared_cluster.servers)
    for s in shared_cluster.servers:
        r = s.get("/v1/status/leader")
        assert r.json() == leader.raft_address
        assert s.get("/v1/status/peers").json() == peers


def test_a_write_on_a_follower_is_read_on_every_server(shared_cluster: Cluster) -> None:
    follower = shared_cluster.followers()[0]
    assert follower.put("/v1/kv/api/from-follower", b"hello").json() is True
    assert follower.get("/v1/kv/api/from-follower?raw").content == b"hello"  # read-your-writes
    for s in shared_cluster.servers:
        wait_for(lambda s=s: s.get("/v1/kv/api/from-follower?raw&stale").content == b"hello", 10, "replication")
        assert s.get("/v1/kv/api/from-follower?raw").content == b"hello"


def test_consistency_headers(shared_cluster: Cluster) -> None:
    shared_cluster.leader().put("/v1/kv/api/h", b"1")
    for s in shared_cluster.servers:
        for query, mode in (("", "leader"), ("?stale", "stale"), ("?consistent", "consistent")):
            r = s.get("/v1/kv/api/h" + query)
            assert r.status_code == 200
            assert r.headers["X-Consul-KnownLeader"] == "true"
            assert r.headers["X-Consul-Effective-Consistency"] == mode
            assert int(r.headers["X-Consul-LastContact"]) >= 0
            assert int(r.headers["X-Consul-Index"]) > 1


def test_cas_conflicts_are_decided_once_for_the_cluster(shared_cluster: Cluster) -> None:
    a, b, c = shared_cluster.servers
    a.put("/v1/kv/api/cas", b"0")
    index = a.get("/v1/kv/api/cas").json()[0]["ModifyIndex"]
    answers = [s.put(f"/v1/kv/api/cas?cas={index}", s.name.encode()).json() for s in (b, c, a)]
    assert answers == [True, False, False]


def test_members_lists_every_server_as_alive(shared_cluster: Cluster) -> None:
    for s in shared_cluster.servers:
        members = s.get("/v1/agent/members").json()
        assert sorted(m["Name"] for m in members) == ["s1", "s2", "s3"]
        assert all(m["Status"] == 1 and m["Tags"]["role"] == "consul" for m in members)
    nodes = wait_for(lambda: len(shared_cluster.leader().get("/v1/catalog/nodes").json()) == 3 and
                     shared_cluster.leader().get("/v1/catalog/service/consul").json(), 10, "catalog registration")
    assert sorted(n["Node"] for n in nodes) == ["s1", "s2", "s3"]


def test_raft_configuration(shared_cluster: Cluster) -> None:
    leader = shared_cluster.leader()
    conf = shared_cluster.followers()[0].get("/v1/operator/raft/configuration").json()
    assert sorted(s["Node"] for s in conf["Servers"]) == ["s1", "s2", "s3"]
    assert [s["Address"] for s in conf["Servers"] if s["Leader"]] == [leader.raft_address]
    assert all(s["Voter"] for s in conf["Servers"])


def test_cli_list_peers_and_members(shared_cluster: Cluster) -> None:
    s = shared_cluster.servers[1]
    run = [sys.executable, "-c", "import sys; from meshctl.commands.operator import main; sys.exit(main(sys.argv[1:]))",
           "raft", "list-peers", "-http-addr", s.url]
    out = subprocess.run(run, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]
    assert sorted(line.split()[3] for line in lines[1:]) == ["follower", "follower", "leader"]


def test_snapshot_save_and_restore(shared_cluster: Cluster, tmp_path) -> None:
    follower = shared_cluster.followers()[0]
    follower.put("/v1/kv/snap/a", b"before")
    r = follower.get("/v1/snapshot")
    assert r.status_code == 200 and r.content[:2] == b"\x1f\x8b"  # gzip
    follower.put("/v1/kv/snap/a", b"after")
    follower.put("/v1/kv/snap/b", b"new")
    assert follower.put("/v1/snapshot", r.content).status_code == 200
    for s in shared_cluster.servers:
        wait_for(lambda s=s: s.get("/v1/kv/snap/a?raw&stale").content == b"before", 10, "restore everywhere")
        assert s.get("/v1/kv/snap/b?stale").status_code == 404
    assert follower.put("/v1/snapshot", b"not a snapshot").status_code == 500


def test_transfer_leadership(shared_cluster: Cluster) -> None:
    old = shared_cluster.leader()
    target = shared_cluster.followers()[0]
    r = requests.post(f"{target.url}/v1/operator/raft/transfer-leader?address={target.raft_address}", timeout=10)
    assert r.status_code == 200 and r.json() == {"Success": True}, r.text
    new = wait_for(lambda: (lambda ld: ld if ld is not old else None)(shared_cluster.leader()), 15, "a new leader")
    assert new is target
