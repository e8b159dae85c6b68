"""Result types that cross the client's boundary: Reply, QueryMeta, KVPair, TxnResult."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypedDict, TypeVar, cast

from meshctl.client.records import AgentService, HealthCheck, KVEntry, Node, TxnResponse

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)  # a Reply[list[KVPair]] is a Reply[object] to whoever reads it
U = TypeVar("U")


def _int_header(headers: Mapping[str, str], name: str) -> int:
    try:
        return int(headers.get(name, "0") or 0)
    except ValueError:
        return 0


@dataclass(frozen=True)
class QueryMeta:
    """Consul's query metadata headers (the Go client's `api.QueryMeta`)."""

    last_index: int = 0  # X-Consul-Index (0 when the endpoint sends none)
    known_leader: bool = False  # X-Consul-KnownLeader
    last_contact: float = 0.0  # X-Consul-LastContact, in seconds
    consistency: str | None = None  # X-Consul-Effective-Consistency
    filtered_by_acls: bool = False  # X-Consul-Results-Filtered-By-ACLs
    content_hash: str | None = None  # X-Consul-ContentHash
    cache_hit: bool | None = None  # X-Cache (HIT / MISS) of a `cached` read; None when not sent
    cache_age: float | None = None  # Age of a cached answer, in seconds

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> QueryMeta:
        """Parse the headers of a response (absent or garbled numbers are 0)."""
        cache = headers.get("X-Cache")
        age = headers.get("Age")
        return cls(
            last_index=_int_header(headers, "X-Consul-Index"),
            known_leader=headers.get("X-Consul-KnownLeader") == "true",
            last_contact=_int_header(headers, "X-Consul-LastContact") / 1000.0,
            consistency=headers.get("X-Consul-Effective-Consistency"),
            filtered_by_acls=headers.get("X-Consul-Results-Filtered-By-ACLs") == "true",
            content_hash=headers.get("X-Consul-ContentHash"),
            cache_hit=None if cache is None else cache.upper() == "HIT",
            cache_age=float(_int_header(headers, "Age")) if age is not None else None,
        )


@dataclass
class Reply(Generic[T_co]):
    """The answer to a read: the decoded value plus Consul's query metadata (also as `.meta`)."""

    value: T_co
    index: int = 0  # X-Consul-Index (0 when the endpoint sends none)
    known_leader: bool = False  # X-Consul-KnownLeader
    last_contact: float = 0.0  # X-Consul-LastContact, in seconds
    found: bool = True  # False when Consul answered 404 (e.g. a missing key)
    consistency: str | None = None  # X-Consul-Effective-Consistency
    filtered_by_acls: bool = False  # X-Consul-Results-Filtered-By-ACLs
    content_hash: str | None = None  # X-Consul-ContentHash
    cache_hit: bool | None = None  # X-Cache of a `cached` read
    cache_age: float | None = None  # Age of a cached answer, in seconds

    @staticmethod
    def of(value: T, meta: QueryMeta, found: bool = True) -> Reply[T]:
        """A reply carrying `value` with `meta`."""
        return Reply(value=value, index=meta.last_index, known_leader=meta.known_leader,
                   last_contact=meta.last_contact, found=found, consistency=meta.consistency,
                   filtered_by_acls=meta.filtered_by_acls, content_hash=meta.content_hash,
                   cache_hit=meta.cache_hit, cache_age=meta.cache_age)

    @property
    def meta(self) -> QueryMeta:
        """The query metadata of this reply."""
        return QueryMeta(last_index=self.index, known_leader=self.known_leader, last_contact=self.last_contact,
                         consistency=self.consistency, filtered_by_acls=self.filtered_by_acls,
                         content_hash=self.content_hash, cache_hit=self.cache_hit, cache_age=self.cache_age)

    def with_value(self, value: U) -> Reply[U]:
        """The same reply (metadata, found) carrying another value: a decoded or filtered view of it."""
        return Reply.of(value, self.meta, self.found)


def b64decode(value: str | None) -> bytes | None:
    """Decode Consul's base64 `Value` (None stays None)."""
    return None if value is None else base64.b64decode(value)


def b64encode(value: bytes | str | None) -> str | None:
    """Encode a value for Consul's JSON (str is UTF-8 encoded first)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode()
    return base64.b64encode(value).decode("ascii")


@dataclass
class KVPair:
    """One KV entry, as Consul's `GET /v1/kv/:key` describes it (Value decoded to bytes)."""

    key: str
    value: bytes | None = None
    flags: int = 0
    create_index: int = 0
    modify_index: int = 0
    lock_index: int = 0
    session: str | None = None

    @classmethod
    def from_json(cls, data: KVEntry) -> KVPair:
        """Build from Consul's JSON entry (base64 `Value`, may be null)."""
        return cls(
            key=data["Key"],
            value=b64decode(data.get("Value")),
            flags=int(data.get("Flags") or 0),
            create_index=int(data.get("CreateIndex") or 0),
            modify_index=int(data.get("ModifyIndex") or 0),
            lock_index=int(data.get("LockIndex") or 0),
            session=data.get("Session") or None,
        )

    def to_json(self) -> KVEntry:
        """Consul's JSON entry; `Session` is omitted when empty, as Consul does."""
        out: KVEntry = {
            "LockIndex": self.lock_index,
            "Key": self.key,
            "Flags": self.flags,
            "Value": b64encode(self.value),
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }
        if self.session:
            out["Session"] = self.session
        return out

    @property
    def text(self) -> str | None:
        """The value decoded as UTF-8 (invalid bytes replaced), or None."""
        return None if self.value is None else self.value.decode("utf-8", "replace")


_Node = Node  # for the field named like the type


class TxnOpResult(TypedDict, total=False):
    """One result of a transaction: the entry an operation read or wrote (KV decoded as a KVPair)."""

    KV: KVPair
    Node: _Node
    Service: AgentService
    Check: HealthCheck


@dataclass
class TxnError:
    """One failed operation of a rolled-back transaction."""

    op_index: int
    what: str


@dataclass
class TxnResult:
    """The outcome of `PUT /v1/txn`: results on success, errors on rollback."""

    ok: bool
    results: list[TxnOpResult] = field(default_factory=list)  # Consul's shapes; a KV result as a KVPair
    errors: list[TxnError] = field(default_factory=list)
    index: int = 0
    known_leader: bool = False
    last_contact: float = 0.0

    @classmethod
    def from_json(cls, ok: bool, data: TxnResponse | None) -> TxnResult:
        """Decode Consul's `{"Results": [...], "Errors": [...]}` body."""
        data = data or {}
        results: list[TxnOpResult] = []
        for item in data.get("Results") or []:
            kv = item.get("KV")
            if isinstance(kv, dict):
                results.append({"KV": KVPair.from_json(cast(KVEntry, kv))})
            else:
                results.append(cast(TxnOpResult, item))
        errors = [TxnError(int(e.get("OpIndex", 0)), e.get("What", "")) for e in data.get("Errors") or []]
        return cls(ok=ok, results=results, errors=errors)

    @property
    def kv(self) -> list[KVPair]:
        """Just the KV results, in order."""
        return [r["KV"] for r in self.results if isinstance(r.get("KV"), KVPair)]
