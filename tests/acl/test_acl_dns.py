"""DNS answers filtered by the DNS token (-acl-token-dns, or set at runtime via /v1/agent/token/dns)."""

from __future__ import annotations

import socket
import uuid

import pytest
import requests
from devserver import start_dev_server
from dnslib import QTYPE, RCODE, DNSRecord

pytestmark = pytest.mark.integration

ROOT = "root-" + uuid.uuid4().hex
H = {"X-Consul-Token": ROOT}


def ask(port: int, name: str, qtype: str = "A") -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(q.pack(), ("127.0.0.1", port))
        return DNSRecord.parse(s.recv(4096))


def token_for(url: str, rules: str) -> str:
    name = "dns-" + uuid.uuid4().hex[:10]
    requests.put(f"{url}/v1/acl/policy", json={"Name": name, "Rules": rules}, headers=H, timeout=10).raise_for_status()
    r = requests.put(f"{url}/v1/acl/token", json={"Policies": [{"Name": name}]}, headers=H, timeout=10)
    r.raise_for_status()
    return str(r.json()["SecretID"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_dev_server(tmp_path_factory.mktemp("acldns"), "-acl-enabled", "-acl-default-policy", "deny",
                           "-acl-initial-management", ROOT, "-acl-token-dns", "not-a-known-token")
    for node, addr, svc in (("web-node-1", "127.0.0.31", "web-api"), ("web-node-2", "127.0.0.32", "web-api"),
                            ("db-node", "127.0.0.41", "db")):
        r = requests.put(f"{srv.url}/v1/catalog/register", headers=H, timeout=10, json={
            "Node": node, "Address": addr, "Service": {"Service": svc, "ID": f"{svc}-{node}", "Port": 80}})
        r.raise_for_status()
    yield srv
    srv.stop()


def use_dns_token(server, token: str) -> None:
    r = requests.put(f"{server.url}/v1/agent/token/dns", json={"Token": token}, headers=H, timeout=10)
    assert r.status_code == 200, r.text


def addresses(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)


def test_an_unknown_dns_token_answers_nothing(server) -> None:
    use_dns_token(server, "not-a-known-token")
    assert ask(server.dns_port, "web-api.service.consul").header.rcode == RCODE.NXDOMAIN
    assert ask(server.dns_port, "db-node.node.consul").header.rcode == RCODE.NXDOMAIN


@pytest.mark.parametrize("level,form", [(lv, f) for lv in ("read", "write", "deny") for f in ("exact", "prefix")])
def test_service_rule_matrix(server, level: str, form: str) -> None:
    target = "web-api" if form == "exact" else "web-"
    kind = "service" if form == "exact" else "service_prefix"
    use_dns_token(server, token_for(server.url, f'{kind} "{target}" {{ policy = "{level}" }}\n'
                                                'node_prefix "" { policy = "read" }'))
    reply = ask(server.dns_port, "web-api.service.consul")
    if level == "deny":
        assert reply.header.rcode == RCODE.NXDOMAIN
    else:
        assert addresses(reply) == ["127.0.0.31", "127.0.0.32"]
    assert ask(server.dns_port, "db.service.consul").header.rcode == RCODE.NXDOMAIN  # no rule: default deny


@pytest.mark.parametrize("level,form", [(lv, f) for lv in ("read", "deny") for f in ("exact", "prefix")])
def test_node_rule_matrix(server, level: str, form: str) -> None:
    target = "web-node-1" if form == "exact" else "web-node"
    kind = "node" if form == "exact" else "node_prefix"
    use_dns_token(server, token_for(server.url, f'{kind} "{target}" {{ policy = "{level}" }}\n'
                                                'service_prefix "" { policy = "read" }'))
    node_reply = ask(server.dns_port, "web-node-1.node.consul")
    svc_reply = ask(server.dns_port, "web-api.service.consul")
    if level == "deny":
        assert node_reply.header.rcode == RCODE.NXDOMAIN and svc_reply.header.rcode == RCODE.NXDOMAIN
    else:
        assert addresses(node_reply) == ["127.0.0.31"]
        expected = ["127.0.0.31"] if form == "exact" else ["127.0.0.31", "127.0.0.32"]
        assert addresses(svc_reply) == expected  # instances on unreadable nodes are left out
    assert ask(server.dns_port, "db-node.node.consul").header.rcode == RCODE.NXDOMAIN


def test_cached_answers_follow_acl_changes(server) -> None:
    name = "dns-live-" + uuid.uuid4().hex[:6]
    pol = requests.put(f"{server.url}/v1/acl/policy", headers=H, timeout=10, json={
        "Name": name, "Rules": 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }'}).json()
    tok = requests.put(f"{server.url}/v1/acl/token", headers=H, timeout=10,
                       json={"Policies": [{"ID": pol["ID"]}]}).json()
    use_dns_token(server, tok["SecretID"])
    assert addresses(ask(server.dns_port, "db.service.consul")) == ["127.0.0.41"]
    requests.put(f"{server.url}/v1/acl/policy/{pol['ID']}", headers=H, timeout=10,
                 json={"Rules": 'service_prefix "" { policy = "deny" }'}).raise_for_status()
    assert ask(server.dns_port, "db.service.consul").header.rcode == RCODE.NXDOMAIN


def test_prepared_queries_answer_what_the_dns_token_reads(server) -> None:
    r = requests.post(f"{server.url}/v1/query", headers=H, timeout=10,
                      json={"Name": "web-query", "Service": {"Service": "web-api"}})
    assert r.status_code == 200, r.text
    use_dns_token(server, token_for(server.url, 'service "web-api" { policy = "read" }\n'
                                                'node_prefix "" { policy = "read" }'))
    assert addresses(ask(server.dns_port, "web-query.query.consul")) == ["127.0.0.31", "127.0.0.32"]
    use_dns_token(server, token_for(server.url, 'service "db" { policy = "read" }\nnode_prefix "" { policy = "read" }'))
    assert ask(server.dns_port, "web-query.query.consul").header.rcode == RCODE.NXDOMAIN
    use_dns_token(server, "not-a-known-token")
    assert ask(server.dns_port, "web-query.query.consul").header.rcode == RCODE.NXDOMAIN
