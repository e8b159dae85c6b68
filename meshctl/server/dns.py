"""Consul's DNS interface over the catalog: name parsing, answers, truncation, answer cache.

Pure over `state` (no sockets): `Resolver.answer(wire, transport)` takes a query as bytes
and returns the response as bytes, or `FORWARD` when the name lies outside our domains
and recursors are configured (the transport in `dns_server.py` does the forwarding), or a
`Pending` when the answer CNAMEs to a hostname outside our domains that the recursors must
resolve first: the transport sends `Pending.queries` to them and calls `Pending.finish()`.

Other datacenters (`<svc>.service.dc2.consul`, `<node>.node.dc2.consul`): when `find_datacenter`
knows the label (the WAN pool), `answer()` returns a `Remote`: the transport GETs `Remote.path`
(dc2's health or catalog data) from a server of that datacenter and calls `Remote.finish()`, which
builds the answer with the same rules as local ones (health filter, shuffle, limits, SRV targets
`<node>.node.dc2.<domain>`), or `Remote.fail()` (SERVFAIL, Consul's RPC error) when no server
answered. A label the WAN does not know is NXDOMAIN, as before. Remote answers are never cached
(Consul's DNS does not cache them either by default). Hostname addresses in remote data are
chased as if asked here; a CNAME target naming another datacenter is not followed (CNAME alone).

Name forms (consul-api.md §10): `[<tag>.]<svc>.service[.<dc>].<domain>`,
`_<svc>._<tag>[.service][.<dc>].<domain>`, `<node>.node[.<dc>].<domain>`,
`<hex>.addr[.<dc>].<domain>`, reverse `in-addr.arpa` / `ip6.arpa` PTR, and the domain's
own SOA/NS. Only passing and warning instances answer (only passing with `only_passing`).

Hostname addresses (consul-api.md §10, Consul's makeRecordFromFQDN / resolveCNAME): an
A/AAAA/ANY answer is a CNAME to the hostname plus its records, an SRV answer targets the
hostname with its records in the additional section. Targets inside our domains are
resolved here from the catalog (at most MAX_RECURSION_LEVEL links deep); others by the
recursors if any (else the CNAME alone). Instances with IP addresses win over hostnames,
and of hostname-only instances one CNAME chain answers (a CNAME can have no siblings).

Speed: answers are cached per (question, transport, EDNS size) and stamped with the
catalog's table indexes; a stamp that no longer matches is a miss, so an answer is never
served past a catalog change. Each cache entry holds a few shuffled orders of the records
(one is picked per query), so cached answers still come in random order. A hit costs a
header parse, a dict lookup and a byte splice: no dnslib at all. Answers that wait on the
recursors are never cached (what the recursors say is not stamped by our catalog).
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import quote

from dnslib import AAAA, CNAME, EDNS0, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSHeader, DNSRecord

from meshctl.durations import parse_duration
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
MAX_RECURSE_RECORDS = 5  # records behind one CNAME in a non-EDNS answer (Consul's maxRecurseRecords)
MAX_RECURSION_LEVEL = 3  # internal CNAME links followed (Consul's maxRecursionLevelDefault)
CHASE_TYPES = (QTYPE.CNAME, QTYPE.A, QTYPE.AAAA)  # what a resolved CNAME target contributes


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


@dataclass(frozen=True)
class Lookup:
    """A CNAME target outside our domains, to be resolved by the recursors."""

    name: str
    qtype: int  # asked of the recursors
    ttl: int | None  # replaces the recursor's TTLs (service answers, as Consul); None keeps them
    room: int | None  # records still allowed behind this CNAME (non-EDNS cap), None = no cap
    extra: bool  # into the additional section (SRV targets) rather than the answers


@dataclass
class Unit:
    """Records that travel together when answers are shuffled or cut (one instance)."""

    answers: list[RR]
    extra: list[RR] = field(default_factory=list)
    lookup: Lookup | None = None  # its records come from the recursors at answer time


@dataclass(frozen=True)
class RemoteLookup:
    """The catalog data of another datacenter a question needs (Consul RPCs that datacenter), or a
    prepared query's execution (`kind` "query": in this datacenter too, since it may fail over)."""

    datacenter: str  # as the WAN pool spells it
    kind: str  # "service", "node" or "query"
    prefix: tuple[str, ...] = ()  # service lookups: the labels before `service` ([tag.]name, _name._tag)
    node: str = ""  # node lookups: the name as asked (its case kept: the remote catalog matches exactly)
    query: str = ""  # query lookups: the query's ID or name
    target: str = ""  # query lookups: the datacenter asked to run it ("": this one, sorted near this agent)

    @property
    def path(self) -> str:
        """The HTTP GET on a server of that datacenter giving the data. `stale`: any server answers,
        as Consul's DNS (allow_stale); every instance comes, the health filter is applied here."""
        dc = quote(self.datacenter, safe="")
        if self.kind == "query":  # asked of this agent's own HTTP API, which forwards ?dc= (a 404: no such query)
            where = f"&dc={quote(self.target, safe='')}" if self.target else "&near=_agent"
            return f"/v1/query/{quote(self.query, safe='')}/execute?stale{where}"
        if self.kind == "node":
            return f"/v1/catalog/node/{quote(self.node, safe='')}?dc={dc}&stale"
        return f"/v1/health/service/{quote(service_and_tag(list(self.prefix))[0], safe='')}?dc={dc}&stale"


