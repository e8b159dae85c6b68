"""Sessions: create (bound to a node and its checks), destroy, and what invalidation does to locks."""

from __future__ import annotations

from meshctl.server import watchkeys as wk
from meshctl.server.commands import SessionCreate, SessionDestroy, StateError
from meshctl.server.state.base import MAX_LOCK_DELAY_NS, Record
from meshctl.server.state.kv import KVEntry, KVMixin
from meshctl.server.state.queries import QueriesMixin
from meshctl.server.state.records import session_json


class SessionsMixin(KVMixin, QueriesMixin):
    def _apply_session_create(self, cmd: SessionCreate) -> str:
        sess: Record = dict(cmd.session)
        node = sess.get("Node", "")
        if node not in self.nodes:
            raise StateError("Missing node registration")
        for cid in sess.get("NodeChecks") or []:
            self._require_live_check(node, cid)
        for ref in sess.get("ServiceChecks") or []:
            self._require_live_check(node, ref.get("ID", ""))
        if sess.get("Behavior", "release") not in ("release", "delete"):
            raise StateError(f"Invalid Behavior setting '{sess.get('Behavior')}'")
        sid: str = sess["ID"]
        index = self.bump(wk.SESSIONS, wk.session(sid))
        sess["CreateIndex"] = sess["ModifyIndex"] = index
        self.sessions[sid] = sess
        return sid

    def _require_live_check(self, node: str, cid: str) -> None:
        chk = self.checks.get(node, {}).get(cid)
        if chk is None:
            raise StateError(f"Missing check '{cid}' registration")
        if chk["Status"] == "critical":
            raise StateError(f"Check '{cid}' is in critical state")

    def _apply_session_destroy(self, cmd: SessionDestroy) -> bool:
        self._invalidate_session(cmd.id)
        return True

    def _invalidate_session(self, sid: str) -> None:
        """Drop a session: release (or delete) its locks and start their lock-delay."""
        sess = self.sessions.pop(sid, None)
        if sess is None:
            return
        self.bump(wk.SESSIONS, wk.session(sid))
        self.drop_session_queries(sid)
        delay = min(int(sess.get("LockDelay") or 0), MAX_LOCK_DELAY_NS) / 1e9
        for entry in [e for e in self.kv.values() if e.session == sid]:
            if delay:
                self.lock_delays[entry.key] = self.now + delay
            if sess.get("Behavior") == "delete":
                self._kv_delete(entry.key)
            else:
                self.bump(wk.KVS, wk.kv(entry.key))
                self.kv[entry.key] = KVEntry(entry.key, entry.value, entry.flags, entry.create_index,
                                             self.write_index, entry.lock_index, "")

    def _invalidate_sessions_of_check(self, node: str, cid: str) -> None:
        for session_id, sess in list(self.sessions.items()):
            if sess["Node"] != node:
                continue
            names = list(sess.get("NodeChecks") or []) + [c.get("ID") for c in sess.get("ServiceChecks") or []]
            if cid in names:
                self._invalidate_session(session_id)

    # session reads --------------------------------------------------------------------

    def session_list(self, node: str | None = None) -> tuple[int, list[Record]]:
        items = [s for s in self.sessions.values() if node is None or s["Node"] == node]
        items.sort(key=lambda s: int(s["CreateIndex"]))
        return self.table_index[wk.SESSIONS], [session_json(s) for s in items]

    def session_get(self, sid: str) -> tuple[int, list[Record]]:
        sess = self.sessions.get(sid)
        return self.table_index[wk.SESSIONS], [session_json(sess)] if sess else []
