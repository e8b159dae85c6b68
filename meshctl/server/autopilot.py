"""Autopilot (Consul's operator-friendly server management): server health and dead server cleanup.

The configuration is replicated (`AutopilotSet`, kept in `State.autopilot`); until an operator
sets one, the agent's defaults apply: Consul's (LastContactThreshold 200ms, MaxTrailingLogs 250,
MinQuorum 0, ServerStabilizationTime 10s) except CleanupDeadServers, which is false here: a
removed server does not yet rejoin by itself (Consul's does, through Serf), so a server that was
only paused or partitioned for longer than ServerStabilizationTime would stay out for good.

The leader computes each voter's health from what it sees of Raft: a voter is healthy when its
last answer to the leader is within LastContactThreshold and its log trails the leader's by at
most MaxTrailingLogs. Its node status is `alive` while the leader holds a Raft connection to
it, `failed` otherwise (the gossip status of Consul). With CleanupDeadServers, a voter failed for
longer than ServerStabilizationTime is removed from the Raft configuration, one at a time, and
only while the live voters are a majority (the removal has to commit) and at least MinQuorum
voters remain. A removed server that comes back must join again (fresh data dir, -retry-join).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from meshctl import __version__
from meshctl.durations import format_duration, parse_duration

if TYPE_CHECKING:
    from meshctl.server.cluster import ServerCluster

log = logging.getLogger(__name__)
TICK = 1.0  # seconds between the leader's health rounds


@dataclass(frozen=True)
class AutopilotConfig:
    """Consul's AutopilotConfiguration (durations in seconds)."""

    cleanup_dead_servers: bool = False  # Consul: true; see the module docstring
    last_contact_threshold: float = 0.2
    max_trailing_logs: int = 250
    min_quorum: int = 0
    server_stabilization_time: float = 10.0
    redundancy_zone_tag: str = ""
    disable_upgrade_migration: bool = False
    upgrade_version_tag: str = ""
    create_index: int = 0
    modify_index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"CleanupDeadServers": self.cleanup_dead_servers,
                "LastContactThreshold": format_duration(self.last_contact_threshold),
                "MaxTrailingLogs": self.max_trailing_logs, "MinQuorum": self.min_quorum,
                "ServerStabilizationTime": format_duration(self.server_stabilization_time),
                "RedundancyZoneTag": self.redundancy_zone_tag,
                "DisableUpgradeMigration": self.disable_upgrade_migration,
                "UpgradeVersionTag": self.upgrade_version_tag,
                "CreateIndex": self.create_index, "ModifyIndex": self.modify_index}

    def to_record(self) -> dict[str, Any]:
        """What is replicated (the indexes are the state's)."""
        out = self.to_json()
        del out["CreateIndex"], out["ModifyIndex"]
        return out

    @classmethod
    def from_json(cls, body: Any, base: AutopilotConfig | None = None) -> AutopilotConfig:
        """A configuration from Consul's JSON (missing fields: `base`'s). ValueError names a bad field."""
        if not isinstance(body, dict):
            raise ValueError("Request decode failed: the body must be a JSON object")
        cfg = base or cls()
        changes: dict[str, Any] = {}
        for name, key, kind in _FIELDS:
            if key not in body or body[key] is None:
                continue
            value = body[key]
            if kind == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"Request decode failed: {key} must be a boolean")
            elif kind == "uint":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"Request decode failed: {key} must be a non-negative integer")
            elif kind == "duration":
                value = _duration(key, value)
            elif not isinstance(value, str):
                raise ValueError(f"Request decode failed: {key} must be a string")
            changes[name] = value
        return replace(cfg, **changes)

    @classmethod
    def from_record(cls, record: dict[str, Any] | None, base: AutopilotConfig) -> AutopilotConfig:
        """The replicated configuration (None: `base`, the agent's defaults)."""
        if not record:
            return base
        cfg = cls.from_json(record, base)
        return replace(cfg, create_index=int(record.get("CreateIndex") or 0),
                       modify_index=int(record.get("ModifyIndex") or 0))


