"""Hostname addresses: CNAME plus the target's records, from the catalog or from the recursors.

The resolver alone (Pending answers, caps, loops, cuts) and a real agent asked with dig, its
recursor a double on 127.0.0.1 that answers, stays silent, or is gone.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests
from devserver import start_dev_server
from dnslib import AAAA, EDNS0, QTYPE, RCODE, RR, A, DNSRecord
from recursor_double import Recursor

from meshctl.server.dns import DNSConfig, Pending, Resolver
from meshctl.server.state import State

RECURSOR_TIMEOUT = 0.3


# ---------------------------------------------------------------------- the resolver alone


def put(state: State, node: str, address: str, service: str, port: int, svc_address: str = "") -> None:
    state.apply({"Op": "register", "Node": node, "Address": address, "NodeMeta": {},
                 "Service": {"ID": f"{service}-{node}", "Service": service, "Port": port, "Tags": [],
                             "Address": svc_address},
                 "Checks": [{"CheckID": f"check:{service}-{node}", "ServiceID": f"{service}-{node}",
                             "Status": "passing"}]})


def query(name: str, qtype: str = "A", edns: int | None = None) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(EDNS0(udp_len=edns))
    return q


def ask(resolver: Resolver, name: str, qtype: str = "A", transport: str = "udp",
        edns: int | None = None) -> DNSRecord:
    out = resolver.answer(query(name, qtype, edns).pack(), transport)
    assert isinstance(out, bytes) and out, f"no direct answer for {name}: {out!r}"
    return DNSRecord.parse(out)


def rrs(records: list[RR], rtype: int | None = None) -> list[tuple[str, str, str]]:
    return [(str(r.rname), QTYPE[r.rtype], str(r.rdata)) for r in records if rtype is None or r.rtype == rtype]


def recursor_reply(pending: Pending, *addresses: str, ttl: int = 60) -> dict[tuple[str, int], bytes]:
    """What a recursor says to each of the pending queries: these addresses for every name."""
    out = {}
    for key, data in pending.queries.items():
        q = DNSRecord.parse(data)
        reply = q.reply()
        for address in addresses:
            rdata = AAAA(address) if ":" in address else A(address)
            reply.add_answer(RR(q.q.qname, QTYPE.AAAA if ":" in address else QTYPE.A, ttl=ttl, rdata=rdata))
        out[key] = reply.pack()
    return out


@pytest.fixture
def state() -> State:
    s = State()
    put(s, "db-1", "127.0.0.21", "db", 5432)
    put(s, "db-2", "127.0.0.22", "db", 5432)
    put(s, "alias-1", "127.0.0.30", "alias", 5433, svc_address="db.service.consul")
    put(s, "web-1", "127.0.0.40", "web", 80, svc_address="web.example.test")
    return s


def test_internal_target_is_resolved_from_the_catalog(state):
    r = Resolver(lambda: state, DNSConfig(service_ttl={"alias": 9}))
    reply = ask(r, "alias.service.consul")
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.rr[0].rtype == QTYPE.CNAME and str(reply.rr[0].rdata) == "db.service.consul."
    assert sorted(rrs(reply.rr[1:])) == [("db.service.consul.", "A", "127.0.0.21"),
                                         ("db.service.consul.", "A", "127.0.0.22")]
    assert {rr.ttl for rr in reply.rr} == {9}  # the asked service's TTL, as Consul
    srv = ask(r, "alias.service.consul", "SRV")
    assert [str(rr.rdata.target) for rr in srv.rr] == ["db.service.consul."]
    assert sorted(rrs(srv.ar, QTYPE.A)) == [("db.service.consul.", "A", "127.0.0.21"),
                                            ("db.service.consul.", "A", "127.0.0.22")]


def test_external_target_without_recursors_is_the_cname_alone(state):
    reply = ask(Resolver(lambda: state), "web.service.consul")
    assert rrs(reply.rr) == [("web.service.consul.", "CNAME", "web.example.test.")]
    srv = ask(Resolver(lambda: state), "web.service.consul", "SRV")
    assert str(srv.rr[0].rdata.target) == "web.example.test." and not rrs(srv.ar, QTYPE.A)


def test_external_target_waits_for_the_recursors_and_is_never_cached(state):
    r = Resolver(lambda: state, DNSConfig(recursors=["127.0.0.1:1"]))
    q = query("web.service.consul")
    pending = r.answer(q.pack())
    assert isinstance(pending, Pending)
    assert list(pending.queries) == [("web.example.test.", QTYPE.A)]
    asked = DNSRecord.parse(pending.queries[("web.example.test.", QTYPE.A)])
    assert asked.header.rd and str(asked.q.qname) == "web.example.test."
    reply = DNSRecord.parse(pending.finish(recursor_reply(pending, "127.0.0.77", "127.0.0.78")))
    assert reply.header.id == q.header.id and reply.header.aa and reply.header.ra
    assert rrs(reply.rr) == [("web.service.consul.", "CNAME", "web.example.test."),
                             ("web.example.test.", "A", "127.0.0.77"), ("web.example.test.", "A", "127.0.0.78")]
    assert {rr.ttl for rr in reply.rr} == {0}
    # no reply, or one that does not match the query: the CNAME alone, NOERROR
    for replies in ({}, {key: None for key in pending.queries}, {key: b"junk" for key in pending.queries}):
        alone = DNSRecord.parse(pending.finish(replies))
        assert alone.header.rcode == RCODE.NOERROR and len(alone.rr) == 1
    forged = {k: DNSRecord.parse(v) for k, v in recursor_reply(pending, "127.0.0.66").items()}
    for rec in forged.values():
        rec.header.id ^= 1
    assert len(DNSRecord.parse(pending.finish({k: v.pack() for k, v in forged.items()})).rr) == 1
    assert isinstance(r.answer(q.pack()), Pending)  # asked again each time
    assert isinstance(r.answer(query("db.service.consul").pack()), bytes)  # IP answers stay direct


def test_aaaa_queries_ask_the_recursors_for_aaaa(state):
    pending = Resolver(lambda: state, DNSConfig(recursors=["127.0.0.1:1"])).answer(query("web.service.consul", "AAAA").pack())
    assert isinstance(pending, Pending) and list(pending.queries) == [("web.example.test.", QTYPE.AAAA)]
    reply = DNSRecord.parse(pending.finish(recursor_reply(pending, "fd00::77")))
    assert rrs(reply.rr)[1:] == [("web.example.test.", "AAAA", "fd00::77")]


def test_srv_puts_the_recursor_records_in_additional(state):
    pending = Resolver(lambda: state, DNSConfig(recursors=["127.0.0.1:1"])).answer(query("web.service.consul", "SRV").pack())
    assert isinstance(pending, Pending)
    reply = DNSRecord.parse(pending.finish(recursor_reply(pending, "127.0.0.77")))
    assert [(r.rdata.port, str(r.rdata.target)) for r in reply.rr] == [(80, "web.example.test.")]
    assert rrs(reply.ar, QTYPE.A) == [("web.example.test.", "A", "127.0.0.77")]


def test_records_behind_a_cname_are_capped_without_edns(state):
    r = Resolver(lambda: state, DNSConfig(recursors=["127.0.0.1:1"]))
    many = [f"127.0.1.{i}" for i in range(1, 9)]
    plain = r.answer(query("web.service.consul").pack())
    assert isinstance(plain, Pending)
    assert len(DNSRecord.parse(plain.finish(recursor_reply(plain, *many))).rr) == 1 + 5  # Consul's maxRecurseRecords
    edns = r.answer(query("web.service.consul", edns=4096).pack())
    assert isinstance(edns, Pending)
    assert len(DNSRecord.parse(edns.finish(recursor_reply(edns, *many))).rr) == 1 + 8


def test_ip_instances_win_over_hostnames_and_hostnames_answer_one_cname():
    s = State()
    put(s, "n1", "127.0.0.1", "mixed", 1)
    put(s, "n2", "127.0.0.2", "mixed", 2, svc_address="a.example.test")
    put(s, "n3", "127.0.0.3", "hosts", 3, svc_address="a.example.test")
    put(s, "n4", "127.0.0.4", "hosts", 4, svc_address="b.example.test")
    r = Resolver(lambda: s)
    assert rrs(ask(r, "mixed.service.consul").rr) == [("mixed.service.consul.", "A", "127.0.0.1")]
    targets = set()
    for _ in range(40):
        answer = ask(r, "hosts.service.consul").rr
        assert len(answer) == 1 and answer[0].rtype == QTYPE.CNAME
        targets.add(str(answer[0].rdata))
    assert targets == {"a.example.test.", "b.example.test."}  # either chain, at random


def test_cname_loops_and_self_references_end(state):
    put(state, "x-1", "127.0.0.50", "ping", 1, svc_address="pong.service.consul")
    put(state, "y-1", "127.0.0.51", "pong", 1, svc_address="ping.service.consul")
    reply = ask(Resolver(lambda: state), "ping.service.consul")
    assert reply.header.rcode == RCODE.NOERROR and reply.rr[0].rtype == QTYPE.CNAME
    assert len(reply.rr) <= 1 + 3  # followed at most MAX_RECURSION_LEVEL links
    put(state, "z-1", "127.0.0.52", "self", 7, svc_address="self.service.consul")
    assert rrs(ask(Resolver(lambda: state), "self.service.consul").rr) == [("self.service.consul.", "A", "127.0.0.52")]
    srv = ask(Resolver(lambda: state), "self.service.consul", "SRV")
    assert str(srv.rr[0].rdata.target) == "z-1.node.dc1.consul."


def test_node_with_a_hostname_address_resolves_its_cname(state):
    put(state, "ext", "db.service.consul", "other", 1)
    reply = ask(Resolver(lambda: state), "ext.node.consul")
    assert reply.rr[0].rtype == QTYPE.CNAME and str(reply.rr[0].rdata) == "db.service.consul."
    assert sorted(str(rr.rdata) for rr in reply.rr[1:]) == ["127.0.0.21", "127.0.0.22"]
    srv = ask(Resolver(lambda: state), "other.service.consul", "SRV")  # node hostname: the SRV target
    assert str(srv.rr[0].rdata.target) == "db.service.consul."


def test_udp_answer_limit_counts_instances_and_keeps_a_cname_chain_whole():
    s = State()
    for i in range(6):
        put(s, f"n{i}", f"127.0.3.{i}", "big", 9000 + i)
    put(s, "c1", "127.0.4.1", "front", 1, svc_address="big.service.consul")
    r = Resolver(lambda: s, DNSConfig(udp_answer_limit=2))
    big = ask(r, "big.service.consul")
    assert len(big.rr) == 2 and big.header.tc  # instances are still cut to udp_answer_limit
    front = ask(r, "front.service.consul")
    assert front.rr[0].rtype == QTYPE.CNAME and len(front.rr) == 1 + 5 and not front.header.tc
    assert len(ask(r, "front.service.consul", transport="tcp").rr) == 1 + 5  # the cap follows EDNS, as Consul
    assert len(ask(r, "front.service.consul", edns=1232).rr) == 1 + 6


def test_an_oversized_cname_chain_is_shortened_not_dropped(state):
    r = Resolver(lambda: state, DNSConfig(recursors=["127.0.0.1:1"]))
    pending = r.answer(query("web.service.consul", edns=512).pack())
    assert isinstance(pending, Pending)
    long_names = [f"fd00::{i:x}:{i:x}:{i:x}" for i in range(1, 60)]
    out = pending.finish(recursor_reply(pending, *long_names))
    reply = DNSRecord.parse(out)
    assert len(out) <= 512 and reply.header.tc
    assert reply.rr[0].rtype == QTYPE.CNAME and 1 < len(reply.rr) < 60


# ---------------------------------------------------------------------- a real agent, with dig


def dig(port: int, *args: str) -> str:
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=3", "+tries=1", *args],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def section(out: str, name: str) -> list[tuple[str, str, str]]:
    """(owner, type, data) of the records in one section of dig's output."""
    lines = out.split(f";; {name} SECTION:\n", 1)[1].split("\n\n", 1)[0].splitlines() if f";; {name} SECTION:" in out else []
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 5 and not line.startswith(";"):
            rows.append((parts[0], parts[3], " ".join(parts[4:])))
    return rows


