"""`datacenters`: the known datacenters (not a blocking endpoint: re-polled every 15 s)."""

from __future__ import annotations

from typing import ClassVar

from meshctl.client import Client, ConsulError, Reply
from meshctl.template.dependency.base import Dependency


class CatalogDatacentersQuery(Dependency):
    """Datacenter names; with `ignore_inaccessible`, only those whose servers answer with a leader."""

    blocking: ClassVar[bool] = False
    poll_interval: ClassVar[float] = 15.0

    def __init__(self, ignore_inaccessible: bool = False) -> None:
        self.ignore_inaccessible = bool(ignore_inaccessible)

    def __str__(self) -> str:
        return f"catalog.datacenters(ignore_inaccessible={str(self.ignore_inaccessible).lower()})"

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[list[str]]:
        """GET /v1/catalog/datacenters (+ one probe per datacenter when filtering)."""
        dcs = client.catalog.datacenters()
        if self.ignore_inaccessible:
            ok = []
            for dc in dcs:
                try:
                    if client.catalog.nodes(dc=dc).known_leader:
                        ok.append(dc)
                except ConsulError:
                    continue
            dcs = ok
        return Reply(value=list(dcs))
