"""Behaviours Consul documents, one test each, against a real dev agent.

Each test names the documented behaviour it holds meshctl to (Consul's HTTP API docs, its
filtering docs, its agent check docs). The WAN half of catalog `Datacenter` forwarding is in
tests/cluster/test_wan.py.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from devserver import DevServer, free_port, start_dev_server, wait_for

from meshctl.server.acl.state import parse_time

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


# ---------------------------------------------------------------------- agent checks


def agent_check(url: str, cid: str) -> dict:
    return requests.get(f"{url}/v1/agent/checks", timeout=10).json().get(cid) or {}


@pytest.fixture
def node_checks(url: str) -> Iterator[list[str]]:
    """Node-level checks a test registers, deregistered after it (alias checks count node checks)."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        put(url, f"/v1/agent/check/deregister/{cid}")


def check_reaches(url: str, cid: str, status: str, output_part: str = "") -> dict:
    return wait_for(lambda: (c := agent_check(url, cid)).get("Status") == status and output_part in c["Output"]
                    and c, timeout=30, what=f"{cid} {status} {output_part!r}")


def test_check_register_for_an_unknown_service_is_404(url: str) -> None:
    r = put(url, "/v1/agent/check/register", {"Name": "orphan", "TTL": "10s", "ServiceID": "no-such-svc"})
    assert (r.status_code, r.text) == (404, 'ServiceID "no-such-svc" does not exist')
    assert agent_check(url, "orphan") == {}


@pytest.mark.parametrize(("spec", "text"), [
    ({"GRPC": "127.0.0.1:9", "Interval": "10s"}, "gRPC checks are not supported by meshctl"),
    ({"H2PING": "127.0.0.1:9", "Interval": "10s"}, "H2PING checks are not supported by meshctl"),
])
def test_check_types_meshctl_cannot_run_are_refused(url: str, spec: dict, text: str) -> None:
    """Never accepted and left critical: a 400 that says why, and nothing registered."""
    for path, body in (("/v1/agent/check/register", {"Name": "unrunnable", **spec}),
                       ("/v1/agent/service/register", {"Name": "unrunnable-svc", "Check": spec})):
        r = put(url, path, body)
        assert r.status_code == 400 and r.text.startswith(text), r.text
    assert agent_check(url, "unrunnable") == {}
    assert "unrunnable-svc" not in requests.get(f"{url}/v1/agent/services", timeout=10).json()


@pytest.fixture
def udp_port() -> Iterator[tuple[int, socket.socket]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1], sock
    sock.close()


def test_udp_check_passes_on_an_answer_and_on_silence(url: str, udp_port: tuple[int, socket.socket],
                                                      node_checks: list[str]) -> None:
    """Consul's UDP check: a datagram answered, or not refused within the timeout, is passing."""
    port, sock = udp_port
    stop = threading.Event()

    def echo() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(64)
            except OSError:
                continue
            sock.sendto(b"pong" + data, peer)

    server = threading.Thread(target=echo, daemon=True)
    server.start()
    node_checks += ["udp-up", "udp-silent"]
    try:
        body = {"Name": "udp-up", "UDP": f"127.0.0.1:{port}", "Interval": "1s", "Timeout": "1s"}
        assert put(url, "/v1/agent/check/register", body).status_code == 200
        check = check_reaches(url, "udp-up", "passing", f"UDP connect 127.0.0.1:{port}: Success")
        assert check["Type"] == "udp"
    finally:
        stop.set()
        server.join(5)
    # bound but silent: no refusal, so still passing after the timeout
    body = {"Name": "udp-silent", "UDP": f"127.0.0.1:{port}", "Interval": "1s", "Timeout": "500ms"}
    assert put(url, "/v1/agent/check/register", body).status_code == 200
    check_reaches(url, "udp-silent", "passing", "Success")


