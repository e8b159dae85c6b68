"""meshctl.client: the one Consul HTTP API client every meshctl tool uses.

    from meshctl.client import Client
    c = Client()                      # CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN ... or 127.0.0.1:8500
    c.kv.put("app/config", b"x")
    pair = c.kv.get("app/config").value
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
from meshctl.client.lock import LeaderElection, Lock, LockError, Semaphore
from meshctl.client.query import QueryOptions, ReadOptions
from meshctl.client.txn import kv_op
from meshctl.client.types import KVPair, Reply, TxnError, TxnResult

__all__ = [
    "ACLDisabled",
    "Backoff",
    "BadRequest",
    "Client",
    "ClientConfig",
    "ConfigError",
    "Conflict",
    "ConsulError",
    "DecodeError",
    "KVPair",
    "LeaderElection",
    "Lock",
    "LockError",
    "MethodNotAllowed",
    "NotFound",
    "PermissionDenied",
    "QueryOptions",
    "RateLimited",
    "ReadOptions",
    "Reply",
    "Semaphore",
    "ServerError",
    "TooLarge",
    "TxnError",
    "TxnResult",
    "Unreachable",
    "event_payload",
    "kv_op",
    "resolve_config",
    "watch",
]
