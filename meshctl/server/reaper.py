"""Tombstone reaping: deleted keys' tombstones are forgotten after a grace period.

Tombstones keep a prefix's index from going backwards after a delete; kept forever they
would grow without bound. As Consul's reaper, the leader forgets tombstones older than
`tombstone_ttl` (15 min): it remembers which index the store had at each tick and, once a
checkpoint is older than the TTL, replicates a `tombstone_reap` up to that index. The state
machine never sees the clock, only the index limit.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from meshctl.server.commands import TombstoneReap
from meshctl.server.periodic import Periodic

log = logging.getLogger(__name__)
TOMBSTONE_TTL = 15 * 60.0
TICK = 30.0


class TombstoneReaper(Periodic):
    """Periodic task (every `tick` seconds); only the leader submits reap commands."""

    def __init__(self, store: Any, ttl: float = TOMBSTONE_TTL, tick: float = TICK) -> None:
        self.store = store
        self.ttl, self.period = ttl, tick
        self._checkpoints: deque[tuple[float, int]] = deque()

    async def tick(self) -> None:
        await self.reap_once(time.monotonic())

    def failed(self, exc: Exception) -> None:
        log.debug("tombstone reap failed", exc_info=True)  # leadership may move mid-way; the next tick tries again

    async def reap_once(self, now: float) -> None:
        """Record a checkpoint; reap up to the newest checkpoint older than the TTL."""
        self._checkpoints.append((now, self.store.state.index))
        limit = None
        while self._checkpoints and now - self._checkpoints[0][0] >= self.ttl:
            limit = self._checkpoints.popleft()[1]
        if limit is not None and self.store.is_leader and self.store.state.tombstones:
            await self.store.apply(TombstoneReap(limit))
