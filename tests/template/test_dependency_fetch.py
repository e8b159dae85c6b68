"""Each dependency's fetch against a real `meshctl agent -dev`: consul-template's records and rules."""

from __future__ import annotations

import threading
import time

import pytest
from ctrun import dev_agent

from meshctl.client import Client, QueryOptions
from meshctl.template.dependency import (
    CatalogDatacentersQuery,
    CatalogNodeQuery,
    CatalogNodesQuery,
    CatalogServicesQuery,
    DependencyError,
    FileQuery,
    HealthServiceQuery,
    KVGetQuery,
    KVListQuery,
)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    yield from dev_agent(tmp_path_factory)


@pytest.fixture(scope="module")
def client(agent):
    server = agent
    c = Client(server.addr)
    yield c
    c.close()


def register(client: Client, node: str, addr: str, sid: str, name: str, port: int, status: str = "passing",
             tags: list[str] | None = None, svc_addr: str = "", meta: dict | None = None, check_id: str = "") -> None:
    client.catalog.register({
        "Node": node, "Address": addr, "NodeMeta": {"rack": node[-1]},
        "Service": {"ID": sid, "Service": name, "Port": port, "Tags": tags or [], "Address": svc_addr,
                    "Meta": meta or {}},
        "Check": {"CheckID": check_id or f"chk-{sid}", "Name": "c", "Status": status, "ServiceID": sid,
                  "Output": "out"},
    })


# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, identity", [
    ("web", "health.service(web|passing)"),
    ("v1.web", "health.service(v1.web|passing)"),
    ("web@dc2", "health.service(web@dc2|passing)"),
    ("web~_agent", "health.service(web~_agent|passing)"),
    ("web|warning,passing", "health.service(web|passing,warning)"),
    ("web|passing, warning", "health.service(web|passing,warning)"),
    ("tag=x.web?ns=a@dc1~n1|any", "health.service(tag=x.web?ns=a@dc1~n1|any)"),
])
def test_health_service_identity(text, identity):
    assert str(HealthServiceQuery(text)) == identity


@pytest.mark.parametrize("bad", ["", "web|nope", "web?foo=bar", "we b", "web?peer=a&sameness-group=b"])
def test_health_service_rejects(bad):
    with pytest.raises(DependencyError):
        HealthServiceQuery(bad)


def test_other_identities():
    assert str(KVGetQuery("/a/b@dc1")) == "kv.get(a/b@dc1)"
    assert str(KVGetQuery("a?partition=p")) == "kv.get(a?partition=p)"
    assert str(KVListQuery("/")) == "kv.list()"
    assert str(KVListQuery("cfg@dc2")) == "kv.list(cfg@dc2)"
    assert str(CatalogServicesQuery("@dc2")) == "catalog.services(@dc2)"
    assert str(CatalogNodeQuery("")) == "catalog.node()"
    assert str(CatalogNodeQuery("n1@dc2")) == "catalog.node(n1@dc2)"
    assert str(CatalogNodesQuery("@dc2~n1")) == "catalog.nodes(@dc2~n1)"
    assert str(CatalogDatacentersQuery(True)) == "catalog.datacenters(ignore_inaccessible=true)"


def test_query_scope_becomes_the_clients_query_options():
    q = HealthServiceQuery("web?ns=team&partition=p1&peer=west@dc2~n1")
    assert q.opts.options(dc=q.dc, near=q.near, stale=True) == QueryOptions(
        dc="dc2", near="n1", consistency="stale", namespace="team", partition="p1", peer="west")
    assert KVGetQuery("a/b").opts.options() == QueryOptions()
    assert KVGetQuery("a") == KVGetQuery("/a") and hash(KVGetQuery("a")) == hash(KVGetQuery("/a"))


# -- fetching -----------------------------------------------------------------------------------


def test_kv_get_pair_and_absent(client):
    client.kv.put("dep/get/a", "v1", flags=7)
    r = KVGetQuery("dep/get/a").fetch(client)
    p = r.value
    assert (p.Path, p.Key, p.Value, p.Flags) == ("dep/get/a", "dep/get/a", "v1", 7)
    assert p.ModifyIndex > 0 and r.index > 0
    assert KVGetQuery("dep/get/none").fetch(client).value is None


def test_kv_get_blocks_until_change(client):
    client.kv.put("dep/block/a", "1")
    first = KVGetQuery("dep/block/a").fetch(client)
    timer = threading.Timer(0.3, lambda: client.kv.put("dep/block/a", "2"))
    timer.start()
    t0 = time.monotonic()
    second = KVGetQuery("dep/block/a").fetch(client, index=first.index, wait=120)
    assert second.value.Value == "2" and 0.2 < time.monotonic() - t0 < 60  # woken by the write, not the wait
    timer.join()


