"""Service and check definitions as users write them: API bodies and config files.

Consul accepts CamelCase (`ServiceID`) and snake_case (`service_id`) field names, durations
as Go strings or nanoseconds, `Check` and `Checks`, `Args` and `ScriptArgs`. Everything is
normalised here once, into the CamelCase shapes the catalog stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshctl.durations import format_duration, parse_duration
from meshctl.server.duration import DurationError, json_duration_ns
from meshctl.server.fields import UnknownField, check_known, locality, service_addresses
from meshctl.server.fields import canonical as normalize

STATUSES = ("passing", "warning", "critical")
# check types meshctl cannot run: refused, never accepted and left critical with no output
UNSUPPORTED_TYPES = {
    "grpc": "gRPC checks are not supported by meshctl: use an http, tcp or script check",
    "h2ping": "H2PING checks are not supported by meshctl: use an http or tcp check",
}


class DefinitionError(ValueError):
    """A definition Consul would refuse; the message is Consul's 400 text."""


def duration_string(value: Any, field_name: str) -> str:
    """A duration as Consul shows it ("10s"): Go's ParseDuration for strings, numbers are nanoseconds."""
    if value is None or value == "" or (value == 0 and not isinstance(value, bool)):
        return ""
    try:
        ns = json_duration_ns(value, f"CheckType.{field_name}")
    except DurationError as exc:
        raise DefinitionError(f"Request decode failed: {exc}") from None
    return format_duration(ns / 1e9)


def duration_seconds(value: str) -> float:
    return parse_duration(value) if value else 0.0


@dataclass
class CheckDefinition:
    """A check as the agent runs it and the catalog stores it."""

    check_id: str
    name: str
    type: str
    status: str = "critical"
    notes: str = ""
    output: str = ""
    service_id: str = ""
    service_name: str = ""
    interval: str = ""
    timeout: str = ""
    ttl: str = ""
    spec: dict[str, Any] = field(default_factory=dict)  # HTTP, Method, Header, Body, TCP, Args, ...

    def catalog_json(self) -> dict[str, Any]:
        """The check as sent in a catalog registration."""
        definition: dict[str, Any] = {}
        for key in ("HTTP", "TLSServerName", "TLSSkipVerify", "Header", "Method", "Body", "TCP", "UDP"):
            if self.spec.get(key):
                definition[key] = self.spec[key]
        if self.interval:
            definition["Interval"] = self.interval
        if self.timeout:
            definition["Timeout"] = self.timeout
        if self.spec.get("DeregisterCriticalServiceAfter"):
            definition["DeregisterCriticalServiceAfter"] = self.spec["DeregisterCriticalServiceAfter"]
        return {
            "CheckID": self.check_id,
            "Name": self.name,
            "Status": self.status,
            "Notes": self.notes,
            "Output": self.output,
            "ServiceID": self.service_id,
            "Type": self.type,
            "Interval": self.interval,
            "Timeout": self.timeout,
            "Definition": definition,
        }


def check_type(spec: dict[str, Any]) -> str:
    if spec.get("TTL"):
        return "ttl"
    for key, kind in (("HTTP", "http"), ("TCP", "tcp"), ("UDP", "udp"), ("GRPC", "grpc"), ("H2PING", "h2ping")):
        if spec.get(key):
            return kind
    if spec.get("DockerContainerID"):
        return "docker"
    if spec.get("Args") or spec.get("ScriptArgs") or spec.get("Script"):
        return "script"
    if spec.get("AliasService") or spec.get("AliasNode"):
        return "alias"
    return ""


