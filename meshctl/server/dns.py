"""Consul's DNS interface over the catalog: name parsing, answers, truncation, answer cache.

Pure over `state` (no sockets): `Resolver.answer(wire, transport)` takes a query as bytes
and returns the response as bytes, or `FORWARD` when the name lies outside our domains
and recursors are configured (the transport in `dns_server.py` does the forwarding).

Name forms (consul-api.md §10): `[<tag>.]<svc>.service[.<dc>].<domain>`,
`_<svc>._<tag>[.service][.<dc>].<domain>`, `<node>.node[.<dc>].<domain>`,
`<hex>.addr[.<dc>].<domain>`, reverse `in-addr.arpa` / `ip6.arpa` PTR, and the domain's
own SOA/NS. Only passing and warning instances answer (only passing with `only_passing`).

Speed: answers are cached per (question, transport, EDNS size) and stamped with the
catalog's table indexes; a stamp that no longer matches is a miss, so an answer is never
served past a catalog change. Each cache entry holds a few shuffled orders of the records
(one is picked per query), so cached answers still come in random order. A hit costs a
header parse, a dict lookup and a byte splice: no dnslib at all.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, CNAME, EDNS0, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSHeader, DNSRecord

from meshctl.server import watchkeys as wk
from meshctl.server.state import State

log = logging.getLogger(__name__)

FORWARD = b""  # answer() result: ask the recursors
KINDS = ("service", "node", "addr", "query", "connect", "ingress", "virtual")
MAX_UDP_ANSWER_LIMIT = 8
MAX_EDNS_SIZE = 65467
MAX_TCP_SIZE = 65535
CACHE_LIMIT = 20000
MAX_VARIANTS = 12
OPT_TYPE = 41


@dataclass
class DNSConfig:
    """The agent's `dns_config`, `domain`, `recursors` settings (Consul's defaults)."""

    domain: str = "consul."
    alt_domain: str = ""
    datacenter: str = "dc1"
    node_ttl: int = 0
    service_ttl: dict[str, int] = field(default_factory=dict)  # name or "prefix*" -> seconds
    only_passing: bool = False
    udp_answer_limit: int = 3
    a_record_limit: int = 0
    enable_truncate: bool = True
    enable_additional_node_meta_txt: bool = True
    recursors: list[str] = field(default_factory=list)
    recursor_timeout: float = 2.0
    soa_refresh: int = 3600
    soa_retry: int = 600
    soa_expire: int = 86400
    soa_min_ttl: int = 0

    def __post_init__(self) -> None:
        self.domain = fqdn(self.domain or "consul.")
        self.alt_domain = fqdn(self.alt_domain) if self.alt_domain else ""

    def ttl_for_service(self, name: str) -> int:
        """service_ttl: exact name, else the longest matching `prefix*`, else 0."""
        name = name.lower()
        if name in self.service_ttl:
            return self.service_ttl[name]
        best, ttl = -1, 0
        for pattern, value in self.service_ttl.items():
            if pattern.endswith("*") and name.startswith(pattern[:-1]) and len(pattern) > best:
                best, ttl = len(pattern), value
        return ttl


def fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


@dataclass
class Unit:
    """Records that travel together when answers are shuffled or cut (one instance)."""

    answers: list[RR]
    extra: list[RR] = field(default_factory=list)


@dataclass
class Plan:
    """A resolved question before ordering, limits and packing."""

    rcode: int = RCODE.NOERROR
    units: list[Unit] = field(default_factory=list)
    shuffle: bool = False
    soa: bool = False  # SOA in the authority section (NXDOMAIN / no data)
    limit: int = 0  # a_record_limit, 0 = none
    authority: list[RR] = field(default_factory=list)


class Resolver:
    """Answers DNS queries from the catalog in `state_of()`."""

    def __init__(self, state_of: Callable[[], State], config: DNSConfig | None = None) -> None:
        self.state_of = state_of
        self.config = config or DNSConfig()
        self._cache: dict[tuple[Any, ...], tuple[tuple[int, ...], list[bytes]]] = {}
        self.acl_check: Callable[[str, str], bool] | None = None  # (resource, name) -> readable by the DNS token
        self.hits = 0
        self.misses = 0

    def reconfigure(self, config: DNSConfig) -> None:
        self.config = config
        self._cache.clear()

    # ------------------------------------------------------------------ wire level

    def _stamp(self, state: State) -> tuple[int, ...]:
        t = state.table_index
        return (id(t), t[wk.NODES], t[wk.SERVICES], t[wk.CHECKS], t.get(wk.ACL, 0))

    def _readable(self, resource: str, name: str) -> bool:
        """ACLs: may the DNS token read this node or service? (always, with ACLs off)"""
        return self.acl_check is None or self.acl_check(resource, name)

    def answer(self, data: bytes, transport: str = "udp") -> bytes | None:
        """The response to one query (bytes), FORWARD for recursion, or None to drop it."""
        if type(data) is not bytes:
            data = bytes(data)
        key, qend = _cache_key(data, transport)
        state = self.state_of()
        if key is not None:
            entry = self._cache.get(key)
            if entry is not None and entry[0] == self._stamp(state):
                self.hits += 1
                variant = entry[1][0] if len(entry[1]) == 1 else random.choice(entry[1])
                return data[:2] + variant[2:12] + data[12:qend] + variant[qend:]
        self.misses += 1
        try:
            request = DNSRecord.parse(data)
        except Exception:
            log.debug("unparsable DNS query dropped")
            return None
        if request.header.qr or not request.questions:
            return None
        stamp = self._stamp(state)
        plan = self.resolve(request, state)
        if plan is None:
            if self.config.recursors:
                return FORWARD
            return bytes(self._render(request, Plan(rcode=RCODE.REFUSED), transport, None).pack())
        variants = self._variants(request, plan, transport)
        if key is not None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = (stamp, variants)
        return variants[0] if len(variants) == 1 else random.choice(variants)

    def _variants(self, request: DNSRecord, plan: Plan, transport: str) -> list[bytes]:
        n = len(plan.units)
        if not plan.shuffle or n < 2:
            return [bytes(self._render(request, plan, transport, None).pack())]
        if n <= 4:
            orders = [list(p) for p in itertools.permutations(range(n))]
        else:
            orders = []
            for _ in range(MAX_VARIANTS):
                order = list(range(n))
                random.shuffle(order)
                orders.append(order)
        return [bytes(self._render(request, plan, transport, order).pack()) for order in orders]

    def _render(self, request: DNSRecord, plan: Plan, transport: str, order: list[int] | None) -> DNSRecord:
        cfg = self.config
        header = DNSHeader(id=request.header.id, qr=1, aa=1, rd=request.header.rd, ra=1 if cfg.recursors else 0,
                           rcode=plan.rcode)
        reply = DNSRecord(header, q=request.q)
        units = plan.units if order is None else [plan.units[i] for i in order]
        if plan.limit and len(units) > plan.limit:
            units = units[: plan.limit]
        edns = _edns_size(request)
        truncated = False
        if transport == "udp":
            limit = min(cfg.udp_answer_limit or MAX_UDP_ANSWER_LIMIT, MAX_UDP_ANSWER_LIMIT)
            if edns is None and len(units) > limit:
                units = units[:limit]
                truncated = cfg.enable_truncate
            max_size = 512 if edns is None else max(512, min(edns, MAX_EDNS_SIZE))
        else:
            max_size = MAX_TCP_SIZE
        authority = list(plan.authority)
        if plan.soa:
            authority.append(self._soa_rr())
        with_extra = True
        while True:
            reply.rr, reply.auth, reply.ar = [], list(authority), []
            for unit in units:
                reply.rr.extend(unit.answers)
                if with_extra:
                    reply.ar.extend(unit.extra)
            if edns is not None:
                reply.ar.append(EDNS0(udp_len=min(edns, MAX_EDNS_SIZE) if edns else 512))
            if len(reply.pack()) <= max_size:
                break
            truncated = True
            if with_extra and any(u.extra for u in units):
                with_extra = False
            elif units:
                units = units[:-1]
            else:
                break
        reply.header.tc = 1 if truncated else 0
        return reply

    # ------------------------------------------------------------------ resolution

    def resolve(self, request: DNSRecord, state: State) -> Plan | None:
        """What to answer for the request's first question; None if the name is not ours."""
        q = request.q
        name = str(q.qname).lower()
        qtype = q.qtype
        cfg = self.config
        labels = None
        for domain in (cfg.domain, cfg.alt_domain):
            if not domain:
                continue
            if name == domain:
                labels = []
            elif name.endswith("." + domain):
                labels = name[: -len(domain) - 1].split(".")
            if labels is not None:
                break
        if labels is None:
            if name.endswith(".in-addr.arpa.") or name.endswith(".ip6.arpa."):
                plan = self._ptr(q.qname, name, state)
                if plan.rcode == RCODE.NXDOMAIN and cfg.recursors:
                    return None
                return plan
            return None
        if not labels:
            return self._apex(q.qname, qtype, state)
        parsed = parse_name(labels)
        if parsed is None:
            return nxdomain()
        kind, prefix, dc = parsed
        if dc is not None and dc != cfg.datacenter.lower():
            return nxdomain()
        if kind == "service":
            return self._service(q.qname, qtype, prefix, state)
        if kind == "node":
            return self._node(q.qname, qtype, ".".join(prefix), state)
        if kind == "addr":
            return self._addr(q.qname, qtype, prefix)
        return nxdomain()

    def _soa_rr(self) -> RR:
        cfg = self.config
        times = (int(time.time()), cfg.soa_refresh, cfg.soa_retry, cfg.soa_expire, cfg.soa_min_ttl)
        return RR(cfg.domain, QTYPE.SOA, ttl=cfg.soa_min_ttl,
                  rdata=SOA(f"ns.{cfg.domain}", f"hostmaster.{cfg.domain}", times))

    def _apex(self, qname: Any, qtype: int, state: State) -> Plan:
        cfg = self.config
        if qtype in (QTYPE.SOA, QTYPE.ANY):
            return Plan(units=[Unit([self._soa_rr()])])
        if qtype == QTYPE.NS:
            units = []
            for node, _svc in [i for i in state.service_instances("consul") if self._readable("node", i[0]["Node"])][:3]:
                target = f"{node['Node']}.node.{cfg.datacenter}.{cfg.domain}".lower()
                extra = _addr_records(target, node["Address"], cfg.node_ttl, QTYPE.ANY)
                units.append(Unit([RR(qname, QTYPE.NS, ttl=cfg.node_ttl, rdata=NS(target))], extra))
            return Plan(units=units)
        return nodata()

    def _service(self, qname: Any, qtype: int, prefix: list[str], state: State) -> Plan:
        cfg = self.config
        if not prefix:
            return nxdomain()
        if len(prefix) == 2 and prefix[0].startswith("_") and prefix[1].startswith("_"):
            service, tag = prefix[0][1:], prefix[1][1:]
            if tag == "tcp":
                tag = ""
        else:
            service, tag = prefix[-1], ".".join(prefix[:-1])
        instances = self._healthy_instances(service, tag, state)
        if not instances:
            return nxdomain()
        ttl = cfg.ttl_for_service(service)
        units: list[Unit] = []
        seen: set[str] = set()
        for node, svc, status in instances:
            address = svc["Address"] or node["Address"]
            if qtype == QTYPE.SRV:
                key = f"{node['Node']}:{address}:{svc['Port']}"
                if key in seen:
                    continue
                seen.add(key)
                weights = svc.get("Weights") or {}
                weight = weights.get("Warning" if status == "warning" else "Passing", 1)
                kind = address_kind(address)
                if not svc["Address"]:
                    target = f"{node['Node']}.node.{cfg.datacenter}.{cfg.domain}".lower()
                elif kind == "host":
                    target = fqdn(address)
                else:
                    target = f"{ip_hex(address)}.addr.{cfg.datacenter}.{cfg.domain}"
                answer = RR(qname, QTYPE.SRV, ttl=ttl, rdata=SRV(1, weight, svc["Port"], target))
                extra = [] if kind == "host" else _addr_records(target, address, ttl, QTYPE.ANY)
                if cfg.enable_additional_node_meta_txt and not svc["Address"]:
                    extra += _meta_txt(target, node, ttl)
                units.append(Unit([answer], extra))
            elif qtype == QTYPE.TXT:
                if node["Node"] in seen:
                    continue
                seen.add(node["Node"])
                records = _meta_txt(qname, node, ttl)
                if records:
                    units.append(Unit(records))
            elif qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY):
                if address in seen:
                    continue
                seen.add(address)
                records = _addr_records(qname, address, ttl, qtype)
                if records:
                    units.append(Unit(records))
        if not units:
            return nodata()
        return Plan(units=units, shuffle=True, limit=cfg.a_record_limit if qtype != QTYPE.SRV else 0)

    def _healthy_instances(self, service: str, tag: str,
                           state: State) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
        """(node, service, status) of instances without critical checks (or only passing ones)."""
        out = []
        only_passing = self.config.only_passing
        for node, svc in state.service_instances(service):
            if tag and tag not in (t.lower() for t in svc["Tags"]):
                continue
            if not (self._readable("service", svc["Service"]) and self._readable("node", node["Node"])):
                continue
            worst = "passing"
            for chk in state.checks.get(node["Node"], {}).values():
                if chk["ServiceID"] and chk["ServiceID"] != svc["ID"]:
                    continue
                status = chk["Status"]
                if status == "critical" or (only_passing and status != "passing"):
                    worst = "critical"
                    break
                if status == "warning":
                    worst = "warning"
            if worst != "critical":
                out.append((node, svc, worst))
        return out

    def _node(self, qname: Any, qtype: int, name: str, state: State) -> Plan:
        cfg = self.config
        node = state.nodes.get(name)
        if node is None:
            node = next((n for k, n in state.nodes.items() if k.lower() == name), None)
        if node is None or not self._readable("node", node["Node"]):
            return nxdomain()
        records = []
        if qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY):
            records += _addr_records(qname, node["Address"], cfg.node_ttl, qtype)
        if qtype in (QTYPE.TXT, QTYPE.ANY):
            records += _meta_txt(qname, node, cfg.node_ttl)
        if not records:
            return nodata()
        return Plan(units=[Unit(records)])

    def _addr(self, qname: Any, qtype: int, prefix: list[str]) -> Plan:
        if len(prefix) != 1:
            return nxdomain()
        text = prefix[0]
        try:
            raw = bytes.fromhex(text)
            if len(text) == 8:
                ip = str(ipaddress.IPv4Address(raw))
            elif len(text) == 32:
                ip = str(ipaddress.IPv6Address(raw))
            else:
                return nxdomain()
        except ValueError:
            return nxdomain()
        records = _addr_records(qname, ip, self.config.node_ttl, qtype)
        return Plan(units=[Unit(records)]) if records else nodata()

    def _ptr(self, qname: Any, name: str, state: State) -> Plan:
        cfg = self.config
        ip = reverse_to_ip(name)
        if ip is None:
            return nxdomain()
        targets = [f"{n['Node']}.node.{cfg.datacenter}.{cfg.domain}".lower()
                   for _, n in sorted(state.nodes.items()) if _same_ip(n["Address"], ip) and self._readable("node", n["Node"])]
        if not targets:
            for node_name in sorted(state.services):
                for svc in state.services[node_name].values():
                    if svc["Address"] and _same_ip(svc["Address"], ip) and self._readable("service", svc["Service"]):
                        targets.append(f"{svc['Service']}.service.{cfg.datacenter}.{cfg.domain}".lower())
        if not targets:
            return nxdomain()
        return Plan(units=[Unit([RR(qname, QTYPE.PTR, ttl=cfg.node_ttl, rdata=PTR(t))]) for t in dict.fromkeys(targets)])


