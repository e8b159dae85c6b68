"""Prepared queries over DNS: `<query>.query.consul` A and SRV, asked with dig.

A dev server with a few instances and queries (a TTL, tags, a template, coordinates for the
`near=_agent` order Consul's DNS uses), then two datacenters joined over the WAN for a query
that fails over. Unknown queries are NXDOMAIN, as in Consul.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests
from cluster.wan_helpers import joined_datacenters
from devserver import DevServer, start_dev_server, wait_for, wait_node_registered

pytestmark = pytest.mark.integration
NODE = "devnode"


def dig(port: int, *args: str) -> str:
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=5", "+tries=1", *args],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def answers(port: int, name: str, qtype: str) -> list[list[str]]:
    """The answer section's records, each split in fields (name, ttl, class, type, data...)."""
    out = dig(port, name, qtype, "+noall", "+answer")
    return [line.split() for line in out.splitlines() if line.strip() and not line.startswith(";")]


def register(url: str, node: str, address: str, service: str, port: int, tags: list[str],
             status: str = "passing") -> None:
    requests.put(f"{url}/v1/catalog/register", json={
        "Node": node, "Address": address,
        "Service": {"ID": f"{service}-{node}", "Service": service, "Port": port, "Tags": tags},
        "Check": {"CheckID": f"chk-{node}", "Name": "c", "ServiceID": f"{service}-{node}", "Status": status},
    }, timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    srv = start_dev_server(tmp_path_factory.mktemp("dnsq"), node=NODE)
    url = srv.url
    wait_node_registered(srv)
    register(url, "n1", "127.0.0.11", "db", 5432, ["primary"])
    register(url, "n2", "127.0.0.12", "db", 5433, ["replica"])
    register(url, "n3", "127.0.0.13", "db", 5434, ["replica"])
    register(url, "n4", "127.0.0.14", "db", 5435, ["replica"], status="critical")
    for body in ({"Name": "replicas", "Service": {"Service": "db", "Tags": ["replica"]}, "DNS": {"TTL": "15s"}},
                 {"Name": "primary-db", "Service": {"Service": "db", "Tags": ["primary"]}},
                 {"Name": "role-", "Template": {"Type": "name_prefix_match"},
                  "Service": {"Service": "db", "Tags": ["${name.suffix}"]}}):
        requests.post(f"{url}/v1/query", json=body, timeout=10).raise_for_status()
    yield srv
    srv.stop()


def test_a_records_are_the_healthy_instances_with_the_querys_ttl(dev: DevServer) -> None:
    records = answers(dev.dns_port, "replicas.query.consul", "A")
    assert sorted(r[4] for r in records) == ["127.0.0.12", "127.0.0.13"]  # n4 is critical
    assert {r[1] for r in records} == {"15"} and {r[3] for r in records} == {"A"}


def test_srv_records_carry_the_port_and_the_node_target(dev: DevServer) -> None:
    [record] = answers(dev.dns_port, "primary-db.query.consul", "SRV")
    assert record[3] == "SRV"
    priority, weight, port, target = record[4:8]
    assert (priority, weight, port, target) == ("1", "1", "5432", "n1.node.dc1.consul.")
    additional = dig(dev.dns_port, "primary-db.query.consul", "SRV", "+noall", "+additional")
    assert "127.0.0.11" in additional


def test_a_template_and_a_query_id_answer_too(dev: DevServer) -> None:
    assert dig(dev.dns_port, "role-primary.query.consul", "+short").split() == ["127.0.0.11"]
    qid = next(q["ID"] for q in requests.get(f"{dev.url}/v1/query", timeout=5).json() if q["Name"] == "primary-db")
    assert dig(dev.dns_port, f"{qid}.query.consul", "+short").split() == ["127.0.0.11"]


def test_an_unknown_query_or_one_without_instances_is_nxdomain(dev: DevServer) -> None:
    assert "status: NXDOMAIN" in dig(dev.dns_port, "no-such-query.query.consul")
    assert "status: NXDOMAIN" in dig(dev.dns_port, "role-nobody.query.consul")


def test_answers_come_nearest_to_the_agent_first(dev: DevServer) -> None:
    for node, x_ms in ((NODE, 0.0), ("n2", 40.0), ("n3", 5.0)):
        requests.put(f"{dev.url}/v1/coordinate/update", json={"Node": node, "Coord": {
            "Vec": [x_ms / 1000] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5}},
            timeout=5).raise_for_status()
    wait_for(lambda: len(requests.get(f"{dev.url}/v1/coordinate/nodes", timeout=5).json()) >= 3,
             what="coordinates applied")
    for _ in range(5):  # never shuffled once sorted
        assert dig(dev.dns_port, "replicas.query.consul", "+short").split() == ["127.0.0.13", "127.0.0.12"]


def test_a_query_fails_over_to_another_datacenter(tmp_path_factory: pytest.TempPathFactory) -> None:
    with joined_datacenters(tmp_path_factory.mktemp("dnsqwan"), "dc1", "dc2") as dcs:
        register(dcs["dc2"].url, "far1", "127.0.0.21", "cache", 6379, [])
        requests.post(f"{dcs['dc1'].url}/v1/query", json={
            "Name": "cache", "Service": {"Service": "cache", "Failover": {"Datacenters": ["dc2"]}}},
            timeout=10).raise_for_status()
        [record] = answers(dcs["dc1"].dns_port, "cache.query.consul", "SRV")
        assert record[7] == "far1.node.dc2.consul."
        assert dig(dcs["dc1"].dns_port, "cache.query.consul", "+short").split() == ["127.0.0.21"]
        # asked of dc2 by name: dc2's own query table, which has no such query
        assert "status: NXDOMAIN" in dig(dcs["dc1"].dns_port, "cache.query.dc2.consul")
