"""meshctl.client: the one Consul HTTP API client every meshctl tool uses.

    from meshctl.client import Client
    c = Client()                      # CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN ... or 127.0.0.1:8500
    c.kv.put("app/config", b"x")
    pair = c.kv.get("app/config").value
    reply = c.health.service("web", passing=True, options=QueryOptions(consistency="stale"), index=7)
    reply.value, reply.meta.last_index, reply.meta.known_leader

Reads take a `QueryOptions` (`options=`) and/or its fields as keywords, and return a `Reply`
(the value, `found`, and the `QueryMeta`). Failures are `ConsulError`s: one class per HTTP
status family, `Unreachable` when the agent cannot be reached. Records are typed in
`meshctl.client.records`.
"""

from meshctl.client.blocking import Backoff, watch
from meshctl.client.client import Client, DecodeError
from meshctl.client.config import ClientConfig, ConfigError, resolve_config
from meshctl.client.errors import (
    ACLDisabled,
    BadRequest,
    Conflict,
    ConsulError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TooLarge,
    Unreachable,
)
from meshctl.client.event import event_payload
from meshctl.client.lock import LeaderElection, Lock, LockError, LockOptions, Semaphore
from meshctl.client.query import Consistency, QueryArgs, QueryOptions
from meshctl.client.records import (
    ACLPolicy,
    ACLRole,
    ACLToken,
    AgentMember,
    AgentSelf,
    AgentService,
    CatalogNode,
    CatalogNodeServiceList,
    CatalogService,
    HealthCheck,
    JSONObject,
    JSONValue,
    Node,
    RaftConfiguration,
    ServiceEntry,
    SessionEntry,
    UserEvent,
)
from meshctl.client.snapshot import SnapshotArchive
from meshctl.client.txn import kv_op
from meshctl.client.types import KVPair, QueryMeta, Reply, TxnError, TxnOpResult, TxnResult

__all__ = [
    "ACLDisabled",
    "ACLPolicy",
    "ACLRole",
    "ACLToken",
    "AgentMember",
    "AgentSelf",
    "AgentService",
    "Backoff",
    "BadRequest",
    "CatalogNode",
    "CatalogNodeServiceList",
    "CatalogService",
    "Client",
    "ClientConfig",
    "ConfigError",
    "Conflict",
    "ConsulError",
    "Consistency",
    "DecodeError",
    "HealthCheck",
    "JSONObject",
    "JSONValue",
    "KVPair",
    "LeaderElection",
    "Lock",
    "LockError",
    "LockOptions",
    "MethodNotAllowed",
    "Node",
    "NotFound",
    "PermissionDenied",
    "QueryArgs",
    "QueryMeta",
    "QueryOptions",
    "RaftConfiguration",
    "RateLimited",
    "Reply",
    "Semaphore",
    "ServerError",
    "ServiceEntry",
    "SessionEntry",
    "SnapshotArchive",
    "TooLarge",
    "TxnError",
    "TxnOpResult",
    "TxnResult",
    "Unreachable",
    "UserEvent",
    "event_payload",
    "kv_op",
    "resolve_config",
    "watch",
]
