"""A write answered 500 by a cut-off leader never comes back after the partition heals.

The leader's Raft port is cut off with iptables (see conftest.RaftPartition). A write it takes
while it still believes it leads reaches its own log only (Raft cannot un-append it: the answer
says the outcome is unknown; the majority's newer entries replace it). A write it takes once
it stepped down waits for a leader and is withdrawn when it times out: the answer says it was
not applied, and it never is, even when this server finds the new leader after the heal.
"""

from __future__ import annotations

import threading
import time
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


def test_consistent_reads_of_a_cut_off_leader_never_miss_a_newer_write(tmp_path: Path) -> None:
    """`?consistent` is linearizable: a read that started after a write was acknowledged sees it,
    even on the old leader of a partition that still believes it leads (it must reach a quorum
    first, so it answers 500 instead). Its default reads may be stale meanwhile: not checked."""
    c = Cluster(tmp_path, 3)
    c.start()
    partition = RaftPartition()
    reads: list[tuple[float, int, bytes]] = []  # (start, status, value)
    stop = threading.Event()
    try:
        old = lowest(c)
        make_leader(c, old)
        assert old.put("/v1/kv/lin/x", b"v1").json() is True
        majority = [s for s in c.servers if s is not old]

        def read_old() -> None:
            while not stop.is_set():
                start = time.monotonic()
                try:
                    r = old.get("/v1/kv/lin/x?consistent&raw", timeout=30)
                    reads.append((start, r.status_code, r.content))
                except requests.RequestException:
                    reads.append((start, 0, b""))  # no answer: not stale either

        reader = threading.Thread(target=read_old, daemon=True)
        reader.start()
        partition.isolate(old)
        new = wait_for(lambda: (lambda ld: c.by_raft(ld) if ld and ld != old.raft_address else None)(
            majority[0].get("/v1/status/leader", timeout=2).json()), 60, "the majority's new leader")
        assert new is not None
        wait_for(lambda: new.put("/v1/kv/lin/x", b"v2", timeout=10).json() is True, 30, "the majority's write")
        acked_at = time.monotonic()
        wait_for(lambda: any(start > acked_at for start, _, _ in reads), 90, "a read started after the write")
        stop.set()
        reader.join(40)
    finally:
        stop.set()
        partition.heal()
        c.stop()
    after = [(status, value) for start, status, value in reads if start > acked_at]
    assert after, "no read started after the acknowledged write"
    assert all(value == b"v2" for status, value in after if status == 200), after
