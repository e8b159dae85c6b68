"""What runs around the local agent: config files, check runners, DNS, anti-entropy, reload.

`run.py` owns the process (store, HTTP, Raft); this module adds, through a few hooks:
the agent flags (`add_flags` / `apply_args`), `AgentRuntime` for servers and -dev (config
definitions, runners, the DNS server, the heartbeat monitor for client agents, the
critical-service reaper, anti-entropy, SIGHUP and /v1/agent/reload), and the client
agent (`client.py`) reuses `Definitions` and `dns_config_from`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshctl.durations import parse_duration
from meshctl.flags import FlagParser, parse_bool
from meshctl.server.agent.antientropy import AntiEntropy
from meshctl.server.agent.checks import RUNNERS, CriticalReaper, close_shared
from meshctl.server.agent.config import ConfigError, FileConfig, load_paths, setting
from meshctl.server.agent.definitions import DefinitionError, check_type, parse_check, parse_service
from meshctl.server.agent.local import AgentError, LocalAgent
from meshctl.server.dns import DNSConfig, Resolver

if TYPE_CHECKING:
    import argparse

    from aiohttp import web

    from meshctl.server.context import Enforcer
    from meshctl.server.dns_server import DNSServer
    from meshctl.server.run import AgentConfig
    from meshctl.server.store import Store

log = logging.getLogger(__name__)

SCRIPTS_DISABLED = ("Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or "
                    "'enable_local_script_checks' to true")


@dataclass
class AgentOptions:
    """The agent settings this module handles (flags < config files only where flags are absent)."""

    config_dirs: list[str] = field(default_factory=list)
    config_files: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    enable_script_checks: bool = False
    enable_local_script_checks: bool = False
    domain: str = "consul."
    alt_domain: str = ""
    recursors: list[str] = field(default_factory=list)
    dns_only_passing: bool = False
    node_meta: dict[str, str] = field(default_factory=dict)
    ae_interval: float = 60.0
    files: FileConfig = field(default_factory=FileConfig)
    dns_settings: dict[str, Any] = field(default_factory=dict)


def add_flags(p: FlagParser) -> None:
    """The agent flags of issue 8 (config, client mode, checks, DNS)."""
    p.flag("config-dir", action="append", default=[], help="directory of .json/.hcl/.yaml config files (repeatable)")
    p.flag("config-file", action="append", default=[], help="a config file (repeatable)")
    p.flag("join", action="append", default=[], help="address of a server to join (serf or HTTP address)")
    p.bool_flag("enable-script-checks", help="allow script checks from config files and the API")
    p.bool_flag("enable-local-script-checks", help="allow script checks from config files only")
    p.flag("domain", default=None, help="DNS domain (default consul.)")
    p.flag("alt-domain", default=None, help="alternate DNS domain")
    p.flag("recursor", action="append", default=[], help="upstream DNS server for other names (repeatable)")
    p.bool_flag("dns-only-passing", default=None, help="DNS answers only passing instances")
    p.flag("node-meta", action="append", default=[], help="key:value metadata of this node (repeatable)")
    p.flag("ae-interval", default=None, help="anti-entropy period (default 60s)")


def apply_args(cfg: AgentConfig, args: argparse.Namespace, defaults: argparse.Namespace) -> None:
    """Flags and config files into `cfg` (run.AgentConfig), its agent settings into `cfg.options`.

    Raises ConfigError (the agent refuses to start) on unreadable files, bad definitions,
    or script checks in config files without -enable(-local)-script-checks.
    """
    opts = AgentOptions(config_dirs=list(args.config_dir), config_files=list(args.config_file), join=list(args.join))
    files = load_paths(opts.config_dirs, opts.config_files)
    opts.files = files
    s = files.settings

    def explicit(name: str) -> bool:
        return getattr(args, name) != getattr(defaults, name)

    # process-level settings from files, where no flag was given
    for key, attr, conv in (("node_name", "node", str), ("datacenter", "datacenter", str),
                            ("bind_addr", "bind", str), ("client_addr", "client", str)):
        value = setting(s, key)
        src = {"node": "node", "datacenter": "datacenter", "bind": "bind", "client": "client"}[attr]
        if value is not None and not explicit(src):
            setattr(cfg, attr, conv(value))
    for key, attr in (("http", "http_port"), ("dns", "dns_port"), ("server", "server_port"), ("serf_lan", "serf_port")):
        value = setting(s, "ports", key)
        if value is not None and not explicit(attr):
            setattr(cfg, attr, int(value))
    if setting(s, "server") is True and not cfg.server:
        cfg.server = True
    for key in ("retry_join", "start_join"):
        for addr in setting(s, key, default=[]) or []:
            if key == "start_join":
                opts.join.append(str(addr))
            elif hasattr(cfg, "retry_join") and addr not in cfg.retry_join:
                cfg.retry_join.append(str(addr))
    opts.enable_script_checks = bool(args.enable_script_checks or setting(s, "enable_script_checks"))
    opts.enable_local_script_checks = bool(args.enable_local_script_checks or setting(s, "enable_local_script_checks"))
    opts.node_meta = {str(k): str(v) for k, v in (setting(s, "node_meta", default={}) or {}).items()}
    for item in args.node_meta:
        key, sep, value = item.partition(":")
        if not sep:
            raise ConfigError(f"-node-meta must be key:value, got {item!r}")
        opts.node_meta[key] = value
    opts.ae_interval = parse_duration(args.ae_interval) if args.ae_interval else 60.0
    dns_flags = {"domain": args.domain, "alt_domain": args.alt_domain, "recursors": list(args.recursor),
                 "only_passing": args.dns_only_passing}
    opts.dns_settings = dns_flags
    validate_definitions(files, opts)
    cfg.options = opts


def dns_config_from(opts: AgentOptions, datacenter: str, files: FileConfig | None = None) -> DNSConfig:
    """DNSConfig from flags (which win) and the files' domain / recursors / dns_config."""
    s = (files or opts.files).settings
    flags = opts.dns_settings
    dc = setting(s, "dns_config", default={}) or {}

    def ttl(value: Any) -> int:
        return int(parse_duration(value)) if isinstance(value, str) else int(value or 0)

    only_passing = flags.get("only_passing")
    if only_passing is None:
        only_passing = bool(setting(dc, "only_passing", default=False))
    recursors = list(flags.get("recursors") or []) or [str(r) for r in (setting(s, "recursors", default=[]) or [])]
    if setting(s, "recursor"):
        recursors.append(str(setting(s, "recursor")))
    cfg = DNSConfig(
        domain=flags.get("domain") or setting(s, "domain", default="consul."),
        alt_domain=flags.get("alt_domain") or setting(s, "alt_domain", default=""),
        datacenter=datacenter,
        node_ttl=ttl(setting(dc, "node_ttl", default=0)),
        service_ttl={str(k).lower(): ttl(v) for k, v in (setting(dc, "service_ttl", default={}) or {}).items()},
        only_passing=only_passing,
        udp_answer_limit=int(setting(dc, "udp_answer_limit", default=3)),
        a_record_limit=int(setting(dc, "a_record_limit", default=0)),
        enable_truncate=bool(parse_bool(str(setting(dc, "enable_truncate", default=True)))),
        enable_additional_node_meta_txt=bool(setting(dc, "enable_additional_node_meta_txt", default=True)),
        recursors=recursors,
    )
    timeout = setting(dc, "recursor_timeout")
    if timeout:
        cfg.recursor_timeout = parse_duration(str(timeout))
    return cfg


