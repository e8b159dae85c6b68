"""`client.coordinate`: /v1/coordinate (network coordinates), and the round trip two of them predict."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Unpack, cast

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import QueryArgs, QueryOptions, query_options
from meshctl.client.records import JSONObject
from meshctl.client.types import Reply


def _list(data: object) -> list[JSONObject]:
    return cast(list[JSONObject], data or [])


def rtt(a: Mapping[str, object], b: Mapping[str, object]) -> float:
    """The round trip (seconds) two coordinates (`{"Vec", "Error", "Adjustment", "Height"}`) predict:
    Serf's DistanceTo, the Euclidean distance plus both heights, plus both adjustments unless that
    would make it negative."""

    def number(c: Mapping[str, object], key: str) -> float:
        return float(cast(float, c.get(key) or 0.0))

    vec_a, vec_b = cast(list[float], a.get("Vec") or []), cast(list[float], b.get("Vec") or [])
    if len(vec_a) != len(vec_b):
        raise ValueError("coordinates of different dimensionality")
    plain = math.dist(vec_a, vec_b) + number(a, "Height") + number(b, "Height")
    adjusted = plain + number(a, "Adjustment") + number(b, "Adjustment")
    return adjusted if adjusted > 0 else plain


class Coordinate(Area):
    """LAN coordinates of the nodes, WAN coordinates of the servers."""

    def datacenters(self) -> list[JSONObject]:
        """`[{Datacenter, AreaID, Coordinates: [{Node, Coord}]}]`: every datacenter's servers."""
        return _list(self._get_json("coordinate/datacenters"))

    def nodes(self, *, options: QueryOptions | None = None, **args: Unpack[QueryArgs]) -> Reply[list[JSONObject]]:
        """`[{Node, Segment, Coord}]` of this datacenter's nodes (blocking)."""
        return self._client._query("coordinate/nodes", query_options(options, args), _list)

    def node(self, node: str, *, options: QueryOptions | None = None,
             **args: Unpack[QueryArgs]) -> Reply[list[JSONObject]]:
        """One node's entries (empty when it has no coordinate)."""
        return self._client._query(f"coordinate/node/{quote_segment(node)}", query_options(options, args), _list,
                                   missing=list)

    def update(self, node: str, coord: Mapping[str, object], segment: str = "", *, dc: str | None = None) -> None:
        """Set a node's LAN coordinate (applied with the servers' next batch)."""
        self._client._write("PUT", "coordinate/update", json={"Node": node, "Segment": segment, "Coord": dict(coord)},
                            dc=dc)