def test_udp_check_is_critical_when_the_port_refuses(url: str, node_checks: list[str]) -> None:
    node_checks.append("udp-down")
    closed = free_port()  # nothing listens: the kernel answers ICMP port unreachable
    body = {"Name": "udp-down", "UDP": f"127.0.0.1:{closed}", "Interval": "1s", "Timeout": "2s"}
    assert put(url, "/v1/agent/check/register", body).status_code == 200
    check = check_reaches(url, "udp-down", "critical", "connection refused")
    assert check["Output"].startswith("read udp 127.0.0.1:") and f"->127.0.0.1:{closed}" in check["Output"]


def test_alias_check_follows_the_aliased_service(url: str) -> None:
    """An alias check mirrors the aliased service's health: critical wins, then warning."""
    assert put(url, "/v1/agent/service/register", {"Name": "alias-db", "Check": {"TTL": "10m"}}).status_code == 200
    assert put(url, "/v1/agent/service/register", {
        "Name": "alias-web", "Check": {"Name": "db alive", "AliasService": "alias-db"}}).status_code == 200
    cid = "service:alias-web"
    check_reaches(url, cid, "critical", 'Aliased check "Service \'alias-db\' check" failing')
    assert agent_check(url, cid)["Type"] == "alias"
    assert put(url, "/v1/agent/check/pass/service:alias-db").status_code == 200
    check_reaches(url, cid, "passing", "All checks passing.")
    assert put(url, "/v1/agent/check/warn/service:alias-db?note=slow").status_code == 200
    check_reaches(url, cid, "warning", "slow")
    # the aliased service gone: critical, saying so
    assert put(url, "/v1/agent/service/deregister/alias-db").status_code == 200
    check_reaches(url, cid, "critical", "Service alias-db could not be found on node")


def test_alias_check_of_another_node_follows_the_catalog(url: str, node_checks: list[str]) -> None:
    node_checks.append("ext-alias")
    body = {"Node": "alias-ext", "Address": "127.0.0.7", "Service": {"ID": "ext1", "Service": "ext"},
            "Checks": [{"CheckID": "ext-ok", "Name": "ext ok", "Status": "passing", "ServiceID": "ext1"}]}
    assert put(url, "/v1/catalog/register", body).status_code == 200
    reg = {"Name": "ext-alias", "AliasNode": "alias-ext", "AliasService": "ext1"}
    assert put(url, "/v1/agent/check/register", reg).status_code == 200
    check_reaches(url, "ext-alias", "passing", "All checks passing.")
    body["Checks"][0]["Status"] = "critical"
    assert put(url, "/v1/catalog/register", body).status_code == 200
    check_reaches(url, "ext-alias", "critical", 'Aliased check "ext ok" failing')


# ---------------------------------------------------------------------- service TaggedAddresses and Locality


def test_service_tagged_addresses_are_address_port_objects_and_locality_is_kept(url: str) -> None:
    """Agent services: TaggedAddresses map a tag to {Address, Port}; Locality {Region, Zone} is kept."""
    body = {"Name": "loc-web", "Port": 8080,
            "TaggedAddresses": {"lan": {"address": "10.0.0.1", "port": 8080}, "wan": {"Address": "198.18.0.1"}},
            "Locality": {"region": "us-east-1", "zone": "us-east-1a"}}
    assert put(url, "/v1/agent/service/register", body).status_code == 200
    addresses = {"lan": {"Address": "10.0.0.1", "Port": 8080}, "wan": {"Address": "198.18.0.1", "Port": 0}}
    where = {"Region": "us-east-1", "Zone": "us-east-1a"}
    svc = requests.get(f"{url}/v1/agent/service/loc-web", timeout=10).json()
    assert svc["TaggedAddresses"] == addresses and svc["Locality"] == where
    [inst] = requests.get(f"{url}/v1/catalog/service/loc-web", timeout=10).json()
    assert inst["ServiceTaggedAddresses"] == addresses and inst["ServiceLocality"] == where
    [entry] = requests.get(f"{url}/v1/health/service/loc-web", timeout=10).json()
    assert entry["Service"]["TaggedAddresses"] == addresses and entry["Service"]["Locality"] == where


