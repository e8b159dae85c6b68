"""An agent's security settings: ACLs, TLS on the HTTPS port, the server-to-server key.

From the agent's merged settings (agentconfig.py: config files, then flags), in Consul's names:

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
from typing import TYPE_CHECKING

from aiohttp import web

from meshctl.server.acl.enforce import ACLEnforcer, ACLSettings
from meshctl.server.commands import ACLInit
from meshctl.server.context import AllowAll, Enforcer

if TYPE_CHECKING:
    from meshctl.server.agent.schema import AgentSettings
    from meshctl.server.agentconfig import AgentConfig
    from meshctl.server.cluster import ServerCluster
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


def security_config(s: AgentSettings) -> SecurityConfig:
    """The security settings of the merged config (flags included), Consul's old and new key names."""
    out = SecurityConfig()
    acl, tokens = out.acl, s.acl.tokens
    acl.enabled = s.acl.enabled if s.acl.enabled is not None else bool(s.acl_datacenter)
    acl.default_policy = s.acl.default_policy or s.acl_default_policy or "allow"
    acl.enable_key_list_policy = bool(s.acl.enable_key_list_policy)
    acl.initial_management = tokens.initial_management or tokens.master or s.acl_master_token or ""
    for name, value in (("default", tokens.default or s.acl_token), ("agent", tokens.agent or s.acl_agent_token),
                        ("dns", tokens.dns)):
        if value:
            acl.tokens[name] = value
    if s.acl.token_ttl is not None:
        acl.token_ttl = s.acl.token_ttl
    for attr in ("token_min_expiration_ttl", "token_max_expiration_ttl"):
        value = getattr(s.acl, attr)
        if value is not None:
            setattr(acl, attr, value)
    out.https_port = max(0, s.ports.https or 0)  # Consul's -1: no HTTPS listener
    for attr in ("cert_file", "key_file", "ca_file", "ca_path"):
        value = getattr(s.tls.https, attr) or getattr(s.tls.defaults, attr) or getattr(s, attr)
        if value:
            setattr(out, attr, value)
    for verify in (s.tls.https.verify_incoming, s.tls.defaults.verify_incoming, s.verify_incoming,
                   s.verify_incoming_https):
        if verify is not None:
            out.verify_incoming = verify
            break
    out.encrypt = s.encrypt or ""
    validate(out)
    return out


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
