"""`/v1/agent/members?wan` and `meshctl members -wan`: every server of every datacenter, Consul's WAN names.

Two single-server datacenters, dc1 joined to dc2 over the WAN; a client agent of dc1 asks its
server. dc2 is killed last: dc1 then lists it failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from agent.agent_procs import start_client_agent

from cluster.conftest import Server, wait_for
from cluster.wan_helpers import joined_datacenters, stop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with joined_datacenters(tmp_path_factory.mktemp("wanmembers"), "dc2", "dc1") as servers:
        yield servers


def wan_members(url: str, query: str = "wan") -> dict[str, dict[str, Any]]:
    r = requests.get(f"{url}/v1/agent/members?{query}", timeout=10)
    assert r.status_code == 200, r.text
    return {m["Name"]: m for m in r.json()}


def meshctl(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSUL_HTTP_ADDR": server_url.removeprefix("http://")}
    return subprocess.run([sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, env=env,
                          timeout=30)


def test_members_wan_lists_every_datacenters_servers(dcs: dict[str, Server]) -> None:
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    for server in (dc1, dc2):
        members = wan_members(server.url)
        assert sorted(members) == ["dc1-s1.dc1", "dc2-s1.dc2"]
        for dc, other in (("dc1", dc1), ("dc2", dc2)):
            m = members[f"{dc}-s1.{dc}"]
            assert (m["Addr"], m["Port"], m["Status"]) == ("127.0.0.1", other.serf_port, 1)
            assert (m["Tags"]["dc"], m["Tags"]["role"]) == (dc, "consul")
    # this datacenter's own servers carry their LAN tags (Raft port, ID, build)
    own = wan_members(dc1.url)["dc1-s1.dc1"]["Tags"]
    assert own["port"] == str(dc1.server_port) and own["id"] and own["build"]
    for query in ("wan=1", "wan=true"):
        assert sorted(wan_members(dc1.url, query)) == ["dc1-s1.dc1", "dc2-s1.dc2"]
    # without ?wan: the LAN pool, unchanged
    assert [m["Name"] for m in dc1.get("/v1/agent/members").json()] == ["dc1-s1"]
    r = dc1.get("/v1/agent/members?wan&segment=alpha")
    assert (r.status_code, r.text) == (400, "Cannot provide a segment with wan=true")


def test_meshctl_members_wan(dcs: dict[str, Server]) -> None:
    out = meshctl(dcs["dc1"].url, "members", "-wan")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert rows == [["Node", "Address", "Status", "Type", "DC"],
                    ["dc1-s1.dc1", f"127.0.0.1:{dcs['dc1'].serf_port}", "alive", "server", "dc1"],
                    ["dc2-s1.dc2", f"127.0.0.1:{dcs['dc2'].serf_port}", "alive", "server", "dc2"]]
    lan = meshctl(dcs["dc1"].url, "members")
    assert [line.split()[0] for line in lan.stdout.splitlines()] == ["Node", "dc1-s1"]


def test_a_client_agent_answers_with_its_servers_wan_view(dcs: dict[str, Server], tmp_path: Path) -> None:
    client = start_client_agent(tmp_path, f"127.0.0.1:{dcs['dc1'].serf_port}", node="wan-members-client")
    try:
        assert sorted(wan_members(client.url)) == ["dc1-s1.dc1", "dc2-s1.dc2"]
        assert "wan-members-client" in {m["Name"] for m in requests.get(client.url + "/v1/agent/members",
                                                                         timeout=10).json()}
    finally:
        client.stop()


def test_zz_a_datacenter_that_is_down_is_listed_failed(dcs: dict[str, Server]) -> None:
    """Last in this module: dc2 is killed."""
    dc1 = dcs["dc1"]
    stop(dcs["dc2"])
    dc1.get("/v1/kv/x?dc=dc2")  # a request that fails to reach dc2 marks it failed at once
    wait_for(lambda: wan_members(dc1.url)["dc2-s1.dc2"]["Status"] == 4, 15, "dc2 listed failed")
    failed = meshctl(dc1.url, "members", "-wan", "-status", "failed")
    assert failed.returncode == 0, failed.stderr
    assert [line.split()[0] for line in failed.stdout.splitlines()] == ["Node", "dc2-s1.dc2"]
