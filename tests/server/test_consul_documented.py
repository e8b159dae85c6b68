"""Behaviours Consul documents, one test each, against a real dev agent.

Each test names the documented behaviour it holds meshctl to (Consul's HTTP API docs, its
filtering docs, its agent check docs). The WAN half of catalog `Datacenter` forwarding is in
tests/cluster/test_wan.py.
"""

from __future__ import annotations

import pytest
import requests
from devserver import DevServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(shared_dev_server: DevServer) -> str:
    return shared_dev_server.url


def put(url: str, path: str, body: object = None) -> requests.Response:
    return requests.put(url + path, json=body, timeout=10)


def register(url: str, node: str, service: dict, **extra: object) -> None:
    r = put(url, "/v1/catalog/register", {"Node": node, "Address": "127.0.0.2", "Service": service, **extra})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------- catalog Datacenter


def test_catalog_write_for_an_unknown_datacenter_has_no_path(url: str) -> None:
    """A register/deregister body's `Datacenter` picks the datacenter; one nobody knows is a 500."""
    for path, body in (("/v1/catalog/register", {"Datacenter": "nowhere", "Node": "dc-n", "Address": "127.0.0.2"}),
                       ("/v1/catalog/deregister", {"Datacenter": "nowhere", "Node": "dc-n"})):
        r = put(url, path, body)
        assert (r.status_code, r.text) == (500, "No path to datacenter")
    assert requests.get(f"{url}/v1/catalog/node/dc-n", timeout=10).json() is None
    # this datacenter's own name is this datacenter
    assert put(url, "/v1/catalog/register", {"Datacenter": "dc1", "Node": "dc-n", "Address": "127.0.0.2"}).json()


# ---------------------------------------------------------------------- ?filter= selectors


@pytest.fixture(scope="module")
def filtered(url: str) -> str:
    register(url, "flt-1", {"ID": "flt-api1", "Service": "flt-api", "Tags": ["primary"], "Port": 80,
                            "Meta": {"version": "2"}}, NodeMeta={"rack": "r1"})
    register(url, "flt-2", {"ID": "flt-db1", "Service": "flt-db", "Tags": ["replica"], "Port": 5432})
    return url


@pytest.mark.parametrize(("path", "expr", "expected"), [
    ("/v1/catalog/services", '"primary" in ServiceTags', {"flt-api": ["primary"]}),
    ("/v1/catalog/services", 'ServiceName == "flt-db"', {"flt-db": ["replica"]}),
    ("/v1/catalog/services", 'NodeMeta.rack == "r1"', {"flt-api": ["primary"]}),
    ("/v1/catalog/services", 'Node == "flt-2"', {"flt-db": ["replica"]}),
    ("/v1/catalog/services", 'ServiceMeta.version == "2"', {"flt-api": ["primary"]}),
])
def test_catalog_services_filter_uses_service_node_selectors(filtered: str, path: str, expr: str,
                                                             expected: dict) -> None:
    """/v1/catalog/services filters structs.ServiceNode: ServiceName, ServiceTags, Node, NodeMeta..."""
    r = requests.get(filtered + path, params={"filter": expr}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == expected


@pytest.mark.parametrize(("path", "expr", "bad"), [
    ("/v1/catalog/services", '"primary" in Tags', "Tags"),
    ("/v1/catalog/services", 'Service == "flt-api"', "Service"),
    ("/v1/catalog/service/flt-api", 'Tags is empty', "Tags"),
    ("/v1/catalog/nodes", 'NodeMeta.rack == "r1"', "NodeMeta"),
    ("/v1/health/service/flt-api", 'ServiceName == "flt-api"', "ServiceName"),
    ("/v1/health/service/flt-api", 'Service.Nope == "x"', "Service.Nope"),
    ("/v1/health/node/flt-1", 'Definition.HTTP == ""', "Definition"),
    ("/v1/agent/services", 'ServiceName == "x"', "ServiceName"),
    ("/v1/agent/checks", 'Service == "x"', "Service"),
    ("/v1/catalog/node/flt-1", 'Meta.version.x == "2"', "Meta.version.x"),
])
def test_an_unknown_selector_is_a_400_naming_it(filtered: str, path: str, expr: str, bad: str) -> None:
    """go-bexpr validates selectors against the endpoint's record type: an unknown one is an error."""
    r = requests.get(filtered + path, params={"filter": expr}, timeout=10)
    assert r.status_code == 400
    assert r.text == f'Failed to create boolean expression evaluator: Selector "{bad}" is not valid'


@pytest.mark.parametrize(("path", "expr", "count"), [
    ("/v1/catalog/nodes", 'Meta.rack == "r1"', 1),
    ("/v1/catalog/service/flt-api", 'ServiceTaggedAddresses.lan.Port == 1 or ServicePort == 80', 1),
    ("/v1/health/service/flt-api", 'Service.Meta.version == "2" and Node.Node == "flt-1"', 1),
    ("/v1/health/service/flt-api", 'Checks.Status == "critical"', 0),
])
def test_documented_selectors_are_accepted(filtered: str, path: str, expr: str, count: int) -> None:
    r = requests.get(filtered + path, params={"filter": expr}, timeout=10)
    assert r.status_code == 200, r.text
    assert len(r.json()) == count
