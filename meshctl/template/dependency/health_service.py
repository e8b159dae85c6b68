"""`service`: healthy instances of a service (`health.service(tag.name?query@dc~near|filter)`)."""

from __future__ import annotations

import re

from meshctl.client import Client, Reply, ServiceEntry
from meshctl.template.dependency.base import (
    DC_RE,
    FILTER_RE,
    NEAR_RE,
    QUERY_RE,
    Dependency,
    DependencyError,
    QueryScope,
    match,
)
from meshctl.template.dependency.records import HealthCheck, HealthService, Weights, aggregated_status

_RE = re.compile(r"((?P<tag>[\w=:.\-]+)\.)?(?P<name>[\w\-]+)" + QUERY_RE + DC_RE + NEAR_RE + FILTER_RE)
STATES = ("any", "critical", "maintenance", "passing", "warning")


class HealthServiceQuery(Dependency):
    """Instances of a service whose aggregated check status passes the filter.

    No filter means "passing" (asked of the server with `?passing`); otherwise every instance
    is fetched and filtered here ("any" accepts all). Sorted by node then ID, unless `~near`.
    """

    def __init__(self, text: str) -> None:
        g = match("health.service", _RE, text)
        self.tag: str = g["tag"] or ""
        self.name: str = g["name"] or ""
        self.dc: str = g["dc"] or ""
        self.near: str = g["near"] or ""
        self.opts = QueryScope.parse("health.service", g["query"])
        filters: list[str] = []
        for f in (g["filter"] or "").split(","):
            f = f.strip()
            if not f:
                continue
            if f not in STATES:
                raise DependencyError(f"health.service: invalid filter: {f!r} in {text!r}")
            filters.append(f)
        self.filters: list[str] = sorted(set(filters)) or ["passing"]

    def __str__(self) -> str:
        name = f"{self.tag}.{self.name}" if self.tag else self.name
        dc = f"@{self.dc}" if self.dc else ""
        near = f"~{self.near}" if self.near else ""
        return f"health.service({name}{self.opts}{dc}{near}|{','.join(self.filters)})"

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[list[HealthService]]:
        """GET /v1/health/service/<name>[?tag=][&passing]."""
        passing_only = self.filters == ["passing"]
        reply = client.health.service(self.name, self.tag or None, passing_only,
                                      options=self.opts.options(dc=self.dc, near=self.near, stale=stale),
                                      index=index, wait=wait)
        out: list[HealthService] = []
        accept_any = "any" in self.filters
        for entry in reply.value:
            checks = [HealthCheck.from_json(c) for c in entry.get("Checks") or []]
            status = aggregated_status(checks)
            if not accept_any and status not in self.filters:
                continue
            out.append(_service(entry, checks, status))
        if not self.near:
            out.sort(key=lambda s: (s.Node, s.ID))
        return reply.with_value(out)


def _service(entry: ServiceEntry, checks: list[HealthCheck], status: str) -> HealthService:
    node = entry.get("Node") or {}
    svc = entry.get("Service") or {}
    weights = svc.get("Weights") or {}
    return HealthService(
        Node=node.get("Node") or "", NodeID=node.get("ID") or "", NodeAddress=node.get("Address") or "",
        NodeDatacenter=node.get("Datacenter") or "", NodeTaggedAddresses=dict(node.get("TaggedAddresses") or {}),
        NodeMeta=dict(node.get("Meta") or {}), ServiceMeta=dict(svc.get("Meta") or {}),
        Address=svc.get("Address") or node.get("Address") or "",
        ServiceTaggedAddresses=dict(svc.get("TaggedAddresses") or {}), ID=svc.get("ID") or "",
        Name=svc.get("Service") or "", Kind=svc.get("Kind") or "", Tags=sorted(svc.get("Tags") or []),
        Checks=checks, Status=status, Port=int(svc.get("Port") or 0),
        Weights=Weights(Passing=int(weights.get("Passing", 1)), Warning=int(weights.get("Warning", 1))),
        Namespace=svc.get("Namespace") or "", Partition=svc.get("Partition") or "",
    )
