"""`meshctl registrator` against a real Docker Engine (started by conftest) and a real meshctl agent.

Containers run with `--network host` and serve 127.0.0.1 ports; with host networking
registrator treats exposed ports as published on the host (`--expose PORT`). The
registrator runs with `-ip 127.0.0.1` so every address and check stays on loopback.
"""

from __future__ import annotations

import socket

import pytest
import requests
from devserver import free_port, start_dev_server

from .conftest import agent_services, service_checks, wait_until

pytestmark = pytest.mark.integration

HOST = socket.gethostname()


def _sid(name: str, port: int, udp: bool = False) -> str:
    return f"{HOST}:{name}:{port}" + (":udp" if udp else "")


def _start(registrator, dockerd, server, *flags: str):
    r = registrator("-ip", "127.0.0.1", "-source", f"docker={dockerd.url}", *flags,
                    f"consul://127.0.0.1:{server.http_port}")
    wait_until(lambda: "syncing services on" in r.log(), 20, what="the first docker sync")
    return r


def _gone(server, sid: str) -> bool:
    return sid not in agent_services(server)


def test_start_registers_with_env_and_label_metadata_and_kill_deregisters(dockerd, dev_server, registrator):
    _start(registrator, dockerd, dev_server)
    port = free_port()
    dockerd.httpd("reg-meta", port, "-e", "SERVICE_NAME=web", "-e", "SERVICE_TAGS=blue,v1\\,2",
                  "-e", "SERVICE_REGION=eu", "-l", "SERVICE_REGION=us", "-l", "SERVICE_OWNER=team-a")
    sid = _sid("reg-meta", port)
    svc = wait_until(lambda: agent_services(dev_server).get(sid), what=sid)
    assert svc["Service"] == "web"
    assert svc["Address"] == "127.0.0.1" and svc["Port"] == port
    assert svc["Tags"] == ["blue", "v1,2"]
    assert svc["Meta"]["region"] == "us"  # a label beats env
    assert svc["Meta"]["owner"] == "team-a"
    assert svc["Meta"]["external-source"] == "docker"
    catalog = requests.get(f"{dev_server.url}/v1/catalog/service/web", timeout=5).json()
    assert [c["ServiceID"] for c in catalog] == [sid]
    dockerd.docker("kill", "reg-meta")
    wait_until(lambda: _gone(dev_server, sid), what="deregistration after kill")
    dockerd.rm("reg-meta")


def test_several_ports_image_name_port_specific_keys_udp_and_ignore(dockerd, dev_server, registrator):
    _start(registrator, dockerd, dev_server)
    p1, p2, p3, p4 = (free_port() for _ in range(4))
    dockerd.run("reg-ports", "--expose", str(p1), "--expose", str(p2), "--expose", f"{p3}/udp",
                "--expose", str(p4), "-e", f"SERVICE_{p2}_NAME=admin", "-l", f"SERVICE_{p2}_TAGS=internal",
                "-e", f"SERVICE_{p4}_IGNORE=1", "-e", "SERVICE_TAGS=all")
    expected = {
        _sid("reg-ports", p1): ("meshtest-busybox-" + str(p1), ["all"]),
        _sid("reg-ports", p2): ("admin", ["internal"]),
        _sid("reg-ports", p3, udp=True): ("meshtest-busybox-" + str(p3), ["all", "udp"]),
    }
    services = wait_until(lambda: (s := agent_services(dev_server)) and all(k in s for k in expected) and s,
                          what="three services")
    for sid, (name, tags) in expected.items():
        assert (services[sid]["Service"], services[sid]["Tags"]) == (name, tags)
    assert _sid("reg-ports", p4) not in services
    dockerd.rm("reg-ports")
    wait_until(lambda: not any(k in agent_services(dev_server) for k in expected), what="all gone after rm")


def test_http_check_from_service_check_http_passes_then_fails_for_real(dockerd, registrator, tmp_path):
    server = start_dev_server(tmp_path)
    try:
        _start(registrator, dockerd, server)
        port = free_port()
        dockerd.httpd("reg-http", port, "-e", "SERVICE_NAME=checked", "-e", "SERVICE_CHECK_HTTP=/health",
                      "-e", "SERVICE_CHECK_INTERVAL=1s", "-e", "SERVICE_CHECK_TIMEOUT=2s")
        sid = _sid("reg-http", port)
        wait_until(lambda: [c for c in service_checks(server, sid) if c["Status"] == "passing"], 20,
                   what="the HTTP check passing")
        health = requests.get(f"{server.url}/v1/health/service/checked?passing", timeout=5).json()
        assert [h["Service"]["ID"] for h in health] == [sid]
        dockerd.docker("exec", "reg-http", "rm", "/www/health")
        wait_until(lambda: [c for c in service_checks(server, sid) if c["Status"] == "critical"], 20,
                   what="the HTTP check critical once /health is gone")
        dockerd.rm("reg-http")
    finally:
        server.stop()


