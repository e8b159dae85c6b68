"""A client agent joining an ACL-enforcing server writes its node with its agent token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
import requests
from devserver import free_port, start_dev_server

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
