"""Leadership in the metrics of a real 3-server cluster: killing the leader shows on a survivor."""

from __future__ import annotations

import importlib.util
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from metrics_support import scrape, value

pytestmark = pytest.mark.integration

# The cluster helpers live in tests/cluster/conftest.py (only visible below tests/cluster): load by path.
_spec = importlib.util.spec_from_file_location(
    "metrics_cluster_support", Path(__file__).resolve().parents[1] / "cluster" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_support = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _support
_spec.loader.exec_module(_support)
Cluster, wait_for = _support.Cluster, _support.wait_for


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, 3)
    c.start()
    yield c
    c.stop()


def test_killing_the_leader_shows_in_the_leader_metrics(cluster) -> None:
    leader = cluster.leader()
    text = scrape(leader.url)
    assert value(text, "consul_server_isLeader") == 1
    assert (value(text, "consul_raft_state_leader") or 0) >= 1
    assert value(text, "consul_raft_peers") == 3
    for follower in cluster.followers():
        assert value(scrape(follower.url), "consul_server_isLeader") == 0
    leader.signal(signal.SIGKILL)
    survivors = [s for s in cluster.servers if s is not leader]

    def new_leader():
        for s in survivors:
            t = scrape(s.url)
            if value(t, "consul_server_isLeader") == 1 and (value(t, "consul_raft_state_leader") or 0) >= 1:
                return s
        return None

    elected = wait_for(new_leader, 60, "a survivor reporting itself leader in its metrics")
    stats = elected.get("/v1/agent/self").json()["Stats"]
    assert stats["raft"]["state"] == "Leader" and stats["consul"]["leader"] == "true"
    other = next(s for s in survivors if s is not elected)
    wait_for(lambda: value(scrape(other.url), "consul_raft_known_leader") == 1, 60, "the follower knowing it")
