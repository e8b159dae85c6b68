"""How the client speaks HTTP: headers, query strings, bodies, status → exception mapping.

Runs against a scripted 127.0.0.1 server (see conftest.py) so any status/header can be produced.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler
from socketserver import UnixStreamServer

import pytest

from meshctl.client import (
    ACLDisabled,
    BadRequest,
    Client,
    Conflict,
    ConsulError,
    DecodeError,
    KVPair,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TooLarge,
    Unreachable,
    kv_op,
)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequest), (401, ACLDisabled), (403, PermissionDenied), (404, NotFound), (405, MethodNotAllowed),
     (409, Conflict), (413, TooLarge), (429, RateLimited), (500, ServerError), (503, ServerError),
     (418, ConsulError)],
)
def test_status_maps_to_exception_class(fake_server, status, cls):
    fake_server.script(status, "boom")
    with pytest.raises(cls) as info:
        Client(fake_server.addr).status.leader()
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.body == "boom"
    assert info.value.method == "GET"
    assert info.value.url.endswith("/v1/status/leader")


def test_error_text_reads_like_go_client(fake_server):
    fake_server.script(500, "No cluster leader\n")
    with pytest.raises(ServerError, match=r"^Unexpected response code: 500 \(No cluster leader\)$"):
        Client(fake_server.addr).catalog.datacenters()


def test_error_without_body(fake_server):
    fake_server.script(403)
    with pytest.raises(PermissionDenied) as info:
        Client(fake_server.addr).agent.self()
    assert str(info.value) == "Unexpected response code: 403"


def test_connection_refused_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unreachable) as info:
        Client(f"127.0.0.1:{port}").kv.get("x")
    assert info.value.status is None
    assert str(info.value) == f'Get "http://127.0.0.1:{port}/v1/kv/x": connection refused'
    assert isinstance(info.value, ConsulError)


def test_read_timeout_is_unreachable():
    with socket.socket() as listener:  # accepts, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = Client(f"127.0.0.1:{listener.getsockname()[1]}", timeout=0.2)
        with pytest.raises(Unreachable, match="timed out|timeout"):
            client.status.leader()


def test_token_is_a_header_never_in_url(fake_server):
    fake_server.script(200, '"127.0.0.1:8300"')
    Client(fake_server.addr, token="secret-token").status.leader()
    assert fake_server.last.headers["X-Consul-Token"] == "secret-token"
    assert "secret-token" not in fake_server.last.path


def test_no_token_header_without_token(fake_server):
    fake_server.script(200, "[]")
    Client(fake_server.addr, token=None).status.peers()
    assert "X-Consul-Token" not in fake_server.last.headers


def test_basic_auth_from_env(fake_server, monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_AUTH", "user:pw")
    fake_server.script(200, "[]")
    Client(fake_server.addr).status.peers()
    assert fake_server.last.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()


def test_client_datacenter_is_sent_unless_overridden(fake_server):
    fake_server.script(200, "[]", X_Consul_Index="3")
    c = Client(fake_server.addr, dc="dc2")
    c.catalog.nodes()
    assert fake_server.last.path == "/v1/catalog/nodes?dc=dc2"
    c.catalog.nodes(dc="dc3")
    assert fake_server.last.path == "/v1/catalog/nodes?dc=dc3"


def test_query_metadata_headers_are_parsed(fake_server):
    fake_server.script(200, "[]", X_Consul_Index="99", X_Consul_KnownLeader="true", X_Consul_LastContact="250",
                       X_Consul_Effective_Consistency="stale", X_Consul_Results_Filtered_By_ACLs="true")
    r = Client(fake_server.addr).catalog.nodes(index=5, wait="10s", consistency="stale")
    assert (r.index, r.known_leader, r.last_contact, r.consistency, r.filtered_by_acls) == (
        99, True, 0.25, "stale", True)
    assert fake_server.last.path == "/v1/catalog/nodes?index=5&wait=10s&stale="


def test_missing_or_garbage_index_headers_are_zero(fake_server):
    fake_server.script(200, "{}", X_Consul_Index="x", X_Consul_LastContact="y")
    r = Client(fake_server.addr).catalog.services()
    assert (r.index, r.known_leader, r.last_contact) == (0, False, 0.0)


def test_invalid_json_is_a_decode_error(fake_server):
    fake_server.script(200, "not json")
    with pytest.raises(DecodeError):
        Client(fake_server.addr).agent.members()


def test_kv_get_decodes_entry(fake_server):
    entry = {"LockIndex": 1, "Key": "a/b", "Flags": 7, "Value": base64.b64encode(b"\x00hi").decode(),
             "CreateIndex": 4, "ModifyIndex": 9, "Session": "s1"}
    fake_server.script(200, json.dumps([entry]), X_Consul_Index="9")
    r = Client(fake_server.addr).kv.get("a/b")
    assert r.value == KVPair("a/b", b"\x00hi", 7, 4, 9, 1, "s1")
    assert r.found and r.index == 9


def test_kv_get_missing_key_is_none_with_index(fake_server):
    fake_server.script(404, "", X_Consul_Index="12")
    r = Client(fake_server.addr).kv.get("nope")
    assert (r.value, r.found, r.index) == (None, False, 12)


def test_kv_key_is_percent_encoded_but_keeps_slashes(fake_server):
    fake_server.script(404)
    Client(fake_server.addr).kv.get("a b/c?d#e%f")
    assert fake_server.last.path == "/v1/kv/a%20b/c%3Fd%23e%25f"


def test_kv_rejects_leading_slash_like_go_client():
    with pytest.raises(ValueError, match="must not begin"):
        Client("127.0.0.1:1").kv.get("/abs")


def test_kv_list_and_keys_parameters(fake_server):
    fake_server.script(404, X_Consul_Index="2")
    c = Client(fake_server.addr)
    assert c.kv.list_prefix("p/").value == []
    assert fake_server.last.path == "/v1/kv/p/?recurse="
    assert c.kv.keys("p/", separator="/").value == []
    assert fake_server.last.path == "/v1/kv/p/?keys=&separator=%2F"


def test_kv_put_sends_raw_body_and_flags(fake_server):
    fake_server.script(200, "false")
    c = Client(fake_server.addr)
    assert c.kv.put("k", "välue", flags=42, cas=0) is False
    assert fake_server.last.method == "PUT"
    assert fake_server.last.path == "/v1/kv/k?flags=42&cas=0"
    assert fake_server.last.body == "välue".encode()


def test_kv_put_acquire_and_delete_cas(fake_server):
    fake_server.script(200, "true")
    c = Client(fake_server.addr)
    assert c.kv.put("k", b"v", acquire="sess") is True
    assert fake_server.last.path == "/v1/kv/k?acquire=sess"
    assert c.kv.delete("p/", recurse=True) is True
    assert (fake_server.last.method, fake_server.last.path) == ("DELETE", "/v1/kv/p/?recurse=")
    c.kv.delete("k", cas=7)
    assert fake_server.last.path == "/v1/kv/k?cas=7"


def test_txn_409_is_decoded_as_rollback(fake_server):
    fake_server.script(409, json.dumps({"Results": None, "Errors": [{"OpIndex": 1, "What": 'key "x" exists'}]}))
    result = Client(fake_server.addr).txn.apply([kv_op("set", "a", b"1"), kv_op("check-not-exists", "x")])
    assert result.ok is False
    assert [(e.op_index, e.what) for e in result.errors] == [(1, 'key "x" exists')]
    sent = json.loads(fake_server.last.body)
    assert sent == [{"KV": {"Verb": "set", "Key": "a", "Value": "MQ=="}},
                    {"KV": {"Verb": "check-not-exists", "Key": "x"}}]


def test_txn_success_decodes_kv_results_and_encodes_bytes(fake_server):
    body = {"Results": [{"KV": {"Key": "a", "Value": None, "Flags": 0, "LockIndex": 0, "CreateIndex": 5,
                                "ModifyIndex": 5}}], "Errors": None}
    fake_server.script(200, json.dumps(body), X_Consul_Index="5")
    result = Client(fake_server.addr).txn.apply([{"KV": {"Verb": "set", "Key": "a", "Value": b"raw"}}])
    assert result.ok and result.errors == [] and result.index == 5
    assert result.kv == [KVPair("a", None, 0, 5, 5, 0, None)]
    assert json.loads(fake_server.last.body)[0]["KV"]["Value"] == base64.b64encode(b"raw").decode()


def test_txn_other_errors_raise(fake_server):
    fake_server.script(413, "Transaction contains too many operations (129 > 128)")
    with pytest.raises(TooLarge):
        Client(fake_server.addr).txn.apply([])


def test_session_renew_404_is_none(fake_server):
    fake_server.script(404, "Session id 'x' not found")
    assert Client(fake_server.addr).session.renew("x") is None


def test_session_create_body_uses_go_durations(fake_server):
    fake_server.script(200, '{"ID":"abc"}')
    sid = Client(fake_server.addr).session.create(name="n", ttl=15, lock_delay="1s", behavior="delete", checks=[])
    assert sid == "abc"
    assert json.loads(fake_server.last.body) == {"Name": "n", "TTL": "15s", "LockDelay": "1000ms",
                                                 "Behavior": "delete", "Checks": []}


def test_health_service_tags_and_passing(fake_server):
    fake_server.script(200, "[]", X_Consul_Index="1")
    Client(fake_server.addr).health.service("web", tag=["a", "b"], passing=True, node_meta={"r": "1"})
    assert fake_server.last.path == "/v1/health/service/web?node-meta=r%3A1&tag=a&tag=b&passing=1"


def test_service_names_are_encoded_as_one_segment(fake_server):
    fake_server.script(200, "[]")
    Client(fake_server.addr).catalog.service("we/b")
    assert fake_server.last.path == "/v1/catalog/service/we%2Fb"


def test_agent_writes_accept_empty_bodies(fake_server):
    fake_server.script(200, "")
    c = Client(fake_server.addr)
    assert c.agent.service_register({"Name": "web", "Port": 80}) is None
    assert json.loads(fake_server.last.body) == {"Name": "web", "Port": 80}
    c.agent.check_pass("service:web", note="ok")
    assert (fake_server.last.method, fake_server.last.path) == ("PUT", "/v1/agent/check/pass/service%3Aweb?note=ok")
    c.agent.maintenance(True, reason="upgrade")
    assert fake_server.last.path == "/v1/agent/maintenance?enable=true&reason=upgrade"


def test_event_fire_sends_payload_and_filters(fake_server):
    fake_server.script(200, '{"ID":"e1","Name":"deploy","Payload":"djI=","Version":1,"LTime":0}')
    ev = Client(fake_server.addr).event.fire("deploy", "v2", service="web", tag="blue")
    assert ev["ID"] == "e1"
    assert fake_server.last.path == "/v1/event/fire/deploy?service=web&tag=blue"
    assert fake_server.last.body == b"v2"


def test_unix_socket_address(tmp_path):
    path = str(tmp_path / "consul.sock")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(self.path).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

        def address_string(self):
            return "unix"

    class Server(UnixStreamServer):
        def get_request(self):
            sock, _ = super().get_request()
            return sock, ("unix", 0)

    server = Server(path, Handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        assert Client(f"unix://{path}").status.leader() == "/v1/status/leader"
    finally:
        server.shutdown()
        server.server_close()
        os.unlink(path)
