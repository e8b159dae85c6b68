"""`meshctl leave`, `keygen`, `members -detailed`, `force-leave`, `join` against a -dev agent."""

from __future__ import annotations

import base64

import pytest
from cli_support import run_meshctl
from devserver import DevServer

pytestmark = pytest.mark.integration


def test_keygen_prints_a_fresh_32_byte_key() -> None:
    first, second = run_meshctl("keygen"), run_meshctl("keygen")
    assert first.code == 0 and len(base64.b64decode(first.out.strip(), validate=True)) == 32
    assert first.out != second.out


def test_members_detailed_and_unknown_force_leave(dev_server: DevServer) -> None:
    env = {"CONSUL_HTTP_ADDR": dev_server.url}
    res = run_meshctl("members", "-detailed", env=env)
    assert res.code == 0, res.err
    assert res.lines[0].split() == ["Node", "Address", "Status", "Tags"]
    name, _addr, status, tags = res.lines[1].split()
    assert (name, status) == (dev_server.node, "alive")
    assert {"role=consul", "dc=dc1"} <= set(tags.split(","))
    res = run_meshctl("force-leave", "ghost", env=env)
    assert res.code == 1 and "No node found with name 'ghost'" in res.err
    res = run_meshctl("join", "127.0.0.1:1", env=env)
    assert res.code == 1 and "Failed to join any nodes." in res.err


def test_leave_shuts_a_dev_agent_down(dev_server: DevServer) -> None:
    res = run_meshctl("leave", env={"CONSUL_HTTP_ADDR": dev_server.url})
    assert res.code == 0 and "Graceful leave complete" in res.out
    assert dev_server.proc.wait(20) == 0
