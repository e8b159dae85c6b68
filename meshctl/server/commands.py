"""The commands of the replicated state machine: one typed class per operation, and their wire form.

Handlers build a command (`KVSet(key, value)`, `Register(node, ...)`, `ACLTokenSet(token, create=True)`)
and hand it to the store; `State.apply` dispatches on its type. What is replicated is not the
object but its wire form, `to_wire()`: the plain dict every command has always been
(`{"Op": "kv", "Verb": "set", "Key": ..., "Now": ...}`), which pysyncobj pickles into the Raft
journal and ships to followers, and a client agent posts as JSON to a server's internal apply
endpoint. `decode(wire)` (or `Class.from_wire`) reads such a dict back; `State.apply` accepts
either, so journals, snapshots and peers written before these classes existed replay unchanged.

Why frozen dataclasses for the commands, and TypedDicts for what they carry:

- a command is built in one place and applied on every replica: immutable (`frozen`), compared by
  value (tests, replicas), checked by mypy where it is built, dispatched by `type()` (one dict
  lookup, no string matching on the hot path);
- the wire format must stay the dict it was, byte for byte where a producer's key order was fixed:
  each `to_wire` writes its keys in the order the old producers did, and omits a key the old
  producer omitted (an optional field is `None` when absent); `Now` comes last, as the stores'
  `setdefault` put it. Keys of a user-written catalog registration that the state machine
  ignores (`Datacenter`, `Token` ...) travel on in `Register.extra`, so decode is lossless;
- the payloads (a service or check definition, a session, an event, an ACL token, a transaction's
  ops, a snapshot) are Consul's JSON objects, validated by the HTTP layer and stored by the state
  machine almost as they are. They stay dicts, typed as `TypedDict`s: no conversion between the
  wire and the records, and the shapes are written down here.

Time and generated IDs are chosen by whoever builds the command (the leader) and travel inside it:
`now` is filled in by the store when the builder left it `None` (`with_now`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias, TypedDict, TypeVar, cast

JSON: TypeAlias = "None | bool | int | float | str | list[JSON] | dict[str, JSON]"
JSONObject: TypeAlias = "dict[str, JSON]"
# A command as replicated: a JSON-like dict (KV values are bytes, which pickle and the state keep as such).
Wire: TypeAlias = "dict[str, object]"


class StateError(Exception):
    """A command that cannot be applied; the message is Consul's error text (HTTP 500)."""


# ---------------------------------------------------------------------- payload shapes


class Weights(TypedDict, total=False):
    Passing: int
    Warning: int


class ServiceDef(TypedDict, total=False):
    """A service as registered (agent definition or /v1/catalog/register's Service)."""

    ID: str
    Service: str
    Kind: str
    Tags: list[str]
    Address: str
    TaggedAddresses: dict[str, JSON] | None
    Meta: dict[str, str]
    Port: int
    Weights: Weights
    EnableTagOverride: bool
    ModifyIndex: int


class CheckDef(TypedDict, total=False):
    """A check as registered (the agent's catalog_json, or a catalog registration's check)."""

    Node: str
    CheckID: str
    Name: str
    Status: str
    Notes: str
    Output: str
    ServiceID: str
    Type: str
    Interval: str
    Timeout: str
    Definition: JSONObject
    ModifyIndex: int


class NodeDef(TypedDict, total=False):
    """A node in a transaction's Node op."""

    ID: str
    Node: str
    Address: str
    TaggedAddresses: dict[str, str] | None
    Meta: dict[str, str] | None
    ModifyIndex: int


class ServiceCheckRef(TypedDict, total=False):
    ID: str
    Namespace: str


class SessionDef(TypedDict, total=False):
    """A session as /v1/session/create builds it (http/session.py build_session)."""

    ID: str
    Name: str
    Node: str
    LockDelay: int  # nanoseconds
    Behavior: str
    TTL: str
    NodeChecks: list[str] | None
    ServiceChecks: list[ServiceCheckRef] | None
    CreateIndex: int
    ModifyIndex: int


class EventDef(TypedDict, total=False):
    """A user event as /v1/event/fire builds it (LTime and Version are added when applied)."""

    ID: str
    Name: str
    Payload: str | None  # base64
    NodeFilter: str
    ServiceFilter: str
    TagFilter: str


class Link(TypedDict, total=False):
    """A token's or role's link to a policy or role, by ID or Name."""

    ID: str
    Name: str