@pytest.mark.parametrize("path", ["/v1/agent/service/register", "/v1/catalog/register"])
def test_a_tagged_address_that_is_not_an_object_is_a_400(url: str, path: str) -> None:
    svc = {"Name": "bad-addr", "Service": "bad-addr", "TaggedAddresses": {"lan": "10.0.0.1"}}
    body = svc if path.startswith("/v1/agent") else {"Node": "bad-addr-node", "Address": "127.0.0.2", "Service": svc}
    r = put(url, path, body)
    assert (r.status_code, r.text) == (400, "Request decode failed: TaggedAddresses.lan must be an object")
    assert requests.get(f"{url}/v1/catalog/service/bad-addr", timeout=10).json() == []


# ---------------------------------------------------------------------- ?peer=


@pytest.mark.parametrize(("path", "empty"), [
    ("/v1/health/service/consul", []), ("/v1/health/node/devnode", []),
    ("/v1/health/state/any", []), ("/v1/catalog/nodes", []), ("/v1/catalog/services", {}),
    ("/v1/catalog/service/consul", []), ("/v1/catalog/node/devnode", None), ("/v1/catalog/node-services/devnode", None),
])
def test_peer_reads_select_the_records_imported_from_that_peer(url: str, path: str, empty: object) -> None:
    """?peer= selects records by PeerName; meshctl has no cluster peering, so a peer has none —
    never this cluster's own records (which a query ignoring ?peer= would show)."""
    local = requests.get(url + path, timeout=10)
    assert local.status_code == 200 and local.json()
    r = requests.get(url + path, params={"peer": "west"}, timeout=10)
    assert r.status_code == 200 and r.json() == empty
    assert int(r.headers["X-Consul-Index"]) >= 1


# ---------------------------------------------------------------------- agent health by service


def health(url: str, path: str, **params: str) -> tuple[int, object]:
    r = requests.get(url + path, params=params, timeout=10)
    return r.status_code, (r.json() if r.headers["Content-Type"].startswith("application/json") else r.text)


def test_agent_health_by_service_name_and_id_answer_200_429_503(url: str) -> None:
    """Load balancers read the code: passing 200, warning 429, critical 503; by name, the worst instance."""
    for sid in ("lb-1", "lb-2"):
        body = {"ID": sid, "Name": "lb", "Port": 80, "Check": {"TTL": "10m", "Status": "passing"}}
        assert put(url, "/v1/agent/service/register", body).status_code == 200
    code, infos = health(url, "/v1/agent/health/service/name/lb")
    assert code == 200 and [i["Service"]["ID"] for i in infos] == ["lb-1", "lb-2"]
    assert {i["AggregatedStatus"] for i in infos} == {"passing"}
    assert health(url, "/v1/agent/health/service/name/lb", format="text") == (200, "passing")
    assert put(url, "/v1/agent/check/warn/service:lb-2").status_code == 200
    assert health(url, "/v1/agent/health/service/name/lb", format="text") == (429, "warning")
    assert health(url, "/v1/agent/health/service/id/lb-1", format="text") == (200, "passing")
    code, info = health(url, "/v1/agent/health/service/id/lb-2")
    assert code == 429 and info["AggregatedStatus"] == "warning" and info["Service"]["ID"] == "lb-2"
    assert put(url, "/v1/agent/check/fail/service:lb-1").status_code == 200
    assert health(url, "/v1/agent/health/service/name/lb", format="text") == (503, "critical")
    assert health(url, "/v1/agent/health/service/id/lb-1", format="text") == (503, "critical")
    assert put(url, "/v1/agent/service/maintenance/lb-2?enable=true").status_code == 200
    assert health(url, "/v1/agent/health/service/id/lb-2", format="text") == (503, "maintenance")


def test_agent_health_of_an_unknown_service_is_404(url: str) -> None:
    assert health(url, "/v1/agent/health/service/name/nope", format="text") == (404, "ServiceName nope Not Found")
    assert health(url, "/v1/agent/health/service/name/nope") == (404, [])
    assert health(url, "/v1/agent/health/service/id/nope") == (404, "ServiceId nope not found")


# ---------------------------------------------------------------------- operator


