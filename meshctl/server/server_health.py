"""The leader watches the other servers and keeps their serfHealth checks true.

Consul's servers learn of a dead peer through gossip and the leader turns that node's
serfHealth critical — which invalidates its sessions and takes its services out of DNS.
Here the Raft connection is the liveness signal: a peer the leader has not reached for
`FAILURE_AFTER` seconds is marked critical, and passing again once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from meshctl.server.commands import CheckUpdate
from meshctl.server.state import SERF_CHECK_ID

log = logging.getLogger(__name__)
FAILURE_AFTER = 5.0
TICK = 1.0
ALIVE_OUTPUT = "Agent alive and reachable"
FAILED_OUTPUT = "Agent not live or unreachable"


class ServerHealth:
    """Leader-side failure detector for the servers of the Raft configuration."""

    def __init__(self, cluster: Any, failure_after: float = FAILURE_AFTER) -> None:
        self.cluster = cluster
        self.failure_after = failure_after
        self._last_seen: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.check_once(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:  # leadership can move mid-tick; try again next tick
                log.debug("server health check failed", exc_info=True)

    async def check_once(self, now: float) -> None:
        store = self.cluster.store
        if not store.is_leader:
            self._last_seen.clear()  # a new leader gives every peer a full grace period
            return
        directory = {**self.cluster.known, **store.members}
        for addr in store.peers():
            node = (directory.get(addr) or {}).get("Node")
            if not node:
                continue
            if store.connected(addr):
                self._last_seen[addr] = now
                await self._set(node, "passing", ALIVE_OUTPUT)
            elif now - self._last_seen.setdefault(addr, now) >= self.failure_after:
                await self._set(node, "critical", FAILED_OUTPUT)

    async def _set(self, node: str, status: str, output: str) -> None:
        store = self.cluster.store
        check = store.state.checks.get(node, {}).get(SERF_CHECK_ID)
        if check is None or check["Status"] == status:
            return
        log.info("server %s is now %s", node, "alive" if status == "passing" else "failed")
        await store.apply(CheckUpdate(node, SERF_CHECK_ID, status, output))
