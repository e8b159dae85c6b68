"""`client.event`: /v1/event (user events)."""

from __future__ import annotations

from typing import Any, Unpack

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import Params, ReadOptions
from meshctl.client.types import Reply, b64decode


def event_payload(event: dict[str, Any]) -> bytes | None:
    """The decoded `Payload` of an event record."""
    return b64decode(event.get("Payload"))


class Event(Area):
    """Fire and list user events."""

    def fire(self, name: str, payload: bytes | str | None = None, *, node: str | None = None,
             service: str | None = None, tag: str | None = None, dc: str | None = None) -> dict[str, Any]:
        """Fire an event; returns Consul's event record (ID, Name, Payload (base64), filters...)."""
        params: Params = [(k, v) for k, v in (("node", node), ("service", service), ("tag", tag)) if v]
        data = payload.encode() if isinstance(payload, str) else payload
        return self._client._write("PUT", f"event/fire/{quote_segment(name)}", params=params,
                                   data=data or None, dc=dc)

    def list(self, name: str | None = None, **opts: Unpack[ReadOptions]) -> Reply[list[dict[str, Any]]]:
        """Recent events (oldest first), optionally only those named `name`.

        The index of this endpoint is not monotonic: it only says "changed" or "not changed".
        """
        params: Params = [("name", name)] if name else []
        return self._client._query("event/list", params=params, decode=lambda d: d or [], **opts)
