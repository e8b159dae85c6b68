"""Client agents (-join): their services reach the catalog and DNS; silence turns serfHealth critical."""

from __future__ import annotations

import json
import signal

import pytest
import requests
from agent_procs import HTTPBackend, dig, passing_ids, start_client_agent
from devserver import start_dev_server, wait_for

pytestmark = pytest.mark.integration


def serf_status(url: str, node: str) -> str | None:
    for check in requests.get(f"{url}/v1/health/node/{node}", timeout=5).json():
        if check["CheckID"] == "serfHealth":
            return check["Status"]
    return None


@pytest.fixture
def cluster(tmp_path):
    backend = HTTPBackend()
    conf = tmp_path / "client-conf"
    conf.mkdir()
    (conf / "app.json").write_text(json.dumps({"service": {
        "name": "app", "port": backend.port, "check": {"http": backend.url, "interval": "1s"}}}))
    server = start_dev_server(tmp_path, node="server1")
    client = start_client_agent(tmp_path, server.addr, "-config-dir", str(conf), "-ae-interval", "1s",
                                node="client1")
    yield server, client, backend
    client.stop()
    server.stop()
    backend.stop()


def test_client_registers_its_node_and_services_through_the_server(cluster):
    server, client, backend = cluster
    wait_for(lambda: dig(server.dns_port, "app.service.consul") == ["127.0.0.1"], 30, "app in DNS", client.log)
    assert dig(server.dns_port, "app.service.consul", "SRV") == [f"1 1 {backend.port} client1.node.dc1.consul."]
    assert passing_ids(server.url, "app") == {"app"}
    assert serf_status(server.url, "client1") == "passing"
    # the client's own API: agent endpoints locally, everything else from the server
    assert requests.get(f"{client.url}/v1/agent/self").json()["Config"]["NodeName"] == "client1"
    assert requests.get(f"{client.url}/v1/agent/self").json()["Config"]["Server"] is False
    requests.put(f"{client.url}/v1/kv/from-client", data=b"hello").raise_for_status()
    assert requests.get(f"{server.url}/v1/kv/from-client?raw").content == b"hello"
    nodes = {n["Node"] for n in requests.get(f"{client.url}/v1/catalog/nodes").json()}
    assert nodes == {"server1", "client1"}
    r = requests.get(f"{client.url}/v1/health/service/app?passing")
    assert r.headers["X-Consul-Index"] and r.json()[0]["Node"]["Node"] == "client1"
    # the client's DNS port answers too (forwarded to the server)
    assert dig(client.dns_port, "app.service.consul") == ["127.0.0.1"]


def test_stopped_client_turns_serf_health_critical_and_leaves_dns(cluster):
    server, client, _ = cluster
    wait_for(lambda: dig(server.dns_port, "app.service.consul") == ["127.0.0.1"], 30, "app in DNS", client.log)
    session = requests.put(f"{server.url}/v1/session/create", json={"Node": "client1", "Name": "s"}).json()["ID"]
    assert requests.put(f"{server.url}/v1/kv/lock?acquire={session}", data=b"x").json() is True
    client.stop(signal.SIGKILL)
    # how fast the failure is detected is bench/'s business; that it is, is this test's
    wait_for(lambda: serf_status(server.url, "client1") == "critical", 60, "serfHealth critical", server.log)
    check = [c for c in requests.get(f"{server.url}/v1/health/node/client1").json() if c["CheckID"] == "serfHealth"]
    assert check[0]["Output"] == "Agent not live or unreachable"
    assert dig(server.dns_port, "app.service.consul") == []
    assert passing_ids(server.url, "app") == set()
    assert requests.get(f"{server.url}/v1/session/info/{session}").json() == []
    assert "Session" not in requests.get(f"{server.url}/v1/kv/lock").json()[0]


