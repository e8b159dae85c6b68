"""Whole-store work at scale: transaction throughput vs store size, and PUT latency during a Raft snapshot.

    python3 bench/scale_snapshot.py [--keys 1000000] [--txn-sizes 1000,30000]

1. Transactions (in process, the state machine alone): keys/s of 3-op KV transactions (check-index,
   set, get) on stores of each size. A transaction costs its operations, not the store's size.
2. Snapshot stall: one server (-data-dir, -raft-snapshot-threshold 200) restored from a snapshot of
   --keys keys, then sequential PUTs while Raft snapshots are taken: PUT p50/p99 and the longest
   single PUT (the stall), and how long the snapshots took to write (from the server log).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from meshctl.server.http.operator import make_archive  # noqa: E402
from meshctl.server.state import KVEntry, State  # noqa: E402
from tests.cluster.conftest import Cluster, wait_for  # noqa: E402


def filled(n: int) -> State:
    s = State()
    for i in range(n):
        key = f"bench/{i:08d}"
        s.kv[key] = KVEntry(key, b"value-%d" % i, 0, 2, 2)
    s.kv_keys = sorted(s.kv)
    s.index = 2
    return s


def txn_rate(n: int, txns: int = 3000) -> float:
    s = filled(n)
    started = time.perf_counter()
    for i in range(txns):
        key = f"bench/{(i * 7919) % n:08d}"
        index = s.kv[key].modify_index
        s.apply({"Op": "txn", "Now": 1.0, "Ops": [
            {"KV": {"Verb": "check-index", "Key": key, "Index": index}},
            {"KV": {"Verb": "set", "Key": key, "Value": b"new-%d" % i}},
            {"KV": {"Verb": "get", "Key": key}}]})
    return txns / (time.perf_counter() - started)


def snapshot_stall(keys: int, puts: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="meshctl-snap-") as tmp:
        c = Cluster(Path(tmp), 1, extra=["-sync-writes", "-raft-snapshot-threshold", "200"])
        c.start()
        try:
            server = c.servers[0]
            t0 = time.monotonic()
            archive = make_archive(filled(keys).snapshot(), 2, 1, [])  # type: ignore[arg-type]
            r = server.put("/v1/snapshot", archive, timeout=600)
            assert r.status_code == 200, r.text
            restore_s = time.monotonic() - t0
            wait_for(lambda: server.get("/v1/kv/bench/00000000?stale").status_code == 200, 120, "the restore")
            latencies = []
            for i in range(puts):
                t = time.perf_counter()
                r = server.put(f"/v1/kv/probe/{i % 50}", str(i).encode(), timeout=120)
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            written = [float(m) for m in re.findall(r"snapshot written \(\d+ bytes, ([\d.]+)s\)", server.log())]
        finally:
            c.stop()
    latencies.sort()
    return {"restore_s": restore_s, "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000, "max_ms": latencies[-1] * 1000,
            "snapshots": len(written), "snapshot_write_s": max(written, default=0.0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=1_000_000, help="store size for the snapshot stall")
    ap.add_argument("--puts", type=int, default=1500, help="PUTs measured while snapshots are taken")
    ap.add_argument("--txn-sizes", default="1000,30000")
    args = ap.parse_args()
    print("store keys | txn/s (3 ops each)")
    for n in (int(x) for x in args.txn_sizes.split(",")):
        print(f"{n} | {txn_rate(n):.0f}")
    res = snapshot_stall(args.keys, args.puts)
    print(f"\nsnapshot of {args.keys} keys (restore took {res['restore_s']:.1f}s), {args.puts} sequential PUTs:")
    print("PUT p50 ms | PUT p99 ms | max PUT ms (stall) | snapshots written | longest snapshot write s")
    print(f"{res['p50_ms']:.1f} | {res['p99_ms']:.1f} | {res['max_ms']:.0f} | {res['snapshots']:.0f} | "
          f"{res['snapshot_write_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
