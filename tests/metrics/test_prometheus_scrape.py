"""A real Prometheus (Debian's `prometheus`) scrapes a dev store and `meshctl template -metrics-addr`.

Skipped when the binary is missing, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import requests
from devserver import free_port, wait_for
from metrics_support import meshctl_env, popen_meshctl

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")


@pytest.fixture
def prometheus_binary() -> str:
    if PROMETHEUS is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the Debian package prometheus is not installed (make system-deps installs it)")
        pytest.skip("prometheus is not installed")
    return PROMETHEUS


def _query(port: int, expr: str) -> list[dict]:
    r = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}, timeout=5)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def _number(port: int, expr: str) -> float | None:
    result = _query(port, expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_agent_and_a_tool(prometheus_binary: str, shared_dev_server, tmp_path: Path) -> None:
    url = shared_dev_server.url
    requests.put(f"{url}/v1/kv/prom-scrape/a", data=b"1", timeout=5)
    tpl = tmp_path / "in.ctmpl"
    tpl.write_text('{{ key "prom-scrape/a" }}\n')
    tool_port, prom_port = free_port(), free_port()
    tool = popen_meshctl("template", "-template", f"{tpl}:{tmp_path / 'out'}", "-metrics-addr",
                         f"127.0.0.1:{tool_port}", env=meshctl_env(shared_dev_server.addr))
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: meshctl-agent
    metrics_path: /v1/agent/metrics
    params:
      format: [prometheus]
    static_configs:
      - targets: ["127.0.0.1:{shared_dev_server.http_port}"]
  - job_name: meshctl-template
    static_configs:
      - targets: ["127.0.0.1:{tool_port}"]
""")
    log = open(tmp_path / "prometheus.log", "w")
    prom = subprocess.Popen([prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        def logs() -> str:
            return (tmp_path / "prometheus.log").read_text()[-3000:]

        wait_for(lambda: _number(prom_port, 'up{job="meshctl-agent"}') == 1, 60, "the agent scraped", log=logs)
        wait_for(lambda: _number(prom_port, 'up{job="meshctl-template"}') == 1, 60, "the tool scraped", log=logs)
        wait_for(lambda: (_number(prom_port, "consul_state_kv_entries") or 0) >= 1, 60, "the KV size")
        assert _number(prom_port, "consul_server_isLeader") == 1
        wait_for(lambda: (_number(prom_port, 'sum(consul_api_http_count{path="v1.kv._"})') or 0) >= 1, 60,
                 "HTTP request counts")
        assert _query(prom_port, 'histogram_quantile(0.9, sum by (le) (consul_api_http_bucket))')
        wait_for(lambda: _number(prom_port, "sum(meshctl_template_renders_total)") == 1, 60, "the tool's renders")
        assert _number(prom_port, "meshctl_template_dependencies") == 1
    finally:
        prom.send_signal(signal.SIGTERM)
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
        tool.send_signal(signal.SIGTERM)
        try:
            tool.wait(20)
        except subprocess.TimeoutExpired:
            tool.kill()
            tool.wait()