class TokenDef(TypedDict, total=False):
    AccessorID: str
    SecretID: str
    Description: str
    Policies: list[Link]
    Roles: list[Link]
    ServiceIdentities: list[JSONObject]
    NodeIdentities: list[JSONObject]
    Local: bool
    ExpirationTime: str  # RFC 3339, chosen by the endpoint (ExpirationTTL is turned into this)


class TokenIDs(TypedDict):
    AccessorID: str
    SecretID: str


class PolicyDef(TypedDict, total=False):
    ID: str
    Name: str
    Description: str
    Rules: str
    Datacenters: list[str] | None


class RoleDef(TypedDict, total=False):
    ID: str
    Name: str
    Description: str
    Policies: list[Link]
    ServiceIdentities: list[JSONObject]
    NodeIdentities: list[JSONObject]


class KVTxnOp(TypedDict, total=False):
    Verb: str
    Key: str
    Value: bytes | None  # decoded from base64 by the HTTP layer
    Flags: int
    Index: int
    Session: str


class NodeTxnOp(TypedDict, total=False):
    Verb: str
    Node: NodeDef


class ServiceTxnOp(TypedDict, total=False):
    Verb: str
    Node: str
    Service: ServiceDef


class CheckTxnOp(TypedDict, total=False):
    Verb: str
    Check: CheckDef


class TxnOp(TypedDict, total=False):
    """One operation of /v1/txn: exactly one of the four keys."""

    KV: KVTxnOp
    Node: NodeTxnOp
    Service: ServiceTxnOp
    Check: CheckTxnOp


class QueryFailover(TypedDict, total=False):
    NearestN: int
    Datacenters: list[str] | None


class ServiceQuery(TypedDict, total=False):
    """A prepared query's `Service` (Consul's structs.ServiceQuery)."""

    Service: str
    Failover: QueryFailover
    OnlyPassing: bool
    IgnoreCheckIDs: list[str] | None
    Near: str
    Tags: list[str] | None
    NodeMeta: dict[str, str] | None
    ServiceMeta: dict[str, str] | None
    Connect: bool


class QueryTemplate(TypedDict, total=False):
    Type: str
    Regexp: str
    RemoveEmptyTags: bool


class QueryDef(TypedDict, total=False):
    """A prepared query as /v1/query stores it (http/query.py builds it, with Consul's defaults)."""

    ID: str
    Name: str
    Session: str
    Token: str
    Template: QueryTemplate
    Service: ServiceQuery
    DNS: dict[str, str]
    CreateIndex: int
    ModifyIndex: int


class Coord(TypedDict):
    """A network coordinate, as Serf encodes it (meshctl/server/coordinates.py)."""

    Vec: list[float]
    Error: float
    Adjustment: float
    Height: float


class CoordinateEntry(TypedDict):
    """One node's coordinate update (PUT /v1/coordinate/update, or a client agent's heartbeat)."""

    Node: str
    Segment: str
    Coord: Coord


class SnapshotData(TypedDict, total=False):
    """`State.snapshot()`: everything, as plain data. Snapshots written before Format 1 have no Format."""

    Format: int
    Datacenter: str
    Index: int
    KV: list[list[JSON]]  # [key, base64 value or None, flags, create, modify, lock index, session]
    Tombstones: dict[str, int]
    LockDelays: dict[str, float]
    Nodes: dict[str, JSONObject]
    Services: dict[str, dict[str, JSONObject]]
    Checks: dict[str, dict[str, JSONObject]]
    Sessions: dict[str, JSONObject]
    Events: list[JSONObject]
    EventLTime: int
    TableIndex: dict[str, int]
    ServiceIndex: dict[str, int]
    NodeIndex: dict[str, int]
    Now: float
    ACL: JSONObject
    Queries: JSONObject  # format 2: {"Index": n, "Items": {id: query}}; absent when there never were any
    Coordinates: JSONObject  # format 2: {"Index": n, "Items": {node: entry}}; absent when empty
    Autopilot: JSONObject  # absent in snapshots of older meshctl


# ---------------------------------------------------------------------- commands

C = TypeVar("C", bound="Command")


@dataclass(frozen=True, slots=True)
class Command:
    """One operation on the state machine. `now`: the leader's clock (unix seconds), set by the store."""

    OP: ClassVar[str] = ""
    now: float | None = field(default=None, kw_only=True)

    def to_wire(self) -> Wire:
        """The dict that is replicated (see the module docstring)."""
        raise NotImplementedError

    @classmethod
    def from_wire(cls: type[C], wire: Mapping[str, object]) -> C:
        """The command of a wire dict (its "Op" picks the class: see `decode`)."""
        command = decode(wire)
        if not isinstance(command, cls):
            raise StateError(f"not a {cls.__name__} command: {wire.get('Op')!r}")
        return command

    def _done(self, wire: Wire) -> Wire:
        if self.now is not None:
            wire["Now"] = self.now
        return wire