def test_kv_list_relative_keys(client):
    for k, v in (("dep/ls/", ""), ("dep/ls/a", "1"), ("dep/ls/sub/b", "2")):
        client.kv.put(k, v)
    pairs = KVListQuery("dep/ls").fetch(client).value
    assert [(p.Path, p.Key, p.Value) for p in pairs] == [
        ("dep/ls/", "", ""), ("dep/ls/a", "a", "1"), ("dep/ls/sub/b", "sub/b", "2")]
    assert KVListQuery("dep/none").fetch(client).value == []


def test_health_service_default_is_passing_only_sorted_by_node(client):
    register(client, "hs-n2", "10.1.0.2", "hs-2", "hs", 82, tags=["b", "a"])
    register(client, "hs-n1", "10.1.0.1", "hs-1", "hs", 81, svc_addr="10.9.9.9", meta={"v": "1"})
    register(client, "hs-n3", "10.1.0.3", "hs-3", "hs", 83, status="warning")
    register(client, "hs-n4", "10.1.0.4", "hs-4", "hs", 84, status="critical")
    svcs = HealthServiceQuery("hs").fetch(client).value
    assert [(s.Node, s.ID, s.Address, s.NodeAddress, s.Port, s.Status) for s in svcs] == [
        ("hs-n1", "hs-1", "10.9.9.9", "10.1.0.1", 81, "passing"),
        ("hs-n2", "hs-2", "10.1.0.2", "10.1.0.2", 82, "passing")]
    assert svcs[1].Tags == ["a", "b"] and svcs[0].ServiceMeta == {"v": "1"} and svcs[0].NodeMeta == {"rack": "1"}
    assert svcs[0].Name == "hs" and svcs[0].Checks[0].Output == "out" and svcs[0].NodeDatacenter == "dc1"


def test_health_service_filters(client):
    for i, st in enumerate(("passing", "warning", "critical"), 1):
        register(client, f"hf-n{i}", f"10.2.0.{i}", f"hf-{i}", "hf", 80, status=st)
    register(client, "hf-n4", "10.2.0.4", "hf-4", "hf", 80, check_id="_service_maintenance:hf-4",
             status="critical")

    def ids(q):
        return [s.ID for s in HealthServiceQuery(q).fetch(client).value]

    assert ids("hf|passing,warning") == ["hf-1", "hf-2"]
    assert ids("hf|critical") == ["hf-3"]
    assert ids("hf|maintenance") == ["hf-4"]
    assert ids("hf|any") == ["hf-1", "hf-2", "hf-3", "hf-4"]


def test_health_service_tag(client):
    register(client, "ht-n1", "10.3.0.1", "ht-1", "ht", 80, tags=["primary"])
    register(client, "ht-n2", "10.3.0.2", "ht-2", "ht", 80, tags=["replica"])
    assert [s.ID for s in HealthServiceQuery("primary.ht").fetch(client).value] == ["ht-1"]


def test_catalog_services_sorted_with_tags(client):
    register(client, "cs-n1", "10.4.0.1", "cs-1", "cs-svc", 80, tags=["z", "y"])
    snippets = CatalogServicesQuery("").fetch(client).value
    names = [s.Name for s in snippets]
    assert names == sorted(names) and "consul" in names
    assert next(s for s in snippets if s.Name == "cs-svc").Tags == ["y", "z"]


def test_catalog_node_and_local_node(agent, client):
    server = agent
    register(client, "cn-n1", "10.5.0.1", "cn-b", "bsvc", 90)
    client.catalog.register({"Node": "cn-n1", "Address": "10.5.0.1",
                             "Service": {"ID": "cn-a", "Service": "asvc", "Port": 91}})
    node = CatalogNodeQuery("cn-n1").fetch(client).value
    assert node.Node.Node == "cn-n1" and node.Node.Address == "10.5.0.1"
    assert [(s.ID, s.Service, s.Port) for s in node.Services] == [("cn-a", "asvc", 91), ("cn-b", "bsvc", 90)]
    assert CatalogNodeQuery("").fetch(client).value.Node.Node == server.node
    assert CatalogNodeQuery("no-such-node").fetch(client).value is None


def test_catalog_nodes_sorted(client):
    nodes = CatalogNodesQuery("").fetch(client).value
    names = [n.Node for n in nodes]
    assert names == sorted(names) and "devnode" in names
    assert all(n.Address for n in nodes)


def test_datacenters(client):
    assert CatalogDatacentersQuery().fetch(client).value == ["dc1"]
    assert CatalogDatacentersQuery(True).fetch(client).value == ["dc1"]
    assert not CatalogDatacentersQuery.blocking


def test_file(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("hello\n")
    assert FileQuery(str(p)).fetch(None).value == "hello\n"
    with pytest.raises(OSError):
        FileQuery(str(tmp_path / "missing")).fetch(None)
