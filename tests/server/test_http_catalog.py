"""Catalog, health, agent, session, event and status endpoints against a real dev server."""

from __future__ import annotations

import threading
import time

import pytest
import requests

pytestmark = pytest.mark.integration


@pytest.fixture
def url(dev_server) -> str:
    return dev_server.url


def register(url: str, node: str, service: dict | None = None, checks: list | None = None,
             address: str = "127.0.0.2", **extra) -> None:
    body = {"Node": node, "Address": address, **extra}
    if service:
        body["Service"] = service
    if checks:
        body["Checks"] = checks
    r = requests.put(f"{url}/v1/catalog/register", json=body)
    assert r.status_code == 200 and r.json() is True, r.text


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_dev_agent_registers_itself_with_serf_health_and_the_consul_service(dev_server):
    url = dev_server.url
    nodes = requests.get(f"{url}/v1/catalog/nodes").json()
    assert [n["Node"] for n in nodes] == [dev_server.node]
    assert "consul" in requests.get(f"{url}/v1/catalog/services").json()
    checks = requests.get(f"{url}/v1/health/node/{dev_server.node}").json()
    assert [(c["CheckID"], c["Status"]) for c in checks] == [("serfHealth", "passing")]
    self_ = requests.get(f"{url}/v1/agent/self").json()
    assert self_["Config"]["NodeName"] == dev_server.node and self_["Config"]["Datacenter"] == "dc1"
    # the shortest session TTL, where Patroni looks for it (nanoseconds) and in Consul's runtime-config form
    assert self_["Config"]["SessionTTLMin"] == 10 * 10**9 and self_["DebugConfig"]["SessionTTLMin"] == "10s"
    assert self_["DebugConfig"]["NodeName"] == dev_server.node and self_["Config"]["Server"] is True


def test_catalog_service_shape_tags_and_case_insensitive_tag_filter(url):
    register(url, "web-1", {"ID": "web1", "Service": "web", "Tags": ["Primary", "v1"], "Port": 8080,
                            "Meta": {"version": "1"}}, NodeMeta={"rack": "r1"})
    register(url, "web-2", {"ID": "web2", "Service": "web", "Tags": ["v1"], "Port": 8081})
    items = requests.get(f"{url}/v1/catalog/service/web").json()
    assert [i["ServiceID"] for i in items] == ["web1", "web2"]
    first = items[0]
    for field in ("ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta", "ServiceKind",
                  "ServiceID", "ServiceName", "ServiceTags", "ServiceAddress", "ServiceWeights", "ServiceMeta",
                  "ServicePort", "ServiceEnableTagOverride", "CreateIndex", "ModifyIndex"):
        assert field in first
    assert first["NodeMeta"] == {"rack": "r1"} and first["ServiceWeights"] == {"Passing": 1, "Warning": 1}
    assert [i["ServiceID"] for i in requests.get(f"{url}/v1/catalog/service/web?tag=primary").json()] == ["web1"]
    assert [i["ServiceID"] for i in
            requests.get(f"{url}/v1/catalog/service/web?tag=v1&tag=primary").json()] == ["web1"]
    assert requests.get(f"{url}/v1/catalog/service/nope").json() == []
    assert requests.get(f"{url}/v1/catalog/services").json()["web"] == ["Primary", "v1"]
    assert [n["Node"] for n in requests.get(f"{url}/v1/catalog/nodes?node-meta=rack:r1").json()] == ["web-1"]


def test_filter_expressions(url):
    register(url, "f1", {"ID": "a", "Service": "api", "Port": 1, "Meta": {"version": "2"}})
    register(url, "f2", {"ID": "b", "Service": "api", "Port": 2, "Meta": {"version": "1"}})
    got = requests.get(f"{url}/v1/catalog/service/api", params={"filter": 'ServiceMeta.version == "2"'}).json()
    assert [i["ServiceID"] for i in got] == ["a"]
    bad = requests.get(f"{url}/v1/catalog/service/api", params={"filter": "ServiceMeta.version =="})
    assert bad.status_code == 400 and "Failed to create boolean expression evaluator" in bad.text


