"""`client.catalog`: /v1/catalog (Consul's JSON records, typed in `meshctl.client.records`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Unpack, cast

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import QueryArgs, QueryOptions, query_options, tag_params
from meshctl.client.records import CatalogNode, CatalogNodeServiceList, CatalogService, JSONObject, Node
from meshctl.client.types import Reply


def _nodes(data: object) -> list[Node]:
    return cast(list[Node], data or [])


def _services(data: object) -> dict[str, list[str]]:
    return cast(dict[str, list[str]], data or {})


def _service_nodes(data: object) -> list[CatalogService]:
    return cast(list[CatalogService], data or [])


def _node(data: object) -> CatalogNode | None:
    return cast(CatalogNode | None, data)


def _node_services(data: object) -> CatalogNodeServiceList | None:
    return cast(CatalogNodeServiceList | None, data)


class Catalog(Area):
    """Nodes and services as the servers know them. Reads take `QueryOptions` (or its keywords)."""

    def register(self, registration: JSONObject, *, dc: str | None = None) -> bool:
        """`PUT /v1/catalog/register` with Consul's body (Node, Address, Service, Check(s)...)."""
        return bool(self._client._write("PUT", "catalog/register", json=registration, dc=dc))

    def deregister(self, node: str, *, service_id: str | None = None, check_id: str | None = None,
                   dc: str | None = None) -> bool:
        """Remove a node (with everything on it), or just one of its services or checks."""
        body: dict[str, str] = {"Node": node}
        for field, value in (("ServiceID", service_id), ("CheckID", check_id), ("Datacenter", dc)):
            if value:
                body[field] = value
        return bool(self._client._write("PUT", "catalog/deregister", json=body, dc=dc))

    def datacenters(self) -> list[str]:
        """Known datacenters (not a blocking endpoint)."""
        return list(cast(list[str], self._get_json("catalog/datacenters") or []))

    def nodes(self, *, options: QueryOptions | None = None, **args: Unpack[QueryArgs]) -> Reply[list[Node]]:
        """All nodes."""
        return self._client._query("catalog/nodes", query_options(options, args), _nodes)

    def services(self, *, options: QueryOptions | None = None,
                 **args: Unpack[QueryArgs]) -> Reply[dict[str, list[str]]]:
        """Service name → union of its instances' tags."""
        return self._client._query("catalog/services", query_options(options, args), _services)

    def service(self, name: str, tag: str | Iterable[str] | None = None, *, options: QueryOptions | None = None,
                **args: Unpack[QueryArgs]) -> Reply[list[CatalogService]]:
        """Instances of a service (ServiceNode records); every given tag must match."""
        return self._client._query(f"catalog/service/{quote_segment(name)}", query_options(options, args),
                                   _service_nodes, params=tag_params(tag))

    def node(self, node: str, *, options: QueryOptions | None = None,
             **args: Unpack[QueryArgs]) -> Reply[CatalogNode | None]:
        """`{"Node": {...}, "Services": {id: {...}}}`, or None for an unknown node."""
        return self._client._query(f"catalog/node/{quote_segment(node)}", query_options(options, args), _node)

    def node_services(self, node: str, *, options: QueryOptions | None = None,
                      **args: Unpack[QueryArgs]) -> Reply[CatalogNodeServiceList | None]:
        """Like `node()` but `Services` is a list."""
        return self._client._query(f"catalog/node-services/{quote_segment(node)}", query_options(options, args),
                                   _node_services)