_FIELDS = (("cleanup_dead_servers", "CleanupDeadServers", "bool"),
           ("last_contact_threshold", "LastContactThreshold", "duration"),
           ("max_trailing_logs", "MaxTrailingLogs", "uint"), ("min_quorum", "MinQuorum", "uint"),
           ("server_stabilization_time", "ServerStabilizationTime", "duration"),
           ("redundancy_zone_tag", "RedundancyZoneTag", "str"),
           ("disable_upgrade_migration", "DisableUpgradeMigration", "bool"),
           ("upgrade_version_tag", "UpgradeVersionTag", "str"))


def _duration(key: str, value: Any) -> float:
    """A duration as Consul's JSON has it: a Go duration string, or a number of nanoseconds."""
    if isinstance(value, bool):
        raise ValueError(f"Request decode failed: {key} must be a duration")
    if isinstance(value, int | float):
        seconds = float(value) / 1e9
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value) if not value.strip().lstrip("+-").replace(".", "").isdigit() \
                else float(value) / 1e9
        except ValueError:
            raise ValueError(f"Request decode failed: {key}: invalid duration {value!r}") from None
    else:
        raise ValueError(f"Request decode failed: {key} must be a duration")
    if seconds < 0:
        raise ValueError(f"Request decode failed: {key} must not be negative")
    return seconds


@dataclass
class ServerState:
    """One voter as autopilot sees it (Consul's ServerHealth / AutopilotServer)."""

    id: str
    name: str
    address: str
    node_status: str  # alive | failed
    leader: bool
    last_contact: float | None  # seconds since its last answer to the leader (None: never answered)
    last_term: int
    last_index: int
    healthy: bool
    stable_since: float  # unix time its health last changed

    def health_json(self) -> dict[str, Any]:
        return {"ID": self.id, "Name": self.name, "Address": self.address, "SerfStatus": self.node_status,
                "Version": __version__, "Leader": self.leader, "LastContact": self._contact(),
                "LastTerm": self.last_term, "LastIndex": self.last_index, "Healthy": self.healthy, "Voter": True,
                "StableSince": rfc3339(self.stable_since)}

    def state_json(self) -> dict[str, Any]:
        return {"ID": self.id, "Name": self.name, "Address": self.address, "NodeStatus": self.node_status,
                "Version": __version__, "LastContact": self._contact(), "LastTerm": self.last_term,
                "LastIndex": self.last_index, "Healthy": self.healthy, "StableSince": rfc3339(self.stable_since),
                "ReadReplica": False, "Status": "leader" if self.leader else "voter", "Meta": {},
                "NodeType": "voter"}

    def _contact(self) -> str:
        return format_duration(round(self.last_contact, 6)) if self.last_contact is not None else "0s"


