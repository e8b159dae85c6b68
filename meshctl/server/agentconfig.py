"""`meshctl agent`'s configuration: its flags, and the one function turning flags + files into an AgentConfig.

The flags are one more source in the schema's shape (agent/schema.py), merged after the
config files as Consul merges its command line (agent/config.py): a flag overrides a
file's value, a repeatable flag (-retry-join, -recursor) adds to the files' list.
`config_from_args(argv)` is the only place an AgentConfig is built; `startup_problem(cfg)`
is what a process must also check before it starts (Consul's data_dir rules).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from meshctl.configfile import FORMATS, ConfigError
from meshctl.flags import FlagParser, parse_bool
from meshctl.server.agent.config import FileConfig, load
from meshctl.server.agent.runtime import validate_definitions
from meshctl.server.agent.schema import LOG_LEVELS, AgentSettings
from meshctl.server.security import SecurityConfig, SecurityError, security_config

DEFAULT_PORTS = {"http": 8500, "dns": 8600, "server": 8300, "serf_lan": 8301}


@dataclass
class AgentOptions:
    """The agent-side settings (agent/runtime.py): where config came from, checks, anti-entropy."""

    config_sources: list[tuple[str, str]] = field(default_factory=list)  # ("file" | "dir", path), in flag order
    config_format: str | None = None
    flags: dict[str, Any] = field(default_factory=dict)  # the flags' source, merged again on reload
    join: list[str] = field(default_factory=list)  # -join / start_join
    enable_script_checks: bool = False
    enable_local_script_checks: bool = False
    node_meta: dict[str, str] = field(default_factory=dict)
    ae_interval: float = 60.0
    files: FileConfig = field(default_factory=FileConfig)


@dataclass
class AgentConfig:
    """Settings of one agent process (defaults < config files < flags)."""

    dev: bool = False
    server: bool = False
    node: str = field(default_factory=socket.gethostname)
    datacenter: str = "dc1"
    bind: str = "127.0.0.1"
    client: str = "127.0.0.1"
    advertise: str = ""  # the address other nodes and the catalog know this node by (default: bind)
    http_port: int = 8500  # a port of -1 (Consul's "disabled"): no such listener
    dns_port: int = 8600
    server_port: int = 8300
    serf_port: int = 8301
    log_level: str = "info"
    options: AgentOptions = field(default_factory=AgentOptions)  # config files, checks, DNS (agent/runtime.py)
    security: SecurityConfig = field(default_factory=SecurityConfig)  # ACLs, TLS, -encrypt (security.py)
    # replicated servers (raft.py, cluster.py)
    data_dir: str | None = None
    bootstrap_expect: int = 0
    retry_join: list[str] = field(default_factory=list)
    retry_join_wan: list[str] = field(default_factory=list)  # servers of other datacenters (wan.py)
    sync_writes: bool | None = None  # default: on for -server, off for -dev
    raft_snapshot_threshold: int = 8192
    ui: bool = False  # the web UI at /ui/ (http/ui.py): -ui, ui_config.enabled; default on for -dev
    raft_multiplier: int | None = None  # -raft-multiplier / performance { raft_multiplier } (1..10)
    settings: AgentSettings = field(default_factory=AgentSettings)  # everything, typed (autopilot, limits...)


class _InOrder(argparse.Action):
    """-config-file and -config-dir: kept in one list in command-line order (Consul reads them so)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        kind = "dir" if self.dest == "config_dir" else "file"
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), values])
        if getattr(namespace, "config_sources", None) is None:
            namespace.config_sources = []
        namespace.config_sources.append((kind, values))


