"""`client.query`: /v1/query, prepared queries (definitions in Consul's JSON shape)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack, cast

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import QueryArgs, QueryOptions, query_options
from meshctl.client.records import JSONObject
from meshctl.client.types import Reply


def _list(data: object) -> list[JSONObject]:
    return cast(list[JSONObject], data or [])


def _object(data: object) -> JSONObject:
    return cast(JSONObject, data or {})


class PreparedQuery(Area):
    """Create, read, change, run and explain prepared queries."""

    def create(self, definition: Mapping[str, object], *, dc: str | None = None) -> str:
        """Store a new query; its ID."""
        return str(_object(self._client._write("POST", "query", json=dict(definition), dc=dc))["ID"])

    def list_all(self, *, options: QueryOptions | None = None, **args: Unpack[QueryArgs]) -> Reply[list[JSONObject]]:
        return self._client._query("query", query_options(options, args), _list)

    def get(self, query_id: str, *, options: QueryOptions | None = None,
            **args: Unpack[QueryArgs]) -> Reply[list[JSONObject]]:
        """`[definition]`; empty when there is no such query."""
        return self._client._query(f"query/{quote_segment(query_id)}", query_options(options, args), _list,
                                   missing=list)

    def update(self, query_id: str, definition: Mapping[str, object], *, dc: str | None = None) -> None:
        self._client._write("PUT", f"query/{quote_segment(query_id)}", json=dict(definition), dc=dc)

    def delete(self, query_id: str, *, dc: str | None = None) -> None:
        self._client._write("DELETE", f"query/{quote_segment(query_id)}", dc=dc)

    def execute(self, id_or_name: str, *, limit: int | None = None, options: QueryOptions | None = None,
                **args: Unpack[QueryArgs]) -> Reply[JSONObject]:
        """`{Service, Nodes, DNS, Datacenter, Failovers}`; `near=` sorts, `limit=` cuts."""
        params = [("limit", str(limit))] if limit else []
        return self._client._query(f"query/{quote_segment(id_or_name)}/execute", query_options(options, args),
                                   _object, params=params)

    def explain(self, id_or_name: str, *, options: QueryOptions | None = None,
                **args: Unpack[QueryArgs]) -> Reply[JSONObject]:
        """`{Query}`: the definition a name runs, a template rendered for it."""
        return self._client._query(f"query/{quote_segment(id_or_name)}/explain", query_options(options, args),
                                   _object)
