"""A client written for Consul works unchanged: the py-consul package against `meshctl agent -dev`."""

from __future__ import annotations

import base64
import threading
import time

import consul
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def c(dev_server) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=dev_server.http_port)


def test_kv_put_get_recurse_keys_delete(c):
    assert c.kv.put("app/config/a", "1") is True
    assert c.kv.put("app/config/b", "2", flags=42) is True
    index, entry = c.kv.get("app/config/b")
    assert entry["Value"] == b"2" and entry["Flags"] == 42 and int(index) >= entry["ModifyIndex"]
    _, entries = c.kv.get("app/config", recurse=True)
    assert [e["Key"] for e in entries] == ["app/config/a", "app/config/b"]
    _, keys = c.kv.get("app/", keys=True, separator="/")
    assert keys == ["app/config/"]
    assert c.kv.get("nope") == (c.kv.get("nope")[0], None)
    assert c.kv.delete("app/config", recurse=True) is True
    assert c.kv.get("app/config/a")[1] is None


def test_kv_cas_and_blocking_get(c):
    assert c.kv.put("cas", "0", cas=0) is True
    index, entry = c.kv.get("cas")
    assert c.kv.put("cas", "1", cas=entry["ModifyIndex"] + 1) is False
    result = {}

    def watch():
        result["got"] = c.kv.get("cas", index=index, wait="20s")

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.2)
    assert c.kv.put("cas", "1", cas=entry["ModifyIndex"]) is True
    t.join(10)
    new_index, new_entry = result["got"]
    assert int(new_index) > int(index) and new_entry["Value"] == b"1"


def test_sessions_and_locks(c):
    sid = c.session.create(name="py", ttl=10, behavior="delete", lock_delay=0)
    assert c.kv.put("locks/x", "held", acquire=sid) is True
    _, entry = c.kv.get("locks/x")
    assert entry["Session"] == sid
    _, info = c.session.info(sid)
    assert info["Name"] == "py" and info["Behavior"] == "delete"
    _, sessions = c.session.list()
    assert sid in [s["ID"] for s in sessions]
    assert c.session.renew(sid)["ID"] == sid
    assert c.session.destroy(sid) is True
    assert c.kv.get("locks/x")[1] is None  # behavior=delete removed the held key


def test_catalog_register_services_and_health(c):
    assert c.catalog.register("web-node", "127.0.0.5", service={"service": "web", "port": 80, "tags": ["v1"]},
                              check={"Name": "web alive", "Status": "passing", "ServiceID": "web"}) is True
    _, services = c.catalog.services()
    assert services["web"] == ["v1"]
    _, nodes = c.catalog.service("web")
    assert nodes[0]["ServicePort"] == 80 and nodes[0]["Address"] == "127.0.0.5"
    _, healthy = c.health.service("web", passing=True)
    assert [h["Service"]["Service"] for h in healthy] == ["web"]
    _, node = c.catalog.node("web-node")
    assert "web" in node["Services"]
    _, all_nodes = c.catalog.nodes()
    assert "web-node" in [n["Node"] for n in all_nodes]
    assert c.catalog.deregister("web-node") is True
    assert c.health.service("web")[1] == []


def test_agent_service_and_ttl_checks(c):
    assert c.agent.service.register("api", service_id="api-1", port=5000, tags=["blue"],
                                    check=consul.Check.ttl("30s")) is True
    assert "api-1" in c.agent.services()
    c.agent.check.ttl_pass("service:api-1", notes="all good")
    assert c.agent.checks()["service:api-1"]["Status"] == "passing"
    _, checks = c.health.checks("api")
    assert checks[0]["Output"] == "all good"
    _, state = c.health.state("passing")
    assert "service:api-1" in [ch["CheckID"] for ch in state]
    assert c.agent.self()["Config"]["Datacenter"] == "dc1"
    assert len(c.agent.members()) == 1
    assert c.agent.service.deregister("api-1") is True
    assert "api-1" not in c.agent.services()


def test_txn(c):
    result = c.txn.put([
        {"KV": {"Verb": "set", "Key": "txn/a", "Value": base64.b64encode(b"1").decode()}},
        {"KV": {"Verb": "get", "Key": "txn/a"}},
    ])
    assert result["Errors"] is None
    assert base64.b64decode(result["Results"][1]["KV"]["Value"]) == b"1"


def test_events(c):
    event = c.event.fire("deploy", body="v2")
    _, events = c.event.list(name="deploy")
    assert [e["ID"] for e in events] == [event["ID"]]


def test_status(c):
    assert c.status.leader().endswith(":8300")
    assert len(c.status.peers()) == 1


def test_prepared_queries_create_execute_explain_update_delete(c):
    for node, tags in (("pq1", ["primary"]), ("pq2", ["replica"])):
        assert c.catalog.register(node, "127.0.0.21", service={"service": "pg", "port": 5432, "tags": tags},
                                  check={"CheckID": f"chk-{node}", "Name": "c", "ServiceID": "pg",
                                         "Status": "passing"}) is True
    # py-consul sends every query as a name_prefix_match template, in lower-case field names
    created = c.query.create("pg", name="pg-primary", tags=["primary"], ttl="10s", onlypassing=True, nearestn=1)
    qid = created["ID"]
    [listed] = [q for q in c.query.list() if q["ID"] == qid]
    assert listed["Template"]["Type"] == "name_prefix_match" and listed["Service"]["OnlyPassing"] is True
    assert listed["DNS"]["TTL"] == "10s" and listed["Service"]["Failover"]["NearestN"] == 1
    assert c.query.get(qid)[0]["Name"] == "pg-primary"
    answer = c.query.execute("pg-primary")
    assert [e["Node"]["Node"] for e in answer["Nodes"]] == ["pq1"] and answer["Datacenter"] == "dc1"
    assert c.query.explain("pg-primary")["Query"]["ID"] == qid
    c.query.update(qid, service="pg", name="pg-primary", tags=["replica"])
    assert [e["Node"]["Node"] for e in c.query.execute("pg-primary", limit=5)["Nodes"]] == ["pq2"]
    c.query.delete(qid)
    assert qid not in [q["ID"] for q in c.query.list()]


def test_coordinates_update_and_nodes(c):
    assert c.catalog.register("co1", "127.0.0.22") is True
    c.coordinate.update("co1", {"Vec": [0.002] + [0.0] * 7, "Error": 0.5, "Adjustment": 0.0, "Height": 1e-5})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, nodes = c.coordinate.nodes()
        if "co1" in [n["Node"] for n in nodes]:
            break
        time.sleep(0.1)
    assert next(n for n in nodes if n["Node"] == "co1")["Coord"]["Vec"][0] == 0.002
    [area] = c.coordinate.datacenters()
    assert area["Datacenter"] == "dc1"
