"""An agent's security settings: ACLs, TLS on the HTTPS port, the server-to-server key.

Flags (which win) and config files, in Consul's names:

    acl { enabled = true  default_policy = "deny"  enable_key_list_policy = false  token_ttl = "30s"
          tokens { initial_management = "..."  default = "..."  dns = "..."  agent = "..." } }
    ports { https = 8501 }   cert_file / key_file / ca_file / ca_path / verify_incoming
    tls { defaults { cert_file ... verify_incoming } https { ... } }      (newer layout)
    encrypt = "..."          (Raft traffic encrypted with pysyncobj's password encryption)

`enforcer_for(config, state_of)` is the ACL enforcer of the agent's `ServerContext`;
`Security` starts the rest: the built-in ACL records (applied once a leader exists) and
the HTTPS listener.
Nothing here logs a token or a key.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from meshctl.durations import parse_duration
from meshctl.flags import FlagParser, parse_bool
from meshctl.server.acl.enforce import ACLEnforcer, ACLSettings
from meshctl.server.commands import ACLInit
from meshctl.server.context import AllowAll, Enforcer

if TYPE_CHECKING:
    import argparse

    from meshctl.server.cluster import ServerCluster
    from meshctl.server.run import AgentConfig
    from meshctl.server.state import State
    from meshctl.server.store import Store

log = logging.getLogger(__name__)

class SecurityError(ValueError):
    """Settings the agent cannot start with (bad policy name, missing certificate...)."""


@dataclass
class SecurityConfig:
    """ACL, TLS and encryption settings of one agent."""

    acl: ACLSettings = field(default_factory=ACLSettings)
    https_port: int = 0  # 0: no HTTPS listener
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    ca_path: str = ""
    verify_incoming: bool = False
    encrypt: str = field(default="", repr=False)


def add_flags(p: FlagParser) -> None:
    """The agent's ACL, TLS and encryption flags."""
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
    p.flag("https-port", type=int, default=None, help="HTTPS API port (needs -tls-cert-file, -tls-key-file)")
    p.flag("tls-cert-file", default=None, help="PEM certificate of the HTTPS listener")
    p.flag("tls-key-file", default=None, help="PEM key of the HTTPS listener")
    p.flag("tls-ca-file", default=None, help="CA certificate verifying client certificates")
    p.flag("tls-ca-path", default=None, help="directory of CA certificates")
    p.bool_flag("tls-verify-incoming", default=None, help="HTTPS clients must present a certificate signed by the CA")
    p.flag("encrypt", default=None, help="shared key encrypting server-to-server (Raft) traffic")


def _get(settings: dict[str, Any], *path: str) -> Any:
    from meshctl.server.agent.config import setting

    return setting(settings, *path)


def from_settings(settings: dict[str, Any]) -> SecurityConfig:
    """The security settings of the config files (Consul's names, old and new layouts)."""
    out = SecurityConfig()
    acl = out.acl
    enabled = _get(settings, "acl", "enabled")
    if enabled is None and _get(settings, "acl_datacenter"):
        enabled = True
    acl.enabled = bool(parse_bool(str(enabled))) if enabled is not None else False
    acl.default_policy = str(_get(settings, "acl", "default_policy") or _get(settings, "acl_default_policy")
                             or "allow")
    key_list = _get(settings, "acl", "enable_key_list_policy")
    acl.enable_key_list_policy = bool(parse_bool(str(key_list))) if key_list is not None else False
    acl.initial_management = str(_get(settings, "acl", "tokens", "initial_management")
                                 or _get(settings, "acl", "tokens", "master") or _get(settings, "acl_master_token")
                                 or "")
    for name, legacy in (("default", "acl_token"), ("agent", "acl_agent_token"), ("dns", None)):
        value = _get(settings, "acl", "tokens", name) or (legacy and _get(settings, legacy))
        if value:
            acl.tokens[name] = str(value)
    ttl = _get(settings, "acl", "token_ttl")
    if ttl is not None:
        acl.token_ttl = _duration(ttl)
    out.https_port = int(_get(settings, "ports", "https") or 0)
    for attr in ("cert_file", "key_file", "ca_file", "ca_path", "verify_incoming"):
        value = _get(settings, "tls", "https", attr)
        if value is None:
            value = _get(settings, "tls", "defaults", attr)
        if value is None:
            value = _get(settings, attr)
        if attr == "verify_incoming" and value is None:
            value = _get(settings, "verify_incoming_https")
        if value is not None:
            setattr(out, attr, bool(parse_bool(str(value))) if attr == "verify_incoming" else str(value))
    out.encrypt = str(_get(settings, "encrypt") or "")
    return out


def _duration(value: Any) -> float:
    try:
        seconds = parse_duration(value if isinstance(value, (int, float)) else str(value))
    except ValueError:
        raise SecurityError(f"Invalid ACL token TTL: {value!r}") from None
    if seconds < 0:
        raise SecurityError(f"Invalid ACL token TTL: {value!r}")
    return seconds


