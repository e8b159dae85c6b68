"""Result records with consul-template's field names (the template engine reads their attributes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from meshctl.client import records as api

NODE_MAINT = "_node_maintenance"
SERVICE_MAINT_PREFIX = "_service_maintenance:"


@dataclass
class KeyPair:
    """A KV entry: Path is the full key, Key is relative to the listed prefix."""

    Path: str
    Key: str
    Value: str
    CreateIndex: int = 0
    ModifyIndex: int = 0
    LockIndex: int = 0
    Flags: int = 0
    Session: str = ""


@dataclass
class Weights:
    """A service's DNS SRV weights."""

    Passing: int = 1
    Warning: int = 1


@dataclass
class HealthCheck:
    """One check of a service instance or its node (api.HealthCheck)."""

    Node: str = ""
    CheckID: str = ""
    Name: str = ""
    Status: str = ""
    Notes: str = ""
    Output: str = ""
    ServiceID: str = ""
    ServiceName: str = ""
    ServiceTags: list[str] = field(default_factory=list)
    Type: str = ""
    CreateIndex: int = 0
    ModifyIndex: int = 0

    @classmethod
    def from_json(cls, d: api.HealthCheck) -> Self:
        """From Consul's JSON check."""
        return cls(Node=d.get("Node") or "", CheckID=d.get("CheckID") or "", Name=d.get("Name") or "",
                   Status=d.get("Status") or "", Notes=d.get("Notes") or "", Output=d.get("Output") or "",
                   ServiceID=d.get("ServiceID") or "", ServiceName=d.get("ServiceName") or "",
                   ServiceTags=list(d.get("ServiceTags") or []), Type=d.get("Type") or "",
                   CreateIndex=int(d.get("CreateIndex") or 0), ModifyIndex=int(d.get("ModifyIndex") or 0))


def aggregated_status(checks: list[HealthCheck]) -> str:
    """api.HealthChecks.AggregatedStatus: maintenance, else the worst of critical > warning > passing."""
    warning = critical = maintenance = False
    for c in checks:
        if c.CheckID == NODE_MAINT or c.CheckID.startswith(SERVICE_MAINT_PREFIX):
            maintenance = True
            continue
        if c.Status == "passing":
            continue
        if c.Status == "warning":
            warning = True
        elif c.Status == "critical":
            critical = True
        else:
            return ""
    if maintenance:
        return "maintenance"
    if critical:
        return "critical"
    if warning:
        return "warning"
    return "passing"


@dataclass
class HealthService:
    """One service instance with its health (dependency.HealthService)."""

    Node: str
    NodeID: str
    NodeAddress: str
    NodeDatacenter: str
    NodeTaggedAddresses: dict[str, str]
    NodeMeta: dict[str, str]
    ServiceMeta: dict[str, str]
    Address: str
    ServiceTaggedAddresses: dict[str, api.ServiceAddress]
    ID: str
    Name: str
    Kind: str
    Tags: list[str]
    Checks: list[HealthCheck]
    Status: str
    Port: int
    Weights: Weights
    Namespace: str = ""
    Partition: str = ""


@dataclass
class CatalogSnippet:
    """A service name with the union of its tags (catalog services)."""

    Name: str
    Tags: list[str]


@dataclass
class Node:
    """A catalog node."""

    ID: str
    Node: str
    Address: str
    Datacenter: str
    TaggedAddresses: dict[str, str]
    Meta: dict[str, str]

    @classmethod
    def from_json(cls, d: api.Node) -> Self:
        """From Consul's JSON node."""
        return cls(ID=d.get("ID") or "", Node=d.get("Node") or "", Address=d.get("Address") or "",
                   Datacenter=d.get("Datacenter") or "", TaggedAddresses=dict(d.get("TaggedAddresses") or {}),
                   Meta=dict(d.get("Meta") or {}))


@dataclass
class CatalogNodeService:
    """A service registered on a node."""

    ID: str
    Service: str
    Tags: list[str]
    Meta: dict[str, str]
    Port: int
    Address: str
    EnableTagOverride: bool = False


@dataclass
class CatalogNode:
    """A node with its services (the `node` function)."""

    Node: Node
    Services: list[CatalogNodeService]
