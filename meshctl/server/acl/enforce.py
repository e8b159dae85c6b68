"""ACL enforcement for the HTTP API and DNS: the authorize hook and the list filters.

`ACLEnforcer` is the `Enforcer` (meshctl/server/context.py) of an agent with ACLs enabled,
the `acl` of its `ServerContext`: `Request.authorize(resource, name, access)` calls its
`authorize`, and every list endpoint its `filter_*` method. It fails closed: a token it
cannot resolve (unknown, or no ACL data to resolve it with) is a 403.
The request's token is `?token=`, `X-Consul-Token` or `Authorization: Bearer` (see
`Request.token`), else the agent's default token, else the anonymous token. An unknown
token is a 403 `ACL not found`; a missing permission a 403 in Consul's words. Filters drop
what the token may not read and flag the answer (X-Consul-Results-Filtered-By-ACLs) when
the request carried a token.

Secrets never reach a log: nothing here logs a token, and errors name the AccessorID.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from meshctl.server.acl import state as acl_state
from meshctl.server.acl.authorizer import Authorizer, AuthorizerCache, compile_rules
from meshctl.server.acl.policy import GLOBAL_MANAGEMENT_RULES, SINGLES
from meshctl.server.context import DNSCheck, Enforcer, KeyItem, Record, Value
from meshctl.server.http.common import HTTPError
from meshctl.server.state.queries import REDACTED

if TYPE_CHECKING:
    from meshctl.server.http.common import Request
    from meshctl.server.state import State

ACL_NOT_FOUND = "ACL not found"
STATE_UNAVAILABLE = "Permission denied: ACL data unavailable"
Item = TypeVar("Item")


@dataclass
class ACLSettings:
    """The agent's `acl { ... }` block."""

    enabled: bool = False
    default_policy: str = "allow"
    enable_key_list_policy: bool = False
    initial_management: str = ""
    tokens: dict[str, str] = field(default_factory=dict)  # default, agent, dns ... -> secret
    token_ttl: float = 30.0  # client agents: how long a token resolved by the servers is trusted
    # the ExpirationTTL a token may have (Consul's ACLTokenMin/MaxExpirationTTL server settings)
    token_min_expiration_ttl: float = 60.0
    token_max_expiration_ttl: float = 86400.0

    def __repr__(self) -> str:  # never show secrets
        return (f"ACLSettings(enabled={self.enabled}, default_policy={self.default_policy!r}, "
                f"tokens={sorted(k for k, v in self.tokens.items() if v)})")


@dataclass
class TokenGrant:
    """A token's AccessorID and the sources of its permissions (policy rule texts, identities)."""

    accessor: str
    rules: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)

    def authorizer(self, default_allow: bool) -> Authorizer:
        return Authorizer(compile_rules(self.rules, self.services, self.nodes), default_allow, self.accessor)


