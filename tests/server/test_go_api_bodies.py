"""Request bodies exactly as Go's `github.com/hashicorp/consul/api` package sends them.

Go's encoding/json writes every field of a struct unless it is tagged `omitempty`: nil
pointers, slices and maps as `null`, numbers as 0, strings as "", `time.Time` as RFC 3339
(the zero time too), `time.Duration` as integer nanoseconds, `[]byte` as base64. Terraform,
Vault, Nomad, Prometheus and consul-template all write through this package, so each body
below is built field by field the way the package's structs (api/txn.go, api/catalog.go,
api/agent.go, api/health.go, api/session.go, api/acl.go) encode — not the tidy bodies a
person would write with curl. One row per endpoint that takes a body: the status Consul
documents, then the effect read back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from devserver import DevServer, start_dev_server, wait_for

pytestmark = pytest.mark.integration

ROOT = "3f2a9a36-6c6b-4f1e-9d39-5b0c1f6d8e21"
H = {"X-Consul-Token": ROOT}
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{} (omitempty never omits a struct)


# ---------------------------------------------------------------------- Go's encodings of the api structs


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def go_txn_op(**op: Any) -> dict[str, Any]:
    """api.TxnOp: four pointers (five with Session in newer releases), the unused ones null."""
    return {"KV": None, "Node": None, "Service": None, "Check": None, "Session": None, **op}


def go_kv_txn(verb: str, key: str, value: str | None = None, **extra: Any) -> dict[str, Any]:
    """api.KVTxnOp: Value is []byte (base64, or null when nil)."""
    return {"Verb": verb, "Key": key, "Value": None if value is None else b64(value), "Flags": 0, "Index": 0,
            "Session": "", **extra}


def go_node(name: str, address: str = "", **extra: Any) -> dict[str, Any]:
    """api.Node."""
    return {"ID": "", "Node": name, "Address": address, "Datacenter": "", "TaggedAddresses": None, "Meta": None,
            "CreateIndex": 0, "ModifyIndex": 0, **extra}


def go_agent_service(sid: str, name: str, **extra: Any) -> dict[str, Any]:
    """api.AgentService: Kind, SocketPath, TaggedAddresses, indexes, Proxy, Connect... are omitempty."""
    return {"ID": sid, "Service": name, "Tags": None, "Meta": None, "Port": 0, "Address": "",
            "Weights": {"Passing": 0, "Warning": 0}, "EnableTagOverride": False, **extra}


def go_check_definition(**extra: Any) -> dict[str, Any]:
    """api.HealthCheckDefinition's MarshalJSON: every field, durations as Go strings ("0s" when unset)."""
    return {"Interval": "0s", "Timeout": "0s", "DeregisterCriticalServiceAfter": "0s", "HTTP": "", "Header": None,
            "Method": "", "Body": "", "TLSServerName": "", "TLSSkipVerify": False, "TCP": "", "UDP": "", "GRPC": "",
            "OSService": "", "GRPCUseTLS": False, **extra}


def go_health_check(node: str, cid: str, **extra: Any) -> dict[str, Any]:
    """api.HealthCheck (Namespace, Partition, PeerName omitempty)."""
    return {"Node": node, "CheckID": cid, "Name": cid, "Status": "passing", "Notes": "", "Output": "",
            "ServiceID": "", "ServiceName": "", "ServiceTags": None, "Type": "", "ExposedPort": 0,
            "Definition": go_check_definition(), "CreateIndex": 0, "ModifyIndex": 0, **extra}


def go_catalog_registration(node: str, address: str, **extra: Any) -> dict[str, Any]:
    """api.CatalogRegistration (Partition and Locality omitempty)."""
    return {"ID": "", "Node": node, "Address": address, "TaggedAddresses": None, "NodeMeta": None, "Datacenter": "",
            "Service": None, "Check": None, "Checks": None, "SkipNodeUpdate": False, **extra}


def go_service_registration(**fields: Any) -> dict[str, Any]:
    """api.AgentServiceRegistration: all omitempty except Check and Checks."""
    return {**fields, "Check": fields.get("Check"), "Checks": fields.get("Checks")}


