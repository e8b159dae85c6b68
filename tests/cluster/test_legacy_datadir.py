"""A data dir written by an older meshctl (pickled Raft journal and snapshot) still loads.

The fixture (fixtures/legacy-datadir-v0.tar.gz, made by fixtures/make_legacy_datadir.py) is a
1-server data dir with a snapshot and journal entries after it; `expected.json` in it is what
that server answered before it stopped. Its Raft address (127.0.0.93:18393) is in its files.
"""

from __future__ import annotations

import json
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, wait_for

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "legacy-datadir-v0.tar.gz"
BIND, SERVER_PORT, NODE = "127.0.0.93", 18393, "legacy1"


def view(s: Server) -> dict[str, Any]:
    kv = s.get("/v1/kv/?recurse").json()
    return {
        "kv": {e["Key"]: {"Value": e["Value"], "Flags": e["Flags"], "Session": e.get("Session", "")} for e in kv},
        "catalog_services": s.get("/v1/catalog/services").json(),
        "sessions": sorted([x["ID"], x["Name"]] for x in s.get("/v1/session/list").json()),
    }


def start(s: Server) -> None:
    s.start(1)
    wait_for(lambda: s.get("/v1/status/leader", timeout=2).json() == s.raft_address, 60, "the server to lead")
    wait_for(lambda: s.get("/v1/kv/_ready", timeout=2).status_code == 200, 30, "reads")


def test_an_old_data_dir_serves_the_same_keys_sessions_and_services(tmp_path: Path) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((BIND, SERVER_PORT))
        except OSError:
            pytest.skip(f"{BIND}:{SERVER_PORT} (the fixture's Raft address) is in use")
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    data = tmp_path / "data"
    expected = json.loads((data / "expected.json").read_text())
    s = Server(NODE, data, tmp_path / "server.log", server_port=SERVER_PORT, bind=BIND)
    try:
        start(s)
        assert view(s) == expected, s.log()[-3000:]
        # a deleted key stays deleted, a held lock stays held
        assert s.get("/v1/kv/app/config/0").status_code == 404
        assert s.get("/v1/kv/fill/0").status_code == 404
        assert s.get("/v1/kv/tail/lock").json()[0]["Session"]

        # the data dir (now in today's format) loads again, with what was written since
        assert s.put("/v1/kv/after/upgrade", b"yes").json() is True
        s.signal(15)
        start(s)
        got = view(s)
        assert got["kv"].pop("after/upgrade")["Value"] == "eWVz"
        assert got == expected
        assert "CRITICAL" not in s.log()
    finally:
        if s.alive:
            s.signal(9)