def validate_definitions(files: FileConfig, opts: AgentOptions) -> None:
    """Parse every definition now, so a bad file stops the agent before it serves."""
    scripts_ok = opts.enable_script_checks or opts.enable_local_script_checks
    for raw in files.services:
        try:
            service, checks = parse_service(raw)
        except DefinitionError as exc:
            raise ConfigError(f"Failed to register service {raw.get('name') or raw.get('Name')!r}: {exc}") from None
        if not scripts_ok and any(c.type in ("script", "docker") for c in checks):
            raise ConfigError(f"Failed to register service {service['Service']!r}: {SCRIPTS_DISABLED}")
    for raw in files.checks:
        try:
            check = parse_check(raw)
        except DefinitionError as exc:
            raise ConfigError(f"Failed to register check {raw.get('name') or raw.get('Name')!r}: {exc}") from None
        if not scripts_ok and check.type in ("script", "docker"):
            raise ConfigError(f"Failed to register check {check.name!r}: {SCRIPTS_DISABLED}")


def configure_local(local: LocalAgent, opts: AgentOptions) -> None:
    """Runners, script-check switches and node meta on a LocalAgent (before its start)."""
    for kind, factory in RUNNERS.items():
        local.runners.setdefault(kind, factory)
    local.enable_script_checks = opts.enable_script_checks
    local.enable_local_script_checks = opts.enable_local_script_checks
    local.node_meta.update(opts.node_meta)


def _fingerprint(raw: Any) -> str:
    return json.dumps(raw, sort_keys=True, default=str)