def with_now(command: C, now: float) -> C:
    """`command` with its time set, unless it has one already."""
    return command if command.now is not None else dataclasses.replace(command, now=now)


# KV ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KVCommand(Command):
    """A write on one key (or a prefix). Wire: {"Op": "kv", "Verb": ..., "Key": ...}."""

    OP: ClassVar[str] = "kv"
    VERB: ClassVar[str] = ""
    key: str


@dataclass(frozen=True, slots=True)
class KVSet(KVCommand):
    """PUT /v1/kv/:key. `value` None is Consul's null value (an empty PUT). Idempotent."""

    VERB: ClassVar[str] = "set"
    value: bytes | None = None
    flags: int = 0

    def to_wire(self) -> Wire:
        return self._done({"Op": "kv", "Verb": self.VERB, "Key": self.key, "Flags": self.flags, "Value": self.value})


@dataclass(frozen=True, slots=True)
class KVCAS(KVCommand):
    """?cas=index: set only if the key's ModifyIndex is `index` (0: only if it does not exist)."""

    VERB: ClassVar[str] = "cas"
    value: bytes | None = None
    flags: int = 0
    index: int = 0

    def to_wire(self) -> Wire:
        return self._done({"Op": "kv", "Verb": self.VERB, "Key": self.key, "Flags": self.flags, "Value": self.value,
                           "Index": self.index})


@dataclass(frozen=True, slots=True)
class KVLock(KVCommand):
    """?acquire=session."""

    VERB: ClassVar[str] = "lock"
    value: bytes | None = None
    flags: int = 0
    session: str = ""

    def to_wire(self) -> Wire:
        return self._done({"Op": "kv", "Verb": self.VERB, "Key": self.key, "Flags": self.flags, "Value": self.value,
                           "Session": self.session})


@dataclass(frozen=True, slots=True)
class KVUnlock(KVCommand):
    """?release=session."""

    VERB: ClassVar[str] = "unlock"
    value: bytes | None = None
    flags: int = 0
    session: str = ""

    def to_wire(self) -> Wire:
        return self._done({"Op": "kv", "Verb": self.VERB, "Key": self.key, "Flags": self.flags, "Value": self.value,
                           "Session": self.session})


@dataclass(frozen=True, slots=True)
class KVDelete(KVCommand):
    VERB: ClassVar[str] = "delete"

    def to_wire(self) -> Wire:
        return self._done({"Op": "kv", "Verb": self.VERB, "Key": self.key})


@dataclass(frozen=True, slots=True)
class KVDeleteCAS(KVCommand):
    """DELETE ?cas=index: delete only if the key's ModifyIndex is `index` (a missing key: success)."""

    VERB: ClassVar[str] = "delete-cas"
    index: int = 0

    def to_wire(self) -> Wire:
        return self._done({"Op": "kv", "Verb": self.VERB, "Key": self.key, "Index": self.index})


@dataclass(frozen=True, slots=True)
class KVDeleteTree(KVCommand):
    """DELETE ?recurse: every key under the prefix `key`."""

    VERB: ClassVar[str] = "delete-tree"

    def to_wire(self) -> Wire:
        return self._done({"Op": "kv", "Verb": self.VERB, "Key": self.key})


KV_VERBS: dict[str, type[KVCommand]] = {c.VERB: c for c in (KVSet, KVCAS, KVLock, KVUnlock, KVDelete, KVDeleteCAS,
                                                            KVDeleteTree)}


def kv_command(op: Mapping[str, object], now: float | None = None) -> KVCommand:
    """The KV command of a wire dict or a transaction's KV op (both spell fields the same way)."""
    verb = str(op.get("Verb", ""))
    cls = KV_VERBS.get(verb)
    if cls is None:
        raise StateError(f'unknown KV verb "{verb}"')
    key = cast(str, op.get("Key", ""))
    value = cast("bytes | None", op.get("Value"))
    flags = int(cast(int, op.get("Flags") or 0))
    index = int(cast(int, op.get("Index") or 0))
    session = cast(str, op.get("Session", ""))
    if cls is KVSet:
        return KVSet(key, value, flags, now=now)
    if cls is KVCAS:
        return KVCAS(key, value, flags, index, now=now)
    if cls is KVLock:
        return KVLock(key, value, flags, session, now=now)
    if cls is KVUnlock:
        return KVUnlock(key, value, flags, session, now=now)
    if cls is KVDeleteCAS:
        return KVDeleteCAS(key, index, now=now)
    return cls(key, now=now)


