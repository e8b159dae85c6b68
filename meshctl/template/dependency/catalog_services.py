"""`services`: every service name with its tags (`catalog.services(?query@dc)`)."""

from __future__ import annotations

import re
from typing import Any

from meshctl.client import Client, Reply
from meshctl.template.dependency.base import DC_RE, QUERY_RE, Dependency, QueryOptions, consistency, match
from meshctl.template.dependency.records import CatalogSnippet

_RE = re.compile(QUERY_RE + DC_RE)


class CatalogServicesQuery(Dependency):
    """Service names (sorted) with the sorted union of their instances' tags."""

    def __init__(self, text: str = "") -> None:
        g = match("catalog.services", _RE, text)
        self.dc: str = g["dc"] or ""
        self.opts = QueryOptions.parse("catalog.services", g["query"])

    def __str__(self) -> str:
        return f"catalog.services({self.opts}{'@' + self.dc if self.dc else ''})"

    def fetch(self, client: Client, index: int = 0, wait: float | None = None,
              stale: bool = False) -> Reply[Any]:
        """GET /v1/catalog/services."""
        if self.opts.params():
            reply = client._query("catalog/services", params=self.opts.params(), index=index, wait=wait,
                                  consistency=consistency(stale), dc=self.dc or None, decode=lambda d: d or {})
        else:
            reply = client.catalog.services(index=index, wait=wait, consistency=consistency(stale),
                                            dc=self.dc or None)
        reply.value = [CatalogSnippet(Name=name, Tags=sorted(set(tags or [])))
                       for name, tags in sorted(reply.value.items())]
        return reply