def test_catalog_node_and_node_services(url):
    register(url, "n-a", {"ID": "s1", "Service": "svc", "Port": 1})
    node = requests.get(f"{url}/v1/catalog/node/n-a").json()
    assert node["Node"]["Node"] == "n-a" and list(node["Services"]) == ["s1"]
    listed = requests.get(f"{url}/v1/catalog/node-services/n-a").json()
    assert [s["ID"] for s in listed["Services"]] == ["s1"]
    r = requests.get(f"{url}/v1/catalog/node/unknown")
    assert r.status_code == 200 and r.text == "null"


def test_deregister_service_and_node(url):
    register(url, "gone", {"ID": "g1", "Service": "gsvc", "Port": 1})
    requests.put(f"{url}/v1/catalog/deregister", json={"Node": "gone", "ServiceID": "g1"})
    assert requests.get(f"{url}/v1/catalog/service/gsvc").json() == []
    requests.put(f"{url}/v1/catalog/deregister", json={"Node": "gone"})
    assert "gone" not in [n["Node"] for n in requests.get(f"{url}/v1/catalog/nodes").json()]


def test_register_check_for_missing_service_is_500_and_changes_nothing(url):
    r = requests.put(f"{url}/v1/catalog/register", json={
        "Node": "x1", "Address": "127.0.0.3", "Check": {"Name": "c", "ServiceID": "ghost"}})
    assert r.status_code == 500 and "Missing service registration" in r.text
    assert "x1" not in [n["Node"] for n in requests.get(f"{url}/v1/catalog/nodes").json()]


def test_health_service_passing_and_state(url):
    register(url, "h1", {"ID": "db1", "Service": "db", "Port": 5432},
             [{"CheckID": "db1-ok", "Name": "ok", "ServiceID": "db1", "Status": "passing"}])
    register(url, "h2", {"ID": "db2", "Service": "db", "Port": 5432},
             [{"CheckID": "db2-bad", "Name": "bad", "ServiceID": "db2", "Status": "critical"}])
    entries = requests.get(f"{url}/v1/health/service/db").json()
    assert [e["Service"]["ID"] for e in entries] == ["db1", "db2"]
    assert set(entries[0]) == {"Node", "Service", "Checks"}
    for spelling in ("passing", "passing=1", "passing=true"):
        assert [e["Service"]["ID"] for e in requests.get(f"{url}/v1/health/service/db?{spelling}").json()] == ["db1"]
    assert len(requests.get(f"{url}/v1/health/service/db?passing=false").json()) == 2
    assert requests.get(f"{url}/v1/health/service/db?passing=maybe").status_code == 400
    critical = requests.get(f"{url}/v1/health/state/critical").json()
    assert [c["CheckID"] for c in critical] == ["db2-bad"]
    assert [c["CheckID"] for c in requests.get(f"{url}/v1/health/checks/db").json()] == ["db1-ok", "db2-bad"]


def test_blocking_health_query_wakes_when_a_check_changes(url):
    register(url, "b1", {"ID": "q1", "Service": "queue", "Port": 1},
             [{"CheckID": "q1c", "Name": "c", "ServiceID": "q1", "Status": "passing"}])
    r = requests.get(f"{url}/v1/health/service/queue?passing")
    index = int(r.headers["X-Consul-Index"])
    out = {}
    t = threading.Thread(target=lambda: out.setdefault(
        "r", requests.get(f"{url}/v1/health/service/queue?passing&index={index}&wait=20s")))
    t.start()
    time.sleep(0.2)
    register(url, "b1", checks=[{"CheckID": "q1c", "Name": "c", "ServiceID": "q1", "Status": "critical"}])
    t.join(10)
    assert out["r"].json() == [] and int(out["r"].headers["X-Consul-Index"]) > index