# transactions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Txn(Command):
    """/v1/txn with at least one write: all ops or none. Result: {"Results": [...]} or {"Errors": [...]}."""

    OP: ClassVar[str] = "txn"
    ops: tuple[TxnOp, ...]

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Ops": list(self.ops)})


# catalog -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Register(Command):
    """Catalog register: the node (unless `skip_node_update` and it exists), a service, checks.

    An optional field is None when the command has no such key. `extra`: keys of a
    /v1/catalog/register body the state machine ignores, kept (in order) for the wire.
    """

    OP: ClassVar[str] = "register"
    node: str
    id: str | None = None
    skip_node_update: bool | None = None
    address: str | None = None
    node_meta: dict[str, str] | None = None
    tagged_addresses: dict[str, str] | None = None
    checks: tuple[CheckDef, ...] | None = None
    service: ServiceDef | None = None
    check: CheckDef | None = None  # the singular form; the HTTP layer folds it into `checks`
    extra: tuple[tuple[str, JSON], ...] = ()

    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ID", "id"), ("Node", "node"), ("SkipNodeUpdate", "skip_node_update"), ("Address", "address"),
        ("NodeMeta", "node_meta"), ("TaggedAddresses", "tagged_addresses"), ("Checks", "checks"),
        ("Service", "service"), ("Check", "check"))

    def all_checks(self) -> list[CheckDef]:
        """The singular check first, then `checks` (as Consul's register does)."""
        out = list(self.checks or ())
        if self.check:
            out.insert(0, self.check)
        return out

    def to_wire(self) -> Wire:
        wire: Wire = {"Op": self.OP}
        for key, attr in self.FIELDS:
            value = getattr(self, attr)
            if value is not None or key == "Node":
                wire[key] = list(value) if key == "Checks" else value
        wire.update(self.extra)
        return self._done(wire)

    @classmethod
    def decode(cls, wire: Mapping[str, object]) -> Register:
        known = {k for k, _ in cls.FIELDS} | {"Op", "Now"}
        checks = wire.get("Checks")
        return Register(
            node=cast(str, wire.get("Node", "")), id=cast("str | None", wire.get("ID")),
            skip_node_update=cast("bool | None", wire.get("SkipNodeUpdate")),
            address=cast("str | None", wire.get("Address")),
            node_meta=cast("dict[str, str] | None", wire.get("NodeMeta")),
            tagged_addresses=cast("dict[str, str] | None", wire.get("TaggedAddresses")),
            checks=None if checks is None else tuple(cast("list[CheckDef]", checks)),
            service=cast("ServiceDef | None", wire.get("Service")), check=cast("CheckDef | None", wire.get("Check")),
            extra=tuple((k, cast(JSON, v)) for k, v in wire.items() if k not in known),
            now=_now(wire))


@dataclass(frozen=True, slots=True)
class Deregister(Command):
    """Catalog deregister: a check (`check_id`), else a service (with its checks), else the whole node."""

    OP: ClassVar[str] = "deregister"
    node: str
    service_id: str | None = None
    check_id: str | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"Op": self.OP, "Node": self.node}
        if self.service_id is not None:
            wire["ServiceID"] = self.service_id
        if self.check_id is not None:
            wire["CheckID"] = self.check_id
        return self._done(wire)


@dataclass(frozen=True, slots=True)
class CheckUpdate(Command):
    """A check's new status and/or output (check runs, TTLs, heartbeats); None keeps the current one."""

    OP: ClassVar[str] = "check_update"
    node: str
    check_id: str
    status: str | None = None
    output: str | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"Op": self.OP, "Node": self.node, "CheckID": self.check_id}
        if self.status is not None:
            wire["Status"] = self.status
        if self.output is not None:
            wire["Output"] = self.output
        return self._done(wire)


# sessions, events, tombstones, restore ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionCreate(Command):
    """Result: the session's ID."""

    OP: ClassVar[str] = "session_create"
    session: SessionDef

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Session": self.session})


@dataclass(frozen=True, slots=True)
class SessionDestroy(Command):
    """Destroy (or expire) a session: its locks are released or deleted, lock-delay starts."""

    OP: ClassVar[str] = "session_destroy"
    id: str

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "ID": self.id})


