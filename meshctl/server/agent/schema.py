"""The agent's settings as one typed schema (pydantic): config files and flags read the same way.

Consul's names and shapes (https://developer.hashicorp.com/consul/docs/agent/config/config-files).
Decoding is Consul's: weakly typed ("3" is 3, "true" is true, 8500 is "8500" where a string
is wanted), key names matched regardless of case and underscores (Consul's mapstructure
matches case-insensitively; meshctl's earlier `DnsConfig` spelling keeps working), an
HCL block (which python-hcl2 gives as a list of objects) is its object, and a key the
schema does not know is an error. Durations are Go's ("30s", "1m30s"), in seconds here.
Every field defaults to "not set" where its default depends on another setting.

Consul keys meshctl accepts without acting on them are in `ACCEPTED_UNUSED`: a file
written for Consul loads, and the agent logs which of its keys it ignores.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from meshctl.durations import parse_duration


def _duration(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
LOG_LEVELS = ("trace", "debug", "info", "warn", "err", "error")


def fold(name: str) -> str:
    """A key as Consul's decoder compares it: case and underscores aside."""
    return name.replace("_", "").replace("-", "").lower()


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is list:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return False


def _merge_blocks(items: list[Any]) -> Any:
    if items and all(isinstance(i, dict) for i in items):
        out: dict[str, Any] = {}
        for item in items:
            out.update(item)
        return out
    return items