@dataclass
class Plan:
    """A resolved question before ordering, limits and packing."""

    rcode: int = RCODE.NOERROR
    units: list[Unit] = field(default_factory=list)
    shuffle: bool = False
    soa: bool = False  # SOA in the authority section (NXDOMAIN / no data)
    limit: int = 0  # a_record_limit, 0 = none
    authority: list[RR] = field(default_factory=list)
    pick_one: bool = False  # answer with one unit chosen at random (alternative CNAME chains)
    remote: RemoteLookup | None = None  # the answer is another datacenter's: see Remote

    @property
    def lookups(self) -> bool:
        return any(u.lookup is not None for u in self.units)


class Pending:
    """An answer waiting on the recursors: send each of `queries` (wire format) to them, then
    `finish()` with the replies (None where none came). Whatever fails, the CNAME alone stays."""

    def __init__(self, resolver: Resolver, request: DNSRecord, plan: Plan, transport: str, order: list[int],
                 queries: dict[tuple[str, int], bytes]) -> None:
        self.resolver = resolver
        self.request = request
        self.plan = plan
        self.transport = transport
        self.order = order
        self.queries = queries  # (name, qtype) -> query

    def finish(self, replies: Mapping[tuple[str, int], bytes | None]) -> bytes:
        """The response, with what the recursors answered appended behind each CNAME."""
        units = list(self.plan.units)
        for i in self.order:
            unit = units[i]
            if unit.lookup is None:
                continue
            key = (unit.lookup.name, unit.lookup.qtype)
            query = self.queries.get(key)
            records = _recursor_records(unit.lookup, query, replies.get(key)) if query else []
            if records:
                if unit.lookup.extra:
                    units[i] = Unit(unit.answers, unit.extra + records)
                else:
                    units[i] = Unit(unit.answers + records, unit.extra)
        plan = replace(self.plan, units=units)
        return bytes(self.resolver._render(self.request, plan, self.transport, self.order).pack())


class Catalog(Protocol):
    """What the answer rules read of a catalog: `State`, or another datacenter's `RemoteCatalog`."""

    @property
    def nodes(self) -> Mapping[str, dict[str, Any]]: ...

    @property
    def checks(self) -> Mapping[str, Mapping[str, dict[str, Any]]]: ...

    def service_instances(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]: ...


class RemoteCatalog:
    """Another datacenter's catalog data (its HTTP answers) in the shape of `State`'s."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.checks: dict[str, dict[str, dict[str, Any]]] = {}
        self._instances: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def service_instances(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(node, service) pairs of a service; name is case-insensitive, as State's."""
        lname = name.lower()
        return [(n, s) for n, s in self._instances if s["Service"].lower() == lname]

    @classmethod
    def from_health(cls, entries: Any) -> RemoteCatalog:
        """From /v1/health/service/<svc>: `[{Node, Service, Checks}]` (malformed entries skipped)."""
        out = cls()
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            node, svc = _node_record(entry.get("Node")), _service_record(entry.get("Service"))
            if node is None or svc is None:
                continue
            node = out.nodes.setdefault(node["Node"], node)
            out._instances.append((node, svc))
            checks = out.checks.setdefault(node["Node"], {})
            for chk in entry.get("Checks") or []:
                if isinstance(chk, dict) and isinstance(chk.get("CheckID"), str):
                    checks[chk["CheckID"]] = {**chk, "ServiceID": str(chk.get("ServiceID") or ""),
                                              "Status": str(chk.get("Status") or "critical")}
        return out

    @classmethod
    def from_node(cls, body: Any) -> RemoteCatalog:
        """From /v1/catalog/node/<node>: `{Node, Services}`, or null for an unknown node."""
        out = cls()
        node = _node_record(body.get("Node")) if isinstance(body, dict) else None
        if node is not None:
            out.nodes[node["Node"]] = node
        return out


