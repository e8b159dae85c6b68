"""gliderlabs/registrator's rules: one Docker container (its inspect JSON) → services.

Pure functions, no engine I/O, so every rule is tested without Docker:
naming (image basename, `-<port>` when a container has several ports), ID
`<hostname>:<container>:<port>[:udp]`, `-internal`, `-ip`, `-explicit`, `-useIpFromLabel`,
templated `-tags`, SERVICE_* metadata (see metadata.py), host networking (exposed ports count
as published on the host), `-ttl` TTL checks.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshctl.registrator.bridge import Service
from meshctl.registrator.metadata import build_check, combine_tags, service_meta, service_metadata

log = logging.getLogger(__name__)

# registrator's bridge.serviceIDPattern: what -cleanup may consider ours.
SERVICE_ID_PATTERN = re.compile(r"^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$")


@dataclass
class DockerConfig:
    """registrator's flags that shape services."""

    hostname: str = ""
    host_ip: str = ""  # -ip
    internal: bool = False  # -internal
    explicit: bool = False  # -explicit
    use_ip_from_label: str = ""  # -useIpFromLabel
    tags: str = ""  # -tags (may be a Go template)
    ttl: int = 0  # -ttl (seconds)
    deregister: str = "always"  # -deregister always|on-success

    def __post_init__(self) -> None:
        self.hostname = self.hostname or socket.gethostname()


@dataclass
class ServicePort:
    """One port of a container, as registrator's ServicePort."""

    exposed_port: str
    port_type: str
    host_port: str
    host_ip: str
    exposed_ip: str


def image_basename(image: str) -> str:
    """`gliderlabs/foobar:1` → `foobar` (registrator's default service name)."""
    base = image.rstrip("/").rsplit("/", 1)[-1]
    return base.split("@", 1)[0].split(":", 1)[0]


def _container_ip(attrs: Mapping[str, Any]) -> str:
    ns = attrs.get("NetworkSettings") or {}
    ip = ns.get("IPAddress") or ""
    if not ip:
        for net in (ns.get("Networks") or {}).values():
            ip = (net or {}).get("IPAddress") or ip
    return ip


def service_ports(attrs: Mapping[str, Any]) -> dict[str, ServicePort]:
    """Exposed ports (published as themselves: how `--net=host` works) overlaid by real bindings."""
    config = attrs.get("Config") or {}
    ns = attrs.get("NetworkSettings") or {}
    mode = (attrs.get("HostConfig") or {}).get("NetworkMode") or ""
    exposed_ip = _container_ip(attrs)
    out: dict[str, ServicePort] = {}

    def make(key: str, bindings: list[Mapping[str, Any]] | None) -> ServicePort:
        port, _, proto = key.partition("/")
        host_port = str(bindings[0].get("HostPort") or "") if bindings else ""
        host_ip = str(bindings[0].get("HostIp") or "") if bindings else ""
        host_ip = host_ip or "0.0.0.0"
        if mode not in ("", "bridge", "default", "host") and not mode.startswith("container:"):
            host_ip = ((ns.get("Networks") or {}).get(mode) or {}).get("IPAddress") or host_ip
        return ServicePort(port, proto or "tcp", host_port, host_ip, exposed_ip)

    for key in config.get("ExposedPorts") or {}:
        port = key.partition("/")[0]
        out[key] = make(key, [{"HostIp": "0.0.0.0", "HostPort": port}])
    for key, bindings in (ns.get("Ports") or {}).items():
        out[key] = make(key, bindings)
    return out


def resolve_host(hostname: str) -> str:
    """The registrator host's address for a 0.0.0.0 binding ('' when it does not resolve)."""
    try:
        return socket.gethostbyname(hostname)
    except OSError:
        return ""


def render_tags(template: str, attrs: Mapping[str, Any]) -> str:
    """registrator's templated -tags, evaluated against the container's inspect object."""
    if "{{" not in template:
        return template
    from meshctl.template.gotemplate import Template, TemplateError

    try:
        return Template(name="tags", text=template, funcs=TAG_FUNCS).execute(attrs)
    except TemplateError as e:
        log.error("-tags template failed for %s: %s", str(attrs.get("Id", ""))[:12], e)
        return ""


def _split_index(s: str, sep: str, i: int) -> str:
    parts = s.split(sep)
    return parts[i] if -len(parts) <= i < len(parts) else ""


TAG_FUNCS: dict[str, Callable[..., Any]] = {
    "toUpper": str.upper,
    "toLower": str.lower,
    "replace": lambda s, old, new: str(s).replace(old, new),
    "join": lambda items, sep: sep.join(str(i) for i in items or []),
    "split": lambda s, sep: str(s).split(sep),
    "splitIndex": _split_index,
    "sIndex": lambda i, items: items[i] if items and -len(items) <= i < len(items) else "",
    "mIndex": lambda key, m: (m or {}).get(key, ""),
    "strSlice": lambda items, start, end: list(items or [])[start:end],
}


