"""Bad input gets a clear error, changes nothing, and never takes the server down."""

from __future__ import annotations

import base64
import socket

import pytest
import requests

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(shared_dev_server) -> str:
    return shared_dev_server.url


@pytest.fixture(autouse=True)
def server_survives(shared_dev_server):
    yield
    assert shared_dev_server.proc.poll() is None, "the server died"
    assert requests.get(f"{shared_dev_server.url}/v1/status/leader", timeout=5).status_code == 200


def index_of(url: str) -> int:
    return int(requests.get(f"{url}/v1/kv/?recurse").headers["X-Consul-Index"])


def test_oversized_value_is_413_and_not_stored(url):
    r = requests.put(f"{url}/v1/kv/big", data=b"x" * (512 * 1024 + 1))
    assert r.status_code == 413 and "too large" in r.text
    assert requests.get(f"{url}/v1/kv/big").status_code == 404
    assert requests.put(f"{url}/v1/kv/big-ok", data=b"x" * (512 * 1024)).json() is True


@pytest.mark.parametrize("query,text", [
    ("index=abc", "Invalid index"),
    ("index=-1", "Invalid index"),
    ("index=5&wait=soon", "Invalid wait time"),
    ("stale&consistent", "Cannot specify ?stale with ?consistent, conflicting semantics."),
    ("max_stale=forever", 'Invalid max_stale value "forever"'),
])
def test_bad_read_parameters_are_400(url, query, text):
    r = requests.get(f"{url}/v1/kv/x?{query}")
    assert r.status_code == 400 and r.text == text
    assert r.headers["Content-Type"].startswith("text/plain")


def test_conflicting_write_flags(url):
    r = requests.put(f"{url}/v1/kv/x?cas=0&acquire=abc")
    assert r.status_code == 400 and r.text.startswith("Conflicting flags: ")
    assert requests.delete(f"{url}/v1/kv/x?recurse&cas=1").status_code == 400


def test_missing_key_name(url):
    assert requests.put(f"{url}/v1/kv/").text == "Missing key name"
    assert requests.delete(f"{url}/v1/kv/").status_code == 400
    assert requests.get(f"{url}/v1/kv/").text == "Missing key name"


def test_path_traversal_keys_are_refused(url):
    before = index_of(url)
    r = requests.put(f"{url}/v1/kv/a/%2E%2E/b", data=b"x")
    assert r.status_code == 400
    assert index_of(url) == before


@pytest.mark.parametrize("path", ["/v1/catalog/register", "/v1/agent/service/register", "/v1/session/create",
                                  "/v1/agent/check/register", "/v1/catalog/deregister"])
def test_malformed_json_is_400(url, path):
    r = requests.put(f"{url}{path}", data=b'{"Node": ')
    assert r.status_code == 400 and r.text.startswith("Request decode failed")


def test_wrong_json_types_are_400(url):
    assert requests.put(f"{url}/v1/catalog/register", json=["not", "an", "object"]).status_code == 400
    assert requests.put(f"{url}/v1/agent/service/register", json={"Name": "x", "Tags": "notalist"}).status_code == 400
    assert requests.put(f"{url}/v1/agent/service/register", json={"Name": "x", "Port": "eighty"}).status_code == 400
    assert requests.put(f"{url}/v1/catalog/register", json={"Node": "n", "Address": "1.2.3.4",
                                                             "NodeMeta": "x"}).status_code == 400


def test_txn_errors(url):
    before = index_of(url)
    too_many = [{"KV": {"Verb": "set", "Key": f"t/{i}", "Value": "eA=="}} for i in range(129)]
    r = requests.put(f"{url}/v1/txn", json=too_many)
    assert r.status_code == 413 and r.text == "Transaction contains too many operations (129 > 128)"
    assert requests.put(f"{url}/v1/txn", data=b"[{").status_code == 400
    assert requests.put(f"{url}/v1/txn", json=[{"KV": {"Verb": "set", "Key": "t", "Value": "%%%"}}]).status_code == 400
    assert requests.put(f"{url}/v1/txn", json=[{"Bogus": {}}]).status_code == 400
    big = base64.b64encode(b"x" * (512 * 1024 + 10)).decode()
    assert requests.put(f"{url}/v1/txn", json=[{"KV": {"Verb": "set", "Key": "t", "Value": big}}]).status_code == 413
    r = requests.put(f"{url}/v1/txn", json=[{"KV": {"Verb": "explode", "Key": "t"}}])
    assert r.status_code == 409 and r.json()["Errors"][0]["What"] == 'unknown KV verb "explode"'
    assert index_of(url) == before


def test_wrong_method_is_405_with_allow(url):
    r = requests.post(f"{url}/v1/catalog/register", json={})
    assert r.status_code == 405 and r.text == "method POST not allowed"
    assert "PUT" in r.headers["Allow"] and r.headers["Allow"].startswith("OPTIONS")
    assert requests.delete(f"{url}/v1/status/leader").status_code == 405


