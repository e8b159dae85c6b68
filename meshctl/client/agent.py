"""`client.agent`: /v1/agent — the local agent's view (plain values, not blocking)."""

from __future__ import annotations

from typing import cast

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import Params
from meshctl.client.records import AgentMember, AgentSelf, AgentService, HealthCheck, JSONObject

CHECK_STATUSES = ("passing", "warning", "critical")


class Agent(Area):
    """The agent this client talks to: its config, members, local services and checks."""

    def _get(self, path: str, params: Params | None = None) -> object:
        return self._get_json(f"agent/{path}", params)

    def _put(self, path: str, params: Params | None = None, json: JSONObject | None = None) -> None:
        if json is None:
            self._client._request("PUT", f"agent/{path}", params=params)
        else:
            self._client._request("PUT", f"agent/{path}", params=params, json=json)

    # -- reads --------------------------------------------------------------------------

    def self(self) -> AgentSelf:
        """`/v1/agent/self`: Config, Coord, Member, Stats, Meta..."""
        return cast(AgentSelf, self._get("self") or {})

    def host(self) -> JSONObject:
        """`/v1/agent/host`: the agent host's summary (needs operator:read), as `consul debug` captures it."""
        return cast(JSONObject, self._get("host") or {})

    def metrics(self) -> JSONObject:
        """`/v1/agent/metrics`: the last finished interval's Gauges, Counters and Samples (Consul's JSON)."""
        return cast(JSONObject, self._get("metrics") or {})

    def node_name(self) -> str:
        """The agent's node name (`Config.NodeName`), as the Go client reads it."""
        return str(self.self().get("Config", {}).get("NodeName", ""))

    def members(self, wan: bool = False) -> list[AgentMember]:
        """Gossip members: Name, Addr, Port, Tags, Status (1 alive ... 4 failed)..."""
        return cast(list[AgentMember], self._get("members", [("wan", "1")] if wan else None) or [])

    def services(self, filter: str | None = None) -> dict[str, AgentService]:
        """Local services by ID."""
        return cast(dict[str, AgentService], self._get("services", [("filter", filter)] if filter else None) or {})

    def service(self, service_id: str) -> AgentService:
        """One local service (raises NotFound for an unknown ID)."""
        return cast(AgentService, self._get(f"service/{quote_segment(service_id)}") or {})

    def checks(self, filter: str | None = None) -> dict[str, HealthCheck]:
        """Local checks by ID."""
        return cast(dict[str, HealthCheck], self._get("checks", [("filter", filter)] if filter else None) or {})

    # -- services and checks ------------------------------------------------------------

    def service_register(self, definition: JSONObject, replace_existing_checks: bool = False) -> None:
        """Register a local service (Consul's definition: Name, ID, Tags, Port, Check(s)...)."""
        self._put("service/register", [("replace-existing-checks", "true")] if replace_existing_checks else None,
                  json=definition)

    def service_deregister(self, service_id: str) -> None:
        """Remove a local service and its checks."""
        self._put(f"service/deregister/{quote_segment(service_id)}")

    def check_register(self, definition: JSONObject) -> None:
        """Register a local check (Name required; ID, ServiceID, TTL/HTTP/TCP/Args + Interval...)."""
        self._put("check/register", json=definition)

    def check_deregister(self, check_id: str) -> None:
        """Remove a local check."""
        self._put(f"check/deregister/{quote_segment(check_id)}")

    def _ttl(self, verb: str, check_id: str, note: str | None) -> None:
        self._put(f"check/{verb}/{quote_segment(check_id)}", [("note", note)] if note else None)

    def check_pass(self, check_id: str, note: str | None = None) -> None:
        """Mark a TTL check passing."""
        self._ttl("pass", check_id, note)

    def check_warn(self, check_id: str, note: str | None = None) -> None:
        """Mark a TTL check warning."""
        self._ttl("warn", check_id, note)

    def check_fail(self, check_id: str, note: str | None = None) -> None:
        """Mark a TTL check critical."""
        self._ttl("fail", check_id, note)

    def check_update(self, check_id: str, status: str, output: str = "") -> None:
        """Set a TTL check's status (passing, warning, critical) and output."""
        if status not in CHECK_STATUSES:
            raise ValueError(f"Invalid check status: {status!r}")
        self._put(f"check/update/{quote_segment(check_id)}", json={"Status": status, "Output": output})

    # -- maintenance and lifecycle ------------------------------------------------------

    @staticmethod
    def _maint_params(enable: bool, reason: str | None) -> Params:
        params: Params = [("enable", "true" if enable else "false")]
        if reason:
            params.append(("reason", reason))
        return params

    def maintenance(self, enable: bool, reason: str | None = None) -> None:
        """Put the whole node in (or out of) maintenance mode."""
        self._put("maintenance", self._maint_params(enable, reason))

    def service_maintenance(self, service_id: str, enable: bool, reason: str | None = None) -> None:
        """Put one local service in (or out of) maintenance mode."""
        self._put(f"service/maintenance/{quote_segment(service_id)}", self._maint_params(enable, reason))

    def reload(self) -> None:
        """Reload the agent's configuration."""
        self._put("reload")

    def leave(self) -> None:
        """Gracefully leave the cluster and shut the agent down."""
        self._put("leave")

    def join(self, address: str, wan: bool = False) -> None:
        """Join the agent to another agent's cluster."""
        self._put(f"join/{quote_segment(address)}", [("wan", "1")] if wan else None)

    def force_leave(self, node: str, prune: bool = False) -> None:
        """Force a failed node into the left state (`prune`: forget it at once)."""
        self._put(f"force-leave/{quote_segment(node)}", [("prune", "1")] if prune else None)
