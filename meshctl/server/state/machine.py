"""`State`: the tables of every part, one `apply` dispatching typed commands, snapshots."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar, cast

from meshctl.server import watchkeys as wk
from meshctl.server.commands import (
    KVCAS,
    ACLBootstrap,
    ACLInit,
    ACLPolicyDelete,
    ACLPolicySet,
    ACLRoleDelete,
    ACLRoleSet,
    ACLTokenDelete,
    ACLTokenSet,
    AutopilotSet,
    CheckUpdate,
    Command,
    CoordinateUpdate,
    Deregister,
    EventFire,
    JSONObject,
    KVDelete,
    KVDeleteCAS,
    KVDeleteTree,
    KVLock,
    KVSet,
    KVUnlock,
    QueryDelete,
    QuerySet,
    Register,
    Restore,
    ServerMember,
    SessionCreate,
    SessionDestroy,
    SnapshotData,
    StateError,
    TombstoneReap,
    Txn,
    decode,
)
from meshctl.server.state.events import EventsMixin
from meshctl.server.state.kv import KVEntry, b64
from meshctl.server.state.txn import TxnMixin

# State.snapshot()["Format"]: 2 added the optional "Queries" and "Coordinates" (written only when the
# store has or had some, so a store without them writes what format 1 wrote); 1 and 0 (no Format,
# the same fields as 1) restore unchanged, with no queries and no coordinates.
SNAPSHOT_FORMAT = 2

Handler = Callable[[Any, Any], object]  # (state, command) -> result


def _acl() -> ModuleType:
    """meshctl.server.acl.state, imported late (it imports this package)."""
    from meshctl.server.acl import state as acl_state

    return acl_state


class State(TxnMixin, EventsMixin):
    """The replicated state. `apply(command)` changes it; the other public methods read it."""

    _HANDLERS: ClassVar[dict[type[Command], Handler]] = {}

    def __init__(self, datacenter: str = "dc1") -> None:
        super().__init__(datacenter)
        self.acl = _acl().empty()

    # ------------------------------------------------------------------ applying commands

    def apply(self, command: Command | Mapping[str, object]) -> Any:
        """Apply one command (typed, or its wire dict) and return its result.

        Raises StateError without changing state.
        """
        cmd = command if isinstance(command, Command) else decode(command)
        handler = self._HANDLERS.get(type(cmd))
        if handler is None:
            if isinstance(cmd, ServerMember):
                raise StateError(f"{cmd.OP!r} is applied by the Raft store (the server directory), not the state")
            raise StateError(f"unknown command {cmd.OP!r}")
        self._write_index = None
        self.now = max(self.now, float(cmd.now or 0.0))
        return handler(self, cmd)

    def _apply_acl(self, cmd: Command) -> object:
        """ACL commands live in acl/state.py (pure functions over `self.acl`)."""
        return _acl().apply(self, cmd)

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> SnapshotData:
        """Everything, as plain data (for Raft snapshots and `meshctl snapshot save`)."""
        return self._snapshot([snapshot_kv(e) for e in self.kv.values()])

    def _snapshot(self, kv: list[list[Any]]) -> SnapshotData:
        snap: SnapshotData = {
            "Format": SNAPSHOT_FORMAT,
            "Datacenter": self.datacenter,
            "Index": self.index,
            "KV": kv,
            "Tombstones": self.tombstones,
            "LockDelays": self.lock_delays,
            "Nodes": self.nodes,
            "Services": self.services,
            "Checks": self.checks,
            "Sessions": self.sessions,
            "Events": self.events,
            "EventLTime": self.event_ltime,
            "TableIndex": self.table_index,
            "ServiceIndex": self.service_index,
            "NodeIndex": self.node_index,
            "Now": self.now,
            "ACL": _acl().snapshot(self.acl),
        }
        if self.queries or self.query_index > 1:
            snap["Queries"] = {"Index": self.query_index, "Items": cast(JSONObject, self.queries)}
        if self.coordinates:
            snap["Coordinates"] = {"Index": self.coordinate_index, "Items": cast(JSONObject, self.coordinates)}
        if self.autopilot is not None:  # only once an operator set one (older snapshots have none)
            snap["Autopilot"] = self.autopilot
        return snap

    def snapshot_view(self) -> tuple[dict[str, Any], list[KVEntry]]:
        """The state now, cheap to take: `snapshot()` without its "KV", which the entries give
        (`snapshot_kv` of each, on any thread: they are never changed once in the table)."""
        snap: dict[str, Any] = dict(self._snapshot([]))
        entries = list(self.kv.values())
        for key in ("Tombstones", "LockDelays", "TableIndex", "ServiceIndex", "NodeIndex"):
            snap[key] = dict(snap[key])
        for key in ("Nodes", "Services", "Checks", "Sessions", "Events", "ACL", "Queries",
                    "Coordinates"):  # records change in place
            if key in snap:
                snap[key] = copy.deepcopy(snap[key])
        return snap, entries

    def _apply_restore(self, cmd: Restore) -> bool:
        """Replace everything with a snapshot; every watch key is woken."""
        snap: Any = cmd.snapshot
        version = int(snap.get("Format") or 0)
        if version > SNAPSHOT_FORMAT:
            raise StateError(f"snapshot format {version} is newer than this server understands ({SNAPSHOT_FORMAT})")
        fresh = State(snap.get("Datacenter", self.datacenter))
        fresh.index = max(int(snap["Index"]), self.index)
        for key, value, flags, ci, mi, li, sess in snap["KV"]:
            fresh.kv[key] = KVEntry(key, None if value is None else base64.b64decode(value), flags, ci, mi, li, sess)
        fresh.kv_keys = sorted(fresh.kv)
        fresh.tombstones = dict(snap["Tombstones"])
        fresh.tomb_keys = sorted(fresh.tombstones)
        fresh.lock_delays = dict(snap["LockDelays"])
        fresh.nodes, fresh.services, fresh.checks = snap["Nodes"], snap["Services"], snap["Checks"]
        fresh.sessions, fresh.events = snap["Sessions"], snap["Events"]
        fresh.event_ltime = snap["EventLTime"]
        fresh.table_index = dict(snap["TableIndex"])
        fresh.service_index, fresh.node_index = dict(snap["ServiceIndex"]), dict(snap["NodeIndex"])
        fresh.now = snap.get("Now", 0.0)
        fresh.acl = _acl().restore(snap.get("ACL"))
        for key, table, index in (("Queries", "queries", "query_index"),
                                  ("Coordinates", "coordinates", "coordinate_index")):
            part = snap.get(key) or {}
            setattr(fresh, table, dict(part.get("Items") or {}))
            setattr(fresh, index, int(part.get("Index") or 1))
        fresh.autopilot = snap.get("Autopilot")
        self.__dict__.update(fresh.__dict__)
        self._changed = {wk.EVERYTHING}
        return True


    def _apply_autopilot_set(self, cmd: AutopilotSet) -> bool:
        """The operator's autopilot configuration (replaced whole, never changed in place)."""
        current = self.autopilot or {}
        if cmd.cas is not None and int(cmd.cas) != int(current.get("ModifyIndex") or 0):
            return False
        index = self.bump()
        self.autopilot = {**cmd.config, "CreateIndex": current.get("CreateIndex") or index, "ModifyIndex": index}
        return True


