"""Tools that report their own health (`-register-service NAME`): template, registrator and lock.

The tool registers itself with its local agent as a service with one TTL check, and keeps that
check current while it works: passing when all is well, warning when its data is stale beyond
`-max-stale`, critical when renders fail, its source (Docker, Marathon, Mesos) cannot be
reached, or the store is down; the reason is the check's output. A tool that dies stops
updating the check and the TTL turns it critical ("TTL expired"); after
`deregister_critical_after` the agent removes the dead instance. A clean exit deregisters.
So a broken sidecar shows in the catalog, the DNS (`NAME.service.consul` leaves the answer)
and the UI, like any other unhealthy service.

The tool hands in a `probe`: a function returning its current problems. It is called every
`PROBE_INTERVAL` seconds; the check is written when the status or output changes, and at least
every TTL/2 (so a passing check costs one request per TTL/2). As in Consul, the agent shows a
new output at once (/v1/agent/checks) but syncs an output-only change (same status) to the
catalog on its check_update_interval (5 min); a status change goes at once, with its output.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from meshctl.client import Client, ConsulError
from meshctl.durations import format_duration

log = logging.getLogger(__name__)

Status = Literal["passing", "warning", "critical"]
PROBE_INTERVAL = 1.0
_RANK = {"passing": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the tool: how bad, and why (the check's output)."""

    status: Status
    reason: str


Probe = Callable[[], list[Problem]]


@dataclass
class SelfHealthConfig:
    """`-register-service NAME` and friends (template's `register_service {}` stanza)."""

    name: str = ""  # empty: off
    id: str = ""  # default: NAME-<hostname>-<pid>, unique per instance
    tags: list[str] = field(default_factory=list)
    port: int = 0
    ttl: float = 30.0
    deregister_critical_after: float = 600.0  # a dead instance leaves the catalog after this

    @property
    def enabled(self) -> bool:
        """Whether the tool registers itself."""
        return bool(self.name)

    def service_id(self) -> str:
        """The service's ID on the agent."""
        return self.id or f"{self.name}-{socket.gethostname()}-{os.getpid()}"


def summarize(problems: list[Problem], ok_text: str) -> tuple[Status, str]:
    """The worst status and every reason, worst first ("ok_text" when there is none)."""
    if not problems:
        return "passing", ok_text
    ordered = sorted(problems, key=lambda p: -_RANK[p.status])
    return ordered[0].status, "; ".join(dict.fromkeys(p.reason for p in ordered))


class SelfHealth:
    """The tool's own service and TTL check on its local agent, kept current from `probe`."""

    def __init__(self, client: Client, config: SelfHealthConfig, tool: str, probe: Probe,
                 ok_text: str = "") -> None:
        self.client = client
        self.config = config
        self.tool = tool
        self.probe = probe
        self.ok_text = ok_text or f"{tool}: working"
        self.service_id = config.service_id()
        self.check_id = f"service:{self.service_id}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registered = False
        self._last: tuple[Status, str] | None = None
        self._last_write = 0.0

    def start(self) -> SelfHealth:
        """Register (retried in the background until the agent answers) and keep the check current."""
        self._thread = threading.Thread(target=self._run, name="self-health", daemon=True)
        self._thread.start()
        return self

    def report_now(self) -> None:
        """Probe and write the check at once (e.g. just before a failing exit)."""
        self._tick(force=True)

    def stop(self, deregister: bool = True) -> None:
        """Stop updating; on a clean exit deregister, else leave the (critical) check for all to see."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if deregister and self._registered:
            try:
                self.client.agent.service_deregister(self.service_id)
                log.info("deregistered %s", self.service_id)
            except ConsulError as e:
                log.warning("deregistering %s failed: %s", self.service_id, e)
        elif not deregister:  # leave the reason behind (registering now if we never got to)
            if self._registered:
                self._tick(force=True)
            else:
                self._register()

    # -- background --------------------------------------------------------------------

    def _register(self) -> bool:
        c = self.config
        status, output = self._state()
        # registered with another status, so that the update below is a status change: the agent
        # syncs it (and its output) to the catalog at once, not on check_update_interval
        initial = "warning" if status == "critical" else "critical"
        definition: dict[str, object] = {
            "ID": self.service_id, "Name": c.name, "Tags": list(c.tags), "Meta": {"meshctl-tool": self.tool},
            "Check": {"CheckID": self.check_id, "Name": f"{self.tool} self-check", "TTL": format_duration(c.ttl),
                      "Status": initial, "Notes": f"meshctl {self.tool} reports its own health",
                      "DeregisterCriticalServiceAfter": format_duration(c.deregister_critical_after)},
        }
        if c.port:
            definition["Port"] = c.port
        try:
            self.client.agent.service_register(definition)
            self.client.agent.check_update(self.check_id, status, output)
        except ConsulError as e:
            log.warning("registering %s with the agent failed: %s (retrying)", self.service_id, e)
            return False
        self._registered = True
        self._last, self._last_write = (status, output), time.monotonic()
        log.info("registered %s (%s) with a %s TTL check", self.service_id, c.name, format_duration(c.ttl))
        return True

    def _state(self) -> tuple[Status, str]:
        try:
            problems = self.probe()
        except Exception as e:  # a probe bug must not stop the heartbeat
            problems = [Problem("critical", f"{self.tool}: health probe failed: {e}")]
        return summarize(problems, self.ok_text)

    def _tick(self, force: bool = False) -> None:
        if not self._registered:
            return
        state = self._state()
        now = time.monotonic()
        if not force and state == self._last and now - self._last_write < self.config.ttl / 2:
            return
        try:
            self.client.agent.check_update(self.check_id, *state)
        except ConsulError as e:
            if "does not have associated TTL" in str(e) or getattr(e, "status", None) == 404:
                self._registered = False  # the agent lost it (restarted without state): register again
            log.debug("updating %s failed: %s", self.check_id, e)
            return
        if state != self._last:
            log.info("self-check %s: %s (%s)", self.check_id, state[0], state[1])
        self._last, self._last_write = state, now

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._registered:
                self._register()
            else:
                self._tick()
            self._stop.wait(PROBE_INTERVAL)