def build_parser() -> FlagParser:
    """Every flag of `meshctl agent` (Consul's names); none has a default here: the schema's apply."""
    p = FlagParser(prog="meshctl agent", description="Run a meshctl agent (dev store, server or client).")
    p.bool_flag("dev", help="in-memory single server on 127.0.0.1, for development")
    p.bool_flag("server", default=None, help="run as a server")
    p.bool_flag("bootstrap", default=None, help="a server that elects itself without waiting for others")
    p.flag("bootstrap-expect", type=int, default=None, help="servers to wait for before bootstrapping Raft")
    p.flag("node", help="node name (default: hostname)")
    p.flag("datacenter", "dc", default=None, help="datacenter (default dc1)")
    p.flag("bind", default=None, help="address for server-to-server traffic (default 127.0.0.1)")
    p.flag("client", default=None, help="address the HTTP and DNS interfaces listen on (default 127.0.0.1)")
    p.flag("advertise", default=None, help="address this node is known by (default: -bind)")
    p.flag("http-port", type=int, default=None, help="HTTP API port (default 8500; -1: none)")
    p.flag("dns-port", type=int, default=None, help="DNS port (default 8600; -1 or 0: none)")
    p.flag("server-port", type=int, default=None, help="Raft port of a server (default 8300)")
    p.flag("serf-port", "serf-lan-port", dest="serf_port", type=int, default=None, help="serf (discovery) port (default 8301)")
    p.flag("https-port", type=int, default=None, help="HTTPS API port (needs -tls-cert-file, -tls-key-file)")
    p.flag("log-level", default=None, type=str.lower, choices=list(LOG_LEVELS), help="default info")
    p.flag("data-dir", help="where a server keeps its Raft journal and snapshots")
    p.flag("retry-join", action="append", default=[], help="serf address of another server (repeatable)")
    p.flag("retry-join-wan", "join-wan", dest="retry_join_wan", action="append", default=[],
           help="serf address of a server of another datacenter (a -dev server: its HTTP address); repeatable")
    p.flag("join", action="append", default=[], help="address of a server to join (serf or HTTP address)")
    p.bool_flag("sync-writes", default=None, help="fsync the journal before acknowledging a write "
                "(default: on for -server, off for -dev)")
    p.flag("raft-snapshot-threshold", type=int, default=None, help="Raft log entries between snapshots (default 8192)")
    # a Go boolean flag (-ui, -ui=false) whose absence is seen: config files and -dev decide then
    p.flag("ui", nargs="?", const=True, default=None, type=parse_bool,
           help="serve the web UI at /ui/ (default: on for -dev; config files: ui_config { enabled = true })")
    p.flag("raft-multiplier", type=int, default=None, help="scale Raft's election and leader step-down "
           "timeouts, 1 (fastest failover) to 10 (default 3; config file: performance { raft_multiplier })")
    # config files, checks, DNS
    p.flag("config-dir", action=_InOrder, default=[], help="directory of .json/.hcl/.yaml config files (repeatable)")
    p.flag("config-file", action=_InOrder, default=[], help="a config file (repeatable)")
    p.flag("config-format", default=None, choices=list(FORMATS),
           help="read every config file in this format, whatever its extension")
    p.bool_flag("enable-script-checks", default=None, help="allow script checks from config files and the API")
    p.bool_flag("enable-local-script-checks", default=None, help="allow script checks from config files only")
    p.flag("domain", default=None, help="DNS domain (default consul.)")
    p.flag("alt-domain", default=None, help="alternate DNS domain")
    p.flag("recursor", action="append", default=[], help="upstream DNS server for other names (repeatable)")
    p.bool_flag("dns-only-passing", default=None, help="DNS answers only passing instances")
    p.flag("node-meta", action="append", default=[], help="key:value metadata of this node (repeatable)")
    p.flag("ae-interval", default=None, help="anti-entropy period (default 60s)")
    # ACLs, TLS, -encrypt (security.py)
    p.bool_flag("acl-enabled", default=None, help="enforce ACLs on every request")
    p.flag("acl-default-policy", default=None, choices=["allow", "deny"], help="allow (default) or deny")
    p.flag("acl-initial-management", "acl-master-token", default=None,
           help="SecretID of a management token created at startup")
    p.flag("acl-token", default=None, help="default token for requests without one")
    p.flag("acl-token-dns", default=None, help="token DNS answers are filtered with (default: -acl-token)")
    p.flag("acl-agent-token", default=None, help="token of the agent's own requests")
    p.bool_flag("acl-enable-key-list-policy", default=None, help="KV listings need the 'list' policy")
    p.flag("acl-token-ttl", default=None,
           help="client agents: how long a token resolved by the servers is cached (default 30s)")
    p.flag("tls-cert-file", default=None, help="PEM certificate of the HTTPS listener")
    p.flag("tls-key-file", default=None, help="PEM key of the HTTPS listener")
    p.flag("tls-ca-file", default=None, help="CA certificate verifying client certificates")
    p.flag("tls-ca-path", default=None, help="directory of CA certificates")
    p.bool_flag("tls-verify-incoming", default=None, help="HTTPS clients must present a certificate signed by the CA")
    p.flag("encrypt", default=None, help="Raft traffic encryption key: 16, 24 or 32 bytes in base64")
    return p


