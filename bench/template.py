#!/usr/bin/env python3
"""Benchmark of `meshctl template`: KV write → file latency, haproxy render time, 1,000 watched dependencies.

Starts `meshctl agent -dev` and `meshctl template` as real processes and prints a table with
each figure next to its target:

* latency: a KV write (PUT returns) until the rendered file holds the new value (no -wait);
* render: the seeds' haproxy template over 1,000 services x 3 instances (engine only, and
  end to end with `-once` against the agent);
* scale: RSS and threads of a runner watching 1,000 `key` dependencies, and its latency.

    python3 bench/template.py [--writes 200] [--services 1000] [--deps 1000]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from meshctl.client import Client  # noqa: E402
from meshctl.template.brain import Brain  # noqa: E402
from meshctl.template.dependency import CatalogSnippet, HealthService, KeyPair, Weights  # noqa: E402
from meshctl.template.template import Template  # noqa: E402

HAPROXY = (ROOT / "tests/template/fixtures/seeds/haproxy.ctmpl").read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def start_agent(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "meshctl", "agent", "-dev", "-node", "bench", "-http-port",
                             str(port), "-dns-port", str(free_port())], cwd=tmp, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    addr = f"127.0.0.1:{port}"
    c = Client(addr, timeout=2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if c.status.leader():
                return proc, addr
        except Exception:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("agent did not start")


def start_template(addr: str, tmp: Path, *args: str) -> subprocess.Popen:
    e = env()
    e["CONSUL_HTTP_ADDR"] = addr
    return subprocess.Popen([sys.executable, "-m", "meshctl", "template", *args], cwd=tmp, env=e,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "template.log", "a"))


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def wait_for(path: Path, text: str, timeout: float = 30.0) -> float:
    """Poll the file until it holds `text`; the time it took."""
    t0 = time.perf_counter()
    while read(path) != text:
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"{path} never became {text[:40]!r}")
        time.sleep(0.0002)
    return time.perf_counter() - t0


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency(addr: str, tmp: Path, key: str, out: Path, writes: int) -> list[float]:
    c = Client(addr)
    samples = []
    for i in range(writes):
        value = f"v{i}-{time.monotonic_ns()}"
        t0 = time.perf_counter()
        c.kv.put(key, value)
        while read(out) != value:
            if time.perf_counter() - t0 > 30:
                raise SystemExit(f"no render of {value}")
            time.sleep(0.0002)
        samples.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.12)  # views rate-limit fetches after a change (consul-template: 100 ms)
    c.close()
    return samples


def haproxy_brain(services: int, instances: int) -> Brain:
    brain = Brain()
    names = [f"svc{i:04d}" for i in range(services)]
    brain.remember("catalog.services()", [CatalogSnippet(n, ["http"]) for n in names])
    for k, v in (("service/haproxy/maxconn", "4096"), ("service/haproxy/timeouts/connect", "5s"),
                 ("service/haproxy/timeouts/client", "50s"), ("service/haproxy/timeouts/server", "50s")):
        brain.remember(f"kv.get({k})", KeyPair(k, k, v))
    for i, n in enumerate(names):
        brain.remember(f"kv.get(ports/{n})", KeyPair(f"ports/{n}", f"ports/{n}", str(10000 + i)))
        brain.remember(f"health.service({n}|passing)", [
            HealthService(Node=f"node{j}", NodeID="", NodeAddress=f"10.0.{j}.1", NodeDatacenter="dc1",
                          NodeTaggedAddresses={}, NodeMeta={}, ServiceMeta={}, Address=f"10.{i // 250}.{i % 250}.{j}",
                          ServiceTaggedAddresses={}, ID=f"{n}-{j}", Name=n, Kind="", Tags=["http"], Checks=[],
                          Status="passing", Port=8000 + j, Weights=Weights()) for j in range(instances)])
    return brain


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--deps", type=int, default=1000)
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-template-"))
    agent, addr = start_agent(tmp)
    procs: list[subprocess.Popen] = []
    try:
        c = Client(addr)
        # 1. write -> file latency, one template, no wait
        c.kv.put("bench/lat", "start")
        (tmp / "lat.ctmpl").write_text('{{ key "bench/lat" }}')
        p = start_template(addr, tmp, "-template", "lat.ctmpl:lat.out")
        procs.append(p)
        wait_for(tmp / "lat.out", "start")
        lat = latency(addr, tmp, "bench/lat", tmp / "lat.out", args.writes)
        rows.append((f"KV write -> file on disk, p50 ({args.writes} writes)", f"{pct(lat, 50):.1f} ms", "<= 20 ms"))
        rows.append(("KV write -> file on disk, p99", f"{pct(lat, 99):.1f} ms", ""))
        p.send_signal(signal.SIGTERM)
        p.wait(15)

        # 2. haproxy render, engine only
        brain = haproxy_brain(args.services, args.instances)
        tmpl = Template("haproxy.ctmpl", HAPROXY)
        ex = tmpl.execute(brain)
        assert ex.complete, sorted(ex.missing)[:3]
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            tmpl.execute(brain)
            times.append(time.perf_counter() - t0)
        rows.append((f"haproxy render, {args.services} services x {args.instances} (engine, median of 5)",
                     f"{statistics.median(times) * 1000:.0f} ms", f"{len(ex.output) // 1024} KiB out"))

        # 3. haproxy end to end: register, then -once against the agent
        for k, v in (("service/haproxy/maxconn", "4096"), ("service/haproxy/timeouts/connect", "5s"),
                     ("service/haproxy/timeouts/client", "50s"), ("service/haproxy/timeouts/server", "50s"),
                     ("ports/consul", "8500")):
            c.kv.put(k, v)
        t0 = time.perf_counter()
        for i in range(args.services):
            n = f"svc{i:04d}"
            c.kv.put(f"ports/{n}", str(10000 + i))
            for j in range(args.instances):
                c.catalog.register({"Node": f"node{j}", "Address": f"10.0.{j}.1",
                                    "Service": {"ID": f"{n}-{j}", "Service": n, "Port": 8000 + j}})
        setup = time.perf_counter() - t0
        (tmp / "haproxy.ctmpl").write_text(HAPROXY)
        t0 = time.perf_counter()
        e = env()
        e["CONSUL_HTTP_ADDR"] = addr
        r = subprocess.run([sys.executable, "-m", "meshctl", "template", "-template", "haproxy.ctmpl:haproxy.cfg",
                            "-once"], cwd=tmp, env=e, capture_output=True, text=True, timeout=300)
        once = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"-once failed: {r.stderr[-2000:]}")
        size = (tmp / "haproxy.cfg").stat().st_size
        rows.append((f"haproxy -once end to end ({2 * args.services + 5} deps, process start included)",
                     f"{once:.2f} s", f"{size // 1024} KiB; setup {setup:.0f} s"))

        # 4. 1,000 watched key dependencies: memory, threads, latency
        for i in range(args.deps):
            c.kv.put(f"bench/many/{i:04d}", str(i))
        body = "".join(f'{{{{ key "bench/many/{i:04d}" }}}}\n' for i in range(args.deps))
        (tmp / "many.ctmpl").write_text(body)
        expected = "".join(f"{i}\n" for i in range(args.deps))
        t0 = time.perf_counter()
        p = start_template(addr, tmp, "-template", "many.ctmpl:many.out")
        procs.append(p)
        wait_for(tmp / "many.out", expected, timeout=120)
        first = time.perf_counter() - t0
        time.sleep(1.0)
        st = proc_status(p.pid)
        rss = int(st["VmRSS"].split()[0]) / 1024
        threads = int(st["Threads"])
        rows.append((f"first render with {args.deps} key dependencies (process start included)", f"{first:.2f} s", ""))
        rows.append((f"RSS watching {args.deps} dependencies", f"{rss:.0f} MB", "<= 150 MB"))
        rows.append((f"threads watching {args.deps} dependencies", str(threads), "one view each"))
        lat_many = []
        for i in range(20):
            t0 = time.perf_counter()
            c.kv.put("bench/many/0500", f"x{i}")
            wait_for(tmp / "many.out", expected.replace("\n500\n", f"\nx{i}\n"))
            lat_many.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.12)
        rows.append((f"KV write -> file, {args.deps} deps watched, p50", f"{pct(lat_many, 50):.1f} ms", ""))
        st = proc_status(p.pid)
        rows.append(("RSS after 20 re-renders", f"{int(st['VmRSS'].split()[0]) / 1024:.0f} MB", "<= 150 MB"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        agent.kill()
        agent.wait()
    w = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(w)}  {'result':>10}  target/notes")
    print("-" * (w + 40))
    for name, value, target in rows:
        print(f"{name.ljust(w)}  {value:>10}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