def test_restarted_client_is_alive_again(cluster, tmp_path):
    server, client, _ = cluster
    wait_for(lambda: serf_status(server.url, "client1") == "passing", 30, "client alive")
    client.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: serf_status(server.url, "client1") == "critical", 15, "serfHealth critical")
    finally:
        client.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: serf_status(server.url, "client1") == "passing", 15, "serfHealth passing again")
    wait_for(lambda: dig(server.dns_port, "app.service.consul") == ["127.0.0.1"], 15, "app back in DNS")


def test_anti_entropy_repairs_catalog_drift(cluster):
    server, client, _ = cluster
    wait_for(lambda: passing_ids(server.url, "app") == {"app"}, 30, "app passing", client.log)
    requests.put(f"{server.url}/v1/catalog/deregister", json={"Node": "client1", "ServiceID": "app"}).raise_for_status()
    assert requests.get(f"{server.url}/v1/catalog/service/app").json() == []
    wait_for(lambda: passing_ids(server.url, "app") == {"app"}, 15, "app restored by anti-entropy", client.log)
    # a service the agent does not own is removed from its node
    requests.put(f"{server.url}/v1/catalog/register", json={
        "Node": "client1", "Address": "127.0.0.1", "Service": {"Service": "intruder", "Port": 1}}).raise_for_status()
    wait_for(lambda: requests.get(f"{server.url}/v1/catalog/service/intruder").json() == [], 15, "intruder removed")


def test_services_registered_on_the_client_api_reach_the_catalog(cluster):
    server, client, _ = cluster
    requests.put(f"{client.url}/v1/agent/service/register",
                 json={"Name": "side", "Port": 4242, "Check": {"TTL": "30s", "Status": "passing"}}).raise_for_status()
    wait_for(lambda: dig(server.dns_port, "side.service.consul", "SRV") == ["1 1 4242 client1.node.dc1.consul."],
             15, "side in DNS")
    requests.put(f"{client.url}/v1/agent/maintenance?enable=true&reason=patching").raise_for_status()
    wait_for(lambda: dig(server.dns_port, "side.service.consul") == [], 10, "node maintenance hides services")
    requests.put(f"{client.url}/v1/agent/maintenance?enable=false").raise_for_status()
    wait_for(lambda: dig(server.dns_port, "side.service.consul") == ["127.0.0.1"], 10, "back after maintenance")
    requests.put(f"{client.url}/v1/agent/service/deregister/side").raise_for_status()
    assert requests.get(f"{server.url}/v1/catalog/service/side").json() == []


def test_members_lists_client_agents_alive_then_failed(cluster):
    server, client, _ = cluster

    def member(name: str) -> dict | None:
        return next((m for m in requests.get(f"{server.url}/v1/agent/members").json() if m["Name"] == name), None)

    wait_for(lambda: (member("client1") or {}).get("Status") == 1, 30, "client1 alive in members")
    assert member("client1")["Tags"]["role"] == "node"
    assert member(server.node)["Tags"]["role"] == "consul"
    client.stop(signal.SIGKILL)
    wait_for(lambda: member("client1")["Status"] == 4, 15, "client1 failed in members")


def test_a_client_agent_answers_cached_reads_from_its_own_cache(cluster):
    """?cached on a client agent: MISS, then HIT from the client's cache, refreshed as the server's catalog changes."""
    server, client, _ = cluster
    path = f"{client.url}/v1/catalog/service/cached-svc"
    first = requests.get(path, params={"cached": ""}, timeout=30)
    assert first.status_code == 200 and first.headers["X-Cache"] == "MISS" and first.json() == []
    assert requests.get(path, params={"cached": ""}, timeout=30).headers["X-Cache"] == "HIT"
    r = requests.put(f"{server.url}/v1/catalog/register", timeout=10, json={
        "Node": "cached-n", "Address": "127.0.0.2", "Service": {"Service": "cached-svc", "Port": 80}})
    assert r.status_code == 200

    def refreshed() -> bool:
        hit = requests.get(path, params={"cached": ""}, timeout=30)
        return hit.headers["X-Cache"] == "HIT" and [i["Node"] for i in hit.json()] == ["cached-n"]

    wait_for(refreshed, timeout=60, what="the client's cached answer to show the new instance")
