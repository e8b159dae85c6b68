"""`client.session`: /v1/session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import ReadOptions, format_duration_ms, go_duration
from meshctl.client.types import Reply

BEHAVIORS = ("release", "delete")


class Session(Area):
    """Sessions: the liveness handles behind locks."""

    def create(self, name: str | None = None, node: str | None = None, ttl: str | float | None = None,
               lock_delay: str | float | None = None, behavior: str | None = None,
               checks: Sequence[str] | None = None, *, node_checks: Sequence[str] | None = None,
               service_checks: Sequence[dict[str, str]] | None = None, dc: str | None = None) -> str:
        """Create a session and return its ID. `ttl` / `lock_delay`: seconds or Go durations.

        `checks=None` keeps Consul's default (`serfHealth`); `checks=[]` means no checks.
        """
        body: dict[str, Any] = {}
        if name is not None:
            body["Name"] = name
        if node is not None:
            body["Node"] = node
        if ttl is not None:
            body["TTL"] = go_duration(ttl)
        if lock_delay is not None:
            body["LockDelay"] = format_duration_ms(lock_delay)
        if behavior is not None:
            if behavior not in BEHAVIORS:
                raise ValueError(f"Invalid Behavior setting {behavior!r}")
            body["Behavior"] = behavior
        if checks is not None:
            body["Checks"] = list(checks)
        if node_checks is not None:
            body["NodeChecks"] = list(node_checks)
        if service_checks is not None:
            body["ServiceChecks"] = list(service_checks)
        return str(self._client._write("PUT", "session/create", json=body, dc=dc)["ID"])

    def destroy(self, session_id: str, *, dc: str | None = None) -> bool:
        """Destroy a session, releasing (or deleting) the keys it holds."""
        return bool(self._client._write("PUT", f"session/destroy/{quote_segment(session_id)}", dc=dc))

    def renew(self, session_id: str, *, dc: str | None = None) -> dict[str, Any] | None:
        """Renew a TTL session; the session (its TTL may have grown), or None when it is gone."""
        params = [("dc", dc)] if dc else []
        resp = self._client._request("PUT", f"session/renew/{quote_segment(session_id)}", params=params,
                                     accept=(404,))
        if resp.status_code == 404:
            return None
        data = self._client._json(resp)
        return data[0] if data else None

    def info(self, session_id: str, **opts: Unpack[ReadOptions]) -> Reply[dict[str, Any] | None]:
        """One session, or None."""
        return self._client._query(f"session/info/{quote_segment(session_id)}",
                                   decode=lambda d: d[0] if d else None, **opts)

    def list(self, **opts: Unpack[ReadOptions]) -> Reply[list[dict[str, Any]]]:
        """All sessions."""
        return self._client._query("session/list", decode=lambda d: d or [], **opts)

    def node(self, node: str, **opts: Unpack[ReadOptions]) -> Reply[list[dict[str, Any]]]:
        """Sessions of one node."""
        return self._client._query(f"session/node/{quote_segment(node)}", decode=lambda d: d or [], **opts)
