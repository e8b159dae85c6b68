"""`client.operator`: /v1/operator/raft and /v1/operator/autopilot."""

from __future__ import annotations

from typing import Any, cast

from meshctl.client.client import Area, dc_params
from meshctl.client.query import Params
from meshctl.client.records import RaftConfiguration


class Operator(Area):
    """Raft cluster operations and autopilot."""

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

    def autopilot_get_configuration(self, *, stale: bool = False, dc: str | None = None) -> dict[str, Any]:
        """Consul's AutopilotConfiguration (durations as Go strings: "200ms", "10s")."""
        params = [*([("stale", "")] if stale else []), *dc_params(dc)]
        return cast("dict[str, Any]", self._get_json("operator/autopilot/configuration", params))

    def autopilot_set_configuration(self, config: dict[str, Any], *, cas: int | None = None,
                                    dc: str | None = None) -> bool:
        """Replace the configuration (with `cas`: only if its ModifyIndex is still that); False if not applied."""
        params = [*([("cas", str(cas))] if cas is not None else []), *dc_params(dc)]
        return bool(self._client._write("PUT", "operator/autopilot/configuration", params=params, json=config))

    def autopilot_health(self, *, stale: bool = False, dc: str | None = None) -> dict[str, Any]:
        """Every server's health from the leader's view (an unhealthy cluster is answered too: 429)."""
        params = [*([("stale", "")] if stale else []), *dc_params(dc)]
        resp = self._client._request("GET", "operator/autopilot/health", params=params, accept=(429,))
        return cast("dict[str, Any]", self._client._json(resp))

    def autopilot_state(self, *, stale: bool = False, dc: str | None = None) -> dict[str, Any]:
        """Consul's AutopilotState: Healthy, FailureTolerance, Leader, Voters, Servers by ID."""
        params = [*([("stale", "")] if stale else []), *dc_params(dc)]
        return cast("dict[str, Any]", self._get_json("operator/autopilot/state", params))
