"""ACLs over the HTTP API of a real agent: the ACL endpoints, the policy matrix, filtering,
blocking queries, token sources, and no token in the log."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from devserver import start_dev_server

pytestmark = pytest.mark.integration

ROOT = "root-" + uuid.uuid4().hex
NODE = "devnode"


class API:
    """requests against the agent, with a token in the X-Consul-Token header."""

    def __init__(self, url: str, token: str | None = ROOT) -> None:
        self.url, self.token = url, token
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        tok = self.token if token is None else token
        if tok:
            headers["X-Consul-Token"] = tok
        kw.setdefault("timeout", 30)
        return self.http.request(method, self.url + path, headers=headers, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.call("GET", path, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self.call("PUT", path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.call("DELETE", path, **kw)

    def token_for(self, rules: str) -> str:
        """A new token holding one new policy with `rules` (made with the management token)."""
        name = "p-" + uuid.uuid4().hex[:12]
        r = self.put("/v1/acl/policy", json={"Name": name, "Rules": rules}, token=ROOT)
        assert r.status_code == 200, r.text
        r = self.put("/v1/acl/token", json={"Policies": [{"Name": name}]}, token=ROOT)
        assert r.status_code == 200, r.text
        return str(r.json()["SecretID"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_dev_server(tmp_path_factory.mktemp("acl"), "-acl-enabled", "-acl-default-policy", "deny",
                           "-acl-initial-management", ROOT, "-acl-enable-key-list-policy", "-log-level", "debug",
                           node=NODE)
    api = API(srv.url)
    deadline = time.monotonic() + 20
    while api.get("/v1/acl/token/self").status_code != 200:  # the built-ins are written right after start
        assert time.monotonic() < deadline
        time.sleep(0.05)
    while NODE not in [n["Node"] for n in api.get("/v1/catalog/nodes").json()]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server) -> API:
    return API(server.url)


# ---------------------------------------------------------------------- the ACL API


def test_initial_management_token_and_builtins(api: API) -> None:
    me = api.get("/v1/acl/token/self").json()
    assert me["SecretID"] == ROOT
    assert me["Policies"] == [{"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}]
    tokens = {t["AccessorID"]: t for t in api.get("/v1/acl/tokens").json()}
    assert tokens["00000000-0000-0000-0000-000000000002"]["SecretID"] == "anonymous"
    r = api.get("/v1/acl/policy/name/global-management")
    assert r.json()["ID"] == "00000000-0000-0000-0000-000000000001"
    assert int(r.headers["X-Consul-Index"]) >= 1


def test_bootstrap_is_refused_once_done(api: API) -> None:
    r = api.put("/v1/acl/bootstrap", token="")
    assert r.status_code == 403 and "ACL bootstrap no longer allowed" in r.text


def test_token_lifecycle_create_read_update_clone_list_delete(api: API) -> None:
    pol = api.put("/v1/acl/policy", json={"Name": "life-" + uuid.uuid4().hex[:6], "Rules": 'key "l" { policy = "read" }'}).json()
    tok = api.put("/v1/acl/token", json={"Description": "life", "Policies": [{"ID": pol["ID"]}]}).json()
    assert uuid.UUID(tok["AccessorID"]) and uuid.UUID(tok["SecretID"])
    assert api.get(f"/v1/acl/token/{tok['AccessorID']}").json()["Description"] == "life"
    upd = api.put(f"/v1/acl/token/{tok['AccessorID']}", json={"Description": "changed", "Policies": []}).json()
    assert upd["Description"] == "changed" and "Policies" not in upd and upd["SecretID"] == tok["SecretID"]
    clone = api.put(f"/v1/acl/token/{tok['AccessorID']}/clone", json={"Description": "copy"}).json()
    assert clone["AccessorID"] != tok["AccessorID"] and clone["Description"] == "copy"
    listed = [t["AccessorID"] for t in api.get("/v1/acl/tokens").json()]
    assert tok["AccessorID"] in listed and clone["AccessorID"] in listed
    assert api.get(f"/v1/acl/tokens?policy={pol['ID']}").json() == []
    assert api.delete(f"/v1/acl/token/{tok['AccessorID']}").json() is True
    assert api.get(f"/v1/acl/token/{tok['AccessorID']}").status_code == 403
    assert api.get("/v1/kv/l", token=tok["SecretID"]).text == "ACL not found"


def test_policy_and_role_lifecycle(api: API) -> None:
    name = "pol-" + uuid.uuid4().hex[:6]
    pol = api.put("/v1/acl/policy", json={"Name": name, "Description": "d", "Rules": 'key "r" { policy = "read" }'}).json()
    assert api.get(f"/v1/acl/policy/{pol['ID']}").json()["Rules"] == 'key "r" { policy = "read" }'
    assert api.get(f"/v1/acl/policy/name/{name}").json()["ID"] == pol["ID"]
    upd = api.put(f"/v1/acl/policy/{pol['ID']}", json={"Rules": 'key "r" { policy = "write" }'}).json()
    assert upd["Name"] == name and upd["Description"] == "d" and "write" in upd["Rules"]
    assert all("Rules" not in p for p in api.get("/v1/acl/policies").json())
    role = api.put("/v1/acl/role", json={"Name": "role-" + name, "Policies": [{"Name": name}]}).json()
    assert role["Policies"] == [{"ID": pol["ID"], "Name": name}]
    tok = api.put("/v1/acl/token", json={"Roles": [{"ID": role["ID"]}]}).json()
    assert api.put("/v1/kv/r", data=b"x", token=tok["SecretID"]).json() is True  # via the role's policy
    assert api.get(f"/v1/acl/role/name/role-{name}").json()["ID"] == role["ID"]
    assert api.delete(f"/v1/acl/role/{role['ID']}").json() is True
    assert api.put("/v1/kv/r", data=b"x", token=tok["SecretID"]).status_code == 403
    assert api.delete(f"/v1/acl/policy/{pol['ID']}").json() is True
    assert api.get(f"/v1/acl/policy/{pol['ID']}").status_code == 404  # Consul: "Requested policy does not exist"


def test_acl_endpoints_need_acl_rights(api: API) -> None:
    weak = api.token_for('key_prefix "" { policy = "write" }')
    r = api.get("/v1/acl/tokens", token=weak)
    assert r.status_code == 403 and r.text.endswith("lacks permission 'acl:read'")
    assert api.put("/v1/acl/policy", json={"Name": "x"}, token=weak).status_code == 403
    assert api.get("/v1/acl/token/self", token=weak).json()["SecretID"] == weak


def test_malformed_rules_are_a_400_naming_the_line(api: API) -> None:
    r = api.put("/v1/acl/policy", json={"Name": "bad", "Rules": 'key_prefix "" {\n  policy = "read"\n}\n'
                                                                 'service "web" {\n  policy = "sometimes"\n}'})
    assert r.status_code == 400 and "line 5" in r.text and "sometimes" in r.text
    r = api.put("/v1/acl/policy", json={"Name": "bad", "Rules": 'key "a" {\n  policy = "read"\n'})
    assert r.status_code == 400 and "line " in r.text


def test_unknown_token_is_acl_not_found(api: API) -> None:
    r = api.get("/v1/kv/x", token="no-such-token")
    assert r.status_code == 403 and r.text == "ACL not found"


# ---------------------------------------------------------------------- token sources


def test_token_sources_query_header_bearer_and_precedence(api: API, server) -> None:
    api.put("/v1/kv/src/k", data=b"v")
    reader = api.token_for('key_prefix "src/" { policy = "read" }')
    url = server.url + "/v1/kv/src/k"
    assert requests.get(url, params={"token": reader}, timeout=10).status_code == 200
    assert requests.get(url, headers={"X-Consul-Token": reader}, timeout=10).status_code == 200
    assert requests.get(url, headers={"Authorization": f"Bearer {reader}"}, timeout=10).status_code == 200
    # ?token= wins over the header, the header over Authorization
    assert requests.get(url, params={"token": "bogus"}, headers={"X-Consul-Token": reader},
                        timeout=10).status_code == 403
    assert requests.get(url, headers={"X-Consul-Token": reader, "Authorization": "Bearer bogus"},
                        timeout=10).status_code == 200


# ---------------------------------------------------------------------- the policy matrix

# For each resource: a read request and a write request against name NAME.
MATRIX_LEVELS = {"key": ("read", "list", "write", "deny")}


def _prepare(api: API, kind: str, name: str) -> None:
    if kind == "key":
        api.put(f"/v1/kv/{name}", data=b"v")
        api.put(f"/v1/kv/{name}/child", data=b"v")
    elif kind == "service":
        api.put("/v1/catalog/register", json={"Node": "mx-node", "Address": "127.0.0.9",
                                              "Service": {"Service": name, "Port": 1}})
    elif kind == "node":
        api.put("/v1/catalog/register", json={"Node": name, "Address": "127.0.0.9"})
    elif kind == "event":
        api.put(f"/v1/event/fire/{name}")


def _read(api: API, kind: str, name: str, token: str) -> bool:
    """Did a read succeed (status, or for filtered lists: the item is there)?"""
    if kind == "key":
        return api.get(f"/v1/kv/{name}", token=token).status_code == 200
    if kind == "service":  # filtered to [] when not readable, as Consul does
        r = api.get(f"/v1/catalog/service/{name}", token=token)
        return r.status_code == 200 and len(r.json()) > 0
    if kind == "node":  # filtered to null when not readable
        r = api.get(f"/v1/catalog/node/{name}", token=token)
        return r.status_code == 200 and r.json() is not None
    if kind == "session":
        r = api.get(f"/v1/session/node/{NODE}", token=token)
        return r.status_code == 200 and len(r.json()) > 0
    if kind == "event":
        r = api.get(f"/v1/event/list?name={name}", token=token)
        return r.status_code == 200 and len(r.json()) > 0
    if kind == "agent":
        return api.get("/v1/agent/self", token=token).status_code == 200
    if kind == "operator":
        return api.get("/v1/operator/raft/configuration", token=token).status_code == 200
    if kind == "acl":
        return api.get("/v1/acl/policies", token=token).status_code == 200
    raise AssertionError(kind)


def _write(api: API, kind: str, name: str, token: str) -> bool:
    """Did a write get past authorisation (anything but a 403)?"""
    if kind == "key":
        r = api.put(f"/v1/kv/{name}", data=b"w", token=token)
    elif kind == "service":
        r = api.put("/v1/agent/service/register", json={"Name": name, "ID": name + "-w", "Port": 2}, token=token)
    elif kind == "node":
        r = api.put("/v1/catalog/register", json={"Node": name, "Address": "127.0.0.9"}, token=token)
    elif kind == "session":
        r = api.put("/v1/session/create", json={"Node": NODE, "TTL": "60s"}, token=token)
    elif kind == "event":
        r = api.put(f"/v1/event/fire/{name}", token=token)
    elif kind == "agent":
        r = api.put("/v1/agent/reload", token=token)
    elif kind == "operator":
        r = api.put("/v1/operator/raft/transfer-leader", token=token)
    elif kind == "acl":
        r = api.put("/v1/acl/policy", json={"Name": "w-" + uuid.uuid4().hex[:8]}, token=token)
    else:
        raise AssertionError(kind)
    assert r.status_code != 403 or r.text.startswith("Permission denied"), r.text
    return r.status_code != 403


def _list(api: API, name: str, token: str) -> bool:
    r = api.get(f"/v1/kv/{name}?recurse", token=token)
    return r.status_code == 200


SEGMENT_CASES = [(kind, level, form)
                 for kind in ("key", "service", "node", "session", "event", "agent")
                 for level in MATRIX_LEVELS.get(kind, ("read", "write", "deny"))
                 for form in ("exact", "prefix")]


@pytest.mark.parametrize("kind,level,form", SEGMENT_CASES)
def test_policy_matrix_over_http(api: API, kind: str, level: str, form: str) -> None:
    uniq = uuid.uuid4().hex[:8]
    name = {"session": NODE, "agent": NODE}.get(kind, f"mx-{kind}-{uniq}")
    target = name if form == "exact" else name[:-3]
    rule = f'{kind}{"_prefix" if form == "prefix" else ""} "{target}" {{ policy = "{level}" }}'
    if kind == "service":  # service listings also need the instance's node
        rule += '\nnode_prefix "" { policy = "read" }'
    _prepare(api, kind, name)
    if kind == "session":
        assert api.put("/v1/session/create", json={"Node": NODE}).status_code == 200
    token = api.token_for(rule)
    can_read = level in ("read", "list", "write")
    assert _read(api, kind, name, token) is can_read, rule
    assert _write(api, kind, name, token) is (level == "write"), rule
    if kind == "key":
        assert _list(api, name, token) is (level in ("list", "write")), rule
    other = {"session": "other-node", "agent": "other-node"}.get(kind, f"zz-{uniq}")
    if kind not in ("session", "agent"):
        _prepare(api, kind, other)
        assert _read(api, kind, other, token) is False  # default deny outside the rule


@pytest.mark.parametrize("kind,level", [(k, lv) for k in ("operator", "acl") for lv in ("read", "write", "deny")])
def test_policy_matrix_single_value_resources(api: API, kind: str, level: str) -> None:
    token = api.token_for(f'{kind} = "{level}"')
    assert _read(api, kind, "", token) is (level != "deny")
    assert _write(api, kind, "", token) is (level == "write")


def test_permission_error_texts(api: API) -> None:
    token = api.token_for('key "only" { policy = "read" }')
    accessor = api.get("/v1/acl/token/self", token=token).json()["AccessorID"]
    r = api.put("/v1/kv/only", data=b"x", token=token)
    assert r.status_code == 403
    assert r.text == f"Permission denied: token with AccessorID '{accessor}' lacks permission 'key:write' on \"only\""
    r = api.get("/v1/kv/only", token="")
    assert r.text == "Permission denied: anonymous token lacks permission 'key:read' on \"only\""


# ---------------------------------------------------------------------- filtering


def test_kv_listing_filtered_silently_with_header(api: API) -> None:
    for key in ("flt/a/1", "flt/a/2", "flt/b/1"):
        api.put(f"/v1/kv/{key}", data=b"v")
    token = api.token_for('key_prefix "flt/" { policy = "list" }\nkey_prefix "flt/b/" { policy = "deny" }')
    r = api.get("/v1/kv/flt/?recurse", token=token)
    assert [e["Key"] for e in r.json()] == ["flt/a/1", "flt/a/2"]
    assert r.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    assert api.get("/v1/kv/flt/?keys", token=token).json() == ["flt/a/1", "flt/a/2"]
    full = api.get("/v1/kv/flt/?recurse")
    assert len(full.json()) == 3 and "X-Consul-Results-Filtered-By-ACLs" not in full.headers


def test_catalog_and_health_lists_filtered_by_service_and_node_read(api: API) -> None:
    for node, svc in (("fn-1", "fsvc-a"), ("fn-2", "fsvc-a"), ("hidden-1", "fsvc-a"), ("fn-1", "fsvc-b")):
        api.put("/v1/catalog/register", json={"Node": node, "Address": "127.0.0.5",
                                              "Service": {"Service": svc, "ID": f"{svc}-{node}", "Port": 1}})
    token = api.token_for('service "fsvc-a" { policy = "read" }\nnode_prefix "fn-" { policy = "read" }')
    nodes = [n["Node"] for n in api.get("/v1/catalog/nodes", token=token).json()]
    assert nodes == ["fn-1", "fn-2"]
    assert list(api.get("/v1/catalog/services", token=token).json()) == ["fsvc-a"]
    inst = api.get("/v1/catalog/service/fsvc-a", token=token)
    assert [i["Node"] for i in inst.json()] == ["fn-1", "fn-2"]
    assert inst.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    health = api.get("/v1/health/service/fsvc-a", token=token).json()
    assert [e["Node"]["Node"] for e in health] == ["fn-1", "fn-2"]
    services = api.get("/v1/catalog/node/fn-1", token=token).json()["Services"]
    assert list(services) == ["fsvc-a-fn-1"]
    # a named service or node the token may not read is filtered away, not refused (Consul)
    hidden = api.get("/v1/catalog/service/fsvc-b", token=token)
    assert (hidden.status_code, hidden.json()) == (200, [])
    assert api.get("/v1/health/service/fsvc-b", token=token).json() == []
    assert api.get("/v1/catalog/node/hidden-1", token=token).json() is None


def test_anonymous_on_deny_by_default_sees_nothing(api: API) -> None:
    api.put("/v1/kv/anon/k", data=b"v")
    assert api.get("/v1/kv/anon/k", token="").status_code == 403
    assert api.get("/v1/kv/?recurse", token="").status_code == 403  # listing the root needs key:list
    for path in ("/v1/catalog/nodes", "/v1/health/state/any", "/v1/session/list", "/v1/event/list",
                 "/v1/agent/services", "/v1/agent/checks", "/v1/agent/members"):
        r = api.get(path, token="")
        assert r.status_code == 200 and not r.json(), path
        assert "X-Consul-Results-Filtered-By-ACLs" not in r.headers  # only for requests carrying a token
    assert api.get("/v1/catalog/services", token="").json() == {}
    r = api.get("/v1/kv/anon/k", token="")
    assert r.status_code == 403


def test_default_acl_policy_header_on_all_responses(api: API) -> None:
    assert api.get("/v1/catalog/nodes").headers["X-Consul-Default-ACL-Policy"] == "deny"
    assert api.put("/v1/kv/hdr", data=b"x").headers["X-Consul-Default-ACL-Policy"] == "deny"


def test_anonymous_token_can_be_given_policies(api: API) -> None:
    api.put("/v1/kv/public/motd", data=b"hi")
    pol = api.put("/v1/acl/policy", json={"Name": "anon-public", "Rules": 'key_prefix "public/" { policy = "read" }'})
    anon = "00000000-0000-0000-0000-000000000002"
    assert api.put(f"/v1/acl/token/{anon}", json={"Policies": [{"ID": pol.json()["ID"]}]}).status_code == 200
    try:
        assert api.get("/v1/kv/public/motd?raw", token="").text == "hi"
    finally:
        api.put(f"/v1/acl/token/{anon}", json={"Policies": []})
    assert api.get("/v1/kv/public/motd", token="").status_code == 403


# ---------------------------------------------------------------------- blocking queries


def _blocking(api: API, path: str, token: str, results: list) -> threading.Thread:
    def run() -> None:
        start = time.monotonic()
        r = api.call("GET", path, token=token, timeout=60)
        results.append((r, time.monotonic() - start))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("kind,level,form", [(k, lv, f) for k in ("key", "service", "node")
                                              for lv in ("read", "deny") for f in ("exact", "prefix")])
def test_blocking_query_policy_matrix(api: API, kind: str, level: str, form: str) -> None:
    name = f"blk-{kind}-{uuid.uuid4().hex[:8]}"
    target = name if form == "exact" else name[:-3]
    rule = f'{kind}{"_prefix" if form == "prefix" else ""} "{target}" {{ policy = "{level}" }}'
    if kind == "service":
        rule += '\nnode_prefix "" { policy = "read" }'
    path, change = {
        "key": (f"/v1/kv/{name}", lambda: api.put(f"/v1/kv/{name}", data=uuid.uuid4().bytes)),
        "service": (f"/v1/health/service/{name}", lambda: api.put("/v1/catalog/register", json={
            "Node": "blk-node", "Address": "127.0.0.7", "Service": {"Service": name, "ID": uuid.uuid4().hex, "Port": 1}})),
        "node": (f"/v1/catalog/node/{name}", lambda: api.put("/v1/catalog/register", json={
            "Node": name, "Address": "127.0.0.7", "Service": {"Service": "s", "ID": uuid.uuid4().hex, "Port": 1}})),
    }[kind]
    change()
    token = api.token_for(rule)
    first = api.get(path, token=token)
    if level == "deny":
        if kind == "key":
            assert first.status_code == 403
        else:  # lists and nodes are filtered, as Consul does: no data, and no 403
            assert first.status_code == 200 and first.json() in ([], None)
        return
    assert first.status_code == 200
    index = first.headers["X-Consul-Index"]
    results: list = []
    t = _blocking(api, f"{path}?index={index}&wait=30s", token, results)
    time.sleep(0.3)
    assert not results  # still waiting
    change()
    t.join(40)
    r, _ = results[0]
    assert r.status_code == 200 and int(r.headers["X-Consul-Index"]) > int(index)


def test_token_deleted_while_a_blocking_query_waits_gets_no_data(api: API) -> None:
    api.put("/v1/kv/del/k", data=b"secret")
    token = api.token_for('key_prefix "del/" { policy = "read" }')
    accessor = api.get("/v1/acl/token/self", token=token).json()["AccessorID"]
    index = api.get("/v1/kv/del/k", token=token).headers["X-Consul-Index"]
    results: list = []
    t = _blocking(api, f"/v1/kv/del/k?index={index}&wait=30s", token, results)
    time.sleep(0.3)
    assert api.delete(f"/v1/acl/token/{accessor}").json() is True
    api.put("/v1/kv/del/k", data=b"new secret")
    t.join(40)
    r, took = results[0]
    assert r.status_code == 403 and r.text == "ACL not found"
    assert b"secret" not in r.content and took < 25


def test_policy_changed_while_a_blocking_query_waits(api: API) -> None:
    api.put("/v1/kv/chg/k", data=b"v1")
    name = "chg-" + uuid.uuid4().hex[:6]
    pol = api.put("/v1/acl/policy", json={"Name": name, "Rules": 'key_prefix "chg/" { policy = "read" }'}).json()
    token = api.put("/v1/acl/token", json={"Policies": [{"ID": pol["ID"]}]}).json()["SecretID"]
    index = api.get("/v1/kv/chg/k", token=token).headers["X-Consul-Index"]
    results: list = []
    t = _blocking(api, f"/v1/kv/chg/k?index={index}&wait=30s", token, results)
    time.sleep(0.3)
    api.put(f"/v1/acl/policy/{pol['ID']}", json={"Rules": 'key_prefix "chg/" { policy = "deny" }'})
    api.put("/v1/kv/chg/k", data=b"v2")
    t.join(40)
    r, _ = results[0]
    assert r.status_code == 403 and r.text.startswith("Permission denied")


def test_filtered_blocking_listing_rechecks_on_wake_up(api: API) -> None:
    api.put("/v1/kv/wl/a", data=b"1")
    token = api.token_for('key_prefix "wl/a" { policy = "list" }')
    r = api.get("/v1/kv/wl/a?recurse", token=token)
    results: list = []
    t = _blocking(api, f"/v1/kv/wl/a?recurse&index={r.headers['X-Consul-Index']}&wait=30s", token, results)
    time.sleep(0.3)
    api.put("/v1/kv/wl/ab", data=b"2")
    t.join(40)
    r, _ = results[0]
    assert [e["Key"] for e in r.json()] == ["wl/a", "wl/ab"]


# ---------------------------------------------------------------------- hygiene


def test_tokens_never_appear_in_the_log(api: API, server) -> None:
    secret = api.token_for('key "log" { policy = "read" }')
    url = server.url + "/v1/kv/log"
    requests.get(url, params={"token": secret}, timeout=10)
    requests.put(url, params={"token": secret}, data=b"x", timeout=10)  # a 403
    requests.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    requests.get(url, params={"token": "wrong-" + secret}, timeout=10)
    api.get("/v1/acl/tokens")
    time.sleep(0.2)
    log = server.log()
    assert "DEBUG" in log or "INFO" in log
    assert secret not in log and ROOT not in log