def test_docker_check_from_service_check_cmd_runs_in_the_container(dockerd, registrator, tmp_path):
    """SERVICE_CHECK_CMD becomes a Consul docker check, which the agent runs with `docker exec`."""
    server = start_dev_server(tmp_path, "-enable-script-checks", env={"DOCKER_HOST": dockerd.url})
    try:
        _start(registrator, dockerd, server)
        port = free_port()
        dockerd.run("reg-cmd", "--expose", str(port), "-e", "SERVICE_NAME=cmdcheck",
                    "-e", "SERVICE_CHECK_CMD=test -f /tmp/ready", "-e", "SERVICE_CHECK_INTERVAL=1s")
        sid = _sid("reg-cmd", port)
        wait_until(lambda: [c for c in service_checks(server, sid) if c["Status"] == "critical"], 20,
                   what="the docker check critical before /tmp/ready exists")
        dockerd.docker("exec", "reg-cmd", "touch", "/tmp/ready")
        wait_until(lambda: [c for c in service_checks(server, sid) if c["Status"] == "passing"], 20,
                   what="the docker check passing")
        dockerd.rm("reg-cmd")
    finally:
        server.stop()


def test_explicit_only_registers_named_containers_and_templated_tags(dockerd, dev_server, registrator):
    _start(registrator, dockerd, dev_server, "-explicit", "-tags", "fixed,{{toLower .Config.Labels.team}}")
    p1, p2 = free_port(), free_port()
    dockerd.run("reg-anon", "--expose", str(p1))
    dockerd.run("reg-named", "--expose", str(p2), "-e", "SERVICE_NAME=named", "-l", "team=OPS")
    svc = wait_until(lambda: agent_services(dev_server).get(_sid("reg-named", p2)), what="named service")
    assert svc["Tags"] == ["fixed", "ops"]
    assert _sid("reg-anon", p1) not in agent_services(dev_server)
    dockerd.rm("reg-anon", "reg-named")


def test_pause_unpause_rename_and_restart(dockerd, dev_server, registrator):
    _start(registrator, dockerd, dev_server)
    port = free_port()
    dockerd.run("reg-life", "--expose", str(port), "-e", "SERVICE_NAME=life")
    sid = _sid("reg-life", port)
    wait_until(lambda: sid in agent_services(dev_server), what="registered")
    dockerd.docker("pause", "reg-life")
    wait_until(lambda: _gone(dev_server, sid), what="deregistered while paused")
    dockerd.docker("unpause", "reg-life")
    wait_until(lambda: sid in agent_services(dev_server), what="registered again after unpause")
    dockerd.docker("rename", "reg-life", "reg-life2")
    new = _sid("reg-life2", port)
    wait_until(lambda: new in agent_services(dev_server) and sid not in agent_services(dev_server),
               what="re-registered under the new name")
    dockerd.containers.append("reg-life2")
    dockerd.docker("restart", "-t", "1", "reg-life2")
    wait_until(lambda: new in agent_services(dev_server), what="registered after restart")
    dockerd.rm("reg-life2")
    wait_until(lambda: _gone(dev_server, new), what="gone after rm")


def test_deregister_on_success_keeps_failed_containers_until_removed(dockerd, dev_server, registrator):
    _start(registrator, dockerd, dev_server, "-deregister", "on-success")
    p1, p2 = free_port(), free_port()
    dockerd.run("reg-fail", "--expose", str(p1), "-e", "SERVICE_NAME=fails", cmd=("sh", "-c", "sleep 1; exit 3"))
    dockerd.run("reg-ok", "--expose", str(p2), "-e", "SERVICE_NAME=succeeds", cmd=("sh", "-c", "sleep 1; exit 0"))
    failing, ok = _sid("reg-fail", p1), _sid("reg-ok", p2)
    wait_until(lambda: failing in agent_services(dev_server), what="failing service registered")
    wait_until(lambda: dockerd.docker("inspect", "-f", "{{.State.Status}}", "reg-ok", "reg-fail") == "exited\nexited",
               20, what="both containers exited")
    wait_until(lambda: _gone(dev_server, ok), what="exit 0 deregistered")
    assert failing in agent_services(dev_server), "exit 3 must stay registered with on-success"
    dockerd.rm("reg-fail", "reg-ok")
    wait_until(lambda: _gone(dev_server, failing), what="removed container deregistered")


