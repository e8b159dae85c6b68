"""`client.status`: /v1/status."""

from __future__ import annotations

from meshctl.client.client import Area


class Status(Area):
    """Raft leader and peers."""

    def leader(self, *, dc: str | None = None) -> str:
        """The leader's `ip:port`, or "" when there is no leader."""
        params = [("dc", dc)] if dc else []
        return self._client._json(self._client._request("GET", "status/leader", params=params)) or ""

    def peers(self, *, dc: str | None = None) -> list[str]:
        """The Raft peers' `ip:port` addresses."""
        params = [("dc", dc)] if dc else []
        return list(self._client._json(self._client._request("GET", "status/peers", params=params)) or [])
