"""What every endpoint reaches, typed: the server's composition root.

One `ServerContext` per agent process, built once and never changed afterwards: by
`run.Agent` for servers and `-dev` (config -> store, local or Raft -> ACL enforcer -> session
timers -> WAN pool -> HTTP app and DNS) and by `agent/client.py` for client agents. Handlers
read typed fields (`req.ctx.store`, `req.ctx.acl`, `req.ctx.timers`, `req.ctx.wan`,
`req.ctx.cluster`, `req.ctx.hooks`, `req.ctx.coordinates`); there is no string-keyed bag to forget a key in.

ACLs fail closed: `acl` is a required `Enforcer`, whose authorize hook and every list filter
are abstract, so an enforcer lacking one cannot even be instantiated, and a handler has no
"no hook installed" branch to fall into. With ACLs off the context holds `AllowAll`, which
allows and keeps everything on purpose. The real enforcers (acl/enforce.py's `ACLEnforcer`,
acl/remote.py's `RemoteACLEnforcer` for client agents) deny when they cannot resolve a token.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from aiohttp import web

if TYPE_CHECKING:
    from meshctl.server.agent.heartbeat import HeartbeatMonitor
    from meshctl.server.agent.local import LocalAgent
    from meshctl.server.cluster import ServerCluster
    from meshctl.server.coordinates import CoordinateBatcher
    from meshctl.server.http.common import Request, WakeCache
    from meshctl.server.sessions import SessionTimers
    from meshctl.server.store import Store
    from meshctl.server.wan import WanPool

Record = TypeVar("Record", bound=Mapping[str, object])  # a JSON object of the API (node, service, check ...)
KeyItem = TypeVar("KeyItem", bound="str | Mapping[str, object]")  # a KV key, or a KV entry ({Key})
Value = TypeVar("Value")
DNSCheck = Callable[[str, str], bool]  # (resource, name) -> may the DNS token read it


class Enforcer(abc.ABC):
    """ACL enforcement as the HTTP layer and DNS see it: one authorize hook, one filter per list.

    Every method is abstract: an implementation must say what each list shows a token.
    """

    @property
    @abc.abstractmethod
    def enabled(self) -> bool:
        """Whether ACLs are enforced (blocking queries then re-check permissions on wake-up)."""

    @property
    @abc.abstractmethod
    def default_policy(self) -> str:
        """`allow` or `deny`: the X-Consul-Default-ACL-Policy header of every answer."""

    @abc.abstractmethod
    def authorize(self, req: Request, resource: str, name: str, access: str) -> None:
        """Raise HTTPError 403 unless the request's token grants `access` on `resource` `name`."""

    @abc.abstractmethod
    def filter_keys(self, req: Request, items: list[KeyItem]) -> list[KeyItem]:
        """KV keys (strings) or entries ({Key}) the token may read."""

    @abc.abstractmethod
    def filter_nodes(self, req: Request, items: list[Record]) -> list[Record]:
        """Nodes ({Node}) or service instances ({Node, ServiceName}) the token may read."""

    @abc.abstractmethod
    def filter_service_map(self, req: Request, services: dict[str, Value]) -> dict[str, Value]:
        """/v1/catalog/services: {name: tags} for the services the token may read."""

    @abc.abstractmethod
    def filter_services(self, req: Request, items: list[Record]) -> list[Record]:
        """Service records ({Service}) the token may read."""

    @abc.abstractmethod
    def filter_health(self, req: Request, items: list[Record]) -> list[Record]:
        """/v1/health/service entries ({Node: {Node}, Service: {Service}}): both readable."""

    @abc.abstractmethod
    def filter_checks(self, req: Request, items: list[Record]) -> list[Record]:
        """Health checks ({Node, ServiceName}): node read, and service read for a service's check."""

    @abc.abstractmethod
    def filter_events(self, req: Request, items: list[Record]) -> list[Record]:
        """User events ({Name}) the token may read."""

    @abc.abstractmethod
    def filter_sessions(self, req: Request, items: list[Record]) -> list[Record]:
        """Sessions ({Node}) the token may read."""

    @abc.abstractmethod
    def filter_members(self, req: Request, items: list[Record]) -> list[Record]:
        """Agent members ({Name}) the token may read."""

    @abc.abstractmethod
    def filter_queries(self, req: Request, items: list[Record], by_id: bool = False) -> list[Record]:
        """Prepared queries ({Name, Template, Token}) the token may read: `query:read` on the name;
        one without a name or template only for a token with `acl:write`, or when asked by its
        ID (`by_id`: the ID is the capability). Their Token is "<hidden>" unless `acl:write`."""

    @abc.abstractmethod
    def dns_check(self) -> DNSCheck | None:
        """What DNS answers are filtered with (the DNS token's view); None: they are not filtered."""


