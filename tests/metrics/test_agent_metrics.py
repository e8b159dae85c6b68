"""/v1/agent/metrics on a dev store: Consul's JSON shape and names, Prometheus text, agent/self Stats."""

from __future__ import annotations

import re
import socket
import threading

import pytest
import requests
from devserver import wait_for
from dnslib import DNSRecord
from metrics_support import scrape, value

pytestmark = pytest.mark.integration


def _dns(server, name: str, qtype: str) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(query.pack(), ("127.0.0.1", server.dns_port))
        return DNSRecord.parse(s.recv(4096))


def test_json_has_consuls_shape_and_names(shared_dev_server) -> None:
    url = shared_dev_server.url
    for i in range(3):
        assert requests.put(f"{url}/v1/kv/json-shape/k{i}", data=b"v", timeout=5).status_code == 200
    body = requests.get(f"{url}/v1/agent/metrics", timeout=5).json()
    assert set(body) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC", body["Timestamp"])
    assert body["Points"] == []
    gauges = {(g["Name"], tuple(sorted(g["Labels"].items()))): g["Value"] for g in body["Gauges"]}
    assert all(set(g) == {"Name", "Value", "Labels"} for g in body["Gauges"])
    assert gauges[("consul.state.kv_entries", ())] >= 3
    assert gauges[("consul.server.isLeader", ())] == 1
    assert gauges[("consul.state.nodes", ())] >= 1
    assert gauges[("consul.state.checks", (("status", "passing"),))] >= 1  # the node's serfHealth
    for entry in body["Counters"] + body["Samples"]:
        assert set(entry) == {"Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"}


def test_prometheus_counts_requests_by_route_method_and_status(shared_dev_server) -> None:
    url = shared_dev_server.url
    before = scrape(url)
    get_ok = value(before, "consul_api_http_count", method="GET", path="v1.kv._", code="200") or 0
    get_missing = value(before, "consul_api_http_count", method="GET", path="v1.kv._", code="404") or 0
    applies = value(before, "consul_raft_apply") or 0
    requests.put(f"{url}/v1/kv/prom/present", data=b"v", timeout=5)
    for _ in range(5):
        assert requests.get(f"{url}/v1/kv/prom/present", timeout=5).status_code == 200
    for _ in range(2):
        assert requests.get(f"{url}/v1/kv/prom/absent", timeout=5).status_code == 404
    r = requests.get(f"{url}/v1/agent/metrics", params={"format": "prometheus"}, timeout=5)
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = r.text
    assert value(after, "consul_api_http_count", method="GET", path="v1.kv._", code="200") == get_ok + 5
    assert value(after, "consul_api_http_count", method="GET", path="v1.kv._", code="404") == get_missing + 2
    assert "# TYPE consul_api_http histogram" in after
    assert value(after, "consul_api_http_bucket", method="GET", path="v1.kv._", code="200", le="+Inf") \
        == get_ok + 5
    assert (value(after, "consul_raft_apply") or 0) >= applies + 1
    assert (value(after, "consul_raft_commitTime_count") or 0) >= 1
    assert value(after, "consul_raft_state_leader") == 1  # a dev store leads once, from its start
    for gauge in ("consul_state_kv_entries", "consul_state_services", "consul_state_service_instances",
                  "consul_state_sessions", "consul_raft_applied_index", "consul_raft_last_index",
                  "consul_raft_leader_lastContact", "consul_runtime_num_goroutines", "consul_server_isLeader"):
        assert value(after, gauge) is not None, gauge


def test_parked_blocking_queries_are_counted(shared_dev_server) -> None:
    url = shared_dev_server.url
    r = requests.put(f"{url}/v1/kv/parked/key", data=b"1", timeout=5)
    index = requests.get(f"{url}/v1/kv/parked/key", timeout=5).headers["X-Consul-Index"]
    base = value(scrape(url), "consul_rpc_queries_blocking") or 0
    done = threading.Event()

    def block() -> None:
        requests.get(f"{url}/v1/kv/parked/key", params={"index": index, "wait": "30s"}, timeout=40)
        done.set()

    threading.Thread(target=block, daemon=True).start()
    wait_for(lambda: value(scrape(url), "consul_rpc_queries_blocking") == base + 1, 20, "the query parked")
    assert r.status_code == 200
    requests.put(f"{url}/v1/kv/parked/key", data=b"2", timeout=5)
    assert done.wait(20)
    wait_for(lambda: value(scrape(url), "consul_rpc_queries_blocking") == base, 20, "the query answered")


def test_dns_queries_by_type_and_rcode(shared_dev_server) -> None:
    url = shared_dev_server.url
    before = scrape(url)
    srv = value(before, "consul_dns_domain_query_count", type="SRV", rcode="NOERROR") or 0
    nx = value(before, "consul_dns_domain_query_count", type="A", rcode="NXDOMAIN") or 0
    assert _dns(shared_dev_server, "consul.service.consul", "SRV").header.rcode == 0
    assert _dns(shared_dev_server, "nothing-here.service.consul", "A").header.rcode == 3
    after = scrape(url)
    assert value(after, "consul_dns_domain_query_count", type="SRV", rcode="NOERROR") == srv + 1
    assert value(after, "consul_dns_domain_query_count", type="A", rcode="NXDOMAIN") == nx + 1


def test_checks_by_state(shared_dev_server) -> None:
    url = shared_dev_server.url
    before = value(scrape(url), "consul_state_checks", status="critical") or 0
    r = requests.put(f"{url}/v1/agent/check/register", json={"ID": "metrics-ttl", "Name": "metrics-ttl",
                                                               "TTL": "30s"}, timeout=5)
    assert r.status_code == 200
    try:
        wait_for(lambda: value(scrape(url), "consul_state_checks", status="critical") == before + 1, 20,
                 "the new (critical) check counted")
        requests.put(f"{url}/v1/agent/check/pass/metrics-ttl", timeout=5)
        wait_for(lambda: value(scrape(url), "consul_state_checks", status="critical") == before, 20,
                 "the check passing")
    finally:
        requests.put(f"{url}/v1/agent/check/deregister/metrics-ttl", timeout=5)


def test_agent_self_stats_are_consuls_strings(shared_dev_server) -> None:
    import consul  # py-consul, as dashboards and scripts read it

    c = consul.Consul(host="127.0.0.1", port=shared_dev_server.http_port)
    stats = c.agent.self()["Stats"]
    assert {"agent", "build", "consul", "raft", "runtime", "serf_lan"} <= set(stats)  # Consul's `info` sections
    assert stats["serf_lan"]["members"] == "1" and stats["serf_lan"]["failed"] == "0"
    for section in stats.values():
        assert all(isinstance(v, str) for v in section.values())
    assert stats["consul"]["leader"] == "true" and stats["consul"]["server"] == "true"
    assert stats["consul"]["leader_addr"] and stats["consul"]["known_datacenters"] == "1"
    assert stats["raft"]["state"] == "Leader"
    assert int(stats["raft"]["last_log_index"]) >= int(stats["raft"]["applied_index"]) >= 1
    assert int(stats["raft"]["commit_index"]) >= 1 and stats["raft"]["num_peers"] == "0"
    runtime = stats["runtime"]
    assert int(runtime["goroutines"]) >= 1 and runtime["os"] == "linux" and runtime["arch"] and runtime["version"]