def apply_args(cfg: AgentConfig, args: argparse.Namespace) -> None:
    """Flags over config files (`cfg.options`) into `cfg.security` (run.AgentConfig)."""
    sec = from_settings(cfg.options.files.settings)
    if args.acl_enabled is not None:
        sec.acl.enabled = bool(args.acl_enabled)
    if args.acl_default_policy is not None:
        sec.acl.default_policy = args.acl_default_policy
    if args.acl_enable_key_list_policy is not None:
        sec.acl.enable_key_list_policy = bool(args.acl_enable_key_list_policy)
    if args.acl_initial_management is not None:
        sec.acl.initial_management = args.acl_initial_management
    if args.acl_token_ttl is not None:
        sec.acl.token_ttl = _duration(args.acl_token_ttl)
    for name, value in (("default", args.acl_token), ("dns", args.acl_token_dns), ("agent", args.acl_agent_token)):
        if value is not None:
            sec.acl.tokens[name] = value
    for attr, value in (("https_port", args.https_port), ("cert_file", args.tls_cert_file),
                        ("key_file", args.tls_key_file), ("ca_file", args.tls_ca_file), ("ca_path", args.tls_ca_path),
                        ("encrypt", args.encrypt)):
        if value is not None:
            setattr(sec, attr, value)
    if args.tls_verify_incoming is not None:
        sec.verify_incoming = bool(args.tls_verify_incoming)
    validate(sec)
    cfg.security = sec


def validate(sec: SecurityConfig) -> None:
    """Refuse settings Consul refuses."""
    if sec.acl.default_policy not in ("allow", "deny"):
        raise SecurityError(f"Invalid ACL default policy: {sec.acl.default_policy!r} (want allow or deny)")
    if sec.https_port and not (sec.cert_file and sec.key_file):
        raise SecurityError("HTTPS port set but no -tls-cert-file / -tls-key-file")
    if sec.verify_incoming and not (sec.ca_file or sec.ca_path):
        raise SecurityError("VerifyIncoming set, and no CA certificate provided!")


def agent_headers(cfg: AgentConfig) -> dict[str, str]:
    """Headers of an agent's own requests to the servers: its agent token (else the default token)."""
    tokens = cfg.security.acl.tokens
    token = tokens.get("agent") or tokens.get("default")
    return {"X-Consul-Token": token} if token else {}


def encryption_key(cfg: AgentConfig) -> str | None:
    """The -encrypt key of an agent config (run.AgentConfig), None when traffic is not encrypted."""
    sec = cfg.security
    if not sec.encrypt:
        return None
    try:
        import cryptography  # noqa: F401  (pysyncobj's encryption needs it)
    except ImportError:
        raise SecurityError("-encrypt needs the 'cryptography' package (pip install cryptography)") from None
    return str(sec.encrypt)


def server_ssl_context(sec: SecurityConfig) -> ssl.SSLContext:
    """The HTTPS listener's TLS context (client certificates required with verify_incoming)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(sec.cert_file, sec.key_file)
        if sec.ca_file or sec.ca_path:
            ctx.load_verify_locations(cafile=sec.ca_file or None, capath=sec.ca_path or None)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityError(f"Failed to load TLS certificates: {exc}") from None
    ctx.verify_mode = ssl.CERT_REQUIRED if sec.verify_incoming else ssl.CERT_NONE
    return ctx


def enforcer_for(config: SecurityConfig, state_of: Callable[[], State]) -> Enforcer:
    """The ACL enforcer of a server or -dev agent: `ACLEnforcer` with ACLs on, else `AllowAll`."""
    if config.acl.enabled:
        return ACLEnforcer(config.acl, state_of)
    return AllowAll(config.acl.default_policy)  # its default policy still answers in the header


class Security:
    """Wires a `SecurityConfig` into a running agent (run.Agent): HTTPS, the built-in ACL records."""

    def __init__(self, config: SecurityConfig, store: Store, acl: Enforcer,
                 cluster: ServerCluster | None = None) -> None:
        self.config = config
        self.store = store
        self.acl = acl
        self.cluster = cluster
        self._site: web.TCPSite | None = None

    def init_command(self) -> ACLInit:
        """The command writing the built-in ACL records (and the initial management token)."""
        if self.config.acl.initial_management:
            return ACLInit({"AccessorID": str(uuid.uuid4()), "SecretID": self.config.acl.initial_management})
        return ACLInit()

    async def start(self, runner: web.AppRunner, host: str) -> None:
        """HTTPS listener; the built-in ACL records once a leader exists."""
        if self.config.https_port:
            self._site = web.TCPSite(runner, host, self.config.https_port, ssl_context=server_ssl_context(self.config),
                                     reuse_address=True, backlog=1024)
            await self._site.start()
            log.info("HTTPS API on %s:%d%s", host, self.config.https_port,
                     " (client certificates required)" if self.config.verify_incoming else "")
        if self.acl.enabled:
            if self.cluster is None:
                await self._init_acl()
            else:
                self.cluster.spawn(self._init_acl())

    async def _init_acl(self) -> None:
        store = self.store
        while True:
            try:
                if not hasattr(store, "wait_leader") or await store.wait_leader(30):
                    result = await store.apply(self.init_command())
                    if isinstance(result, dict) and result.get("Error"):
                        log.error("ACL initialisation: %s", result["Error"])
                    else:
                        log.info("ACLs enabled (default policy %s)", self.config.acl.default_policy)
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("writing the built-in ACL records failed (%s); retrying", exc)
            await asyncio.sleep(0.5)
