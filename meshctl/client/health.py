"""`client.health`: /v1/health (Consul's JSON shapes returned as dicts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import Consistency, Params, tag_params
from meshctl.client.types import Reply

NodeMeta = Mapping[str, str] | Iterable[str] | None
CHECK_STATES = ("any", "passing", "warning", "critical")


class Health(Area):
    """Health checks and healthy service instances."""

    def node(self, node: str, *, filter: str | None = None, index: int | None = None,
             wait: str | float | None = None, consistency: Consistency | None = None,
             dc: str | None = None) -> Reply[list[dict[str, Any]]]:
        """Checks of one node."""
        return self._client._query(f"health/node/{quote_segment(node)}", filter=filter, index=index, wait=wait,
                                   consistency=consistency, dc=dc, decode=lambda d: d or [])

    def checks(self, service: str, *, near: str | None = None, node_meta: NodeMeta = None,
               filter: str | None = None, index: int | None = None, wait: str | float | None = None,
               consistency: Consistency | None = None, dc: str | None = None) -> Reply[list[dict[str, Any]]]:
        """Checks of one service."""
        return self._client._query(f"health/checks/{quote_segment(service)}", near=near, node_meta=node_meta,
                                   filter=filter, index=index, wait=wait, consistency=consistency, dc=dc,
                                   decode=lambda d: d or [])

    def service(self, name: str, tag: str | Iterable[str] | None = None, passing: bool = False, *,
                near: str | None = None, node_meta: NodeMeta = None, filter: str | None = None,
                index: int | None = None, wait: str | float | None = None,
                consistency: Consistency | None = None, dc: str | None = None) -> Reply[list[dict[str, Any]]]:
        """Instances of a service as `{"Node", "Service", "Checks"}`; `passing` drops unhealthy ones."""
        params: Params = tag_params(tag)
        if passing:
            params.append(("passing", "1"))
        return self._client._query(f"health/service/{quote_segment(name)}", params=params, near=near,
                                   node_meta=node_meta, filter=filter, index=index, wait=wait,
                                   consistency=consistency, dc=dc, decode=lambda d: d or [])

    def state(self, state: str = "any", *, near: str | None = None, node_meta: NodeMeta = None,
              filter: str | None = None, index: int | None = None, wait: str | float | None = None,
              consistency: Consistency | None = None, dc: str | None = None) -> Reply[list[dict[str, Any]]]:
        """Checks in a state: any, passing, warning or critical."""
        if state not in CHECK_STATES:
            raise ValueError(f"unknown check state {state!r} (want one of {', '.join(CHECK_STATES)})")
        return self._client._query(f"health/state/{state}", near=near, node_meta=node_meta, filter=filter,
                                   index=index, wait=wait, consistency=consistency, dc=dc,
                                   decode=lambda d: d or [])
