"""`nodes`: every catalog node (`catalog.nodes(?query@dc~near)`)."""

from __future__ import annotations

import re
from typing import Any

from meshctl.client import Client, Reply
from meshctl.template.dependency.base import (
    DC_RE,
    NEAR_RE,
    QUERY_RE,
    Dependency,
    QueryOptions,
    consistency,
    match,
)
from meshctl.template.dependency.records import Node

_RE = re.compile(QUERY_RE + DC_RE + NEAR_RE)


class CatalogNodesQuery(Dependency):
    """Nodes sorted by name then address (or by round-trip time with `~near`)."""

    def __init__(self, text: str = "") -> None:
        g = match("catalog.nodes", _RE, text)
        self.dc: str = g["dc"] or ""
        self.near: str = g["near"] or ""
        self.opts = QueryOptions.parse("catalog.nodes", g["query"])

    def __str__(self) -> str:
        return f"catalog.nodes({self.opts}{'@' + self.dc if self.dc else ''}{'~' + self.near if self.near else ''})"

    def fetch(self, client: Client, index: int = 0, wait: float | None = None,
              stale: bool = False) -> Reply[Any]:
        """GET /v1/catalog/nodes."""
        if self.opts.params():
            reply = client._query("catalog/nodes", params=self.opts.params(), index=index, wait=wait,
                                  consistency=consistency(stale), dc=self.dc or None, near=self.near or None,
                                  decode=lambda d: d or [])
        else:
            reply = client.catalog.nodes(near=self.near or None, index=index, wait=wait,
                                         consistency=consistency(stale), dc=self.dc or None)
        nodes = [Node.from_json(n) for n in reply.value]
        if not self.near:
            nodes.sort(key=lambda n: (n.Node, n.Address))
        reply.value = nodes
        return reply
