#!/usr/bin/env python3
"""Cost of health checking: 1,000 HTTP checks every 10 s on one agent.

Starts `meshctl agent -dev` pinned to one core, serves a tiny HTTP backend from the other
core, registers 1,000 services each with an HTTP check (interval 10 s) through the agent
API, waits until every check passes, then measures over a window: the agent's CPU use and
the writes to the store (the store's index; edge-triggered checks should make none while
nothing changes). Prints a table with the targets.

    python3 bench/checks.py [--checks 1000] [--interval 10s] [--window 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:  # noqa: N802
        Handler.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: object) -> None:
        pass


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_index(url: str) -> int:
    return int(requests.get(f"{url}/v1/agent/self", timeout=10).json()["Stats"]["raft"]["last_log_index"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checks", type=int, default=1000)
    ap.add_argument("--interval", default="10s")
    ap.add_argument("--window", type=float, default=60.0)
    args = ap.parse_args()

    backend = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{backend.server_address[1]}/health"
    http = free_port()
    cmd = [sys.executable, "-m", "meshctl", "agent", "-dev", "-node", "bench", "-http-port", str(http),
           "-dns-port", str(free_port()), "-log-level", "warn"]
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
        os.sched_setaffinity(0, {1})
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/v1/status/leader", timeout=1).json():
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("agent did not start")
            time.sleep(0.1)
        session = requests.Session()
        t0 = time.monotonic()
        for i in range(args.checks):
            session.put(f"{url}/v1/agent/service/register", json={
                "Name": f"svc{i}", "Port": 10000 + i,
                "Check": {"HTTP": target, "Interval": args.interval, "Timeout": "5s"}}).raise_for_status()
        register_s = time.monotonic() - t0
        deadline = time.monotonic() + 120
        while True:
            checks = session.get(f"{url}/v1/agent/checks").json()
            passing = sum(1 for c in checks.values() if c["Status"] == "passing")
            if passing == args.checks:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {passing} of {args.checks} checks passing")
            time.sleep(1)
        time.sleep(2)
        cpu0, idx0, hits0, w0 = cpu_seconds(proc.pid), store_index(url), Handler.hits, time.monotonic()
        time.sleep(args.window)
        cpu1, idx1, hits1, w1 = cpu_seconds(proc.pid), store_index(url), Handler.hits, time.monotonic()
    finally:
        proc.terminate()
        proc.wait(10)
        backend.shutdown()
    elapsed = w1 - w0
    cpu_pct = (cpu1 - cpu0) / elapsed * 100
    writes_per_min = (idx1 - idx0) * 60 / elapsed
    probes = (hits1 - hits0) / elapsed
    print(f"meshctl agent: {args.checks} HTTP checks every {args.interval}, agent on one core, "
          f"{elapsed:.0f} s window")
    print(f"{'figure':<32} {'value':>10}  target")
    print(f"{'registration (s)':<32} {register_s:>10.1f}")
    print(f"{'check probes / s':<32} {probes:>10.1f}  {args.checks / 10:.0f} expected")
    print(f"{'agent CPU %':<32} {cpu_pct:>10.1f}  (lower is better)")
    print(f"{'store writes / min':<32} {writes_per_min:>10.1f}  0 when nothing changes "
          f"{'ok' if idx1 == idx0 else 'ABOVE'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