def go_acl_token(**extra: Any) -> dict[str, Any]:
    """api.ACLToken: links, identities, ExpirationTTL (ns), ExpirationTime, Hash omitempty; CreateTime never."""
    return {"CreateIndex": 0, "ModifyIndex": 0, "AccessorID": "", "SecretID": "", "Description": "", **extra,
            "Local": False, "CreateTime": ZERO_TIME}


def go_acl_policy(name: str, rules: str, **extra: Any) -> dict[str, Any]:
    """api.ACLPolicy: nothing omitted but Namespace and Partition."""
    return {"ID": "", "Name": name, "Description": "", "Rules": rules, "Datacenters": None, "Hash": None,
            "CreateIndex": 0, "ModifyIndex": 0, **extra}


def go_acl_role(name: str, **extra: Any) -> dict[str, Any]:
    """api.ACLRole: links and identities omitempty, Hash and indexes not."""
    return {"ID": "", "Name": name, "Description": "", **extra, "Hash": None, "CreateIndex": 0, "ModifyIndex": 0}


# ---------------------------------------------------------------------- the table


class Api:
    """The server under test, with the management token on every request."""

    def __init__(self, server: DevServer) -> None:
        self.url = server.url
        self.node = server.node

    def get(self, path: str) -> Any:
        r = requests.get(self.url + path, headers=H, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    def put(self, path: str, body: Any = None, data: bytes | None = None) -> requests.Response:
        payload = data if data is not None else json.dumps(body).encode()
        return requests.put(self.url + path, data=payload, headers=H, timeout=10)


@dataclass
class Row:
    """One endpoint: the body Go sends, Consul's status, and what must be true afterwards."""

    name: str
    path: str
    body: Any = None
    data: bytes | None = None  # a raw (non-JSON) body
    status: int = 200
    setup: Callable[[Api], None] | None = None
    effect: Callable[[Api, requests.Response], None] = field(default=lambda api, r: None)
    path_of: Callable[[Api], str] | None = None  # a path that needs state made by setup


def _ids(api: Api) -> dict[str, str]:
    return {p["Name"]: p["ID"] for p in api.get("/v1/acl/policies")}


def _kv_value(api: Api, key: str) -> str:
    return base64.b64decode(api.get(f"/v1/kv/{key}")[0]["Value"]).decode()


def _txn_kv_effect(api: Api, r: requests.Response) -> None:
    assert r.json()["Errors"] is None
    assert _kv_value(api, "go/txn/k") == "v"


def _txn_catalog_effect(api: Api, r: requests.Response) -> None:
    node = api.get("/v1/catalog/node/go-txn-node")
    assert node["Node"]["Address"] == "127.0.0.9" and node["Node"]["Meta"] == {}
    svc = node["Services"]["txn-web1"]
    assert svc["Tags"] == [] and svc["Meta"] == {} and svc["Port"] == 80
    checks = {c["CheckID"]: c for c in api.get("/v1/health/node/go-txn-node")}
    assert checks["txn-chk"]["Status"] == "warning" and checks["txn-chk"]["ServiceID"] == "txn-web1"
    # Go's zero durations ("0s") and empty strings are not a definition: nothing is stored for them
    assert checks["txn-chk"]["Definition"] == {}


def _txn_delete_effect(api: Api, r: requests.Response) -> None:
    assert r.json()["Errors"] is None
    assert requests.get(f"{api.url}/v1/kv/go/txn/gone", headers=H, timeout=10).status_code == 404


def _catalog_register_effect(api: Api, r: requests.Response) -> None:
    assert r.json() is True
    [inst] = api.get("/v1/catalog/service/go-cat-web")
    assert inst["Node"] == "go-cat-node" and inst["ServiceTags"] == [] and inst["ServiceMeta"] == {}
    assert inst["ServicePort"] == 8080 and inst["NodeMeta"] == {"rack": "r1"}
    [entry] = api.get("/v1/health/service/go-cat-web")
    assert [(c["CheckID"], c["Status"]) for c in entry["Checks"]] == [("go-cat-chk", "passing")]
    assert entry["Checks"][0]["Definition"] == {"HTTP": "http://127.0.0.1:1/health", "Interval": "10s"}


def _catalog_deregister_setup(api: Api) -> None:
    body = go_catalog_registration("go-dereg-node", "127.0.0.3",
                                   Service=go_agent_service("dereg-web", "go-dereg-web"))
    assert api.put("/v1/catalog/register", body).status_code == 200


def _catalog_deregister_effect(api: Api, r: requests.Response) -> None:
    assert r.json() is True
    assert api.get("/v1/catalog/service/go-dereg-web") == []
    assert api.get("/v1/catalog/node/go-dereg-node")["Node"]["Node"] == "go-dereg-node"  # only the service went


def _service_register_effect(api: Api, r: requests.Response) -> None:
    svc = api.get("/v1/agent/service/go-agent-web1")
    assert svc["Service"] == "go-agent-web" and svc["Tags"] == ["v1"] and svc["Port"] == 8081
    assert svc["Weights"] == {"Passing": 10, "Warning": 1}
    assert svc["TaggedAddresses"] == {"lan": {"Address": "127.0.0.1", "Port": 8081}}
    checks = api.get("/v1/agent/checks")
    assert checks["service:go-agent-web1"]["Type"] == "ttl"


def _check_register_setup(api: Api) -> None:
    body = go_service_registration(ID="go-chk-svc", Name="go-chk-svc", Port=1)
    assert api.put("/v1/agent/service/register", body).status_code == 200


def _check_register_effect(api: Api, r: requests.Response) -> None:
    check = api.get("/v1/agent/checks")["go-chk"]
    assert check["ServiceID"] == "go-chk-svc" and check["Status"] == "warning" and check["Type"] == "ttl"


def _check_update_setup(api: Api) -> None:
    assert api.put("/v1/agent/check/register", {"ID": "go-upd", "Name": "go-upd", "TTL": "30s"}).status_code == 200


def _check_update_effect(api: Api, r: requests.Response) -> None:
    check = api.get("/v1/agent/checks")["go-upd"]
    assert (check["Status"], check["Output"]) == ("passing", "")


def _session_effect(api: Api, r: requests.Response) -> None:
    [sess] = api.get(f"/v1/session/info/{r.json()['ID']}")
    assert sess["Name"] == "go-session" and sess["Behavior"] == "delete" and sess["TTL"] == "15s"
    assert sess["LockDelay"] == 1_500_000_000 and sess["NodeChecks"] == []


def _session_default_effect(api: Api, r: requests.Response) -> None:
    [sess] = api.get(f"/v1/session/info/{r.json()['ID']}")
    assert sess["Node"] == api.node and sess["NodeChecks"] == ["serfHealth"] and sess["Behavior"] == "release"


def _kv_effect(api: Api, r: requests.Response) -> None:
    assert r.json() is True and _kv_value(api, "go/kv/raw") == '{"a": null}'


def _event_effect(api: Api, r: requests.Response) -> None:
    fired = r.json()
    assert fired["Name"] == "go-deploy" and base64.b64decode(fired["Payload"]) == b"v1"
    assert any(e["ID"] == fired["ID"] for e in api.get("/v1/event/list?name=go-deploy"))


def _policy_effect(api: Api, r: requests.Response) -> None:
    pol = api.get(f"/v1/acl/policy/{r.json()['ID']}")
    assert pol["Name"] == "go-pol" and pol["Rules"] == 'key_prefix "go/" { policy = "read" }'
    assert pol["Datacenters"] is None


def _policy_update_setup(api: Api) -> None:
    assert api.put("/v1/acl/policy", go_acl_policy("go-pol-upd", 'key "a" { policy = "read" }')).status_code == 200


def _policy_update_path(api: Api) -> str:
    return f"/v1/acl/policy/{_ids(api)['go-pol-upd']}"


def _policy_update_effect(api: Api, r: requests.Response) -> None:
    pol = api.get("/v1/acl/policy/name/go-pol-upd")
    assert pol["Description"] == "updated" and pol["Rules"] == 'key "b" { policy = "read" }'


def _role_setup(api: Api) -> None:
    assert api.put("/v1/acl/policy", go_acl_policy("go-role-pol", "")).status_code == 200


def _role_effect(api: Api, r: requests.Response) -> None:
    role = api.get(f"/v1/acl/role/{r.json()['ID']}")
    assert [p["Name"] for p in role["Policies"]] == ["go-role-pol"] and "ServiceIdentities" not in role


def _token_setup(api: Api) -> None:
    if "go-tok-pol" in _ids(api):
        return
    assert api.put("/v1/acl/policy", go_acl_policy("go-tok-pol", 'key_prefix "go/" { policy = "read" }')
                   ).status_code == 200


def _token_body(api: Api) -> dict[str, Any]:
    # Go links by ID with an empty Name (api.ACLLink has no omitempty)
    # ExpirationTTL is a time.Duration: integer nanoseconds
    return go_acl_token(Description="go token", Policies=[{"ID": _ids(api)["go-tok-pol"], "Name": ""}],
                        ExpirationTTL=3600 * 10**9)


def _token_effect(api: Api, r: requests.Response) -> None:
    tok = r.json()
    assert tok["Description"] == "go token" and [p["Name"] for p in tok["Policies"]] == ["go-tok-pol"]
    assert tok["CreateTime"] != ZERO_TIME  # Go's zero CreateTime is not a creation time
    assert tok["ExpirationTime"] > tok["CreateTime"] and "ExpirationTTL" not in tok
    me = requests.get(f"{api.url}/v1/acl/token/self", headers={"X-Consul-Token": tok["SecretID"]}, timeout=10)
    assert me.status_code == 200 and me.json()["AccessorID"] == tok["AccessorID"]


def _token_update_setup(api: Api) -> None:
    _token_setup(api)
    r = api.put("/v1/acl/token", go_acl_token(Description="before",
                                              AccessorID="5a8c1e2e-3a57-4b8e-9f1a-0c2d9f3b7e11"))
    assert r.status_code == 200, r.text


def _token_update_effect(api: Api, r: requests.Response) -> None:
    tok = api.get("/v1/acl/token/5a8c1e2e-3a57-4b8e-9f1a-0c2d9f3b7e11")
    assert tok["Description"] == "after" and "Policies" not in tok


CLONED = "0e5b7c6a-1f2d-4c3b-8a9e-6d7f8e9a0b1c"


def _clone_setup(api: Api) -> None:
    _token_setup(api)
    body = go_acl_token(AccessorID=CLONED, Policies=[{"ID": _ids(api)["go-tok-pol"], "Name": ""}])
    assert api.put("/v1/acl/token", body).status_code == 200


def _clone_effect(api: Api, r: requests.Response) -> None:
    clone = r.json()
    assert clone["Description"] == "go clone" and clone["AccessorID"] != CLONED
    assert [p["Name"] for p in clone["Policies"]] == ["go-tok-pol"]


def _agent_token_effect(api: Api, r: requests.Response) -> None:
    assert r.text == ""


def _snapshot_data(api: Api) -> bytes:
    r = requests.get(f"{api.url}/v1/snapshot", headers=H, timeout=30)
    assert r.status_code == 200
    return r.content


ROWS = [
    Row("txn kv set (the issue's body)", "/v1/txn", [go_txn_op(KV=go_kv_txn("set", "go/txn/k", "v"))],
        effect=_txn_kv_effect),
    Row("txn kv delete with a nil Value", "/v1/txn",
        [go_txn_op(KV=go_kv_txn("set", "go/txn/gone", "x")), go_txn_op(KV=go_kv_txn("delete", "go/txn/gone"))],
        effect=_txn_delete_effect),
    Row("txn node, service and check", "/v1/txn", [
        go_txn_op(Node={"Verb": "set", "Node": go_node("go-txn-node", "127.0.0.9")}),
        go_txn_op(Service={"Verb": "set", "Node": "go-txn-node",
                           "Service": go_agent_service("txn-web1", "go-txn-web", Port=80)}),
        go_txn_op(Check={"Verb": "set", "Check": go_health_check("go-txn-node", "txn-chk", Status="warning",
                                                                 ServiceID="txn-web1")}),
    ], effect=_txn_catalog_effect),
    Row("catalog register", "/v1/catalog/register", go_catalog_registration(
        "go-cat-node", "127.0.0.2", NodeMeta={"rack": "r1"},
        Service=go_agent_service("cat-web1", "go-cat-web", Port=8080),
        Checks=[go_health_check("go-cat-node", "go-cat-chk", ServiceID="cat-web1",
                                Definition=go_check_definition(HTTP="http://127.0.0.1:1/health", Interval="10s"))]),
        effect=_catalog_register_effect),
    Row("catalog deregister", "/v1/catalog/deregister",
        {"Node": "go-dereg-node", "Datacenter": "", "ServiceID": "dereg-web", "CheckID": ""},
        setup=_catalog_deregister_setup, effect=_catalog_deregister_effect),
    Row("agent service register", "/v1/agent/service/register", go_service_registration(
        ID="go-agent-web1", Name="go-agent-web", Tags=["v1"], Port=8081,
        TaggedAddresses={"lan": {"Address": "127.0.0.1", "Port": 8081}},
        Weights={"Passing": 10, "Warning": 1}, Check={"TTL": "30s", "DeregisterCriticalServiceAfter": "90m"}),
        effect=_service_register_effect),
    Row("agent check register", "/v1/agent/check/register",
        {"ID": "go-chk", "Name": "go-chk", "ServiceID": "go-chk-svc", "TTL": "15s", "Status": "warning"},
        setup=_check_register_setup, effect=_check_register_effect),
    Row("agent check update", "/v1/agent/check/update/go-upd", {"Status": "passing", "Output": ""},
        setup=_check_update_setup, effect=_check_update_effect),
    Row("agent token", "/v1/agent/token/default", {"Token": ROOT}, effect=_agent_token_effect),
    Row("session create (Go's map: LockDelay by durToMsec)", "/v1/session/create",
        {"Name": "go-session", "LockDelay": "1500ms", "Checks": [], "Behavior": "delete", "TTL": "15s"},
        effect=_session_effect),
    Row("session create with a nil entry (no body)", "/v1/session/create", data=b"",
        effect=_session_default_effect),
    Row("kv put (raw bytes)", "/v1/kv/go/kv/raw", data=b'{"a": null}', effect=_kv_effect),
    Row("event fire (raw payload)", "/v1/event/fire/go-deploy", data=b"v1", effect=_event_effect),
    Row("acl policy create", "/v1/acl/policy", go_acl_policy("go-pol", 'key_prefix "go/" { policy = "read" }'),
        effect=_policy_effect),
    Row("acl policy update", "", go_acl_policy("go-pol-upd", 'key "b" { policy = "read" }', Description="updated"),
        setup=_policy_update_setup, path_of=_policy_update_path, effect=_policy_update_effect),
    Row("acl role create", "/v1/acl/role", None, setup=_role_setup, effect=_role_effect),
    Row("acl token create", "/v1/acl/token", None, setup=_token_setup, effect=_token_effect),
    Row("acl token update", "/v1/acl/token/5a8c1e2e-3a57-4b8e-9f1a-0c2d9f3b7e11",
        go_acl_token(AccessorID="5a8c1e2e-3a57-4b8e-9f1a-0c2d9f3b7e11", Description="after"),
        setup=_token_update_setup, effect=_token_update_effect),
    Row("acl token clone", f"/v1/acl/token/{CLONED}/clone", {"Description": "go clone"},
        setup=_clone_setup, effect=_clone_effect),
]
BODY_BUILDERS: dict[str, Callable[[Api], Any]] = {
    "acl role create": lambda api: go_acl_role("go-role", Policies=[{"ID": _ids(api)["go-role-pol"], "Name": ""}]),
    "acl token create": _token_body,
}


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[Api]:
    server = start_dev_server(tmp_path_factory.mktemp("gobodies"), "-acl-enabled", "-acl-default-policy", "deny",
                              "-acl-initial-management", ROOT)
    wait_for(lambda: requests.get(f"{server.url}/v1/acl/token/self", headers=H, timeout=5).status_code == 200,
             what="ACLs ready")
    yield Api(server)
    server.stop()


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_go_api_body(api: Api, row: Row) -> None:
    if row.setup is not None:
        row.setup(api)
    path = row.path_of(api) if row.path_of is not None else row.path
    body = BODY_BUILDERS[row.name](api) if row.name in BODY_BUILDERS else row.body
    r = api.put(path, body, row.data)
    assert r.status_code == row.status, (r.status_code, r.text)
    row.effect(api, r)


def test_snapshot_restore_takes_the_archive_go_sends(api: Api) -> None:
    """api.Snapshot().Restore streams the archive Save returned, unchanged."""
    assert api.put("/v1/kv/go/snap", data=b"before").status_code == 200
    archive = _snapshot_data(api)
    assert api.put("/v1/kv/go/snap", data=b"after").status_code == 200
    r = api.put("/v1/snapshot", data=archive)
    assert r.status_code == 200, r.text
    assert wait_for(lambda: _kv_value(api, "go/snap") == "before", what="snapshot restored")
