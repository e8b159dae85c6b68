"""Transactions: KV and catalog ops applied all or none.

A KV-only transaction runs on the state itself with an undo log: before an op changes a key
(`StateBase._touch_kv`), the key's entry, tombstone and lock-delay are saved, with the indexes
and the change set; if any op fails, the saved values are put back. Its cost is that of its
ops, whatever the size of the store. A transaction with catalog ops (whose session
invalidations reach further) is dry-run on a scratch copy first, as before.
"""

from __future__ import annotations

import bisect
import copy
from typing import Any

from meshctl.server.commands import (
    CheckTxnOp,
    Deregister,
    KVDelete,
    KVDeleteCAS,
    KVDeleteTree,
    KVTxnOp,
    NodeTxnOp,
    Register,
    ServiceTxnOp,
    StateError,
    Txn,
    TxnOp,
    kv_command,
)
from meshctl.server.state.base import StateBase
from meshctl.server.state.catalog import CatalogMixin

SavedKV = tuple[Any, tuple[Any, ...], int | None, float | None]  # entry (or None), its fields, tombstone, delay


def saved_kv(state: StateBase, key: str) -> SavedKV:
    """What the undo log keeps of `key` before a transaction's op changes it."""
    entry = state.kv.get(key)
    fields = () if entry is None else (entry.value, entry.flags, entry.create_index, entry.modify_index,
                                       entry.lock_index, entry.session)
    return entry, fields, state.tombstones.get(key), state.lock_delays.get(key)


TxnResult = dict[str, Any]  # {"Results": [...] | None, "Errors": [{"OpIndex", "What"}] | None}

_KV_FAILURES = {
    "cas": 'failed to set key "{key}", index is stale',
    "lock": 'failed to lock key "{key}", lock is already held',
    "unlock": 'failed to unlock key "{key}", lock isn\'t held, or is held by another session',
    "delete-cas": 'failed to delete key "{key}", index is stale',
}
_KV_WRITES = ("set", "delete", "delete-tree", *_KV_FAILURES)