def register(url: str, node: str, address: str, service: str, port: int, svc_address: str = "") -> None:
    requests.put(f"{url}/v1/catalog/register", json={
        "Node": node, "Address": address,
        "Service": {"Service": service, "Port": port, "Address": svc_address},
        "Check": {"CheckID": f"chk-{service}", "ServiceID": service, "Status": "passing"}}).raise_for_status()


def agent_with_recursor(tmp_path, recursor: Recursor):
    config = tmp_path / "dns.json"
    config.write_text(json.dumps({"dns_config": {"recursor_timeout": f"{int(RECURSOR_TIMEOUT * 1000)}ms"}}))
    srv = start_dev_server(tmp_path, "-recursor", f"127.0.0.1:{recursor.port}", "-config-file", str(config))
    register(srv.url, "db-1", "127.0.0.21", "db", 5432)
    register(srv.url, "alias-1", "127.0.0.30", "alias", 5433, svc_address="db.service.consul")
    register(srv.url, "web-1", "127.0.0.40", "web", 80, svc_address="web.example.test")
    return srv


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    recursor = Recursor({("web.example.test.", "A"): ["127.0.0.77", "127.0.0.78"]})
    srv = agent_with_recursor(tmp_path_factory.mktemp("cname"), recursor)
    srv.recursor = recursor
    yield srv
    srv.stop()
    recursor.close()


