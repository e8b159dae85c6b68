"""A real agent with a config dir: HTTP, TCP, script and TTL checks decide what DNS and ?passing show."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import requests
from agent_procs import HTTPBackend, TCPBackend, dig, passing_ids
from devserver import free_port, start_dev_server, wait_for

pytestmark = pytest.mark.integration


def write(path, data) -> None:
    path.write_text(json.dumps(data) if isinstance(data, dict) else data)


@pytest.fixture
def backends():
    http, tcp = HTTPBackend(), TCPBackend()
    yield http, tcp
    for b in (http, tcp):
        try:
            b.stop()
        except OSError:
            pass


def test_failing_checks_take_instances_out_of_dns_and_passing(tmp_path, backends):
    http, tcp = backends
    flag = tmp_path / "job-ok"
    flag.write_text("ok")
    conf = tmp_path / "conf"
    conf.mkdir()
    write(conf / "web.json", {"service": {"name": "web", "port": http.port, "tags": ["v1"],
                                          "check": {"http": http.url, "interval": "1s", "timeout": "2s"}}})
    write(conf / "db.hcl", f'''
service {{
  name = "db"
  port = {tcp.port}
  check {{
    tcp      = "127.0.0.1:{tcp.port}"
    interval = "1s"
  }}
}}
''')
    write(conf / "job.yaml", f"""
service:
  name: job
  port: 7000
  checks:
    - args: ["sh", "-c", "test -f {flag} && echo all good || exit 2"]
      interval: 1s
