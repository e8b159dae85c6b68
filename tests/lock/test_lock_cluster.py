"""`meshctl lock` against a 3-server cluster: one contender per server (as one agent per host)
while the leader is SIGKILLed mid-way, and a holder whose server is paused — never two children
at once."""

from __future__ import annotations

import importlib.util
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_lock_cli import PY, Harness, alive, intervals, starts, wait_for

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


# The child: takes an exclusive flock on a file shared by every child (the kernel drops it the
# moment the process dies), reports whether it had it alone, then runs until killed. A child
# that finds the flock taken started while another holder's child still ran: two holders.
FLOCK_CHILD = textwrap.dedent("""
    import fcntl, os, sys, time
    shared, report = sys.argv[1], sys.argv[2]
    fd = os.open(shared, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        verdict = "alone"
    except BlockingIOError:
        verdict = "overlap"
    with open(report + ".tmp", "w") as f:
        f.write(f"{verdict} {os.getpid()}\\n")
    os.rename(report + ".tmp", report)
    while True:
        time.sleep(1)
""")


def test_holder_whose_server_is_paused_stops_its_child_before_the_lock_moves(cluster, tmp_path):
    """Issue 11 §6: the holder talks to a follower that gets SIGSTOPped. Its renewals hang; the
    leader fails that follower's node (~5 s), which invalidates the holder's session, and gives
    the lock to the other contender one lock-delay (15 s) later. The holder must have stopped its
    child before then: the second child must find the shared flock free."""
    prefix = "clustertest/paused"
    leader = cluster.leader()
    follower = next(s for s in cluster.servers if s is not leader)
    child = tmp_path / "child.py"
    child.write_text(FLOCK_CHILD)
    shared = tmp_path / "shared.flock"
    reports = {name: tmp_path / f"{name}.report" for name in ("holder", "next")}
    harnesses = {}
    for name, server in (("holder", follower), ("next", leader)):
        (tmp_path / name).mkdir()
        harnesses[name] = Harness(_Addr(server.http_port), tmp_path / name)
    holder_h, next_h = harnesses["holder"], harnesses["next"]
    try:
        holder = holder_h.spawn("-shell=false", prefix, PY, str(child), str(shared), str(reports["holder"]))
        wait_for(reports["holder"].exists, 60, "the holder's child to start")
        verdict, holder_child = reports["holder"].read_text().split()
        assert verdict == "alone"
        waiting = next_h.spawn("-shell=false", prefix, PY, str(child), str(shared), str(reports["next"]))
        wait_for(lambda: len(leader.get("/v1/session/list").json()) == 2, 60, "the second contender's session")

        follower.signal(signal.SIGSTOP)
        wait_for(reports["next"].exists, 150, "the lock to reach the second contender")
        verdict, _ = reports["next"].read_text().split()
        assert verdict == "alone", "the second child started while the paused holder's child still ran"
        assert not alive(int(holder_child))
        assert "Lock lost (session not renewed" in holder_h.stderr(holder)
        assert waiting.poll() is None  # still holding, running its child
    finally:
        follower.signal(signal.SIGCONT)
        for h in harnesses.values():
            h.close()