def test_raft_configuration_index_is_the_configurations_not_the_last_writes(url: str) -> None:
    """Index is the Raft index of the configuration in force: a single server's bootstrap one (1),
    which writes to the store do not move."""
    before = requests.get(f"{url}/v1/operator/raft/configuration", timeout=10).json()
    for i in range(3):
        assert put(url, f"/v1/kv/raft-index/{i}", None).status_code == 200
    after = requests.get(f"{url}/v1/operator/raft/configuration", timeout=10).json()
    assert before["Index"] == after["Index"] == 1
    assert [s["Leader"] for s in after["Servers"]] == [True]


# ---------------------------------------------------------------------- ACL

ROOT = "6b1f7c2e-9d8a-4e3b-a5c4-2f1e0d9c8b7a"
ROOT_H = {"X-Consul-Token": ROOT}


@pytest.fixture(scope="module")
def acl_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    conf = tmp_path_factory.mktemp("acl-doc-conf")
    # Consul's shortest token lifetime is 1m; this server allows 2s, so expiry is seen in a test
    (conf / "acl.hcl").write_text('acl {\n  token_min_expiration_ttl = "2s"\n}\n')
    server = start_dev_server(tmp_path_factory.mktemp("acl-doc"), "-acl-enabled", "-acl-default-policy", "deny",
                              "-acl-initial-management", ROOT, "-config-dir", str(conf))
    wait_for(lambda: requests.get(f"{server.url}/v1/acl/token/self", headers=ROOT_H, timeout=5).status_code == 200,
             what="ACLs ready")
    yield server.url
    server.stop()


