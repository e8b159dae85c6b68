"""The seeds' templates (tests/template/fixtures/seeds, see README there) render unchanged and correctly."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from ctrun import Proc, agent_context, dev_agent, run, wait_until

from meshctl.client import Client
from meshctl.template.brain import Brain
from meshctl.template.dependency import HealthService, Weights
from meshctl.template.template import Template

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
CTMPL = Path(__file__).parent / "fixtures" / "ctmpl"


def register(c: Client, node: str, addr: str, sid: str, name: str, port: int, status: str = "passing") -> None:
    c.catalog.register({"Node": node, "Address": addr,
                        "Service": {"ID": sid, "Service": name, "Port": port},
                        "Check": {"CheckID": f"chk-{sid}", "Name": "c", "Status": status, "ServiceID": sid}})


@pytest.fixture(scope="module")
def consul(tmp_path_factory):
    for server in dev_agent(tmp_path_factory):
        c = Client(server.addr)
        yield server.addr, c
        c.close()


def test_haproxy_seed_with_services_and_keys(consul, tmp_path):
    addr, c = consul
    for k, v in (("service/haproxy/maxconn", "2048"), ("service/haproxy/timeouts/connect", "4000ms"),
                 ("service/haproxy/timeouts/client", "30000ms"), ("service/haproxy/timeouts/server", "30000ms"),
                 ("ports/consul", "8500"), ("ports/app", "80"), ("ports/db", "5432")):
        c.kv.put(k, v)
    register(c, "app-2", "10.0.0.12", "app-2", "app", 8080)
    register(c, "app-1", "10.0.0.11", "app-1", "app", 8080)
    register(c, "db-1", "10.0.0.21", "db-1", "db", 5432, status="critical")
    r = run(addr, "-template", f"{SEEDS / 'haproxy.ctmpl'}:haproxy.cfg", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "haproxy.cfg").read_text() == (
        "global\n    maxconn 2048\n    debug\n\n"
        "defaults\n    mode http\n    timeout connect 4000ms\n    timeout client 30000ms\n"
        "    timeout server 30000ms\n"
        "\nfrontend app\n    bind *:80\n    server app-1 10.0.0.11:8080\n    server app-2 10.0.0.12:8080\n"
        "\nfrontend consul\n    bind *:8500\n    server devnode 127.0.0.1:8300\n"
        "\nfrontend db\n    bind *:5432\n"
        "\n")


def test_zookeeper_ensemble_seed(consul, tmp_path):
    addr, c = consul
    register(c, "zk1", "10.0.1.1", "mesos-zk:zkid-1", "zookeeper", 2181)
    register(c, "zk2", "10.0.1.2", "mesos-zk:zkid-2", "zookeeper", 2181, status="warning")
    register(c, "zk3", "10.0.1.3", "mesos-zk:zkid-3", "zookeeper", 2181, status="critical")
    r = run(addr, "-template", f"{SEEDS / 'zookeeper.ctmpl'}:zk.env", "-once", cwd=tmp_path,
            CONSUL_QUERY="zookeeper")
    assert r.returncode == 0, r.stderr
    block = "\nZK_HOSTS[{n}]=10.0.1.{n}\nZK_CLIENT_PORTS[{n}]=2181\nZK_PEER_PORTS[{n}]=2888\nZK_ELECTION_PORTS[{n}]=3888\n"
    assert (tmp_path / "zk.env").read_text() == block.format(n=1) + block.format(n=2) + "\n"


def test_web_at_datacenter_seed(tmp_path_factory, tmp_path):
    with agent_context(tmp_path_factory, datacenter="datacenter") as server:
        with Client(server.addr) as c:
            register(c, "nyc_web_01", "10.1.1.10", "web-01", "web", 8080)
            register(c, "nyc_web_02", "10.1.1.11", "web-02", "web", 8080)
        r = run(server.addr, "-template", f"{SEEDS / 'web-datacenter.ctmpl'}:web.conf", "-once", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "web.conf").read_text() == "\nserver web 10.1.1.10:8080\nserver web 10.1.1.11:8080\n"


def test_demo_seed_dry_follows_health(tmp_path_factory, tmp_path):
    """Seed 004's demo: `consul-template -template="example.ctmpl" -dry`, then a web server stops."""
    with agent_context(tmp_path_factory) as server:
        c = Client(server.addr)
        for i in range(3):
            register(c, f"web-{i}", "127.0.0.1", f"web-{i}", "web", 80)
        p = Proc(server.addr, "-template", str(SEEDS / "example.ctmpl"), "-dry", cwd=tmp_path)
        try:
            all3 = ("> \nlisten http-in\n    bind *:8000\n    server web-0 127.0.0.1:80\n"
                    "    server web-1 127.0.0.1:80\n    server web-2 127.0.0.1:80")
            without0 = ("> \nlisten http-in\n    bind *:8000\n    server web-1 127.0.0.1:80\n"
                        "    server web-2 127.0.0.1:80")
            wait_until(lambda: all3 in p.output(), proc=p, what="first dry render")
            register(c, "web-0", "127.0.0.1", "web-0", "web", 80, status="critical")  # sudo stop webserver
            wait_until(lambda: without0 in p.output(), proc=p, what="web-0 gone")
            register(c, "web-0", "127.0.0.1", "web-0", "web", 80)  # sudo start webserver
            wait_until(lambda: p.output().count(all3) == 2, proc=p, what="web-0 back")
            assert list(tmp_path.glob("*.cfg")) == []
            p.signal(signal.SIGTERM)
            assert p.wait(15) == 0
        finally:
            p.stop()
            c.close()


def test_consul_templates_own_haproxy_fixture():
    """consul-template's 2014 test: one service `consul` at 127.0.0.1:8500 in nyc1.

    The saved .expected lacks one newline: the template has `{{range ...}}` alone on a line after
    `backend app`, and Go's text/template keeps that line's newline (no `{{- ` trim), so Go renders
    `backend app\n\n    server ...`. Everything else must match byte for byte.
    """
    text = (CTMPL / "hashicorp__consul-template__haproxy.cfg.ctmpl").read_text()
    expected = (CTMPL / "hashicorp__consul-template__haproxy.cfg.expected").read_text()
    brain = Brain()
    brain.remember("health.service(consul@nyc1|passing)", [HealthService(
        Node="node1", NodeID="", NodeAddress="127.0.0.1", NodeDatacenter="nyc1", NodeTaggedAddresses={},
        NodeMeta={}, ServiceMeta={}, Address="127.0.0.1", ServiceTaggedAddresses={}, ID="consul", Name="consul",
        Kind="", Tags=[], Checks=[], Status="passing", Port=8500, Weights=Weights())])
    ex = Template("haproxy.cfg.ctmpl", text).execute(brain)
    assert ex.complete
    assert ex.output.decode() == expected.replace("\nbackend app\n", "\nbackend app\n\n", 1)