# ---------------------------------------------------------------------- helpers


def nxdomain() -> Plan:
    return Plan(rcode=RCODE.NXDOMAIN, soa=True)


def nodata() -> Plan:
    return Plan(soa=True)


def parse_name(labels: list[str]) -> tuple[str, list[str], str | None] | None:
    """(kind, labels before the kind, datacenter or None) from the labels left of the domain."""
    n = len(labels)
    if n >= 3 and labels[-1] == "dc" and labels[-3] in KINDS:
        return labels[-3], labels[:-3], labels[-2]
    if n >= 1 and labels[-1] in KINDS:
        return labels[-1], labels[:-1], None
    if n >= 2 and labels[-2] in KINDS:
        return labels[-2], labels[:-2], labels[-1]
    if n in (2, 3) and labels[0].startswith("_") and labels[1].startswith("_"):
        return "service", labels[:2], labels[2] if n == 3 else None
    return None


def address_kind(address: str) -> str:
    """"ipv4", "ipv6" or "host"."""
    try:
        return "ipv4" if ipaddress.ip_address(address).version == 4 else "ipv6"
    except ValueError:
        return "host"


def ip_hex(address: str) -> str:
    return ipaddress.ip_address(address).packed.hex()


def _same_ip(address: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(address) == ipaddress.ip_address(ip)
    except ValueError:
        return False


def reverse_to_ip(name: str) -> str | None:
    """`4.3.2.1.in-addr.arpa.` -> `1.2.3.4`; nibble form for ip6.arpa."""
    try:
        if name.endswith(".in-addr.arpa."):
            parts = name[: -len(".in-addr.arpa.")].split(".")
            if len(parts) != 4:
                return None
            return str(ipaddress.IPv4Address(".".join(reversed(parts))))
        parts = name[: -len(".ip6.arpa.")].split(".")
        if len(parts) != 32:
            return None
        return str(ipaddress.IPv6Address(bytes.fromhex("".join(reversed(parts)))))
    except ValueError:
        return None


def _addr_records(owner: Any, address: str, ttl: int, qtype: int) -> list[RR]:
    kind = address_kind(address) if address else "none"
    if kind == "ipv4" and qtype in (QTYPE.A, QTYPE.ANY):
        return [RR(owner, QTYPE.A, ttl=ttl, rdata=A(address))]
    if kind == "ipv6" and qtype in (QTYPE.AAAA, QTYPE.ANY):
        return [RR(owner, QTYPE.AAAA, ttl=ttl, rdata=AAAA(address))]
    if kind == "host" and qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY):
        return [RR(owner, QTYPE.CNAME, ttl=ttl, rdata=CNAME(fqdn(address)))]
    return []


