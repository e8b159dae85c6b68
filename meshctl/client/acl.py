"""`client.acl`: /v1/acl — bootstrap, tokens, policies, roles (Consul's ACL API).

    root = client.acl.bootstrap()["SecretID"]
    pol = client.acl.policy_create("app-read", 'key_prefix "app/" { policy = "read" }')
    tok = client.acl.token_create(description="app", policies=[{"Name": "app-read"}])

Tokens travel in the X-Consul-Token header (the client's own token), never in URLs.
"""

from __future__ import annotations

from typing import Any

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import Params


def _links(items: list[str | dict[str, str]] | None) -> list[dict[str, str]] | None:
    """Policy/role links from names, IDs or {ID|Name} dicts (a 36-char UUID counts as an ID)."""
    if items is None:
        return None
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
        elif len(item) == 36 and item.count("-") == 4:
            out.append({"ID": item})
        else:
            out.append({"Name": item})
    return out


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class ACL(Area):
    """Consul's ACL endpoints (each needs a token with `acl` rights, except bootstrap and token_self)."""

    def _get(self, path: str, params: Params | None = None) -> Any:
        return self._client._json(self._client._request("GET", f"acl/{path}", params=params))

    def _put(self, path: str, body: Any = None) -> Any:
        if body is None:
            return self._client._write("PUT", f"acl/{path}")
        return self._client._write("PUT", f"acl/{path}", json=body)

    def _delete(self, path: str) -> bool:
        return bool(self._client._write("DELETE", f"acl/{path}"))

    # -- bootstrap -----------------------------------------------------------------------

    def bootstrap(self) -> dict[str, Any]:
        """Create the first management token (works once per cluster)."""
        return self._put("bootstrap")

    # -- tokens --------------------------------------------------------------------------

    def token_create(self, *, description: str | None = None, policies: list[str | dict[str, str]] | None = None,
                     roles: list[str | dict[str, str]] | None = None,
                     service_identities: list[str] | None = None, node_identities: list[str] | None = None,
                     accessor_id: str | None = None, secret_id: str | None = None,
                     local: bool | None = None) -> dict[str, Any]:
        """A new token; `policies`/`roles` by name, ID or {ID|Name}."""
        return self._put("token", _body(
            Description=description, Policies=_links(policies), Roles=_links(roles),
            ServiceIdentities=[{"ServiceName": s} for s in service_identities] if service_identities else None,
            NodeIdentities=[_node_identity(n) for n in node_identities] if node_identities else None,
            AccessorID=accessor_id, SecretID=secret_id, Local=local))

    def token_read(self, accessor_id: str) -> dict[str, Any]:
        return self._get(f"token/{quote_segment(accessor_id)}")

    def token_self(self) -> dict[str, Any]:
        """The token this client sends."""
        return self._get("token/self")

    def token_update(self, accessor_id: str, *, description: str | None = None,
                     policies: list[str | dict[str, str]] | None = None,
                     roles: list[str | dict[str, str]] | None = None,
                     service_identities: list[str] | None = None,
                     node_identities: list[str] | None = None) -> dict[str, Any]:
        """Replace a token's description and links (fields left None are sent empty, as Consul's update)."""
        return self._put(f"token/{quote_segment(accessor_id)}", _body(
            AccessorID=accessor_id, Description=description, Policies=_links(policies) or [],
            Roles=_links(roles) or [],
            ServiceIdentities=[{"ServiceName": s} for s in service_identities or []],
            NodeIdentities=[_node_identity(n) for n in node_identities or []]))

    def token_clone(self, accessor_id: str, description: str | None = None) -> dict[str, Any]:
        return self._put(f"token/{quote_segment(accessor_id)}/clone", _body(Description=description))

    def token_delete(self, accessor_id: str) -> bool:
        return self._delete(f"token/{quote_segment(accessor_id)}")

    def token_list(self, *, policy: str | None = None, role: str | None = None) -> list[dict[str, Any]]:
        params: Params = []
        if policy:
            params.append(("policy", policy))
        if role:
            params.append(("role", role))
        return self._get("tokens", params) or []

    # -- policies ------------------------------------------------------------------------

    def policy_create(self, name: str, rules: str = "", *, description: str | None = None,
                      datacenters: list[str] | None = None) -> dict[str, Any]:
        """A new policy; `rules` in HCL or JSON (a 400 names the bad line)."""
        return self._put("policy", _body(Name=name, Rules=rules, Description=description, Datacenters=datacenters))

    def policy_read(self, policy_id: str) -> dict[str, Any]:
        return self._get(f"policy/{quote_segment(policy_id)}")

    def policy_read_by_name(self, name: str) -> dict[str, Any]:
        return self._get(f"policy/name/{quote_segment(name)}")

    def policy_update(self, policy_id: str, *, name: str | None = None, rules: str | None = None,
                      description: str | None = None, datacenters: list[str] | None = None) -> dict[str, Any]:
        """Change a policy; fields left None keep their values."""
        return self._put(f"policy/{quote_segment(policy_id)}", _body(
            ID=policy_id, Name=name, Rules=rules, Description=description, Datacenters=datacenters))

    def policy_delete(self, policy_id: str) -> bool:
        return self._delete(f"policy/{quote_segment(policy_id)}")

    def policy_list(self) -> list[dict[str, Any]]:
        return self._get("policies") or []

    # -- roles ---------------------------------------------------------------------------

    def role_create(self, name: str, *, description: str | None = None,
                    policies: list[str | dict[str, str]] | None = None,
                    service_identities: list[str] | None = None,
                    node_identities: list[str] | None = None) -> dict[str, Any]:
        return self._put("role", _body(
            Name=name, Description=description, Policies=_links(policies),
            ServiceIdentities=[{"ServiceName": s} for s in service_identities] if service_identities else None,
            NodeIdentities=[_node_identity(n) for n in node_identities] if node_identities else None))

    def role_read(self, role_id: str) -> dict[str, Any]:
        return self._get(f"role/{quote_segment(role_id)}")

    def role_read_by_name(self, name: str) -> dict[str, Any]:
        return self._get(f"role/name/{quote_segment(name)}")

    def role_update(self, role_id: str, name: str, *, description: str | None = None,
                    policies: list[str | dict[str, str]] | None = None) -> dict[str, Any]:
        return self._put(f"role/{quote_segment(role_id)}", _body(
            ID=role_id, Name=name, Description=description, Policies=_links(policies) or []))

    def role_delete(self, role_id: str) -> bool:
        return self._delete(f"role/{quote_segment(role_id)}")

    def role_list(self) -> list[dict[str, Any]]:
        return self._get("roles") or []

    # -- agent tokens --------------------------------------------------------------------

    def set_agent_token(self, kind: str, token: str) -> None:
        """Set one of the agent's tokens (default, agent, dns ...) at runtime."""
        self._client._write("PUT", f"agent/token/{quote_segment(kind)}", json={"Token": token})


def _node_identity(spec: str) -> dict[str, str]:
    """`node` or `node:dc` (Consul's -node-identity syntax)."""
    node, _, dc = spec.partition(":")
    return {"NodeName": node, "Datacenter": dc}
