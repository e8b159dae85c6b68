#!/usr/bin/env python3
"""DNS benchmark: queries/s and latency for A and SRV lookups of a 3-instance service.

Starts `meshctl agent -dev` pinned to one core (taskset), registers a service with three
passing instances, then drives the DNS port from the other core: with `dnsperf` (Debian
package) when installed, else with a Python UDP load generator keeping a window of
queries in flight. Latency percentiles always come from the Python client. Prints a table
with each figure next to its target (>= 20,000 queries/s on one core).

    python3 bench/dns.py [--duration 5] [--window 64]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from dnslib import DNSRecord

ROOT = Path(__file__).resolve().parents[1]
TARGET_QPS = 20000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cpu: int | None) -> tuple[subprocess.Popen, int, int]:
    http, dns = free_port(), free_port()
    cmd = [sys.executable, "-m", "meshctl", "agent", "-dev", "-node", "bench", "-http-port", str(http),
           "-dns-port", str(dns), "-log-level", "warn"]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{http}/v1/status/leader", timeout=1).json():
                return proc, http, dns
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def register(http: int) -> None:
    for i in range(1, 4):
        requests.put(f"http://127.0.0.1:{http}/v1/catalog/register", json={
            "Node": f"web-{i}", "Address": f"127.0.0.{10 + i}",
            "Service": {"Service": "web", "Port": 8080 + i},
            "Check": {"CheckID": "web", "ServiceID": "web", "Status": "passing"}}).raise_for_status()


def python_load(port: int, name: str, qtype: str, duration: float, window: int) -> tuple[float, list[float], int]:
    """(queries/s, latencies in seconds, lost) with `window` queries in flight over one UDP socket."""
    base = bytearray(DNSRecord.question(name, qtype).pack())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    next_id = 0
    lost = 0
    end = time.perf_counter() + duration
    import select

    while True:
        now = time.perf_counter()
        if now >= end:
            break
        while len(sent) < window:
            next_id = (next_id + 1) & 0xFFFF
            base[0], base[1] = next_id >> 8, next_id & 0xFF
            sock.send(base)
            sent[next_id] = time.perf_counter()
        readable, _, _ = select.select([sock], [], [], 0.5)
        if not readable:
            lost += len(sent)  # nothing for 0.5 s: count the window as lost and refill
            sent.clear()
            continue
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                break
            started = sent.pop((data[0] << 8) | data[1], None)
            if started is not None:
                latencies.append(time.perf_counter() - started)
    sock.close()
    return len(latencies) / duration, latencies, lost


def dnsperf_load(port: int, name: str, qtype: str, duration: float) -> float | None:
    if not shutil.which("dnsperf"):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"{name} {qtype}\n")
        path = f.name
    try:
        cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", path, "-l", str(duration), "-c", "1", "-q", "64"]
        if shutil.which("taskset"):
            cmd = ["taskset", "-c", "1", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    finally:
        os.unlink(path)
    match = re.search(r"Queries per second:\s+([\d.]+)", out)
    return float(match.group(1)) if match else None


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--window", type=int, default=64)
    args = ap.parse_args()
    cpus = os.cpu_count() or 1
    proc, http, dns = start_server(0 if cpus > 1 else None)
    if cpus > 1 and shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    try:
        register(http)
        rows = []
        for qtype in ("A", "SRV"):
            name = "web.service.consul"
            python_load(dns, name, qtype, 0.5, args.window)  # warm up
            perf_qps = dnsperf_load(dns, name, qtype, args.duration)
            py_qps, lat, lost = python_load(dns, name, qtype, args.duration, args.window)
            qps = perf_qps if perf_qps is not None else py_qps
            tool = "dnsperf" if perf_qps is not None else "python"
            # latency at light load: 4 in flight
            _, light, _ = python_load(dns, name, qtype, min(args.duration, 2.0), 4)
            rows.append((qtype, qps, tool, py_qps, pct(light, 0.5) * 1e3, pct(light, 0.99) * 1e3,
                         pct(lat, 0.99) * 1e3, lost))
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"meshctl DNS, 3-instance service, server on one core ({cpus} cores here)")
    print(f"{'query':<6} {'queries/s':>10} {'tool':<8} {'python q/s':>11} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'p99@64 ms':>9} {'lost':>5}  target")
    for qtype, qps, tool, py_qps, p50, p99, p99w, lost in rows:
        ok = "ok" if qps >= TARGET_QPS else "BELOW"
        print(f"{qtype:<6} {qps:>10.0f} {tool:<8} {py_qps:>11.0f} {p50:>7.3f} {p99:>7.3f} {p99w:>9.3f} {lost:>5}  "
              f">= {TARGET_QPS}/s {ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
