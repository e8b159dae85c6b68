#!/usr/bin/env python3
"""Benchmark of `-dedup`: requests per second to the store from N sidecars on one template, with and without.

Starts a fresh `meshctl agent -dev` per mode (a killed sidecar's blocking queries are counted
when they time out, up to a minute later) and N `meshctl template` processes rendering the same template
over S services (`range services` / `range service .Name`: S+1 blocking queries per instance
without -dedup). Requests are counted by the store itself (`consul_api_http_count` of
/v1/agent/metrics?format=prometheus, the metrics reads left out) over three phases:

* start: from launch until every sidecar's file holds all S services (requests in total);
* idle: nothing changes (requests per second: blocking queries timing out, session renewals);
* churn: one service re-registered with a new port every 0.5 s (requests per second);
* one more change, after a quiet second: the time until every sidecar's file shows it.

    python3 bench/dedup.py [--sidecars 20] [--services 200] [--idle 65] [--churn 20]
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "template"))

from ctrun import env_for, read  # noqa: E402
from devserver import start_dev_server  # noqa: E402

from meshctl.client import Client  # noqa: E402

TEMPLATE = "{{ range services }}{{ range service .Name }}{{ .Name }} {{ .Address }}:{{ .Port }}\n{{ end }}{{ end }}"
_COUNT = re.compile(r'^consul_api_http_count\{([^}]*)\} (\S+)$', re.M)


def requests_served(c: Client) -> float:
    """Requests the store answered so far (its own counters), metrics reads excluded."""
    text = requests.get(f"{c.config.base_url}/v1/agent/metrics", params={"format": "prometheus"}, timeout=10).text
    return sum(float(v) for labels, v in _COUNT.findall(text) if "v1.agent.metrics" not in labels)


def register(c: Client, i: int, port: int) -> None:
    c.catalog.register({"Node": f"bench-n{i % 10}", "Address": f"10.20.{i // 250}.{i % 250 + 1}",
                        "Service": {"ID": f"svc-{i:03d}", "Service": f"svc-{i:03d}", "Port": port}})


def wait_all(outs: list[Path], pred, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not all(pred(read(o) or "") for o in outs):
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.05)
    return time.monotonic() - t0


def run(tmp: Path, args: argparse.Namespace, dedup: bool) -> dict[str, float]:
    server = start_dev_server(tmp / ("store-dedup" if dedup else "store-plain"), node="bench")
    c = Client(server.addr)
    try:
        for i in range(args.services):
            register(c, i, 8000 + i)
        return _measure(server.addr, c, tmp, args, dedup)
    finally:
        c.close()
        server.stop(signal.SIGKILL)


def _measure(addr: str, c: Client, tmp: Path, args: argparse.Namespace, dedup: bool) -> dict[str, float]:
    procs, outs = [], []
    before = requests_served(c)
    for i in range(args.sidecars):
        d = tmp / f"{'dedup' if dedup else 'plain'}-{i}"
        d.mkdir()
        (d / "in.ctmpl").write_text(TEMPLATE)
        extra = ["-dedup"] if dedup else []
        procs.append(subprocess.Popen([sys.executable, "-m", "meshctl", "template", "-template", "in.ctmpl:out.txt",
                                       "-graceful-signal", "SIGTERM", *extra], cwd=d, env=env_for(addr),
                                      stdout=subprocess.DEVNULL, stderr=open(d / "log", "w")))
        outs.append(d / "out.txt")
    try:
        start_s = wait_all(outs, lambda t: t.count("svc-") == args.services, 600, "first render")
        time.sleep(2)  # let the first answers' re-blocks land
        start_req = requests_served(c) - before
        a = requests_served(c)
        time.sleep(args.idle)
        idle_rate = (requests_served(c) - a) / args.idle
        a = requests_served(c)
        t_end = time.monotonic() + args.churn
        port = 20000
        while time.monotonic() < t_end:
            port += 1
            register(c, 0, port)
            time.sleep(0.5)
        churn_rate = (requests_served(c) - a) / args.churn
        wait_all(outs, lambda t: f"svc-000 10.20.0.1:{port}\n" in t, 120, "the churn everywhere")
        time.sleep(1)
        register(c, 0, port + 1)
        converge = wait_all(outs, lambda t: f"svc-000 10.20.0.1:{port + 1}\n" in t, 120, "one change everywhere")
        return {"start_s": start_s, "start_req": start_req, "idle": idle_rate, "churn": churn_rate,
                "converge_ms": converge * 1000}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sidecars", type=int, default=20)
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--idle", type=float, default=65.0)  # a whole blocking wait (60 s)
    ap.add_argument("--churn", type=float, default=20.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmpdir:
        tmp = Path(tmpdir)
        for d in ("store-plain", "store-dedup"):
            (tmp / d).mkdir()
        plain = run(tmp, args, dedup=False)
        dedup = run(tmp, args, dedup=True)
    print(f"{args.sidecars} sidecars, one template over {args.services} services "
          f"({args.services + 1} blocking queries per instance without -dedup)\n")
    print("| figure | without -dedup | with -dedup | ratio |")
    print("|---|---:|---:|---:|")
    rows = [("requests to the store until every file rendered", "start_req", "{:,.0f}"),
            ("time until every file rendered (s)", "start_s", "{:.1f}"),
            ("requests/s, idle", "idle", "{:.1f}"),
            ("requests/s, one service changing every 0.5 s", "churn", "{:.1f}"),
            ("one change → on every sidecar's disk (ms)", "converge_ms", "{:.0f}")]
    for label, key, fmt in rows:
        ratio = plain[key] / dedup[key] if dedup[key] else float("inf")
        print(f"| {label} | {fmt.format(plain[key])} | {fmt.format(dedup[key])} | {ratio:.1f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
