"""The fault scenario of test_fault_linearizable.py and bench/faults.py.

A 3-server cluster (real processes, -data-dir, -sync-writes) takes a workload through every
server: concurrent check-and-set increments of a few shared counters, and writes of unique keys,
each key written in versions 1, 2, 3... one after the other. Meanwhile the leader is SIGKILLed
and restarted (5 times), SIGSTOPped for 10 s, cut off from the others' Raft traffic (iptables,
when usable), and finally every server is killed at once and restarted. `check` then reads
every server's own state (?stale) once all report the same index and counts what went wrong.

An answer is "acked" (200 true), "rejected" (200 false: a CAS that lost), "fenced" (500 saying
the write was not applied) or "unknown" (any other error: it may or may not have been applied).
"""

from __future__ import annotations

import base64
import json
import random
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .conftest import (
    Cluster,
    RaftPartition,
    Server,
    iptables_usable,
    lowest,
    make_leader,
    settled_views,
    wait_for,
)

COUNTERS = 3
CAS_WORKERS = 6
PUT_WORKERS = 3
KILLS = 5
STOP_SECONDS = 10.0


@dataclass
class Outcomes:
    """What the clients were told, per counter value and per key version."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cas: dict[int, dict[int, list[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    puts: dict[str, dict[int, str]] = field(default_factory=lambda: defaultdict(dict))
    acked: int = 0

    def record_cas(self, counter: int, value: int, outcome: str) -> None:
        with self.lock:
            self.cas[counter][value].append(outcome)
            self.acked += outcome == "acked"

    def record_put(self, key: str, version: int, outcome: str) -> None:
        with self.lock:
            self.puts[key][version] = outcome
            self.acked += outcome == "acked"


def classify(r: requests.Response | None) -> str:
    if r is None:
        return "unknown"
    if r.status_code == 200:
        return "acked" if r.text.strip() == "true" else "rejected"
    if r.status_code == 500 and "not applied" in r.text:
        return "fenced"
    return "unknown"


class Workload:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.out = Outcomes()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def _server(self, rnd: random.Random) -> Server:
        live = [s for s in self.cluster.servers if s.alive] or self.cluster.servers
        return rnd.choice(live)

    def _cas_worker(self, w: int) -> None:
        rnd = random.Random(w)
        while not self.stop.is_set():
            counter = rnd.randrange(COUNTERS)
            server = self._server(rnd)
            try:
                r = server.get(f"/v1/kv/ctr/{counter}", timeout=5)
                if r.status_code == 404:
                    current, index = 0, 0
                elif r.status_code == 200:
                    entry = r.json()[0]
                    current, index = int(base64.b64decode(entry["Value"])), int(entry["ModifyIndex"])
                else:
                    time.sleep(0.1)
                    continue
            except requests.RequestException:
                time.sleep(0.1)
                continue
            try:
                w_r: requests.Response | None = server.put(f"/v1/kv/ctr/{counter}?cas={index}",
                                                           str(current + 1).encode(), timeout=25)
            except requests.RequestException:
                w_r = None
            outcome = classify(w_r)
            self.out.record_cas(counter, current + 1, outcome)
            if outcome in ("unknown", "fenced"):
                time.sleep(0.1)

    def _put_worker(self, w: int) -> None:
        rnd = random.Random(1000 + w)
        n = 0
        while not self.stop.is_set():
            key = f"uniq/{w}/{n}"
            n += 1
            for version in (1, 2, 3):
                if self.stop.is_set():
                    break
                try:
                    r: requests.Response | None = self._server(rnd).put(
                        f"/v1/kv/{key}", json.dumps({"v": version}).encode(), timeout=25)
                except requests.RequestException:
                    r = None
                outcome = classify(r)
                self.out.record_put(key, version, outcome)
                if outcome != "acked":
                    time.sleep(0.1)

    def start(self) -> None:
        for w in range(CAS_WORKERS):
            self.threads.append(threading.Thread(target=self._cas_worker, args=(w,), daemon=True))
        for w in range(PUT_WORKERS):
            self.threads.append(threading.Thread(target=self._put_worker, args=(w,), daemon=True))
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def progress(self, writes: int = 20, timeout: float = 60) -> None:
        """Wait until `writes` more writes were acknowledged (the cluster serves again)."""
        target = self.out.acked + writes
        wait_for(lambda: self.out.acked >= target, timeout, f"{writes} acknowledged writes", interval=0.1)


def run_faults(cluster: Cluster, work: Workload, log: Any = print) -> None:
    """The fault schedule; returns with every server running and a leader elected."""
    work.progress()
    for i in range(KILLS):
        leader = cluster.wait_ready(60)
        log(f"kill {i + 1}: SIGKILL the leader {leader.name}")
        leader.signal(signal.SIGKILL)
        cluster.wait_ready(60)
        work.progress()
        leader.start(len(cluster.servers))
        cluster.wait_ready(60)
    leader = cluster.wait_ready(60)
    assert leader.proc is not None
    log(f"SIGSTOP the leader {leader.name} for {STOP_SECONDS:.0f}s")
    leader.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(STOP_SECONDS)  # the fault itself lasts this long
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    cluster.wait_ready(60)
    work.progress()
    if iptables_usable():
        target = lowest(cluster)
        make_leader(cluster, target)
        log(f"partition: the leader {target.name} cut off from the others' Raft traffic")
        partition = RaftPartition()
        try:
            partition.isolate(target)
            others = [s for s in cluster.servers if s is not target]
            wait_for(lambda: (lambda ld: ld and ld != target.raft_address)(
                others[0].get("/v1/status/leader", timeout=2).json()), 60, "the majority's leader")
            work.progress()
        finally:
            partition.heal()
        cluster.wait_ready(60)
        work.progress()
    log("SIGKILL every server, then restart them all")
    for s in cluster.servers:
        s.signal(signal.SIGKILL)
    for s in cluster.servers:
        s.start(len(cluster.servers))
    cluster.wait_ready(60)
    work.progress()


@dataclass
class Report:
    acked: int = 0  # acknowledged writes (increments and PUTs)
    acked_increments: int = 0
    lost: list[str] = field(default_factory=list)  # an acked write missing from the final state
    doubled: list[str] = field(default_factory=list)  # one counter value acknowledged twice
    unexplained: list[str] = field(default_factory=list)  # a counter step no client attempted with that outcome
    resurrected: list[str] = field(default_factory=list)  # a failed/older write applied over a later ack
    divergent: int = 0  # servers whose state differs from the first one's
    critical: list[str] = field(default_factory=list)  # CRITICAL / "may have diverged" log lines

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.unexplained or self.resurrected or self.divergent
                    or self.critical)


def check(cluster: Cluster, work: Workload) -> Report:
    rep = Report()
    views = settled_views(cluster.servers, timeout=120)
    rep.divergent = sum(1 for v in views[1:] if v != views[0])
    server = cluster.servers[0]
    entries = {e["Key"]: base64.b64decode(e["Value"] or "") for e in server.get("/v1/kv/?recurse&stale", timeout=30).json()}
    out = work.out
    rep.acked = out.acked
    for counter, attempts in out.cas.items():
        raw = entries.get(f"ctr/{counter}")
        final = int(raw) if raw else 0
        for value, outcomes in attempts.items():
            acks = outcomes.count("acked")
            rep.acked_increments += acks
            if acks > 1:
                rep.doubled.append(f"ctr/{counter}={value} acknowledged {acks} times")
            if acks and value > final:
                rep.lost.append(f"ctr/{counter}={value} acknowledged, final value {final}")
        for value in range(1, final + 1):  # each step was made by exactly one CAS that may have applied
            outcomes = attempts.get(value, [])
            if "acked" not in outcomes and "unknown" not in outcomes:
                rep.unexplained.append(f"ctr/{counter} went to {value}, which no client wrote ({outcomes})")
    for key, versions in out.puts.items():
        raw = entries.get(key)
        final = int(json.loads(raw)["v"]) if raw else 0
        acked = [v for v, o in versions.items() if o == "acked"]
        last_ack = max(acked, default=0)
        if final < last_ack:
            kind = rep.lost if final == 0 else rep.resurrected
            kind.append(f"{key}: version {last_ack} acknowledged, final {final}")
        elif final and final != last_ack and versions.get(final) not in ("unknown",):
            rep.resurrected.append(f"{key}: final version {final} was answered {versions.get(final)}")
    for s in cluster.servers:
        for line in s.log().splitlines():
            if "CRITICAL" in line or "may have diverged" in line:
                rep.critical.append(f"{s.name}: {line[:300]}")
    return rep


def scenario(root: Path, log: Any = print) -> Report:
    """Run the whole scenario in a fresh cluster under `root`; the cluster is stopped afterwards."""
    cluster = Cluster(root, 3, extra=["-sync-writes", "-raft-snapshot-threshold", "500"])
    cluster.start()
    work = Workload(cluster)
    try:
        work.start()
        try:
            run_faults(cluster, work, log)
        finally:
            work.finish()
        return check(cluster, work)
    finally:
        cluster.stop()
