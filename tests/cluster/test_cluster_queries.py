"""Prepared queries and coordinates on a 3-server cluster: replicated writes, reads and snapshots on every server."""

from __future__ import annotations

import pytest
import requests

from .conftest import Cluster, wait_for

pytestmark = pytest.mark.integration


def _register(url: str, node: str, address: str) -> None:
    requests.put(f"{url}/v1/catalog/register", json={
        "Node": node, "Address": address, "Service": {"ID": f"pqc-{node}", "Service": "pqc", "Port": 80},
        "Check": {"CheckID": f"pqc-{node}", "Name": "c", "ServiceID": f"pqc-{node}", "Status": "passing"}},
        timeout=10).raise_for_status()


def test_a_query_written_on_a_follower_executes_on_every_server(shared_cluster: Cluster) -> None:
    follower = shared_cluster.followers()[0]
    _register(follower.url, "pqc-a", "127.0.0.31")
    _register(follower.url, "pqc-b", "127.0.0.32")
    r = requests.post(f"{follower.url}/v1/query", json={"Name": "pqc-all", "Service": {"Service": "pqc"}}, timeout=10)
    assert r.status_code == 200, r.text
    qid = r.json()["ID"]
    for s in shared_cluster.servers:
        wait_for(lambda s=s: s.get(f"/v1/query/{qid}?stale").status_code == 200, 10, "the query replicated")
        answer = s.get("/v1/query/pqc-all/execute").json()
        assert sorted(e["Node"]["Node"] for e in answer["Nodes"]) == ["pqc-a", "pqc-b"]


def test_coordinates_and_queries_survive_a_snapshot_restore(shared_cluster: Cluster) -> None:
    leader = shared_cluster.leader()
    _register(leader.url, "pqc-c", "127.0.0.33")
    leader.put("/v1/coordinate/update", json={"Node": "pqc-c", "Coord": {
        "Vec": [0.004] + [0.0] * 7, "Error": 0.3, "Adjustment": 0.0, "Height": 1e-5}}).raise_for_status()
    r = requests.post(f"{leader.url}/v1/query", json={"Name": "pqc-snap", "Service": {"Service": "pqc"}}, timeout=10)
    qid = r.json()["ID"]
    wait_for(lambda: leader.get("/v1/coordinate/node/pqc-c").status_code == 200, 15, "the coordinate batch")
    snapshot = leader.get("/v1/snapshot")
    assert snapshot.status_code == 200
    requests.delete(f"{leader.url}/v1/query/{qid}", timeout=10).raise_for_status()
    assert leader.put("/v1/snapshot", snapshot.content).status_code == 200
    for s in shared_cluster.servers:
        wait_for(lambda s=s: s.get(f"/v1/query/{qid}?stale").status_code == 200, 15, "the query restored")
        [entry] = s.get("/v1/coordinate/node/pqc-c?stale").json()
        assert entry["Coord"]["Vec"][0] == pytest.approx(0.004)
