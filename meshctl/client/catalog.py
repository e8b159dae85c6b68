"""`client.catalog`: /v1/catalog (Consul's JSON shapes returned as dicts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import QueryOptions, tag_params
from meshctl.client.types import Reply


class Catalog(Area):
    """Nodes and services as the servers know them. Reads take `QueryOptions` keywords."""

    def register(self, registration: dict[str, Any], *, dc: str | None = None) -> bool:
        """`PUT /v1/catalog/register` with Consul's body (Node, Address, Service, Check(s)...)."""
        return bool(self._client._write("PUT", "catalog/register", json=registration, dc=dc))

    def deregister(self, node: str, *, service_id: str | None = None, check_id: str | None = None,
                   dc: str | None = None) -> bool:
        """Remove a node (with everything on it), or just one of its services or checks."""
        body: dict[str, Any] = {"Node": node}
        for field, value in (("ServiceID", service_id), ("CheckID", check_id), ("Datacenter", dc)):
            if value:
                body[field] = value
        return bool(self._client._write("PUT", "catalog/deregister", json=body, dc=dc))

    def datacenters(self) -> list[str]:
        """Known datacenters (not a blocking endpoint)."""
        return list(self._client._json(self._client._request("GET", "catalog/datacenters")) or [])

    def nodes(self, **opts: Unpack[QueryOptions]) -> Reply[list[dict[str, Any]]]:
        """All nodes."""
        return self._client._query("catalog/nodes", decode=lambda d: d or [], **opts)

    def services(self, **opts: Unpack[QueryOptions]) -> Reply[dict[str, list[str]]]:
        """Service name → union of its instances' tags."""
        return self._client._query("catalog/services", decode=lambda d: d or {}, **opts)

    def service(self, name: str, tag: str | Iterable[str] | None = None,
                **opts: Unpack[QueryOptions]) -> Reply[list[dict[str, Any]]]:
        """Instances of a service (ServiceNode records); every given tag must match."""
        return self._client._query(f"catalog/service/{quote_segment(name)}", params=tag_params(tag),
                                   decode=lambda d: d or [], **opts)

    def node(self, node: str, **opts: Unpack[QueryOptions]) -> Reply[dict[str, Any] | None]:
        """`{"Node": {...}, "Services": {id: {...}}}`, or None for an unknown node."""
        return self._client._query(f"catalog/node/{quote_segment(node)}", **opts)

    def node_services(self, node: str, **opts: Unpack[QueryOptions]) -> Reply[dict[str, Any] | None]:
        """Like `node()` but `Services` is a list."""
        return self._client._query(f"catalog/node-services/{quote_segment(node)}", **opts)