@dataclass(frozen=True, slots=True)
class EventFire(Command):
    """Result: the stored event (with its LTime)."""

    OP: ClassVar[str] = "event_fire"
    event: EventDef

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Event": self.event})


@dataclass(frozen=True, slots=True)
class TombstoneReap(Command):
    """Forget KV tombstones at or below `index` (the leader's reaper decides when)."""

    OP: ClassVar[str] = "tombstone_reap"
    index: int

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Index": self.index})


@dataclass(frozen=True, slots=True)
class AutopilotSet(Command):
    """Replace the autopilot configuration (`cas`: only if its ModifyIndex is that). Result: bool."""

    OP: ClassVar[str] = "autopilot_set"
    config: dict[str, JSON]
    cas: int | None = None

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Config": self.config, "CAS": self.cas})


@dataclass(frozen=True, slots=True)
class Restore(Command):
    """Replace everything with a snapshot (`State.snapshot()`, any format version it can read)."""

    OP: ClassVar[str] = "restore"
    snapshot: SnapshotData

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Snapshot": self.snapshot})


# prepared queries and coordinates -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuerySet(Command):
    """Create (`create`) or update a prepared query; the leader chose its ID. Result: the ID."""

    OP: ClassVar[str] = "query_set"
    query: QueryDef
    create: bool

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Query": self.query, "Create": self.create})


@dataclass(frozen=True, slots=True)
class QueryDelete(Command):
    OP: ClassVar[str] = "query_delete"
    id: str

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "ID": self.id})


@dataclass(frozen=True, slots=True)
class CoordinateUpdate(Command):
    """A batch of nodes' coordinates (a server applies what it gathered once per period)."""

    OP: ClassVar[str] = "coordinate_update"
    updates: tuple[CoordinateEntry, ...]

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Coordinates": list(self.updates)})


# ACL -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ACLInit(Command):
    """The built-in policy and anonymous token, and the configured initial management token."""

    OP: ClassVar[str] = "acl_init"
    initial_management: TokenIDs | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"Op": self.OP}
        if self.initial_management is not None:
            wire["InitialManagement"] = self.initial_management
        return self._done(wire)


@dataclass(frozen=True, slots=True)
class ACLBootstrap(Command):
    OP: ClassVar[str] = "acl_bootstrap"
    token: TokenIDs

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Token": self.token})


@dataclass(frozen=True, slots=True)
class ACLTokenSet(Command):
    """Create (`create`) or update a token. `not_found_404`: a missing token answers 404, not 400."""

    OP: ClassVar[str] = "acl_token_set"
    token: TokenDef
    create: bool
    not_found_404: bool | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"Op": self.OP, "Token": self.token, "Create": self.create}
        if self.not_found_404 is not None:
            wire["NotFound404"] = self.not_found_404
        return self._done(wire)


@dataclass(frozen=True, slots=True)
class ACLTokenDelete(Command):
    OP: ClassVar[str] = "acl_token_delete"
    accessor_id: str

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "AccessorID": self.accessor_id})


@dataclass(frozen=True, slots=True)
class ACLPolicySet(Command):
    OP: ClassVar[str] = "acl_policy_set"
    policy: PolicyDef
    create: bool

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Policy": self.policy, "Create": self.create})


@dataclass(frozen=True, slots=True)
class ACLPolicyDelete(Command):
    OP: ClassVar[str] = "acl_policy_delete"
    id: str

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "ID": self.id})


@dataclass(frozen=True, slots=True)
class ACLRoleSet(Command):
    OP: ClassVar[str] = "acl_role_set"
    role: RoleDef
    create: bool

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Role": self.role, "Create": self.create})


@dataclass(frozen=True, slots=True)
class ACLRoleDelete(Command):
    OP: ClassVar[str] = "acl_role_delete"
    id: str

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "ID": self.id})


ACLCommand: TypeAlias = (
    "ACLInit | ACLBootstrap | ACLTokenSet | ACLTokenDelete | ACLPolicySet | ACLPolicyDelete | ACLRoleSet"
    " | ACLRoleDelete")


# the server directory --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerMember(Command):
    """A server's entry in the replicated server directory (raft address -> node, HTTP and serf address...).

    Replicated through Raft like every command, but not part of `State`: the Raft store keeps the
    directory (`RaftStore.members`) and applies this command itself; `State.apply` refuses it.
    """

    OP: ClassVar[str] = "_raft_member"
    address: str
    info: dict[str, JSON]

    def to_wire(self) -> Wire:
        return self._done({"Op": self.OP, "Address": self.address, "Info": self.info})


