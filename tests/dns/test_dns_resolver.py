"""The DNS resolver over a catalog built in memory: names, records, health filtering, limits, cache."""

from __future__ import annotations

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from meshctl.server.dns import FORWARD, DNSConfig, Resolver
from meshctl.server.state import State


def register(state: State, node: str, address: str, service: str | None = None, port: int = 0,
             status: str = "passing", tags: list[str] | None = None, svc_address: str = "",
             meta: dict[str, str] | None = None, sid: str | None = None) -> None:
    cmd = {"Op": "register", "Node": node, "Address": address, "NodeMeta": meta or {},
           "Checks": [{"CheckID": "serfHealth", "Status": "passing"}]}
    state.apply(cmd)
    if service:
        sid = sid or f"{service}-{node}"
        state.apply({"Op": "register", "Node": node, "Address": address, "SkipNodeUpdate": True,
                     "Service": {"ID": sid, "Service": service, "Port": port, "Tags": tags or [],
                                 "Address": svc_address},
                     "Checks": [{"CheckID": f"check:{sid}", "ServiceID": sid, "Status": status}]})


@pytest.fixture
def state() -> State:
    s = State()
    register(s, "n1", "127.0.0.1", "web", 8001, tags=["v1", "primary"], meta={"rack": "a", "rfc1035-x": "raw"})
    register(s, "n2", "127.0.0.2", "web", 8002, tags=["v1"])
    register(s, "n3", "127.0.0.3", "web", 8003, status="critical")
    register(s, "n4", "127.0.0.4", "web", 8004, status="warning", tags=["v2"])
    return s


def ask(resolver: Resolver, name: str, qtype: str = "A", transport: str = "udp", edns: int | None = None) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(EDNS0(udp_len=edns))
    out = resolver.answer(q.pack(), transport)
    assert out, f"no answer for {name}"
    reply = DNSRecord.parse(out)
    assert reply.header.id == q.header.id
    return reply


def addresses(reply: DNSRecord) -> set[str]:
    return {str(rr.rdata) for rr in reply.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA)}


def test_a_answers_passing_and_warning_instances_not_critical(state):
    reply = ask(Resolver(lambda: state), "web.service.consul")
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa
    assert addresses(reply) == {"127.0.0.1", "127.0.0.2", "127.0.0.4"}


def test_only_passing_drops_warning_instances(state):
    reply = ask(Resolver(lambda: state, DNSConfig(only_passing=True)), "web.service.consul")
    assert addresses(reply) == {"127.0.0.1", "127.0.0.2"}


def test_srv_gives_ports_node_targets_and_additional_addresses(state):
    reply = ask(Resolver(lambda: state), "web.service.consul", "SRV")
    srv = {(r.rdata.port, str(r.rdata.target), r.rdata.priority) for r in reply.rr}
    assert srv == {(8001, "n1.node.dc1.consul.", 1), (8002, "n2.node.dc1.consul.", 1),
                   (8004, "n4.node.dc1.consul.", 1)}
    extra = {(str(r.rname), str(r.rdata)) for r in reply.ar if r.rtype == QTYPE.A}
    assert ("n1.node.dc1.consul.", "127.0.0.1") in extra


def test_srv_target_is_addr_name_when_service_has_its_own_address():
    s = State()
    register(s, "n1", "127.0.0.1", "db", 5432, svc_address="127.0.0.9")
    reply = ask(Resolver(lambda: s), "db.service.consul", "SRV")
    assert str(reply.rr[0].rdata.target) == "7f000009.addr.dc1.consul."
    assert [str(r.rdata) for r in reply.ar if r.rtype == QTYPE.A] == ["127.0.0.9"]


def test_rfc2782_and_tag_forms(state):
    r = Resolver(lambda: state)
    assert {rr.rdata.port for rr in ask(r, "_web._tcp.service.consul", "SRV").rr} == {8001, 8002, 8004}
    assert {rr.rdata.port for rr in ask(r, "_web._v1.service.consul", "SRV").rr} == {8001, 8002}
    assert {rr.rdata.port for rr in ask(r, "_web._v2.consul", "SRV").rr} == {8004}
    assert addresses(ask(r, "primary.web.service.consul")) == {"127.0.0.1"}
    assert addresses(ask(r, "web.service.dc1.consul")) == {"127.0.0.1", "127.0.0.2", "127.0.0.4"}


def test_names_are_case_insensitive(state):
    reply = ask(Resolver(lambda: state), "WeB.SeRvIcE.CoNsUl")
    assert addresses(reply) == {"127.0.0.1", "127.0.0.2", "127.0.0.4"}
    assert str(reply.q.qname) == "WeB.SeRvIcE.CoNsUl."


