"""`client.status`: /v1/status."""

from __future__ import annotations

from typing import cast

from meshctl.client.client import Area, dc_params


class Status(Area):
    """Raft leader and peers."""

    def leader(self, *, dc: str | None = None) -> str:
        """The leader's `ip:port`, or "" when there is no leader."""
        return str(self._get_json("status/leader", dc_params(dc)) or "")

    def peers(self, *, dc: str | None = None) -> list[str]:
        """The Raft peers' `ip:port` addresses."""
        return list(cast(list[str], self._get_json("status/peers", dc_params(dc)) or []))
