"""`client.event`: /v1/event (user events)."""

from __future__ import annotations

from typing import Unpack, cast

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import Params, QueryArgs, QueryOptions, query_options
from meshctl.client.records import UserEvent
from meshctl.client.types import Reply, b64decode


def event_payload(event: UserEvent) -> bytes | None:
    """The decoded `Payload` of an event record."""
    return b64decode(event.get("Payload"))


def _events(data: object) -> list[UserEvent]:
    return cast(list[UserEvent], data or [])


class Event(Area):
    """Fire and list user events."""

    def fire(self, name: str, payload: bytes | str | None = None, *, node: str | None = None,
             service: str | None = None, tag: str | None = None, dc: str | None = None) -> UserEvent:
        """Fire an event; returns Consul's event record (ID, Name, Payload (base64), filters...)."""
        params: Params = [(k, v) for k, v in (("node", node), ("service", service), ("tag", tag)) if v]
        data = payload.encode() if isinstance(payload, str) else payload
        return cast(UserEvent, self._client._write("PUT", f"event/fire/{quote_segment(name)}", params=params,
                                                   data=data or None, dc=dc))

    def list_recent(self, name: str | None = None, *, options: QueryOptions | None = None,
                    **args: Unpack[QueryArgs]) -> Reply[list[UserEvent]]:
        """The agent's recent events (oldest first), optionally only those named `name`.

        The index of this endpoint is not monotonic: it only says "changed" or "not changed".
        """
        params: Params = [("name", name)] if name else []
        return self._client._query("event/list", query_options(options, args), _events, params=params)
