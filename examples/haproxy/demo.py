"""The moving parts both proxy examples share: a dev store, backends, `meshctl template -exec`.

Everything runs unprivileged on 127.0.0.1 with its files under one work directory; `Demo`
remembers every process it started and `close()` stops them (newest first).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BACKEND = HERE / "backend.py"
TEMPLATES = ROOT / "templates"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def meshctl(*args: str) -> list[str]:
    """The argv running `meshctl` with this Python (works from a source checkout too)."""
    return [sys.executable, "-m", "meshctl", *args]


class Demo:
    """A dev store (unless `consul` is given), backends and a template runner, under `workdir`."""

    def __init__(self, workdir: Path, consul: str | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.consul = consul or ""
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.backends: dict[str, int] = {}
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                             os.environ.get("PYTHONPATH")]))}

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a process logging to `<workdir>/<name>.log`."""
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - kept by the child
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env or self.env,
                                start_new_session=True)
        log.close()
        self.procs.append((name, proc))
        return proc

    def start_store(self) -> str:
        """`meshctl agent -dev` on free ports; its HTTP address once it has a leader."""
        if self.consul:
            return self.consul
        port = free_port()
        self.spawn("agent", meshctl("agent", "-dev", "-node", "demo", "-http-port", str(port),
                                    "-dns-port", str(free_port())))
        self.consul = f"127.0.0.1:{port}"
        self.env["CONSUL_HTTP_ADDR"] = self.consul
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://{self.consul}/v1/status/leader", timeout=1).json():
                    return self.consul
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the dev store did not start; see {self.workdir / 'agent.log'}")

    def start_backend(self, name: str, port: int | None = None, service: str = "web") -> int:
        """A backend process that registers itself with an HTTP check; its port."""
        port = port or free_port()
        self.spawn(name, [sys.executable, str(BACKEND), name, str(port), "--consul", self.consul,
                          "--service", service])
        self.backends[name] = port
        return port

    def passing(self, service: str = "web") -> list[str]:
        """The IDs of the service's instances whose checks all pass."""
        r = requests.get(f"http://{self.consul}/v1/health/service/{service}?passing=1", timeout=5)
        return sorted(e["Service"]["ID"] for e in r.json())

    def wait_passing(self, names: list[str], service: str = "web", timeout: float = 60) -> None:
        """Until exactly `names` are the passing instances."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.passing(service) == sorted(names):
                return
            time.sleep(0.1)
        raise RuntimeError(f"passing instances of {service}: {self.passing(service)}, want {sorted(names)}")

    def start_template(self, template: str, dest: Path, exec_command: str, *, reload_signal: str,
                       kill_signal: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`meshctl template -template T:dest -exec CMD` supervising the proxy."""
        return self.spawn("template", meshctl(
            "template", "-template", f"{TEMPLATES / template}:{dest}", "-exec", exec_command,
            "-exec-reload-signal", reload_signal, "-exec-kill-signal", kill_signal, "-exec-kill-timeout", "10s",
            "-log-level", "info"), env={**self.env, **env})

    def wait_serving(self, url: str, names: list[str], timeout: float = 60) -> None:
        """Until requests to `url` have been answered by every backend in `names`."""
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = requests.get(url, timeout=2)
                if r.status_code == 200:
                    seen.add(r.text.strip().removeprefix("hello from "))
                    if set(names) <= seen:
                        return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{url} answered from {sorted(seen)}, want {sorted(names)}; "
                           f"see {self.workdir}/template.log")

    def start_store_and_backends(self, count: int) -> tuple[str, list[str]]:
        """The dev store and `count` backends web-1..web-N, once all their checks pass."""
        consul = self.start_store()
        names = [f"web-{i}" for i in range(1, count + 1)]
        for name in names:
            self.start_backend(name)
        self.wait_passing(names)
        return consul, names

    def serve_until_signal(self, proxy: str, url: str, names: list[str], config: Path) -> None:
        """Record the state, print how to play with the running example, wait for Ctrl-C."""
        state = self.write_state(proxy=url, config=str(config), backend_script=str(BACKEND))
        print(f"""
{proxy} is serving {url} from {len(names)} backends registered in {self.consul}.
  curl {url}                                       # answered by web-1, web-2, ... in turn
  curl -X POST http://127.0.0.1:<backend port>/fail   # its check fails: out of {proxy} after the reload
  python3 {BACKEND} web-9 <port> --consul {self.consul}   # a new backend joins
  cat {config}
State: {state}   Logs: {self.workdir}/*.log   Ctrl-C stops everything.
ready""", flush=True)
        wait_for_signal()

    def write_state(self, **extra: object) -> Path:
        """`<workdir>/state.json`: the addresses a user (or a test) needs."""
        path = self.workdir / "state.json"
        path.write_text(json.dumps({"consul": self.consul, "backends": self.backends, **extra}, indent=2))
        return path

    def close(self) -> None:
        """Stop everything this demo started, newest first (SIGTERM, then SIGKILL after 10s)."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.procs.clear()


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    got: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: got.append(s))
    while not got:
        signal.pause()
