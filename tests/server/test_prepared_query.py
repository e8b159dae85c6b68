"""Prepared queries (/v1/query) as Consul documents them: definitions, execution, templates, failover, ACLs.

Real `meshctl agent -dev` processes (ACLs off, then on with default deny) and, for failover,
three single-server datacenters joined over the WAN; the template rules and snapshots are also
checked on the state machine alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cluster.conftest import Server
from cluster.wan_helpers import joined_datacenters
from devserver import DevServer, start_dev_server, wait_for, wait_node_registered

from meshctl.server.commands import QuerySet, Restore
from meshctl.server.state import State, StateError

pytestmark = pytest.mark.integration

NODE = "devnode"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def register(url: str, node: str, service: str, tags: list[str], status: str = "passing",
             node_meta: dict[str, str] | None = None, meta: dict[str, str] | None = None, port: int = 6379) -> None:
    r = requests.put(f"{url}/v1/catalog/register", json={
        "Node": node, "Address": f"127.0.0.{10 + int(node[-1]) if node[-1].isdigit() else 9}",
        "NodeMeta": node_meta or {},
        "Service": {"ID": f"{service}-{node}", "Service": service, "Tags": tags, "Port": port, "Meta": meta or {}},
        "Check": {"CheckID": f"chk-{service}-{node}", "Name": "c", "ServiceID": f"{service}-{node}",
                  "Status": status}}, timeout=10)
    assert r.status_code == 200, r.text


def coordinate(url: str, node: str, x_ms: float) -> None:
    """Place `node` at x = `x_ms` milliseconds on the first axis (PUT /v1/coordinate/update)."""
    r = requests.put(f"{url}/v1/coordinate/update", json={
        "Node": node, "Coord": {"Vec": [x_ms / 1000] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5}},
        timeout=10)
    assert r.status_code == 200, r.text


def create(url: str, body: dict[str, Any], token: str | None = None) -> requests.Response:
    return requests.post(f"{url}/v1/query", json=body, headers={"X-Consul-Token": token} if token else {}, timeout=10)


def execute(url: str, name: str, token: str | None = None, **params: str) -> dict[str, Any]:
    r = requests.get(f"{url}/v1/query/{name}/execute", params=params,
                     headers={"X-Consul-Token": token} if token else {}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def nodes_of(answer: dict[str, Any]) -> list[str]:
    return [e["Node"]["Node"] for e in answer["Nodes"]]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    srv = start_dev_server(tmp_path_factory.mktemp("pq"), node=NODE)
    url = srv.url
    wait_node_registered(srv)
    register(url, "n1", "redis", ["primary", "v1"], node_meta={"rack": "a"}, meta={"env": "prod"})
    register(url, "n2", "redis", ["secondary", "v1"], node_meta={"rack": "b"}, meta={"env": "prod"})
    register(url, "n3", "redis", ["primary", "experimental"], status="warning", node_meta={"rack": "a"})
    register(url, "n4", "redis", ["primary"], status="critical")
    register(url, "n5", "web", ["Frontend"])
    yield srv
    srv.stop()


# ---------------------------------------------------------------------- definitions


def test_create_answers_the_new_id_and_read_shows_consuls_defaults(dev: DevServer) -> None:
    r = create(dev.url, {"Name": "defaults", "Service": {"Service": "redis"}, "DNS": {"TTL": "10s"}})
    assert r.status_code == 200 and set(r.json()) == {"ID"} and UUID.match(r.json()["ID"])
    qid = r.json()["ID"]
    got = requests.get(f"{dev.url}/v1/query/{qid}", timeout=5)
    assert got.status_code == 200 and int(got.headers["X-Consul-Index"]) >= 1
    [query] = got.json()
    assert query["ID"] == qid and query["Name"] == "defaults" and query["Session"] == "" and query["Token"] == ""
    assert query["Template"] == {"Type": "", "Regexp": "", "RemoveEmptyTags": False}
    assert query["Service"]["Service"] == "redis" and query["Service"]["OnlyPassing"] is False
    assert query["Service"]["Failover"] == {"NearestN": 0, "Datacenters": None}
    assert query["DNS"] == {"TTL": "10s"}
    assert query["CreateIndex"] == query["ModifyIndex"] > 0
    assert qid in [q["ID"] for q in requests.get(f"{dev.url}/v1/query", timeout=5).json()]


def test_field_names_match_case_insensitively_and_unknown_fields_are_refused(dev: DevServer) -> None:
    r = create(dev.url, {"name": "lower", "service": {"service": "redis", "only_passing": True}})
    assert r.status_code == 200, r.text
    [query] = requests.get(f"{dev.url}/v1/query/{r.json()['ID']}", timeout=5).json()
    assert query["Service"]["OnlyPassing"] is True
    bad = create(dev.url, {"Name": "x", "Service": {"Service": "redis", "Bogus": 1}})
    assert bad.status_code == 400 and 'unknown field "Bogus"' in bad.text
    assert create(dev.url, {"Name": "x", "Service": {"Service": "redis", "OnlyPassing": "yes"}}).status_code == 400


@pytest.mark.parametrize(("body", "error"), [
    ({"Name": "no-service", "Service": {}}, "Invalid prepared query: Must provide a Service name to query"),
    ({"Service": {"Service": "redis"}}, "Invalid prepared query: Must be bound to a session"),
    ({"Name": "n", "Service": {"Service": "redis", "Failover": {"NearestN": -1}}},
     "Invalid prepared query: Bad NearestN '-1', must be >= 0"),
    ({"Name": "n", "Service": {"Service": "redis"}, "DNS": {"TTL": "soon"}}, "Invalid prepared query: Bad DNS TTL 'soon'"),
    ({"Name": "n", "Token": "<hidden>", "Service": {"Service": "redis"}}, "it looks like a query definition with a "
                                                                            "redacted token was submitted"),
    ({"ID": str(uuid.uuid4()), "Name": "n", "Service": {"Service": "redis"}},
     "ID must be empty when creating a new prepared query"),
    ({"Name": "t", "Template": {"Type": "fancy"}, "Service": {"Service": "redis"}},
     "failed compiling template: Bad Template.Type 'fancy'"),
    ({"Name": "t", "Template": {"Type": "name_prefix_match", "Regexp": "(("}, "Service": {"Service": "redis"}},
     "failed compiling template: Bad Regexp"),
    ({"Name": "", "Session": "00000000-0000-0000-0000-00000000dead", "Service": {"Service": "redis"}},
     'invalid session "00000000-0000-0000-0000-00000000dead"'),
])
def test_invalid_definitions_get_consuls_500_and_are_not_stored(dev: DevServer, body: dict[str, Any],
                                                                error: str) -> None:
    before = requests.get(f"{dev.url}/v1/query", timeout=5).json()
    r = create(dev.url, body)
    assert r.status_code == 500 and error in r.text, r.text
    assert requests.get(f"{dev.url}/v1/query", timeout=5).json() == before


def test_names_are_unique_whatever_their_case(dev: DevServer) -> None:
    assert create(dev.url, {"Name": "Unique", "Service": {"Service": "redis"}}).status_code == 200
    r = create(dev.url, {"Name": "unique", "Service": {"Service": "web"}})
    assert r.status_code == 500 and r.text == "name 'unique' aliases an existing query name"


def test_a_blocking_list_wakes_when_a_query_is_written(dev: DevServer) -> None:
    index = requests.get(f"{dev.url}/v1/query", timeout=5).headers["X-Consul-Index"]
    create(dev.url, {"Name": "wakes-the-list", "Service": {"Service": "redis"}})
    r = requests.get(f"{dev.url}/v1/query", params={"index": index, "wait": "30s"}, timeout=40)
    assert int(r.headers["X-Consul-Index"]) > int(index)
    assert "wakes-the-list" in [q["Name"] for q in r.json()]


def test_update_replaces_the_definition_and_delete_removes_it(dev: DevServer) -> None:
    qid = create(dev.url, {"Name": "changing", "Service": {"Service": "redis"}}).json()["ID"]
    r = requests.put(f"{dev.url}/v1/query/{qid}", json={"Name": "changing", "Service": {"Service": "web"}}, timeout=5)
    assert r.status_code == 200 and r.content == b""
    [query] = requests.get(f"{dev.url}/v1/query/{qid}", timeout=5).json()
    assert query["Service"]["Service"] == "web" and query["ModifyIndex"] > query["CreateIndex"]
    assert nodes_of(execute(dev.url, "changing")) == ["n5"]
    assert requests.delete(f"{dev.url}/v1/query/{qid}", timeout=5).status_code == 200
    gone = requests.get(f"{dev.url}/v1/query/{qid}", timeout=5)
    assert gone.status_code == 404 and gone.text == "Query not found"
    missing = str(uuid.uuid4())
    r = requests.put(f"{dev.url}/v1/query/{missing}", json={"Name": "x", "Service": {"Service": "web"}}, timeout=5)
    assert r.status_code == 500 and r.text == f"Cannot modify non-existent prepared query: '{missing}'"


def test_a_query_bound_to_a_session_goes_with_the_session(dev: DevServer) -> None:
    sid = requests.put(f"{dev.url}/v1/session/create", json={"Name": "pq"}, timeout=5).json()["ID"]
    qid = create(dev.url, {"Session": sid, "Service": {"Service": "redis"}}).json()["ID"]
    assert execute(dev.url, qid)["Nodes"]
    requests.put(f"{dev.url}/v1/session/destroy/{sid}", timeout=5).raise_for_status()
    assert requests.get(f"{dev.url}/v1/query/{qid}", timeout=5).status_code == 404


# ---------------------------------------------------------------------- execution


def test_execute_keeps_healthy_instances_with_every_tag_and_none_of_the_banned(dev: DevServer) -> None:
    create(dev.url, {"Name": "primaries", "Service": {"Service": "redis", "Tags": ["PRIMARY", "!experimental"]},
                     "DNS": {"TTL": "10s"}})
    answer = execute(dev.url, "primaries")
    assert nodes_of(answer) == ["n1"]  # n3 is experimental, n4 critical
    assert answer["Service"] == "redis" and answer["Datacenter"] == "dc1" and answer["Failovers"] == 0
    assert answer["DNS"] == {"TTL": "10s"}
    entry = answer["Nodes"][0]
    assert set(entry) >= {"Node", "Service", "Checks"} and entry["Service"]["Port"] == 6379


def test_warning_instances_answer_unless_only_passing(dev: DevServer) -> None:
    create(dev.url, {"Name": "any-health", "Service": {"Service": "redis"}})
    create(dev.url, {"Name": "only-passing", "Service": {"Service": "redis", "OnlyPassing": True}})
    assert sorted(nodes_of(execute(dev.url, "any-health"))) == ["n1", "n2", "n3"]
    assert sorted(nodes_of(execute(dev.url, "only-passing"))) == ["n1", "n2"]
    create(dev.url, {"Name": "ignoring", "Service": {"Service": "redis", "IgnoreCheckIDs": ["chk-redis-n4"]}})
    assert "n4" in nodes_of(execute(dev.url, "ignoring"))


def test_node_and_service_meta_filter_and_limit_cuts(dev: DevServer) -> None:
    create(dev.url, {"Name": "rack-a", "Service": {"Service": "redis", "NodeMeta": {"rack": "a"}}})
    create(dev.url, {"Name": "prod", "Service": {"Service": "redis", "ServiceMeta": {"env": "prod"}}})
    assert sorted(nodes_of(execute(dev.url, "rack-a"))) == ["n1", "n3"]
    assert sorted(nodes_of(execute(dev.url, "prod"))) == ["n1", "n2"]
    assert len(execute(dev.url, "prod", limit="1")["Nodes"]) == 1
    bad = requests.get(f"{dev.url}/v1/query/prod/execute?limit=many", timeout=5)
    assert bad.status_code == 500 and bad.text.startswith("Bad limit: ")


def test_connect_queries_find_nothing_without_a_service_mesh(dev: DevServer) -> None:
    create(dev.url, {"Name": "mesh-only", "Service": {"Service": "redis", "Connect": True}})
    create(dev.url, {"Name": "plain-redis", "Service": {"Service": "redis"}})
    assert execute(dev.url, "mesh-only")["Nodes"] == []
    assert execute(dev.url, "plain-redis", connect="")["Nodes"] == []
    assert execute(dev.url, "plain-redis")["Nodes"]


def test_a_malformed_remote_execution_is_a_400(dev: DevServer) -> None:
    path = f"{dev.url}/v1/internal/meshctl/query/execute-remote"
    for body in ({"Query": 5}, {"Query": {"Service": {"Service": "redis", "Tags": "primary"}}}, {"Query": {}}, [1]):
        r = requests.post(path, json=body, timeout=5)
        assert r.status_code == 400 and r.text.startswith("Request decode failed"), (body, r.text)
    ok = requests.post(path, json={"Query": {"Service": {"Service": "redis", "Tags": ["secondary"]}}, "Limit": 1},
                       timeout=5)
    assert ok.status_code == 200 and nodes_of(ok.json()) == ["n2"] and ok.json()["Failovers"] == 0


def test_an_unknown_query_is_a_404(dev: DevServer) -> None:
    for what in ("execute", "explain"):
        r = requests.get(f"{dev.url}/v1/query/no-such-query/{what}", timeout=5)
        assert r.status_code == 404 and r.text == "Query not found"


def test_near_sorts_by_coordinates_and_puts_that_node_first(dev: DevServer) -> None:
    for node, x in (("n1", 30.0), ("n2", 10.0), ("n3", 20.0), (NODE, 0.0)):
        coordinate(dev.url, node, x)
    wait_for(lambda: len(requests.get(f"{dev.url}/v1/coordinate/nodes", timeout=5).json()) >= 4,
             what="coordinates applied")
    create(dev.url, {"Name": "nearby", "Service": {"Service": "redis"}})
    assert nodes_of(execute(dev.url, "nearby", near="n1")) == ["n1", "n3", "n2"]
    assert nodes_of(execute(dev.url, "nearby", near="_agent")) == ["n2", "n3", "n1"]
    create(dev.url, {"Name": "near-n3", "Service": {"Service": "redis", "Near": "n3"}})
    assert nodes_of(execute(dev.url, "near-n3"))[0] == "n3"
    assert nodes_of(execute(dev.url, "near-n3", near="n2")) == ["n2", "n3", "n1"]  # the caller's near wins


# ---------------------------------------------------------------------- templates


def test_a_prefix_template_renders_the_name_suffix(dev: DevServer) -> None:
    r = create(dev.url, {"Name": "svc-", "Template": {"Type": "name_prefix_match"},
                         "Service": {"Service": "${name.suffix}"}})
    assert r.status_code == 200, r.text
    assert sorted(nodes_of(execute(dev.url, "svc-redis"))) == ["n1", "n2", "n3"]
    assert nodes_of(execute(dev.url, "svc-web")) == ["n5"]
    explained = requests.get(f"{dev.url}/v1/query/svc-web/explain", timeout=5)
    assert explained.status_code == 200
    assert explained.json()["Query"]["Service"]["Service"] == "web"
    assert explained.json()["Query"]["ID"] == r.json()["ID"]
    by_id = requests.get(f"{dev.url}/v1/query/{r.json()['ID']}/execute", timeout=5)
    assert by_id.status_code == 500 and "templates can only be resolved up by name" in by_id.text


def test_a_regexp_template_fills_match_groups_and_the_longest_prefix_wins(dev: DevServer) -> None:
    create(dev.url, {"Name": "geo-", "Template": {"Type": "name_prefix_match", "Regexp": "^geo-(.+?)-(.+)$"},
                     "Service": {"Service": "${match(1)}", "Tags": ["${match(2)}"]}})
    create(dev.url, {"Name": "geo-web-", "Template": {"Type": "name_prefix_match", "RemoveEmptyTags": True},
                     "Service": {"Service": "web", "Tags": ["${name.prefix}", "${match(3)}"]}})
    assert nodes_of(execute(dev.url, "geo-redis-secondary")) == ["n2"]
    explained = requests.get(f"{dev.url}/v1/query/geo-redis-secondary/explain", timeout=5).json()["Query"]
    assert explained["Name"] == "geo-" and explained["Service"]["Tags"] == ["secondary"]
    # "geo-web-" is the longer prefix of "geo-web-x": that template answers; match() without a Regexp
    # renders empty, and RemoveEmptyTags drops it
    longer = requests.get(f"{dev.url}/v1/query/geo-web-x/explain", timeout=5).json()["Query"]
    assert longer["Name"] == "geo-web-" and longer["Service"]["Tags"] == ["geo-web-"]


def test_template_rendering_on_the_state_machine() -> None:
    state = State("dc1")
    state.apply(QuerySet({"ID": str(uuid.uuid4()), "Name": "", "Template": {"Type": "name_prefix_match",
                                                                             "RemoveEmptyTags": True},
                          "Service": {"Service": "${name.full}", "Tags": ["${match(1)}", "x"]}}, create=True, now=1.0))
    rendered = state.query_resolve("anything")
    assert rendered is not None and rendered["Service"] == {"Service": "anything", "Tags": ["x"]}
    with pytest.raises(StateError, match="a query template with an empty name already exists"):
        state.apply(QuerySet({"ID": str(uuid.uuid4()), "Name": "", "Template": {"Type": "name_prefix_match"},
                              "Service": {"Service": "y"}}, create=True, now=2.0))
    with pytest.raises(StateError, match="Bad format"):
        state.apply(QuerySet({"ID": str(uuid.uuid4()), "Name": "p", "Template": {"Type": "name_prefix_match"},
                              "Service": {"Service": "${nope}"}}, create=True, now=3.0))


def test_snapshots_keep_queries_and_old_snapshots_without_them_restore() -> None:
    state = State("dc1")
    qid = str(uuid.uuid4())
    state.apply(QuerySet({"ID": qid, "Name": "kept", "Service": {"Service": "redis"}}, create=True, now=1.0))
    snap = state.snapshot()
    other = State("dc1")
    other.apply(Restore(snap))
    assert other.query_get(qid)[1] is not None and other.query_index == state.query_index
    old = {k: v for k, v in snap.items() if k != "Queries"}
    old["Format"] = 1
    third = State("dc1")
    third.apply(Restore(old))  # type: ignore[arg-type]
    assert third.query_list()[1] == [] and third.query_index == 1
    assert "Queries" not in State("dc1").snapshot()  # a store that never had one writes what format 1 wrote


# ---------------------------------------------------------------------- failover over the WAN


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with joined_datacenters(tmp_path_factory.mktemp("pqwan"), "dc1", "dc2", "dc3") as servers:
        register(servers["dc1"].url, "a1", "api", [], status="critical")
        register(servers["dc2"].url, "b1", "api", [], status="critical")
        register(servers["dc3"].url, "c1", "api", [])
        register(servers["dc3"].url, "c2", "api", [])
        yield servers


@pytest.mark.integration
def test_failover_tries_the_nearest_datacenters_then_the_listed_ones(dcs: dict[str, Server]) -> None:
    url = dcs["dc1"].url
    assert create(url, {"Name": "api-local", "Service": {"Service": "api"}}).status_code == 200
    assert create(url, {"Name": "api-nearest", "Service": {"Service": "api", "Failover": {"NearestN": 2}}}).ok
    assert create(url, {"Name": "api-listed", "Service": {"Service": "api", "Failover": {
        "Datacenters": ["dc9", "dc2", "dc3"]}}}).ok

    local = execute(url, "api-local")
    assert local["Nodes"] == [] and local["Datacenter"] == "dc1" and local["Failovers"] == 0
    # dc2 has no healthy instance, dc3 has two; which of them is nearer is what loopback round trips say
    nearest = execute(url, "api-nearest")
    assert nearest["Datacenter"] == "dc3" and sorted(nodes_of(nearest)) == ["c1", "c2"]
    assert nearest["Failovers"] in (1, 2)
    listed = execute(url, "api-listed")
    assert listed["Datacenter"] == "dc3" and listed["Failovers"] == 2  # dc9 is unknown: skipped, not counted
    assert len(execute(url, "api-nearest", limit="1")["Nodes"]) == 1
    # the WAN exchanges are timed: every datacenter's server has a measured coordinate, this one first
    def measured() -> list[dict[str, Any]] | None:
        found = requests.get(f"{url}/v1/coordinate/datacenters", timeout=5).json()
        return found if len(found) == 3 and all(a["Coordinates"] for a in found) else None

    areas = wait_for(measured, what="WAN coordinates of every datacenter")
    assert areas[0]["Datacenter"] == "dc1" and sorted(a["Datacenter"] for a in areas) == ["dc1", "dc2", "dc3"]
    assert [c["Node"] for c in areas[0]["Coordinates"]] == ["dc1-s1.dc1"]
    names = [a["Datacenter"] for a in areas]
    assert requests.get(f"{url}/v1/catalog/datacenters", timeout=5).json() in (names, ["dc1", *reversed(names[1:])])
    rtt = subprocess.run([sys.executable, "-m", "meshctl", "rtt", "-wan", "dc3-s1.dc3"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "CONSUL_HTTP_ADDR": url})
    assert rtt.returncode == 0, rtt.stderr
    assert re.fullmatch(r"Estimated dc3-s1\.dc3 <-> dc1-s1\.dc1 rtt: \d+\.\d{3} ms \(using WAN coordinates\)\n",
                        rtt.stdout), rtt.stdout


def test_failover_order_is_nearest_first_then_the_listed_datacenters() -> None:
    from meshctl.server.coordinates import Coordinate
    from meshctl.server.http.query import failover_datacenters
    from meshctl.server.wan import WanPool, WanServer

    pool = WanPool("dc1", [], lambda: [{"Node": "s1", "HTTP": "h", "WAN": "w"}])
    for dc, x_ms in (("dc2", 40.0), ("dc3", 5.0), ("dc4", 20.0)):
        pool.remote[dc] = WanServer(dc, f"{dc}-s1", f"{dc}:1", f"{dc}:2",
                                    coord=Coordinate([x_ms / 1000] + [0.0] * 7, 0.1, 0.0, 1e-5).to_json())
    pool.remote["dc5"] = WanServer("dc5", "dc5-s1", "dc5:1", "dc5:2")  # not measured yet: last
    assert pool.datacenters() == ["dc1", "dc3", "dc4", "dc2", "dc5"]
    known = pool.datacenters()[1:]
    query = {"Service": {"Failover": {"NearestN": 2, "Datacenters": ["dc5", "dc9", "dc3"]}}}
    assert failover_datacenters(query, known) == ["dc3", "dc4", "dc5"]


# ---------------------------------------------------------------------- ACLs

ROOT = "root-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevServer, dict[str, str]]]:
    srv = start_dev_server(tmp_path_factory.mktemp("pqacl"), "-acl-enabled", "-acl-default-policy", "deny",
                           "-acl-initial-management", ROOT, node=NODE)
    root = {"X-Consul-Token": ROOT}
    url = srv.url
    wait_for(lambda: requests.get(f"{url}/v1/acl/token/self", headers=root, timeout=5).status_code == 200,
             what="ACLs ready")
    wait_node_registered(srv, root)
    requests.put(f"{url}/v1/catalog/register", headers=root, json={
        "Node": "n1", "Address": "127.0.0.11", "Service": {"ID": "db1", "Service": "db", "Port": 5432}},
        timeout=5).raise_for_status()

    def token(rules: str) -> str:
        policy = requests.put(f"{url}/v1/acl/policy", headers=root, json={"Name": uuid.uuid4().hex, "Rules": rules},
                              timeout=5).json()
        return requests.put(f"{url}/v1/acl/token", headers=root, json={"Policies": [{"ID": policy["ID"]}]},
                            timeout=5).json()["SecretID"]

    tokens = {
        "app": token('query_prefix "app-" { policy = "write" }\nservice_prefix "" { policy = "read" }\n'
                     'node_prefix "" { policy = "read" }'),
        "reader": token('query_prefix "app-" { policy = "read" }'),
        "db": token('service "db" { policy = "read" }\nnode_prefix "" { policy = "read" }'),
    }
    yield srv, tokens
    srv.stop()


def test_writing_a_named_query_needs_query_write_on_its_name(secured: tuple[DevServer, dict[str, str]]) -> None:
    srv, tokens = secured
    ok = create(srv.url, {"Name": "app-db", "Service": {"Service": "db"}, "Token": tokens["db"]}, tokens["app"])
    assert ok.status_code == 200, ok.text
    denied = create(srv.url, {"Name": "other-db", "Service": {"Service": "db"}}, tokens["app"])
    assert denied.status_code == 403 and denied.text.startswith("Permission denied")
    qid = ok.json()["ID"]
    # renaming it out of the prefix is a write on the new name too
    r = requests.put(f"{srv.url}/v1/query/{qid}", headers={"X-Consul-Token": tokens["app"]},
                     json={"Name": "other-db", "Service": {"Service": "db"}}, timeout=5)
    assert r.status_code == 403
    r = requests.delete(f"{srv.url}/v1/query/{qid}", headers={"X-Consul-Token": tokens["reader"]}, timeout=5)
    assert r.status_code == 403


def test_lists_show_what_query_read_allows_with_tokens_hidden(secured: tuple[DevServer, dict[str, str]]) -> None:
    srv, tokens = secured
    create(srv.url, {"Name": "app-listed", "Service": {"Service": "db"}, "Token": tokens["db"]}, ROOT)
    create(srv.url, {"Name": "secret-listed", "Service": {"Service": "db"}}, ROOT)
    seen = requests.get(f"{srv.url}/v1/query", headers={"X-Consul-Token": tokens["reader"]}, timeout=5).json()
    names = {q["Name"] for q in seen}
    assert "app-listed" in names and "secret-listed" not in names
    assert {q["Token"] for q in seen if q["Name"] == "app-listed"} == {"<hidden>"}
    managed = requests.get(f"{srv.url}/v1/query", headers={"X-Consul-Token": ROOT}, timeout=5).json()
    assert {q["Token"] for q in managed if q["Name"] == "app-listed"} == {tokens["db"]}
    assert requests.get(f"{srv.url}/v1/query", timeout=5).json() == []  # anonymous: nothing readable
    secret = next(q for q in managed if q["Name"] == "secret-listed")
    r = requests.get(f"{srv.url}/v1/query/{secret['ID']}", headers={"X-Consul-Token": tokens["reader"]}, timeout=5)
    assert r.status_code == 403 and r.text == "Permission denied"


def test_execution_is_filtered_by_the_captured_token_else_the_callers(secured: tuple[DevServer, dict[str, str]]) -> None:
    srv, tokens = secured
    create(srv.url, {"Name": "app-captured", "Service": {"Service": "db"}, "Token": tokens["db"]}, ROOT)
    create(srv.url, {"Name": "app-plain", "Service": {"Service": "db"}}, ROOT)
    assert nodes_of(execute(srv.url, "app-captured")) == ["n1"]  # anonymous caller, the query's token reads db
    assert execute(srv.url, "app-plain")["Nodes"] == []  # anonymous reads nothing
    assert nodes_of(execute(srv.url, "app-plain", tokens["db"])) == ["n1"]


def test_an_unnamed_query_is_read_by_its_id(secured: tuple[DevServer, dict[str, str]]) -> None:
    srv, tokens = secured
    root = {"X-Consul-Token": ROOT}
    sid = requests.put(f"{srv.url}/v1/session/create", headers=root, json={"Node": NODE}, timeout=5).json()["ID"]
    r = create(srv.url, {"Session": sid, "Service": {"Service": "db"}}, tokens["reader"])
    assert r.status_code == 200, r.text  # no name: no query rule applies
    qid = r.json()["ID"]
    assert [q["ID"] for q in requests.get(f"{srv.url}/v1/query/{qid}", headers={"X-Consul-Token": tokens["reader"]},
                                          timeout=5).json()] == [qid]
    listed = requests.get(f"{srv.url}/v1/query", headers={"X-Consul-Token": tokens["reader"]}, timeout=5).json()
    assert qid not in [q["ID"] for q in listed]
