"""Consul's JSON shapes of stored records, as the read endpoints show them."""

from __future__ import annotations

import copy
from typing import Any

from meshctl.durations import format_duration, parse_duration
from meshctl.server.state.base import NODE_MAINT_CHECK_ID, SERVICE_MAINT_PREFIX, STATUS_ORDER, Record


def has_tags(svc: Record, tags: list[str] | None) -> bool:
    """Every requested tag is present (case-insensitive), as Consul's ?tag filter."""
    if not tags:
        return True
    have = {t.lower() for t in svc["Tags"]}
    return all(t.lower() in have for t in tags)


def agent_service_json(svc: Record) -> Record:
    """A service as /v1/health/service and /v1/catalog/node show it."""
    out = copy.deepcopy(svc)
    if not out.get("TaggedAddresses"):
        out.pop("TaggedAddresses", None)
    out["Proxy"] = {"Mode": "", "MeshGateway": {}, "Expose": {}}
    out["Connect"] = {}
    out["PeerName"] = ""
    return out


DEFINITION_DURATIONS = ("Interval", "Timeout", "DeregisterCriticalServiceAfter")


def _duration_text(value: Any) -> Any:
    """A duration as Consul renders it ("10s"); numbers are nanoseconds; zero is "" (omitted)."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = value / 1e9
        elif isinstance(value, str):
            seconds = parse_duration(value) if value else 0.0
        else:
            return value
    except ValueError:
        return value
    return format_duration(seconds) if seconds else ""


def definition_record(raw: Any) -> Record:
    """A check's Definition as Consul stores and shows it (structs.HealthCheckDefinition).

    Its fields are all `omitempty` and its durations print as Go strings, so Go's api client
    sending every field ("HTTP": "", "Header": null, "Interval": "0s") stores nothing for them.
    """
    out: Record = {}
    for key, value in (raw.items() if isinstance(raw, dict) else ()):
        if key in DEFINITION_DURATIONS:
            value = _duration_text(value)
        if value is None or value is False or value in ("", 0, {}, []):
            continue
        out[key] = value
    return out


def service_node_json(node: Record, svc: Record) -> Record:
    """structs.ServiceNode: the node's fields plus the service's, as /v1/catalog/service."""
    out = {
        "ID": node["ID"],
        "Node": node["Node"],
        "Address": node["Address"],
        "Datacenter": node["Datacenter"],
        "TaggedAddresses": copy.deepcopy(node["TaggedAddresses"]),
        "NodeMeta": copy.deepcopy(node["Meta"]),
        "ServiceKind": svc["Kind"],
        "ServiceID": svc["ID"],
        "ServiceName": svc["Service"],
        "ServiceTags": list(svc["Tags"]),
        "ServiceAddress": svc["Address"],
        "ServiceWeights": dict(svc["Weights"]),
        "ServiceMeta": dict(svc["Meta"]),
        "ServicePort": svc["Port"],
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": svc["EnableTagOverride"],
        "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": svc["CreateIndex"],
        "ModifyIndex": svc["ModifyIndex"],
    }
    if svc.get("TaggedAddresses"):
        out["ServiceTaggedAddresses"] = copy.deepcopy(svc["TaggedAddresses"])
    if svc.get("Locality"):
        out["ServiceLocality"] = dict(svc["Locality"])
    return out


def session_json(sess: Record) -> Record:
    out = dict(sess)
    out.setdefault("NodeChecks", [])
    out.setdefault("ServiceChecks", None)
    return out


def aggregated_status(checks: list[Record]) -> str:
    """consul-template's and the agent's aggregate: maintenance, else the worst status."""
    if any(c["CheckID"] == NODE_MAINT_CHECK_ID or c["CheckID"].startswith(SERVICE_MAINT_PREFIX) for c in checks):
        return "maintenance"
    worst = max((STATUS_ORDER.get(c["Status"], 2) for c in checks), default=0)
    return {0: "passing", 1: "warning", 2: "critical"}[worst]
