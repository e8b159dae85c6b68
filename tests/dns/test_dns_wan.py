"""DNS names of another datacenter: `web.service.dc2.consul` asked of dc1 answers from dc2's catalog.

Two single-server datacenters joined over the WAN, as real processes, asked with dig on dc1's
DNS port; then the resolver alone with another datacenter's data handed to `Remote.finish()`
(the rules local answers follow, no caching). Killing dc2 comes last: its names turn SERVFAIL.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from agent.agent_procs import start_client_agent
from cluster.conftest import Server
from cluster.wan_helpers import joined_datacenters, stop
from dnslib import QTYPE, RCODE, DNSRecord

from meshctl.server.dns import DNSConfig, Remote, Resolver
from meshctl.server.state import State


def dig(port: int, *args: str) -> str:
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=5", "+tries=1", *args],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def register(server: Server, node: str, address: str, service: str, port: int, status: str = "passing") -> None:
    server.put("/v1/catalog/register", json={
        "Node": node, "Address": address, "NodeMeta": {"rack": "r2"},
        "Service": {"ID": f"{service}-{node}", "Service": service, "Port": port},
        "Check": {"CheckID": f"chk-{service}", "ServiceID": f"{service}-{node}", "Status": status},
    }).raise_for_status()


# ---------------------------------------------------------------------- two datacenters, dig


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with joined_datacenters(tmp_path_factory.mktemp("dnswan"), "dc2", "dc1") as servers:
        dc1, dc2 = servers["dc1"], servers["dc2"]
        register(dc2, "n1", "127.0.0.11", "web", 8081)
        register(dc2, "n2", "127.0.0.12", "web", 8082)
        register(dc2, "n3", "127.0.0.13", "web", 8083, status="critical")
        for i in range(4, 9):
            register(dc2, f"n{i}", f"127.0.0.{10 + i}", "many", 9000 + i)
        register(dc1, "local-1", "127.0.0.99", "web", 80)
        yield servers


@pytest.mark.integration
def test_a_records_of_a_service_in_another_datacenter(dcs: dict[str, Server]) -> None:
    port = dcs["dc1"].dns_port
    # n3's instance is critical: filtered as a local one would be
    assert sorted(dig(port, "web.service.dc2.consul", "+short").split()) == ["127.0.0.11", "127.0.0.12"]
    assert dig(port, "web.service.consul", "+short").split() == ["127.0.0.99"]  # ours, unchanged
    assert dig(port, "web.service.dc1.consul", "+short").split() == ["127.0.0.99"]
    full = dig(port, "WEB.service.DC2.consul")
    assert "status: NOERROR" in full and "flags: qr aa rd" in full


@pytest.mark.integration
def test_srv_answer_targets_the_other_datacenters_node_names(dcs: dict[str, Server]) -> None:
    port = dcs["dc1"].dns_port
    short = dig(port, "_web._tcp.service.dc2.consul", "SRV", "+short")
    assert sorted(short.strip().splitlines()) == ["1 1 8081 n1.node.dc2.consul.", "1 1 8082 n2.node.dc2.consul."]
    full = dig(port, "web.service.dc2.consul", "SRV")
    assert "n1.node.dc2.consul.\t0\tIN\tA\t127.0.0.11" in full
    assert 'n1.node.dc2.consul.\t0\tIN\tTXT\t"rack=r2"' in full


@pytest.mark.integration
def test_node_lookup_in_another_datacenter(dcs: dict[str, Server]) -> None:
    port = dcs["dc1"].dns_port
    assert dig(port, "n1.node.dc2.consul", "+short").split() == ["127.0.0.11"]
    assert dig(port, "n1.node.dc2.consul", "TXT", "+short").split() == ['"rack=r2"']
    assert "status: NXDOMAIN" in dig(port, "nobody.node.dc2.consul")
    assert "status: NXDOMAIN" in dig(port, "n1.node.consul")  # dc1 has no n1


@pytest.mark.integration
def test_udp_limit_and_truncation_apply_to_remote_answers(dcs: dict[str, Server]) -> None:
    port = dcs["dc1"].dns_port
    udp = dig(port, "many.service.dc2.consul", "+noedns", "+ignore")
    assert "ANSWER: 3," in udp and " tc" in udp.split("flags:")[1].split(";")[0]
    assert len(dig(port, "many.service.dc2.consul", "+short", "+noedns").split()) == 5  # dig retried over TCP


@pytest.mark.integration
def test_remote_answers_are_not_cached(dcs: dict[str, Server]) -> None:
    port = dcs["dc1"].dns_port
    assert dig(port, "fresh.service.dc2.consul", "+short").split() == []
    register(dcs["dc2"], "n9", "127.0.0.19", "fresh", 7000)
    assert dig(port, "fresh.service.dc2.consul", "+short").split() == ["127.0.0.19"]
    requests.put(dcs["dc2"].url + "/v1/catalog/deregister", json={"Node": "n9"}, timeout=5).raise_for_status()
    assert "status: NXDOMAIN" in dig(port, "fresh.service.dc2.consul")


@pytest.mark.integration
def test_a_client_agent_forwards_remote_names_to_its_server(dcs: dict[str, Server], tmp_path: Path) -> None:
    client = start_client_agent(tmp_path, f"127.0.0.1:{dcs['dc1'].serf_port}", node="dns-wan-client")
    try:
        assert sorted(dig(client.dns_port, "web.service.dc2.consul", "+short").split()) == ["127.0.0.11", "127.0.0.12"]
    finally:
        client.stop()


@pytest.mark.integration
def test_unknown_datacenter_is_nxdomain(dcs: dict[str, Server]) -> None:
    out = dig(dcs["dc1"].dns_port, "web.service.dc9.consul")
    assert "status: NXDOMAIN" in out and "SOA\tns.consul. hostmaster.consul." in out


@pytest.mark.integration
def test_zz_a_datacenter_that_is_down_answers_servfail_quickly(dcs: dict[str, Server]) -> None:
    """Last in this module: dc2 is killed."""
    port = dcs["dc1"].dns_port
    stop(dcs["dc2"])
    for name in ("web.service.dc2.consul", "n1.node.dc2.consul"):
        started = time.monotonic()
        out = dig(port, name)
        assert "status: SERVFAIL" in out, out
        assert time.monotonic() - started < 2
    assert dig(port, "web.service.consul", "+short").split() == ["127.0.0.99"]  # local names still answer
    assert "status: NXDOMAIN" in dig(port, "web.service.dc9.consul")


# ---------------------------------------------------------------------- the resolver alone


def health_entry(node: str, address: str, service: str, port: int, status: str = "passing",
                 tags: list[str] | None = None) -> dict[str, Any]:
    """One /v1/health/service entry, as a server of another datacenter sends it."""
    return {"Node": {"Node": node, "Address": address, "Meta": {}, "Datacenter": "dc2"},
            "Service": {"ID": f"{service}-{node}", "Service": service, "Port": port, "Address": "",
                        "Tags": tags or [], "Weights": {"Passing": 1, "Warning": 1}},
            "Checks": [{"CheckID": "serfHealth", "ServiceID": "", "Status": "passing"},
                       {"CheckID": f"chk-{node}", "ServiceID": f"{service}-{node}", "Status": status}]}


@pytest.fixture
def resolver() -> Resolver:
    state = State("dc1")
    r = Resolver(lambda: state, DNSConfig())
    r.find_datacenter = lambda label: "dc2" if label == "dc2" else None
    return r


def remote(resolver: Resolver, name: str, qtype: str = "A", transport: str = "udp") -> Remote:
    out = resolver.answer(DNSRecord.question(name, qtype).pack(), transport)
    assert isinstance(out, Remote), out
    return out


def finished(pending: Remote, body: Any) -> DNSRecord:
    out = pending.finish(body)
    assert isinstance(out, bytes)
    return DNSRecord.parse(out)


def test_remote_names_ask_the_other_datacenters_http_api(resolver: Resolver) -> None:
    assert remote(resolver, "blue.web.service.dc2.consul").path == "/v1/health/service/web?dc=dc2&stale"
    assert remote(resolver, "_web._blue.dc2.consul", "SRV").path == "/v1/health/service/web?dc=dc2&stale"
    assert remote(resolver, "Node-A.node.dc2.consul").path == "/v1/catalog/node/Node-A?dc=dc2&stale"
    # the same query twice: asked twice (nothing cached)
    assert isinstance(resolver.answer(DNSRecord.question("web.service.dc2.consul").pack()), Remote)
    assert isinstance(resolver.answer(DNSRecord.question("web.service.dc2.consul").pack()), Remote)
    addr = resolver.answer(DNSRecord.question("7f000001.addr.dc2.consul").pack())
    assert isinstance(addr, bytes) and str(DNSRecord.parse(addr).rr[0].rdata) == "127.0.0.1"


def test_unknown_datacenter_or_no_wan_is_nxdomain(resolver: Resolver) -> None:
    out = resolver.answer(DNSRecord.question("web.service.dc3.consul").pack())
    assert isinstance(out, bytes) and DNSRecord.parse(out).header.rcode == RCODE.NXDOMAIN
    resolver.find_datacenter = None
    out = resolver.answer(DNSRecord.question("web.service.dc2.consul").pack())
    assert isinstance(out, bytes) and DNSRecord.parse(out).header.rcode == RCODE.NXDOMAIN


def test_remote_data_follows_the_local_rules(resolver: Resolver) -> None:
    entries = [health_entry("a", "127.0.1.1", "web", 80, tags=["Blue"]),
               health_entry("b", "127.0.1.2", "web", 81, status="warning"),
               health_entry("c", "127.0.1.3", "web", 82, status="critical"),
               health_entry("d", "127.0.1.4", "web", 83),
               health_entry("e", "127.0.1.5", "web", 84)]
    got = finished(remote(resolver, "web.service.dc2.consul"), entries)
    assert got.header.tc and len(got.rr) == 3  # udp_answer_limit, then TC
    assert {str(r.rdata) for r in got.rr} <= {"127.0.1.1", "127.0.1.2", "127.0.1.4", "127.0.1.5"}
    tcp = remote(resolver, "web.service.dc2.consul", transport="tcp")
    assert sorted(str(r.rdata) for r in finished(tcp, entries).rr) == ["127.0.1.1", "127.0.1.2", "127.0.1.4", "127.0.1.5"]
    assert [str(r.rdata) for r in finished(remote(resolver, "blue.web.service.dc2.consul"), entries).rr] == ["127.0.1.1"]
    srv = finished(remote(resolver, "_web._blue.service.dc2.consul", "SRV"), entries)
    assert [str(r.rdata) for r in srv.rr] == ["1 1 80 a.node.dc2.consul."]
    assert [(str(r.rname), QTYPE[r.rtype]) for r in srv.ar] == [("a.node.dc2.consul.", "A")]
    resolver.config.only_passing = True
    srv = finished(remote(resolver, "_web._tcp.service.dc2.consul", "SRV"), entries[:3])
    assert [str(r.rdata) for r in srv.rr] == ["1 1 80 a.node.dc2.consul."]
    nothing = finished(remote(resolver, "web.service.dc2.consul"), [])
    assert nothing.header.rcode == RCODE.NXDOMAIN and nothing.auth


def test_remote_node_answer_and_failure(resolver: Resolver) -> None:
    pending = remote(resolver, "node-a.node.dc2.consul", "ANY")
    got = finished(pending, {"Node": {"Node": "Node-A", "Address": "127.0.1.1", "Meta": {"k": "v"}}, "Services": {}})
    assert [(QTYPE[r.rtype], str(r.rdata)) for r in got.rr] == [("A", "127.0.1.1"), ("TXT", '"k=v"')]
    assert finished(pending, None).header.rcode == RCODE.NXDOMAIN  # dc2 does not know the node
    failed = DNSRecord.parse(pending.fail())
    assert failed.header.rcode == RCODE.SERVFAIL and failed.header.aa and not failed.rr


def test_acl_filter_applies_to_remote_instances(resolver: Resolver) -> None:
    resolver.acl_check = lambda resource, name: not (resource == "node" and name == "b")
    entries = [health_entry("a", "127.0.1.1", "web", 80), health_entry("b", "127.0.1.2", "web", 81)]
    assert [str(r.rdata) for r in finished(remote(resolver, "web.service.dc2.consul"), entries).rr] == ["127.0.1.1"]