def parse_check(raw: Any, service_id: str = "", service_name: str = "", position: int = 0,
                count: int = 1) -> CheckDefinition:
    """A check definition from an API body or config file, with Consul's defaults and checks."""
    if not isinstance(raw, dict):
        raise DefinitionError("Request decode failed: a check must be an object")
    spec = normalize(raw)
    try:
        check_known(spec)
    except UnknownField as exc:
        raise DefinitionError(str(exc)) from None
    if spec.get("ScriptArgs") and not spec.get("Args"):
        spec["Args"] = spec["ScriptArgs"]
    if isinstance(spec.get("Header"), dict):
        spec["Header"] = {k: v if isinstance(v, list) else [v] for k, v in spec["Header"].items()}
    kind = check_type(spec)
    if kind in UNSUPPORTED_TYPES:
        raise DefinitionError(UNSUPPORTED_TYPES[kind])
    interval = duration_string(spec.get("Interval"), "Interval")
    if not kind or (kind not in ("ttl", "alias") and not interval):
        raise DefinitionError("Must provide TTL or Script/DockerContainerID/HTTP/TCP and Interval")
    status = spec.get("Status") or "critical"
    if status not in STATUSES:
        raise DefinitionError("Status for checks must 'passing', 'warning', 'critical'")
    sid = spec.get("ServiceID") or service_id
    check_id = spec.get("CheckID") or spec.get("ID") or ""
    if not check_id:
        if service_id:
            check_id = f"service:{service_id}" + (f":{position + 1}" if count > 1 else "")
        else:
            check_id = spec.get("Name", "")
    name = spec.get("Name") or (f"Service '{service_name}' check" if service_name else check_id)
    if not check_id:
        raise DefinitionError("Missing check name")
    for key in ("DeregisterCriticalServiceAfter",):
        if spec.get(key):
            spec[key] = duration_string(spec[key], key)
    return CheckDefinition(
        check_id=check_id, name=name, type=kind, status=status, notes=spec.get("Notes", ""),
        output=spec.get("Output", ""), service_id=sid, service_name=service_name, interval=interval,
        timeout=duration_string(spec.get("Timeout"), "Timeout"), ttl=duration_string(spec.get("TTL"), "TTL"),
        spec=spec,
    )


def parse_service(raw: Any) -> tuple[dict[str, Any], list[CheckDefinition]]:
    """A service definition: the agent's service record and its checks."""
    if not isinstance(raw, dict):
        raise DefinitionError("Request decode failed: a service must be an object")
    spec = normalize(raw)
    try:
        check_known(spec)
    except UnknownField as exc:
        raise DefinitionError(str(exc)) from None
    name = spec.get("Name") or spec.get("Service") or ""
    if not name:
        raise DefinitionError("Missing service name")
    if spec.get("Address") in ("0.0.0.0", "::", "[::]"):
        raise DefinitionError("Invalid service address")
    port = spec.get("Port") or 0
    if not isinstance(port, int) or isinstance(port, bool):
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise DefinitionError("Request decode failed: Port must be a number") from None
    tags = spec.get("Tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise DefinitionError("Request decode failed: Tags must be a list of strings")
    sid = spec.get("ID") or name
    weights = spec.get("Weights") or {"Passing": 1, "Warning": 1}
    try:
        addresses, where = service_addresses(spec.get("TaggedAddresses")), locality(spec.get("Locality"))
    except UnknownField as exc:
        raise DefinitionError(str(exc)) from None
    service = {
        "ID": sid,
        "Service": name,
        "Tags": list(tags),
        "Meta": dict(spec.get("Meta") or {}),
        "Port": port,
        "Address": spec.get("Address", ""),
        "TaggedAddresses": addresses,
        "Weights": {"Passing": weights.get("Passing", 1), "Warning": weights.get("Warning", 1)},
        "EnableTagOverride": bool(spec.get("EnableTagOverride", False)),
        "Kind": spec.get("Kind", ""),
    }
    if where is not None:
        service["Locality"] = where
    raw_checks = list(spec.get("Checks") or [])
    if spec.get("Check"):
        raw_checks.insert(0, spec["Check"])
    checks = [parse_check(c, sid, name, i, len(raw_checks)) for i, c in enumerate(raw_checks)]
    return service, checks
