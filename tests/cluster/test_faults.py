"""Faults a 3-server cluster must survive, with real processes: SIGKILL, restarts, a lagging
server, blocking queries across a leader change, an isolated (SIGSTOPped) leader.

Timing is generous (the machine is shared); loss and duplication are checked strictly.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import Cluster, Server, wait_for

pytestmark = pytest.mark.integration

FAILOVER_SLACK = 10.0


def cas_append(servers: list[Server], key: str, token: str, stop: threading.Event) -> str:
    """Append `token` to the JSON list at `key` with check-and-set, retrying until acknowledged.

    Returns "acked" (the server said true), or "unknown" if `stop` was set before that.
    An error (leader change...) leaves the outcome unknown: re-read; if the token is already
    there a previous attempt was applied, which counts as acknowledged-by-the-cluster too.
    """
    i = 0
    while not stop.is_set():
        server = servers[i % len(servers)]
        i += 1
        if not server.alive:
            continue
        try:
            r = server.get(f"/v1/kv/{key}", timeout=5)
            if r.status_code == 404:
                current, index = [], 0
            elif r.status_code == 200:
                entry = r.json()[0]
                index = entry["ModifyIndex"]
                import base64

                current = json.loads(base64.b64decode(entry["Value"]))
            else:
                time.sleep(0.05)
                continue
            if token in current:
                return "applied"
            w = server.put(f"/v1/kv/{key}?cas={index}", json.dumps(current + [token]).encode(), timeout=10)
            if w.status_code == 200 and w.json() is True:
                return "acked"
        except requests.RequestException:
            time.sleep(0.05)
    return "unknown"


def read_list(server: Server, key: str, stale: bool = False) -> list[str]:
    r = server.get(f"/v1/kv/{key}?raw" + ("&stale" if stale else ""), timeout=10)
    assert r.status_code == 200, r.text
    return list(json.loads(r.content))


def test_sigkill_the_leader_under_cas_writes(cluster: Cluster) -> None:
    leader = cluster.leader()
    stop = threading.Event()
    acked: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        n = 0
        while not stop.is_set():
            token = f"w{w}-{n}"
            n += 1
            if cas_append(cluster.servers, "faults/counter", token, stop) == "acked":
                with lock:
                    acked.append(token)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer, w) for w in range(4)]
        wait_for(lambda: len(acked) >= 20, 30, "writes before the kill")
        killed_at = time.monotonic()
        leader.signal(signal.SIGKILL)
        new_leader = cluster.wait_ready(30)
        failover = time.monotonic() - killed_at
        before = len(acked)
        wait_for(lambda: len(acked) >= before + 20, 30, "writes after the failover")
        stop.set()
        for f in futures:
            f.result(30)
    assert new_leader is not leader
    assert failover < FAILOVER_SLACK, f"failover took {failover:.1f}s"
    final = read_list(new_leader, "faults/counter")
    assert len(final) == len(set(final)), "a write was applied twice"
    missing = set(acked) - set(final)
    assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
    leader.start(3)  # it comes back as a follower and catches up
    wait_for(lambda: leader.get("/v1/kv/faults/counter?raw&stale").content == json.dumps(final).encode(), 30,
             "the old leader to catch up")


def test_sigkill_and_restart_every_server(cluster: Cluster) -> None:
    leader = cluster.leader()
    follower = cluster.followers()[0]
    acked = {}
    for i in range(200):
        target = leader if i % 2 else follower
        r = target.put(f"/v1/kv/restart/{i}", f"v{i}".encode())
        assert r.json() is True
        acked[f"restart/{i}"] = f"v{i}"
    for s in cluster.servers:
        s.signal(signal.SIGKILL)
    for s in cluster.servers:
        s.start(3)
    new_leader = cluster.wait_ready(30)
    entries = new_leader.get("/v1/kv/restart/?recurse").json()
    import base64

    got = {e["Key"]: base64.b64decode(e["Value"]).decode() for e in entries}
    assert got == acked


def test_a_server_down_for_10000_writes_catches_up(cluster: Cluster) -> None:
    lagging = cluster.followers()[0]
    lagging.signal(signal.SIGKILL)
    live = [s for s in cluster.servers if s is not lagging]

    def put(i: int) -> None:
        server = live[i % 2]
        for _ in range(20):
            try:
                if server.put(f"/v1/kv/lag/{i % 500}", str(i).encode()).json() is True:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"write {i} never acknowledged")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(10_000)))
    leader = cluster.leader()
    expected = leader.get("/v1/kv/lag/?recurse").json()
    index = int(leader.get("/v1/kv/lag/?recurse").headers["X-Consul-Index"])
    lagging.start(3)
    wait_for(lambda: lagging.get("/v1/kv/lag/?recurse&stale").json() == expected, 60, "the lagging server")
    assert int(lagging.get("/v1/kv/lag/?recurse&stale").headers["X-Consul-Index"]) == index
    assert "snapshot loaded" in lagging.log(), "expected a snapshot install"


def test_blocking_query_on_a_follower_survives_a_leader_change(cluster: Cluster) -> None:
    leader = cluster.leader()
    follower = cluster.followers()[0]
    follower.put("/v1/kv/blk/key", b"one")
    r = follower.get("/v1/kv/blk/key")
    index = int(r.headers["X-Consul-Index"])
    results: dict[str, requests.Response] = {}

    def block() -> None:
        results["r"] = follower.get(f"/v1/kv/blk/key?index={index}&wait=30s", timeout=60)

    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.5)
    leader.signal(signal.SIGKILL)
    cluster.wait_ready(30)
    wait_for(lambda: follower.put("/v1/kv/blk/key", b"two").json() is True, 20, "a write after the failover")
    t.join(60)
    r = results["r"]
    assert r.status_code == 200
    assert int(r.headers["X-Consul-Index"]) > index
    assert r.json()[0]["Value"] == "dHdv"  # "two"
    r2 = follower.get(f"/v1/kv/blk/key?index={r.headers['X-Consul-Index']}&wait=1s")
    assert int(r2.headers["X-Consul-Index"]) >= int(r.headers["X-Consul-Index"])


def test_an_isolated_leader_accepts_no_writes_and_rejoins(cluster: Cluster) -> None:
    old = cluster.leader()
    old.put("/v1/kv/iso/before", b"1")
    assert old.proc is not None
    old.proc.send_signal(signal.SIGSTOP)  # isolated: no heartbeats, no answers
    try:
        stuck: dict[str, object] = {}

        def write_to_isolated() -> None:
            try:
                stuck["r"] = old.put("/v1/kv/iso/isolated", b"x", timeout=3)
            except requests.RequestException as exc:
                stuck["r"] = exc

        t = threading.Thread(target=write_to_isolated)
        t.start()
        majority = [s for s in cluster.servers if s is not old]
        new = wait_for(lambda: (lambda ld: cluster.by_raft(ld) if ld and ld != old.raft_address else None)(
            majority[0].get("/v1/status/leader", timeout=2).json()), FAILOVER_SLACK + 5, "the majority's new leader")
        for i in range(50):
            assert majority[i % 2].put(f"/v1/kv/iso/majority/{i}", str(i).encode()).json() is True
        t.join(10)
        assert not isinstance(stuck.get("r"), requests.Response), "the isolated leader acknowledged a write"
    finally:
        old.proc.send_signal(signal.SIGCONT)
    cluster.wait_ready(30)
    assert new is not None

    def same_everywhere() -> bool:
        views = [s.get("/v1/kv/iso/?recurse&stale").json() for s in cluster.servers]
        return all(v == views[0] for v in views) and len(views[0]) >= 51

    wait_for(same_everywhere, 30, "all servers to hold the same data")
