"""The agent's telemetry: Consul's metric names, shown as `/v1/agent/metrics` (JSON) and Prometheus text.

One `Telemetry` per process (`TELEMETRY`), as Consul's one go-metrics sink. Two kinds of figures:

* events, recorded where they happen by small instruments (`Counter`, `Timer`): HTTP requests
  (`consul.api.http`, labels method, path as Consul writes it (`v1.kv._`) and code), store
  writes (`consul.raft.apply`, `consul.raft.commitTime`), leadership (`consul.raft.state.leader`,
  `consul.raft.state.follower`), ACL token resolution (`consul.acl.ResolveToken`), DNS
  (`consul.dns.domain_query`, `consul.dns.ptr_query`, labels type and rcode), anti-entropy
  (`consul.agent.anti_entropy.syncs`, label result). Recording is a few attribute updates, no
  allocation: an instrument per label set is made once and kept (`Timer.child`).
* state, read when someone looks (`_collect_gauges`): parked blocking queries
  (`consul.rpc.queries_blocking`), Raft figures read from the store's public attributes
  (`consul.server.isLeader`, `consul.raft.applied_index`, `consul.raft.last_index`,
  `consul.raft.commit_index`, `consul.raft.leader.lastContact`, `consul.raft.peers`), catalog
  sizes (`consul.state.nodes`, `services`, `service_instances`, `kv_entries`, `sessions`,
  `checks` by status), members and the runtime.

The JSON answer is Consul's in-memory sink: 10 s intervals, the last finished one shown
(the current one while the agent is younger than one interval), Counters and Samples as
aggregates (Count, Rate, Sum, Min, Max, Mean, Stddev, Labels). Prometheus gets cumulative
figures under the same names with `_` for `.`: timers are histograms in milliseconds
(`consul_api_http_bucket`, `_sum`, `_count`), counters keep Consul's names without `_total`
(as Consul's own exposition; prometheus_client would append `_total` to a typed counter, so
they are exposed untyped), gauges are gauges.

The store, the ACL enforcer and the leadership callbacks are observed from outside
(`attach`): their public `apply`/`resolve` methods are wrapped on the instance and the Raft
store's `on_leader_change` list gets one callback; nothing in those modules knows about metrics.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import os
import platform
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from meshctl import __version__
from meshctl.server.http.common import HTTPError

if TYPE_CHECKING:
    from meshctl.server.context import ServerContext

log = logging.getLogger(__name__)
_http_log = logging.getLogger("meshctl.agent.http")
_TOKEN_PARAM = re.compile(r"([?&]token=)[^&]*")

INTERVAL = 10.0  # seconds per aggregation interval (Consul's in-memory sink)
# timer histogram bounds, milliseconds
BOUNDS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
                             2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0)
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what Consul answers
Labels = tuple[tuple[str, str], ...]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_now = time.perf_counter


class _Aggregate:
    """One interval's samples: count, sum, sum of squares, min, max (go-metrics' AggregateSample)."""

    __slots__ = ("count", "interval", "max", "min", "sum", "sumsq")

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.count = 0
        self.sum = self.sumsq = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.sumsq += value * value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def display(self, name: str, labels: Labels) -> dict[str, Any]:
        mean = self.sum / self.count
        stddev = 0.0
        if self.count > 1:
            stddev = math.sqrt(max(0.0, (self.sumsq - self.sum * self.sum / self.count) / (self.count - 1)))
        return {"Name": name, "Count": self.count, "Rate": self.sum / INTERVAL, "Sum": self.sum, "Min": self.min,
                "Max": self.max, "Mean": mean, "Stddev": stddev, "Labels": dict(labels)}


class _Instrument:
    """What counters and timers share: a name, labels, cumulative figures and the interval aggregates."""

    __slots__ = ("_cur", "_prev", "count", "labels", "name", "sum")

    def __init__(self, name: str, labels: Labels) -> None:
        self.name, self.labels = name, labels
        self.count = 0
        self.sum = 0.0
        self._cur = _Aggregate(-1)
        self._prev = _Aggregate(-2)

    def _interval_add(self, value: float, now: float) -> None:
        interval = int(now // INTERVAL)
        cur = self._cur
        if cur.interval != interval:
            self._prev = cur
            cur = self._cur = _Aggregate(interval)
        cur.add(value)

    def aggregate(self, interval: int) -> _Aggregate | None:
        """The aggregate of `interval` (an `int(perf_counter() // INTERVAL)`), if anything was recorded in it."""
        for agg in (self._cur, self._prev):
            if agg.interval == interval and agg.count:
                return agg
        return None


class Counter(_Instrument):
    """A count of events (Consul's IncrCounter)."""

    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        self.count += 1
        self.sum += amount
        self._interval_add(amount, _now())


class Timer(_Instrument):
    """Durations in milliseconds (Consul's MeasureSince): an interval aggregate plus a histogram."""

    __slots__ = ("buckets",)

    def __init__(self, name: str, labels: Labels) -> None:
        super().__init__(name, labels)
        self.buckets = [0] * (len(BOUNDS) + 1)

    def observe(self, ms: float, now: float | None = None) -> None:
        self.count += 1
        self.sum += ms
        self.buckets[bisect.bisect_left(BOUNDS, ms)] += 1
        cur = self._cur  # _interval_add and _Aggregate.add, inlined: this runs on every HTTP request
        interval = int((_now() if now is None else now) // INTERVAL)
        if cur.interval != interval:
            self._prev = cur
            cur = self._cur = _Aggregate(interval)
        cur.count += 1
        cur.sum += ms
        cur.sumsq += ms * ms
        if ms < cur.min:
            cur.min = ms
        if ms > cur.max:
            cur.max = ms

    def since(self, started: float) -> None:
        """Record the time since `started` (a `time.perf_counter()` value)."""
        now = _now()
        self.observe((now - started) * 1000.0, now)


class _Family:
    """All label sets of one metric name; `child(labels)` is made once per label set and kept."""

    def __init__(self, kind: type[_Instrument], name: str, help_text: str) -> None:
        self.kind, self.name, self.help = kind, name, help_text
        self.children: dict[Labels, Any] = {}
        self._lock = threading.Lock()

    def child(self, labels: Labels = ()) -> Any:
        found = self.children.get(labels)
        if found is None:
            with self._lock:  # DNS and HTTP are on the loop; a tool thread may record too
                found = self.children.get(labels)
                if found is None:
                    found = self.kind(self.name, labels)
                    self.children = {**self.children, labels: found}  # readers iterate a stable dict
        return found


def prometheus_name(name: str) -> str:
    """Consul's metric name as Prometheus writes it: `consul.raft.commitTime` -> `consul_raft_commitTime`."""
    return re.sub(r"[^a-zA-Z0-9_:]", "_", name)


_PARAM = re.compile(r"\{[^}]*\}")


def http_path_label(route_path: str) -> str:
    """Consul's `path` label of `consul.api.http`: `/v1/kv/{key}` -> `v1.kv._` (names become `_`)."""
    parts = [("_" if _PARAM.search(p) else p) for p in route_path.strip("/").split("/")]
    return ".".join(parts)


Gauge = tuple[str, Labels, float]  # (Consul name, labels, value)


class Telemetry:
    """The process's metrics (see the module docstring)."""

    def __init__(self) -> None:
        self.families: dict[str, _Family] = {}
        self.started = _now()
        self.ctx: ServerContext | None = None
        self.gauge_sources: list[Callable[[], list[Gauge]]] = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self.http_family = self.timer("consul.api.http", "HTTP API requests: time to answer, by method, path "
                                      "(Consul's v1.kv._ form) and status code")
        self.raft_apply = self.counter("consul.raft.apply", "Writes applied through the store (Raft transactions)")\
            .child()
        self.raft_commit = self.timer("consul.raft.commitTime", "Time from a write's submission to its commit "
                                      "and application here").child()
        self.leader_family = self.counter("consul.raft.state.leader", "Times this server became the Raft leader")
        self.follower_family = self.counter("consul.raft.state.follower", "Times this server stepped down to "
                                            "follower")
        self.acl_resolve = self.timer("consul.acl.ResolveToken", "Time to resolve an ACL token").child()
        self.dns_domain = self.timer("consul.dns.domain_query", "DNS queries answered, by query type and rcode")
        self.dns_ptr = self.timer("consul.dns.ptr_query", "Reverse (PTR) DNS queries answered, by rcode")
        self.ae_syncs = self.counter("consul.agent.anti_entropy.syncs", "Anti-entropy syncs of the local "
                                     "agent's services and checks, by result")
        self.ae_repairs = self.counter("consul.agent.anti_entropy.repairs", "Catalog writes made by "
                                       "anti-entropy syncs").child()

    # ------------------------------------------------------------------ instruments

    def counter(self, name: str, help_text: str) -> _Family:
        return self._family(Counter, name, help_text)

    def timer(self, name: str, help_text: str) -> _Family:
        return self._family(Timer, name, help_text)

    def _family(self, kind: type[_Instrument], name: str, help_text: str) -> _Family:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = _Family(kind, name, help_text)
        return family

    def http_timer(self, method: str, path_label: str, code: int) -> Timer:
        """The `consul.api.http` timer of one (method, path, code)."""
        return self.http_family.child((("method", method), ("path", path_label), ("code", str(code))))

    def instrument_http(self, route_path: str, handler: Handler) -> Handler:
        """`handler` (an aiohttp handler of the route `route_path`), timed into `consul.api.http`.

        The path label is computed once per route and each (method, code) timer once, so a
        request costs two clock reads, a dict lookup and a few additions. A request whose
        client went away (cancelled) is not counted.
        """
        path_label = http_path_label(route_path)
        timers: dict[tuple[str, int], Timer] = {}

        async def timed(raw: web.Request) -> web.StreamResponse:
            started = _now()
            try:
                resp = await handler(raw)
            except (HTTPError, web.HTTPException) as exc:
                self._http_done(timers, raw, path_label, exc.status, started)
                raise
            except Exception:
                self._http_done(timers, raw, path_label, 500, started)
                raise
            self._http_done(timers, raw, path_label, resp.status, started)
            return resp

        timed.__name__ = getattr(handler, "__name__", "handler")
        return timed

    def _http_done(self, timers: dict[tuple[str, int], Timer], raw: web.Request, path_label: str, code: int,
                   started: float) -> None:
        method = raw.method
        timer = timers.get((method, code))
        if timer is None:
            timer = timers[(method, code)] = self.http_timer(method, path_label, code)
        now = _now()
        timer.observe((now - started) * 1000.0, now)
        if _http_log.isEnabledFor(logging.DEBUG):  # Consul's debug line per request (a monitor at debug)
            _http_log.debug("Request finished: method=%s url=%s from=%s latency=%s", method,
                            _TOKEN_PARAM.sub(r"\1<hidden>", raw.path_qs), raw.remote,
                            f"{(now - started) * 1e6:.0f}µs")

    def dns_answered(self, query: bytes, reply: bytes | None, started: float) -> None:
        """Record one DNS answer (its query type and rcode are read from the wire bytes)."""
        if not reply or len(reply) < 4:
            return
        qtype = _qtype(query)
        rcode = _RCODES.get(reply[3] & 0x0F, str(reply[3] & 0x0F))
        family = self.dns_ptr if qtype == "PTR" else self.dns_domain
        family.child((("type", qtype), ("rcode", rcode))).since(started)

    def anti_entropy(self, ok: bool, writes: int = 0) -> None:
        self.ae_syncs.child((("result", "success" if ok else "failure"),)).inc()
        if writes:
            self.ae_repairs.inc(writes)

    # ------------------------------------------------------------------ wiring

    def attach(self, ctx: ServerContext) -> None:
        """Observe an agent's store, ACL enforcer and leadership (the gauges read `ctx` when collected)."""
        self.ctx = ctx
        store = ctx.store
        if not getattr(store, "_meshctl_metered", False) and hasattr(store, "apply"):
            setattr(store, "apply", _timed_apply(store.apply, self))  # noqa: B010 - instance wrap
            setattr(store, "_meshctl_metered", True)  # noqa: B010
            hooks = getattr(store, "on_leader_change", None)
            if isinstance(hooks, list):
                hooks.append(self._leader_changed)
            elif getattr(store, "is_leader", False):  # a -dev store leads from its start
                self.leader_family.child().inc()
        acl = ctx.acl
        resolve = getattr(acl, "resolve", None)
        if resolve is not None and not getattr(acl, "_meshctl_metered", False):
            setattr(acl, "resolve", _timed(resolve, self.acl_resolve))  # noqa: B010
            setattr(acl, "_meshctl_metered", True)  # noqa: B010

    def _leader_changed(self, leader: bool) -> None:
        (self.leader_family if leader else self.follower_family).child().inc()

    # ------------------------------------------------------------------ reading

    def gauges(self) -> list[Gauge]:
        """Every gauge's current value."""
        out: list[Gauge] = []
        ctx = self.ctx
        if ctx is not None:
            try:
                out += _ctx_gauges(ctx)
            except Exception:  # a figure that cannot be read must not break the endpoint
                log.debug("reading gauges failed", exc_info=True)
        out += _runtime_gauges()
        for source in list(self.gauge_sources):
            try:
                out += source()
            except Exception:
                log.debug("gauge source failed", exc_info=True)
        return out

    def display(self) -> dict[str, Any]:
        """`/v1/agent/metrics` as Consul answers it."""
        current = int(_now() // INTERVAL)
        shown = current - 1 if int(self.started // INTERVAL) < current else current
        counters: list[dict[str, Any]] = []
        samples: list[dict[str, Any]] = []
        for family in list(self.families.values()):
            target = counters if family.kind is Counter else samples
            for labels, inst in sorted(family.children.items()):
                agg = inst.aggregate(shown)
                if agg is not None:
                    target.append(agg.display(family.name, labels))
        wall = time.time() - (_now() - shown * INTERVAL)
        gauges = [{"Name": name, "Value": value, "Labels": dict(labels)} for name, labels, value in self.gauges()]
        return {"Timestamp": _go_time(wall), "Gauges": gauges, "Points": [], "Counters": counters,
                "Samples": samples}

    def prometheus(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4)."""
        return generate_latest(self.registry)


class _Collector:
    """prometheus_client's view of a `Telemetry`: every figure rendered when scraped."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.t = telemetry

    def collect(self) -> Iterator[Metric]:
        for family in list(self.t.families.values()):
            children = list(family.children.values())
            if not children:
                continue
            name = prometheus_name(family.name)
            label_names = [k for k, _ in children[0].labels]
            if family.kind is Timer:
                hist = HistogramMetricFamily(name, family.help + " (milliseconds)", labels=label_names)
                for inst in children:
                    cumulative, running = [], 0
                    for bound, n in zip((*BOUNDS, math.inf), inst.buckets, strict=True):
                        running += n
                        cumulative.append((_bound_text(bound), running))
                    hist.add_metric([v for _, v in inst.labels], cumulative, inst.sum)
                yield hist
            else:
                untyped = Metric(name, family.help, "unknown")
                for inst in children:
                    untyped.add_sample(name, dict(inst.labels), inst.sum)
                yield untyped
        grouped: dict[str, GaugeMetricFamily] = {}
        for gname, labels, value in self.t.gauges():
            pname = prometheus_name(gname)
            fam = grouped.get(pname)
            if fam is None:
                fam = grouped[pname] = GaugeMetricFamily(pname, _GAUGE_HELP.get(gname, gname),
                                                         labels=[k for k, _ in labels])
            fam.add_metric([v for _, v in labels], value)
        yield from grouped.values()


def _bound_text(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(float(bound))


def _timed_apply(apply: Callable[..., Any], t: Telemetry) -> Callable[..., Any]:
    @functools.wraps(apply)
    async def timed(command: Any) -> Any:
        started = _now()
        try:
            return await apply(command)
        finally:
            t.raft_apply.inc()
            t.raft_commit.since(started)

    return timed


def _timed(fn: Callable[..., Any], timer: Timer) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = _now()
        try:
            return fn(*args, **kwargs)
        finally:
            timer.since(started)

    return timed


# ---------------------------------------------------------------------- gauges read from the agent

_GAUGE_HELP = {
    "consul.rpc.queries_blocking": "Blocking queries parked on this agent, waiting for a change",
    "consul.server.isLeader": "1 if this server is the Raft leader",
    "consul.raft.applied_index": "Index of the last Raft log entry applied to the state here",
    "consul.raft.last_index": "Index of the last entry in this server's Raft log",
    "consul.raft.commit_index": "Index of the last Raft log entry known committed",
    "consul.raft.leader.lastContact": "Milliseconds since this server last heard from the leader (0 on the leader)",
    "consul.raft.peers": "Voters in the Raft configuration, this server included",
    "consul.raft.known_leader": "1 if a Raft leader is known",
    "consul.state.nodes": "Nodes in the catalog",
    "consul.state.services": "Distinct service names in the catalog",
    "consul.state.service_instances": "Service instances in the catalog",
    "consul.state.kv_entries": "Entries in the KV store",
    "consul.state.sessions": "Sessions",
    "consul.state.checks": "Health checks in the catalog, by status",
    "consul.session_ttl.active": "Sessions with a TTL",
    "consul.members.servers": "Servers in this datacenter",
    "consul.members.clients": "Client agents known to this server",
    "consul.runtime.num_goroutines": "Threads of the agent process (Consul: goroutines)",
    "consul.runtime.alloc_bytes": "Resident memory of the agent process, bytes",
    "consul.runtime.sys_bytes": "Virtual memory of the agent process, bytes",
    "consul.version": "The agent's version (label version), always 1",
}


def raft_figures(store: Any) -> dict[str, Any]:
    """What a store says of its Raft log, from public attributes only (a -dev store: its state index).

    Keys: state (Leader/Follower/Candidate), leader, known_leader, applied_index, commit_index,
    last_log_index, term, num_peers, last_contact_ms, leader_addr.
    """
    state_index = int(getattr(getattr(store, "state", None), "index", 0) or 0)
    is_leader = bool(getattr(store, "is_leader", False))
    known = bool(getattr(store, "known_leader", False))
    replica = getattr(store, "replica", None)
    applied = int(getattr(store, "applied_index", 0) or 0) if replica is not None else state_index
    commit = int(getattr(replica, "raftCommitIndex", 0) or 0) if replica is not None else state_index
    last_applied = int(getattr(replica, "raftLastApplied", 0) or 0) if replica is not None else state_index
    term = int(getattr(replica, "raftCurrentTerm", 0) or 0) if replica is not None else 1
    try:
        peers = store.peers() if hasattr(store, "peers") else []
    except Exception:
        peers = []
    try:
        leader_addr = store.leader_address() if hasattr(store, "leader_address") else ""
    except Exception:
        leader_addr = ""
    return {
        "state": "Leader" if is_leader else ("Follower" if known else "Candidate"),
        "leader": is_leader, "known_leader": known, "applied_index": applied, "commit_index": max(commit, applied),
        "last_log_index": max(commit, applied, last_applied), "term": term, "num_peers": max(len(peers) - 1, 0),
        "voters": len(peers), "last_contact_ms": int(getattr(store, "last_contact_ms", 0) or 0),
        "leader_addr": leader_addr,
    }


def _parked(hub: Any) -> int:
    """Blocking queries parked in a watch hub (each counted once, whatever it waits on)."""
    tables = [getattr(hub, "_by_key", None), getattr(hub, "_by_prefix", None)]
    if all(isinstance(t, dict) for t in tables):
        waiters: set[int] = set()
        for table in tables:
            for futures in list(table.values()):  # type: ignore[union-attr]
                waiters.update(id(f) for f in list(futures))
        return len(waiters)
    try:
        return len(hub)
    except TypeError:
        return 0


def _ctx_gauges(ctx: ServerContext) -> list[Gauge]:
    store = ctx.store
    out: list[Gauge] = [("consul.rpc.queries_blocking", (), float(_parked(getattr(store, "hub", None))))]
    if ctx.agent.server:
        raft = raft_figures(store)
        out += [("consul.server.isLeader", (), 1.0 if raft["leader"] else 0.0),
                ("consul.raft.known_leader", (), 1.0 if raft["known_leader"] else 0.0),
                ("consul.raft.applied_index", (), float(raft["applied_index"])),
                ("consul.raft.commit_index", (), float(raft["commit_index"])),
                ("consul.raft.last_index", (), float(raft["last_log_index"])),
                ("consul.raft.leader.lastContact", (), float(raft["last_contact_ms"])),
                ("consul.raft.peers", (), float(raft["voters"]))]
        state = store.state
        services = {name for node in state.services.values() for name in
                    (svc.get("Service", "") for svc in node.values())}
        by_status = {"passing": 0, "warning": 0, "critical": 0}
        for checks in state.checks.values():
            for check in checks.values():
                status = str(check.get("Status", ""))
                by_status[status] = by_status.get(status, 0) + 1
        sessions = state.sessions
        out += [("consul.state.nodes", (), float(len(state.nodes))),
                ("consul.state.services", (), float(len(services))),
                ("consul.state.service_instances", (), float(sum(len(s) for s in state.services.values()))),
                ("consul.state.kv_entries", (), float(len(state.kv))),
                ("consul.state.sessions", (), float(len(sessions))),
                ("consul.session_ttl.active", (), float(sum(1 for s in sessions.values() if s.get("TTL"))))]
        out += [("consul.state.checks", (("status", status),), float(n)) for status, n in sorted(by_status.items())]
        cluster = ctx.cluster
        servers = raft["voters"] if cluster is not None else 1
        out.append(("consul.members.servers", (), float(servers)))
        monitor = ctx.hooks.monitor
        clients = getattr(monitor, "last_seen", None)  # client agents that sent heartbeats
        if clients is not None:
            try:
                out.append(("consul.members.clients", (), float(len(clients))))
            except TypeError:
                pass
    return out


def _runtime_gauges() -> list[Gauge]:
    rss = vms = 0.0
    try:
        with open("/proc/self/statm") as f:
            pages = f.read().split()
        size = os.sysconf("SC_PAGE_SIZE")
        vms, rss = float(int(pages[0]) * size), float(int(pages[1]) * size)
    except (OSError, ValueError, IndexError):
        pass
    return [("consul.runtime.num_goroutines", (), float(threading.active_count())),
            ("consul.runtime.alloc_bytes", (), rss), ("consul.runtime.sys_bytes", (), vms),
            ("consul.version", (("version", __version__), ("pre_release", "")), 1.0)]


# ---------------------------------------------------------------------- small helpers

_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
           41: "OPT", 255: "ANY"}


def _qtype(query: bytes) -> str:
    """The type of a DNS query's first question, read from its wire bytes."""
    i = 12
    try:
        while query[i]:
            if query[i] & 0xC0:
                i += 1
                break
            i += query[i] + 1
        i += 1
        code = (query[i] << 8) | query[i + 1]
    except IndexError:
        return "unknown"
    return _QTYPES.get(code, str(code))


def _go_time(wall: float) -> str:
    """Go's default time.Time format, as Consul's metrics Timestamp: `2024-05-01 10:00:00 +0000 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(wall))


TELEMETRY = Telemetry()


def platform_summary() -> dict[str, str]:
    """os and arch as Go names them (Consul's runtime stats)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}.get(platform.machine(),
                                                                                    platform.machine())
    return {"os": platform.system().lower(), "arch": arch}


__all__ = ["BOUNDS", "INTERVAL", "PROMETHEUS_CONTENT_TYPE", "TELEMETRY", "Counter", "Telemetry", "Timer",
           "http_path_label", "platform_summary", "prometheus_name", "raft_figures"]