class AllowAll(Enforcer):
    """ACLs off: every request is allowed and every list kept whole (Consul without ACLs)."""

    def __init__(self, default_policy: str = "allow") -> None:
        self._default_policy = default_policy

    @property
    def enabled(self) -> bool:
        return False

    @property
    def default_policy(self) -> str:
        return self._default_policy

    def authorize(self, req: Request, resource: str, name: str, access: str) -> None:
        return None

    def filter_keys(self, req: Request, items: list[KeyItem]) -> list[KeyItem]:
        return items

    def filter_nodes(self, req: Request, items: list[Record]) -> list[Record]:
        return items

    def filter_service_map(self, req: Request, services: dict[str, Value]) -> dict[str, Value]:
        return services

    def filter_services(self, req: Request, items: list[Record]) -> list[Record]:
        return items

    def filter_health(self, req: Request, items: list[Record]) -> list[Record]:
        return items

    def filter_checks(self, req: Request, items: list[Record]) -> list[Record]:
        return items

    def filter_events(self, req: Request, items: list[Record]) -> list[Record]:
        return items

    def filter_sessions(self, req: Request, items: list[Record]) -> list[Record]:
        return items

    def filter_members(self, req: Request, items: list[Record]) -> list[Record]:
        return items

    def filter_queries(self, req: Request, items: list[Record], by_id: bool = False) -> list[Record]:
        return items

    def dns_check(self) -> DNSCheck | None:
        return None


@dataclass(frozen=True)
class AgentHooks:
    """What the agent process lends its HTTP API: /v1/agent/reload, leave, join, client heartbeats."""

    reload: Callable[[], Awaitable[None]] | None = None  # PUT /v1/agent/reload (and SIGHUP)
    leave: Callable[[], Awaitable[None]] | None = None  # PUT /v1/agent/leave
    join: Callable[[str], Awaitable[None]] | None = None  # PUT /v1/agent/join/{address}
    monitor: HeartbeatMonitor | None = None  # servers: client agents' heartbeats (agent/heartbeat.py)
    dns_port: int = 0  # told to joining client agents (0: no DNS interface)
    acl_tokens_changed: Callable[[], None] | None = None  # PUT /v1/agent/token/*: DNS drops cached answers


def _new_wake_cache() -> WakeCache:
    from meshctl.server.http.common import WakeCache

    return WakeCache()


@dataclass(frozen=True, kw_only=True)
class ServerContext:
    """Everything endpoints reach (see the module docstring); frozen: built once, never rewired."""

    store: Store
    agent: LocalAgent
    datacenter: str
    acl: Enforcer
    timers: SessionTimers | None = None  # session TTLs (servers and -dev; client agents proxy sessions)
    wan: WanPool | None = None  # other datacenters' servers (servers and -dev)
    cluster: ServerCluster | None = None  # a Raft server's place in its datacenter (None: -dev, clients)
    hooks: AgentHooks = field(default_factory=AgentHooks)
    coordinates: CoordinateBatcher | None = None  # servers and -dev: coordinate updates, batched
    encrypt_key: str = field(default="", repr=False)  # -encrypt (servers and -dev): /v1/operator/keyring lists it
    # answers of blocking queries woken by one write, shared by identical queries (http/common.py)
    wake_cache: WakeCache = field(default_factory=_new_wake_cache, repr=False, compare=False)


CTX_KEY = web.AppKey("meshctl", ServerContext)

__all__ = ["CTX_KEY", "AgentHooks", "AllowAll", "DNSCheck", "Enforcer", "KeyItem", "Record", "ServerContext",
           "Value"]