def test_initial_sync_cleanup_and_foreign_services_untouched(dockerd, dev_server, registrator):
    port = free_port()
    dockerd.run("reg-early", "--expose", str(port), "-e", "SERVICE_NAME=early")
    put = lambda body: requests.put(f"{dev_server.url}/v1/agent/service/register", json=body, timeout=5)  # noqa: E731
    put({"ID": f"{HOST}:long-gone:9999", "Name": "stale"}).raise_for_status()  # registrator's ID shape
    put({"ID": "someone-else", "Name": "foreign", "Port": 1}).raise_for_status()
    put({"ID": "other-host:c:1", "Name": "other"}).raise_for_status()
    _start(registrator, dockerd, dev_server, "-cleanup", "-resync", "1")
    wait_until(lambda: _sid("reg-early", port) in agent_services(dev_server), what="running container synced")
    wait_until(lambda: _gone(dev_server, f"{HOST}:long-gone:9999"), what="dangling service cleaned up")
    services = agent_services(dev_server)
    assert "someone-else" in services and "other-host:c:1" in services
    dockerd.rm("reg-early")


def test_resync_repairs_a_service_removed_behind_our_back_and_ttl_checks(dockerd, dev_server, registrator):
    _start(registrator, dockerd, dev_server, "-resync", "1", "-ttl", "30", "-ttl-refresh", "1")
    port = free_port()
    dockerd.run("reg-drift", "--expose", str(port), "-e", "SERVICE_NAME=drift")
    sid = _sid("reg-drift", port)
    wait_until(lambda: sid in agent_services(dev_server), what="registered")
    checks = service_checks(dev_server, sid)
    assert [c["Status"] for c in checks if c["CheckID"] == f"service:{sid}:ttl"] == ["passing"]
    requests.put(f"{dev_server.url}/v1/agent/service/deregister/{sid}", timeout=5).raise_for_status()
    wait_until(lambda: sid in agent_services(dev_server), 10, what="re-registered by the resync")
    dockerd.rm("reg-drift")


def test_dead_docker_socket_is_retried_with_clear_logs_and_nothing_deregistered(dev_server, registrator, tmp_path):
    requests.put(f"{dev_server.url}/v1/agent/service/register",
                 json={"ID": f"{HOST}:kept:1", "Name": "kept"}, timeout=5).raise_for_status()
    r = registrator("-ip", "127.0.0.1", "-cleanup", "-source", f"docker=unix://{tmp_path}/no-such.sock",
                    f"consul://127.0.0.1:{dev_server.http_port}")
    wait_until(lambda: r.log().count("cannot reach Docker at") >= 2, 20, what="two retry log lines")
    assert "retrying in" in r.log()
    assert r.proc.poll() is None, "registrator must keep retrying, not exit"
    assert f"{HOST}:kept:1" in agent_services(dev_server)


def test_dockerd_restart_registrations_recover(dockerd, dev_server, registrator):
    r = _start(registrator, dockerd, dev_server)
    port = free_port()
    dockerd.run("reg-always", "--restart", "always", "--expose", str(port), "-e", "SERVICE_NAME=survivor")
    sid = _sid("reg-always", port)
    wait_until(lambda: sid in agent_services(dev_server), what="registered")
    dockerd.restart()
    wait_until(lambda: "event stream" in r.log() or "cannot reach Docker" in r.log(), 30,
               what="the registrator noticing the engine restart")
    wait_until(lambda: r.log().count("connected to") >= 2, 60, what="reconnected")
    wait_until(lambda: dockerd.docker("inspect", "-f", "{{.State.Running}}", "reg-always") == "true", 60,
               what="the container restarted by the engine")
    wait_until(lambda: sid in agent_services(dev_server), 30, what="registration recovered")
    port2 = free_port()
    dockerd.run("reg-after", "--expose", str(port2), "-e", "SERVICE_NAME=after")
    wait_until(lambda: _sid("reg-after", port2) in agent_services(dev_server), what="events flow again")
    dockerd.rm("reg-always", "reg-after")