def test_agent_service_register_with_ttl_check_and_ttl_expiry(dev_server):
    url = dev_server.url
    r = requests.put(f"{url}/v1/agent/service/register", json={
        "Name": "ttlsvc", "ID": "ttl1", "Port": 9000, "Tags": ["a"], "Check": {"TTL": "1s"}})
    assert r.status_code == 200 and r.content == b""
    services = requests.get(f"{url}/v1/agent/services").json()
    assert services["ttl1"]["Service"] == "ttlsvc" and services["ttl1"]["Tags"] == ["a"]
    checks = requests.get(f"{url}/v1/agent/checks").json()
    assert checks["service:ttl1"]["Status"] == "critical"
    assert checks["service:ttl1"]["Name"] == "Service 'ttlsvc' check"
    assert requests.put(f"{url}/v1/agent/check/pass/service:ttl1?note=fine").status_code == 200
    health = requests.get(f"{url}/v1/health/checks/ttlsvc").json()
    assert health[0]["Status"] == "passing" and health[0]["Output"] == "fine"
    # nothing renews it: after the TTL it turns critical on its own
    wait_until(lambda: requests.get(f"{url}/v1/health/checks/ttlsvc").json()[0]["Status"] == "critical", 10)
    out = requests.get(f"{url}/v1/health/checks/ttlsvc").json()[0]["Output"]
    assert out.startswith("TTL expired")


def test_agent_check_update_and_errors(dev_server):
    url = dev_server.url
    requests.put(f"{url}/v1/agent/check/register", json={"Name": "mem", "TTL": "30s"})
    assert requests.put(f"{url}/v1/agent/check/update/mem", json={"Status": "warning", "Output": "80%"}).ok
    assert requests.get(f"{url}/v1/agent/checks").json()["mem"]["Status"] == "warning"
    bad = requests.put(f"{url}/v1/agent/check/update/mem", json={"Status": "meh"})
    assert bad.status_code == 400 and bad.text == "Invalid check status: 'meh'"
    unknown = requests.put(f"{url}/v1/agent/check/pass/nope")
    assert unknown.status_code == 404 and 'Unknown check ID "nope"' in unknown.text
    requests.put(f"{url}/v1/agent/service/register", json={"Name": "h", "Check": {"HTTP": "http://127.0.0.1:1/",
                                                                                  "Interval": "10s"}})
    not_ttl = requests.put(f"{url}/v1/agent/check/pass/service:h")
    assert not_ttl.status_code == 500 and not_ttl.text == 'CheckID "service:h" does not have associated TTL'
    missing = requests.put(f"{url}/v1/agent/service/register", json={"Port": 1})
    assert missing.status_code == 400 and missing.text == "Missing service name"


def test_agent_deregister_removes_from_catalog(dev_server):
    url = dev_server.url
    requests.put(f"{url}/v1/agent/service/register", json={"Name": "tmp", "Port": 1})
    assert requests.get(f"{url}/v1/catalog/service/tmp").json()
    assert requests.put(f"{url}/v1/agent/service/deregister/tmp").status_code == 200
    assert requests.get(f"{url}/v1/catalog/service/tmp").json() == []
    assert requests.put(f"{url}/v1/agent/service/deregister/tmp").status_code == 404


def test_node_and_service_maintenance(dev_server):
    url, node = dev_server.url, dev_server.node
    requests.put(f"{url}/v1/agent/service/register", json={"Name": "m", "Port": 1})
    assert len(requests.get(f"{url}/v1/health/service/m?passing").json()) == 1
    assert requests.put(f"{url}/v1/agent/service/maintenance/m?enable=true&reason=upgrade").ok
    assert requests.get(f"{url}/v1/health/service/m?passing").json() == []
    checks = requests.get(f"{url}/v1/agent/checks").json()
    assert checks["_service_maintenance:m"]["Notes"] == "upgrade"
    requests.put(f"{url}/v1/agent/service/maintenance/m?enable=false")
    assert len(requests.get(f"{url}/v1/health/service/m?passing").json()) == 1
    assert requests.put(f"{url}/v1/agent/maintenance?enable=true").ok
    node_checks = {c["CheckID"]: c for c in requests.get(f"{url}/v1/health/node/{node}").json()}
    assert node_checks["_node_maintenance"]["Status"] == "critical"
    assert requests.get(f"{url}/v1/health/service/m?passing").json() == []
    bad = requests.put(f"{url}/v1/agent/maintenance?enable=perhaps")
    assert bad.status_code == 400 and bad.text == 'Invalid value for enable: "perhaps"'
    assert requests.put(f"{url}/v1/agent/maintenance").text == "Missing value for enable"