@pytest.fixture(scope="module")
def deaf_server(tmp_path_factory):
    recursor = Recursor(silent=True)
    srv = agent_with_recursor(tmp_path_factory.mktemp("cname-deaf"), recursor)
    srv.recursor = recursor
    yield srv
    srv.stop()
    recursor.close()


@pytest.mark.integration
def test_dig_internal_cname_target_comes_with_its_a_records(server):
    out = dig(server.dns_port, "alias.service.consul")
    assert "status: NOERROR" in out and "flags: qr aa rd ra" in out
    assert section(out, "ANSWER") == [("alias.service.consul.", "CNAME", "db.service.consul."),
                                      ("db.service.consul.", "A", "127.0.0.21")]
    assert not any(name.endswith("consul.") for name, _ in server.recursor.queries)  # resolved here


@pytest.mark.integration
def test_dig_external_cname_target_comes_with_the_recursors_a_records(server):
    for transport in ("+notcp", "+tcp"):
        out = dig(server.dns_port, "web.service.consul", transport)
        assert "status: NOERROR" in out and " aa " in out.split("flags:")[1].split(";")[0] + " "
        answer = section(out, "ANSWER")
        assert answer[0] == ("web.service.consul.", "CNAME", "web.example.test.")
        assert sorted(answer[1:]) == [("web.example.test.", "A", "127.0.0.77"), ("web.example.test.", "A", "127.0.0.78")]
    assert ("web.example.test.", "A") in server.recursor.queries


