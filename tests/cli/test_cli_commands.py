"""catalog, members, services, event, info, reload, maint as subprocesses against `meshctl agent -dev`."""

from __future__ import annotations

import json
import re

import pytest

from meshctl.client import Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(shared_dev_server) -> Client:
    return Client(shared_dev_server.addr)


def test_catalog_datacenters(cli):
    r = cli("catalog", "datacenters")
    assert (r.code, r.out, r.err) == (0, "dc1\n", "")


def test_catalog_nodes_table(cli, shared_dev_server, client):
    r = cli("catalog", "nodes")
    assert r.code == 0
    header, row = r.lines
    assert header.split() == ["Node", "ID", "Address", "DC"]
    node_id = client.catalog.nodes().value[0]["ID"]
    assert row.split() == [shared_dev_server.node, node_id[:8], "127.0.0.1", "dc1"]


def test_catalog_nodes_detailed_shows_full_id(cli, client):
    r = cli("catalog", "nodes", "-detailed")
    assert r.lines[0].split() == ["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"]
    assert client.catalog.nodes().value[0]["ID"] in r.lines[1]


def test_catalog_services_and_tags(cli, client):
    client.agent.service_register({"Name": "cat-web", "Tags": ["b", "a"]})
    r = cli("catalog", "services")
    assert "cat-web" in r.lines and "consul" in r.lines
    tagged = cli("catalog", "services", "-tags")
    assert re.search(r"^cat-web\s+a,b$", tagged.out, re.M)


def test_catalog_services_on_node(cli, client, shared_dev_server):
    client.agent.service_register({"Name": "cat-node-svc"})
    assert "cat-node-svc" in cli("catalog", "services", "-node", shared_dev_server.node).lines


def test_catalog_nodes_providing_service(cli, client, shared_dev_server):
    client.agent.service_register({"Name": "cat-db"})
    r = cli("catalog", "nodes", "-service=cat-db")
    assert r.lines[1].split()[0] == shared_dev_server.node
    none = cli("catalog", "nodes", "-service=cat-nothing")
    assert (none.code, none.out) == (0, "")
    assert none.err == "No nodes match the given query - try expanding your search.\n"


def test_members_table(cli, shared_dev_server):
    r = cli("members")
    assert r.code == 0
    assert r.lines[0].split() == ["Node", "Address", "Status", "Type", "DC"]
    assert r.lines[1].split() == [shared_dev_server.node, "127.0.0.1:8301", "alive", "server", "dc1"]


def test_members_status_filter_without_match_exits_2(cli):
    assert cli("members", "-status=failed").code == 2


def test_services_register_and_deregister_with_flags(cli, client):
    r = cli("services", "register", "-name=flag-web", "-id=flag-web-1", "-port=8080", "-address=127.0.0.2",
            "-tag=blue", "-tag=v1", "-meta=version=1")
    assert (r.code, r.out, r.err) == (0, "Registered service: flag-web\n", "")
    svc = client.agent.services()["flag-web-1"]
    assert (svc["Service"], svc["Port"], svc["Address"], svc["Tags"], svc["Meta"]) == (
        "flag-web", 8080, "127.0.0.2", ["blue", "v1"], {"version": "1"})
    r = cli("services", "deregister", "-id", "flag-web-1")
    assert (r.code, r.out) == (0, "Deregistered service: flag-web-1\n")
    assert "flag-web-1" not in client.agent.services()


def test_services_register_json_file_with_check(cli, client, tmp_path):
    f = tmp_path / "web.json"
    f.write_text(json.dumps({"service": {"name": "file-web", "id": "file-web-1", "port": 80, "tags": ["x"],
                                         "meta": {"owner_team": "a"},
                                         "check": {"ttl": "30s", "check_id": "file-web-ttl"}}}))
    r = cli("services", "register", str(f))
    assert (r.code, r.out) == (0, "Registered service: file-web\n")
    assert client.agent.services()["file-web-1"]["Meta"] == {"owner_team": "a"}
    assert "file-web-ttl" in client.agent.checks()
    r = cli("services", "deregister", str(f))
    assert (r.code, r.out) == (0, "Deregistered service: file-web-1\n")


