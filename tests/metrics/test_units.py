"""The pieces on their own: interval aggregates as Consul's sink, route labels, redaction, monitor levels."""

from __future__ import annotations

import asyncio
import logging

import pytest

from meshctl.commands.debug import HIDDEN, redact
from meshctl.server import logstream, metrics


def test_json_shows_the_last_finished_interval_with_consuls_aggregates(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(metrics, "_now", lambda: clock[0])
    t = metrics.Telemetry()
    timer = t.timer("consul.test.timer", "a test").child((("kind", "x"),))
    counter = t.counter("consul.test.counter", "a test").child()
    for ms in (1.0, 2.0, 3.0):
        timer.observe(ms)
        counter.inc()
    shown = t.display()  # younger than one interval: the current one
    sample = next(s for s in shown["Samples"] if s["Name"] == "consul.test.timer")
    assert sample["Count"] == 3 and sample["Sum"] == 6.0 and sample["Min"] == 1.0 and sample["Max"] == 3.0
    assert sample["Mean"] == 2.0 and sample["Stddev"] == pytest.approx(1.0) and sample["Labels"] == {"kind": "x"}
    assert sample["Rate"] == pytest.approx(0.6)
    assert next(c for c in shown["Counters"] if c["Name"] == "consul.test.counter")["Count"] == 3
    clock[0] += metrics.INTERVAL  # the next interval: the finished one is shown, new samples are not yet
    timer.observe(50.0)
    shown = t.display()
    sample = next(s for s in shown["Samples"] if s["Name"] == "consul.test.timer")
    assert sample["Count"] == 3 and sample["Max"] == 3.0
    clock[0] += 3 * metrics.INTERVAL  # nothing recorded in the last finished interval: not listed
    assert not [s for s in t.display()["Samples"] if s["Name"] == "consul.test.timer"]
    assert timer.count == 4 and timer.sum == 56.0  # Prometheus keeps the cumulative figures


def test_route_labels_are_consuls() -> None:
    assert metrics.http_path_label("/v1/kv/{key}") == "v1.kv._"
    assert metrics.http_path_label("/v1/agent/service/{id}") == "v1.agent.service._"
    assert metrics.http_path_label("/v1/catalog/services") == "v1.catalog.services"
    assert metrics.prometheus_name("consul.raft.commitTime") == "consul_raft_commitTime"


def test_redaction_hides_tokens_keys_and_private_keys() -> None:
    found: set[str] = set()
    data = {"Config": {"NodeName": "n", "Encrypt": "k3y-value", "ACL": {"Tokens": {"Default": "tok-1"}},
                       "TLS": {"KeyFile": "/etc/tls/key.pem", "CAFile": "/etc/tls/ca.pem"},
                       "Blob": "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----"}}
    clean = redact(data, found)["Config"]
    assert clean["NodeName"] == "n" and clean["TLS"]["CAFile"] == "/etc/tls/ca.pem"
    assert clean["Encrypt"] == clean["ACL"]["Tokens"]["Default"] == clean["TLS"]["KeyFile"] == HIDDEN
    assert clean["Blob"] == HIDDEN
    assert {"k3y-value", "tok-1", "/etc/tls/key.pem"} <= found


def test_log_redaction() -> None:
    text = logstream.redact('GET /v1/kv/x?token=abc123&recurse X-Consul-Token: s3cr3t {"SecretID": "ffff"}')
    assert "abc123" not in text and "s3cr3t" not in text and "ffff" not in text
    assert logstream.parse_level("err") == logging.ERROR and logstream.parse_level("") == logging.INFO
    assert logstream.parse_level("verbose") is None


def test_a_debug_subscriber_lowers_the_root_level_only_while_attached() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setLevel(logging.NOTSET)
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    broadcaster = logstream.LogBroadcaster()
    loop = asyncio.new_event_loop()
    try:
        sub = logstream.Subscriber(loop, logging.DEBUG, as_json=False, buffer=2)
        broadcaster.subscribe(sub)
        assert root.level == logging.DEBUG and handler.level == logging.WARNING  # stderr keeps its level
        for i in range(5):
            logging.getLogger("meshctl.test").debug("line %d", i)
        loop.run_until_complete(asyncio.sleep(0))  # records from off the loop are handed over to it
        assert sub.queue.qsize() == 2 and sub.dropped == 3  # bounded: the rest is dropped, not queued
        first = loop.run_until_complete(sub.next_line())
        assert "Monitor dropped 3 logs during monitor request" in first and "[DEBUG] test: line 0" in first
        broadcaster.unsubscribe(sub)
        assert root.level == logging.WARNING and handler.level == logging.NOTSET
    finally:
        root.removeHandler(handler)
        root.removeHandler(broadcaster)
        root.setLevel(saved_level)
        loop.close()


def test_registrator_collector_reads_each_bridge_and_source() -> None:
    import threading
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry, generate_latest

    from meshctl.commands.registrator import RegistratorCollector

    up = threading.Event()
    up.set()
    runners = [(SimpleNamespace(kind="docker", stats={"registered": 3, "deregistered": 1, "errors": 2}),
                SimpleNamespace(connected=up)),
               (SimpleNamespace(kind="marathon", stats={"registered": 5, "deregistered": 0, "errors": 0}),
                SimpleNamespace())]
    registry = CollectorRegistry()
    registry.register(RegistratorCollector(runners))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert 'meshctl_registrator_registrations_total{source="docker"} 3.0' in text
    assert 'meshctl_registrator_sync_errors_total{source="docker"} 2.0' in text
    assert 'meshctl_registrator_deregistrations_total{source="marathon"} 0.0' in text
    assert 'meshctl_registrator_source_up{source="docker"} 1.0' in text
    up.clear()
    assert 'meshctl_registrator_source_up{source="docker"} 0.0' in generate_latest(registry).decode()
