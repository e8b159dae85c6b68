"""`client.acl`: /v1/acl — bootstrap, tokens, policies, roles (Consul's ACL API).

    root = client.acl.bootstrap()["SecretID"]
    pol = client.acl.policy_create("app-read", 'key_prefix "app/" { policy = "read" }')
    tok = client.acl.token_create(description="app", policies=[{"Name": "app-read"}])

Tokens travel in the X-Consul-Token header (the client's own token), never in URLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from meshctl.client.client import Area, quote_segment
from meshctl.client.query import Params
from meshctl.client.records import ACLLink, ACLNodeIdentity, ACLPolicy, ACLRole, ACLToken

Links = Sequence[str | ACLLink]  # policies or roles by name, ID or {"ID"|"Name": ...}


def _links(items: Links | None) -> list[ACLLink] | None:
    """Policy/role links from names, IDs or {ID|Name} dicts (a 36-char UUID counts as an ID)."""
    if items is None:
        return None
    out: list[ACLLink] = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
        elif len(item) == 36 and item.count("-") == 4:
            out.append({"ID": item})
        else:
            out.append({"Name": item})
    return out


def _body(**fields: object) -> dict[str, object]:
    return {k: v for k, v in fields.items() if v is not None}


class ACL(Area):
    """Consul's ACL endpoints (each needs a token with `acl` rights, except bootstrap and token_self)."""

    def _get(self, path: str, params: Params | None = None) -> object:
        return self._get_json(f"acl/{path}", params)

    def _put(self, path: str, body: dict[str, object] | None = None) -> object:
        if body is None:
            return self._client._write("PUT", f"acl/{path}")
        return self._client._write("PUT", f"acl/{path}", json=body)

    def _delete(self, path: str) -> bool:
        return bool(self._client._write("DELETE", f"acl/{path}"))

    # -- bootstrap -----------------------------------------------------------------------

    def bootstrap(self) -> ACLToken:
        """Create the first management token (works once per cluster)."""
        return cast(ACLToken, self._put("bootstrap"))

    # -- tokens --------------------------------------------------------------------------

    def token_create(self, *, description: str | None = None, policies: Links | None = None,
                     roles: Links | None = None,
                     service_identities: list[str] | None = None, node_identities: list[str] | None = None,
                     accessor_id: str | None = None, secret_id: str | None = None,
                     local: bool | None = None) -> ACLToken:
        """A new token; `policies`/`roles` by name, ID or {ID|Name}."""
        return cast(ACLToken, self._put("token", _body(
            Description=description, Policies=_links(policies), Roles=_links(roles),
            ServiceIdentities=[{"ServiceName": s} for s in service_identities] if service_identities else None,
            NodeIdentities=[_node_identity(n) for n in node_identities] if node_identities else None,
            AccessorID=accessor_id, SecretID=secret_id, Local=local)))

    def token_read(self, accessor_id: str) -> ACLToken:
        return cast(ACLToken, self._get(f"token/{quote_segment(accessor_id)}"))

    def token_self(self) -> ACLToken:
        """The token this client sends."""
        return cast(ACLToken, self._get("token/self"))

    def token_update(self, accessor_id: str, *, description: str | None = None,
                     policies: Links | None = None,
                     roles: Links | None = None,
                     service_identities: list[str] | None = None,
                     node_identities: list[str] | None = None) -> ACLToken:
        """Replace a token's description and links (fields left None are sent empty, as Consul's update)."""
        return cast(ACLToken, self._put(f"token/{quote_segment(accessor_id)}", _body(
            AccessorID=accessor_id, Description=description, Policies=_links(policies) or [],
            Roles=_links(roles) or [],
            ServiceIdentities=[{"ServiceName": s} for s in service_identities or []],
            NodeIdentities=[_node_identity(n) for n in node_identities or []])))

    def token_clone(self, accessor_id: str, description: str | None = None) -> ACLToken:
        return cast(ACLToken, self._put(f"token/{quote_segment(accessor_id)}/clone", _body(Description=description)))

    def token_delete(self, accessor_id: str) -> bool:
        return self._delete(f"token/{quote_segment(accessor_id)}")

    def token_list(self, *, policy: str | None = None, role: str | None = None) -> list[ACLToken]:
        params: Params = []
        if policy:
            params.append(("policy", policy))
        if role:
            params.append(("role", role))
        return cast(list[ACLToken], self._get("tokens", params) or [])

    # -- policies ------------------------------------------------------------------------

    def policy_create(self, name: str, rules: str = "", *, description: str | None = None,
                      datacenters: list[str] | None = None) -> ACLPolicy:
        """A new policy; `rules` in HCL or JSON (a 400 names the bad line)."""
        return cast(ACLPolicy, self._put("policy", _body(Name=name, Rules=rules, Description=description, Datacenters=datacenters)))

    def policy_read(self, policy_id: str) -> ACLPolicy:
        return cast(ACLPolicy, self._get(f"policy/{quote_segment(policy_id)}"))

    def policy_read_by_name(self, name: str) -> ACLPolicy:
        return cast(ACLPolicy, self._get(f"policy/name/{quote_segment(name)}"))

    def policy_update(self, policy_id: str, *, name: str | None = None, rules: str | None = None,
                      description: str | None = None, datacenters: list[str] | None = None) -> ACLPolicy:
        """Change a policy; fields left None keep their values."""
        return cast(ACLPolicy, self._put(f"policy/{quote_segment(policy_id)}", _body(
            ID=policy_id, Name=name, Rules=rules, Description=description, Datacenters=datacenters)))

    def policy_delete(self, policy_id: str) -> bool:
        return self._delete(f"policy/{quote_segment(policy_id)}")

    def policy_list(self) -> list[ACLPolicy]:
        return cast(list[ACLPolicy], self._get("policies") or [])

    # -- roles ---------------------------------------------------------------------------

    def role_create(self, name: str, *, description: str | None = None,
                    policies: Links | None = None,
                    service_identities: list[str] | None = None,
                    node_identities: list[str] | None = None) -> ACLRole:
        return cast(ACLRole, self._put("role", _body(
            Name=name, Description=description, Policies=_links(policies),
            ServiceIdentities=[{"ServiceName": s} for s in service_identities] if service_identities else None,
            NodeIdentities=[_node_identity(n) for n in node_identities] if node_identities else None)))

    def role_read(self, role_id: str) -> ACLRole:
        return cast(ACLRole, self._get(f"role/{quote_segment(role_id)}"))

    def role_read_by_name(self, name: str) -> ACLRole:
        return cast(ACLRole, self._get(f"role/name/{quote_segment(name)}"))

    def role_update(self, role_id: str, name: str, *, description: str | None = None,
                    policies: Links | None = None) -> ACLRole:
        return cast(ACLRole, self._put(f"role/{quote_segment(role_id)}", _body(
            ID=role_id, Name=name, Description=description, Policies=_links(policies) or [])))

    def role_delete(self, role_id: str) -> bool:
        return self._delete(f"role/{quote_segment(role_id)}")

    def role_list(self) -> list[ACLRole]:
        return cast(list[ACLRole], self._get("roles") or [])

    # -- agent tokens --------------------------------------------------------------------

    def set_agent_token(self, kind: str, token: str) -> None:
        """Set one of the agent's tokens (default, agent, dns ...) at runtime."""
        self._client._write("PUT", f"agent/token/{quote_segment(kind)}", json={"Token": token})


def _node_identity(spec: str) -> ACLNodeIdentity:
    """`node` or `node:dc` (Consul's -node-identity syntax)."""
    node, _, dc = spec.partition(":")
    return {"NodeName": node, "Datacenter": dc}
