"""The store's state machine: KV, catalog, checks, sessions and events.

Pure and deterministic: no sockets, no clocks, no randomness. Every change arrives as a
command (a plain JSON-serialisable dict, see `commands.py`); time and generated IDs are
chosen by whoever builds the command (the leader) and travel inside it, so replicas that
apply the same commands hold the same state.

Records are kept in Consul's JSON shapes, so queries return them almost as stored.
Indexes: one global index that only rises (never 0), plus per-table, per-key and
per-service indexes for blocking queries; deletes leave tombstones so a prefix's index
never goes backwards.

After each `apply`, `drain_changes()` hands the watch keys that changed to whoever wakes
blocking queries (`watch.py`); the state machine itself knows nothing about waiters.
"""

from __future__ import annotations

import bisect
import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from meshctl.server import watchkeys as wk

MAX_EVENTS = 256
MAX_LOCK_DELAY_NS = 60 * 10**9
SERF_CHECK_ID = "serfHealth"
NODE_MAINT_CHECK_ID = "_node_maintenance"
SERVICE_MAINT_PREFIX = "_service_maintenance:"
STATUS_ORDER = {"passing": 0, "warning": 1, "critical": 2}


class StateError(Exception):
    """A command that cannot be applied; the message is Consul's error text (HTTP 500)."""


@dataclass(slots=True)
class KVEntry:
    """One key; `value` None stands for Consul's null value (an empty PUT)."""

    key: str
    value: bytes | None
    flags: int
    create_index: int
    modify_index: int
    lock_index: int = 0
    session: str = ""
    # serialised `[entry]` for plain GETs, keyed by what can change; derived, never replicated
    _wire: tuple[tuple[int, int, str], bytes] | None = field(default=None, repr=False, compare=False)

    def wire_list(self) -> bytes:
        """`[<this entry's JSON>]` as a single-key GET answers it, serialised once per version."""
        version = (self.modify_index, self.lock_index, self.session)
        if self._wire is None or self._wire[0] != version:
            self._wire = (version, json.dumps([self.to_json()], separators=(",", ":")).encode())
        return self._wire[1]

    def to_json(self, with_value: bool = True) -> dict[str, Any]:
        """Consul's KVPair JSON; Value is base64 (encoded by the caller via `b64`)."""
        out: dict[str, Any] = {
            "LockIndex": self.lock_index,
            "Key": self.key,
            "Flags": self.flags,
            "Value": b64(self.value) if with_value else None,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }
        if self.session:
            out["Session"] = self.session
        return out


def b64(value: bytes | None) -> str | None:
    import base64

    return None if value is None else base64.b64encode(value).decode("ascii")