""")
    write(conf / "beat.json", {"service": {"name": "beat", "port": 7001, "check": {"id": "beat-ttl", "ttl": "30s"}}})
    server = start_dev_server(tmp_path, "-config-dir", str(conf), "-enable-local-script-checks")
    try:
        for svc in ("web", "db", "job"):
            wait_for(lambda s=svc: dig(server.dns_port, f"{s}.service.consul") == ["127.0.0.1"], 30,
                     f"{svc} in DNS", server.log)
            wait_for(lambda s=svc: passing_ids(server.url, s) == {s}, 10, f"{svc} passing")
        srv = dig(server.dns_port, "web.service.consul", "SRV")
        assert srv == [f"1 1 {http.port} devnode.node.dc1.consul."]
        checks = requests.get(f"{server.url}/v1/agent/checks").json()
        assert checks["service:job"]["Output"].strip() == "all good"
        assert checks["service:web"]["Output"].startswith(f"HTTP GET {http.url}: 200 OK Output: ok")
        assert checks["service:db"]["Output"] == f"TCP connect 127.0.0.1:{tcp.port}: Success"

        # a TTL check starts critical: not in DNS until the service reports in
        assert dig(server.dns_port, "beat.service.consul") == []
        requests.put(f"{server.url}/v1/agent/check/pass/beat-ttl?note=alive").raise_for_status()
        wait_for(lambda: dig(server.dns_port, "beat.service.consul") == ["127.0.0.1"], 10, "beat in DNS")

        http.stop()
        wait_for(lambda: dig(server.dns_port, "web.service.consul") == [], 15, "web out of DNS", server.log)
        assert passing_ids(server.url, "web") == set()
        tcp.stop()
        wait_for(lambda: dig(server.dns_port, "db.service.consul") == [], 15, "db out of DNS", server.log)
        assert passing_ids(server.url, "db") == set()
        flag.unlink()
        wait_for(lambda: dig(server.dns_port, "job.service.consul") == [], 15, "job out of DNS", server.log)
        status = requests.get(f"{server.url}/v1/health/checks/job").json()[0]
        assert status["Status"] == "critical"
        requests.put(f"{server.url}/v1/agent/check/fail/beat-ttl").raise_for_status()
        wait_for(lambda: dig(server.dns_port, "beat.service.consul") == [], 10, "beat out of DNS")
    finally:
        server.stop()


def test_http_429_is_warning_kept_in_dns_unless_only_passing(tmp_path):
    backend = HTTPBackend(code=429)
    conf = tmp_path / "conf"
    conf.mkdir()
    write(conf / "api.json", {"service": {"name": "api", "port": backend.port,
                                          "check": {"http": backend.url, "interval": "1s"}}})
    server = start_dev_server(tmp_path, "-config-dir", str(conf))
    strict = start_dev_server(tmp_path, "-config-dir", str(conf), "-dns-only-passing", node="strict")
    try:
        wait_for(lambda: requests.get(f"{server.url}/v1/health/checks/api").json()[0]["Status"] == "warning", 20,
                 "api warning")
        assert dig(server.dns_port, "api.service.consul") == ["127.0.0.1"]
        assert passing_ids(server.url, "api") == set()
        wait_for(lambda: requests.get(f"{strict.url}/v1/health/checks/api").json()[0]["Status"] == "warning", 20,
                 "api warning on the strict agent")
        assert dig(strict.dns_port, "api.service.consul") == []
    finally:
        server.stop()
        strict.stop()
        backend.stop()


def test_script_checks_in_config_refused_without_flag(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    write(conf / "s.json", {"service": {"name": "s", "check": {"args": ["true"], "interval": "5s"}}})
    proc = subprocess.run([sys.executable, "-m", "meshctl", "agent", "-dev", "-http-port", str(free_port()),
                           "-dns-port", str(free_port()), "-config-dir", str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Scripts are disabled on this agent" in proc.stdout + proc.stderr


def test_script_checks_over_the_api_need_enable_script_checks(tmp_path):
    body = {"Name": "viaapi", "Check": {"Args": ["sh", "-c", "exit 0"], "Interval": "1s"}}
    local_only = start_dev_server(tmp_path, "-enable-local-script-checks")
    open_agent = start_dev_server(tmp_path, "-enable-script-checks", node="open")
    try:
        r = requests.put(f"{local_only.url}/v1/agent/service/register", json=body)
        assert r.status_code == 400 and "Scripts are disabled" in r.text
        assert "viaapi" not in requests.get(f"{local_only.url}/v1/agent/services").json()
        r = requests.put(f"{open_agent.url}/v1/agent/service/register", json=body)
        assert r.status_code == 200, r.text
        wait_for(lambda: passing_ids(open_agent.url, "viaapi") == {"viaapi"}, 20, "script check passing")
    finally:
        local_only.stop()
        open_agent.stop()


def test_seed_marathon_json_loads_unchanged(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    # the seed's marathon.json, as written in the slides
    (conf / "marathon.json").write_text('{ "service": { "name": "marathon", "tags": [ "admin" ], "port": 8080, '
                                        '"check": { "script": "curl --silent --show-error --fail --dump-header '
                                        '/dev/stderr --retry 2 http://127.0.0.1:8080/ping", "interval": "10s" } } }')
    server = start_dev_server(tmp_path, "-config-dir", str(conf), "-enable-local-script-checks")
    try:
        svc = wait_for(lambda: requests.get(f"{server.url}/v1/agent/services").json().get("marathon"), 20,
                       "marathon registered")
        assert svc["Tags"] == ["admin"] and svc["Port"] == 8080
        check = requests.get(f"{server.url}/v1/agent/checks").json()["service:marathon"]
        assert check["Type"] == "script" and check["Interval"] == "10s" and check["ServiceName"] == "marathon"
        catalog = requests.get(f"{server.url}/v1/catalog/service/marathon").json()
        assert catalog[0]["ServiceTags"] == ["admin"]
    finally:
        server.stop()


def test_reload_by_sighup_and_api_adds_and_removes_definitions(tmp_path):
    backend = HTTPBackend()
    conf = tmp_path / "conf"
    conf.mkdir()
    write(conf / "a.json", {"service": {"name": "alpha", "port": 1, "check": {"http": backend.url, "interval": "1s"}}})
    server = start_dev_server(tmp_path, "-config-dir", str(conf))
    try:
        wait_for(lambda: dig(server.dns_port, "alpha.service.consul") == ["127.0.0.1"], 20, "alpha in DNS")
        write(conf / "b.json", {"services": [{"name": "beta", "port": 2,
                                              "checks": [{"http": backend.url, "interval": "1s"}]}]})
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: dig(server.dns_port, "beta.service.consul") == ["127.0.0.1"], 20, "beta in DNS", server.log)
        (conf / "a.json").unlink()
        requests.put(f"{server.url}/v1/agent/reload").raise_for_status()
        assert "alpha" not in requests.get(f"{server.url}/v1/agent/services").json()
        wait_for(lambda: dig(server.dns_port, "alpha.service.consul") == [], 10, "alpha gone from DNS")
        assert passing_ids(server.url, "beta") == {"beta"}  # unchanged definitions keep their status
    finally:
        server.stop()
        backend.stop()
