"""Servers with -encrypt: a wrong key cannot join or read; ACL data replicates to every server."""

from __future__ import annotations

import importlib.util
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# The cluster helpers live in tests/cluster/conftest.py (only visible below tests/cluster): load by path.
_spec = importlib.util.spec_from_file_location(
    "acl_cluster_support", Path(__file__).resolve().parents[1] / "cluster" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_support = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _support
_spec.loader.exec_module(_support)
Cluster, wait_for = _support.Cluster, _support.wait_for

KEY = "pTiP5rW0v3wXJ7Yp4gE2bM1qL8nZ6cV9kD0sH3fA5uQ="
ROOT = "root-" + uuid.uuid4().hex
H = {"X-Consul-Token": ROOT}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    acl = ["-acl-enabled", "-acl-default-policy", "deny", "-acl-initial-management", ROOT]
    c = Cluster(tmp_path, 3)
    for s in c.servers[:2]:
        s.extra = ["-encrypt", KEY, *acl]
    c.servers[2].extra = ["-encrypt", "bm90LXRoZS1jbHVzdGVyLWtleS0zMi1ieXRlcyEhISE=", *acl]
    for s in c.servers:
        s.start(3)
    yield c
    for s in c.servers:
        if s.alive:
            s.signal(signal.SIGKILL)


def _leader_of(server) -> str:
    return str(server.get("/v1/status/leader?stale", timeout=2).json())


def test_a_server_with_a_wrong_key_cannot_join_or_read(cluster: Cluster) -> None:
    good, bad = cluster.servers[:2], cluster.servers[2]
    leader = wait_for(lambda: _leader_of(good[0]) if _leader_of(good[0]) and
                      _leader_of(good[0]) == _leader_of(good[1]) else None, 60, "a leader among the keyed servers")
    assert leader in (good[0].raft_address, good[1].raft_address)

    # ACL data is replicated: a policy and token made on one server work on the other
    def made() -> bool:
        return good[0].put("/v1/kv/enc/secret", b"classified", headers=H).status_code == 200

    wait_for(made, 30, "a write through the first server")
    pol = good[0].put("/v1/acl/policy", headers=H, json={"Name": "enc-read", "Rules": 'key_prefix "enc/" { policy = "read" }'})
    assert pol.status_code == 200, pol.text
    tok = good[0].put("/v1/acl/token", headers=H, json={"Policies": [{"Name": "enc-read"}]}).json()["SecretID"]
    reader = {"X-Consul-Token": tok}
    r = wait_for(lambda: (lambda x: x if x.status_code == 200 else None)(
        good[1].get("/v1/kv/enc/secret?raw&stale", headers=reader)), 30, "the token on the other server")
    assert r.text == "classified"
    assert good[1].put("/v1/kv/enc/secret", b"x", headers=reader).status_code == 403

    # the server with the wrong key never learns a leader, and holds none of the data
    time.sleep(2)
    assert _leader_of(bad) == ""
    assert bad.get("/v1/kv/enc/secret?stale", headers=H).status_code in (403, 404)
    assert "classified" not in bad.log()
    assert KEY not in good[0].log() and ROOT not in good[0].log() and tok not in good[1].log()