def _meta_txt(owner: Any, node: dict[str, Any], ttl: int) -> list[RR]:
    out = []
    for key, value in sorted((node.get("Meta") or {}).items()):
        text = value if key.startswith("rfc1035-") else f"{key}={value}"
        out.append(RR(owner, QTYPE.TXT, ttl=ttl, rdata=TXT(text)))
    return out


def _edns_size(request: DNSRecord) -> int | None:
    for rr in request.ar:
        if rr.rtype == OPT_TYPE:
            return int(rr.rclass) or 512
    return None


def _cache_key(data: bytes, transport: str) -> tuple[tuple[Any, ...] | None, int]:
    """A cache key for plain one-question queries (and the question's end), else (None, 0)."""
    n = len(data)
    if n < 17 or data[2] & 0xF8 or data[4:6] != b"\x00\x01" or data[6:10] != b"\x00\x00\x00\x00":
        return None, 0
    pos = 12
    while True:
        if pos >= n:
            return None, 0
        length = data[pos]
        if length == 0:
            break
        if length & 0xC0:
            return None, 0
        pos += length + 1
    qend = pos + 5
    if qend > n:
        return None, 0
    arcount = data[11] | (data[10] << 8)
    if arcount == 0:
        if qend != n:
            return None, 0
        edns = b""
    elif arcount == 1 and n >= qend + 11 and data[qend] == 0 and data[qend + 1:qend + 3] == b"\x00\x29":
        edns = data[qend + 3:qend + 5]  # the client's UDP size; options (cookies, ECS) are not echoed
    else:
        return None, 0
    return (transport, data[2] & 1, data[12:pos].lower(), data[pos:qend], edns), qend
