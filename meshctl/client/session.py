"""`client.session`: /v1/session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack, cast

from meshctl.client.client import Area, dc_params, quote_segment
from meshctl.client.query import QueryArgs, QueryOptions, format_duration_ms, go_duration, query_options
from meshctl.client.records import ServiceCheck, SessionEntry
from meshctl.client.types import Reply

BEHAVIORS = ("release", "delete")


def _sessions(data: object) -> list[SessionEntry]:
    return cast(list[SessionEntry], data or [])


def _first(data: object) -> SessionEntry | None:
    sessions = _sessions(data)
    return sessions[0] if sessions else None


class Session(Area):
    """Sessions: the liveness handles behind locks."""

    def create(self, name: str | None = None, node: str | None = None, ttl: str | float | None = None,
               lock_delay: str | float | None = None, behavior: str | None = None,
               checks: Sequence[str] | None = None, *, node_checks: Sequence[str] | None = None,
               service_checks: Sequence[ServiceCheck] | None = None, dc: str | None = None) -> str:
        """Create a session and return its ID. `ttl` / `lock_delay`: seconds or Go durations.

        `checks=None` keeps Consul's default (`serfHealth`); `checks=[]` means no checks.
        """
        body: dict[str, object] = {}
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
        created = cast(dict[str, str], self._client._write("PUT", "session/create", json=body, dc=dc))
        return str(created["ID"])

    def destroy(self, session_id: str, *, dc: str | None = None) -> bool:
        """Destroy a session, releasing (or deleting) the keys it holds."""
        return bool(self._client._write("PUT", f"session/destroy/{quote_segment(session_id)}", dc=dc))

    def renew(self, session_id: str, *, dc: str | None = None,
              timeout: float | None = None) -> SessionEntry | None:
        """Renew a TTL session; the session (its TTL may have grown), or None when it is gone.

        `timeout`: seconds to wait for the answer (default: the client's timeout).
        """
        resp = self._client._request("PUT", f"session/renew/{quote_segment(session_id)}", params=dc_params(dc),
                                     accept=(404,), timeout=timeout)
        if resp.status_code == 404:
            return None
        return _first(self._client._json(resp))

    def info(self, session_id: str, *, options: QueryOptions | None = None,
             **args: Unpack[QueryArgs]) -> Reply[SessionEntry | None]:
        """One session, or None."""
        return self._client._query(f"session/info/{quote_segment(session_id)}", query_options(options, args),
                                   _first)

    def list_all(self, *, options: QueryOptions | None = None,
                 **args: Unpack[QueryArgs]) -> Reply[list[SessionEntry]]:
        """All sessions."""
        return self._client._query("session/list", query_options(options, args), _sessions)

    def node(self, node: str, *, options: QueryOptions | None = None,
             **args: Unpack[QueryArgs]) -> Reply[list[SessionEntry]]:
        """Sessions of one node."""
        return self._client._query(f"session/node/{quote_segment(node)}", query_options(options, args), _sessions)
