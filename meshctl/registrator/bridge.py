"""The reconcile loop every registrator source shares: desired services vs what we registered.

A source (Docker, Marathon, Mesos) only says what *should* be registered, per group (a
container, an app, "the cluster"): `update(group, services)`, `remove(group)`, or the whole
picture at once with `replace(groups)`. The bridge registers what is missing or changed and
deregisters what is no longer desired, through the client library's agent endpoints.

Ownership: every service we register carries `Meta["external-source"] = kind` and
`Meta["registrator"] = owner`; only services marked so (or, for `-cleanup`, matching the
source's legacy ID rule, e.g. gliderlabs/registrator's `host:container:port`) are ever
deregistered by us. Services registered by anyone else are never touched.

Failures (agent unreachable, 5xx) are logged and retried with backoff by `run()`; a failed
deregistration stays "registered" so it is retried, a failed registration stays pending.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from meshctl.client import Backoff, Client, ConsulError, NotFound

log = logging.getLogger(__name__)

SOURCE_META = "external-source"
OWNER_META = "registrator"
PARALLEL = 16  # concurrent agent requests during a large sync


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
    """Desired services (by group) reconciled against the agent through `client.agent`."""

    def __init__(self, client: Client, kind: str, owner: str, *, cleanup: bool = False,
                 legacy_owned: Callable[[Mapping[str, Any]], bool] | None = None,
                 resync: float = 0.0, ttl_refresh: float = 0.0, retry_interval: float = 2.0) -> None:
        self.client = client
        self.kind = kind
        self.owner = owner
        self.cleanup = cleanup
        self.legacy_owned = legacy_owned
        self.resync_interval = resync
        self.ttl_refresh = ttl_refresh
        self.retry_interval = retry_interval
        self._lock = threading.RLock()  # state; never held across agent requests
        self._reconciling = threading.Lock()  # one reconcile at a time
        self._groups: dict[str, dict[str, Service]] = {}
        self._held: set[str] = set()  # groups kept registered but no longer refreshed (dead, on-success)
        self._registered: dict[str, Service] = {}  # what we registered (or adopted) on the agent
        self._fingerprints: dict[str, str] = {}  # id -> fingerprint of our registration ("" = adopted)
        self._stale: set[str] = set()  # owned services found on the agent that nobody desires
        self._dirty = False
        self._wake = threading.Event()
        self.stats = {"registered": 0, "deregistered": 0, "errors": 0}

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

    def desired(self) -> dict[str, Service]:
        """Every desired service by ID (a later group wins an ID clash)."""
        with self._lock:
            out: dict[str, Service] = {}
            for svcs in self._groups.values():
                out.update(svcs)
            return out

    def registered(self) -> dict[str, Service]:
        """What the bridge believes is registered on the agent."""
        with self._lock:
            return dict(self._registered)

    # -- the agent side ------------------------------------------------------------------

    def owns(self, entry: Mapping[str, Any]) -> bool:
        """Whether an agent service was registered by this registrator (marker or legacy rule)."""
        meta = entry.get("Meta") or {}
        if meta.get(SOURCE_META) == self.kind and meta.get(OWNER_META) == self.owner:
            return True
        return bool(self.cleanup and self.legacy_owned is not None and self.legacy_owned(entry))

    def load(self) -> None:
        """Read the agent's services we own: adopt the ones already right, remember the rest.

        Raises ConsulError when the agent cannot be read.
        """
        services = self.client.agent.services()
        with self._lock:
            want = self.desired()
            self._stale = set()
            for sid, entry in services.items():
                if not self.owns(entry):
                    continue
                current = service_from_agent(entry)
                if sid in want:
                    if sid not in self._registered and current.view() == want[sid].view():
                        self._registered[sid] = want[sid]
                        self._fingerprints[sid] = want[sid].fingerprint()
                    elif sid in self._registered and current.view() != self._registered[sid].view():
                        self._fingerprints[sid] = ""  # drifted: register again
                    continue
                if sid not in self._registered:
                    self._registered[sid] = current
                    self._fingerprints[sid] = ""
                    self._stale.add(sid)
            for sid in list(self._registered):
                if sid not in services and sid in want:
                    log.info("%s: %s missing from the agent; registering again", self.kind, sid)
                    self._fingerprints[sid] = ""

    def reconcile(self) -> bool:
        """Register what is desired but missing or changed, deregister what is no longer desired.

        Returns True when everything succeeded (else `run()` retries later).
        """
        with self._reconciling:
            with self._lock:
                want = self.desired()
                to_register = []
                for sid, s in want.items():
                    if self._fingerprints.get(sid) == s.fingerprint():
                        continue
                    if sid in self._stale and self._registered[sid].view() == s.view():
                        # found on the agent as it should be (e.g. after our restart): adopt it
                        self._registered[sid] = s
                        self._fingerprints[sid] = s.fingerprint()
                        self._stale.discard(sid)
                        continue
                    to_register.append(s)
                to_remove = [sid for sid in self._registered
                             if sid not in want and (sid not in self._stale or self.cleanup)]
            ok = True
            if to_register or to_remove:
                ok = self._apply(to_register, to_remove)
            self._dirty = not ok
            if not ok:
                self._wake.set()
            return ok

    def _apply(self, to_register: list[Service], to_remove: list[str]) -> bool:
        results: list[bool] = []
        if len(to_register) + len(to_remove) > 4:
            with ThreadPoolExecutor(PARALLEL) as pool:
                results += list(pool.map(self._register_one, to_register))
                results += list(pool.map(self._deregister_one, to_remove))
        else:
            results += [self._register_one(s) for s in to_register]
            results += [self._deregister_one(sid) for sid in to_remove]
        return all(results)

    def _register_one(self, service: Service) -> bool:
        try:
            self.client.agent.service_register(service.definition(), replace_existing_checks=True)
        except ConsulError as e:
            self.stats["errors"] += 1
            log.error("%s: register %s failed: %s", self.kind, service.id, e)
            return False
        with self._lock:
            self._registered[service.id] = service
            self._fingerprints[service.id] = service.fingerprint()
            self._stale.discard(service.id)
        self.stats["registered"] += 1
        log.info("%s: registered %s (%s %s:%s)", self.kind, service.id, service.name, service.address,
                 service.port)
        return True

    def _deregister_one(self, service_id: str) -> bool:
        try:
            self.client.agent.service_deregister(service_id)
        except NotFound:
            pass
        except ConsulError as e:
            self.stats["errors"] += 1
            log.error("%s: deregister %s failed: %s", self.kind, service_id, e)
            return False
        with self._lock:
            self._registered.pop(service_id, None)
            self._fingerprints.pop(service_id, None)
            self._stale.discard(service_id)
        self.stats["deregistered"] += 1
        log.info("%s: deregistered %s", self.kind, service_id)
        return True

    def resync(self) -> bool:
        """Compare with the agent (drift, dangling services when cleanup is on) and reconcile."""
        try:
            self.load()
        except ConsulError as e:
            log.error("%s: cannot list the agent's services: %s", self.kind, e)
            self._dirty = True
            return False
        return self.reconcile()

    def refresh_ttls(self) -> None:
        """Mark the TTL checks of live (not held) services passing."""
        with self._lock:
            live = [s for g, svcs in self._groups.items() if g not in self._held for s in svcs.values()]
            ids = [s.ttl_check_id for s in live if s.ttl_check_id and s.id in self._registered]
        for check_id in ids:
            try:
                self.client.agent.check_pass(check_id)
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

    def wake(self) -> None:
        """Nudge `run()` (e.g. after a source reconnects)."""
        self._wake.set()
