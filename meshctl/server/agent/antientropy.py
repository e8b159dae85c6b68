"""Anti-entropy: the agent owns its node's services and checks; repair the catalog's copy.

Every `interval` (60 s, as Consul's sync) the agent compares what it holds with what the
catalog says about its node and writes only the differences: a missing or changed service
or check is re-registered, a service or check the agent does not own is removed (except
the server's `consul` service and the `serfHealth` check, which the agent's start owns),
and a node that vanished from the catalog is registered again.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from meshctl.server.commands import CheckDef, Deregister, Register, ServiceDef
from meshctl.server.metrics import TELEMETRY
from meshctl.server.periodic import Periodic
from meshctl.server.state import SERF_CHECK_ID

log = logging.getLogger(__name__)

SERVICE_FIELDS = ("Service", "Tags", "Meta", "Port", "Address", "Weights", "EnableTagOverride", "Kind")
CHECK_FIELDS = ("Name", "Status", "ServiceID", "Notes", "Type")
AGENT_OWNED_SERVICES = {"consul"}


async def node_view(store: Any, node: str) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any]]:
    """(node record or None, services by ID, checks by ID) as the catalog holds them."""
    if hasattr(store, "node_view"):
        return await store.node_view(node)
    state = store.state
    return state.nodes.get(node), dict(state.services.get(node, {})), dict(state.checks.get(node, {}))


def _differs(local: dict[str, Any], remote: dict[str, Any], fields: tuple[str, ...]) -> bool:
    for key in fields:
        a, b = local.get(key), remote.get(key)
        if key in ("Tags",):
            a, b = list(a or []), list(b or [])
        elif key in ("Meta",):
            a, b = dict(a or {}), dict(b or {})
        elif key == "Address" or key == "Kind" or key == "Notes" or key == "Type":
            a, b = a or "", b or ""
        if a != b:
            return True
    return False


class AntiEntropy(Periodic):
    """Periodic (every `interval` seconds) and on-demand sync of one LocalAgent's services and checks."""

    def __init__(self, agent: Any, interval: float = 60.0) -> None:
        self.agent = agent
        self.period = interval
        self.repairs = 0

    async def tick(self) -> None:
        TELEMETRY.anti_entropy(True, await self.sync())

    def failed(self, exc: Exception) -> None:
        TELEMETRY.anti_entropy(False)
        log.warning("anti-entropy sync failed: %s", exc)

    async def sync(self) -> int:
        """One full comparison; returns the number of writes it made."""
        agent = self.agent
        node, services, checks = await node_view(agent.store, agent.node_name)
        writes = 0
        if node is None:
            log.info("anti-entropy: node %s missing from the catalog, registering it", agent.node_name)
            await agent.start()
            writes += 1
            node, services, checks = await node_view(agent.store, agent.node_name)
        for sid, svc in list(agent.services.items()):
            remote = services.get(sid)
            if remote is None or _differs(svc, remote, SERVICE_FIELDS):
                await agent.store.apply(Register(agent.node_name, skip_node_update=True, address=agent.address,
                                                 service=cast(ServiceDef, svc)))
                writes += 1
        for sid in services:
            if sid not in agent.services and not (agent.server and sid in AGENT_OWNED_SERVICES):
                await agent.store.apply(Deregister(agent.node_name, service_id=sid))
                writes += 1
        for cid, check in list(agent.checks.items()):
            local = check.catalog_json()
            remote = checks.get(cid)
            if remote is None or _differs(local, remote, CHECK_FIELDS):
                await agent.store.apply(Register(agent.node_name, skip_node_update=True, address=agent.address,
                                                 checks=(cast(CheckDef, local),)))
                writes += 1
        for cid, remote in checks.items():
            if cid == SERF_CHECK_ID or cid in agent.checks:
                continue
            if remote.get("ServiceID") and remote["ServiceID"] not in agent.services:
                continue  # went with its service above
            await agent.store.apply(Deregister(agent.node_name, check_id=cid))
            writes += 1
        if writes:
            self.repairs += writes
            log.info("anti-entropy: %d catalog repair(s) for node %s", writes, agent.node_name)
        return writes