def rfc3339(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def failure_tolerance(servers: list[ServerState]) -> int:
    """Healthy voters that could be lost with a quorum left (Consul's FailureTolerance)."""
    quorum = len(servers) // 2 + 1
    return max(0, sum(1 for s in servers if s.healthy) - quorum)


def health_json(servers: list[ServerState]) -> dict[str, Any]:
    """GET /v1/operator/autopilot/health's body."""
    return {"Healthy": all(s.healthy for s in servers), "FailureTolerance": failure_tolerance(servers),
            "Servers": [s.health_json() for s in servers]}


def state_json(servers: list[ServerState]) -> dict[str, Any]:
    """GET /v1/operator/autopilot/state's body."""
    tolerance = failure_tolerance(servers)
    leader = next((s.id for s in servers if s.leader), "")
    return {"Healthy": all(s.healthy for s in servers), "FailureTolerance": tolerance,
            "OptimisticFailureTolerance": max(0, sum(1 for s in servers if s.node_status == "alive")
                                              - (len(servers) // 2 + 1)),
            "Servers": {s.id: s.state_json() for s in servers}, "Leader": leader,
            "Voters": [s.id for s in servers]}


class Autopilot:
    """The leader's side of autopilot for one server (`run` is spawned by the cluster)."""

    def __init__(self, cluster: ServerCluster, defaults: AutopilotConfig | None = None) -> None:
        self.cluster = cluster
        self.defaults = defaults or AutopilotConfig()
        self._down_since: dict[str, float] = {}  # address -> monotonic time the leader lost it
        self._stable: dict[str, tuple[bool, float]] = {}  # address -> (healthy, unix time since)

    def config(self) -> AutopilotConfig:
        return AutopilotConfig.from_record(self.cluster.store.state.autopilot, self.defaults)

    async def servers(self) -> list[ServerState]:
        """Every voter's health (meaningful on the leader; a follower reports what it sees)."""
        store = self.cluster.store
        cfg = self.config()
        replica = store.replica
        progress: dict[str, tuple[int, float | None]] = {}
        if replica is not None and store.is_leader:
            progress = await store.raft_call(replica.peer_progress)
        term = int(replica.raftCurrentTerm) if replica is not None else 0
        last_index = int(replica.raftCommitIndex) if replica is not None else 0
        directory = self.cluster.directory()
        leader = store.leader_address()
        now, wall = time.monotonic(), time.time()
        out = []
        for addr in store.peers():
            info = directory.get(addr) or {}
            alive = store.connected(addr)
            if alive:
                self._down_since.pop(addr, None)
            else:
                self._down_since.setdefault(addr, now)
            if addr == self.cluster.cfg.raft_address:
                contact: float | None = 0.0 if store.is_leader else store.last_contact_ms / 1000
                index = last_index
            else:
                index, contact = progress.get(addr, (0, None))
            healthy = alive and contact is not None and contact <= max(cfg.last_contact_threshold, 0.0) + \
                self._slack() and last_index - index <= cfg.max_trailing_logs
            was, since = self._stable.get(addr, (healthy, wall))
            if was != healthy:
                since = wall
            self._stable[addr] = (healthy, since)
            out.append(ServerState(id=str(info.get("ID") or addr), name=str(info.get("Node") or addr), address=addr,
                                   node_status="alive" if alive else "failed", leader=addr == leader,
                                   last_contact=contact, last_term=term if alive else 0, last_index=index,
                                   healthy=healthy, stable_since=since))
        return out

    def _slack(self) -> float:
        """How old a healthy follower's last answer may look beyond the threshold: pysyncobj records
        answers on its own tick, and followers answering every heartbeat were measured at ~0.3 s."""
        return 0.5

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # leadership can move mid-round; try again next time
                log.debug("autopilot round failed", exc_info=True)

    async def tick(self) -> None:
        store = self.cluster.store
        if not store.is_leader:
            self._down_since.clear()  # a new leader gives every server a full stabilization time
            return
        servers = await self.servers()
        cfg = self.config()
        if not cfg.cleanup_dead_servers:
            return
        now = time.monotonic()
        dead = [s for s in servers if s.node_status == "failed" and not s.leader
                and now - self._down_since.get(s.address, now) > cfg.server_stabilization_time]
        alive = sum(1 for s in servers if s.node_status == "alive")
        if not dead or alive <= len(servers) // 2 or len(servers) - 1 < max(cfg.min_quorum, 1):
            return
        victim = dead[0]
        log.info("autopilot: removing dead server %s (%s), failed for more than %s", victim.name, victim.address,
                 format_duration(cfg.server_stabilization_time))
        await store.remove_peer(victim.address)
        self._down_since.pop(victim.address, None)
        self._stable.pop(victim.address, None)


def single_server(node: str, node_id: str, address: str, index: int) -> list[ServerState]:
    """A -dev agent: the only server, healthy, its own leader."""
    return [ServerState(id=node_id, name=node, address=address, node_status="alive", leader=True, last_contact=0.0,
                        last_term=1, last_index=index, healthy=True, stable_since=time.time())]
