"""`client.operator`: /v1/operator/raft."""

from __future__ import annotations

from typing import cast

from meshctl.client.client import Area
from meshctl.client.query import Params
from meshctl.client.records import RaftConfiguration


class Operator(Area):
    """Raft cluster operations."""

    def raft_configuration(self, *, stale: bool = False, dc: str | None = None) -> RaftConfiguration:
        """`{"Servers": [{ID, Node, Address, Leader, Voter}], "Index": N}`."""
        params: Params = [("stale", "")] if stale else []
        if dc:
            params.append(("dc", dc))
        return cast(RaftConfiguration, self._get_json("operator/raft/configuration", params))

    def raft_remove_peer(self, *, id: str | None = None, address: str | None = None,
                         dc: str | None = None) -> None:
        """Remove a Raft peer, by server ID or by `ip:port`."""
        if bool(id) == bool(address):
            raise ValueError("give exactly one of id or address")
        params: Params = [("id", id)] if id else [("address", address or "")]
        if dc:
            params.append(("dc", dc))
        self._client._request("DELETE", "operator/raft/peer", params=params)

    def raft_transfer_leader(self, *, id: str | None = None, dc: str | None = None) -> bool:
        """Ask the leader to hand leadership over (to `id`, or to any voter)."""
        params: Params = [("id", id)] if id else []
        if dc:
            params.append(("dc", dc))
        data = self._client._json(self._client._request("POST", "operator/raft/transfer-leader", params=params))
        return bool(data.get("Success")) if isinstance(data, dict) else bool(data)
