"""`client.health`: /v1/health (Consul's JSON shapes returned as dicts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import QueryOptions, tag_params
from meshctl.client.types import Reply

CHECK_STATES = ("any", "passing", "warning", "critical")


class Health(Area):
    """Health checks and healthy service instances. Reads take `QueryOptions` keywords."""

    def node(self, node: str, **opts: Unpack[QueryOptions]) -> Reply[list[dict[str, Any]]]:
        """Checks of one node."""
        return self._client._query(f"health/node/{quote_segment(node)}", decode=lambda d: d or [], **opts)

    def checks(self, service: str, **opts: Unpack[QueryOptions]) -> Reply[list[dict[str, Any]]]:
        """Checks of one service."""
        return self._client._query(f"health/checks/{quote_segment(service)}", decode=lambda d: d or [], **opts)

    def service(self, name: str, tag: str | Iterable[str] | None = None, passing: bool = False,
                **opts: Unpack[QueryOptions]) -> Reply[list[dict[str, Any]]]:
        """Instances of a service as `{"Node", "Service", "Checks"}`; `passing` drops unhealthy ones."""
        params = tag_params(tag) + ([("passing", "1")] if passing else [])
        return self._client._query(f"health/service/{quote_segment(name)}", params=params,
                                   decode=lambda d: d or [], **opts)

    def state(self, state: str = "any", **opts: Unpack[QueryOptions]) -> Reply[list[dict[str, Any]]]:
        """Checks in a state: any, passing, warning or critical."""
        if state not in CHECK_STATES:
            raise ValueError(f"unknown check state {state!r} (want one of {', '.join(CHECK_STATES)})")
        return self._client._query(f"health/state/{state}", decode=lambda d: d or [], **opts)
