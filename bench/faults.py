"""The fault scenario of tests/cluster/test_fault_linearizable.py, several runs in a row, as a table.

    python3 bench/faults.py [--runs 5]

Each run: a fresh 3-server cluster (-data-dir, -sync-writes) under concurrent CAS increments and
unique versioned PUTs through every server, while the leader is SIGKILLed and restarted 5 times,
SIGSTOPped for 10 s, cut off by iptables (when run as root), and finally every server is killed
and restarted. Columns: acknowledged increments, lost / doubled acknowledged writes, resurrected
writes (a failed or older write applied over a later acknowledged one), servers whose state
differs at the same index, CRITICAL log lines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster.fault_scenario import scenario  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("-v", "--verbose", action="store_true", help="print each fault as it happens")
    args = ap.parse_args()
    rows = []
    for run in range(1, args.runs + 1):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="meshctl-faults-") as tmp:
            rep = scenario(Path(tmp), log=print if args.verbose else (lambda msg: None))
        rows.append((run, rep.acked_increments, len(rep.lost), len(rep.doubled),
                     len(rep.resurrected) + len(rep.unexplained), rep.divergent, len(rep.critical),
                     time.monotonic() - started))
        for problem in (rep.lost + rep.doubled + rep.resurrected + rep.unexplained + rep.critical)[:5]:
            print(f"  run {run}: {problem}")
        print(f"run {run} done in {rows[-1][-1]:.0f}s", file=sys.stderr)
    head = ("run", "acked increments", "lost", "doubled", "resurrected", "divergent servers", "CRITICAL lines", "s")
    print(" | ".join(head))
    for row in rows:
        print(" | ".join(f"{v:.0f}" if isinstance(v, float) else str(v) for v in row))
    total = [sum(r[i] for r in rows) for i in range(1, 7)]
    print(" | ".join(["all", *map(str, total), ""]))
    return 0 if sum(total[1:]) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
