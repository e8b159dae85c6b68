"""The local agent: this node's own services and checks, kept in the catalog.

Consul's agents own their node's services and checks and push them to the catalog; the
API's /v1/agent/* endpoints act on this object. Check runners (HTTP, TCP, script, ...)
plug in through `runners`: a map from check type to a factory; TTL checks are handled
here, since the API drives them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from meshctl import __version__
from meshctl.durations import format_duration
from meshctl.server.agent.definitions import CheckDefinition, DefinitionError, duration_seconds, parse_service
from meshctl.server.commands import CheckDef, CheckUpdate, Deregister, Register, ServiceDef
from meshctl.server.http.session import MIN_TTL as SESSION_TTL_MIN
from meshctl.server.state import NODE_MAINT_CHECK_ID, SERF_CHECK_ID, SERVICE_MAINT_PREFIX
from meshctl.server.stats import agent_stats

log = logging.getLogger(__name__)

MAX_OUTPUT = 4096
NODE_MAINT_NOTE = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
SERVICE_MAINT_NOTE = ("Maintenance mode is enabled for this service, but no reason was provided. "
                      "This is a default message.")

# check type -> factory(agent, definition) returning an object with start() and stop()
CheckRunnerFactory = Callable[["LocalAgent", CheckDefinition], Any]


class AgentError(Exception):
    """An agent API error with its HTTP status (Consul's texts)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


class LocalAgent:
    """This node: its record in the catalog, its services, its checks and their timers."""

    def __init__(self, store: Any, node_name: str, address: str = "127.0.0.1", datacenter: str = "dc1",
                 server: bool = True, node_id: str | None = None, node_meta: dict[str, str] | None = None,
                 runners: dict[str, CheckRunnerFactory] | None = None, enable_script_checks: bool = False,
                 enable_local_script_checks: bool = False, ports: dict[str, int] | None = None) -> None:
        self.store = store
        self.node_name = node_name
        self.node_id = node_id or str(uuid.uuid4())
        self.address = address
        self.datacenter = datacenter
        self.server = server
        self.node_meta = dict(node_meta or {})
        self.runners = dict(runners or {})
        self.enable_script_checks = enable_script_checks
        self.enable_local_script_checks = enable_local_script_checks
        self.ports = dict(ports or {})
        self.services: dict[str, dict[str, Any]] = {}
        self.checks: dict[str, CheckDefinition] = {}
        self._ttl_timers: dict[str, asyncio.TimerHandle] = {}
        self._running: dict[str, Any] = {}
        self._deferred: dict[str, asyncio.TimerHandle] = {}  # check ID -> deferred output write
        self.output_update_interval = 300.0
        self.started = time.time()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Register this node with a passing serfHealth check (and the consul service on servers)."""
        service: ServiceDef | None = None
        if self.server:
            service = {"ID": "consul", "Service": "consul", "Port": self.ports.get("server", 8300)}
        await self.store.apply(Register(
            id=self.node_id, node=self.node_name, address=self.address, node_meta=self.node_meta,
            tagged_addresses={"lan": self.address, "wan": self.address},
            checks=({"CheckID": SERF_CHECK_ID, "Name": "Serf Health Status", "Status": "passing",
                     "Output": "Agent alive and reachable", "Type": ""},),
            service=service))

    async def stop(self) -> None:
        for handle in self._ttl_timers.values():
            handle.cancel()
        self._ttl_timers.clear()
        for handle in self._deferred.values():
            handle.cancel()
        self._deferred.clear()
        for runner in self._running.values():
            runner.stop()
        self._running.clear()

    # ------------------------------------------------------------------ services

    async def add_service(self, raw: Any, replace_existing_checks: bool = False, source: str = "api") -> None:
        """Register a service and its checks (PUT /v1/agent/service/register)."""
        try:
            service, checks = parse_service(raw)
        except DefinitionError as exc:
            raise AgentError(400, str(exc)) from None
        for check in checks:
            self._check_allowed(check, source)
        sid = service["ID"]
        old_checks = [c for c in self.checks.values() if c.service_id == sid]
        self.services[sid] = service
        await self.store.apply(Register(self.node_name, skip_node_update=True, address=self.address,
                                        service=cast(ServiceDef, service)))
        if replace_existing_checks:
            keep = {c.check_id for c in checks}
            for old in old_checks:
                if old.check_id not in keep:
                    await self.remove_check(old.check_id)
        for check in checks:
            await self._add_check(check)

    async def remove_service(self, sid: str) -> None:
        if sid not in self.services:
            raise AgentError(404, f'Unknown service ID "{sid}". Ensure that the service ID is passed, '
                                  "not the service name.")
        for cid in [c.check_id for c in self.checks.values() if c.service_id == sid]:
            self._stop_check(cid)
            del self.checks[cid]
        del self.services[sid]
        await self.store.apply(Deregister(self.node_name, service_id=sid))

    # ------------------------------------------------------------------ checks

    def _check_allowed(self, check: CheckDefinition, source: str) -> None:
        alias_node = check.spec.get("AliasNode") or self.node_name
        if check.type == "alias" and alias_node != self.node_name and not self.server:
            # a client agent holds no catalog to follow another node in (checks.AliasCheck)
            raise AgentError(400, f"Alias checks of another node ({alias_node}) are not supported on "
                                  "meshctl client agents: register the check on a server agent")
        if check.type in ("script", "docker"):
            allowed = self.enable_script_checks or (source == "config" and self.enable_local_script_checks)
            if not allowed:
                raise AgentError(400, "Scripts are disabled on this agent; to enable, configure "
                                      "'enable_script_checks' or 'enable_local_script_checks' to true")

    async def add_check(self, check: CheckDefinition, source: str = "api") -> None:
        """Register a check (PUT /v1/agent/check/register)."""
        self._check_allowed(check, source)
        if check.service_id:
            svc = self.services.get(check.service_id)
            if svc is None:
                raise AgentError(404, f'ServiceID "{check.service_id}" does not exist')
            check.service_name = svc["Service"]
        await self._add_check(check)

    async def _add_check(self, check: CheckDefinition) -> None:
        self._stop_check(check.check_id)
        self.checks[check.check_id] = check
        await self.store.apply(Register(self.node_name, skip_node_update=True, address=self.address,
                                        checks=(cast(CheckDef, check.catalog_json()),)))
        if check.type == "ttl":
            self._arm_ttl(check)
        elif check.type in self.runners:
            runner = self.runners[check.type](self, check)
            self._running[check.check_id] = runner
            runner.start()

    def _stop_check(self, cid: str) -> None:
        for timers in (self._ttl_timers, self._deferred):
            handle = timers.pop(cid, None)
            if handle is not None:
                handle.cancel()
        runner = self._running.pop(cid, None)
        if runner is not None:
            runner.stop()

    async def remove_check(self, cid: str) -> None:
        if cid not in self.checks:
            raise AgentError(404, f'Unknown check ID "{cid}". Ensure that the check ID is passed, not the check name.')
        self._stop_check(cid)
        del self.checks[cid]
        await self.store.apply(Deregister(self.node_name, check_id=cid))

    async def update_check(self, cid: str, status: str, output: str) -> None:
        """Record a check result; writes to the store only when something changed.

        A status change is written at once; an output-only change is deferred and written
        at most once per `output_update_interval` (Consul's check_update_interval, 5 min).
        """
        check = self.checks.get(cid)
        if check is None:
            return
        if check.status == status and check.output == output:
            return
        status_changed = check.status != status
        check.status, check.output = status, output
        if not status_changed and self.output_update_interval > 0:
            if cid not in self._deferred:
                loop = asyncio.get_running_loop()
                self._deferred[cid] = loop.call_later(
                    self.output_update_interval, lambda: asyncio.ensure_future(self._flush_check(cid)))
            return
        await self._flush_check(cid)

    async def _flush_check(self, cid: str) -> None:
        """Write a check's current status and output to the store."""
        handle = self._deferred.pop(cid, None)
        if handle is not None:
            handle.cancel()
        check = self.checks.get(cid)
        if check is None:
            return
        await self.store.apply(CheckUpdate(self.node_name, cid, check.status, check.output))

    async def ttl_update(self, cid: str, status: str, output: str) -> None:
        """pass/warn/fail/update on a TTL check: set the status and restart its timer."""
        check = self.checks.get(cid)
        if check is None:
            raise AgentError(404, f'Unknown check ID "{cid}". Ensure that the check ID is passed, not the check name.')
        if check.type != "ttl":
            raise AgentError(500, f'CheckID "{cid}" does not have associated TTL')
        if len(output) > MAX_OUTPUT:
            output = f"{output[:MAX_OUTPUT]} ... (captured {MAX_OUTPUT} of {len(output)} bytes)"
        self._arm_ttl(check)
        await self.update_check(cid, status, output)

    def _arm_ttl(self, check: CheckDefinition) -> None:
        handle = self._ttl_timers.pop(check.check_id, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._ttl_timers[check.check_id] = loop.call_later(
            duration_seconds(check.ttl), lambda: asyncio.ensure_future(self._ttl_expired(check.check_id)))

    async def _ttl_expired(self, cid: str) -> None:
        check = self.checks.get(cid)
        if check is None:
            return
        self._ttl_timers.pop(cid, None)
        output = "TTL expired"
        if check.output and not check.output.startswith("TTL expired"):
            output = f"TTL expired (last output before timeout follows): {check.output}"
        log.info("check %s: TTL expired", cid)
        try:
            await self.update_check(cid, "critical", output)
        except Exception:
            log.exception("could not mark check %s critical", cid)

    # ------------------------------------------------------------------ maintenance

    async def node_maintenance(self, enable: bool, reason: str) -> None:
        await self._maintenance(NODE_MAINT_CHECK_ID, "Node Maintenance Mode", "", enable, reason or NODE_MAINT_NOTE)

    async def service_maintenance(self, sid: str, enable: bool, reason: str) -> None:
        if sid not in self.services:
            raise AgentError(404, f'Unknown service ID "{sid}". Ensure that the service ID is passed, '
                                  "not the service name.")
        await self._maintenance(SERVICE_MAINT_PREFIX + sid, "Service Maintenance Mode", sid, enable,
                                reason or SERVICE_MAINT_NOTE)

    async def _maintenance(self, cid: str, name: str, sid: str, enable: bool, reason: str) -> None:
        if enable:
            if cid in self.checks:
                return
            check = CheckDefinition(check_id=cid, name=name, type="maintenance", status="critical", notes=reason,
                                    service_id=sid)
            self.checks[cid] = check
            await self.store.apply(Register(self.node_name, skip_node_update=True, address=self.address,
                                            checks=(cast(CheckDef, check.catalog_json()),)))
        elif cid in self.checks:
            await self.remove_check(cid)

    # ------------------------------------------------------------------ views

    def service_json(self, sid: str) -> dict[str, Any]:
        svc = self.services[sid]
        out = {
            "ID": svc["ID"], "Service": svc["Service"], "Tags": list(svc["Tags"]), "Meta": dict(svc["Meta"]),
            "Port": svc["Port"], "Address": svc["Address"], "Weights": dict(svc["Weights"]),
            "EnableTagOverride": svc["EnableTagOverride"], "Datacenter": self.datacenter,
        }
        if svc.get("Kind"):
            out["Kind"] = svc["Kind"]
        if svc.get("TaggedAddresses"):
            out["TaggedAddresses"] = svc["TaggedAddresses"]
        if svc.get("Locality"):
            out["Locality"] = svc["Locality"]
        return out

    def check_json(self, cid: str) -> dict[str, Any]:
        check = self.checks[cid]
        out = check.catalog_json()
        out.update(Node=self.node_name, ServiceName=check.service_name,
                   ServiceTags=list(self.services.get(check.service_id, {}).get("Tags", [])), ExposedPort=0)
        return out

    def self_json(self) -> dict[str, Any]:
        member = self.member_json()
        # Config: today's Consul fields, plus SessionTTLMin in nanoseconds as Consul before 1.0 had it
        # there (Patroni reads it to raise its session TTL after a 500 "Invalid Session TTL").
        # DebugConfig: a few fields of Consul's sanitised runtime config (durations as Go prints them).
        ttl_min_ns = int(SESSION_TTL_MIN * 10**9)
        return {
            "Config": {"Datacenter": self.datacenter, "PrimaryDatacenter": self.datacenter,
                       "NodeName": self.node_name, "NodeID": self.node_id, "Server": self.server,
                       "Revision": "meshctl", "Version": __version__, "BuildDate": "",
                       "SessionTTLMin": ttl_min_ns},
            "DebugConfig": {"NodeName": self.node_name, "NodeID": self.node_id, "Datacenter": self.datacenter,
                            "PrimaryDatacenter": self.datacenter, "ServerMode": self.server,
                            "Revision": "meshctl", "Version": __version__,
                            "SessionTTLMin": format_duration(SESSION_TTL_MIN), "NodeMeta": dict(self.node_meta)},
            "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05},
            "Member": member,
            "Stats": agent_stats(self),  # meshctl/server/stats.py
            "Meta": dict(self.node_meta),
            "xDS": {},
        }

    def member_json(self) -> dict[str, Any]:
        return {
            "Name": self.node_name, "Addr": self.address, "Port": self.ports.get("serf_lan", 8301),
            "Tags": {"dc": self.datacenter, "role": "consul" if self.server else "node",
                     "port": str(self.ports.get("server", 8300)), "id": self.node_id, "vsn": "2",
                     "build": __version__},
            "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
            "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
        }