def test_unknown_path_is_an_empty_404(url):
    r = requests.get(f"{url}/v1/nothing/here")
    assert r.status_code == 404 and r.content == b""


def test_unknown_datacenter_on_writes(url):
    r = requests.put(f"{url}/v1/kv/dcx?dc=mars", data=b"1")
    assert r.status_code == 500 and r.text == "No path to datacenter"
    assert requests.get(f"{url}/v1/kv/dcx").status_code == 404


def test_garbage_bytes_on_the_socket_do_not_hurt(shared_dev_server):
    for junk in (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(200)), b"GET /" + b"a" * 70000 +
                 b" HTTP/1.1\r\n\r\n", b"PUT /v1/kv/x HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\nabc"):
        with socket.create_connection(("127.0.0.1", shared_dev_server.http_port), timeout=5) as s:
            s.sendall(junk)
            try:
                s.recv(4096)
            except (TimeoutError, ConnectionError):
                pass


def test_a_dropped_blocking_query_costs_nothing(shared_dev_server, url):
    index = int(requests.get(f"{url}/v1/kv/?recurse").headers["X-Consul-Index"])
    for _ in range(20):
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(f"{url}/v1/kv/drop?index={index + 1000}&wait=60s", timeout=0.05)
    assert requests.put(f"{url}/v1/kv/drop", data=b"1").json() is True


@pytest.mark.parametrize("path,body", [
    ("/v1/catalog/register", {"Node": "u", "Address": "127.0.0.9", "Colour": "blue"}),
    ("/v1/catalog/register", {"Node": "u", "Address": "127.0.0.9", "Service": {"Service": "s", "Prot": 80}}),
    ("/v1/agent/service/register", {"Name": "u", "Prot": 80}),
    ("/v1/session/create", {"Name": "u", "TTLL": "10s"}),
])
def test_unknown_fields_are_400_and_change_nothing(url, path, body):
    before = requests.get(f"{url}/v1/catalog/nodes").headers["X-Consul-Index"]
    r = requests.put(f"{url}{path}", json=body)
    assert r.status_code == 400 and "unknown field" in r.text
    assert requests.get(f"{url}/v1/catalog/nodes").headers["X-Consul-Index"] == before
    assert requests.get(f"{url}/v1/catalog/service/u").json() == []


@pytest.mark.parametrize("method,path,status,text", [
    ("POST", "/v1/kv/x", 405, "method POST not allowed"),
    ("GET", "/v1/agent/service/register", 405, "method GET not allowed"),
    ("GET", "/v1/health/state/", 400, "Missing check state"),
    ("PUT", "/v1/event/fire/", 400, "Missing name"),
    ("GET", "/v1/catalog/service/", 400, "Missing service name"),
    ("GET", "/v1/health/node/", 400, "Missing node name"),
])
def test_consul_answers_for_wrong_methods_and_empty_path_parameters(url, method, path, status, text):
    r = requests.request(method, f"{url}{path}")
    assert (r.status_code, r.text) == (status, text)