def test_services_register_hcl_file(cli, client, tmp_path):
    f = tmp_path / "svc.hcl"
    f.write_text('service {\n  name = "hcl-web"\n  port = 81\n  tags = ["h"]\n'
                 '  check {\n    ttl = "20s"\n  }\n}\n')
    assert cli("services", "register", str(f)).out == "Registered service: hcl-web\n"
    svc = client.agent.services()["hcl-web"]
    assert (svc["Port"], svc["Tags"]) == (81, ["h"])
    assert "service:hcl-web" in client.agent.checks()


def test_services_register_yaml_file_with_several_services(cli, client, tmp_path):
    f = tmp_path / "svcs.yaml"
    f.write_text("services:\n  - name: yml-a\n    port: 1\n  - name: yml-b\n    id: yml-b-1\n    port: 2\n")
    r = cli("services", "register", str(f))
    assert r.out == "Registered service: yml-a\nRegistered service: yml-b\n"
    assert {"yml-a", "yml-b-1"} <= set(client.agent.services())
    assert cli("services", "deregister", str(f)).out == "Deregistered service: yml-a\nDeregistered service: yml-b-1\n"


def test_services_deregister_unknown_is_one_error_line(cli):
    r = cli("services", "deregister", "-id=never-registered")
    assert r.code == 1 and r.err.count("\n") == 1
    assert r.err.startswith("Error deregistering service 'never-registered': Unexpected response code: 404")


def test_event_fire_and_list(cli, client):
    r = cli("event", "fire", "-service=web", "cli-deploy", "v7")
    assert r.code == 0
    event_id = re.fullmatch(r"Event ID: ([0-9a-f-]{36})\n", r.out).group(1)
    listed = cli("event", "list", "-name", "cli-deploy")
    assert listed.lines[0].split() == ["ID", "Name", "LTime", "Payload"]
    assert any(line.split()[0] == event_id and line.split()[-1] == "v7" for line in listed.lines[1:])


def test_event_tag_needs_service(cli):
    r = cli("event", "fire", "-tag=x", "name")
    assert (r.code, r.err) == (1, "Cannot provide tag filter without service filter.\n")


def test_event_name_required(cli):
    assert cli("event", "fire").err == "Event name must be specified\n"


def test_info_prints_sections(cli):
    r = cli("info")
    assert r.code == 0
    assert r.lines and r.lines[0].endswith(":")
    for line in r.lines:
        assert re.fullmatch(r"\S+:|\t\S+ = .*", line), line


def test_reload(cli):
    assert cli("reload").out == "Configuration reload triggered\n"


def test_node_maintenance_cycle(cli, shared_dev_server):
    assert cli("maint", "-enable", "-reason", "kernel upgrade").out == "Node maintenance is now enabled\n"
    listed = cli("maint").out
    assert listed == f"Node:\n  Name:   {shared_dev_server.node}\n  Reason: kernel upgrade\n\n"
    assert cli("maint", "-disable").out == "Node maintenance is now disabled\n"
    assert cli("maint").out == ""


def test_service_maintenance_cycle(cli, client):
    client.agent.service_register({"Name": "maint-svc"})
    r = cli("maint", "-enable", "-service=maint-svc", "-reason=patching")
    assert r.out == 'Service maintenance is now enabled for "maint-svc"\n'
    assert "Service:\n  ID:     maint-svc\n  Reason: patching\n" in cli("maint").out
    assert cli("maint", "-disable", "-service=maint-svc").out == 'Service maintenance is now disabled for "maint-svc"\n'


def test_maint_unknown_service(cli):
    r = cli("maint", "-enable", "-service=ghost")
    assert (r.code, r.err) == (1, 'No service registered with ID "ghost"\n')


def test_maint_flag_conflicts(cli):
    assert cli("maint", "-enable", "-disable").err == "Only one of -enable or -disable may be provided\n"
    assert cli("maint", "-reason=x").err == "Reason may only be provided with -enable\n"
