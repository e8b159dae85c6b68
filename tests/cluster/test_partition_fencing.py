"""A write answered 500 by a cut-off leader never comes back after the partition heals.

The leader's Raft port is cut off with iptables (see conftest.RaftPartition). A write it takes
while it still believes it leads reaches its own log only (Raft cannot un-append it: the answer
says the outcome is unknown; the majority's newer entries replace it). A write it takes once
it stepped down waits for a leader and is withdrawn when it times out: the answer says it was
not applied, and it never is, even when this server finds the new leader after the heal.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import Cluster, RaftPartition, iptables_usable, lowest, make_leader, settled_views, wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not iptables_usable(), reason="needs root and iptables (a Raft partition)")]


def put_in_background(server: Any, path: str, value: bytes, out: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        try:
            r = server.put(path, value, timeout=60)
            out["status"], out["text"] = r.status_code, r.text
        except requests.RequestException as exc:
            out["status"], out["text"] = None, repr(exc)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_writes_failed_by_a_cut_off_leader_are_never_applied_later(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 3, extra=["-sync-writes"])
    c.start()
    partition = RaftPartition()
    try:
        old = lowest(c)
        make_leader(c, old)
        for key in ("fence/appended", "fence/queued"):
            assert old.put(f"/v1/kv/{key}", b"v1").json() is True
        majority = [s for s in c.servers if s is not old]

        partition.isolate(old)
        appended: dict[str, Any] = {}
        t1 = put_in_background(old, "/v1/kv/fence/appended", b"stale", appended)  # it still leads
        wait_for(lambda: old.get("/v1/status/leader?stale", timeout=2).json() == "", 60,
                 "the cut-off leader to step down")
        queued: dict[str, Any] = {}
        t2 = put_in_background(old, "/v1/kv/fence/queued", b"stale", queued)  # no leader known

        new = wait_for(lambda: (lambda ld: c.by_raft(ld) if ld and ld != old.raft_address else None)(
            majority[0].get("/v1/status/leader", timeout=2).json()), 60, "the majority's new leader")
        assert new is not None
        for key in ("fence/appended", "fence/queued"):
            wait_for(lambda key=key: new.put(f"/v1/kv/{key}", b"v2", timeout=10).json() is True, 30,
                     f"the majority to write {key}")
        t1.join(60)
        t2.join(60)
        assert appended["status"] == 500, appended
        assert queued["status"] == 500, queued
        assert "not applied" in queued["text"], queued["text"]
        assert "not applied" in appended["text"] or "outcome is unknown" in appended["text"], appended["text"]
    finally:
        partition.heal()

    try:
        c.wait_ready(60)
        # a follow-up write through the old leader, once it follows the new one
        wait_for(lambda: old.put("/v1/kv/fence/after", b"1", timeout=10).json() is True, 60,
                 "a write through the old leader after the heal")
        views = settled_views(c.servers)
        assert len({h for _, h in views}) == 1, views
        for s in c.servers:
            for key in ("fence/appended", "fence/queued"):
                r = s.get(f"/v1/kv/{key}?raw&stale")
                assert r.content == b"v2", (s.name, key, r.content)
        for s in c.servers:
            assert "CRITICAL" not in s.log() and "may have diverged" not in s.log()
    finally:
        c.stop()