def test_non_clean_paths_are_redirected_as_go_does(url):
    r = requests.put(f"{url}/v1/kv//x", data=b"1", allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"] == "/v1/kv/x"
    assert requests.get(f"{url}/v1/kv/x").status_code == 404


# -- durations: Go's time.ParseDuration for strings, nanoseconds for numbers ------------------

SERVICE, CHECK, SESSION = "/v1/agent/service/register", "/v1/agent/check/register", "/v1/session/create"
BAD_DURATIONS = [
    (SERVICE, '{"Name": "d", "Check": {"TTL": "NaN"}}', 'Request decode failed: time: invalid duration "NaN"'),
    (SERVICE, '{"Name": "d", "Check": {"TTL": NaN}}',
     "Request decode failed: invalid character 'N' looking for beginning of value"),
    (SERVICE, '{"Name": "d", "Check": {"TTL": -Infinity}}',
     "Request decode failed: invalid character 'I' in numeric literal"),
    (SERVICE, '{"Name": "d", "Check": {"TTL": 1e400}}',
     "Request decode failed: json: cannot unmarshal number 1e400 into Go value of type float64"),
    (SERVICE, '{"Name": "d", "Check": {"TTL": 1e30}}',
     "Request decode failed: json: cannot unmarshal number 1e30 into Go struct field CheckType.TTL of type "
     "time.Duration"),
    (SERVICE, '{"Name": "d", "Checks": [{"Interval": "infs", "TCP": "127.0.0.1:1"}]}',
     'Request decode failed: time: invalid duration "infs"'),
    (SERVICE, '{"Name": "d", "Check": {"TTL": "99999999999h"}}',
     'Request decode failed: time: invalid duration "99999999999h"'),
    (SERVICE, '{"Name": "d", "Check": {"TTL": "10"}}', 'Request decode failed: time: missing unit in duration "10"'),
    (SERVICE, '{"Name": "d", "Check": {"TTL": "1e9s"}}',
     'Request decode failed: time: unknown unit "e" in duration "1e9s"'),
    (CHECK, '{"Name": "d", "TTL": "Inf"}', 'Request decode failed: time: invalid duration "Inf"'),
    (CHECK, '{"Name": "d", "TCP": "127.0.0.1:1", "Interval": "10s", "Timeout": 9.3e18}',
     "Request decode failed: json: cannot unmarshal number 9.3e18 into Go struct field CheckType.Timeout of type "
     "time.Duration"),
    (SESSION, '{"TTL": "NaN"}', """Session TTL 'NaN' invalid: time: invalid duration "NaN\""""),
    (SESSION, '{"TTL": "9223372037s"}', """Session TTL '9223372037s' invalid: time: invalid duration "9223372037s\""""),
    (SESSION, '{"TTL": 30}',
     "Request decode failed: json: cannot unmarshal number into Go struct field Session.TTL of type string"),
    (SESSION, '{"LockDelay": NaN}', "Request decode failed: invalid character 'N' looking for beginning of value"),
    (SESSION, '{"LockDelay": 1e400}',
     "Request decode failed: json: cannot unmarshal number 1e400 into Go value of type float64"),
    (SESSION, '{"LockDelay": "nans"}', 'Request decode failed: time: invalid duration "nans"'),
    (SESSION, '{"LockDelay": 1e30}',
     "Request decode failed: json: cannot unmarshal number 1e30 into Go struct field LockDelay of type time.Duration"),
]


@pytest.mark.parametrize("path,body,text", BAD_DURATIONS)
def test_bad_durations_are_400_with_go_texts_and_change_nothing(url, path, body, text):
    sessions = requests.get(f"{url}/v1/session/list").json()
    r = requests.put(f"{url}{path}", data=body)
    assert (r.status_code, r.text) == (400, text)
    assert "d" not in requests.get(f"{url}/v1/agent/services").json()
    assert "d" not in requests.get(f"{url}/v1/agent/checks").json()
    assert requests.get(f"{url}/v1/session/list").json() == sessions


def test_go_durations_that_are_fine_still_register(url):
    body = {"Name": "durations-ok", "Checks": [{"TTL": "1.5s"}, {"TCP": "127.0.0.1:1", "Interval": "1m30s",
                                                                 "Timeout": 2_000_000_000}]}
    assert requests.put(f"{url}{SERVICE}", json=body).status_code == 200
    checks = requests.get(f"{url}/v1/agent/checks").json()
    mine = sorted((c["Interval"], c["Timeout"]) for c in checks.values() if c["ServiceName"] == "durations-ok")
    assert mine == [("", ""), ("1m30s", "2s")]
    assert requests.put(f"{url}/v1/agent/service/deregister/durations-ok").status_code == 200


@pytest.mark.parametrize("wait", ["nan", "inf", "-1s"])
def test_non_finite_wait_is_400(url, wait):
    r = requests.get(f"{url}/v1/kv/x?index=1&wait={wait}")
    assert (r.status_code, r.text) == (400, "Invalid wait time")


# -- chunked bodies over a cap: 413, read no further than the cap ---------------------------

def _chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("path,cap", [("/v1/kv/chunky", 512 * 1024), ("/v1/catalog/register", 8 * 1024 * 1024),
                                      ("/v1/txn", 512 * 1024 * 4 // 3 + 65536)])
def test_chunked_body_over_the_cap_is_413(url, path, cap):
    before = index_of(url)
    r = requests.put(f"{url}{path}", data=_chunks(cap + 100 * 1024))  # a generator: Transfer-Encoding: chunked
    assert (r.status_code, r.text) == (413, f"Request body too large, max size: {cap} bytes")
    assert index_of(url) == before
    assert requests.get(f"{url}/v1/kv/chunky").status_code == 404


def test_chunked_body_under_the_cap_is_stored(url):
    assert requests.put(f"{url}/v1/kv/chunky-ok", data=_chunks(512 * 1024, 10_000)).json() is True
    assert len(requests.get(f"{url}/v1/kv/chunky-ok?raw").content) == 512 * 1024


# -- HEAD on every GET route ------------------------------------------------------------------

def _get_routes() -> list[str]:
    """Every GET route of a dev agent, from its own router, path parameters filled in."""
    import re

    from meshctl.server.run import Agent, config_from_args

    agent = Agent(config_from_args(["-dev", "-http-port", "1", "-dns-port", "0"]))
    paths = {r.resource.canonical for r in agent.app.router.routes() if r.method == "GET" and r.resource is not None}
    return sorted(re.sub(r"\{[^}]*\}", "x", p) for p in paths)


def test_head_on_every_get_route_is_never_a_5xx(url):
    routes = _get_routes()
    assert "/v1/agent/metrics" in routes and len(routes) > 40
    with requests.Session() as s:  # one connection: a HEAD answer with a body would garble the next one
        for path in routes:
            r = s.head(f"{url}{path}", timeout=10)
            assert r.status_code < 500, (path, r.status_code)
            assert s.get(f"{url}/v1/status/leader", timeout=10).json(), path
