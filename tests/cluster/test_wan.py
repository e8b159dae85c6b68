"""WAN federation: datacenters joined with -retry-join-wan answer each other's `?dc=` requests.

Three single-server datacenters: dc1 joins dc2, dc3 joins dc2. Nobody joins dc1 or dc3
directly, so dc2 learning dc1 shows that a join is mutual, and dc1 learning dc3 shows that
the pool is learned transitively.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from agent.agent_procs import start_client_agent

from cluster.conftest import Cluster, Server, wait_for
from cluster.wan_helpers import joined_datacenters, start_datacenter, stop, wait_datacenters, wait_ready
from meshctl.server.wan import WAN_PATH

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with joined_datacenters(tmp_path_factory.mktemp("wan"), "dc2", "dc1", "dc3") as servers:
        yield servers


def test_datacenters_lists_the_local_one_first_then_every_joined_one(wan: dict[str, Server]) -> None:
    for dc, server in wan.items():
        listed = requests.get(server.url + "/v1/catalog/datacenters", timeout=5).json()
        assert listed[0] == dc
        assert sorted(listed) == ["dc1", "dc2", "dc3"]


def test_a_write_with_dc_lands_in_that_datacenter_only(wan: dict[str, Server]) -> None:
    r = wan["dc1"].put("/v1/kv/wan/put-via-dc1?dc=dc2&flags=42", b"hello dc2")
    assert (r.status_code, r.text) == (200, "true")
    direct = wan["dc2"].get("/v1/kv/wan/put-via-dc1").json()[0]
    assert direct["Flags"] == 42
    assert wan["dc2"].get("/v1/kv/wan/put-via-dc1?raw").content == b"hello dc2"
    assert wan["dc1"].get("/v1/kv/wan/put-via-dc1").status_code == 404
    # reads through dc1 see dc2's entry, with dc2's index headers
    via = wan["dc1"].get("/v1/kv/wan/put-via-dc1?dc=dc2")
    assert via.json()[0]["ModifyIndex"] == direct["ModifyIndex"]
    assert int(via.headers["X-Consul-Index"]) >= direct["ModifyIndex"]
    assert via.headers["X-Consul-KnownLeader"] == "true"


def test_transitively_learned_datacenter_is_reachable(wan: dict[str, Server]) -> None:
    assert wan["dc1"].put("/v1/kv/wan/to-dc3?dc=dc3", b"3").status_code == 200
    assert wan["dc3"].get("/v1/kv/wan/to-dc3?raw").content == b"3"


def test_blocking_query_through_dc_wakes_on_a_write_in_that_datacenter(wan: dict[str, Server]) -> None:
    wan["dc2"].put("/v1/kv/wan/block", b"v1")
    first = wan["dc1"].get("/v1/kv/wan/block?dc=dc2")
    index = int(first.headers["X-Consul-Index"])
    result: dict[str, object] = {}

    def block() -> None:
        started = time.monotonic()
        r = wan["dc1"].get(f"/v1/kv/wan/block?dc=dc2&index={index}&wait=20s", timeout=30)
        result.update(elapsed=time.monotonic() - started, response=r)

    waiter = threading.Thread(target=block)
    waiter.start()
    time.sleep(0.5)
    assert "response" not in result  # still blocked
    wan["dc2"].put("/v1/kv/wan/block", b"v2")
    waiter.join(15)
    response = result["response"]
    assert isinstance(response, requests.Response)
    assert response.json()[0]["Value"] == "djI="  # v2
    assert int(response.headers["X-Consul-Index"]) > index
    assert result["elapsed"] < 10  # woken by the write, not by the wait


def test_unknown_datacenter_has_no_path(wan: dict[str, Server]) -> None:
    for method in ("GET", "PUT"):
        r = requests.request(method, wan["dc1"].url + "/v1/kv/wan/x?dc=nowhere", data=b"x", timeout=5)
        assert (r.status_code, r.text) == (500, "No path to datacenter")
    # the agent's own endpoints answer locally whatever ?dc= says
    assert wan["dc1"].get("/v1/agent/self?dc=nowhere").json()["Config"]["Datacenter"] == "dc1"


def test_catalog_register_and_deregister_go_to_the_body_datacenter(wan: dict[str, Server]) -> None:
    """Consul forwards a catalog write to the `Datacenter` of its body (?dc= plays no part)."""
    body = {"Datacenter": "dc2", "Node": "wan-ext", "Address": "127.0.0.5",
            "Service": {"Service": "wan-ext-svc", "Port": 80}}
    r = wan["dc1"].put("/v1/catalog/register", json=body)
    assert (r.status_code, r.text) == (200, "true")
    assert [n["Node"] for n in wan["dc2"].get("/v1/catalog/service/wan-ext-svc").json()] == ["wan-ext"]
    assert wan["dc1"].get("/v1/catalog/service/wan-ext-svc").json() == []
    r = wan["dc1"].put("/v1/catalog/deregister", json={"Datacenter": "dc2", "Node": "wan-ext"})
    assert (r.status_code, r.text) == (200, "true")
    assert wan["dc2"].get("/v1/catalog/node/wan-ext").json() is None
    r = wan["dc1"].put("/v1/catalog/register", json={**body, "Datacenter": "nowhere"})
    assert (r.status_code, r.text) == (500, "No path to datacenter")


def test_kv_get_with_datacenter_flag(wan: dict[str, Server]) -> None:
    wan["dc2"].put("/v1/kv/wan/cli", b"from dc2")
    env = {**os.environ, "CONSUL_HTTP_ADDR": f"127.0.0.1:{wan['dc1'].http_port}"}
    out = subprocess.run([sys.executable, "-m", "meshctl", "kv", "get", "-datacenter", "dc2", "wan/cli"],
                         capture_output=True, text=True, env=env, timeout=30)
    assert (out.returncode, out.stdout) == (0, "from dc2\n"), out.stderr


def test_dc_through_a_client_agent(wan: dict[str, Server], tmp_path: Path) -> None:
    client = start_client_agent(tmp_path, f"127.0.0.1:{wan['dc1'].serf_port}", node="wan-client")
    try:
        assert requests.put(client.url + "/v1/kv/wan/via-client?dc=dc2", data=b"c", timeout=10).text == "true"
        assert wan["dc2"].get("/v1/kv/wan/via-client?raw").content == b"c"
        dcs = requests.get(client.url + "/v1/catalog/datacenters", timeout=10).json()
        assert dcs[0] == "dc1" and sorted(dcs) == ["dc1", "dc2", "dc3"]
    finally:
        client.stop()


def test_a_datacenter_that_goes_down_has_no_path_until_it_is_back(wan: dict[str, Server]) -> None:
    dc3 = wan["dc3"]
    stop(dc3)
    r = wan["dc1"].get("/v1/kv/wan/to-dc3?dc=dc3")
    assert (r.status_code, r.text) == (500, "No path to datacenter")
    assert "dc3" in wan["dc1"].get("/v1/catalog/datacenters").json()  # failed, still a member
    dc3.start(1)  # same ports and data dir
    wait_ready(dc3)
    wait_for(lambda: wan["dc1"].get("/v1/kv/wan/to-dc3?dc=dc3&raw").content == b"3", 20,
             "dc3 reachable again through dc1")


def wan_members(server: Server) -> list[str]:
    """The WAN addresses a server knows, from its side of the WAN exchange (an empty announcement)."""
    body = requests.post(f"http://127.0.0.1:{server.serf_port}{WAN_PATH}", json={}, timeout=5).json()
    return [s["WAN"] for s in body["Servers"]]


def test_servers_of_a_datacenter_share_a_join_and_forwarding_fails_over(tmp_path: Path) -> None:
    """dc1 has two servers and only s1 joins dc2: s2 learns dc2 from s1, dc2 learns both (Consul's join flooding)."""
    dc2 = start_datacenter(tmp_path, "dc2")
    (tmp_path / "dc1").mkdir()
    cluster = Cluster(tmp_path / "dc1", 2, extra=["-datacenter", "dc1"])
    s1, s2 = cluster.servers
    s1.extra += ["-retry-join-wan", f"127.0.0.1:{dc2.serf_port}"]
    try:
        cluster.start()
        wait_datacenters(s2, ["dc1", "dc2"])
        wait_for(lambda: s2.put("/v1/kv/wan/from-s2?dc=dc2", b"2").text == "true", 10, "s2 to reach dc2")
        leader = cluster.leader()
        leader.put("/v1/kv/wan/in-dc1", b"1")
        # dc2 knows both dc1 servers: with one of them down, ?dc=dc1 goes to the other
        survivor = next(s for s in cluster.servers if s is not leader)
        wait_for(lambda: survivor.get("/v1/kv/wan/in-dc1?stale&raw").content == b"1", 10, "replication in dc1")
        wait_for(lambda: f"127.0.0.1:{survivor.serf_port}" in wan_members(dc2), 15, "dc2 to know both dc1 servers")
        stop(leader)
        r = wait_for(lambda: dc2.get("/v1/kv/wan/in-dc1?dc=dc1&stale&raw"), 10, "a read through the survivor")
        assert r.content == b"1"
    finally:
        cluster.stop()
        stop(dc2)
