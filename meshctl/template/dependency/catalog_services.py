"""`services`: every service name with its tags (`catalog.services(?query@dc)`)."""

from __future__ import annotations

import re

from meshctl.client import Client, Reply
from meshctl.template.dependency.base import DC_RE, QUERY_RE, Dependency, QueryScope, match
from meshctl.template.dependency.records import CatalogSnippet

_RE = re.compile(QUERY_RE + DC_RE)


class CatalogServicesQuery(Dependency):
    """Service names (sorted) with the sorted union of their instances' tags."""

    def __init__(self, text: str = "") -> None:
        g = match("catalog.services", _RE, text)
        self.dc: str = g["dc"] or ""
        self.opts = QueryScope.parse("catalog.services", g["query"])

    def __str__(self) -> str:
        return f"catalog.services({self.opts}{'@' + self.dc if self.dc else ''})"

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[list[CatalogSnippet]]:
        """GET /v1/catalog/services."""
        reply = client.catalog.services(options=self.opts.options(dc=self.dc, stale=stale), index=index, wait=wait)
        return reply.with_value([CatalogSnippet(Name=name, Tags=sorted(set(tags or [])))
                                 for name, tags in sorted(reply.value.items())])
