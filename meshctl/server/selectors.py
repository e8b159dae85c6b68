"""The selectors `?filter=` accepts on each endpoint: the fields of the record type Consul filters.

go-bexpr validates a filter against the Go struct the endpoint returns (Consul's filtering
docs list them per endpoint), so `Tags` is no selector of /v1/catalog/services — whose
records are `structs.ServiceNode` (`ServiceName`, `ServiceTags`, `NodeMeta`...) — and a filter
naming it is a 400, not a filter that matches nothing. Fields tagged `bexpr:"-"` in Consul
(raft indexes, check definitions, enterprise meta) are not selectors.
"""

from __future__ import annotations

from typing import Any

from meshctl.server.filter import ANY_KEY, Fields


def _fields(spec: dict[str, Any]) -> Fields:
    """Fields from a nested dict: a name maps to None (a value) or to its own dict of fields."""
    return Fields({name: None if sub is None else (sub if isinstance(sub, Fields) else _fields(sub))
                   for name, sub in spec.items()})


def _names(*names: str) -> dict[str, None]:
    return dict.fromkeys(names)


STRING_MAP = {ANY_KEY: None}  # map[string]string: Meta.<any>
SERVICE_ADDRESSES = {ANY_KEY: _names("Address", "Port")}  # map[string]ServiceAddress
WEIGHTS = _names("Passing", "Warning")
LOCALITY = _names("Region", "Zone")
MESH_GATEWAY = _names("Mode")
PROXY = {
    **_names("DestinationServiceName", "DestinationServiceID", "LocalServiceAddress", "LocalServicePort",
             "LocalServiceSocketPath", "Mode"),
    "TransparentProxy": _names("OutboundListenerPort", "DialedDirectly"),
    "MeshGateway": MESH_GATEWAY,
    "Upstreams": {**_names("DestinationType", "DestinationNamespace", "DestinationPartition", "DestinationPeer",
                           "DestinationName", "Datacenter", "LocalBindAddress", "LocalBindPort",
                           "LocalBindSocketPath", "LocalBindSocketMode", "CentrallyConfigured"),
                  "MeshGateway": MESH_GATEWAY},
    "Expose": {"Checks": None, "Paths": _names("ListenerPort", "Path", "LocalPathPort", "Protocol",
                                               "ParsedFromCheck")},
}
CONNECT = _names("Native")

_NODE = {**_names("ID", "Node", "Address", "Datacenter", "PeerName"), "TaggedAddresses": STRING_MAP,
         "Meta": STRING_MAP}
_AGENT_SERVICE = {
    **_names("Kind", "ID", "Service", "Tags", "Port", "Address", "SocketPath", "EnableTagOverride", "PeerName"),
    "Meta": STRING_MAP, "TaggedAddresses": SERVICE_ADDRESSES, "Weights": WEIGHTS, "Proxy": PROXY,
    "Connect": CONNECT, "Locality": LOCALITY,
}
_HEALTH_CHECK = _names("Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "ServiceName",
                       "ServiceTags", "Type", "Interval", "Timeout", "ExposedPort", "PeerName")

# structs.Node: /v1/catalog/nodes
NODE = _fields(_NODE)
# structs.NodeService: /v1/agent/services, /v1/catalog/node/<n> and node-services/<n> (each service)
AGENT_SERVICE = _fields(_AGENT_SERVICE)
# structs.HealthCheck: /v1/agent/checks, /v1/health/node|checks|state
HEALTH_CHECK = _fields(_HEALTH_CHECK)
# structs.ServiceNode: /v1/catalog/service/<s> and /v1/catalog/services
SERVICE_NODE = _fields({
    **_names("ID", "Node", "Address", "Datacenter", "ServiceKind", "ServiceID", "ServiceName", "ServiceTags",
             "ServiceAddress", "ServicePort", "ServiceSocketPath", "ServiceEnableTagOverride", "PeerName"),
    "TaggedAddresses": STRING_MAP, "NodeMeta": STRING_MAP, "ServiceMeta": STRING_MAP,
    "ServiceTaggedAddresses": SERVICE_ADDRESSES, "ServiceWeights": WEIGHTS, "ServiceProxy": PROXY,
    "ServiceConnect": CONNECT, "ServiceLocality": LOCALITY,
})
# structs.CheckServiceNode: /v1/health/service/<s>
SERVICE_ENTRY = _fields({"Node": _NODE, "Service": _AGENT_SERVICE, "Checks": _HEALTH_CHECK})
