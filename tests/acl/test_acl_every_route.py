"""Every route of the HTTP API, with ACLs on (default policy deny), fails closed.

The routes are the agent's own: the test builds an `Agent` from the same flags as the server it
starts and walks its aiohttp router, so a route added to any area (or to the app at wiring
time) is in the walk by construction. Each route must be described in `PROBES` (how to call it,
what a token that may read nothing must get) or in `OPEN` (routes Consul answers without an ACL
check, each with the reason); a route in neither, or a stale entry, fails the test.

Data present: KV keys, a catalog node with a service and check, a local agent service and
check, a session, an event, a policy and a token. Every name of that data contains "marker":
no answer to an unprivileged caller may contain that word (but a 403, which names what the
caller asked for, in Consul's words). Callers: the anonymous token (no
token sent), a token whose one policy grants nothing, and (every checked route 403s) a token
that does not exist.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from devserver import start_dev_server, wait_for

pytestmark = pytest.mark.integration

ROOT = "root-" + uuid.uuid4().hex
NODE = "devnode"
MARKER = "marker"
FLAGS = ("-acl-enabled", "-acl-default-policy", "deny", "-acl-initial-management", ROOT)
ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"

DENIED = "denied"  # 403
EMPTY = "empty"  # 200 with an empty answer (the `empty` value), or 404 for KV listings


@dataclass
class Probe:
    """One call of a route and what a caller who may read nothing gets."""

    path: str  # with {placeholders} filled from the seeded data (see `Seeded.fill`)
    expect: str = DENIED
    empty: Any = None  # the answer, for EMPTY (404: KV's answer for a listing with nothing readable)
    json: Any = None
    query: dict[str, str] = field(default_factory=dict)
    # what the answer may repeat of the caller's own request: a prepared query's execution names the
    # service of the query the caller named, as Consul's does for anyone (its nodes are filtered)
    echoes: tuple[str, ...] = ()


@dataclass
class Open:
    """A route Consul answers without ACLs (or that only ever describes the caller's own token)."""

    path: str
    reason: str
    checks_token: bool = False  # an unknown token is still refused (403 ACL not found)
    json: Any = None
    check: Callable[[requests.Response, str], None] | None = None


def _own_token(resp: requests.Response, caller: str) -> None:
    """token/self and the client agents' resolve endpoint: the caller's own token, no other."""
    assert resp.status_code == 200, resp.text
    body = resp.json()
    if caller == "anonymous":
        assert body["AccessorID"] == ANONYMOUS_ACCESSOR
    else:
        assert body["AccessorID"] not in ("", ANONYMOUS_ACCESSOR)
    assert ROOT not in resp.text


def _ok(resp: requests.Response, _caller: str) -> None:
    assert resp.status_code == 200, resp.text


# Routes open to anyone, as in Consul (see /v1/status in Consul's ACL docs: no ACL needed).
AUTH_METHOD_ROUTES = (("PUT", "/v1/acl/auth-method"), ("GET", "/v1/acl/auth-methods"), ("GET", "/v1/acl/auth-method/{name}"),
                      ("PUT", "/v1/acl/auth-method/{name}"), ("DELETE", "/v1/acl/auth-method/{name}"),
                      ("PUT", "/v1/acl/binding-rule"), ("GET", "/v1/acl/binding-rules"),
                      ("GET", "/v1/acl/binding-rule/{id}"), ("PUT", "/v1/acl/binding-rule/{id}"),
                      ("DELETE", "/v1/acl/binding-rule/{id}"), ("POST", "/v1/acl/login"), ("POST", "/v1/acl/logout"))


def _unsupported(r: requests.Response, caller: str) -> None:
    assert r.status_code == 400 and "auth methods, binding rules and login/logout are not supported" in r.text


OPEN: dict[tuple[str, str], Open] = {
    **{(m, p): Open(p.replace("{name}", "m").replace("{id}", "r"), "auth methods are refused for everyone (400)",
                    json={}, check=_unsupported) for m, p in AUTH_METHOD_ROUTES},
    ("GET", "/v1/status/leader"): Open("/v1/status/leader", "Consul: status endpoints need no token", check=_ok),
    ("GET", "/v1/status/peers"): Open("/v1/status/peers", "Consul: status endpoints need no token", check=_ok),
    ("GET", "/v1/catalog/datacenters"): Open("/v1/catalog/datacenters", "Consul: the datacenter list needs no token",
                                             check=_ok),
    ("GET", "/v1/acl/token/self"): Open("/v1/acl/token/self", "the secret is the credential: only the caller's "
                                        "own token is shown", checks_token=True, check=_own_token),
    ("GET", "/v1/internal/meshctl/acl/resolve"): Open(
        "/v1/internal/meshctl/acl/resolve", "client agents resolve the caller's own token here (as token/self)",
        checks_token=True, check=_own_token),
    ("GET", "/v1/internal/meshctl/info"): Open(
        "/v1/internal/meshctl/info", "what a joining client agent needs before any token is resolved: datacenter, "
        "DNS port, this server's node name (Consul's serf gossip carries no token either)", check=_ok),
    ("POST", "/v1/meshctl/serf/wan"): Open(
        "/v1/meshctl/serf/wan", "the WAN exchange between servers (Consul's WAN gossip, which carries no token): "
        "server addresses only", json={"Servers": []}, check=_ok),
    ("GET", "/v1/coordinate/datacenters"): Open(
        "/v1/coordinate/datacenters", "Consul: the servers' WAN coordinates need no token (as the datacenter list)",
        check=_ok),
    ("PUT", "/v1/acl/bootstrap"): Open("/v1/acl/bootstrap", "Consul: bootstrap needs no token; refused once done",
                                       check=lambda r, _c: _refused_bootstrap(r)),
    # the web UI (http/ui.py): static files that carry no data; the app's data calls are the API's, ACL-checked
    ("GET", "/"): Open("/", "Consul: the index redirects to the UI (or says it is off); no data", check=_ok),
    ("GET", "/ui"): Open("/ui", "redirects to /ui/: the UI's static files carry no data", check=_ok),
    ("GET", "/ui/{path}"): Open("/ui/kv/secret-marker/alpha", "the UI's static files (index.html for its own "
                                "routes) carry no data; the data calls they make are ACL-checked", check=_ok),
}


def _refused_bootstrap(resp: requests.Response) -> None:
    assert resp.status_code == 403 and "ACL bootstrap no longer allowed" in resp.text, resp.text


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Every other route: one or more calls and what a caller that may read nothing gets.
PROBES: dict[tuple[str, str], list[Probe]] = {
    ("GET", "/v1/kv/{key}"): [
        Probe("/v1/kv/secret-marker/alpha"),
        Probe("/v1/kv/secret-marker/", EMPTY, 404, query={"recurse": ""}),
        Probe("/v1/kv/secret-marker/", EMPTY, 404, query={"keys": ""}),
        Probe("/v1/kv/", EMPTY, 404, query={"recurse": ""}),
        Probe("/v1/kv/", EMPTY, [], query={"keys": ""}),
    ],
    ("PUT", "/v1/kv/{key}"): [Probe("/v1/kv/secret-marker/alpha", json="changed")],
    ("DELETE", "/v1/kv/{key}"): [Probe("/v1/kv/secret-marker/alpha"), Probe("/v1/kv/", query={"recurse": ""})],
    ("PUT", "/v1/txn"): [Probe("/v1/txn", json=[{"KV": {"Verb": "get", "Key": "secret-marker/alpha"}}]),
                         Probe("/v1/txn", json=[{"KV": {"Verb": "set", "Key": "secret-marker/alpha",
                                                        "Value": _b64("x")}}])],
    ("PUT", "/v1/catalog/register"): [Probe("/v1/catalog/register", json={"Node": "node-marker",
                                                                           "Address": "127.0.0.3"})],
    ("PUT", "/v1/catalog/deregister"): [Probe("/v1/catalog/deregister", json={"Node": "node-marker"})],
    ("GET", "/v1/catalog/nodes"): [Probe("/v1/catalog/nodes", EMPTY, [])],
    ("GET", "/v1/catalog/services"): [Probe("/v1/catalog/services", EMPTY, {})],
    ("GET", "/v1/catalog/service/{service}"): [Probe("/v1/catalog/service/svc-marker", EMPTY, [])],
    ("GET", "/v1/catalog/node/{node}"): [Probe("/v1/catalog/node/node-marker", EMPTY, None),
                                          Probe(f"/v1/catalog/node/{NODE}", EMPTY, None)],
    ("GET", "/v1/catalog/node-services/{node}"): [Probe("/v1/catalog/node-services/node-marker", EMPTY, None)],
    ("GET", "/v1/health/node/{node}"): [Probe("/v1/health/node/node-marker", EMPTY, []),
                                         Probe(f"/v1/health/node/{NODE}", EMPTY, [])],
    ("GET", "/v1/health/checks/{service}"): [Probe("/v1/health/checks/svc-marker", EMPTY, [])],
    ("GET", "/v1/health/state/{state}"): [Probe("/v1/health/state/any", EMPTY, []),
                                           Probe("/v1/health/state/passing", EMPTY, [])],
    ("GET", "/v1/health/service/{service}"): [Probe("/v1/health/service/svc-marker", EMPTY, [])],
    ("GET", "/v1/health/connect/{service}"): [Probe("/v1/health/connect/svc-marker", EMPTY, [])],
    ("GET", "/v1/agent/self"): [Probe("/v1/agent/self")],
    ("GET", "/v1/agent/members"): [Probe("/v1/agent/members", EMPTY, []),
                                    Probe("/v1/agent/members", EMPTY, [], query={"wan": "1"})],
    ("GET", "/v1/agent/services"): [Probe("/v1/agent/services", EMPTY, {})],
    ("GET", "/v1/agent/service/{id}"): [Probe("/v1/agent/service/svc-marker-id")],
    ("GET", "/v1/agent/checks"): [Probe("/v1/agent/checks", EMPTY, {})],
    ("GET", "/v1/agent/health/service/id/{id}"): [Probe("/v1/agent/health/service/id/svc-marker-id")],
    ("GET", "/v1/agent/health/service/name/{name}"): [Probe("/v1/agent/health/service/name/svc-marker")],
    ("PUT", "/v1/agent/service/register"): [Probe("/v1/agent/service/register", json={"Name": "new-marker"})],
    ("PUT", "/v1/agent/service/deregister/{id}"): [Probe("/v1/agent/service/deregister/svc-marker-id")],
    ("PUT", "/v1/agent/check/register"): [Probe("/v1/agent/check/register", json={"Name": "chk2-marker",
                                                                                   "TTL": "30s"})],
    ("PUT", "/v1/agent/check/deregister/{id}"): [Probe("/v1/agent/check/deregister/chk-marker")],
    **{(method, f"/v1/agent/check/{verb}/{{id}}"): [Probe(f"/v1/agent/check/{verb}/chk-marker")]
       for verb in ("pass", "warn", "fail") for method in ("GET", "PUT")},
    ("PUT", "/v1/agent/check/update/{id}"): [Probe("/v1/agent/check/update/chk-marker", json={"Status": "passing"})],
    ("PUT", "/v1/agent/maintenance"): [Probe("/v1/agent/maintenance", query={"enable": "true"})],
    ("PUT", "/v1/agent/service/maintenance/{id}"): [Probe("/v1/agent/service/maintenance/svc-marker-id",
                                                          query={"enable": "true"})],
    ("PUT", "/v1/agent/reload"): [Probe("/v1/agent/reload")],
    ("PUT", "/v1/agent/leave"): [Probe("/v1/agent/leave")],
    ("PUT", "/v1/agent/join/{address}"): [Probe("/v1/agent/join/127.0.0.1:1")],
    ("PUT", "/v1/agent/force-leave/{node}"): [Probe("/v1/agent/force-leave/marker-node")],
    ("PUT", "/v1/agent/token/{type}"): [Probe("/v1/agent/token/default", json={"Token": "x"})],
    ("GET", "/v1/agent/metrics"): [Probe("/v1/agent/metrics"), Probe("/v1/agent/metrics", query={"format": "prometheus"})],
    ("GET", "/v1/agent/monitor"): [Probe("/v1/agent/monitor"), Probe("/v1/agent/monitor", query={"loglevel": "debug"})],
    ("GET", "/v1/agent/host"): [Probe("/v1/agent/host")],
    ("PUT", "/v1/session/create"): [Probe("/v1/session/create", json={"Name": "s2-marker"})],
    ("PUT", "/v1/session/destroy/{id}"): [Probe("/v1/session/destroy/{session}")],
    ("PUT", "/v1/session/renew/{id}"): [Probe("/v1/session/renew/{session}")],
    ("GET", "/v1/session/info/{id}"): [Probe("/v1/session/info/{session}", EMPTY, [])],
    ("GET", "/v1/session/node/{node}"): [Probe(f"/v1/session/node/{NODE}", EMPTY, [])],
    ("GET", "/v1/session/list"): [Probe("/v1/session/list", EMPTY, [])],
    ("PUT", "/v1/event/fire/{name}"): [Probe("/v1/event/fire/evt-marker")],
    ("GET", "/v1/event/list"): [Probe("/v1/event/list", EMPTY, []),
                                 Probe("/v1/event/list", EMPTY, [], query={"name": "evt-marker"})],
    ("GET", "/v1/operator/raft/configuration"): [Probe("/v1/operator/raft/configuration")],
    ("DELETE", "/v1/operator/raft/peer"): [Probe("/v1/operator/raft/peer", query={"address": "127.0.0.9:8300"})],
    ("GET", "/v1/operator/autopilot/configuration"): [Probe("/v1/operator/autopilot/configuration")],
    ("PUT", "/v1/operator/autopilot/configuration"): [Probe("/v1/operator/autopilot/configuration",
                                                            json={"CleanupDeadServers": False})],
    ("GET", "/v1/operator/autopilot/health"): [Probe("/v1/operator/autopilot/health")],
    ("GET", "/v1/operator/autopilot/state"): [Probe("/v1/operator/autopilot/state")],
    ("POST", "/v1/operator/raft/transfer-leader"): [Probe("/v1/operator/raft/transfer-leader")],
    ("PUT", "/v1/operator/raft/transfer-leader"): [Probe("/v1/operator/raft/transfer-leader")],
    ("GET", "/v1/snapshot"): [Probe("/v1/snapshot")],
    ("GET", "/v1/operator/usage"): [Probe("/v1/operator/usage")],
    ("GET", "/v1/operator/keyring"): [Probe("/v1/operator/keyring")],
    **{(m, "/v1/operator/keyring"): [Probe("/v1/operator/keyring", json={"Key": "x"})] for m in ("POST", "PUT", "DELETE")},
    ("PUT", "/v1/snapshot"): [Probe("/v1/snapshot", json={})],
    ("PUT", "/v1/acl/token"): [Probe("/v1/acl/token", json={"Description": "tok2-marker"})],
    ("GET", "/v1/acl/tokens"): [Probe("/v1/acl/tokens")],
    ("GET", "/v1/acl/token/{id}"): [Probe("/v1/acl/token/{token}")],
    ("PUT", "/v1/acl/token/{id}"): [Probe("/v1/acl/token/{token}", json={"Description": "x"})],
    ("DELETE", "/v1/acl/token/{id}"): [Probe("/v1/acl/token/{token}")],
    ("PUT", "/v1/acl/token/{id}/clone"): [Probe("/v1/acl/token/{token}/clone", json={})],
    ("PUT", "/v1/acl/policy"): [Probe("/v1/acl/policy", json={"Name": "pol2-marker", "Rules": ""})],
    ("GET", "/v1/acl/policies"): [Probe("/v1/acl/policies")],
    ("GET", "/v1/acl/policy/name/{name}"): [Probe("/v1/acl/policy/name/pol-marker")],
    ("GET", "/v1/acl/policy/{id}"): [Probe("/v1/acl/policy/{policy}")],
    ("PUT", "/v1/acl/policy/{id}"): [Probe("/v1/acl/policy/{policy}", json={"Name": "pol-marker", "Rules": ""})],
    ("DELETE", "/v1/acl/policy/{id}"): [Probe("/v1/acl/policy/{policy}")],
    ("GET", "/v1/acl/templated-policies"): [Probe("/v1/acl/templated-policies")],
    ("GET", "/v1/acl/templated-policy/name/{name}"): [Probe("/v1/acl/templated-policy/name/builtin/dns")],
    ("PUT", "/v1/acl/role"): [Probe("/v1/acl/role", json={"Name": "role2-marker"})],
    ("GET", "/v1/acl/roles"): [Probe("/v1/acl/roles")],
    ("GET", "/v1/acl/role/name/{name}"): [Probe("/v1/acl/role/name/role-marker")],
    ("GET", "/v1/acl/role/{id}"): [Probe("/v1/acl/role/{role}")],
    ("PUT", "/v1/acl/role/{id}"): [Probe("/v1/acl/role/{role}", json={"Name": "role-marker"})],
    ("DELETE", "/v1/acl/role/{id}"): [Probe("/v1/acl/role/{role}")],
    ("PUT", "/v1/internal/meshctl/apply"): [Probe("/v1/internal/meshctl/apply", json={
        "Op": "register", "Node": "node-marker", "Address": "127.0.0.3"})],
    ("PUT", "/v1/internal/meshctl/heartbeat"): [Probe("/v1/internal/meshctl/heartbeat", json={"Node": NODE})],
    ("POST", "/v1/query"): [Probe("/v1/query", json={"Name": "q2-marker", "Service": {"Service": "svc-marker"}})],
    ("GET", "/v1/query"): [Probe("/v1/query", EMPTY, [])],
    ("GET", "/v1/query/{id}"): [Probe("/v1/query/{query}")],
    ("PUT", "/v1/query/{id}"): [Probe("/v1/query/{query}", json={"Name": "query-marker",
                                                                  "Service": {"Service": "other"}})],
    ("DELETE", "/v1/query/{id}"): [Probe("/v1/query/{query}")],
    ("GET", "/v1/query/{id}/explain"): [Probe("/v1/query/{query}/explain"), Probe("/v1/query/query-marker/explain")],
    ("GET", "/v1/query/{id}/execute"): [
        Probe("/v1/query/query-marker/execute", EMPTY, {"Service": "svc-marker", "Nodes": [], "DNS": {"TTL": ""},
                                                        "Datacenter": "dc1", "Failovers": 0}, echoes=("svc-marker",))],
    ("POST", "/v1/internal/meshctl/query/execute-remote"): [Probe(
        "/v1/internal/meshctl/query/execute-remote", json={"Query": {"Service": {"Service": "svc-marker"}}})],
    ("GET", "/v1/coordinate/nodes"): [Probe("/v1/coordinate/nodes", EMPTY, [])],
    ("GET", "/v1/coordinate/node/{node}"): [Probe("/v1/coordinate/node/node-marker", EMPTY, 404)],
    ("PUT", "/v1/coordinate/update"): [Probe("/v1/coordinate/update", json={
        "Node": "node-marker", "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-5}})],
}


def app_routes() -> set[tuple[str, str]]:
    """(method, path pattern) of every route of the agent these flags start, from its own router."""
    from meshctl.server.run import Agent, config_from_args

    agent = Agent(config_from_args(["-dev", "-node", NODE, "-http-port", "1", "-dns-port", "0", *FLAGS]))
    return {(r.method, r.resource.canonical) for r in agent.app.router.routes() if r.resource is not None}


# ---------------------------------------------------------------------- the server and its data


@dataclass
class Seeded:
    """IDs of the data written with the management token."""

    ids: dict[str, str] = field(default_factory=dict)
    nothing: str = ""  # the secret of a token whose policy grants nothing

    def fill(self, path: str) -> str:
        return path.format(**self.ids)


def _call(url: str, method: str, path: str, token: str | None, **kw: Any) -> requests.Response:
    headers = {"X-Consul-Token": token} if token else {}
    return requests.request(method, url + path, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_dev_server(tmp_path_factory.mktemp("acl-routes"), *FLAGS, node=NODE)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def seeded(server) -> Seeded:
    url = server.url

    def root(method: str, path: str, **kw: Any) -> Any:
        r = _call(url, method, path, ROOT, **kw)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    wait_for(lambda: _call(url, "GET", "/v1/acl/token/self", ROOT).status_code == 200, what="ACL bootstrap")
    wait_for(lambda: NODE in [n["Node"] for n in root("GET", "/v1/catalog/nodes")], what="agent registered")
    out = Seeded()
    for key in ("secret-marker/alpha", "secret-marker/beta", "top-marker"):
        root("PUT", f"/v1/kv/{key}", data=b"value-marker")
    root("PUT", "/v1/catalog/register", json={
        "Node": "node-marker", "Address": "127.0.0.2",
        "Service": {"ID": "svc-ext-marker", "Service": "svc-marker", "Tags": ["tag-marker"]},
        "Check": {"CheckID": "chk-ext-marker", "Name": "chk-ext-marker", "Status": "passing",
                  "ServiceID": "svc-ext-marker"}})
    root("PUT", "/v1/agent/service/register", json={"Name": "svc-marker", "ID": "svc-marker-id",
                                                    "Check": {"CheckID": "chk-marker", "TTL": "300s"}})
    out.ids["session"] = root("PUT", "/v1/session/create", json={"Name": "sess-marker", "Node": NODE})["ID"]
    out.ids["query"] = root("POST", "/v1/query", json={"Name": "query-marker",
                                                       "Service": {"Service": "svc-marker"}})["ID"]
    root("PUT", "/v1/coordinate/update", json={"Node": "node-marker", "Coord": {
        "Vec": [0.001] + [0.0] * 7, "Error": 0.5, "Adjustment": 0.0, "Height": 1e-5}})
    root("PUT", "/v1/event/fire/evt-marker", data=b"payload-marker")
    policy = root("PUT", "/v1/acl/policy", json={"Name": "pol-marker", "Rules": 'key "top-marker" { policy = "read" }'})
    out.ids["policy"] = policy["ID"]
    out.ids["role"] = root("PUT", "/v1/acl/role", json={"Name": "role-marker", "Policies": [{"ID": policy["ID"]}]})["ID"]
    out.ids["token"] = root("PUT", "/v1/acl/token", json={"Description": "tok-marker",
                                                          "Policies": [{"ID": policy["ID"]}]})["AccessorID"]
    useless = root("PUT", "/v1/acl/policy", json={"Name": "grants-nothing",
                                                  "Rules": 'key_prefix "nothing-readable/" { policy = "deny" }'})
    out.nothing = root("PUT", "/v1/acl/token", json={"Policies": [{"ID": useless["ID"]}]})["SecretID"]
    # the data is there for the management token (so an empty answer below is the ACLs' doing)
    assert "svc-marker" in root("GET", "/v1/catalog/services")
    assert root("GET", f"/v1/session/info/{out.ids['session']}")
    assert root("GET", "/v1/event/list?name=evt-marker")
    assert root("GET", "/v1/query/query-marker/execute")["Nodes"]
    wait_for(lambda: "node-marker" in [c["Node"] for c in root("GET", "/v1/coordinate/nodes")],
             what="the coordinate batch applied")
    return out


def _caller_token(seeded: Seeded, caller: str) -> str | None:
    return {"anonymous": None, "nothing": seeded.nothing, "unknown": "no-such-" + uuid.uuid4().hex}[caller]


def _send(url: str, method: str, path: str, token: str | None, probe_json: Any,
          query: dict[str, str] | None = None) -> requests.Response:
    return _call(url, method, path, token, params=query or None,
                 **({"json": probe_json} if probe_json is not None else {}))


# ---------------------------------------------------------------------- the tests


def test_every_route_is_probed_or_allow_listed() -> None:
    routes = app_routes()
    described = set(PROBES) | set(OPEN)
    assert not (routes - described), f"routes with no ACL expectation: {sorted(routes - described)}"
    assert not (described - routes), f"expectations for routes that do not exist: {sorted(described - routes)}"
    assert not set(PROBES) & set(OPEN)


@pytest.mark.parametrize("caller", ["anonymous", "nothing"])
def test_a_token_that_may_read_nothing_gets_nothing(server, seeded: Seeded, caller: str) -> None:
    token = _caller_token(seeded, caller)
    failures = []
    for (method, _pattern), probes in sorted(PROBES.items()):
        for probe in probes:
            path = seeded.fill(probe.path)
            r = _send(server.url, method, path, token, probe.json, probe.query)
            what = f"{method} {path}{'?' + '&'.join(probe.query) if probe.query else ''}: {r.status_code} {r.text[:200]!r}"
            text = r.text
            for echoed in probe.echoes:
                text = text.replace(echoed, "")
            if MARKER in text and r.status_code != 403:  # a 403 names what was asked for, as Consul's
                failures.append(f"leaks data: {what}")
            elif probe.expect == DENIED:
                if r.status_code != 403 or not r.text.startswith("Permission denied"):
                    failures.append(f"not denied: {what}")
            elif probe.empty == 404:
                if r.status_code != 404 or r.content:
                    failures.append(f"not an empty 404: {what}")
            elif r.status_code != 200 or r.json() != probe.empty:
                failures.append(f"not {probe.empty!r}: {what}")
    assert not failures, "\n".join(failures)
    # nothing was changed by all those writes
    r = _call(server.url, "GET", "/v1/kv/secret-marker/alpha?raw", ROOT)
    assert r.status_code == 200 and r.content == b"value-marker"
    assert _call(server.url, "GET", "/v1/catalog/nodes", ROOT).json()[0]["Node"] in (NODE, "node-marker")


@pytest.mark.parametrize("caller", ["anonymous", "nothing"])
def test_allow_listed_routes_answer_and_leak_nothing(server, seeded: Seeded, caller: str) -> None:
    token = _caller_token(seeded, caller)
    for (method, _pattern), spec in sorted(OPEN.items()):
        r = _send(server.url, method, spec.path, token, spec.json)
        assert MARKER not in r.text, f"{method} {spec.path} ({spec.reason}): {r.text[:300]}"
        if spec.check is not None:
            spec.check(r, caller)


def test_an_unknown_token_is_refused_everywhere_acls_apply(server, seeded: Seeded) -> None:
    token = _caller_token(seeded, "unknown")
    failures = []
    checked = [(m, p.path, p.json, p.query) for (m, _), probes in PROBES.items() for p in probes]
    checked += [(m, o.path, o.json, {}) for (m, _), o in OPEN.items() if o.checks_token]
    for method, raw_path, body, query in checked:
        path = seeded.fill(raw_path)
        r = _send(server.url, method, path, token, body, query)
        if r.status_code != 403 or r.text != "ACL not found":
            failures.append(f"{method} {path}: {r.status_code} {r.text[:200]!r}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------- the enforcer itself


class _Req:
    """What the enforcer reads of a request: its token, and the filtered flag it sets."""

    token = ""
    filtered = False


def test_an_enforcer_without_acl_data_denies_everything() -> None:
    from meshctl.server.acl.enforce import ACLEnforcer, ACLSettings
    from meshctl.server.http.common import HTTPError

    def missing() -> Any:
        raise RuntimeError("no state yet")

    enforcer = ACLEnforcer(ACLSettings(enabled=True, default_policy="allow"), missing)
    req: Any = _Req()
    with pytest.raises(HTTPError) as denied:
        enforcer.authorize(req, "key", "k", "read")
    assert denied.value.status == 403
    for name in ("filter_keys", "filter_nodes", "filter_services", "filter_health", "filter_checks",
                 "filter_events", "filter_sessions", "filter_members"):
        with pytest.raises(HTTPError):
            getattr(enforcer, name)(req, [])
    with pytest.raises(HTTPError):
        enforcer.filter_service_map(req, {"web": []})
    check = enforcer.dns_check()
    assert check is not None and not check("service", "web")


def test_an_enforcer_must_implement_every_filter_and_the_context_must_have_one() -> None:
    from meshctl.server.context import AllowAll, Enforcer, ServerContext

    assert {"authorize", "filter_keys", "filter_nodes", "filter_service_map", "filter_services", "filter_health",
            "filter_checks", "filter_events", "filter_sessions", "filter_members"} <= Enforcer.__abstractmethods__

    class Forgetful(Enforcer):  # the authorize hook and no filters
        enabled = True
        default_policy = "deny"

        def authorize(self, req: Any, resource: str, name: str, access: str) -> None:
            return None

    with pytest.raises(TypeError):
        Forgetful()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        ServerContext(store=None, agent=None, datacenter="dc1")  # type: ignore[call-arg,arg-type]
    ctx = ServerContext(store=None, agent=None, datacenter="dc1", acl=AllowAll())  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        ctx.acl = AllowAll()  # type: ignore[misc]
