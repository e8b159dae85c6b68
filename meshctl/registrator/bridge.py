"""The reconcile loop every registrator source shares: desired services vs what we registered.

A source (Docker, Marathon, Mesos) only says what *should* be registered, per group (a
container, an app, "the cluster"): `update(group, services)`, `remove(group)`, or the whole
picture at once with `replace(groups)`. The bridge registers what is missing or changed and
deregisters what is no longer desired, through the client library's agent endpoints.

Ownership: every service we register carries `Meta["external-source"] = kind` and
`Meta["registrator"] = owner`; only services marked so (or, for `-cleanup`, matching the
source's legacy ID rule, e.g. gliderlabs/registrator's `host:container:port`) are ever
deregistered by us. Services registered by anyone else are never touched.

Agents: by default everything goes to the one agent of the registry URI. With `agent_port`
set (marathon-consul's and mesos-consul's way), a service whose `agent` names a host goes to
the Consul agent on that host (`<host>:<agent_port>`), so it lives and dies with that node.
Desired and registered services are then keyed by (agent address, service ID); each agent gets
one cached client built from the registry client's settings. A resync lists every agent we
know of, plus the catalog (owned services on nodes we have not met yet, e.g. after a restart).

Failures (agent unreachable, 5xx) are logged and retried with backoff by `run()`; a failed
deregistration stays "registered" so it is retried, a failed registration stays pending. One
agent failing never stops the others' work. When a host's agent cannot be reached at all, a
deregistration goes through the catalog instead (`/v1/catalog/deregister` of that node's
service): a dead node must not keep orphans (mesos-consul #15, #77, #98).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from meshctl.client import Backoff, Client, ConsulError, NotFound, Unreachable

log = logging.getLogger(__name__)

SOURCE_META = "external-source"
OWNER_META = "registrator"
PARALLEL = 16  # concurrent agent requests during a large sync
# Host agents may be down: a short connect timeout keeps one dead host from stalling a pass
# (marathon-consul's consul-timeout is 3s).
HOST_AGENT_CONNECT_TIMEOUT = 3.0
HOST_AGENT_TIMEOUT = 10.0

Key = tuple[str, str]  # (agent address, service ID); address "" = the registry URI's agent


def host_port(host: str, port: int) -> str:
    """`host:port`, IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host(address: str) -> str:
    """The host of `host:port` (brackets removed)."""
    host = address.rpartition(":")[0] if ":" in address else address
    return host.strip("[]")


@dataclass
class Service:
    """One service instance to register (Consul's agent service definition, in our words)."""

    id: str
    name: str
    port: int = 0
    address: str = ""
    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    ttl_check_id: str | None = None  # a TTL check the bridge keeps passing (registrator -ttl)
    agent: str = ""  # host whose Consul agent should hold it (used when the bridge has an agent_port)

    def definition(self) -> dict[str, Any]:
        """The body of `PUT /v1/agent/service/register`."""
        body: dict[str, Any] = {"ID": self.id, "Name": self.name, "Tags": list(self.tags), "Meta": dict(self.meta)}
        if self.port:
            body["Port"] = self.port
        if self.address:
            body["Address"] = self.address
        if len(self.checks) == 1 and not self.checks[0].get("CheckID"):
            body["Check"] = dict(self.checks[0])
        elif self.checks:
            body["Checks"] = [dict(c) for c in self.checks]
        return body

    def view(self) -> tuple[Any, ...]:
        """What the agent's /v1/agent/services shows of this service (for drift detection)."""
        return (self.name, self.address, int(self.port or 0), tuple(self.tags), tuple(sorted(self.meta.items())))

    def fingerprint(self) -> str:
        """Identity of the whole definition, checks included."""
        return json.dumps(self.definition(), sort_keys=True)


def service_from_agent(entry: Mapping[str, Any]) -> Service:
    """A `Service` from an /v1/agent/services entry (checks unknown)."""
    return Service(
        id=str(entry.get("ID", "")),
        name=str(entry.get("Service", "")),
        port=int(entry.get("Port") or 0),
        address=str(entry.get("Address") or ""),
        tags=list(entry.get("Tags") or []),
        meta=dict(entry.get("Meta") or {}),
    )


