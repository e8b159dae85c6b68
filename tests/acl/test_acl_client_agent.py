"""A client agent joining an ACL-enforcing server writes its node with its agent token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
import requests
from devserver import free_port, start_dev_server, wait_for

pytestmark = pytest.mark.integration

ROOT = "root-" + uuid.uuid4().hex
H = {"X-Consul-Token": ROOT}


def start_client(tmp_path, join: str, node: str, *args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "meshctl", "agent", "-node", node, "-http-port", str(free_port()),
           "-dns-port", str(free_port()), "-join", join, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    with open(tmp_path / f"{node}.log", "w") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def test_client_agent_registers_with_its_agent_token_only(tmp_path) -> None:
    server = start_dev_server(tmp_path, "-acl-enabled", "-acl-default-policy", "deny", "-acl-initial-management", ROOT)
    clients = []
    try:
        requests.put(f"{server.url}/v1/acl/policy", headers=H, timeout=10, json={
            "Name": "client-node", "Rules": 'node "acl-client" { policy = "write" }'}).raise_for_status()
        tok = requests.put(f"{server.url}/v1/acl/token", headers=H, timeout=10,
                           json={"Policies": [{"Name": "client-node"}]}).json()["SecretID"]
        clients.append(start_client(tmp_path, server.addr, "acl-client", "-acl-agent-token", tok))
        clients.append(start_client(tmp_path, server.addr, "no-token-client"))

        def nodes() -> list[str]:
            return [n["Node"] for n in requests.get(f"{server.url}/v1/catalog/nodes", headers=H, timeout=5).json()]

        deadline = time.monotonic() + 30
        while "acl-client" not in nodes():
            assert time.monotonic() < deadline, (tmp_path / "acl-client.log").read_text()
            time.sleep(0.1)
        time.sleep(1.0)
        assert "no-token-client" not in nodes()
        assert tok not in (tmp_path / "acl-client.log").read_text()
    finally:
        for proc in clients:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()


# ---------------------------------------------------------------------- local endpoints of a client agent

WEB_RULES = 'service "web" { policy = "write" }\nnode_prefix "" { policy = "read" }'


def wait_until(predicate, what: str, timeout: float = 30.0, log=None):
    """Poll `predicate()` until truthy (its value), else fail after `timeout` seconds."""
    return wait_for(predicate, timeout, what, log)


def make_token(url: str, name: str, rules: str) -> dict:
    requests.put(f"{url}/v1/acl/policy", headers=H, timeout=10, json={"Name": name, "Rules": rules}).raise_for_status()
    resp = requests.put(f"{url}/v1/acl/token", headers=H, timeout=10, json={"Policies": [{"Name": name}]})
    resp.raise_for_status()
    return resp.json()


def test_client_agent_enforces_acls_on_its_local_endpoints(tmp_path) -> None:
    server = start_dev_server(tmp_path, "-acl-enabled", "-acl-default-policy", "deny", "-acl-initial-management", ROOT)
    client = None
    try:
        agent_tok = make_token(server.url, "c1-agent", 'node "c1" { policy = "write" }')["SecretID"]
        web = make_token(server.url, "web-writer", WEB_RULES)
        client = start_client(tmp_path, server.addr, "c1", "-acl-agent-token", agent_tok, "-acl-token-ttl", "1s")
        port = client.args[client.args.index("-http-port") + 1]
        curl = f"http://127.0.0.1:{port}"
        log = (tmp_path / "c1.log").read_text

        def call(method: str, path: str, token: str | None = None, **kw) -> requests.Response:
            headers = {"X-Consul-Token": token} if token else {}
            return requests.request(method, f"{curl}{path}", headers=headers, timeout=10, **kw)

        wait_until(lambda: call("GET", "/v1/agent/self", ROOT).status_code == 200, "client agent", log=log)

        def catalog_services() -> dict:
            return requests.get(f"{server.url}/v1/catalog/services", headers=H, timeout=5).json()

        # anonymous: refused in Consul's words, nothing reaches the catalog
        r = call("PUT", "/v1/agent/service/register", json={"Name": "anon-svc"})
        assert (r.status_code, r.text) == (403, "Permission denied: anonymous token lacks permission "
                                                "'service:write' on \"anon-svc\"")
        assert call("GET", "/v1/agent/self").status_code == 403
        r = call("PUT", "/v1/agent/check/register", json={"Name": "anon-check", "TTL": "30s"})
        assert r.status_code == 403
        assert call("PUT", "/v1/agent/maintenance?enable=true").status_code == 403

        # a token with service "web" write: web yes, db no
        r = call("PUT", "/v1/agent/service/register", web["SecretID"], json={"Name": "web", "Port": 80})
        assert r.status_code == 200, r.text
        wait_until(lambda: "web" in catalog_services(), "web in the catalog", log=log)
        r = call("PUT", "/v1/agent/service/register", web["SecretID"], json={"Name": "db", "Port": 5432})
        assert (r.status_code, r.text) == (403, f"Permission denied: token with AccessorID '{web['AccessorID']}' "
                                                "lacks permission 'service:write' on \"db\"")
        # the management token may register db; listings are filtered per token
        assert call("PUT", "/v1/agent/service/register", ROOT, json={"Name": "db", "Port": 5432}).status_code == 200
        wait_until(lambda: "db" in catalog_services(), "db in the catalog", log=log)
        assert "anon-svc" not in catalog_services()
        assert set(call("GET", "/v1/agent/services", ROOT).json()) == {"web", "db"}
        r = call("GET", "/v1/agent/services", web["SecretID"])
        assert set(r.json()) == {"web"}
        assert r.headers.get("X-Consul-Results-Filtered-By-ACLs") == "true"
        assert call("GET", "/v1/agent/services").json() == {}
        assert r.headers.get("X-Consul-Default-ACL-Policy") == "deny"

        # an unknown token
        for method, path in (("GET", "/v1/agent/services"), ("PUT", "/v1/agent/service/register")):
            r = call(method, path, str(uuid.uuid4()), json={"Name": "web"})
            assert (r.status_code, r.text) == (403, "ACL not found")

        # deleted on the server: refused on the client within the TTL (1 s here)
        requests.delete(f"{server.url}/v1/acl/token/{web['AccessorID']}", headers=H, timeout=10).raise_for_status()
        wait_until(lambda: call("GET", "/v1/agent/services", web["SecretID"]).text == "ACL not found",
                   "the deleted token refused", timeout=15, log=log)
        r = call("PUT", "/v1/agent/service/register", web["SecretID"], json={"Name": "web"})
        assert (r.status_code, r.text) == (403, "ACL not found")

        # the servers down: a cached token keeps working (extend-cache), an unseen one is refused
        assert call("GET", "/v1/agent/self", ROOT).status_code == 200
        server.stop()
        assert call("GET", "/v1/agent/self", ROOT).status_code == 200
        time.sleep(1.5)  # past the TTL: the refresh fails, the cached answer is kept
        assert call("GET", "/v1/agent/self", ROOT).status_code == 200
        r = call("GET", "/v1/agent/self", "never-seen-" + uuid.uuid4().hex)
        assert r.status_code == 403 and r.text.startswith("Permission denied: no server could resolve"), r.text

        text = log()
        for secret in (agent_tok, web["SecretID"], ROOT):
            assert secret not in text
    finally:
        if client is not None:
            client.terminate()
            try:
                client.wait(10)
            except subprocess.TimeoutExpired:
                client.kill()
        server.stop()


def test_resolve_endpoint_answers_only_for_the_callers_token(tmp_path) -> None:
    server = start_dev_server(tmp_path, "-acl-enabled", "-acl-default-policy", "deny", "-acl-initial-management", ROOT)
    try:
        web = make_token(server.url, "web-writer", WEB_RULES)
        url = f"{server.url}/v1/internal/meshctl/acl/resolve"
        r = requests.get(url, headers={"X-Consul-Token": web["SecretID"]}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["Enabled"] is True and body["DefaultPolicy"] == "deny"
        assert body["AccessorID"] == web["AccessorID"] and body["Rules"] == [WEB_RULES]
        assert "SecretID" not in r.text and ROOT not in r.text and web["SecretID"] not in r.text
        anon = requests.get(url, timeout=10).json()
        assert anon["AccessorID"] == "00000000-0000-0000-0000-000000000002" and anon["Rules"] == []
        r = requests.get(url, headers={"X-Consul-Token": str(uuid.uuid4())}, timeout=10)
        assert (r.status_code, r.text) == (403, "ACL not found")
    finally:
        server.stop()


def test_resolve_endpoint_with_acls_off(tmp_path) -> None:
    server = start_dev_server(tmp_path)
    try:
        r = requests.get(f"{server.url}/v1/internal/meshctl/acl/resolve", timeout=10)
        assert (r.status_code, r.json()) == (200, {"Enabled": False})
    finally:
        server.stop()