@pytest.mark.parametrize(("path", "text"), [
    ("/v1/acl/policy/0b9a1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "Requested policy does not exist"),
    ("/v1/acl/policy/name/no-such-policy", "Requested policy does not exist"),
    ("/v1/acl/role/0b9a1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "Requested role does not exist"),
    ("/v1/acl/role/name/no-such-role", "Requested role does not exist"),
])
def test_a_missing_policy_or_role_is_404(acl_url: str, path: str, text: str) -> None:
    r = requests.get(acl_url + path, headers=ROOT_H, timeout=10)
    assert (r.status_code, r.text) == (404, text)


def test_a_missing_token_is_still_acl_not_found(acl_url: str) -> None:
    r = requests.get(f"{acl_url}/v1/acl/token/0b9a1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", headers=ROOT_H, timeout=10)
    assert (r.status_code, r.text) == (403, "ACL not found")


def token_create(acl_url: str, **body: object) -> requests.Response:
    return requests.put(f"{acl_url}/v1/acl/token", json=body, headers=ROOT_H, timeout=10)


def test_token_expiration_ttl_sets_expiration_time_and_the_token_stops_working(acl_url: str) -> None:
    """ExpirationTTL (Go sends nanoseconds) sets ExpirationTime = CreateTime + TTL; once past it the
    token is "ACL not found" everywhere, and the leader reaps it."""
    r = token_create(acl_url, Description="short", ExpirationTTL=3 * 10**9)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert "ExpirationTTL" not in tok
    lifetime = parse_time(tok["ExpirationTime"]) - parse_time(tok["CreateTime"])
    assert 2.9 <= lifetime <= 3.1
    me = {"X-Consul-Token": tok["SecretID"]}
    assert requests.get(f"{acl_url}/v1/acl/token/self", headers=me, timeout=10).status_code == 200
    wait_for(lambda: requests.get(f"{acl_url}/v1/acl/token/self", headers=me, timeout=10).text == "ACL not found",
             timeout=30, what="the token to expire")
    r = requests.get(f"{acl_url}/v1/kv/x", headers=me, timeout=10)
    assert (r.status_code, r.text) == (403, "ACL not found")

    def reaped() -> bool:
        listed = requests.get(f"{acl_url}/v1/acl/tokens", headers=ROOT_H, timeout=10).json()
        read = requests.get(f"{acl_url}/v1/acl/token/{tok['AccessorID']}", headers=ROOT_H, timeout=10)
        return tok["AccessorID"] not in [t["AccessorID"] for t in listed] and read.status_code == 403

    wait_for(reaped, timeout=30, what="the expired token to be reaped")


def test_token_expiration_time_and_ttl_as_strings(acl_url: str) -> None:
    r = token_create(acl_url, ExpirationTTL="1h")
    assert r.status_code == 200, r.text
    assert 3599 <= parse_time(r.json()["ExpirationTime"]) - parse_time(r.json()["CreateTime"]) <= 3601
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
    r = token_create(acl_url, ExpirationTime=when)
    assert r.status_code == 200 and parse_time(r.json()["ExpirationTime"]) == parse_time(when)


@pytest.mark.parametrize(("body", "text"), [
    ({"ExpirationTTL": "48h"}, "ExpirationTime cannot be more than 24h0m0s in the future"),
    ({"ExpirationTTL": "1s"}, "ExpirationTime cannot be less than 2s in the future"),
    ({"ExpirationTTL": "1h", "ExpirationTime": "2099-01-01T00:00:00Z"},
     "Token Expiration TTL and Expiration Time cannot both be set"),
    ({"ExpirationTime": "2001-01-01T00:00:00Z"}, "ExpirationTime cannot be before CreateTime"),
])
def test_token_expiration_out_of_bounds_is_refused(acl_url: str, body: dict, text: str) -> None:
    r = token_create(acl_url, Description="refused", **body)
    assert r.status_code == 400 and r.text.startswith(text), r.text
    listed = requests.get(f"{acl_url}/v1/acl/tokens", headers=ROOT_H, timeout=10).json()
    assert "refused" not in [t["Description"] for t in listed]


def test_token_expiration_cannot_change_on_update(acl_url: str) -> None:
    tok = token_create(acl_url, ExpirationTTL="1h").json()
    path = f"{acl_url}/v1/acl/token/{tok['AccessorID']}"
    r = requests.put(path, json={"Description": "renamed", "ExpirationTTL": "2h"}, headers=ROOT_H, timeout=10)
    assert (r.status_code, r.text) == (400, f"Cannot change expiration time of {tok['AccessorID']}")
    r = requests.put(path, json={"Description": "renamed"}, headers=ROOT_H, timeout=10)
    assert r.status_code == 200 and r.json()["ExpirationTime"] == tok["ExpirationTime"]


def test_agent_leave_on_a_dev_agent_answers_then_shuts_down(tmp_path) -> None:
    """PUT /v1/agent/leave: 200, then the agent leaves and its process exits (cleanly)."""
    server = start_dev_server(tmp_path)
    try:
        r = requests.put(f"{server.url}/v1/agent/leave", timeout=10)
        assert (r.status_code, r.text) == (200, "")
        assert server.proc.wait(30) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{server.url}/v1/agent/self", timeout=5)
    finally:
        server.stop()


def test_agent_service_blocks_on_its_content_hash(url: str) -> None:
    """GET /v1/agent/service/<id>?hash=<ContentHash> waits until the definition changes."""
    assert put(url, "/v1/agent/service/register", {"ID": "hash-web", "Name": "hash-web", "Tags": ["v1"]}).ok
    first = requests.get(f"{url}/v1/agent/service/hash-web", timeout=10)
    digest = first.headers["X-Consul-ContentHash"]
    assert first.json()["ContentHash"] == digest
    # a hash that is not the current one answers at once
    stale = requests.get(f"{url}/v1/agent/service/hash-web", params={"hash": "0" * 16, "wait": "60s"}, timeout=10)
    assert stale.json()["Tags"] == ["v1"]
    results: list[requests.Response] = []
    waiter = threading.Thread(target=lambda: results.append(requests.get(
        f"{url}/v1/agent/service/hash-web", params={"hash": digest, "wait": "60s"}, timeout=90)))
    waiter.start()
    assert put(url, "/v1/agent/service/register", {"ID": "hash-web", "Name": "hash-web", "Tags": ["v2"]}).ok
    waiter.join(90)
    [changed] = results
    assert changed.json()["Tags"] == ["v2"] and changed.headers["X-Consul-ContentHash"] != digest
    # an unchanged service answers the same hash once ?wait runs out
    quiet = requests.get(f"{url}/v1/agent/service/hash-web",
                         params={"hash": changed.headers["X-Consul-ContentHash"], "wait": "1s"}, timeout=10)
    assert quiet.headers["X-Consul-ContentHash"] == changed.headers["X-Consul-ContentHash"]


# ---------------------------------------------------------------------- ACL templated policies


def test_templated_policies_are_listed_and_read_by_name(acl_url: str) -> None:
    listed = requests.get(f"{acl_url}/v1/acl/templated-policies", headers=ROOT_H, timeout=10).json()
    assert sorted(listed) == ["builtin/dns", "builtin/node", "builtin/service"]
    one = requests.get(f"{acl_url}/v1/acl/templated-policy/name/builtin/service", headers=ROOT_H, timeout=10)
    assert one.status_code == 200 and one.json()["TemplateName"] == "builtin/service"
    assert 'service "{{.Name}}"' in one.json()["Template"] and '"name"' in one.json()["Schema"]
    assert requests.get(f"{acl_url}/v1/acl/templated-policy/name/builtin/nope", headers=ROOT_H,
                        timeout=10).status_code == 404
    assert requests.get(f"{acl_url}/v1/acl/templated-policies", timeout=10).status_code == 403  # acl:read


def test_builtin_service_template_grants_exactly_its_rules(acl_url: str) -> None:
    """builtin/service for "web": write service web (and its sidecar), read all services and nodes; nothing else."""
    r = token_create(acl_url, TemplatedPolicies=[{"TemplateName": "builtin/service",
                                                  "TemplateVariables": {"Name": "tpl-web"}}])
    assert r.status_code == 200, r.text
    assert r.json()["TemplatedPolicies"] == [{"TemplateName": "builtin/service", "TemplateVariables": {"Name": "tpl-web"}}]
    tok = {"X-Consul-Token": r.json()["SecretID"]}
    for name in ("tpl-web", "tpl-other"):
        assert requests.put(f"{acl_url}/v1/catalog/register", headers=ROOT_H, timeout=10, json={
            "Node": "tpl-n", "Address": "127.0.0.2", "Service": {"Service": name}}).status_code == 200

    def register(name: str) -> int:
        return requests.put(f"{acl_url}/v1/agent/service/register", headers=tok, timeout=10,
                            json={"Name": name, "Port": 80}).status_code

    assert register("tpl-web") == 200 and register("tpl-web-sidecar-proxy") == 200
    assert register("tpl-other") == 403
    nodes = requests.get(f"{acl_url}/v1/catalog/nodes", headers=tok, timeout=10).json()
    assert "tpl-n" in [n["Node"] for n in nodes]  # node_prefix "" read
    assert "tpl-other" in requests.get(f"{acl_url}/v1/catalog/services", headers=tok, timeout=10).json()
    # nothing else: no KV, no node writes, no ACL reads
    assert requests.get(f"{acl_url}/v1/kv/anything", headers=tok, timeout=10).status_code == 403
    assert requests.put(f"{acl_url}/v1/catalog/register", headers=tok, timeout=10, json={
        "Node": "tpl-n2", "Address": "127.0.0.2"}).status_code == 403
    assert requests.get(f"{acl_url}/v1/acl/policies", headers=tok, timeout=10).status_code == 403
    clone = requests.put(f"{acl_url}/v1/acl/token/{r.json()['AccessorID']}/clone", json={}, headers=ROOT_H, timeout=10)
    assert clone.json()["TemplatedPolicies"] == r.json()["TemplatedPolicies"]


def test_builtin_node_and_dns_templates_on_a_role(acl_url: str) -> None:
    role = requests.put(f"{acl_url}/v1/acl/role", headers=ROOT_H, timeout=10, json={
        "Name": "tpl-role", "TemplatedPolicies": [{"TemplateName": "builtin/node", "TemplateVariables": {"Name": "tpl-node"}},
                                                  {"TemplateName": "builtin/dns"}]})
    assert role.status_code == 200, role.text
    tok = {"X-Consul-Token": token_create(acl_url, Roles=[{"Name": "tpl-role"}]).json()["SecretID"]}
    node = {"Node": "tpl-node", "Address": "127.0.0.2"}
    assert requests.put(f"{acl_url}/v1/catalog/register", headers=tok, json=node, timeout=10).status_code == 200
    other = {"Node": "tpl-else", "Address": "127.0.0.2"}
    assert requests.put(f"{acl_url}/v1/catalog/register", headers=tok, json=other, timeout=10).status_code == 403
    assert requests.get(f"{acl_url}/v1/query", headers=tok, timeout=10).status_code == 200  # query_prefix read


@pytest.mark.parametrize(("links", "text"), [
    ([{"TemplateName": "builtin/nope"}], "does not exist"),
    ([{"TemplateName": "builtin/service"}], "name is required"),
    ([{"TemplateName": "builtin/service", "TemplateVariables": {"Name": "bad name!"}}], "not a valid name"),
])
def test_bad_templated_policies_are_refused(acl_url: str, links: list, text: str) -> None:
    r = token_create(acl_url, TemplatedPolicies=links)
    assert r.status_code == 400 and text in r.text


def test_auth_methods_are_refused_with_a_clear_400(acl_url: str) -> None:
    """No jwt/kubernetes/oidc login here: every auth-method route says so, even to the management token."""
    for method, path in (("PUT", "/v1/acl/auth-method"), ("GET", "/v1/acl/auth-methods"),
                         ("PUT", "/v1/acl/binding-rule"), ("POST", "/v1/acl/login")):
        r = requests.request(method, acl_url + path, headers=ROOT_H, json={"Name": "jwt", "Type": "jwt"}, timeout=10)
        assert r.status_code == 400 and "not supported by meshctl" in r.text, (path, r.text)


def test_operator_usage_counts_this_datacenters_catalog(url: str) -> None:
    """/v1/operator/usage: Usage.<dc> with Services, ServiceInstances, ConnectServiceInstances, Nodes."""
    before = requests.get(f"{url}/v1/operator/usage", timeout=10)
    assert before.status_code == 200 and int(before.headers["X-Consul-Index"]) >= 1
    dc = before.json()["Usage"]["dc1"]
    assert set(dc) == {"Services", "ServiceInstances", "ConnectServiceInstances", "BillableServiceInstances", "Nodes"}
    assert dc["ConnectServiceInstances"]["connect-proxy"] == 0
    for node in ("usage-n1", "usage-n2"):
        register(url, node, {"ID": "usage-web", "Service": "usage-web", "Port": 80})
    after = requests.get(f"{url}/v1/operator/usage", timeout=10).json()["Usage"]["dc1"]
    assert after["Nodes"] >= dc["Nodes"] + 2
    assert after["Services"] == dc["Services"] + 1
    assert after["ServiceInstances"] == dc["ServiceInstances"] + 2
    assert after["BillableServiceInstances"] == dc["BillableServiceInstances"] + 2


def test_operator_keyring_lists_the_encrypt_key(tmp_path) -> None:
    """GET /v1/operator/keyring: a WAN and a LAN entry with Keys and PrimaryKeys {key: nodes}."""
    key = "K7cJ3iJ9qC2pX8h0vT5mQw=="
    server = start_dev_server(tmp_path, "-encrypt", key)
    try:
        r = requests.get(f"{server.url}/v1/operator/keyring", timeout=10)
        assert r.status_code == 200, r.text
        assert [(e["WAN"], e["Datacenter"], e["Keys"], e["PrimaryKeys"], e["NumNodes"]) for e in r.json()] == [
            (True, "dc1", {key: 1}, {key: 1}, 1), (False, "dc1", {key: 1}, {key: 1}, 1)]
        change = requests.post(f"{server.url}/v1/operator/keyring", json={"Key": key}, timeout=10)
        assert change.status_code == 400 and "not supported" in change.text
    finally:
        server.stop()


def test_operator_keyring_without_encrypt_says_so(url: str) -> None:
    r = requests.get(f"{url}/v1/operator/keyring", timeout=10)
    assert r.status_code == 500 and "-encrypt" in r.text
