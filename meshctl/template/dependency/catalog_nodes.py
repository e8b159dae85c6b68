"""`nodes`: every catalog node (`catalog.nodes(?query@dc~near)`)."""

from __future__ import annotations

import re

from meshctl.client import Client, Reply
from meshctl.template.dependency.base import DC_RE, NEAR_RE, QUERY_RE, Dependency, QueryScope, match
from meshctl.template.dependency.records import Node

_RE = re.compile(QUERY_RE + DC_RE + NEAR_RE)


class CatalogNodesQuery(Dependency):
    """Nodes sorted by name then address (or by round-trip time with `~near`)."""

    def __init__(self, text: str = "") -> None:
        g = match("catalog.nodes", _RE, text)
        self.dc: str = g["dc"] or ""
        self.near: str = g["near"] or ""
        self.opts = QueryScope.parse("catalog.nodes", g["query"])

    def __str__(self) -> str:
        return f"catalog.nodes({self.opts}{'@' + self.dc if self.dc else ''}{'~' + self.near if self.near else ''})"

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[list[Node]]:
        """GET /v1/catalog/nodes."""
        reply = client.catalog.nodes(options=self.opts.options(dc=self.dc, near=self.near, stale=stale),
                                     index=index, wait=wait)
        nodes = [Node.from_json(n) for n in reply.value]
        if not self.near:
            nodes.sort(key=lambda n: (n.Node, n.Address))
        return reply.with_value(nodes)
