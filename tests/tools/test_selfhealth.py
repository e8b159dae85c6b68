"""-register-service: template, registrator and lock register themselves with a TTL check of their health.

Real processes against a real dev agent: the check's status and output are read back from
/v1/health/checks/<name>, as the catalog, the DNS and the UI see them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from devserver import wait_for

from meshctl.client import Client

REPO = str(Path(__file__).resolve().parents[2])


def start(addr: str, cwd: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = cwd / f"tool-{time.monotonic_ns()}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env.update(PYTHONPATH=REPO, CONSUL_HTTP_ADDR=addr)
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "meshctl", *args], cwd=cwd, env=env, stdout=f,
                                stderr=subprocess.STDOUT)
    return proc, log


def wait_until(pred, what: str, log: Path):
    return wait_for(pred, timeout=30, what=what, log=log.read_text)


def check_of(c: Client, name: str) -> dict | None:
    checks = c.health.checks(name).value
    return checks[0] if checks else None


def agent_check(c: Client, name: str) -> dict | None:
    """The agent's own view (an output-only change reaches the catalog on check_update_interval)."""
    return next((ch for ch in c.agent.checks().values() if ch["ServiceName"] == name), None)


def status_is(c: Client, name: str, status: str, text: str = ""):
    def pred():
        check = check_of(c, name)
        return check if check and check["Status"] == status and text in check["Output"] else None
    return pred


@pytest.fixture
def consul(dev_server):
    c = Client(dev_server.addr)
    yield dev_server.addr, c
    c.close()


def test_failing_template_is_critical_with_the_reason_and_clean_exit_deregisters(consul, tmp_path):
    addr, c = consul
    c.kv.put("sh/conf", "{not json")
    (tmp_path / "in.ctmpl").write_text('{{ (key "sh/conf" | parseJSON).port }}')
    proc, log = start(addr, tmp_path, "template", "-template", "in.ctmpl:out.txt", "-template-error-fatal=false",
                      "-register-service", "web-ct")
    try:
        check = wait_until(status_is(c, "web-ct", "critical", "in.ctmpl"), what="a critical self-check", log=log)
        assert "parseJSON" in check["Output"] or "JSON" in check["Output"], check["Output"]
        assert check["ServiceName"] == "web-ct" and check["Type"] == "ttl"
        c.kv.put("sh/conf", '{"port": 8080}')
        wait_until(status_is(c, "web-ct", "passing"), what="passing once the template renders", log=log)
        assert (tmp_path / "out.txt").read_text() == "8080"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert check_of(c, "web-ct") is None
        assert not [s for s in c.agent.services().values() if s["Service"] == "web-ct"]
    finally:
        proc.kill()
        proc.wait()


def test_fatal_template_error_leaves_a_critical_check_behind(consul, tmp_path):
    addr, c = consul
    (tmp_path / "in.ctmpl").write_text('{{ "x" | parseInt }}')
    proc, log = start(addr, tmp_path, "template", "-template", "in.ctmpl:out.txt", "-register-service", "web-ct2")
    assert proc.wait(60) == 14, log.read_text()
    check = wait_until(status_is(c, "web-ct2", "critical", "meshctl template stopped"), what="the reason left",
                       log=log)
    assert "parseInt" in check["Output"]


def test_registrator_with_unreachable_docker_is_critical(consul, tmp_path):
    addr, c = consul
    proc, log = start(addr, tmp_path, "registrator", "-register-service", "reg-self", "-source",
                      f"docker=unix://{tmp_path}/no-docker.sock", f"consul://{addr}")
    try:
        check = wait_until(status_is(c, "reg-self", "critical", "cannot reach Docker"), what="critical", log=log)
        assert "no-docker.sock" in check["Output"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert check_of(c, "reg-self") is None
    finally:
        proc.kill()
        proc.wait()


def test_lock_holder_reports_passing_and_deregisters_when_done(consul, tmp_path):
    addr, c = consul
    flag = tmp_path / "release"
    proc, log = start(addr, tmp_path, "lock", "-register-service", "cron-job", "jobs/nightly",
                      f"while [ ! -e {flag} ]; do sleep 0.1; done")
    try:
        wait_until(status_is(c, "cron-job", "passing"), what="passing", log=log)
        wait_until(lambda: "holding the lock at jobs/nightly" in (agent_check(c, "cron-job") or {}).get("Output", ""),
                   what="the holder's output", log=log)
        flag.write_text("")
        assert proc.wait(30) == 0
        assert check_of(c, "cron-job") is None
    finally:
        proc.kill()
        proc.wait()