# flag dest -> where it goes in the schema
_FLAG_PATHS: dict[str, tuple[str, ...]] = {
    "server": ("server",), "bootstrap": ("bootstrap",), "bootstrap_expect": ("bootstrap_expect",),
    "node": ("node_name",), "datacenter": ("datacenter",), "bind": ("bind_addr",), "client": ("client_addr",),
    "advertise": ("advertise_addr",), "http_port": ("ports", "http"), "dns_port": ("ports", "dns"),
    "server_port": ("ports", "server"), "serf_port": ("ports", "serf_lan"), "https_port": ("ports", "https"),
    "log_level": ("log_level",), "data_dir": ("data_dir",), "retry_join": ("retry_join",),
    "retry_join_wan": ("retry_join_wan",), "join": ("start_join",), "sync_writes": ("sync_writes",),
    "raft_snapshot_threshold": ("raft_snapshot_threshold",), "ui": ("ui_config", "enabled"),
    "raft_multiplier": ("performance", "raft_multiplier"), "enable_script_checks": ("enable_script_checks",),
    "enable_local_script_checks": ("enable_local_script_checks",), "domain": ("domain",),
    "alt_domain": ("alt_domain",), "recursor": ("recursors",), "dns_only_passing": ("dns_config", "only_passing"),
    "ae_interval": ("ae_interval",), "acl_enabled": ("acl", "enabled"), "acl_default_policy": ("acl", "default_policy"),
    "acl_initial_management": ("acl", "tokens", "initial_management"), "acl_token": ("acl", "tokens", "default"),
    "acl_token_dns": ("acl", "tokens", "dns"), "acl_agent_token": ("acl", "tokens", "agent"),
    "acl_enable_key_list_policy": ("acl", "enable_key_list_policy"), "acl_token_ttl": ("acl", "token_ttl"),
    "tls_cert_file": ("tls", "https", "cert_file"), "tls_key_file": ("tls", "https", "key_file"),
    "tls_ca_file": ("tls", "https", "ca_file"), "tls_ca_path": ("tls", "https", "ca_path"),
    "tls_verify_incoming": ("tls", "https", "verify_incoming"), "encrypt": ("encrypt",),
}


