"""Result types that cross the client's boundary: Reply, KVPair, TxnResult."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Reply(Generic[T]):
    """The answer to a read: the decoded value plus Consul's query metadata headers."""

    value: T
    index: int = 0  # X-Consul-Index (0 when the endpoint sends none)
    known_leader: bool = False  # X-Consul-KnownLeader
    last_contact: float = 0.0  # X-Consul-LastContact, in seconds
    found: bool = True  # False when Consul answered 404 (e.g. a missing key)
    consistency: str | None = None  # X-Consul-Effective-Consistency
    filtered_by_acls: bool = False  # X-Consul-Results-Filtered-By-ACLs
    content_hash: str | None = None  # X-Consul-ContentHash


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
    def from_json(cls, data: dict[str, Any]) -> KVPair:
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

    def to_json(self) -> dict[str, Any]:
        """Consul's JSON entry; `Session` is omitted when empty, as Consul does."""
        out: dict[str, Any] = {
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


@dataclass
class TxnError:
    """One failed operation of a rolled-back transaction."""

    op_index: int
    what: str


@dataclass
class TxnResult:
    """The outcome of `PUT /v1/txn`: results on success, errors on rollback."""

    ok: bool
    results: list[dict[str, Any]] = field(default_factory=list)  # Consul's shapes; KV as KVPair
    errors: list[TxnError] = field(default_factory=list)
    index: int = 0
    known_leader: bool = False
    last_contact: float = 0.0

    @classmethod
    def from_json(cls, ok: bool, data: dict[str, Any] | None) -> TxnResult:
        """Decode Consul's `{"Results": [...], "Errors": [...]}` body."""
        data = data or {}
        results: list[dict[str, Any]] = []
        for item in data.get("Results") or []:
            if "KV" in item and item["KV"] is not None:
                results.append({"KV": KVPair.from_json(item["KV"])})
            else:
                results.append(item)
        errors = [TxnError(int(e.get("OpIndex", 0)), e.get("What", "")) for e in data.get("Errors") or []]
        return cls(ok=ok, results=results, errors=errors)

    @property
    def kv(self) -> list[KVPair]:
        """Just the KV results, in order."""
        return [r["KV"] for r in self.results if isinstance(r.get("KV"), KVPair)]
