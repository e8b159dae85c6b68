"""Prometheus-style Consul service discovery against a meshctl dev store, with a real scraper.

The scraper runs `consul_sd_configs` (blocking /v1/catalog/services and /v1/health/service/<name>
queries with ?index, ?stale and ?dc, compared by X-Consul-Index) and must follow what the agent
API changes: a TTL check's pass/warn/fail moves `__meta_consul_health`, re-registration moves
tags and service meta, a deregistered instance disappears, and its log shows no SD error.

Scrapers: VictoriaMetrics (Debian's `victoria-metrics`, the same consul_sd_configs; required on
CI) and Prometheus when a `prometheus` with Consul SD is on PATH (Debian builds Prometheus
without Consul SD, so that variant skips there). VictoriaMetrics keeps a target's first
discovered labels until its final labels change, so the config copies the labels under test
into target labels (what a dashboard would use anyway) and the test reads those.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from devserver import DevServer, free_port, start_dev_server
from realprograms import Child, eventually, require, tail

pytestmark = pytest.mark.integration

BOUND = 60.0  # seconds: generous for a loaded CI machine (the quiet-machine figure is 2 s)


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"# TYPE demo_up gauge\ndemo_up 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def metrics_ports() -> Iterator[list[int]]:
    """Two tiny /metrics endpoints, one per service instance, so scrapes succeed."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Metrics) for _ in range(2)]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield [srv.server_address[1] for srv in servers]
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DevServer]:
    server = start_dev_server(tmp_path, node="sd-node")
    yield server
    server.stop()


def scrape_config(consul_addr: str, prometheus: bool) -> str:
    sd: dict[str, Any] = {"server": consul_addr}
    if prometheus:
        sd["refresh_interval"] = "1s"
    relabel = [
        {"source_labels": ["__meta_consul_service"], "regex": "web", "action": "keep"},
        {"source_labels": ["__meta_consul_service_id"], "target_label": "sid"},
        {"source_labels": ["__meta_consul_health"], "target_label": "health"},
        {"source_labels": ["__meta_consul_tags"], "target_label": "tags"},
        {"source_labels": ["__meta_consul_service_metadata_version"], "target_label": "version"},
    ]
    job = {"job_name": "meshctl-sd", "scrape_interval": "2s", "scrape_timeout": "1s",
           "consul_sd_configs": [sd], "relabel_configs": relabel}
    return json.dumps({"scrape_configs": [job]})  # YAML is a superset of JSON


def start_scraper(kind: str, tmp_path: Path, consul_addr: str) -> tuple[Child, str]:
    port = free_port()
    config = tmp_path / f"{kind}.yml"
    config.write_text(scrape_config(consul_addr, kind == "prometheus"))
    if kind == "victoria-metrics":
        binary = require("victoria-metrics", "victoria-metrics")
        cmd = [binary, f"-promscrape.config={config}", f"-httpListenAddr=127.0.0.1:{port}",
               f"-storageDataPath={tmp_path / 'vm-data'}", "-promscrape.consulSDCheckInterval=1s",
               "-retentionPeriod=1d"]
    else:
        binary = shutil.which("prometheus") or "prometheus"
        cmd = [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
               f"--storage.tsdb.path={tmp_path / 'prom-data'}"]
    child = Child(kind, cmd, tmp_path / f"{kind}.log", cwd=tmp_path).start()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not child.alive:
            return True  # checked just below
        return requests.get(f"{url}/api/v1/targets", timeout=2).status_code == 200

    eventually(ready, BOUND, f"{kind} to serve its API", lambda: tail(child.log()))
    if not child.alive:
        log = child.log()
        if kind == "prometheus" and "consul_sd_configs not found" in log:
            pytest.skip("this Prometheus is built without Consul service discovery (Debian's is)")
        raise AssertionError(f"{kind} exited:\n{tail(log)}")
    return child, url


def web_targets(url: str) -> dict[str, dict[str, str]]:
    """The scraper's active `web` targets: service ID -> target labels (+ discovered health)."""
    data = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    out = {}
    for target in data:
        labels = dict(target["labels"])
        if "sid" in labels:
            out[labels["sid"]] = labels
    return out


def register(store: DevServer, sid: str, port: int, tags: list[str], meta: dict[str, str]) -> None:
    body = {"ID": sid, "Name": "web", "Address": "127.0.0.1", "Port": port, "Tags": tags, "Meta": meta,
            "Check": {"CheckID": f"{sid}-ttl", "TTL": "300s", "Status": "passing"}}
    r = requests.put(f"{store.url}/v1/agent/service/register", json=body, timeout=5)
    assert r.status_code == 200, r.text


def sd_errors(kind: str, log: str) -> list[str]:
    """Lines of the scraper's log that report a failed Consul discovery."""
    if kind == "victoria-metrics":
        pattern = re.compile(r"\t(error|warn)\t.*(consul|discovery)", re.IGNORECASE)
    else:
        pattern = re.compile(r"level=(error|warn).*(consul|discovery)", re.IGNORECASE)
    return [line for line in log.splitlines() if pattern.search(line)]


@pytest.mark.parametrize("kind", ["victoria-metrics", "prometheus"])
def test_consul_sd_follows_health_tags_meta_and_deregistration(kind: str, tmp_path: Path, store: DevServer,
                                                                metrics_ports: list[int]) -> None:
    if kind == "prometheus" and shutil.which("prometheus") is None:
        pytest.skip("no prometheus on PATH (Debian's package is built without Consul SD, so CI does not install it)")
    register(store, "web1", metrics_ports[0], ["v1"], {"version": "1"})
    register(store, "web2", metrics_ports[1], ["v1"], {"version": "1"})
    scraper, url = start_scraper(kind, tmp_path, store.addr)
    try:
        def diag() -> str:
            return f"{kind} log:\n{tail(scraper.log())}\ntargets: {web_targets(url)}"

        def labels_are(sid: str, **want: str) -> bool:
            got = web_targets(url).get(sid)
            return got is not None and all(got.get(k) == v for k, v in want.items())

        eventually(lambda: labels_are("web1", health="passing", tags=",v1,", version="1")
                   and labels_are("web2", health="passing"), BOUND, "both instances, passing", diag)

        # a TTL check's status moves the instance's health label, each way
        for verb, status in (("fail", "critical"), ("warn", "warning"), ("pass", "passing")):
            r = requests.put(f"{store.url}/v1/agent/check/{verb}/web1-ttl", timeout=5)
            assert r.status_code == 200, r.text
            eventually(lambda s=status: labels_are("web1", health=s), BOUND, f"web1 {status} after {verb}", diag)
            assert labels_are("web2", health="passing")

        # re-registration with new tags and meta moves the labels
        register(store, "web1", metrics_ports[0], ["v2", "canary"], {"version": "2"})
        eventually(lambda: labels_are("web1", tags=",v2,canary,", version="2", health="passing"), BOUND,
                   "web1's new tags and meta", diag)

        # a deregistered instance disappears; the other stays
        r = requests.put(f"{store.url}/v1/agent/service/deregister/web2", timeout=5)
        assert r.status_code == 200, r.text
        eventually(lambda: set(web_targets(url)) == {"web1"}, BOUND, "web2 to disappear", diag)

        # the targets are scraped for real
        eventually(lambda: requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"][0]
                   ["health"] == "up", BOUND, "web1 scraped", diag)
        assert scraper.alive, diag()
        assert sd_errors(kind, scraper.log()) == [], diag()
    finally:
        scraper.stop()

