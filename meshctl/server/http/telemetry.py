"""/v1/agent/metrics, /v1/agent/monitor and /v1/agent/host: seeing inside a running agent.

* `GET /v1/agent/metrics` (agent:read): Consul's JSON (Timestamp, Gauges, Points, Counters,
  Samples); `?format=prometheus` the Prometheus text exposition (meshctl/server/metrics.py).
* `GET /v1/agent/monitor?loglevel=&logjson` (agent:read): the agent's log lines from now on,
  one per line, until the client goes away (meshctl/server/logstream.py). An unknown level is
  Consul's 400 `Unknown log level: X`.
* `GET /v1/agent/host` (operator:read): a host summary (Consul: gopsutil's Host, CPU, Memory,
  Disk), what `meshctl debug` stores as host.json.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import time
from typing import Any

from aiohttp import web

from meshctl.server import logstream
from meshctl.server.http.common import HTTPError, Request, Route, respond, route
from meshctl.server.metrics import PROMETHEUS_CONTENT_TYPE, TELEMETRY

ROUTES: list[Route] = []


@route(ROUTES, "GET", "/v1/agent/metrics")
async def metrics(req: Request) -> web.StreamResponse:
    req.authorize("agent", req.ctx.agent.node_name, "read")
    if req.param("format") == "prometheus":
        return web.Response(body=TELEMETRY.prometheus(), headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})
    return respond(req, TELEMETRY.display())


@route(ROUTES, "GET", "/v1/agent/monitor")
async def monitor(req: Request) -> web.StreamResponse:
    req.authorize("agent", req.ctx.agent.node_name, "read")
    text = req.param("loglevel") or "INFO"
    level = logstream.parse_level(text)
    if level is None:
        raise HTTPError(400, f"Unknown log level: {text}")
    sub = logstream.Subscriber(asyncio.get_running_loop(), level, req.flag("logjson"), secrets=[req.token])
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain; charset=utf-8",
                                                   "X-Consul-Default-ACL-Policy": req.ctx.acl.default_policy})
    await resp.prepare(req.raw)
    logstream.BROADCASTER.subscribe(sub)
    try:
        while True:
            line = await sub.next_line()
            await resp.write(line.encode("utf-8", "replace") + b"\n")
    except ConnectionError:  # the client went away
        pass
    finally:
        logstream.BROADCASTER.unsubscribe(sub)
    return resp


@route(ROUTES, "GET", "/v1/agent/host")
async def host(req: Request) -> web.Response:
    req.authorize("operator", "", "read")
    return respond(req, host_summary())


def host_summary() -> dict[str, Any]:
    """Consul's /v1/agent/host shape, from /proc and the platform module (errors listed, never raised)."""
    started = time.perf_counter()
    errors: list[str] = []
    uname = platform.uname()
    boot = 0
    try:
        with open("/proc/stat") as f:
            boot = next((int(line.split()[1]) for line in f if line.startswith("btime")), 0)
    except OSError as exc:
        errors.append(f"host: {exc}")
    os_release: dict[str, str] = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                os_release[key] = value.strip('"')
    except OSError:
        pass
    procs = sum(1 for name in _listdir("/proc") if name.isdigit())
    host_info = {"hostname": socket.gethostname(), "uptime": int(time.time() - boot) if boot else 0,
                 "bootTime": boot, "procs": procs, "os": uname.system.lower(),
                 "platform": os_release.get("ID", ""), "platformFamily": os_release.get("ID_LIKE", ""),
                 "platformVersion": os_release.get("VERSION_ID", ""), "kernelVersion": uname.release,
                 "kernelArch": uname.machine, "virtualizationSystem": "", "virtualizationRole": "", "hostid": ""}
    mem: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                mem[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError) as exc:
        errors.append(f"memory: {exc}")
    total, available = mem.get("MemTotal", 0), mem.get("MemAvailable", 0)
    used = total - available
    memory = {"total": total, "available": available, "used": used, "free": mem.get("MemFree", 0),
              "usedPercent": (100.0 * used / total) if total else 0.0, "buffers": mem.get("Buffers", 0),
              "cached": mem.get("Cached", 0)}
    cpus = []
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    for n in range(os.cpu_count() or 1):
        cpus.append({"cpu": n, "modelName": model, "cores": 1})
    disk: dict[str, Any] = {}
    try:
        usage = shutil.disk_usage("/")
        disk = {"path": "/", "total": usage.total, "free": usage.free, "used": usage.used,
                "usedPercent": 100.0 * usage.used / usage.total if usage.total else 0.0}
    except OSError as exc:
        errors.append(f"disk: {exc}")
    return {"Memory": memory, "CPU": cpus, "Host": host_info, "Disk": disk,
            "CollectionTime": int((time.perf_counter() - started) * 1e9), "Errors": errors or None}


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
