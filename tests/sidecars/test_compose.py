"""examples/sidecars/docker-compose.yml brought up for real: docker-compose on the session's engine.

The images are this session's offline ones (the compose file takes them from the environment):
the meshctl image built from the checkout, haproxy and busybox from Debian's packages. Every
port is a free 127.0.0.1 port. The project is torn down (`down -v`) whatever happens.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from devserver import free_port
from docker_engine import BUSYBOX_IMAGE, HAPROXY_ROOTFS, REPO, Dockerd, import_rootfs, wait_until

pytestmark = pytest.mark.integration

COMPOSE_FILE = REPO / "examples" / "sidecars" / "docker-compose.yml"


@dataclass
class Project:
    dockerd: Dockerd
    name: str
    env: dict[str, str]

    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        r = subprocess.run(["docker-compose", "--no-ansi", "-p", self.name, "-f", str(COMPOSE_FILE), *args],
                           env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}\n{self.logs()}")
        return r.stdout.strip()

    def logs(self) -> str:
        r = subprocess.run(["docker-compose", "--no-ansi", "-p", self.name, "-f", str(COMPOSE_FILE), "logs",
                            "--tail", "30"], env=self.env, capture_output=True, text=True, timeout=60)
        return r.stdout[-6000:]

    def port(self, name: str) -> int:
        return int(self.env[name])

    def volume(self, name: str) -> Path:
        return Path(self.dockerd.docker("volume", "inspect", "--format", "{{.Mountpoint}}", f"{self.name}_{name}"))

    def kv(self, key: str) -> str | None:
        r = requests.get(f"http://127.0.0.1:{self.port('STORE_PORT')}/v1/kv/{key}?raw", timeout=5)
        return r.text if r.status_code == 200 else None


@pytest.fixture
def project(dockerd, meshctl_image) -> Iterator[Project]:
    ports = {name: str(free_port()) for name in ("STORE_PORT", "STORE_DNS_PORT", "PROXY_PORT", "WEB1_PORT", "WEB2_PORT")}
    env = {**dockerd.env, **ports, "MESHCTL_IMAGE": meshctl_image, "HAPROXY_IMAGE": import_rootfs(dockerd, HAPROXY_ROOTFS),
           "APP_IMAGE": BUSYBOX_IMAGE, "DOCKER_SOCK": dockerd.sock, "DOCKER_GID": str(os.stat(dockerd.sock).st_gid)}
    p = Project(dockerd, f"sidecars{os.getpid()}", env)
    try:
        p.compose("up", "-d")
        yield p
    finally:
        p.compose("down", "-v", "--timeout", "15", check=False)


def _served(p: Project, n: int = 12) -> set[str]:
    """The bodies of `n` requests through haproxy (round robin); {} while it is not up yet."""
    bodies = set()
    for _ in range(n):
        try:
            r = requests.get(f"http://127.0.0.1:{p.port('PROXY_PORT')}/", timeout=5)
        except requests.RequestException:
            return set()
        bodies.add(r.text.strip() if r.status_code == 200 else f"HTTP {r.status_code}")
    return bodies


def test_proxy_follows_the_registered_apps_and_the_singleton_job_fails_over(project):
    p = project
    both = {"hello from web1", "hello from web2"}
    wait_until(lambda: _served(p) == both, 120, 0.5, f"traffic to both apps through haproxy\n{p.logs()}")
    config = p.volume("proxy-config") / "haproxy.cfg"
    assert f"127.0.0.1:{p.port('WEB2_PORT')}" in config.read_text()
    master = (p.volume("proxy-config") / "haproxy.pid").read_text().split()[0]

    p.compose("stop", "web2")
    wait_until(lambda: f"127.0.0.1:{p.port('WEB2_PORT')}" not in config.read_text(), 60, 0.2,
               f"web2 to leave the proxy config\n{p.logs()}")
    wait_until(lambda: _served(p) == {"hello from web1"}, 60, 0.2, f"traffic to web1 only\n{p.logs()}")
    # reloaded in place (SIGUSR2 to the master through the shared PID namespace), not restarted
    assert (p.volume("proxy-config") / "haproxy.pid").read_text().split()[0] == master
    assert f"127.0.0.1:{p.port('WEB1_PORT')}" in config.read_text()

    first = wait_until(lambda: p.kv("jobs/report/holder"), 60, 0.2, "the job's first holder")
    replicas = p.compose("ps", "-q", "report").split()
    assert len(replicas) == 2
    running = [c for c in replicas if "sleep 86400" in p.dockerd.docker("top", c)]
    assert len(running) == 1, "exactly one replica runs the job"
    p.dockerd.docker("stop", "--time", "15", running[0], timeout=60)
    second = wait_until(lambda: (h := p.kv("jobs/report/holder")) != first and h, 60, 0.2,
                        f"the other replica to take the job over\n{p.logs()}")
    assert second and second != first
    standby = next(c for c in replicas if c != running[0])
    assert "sleep 86400" in p.dockerd.docker("top", standby)
