"""Session TTL timers: the leader destroys a session whose TTL (x2 grace) runs out.

Consul keeps these timers on the leader only and restarts them on a leader change; the
state machine never sees a clock, it only gets the resulting `session_destroy` command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from meshctl.durations import parse_duration
from meshctl.server.commands import SessionDestroy

log = logging.getLogger(__name__)
TTL_MULTIPLIER = 2  # Consul's SessionTTLMultiplier


class SessionTimers:
    """One asyncio timer per session that has a TTL."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def reset(self, session_id: str, ttl: str) -> None:
        """(Re)start the timer of a session: on create, on renew, after a leader change."""
        self.cancel(session_id)
        if not ttl:
            return
        seconds = parse_duration(ttl) * TTL_MULTIPLIER
        loop = asyncio.get_running_loop()
        self._timers[session_id] = loop.call_later(seconds, self._expire, session_id)

    def cancel(self, session_id: str) -> None:
        handle = self._timers.pop(session_id, None)
        if handle is not None:
            handle.cancel()

    def restart_all(self) -> None:
        """Give every session with a TTL a full TTL again (after becoming leader)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for sid, sess in list(self.store.state.sessions.items()):
            if sess.get("TTL"):
                self.reset(sid, sess["TTL"])

    def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def _expire(self, session_id: str) -> None:
        self._timers.pop(session_id, None)
        if session_id in self.store.state.sessions:
            log.info("session %s expired (TTL)", session_id)
            asyncio.ensure_future(self._destroy(session_id))

    async def _destroy(self, session_id: str) -> None:
        try:
            await self.store.apply(SessionDestroy(session_id, now=time.time()))
        except Exception:  # the leader may have changed; the new one restarts timers
            log.exception("could not destroy expired session %s", session_id)