def test_unknown_or_unhealthy_service_is_nxdomain_with_soa(state):
    r = Resolver(lambda: state)
    register(state, "n5", "127.0.0.5", "down", 1, status="critical")
    for name in ("nope.service.consul", "down.service.consul", "v9.web.service.consul", "web.service.dc2.consul"):
        reply = ask(r, name)
        assert reply.header.rcode == RCODE.NXDOMAIN, name
        assert reply.auth[0].rtype == QTYPE.SOA and str(reply.auth[0].rname) == "consul."
        assert str(reply.auth[0].rdata.mname) == "ns.consul."


def test_known_name_without_records_of_type_is_nodata_with_soa(state):
    reply = ask(Resolver(lambda: state), "web.service.consul", "MX")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr and reply.auth[0].rtype == QTYPE.SOA


def test_node_lookup_gives_address_and_meta_txt(state):
    r = Resolver(lambda: state)
    assert addresses(ask(r, "n1.node.consul")) == {"127.0.0.1"}
    txt = {str(rr.rdata) for rr in ask(r, "n1.node.dc1.consul", "TXT").rr}
    assert txt == {'"rack=a"', '"raw"'}
    assert ask(r, "missing.node.consul").header.rcode == RCODE.NXDOMAIN


def test_addr_and_ptr_lookups(state):
    r = Resolver(lambda: state)
    assert addresses(ask(r, "7f000002.addr.consul")) == {"127.0.0.2"}
    assert addresses(ask(r, "00000000000000000000000000000001.addr.consul", "AAAA")) == {"::1"}
    ptr = ask(r, "2.0.0.127.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in ptr.rr] == ["n2.node.dc1.consul."]


def test_soa_at_the_domain_apex(state):
    reply = ask(Resolver(lambda: state), "consul", "SOA")
    assert reply.rr[0].rtype == QTYPE.SOA and str(reply.rr[0].rdata.rname) == "hostmaster.consul."


def test_service_ttl_per_service_with_wildcards(state):
    cfg = DNSConfig(service_ttl={"w*": 7, "*": 3}, node_ttl=11)
    r = Resolver(lambda: state, cfg)
    assert {rr.ttl for rr in ask(r, "web.service.consul").rr} == {7}
    assert ask(r, "n1.node.consul").rr[0].ttl == 11


def test_custom_domain(state):
    r = Resolver(lambda: state, DNSConfig(domain="mesh.local"))
    assert addresses(ask(r, "web.service.mesh.local")) == {"127.0.0.1", "127.0.0.2", "127.0.0.4"}
    assert ask(r, "web.service.consul").header.rcode == RCODE.REFUSED


def test_names_outside_the_domain_go_to_recursors_when_configured(state):
    q = DNSRecord.question("example.com", "A").pack()
    assert Resolver(lambda: state, DNSConfig(recursors=["127.0.0.1:5353"])).answer(q) == FORWARD
    assert DNSRecord.parse(Resolver(lambda: state).answer(q)).header.rcode == RCODE.REFUSED


def test_udp_answers_cut_to_limit_with_tc_and_tcp_answers_in_full():
    s = State()
    for i in range(6):
        register(s, f"n{i}", f"127.0.1.{i}", "big", 9000 + i)
    r = Resolver(lambda: s)
    udp = ask(r, "big.service.consul")
    assert len(udp.rr) == 3 and udp.header.tc
    tcp = ask(r, "big.service.consul", transport="tcp")
    assert len(tcp.rr) == 6 and not tcp.header.tc
    edns = ask(r, "big.service.consul", edns=4096)
    assert len(edns.rr) == 6 and not edns.header.tc


def test_udp_answers_are_trimmed_to_512_bytes():
    s = State()
    for i in range(40):
        register(s, f"node-with-a-rather-long-name-{i:02d}", f"127.0.2.{i}", "wide", 9000 + i)
    reply = ask(Resolver(lambda: s, DNSConfig(udp_answer_limit=8)), "wide.service.consul", "SRV")
    assert reply.header.tc and 0 < len(reply.rr) <= 8
    assert len(reply.pack()) <= 512


def test_answers_come_in_random_order(state):
    r = Resolver(lambda: state)
    orders = {tuple(str(rr.rdata) for rr in ask(r, "web.service.consul").rr) for _ in range(60)}
    assert len(orders) > 1


def test_cached_answers_follow_catalog_changes(state):
    r = Resolver(lambda: state)
    assert addresses(ask(r, "web.service.consul")) == {"127.0.0.1", "127.0.0.2", "127.0.0.4"}
    assert addresses(ask(r, "web.service.consul")) == {"127.0.0.1", "127.0.0.2", "127.0.0.4"}
    assert r.hits >= 1
    state.apply({"Op": "check_update", "Node": "n2", "CheckID": "check:web-n2", "Status": "critical"})
    assert addresses(ask(r, "web.service.consul")) == {"127.0.0.1", "127.0.0.4"}
    state.apply({"Op": "kv", "Verb": "set", "Key": "k", "Value": b"v"})  # KV writes keep the cache
    hits = r.hits
    ask(r, "web.service.consul")
    assert r.hits == hits + 1
