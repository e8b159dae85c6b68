#!/usr/bin/env python3
"""Registrator latency and start-up sync against a real Docker Engine.

Starts its own dockerd (own socket, `--bridge=none --iptables=false`), a busybox image made
with `docker import`, and `meshctl agent -dev`; then measures

1. docker run → service in the catalog: `docker run -d --network host --expose PORT ...`
   (N times, one container at a time), time from the run command to the service showing up
   in `/v1/catalog/service/<name>` (polled every 5 ms). Target p50 <= 500 ms.
2. start-up sync: M containers already running (host networking, one exposed port each),
   time from starting `meshctl registrator` to all M services being in the catalog.
   Target <= 5 s.

    python3 bench/registrator.py [--runs 20] [--containers 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "meshbench-busybox:latest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Engine:
    """A private dockerd."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"unix://{root}/docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": self.url}
        logf = open(root / "dockerd.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false", "--ip-forward=false", "--data-root",
             str(root / "data"), "--exec-root", str(root / "exec"), "-H", self.url, "--pidfile",
             str(root / "docker.pid")], stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "version"], env=self.env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"dockerd did not start:\n{(root / 'dockerd.log').read_text()[-3000:]}")
            time.sleep(0.2)

    def docker(self, *args: str) -> str:
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"docker {' '.join(args)}: {r.stderr}")
        return r.stdout.strip()

    def image(self) -> None:
        tree = self.root / "image"
        (tree / "bin").mkdir(parents=True)
        shutil.copy2(shutil.which("busybox") or "/bin/busybox", tree / "bin" / "busybox")
        for applet in ("sh", "sleep"):
            (tree / "bin" / applet).symlink_to("busybox")
        with tarfile.open(self.root / "image.tar", "w") as t:
            t.add(tree, arcname=".")
        self.docker("import", str(self.root / "image.tar"), IMAGE)

    def stop(self) -> None:
        ids = self.docker("ps", "-aq").split()
        for i in range(0, len(ids), 50):
            subprocess.run(["docker", "rm", "-f", *ids[i:i + 50]], env=self.env, capture_output=True)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        subprocess.run(["umount", "-l", str(self.root / "exec" / "netns" / "default")], capture_output=True)


def start_agent(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "meshctl", "agent", "-dev", "-http-port", str(port),
                             "-dns-port", str(free_port())], cwd=ROOT, stdout=open(tmp / "agent.log", "w"),  # noqa: SIM115
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/v1/status/leader", timeout=1).json():
                return proc, url
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.05)
    raise SystemExit("agent did not start")


def start_registrator(tmp: Path, engine: Engine, agent_url: str, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "meshctl", "registrator", "-ip", "127.0.0.1", "-log-level", "WARN",
                             "-source", f"docker={engine.url}", agent_url.replace("http://", "consul://")],
                            cwd=ROOT, stdout=open(tmp / f"{name}.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115


def catalog_count(url: str, name: str) -> int:
    return len(requests.get(f"{url}/v1/catalog/service/{name}", timeout=5).json())


def bench_latency(engine: Engine, agent_url: str, runs: int) -> list[float]:
    out = []
    for i in range(runs):
        name = f"lat{i}"
        t0 = time.perf_counter()
        subprocess.Popen(["docker", "run", "-d", "--network", "host", "--name", name, "--expose", str(free_port()),
                          "-e", f"SERVICE_NAME={name}", IMAGE, "sleep", "3600"], env=engine.env,
                         stdout=subprocess.DEVNULL)
        while catalog_count(agent_url, name) < 1:
            if time.perf_counter() - t0 > 30:
                raise SystemExit(f"{name} never registered")
            time.sleep(0.005)
        out.append(time.perf_counter() - t0)
    return out


def bench_sync(tmp: Path, engine: Engine, agent_url: str, n: int) -> float:
    def run(i: int) -> None:
        engine.docker("run", "-d", "--network", "host", "--name", f"sync{i}", "--expose", str(40000 + i),
                      "-e", "SERVICE_NAME=syncbench", IMAGE, "sleep", "3600")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(run, range(n)))
    t0 = time.perf_counter()
    reg = start_registrator(tmp, engine, agent_url, "sync")
    try:
        while catalog_count(agent_url, "syncbench") < n:
            if time.perf_counter() - t0 > 120:
                raise SystemExit("sync did not finish in 120 s")
            time.sleep(0.02)
        return time.perf_counter() - t0
    finally:
        reg.send_signal(signal.SIGTERM)
        reg.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--containers", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="meshctl-bench-registrator-"))
    engine = Engine(tmp)
    agent, url = start_agent(tmp)
    try:
        engine.image()
        reg = start_registrator(tmp, engine, url, "latency")
        time.sleep(1.5)
        lat = bench_latency(engine, url, args.runs)
        reg.send_signal(signal.SIGTERM)
        reg.wait(10)
        sync = bench_sync(tmp, engine, url, args.containers)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(10)
        engine.stop()
    lat.sort()
    p50 = statistics.median(lat)
    p90 = lat[min(len(lat) - 1, int(len(lat) * 0.9))]
    print(f"{'measure':<44}{'value':>12}{'target':>12}")
    print(f"{'docker run -> in catalog, p50':<44}{p50 * 1000:>10.0f}ms{'<= 500ms':>12}")
    print(f"{'docker run -> in catalog, p90':<44}{p90 * 1000:>10.0f}ms{'':>12}")
    print(f"{'docker run -> in catalog, max':<44}{lat[-1] * 1000:>10.0f}ms{'':>12}")
    print(f"{f'start-up sync of {args.containers} running containers':<44}{sync:>11.2f}s{'<= 5s':>12}")
    print("(latency includes the docker CLI's own start and the engine creating the container)")


if __name__ == "__main__":
    main()