class ACLEnforcer(Enforcer):
    """Resolves tokens to authorizers and enforces them (see the module docstring)."""

    def __init__(self, settings: ACLSettings, state_of: Callable[[], State]) -> None:
        self.settings = settings
        self.state_of = state_of
        self.default_allow = settings.default_policy == "allow"
        self._cache = AuthorizerCache()

    @property
    def enabled(self) -> bool:
        return True

    @property
    def default_policy(self) -> str:
        return self.settings.default_policy

    # ------------------------------------------------------------------ tokens

    def secret_of(self, req: Request) -> str:
        """The request's token: given, else the agent's default token, else anonymous."""
        return req.token or self.settings.tokens.get("default") or acl_state.ANONYMOUS_SECRET

    def state(self) -> State:
        """The ACL data to resolve tokens with; a 403 when it cannot be had (ACLs fail closed)."""
        try:
            state = self.state_of()
        except Exception:  # no state, no answer: never a pass
            state = None
        if state is None:
            raise HTTPError(403, STATE_UNAVAILABLE)
        return state

    def token_of(self, secret: str) -> dict[str, Any] | None:
        """The token record of a secret (None if unknown or expired)."""
        rec = acl_state.token_by_secret(self.state(), secret)
        return None if rec is None or acl_state.expired(rec, time.time()) else rec

    def resolve(self, secret: str) -> Authorizer:
        """The authorizer of a secret; HTTPError 403 `ACL not found` for an unknown (or expired) one."""
        state = self.state()
        rec = acl_state.token_by_secret(state, secret)
        if rec is not None and acl_state.expired(rec, time.time()):  # before the cache: it outlives expiry
            raise HTTPError(403, ACL_NOT_FOUND)
        found = self._cache.get(secret, acl_state.index(state), self.default_allow, lambda: self._build(state, secret))
        if found is None:
            raise HTTPError(403, ACL_NOT_FOUND)
        return found

    def grant_of(self, state: State, secret: str) -> TokenGrant | None:
        """Where a secret's permissions come from (None: unknown token). Client agents get this too."""
        rec = acl_state.token_by_secret(state, secret)
        if rec is not None and acl_state.expired(rec, time.time()):
            return None
        if rec is None:
            if secret == acl_state.ANONYMOUS_SECRET:  # before the built-ins are written
                return TokenGrant(acl_state.ANONYMOUS_ACCESSOR)
            if secret and secret == self.settings.initial_management:
                return TokenGrant("", [GLOBAL_MANAGEMENT_RULES])
            return None
        texts, services, nodes = acl_state.token_sources(state, rec)
        return TokenGrant(rec["AccessorID"], texts, services, nodes)

    def _build(self, state: State, secret: str) -> Authorizer | None:
        grant = self.grant_of(state, secret)
        return None if grant is None else grant.authorizer(self.default_allow)

    def for_request(self, req: Request) -> Authorizer:
        return self.resolve(self.secret_of(req))

    # ------------------------------------------------------------------ the hook

    def authorize(self, req: Request, resource: str, name: str, access: str) -> None:
        """Raise 403 unless the request's token grants `access` on `resource` `name`."""
        authz = self.for_request(req)
        if resource == "key" and access == "list" and not self.settings.enable_key_list_policy:
            return  # as Consul without enable_key_list_policy: the listing is filtered by key:read
        if not authz.allowed(resource, name, access):
            raise HTTPError(403, denied_text(authz.accessor, resource, name, access))

    # ------------------------------------------------------------------ filters

    def _keep(self, req: Request, items: list[Item], pred: Callable[[Authorizer, Item], bool]) -> list[Item]:
        authz = self.for_request(req)
        kept = [item for item in items if pred(authz, item)]
        if len(kept) != len(items) and req.token:
            req.filtered = True
        return kept

    def filter_keys(self, req: Request, items: list[KeyItem]) -> list[KeyItem]:
        """KV keys (strings) or entries ({Key}) the token may read."""
        return self._keep(req, items, lambda a, i: a.allowed("key", i if isinstance(i, str) else _text(i, "Key"),
                                                             "read"))

    def filter_nodes(self, req: Request, items: list[Record]) -> list[Record]:
        """Nodes ({Node}) or service instances ({Node, ServiceName}) the token may read."""
        return self._keep(req, items, lambda a, i: a.allowed("node", _text(i, "Node"), "read") and (
            "ServiceName" not in i or a.allowed("service", _text(i, "ServiceName"), "read")))

    def filter_service_map(self, req: Request, services: dict[str, Value]) -> dict[str, Value]:
        """/v1/catalog/services: {name: tags} for the services the token may read."""
        kept = self._keep(req, list(services), lambda a, name: a.allowed("service", name, "read"))
        return {name: services[name] for name in kept}

    def filter_services(self, req: Request, items: list[Record]) -> list[Record]:
        """Service records ({Service}) the token may read."""
        return self._keep(req, items, lambda a, s: a.allowed("service", _text(s, "Service"), "read"))

    def filter_health(self, req: Request, items: list[Record]) -> list[Record]:
        """/v1/health/service entries: node and service must both be readable."""
        return self._keep(req, items, lambda a, e: a.allowed("node", _text(_part(e, "Node"), "Node"), "read")
                          and a.allowed("service", _text(_part(e, "Service"), "Service"), "read"))

    def filter_checks(self, req: Request, items: list[Record]) -> list[Record]:
        """Health checks: node read, and service read for a service's check."""
        return self._keep(req, items, lambda a, c: a.allowed("node", _text(c, "Node", ""), "read") and (
            not c.get("ServiceName") or a.allowed("service", _text(c, "ServiceName"), "read")))

    def filter_events(self, req: Request, items: list[Record]) -> list[Record]:
        return self._keep(req, items, lambda a, e: a.allowed("event", _text(e, "Name"), "read"))

    def filter_sessions(self, req: Request, items: list[Record]) -> list[Record]:
        return self._keep(req, items, lambda a, s: a.allowed("session", _text(s, "Node"), "read"))

    def filter_members(self, req: Request, items: list[Record]) -> list[Record]:
        return self._keep(req, items, lambda a, m: a.allowed("node", _text(m, "Name"), "read"))

    def filter_queries(self, req: Request, items: list[Record], by_id: bool = False) -> list[Record]:
        authz = self.for_request(req)
        if authz.allowed("acl", "", "write"):  # management: every query, tokens shown
            return items

        def readable(a: Authorizer, q: Record) -> bool:
            template = q.get("Template")
            if not q.get("Name") and not (isinstance(template, Mapping) and template.get("Type")):
                return by_id
            return a.allowed("query", _text(q, "Name", ""), "read")

        kept = self._keep(req, items, readable)
        return [{**q, "Token": REDACTED} if q.get("Token") else q for q in kept]  # type: ignore[misc]

    # ------------------------------------------------------------------ DNS

    def dns_check(self) -> DNSCheck:
        """`(resource, name) -> may the DNS token read it` (an unknown DNS token reads nothing)."""

        def allowed(resource: str, name: str) -> bool:
            secret = self.settings.tokens.get("dns") or self.settings.tokens.get("default") \
                or acl_state.ANONYMOUS_SECRET
            try:
                authz = self.resolve(secret)
            except HTTPError:
                return False
            return authz.allowed(resource, name, "read")

        return allowed


def _text(item: Mapping[str, object], key: str, default: str | None = None) -> str:
    """A record's name field (`Node`, `Service`, `Key` ...); a record without it is an error, never a pass."""
    value = item.get(key, default) if default is not None else item[key]
    return value if isinstance(value, str) else str(value)


def _part(item: Mapping[str, object], key: str) -> Mapping[str, object]:
    """A nested record (a health entry's `Node` or `Service`)."""
    value = item[key]
    if not isinstance(value, Mapping):
        raise TypeError(f"{key} is not an object")
    return value


def denied_text(accessor: str, resource: str, name: str, access: str) -> str:
    """Consul's permission error (acl/errors.go PermissionDeniedError)."""
    if accessor == acl_state.ANONYMOUS_ACCESSOR:
        who = "anonymous token"
    elif accessor:
        who = f"token with AccessorID '{accessor}'"
    else:
        who = "provided token"
    text = f"Permission denied: {who} lacks permission '{resource}:{access}'"
    if resource not in SINGLES:
        text += f' on "{name}"'
    return text
