"""Test helpers: real `meshctl agent -dev` processes on free 127.0.0.1 ports.

Import these as `from devserver import ...` (tests/ is on sys.path); `conftest` is not importable
by name because several test folders have their own conftest.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (also free for UDP in practice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DevServer:
    """A running `meshctl agent -dev` process."""

    proc: subprocess.Popen
    http_port: int
    dns_port: int
    node: str
    log_path: str
    extra_args: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"  # the loopback address it serves on

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_dev_server(tmp_path, *args: str, node: str = "devnode", env: dict | None = None) -> DevServer:
    """Start `meshctl agent -dev` and wait until its HTTP API has a leader."""
    http_port, dns_port = free_port(), free_port()
    log_path = str(tmp_path / f"agent-{http_port}.log")
    cmd = [sys.executable, "-m", "meshctl", "agent", "-dev", "-node", node,
           "-http-port", str(http_port), "-dns-port", str(dns_port), *args]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CONSUL_HTTP_ADDR", None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    server = DevServer(proc, http_port, dns_port, node, log_path, list(args))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"meshctl agent exited with {proc.returncode}:\n{server.log()}")
        try:
            r = requests.get(f"{server.url}/v1/status/leader", timeout=1)
            if r.status_code == 200 and r.json():
                return server
        except requests.RequestException:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"meshctl agent did not become ready:\n{server.log()}")


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition",
             log: Callable[[], str] | None = None) -> Any:
    """Poll until `predicate()` is truthy; its value, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (requests.RequestException, subprocess.SubprocessError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})" + (f"\n{log()}" if log else ""))


def wait_node_registered(server: DevServer, headers: dict[str, str] | None = None) -> None:
    """Wait until the agent's own node is in the catalog (what `-dev` registers right after start-up)."""
    wait_for(lambda: server.node in [n["Node"] for n in requests.get(f"{server.url}/v1/catalog/nodes",
                                                                      headers=headers, timeout=5).json()],
             what="the agent's node in the catalog")
