"""`node`: one node with its services (`catalog.node(name?query@dc)`; no name: the agent's node)."""

from __future__ import annotations

import re

from meshctl.client import Client, Reply
from meshctl.template.dependency.base import DC_RE, QUERY_RE, Dependency, QueryScope, match
from meshctl.template.dependency.records import CatalogNode, CatalogNodeService, Node

_RE = re.compile(r"(?P<name>[\w.\-]+)?" + QUERY_RE + DC_RE)


class CatalogNodeQuery(Dependency):
    """A CatalogNode (services sorted by name then ID), or None for an unknown node."""

    def __init__(self, text: str = "") -> None:
        g = match("catalog.node", _RE, text)
        self.name: str = g["name"] or ""
        self.dc: str = g["dc"] or ""
        self.opts = QueryScope.parse("catalog.node", g["query"])

    def __str__(self) -> str:
        return f"catalog.node({self.name}{self.opts}{'@' + self.dc if self.dc else ''})"

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[CatalogNode | None]:
        """GET /v1/catalog/node/<name> (the name from /v1/agent/self when not given)."""
        name = self.name or client.agent.node_name()
        reply = client.catalog.node(name, options=self.opts.options(dc=self.dc, stale=stale), index=index,
                                    wait=wait)
        data = reply.value
        if not data or not data.get("Node"):
            return reply.with_value(None)
        services = [
            CatalogNodeService(ID=s.get("ID") or "", Service=s.get("Service") or "",
                               Tags=sorted(s.get("Tags") or []), Meta=dict(s.get("Meta") or {}),
                               Port=int(s.get("Port") or 0), Address=s.get("Address") or "",
                               EnableTagOverride=bool(s.get("EnableTagOverride")))
            for s in (data.get("Services") or {}).values()
        ]
        services.sort(key=lambda s: (s.Service, s.ID))
        return reply.with_value(CatalogNode(Node=Node.from_json(data["Node"]), Services=services))
