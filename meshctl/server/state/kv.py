"""KV: entries, tombstones (a prefix's index never goes backwards), locks and lock-delays."""

from __future__ import annotations

import base64
import bisect
import json
from dataclasses import dataclass, field
from typing import Any

from meshctl.server import watchkeys as wk
from meshctl.server.commands import (
    KVCAS,
    KVCommand,
    KVDelete,
    KVDeleteCAS,
    KVDeleteTree,
    KVLock,
    KVSet,
    KVUnlock,
    StateError,
    TombstoneReap,
)
from meshctl.server.state.base import StateBase, prefix_keys


@dataclass(slots=True)
class KVEntry:
    """One key; `value` None stands for Consul's null value (an empty PUT).

    Never changed once in `State.kv` (a write puts a new entry there), so a shallow copy of the
    table is a consistent view of it (`State.snapshot_view`).
    """

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
        """Consul's KVPair JSON; Value is base64."""
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
    return None if value is None else base64.b64encode(value).decode("ascii")


class KVMixin(StateBase):
    """KV writes (`kv` commands, also run by transactions) and reads."""

    def _apply_kv(self, cmd: KVCommand) -> bool:
        return self._kv_op(cmd, cmd.now or 0.0)

    def _kv_op(self, cmd: KVCommand, now: float) -> bool:
        """One KV write; False when its condition (cas index, lock holder) does not hold."""
        key = cmd.key
        entry = self.kv.get(key)
        if isinstance(cmd, KVSet):
            self._kv_set(key, cmd.value, cmd.flags)
            return True
        if isinstance(cmd, KVCAS):
            index = cmd.index
            if (index == 0 and entry is not None) or (index != 0 and (entry is None or entry.modify_index != index)):
                return False
            self._kv_set(key, cmd.value, cmd.flags)
            return True
        if isinstance(cmd, KVLock):
            session = cmd.session
            if session not in self.sessions:
                raise StateError(f'invalid session "{session}"')
            if entry is not None and entry.session and entry.session != session:
                return False
            if (entry is None or entry.session != session) and key in self.lock_delays:
                if self.lock_delays[key] > now:
                    return False
                self._touch_kv(key)
                del self.lock_delays[key]
            self._kv_set(key, cmd.value, cmd.flags, lock_session=session)
            return True
        if isinstance(cmd, KVUnlock):
            if entry is None or entry.session != cmd.session:
                return False
            self._kv_set(key, cmd.value, cmd.flags, unlock=True)
            return True
        if isinstance(cmd, KVDelete):
            self._kv_delete(key)
            return True
        if isinstance(cmd, KVDeleteCAS):
            if entry is None:
                return True
            if entry.modify_index != cmd.index:
                return False
            self._kv_delete(key)
            return True
        if isinstance(cmd, KVDeleteTree):
            for k in list(prefix_keys(self.kv_keys, key)):
                self._kv_delete(k)
            return True
        raise StateError(f'unknown KV verb "{cmd.VERB}"')

    def _kv_set(self, key: str, value: bytes | None, flags: int, lock_session: str | None = None,
                unlock: bool = False) -> None:
        entry = self.kv.get(key)
        if entry is not None and lock_session is None and not unlock:
            if entry.value == value and entry.flags == flags:
                return  # identical plain set: no-op, the index does not move (as Consul)
        self._touch_kv(key)
        index = self.bump(wk.KVS, wk.kv(key))
        if entry is None:
            entry = KVEntry(key, value, flags, index, index)
            self.kv[key] = entry
            bisect.insort(self.kv_keys, key)
        else:  # a new object: entries are never changed in place (snapshot views share them)
            entry = KVEntry(key, value, flags, entry.create_index, index, entry.lock_index, entry.session)
            self.kv[key] = entry
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
        self._touch_kv(key)
        index = self.bump(wk.KVS, wk.kv(key))
        del self.kv[key]
        self.kv_keys.pop(bisect.bisect_left(self.kv_keys, key))
        if key not in self.tombstones:
            bisect.insort(self.tomb_keys, key)
        self.tombstones[key] = index

    def _apply_tombstone_reap(self, cmd: TombstoneReap) -> None:
        """Forget tombstones at or below an index (the leader decides when, as Consul's reaper)."""
        limit = int(cmd.index)
        for key in [k for k, i in self.tombstones.items() if i <= limit]:
            del self.tombstones[key]
            self.tomb_keys.pop(bisect.bisect_left(self.tomb_keys, key))

    # KV reads -------------------------------------------------------------------------

    def kv_get(self, key: str) -> tuple[int, KVEntry | None]:
        """One key and the index to report (the entry's, else the KV tables' index)."""
        entry = self.kv.get(key)
        if entry is not None:
            return entry.modify_index, entry
        return max(self.table_index[wk.KVS], 1), None

    def kv_list(self, prefix: str) -> tuple[int, list[KVEntry]]:
        """Entries under a prefix, sorted by key; the index includes tombstones."""
        entries = [self.kv[k] for k in prefix_keys(self.kv_keys, prefix)]
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
        for key in prefix_keys(self.tomb_keys, prefix):
            index = max(index, self.tombstones[key])
        return max(index, 1)