def snapshot_kv(e: KVEntry) -> list[Any]:
    """One entry as `snapshot()["KV"]` lists it."""
    return [e.key, b64(e.value), e.flags, e.create_index, e.modify_index, e.lock_index, e.session]


_handlers: dict[type[Command], Handler] = {
    **{cls: State._apply_kv for cls in (KVSet, KVCAS, KVLock, KVUnlock, KVDelete, KVDeleteCAS, KVDeleteTree)},
    Txn: State._apply_txn,
    Register: State._apply_register,
    Deregister: State._apply_deregister,
    CheckUpdate: State._apply_check_update,
    SessionCreate: State._apply_session_create,
    SessionDestroy: State._apply_session_destroy,
    EventFire: State._apply_event_fire,
    TombstoneReap: State._apply_tombstone_reap,
    Restore: State._apply_restore,
    QuerySet: State._apply_query_set,
    QueryDelete: State._apply_query_delete,
    CoordinateUpdate: State._apply_coordinate_update,
    AutopilotSet: State._apply_autopilot_set,
    **{cls: State._apply_acl for cls in (ACLInit, ACLBootstrap, ACLTokenSet, ACLTokenDelete, ACLPolicySet,
                                         ACLPolicyDelete, ACLRoleSet, ACLRoleDelete)},
}
State._HANDLERS.update(_handlers)
