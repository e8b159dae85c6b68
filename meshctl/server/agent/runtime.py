"""What runs around the local agent: config files, check runners, DNS, anti-entropy, reload.

`run.py` owns the process (store, HTTP, Raft); this module adds, through a few hooks,
`AgentRuntime` for servers and -dev (config definitions, runners, the DNS server, the heartbeat monitor for client agents, the
critical-service reaper, anti-entropy, SIGHUP and /v1/agent/reload), and the client
agent (`client.py`) reuses `Definitions` and `dns_config_from`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import TYPE_CHECKING, Any

from meshctl.configfile import ConfigError
from meshctl.server.agent.antientropy import AntiEntropy
from meshctl.server.agent.checks import RUNNERS, CriticalReaper, close_shared
from meshctl.server.agent.config import FileConfig, load
from meshctl.server.agent.definitions import DefinitionError, check_type, parse_check, parse_service
from meshctl.server.agent.local import AgentError, LocalAgent
from meshctl.server.dns import DNSConfig, Resolver

if TYPE_CHECKING:
    from aiohttp import web

    from meshctl.server.agentconfig import AgentConfig, AgentOptions
    from meshctl.server.context import Enforcer
    from meshctl.server.dns_server import DNSServer
    from meshctl.server.store import Store

log = logging.getLogger(__name__)

SCRIPTS_DISABLED = ("Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or "
                    "'enable_local_script_checks' to true")


def dns_config_from(opts: AgentOptions, datacenter: str, files: FileConfig | None = None) -> DNSConfig:
    """DNSConfig from the merged settings: domain, alt_domain, recursors, dns_config { }."""
    s = (files or opts.files).settings
    dc = s.dns_config
    recursors = list(s.recursors or [])
    if s.recursor:
        recursors.append(s.recursor)
    cfg = DNSConfig(
        domain=s.domain or "consul.",
        alt_domain=s.alt_domain or "",
        datacenter=datacenter,
        node_ttl=int(dc.node_ttl or 0),
        service_ttl={str(k).lower(): int(v) for k, v in (dc.service_ttl or {}).items()},
        only_passing=bool(dc.only_passing),
        udp_answer_limit=3 if dc.udp_answer_limit is None else dc.udp_answer_limit,
        a_record_limit=dc.a_record_limit or 0,
        enable_truncate=True if dc.enable_truncate is None else dc.enable_truncate,
        enable_additional_node_meta_txt=True if dc.enable_additional_node_meta_txt is None
        else dc.enable_additional_node_meta_txt,
        recursors=recursors,
    )
    if dc.recursor_timeout:
        cfg.recursor_timeout = dc.recursor_timeout
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
    files = load(opts.config_sources, opts.config_format, opts.flags)
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


__all__ = ["AgentRuntime", "ConfigError", "Definitions", "check_type", "configure_local", "dns_config_from",
           "reload_files"]
