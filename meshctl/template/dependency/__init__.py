"""consul-template's data sources: one module per source, each parsed from its query string.

    dep = parse("service", "web@dc1|passing,warning")   # -> HealthServiceQuery
    str(dep)                                            # "health.service(web@dc1|passing,warning)"
    reply = dep.fetch(client, index=0, wait=60.0)       # Reply whose .value holds result records

The string is the dependency's identity: two templates asking for the same data share one
dependency (and one blocking query). Results are the records in `records.py`, whose field
names are consul-template's (KeyPair.Key, HealthService.Address ...).
"""

from __future__ import annotations

from meshctl.template.dependency.base import Dependency, DependencyError, QueryScope
from meshctl.template.dependency.catalog_datacenters import CatalogDatacentersQuery
from meshctl.template.dependency.catalog_node import CatalogNodeQuery
from meshctl.template.dependency.catalog_nodes import CatalogNodesQuery
from meshctl.template.dependency.catalog_services import CatalogServicesQuery
from meshctl.template.dependency.file import FileQuery
from meshctl.template.dependency.health_service import HealthServiceQuery
from meshctl.template.dependency.kv_get import KVGetQuery
from meshctl.template.dependency.kv_list import KVListQuery
from meshctl.template.dependency.records import (
    CatalogNode,
    CatalogNodeService,
    CatalogSnippet,
    HealthCheck,
    HealthService,
    KeyPair,
    Node,
    Weights,
)

__all__ = [
    "CatalogDatacentersQuery",
    "CatalogNode",
    "CatalogNodeQuery",
    "CatalogNodeService",
    "CatalogNodesQuery",
    "CatalogServicesQuery",
    "CatalogSnippet",
    "Dependency",
    "DependencyError",
    "FileQuery",
    "HealthCheck",
    "HealthService",
    "HealthServiceQuery",
    "KVGetQuery",
    "KVListQuery",
    "KeyPair",
    "Node",
    "QueryScope",
    "Weights",
]
