"""Consul's JSON records as the HTTP API sends them, typed (the Go `api` package's struct names).

These are plain dicts at run time (the client does not copy or check what Consul sends);
the TypedDicts say which fields to expect. Every field may be missing in an older or newer
Consul (`total=False`): read optional ones with `.get()`. Request bodies the caller builds
(registrations, check definitions, transaction operations) are `JSONObject`s: any mapping
that `json.dumps` can encode, in Consul's field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject = Mapping[str, object]  # a request body in Consul's field names


class Weights(TypedDict, total=False):
    """DNS SRV weights of a service."""

    Passing: int
    Warning: int


_Weights = Weights  # for fields named like the type


class ServiceAddress(TypedDict, total=False):
    """One of a service's tagged addresses (`lan`, `wan`, `lan_ipv4` ...)."""

    Address: str
    Port: int


_ServiceAddress = ServiceAddress


class Node(TypedDict, total=False):
    """A catalog node (`/v1/catalog/nodes`, and `Node` in health and catalog records)."""

    ID: str
    Node: str
    Address: str
    Datacenter: str
    TaggedAddresses: dict[str, str]
    Meta: dict[str, str]
    CreateIndex: int
    ModifyIndex: int


_Node = Node


class AgentService(TypedDict, total=False):
    """A service instance (`/v1/agent/services`, and `Service` in health and catalog node records)."""

    Kind: str
    ID: str
    Service: str
    Tags: list[str]
    Meta: dict[str, str]
    Port: int
    Address: str
    TaggedAddresses: dict[str, _ServiceAddress]
    Weights: _Weights
    EnableTagOverride: bool
    Datacenter: str
    Namespace: str
    Partition: str
    CreateIndex: int
    ModifyIndex: int


class CatalogService(TypedDict, total=False):
    """One instance of a service with its node (`/v1/catalog/service/:name`)."""

    ID: str
    Node: str
    Address: str
    Datacenter: str
    TaggedAddresses: dict[str, str]
    NodeMeta: dict[str, str]
    ServiceKind: str
    ServiceID: str
    ServiceName: str
    ServiceAddress: str
    ServiceTaggedAddresses: dict[str, _ServiceAddress]
    ServiceTags: list[str]
    ServiceMeta: dict[str, str]
    ServicePort: int
    ServiceWeights: _Weights
    ServiceEnableTagOverride: bool
    CreateIndex: int
    ModifyIndex: int


class HealthCheck(TypedDict, total=False):
    """A check (`/v1/health/*`, `/v1/agent/checks`)."""

    Node: str
    CheckID: str
    Name: str
    Status: str
    Notes: str
    Output: str
    ServiceID: str
    ServiceName: str
    ServiceTags: list[str]
    Type: str
    Definition: dict[str, JSONValue]
    CreateIndex: int
    ModifyIndex: int


class ServiceEntry(TypedDict, total=False):
    """A service instance with its node and every check of both (`/v1/health/service/:name`)."""

    Node: _Node
    Service: AgentService
    Checks: list[HealthCheck]


class CatalogNode(TypedDict, total=False):
    """A node and its services by ID (`/v1/catalog/node/:node`)."""

    Node: _Node
    Services: dict[str, AgentService]


class CatalogNodeServiceList(TypedDict, total=False):
    """A node and its services as a list (`/v1/catalog/node-services/:node`)."""

    Node: _Node
    Services: list[AgentService]


class KVEntry(TypedDict, total=False):
    """A KV entry as JSON (`Value` base64-encoded); the client hands out `KVPair`s instead."""

    Key: str
    Value: str | None
    Flags: int
    LockIndex: int
    Session: str
    CreateIndex: int
    ModifyIndex: int


class ServiceCheck(TypedDict, total=False):
    """A service check a session depends on."""

    ID: str
    Namespace: str


class SessionEntry(TypedDict, total=False):
    """A session (`/v1/session/info/:id`, `/v1/session/list`)."""

    ID: str
    Name: str
    Node: str
    LockDelay: int
    Behavior: str
    TTL: str
    Checks: list[str]
    NodeChecks: list[str]
    ServiceChecks: list[ServiceCheck]
    CreateIndex: int
    ModifyIndex: int


class UserEvent(TypedDict, total=False):
    """A user event (`/v1/event/fire`, `/v1/event/list`); `Payload` is base64 (see `event_payload`)."""

    ID: str
    Name: str
    Payload: str | None
    NodeFilter: str
    ServiceFilter: str
    TagFilter: str
    Version: int
    LTime: int


class AgentMember(TypedDict, total=False):
    """A gossip member (`/v1/agent/members`); Status 1 alive, 2 leaving, 3 left, 4 failed."""

    Name: str
    Addr: str
    Port: int
    Tags: dict[str, str]
    Status: int
    ProtocolMin: int
    ProtocolMax: int
    ProtocolCur: int
    DelegateMin: int
    DelegateMax: int
    DelegateCur: int


class AgentSelf(TypedDict, total=False):
    """`/v1/agent/self`: the agent's configuration and state (sections as Consul sends them)."""

    Config: dict[str, JSONValue]
    DebugConfig: dict[str, JSONValue]
    Coord: dict[str, JSONValue]
    Member: AgentMember
    Stats: dict[str, dict[str, str]]
    Meta: dict[str, str]


class RaftServer(TypedDict, total=False):
    """One server of the Raft configuration."""

    ID: str
    Node: str
    Address: str
    Leader: bool
    Voter: bool
    ProtocolVersion: str


class RaftConfiguration(TypedDict, total=False):
    """`/v1/operator/raft/configuration`."""

    Servers: list[RaftServer]
    Index: int


class ACLLink(TypedDict, total=False):
    """A policy or role a token or role refers to, by ID or Name."""

    ID: str
    Name: str


class ACLServiceIdentity(TypedDict, total=False):
    ServiceName: str
    Datacenters: list[str]


class ACLNodeIdentity(TypedDict, total=False):
    NodeName: str
    Datacenter: str


class ACLToken(TypedDict, total=False):
    """An ACL token (`SecretID` only where the caller may read it)."""

    AccessorID: str
    SecretID: str
    Description: str
    Policies: list[ACLLink]
    Roles: list[ACLLink]
    ServiceIdentities: list[ACLServiceIdentity]
    NodeIdentities: list[ACLNodeIdentity]
    Local: bool
    CreateTime: str
    ExpirationTime: str
    Hash: str
    Legacy: bool
    CreateIndex: int
    ModifyIndex: int


class ACLPolicy(TypedDict, total=False):
    """An ACL policy (`Rules` in HCL or JSON)."""

    ID: str
    Name: str
    Description: str
    Rules: str
    Datacenters: list[str]
    Hash: str
    CreateIndex: int
    ModifyIndex: int


class ACLRole(TypedDict, total=False):
    """An ACL role."""

    ID: str
    Name: str
    Description: str
    Policies: list[ACLLink]
    ServiceIdentities: list[ACLServiceIdentity]
    NodeIdentities: list[ACLNodeIdentity]
    Hash: str
    CreateIndex: int
    ModifyIndex: int


class TxnErrorEntry(TypedDict, total=False):
    OpIndex: int
    What: str


class TxnResponse(TypedDict, total=False):
    """The body of `PUT /v1/txn` (both on success and on a 409 rollback)."""

    Results: list[dict[str, JSONValue]] | None
    Errors: list[TxnErrorEntry] | None
