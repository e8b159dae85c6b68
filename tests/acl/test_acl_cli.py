"""`meshctl acl ...` against a real agent: bootstrap, policies from files, tokens, roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from devserver import start_dev_server

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_dev_server(tmp_path_factory.mktemp("aclcli"), "-acl-enabled", "-acl-default-policy", "deny")
    yield srv
    srv.stop()


def run(server, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env.update(CONSUL_HTTP_ADDR=server.addr, PYTHONPATH=str(REPO))
    if token:
        env["CONSUL_HTTP_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "meshctl", "acl", *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=str(REPO))


def test_acl_workflow(server, tmp_path) -> None:
    boot = run(server, "bootstrap", "-format", "json")
    assert boot.returncode == 0, boot.stderr
    root = json.loads(boot.stdout)["SecretID"]
    again = run(server, "bootstrap")
    assert again.returncode == 1 and "ACL bootstrap no longer allowed" in again.stderr

    rules = tmp_path / "app.hcl"
    rules.write_text('key_prefix "app/" {\n  policy = "write"\n}\n')
    created = run(server, "policy", "create", "-name", "app-write", "-rules", f"@{rules}", token=root)
    assert created.returncode == 0, created.stderr
    assert "Name:         app-write" in created.stdout and 'key_prefix "app/"' in created.stdout

    bad = tmp_path / "bad.hcl"
    bad.write_text('key_prefix "app/" {\n  policy = "maybe"\n}\n')
    refused = run(server, "policy", "create", "-name", "bad", "-rules", f"@{bad}", token=root)
    assert refused.returncode == 1 and "400" in refused.stderr and "line 2" in refused.stderr

    tok = run(server, "token", "create", "-description", "app token", "-policy-name", "app-write", "-format", "json",
              token=root)
    assert tok.returncode == 0, tok.stderr
    token = json.loads(tok.stdout)
    assert token["Policies"][0]["Name"] == "app-write"
    r = requests.put(f"{server.url}/v1/kv/app/x", data=b"1", headers={"X-Consul-Token": token["SecretID"]}, timeout=10)
    assert r.status_code == 200

    read = run(server, "token", "read", "-id", token["AccessorID"], token=root)
    assert f"AccessorID:       {token['AccessorID']}" in read.stdout and "app-write" in read.stdout
    listed = run(server, "token", "list", token=root)
    assert token["AccessorID"] in listed.stdout and "Anonymous Token" in listed.stdout
    assert "app-write:" in run(server, "policy", "list", token=root).stdout

    role = run(server, "role", "create", "-name", "ops", "-policy-name", "app-write", token=root)
    assert role.returncode == 0 and "Name:         ops" in role.stdout
    upd = run(server, "token", "update", "-id", token["AccessorID"], "-description", "renamed", token=root)
    assert upd.returncode == 0 and "renamed" in upd.stdout
    clone = run(server, "token", "clone", "-id", token["AccessorID"], "-description", "copy", "-format", "json",
                token=root)
    assert json.loads(clone.stdout)["Description"] == "copy"

    assert run(server, "token", "delete", "-id", token["AccessorID"], token=root).returncode == 0
    r = requests.put(f"{server.url}/v1/kv/app/x", data=b"1", headers={"X-Consul-Token": token["SecretID"]}, timeout=10)
    assert r.status_code == 403 and r.text == "ACL not found"
    assert run(server, "role", "delete", "-name", "ops", token=root).returncode == 0
    assert run(server, "policy", "delete", "-name", "app-write", token=root).returncode == 0
    denied = run(server, "policy", "list")
    assert denied.returncode == 1 and "Permission denied" in denied.stderr


def test_acl_disabled_is_401(dev_server) -> None:
    r = requests.get(f"{dev_server.url}/v1/acl/tokens", timeout=10)
    assert r.status_code == 401 and r.text == "ACL support disabled"
    assert requests.get(f"{dev_server.url}/v1/kv/x", timeout=10).headers["X-Consul-Default-ACL-Policy"] == "allow"
    out = run(dev_server, "token", "list")
    assert out.returncode == 1 and "401" in out.stderr


def test_acl_settings_from_a_config_file(tmp_path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "acl.hcl").write_text('acl {\n  enabled = true\n  default_policy = "deny"\n'
                                  '  tokens {\n    initial_management = "from-config-file"\n  }\n}\n')
    srv = start_dev_server(tmp_path, "-config-dir", str(conf))
    try:
        r = requests.get(f"{srv.url}/v1/kv/x", timeout=10)
        assert r.status_code == 403 and "anonymous token" in r.text
        me = requests.get(f"{srv.url}/v1/acl/token/self", headers={"X-Consul-Token": "from-config-file"}, timeout=10)
        assert me.status_code == 200 and me.json()["Policies"][0]["Name"] == "global-management"
        assert "from-config-file" not in srv.log()
    finally:
        srv.stop()