def test_sessions_create_info_list_renew_destroy(dev_server):
    url, node = dev_server.url, dev_server.node
    sid = requests.put(f"{url}/v1/session/create", json={"Name": "s", "TTL": "10s", "LockDelay": "5s"}).json()["ID"]
    [info] = requests.get(f"{url}/v1/session/info/{sid}").json()
    assert info["Node"] == node and info["TTL"] == "10s" and info["LockDelay"] == 5 * 10**9
    assert info["Behavior"] == "release" and info["NodeChecks"] == ["serfHealth"]
    assert [s["ID"] for s in requests.get(f"{url}/v1/session/node/{node}").json()] == [sid]
    assert [s["ID"] for s in requests.get(f"{url}/v1/session/list").json()] == [sid]
    assert requests.put(f"{url}/v1/session/renew/{sid}").json()[0]["ID"] == sid
    assert requests.put(f"{url}/v1/session/destroy/{sid}").json() is True
    assert requests.get(f"{url}/v1/session/info/{sid}").json() == []
    gone = requests.put(f"{url}/v1/session/renew/{sid}")
    assert gone.status_code == 404 and gone.text == f"Session id '{sid}' not found"


def test_session_validation(url):
    short = requests.put(f"{url}/v1/session/create", json={"TTL": "5s"})  # Consul: a 500 from its Session.Apply
    assert short.status_code == 500
    assert short.text == "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"
    assert requests.put(f"{url}/v1/session/create", json={"Behavior": "explode"}).text == \
        "Invalid Behavior setting 'explode'"
    r = requests.put(f"{url}/v1/session/create", json={"Node": "ghost"})
    assert r.status_code == 500 and "Missing node registration" in r.text
    # LockDelay values below 1000 are seconds (Consul's quirk)
    sid = requests.put(f"{url}/v1/session/create", json={"LockDelay": 3}).json()["ID"]
    assert requests.get(f"{url}/v1/session/info/{sid}").json()[0]["LockDelay"] == 3 * 10**9


def test_session_ttl_expiry_releases_the_lock(url):
    sid = requests.put(f"{url}/v1/session/create", json={"TTL": "10s", "LockDelay": "0s"}).json()["ID"]
    assert requests.put(f"{url}/v1/kv/ttl/lock?acquire={sid}").json() is True
    # server timer is TTL x 2: the session is gone within ~20 s, and the lock with it
    wait_until(lambda: requests.get(f"{url}/v1/session/info/{sid}").json() == [], timeout=30, interval=0.5)
    assert "Session" not in requests.get(f"{url}/v1/kv/ttl/lock").json()[0]


def test_events_fire_and_list(url):
    r = requests.put(f"{url}/v1/event/fire/deploy?service=web", data=b"v1.2")
    event = r.json()
    assert event["Name"] == "deploy" and event["Payload"] == "djEuMg==" and event["ServiceFilter"] == "web"
    assert event["Version"] == 1
    listed = requests.get(f"{url}/v1/event/list?name=deploy")
    assert [e["ID"] for e in listed.json()] == [event["ID"]]
    hexid = event["ID"].replace("-", "")
    assert int(listed.headers["X-Consul-Index"]) == int(hexid[:16], 16) ^ int(hexid[16:], 16)
    assert requests.put(f"{url}/v1/event/fire/").status_code in (400, 404, 405)


def test_status_and_datacenters(url):
    assert requests.get(f"{url}/v1/status/leader").json().endswith(":8300")
    assert len(requests.get(f"{url}/v1/status/peers").json()) == 1
    assert requests.get(f"{url}/v1/catalog/datacenters").json() == ["dc1"]
    other = requests.get(f"{url}/v1/catalog/nodes?dc=dc9")
    assert other.status_code == 500 and other.text == "No path to datacenter"


def test_sigterm_stops_the_agent_promptly_despite_parked_blocking_queries(tmp_path):
    from devserver import start_dev_server

    server = start_dev_server(tmp_path)
    index = int(requests.get(f"{server.url}/v1/kv/?recurse").headers["X-Consul-Index"])
    outcome: list[object] = []

    def park() -> None:
        try:
            outcome.append(requests.get(f"{server.url}/v1/kv/x?index={index}&wait=5m", timeout=60))
        except requests.ConnectionError as e:  # the server went away under the parked query
            outcome.append(e)

    waiter = threading.Thread(target=park, daemon=True)
    waiter.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert server.stop(timeout=30) == 0
    assert time.monotonic() - started < 5
    waiter.join(5)
    assert outcome, "the parked query was still waiting after the agent stopped"