class Definitions:
    """The services and checks that came from config files; `sync(files)` applies a (re)load."""

    def __init__(self, local: LocalAgent) -> None:
        self.local = local
        self.services: dict[str, str] = {}  # service ID -> fingerprint of its definition
        self.checks: dict[str, str] = {}  # check ID -> fingerprint

    async def sync(self, files: FileConfig) -> None:
        """Register new or changed definitions, remove the ones that left the files."""
        local = self.local
        wanted_services: dict[str, Any] = {}
        for raw in files.services:
            service, _ = parse_service(raw)
            wanted_services[service["ID"]] = raw
        wanted_checks: dict[str, Any] = {}
        for raw in files.checks:
            wanted_checks[parse_check(raw).check_id] = raw
        for sid in [s for s in self.services if s not in wanted_services]:
            del self.services[sid]
            if sid in local.services:
                await local.remove_service(sid)
        for cid in [c for c in self.checks if c not in wanted_checks]:
            del self.checks[cid]
            if cid in local.checks:
                await local.remove_check(cid)
        for sid, raw in wanted_services.items():
            fp = _fingerprint(raw)
            if self.services.get(sid) == fp and sid in local.services:
                continue
            try:
                await local.add_service(raw, replace_existing_checks=True, source="config")
                self.services[sid] = fp
            except AgentError as exc:
                log.error("service %s from config: %s", sid, exc.text)
        for cid, raw in wanted_checks.items():
            fp = _fingerprint(raw)
            if self.checks.get(cid) == fp and cid in local.checks:
                continue
            try:
                check = parse_check(raw)
                await local.add_check(check, source="config")
                self.checks[cid] = fp
            except (AgentError, DefinitionError) as exc:
                log.error("check %s from config: %s", cid, getattr(exc, "text", exc))


async def reload_files(opts: AgentOptions, definitions: Definitions) -> FileConfig:
    """Re-read the config files and apply their definitions; ConfigError leaves everything as it was."""
    files = load_paths(opts.config_dirs, opts.config_files)
    validate_definitions(files, opts)
    opts.files = files
    await definitions.sync(files)
    return files


class AgentRuntime:
    """The agent half of a server or -dev process (see module docstring).

    Built by `run.Agent` once the store and the ACL enforcer exist: the heartbeat monitor of
    client agents and the DNS resolver (filtered with the enforcer's DNS view) are made here,
    listeners and background tasks start in `start()`.
    """

    def __init__(self, cfg: AgentConfig, local: LocalAgent, store: Store, acl: Enforcer) -> None:
        from meshctl.server.agent.heartbeat import HeartbeatMonitor

        self.cfg = cfg
        self.local = local
        self.opts: AgentOptions = cfg.options
        configure_local(local, self.opts)
        self.definitions = Definitions(local)
        self.monitor = HeartbeatMonitor(store)
        self.resolver: Resolver | None = None
        if cfg.dns_port > 0:
            self.resolver = Resolver(lambda: store.state, dns_config_from(self.opts, cfg.datacenter))
            self.resolver.acl_check = acl.dns_check()  # ACLs: the DNS token's view
        self.dns: DNSServer | None = None
        self.reaper = CriticalReaper(local)
        self.anti_entropy = AntiEntropy(local, self.opts.ae_interval)
        self._tasks: list[asyncio.Task[Any]] = []

    def attach(self, app: web.Application) -> None:
        """The internal routes of client agents on the HTTP app (before it starts)."""
        from meshctl.server.agent.heartbeat import add_routes

        add_routes(app)

    def acl_tokens_changed(self) -> None:
        """The agent's tokens changed (PUT /v1/agent/token/*): DNS drops answers made with the old DNS token."""
        if self.resolver is not None:
            self.resolver.reconfigure(self.resolver.config)

    async def start(self) -> None:
        """DNS, heartbeat monitor, SIGHUP now; definitions once this node is in the catalog."""
        from meshctl.server.dns_server import DNSServer

        self.monitor.start()
        if self.resolver is not None:
            self.dns = DNSServer(self.resolver, self.cfg.client.split(), self.cfg.dns_port)
            await self.dns.start()
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._sighup)
        except (NotImplementedError, RuntimeError):
            pass
        self._tasks.append(asyncio.ensure_future(self._when_registered()))

    async def _when_registered(self) -> None:
        local = self.local
        while local.node_name not in local.store.state.nodes:
            await asyncio.sleep(0.1)
        try:
            await self.definitions.sync(self.opts.files)
        except Exception:
            log.exception("loading service definitions failed")
        self.reaper.start()
        self.anti_entropy.start()

    def _sighup(self) -> None:
        log.info("SIGHUP: reloading configuration")
        self._tasks.append(asyncio.ensure_future(self._reload_logged()))

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception as exc:
            log.error("reload failed: %s", exc)

    async def reload(self) -> None:
        """`meshctl reload`, SIGHUP, PUT /v1/agent/reload: re-read config files."""
        from meshctl.server.http.common import HTTPError

        try:
            files = await reload_files(self.opts, self.definitions)
        except ConfigError as exc:
            raise HTTPError(500, f"Failed reloading: {exc}") from None
        if self.resolver is not None:
            self.resolver.reconfigure(dns_config_from(self.opts, self.cfg.datacenter, files))
        log.info("configuration reloaded (%d file(s))", len(files.files))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.reaper.stop()
        self.anti_entropy.stop()
        self.monitor.stop()
        if self.dns is not None:
            await self.dns.stop()
        await close_shared(self.local)


__all__ = ["AgentOptions", "AgentRuntime", "ConfigError", "Definitions", "add_flags", "apply_args", "check_type",
           "configure_local", "dns_config_from", "reload_files"]
