"""Helpers for the `meshctl template` process tests (imported by test_runner_*.py and test_seeds.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import meshctl

REPO = str(Path(meshctl.__file__).resolve().parent.parent)


def env_for(addr: str, **extra: str) -> dict[str, str]:
    """The environment of a `meshctl template` process talking to `addr`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["CONSUL_HTTP_ADDR"] = addr
    env.update(extra)
    return env


def run(addr: str, *args: str, cwd: str | Path, timeout: float = 40, **env: str) -> subprocess.CompletedProcess:
    """Run `meshctl template ARGS` to completion."""
    return subprocess.run([sys.executable, "-m", "meshctl", "template", *args], cwd=cwd, env=env_for(addr, **env),
                          capture_output=True, text=True, timeout=timeout)


class Proc:
    """A long-running `meshctl template` process."""

    def __init__(self, addr: str, *args: str, cwd: str | Path, **env: str) -> None:
        self.log_path = Path(cwd) / f"ct-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "meshctl", "template", *args], cwd=cwd,
                                     env=env_for(addr, **env), stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait(30)
        self.log.close()
        return code


def wait_until(pred: Callable[[], object], timeout: float = 20, what: str = "condition",
               proc: Proc | None = None) -> object:
    """Poll `pred` until truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            value = pred()
            if value:
                return value
            raise AssertionError(f"meshctl template exited ({proc.proc.returncode}) before {what}:\n{proc.output()}")
        time.sleep(0.02)
    extra = f"\n{proc.output()}" if proc is not None else ""
    raise AssertionError(f"timed out waiting for {what}{extra}")


def read(path: Path) -> str | None:
    """A file's text, or None if it does not exist."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def file_is(path: Path, text: str) -> Callable[[], bool]:
    """A predicate: the file holds exactly `text`."""
    return lambda: read(path) == text


def dev_agent(tmp_path_factory, **kw: str):
    """A module's `meshctl agent -dev` (generator for a fixture); stopped with SIGKILL at the end,
    because the agent waits for open blocking queries on SIGTERM (up to the test's 10 s timeout)."""
    from devserver import start_dev_server

    server = start_dev_server(tmp_path_factory.mktemp("agent"), *(f"-{k}={v}" for k, v in kw.items()))
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


agent_context = contextlib.contextmanager(dev_agent)