def _node_record(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or not isinstance(item.get("Node"), str):
        return None
    meta = item.get("Meta")
    return {**item, "Address": str(item.get("Address") or ""), "Meta": meta if isinstance(meta, dict) else {}}


def _service_record(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or not isinstance(item.get("Service"), str) or not isinstance(item.get("Port"), int):
        return None
    tags = item.get("Tags")
    return {**item, "ID": str(item.get("ID") or item["Service"]), "Address": str(item.get("Address") or ""),
            "Tags": [str(t) for t in tags] if isinstance(tags, list) else []}


class Remote:
    """An answer from another datacenter's catalog: GET `path` on one of its servers, then
    `finish()` with the JSON body, or `fail()` when none answered."""

    def __init__(self, resolver: Resolver, request: DNSRecord, lookup: RemoteLookup, transport: str) -> None:
        self.resolver = resolver
        self.request = request
        self.lookup = lookup
        self.transport = transport

    @property
    def datacenter(self) -> str:
        return self.lookup.datacenter

    @property
    def path(self) -> str:
        return self.lookup.path

    def finish(self, body: Any) -> bytes | Pending:
        """The answer built from that datacenter's data with the local rules; a Pending when a
        hostname address needs the recursors. Never cached: our catalog's index does not stamp it."""
        resolver, lookup, q = self.resolver, self.lookup, self.request.q
        state = resolver.state_of()  # CNAME targets in our domains resolve as if asked here, as Consul's do
        capped = _edns_size(self.request) is None
        if lookup.kind == "query":
            if not isinstance(body, dict):  # no such query: NXDOMAIN, as Consul's
                return bytes(resolver._render(self.request, nxdomain(), self.transport, None).pack())
            plan = resolver._query_answer(q.qname, q.qtype, state, capped, body)
            return resolver._pending(self.request, plan, self.transport)
        if lookup.kind == "node":
            plan = resolver._node(q.qname, q.qtype, lookup.node.lower(), state, MAX_RECURSION_LEVEL, capped,
                                  RemoteCatalog.from_node(body))
        else:
            plan = resolver._service(q.qname, q.qtype, list(lookup.prefix), state, MAX_RECURSION_LEVEL, capped,
                                     RemoteCatalog.from_health(body), lookup.datacenter)
        return resolver._pending(self.request, plan, self.transport)

    def fail(self) -> bytes:
        """SERVFAIL, authoritative: what Consul answers when the RPC to that datacenter fails."""
        return bytes(self.resolver._render(self.request, Plan(rcode=RCODE.SERVFAIL), self.transport, None).pack())


class Resolver:
    """Answers DNS queries from the catalog in `state_of()`."""

    def __init__(self, state_of: Callable[[], State], config: DNSConfig | None = None) -> None:
        self.state_of = state_of
        self.config = config or DNSConfig()
        self._cache: dict[tuple[Any, ...], tuple[tuple[int, ...], list[bytes]]] = {}
        self.acl_check: Callable[[str, str], bool] | None = None  # (resource, name) -> readable by the DNS token
        # a DNS label -> the remote datacenter it names (the WAN pool), None: unknown; unset: no WAN
        self.find_datacenter: Callable[[str], str | None] | None = None
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

    def answer(self, data: bytes, transport: str = "udp") -> bytes | Pending | Remote | None:
        """The response to one query (bytes), FORWARD for recursion, a Pending answer that needs
        the recursors to resolve a CNAME target, a Remote answer that needs another datacenter's
        catalog, or None to drop it."""
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
        if plan.remote is not None:
            return Remote(self, request, plan.remote, transport)
        if plan.lookups:
            return self._pending(request, plan, transport)
        variants = self._variants(request, plan, transport)
        if key is not None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = (stamp, variants)
        return variants[0] if len(variants) == 1 else random.choice(variants)

    def _pending(self, request: DNSRecord, plan: Plan, transport: str) -> bytes | Pending:
        """Fix one order now and ask the recursors only about the units that will be sent."""
        n = len(plan.units)
        if plan.pick_one:
            order = [random.randrange(n)]
        else:
            order = list(range(n))
            if plan.shuffle:
                random.shuffle(order)
        window = self._window(plan, transport, _edns_size(request))
        queries = {}
        for i in order[:window]:
            lookup = plan.units[i].lookup
            if lookup is not None and (lookup.name, lookup.qtype) not in queries:
                queries[(lookup.name, lookup.qtype)] = DNSRecord.question(lookup.name, QTYPE[lookup.qtype]).pack()
        if not queries:
            return bytes(self._render(request, plan, transport, order).pack())
        return Pending(self, request, plan, transport, order, queries)

    def _window(self, plan: Plan, transport: str, edns: int | None) -> int | None:
        """How many units at most survive the a_record_limit and UDP answer-count cuts (None: all)."""
        window = plan.limit or None
        if transport == "udp" and edns is None:
            limit = min(self.config.udp_answer_limit or MAX_UDP_ANSWER_LIMIT, MAX_UDP_ANSWER_LIMIT)
            window = limit if window is None else min(window, limit)
        return window

    def _variants(self, request: DNSRecord, plan: Plan, transport: str) -> list[bytes]:
        n = len(plan.units)
        if plan.pick_one and n > 1:
            return [bytes(self._render(request, plan, transport, [i]).pack()) for i in range(n)]
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
            window = self._window(plan, transport, edns)
            if window is not None and len(units) > window:
                units = units[:window]
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
            elif len(units) > 1:
                units = units[:-1]
            elif units and len(units[0].answers) > 1:
                # one CNAME chain too long: shorten it behind the CNAME rather than answer nothing
                units = [Unit(units[0].answers[:-1])]
            else:
                break
        reply.header.tc = 1 if truncated else 0
        return reply

    # ------------------------------------------------------------------ resolution

    def resolve(self, request: DNSRecord, state: State) -> Plan | None:
        """What to answer for the request's first question; None if the name is not ours."""
        q = request.q
        capped = _edns_size(request) is None
        return self._resolve_name(q.qname, q.qtype, state, MAX_RECURSION_LEVEL, capped)

    def _resolve_name(self, qname: Any, qtype: int, state: State, depth: int, capped: bool) -> Plan | None:
        """resolve() for one name; `depth` internal CNAME links may still be followed, `capped`
        limits the records behind a CNAME (non-EDNS queries)."""
        name = str(qname).lower()
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
                plan = self._ptr(qname, name, state)
                if plan.rcode == RCODE.NXDOMAIN and cfg.recursors:
                    return None
                return plan
            return None
        if not labels:
            return self._apex(qname, qtype, state)
        parsed = parse_name(labels)
        if parsed is None:
            return nxdomain()
        kind, prefix, dc = parsed
        if kind == "query":
            return self._query(prefix, dc)
        if dc is not None and dc != cfg.datacenter.lower():
            remote_dc = self.find_datacenter(dc) if self.find_datacenter is not None else None
            if remote_dc is None or kind not in ("service", "node", "addr"):
                return nxdomain()
            if kind == "service":
                return Plan(remote=RemoteLookup(remote_dc, "service", prefix=tuple(prefix))) if prefix else nxdomain()
            if kind == "node":
                node = ".".join(prefix)
                asked = str(qname)
                if len(asked) == len(name):  # the name as typed: node names are matched exactly over there
                    node = asked[: len(node)]
                return Plan(remote=RemoteLookup(remote_dc, "node", node=node)) if node else nxdomain()
            # <hex>.addr.<dc>: the name alone is the answer, in any datacenter
        if kind == "service":
            return self._service(qname, qtype, prefix, state, depth, capped)
        if kind == "node":
            return self._node(qname, qtype, ".".join(prefix), state, depth, capped)
        if kind == "addr":
            return self._addr(qname, qtype, prefix)
        return nxdomain()

    def _query(self, prefix: list[str], dc: str | None) -> Plan:
        """`<query>.query[.<dc>].<domain>`: the query is executed by the HTTP API (a Remote, here too),
        as Consul's DNS runs PreparedQuery.Execute: it may fail over to other datacenters."""
        if not prefix:
            return nxdomain()
        name = ".".join(prefix)
        if dc is None or dc == self.config.datacenter.lower():
            return Plan(remote=RemoteLookup(self.config.datacenter, "query", query=name))
        remote_dc = self.find_datacenter(dc) if self.find_datacenter is not None else None
        if remote_dc is None:
            return nxdomain()
        return Plan(remote=RemoteLookup(self.config.datacenter, "query", query=name, target=remote_dc))

    def _query_answer(self, qname: Any, qtype: int, state: State, capped: bool, body: dict[str, Any]) -> Plan:
        """The answer of an executed query (`PreparedQueryExecuteResponse`): its nodes in the order
        the server gave them (shuffled, or nearest first), the query's DNS TTL if it has one."""
        service = str(body.get("Service") or "")
        ttl = None
        dns_ttl = (body.get("DNS") or {}).get("TTL") if isinstance(body.get("DNS"), dict) else None
        if dns_ttl:
            try:
                ttl = int(parse_duration(dns_ttl))
            except ValueError:
                ttl = None
        plan = self._service(qname, qtype, [service], state, MAX_RECURSION_LEVEL, capped,
                             RemoteCatalog.from_health(body.get("Nodes")), str(body.get("Datacenter") or ""), ttl=ttl)
        return replace(plan, shuffle=False)

    def _ours(self, name: str) -> bool:
        cfg = self.config
        return name.endswith("." + cfg.domain) or bool(cfg.alt_domain and name.endswith("." + cfg.alt_domain))

    def _chase(self, target: str, qtype: int, ttl: int | None, state: State, depth: int, capped: bool,
               extra: bool = False) -> tuple[list[RR], Lookup | None]:
        """The records behind a CNAME to `target` (Consul's resolveCNAME): from the catalog when the
        name is ours, else a Lookup for the recursors (none without recursors: the CNAME alone).

        Only records of the asked type follow the CNAME (A, AAAA, both for ANY and SRV), CNAMEs
        of a chain included; `ttl`, if given, replaces theirs.
        """
        room = MAX_RECURSE_RECORDS if capped else None
        if not self._ours(target):
            if not self.config.recursors:
                return [], None
            return [], Lookup(target, QTYPE.AAAA if qtype == QTYPE.AAAA else QTYPE.A, ttl, room, extra)
        if depth < 1:
            log.warning("CNAME chain too deep at %s: not resolved further", target)
            return [], None
        sub_qtype = qtype if qtype in (QTYPE.A, QTYPE.AAAA) else QTYPE.ANY
        plan = self._resolve_name(target, sub_qtype, state, depth - 1, capped)
        if plan is None or not plan.units:
            return [], None
        units = plan.units[: plan.limit] if plan.limit else plan.units
        if plan.pick_one:
            units = [random.choice(units)]
        elif plan.shuffle:
            units = random.sample(units, len(units))
        records: list[RR] = []
        lookup = None
        for unit in units:
            records += [rr for rr in unit.answers if rr.rtype in CHASE_TYPES]
            lookup = lookup or unit.lookup
        if room is not None:
            records = records[:room]
            room -= len(records)
        if ttl is not None:
            for rr in records:  # fresh records of a plan that is not kept: safe to change
                rr.ttl = ttl
        if lookup is not None:
            if room == 0:
                lookup = None
            else:
                lookup = Lookup(lookup.name, lookup.qtype, lookup.ttl if ttl is None else ttl, room, extra)
        return records, lookup

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

    def _service(self, qname: Any, qtype: int, prefix: list[str], state: State, depth: int = MAX_RECURSION_LEVEL,
                 capped: bool = True, catalog: Catalog | None = None, dc: str = "", ttl: int | None = None) -> Plan:
        """A service's answer from `catalog` (default: `state`) of datacenter `dc` (default: ours);
        hostname targets in our domains are chased in `state`. `ttl`: instead of service_ttl."""
        cfg = self.config
        if not prefix:
            return nxdomain()
        service, tag = service_and_tag(prefix)
        instances = self._healthy_instances(service, tag, state if catalog is None else catalog)
        if not instances:
            return nxdomain()
        dc = dc or cfg.datacenter
        ttl = cfg.ttl_for_service(service) if ttl is None else ttl
        name = str(qname).lower()
        units: list[Unit] = []
        cnames: list[Unit] = []
        seen: set[str] = set()
        for node, svc, status in instances:
            svc_address = svc["Address"]
            node_ip = bool(node["Address"]) and address_kind(node["Address"]) != "host"
            if svc_address and node_ip and fqdn(svc_address) == name:
                svc_address = ""  # the service's address names this very service: Consul uses the node's
            address = svc_address or node["Address"]
            kind = address_kind(address)
            if qtype == QTYPE.SRV:
                key = f"{node['Node']}:{address}:{svc['Port']}"
                if key in seen:
                    continue
                seen.add(key)
                weights = svc.get("Weights") or {}
                weight = weights.get("Warning" if status == "warning" else "Passing", 1)
                node_name = f"{node['Node']}.node.{dc}.{cfg.domain}".lower()
                lookup = None
                if kind == "host":
                    target = fqdn(address)
                    extra, lookup = self._chase(target, qtype, ttl, state, depth, capped, extra=True)
                else:
                    target = node_name if not svc_address else f"{ip_hex(address)}.addr.{dc}.{cfg.domain}"
                    extra = _addr_records(target, address, ttl, QTYPE.ANY)
                answer = RR(qname, QTYPE.SRV, ttl=ttl, rdata=SRV(1, weight, svc["Port"], target))
                if cfg.enable_additional_node_meta_txt and not svc_address:
                    extra += _meta_txt(node_name, node, ttl)
                units.append(Unit([answer], extra, lookup))
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
                if kind == "host":
                    target = fqdn(address)
                    records, lookup = self._chase(target, qtype, ttl, state, depth, capped)
                    cnames.append(Unit([RR(qname, QTYPE.CNAME, ttl=ttl, rdata=CNAME(target)), *records], lookup=lookup))
                    continue
                records = _addr_records(qname, address, ttl, qtype)
                if records:
                    units.append(Unit(records))
        if not units and cnames:
            # a CNAME may not share its name with other records: one chain, and only if no instance has an IP
            return Plan(units=cnames, pick_one=True)
        if not units:
            return nodata()
        return Plan(units=units, shuffle=True, limit=cfg.a_record_limit if qtype != QTYPE.SRV else 0)

    def _healthy_instances(self, service: str, tag: str,
                           state: Catalog) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
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

    def _node(self, qname: Any, qtype: int, name: str, state: State, depth: int = MAX_RECURSION_LEVEL,
              capped: bool = True, catalog: Catalog | None = None) -> Plan:
        """A node's answer from `catalog` (default: `state`); a hostname address is chased in `state`."""
        cfg = self.config
        nodes = (state if catalog is None else catalog).nodes
        node = nodes.get(name)
        if node is None:
            node = next((n for k, n in nodes.items() if k.lower() == name), None)
        if node is None or not self._readable("node", node["Node"]):
            return nxdomain()
        records = []
        lookup = None
        if qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY):
            address = node["Address"]
            if address and address_kind(address) == "host":
                target = fqdn(address)
                chased, lookup = self._chase(target, qtype, None, state, depth, capped)
                records += [RR(qname, QTYPE.CNAME, ttl=cfg.node_ttl, rdata=CNAME(target)), *chased]
            else:
                records += _addr_records(qname, address, cfg.node_ttl, qtype)
        if qtype in (QTYPE.TXT, QTYPE.ANY):
            records += _meta_txt(qname, node, cfg.node_ttl)
        if not records:
            return nodata()
        return Plan(units=[Unit(records, lookup=lookup)])

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


def service_and_tag(prefix: list[str]) -> tuple[str, str]:
    """(service, tag) of a service name's labels: `[tag.]name` or RFC 2782 `_name._tag` (`_tcp`: no tag)."""
    if len(prefix) == 2 and prefix[0].startswith("_") and prefix[1].startswith("_"):
        service, tag = prefix[0][1:], prefix[1][1:]
        return service, "" if tag == "tcp" else tag
    return prefix[-1], ".".join(prefix[:-1])


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


def _recursor_records(lookup: Lookup, query: bytes, reply: bytes | None) -> list[RR]:
    """The CNAME/A/AAAA answers of a recursor's reply to `query` ([] for none, junk or a mismatch)."""
    if not reply:
        return []
    try:
        asked, got = DNSRecord.parse(query), DNSRecord.parse(reply)
    except Exception:
        log.debug("unparsable recursor reply for %s", lookup.name)
        return []
    if got.header.id != asked.header.id or not got.header.qr or got.header.rcode != RCODE.NOERROR:
        return []
    records = [rr for rr in got.rr if rr.rtype in CHASE_TYPES]
    if lookup.room is not None:
        records = records[: lookup.room]
    if lookup.ttl is not None:
        for rr in records:
            rr.ttl = lookup.ttl
    return records


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
