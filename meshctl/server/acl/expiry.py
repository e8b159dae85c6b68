"""Reaping expired ACL tokens, as Consul's leader does.

A token past its ExpirationTime already resolves as unknown (enforce.py); the leader then
deletes it with an ordinary `acl_token_delete`, so every server forgets it. The state
machine never reads the clock: which tokens are expired is decided here, on the leader.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from meshctl.server.acl import state as acl_state
from meshctl.server.commands import ACLTokenDelete, with_now
from meshctl.server.periodic import Periodic

log = logging.getLogger(__name__)
REAP_PERIOD = 5.0


class ExpiredTokenReaper(Periodic):
    """Every `period` seconds, the leader deletes the tokens whose ExpirationTime has passed."""

    failure = "expired token reap failed"
    logger = log

    def __init__(self, store: Any, period: float = REAP_PERIOD) -> None:
        self.store = store
        self.period = period

    async def tick(self) -> None:
        await self.reap(time.time())

    async def reap(self, now: float) -> list[str]:
        """One pass; the AccessorIDs deleted."""
        if not self.store.is_leader:
            return []
        expired = acl_state.expired_tokens(self.store.state, now)
        for accessor in expired:
            log.info("ACL token %s expired: deleting it", accessor)
            await self.store.apply(with_now(ACLTokenDelete(accessor), now))
        return expired
