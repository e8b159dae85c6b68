"""Consul's request field names, matched the way Consul's decoder matches them.

Go's encoding/json matches struct fields case-insensitively, and Consul also accepts
snake_case in definitions, so `node`, `Node`, `service_id` and `ServiceID` all arrive as
the same field. `canonical()` rewrites any incoming JSON to the canonical CamelCase names,
once, before the endpoints look at it. Keys inside user maps (Meta, Header...) are kept.

Go's encoding/json also writes every field of a struct: a nil pointer, slice or map is
`null` (`"Check": null`, `"Tags": null`), and decoding `null` leaves the field at its zero
value. So a `null` field means exactly what a missing one does; `canonical()` drops them,
and no endpoint has to tell the two apart.
"""

from __future__ import annotations

from typing import Any, TypedDict

NAMES = """
ID Node Address Datacenter TaggedAddresses NodeMeta Meta Service Services Check Checks SkipNodeUpdate
ServiceID CheckID Name Status Notes Output ServiceName ServiceTags Definition HTTP TCP UDP GRPC GRPCUseTLS
H2PING H2PingUseTLS Interval Timeout TTL Method Header Body TLSSkipVerify TLSServerName Args ScriptArgs
Script Shell DockerContainerID AliasNode AliasService DeregisterCriticalServiceAfter OutputMaxSize
SuccessBeforePassing FailuresBeforeCritical FailuresBeforeWarning Tags Port Weights Passing Warning
EnableTagOverride Kind Proxy Connect LockDelay Behavior NodeChecks ServiceChecks KV Verb Key Value Flags
Index Session Type ModifyIndex CreateIndex Namespace Partition WriteRequest Token Payload Enable Reason
SocketPath LocalServiceAddress LocalServicePort DestinationServiceName Upstreams Mode Expose
ServiceAddress ServicePort ServiceMeta ServiceWeights ServiceKind ServiceEnableTagOverride
EnableTagOverride Policies Roles Description Local AccessorID SecretID ExpirationTime ExpirationTTL
Rules SocketPath Locality PeerName DisableRedirects TCPUseTLS OSService ExposedPort Datacenter Region Zone
""".split()
_BY_FOLDED = {n.lower(): n for n in NAMES}
OPAQUE = {"Meta", "NodeMeta", "Header", "TaggedAddresses", "ServiceMeta"}


def canonical_name(key: str) -> str:
    """`node` -> `Node`, `service_id` -> `ServiceID`; unknown keys are CamelCased."""
    folded = key.replace("_", "").replace("-", "").lower()
    if folded in _BY_FOLDED:
        return _BY_FOLDED[folded]
    if "_" in key:
        return "".join(p[:1].upper() + p[1:] for p in key.split("_") if p)
    return key


class UnknownField(ValueError):
    """A request field Consul does not know (its decoder refuses those)."""


KNOWN = frozenset(NAMES)


def check_known(body: Any, where: str = "") -> None:
    """Refuse unknown fields at the top level and in Service / Check / Checks items."""
    if not isinstance(body, dict):
        return
    for key in body:
        if key not in KNOWN:
            raise UnknownField(f'Request decode failed: {where}unknown field "{key}"')
    for nested in ("Service", "Check"):
        if isinstance(body.get(nested), dict):
            check_known(body[nested], f"{nested}: ")
    for item in body.get("Checks") or []:
        check_known(item, "Checks: ")


def canonical(value: Any) -> Any:
    """Recursively rename the keys of a request body to Consul's names; `null` fields are dropped."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None:  # Go's nil: the zero value, as if the field were absent
                continue
            name = canonical_name(key) if isinstance(key, str) else key
            out[name] = item if name in OPAQUE else canonical(item)
        return out
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


class ServiceAddress(TypedDict):
    """structs.ServiceAddress: a value of a service's TaggedAddresses."""

    Address: str
    Port: int


class Locality(TypedDict):
    """structs.Locality: where a service runs (Consul 1.17+)."""

    Region: str
    Zone: str


def _struct(value: Any, what: str, fields: dict[str, type]) -> dict[str, Any]:
    """A small Go struct from JSON: field names matched case-insensitively, zero values filled in."""
    if not isinstance(value, dict):
        raise UnknownField(f"Request decode failed: {what} must be an object")
    by_folded = {k.replace("_", "").lower(): v for k, v in value.items()}
    out: dict[str, Any] = {}
    for name, kind in fields.items():
        item = by_folded.pop(name.lower(), None)
        if item is None:
            item = kind()
        elif kind is int and isinstance(item, str) and item.isdigit():
            item = int(item)
        if not isinstance(item, kind) or isinstance(item, bool):
            raise UnknownField(f"Request decode failed: {what}.{name} must be a {kind.__name__}")
        out[name] = item
    if by_folded:
        raise UnknownField(f'Request decode failed: {what}: unknown field "{next(iter(by_folded))}"')
    return out


def service_addresses(value: Any) -> dict[str, ServiceAddress] | None:
    """A service's TaggedAddresses as Consul keeps them: `{"lan": {"Address": ..., "Port": ...}}`."""
    if not value:
        return None
    if not isinstance(value, dict):
        raise UnknownField("Request decode failed: TaggedAddresses must be an object")
    out: dict[str, ServiceAddress] = {}
    for tag, addr in value.items():
        decoded = _struct(addr, f"TaggedAddresses.{tag}", {"Address": str, "Port": int})
        out[tag] = ServiceAddress(Address=decoded["Address"], Port=decoded["Port"])
    return out


def locality(value: Any) -> Locality | None:
    """A service's Locality (`{"Region", "Zone"}`), or None when not given."""
    if not value:
        return None
    decoded = _struct(value, "Locality", {"Region": str, "Zone": str})
    return Locality(Region=decoded["Region"], Zone=decoded["Zone"])
