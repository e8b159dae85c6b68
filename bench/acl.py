#!/usr/bin/env python3
"""Benchmark: the cost of ACL checks on KV GET throughput (target: within 15% of ACLs off).

Starts two `meshctl agent -dev` servers pinned to one core — ACLs off, and ACLs on with
`default_policy = deny` and a token linked to 100 policies (300 rules, the one that grants
the key among them) — and drives them with wrk (64 keep-alive connections) from the other
core. Runs alternate (off, on, off, on ...) and the best of each is kept, as the machine is
shared. Also measured: a filtered `?recurse` listing of 100 keys.

    python3 bench/acl.py [--duration 5] [--rounds 2] [--policies 100]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
MANAGEMENT = "bench-management-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(cpu: int | None, acl: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "meshctl.server", "-dev", "-node", "bench", "-http-port", str(port),
           "-dns-port", str(free_port()), "-log-level", "warn"]
    if acl:
        cmd += ["-acl-enabled", "-acl-default-policy", "deny", "-acl-initial-management", MANAGEMENT]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            r = requests.get(f"http://127.0.0.1:{port}/v1/acl/token/self" if acl else
                             f"http://127.0.0.1:{port}/v1/status/leader",
                             headers={"X-Consul-Token": MANAGEMENT}, timeout=1)
            if r.status_code == 200:
                return proc, port
        except requests.RequestException:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def setup(port: int, acl: bool, policies: int) -> str:
    """Write the keys; with ACLs, make `policies` policies and a token linked to all of them."""
    base = f"http://127.0.0.1:{port}"
    h = {"X-Consul-Token": MANAGEMENT}
    s = requests.Session()
    s.put(f"{base}/v1/kv/bench/key", data=b"x" * 64, headers=h).raise_for_status()
    for i in range(100):
        s.put(f"{base}/v1/kv/list/{'a' if i % 2 else 'b'}/{i:03d}", data=b"v", headers=h).raise_for_status()
    if not acl:
        return ""
    links = []
    for i in range(policies):
        rules = (f'key_prefix "team{i}/" {{ policy = "write" }}\nservice_prefix "svc{i}-" {{ policy = "read" }}\n'
                 f'node "node{i}" {{ policy = "read" }}')
        if i == policies // 2:
            rules += '\nkey_prefix "bench/" { policy = "read" }\nkey_prefix "list/a/" { policy = "list" }'
        r = s.put(f"{base}/v1/acl/policy", json={"Name": f"bench-{i}", "Rules": rules}, headers=h)
        r.raise_for_status()
        links.append({"ID": r.json()["ID"]})
    r = s.put(f"{base}/v1/acl/token", json={"Description": "bench", "Policies": links}, headers=h)
    r.raise_for_status()
    token = str(r.json()["SecretID"])
    assert s.get(f"{base}/v1/kv/bench/key", headers={"X-Consul-Token": token}).status_code == 200
    return token


def wrk(url: str, duration: int, cpu: int | None, token: str) -> float:
    """Requests/s from wrk with 64 connections on 2 threads."""
    cmd = ["wrk", "-t2", "-c64", f"-d{duration}s", url]
    if token:
        cmd[1:1] = ["-H", f"X-Consul-Token: {token}"]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match is not None, out
    return float(match.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--policies", type=int, default=100)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (Debian package wrk)")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    servers = {}
    try:
        for acl in (False, True):
            proc, port = start_server(server_cpu, acl)
            servers[acl] = (proc, port, setup(port, acl, args.policies))
        best: dict[tuple[str, bool], float] = {}
        for _ in range(args.rounds):
            for acl in (False, True):
                _, port, token = servers[acl]
                for name, path in (("KV GET one key", "/v1/kv/bench/key"),
                                   ("KV GET ?recurse (100 keys, 50 visible)", "/v1/kv/list/?recurse")):
                    rps = wrk(f"http://127.0.0.1:{port}{path}", args.duration, load_cpu, token)
                    best[(name, acl)] = max(best.get((name, acl), 0.0), rps)
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    print(f"ACL cost on KV reads: token with {args.policies} policies, default policy deny "
          f"(best of {args.rounds} x {args.duration}s, wrk 64 conns)")
    print(f"{'query':<42} {'ACLs off req/s':>15} {'ACLs on req/s':>14} {'on/off':>8}  target")
    for name in ("KV GET one key", "KV GET ?recurse (100 keys, 50 visible)"):
        off, on = best[(name, False)], best[(name, True)]
        target = ">= 0.85" if name == "KV GET one key" else "(info)"
        print(f"{name:<42} {off:>15,.0f} {on:>14,.0f} {on / off:>8.2f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