class Block(BaseModel):
    """A config object: unknown keys refused, Consul's weak decoding, HCL blocks as objects."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _consul_shape(cls, data: Any) -> Any:
        if isinstance(data, list):
            data = _merge_blocks(data)
        if not isinstance(data, dict):
            return data
        names = {fold(n): n for n in cls.model_fields}
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = names.get(fold(str(key)), str(key))
            info = cls.model_fields.get(name)
            if info is not None and isinstance(value, list) and not _is_list(info.annotation):
                value = _merge_blocks(value)  # `node_meta { ... }` in HCL
            if info is not None and _is_list(info.annotation) and isinstance(value, (str, dict)):
                value = [value]  # Consul's weak decoding: one value where a list is wanted
            out[name] = value
        return out


class Ports(Block):
    """`ports { }`: -1 disables a listener (Consul's https and grpc default to -1)."""

    http: int | None = None
    https: int | None = None
    dns: int | None = None
    server: int | None = None
    serf_lan: int | None = None
    serf_wan: int | None = None
    grpc: int | None = None
    grpc_tls: int | None = None
    sidecar_min_port: int | None = None
    sidecar_max_port: int | None = None
    expose_min_port: int | None = None
    expose_max_port: int | None = None


class ACLTokens(Block):
    initial_management: str | None = None
    master: str | None = None  # Consul < 1.11's name of initial_management
    default: str | None = None
    agent: str | None = None
    agent_recovery: str | None = None
    agent_master: str | None = None
    dns: str | None = None
    replication: str | None = None
    config_file_service_registration: str | None = None


class ACL(Block):
    enabled: bool | None = None
    default_policy: str | None = None
    down_policy: str | None = None
    enable_key_list_policy: bool | None = None
    enable_token_persistence: bool | None = None
    enable_token_replication: bool | None = None
    token_ttl: Duration | None = None
    token_min_expiration_ttl: Duration | None = None
    token_max_expiration_ttl: Duration | None = None
    policy_ttl: Duration | None = None
    role_ttl: Duration | None = None
    tokens: ACLTokens = Field(default_factory=ACLTokens)

    @field_validator("default_policy")
    @classmethod
    def _policy(cls, value: str | None) -> str | None:
        if value is not None and value not in ("allow", "deny"):
            raise ValueError(f"Invalid ACL default policy: {value!r} (want allow or deny)")
        return value

    @field_validator("token_ttl")
    @classmethod
    def _ttl(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError(f"Invalid ACL token TTL: {value!r}")
        return value


class TLSListener(Block):
    """`tls { defaults | https | internal_rpc | grpc { } }`."""

    ca_file: str | None = None
    ca_path: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify_incoming: bool | None = None
    verify_outgoing: bool | None = None
    verify_server_hostname: bool | None = None
    tls_min_version: str | None = None
    tls_cipher_suites: str | None = None
    use_auto_cert: bool | None = None


class TLS(Block):
    defaults: TLSListener = Field(default_factory=TLSListener)
    https: TLSListener = Field(default_factory=TLSListener)
    internal_rpc: TLSListener = Field(default_factory=TLSListener)
    grpc: TLSListener = Field(default_factory=TLSListener)


class UIConfig(Block):
    enabled: bool | None = None
    dir: str | None = None
    content_path: str | None = None
    metrics_provider: str | None = None
    metrics_proxy: dict[str, Any] | None = None
    dashboard_url_templates: dict[str, str] | None = None


class DNSConfig(Block):
    allow_stale: bool | None = None
    max_stale: Duration | None = None
    node_ttl: Duration | None = None
    service_ttl: dict[str, Duration] | None = None
    only_passing: bool | None = None
    udp_answer_limit: int | None = None
    a_record_limit: int | None = None
    enable_truncate: bool | None = None
    enable_additional_node_meta_txt: bool | None = None
    recursor_timeout: Duration | None = None
    recursor_strategy: str | None = None
    disable_compression: bool | None = None
    soa: dict[str, int] | None = None
    use_cache: bool | None = None
    cache_max_age: Duration | None = None
    prefer_namespace: bool | None = None


class Performance(Block):
    raft_multiplier: int | None = None
    leave_drain_time: Duration | None = None
    rpc_hold_timeout: Duration | None = None

    @field_validator("raft_multiplier")
    @classmethod
    def _multiplier(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 10:
            raise ValueError(f"raft_multiplier must be between 1 and 10, got {value}")
        return value


class Autopilot(Block):
    """`autopilot { }`, Consul's defaults."""

    cleanup_dead_servers: bool = True
    last_contact_threshold: Duration = 0.2
    max_trailing_logs: int = 250
    min_quorum: int = 0
    server_stabilization_time: Duration = 10.0
    redundancy_zone_tag: str = ""
    disable_upgrade_migration: bool = False
    upgrade_version_tag: str = ""


class RequestLimits(Block):
    mode: str | None = None
    read_rate: float | None = None
    write_rate: float | None = None


class Limits(Block):
    """`limits { }`, Consul's defaults."""

    http_max_conns_per_client: int = 200
    https_handshake_timeout: Duration = 5.0
    rpc_handshake_timeout: Duration = 5.0
    rpc_client_timeout: Duration = 60.0
    rpc_max_conns_per_client: int = 100
    rpc_rate: float | None = None
    rpc_max_burst: int = 1000
    kv_max_value_size: int = 512 * 1024
    txn_max_req_len: int = 512 * 1024
    request_limits: RequestLimits = Field(default_factory=RequestLimits)


ACCEPTED_UNUSED = (
    "addresses", "advertise_addr_wan", "audit", "auto_encrypt", "check_update_interval", "connect",
    "disable_host_node_id", "disable_keyring_file", "disable_remote_exec", "disable_update_check", "enable_debug",
    "enable_syslog", "encrypt_verify_incoming", "encrypt_verify_outgoing", "http_config", "leave_on_terminate",
    "log_file", "log_json", "log_rotate_bytes", "log_rotate_duration", "log_rotate_max_files", "node_id",
    "pid_file", "primary_datacenter", "raft_protocol", "reconnect_timeout", "reconnect_timeout_wan",
    "rejoin_after_leave", "retry_interval", "retry_interval_wan", "retry_max", "retry_max_wan", "serf_lan",
    "serf_wan", "server_name", "session_ttl_min", "skip_leave_on_interrupt", "syslog_facility", "telemetry",
    "translate_wan_addrs", "verify_outgoing", "verify_server_hostname",
)


class AgentSettings(Block):
    """Everything an agent can be told, by a config file or a flag (flags are one more source)."""

    # role and identity
    server: bool | None = None
    bootstrap: bool | None = None
    bootstrap_expect: int | None = None
    data_dir: str | None = None
    datacenter: str | None = None
    node_name: str | None = None
    node_meta: dict[str, str] | None = None
    log_level: str | None = None
    # addresses
    bind_addr: str | None = None
    client_addr: str | None = None
    advertise_addr: str | None = None
    ports: Ports = Field(default_factory=Ports)
    # joining
    retry_join: list[str] | None = None
    retry_join_wan: list[str] | None = None
    start_join: list[str] | None = None
    start_join_wan: list[str] | None = None
    # security
    encrypt: str | None = Field(default=None, repr=False)
    acl: ACL = Field(default_factory=ACL)
    tls: TLS = Field(default_factory=TLS)
    acl_datacenter: str | None = None  # Consul < 1.4's ACL keys
    acl_default_policy: str | None = None
    acl_master_token: str | None = None
    acl_token: str | None = None
    acl_agent_token: str | None = None
    ca_file: str | None = None  # Consul < 1.12's TLS keys
    ca_path: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify_incoming: bool | None = None
    verify_incoming_https: bool | None = None
    # web UI, DNS
    ui: bool | None = None
    ui_config: UIConfig = Field(default_factory=UIConfig)
    domain: str | None = None
    alt_domain: str | None = None
    recursors: list[str] | None = None
    recursor: str | None = None
    dns_config: DNSConfig = Field(default_factory=DNSConfig)
    # Raft and its neighbours
    performance: Performance = Field(default_factory=Performance)
    autopilot: Autopilot = Field(default_factory=Autopilot)
    limits: Limits = Field(default_factory=Limits)
    raft_snapshot_threshold: int | None = None
    sync_writes: bool | None = None  # meshctl: fsync the journal before acknowledging (default on for servers)
    # checks and definitions
    enable_script_checks: bool | None = None
    enable_local_script_checks: bool | None = None
    ae_interval: Duration | None = None  # meshctl: the anti-entropy period
    services: list[dict[str, Any]] = Field(default_factory=list)  # `service` / `services` (definitions.py)
    checks: list[dict[str, Any]] = Field(default_factory=list)  # `check` / `checks`
    # Consul keys accepted and not acted on (see ACCEPTED_UNUSED)
    unused: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        """`service` is `services`, `check` is `checks`; Consul-only keys go to `unused`."""
        if not isinstance(data, dict):
            return data
        out: dict[str, Any] = {}
        unused = {fold(k): k for k in ACCEPTED_UNUSED}
        for key, value in data.items():
            folded = fold(str(key))
            if folded in ("service", "services", "check", "checks"):
                name = "services" if folded.startswith("service") else "checks"
                items = value if isinstance(value, list) else [value]
                out[name] = [*out.get(name, []), *[_service_blocks(i) for i in items]]
            elif folded in unused and folded not in {fold(n) for n in cls.model_fields}:
                out.setdefault("unused", {})[unused[folded]] = value
            else:
                out[key] = value
        return out

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r} (want one of {', '.join(LOG_LEVELS)})")
        return value.lower() if value is not None else None

    @field_validator("bootstrap_expect")
    @classmethod
    def _expect(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError(f"bootstrap_expect cannot be negative, got {value}")
        return value


def _service_blocks(item: Any) -> Any:
    """Inside a service: several HCL `check` blocks become its `checks`."""
    if not isinstance(item, dict):
        return item
    out = dict(item)
    check = out.get("check")
    if isinstance(check, list):
        out.pop("check")
        extra = out.get("checks") or []
        out["checks"] = list(check) + (extra if isinstance(extra, list) else [extra])
    return out


def describe(error: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    """A ValidationError as (key path, one-line reason) pairs, in Consul's words where it has them."""
    out = []
    for item in error.errors():
        loc = tuple(item["loc"])
        dotted = ".".join(str(p) for p in loc)
        if item["type"] == "extra_forbidden":
            out.append((loc, f"invalid config key {dotted}"))
            continue
        msg = str(item["msg"]).removeprefix("Value error, ")
        value = item.get("input")
        shown = f" (got {value!r})" if not isinstance(value, (dict, list)) else ""
        out.append((loc, f"{dotted}: {msg}{shown}"))
    return out
