"""Registrator fixtures: a real Docker Engine (own socket, no bridge, busybox image), registrator processes.

dockerd runs as ARCHITECTURE.md says: `--bridge=none --iptables=false --ip-forward=false`,
its own data/exec roots and socket under a temp dir, containers on `--network host` serving
127.0.0.1 ports only. The image is `docker import`ed from a folder holding Debian's
busybox-static. If dockerd cannot start, the tests fail with its log (never skip).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from devserver import DevServer

IMAGE = "meshtest-busybox:latest"
APPLETS = ("sh", "httpd", "nc", "sleep", "true", "false", "test", "rm", "touch", "echo", "cat", "kill")
REPO = Path(__file__).resolve().parents[2]


def wait_until(pred: Callable[[], object], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> object:
    """Poll `pred` until truthy (returns its value) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}; last={last!r}")


@dataclass
class Dockerd:
    """The session's Docker Engine."""

    root: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    containers: list[str] = field(default_factory=list)

    @property
    def sock(self) -> str:
        return str(self.root / "docker.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.url}

    def log(self) -> str:
        try:
            return (self.root / "dockerd.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> None:
        for d in ("data", "exec"):
            (self.root / d).mkdir(exist_ok=True)
        logf = open(self.root / "dockerd.log", "a")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false", "--ip-forward=false",
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "-H", self.url, "--pidfile", str(self.root / "docker.pid")],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n{self.log()}")
            r = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=self.env,
                               capture_output=True, text=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within 60s:\n{self.log()}")

    def stop(self, timeout: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def docker(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr}")
        return r.stdout.strip()

    def run(self, name: str, *args: str, cmd: tuple[str, ...] = ("sleep", "3600")) -> str:
        """`docker run -d --network host --name NAME ARGS IMAGE CMD`; removed at session end."""
        self.containers.append(name)
        return self.docker("run", "-d", "--network", "host", "--name", name, *args, IMAGE, *cmd)

    def httpd(self, name: str, port: int, *args: str) -> str:
        """A container serving /www (with /health) on 127.0.0.1:port."""
        return self.run(name, "--expose", str(port), *args,
                        cmd=("httpd", "-f", "-h", "/www", "-p", f"127.0.0.1:{port}"))

    def rm(self, *names: str) -> None:
        self.docker("rm", "-f", *names, check=False)


def _build_image(d: Dockerd) -> None:
    busybox = shutil.which("busybox") or "/bin/busybox"
    tree = d.root / "image"
    (tree / "bin").mkdir(parents=True, exist_ok=True)
    (tree / "www").mkdir(exist_ok=True)
    shutil.copy2(busybox, tree / "bin" / "busybox")
    for applet in APPLETS:
        link = tree / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (tree / "www" / "health").write_text("ok\n")
    (tree / "tmp").mkdir(exist_ok=True)
    tar = d.root / "image.tar"
    with tarfile.open(tar, "w") as t:
        t.add(tree, arcname=".")
    d.docker("import", str(tar), IMAGE)


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory) -> Iterator[Dockerd]:
    """A real dockerd for the session (started here, as CI does; fails loudly if it cannot run)."""
    root = Path(tmp_path_factory.mktemp("dockerd"))
    d = Dockerd(root)
    d.start()
    try:
        _build_image(d)
        yield d
    finally:
        if d.proc and d.proc.poll() is None and d.containers:
            d.docker("rm", "-f", *d.containers, check=False)
        d.stop()
        # dockerd leaves its network namespace mount behind; unmount it so the temp dir can go
        subprocess.run(["umount", "-l", str(root / "exec" / "netns" / "default")], capture_output=True)


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
