"""registrator's SERVICE_* metadata: env and labels → per-port attributes, tags, checks, Meta.

Rules (gliderlabs/registrator bridge/util.go and consul/consul.go, tools.md §2):

* container env entries come first, then labels, so a label beats env for the same key;
* `SERVICE_<KEY>` applies to every port, `SERVICE_<port>_<KEY>` only to that exposed port and
  beats the generic form; keys are lower-cased (`SERVICE_8080_NAME` → `name` for port 8080);
* `id`, `name`, `tags` (and `ignore`) are consumed; everything else becomes service Meta
  (the `check_*` keys included, as registrator's Consul adapter sends them);
* one health check per service from the `check_*` keys, first match wins in registrator's order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "SERVICE_"
CONSUMED = ("id", "name", "tags", "ignore")
DEFAULT_CHECK_INTERVAL = "10s"

# Consul's limits on service Meta (agent/structs: validateMetaPair).
_META_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
META_MAX_PAIRS = 64
META_MAX_VALUE = 512


def service_metadata(env: Iterable[str] | None, labels: Mapping[str, str] | None,
                     port: str) -> tuple[dict[str, str], set[str]]:
    """The SERVICE_* attributes that apply to exposed `port`, and the keys set port-specifically."""
    items: list[tuple[str, str]] = []
    for entry in env or ():
        key, sep, value = entry.partition("=")
        if sep:
            items.append((key, value))
    items.extend((labels or {}).items())
    generic: dict[str, str] = {}
    specific: dict[str, str] = {}
    for key, value in items:
        if not key.startswith(PREFIX) or len(key) == len(PREFIX):
            continue
        name = key[len(PREFIX):].lower()
        head, sep, rest = name.partition("_")
        if sep and head.isdigit() and rest:
            if head == port:
                specific[rest] = value
            continue
        generic[name] = value
    return {**generic, **specific}, set(specific)


def split_tags(value: str) -> list[str]:
    """A comma-separated tag list where `\\,` is a literal comma; empty items are dropped."""
    if not value:
        return []
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",") for p in parts if p]


def combine_tags(*parts: str) -> list[str]:
    """registrator's combineTags: every part split with `split_tags`, in order, duplicates dropped."""
    out: list[str] = []
    for part in parts:
        for tag in split_tags(part):
            if tag not in out:
                out.append(tag)
    return out


def service_meta(attrs: Mapping[str, str]) -> dict[str, str]:
    """The attributes Consul accepts as service Meta (invalid keys and long values are logged and dropped)."""
    meta: dict[str, str] = {}
    for key, value in sorted(attrs.items()):
        if key in CONSUMED:
            continue
        if not _META_KEY.match(key) or key.startswith("consul-"):
            log.warning("SERVICE_%s: not a valid Consul meta key; ignored", key.upper())
            continue
        if len(value) > META_MAX_VALUE:
            log.warning("SERVICE_%s: value longer than %d characters; ignored", key.upper(), META_MAX_VALUE)
            continue
        if len(meta) >= META_MAX_PAIRS:
            log.warning("more than %d SERVICE_* attributes; %s and later ignored", META_MAX_PAIRS, key)
            break
        meta[key] = value
    return meta


def build_check(attrs: Mapping[str, str], ip: str, port: int, *, container_id: str = "") -> dict[str, Any] | None:
    """The one Consul check a service's `check_*` attributes describe, or None.

    Order as registrator's Consul adapter: http, https, cmd (a Consul docker check: the
    command runs inside the container), script ($SERVICE_IP/$SERVICE_PORT substituted),
    ttl, tcp, grpc.
    """
    check: dict[str, Any] = {}
    with_timeout = False
    if path := attrs.get("check_http"):
        check["HTTP"] = f"http://{_host(ip)}:{port}{path}"
        if method := attrs.get("check_http_method"):
            check["Method"] = method
        with_timeout = True
    elif path := attrs.get("check_https"):
        check["HTTP"] = f"https://{_host(ip)}:{port}{path}"
        if method := attrs.get("check_https_method"):
            check["Method"] = method
        with_timeout = True
    elif (cmd := attrs.get("check_cmd")) and container_id:
        check["DockerContainerID"] = container_id
        check["Shell"] = "/bin/sh"
        check["Args"] = ["/bin/sh", "-c", cmd]
    elif script := attrs.get("check_script"):
        script = script.replace("$SERVICE_IP", ip).replace("$SERVICE_PORT", str(port))
        check["Args"] = ["/bin/sh", "-c", script]
    elif ttl := attrs.get("check_ttl"):
        check["TTL"] = ttl
    elif attrs.get("check_tcp"):
        check["TCP"] = f"{_host(ip)}:{port}"
        with_timeout = True
    elif attrs.get("check_grpc"):
        check["GRPC"] = f"{_host(ip)}:{port}"
        if attrs.get("check_grpc_use_tls"):
            check["GRPCUseTLS"] = attrs["check_grpc_use_tls"].lower() in ("1", "true", "yes")
        with_timeout = True
    else:
        return None
    if "TTL" not in check:
        check["Interval"] = attrs.get("check_interval") or DEFAULT_CHECK_INTERVAL
    if with_timeout and attrs.get("check_timeout"):
        check["Timeout"] = attrs["check_timeout"]
    if attrs.get("check_tls_skip_verify"):
        check["TLSSkipVerify"] = attrs["check_tls_skip_verify"].lower() in ("1", "true", "yes")
    if status := attrs.get("check_initial_status"):
        check["Status"] = status
    if after := attrs.get("check_deregister_after"):
        check["DeregisterCriticalServiceAfter"] = after
    return check


def _host(ip: str) -> str:
    """An address as it goes in a URL or host:port (IPv6 in brackets)."""
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip
