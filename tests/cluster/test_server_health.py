"""A dead server's serfHealth turns critical (its sessions go with it) and recovers on restart."""

from __future__ import annotations

import signal

import pytest

from .conftest import Cluster, wait_for

pytestmark = pytest.mark.integration


def serf_status(cluster: Cluster, node: str) -> str | None:
    leader = cluster.leader()
    checks = leader.get(f"/v1/health/node/{node}").json()
    return next((c["Status"] for c in checks if c["CheckID"] == "serfHealth"), None)


def test_a_killed_follower_turns_critical_and_loses_its_sessions(cluster: Cluster) -> None:
    follower = cluster.followers()[0]
    wait_for(lambda: serf_status(cluster, follower.name) == "passing", 30, "follower registered")
    sid = follower.put("/v1/session/create", json={"LockDelay": "0s"}).json()["ID"]
    assert follower.put(f"/v1/kv/held?acquire={sid}", data=b"x").json() is True
    follower.signal(signal.SIGKILL)
    wait_for(lambda: serf_status(cluster, follower.name) == "critical", 20, "serfHealth critical")
    leader = cluster.leader()
    assert leader.get(f"/v1/session/info/{sid}").json() == []
    assert "Session" not in leader.get("/v1/kv/held").json()[0]
    follower.start(expect=3)
    wait_for(lambda: serf_status(cluster, follower.name) == "passing", 30, "serfHealth passing again")
