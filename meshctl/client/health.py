"""`client.health`: /v1/health (Consul's JSON records, typed in `meshctl.client.records`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Unpack, cast

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import QueryArgs, QueryOptions, query_options, tag_params
from meshctl.client.records import HealthCheck, ServiceEntry
from meshctl.client.types import Reply

CHECK_STATES = ("any", "passing", "warning", "critical")


def _checks(data: object) -> list[HealthCheck]:
    return cast(list[HealthCheck], data or [])


def _entries(data: object) -> list[ServiceEntry]:
    return cast(list[ServiceEntry], data or [])


class Health(Area):
    """Health checks and healthy service instances. Reads take `QueryOptions` (or its keywords)."""

    def node(self, node: str, *, options: QueryOptions | None = None,
             **args: Unpack[QueryArgs]) -> Reply[list[HealthCheck]]:
        """Checks of one node."""
        return self._client._query(f"health/node/{quote_segment(node)}", query_options(options, args), _checks)

    def checks(self, service: str, *, options: QueryOptions | None = None,
               **args: Unpack[QueryArgs]) -> Reply[list[HealthCheck]]:
        """Checks of one service."""
        return self._client._query(f"health/checks/{quote_segment(service)}", query_options(options, args),
                                   _checks)

    def service(self, name: str, tag: str | Iterable[str] | None = None, passing: bool = False, *,
                options: QueryOptions | None = None, **args: Unpack[QueryArgs]) -> Reply[list[ServiceEntry]]:
        """Instances of a service as `{"Node", "Service", "Checks"}`; `passing` drops unhealthy ones."""
        params = tag_params(tag) + ([("passing", "1")] if passing else [])
        return self._client._query(f"health/service/{quote_segment(name)}", query_options(options, args),
                                   _entries, params=params)

    def state(self, state: str = "any", *, options: QueryOptions | None = None,
              **args: Unpack[QueryArgs]) -> Reply[list[HealthCheck]]:
        """Checks in a state: any, passing, warning or critical."""
        if state not in CHECK_STATES:
            raise ValueError(f"unknown check state {state!r} (want one of {', '.join(CHECK_STATES)})")
        return self._client._query(f"health/state/{state}", query_options(options, args), _checks)