def flag_source(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that were given, as one more config source in the schema's shape."""
    out: dict[str, Any] = {}
    for dest, path in _FLAG_PATHS.items():
        value = getattr(args, dest)
        if value is None or value == []:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    meta: dict[str, str] = {}
    for item in args.node_meta:
        key, sep, value = item.partition(":")
        if not sep:
            raise ConfigError(f"-node-meta must be key:value, got {item!r}")
        meta[key] = value
    if meta:
        out["node_meta"] = meta
    return out


def config_from_args(argv: list[str]) -> AgentConfig:
    """The agent's whole configuration from its command line (and the files it names)."""
    args = build_parser().parse_args(argv)
    flags = flag_source(args)
    sources = list(getattr(args, "config_sources", None) or [])
    files = load(sources, args.config_format, flags)
    return agent_config(files, flags, sources, args.config_format, dev=bool(args.dev))


def agent_config(files: FileConfig, flags: dict[str, Any], sources: list[tuple[str, str]], fmt: str | None,
                 dev: bool = False) -> AgentConfig:
    """An AgentConfig from the merged settings (Consul's defaults and its rules between settings)."""
    s = files.settings
    server = dev or bool(s.server)
    expect = s.bootstrap_expect or 0
    if s.bootstrap and expect:
        raise ConfigError("'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive")
    if dev and expect:
        raise ConfigError("'bootstrap_expect > 0' not allowed in dev mode")
    if (s.bootstrap or expect) and not server:
        raise ConfigError(f"'{'bootstrap = true' if s.bootstrap else 'bootstrap_expect > 0'}' requires 'server = true'")
    if s.bootstrap:
        expect = 1

    def port(name: str) -> int:
        value = getattr(s.ports, name)
        return DEFAULT_PORTS[name] if value is None else int(value)

    try:
        security = security_config(s)
    except SecurityError as exc:
        raise ConfigError(str(exc)) from None
    if security.encrypt:
        check_encrypt_key(security.encrypt)
    opts = AgentOptions(config_sources=sources, config_format=fmt, flags=flags, join=list(s.start_join or []),
                        enable_script_checks=bool(s.enable_script_checks),
                        enable_local_script_checks=bool(s.enable_local_script_checks),
                        node_meta=dict(s.node_meta or {}), ae_interval=60.0 if s.ae_interval is None else s.ae_interval,
                        files=files)
    validate_definitions(files, opts)  # a bad service or check stops the agent before it serves
    ui = s.ui_config.enabled if s.ui_config.enabled is not None else s.ui if s.ui is not None else dev
    return AgentConfig(
        dev=dev, server=server, node=s.node_name or socket.gethostname(), datacenter=s.datacenter or "dc1",
        bind=s.bind_addr or "127.0.0.1", client=s.client_addr or "127.0.0.1", advertise=s.advertise_addr or "",
        http_port=port("http"), dns_port=port("dns"), server_port=port("server"), serf_port=port("serf_lan"),
        log_level=s.log_level or "info", options=opts, security=security, data_dir=s.data_dir,
        bootstrap_expect=expect, retry_join=list(dict.fromkeys(s.retry_join or [])),
        retry_join_wan=list(dict.fromkeys([*(s.retry_join_wan or []), *(s.start_join_wan or [])])),
        sync_writes=s.sync_writes, raft_snapshot_threshold=s.raft_snapshot_threshold or 8192, ui=bool(ui),
        raft_multiplier=s.performance.raft_multiplier, settings=s)


def check_encrypt_key(key: str) -> None:
    """Consul's rule: the key is base64 of 16, 24 or 32 bytes (`consul keygen` makes 32)."""
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("Failed to decode encryption key: the -encrypt key is not valid base64 "
                          "(make one with `meshctl keygen`)") from None
    if len(raw) not in (16, 24, 32):
        raise ConfigError(f"Invalid encryption key length: {len(raw)} bytes (want 16, 24 or 32)")


def startup_problem(cfg: AgentConfig, create: bool = True) -> str | None:
    """What stops this agent before it starts, in one line; None: nothing.

    A client agent needs a server to join; a server (not -dev) needs a data dir it can write,
    created when missing (as Consul does) unless `create` is false (`meshctl validate`).
    """
    if not cfg.server and not cfg.options.join and not cfg.retry_join:
        return ("a client agent needs -join (or -retry-join) with a server's address; "
                "use -server or -dev to run a server")
    if not cfg.server or cfg.dev:
        return None
    path = cfg.data_dir
    if not path:
        return "data_dir cannot be empty: a server needs -data-dir (or data_dir in a config file)"
    if os.path.exists(path) and not os.path.isdir(path):
        return f"data_dir {path!r} is not a directory"
    if not create:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        return f"data_dir {path!r} cannot be created: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"data_dir {path!r} is not writable"
    return None
