"""client.agent, client.catalog, client.health against a real `meshctl agent -dev`."""

from __future__ import annotations

import pytest

from meshctl.client import BadRequest, Client, NotFound

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def c(shared_dev_server) -> Client:
    return Client(shared_dev_server.addr)


def test_self_and_node_name(c, shared_dev_server):
    info = c.agent.self()
    assert info["Config"]["NodeName"] == shared_dev_server.node
    assert c.agent.node_name() == shared_dev_server.node


def test_members_lists_this_agent_alive(c, shared_dev_server):
    members = c.agent.members()
    me = [m for m in members if m["Name"] == shared_dev_server.node]
    assert me and me[0]["Status"] == 1


def test_service_register_shows_in_agent_catalog_and_health(c, shared_dev_server):
    c.agent.service_register({"Name": "svc-a", "ID": "svc-a1", "Port": 8080, "Tags": ["blue", "v1"],
                              "Meta": {"version": "1"}, "Check": {"TTL": "30s"}})
    assert c.agent.services()["svc-a1"]["Port"] == 8080
    assert "service:svc-a1" in c.agent.checks()
    assert c.agent.service("svc-a1")["Service"] == "svc-a"
    assert set(c.catalog.services().value["svc-a"]) == {"blue", "v1"}
    instances = c.catalog.service("svc-a", tag="blue").value
    assert [i["ServiceID"] for i in instances] == ["svc-a1"]
    assert c.catalog.service("svc-a", tag=["blue", "nope"]).value == []
    entries = c.health.service("svc-a").value
    assert entries[0]["Service"]["ID"] == "svc-a1"
    assert entries[0]["Node"]["Node"] == shared_dev_server.node


def test_ttl_check_updates_drive_passing_filter(c):
    c.agent.service_register({"Name": "svc-b", "Check": {"TTL": "30s"}})
    assert c.health.service("svc-b", passing=True).value == []
    c.agent.check_pass("service:svc-b", "all good")
    healthy = c.health.service("svc-b", passing=True).value
    assert len(healthy) == 1
    check = [ch for ch in healthy[0]["Checks"] if ch["CheckID"] == "service:svc-b"][0]
    assert (check["Status"], check["Output"]) == ("passing", "all good")
    c.agent.check_warn("service:svc-b", "meh")
    assert c.health.checks("svc-b").value[0]["Status"] == "warning"
    c.agent.check_fail("service:svc-b")
    assert c.health.checks("svc-b").value[0]["Status"] == "critical"
    c.agent.check_update("service:svc-b", "passing", "updated")
    assert c.health.checks("svc-b").value[0]["Output"] == "updated"


def test_check_register_and_deregister(c, shared_dev_server):
    c.agent.check_register({"Name": "disk", "ID": "disk-chk", "TTL": "30s"})
    assert "disk-chk" in c.agent.checks()
    assert any(ch["CheckID"] == "disk-chk" for ch in c.health.node(shared_dev_server.node).value)
    c.agent.check_deregister("disk-chk")
    assert "disk-chk" not in c.agent.checks()


def test_health_state(c):
    c.agent.check_register({"Name": "st", "ID": "st-chk", "TTL": "30s", "Status": "warning"})
    assert "st-chk" in [ch["CheckID"] for ch in c.health.state("warning").value]
    assert "st-chk" in [ch["CheckID"] for ch in c.health.state("any").value]
    c.agent.check_deregister("st-chk")
    with pytest.raises(ValueError):
        c.health.state("bogus")


def test_service_deregister_and_unknown_id(c):
    c.agent.service_register({"Name": "svc-c"})
    c.agent.service_deregister("svc-c")
    assert "svc-c" not in c.agent.services()
    with pytest.raises(NotFound):
        c.agent.service_deregister("svc-c")


def test_missing_service_name_is_bad_request(c):
    with pytest.raises(BadRequest):
        c.agent.service_register({"Port": 1})


def test_node_and_service_maintenance(c):
    c.agent.service_register({"Name": "svc-m"})
    c.agent.service_maintenance("svc-m", True, "deploying")
    checks = c.agent.checks()
    assert checks["_service_maintenance:svc-m"]["Notes"] == "deploying"
    c.agent.service_maintenance("svc-m", False)
    assert "_service_maintenance:svc-m" not in c.agent.checks()
    c.agent.maintenance(True)
    assert c.agent.checks()["_node_maintenance"]["Status"] == "critical"
    c.agent.maintenance(False)
    assert "_node_maintenance" not in c.agent.checks()


def test_catalog_register_node_service_and_deregister(c):
    assert c.catalog.register({"Node": "ext-1", "Address": "10.1.2.3", "NodeMeta": {"rack": "r1"},
                               "Service": {"Service": "db", "ID": "db1", "Port": 5432}}) is True
    assert "ext-1" in [n["Node"] for n in c.catalog.nodes().value]
    assert [n["Node"] for n in c.catalog.nodes(node_meta={"rack": "r1"}).value] == ["ext-1"]
    node = c.catalog.node("ext-1").value
    assert node["Node"]["Address"] == "10.1.2.3"
    assert node["Services"]["db1"]["Port"] == 5432
    assert [s["ID"] for s in c.catalog.node_services("ext-1").value["Services"]] == ["db1"]
    assert c.catalog.deregister("ext-1", service_id="db1") is True
    assert c.catalog.service("db").value == []
    assert c.catalog.deregister("ext-1") is True
    assert c.catalog.node("ext-1").value is None


def test_datacenters(c):
    assert c.catalog.datacenters() == ["dc1"]


def test_catalog_filter_expression(c):
    c.agent.service_register({"Name": "svc-f", "ID": "svc-f1", "Meta": {"v": "1"}})
    c.agent.service_register({"Name": "svc-f", "ID": "svc-f2", "Meta": {"v": "2"}})
    found = c.catalog.service("svc-f", filter='ServiceMeta.v == "2"').value
    assert [s["ServiceID"] for s in found] == ["svc-f2"]


def test_reload(c):
    c.agent.reload()
