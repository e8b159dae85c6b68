"""`meshctl lock` against a 3-server cluster whose leader is SIGKILLed mid-way: one contender per
server (as one agent per host), continuous hand-overs, and never two children at once."""

from __future__ import annotations

import importlib.util
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_lock_cli import Harness, intervals, starts

pytestmark = pytest.mark.integration

# The cluster fixture lives in tests/cluster/conftest.py (only visible below tests/cluster):
# load its Cluster class by path.
_spec = importlib.util.spec_from_file_location(
    "lock_cluster_support", Path(__file__).resolve().parents[1] / "cluster" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_support = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _support
_spec.loader.exec_module(_support)
Cluster = _support.Cluster


class _Addr:
    """What Harness needs of a server: an address."""

    def __init__(self, http_port: int) -> None:
        self.addr = f"127.0.0.1:{http_port}"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    (tmp_path / "cluster").mkdir()
    c = Cluster(tmp_path / "cluster", 3)
    c.start()
    yield c
    c.stop()


def test_leader_killed_midway_never_two_holders(cluster, tmp_path):
    prefix = "clustertest/leader"
    harnesses = {}
    for s in cluster.servers:
        (tmp_path / s.name).mkdir()
        harnesses[s.name] = Harness(_Addr(s.http_port), tmp_path / s.name)
    log = tmp_path / "intervals.log"
    for h in harnesses.values():
        h.log = log  # one interval log for every contender
    contenders: dict[str, object] = {}

    def keep_contending(alive_names: list[str]) -> None:
        for name in alive_names:
            p = contenders.get(name)
            if p is None or p.poll() is not None:  # type: ignore[attr-defined]
                h = harnesses[name]
                contenders[name] = h.spawn("-shell=false", "-kill-timeout", "1s", prefix, *h.work(0.3))

    try:
        names = [s.name for s in cluster.servers]
        deadline = time.monotonic() + 60
        while starts(log) < 6:
            assert time.monotonic() < deadline, "no hand-overs before the kill"
            keep_contending(names)
            time.sleep(0.05)

        # Kill the leader while the lock holder is the contender talking to it (its session
        # lives on the leader's node): the worst case.
        leader = cluster.leader()

        def holder_node() -> str | None:
            pair = leader.get(f"/v1/kv/{prefix}/.lock", timeout=5)
            sid = pair.json()[0].get("Session") if pair.status_code == 200 else None
            info = leader.get(f"/v1/session/info/{sid}", timeout=5).json() if sid else []
            return info[0]["Node"] if info else None

        deadline = time.monotonic() + 60
        while holder_node() != leader.name:
            assert time.monotonic() < deadline, "the leader's contender never held the lock"
            keep_contending(names)
            time.sleep(0.02)
        leader.signal(signal.SIGKILL)
        killed_at = time.time()
        survivors = [s.name for s in cluster.servers if s is not leader]
        deadline = time.monotonic() + 90
        while len([i for i in intervals(log) if i.start > killed_at]) < 4:
            assert time.monotonic() < deadline, "fewer than 4 hand-overs in 90s after the leader died"
            keep_contending(survivors)
            time.sleep(0.05)
    finally:
        for h in harnesses.values():
            h.close()

    runs = intervals(log)
    after_kill = [r for r in runs if r.start > killed_at]
    print(f"{len(runs)} runs; first start after the kill: +{after_kill[0].start - killed_at:.1f}s")
    assert len(runs) >= 10
    for before, after in zip(runs, runs[1:], strict=False):
        assert before.stop is not None and after.start >= before.stop, f"two holders: {before} / {after}"