class Bridge:
    """Desired services (by group) reconciled against the agent(s) through `client.agent`."""

    def __init__(self, client: Client, kind: str, owner: str, *, cleanup: bool = False,
                 legacy_owned: Callable[[Mapping[str, Any]], bool] | None = None,
                 resync: float = 0.0, ttl_refresh: float = 0.0, retry_interval: float = 2.0,
                 agent_port: int | None = None, agent_client: Callable[[str], Client] | None = None) -> None:
        self.client = client
        self.kind = kind
        self.owner = owner
        self.cleanup = cleanup
        self.legacy_owned = legacy_owned
        self.resync_interval = resync
        self.ttl_refresh = ttl_refresh
        self.retry_interval = retry_interval
        self.agent_port = agent_port  # None: every service goes to `client`'s agent
        self._agent_client = agent_client or self._host_client
        self._clients: dict[str, Client] = {"": client}
        self._nodes: dict[str, str] = {}  # agent address -> its node name (from the catalog)
        self._unreachable: set[str] = set()  # agents judged by the catalog (logged once per outage)
        self._lock = threading.RLock()  # state; never held across agent requests
        self._reconciling = threading.Lock()  # one reconcile at a time
        self._groups: dict[str, dict[str, Service]] = {}
        self._held: set[str] = set()  # groups kept registered but no longer refreshed (dead, on-success)
        self._registered: dict[Key, Service] = {}  # what we registered (or adopted) on the agents
        self._fingerprints: dict[Key, str] = {}  # key -> fingerprint of our registration ("" = adopted)
        self._stale: set[Key] = set()  # owned services found on an agent that nobody desires
        self._dirty = False
        self._wake = threading.Event()
        self.stats = {"registered": 0, "deregistered": 0, "errors": 0, "catalog_deregistered": 0}

    # -- agents ----------------------------------------------------------------------------

    @property
    def per_host(self) -> bool:
        """Whether services go to the agent on their host (marathon-consul / mesos-consul)."""
        return self.agent_port is not None

    def target(self, service: Service) -> str:
        """The address of the agent a service belongs on ("" = the registry URI's agent)."""
        if self.agent_port is None or not service.agent:
            return ""
        return host_port(service.agent, self.agent_port)

    def _host_client(self, address: str) -> Client:
        # the registry client's token, TLS and datacenter settings, at another address
        cfg = self.client.config
        scheme = "http" if cfg.scheme == "unix" else cfg.scheme
        return Client(config=dataclasses.replace(cfg, address=address, scheme=scheme, timeout=HOST_AGENT_TIMEOUT,
                                                 connect_timeout=HOST_AGENT_CONNECT_TIMEOUT))

    def client_for(self, address: str) -> Client:
        """The (cached) client of the agent at `address` ("" = the registry URI's agent)."""
        with self._lock:
            client = self._clients.get(address)
            if client is None:
                client = self._clients[address] = self._agent_client(address)
            return client

    def _where(self, address: str) -> str:
        return address or self.client.config.base_url

    # -- what sources call --------------------------------------------------------------

    def mark(self, service: Service) -> Service:
        """Add the ownership marker to a service's Meta."""
        service.meta = {**service.meta, SOURCE_META: self.kind, OWNER_META: self.owner}
        return service

    def update(self, group: str, services: Iterable[Service]) -> None:
        """Set the desired services of one group and reconcile."""
        with self._lock:
            svcs = {s.id: self.mark(s) for s in services}
            if svcs:
                self._groups[group] = svcs
            else:
                self._groups.pop(group, None)
            self._held.discard(group)
        self.reconcile()

    def remove(self, group: str) -> None:
        """Nothing of this group is desired any more: deregister its services."""
        with self._lock:
            self._groups.pop(group, None)
            self._held.discard(group)
        self.reconcile()

    def hold(self, group: str) -> None:
        """Keep a group's services registered but stop refreshing their TTL checks."""
        with self._lock:
            if group in self._groups:
                self._held.add(group)

    def groups(self) -> dict[str, list[Service]]:
        """A copy of the desired services by group."""
        with self._lock:
            return {g: list(s.values()) for g, s in self._groups.items()}

    def held(self) -> set[str]:
        """The groups currently held (see `hold`)."""
        with self._lock:
            return set(self._held)

    def replace(self, groups: Mapping[str, Iterable[Service]], *, keep: Iterable[str] = ()) -> None:
        """The whole desired picture at once (a full sync); groups in `keep` stay as they are."""
        with self._lock:
            kept = {g: self._groups[g] for g in keep if g in self._groups}
            self._groups = {g: {s.id: self.mark(s) for s in svcs} for g, svcs in groups.items()}
            self._groups = {g: s for g, s in self._groups.items() if s}
            self._groups.update(kept)
            self._held &= set(self._groups)
        self.reconcile()

    def desired(self) -> dict[Key, Service]:
        """Every desired service by (agent address, ID) (a later group wins a clash)."""
        with self._lock:
            out: dict[Key, Service] = {}
            for svcs in self._groups.values():
                for s in svcs.values():
                    out[(self.target(s), s.id)] = s
            return out

    def registered(self) -> dict[Key, Service]:
        """What the bridge believes is registered, by (agent address, ID)."""
        with self._lock:
            return dict(self._registered)

    # -- the agent side ------------------------------------------------------------------

    def owns(self, entry: Mapping[str, Any]) -> bool:
        """Whether an agent service was registered by this registrator (marker or legacy rule)."""
        meta = entry.get("Meta") or {}
        if meta.get(SOURCE_META) == self.kind and meta.get(OWNER_META) == self.owner:
            return True
        return bool(self.cleanup and self.legacy_owned is not None and self.legacy_owned(entry))

    def catalog_owned(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Owned services the catalog shows, by agent address (`<node address>:<agent_port>`).

        Agent-shaped entries (ID, Service, Tags, Meta...), so they compare like agent listings.
        Raises ConsulError when the catalog cannot be read.
        """
        assert self.agent_port is not None
        names = list(self.client.catalog.services().value)

        def instances(name: str) -> list[dict[str, Any]]:
            return cast(list[dict[str, Any]], self.client.catalog.service(name).value)

        if len(names) > 4:
            with ThreadPoolExecutor(PARALLEL) as pool:
                found = list(pool.map(instances, names))
        else:
            found = [instances(n) for n in names]
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for entries in found:
            for e in entries:
                entry = {"ID": e.get("ServiceID", ""), "Service": e.get("ServiceName", ""),
                         "Tags": e.get("ServiceTags") or [], "Meta": e.get("ServiceMeta") or {},
                         "Port": e.get("ServicePort") or 0, "Address": e.get("ServiceAddress") or ""}
                if not e.get("Address") or not self.owns(entry):
                    continue
                address = host_port(str(e["Address"]), self.agent_port)
                out.setdefault(address, {})[str(entry["ID"])] = entry
                with self._lock:
                    self._nodes[address] = str(e.get("Node") or "")
        return out

    def load(self) -> dict[str, ConsulError]:
        """Read every known agent's services we own: adopt the ones already right, remember the rest.

        Agents: the registry URI's (unless services go to their hosts' agents), those desired
        services belong on, those we registered on, and (per host) those the catalog shows
        owned services on. An agent that cannot be reached is judged by the catalog's copy of
        its node when there is one. Returns the agents that could not be listed (address →
        error; "catalog" for the catalog); every other agent is loaded regardless.
        """
        want = self.desired()
        with self._lock:
            agents = {k[0] for k in want} | {k[0] for k in self._registered}
        if not self.per_host:
            agents.add("")
        failed: dict[str, ConsulError] = {}
        catalog: dict[str, dict[str, dict[str, Any]]] = {}
        if self.per_host:
            try:
                catalog = self.catalog_owned()
            except ConsulError as e:
                failed["catalog"] = e
            agents |= set(catalog)

        def listing(address: str) -> tuple[str, Mapping[str, Any] | None, ConsulError | None]:
            try:
                return address, self.client_for(address).agent.services(), None
            except ConsulError as e:
                return address, None, e

        ordered = sorted(agents)
        if len(ordered) > 1:
            with ThreadPoolExecutor(min(PARALLEL, len(ordered))) as pool:
                results = list(pool.map(listing, ordered))
        else:
            results = [listing(a) for a in ordered]
        listings: dict[str, Mapping[str, Any]] = {}
        for address, services, error in results:
            if services is not None:
                listings[address] = services
                if address in self._unreachable:
                    self._unreachable.discard(address)
                    log.info("%s: agent at %s reachable again", self.kind, self._where(address))
            elif isinstance(error, Unreachable) and address in catalog:
                # a dead node: its services are what the catalog still holds for it
                if address not in self._unreachable:
                    self._unreachable.add(address)
                    log.warning("%s: agent at %s unreachable (%s); using the catalog's copy of its node",
                                self.kind, self._where(address), error)
                listings[address] = catalog[address]
            elif error is not None:
                failed[address] = error
        with self._lock:
            want = self.desired()
            self._stale = {k for k in self._stale if k[0] not in listings}
            for address, services in listings.items():
                self._load_agent(address, services, want)
        return failed

    def _load_agent(self, address: str, services: Mapping[str, Any], want: Mapping[Key, Service]) -> None:
        for sid, entry in services.items():
            if not self.owns(entry):
                continue
            key = (address, sid)
            current = service_from_agent(entry)
            current.agent = split_host(address) if address else ""
            if key in want:
                if key not in self._registered and current.view() == want[key].view():
                    self._registered[key] = want[key]
                    self._fingerprints[key] = want[key].fingerprint()
                elif key in self._registered and current.view() != self._registered[key].view():
                    self._fingerprints[key] = ""  # drifted: register again
                continue
            if key not in self._registered:
                self._registered[key] = current
                self._fingerprints[key] = ""
                self._stale.add(key)
        for key in list(self._registered):
            if key[0] == address and key[1] not in services and key in want:
                log.info("%s: %s missing from the agent at %s; registering again", self.kind, key[1],
                         self._where(address))
                self._fingerprints[key] = ""

    def reconcile(self) -> bool:
        """Register what is desired but missing or changed, deregister what is no longer desired.

        Returns True when everything succeeded (else `run()` retries later).
        """
        with self._reconciling:
            with self._lock:
                want = self.desired()
                to_register: list[tuple[Key, Service]] = []
                for key, s in want.items():
                    if self._fingerprints.get(key) == s.fingerprint():
                        continue
                    if key in self._stale and self._registered[key].view() == s.view():
                        # found on the agent as it should be (e.g. after our restart): adopt it
                        self._registered[key] = s
                        self._fingerprints[key] = s.fingerprint()
                        self._stale.discard(key)
                        continue
                    to_register.append((key, s))
                to_remove = [k for k in self._registered
                             if k not in want and (k not in self._stale or self.cleanup)]
            ok = True
            if to_register or to_remove:
                ok = self._apply(to_register, to_remove)
            self._dirty = not ok
            if not ok:
                self._wake.set()
            return ok

    def _apply(self, to_register: list[tuple[Key, Service]], to_remove: list[Key]) -> bool:
        # Each operation is on its own: a failing agent costs its own operations only (#59).
        # `down` remembers agents found unreachable in this pass, so their remaining
        # operations do not each wait for a timeout.
        down: set[str] = set()
        results: list[bool] = []
        if len(to_register) + len(to_remove) > 4:
            with ThreadPoolExecutor(PARALLEL) as pool:
                results += list(pool.map(lambda item: self._register_one(*item, down=down), to_register))
                results += list(pool.map(lambda key: self._deregister_one(key, down=down), to_remove))
        else:
            results += [self._register_one(k, s, down=down) for k, s in to_register]
            results += [self._deregister_one(k, down=down) for k in to_remove]
        return all(results)

    def _register_one(self, key: Key, service: Service, *, down: set[str] | None = None) -> bool:
        address = key[0]
        if down is not None and address in down:
            self.stats["errors"] += 1
            log.error("%s: not registering %s: the agent at %s is unreachable; retrying next pass",
                      self.kind, service.id, self._where(address))
            return False
        try:
            self.client_for(address).agent.service_register(service.definition(), replace_existing_checks=True)
        except ConsulError as e:
            self.stats["errors"] += 1
            if isinstance(e, Unreachable) and down is not None:
                down.add(address)
            log.error("%s: register %s on the agent at %s failed: %s; retrying next pass", self.kind, service.id,
                      self._where(address), e)
            return False
        with self._lock:
            self._registered[key] = service
            self._fingerprints[key] = service.fingerprint()
            self._stale.discard(key)
        self.stats["registered"] += 1
        log.info("%s: registered %s (%s %s:%s)%s", self.kind, service.id, service.name, service.address,
                 service.port, f" on the agent at {address}" if address else "")
        return True

    def _deregister_one(self, key: Key, *, down: set[str] | None = None) -> bool:
        address, service_id = key
        via = "the agent"
        try:
            if down is not None and address in down:
                raise Unreachable(None, "unreachable earlier in this pass")
            self.client_for(address).agent.service_deregister(service_id)
        except NotFound:
            pass
        except Unreachable as e:
            if down is not None:
                down.add(address)
            # the host's agent is gone (node down): take the service out of the catalog instead
            via = "the catalog"
            if not self.per_host or not self._catalog_deregister(key, e):
                self.stats["errors"] += 1
                log.error("%s: deregister %s from the agent at %s failed: %s", self.kind, service_id,
                          self._where(address), e)
                return False
        except ConsulError as e:
            self.stats["errors"] += 1
            log.error("%s: deregister %s from the agent at %s failed: %s", self.kind, service_id,
                      self._where(address), e)
            return False
        with self._lock:
            self._registered.pop(key, None)
            self._fingerprints.pop(key, None)
            self._stale.discard(key)
        self.stats["deregistered"] += 1
        if via == "the agent":  # (the catalog path has logged its own line)
            log.info("%s: deregistered %s%s", self.kind, service_id, f" from the agent at {address}" if address else "")
        return True

    def _catalog_deregister(self, key: Key, cause: ConsulError) -> bool:
        """`/v1/catalog/deregister` of the service on the node of an unreachable agent."""
        address, service_id = key
        with self._lock:
            service = self._registered.get(key)
        host = split_host(address) if address else ""
        try:
            # the node: the one holding this service ID at the agent's address (its name may be unknown)
            nodes = [str(e.get("Node") or "")
                     for e in (self.client.catalog.service(service.name).value if service else [])
                     if e.get("ServiceID") == service_id and (not host or e.get("Address") == host)]
            if not nodes:
                log.warning("%s: agent at %s unreachable (%s); %s is not in the catalog either: forgotten",
                            self.kind, self._where(address), cause, service_id)
                return True
            for node in nodes:
                self.client.catalog.deregister(node, service_id=service_id)
        except ConsulError as e:
            log.error("%s: agent at %s unreachable (%s), and the catalog deregistration of %s failed: %s",
                      self.kind, self._where(address), cause, service_id, e)
            return False
        self.stats["catalog_deregistered"] += 1
        log.warning("%s: agent at %s unreachable (%s); deregistered %s from node %s through the catalog",
                    self.kind, self._where(address), cause, service_id, ", ".join(nodes))
        return True

    def resync(self) -> bool:
        """Compare with the agents (drift, dangling services when cleanup is on) and reconcile."""
        failed = self.load()
        for address, e in failed.items():
            what = "the catalog" if address == "catalog" else f"the agent at {self._where(address)}"
            log.error("%s: cannot list the services of %s: %s", self.kind, what, e)
        if "" in failed and not self.per_host:
            # the one agent is unreachable: nothing to compare with, retry later
            self._dirty = True
            return False
        ok = self.reconcile()
        if failed:
            self._dirty = True
        return ok and not failed

    def refresh_ttls(self) -> None:
        """Mark the TTL checks of live (not held) services passing."""
        with self._lock:
            live = [s for g, svcs in self._groups.items() if g not in self._held for s in svcs.values()]
            checks = [(self.target(s), s.ttl_check_id) for s in live
                      if s.ttl_check_id and (self.target(s), s.id) in self._registered]
        for address, check_id in checks:
            try:
                self.client_for(address).agent.check_pass(str(check_id))
            except ConsulError as e:
                log.warning("%s: refresh of %s failed: %s", self.kind, check_id, e)

    def run(self, stop: threading.Event) -> None:
        """Background upkeep until `stop`: retries with backoff, periodic resync, TTL refresh."""
        backoff = Backoff(base=self.retry_interval, cap=max(30.0, self.retry_interval))
        now = time.monotonic()
        next_resync = now + self.resync_interval if self.resync_interval > 0 else float("inf")
        next_ttl = now + self.ttl_refresh if self.ttl_refresh > 0 else float("inf")
        next_retry = float("inf")
        while not stop.is_set():
            now = time.monotonic()
            timeout = max(0.0, min(next_resync, next_ttl, next_retry) - now)
            self._wake.wait(min(timeout, 3600.0))
            self._wake.clear()
            if stop.is_set():
                return
            now = time.monotonic()
            if self._dirty and next_retry == float("inf"):
                next_retry = now + backoff.next_delay()
                continue
            if now >= next_retry:
                next_retry = float("inf")
                if self.resync():
                    backoff.reset()
                    log.info("%s: back in sync with the agent", self.kind)
                else:
                    next_retry = now + backoff.next_delay()
            if now >= next_resync:
                next_resync = now + self.resync_interval
                self.resync()
            if now >= next_ttl:
                next_ttl = now + self.ttl_refresh
                self.refresh_ttls()

    @property
    def failing(self) -> bool:
        """Whether the last pass left registrations undone (the agent failing); retried with backoff."""
        return self._dirty

    def wake(self) -> None:
        """Nudge `run()` (e.g. after a source reconnects)."""
        self._wake.set()
