"""`meshctl snapshot save|inspect|restore` as a subprocess against a fresh `meshctl agent -dev`."""

from __future__ import annotations

import pytest
from cli_support import run_meshctl

from meshctl.client import Client

pytestmark = pytest.mark.integration


def test_save_inspect_restore_round_trip(dev_server, tmp_path):
    env = {"CONSUL_HTTP_ADDR": dev_server.addr}
    client = Client(dev_server.addr)
    client.kv.put("snap/a", b"before")
    path = tmp_path / "state.snap"

    saved = run_meshctl("snapshot", "save", str(path), env=env)
    assert saved.code == 0, saved.err
    index = int(saved.out.strip().rsplit(" ", 1)[-1])
    assert saved.out == f"Saved and verified snapshot to index {index}\n" and index > 0

    inspected = run_meshctl("snapshot", "inspect", str(path))
    assert inspected.code == 0, inspected.err
    assert any(line.split() == ["KV", "entries", "1"] for line in inspected.lines), inspected.out

    client.kv.put("snap/a", b"after")
    client.kv.put("snap/b", b"new")
    restored = run_meshctl("snapshot", "restore", str(path), env=env)
    assert (restored.code, restored.out) == (0, "Restored snapshot\n"), restored.err
    assert [(p.key, p.value) for p in client.kv.list_prefix("snap/").value] == [("snap/a", b"before")]


def test_save_to_an_unreachable_agent_fails_and_writes_nothing(closed_addr, tmp_path):
    path = tmp_path / "state.snap"
    r = run_meshctl("snapshot", "save", str(path), env={"CONSUL_HTTP_ADDR": closed_addr})
    assert r.code == 1 and r.err and not path.exists()