class State:
    """The replicated state. `apply(command)` changes it; the other public methods read it."""

    def __init__(self, datacenter: str = "dc1") -> None:
        self.datacenter = datacenter
        self.index = 1  # never 0: clients treat 0 as "no index"
        self.kv: dict[str, KVEntry] = {}
        self.kv_keys: list[str] = []  # sorted, for prefix scans
        self.tombstones: dict[str, int] = {}
        self.tomb_keys: list[str] = []
        self.lock_delays: dict[str, float] = {}  # key -> unix time until which acquire fails
        self.nodes: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, dict[str, Any]]] = {}  # node -> id -> service
        self.checks: dict[str, dict[str, dict[str, Any]]] = {}  # node -> id -> check
        self.sessions: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.event_ltime = 0
        self.table_index: dict[str, int] = {t: 1 for t in wk.TABLES}
        self.service_index: dict[str, int] = {}  # lower-cased service name -> index
        self.node_index: dict[str, int] = {}
        self.now = 0.0  # the latest command time seen; commands carry their time in "Now"
        self.acl: dict[str, Any] = _acl().empty()  # tokens, policies, roles (acl/state.py)
        self._changed: set[str] = set()
        self._write_index: int | None = None
        self._applying: dict[str, Callable[[dict[str, Any]], Any]] = {
            "kv": self._apply_kv,
            "txn": self._apply_txn,
            "register": self._apply_register,
            "deregister": self._apply_deregister,
            "check_update": self._apply_check_update,
            "session_create": self._apply_session_create,
            "session_destroy": self._apply_session_destroy,
            "event_fire": self._apply_event_fire,
            "tombstone_reap": self._apply_tombstone_reap,
            "restore": self._apply_restore,
        }
        self._applying.update({op: self._apply_acl for op in _acl().OPS})

    # ------------------------------------------------------------------ applying commands

    def apply(self, command: dict[str, Any]) -> Any:
        """Apply one command and return its result. Raises StateError without changing state."""
        handler = self._applying.get(command.get("Op", ""))
        if handler is None:
            raise StateError(f"unknown command {command.get('Op')!r}")
        self._write_index = None
        self.now = max(self.now, float(command.get("Now") or 0.0))
        return handler(command)

    def drain_changes(self) -> set[str]:
        """The watch keys changed since the last drain."""
        changed, self._changed = self._changed, set()
        return changed

    def _bump(self, *keys: str) -> int:
        """Advance the global index once per command and mark watch keys as changed."""
        if self._write_index is None:
            self.index += 1
            self._write_index = self.index
        for key in keys:
            self._changed.add(key)
            if key in self.table_index:
                self.table_index[key] = self._write_index
        return self._write_index

    def _apply_acl(self, cmd: dict[str, Any]) -> Any:
        """ACL commands live in acl/state.py (pure functions over `self.acl`)."""
        return _acl().apply(self, cmd)

    # ------------------------------------------------------------------ KV

    def _apply_kv(self, cmd: dict[str, Any]) -> Any:
        return self._kv_op(cmd["Verb"], cmd, cmd.get("Now", 0.0))

    def _kv_op(self, verb: str, op: dict[str, Any], now: float) -> Any:
        key = op.get("Key", "")
        value = op.get("Value")
        flags = int(op.get("Flags") or 0)
        entry = self.kv.get(key)
        if verb == "set":
            self._kv_set(key, value, flags)
            return True
        if verb == "cas":
            index = int(op.get("Index") or 0)
            if (index == 0 and entry is not None) or (index != 0 and (entry is None or entry.modify_index != index)):
                return False
            self._kv_set(key, value, flags)
            return True
        if verb == "lock":
            session = op.get("Session", "")
            if session not in self.sessions:
                raise StateError(f'invalid session "{session}"')
            if entry is not None and entry.session and entry.session != session:
                return False
            if (entry is None or entry.session != session) and key in self.lock_delays:
                if self.lock_delays[key] > now:
                    return False
                del self.lock_delays[key]
            self._kv_set(key, value, flags, lock_session=session)
            return True
        if verb == "unlock":
            session = op.get("Session", "")
            if entry is None or entry.session != session:
                return False
            self._kv_set(key, value, flags, unlock=True)
            return True
        if verb == "delete":
            self._kv_delete(key)
            return True
        if verb == "delete-cas":
            index = int(op.get("Index") or 0)
            if entry is None:
                return True
            if entry.modify_index != index:
                return False
            self._kv_delete(key)
            return True
        if verb == "delete-tree":
            self._kv_delete_tree(key)
            return True
        raise StateError(f'unknown KV verb "{verb}"')

    def _kv_set(self, key: str, value: bytes | None, flags: int, lock_session: str | None = None,
                unlock: bool = False) -> None:
        entry = self.kv.get(key)
        if entry is not None and lock_session is None and not unlock:
            if entry.value == value and entry.flags == flags:
                return  # identical plain set: no-op, the index does not move (as Consul)
        index = self._bump(wk.KVS, wk.kv(key))
        if entry is None:
            entry = KVEntry(key, value, flags, index, index)
            self.kv[key] = entry
            bisect.insort(self.kv_keys, key)
        else:
            entry.value, entry.flags, entry.modify_index = value, flags, index
        if lock_session is not None and entry.session != lock_session:
            entry.session = lock_session
            entry.lock_index += 1
        if unlock:
            entry.session = ""
        if key in self.tombstones:
            del self.tombstones[key]
            self.tomb_keys.pop(bisect.bisect_left(self.tomb_keys, key))

    def _kv_delete(self, key: str) -> None:
        if key not in self.kv:
            return
        index = self._bump(wk.KVS, wk.kv(key))
        del self.kv[key]
        self.kv_keys.pop(bisect.bisect_left(self.kv_keys, key))
        if key not in self.tombstones:
            bisect.insort(self.tomb_keys, key)
        self.tombstones[key] = index

    def _kv_delete_tree(self, prefix: str) -> None:
        for key in list(self._prefix_keys(self.kv_keys, prefix)):
            self._kv_delete(key)

    def _apply_tombstone_reap(self, cmd: dict[str, Any]) -> None:
        """Forget tombstones at or below an index (the leader decides when, as Consul's reaper)."""
        limit = int(cmd["Index"])
        for key in [k for k, i in self.tombstones.items() if i <= limit]:
            del self.tombstones[key]
            self.tomb_keys.pop(bisect.bisect_left(self.tomb_keys, key))

    @staticmethod
    def _prefix_keys(keys: list[str], prefix: str) -> Iterable[str]:
        start = bisect.bisect_left(keys, prefix)
        for i in range(start, len(keys)):
            if not keys[i].startswith(prefix):
                break
            yield keys[i]

    # KV reads -------------------------------------------------------------------------

    def kv_get(self, key: str) -> tuple[int, KVEntry | None]:
        """One key and the index to report (the entry's, else the KV tables' index)."""
        entry = self.kv.get(key)
        if entry is not None:
            return entry.modify_index, entry
        return max(self.table_index[wk.KVS], 1), None

    def kv_list(self, prefix: str) -> tuple[int, list[KVEntry]]:
        """Entries under a prefix, sorted by key; the index includes tombstones."""
        entries = [self.kv[k] for k in self._prefix_keys(self.kv_keys, prefix)]
        return self._prefix_index(prefix, entries), entries

    def kv_keys_list(self, prefix: str, separator: str = "") -> tuple[int, list[str]]:
        """Key names under a prefix, truncated after the first separator past the prefix."""
        index, entries = self.kv_list(prefix)
        if not separator:
            return index, [e.key for e in entries]
        out: list[str] = []
        for e in entries:
            pos = e.key.find(separator, len(prefix))
            name = e.key if pos < 0 else e.key[: pos + len(separator)]
            if not out or out[-1] != name:
                out.append(name)
        return index, out

    def _prefix_index(self, prefix: str, entries: list[KVEntry]) -> int:
        if not prefix:
            return max(self.table_index[wk.KVS], 1)
        index = max((e.modify_index for e in entries), default=0)
        for key in self._prefix_keys(self.tomb_keys, prefix):
            index = max(index, self.tombstones[key])
        return max(index, 1)

    # ------------------------------------------------------------------ transactions

    def _apply_txn(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Apply all ops or none. Returns {"Results": [...]} or {"Errors": [...]}."""
        ops = cmd["Ops"]
        now = cmd.get("Now", 0.0)
        errors = self._txn_check(ops, now)
        if errors:
            return {"Results": None, "Errors": errors}
        results: list[dict[str, Any]] = []
        for op in ops:
            results.extend(self._txn_run(op, now))
        return {"Results": results, "Errors": None}

    def txn_read(self, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """A transaction of read-only KV verbs: answered without changing anything."""
        results: list[dict[str, Any]] = []
        errors = []
        for i, op in enumerate(ops):
            try:
                results.extend(self._txn_run(op, self.now))
            except StateError as exc:
                errors.append({"OpIndex": i, "What": str(exc)})
        return {"Results": None, "Errors": errors} if errors else {"Results": results, "Errors": None}

    def _txn_check(self, ops: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """Dry-run every op on a scratch copy; collect errors with their OpIndex."""
        scratch = self._scratch_copy(with_catalog=any("KV" not in op for op in ops))
        errors = []
        for i, op in enumerate(ops):
            try:
                scratch._txn_run(op, now)
            except StateError as exc:
                errors.append({"OpIndex": i, "What": str(exc)})
        return errors

    def _scratch_copy(self, with_catalog: bool) -> State:
        # Only what txn ops read or write is copied; the copy is thrown away.
        other = State.__new__(State)
        other.__dict__.update(self.__dict__)
        other.kv = {k: copy.copy(v) for k, v in self.kv.items()}
        other.kv_keys = list(self.kv_keys)
        other.tombstones = dict(self.tombstones)
        other.tomb_keys = list(self.tomb_keys)
        if with_catalog:
            other.nodes = copy.deepcopy(self.nodes)
            other.services = copy.deepcopy(self.services)
            other.checks = copy.deepcopy(self.checks)
            other.sessions = dict(self.sessions)
        other.table_index = dict(self.table_index)
        other.service_index = dict(self.service_index)
        other.node_index = dict(self.node_index)
        other._changed = set()
        other._write_index = self._write_index
        other._applying = {}
        return other

    def _txn_run(self, op: dict[str, Any], now: float) -> list[dict[str, Any]]:
        if "KV" in op:
            return self._txn_kv(op["KV"], now)
        if "Node" in op:
            return self._txn_catalog("Node", op["Node"])
        if "Service" in op:
            return self._txn_catalog("Service", op["Service"])
        if "Check" in op:
            return self._txn_catalog("Check", op["Check"])
        raise StateError("unknown transaction operation")

    def _txn_kv(self, op: dict[str, Any], now: float) -> list[dict[str, Any]]:
        verb, key = op.get("Verb", ""), op.get("Key", "")
        entry = self.kv.get(key)
        if verb == "get":
            if entry is None:
                raise StateError(f'key "{key}" doesn\'t exist')
            return [{"KV": entry.to_json()}]
        if verb == "get-or-empty":
            return [{"KV": entry.to_json()}] if entry else []
        if verb == "get-tree":
            return [{"KV": e.to_json()} for e in self.kv_list(key)[1]]
        if verb == "check-index":
            if entry is None:
                raise StateError(f'failed to check index, key "{key}" doesn\'t exist')
            if entry.modify_index != int(op.get("Index") or 0):
                raise StateError(f'failed index check for key "{key}", current modify index '
                                 f'{entry.modify_index} != {int(op.get("Index") or 0)}')
            return [{"KV": entry.to_json(with_value=False)}]
        if verb == "check-session":
            current = entry.session if entry else ""
            if entry is None or current != op.get("Session", ""):
                raise StateError(f'failed session check for key "{key}", current session '
                                 f'"{current}" != "{op.get("Session", "")}"')
            return [{"KV": entry.to_json(with_value=False)}]
        if verb == "check-not-exists":
            if entry is not None:
                raise StateError(f'key "{key}" exists')
            return []
        failures = {
            "cas": f'failed to set key "{key}", index is stale',
            "lock": f'failed to lock key "{key}", lock is already held',
            "unlock": f'failed to unlock key "{key}", lock isn\'t held, or is held by another session',
            "delete-cas": f'failed to delete key "{key}", index is stale',
        }
        if verb not in failures and verb not in ("set", "delete", "delete-tree"):
            raise StateError(f'unknown KV verb "{verb}"')
        if not self._kv_op(verb, op, now):
            raise StateError(failures[verb])
        if verb in ("delete", "delete-tree", "delete-cas"):
            return []
        return [{"KV": self.kv[key].to_json(with_value=False)}]

    def _txn_catalog(self, kind: str, op: dict[str, Any]) -> list[dict[str, Any]]:
        verb = op.get("Verb", "")
        if kind == "Node":
            node = op.get("Node") or {}
            name = node.get("Node", "")
            current = self.nodes.get(name)
            if verb == "get":
                if current is None:
                    raise StateError(f'node "{name}" doesn\'t exist')
                return [{"Node": copy.deepcopy(current)}]
            if verb in ("set", "cas"):
                if verb == "cas" and not self._cas_ok(current, node):
                    raise StateError(f'failed to set node "{name}", index is stale')
                self._apply_register({"Node": name, "Address": node.get("Address", ""), "ID": node.get("ID", ""),
                                      "TaggedAddresses": node.get("TaggedAddresses"), "NodeMeta": node.get("Meta")})
                return [{"Node": copy.deepcopy(self.nodes[name])}]
            if verb in ("delete", "delete-cas"):
                if verb == "delete-cas" and not self._cas_ok(current, node):
                    raise StateError(f'failed to delete node "{name}", index is stale')
                self._apply_deregister({"Node": name})
                return []
        elif kind == "Service":
            node_name, svc = op.get("Node", ""), op.get("Service") or {}
            sid = svc.get("ID") or svc.get("Service", "")
            current = self.services.get(node_name, {}).get(sid)
            if verb == "get":
                if current is None:
                    raise StateError(f'service "{sid}" on node "{node_name}" doesn\'t exist')
                return [{"Service": copy.deepcopy(current)}]
            if verb in ("set", "cas"):
                if verb == "cas" and not self._cas_ok(current, svc):
                    raise StateError(f'failed to set service "{sid}" on node "{node_name}", index is stale')
                if node_name not in self.nodes:
                    raise StateError("Missing node registration")
                self._apply_register({"Node": node_name, "SkipNodeUpdate": True, "Service": svc})
                return [{"Service": copy.deepcopy(self.services[node_name][sid])}]
            if verb in ("delete", "delete-cas"):
                if verb == "delete-cas" and not self._cas_ok(current, svc):
                    raise StateError(f'failed to delete service "{sid}" on node "{node_name}", index is stale')
                self._apply_deregister({"Node": node_name, "ServiceID": sid})
                return []
        else:
            chk = op.get("Check") or {}
            node_name, cid = chk.get("Node", ""), chk.get("CheckID", "")
            current = self.checks.get(node_name, {}).get(cid)
            if verb == "get":
                if current is None:
                    raise StateError(f'check "{cid}" on node "{node_name}" doesn\'t exist')
                return [{"Check": copy.deepcopy(current)}]
            if verb in ("set", "cas"):
                if verb == "cas" and not self._cas_ok(current, chk):
                    raise StateError(f'failed to set check "{cid}" on node "{node_name}", index is stale')
                self._apply_register({"Node": node_name, "SkipNodeUpdate": True, "Checks": [chk]})
                return [{"Check": copy.deepcopy(self.checks[node_name][cid])}]
            if verb in ("delete", "delete-cas"):
                if verb == "delete-cas" and not self._cas_ok(current, chk):
                    raise StateError(f'failed to delete check "{cid}" on node "{node_name}", index is stale')
                self._apply_deregister({"Node": node_name, "CheckID": cid})
                return []
        raise StateError(f'unknown {kind} verb "{verb}"')

    @staticmethod
    def _cas_ok(current: dict[str, Any] | None, given: dict[str, Any]) -> bool:
        want = int(given.get("ModifyIndex") or 0)
        if want == 0:
            return current is None
        return current is not None and current["ModifyIndex"] == want

    # ------------------------------------------------------------------ catalog writes

    def _apply_register(self, cmd: dict[str, Any]) -> bool:
        """Catalog register: node (unless SkipNodeUpdate), an optional service, checks."""
        name = cmd.get("Node", "")
        if not name:
            raise StateError("Must provide node")
        svc = cmd.get("Service")
        checks = list(cmd.get("Checks") or [])
        if cmd.get("Check"):
            checks.insert(0, cmd["Check"])
        # validate everything first: a failed registration changes nothing
        new_sid = (svc.get("ID") or svc.get("Service", "")) if svc else None
        for chk in checks:
            sid = chk.get("ServiceID", "")
            if sid and sid != new_sid and sid not in self.services.get(name, {}):
                raise StateError("Missing service registration")
            if (chk.get("Status") or "critical") not in STATUS_ORDER:
                raise StateError(f"Invalid check status: '{chk.get('Status')}'")
        if not cmd.get("SkipNodeUpdate") or name not in self.nodes:
            if not cmd.get("Address") and name not in self.nodes:
                raise StateError("Must provide address if SkipNodeUpdate is not set")
            self._ensure_node(cmd)
        if svc:
            self._ensure_service(name, svc)
        for chk in checks:
            self._ensure_check(name, chk)
        return True

    def _ensure_node(self, cmd: dict[str, Any]) -> None:
        name = cmd["Node"]
        current = self.nodes.get(name)
        record = {
            "ID": cmd.get("ID") or (current or {}).get("ID", ""),
            "Node": name,
            "Address": cmd.get("Address") or (current or {}).get("Address", ""),
            "Datacenter": self.datacenter,
            "TaggedAddresses": cmd.get("TaggedAddresses") or {},
            "Meta": cmd.get("NodeMeta") or {},
        }
        if current is not None and all(current[k] == record[k] for k in record):
            return
        index = self._bump(wk.NODES, wk.node(name), *self._node_service_keys(name))
        record["CreateIndex"] = current["CreateIndex"] if current else index
        record["ModifyIndex"] = index
        self.nodes[name] = record
        self.node_index[name] = index
        self._touch_node_services(name, index)

    def _ensure_service(self, node: str, svc: dict[str, Any]) -> None:
        name = svc.get("Service", "")
        sid = svc.get("ID") or name
        if not name:
            raise StateError("Must provide service name with ID" if sid else "Missing service name")
        current = self.services.get(node, {}).get(sid)
        weights = svc.get("Weights") or {}
        passing, warning = weights.get("Passing", 1), weights.get("Warning", 1)
        if not isinstance(passing, int) or not isinstance(warning, int) or passing < 1 or warning < 0 \
                or passing > 65535 or warning > 65535:
            passing, warning = 1, 1
        record: dict[str, Any] = {
            "Kind": svc.get("Kind", ""),
            "ID": sid,
            "Service": name,
            "Tags": list(svc.get("Tags") or []),
            "Address": svc.get("Address", ""),
            "TaggedAddresses": svc.get("TaggedAddresses") or None,
            "Meta": dict(svc.get("Meta") or {}),
            "Port": int(svc.get("Port") or 0),
            "Weights": {"Passing": passing, "Warning": warning},
            "EnableTagOverride": bool(svc.get("EnableTagOverride", False)),
        }
        if current is not None and all(current.get(k) == v for k, v in record.items()):
            return
        keys = [wk.SERVICES, wk.node(node), wk.service(name)]
        if current is not None and current["Service"].lower() != name.lower():
            keys.append(wk.service(current["Service"]))
        index = self._bump(*keys)
        record["CreateIndex"] = current["CreateIndex"] if current else index
        record["ModifyIndex"] = index
        self.services.setdefault(node, {})[sid] = record
        self.service_index[name.lower()] = index
        if current is not None and current["Service"].lower() != name.lower():
            self.service_index[current["Service"].lower()] = index
        # checks carry a copy of the service's name and tags
        for chk in self.checks.get(node, {}).values():
            if chk["ServiceID"] == sid:
                chk["ServiceName"], chk["ServiceTags"] = name, list(record["Tags"])

    def _ensure_check(self, node: str, chk: dict[str, Any]) -> None:
        if node not in self.nodes:
            raise StateError("Missing node registration")
        cid = chk.get("CheckID") or chk.get("Name", "")
        if not cid:
            raise StateError("Missing check ID")
        sid = chk.get("ServiceID", "")
        svc = None
        if sid:
            svc = self.services.get(node, {}).get(sid)
            if svc is None:
                raise StateError("Missing service registration")
        status = chk.get("Status") or "critical"
        if status not in STATUS_ORDER:
            raise StateError(f"Invalid check status: '{status}'")
        current = self.checks.get(node, {}).get(cid)
        record: dict[str, Any] = {
            "Node": node,
            "CheckID": cid,
            "Name": chk.get("Name") or cid,
            "Status": status,
            "Notes": chk.get("Notes", ""),
            "Output": chk.get("Output", ""),
            "ServiceID": sid,
            "ServiceName": svc["Service"] if svc else "",
            "ServiceTags": list(svc["Tags"]) if svc else [],
            "Type": chk.get("Type", ""),
            "Interval": chk.get("Interval", ""),
            "Timeout": chk.get("Timeout", ""),
            "ExposedPort": 0,
            "Definition": chk.get("Definition") or {},
        }
        if current is not None and all(current.get(k) == v for k, v in record.items()):
            return
        self._write_check(node, record, current)

    def _write_check(self, node: str, record: dict[str, Any], current: dict[str, Any] | None) -> None:
        keys = [wk.CHECKS, wk.node(node)]
        keys += self._node_service_keys(node) if not record["ServiceID"] else [wk.service(record["ServiceName"])]
        index = self._bump(*keys)
        record["CreateIndex"] = current["CreateIndex"] if current else index
        record["ModifyIndex"] = index
        self.checks.setdefault(node, {})[record["CheckID"]] = record
        if record["ServiceID"]:
            self.service_index[record["ServiceName"].lower()] = index
        else:
            self._touch_node_services(node, index)
        if record["Status"] == "critical":
            self._invalidate_sessions_of_check(node, record["CheckID"], record["ServiceID"])

    def _apply_check_update(self, cmd: dict[str, Any]) -> bool:
        """Set a check's status/output (agent check runs, TTL pass/warn/fail, maintenance)."""
        node, cid = cmd["Node"], cmd["CheckID"]
        current = self.checks.get(node, {}).get(cid)
        if current is None:
            raise StateError(f'Unknown check ID "{cid}"')
        status = cmd.get("Status", current["Status"])
        if status not in STATUS_ORDER:
            raise StateError(f"Invalid check status: '{status}'")
        output = cmd.get("Output", current["Output"])
        if current["Status"] == status and current["Output"] == output:
            return True
        record = dict(current, Status=status, Output=output)
        self._write_check(node, record, current)
        return True

    def _apply_deregister(self, cmd: dict[str, Any]) -> bool:
        """Catalog deregister: a check, a service (with its checks) or a whole node."""
        node = cmd.get("Node", "")
        if node not in self.nodes:
            return True
        if cmd.get("CheckID"):
            self._delete_check(node, cmd["CheckID"])
        elif cmd.get("ServiceID"):
            self._delete_service(node, cmd["ServiceID"])
        else:
            for sid in list(self.services.get(node, {})):
                self._delete_service(node, sid)
            for cid in list(self.checks.get(node, {})):
                self._delete_check(node, cid)
            self._bump(wk.NODES, wk.node(node))
            del self.nodes[node]
            self.node_index.pop(node, None)
            self.services.pop(node, None)
            self.checks.pop(node, None)
            for sid, sess in list(self.sessions.items()):
                if sess["Node"] == node:
                    self._invalidate_session(sid)
        return True

    def _delete_service(self, node: str, sid: str) -> None:
        svc = self.services.get(node, {}).pop(sid, None)
        if svc is None:
            return
        for cid, chk in list(self.checks.get(node, {}).items()):
            if chk["ServiceID"] == sid:
                self._delete_check(node, cid)
        index = self._bump(wk.SERVICES, wk.node(node), wk.service(svc["Service"]))
        self.service_index[svc["Service"].lower()] = index

    def _delete_check(self, node: str, cid: str) -> None:
        chk = self.checks.get(node, {}).pop(cid, None)
        if chk is None:
            return
        keys = [wk.CHECKS, wk.node(node)]
        keys += [wk.service(chk["ServiceName"])] if chk["ServiceID"] else self._node_service_keys(node)
        index = self._bump(*keys)
        if chk["ServiceID"]:
            self.service_index[chk["ServiceName"].lower()] = index
        else:
            self._touch_node_services(node, index)
        self._invalidate_sessions_of_check(node, cid, chk["ServiceID"])

    def _node_service_keys(self, node: str) -> list[str]:
        return [wk.service(s["Service"]) for s in self.services.get(node, {}).values()]

    def _touch_node_services(self, node: str, index: int) -> None:
        for svc in self.services.get(node, {}).values():
            self.service_index[svc["Service"].lower()] = index

    # ------------------------------------------------------------------ sessions

    def _apply_session_create(self, cmd: dict[str, Any]) -> str:
        sess = dict(cmd["Session"])
        node = sess.get("Node", "")
        if node not in self.nodes:
            raise StateError("Missing node registration")
        for cid in sess.get("NodeChecks") or []:
            self._require_live_check(node, cid)
        for ref in sess.get("ServiceChecks") or []:
            self._require_live_check(node, ref.get("ID", ""))
        if sess.get("Behavior", "release") not in ("release", "delete"):
            raise StateError(f"Invalid Behavior setting '{sess.get('Behavior')}'")
        index = self._bump(wk.SESSIONS, wk.session(sess["ID"]))
        sess["CreateIndex"] = sess["ModifyIndex"] = index
        self.sessions[sess["ID"]] = sess
        return sess["ID"]

    def _require_live_check(self, node: str, cid: str) -> None:
        chk = self.checks.get(node, {}).get(cid)
        if chk is None:
            raise StateError(f"Missing check '{cid}' registration")
        if chk["Status"] == "critical":
            raise StateError(f"Check '{cid}' is in critical state")

    def _apply_session_destroy(self, cmd: dict[str, Any]) -> bool:
        self._invalidate_session(cmd["ID"])
        return True

    def _invalidate_session(self, sid: str) -> None:
        """Drop a session: release (or delete) its locks and start their lock-delay."""
        sess = self.sessions.pop(sid, None)
        if sess is None:
            return
        self._bump(wk.SESSIONS, wk.session(sid))
        delay = min(int(sess.get("LockDelay") or 0), MAX_LOCK_DELAY_NS) / 1e9
        for entry in [e for e in self.kv.values() if e.session == sid]:
            if delay:
                self.lock_delays[entry.key] = self.now + delay
            if sess.get("Behavior") == "delete":
                self._kv_delete(entry.key)
            else:
                self._bump(wk.KVS, wk.kv(entry.key))
                entry.session = ""
                entry.modify_index = self._write_index or self.index

    def _invalidate_sessions_of_check(self, node: str, cid: str, sid: str) -> None:
        for session_id, sess in list(self.sessions.items()):
            if sess["Node"] != node:
                continue
            names = list(sess.get("NodeChecks") or []) + [c.get("ID") for c in sess.get("ServiceChecks") or []]
            if cid in names:
                self._invalidate_session(session_id)

    # session reads --------------------------------------------------------------------

    def session_list(self, node: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        items = [s for s in self.sessions.values() if node is None or s["Node"] == node]
        items.sort(key=lambda s: s["CreateIndex"])
        return self.table_index[wk.SESSIONS], [session_json(s) for s in items]

    def session_get(self, sid: str) -> tuple[int, list[dict[str, Any]]]:
        sess = self.sessions.get(sid)
        return self.table_index[wk.SESSIONS], [session_json(sess)] if sess else []

    # ------------------------------------------------------------------ events

    def _apply_event_fire(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.event_ltime += 1
        event = dict(cmd["Event"], LTime=self.event_ltime, Version=1)
        self.events.append(event)
        del self.events[:-MAX_EVENTS]
        self._bump(wk.EVENTS)
        return event

    def event_list(self, name: str = "") -> tuple[int, list[dict[str, Any]]]:
        """Recent events (oldest first) and Consul's synthetic index: XOR of the last ID's halves."""
        events = [e for e in self.events if not name or e["Name"] == name]
        if not events:
            return 1, []
        hexid = events[-1]["ID"].replace("-", "")
        index = int(hexid[:16], 16) ^ int(hexid[16:], 16)
        return index or 1, [dict(e) for e in events]

    # ------------------------------------------------------------------ catalog reads

    def catalog_nodes(self) -> tuple[int, list[dict[str, Any]]]:
        nodes = [copy.deepcopy(self.nodes[n]) for n in sorted(self.nodes)]
        return self.table_index[wk.NODES], nodes

    def catalog_services(self) -> tuple[int, dict[str, list[str]]]:
        out: dict[str, set[str]] = {}
        for svcs in self.services.values():
            for svc in svcs.values():
                out.setdefault(svc["Service"], set()).update(svc["Tags"])
        return self.table_index[wk.SERVICES], {k: sorted(out[k]) for k in sorted(out)}

    def service_instances(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(node, service) pairs of a service, by node name then service ID; name is case-insensitive."""
        lname = name.lower()
        out = []
        for node_name in sorted(self.services):
            for sid in sorted(self.services[node_name]):
                svc = self.services[node_name][sid]
                if svc["Service"].lower() == lname:
                    out.append((self.nodes[node_name], svc))
        return out

    def service_index_of(self, name: str) -> int:
        """The index of one service's data (instances, their checks, their nodes)."""
        return self.service_index.get(name.lower()) or max(self.table_index[wk.SERVICES],
                                                           self.table_index[wk.CHECKS])

    def catalog_service(self, name: str, tags: list[str] | None = None) -> tuple[int, list[dict[str, Any]]]:
        out = [service_node_json(n, s) for n, s in self.service_instances(name) if has_tags(s, tags)]
        return self.service_index_of(name), out

    def catalog_node(self, name: str) -> tuple[int, dict[str, Any] | None, list[dict[str, Any]]]:
        node = self.nodes.get(name)
        index = max(self.table_index[wk.NODES], self.table_index[wk.SERVICES])
        if node is None:
            return index, None, []
        services = [agent_service_json(s) for _, s in sorted(self.services.get(name, {}).items())]
        return index, copy.deepcopy(node), services

    # ------------------------------------------------------------------ health reads

    def node_checks(self, node: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(c) for _, c in sorted(self.checks.get(node, {}).items())]

    def health_node(self, node: str) -> tuple[int, list[dict[str, Any]]]:
        return self.table_index[wk.CHECKS], self.node_checks(node)

    def health_checks(self, service: str) -> tuple[int, list[dict[str, Any]]]:
        lname = service.lower()
        out = [copy.deepcopy(c) for node in sorted(self.checks) for _, c in sorted(self.checks[node].items())
               if c["ServiceID"] and c["ServiceName"].lower() == lname]
        return self.service_index_of(service), out

    def health_state(self, state: str) -> tuple[int, list[dict[str, Any]]]:
        out = [copy.deepcopy(c) for node in sorted(self.checks) for _, c in sorted(self.checks[node].items())
               if state == "any" or c["Status"] == state]
        return self.table_index[wk.CHECKS], out

    def health_service(self, name: str, tags: list[str] | None = None,
                       passing: bool = False) -> tuple[int, list[dict[str, Any]]]:
        """Consul's /v1/health/service entries: {Node, Service, Checks} per instance."""
        out = []
        for node, svc in self.service_instances(name):
            if not has_tags(svc, tags):
                continue
            checks = [copy.deepcopy(c) for _, c in sorted(self.checks.get(node["Node"], {}).items())
                      if not c["ServiceID"] or c["ServiceID"] == svc["ID"]]
            if passing and any(c["Status"] != "passing" for c in checks):
                continue
            out.append({"Node": copy.deepcopy(node), "Service": agent_service_json(svc), "Checks": checks})
        return self.service_index_of(name), out

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        """Everything, as plain data (for Raft snapshots and `meshctl snapshot save`)."""
        return {
            "Datacenter": self.datacenter,
            "Index": self.index,
            "KV": [[e.key, b64(e.value), e.flags, e.create_index, e.modify_index, e.lock_index, e.session]
                   for e in self.kv.values()],
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

    def _apply_restore(self, cmd: dict[str, Any]) -> bool:
        """Replace everything with a snapshot; every watch key is woken."""
        import base64

        snap = cmd["Snapshot"]
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
        applying = self._applying
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "_applying"})
        self._applying = {name: getattr(self, fn.__name__) for name, fn in applying.items()}
        self._changed = {wk.EVERYTHING}
        return True


def _acl() -> Any:
    """meshctl.server.acl.state, imported late (it imports this module)."""
    from meshctl.server.acl import state as acl_state

    return acl_state


# ---------------------------------------------------------------------- JSON shapes


def has_tags(svc: dict[str, Any], tags: list[str] | None) -> bool:
    """Every requested tag is present (case-insensitive), as Consul's ?tag filter."""
    if not tags:
        return True
    have = {t.lower() for t in svc["Tags"]}
    return all(t.lower() in have for t in tags)


def agent_service_json(svc: dict[str, Any]) -> dict[str, Any]:
    """A service as /v1/health/service and /v1/catalog/node show it."""
    out = copy.deepcopy(svc)
    if not out.get("TaggedAddresses"):
        out.pop("TaggedAddresses", None)
    out["Proxy"] = {"Mode": "", "MeshGateway": {}, "Expose": {}}
    out["Connect"] = {}
    out["PeerName"] = ""
    return out


def service_node_json(node: dict[str, Any], svc: dict[str, Any]) -> dict[str, Any]:
    """structs.ServiceNode: the node's fields plus the service's, as /v1/catalog/service."""
    out = {
        "ID": node["ID"],
        "Node": node["Node"],
        "Address": node["Address"],
        "Datacenter": node["Datacenter"],
        "TaggedAddresses": copy.deepcopy(node["TaggedAddresses"]),
        "NodeMeta": copy.deepcopy(node["Meta"]),
        "ServiceKind": svc["Kind"],
        "ServiceID": svc["ID"],
        "ServiceName": svc["Service"],
        "ServiceTags": list(svc["Tags"]),
        "ServiceAddress": svc["Address"],
        "ServiceWeights": dict(svc["Weights"]),
        "ServiceMeta": dict(svc["Meta"]),
        "ServicePort": svc["Port"],
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": svc["EnableTagOverride"],
        "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": svc["CreateIndex"],
        "ModifyIndex": svc["ModifyIndex"],
    }
    if svc.get("TaggedAddresses"):
        out["ServiceTaggedAddresses"] = copy.deepcopy(svc["TaggedAddresses"])
    return out


def session_json(sess: dict[str, Any]) -> dict[str, Any]:
    out = dict(sess)
    out.setdefault("NodeChecks", [])
    out.setdefault("ServiceChecks", None)
    return out


def aggregated_status(checks: list[dict[str, Any]]) -> str:
    """consul-template's and the agent's aggregate: maintenance, else the worst status."""
    if any(c["CheckID"] == NODE_MAINT_CHECK_ID or c["CheckID"].startswith(SERVICE_MAINT_PREFIX) for c in checks):
        return "maintenance"
    worst = max((STATUS_ORDER.get(c["Status"], 2) for c in checks), default=0)
    return {0: "passing", 1: "warning", 2: "critical"}[worst]
