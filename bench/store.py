#!/usr/bin/env python3
"""Benchmark of the dev store: KV throughput, PUT latency, and 10,000 blocking queries.

Starts `meshctl agent -dev` pinned to one core, drives it from the other core and prints a
table with each figure next to its target. Throughput uses wrk (Debian `wrk`) with 64
keep-alive connections; latency and the blocking-query figures use a Python client.

    python3 bench/store.py [--duration 5] [--waiters 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cpu: int | None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "meshctl.server", "-dev", "-node", "bench", "-http-port", str(port),
           "-dns-port", str(free_port()), "-log-level", "warn"]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v1/status/leader", timeout=1).json():
                return proc, port
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wrk(url: str, duration: int, cpu: int | None, script: str | None = None) -> float:
    """Requests/s from wrk with 64 connections on 2 threads."""
    cmd = ["wrk", "-t2", "-c64", f"-d{duration}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def put_latency(port: int, count: int) -> tuple[float, float]:
    """Single-client PUT latency (ms), keep-alive connection, sequential requests."""
    session = requests.Session()
    url = f"http://127.0.0.1:{port}/v1/kv/bench/latency"
    for _ in range(200):
        session.put(url, data=b"warmup")
    samples = []
    for i in range(count):
        t0 = time.perf_counter()
        session.put(url, data=str(i).encode())
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def blocking_waiters(port: int, count: int, pid: int) -> dict[str, float]:
    """Park `count` blocking queries on one key, write it, time every answer."""
    url_path = "/v1/kv/bench/hot"
    requests.put(f"http://127.0.0.1:{port}{url_path}", data=b"0")
    index = int(requests.get(f"http://127.0.0.1:{port}{url_path}").headers["X-Consul-Index"])
    rss_before = rss_mb(pid)
    request = (f"GET {url_path}?index={index}&wait=5m HTTP/1.1\r\nHost: bench\r\n\r\n").encode()
    conns = []
    for start in range(0, count, 500):
        batch = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(min(500, count - start))))
        for _reader, writer in batch:
            writer.write(request)
        conns.extend(batch)
    await asyncio.gather(*(w.drain() for _, w in conns))
    # wait until the server has parked them all: CPU idle and RSS settled
    await asyncio.sleep(2.0)
    rss_idle = rss_mb(pid)
    cpu_before = _cpu_seconds(pid)
    await asyncio.sleep(2.0)
    idle_cpu = (_cpu_seconds(pid) - cpu_before) / 2.0 * 100

    arrivals: list[float] = []

    async def read_one(reader: asyncio.StreamReader) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrivals.append(time.perf_counter())

    readers = [asyncio.ensure_future(read_one(r)) for r, _ in conns]
    await asyncio.sleep(0.1)
    t_write = time.perf_counter()
    await asyncio.to_thread(requests.put, f"http://127.0.0.1:{port}{url_path}", data=b"1")
    await asyncio.wait_for(asyncio.gather(*readers), 60)
    delays = sorted((a - t_write) * 1000 for a in arrivals)
    for _, w in conns:
        w.close()
    return {
        "rss_before": rss_before, "rss_idle": rss_idle, "idle_cpu": idle_cpu,
        "wake_p50": delays[len(delays) // 2], "wake_p99": delays[int(len(delays) * 0.99) - 1],
        "wake_all": delays[-1], "answered": len(delays),
    }


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--latency-samples", type=int, default=2000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cores = os.cpu_count() or 1
    server_cpu, client_cpu = (0, 1) if cores >= 2 else (None, None)

    proc, port = start_server(server_cpu)
    try:
        base = f"http://127.0.0.1:{port}"
        requests.put(f"{base}/v1/kv/bench/key", data=b"x" * 64)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write('wrk.method = "PUT"\nwrk.body = "' + "v" * 64 + '"\n'
                      'counter = 0\nrequest = function()\n  counter = counter + 1\n'
                      '  return wrk.format(nil, "/v1/kv/bench/put/" .. (counter % 1000))\nend\n')
        get_rps = wrk(f"{base}/v1/kv/bench/key", args.duration, client_cpu)
        put_rps = wrk(f"{base}/v1/kv/bench/put", args.duration, client_cpu, lua.name)
        os.unlink(lua.name)
        p50, p99 = put_latency(port, args.latency_samples)
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        waiters = asyncio.run(blocking_waiters(port, args.waiters, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)

    rows = [
        ("KV GET, 64 connections (req/s)", f"{get_rps:,.0f}", ">= 20,000", get_rps >= 20_000),
        ("KV PUT, 64 connections (req/s)", f"{put_rps:,.0f}", ">= 8,000", put_rps >= 8_000),
        ("PUT latency, 1 client, p50 (ms)", f"{p50:.2f}", "<= 1", p50 <= 1.0),
        ("PUT latency, 1 client, p99 (ms)", f"{p99:.2f}", "", True),
        (f"RSS with {waiters['answered']:,} idle waiters (MB)", f"{waiters['rss_idle']:.0f}",
         "< 200", waiters["rss_idle"] < 200),
        ("  RSS before the waiters (MB)", f"{waiters['rss_before']:.0f}", "", True),
        ("  server CPU while they wait (%)", f"{waiters['idle_cpu']:.1f}", "~0", True),
        ("write -> waiters answered, p50 (ms)", f"{waiters['wake_p50']:.0f}", "", True),
        ("write -> waiters answered, p99 (ms)", f"{waiters['wake_p99']:.0f}", "", True),
        ("write -> all waiters answered (ms)", f"{waiters['wake_all']:.0f}", "<= 500", waiters["wake_all"] <= 500),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"meshctl dev store on {'1 pinned core' if server_cpu is not None else 'shared cores'}, "
          f"load from the other; python {sys.version.split()[0]}")
    print(f"| {'figure'.ljust(width)} | {'measured':>9} | {'target':>9} | ok |")
    print(f"|{'-' * (width + 2)}|{'-' * 11}|{'-' * 11}|----|")
    for name, value, target, ok in rows:
        print(f"| {name.ljust(width)} | {value:>9} | {target:>9} | {'yes' if ok else 'NO':>2} |")


if __name__ == "__main__":
    main()
