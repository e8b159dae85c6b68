"""The DNS port of a real agent, asked with dig and with dnslib over UDP and TCP."""

from __future__ import annotations

import socket
import struct
import subprocess

import pytest
import requests
from devserver import start_dev_server
from dnslib import RCODE, DNSRecord
from recursor_double import Recursor

pytestmark = pytest.mark.integration


def dig(port: int, *args: str) -> str:
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=3", "+tries=2", *args],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def register(url: str, node: str, address: str, service: str, port: int, status: str = "passing") -> None:
    requests.put(f"{url}/v1/catalog/register", json={
        "Node": node, "Address": address, "NodeMeta": {"rack": "r1"},
        "Service": {"Service": service, "Port": port, "Tags": ["blue"]},
        "Check": {"CheckID": f"chk-{service}", "ServiceID": service, "Status": status}}).raise_for_status()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    upstream = Recursor(default=["127.0.0.53"])  # answers every name
    srv = start_dev_server(tmp_path_factory.mktemp("dns"), "-recursor", f"127.0.0.1:{upstream.port}",
                           "-node-meta", "zone:z1")
    for i in range(1, 6):
        register(srv.url, f"web-{i}", f"127.0.0.{10 + i}", "many", 8000 + i)
    register(srv.url, "db-1", "127.0.0.21", "db", 5432)
    register(srv.url, "db-2", "127.0.0.22", "db", 5432, status="critical")
    srv.upstream = upstream
    yield srv
    srv.stop()
    upstream.close()


def test_dig_a_and_srv_for_a_service(server):
    assert dig(server.dns_port, "db.service.consul", "+short").split() == ["127.0.0.21"]
    assert dig(server.dns_port, "db.service.consul", "SRV", "+short").strip() == "1 1 5432 db-1.node.dc1.consul."
    full = dig(server.dns_port, "db.service.consul", "SRV")
    assert "flags: qr aa rd" in full and "db-1.node.dc1.consul.\t0\tIN\tA\t127.0.0.21" in full


def test_dig_falls_back_to_tcp_on_truncation_and_gets_every_instance(server):
    out = dig(server.dns_port, "many.service.consul", "+short", "+noedns")
    assert sorted(out.split()) == [f"127.0.0.{10 + i}" for i in range(1, 6)]
    udp_only = dig(server.dns_port, "many.service.consul", "+noedns", "+ignore")
    assert " tc" in udp_only.split("flags:")[1].split(";")[0] and "ANSWER: 3" in udp_only


def test_dnslib_over_udp_and_tcp(server):
    q = DNSRecord.question("MANY.service.consul", "SRV")
    udp = DNSRecord.parse(q.send("127.0.0.1", server.dns_port, timeout=5))
    assert udp.header.tc and len(udp.rr) == 3
    tcp = DNSRecord.parse(q.send("127.0.0.1", server.dns_port, tcp=True, timeout=5))
    assert not tcp.header.tc and sorted(r.rdata.port for r in tcp.rr) == [8001, 8002, 8003, 8004, 8005]
    # two queries on one TCP connection
    with socket.create_connection(("127.0.0.1", server.dns_port), timeout=5) as s:
        for name in ("db.service.consul", "devnode.node.consul"):
            data = DNSRecord.question(name).pack()
            s.sendall(struct.pack("!H", len(data)) + data)
            length = struct.unpack("!H", s.recv(2))[0]
            buf = b""
            while len(buf) < length:
                buf += s.recv(length - len(buf))
            assert DNSRecord.parse(buf).rr


def test_nxdomain_carries_soa_and_critical_only_service_is_absent(server):
    out = dig(server.dns_port, "nothing-here.service.consul")
    assert "status: NXDOMAIN" in out and "SOA\tns.consul. hostmaster.consul." in out


def test_node_txt_ptr_and_addr(server):
    assert dig(server.dns_port, "devnode.node.consul", "TXT", "+short").strip() == '"zone=z1"'
    assert dig(server.dns_port, "-x", "127.0.0.21", "+short").strip() == "db-1.node.dc1.consul."
    assert dig(server.dns_port, "7f000015.addr.dc1.consul", "+short").strip() == "127.0.0.21"


def test_names_outside_the_domain_go_to_the_recursor(server):
    out = dig(server.dns_port, "www.example.test", "+short")
    assert out.split() == ["127.0.0.53"]
    assert ("www.example.test.", "A") in server.upstream.queries
    q = DNSRecord.question("other.example.test", "A")
    reply = DNSRecord.parse(q.send("127.0.0.1", server.dns_port, tcp=True, timeout=5))
    assert reply.header.rcode == RCODE.SERVFAIL and reply.header.ra  # the double speaks UDP only


def test_health_changes_show_up_at_once_despite_the_cache(server):
    register(server.url, "cache-1", "127.0.0.31", "cached", 1)
    for _ in range(3):
        assert dig(server.dns_port, "cached.service.consul", "+short").split() == ["127.0.0.31"]
    register(server.url, "cache-1", "127.0.0.31", "cached", 1, status="critical")
    assert dig(server.dns_port, "cached.service.consul", "+short").split() == []