@pytest.mark.integration
def test_dig_srv_for_hostname_targets_carries_their_a_records(server):
    out = dig(server.dns_port, "web.service.consul", "SRV")
    assert section(out, "ANSWER") == [("web.service.consul.", "SRV", "1 1 80 web.example.test.")]
    assert sorted(r for r in section(out, "ADDITIONAL") if r[1] == "A") == [
        ("web.example.test.", "A", "127.0.0.77"), ("web.example.test.", "A", "127.0.0.78")]
    internal = dig(server.dns_port, "alias.service.consul", "SRV")
    assert section(internal, "ANSWER") == [("alias.service.consul.", "SRV", "1 1 5433 db.service.consul.")]
    assert ("db.service.consul.", "A", "127.0.0.21") in section(internal, "ADDITIONAL")


@pytest.mark.integration
def test_dig_unresolvable_target_answers_the_cname_alone_within_the_recursor_timeout(deaf_server):
    # a recursor that never answers: the CNAME, NOERROR, after one recursor_timeout
    start = time.monotonic()
    out = dig(deaf_server.dns_port, "web.service.consul")
    elapsed = time.monotonic() - start
    assert "status: NOERROR" in out
    assert section(out, "ANSWER") == [("web.service.consul.", "CNAME", "web.example.test.")]
    assert elapsed < RECURSOR_TIMEOUT + 1.2, elapsed  # the default 2s recursor_timeout would not pass
    assert ("web.example.test.", "A") in deaf_server.recursor.queries
    srv = dig(deaf_server.dns_port, "web.service.consul", "SRV")
    assert "status: NOERROR" in srv and section(srv, "ANSWER") == [("web.service.consul.", "SRV", "1 1 80 web.example.test.")]
    # the recursor gone (port closed): refused at once, same answer
    deaf_server.recursor.close()
    start = time.monotonic()
    out = dig(deaf_server.dns_port, "web.service.consul", "+tcp")
    assert time.monotonic() - start < RECURSOR_TIMEOUT + 1.2
    assert "status: NOERROR" in out
    assert section(out, "ANSWER") == [("web.service.consul.", "CNAME", "web.example.test.")]
    # names wholly outside the domain still get SERVFAIL when no recursor answers
    assert "status: SERVFAIL" in dig(deaf_server.dns_port, "elsewhere.example.test")
