"""Registrator fixtures: registrator processes; the real Docker Engine (`dockerd`) is tests/conftest.py's.

dockerd runs as ARCHITECTURE.md says (tests/docker_engine.py): `--bridge=none --iptables=false`,
its own socket, containers on `--network host` serving 127.0.0.1 ports only, a busybox image.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from devserver import DevServer
from docker_engine import wait_until

__all__ = ["wait_until"]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Registrator:
    """A running `meshctl registrator` process."""

    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def registrator(tmp_path) -> Iterator[Callable[..., Registrator]]:
    """Factory: start `meshctl registrator ARGS` (stopped at teardown)."""
    started: list[Registrator] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Registrator:
        log_path = tmp_path / f"registrator-{len(started)}.log"
        with open(log_path, "w") as logf:
            proc = subprocess.Popen([sys.executable, "-m", "meshctl", "registrator", *args], stdout=logf,
                                    stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **(env or {})})
        r = Registrator(proc, log_path)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def agent_services(server: DevServer) -> dict[str, dict]:
    """The agent's services by ID."""
    return requests.get(f"{server.url}/v1/agent/services", timeout=5).json()


def service_checks(server: DevServer, service_id: str) -> list[dict]:
    """The agent's checks of one service."""
    checks = requests.get(f"{server.url}/v1/agent/checks", timeout=5).json()
    return [c for c in checks.values() if c.get("ServiceID") == service_id]