def container_services(attrs: Mapping[str, Any], cfg: DockerConfig,
                       resolve: Callable[[str], str] = resolve_host,
                       network_container: Callable[[str], Mapping[str, Any] | None] | None = None) -> list[Service]:
    """The services registrator would register for this container (none if ignored)."""
    config = attrs.get("Config") or {}
    cid = str(attrs.get("Id") or "")
    name = str(attrs.get("Name") or "").lstrip("/")
    ports = service_ports(attrs)
    if not ports:
        log.debug("ignored: %s no published ports", cid[:12])
        return []
    usable = {k: p for k, p in ports.items() if cfg.internal or p.host_port}
    for k, p in ports.items():
        if k not in usable:
            log.debug("ignored: %s port %s not published on host", cid[:12], p.exposed_port)
    forced_tags = render_tags(cfg.tags, attrs) if cfg.tags else ""
    group = len(usable) > 1
    out: list[Service] = []
    for key in sorted(usable, key=_port_sort_key):
        svc = _new_service(attrs, config, cid, name, usable[key], group, cfg, forced_tags, resolve,
                           network_container)
        if svc is not None:
            out.append(svc)
    return out


def _port_sort_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


def _new_service(attrs: Mapping[str, Any], config: Mapping[str, Any], cid: str, cname: str, port: ServicePort,
                 group: bool, cfg: DockerConfig, forced_tags: str, resolve: Callable[[str], str],
                 network_container: Callable[[str], Mapping[str, Any] | None] | None) -> Service | None:
    host_ip = port.host_ip
    if host_ip == "0.0.0.0" and not cfg.host_ip:
        host_ip = resolve(cfg.hostname) or host_ip
    if cfg.host_ip:
        host_ip = cfg.host_ip
    meta, from_port = service_metadata(config.get("Env"), config.get("Labels"), port.exposed_port)
    if meta.get("ignore"):
        return None
    name = meta.get("name") or ""
    if not name:
        if cfg.explicit:
            return None
        name = image_basename(str(config.get("Image") or ""))
    if group and "name" not in from_port:
        name = f"{name}-{port.exposed_port}"
    if cfg.internal:
        # The container's own address and port; a host-network container has no address of
        # its own, so use the host's (registrator would register an empty address).
        ip = port.exposed_ip or host_ip
        number = int(port.exposed_port)
    else:
        ip = host_ip
        number = int(port.host_port)
    if cfg.use_ip_from_label:
        labelled = (config.get("Labels") or {}).get(cfg.use_ip_from_label) or ""
        if labelled:
            ip = labelled.rsplit("/", 1)[0] if "/" in labelled else labelled
        else:
            log.warning("label %r not found on container %s", cfg.use_ip_from_label, cid[:12])
    mode = (attrs.get("HostConfig") or {}).get("NetworkMode") or ""
    if mode.startswith("container:") and network_container is not None:
        other = network_container(mode.split(":", 1)[1])
        if other:
            ip = _container_ip(other) or ip
    service_id = f"{cfg.hostname}:{cname}:{port.exposed_port}"
    extra = ""
    if port.port_type == "udp":
        service_id += ":udp"
        extra = "udp"
    tags = combine_tags(meta.get("tags", ""), forced_tags, extra)
    if meta.get("id"):
        service_id = meta["id"]
    checks = []
    check = build_check(meta, ip, number, container_id=cid)
    if check:
        checks.append(check)
    ttl_check_id = None
    if cfg.ttl > 0:
        ttl_check_id = f"service:{service_id}:ttl"
        checks.append({"CheckID": ttl_check_id, "Name": "registrator TTL", "TTL": f"{cfg.ttl}s",
                       "Status": "passing"})
        if check:
            check.setdefault("CheckID", f"service:{service_id}")
    return Service(id=service_id, name=name, port=number, address=ip, tags=tags, meta=service_meta(meta),
                   checks=checks, ttl_check_id=ttl_check_id)


def legacy_owned(hostname: str) -> Callable[[Mapping[str, Any]], bool]:
    """registrator's -cleanup rule: IDs `<this host>:<container>:<port>[:udp]`."""

    def owned(entry: Mapping[str, Any]) -> bool:
        m = SERVICE_ID_PATTERN.match(str(entry.get("ID", "")))
        return bool(m and m.group(1) == hostname)

    return owned


def should_deregister(policy: str, state: Mapping[str, Any] | None) -> bool:
    """-deregister on a die event: `always`, or `on-success` (exit 0, killed by a signal, or gone)."""
    if policy == "always" or state is None:
        return True
    if state.get("Running") and not state.get("Paused"):
        return False
    code = int(state.get("ExitCode") or 0)
    return code == 0 or bool(code & 128)