class TxnMixin(CatalogMixin):
    def _apply_txn(self, cmd: Txn) -> TxnResult:
        """Apply all ops or none. Returns {"Results": [...]} or {"Errors": [...]}."""
        ops = list(cmd.ops)
        now = cmd.now or 0.0
        if all("KV" in op for op in ops):
            return self._txn_kv_undoable(ops, now)
        errors = self._txn_check(ops, now)
        if errors:
            return {"Results": None, "Errors": errors}
        results: list[dict[str, Any]] = []
        for op in ops:
            results.extend(self._txn_run(op, now))
        return {"Results": results, "Errors": None}

    def txn_read(self, ops: list[TxnOp]) -> TxnResult:
        """A transaction of read-only KV verbs: answered without changing anything."""
        results: list[dict[str, Any]] = []
        errors = []
        for i, op in enumerate(ops):
            try:
                results.extend(self._txn_run(op, self.now))
            except StateError as exc:
                errors.append({"OpIndex": i, "What": str(exc)})
        return {"Results": None, "Errors": errors} if errors else {"Results": results, "Errors": None}

    def _txn_kv_undoable(self, ops: list[TxnOp], now: float) -> TxnResult:
        """KV ops on the state itself; on any error everything they changed is put back."""
        saved = (self.index, self._write_index, dict(self.table_index), set(self._changed))
        self._undo = {}
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        try:
            for i, op in enumerate(ops):
                try:
                    results.extend(self._txn_run(op, now))
                except StateError as exc:
                    errors.append({"OpIndex": i, "What": str(exc)})
        except BaseException:
            self._rollback(saved)
            raise
        if errors:
            self._rollback(saved)
            return {"Results": None, "Errors": errors}
        self._undo = None
        return {"Results": results, "Errors": None}

    def _rollback(self, saved: tuple[int, int | None, dict[str, int], set[str]]) -> None:
        undo, self._undo = self._undo or {}, None
        for key, (entry, fields, tombstone, lock_delay) in undo.items():
            present = key in self.kv
            if entry is None:
                if present:
                    del self.kv[key]
                    self.kv_keys.pop(bisect.bisect_left(self.kv_keys, key))
            else:
                (entry.value, entry.flags, entry.create_index, entry.modify_index, entry.lock_index,
                 entry.session) = fields
                self.kv[key] = entry
                if not present:
                    bisect.insort(self.kv_keys, key)
            had_tomb = key in self.tombstones
            if tombstone is None:
                if had_tomb:
                    del self.tombstones[key]
                    self.tomb_keys.pop(bisect.bisect_left(self.tomb_keys, key))
            else:
                self.tombstones[key] = tombstone
                if not had_tomb:
                    bisect.insort(self.tomb_keys, key)
            if lock_delay is None:
                self.lock_delays.pop(key, None)
            else:
                self.lock_delays[key] = lock_delay
        self.index, self._write_index = saved[0], saved[1]
        self.table_index.clear()  # in place: whoever holds these dicts sees the state they belong to
        self.table_index.update(saved[2])
        self._changed.clear()
        self._changed.update(saved[3])

    def _txn_check(self, ops: list[TxnOp], now: float) -> list[dict[str, Any]]:
        """Dry-run every op on a scratch copy; collect errors with their OpIndex."""
        scratch = self._scratch_copy(with_catalog=any("KV" not in op for op in ops))
        errors = []
        for i, op in enumerate(ops):
            try:
                scratch._txn_run(op, now)
            except StateError as exc:
                errors.append({"OpIndex": i, "What": str(exc)})
        return errors

    def _scratch_copy(self, with_catalog: bool) -> TxnMixin:  # (catalog transactions only)
        # Only what txn ops read or write is copied; the copy is thrown away.
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.kv = {k: copy.copy(v) for k, v in self.kv.items()}
        other.kv_keys = list(self.kv_keys)
        other.tombstones = dict(self.tombstones)
        other.tomb_keys = list(self.tomb_keys)
        other.lock_delays = dict(self.lock_delays)
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
        return other

    def _txn_run(self, op: TxnOp, now: float) -> list[dict[str, Any]]:
        if "KV" in op:
            return self._txn_kv(op["KV"], now)
        if "Node" in op:
            return self._txn_node(op["Node"])
        if "Service" in op:
            return self._txn_service(op["Service"])
        if "Check" in op:
            return self._txn_check_op(op["Check"])
        raise StateError("unknown transaction operation")

    def _txn_kv(self, op: KVTxnOp, now: float) -> list[dict[str, Any]]:
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
            index = int(op.get("Index") or 0)
            if entry.modify_index != index:
                raise StateError(f'failed index check for key "{key}", current modify index '
                                 f'{entry.modify_index} != {index}')
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
        if verb not in _KV_WRITES:
            raise StateError(f'unknown KV verb "{verb}"')
        cmd = kv_command(op)
        if not self._kv_op(cmd, now):
            raise StateError(_KV_FAILURES[verb].format(key=key))
        if isinstance(cmd, KVDelete | KVDeleteTree | KVDeleteCAS):
            return []
        return [{"KV": self.kv[key].to_json(with_value=False)}]

    @staticmethod
    def _cas_ok(current: dict[str, Any] | None, given: Any) -> bool:
        want = int(given.get("ModifyIndex") or 0)
        if want == 0:
            return current is None
        return current is not None and bool(current["ModifyIndex"] == want)

    def _txn_node(self, op: NodeTxnOp) -> list[dict[str, Any]]:
        verb = op.get("Verb", "")
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
            self._apply_register(Register(node=name, address=node.get("Address", ""), id=node.get("ID", ""),
                                          tagged_addresses=node.get("TaggedAddresses"),
                                          node_meta=node.get("Meta")))
            return [{"Node": copy.deepcopy(self.nodes[name])}]
        if verb in ("delete", "delete-cas"):
            if verb == "delete-cas" and not self._cas_ok(current, node):
                raise StateError(f'failed to delete node "{name}", index is stale')
            self._apply_deregister(Deregister(name))
            return []
        raise StateError(f'unknown Node verb "{verb}"')

    def _txn_service(self, op: ServiceTxnOp) -> list[dict[str, Any]]:
        verb = op.get("Verb", "")
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
            self._apply_register(Register(node=node_name, skip_node_update=True, service=svc))
            return [{"Service": copy.deepcopy(self.services[node_name][sid])}]
        if verb in ("delete", "delete-cas"):
            if verb == "delete-cas" and not self._cas_ok(current, svc):
                raise StateError(f'failed to delete service "{sid}" on node "{node_name}", index is stale')
            self._apply_deregister(Deregister(node_name, service_id=sid))
            return []
        raise StateError(f'unknown Service verb "{verb}"')

    def _txn_check_op(self, op: CheckTxnOp) -> list[dict[str, Any]]:
        verb = op.get("Verb", "")
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
            self._apply_register(Register(node=node_name, skip_node_update=True, checks=(chk,)))
            return [{"Check": copy.deepcopy(self.checks[node_name][cid])}]
        if verb in ("delete", "delete-cas"):
            if verb == "delete-cas" and not self._cas_ok(current, chk):
                raise StateError(f'failed to delete check "{cid}" on node "{node_name}", index is stale')
            self._apply_deregister(Deregister(node_name, check_id=cid))
            return []
        raise StateError(f'unknown Check verb "{verb}"')
