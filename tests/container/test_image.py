"""The Dockerfile at the top of the repository, built offline (tests/docker_engine.py) and run on a real engine.

Every container uses host networking and serves 127.0.0.1 ports only.
"""

from __future__ import annotations

import json

import pytest
import requests
from devserver import free_port, start_dev_server
from docker_engine import wait_until

from .helpers import shared_dir

pytestmark = pytest.mark.integration


def _health(dockerd, name: str) -> str:
    return json.loads(dockerd.docker("inspect", "--format", "{{json .State.Health}}", name) or "null")["Status"]


def test_default_user_is_not_root_and_the_entrypoint_is_meshctl(dockerd, meshctl_image):
    out = dockerd.docker("run", "--rm", "--network", "host", meshctl_image, "--version")
    assert out.startswith("meshctl v")
    config = json.loads(dockerd.docker("inspect", "--format", "{{json .Config}}", meshctl_image))
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["meshctl"]
    assert config["Cmd"] == ["agent", "-dev", "-client", "0.0.0.0"]
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python"]


def test_agent_dev_in_a_container_serves_the_api_and_turns_healthy(dockerd, meshctl_image):
    http, dns = free_port(), free_port()
    name = "img-agent"
    dockerd.run(name, "--health-interval", "1s", "--health-start-period", "30s",
                "-e", f"MESHCTL_HEALTH_ADDR=127.0.0.1:{http}", image=meshctl_image,
                cmd=("agent", "-dev", "-client", "127.0.0.1", "-http-port", str(http), "-dns-port", str(dns)))
    try:
        wait_until(lambda: _health(dockerd, name) == "healthy", 60, 0.2, "the agent container to turn healthy")
        assert requests.get(f"http://127.0.0.1:{http}/v1/status/leader", timeout=5).json()
        requests.put(f"http://127.0.0.1:{http}/v1/kv/img/hello", data=b"world", timeout=5).raise_for_status()
        assert requests.get(f"http://127.0.0.1:{http}/v1/kv/img/hello?raw", timeout=5).text == "world"
        assert dockerd.docker("exec", name, "id", "-u") == "10001"
    finally:
        dockerd.rm(name)


def test_template_sidecar_renders_and_its_health_follows_the_store(dockerd, meshctl_image, tmp_path):
    store = start_dev_server(tmp_path)
    name = "img-template"
    with shared_dir() as shared:
        (shared / "in.tmpl").write_text('value={{ key "img/greeting" }}\n')
        requests.put(f"{store.url}/v1/kv/img/greeting", data=b"hi", timeout=5).raise_for_status()
        try:
            dockerd.run(name, "--health-interval", "1s", "--health-retries", "1", "-v", f"{shared}:/mnt/job",
                        "-e", f"CONSUL_HTTP_ADDR={store.addr}", image=meshctl_image,
                        cmd=("template", "-template", "/mnt/job/in.tmpl:/mnt/job/out.conf"))
            out = shared / "out.conf"
            wait_until(lambda: out.exists() and out.read_text() == "value=hi\n", 30, what="the first render")
            assert out.stat().st_uid == 10001  # written by the image's user, not root
            wait_until(lambda: _health(dockerd, name) == "healthy", 60, 0.2, "healthy while the store is up")
            requests.put(f"{store.url}/v1/kv/img/greeting", data=b"again", timeout=5).raise_for_status()
            wait_until(lambda: out.read_text() == "value=again\n", 30, what="the re-render")
            store.stop()
            wait_until(lambda: _health(dockerd, name) == "unhealthy", 60, 0.2, "unhealthy once the store is gone")
        finally:
            dockerd.rm(name)
            store.stop()