# ---------------------------------------------------------------------- decoding


def _now(wire: Mapping[str, object]) -> float | None:
    return cast("float | None", wire.get("Now"))


def _decode_fixed(wire: Mapping[str, object]) -> Command:
    op, now = wire.get("Op"), _now(wire)
    g = wire.get
    if op == "txn":
        return Txn(tuple(cast("list[TxnOp]", wire["Ops"])), now=now)
    if op == "deregister":
        return Deregister(cast(str, g("Node", "")), cast("str | None", g("ServiceID")),
                          cast("str | None", g("CheckID")), now=now)
    if op == "check_update":
        return CheckUpdate(cast(str, wire["Node"]), cast(str, wire["CheckID"]), cast("str | None", g("Status")),
                           cast("str | None", g("Output")), now=now)
    if op == "session_create":
        return SessionCreate(cast(SessionDef, wire["Session"]), now=now)
    if op == "session_destroy":
        return SessionDestroy(cast(str, wire["ID"]), now=now)
    if op == "event_fire":
        return EventFire(cast(EventDef, wire["Event"]), now=now)
    if op == "tombstone_reap":
        return TombstoneReap(cast(int, wire["Index"]), now=now)
    if op == "restore":
        return Restore(cast(SnapshotData, wire["Snapshot"]), now=now)
    if op == AutopilotSet.OP:
        return AutopilotSet(cast("dict[str, JSON]", wire["Config"]), cast("int | None", g("CAS")), now=now)
    if op == "acl_init":
        return ACLInit(cast("TokenIDs | None", g("InitialManagement")), now=now)
    if op == "acl_bootstrap":
        return ACLBootstrap(cast(TokenIDs, wire["Token"]), now=now)
    if op == "acl_token_set":
        return ACLTokenSet(cast(TokenDef, wire["Token"]), cast(bool, g("Create", False)),
                           cast("bool | None", g("NotFound404")), now=now)
    if op == "acl_token_delete":
        return ACLTokenDelete(cast(str, wire["AccessorID"]), now=now)
    if op == "acl_policy_set":
        return ACLPolicySet(cast(PolicyDef, wire["Policy"]), cast(bool, g("Create", False)), now=now)
    if op == "acl_policy_delete":
        return ACLPolicyDelete(cast(str, wire["ID"]), now=now)
    if op == "acl_role_set":
        return ACLRoleSet(cast(RoleDef, wire["Role"]), cast(bool, g("Create", False)), now=now)
    if op == "acl_role_delete":
        return ACLRoleDelete(cast(str, wire["ID"]), now=now)
    if op == "query_set":
        return QuerySet(cast(QueryDef, wire["Query"]), cast(bool, g("Create", False)), now=now)
    if op == "query_delete":
        return QueryDelete(cast(str, wire["ID"]), now=now)
    if op == "coordinate_update":
        return CoordinateUpdate(tuple(cast("list[CoordinateEntry]", wire["Coordinates"])), now=now)
    if op == ServerMember.OP:
        return ServerMember(cast(str, wire["Address"]), cast("dict[str, JSON]", wire["Info"]), now=now)
    raise StateError(f"unknown command {op!r}")


def decode(wire: Mapping[str, object]) -> Command:
    """The typed command of a wire dict. Raises StateError for an unknown Op or KV verb."""
    op = wire.get("Op")
    if op == "kv":
        return kv_command(wire, _now(wire))
    if op == "register":
        return Register.decode(wire)
    try:
        return _decode_fixed(wire)
    except KeyError as exc:
        raise StateError(f"malformed {op!r} command: missing {exc}") from None


def to_wire(command: Command | Mapping[str, object]) -> Wire:
    """The wire dict of a command (a wire dict is returned as a copy)."""
    return command.to_wire() if isinstance(command, Command) else dict(command)


COMMAND_OPS: frozenset[str] = frozenset(
    {"kv", "txn", "register", "deregister", "check_update", "session_create", "session_destroy", "event_fire",
     "tombstone_reap", "restore", "acl_init", "acl_bootstrap", "acl_token_set", "acl_token_delete",
     "acl_policy_set", "acl_policy_delete", "acl_role_set", "acl_role_delete", "query_set", "query_delete",
     "coordinate_update", ServerMember.OP, AutopilotSet.OP})

