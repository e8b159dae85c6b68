"""`meshctl replicate`: consul-replicate's command line and config files on meshctl.sync.replicate.

    meshctl replicate -prefix "global/@dc1"                     # keep global/ of dc1 copied here
    meshctl replicate -prefix "global/@dc1:backup/" -exclude global/secret/ -once
    meshctl replicate -config replicate.hcl                     # prefix { } / exclude { } blocks

Configuration merges one way: defaults < -config files (in order; a directory's files in
lexical order) < flags; prefixes and excludes accumulate (files first). Exit codes are
consul-replicate's: 0 ok, 12 kill signal, 13 bad flags, 14 runner error, 15 bad configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from meshctl import __version__
from meshctl.child import parse_signal
from meshctl.client import Client
from meshctl.client.config import ConfigError as ClientConfigError
from meshctl.commands.template import make_client as template_client
from meshctl.commands.template import setup_logging
from meshctl.configfile import ConfigError
from meshctl.durations import duration_arg
from meshctl.flags import FlagError, FlagParser, RaisingFlagParser, parse_bool
from meshctl.process import forward_signals
from meshctl.sync.envconsul import remove_pid_file, write_pid_file
from meshctl.sync.replicate import (
    DEFAULT_STATUS_DIR,
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARSE_FLAGS,
    Prefix,
    ReplicateConfig,
    ReplicateRunner,
)
from meshctl.template import config as tcfg

log = logging.getLogger("meshctl.replicate")

DESCRIPTION = """\
Replicates key-value data from a source datacenter to the datacenter of a Consul agent
(consul-replicate). -prefix "source@dc[:destination]" is a plain string prefix: end it with
"/" to replicate a folder."""

_TOP_KEYS = {"consul", "exclude", "prefix", "kill_signal", "reload_signal", "log_level", "max_stale", "pid_file",
             "status_dir", "syslog", "wait", "delete"}
# consul-replicate 0.3's top-level keys, moved into consul { } (a warning, then used)
_DEPRECATED_TOP = {"auth": "auth", "ssl": "ssl", "token": "token", "retry": "retry"}




# (flag, dest, kind, help); kind: str, bool, int, dur, list. Deprecated aliases map to the same dest.
FLAGS: list[tuple[str, str, str, str]] = [
    ("config", "config", "list", "Config file or directory (HCL or JSON); repeatable, merged left to right"),
    ("consul-addr", "consul_addr", "str", "Address of the Consul agent (CONSUL_HTTP_ADDR)"),
    ("consul-auth", "consul_auth", "str", "HTTP basic auth username[:password]"),
    ("consul-retry", "consul_retry", "bool", "Retry failed queries (default true)"),
    ("consul-retry-attempts", "consul_retry_attempts", "int", "Attempts before -once gives up (12; 0 = forever)"),
    ("consul-retry-backoff", "consul_retry_backoff", "dur", "First retry delay (250ms), doubled each time"),
    ("consul-retry-max-backoff", "consul_retry_max_backoff", "dur", "Longest retry delay (1m)"),
    ("consul-ssl", "consul_ssl", "bool", "Use HTTPS"),
    ("consul-ssl-ca-cert", "consul_ssl_ca_cert", "str", "CA certificate file"),
    ("consul-ssl-ca-path", "consul_ssl_ca_path", "str", "Directory of CA certificates"),
    ("consul-ssl-cert", "consul_ssl_cert", "str", "Client certificate"),
    ("consul-ssl-key", "consul_ssl_key", "str", "Client key"),
    ("consul-ssl-server-name", "consul_ssl_server_name", "str", "Server name to verify (SNI)"),
    ("consul-ssl-verify", "consul_ssl_verify", "bool", "Verify the server's certificate (default true)"),
    ("consul-token", "consul_token", "str", "ACL token (CONSUL_HTTP_TOKEN / CONSUL_TOKEN)"),
    ("consul-transport-dial-keep-alive", "consul_transport_dial_keep_alive", "dur", "Accepted; not used"),
    ("consul-transport-dial-timeout", "consul_transport_dial_timeout", "dur", "Accepted; not used"),
    ("consul-transport-disable-keep-alives", "consul_transport_disable_keep_alives", "bool", "Accepted; not used"),
    ("consul-transport-max-idle-conns-per-host", "consul_transport_max_idle_conns_per_host", "int", "Accepted; not used"),
    ("consul-transport-tls-handshake-timeout", "consul_transport_tls_handshake_timeout", "dur", "Accepted; not used"),
    ("exclude", "exclude", "list", "Source key prefix not to replicate (nor delete); repeatable"),
    ("prefix", "prefix", "list", 'Source prefix, its datacenter and destination: "source@dc[:destination]"; '
                                 "repeatable"),
    ("status-dir", "status_dir", "str", f"KV path of the replication status records ({DEFAULT_STATUS_DIR})"),
    ("delete", "delete", "bool", "Delete destination keys the source no longer has (default true)"),
    ("once", "once", "bool", "Replicate each prefix once and exit"),
    ("wait", "wait", "str", "Quiescence min[:max] before a pass, e.g. 2s:10s"),
    ("max-stale", "max_stale", "dur", "Allow stale source reads this old (2s; 0 disables)"),
    ("log-level", "log_level", "str", "debug, info, warn, err (WARN; CR_LOG / CONSUL_REPLICATE_LOG)"),
    ("pid-file", "pid_file", "str", "Write this process's PID here"),
    ("kill-signal", "kill_signal", "str", "Stop with exit 12 (SIGINT)"),
    ("reload-signal", "reload_signal", "str", "Re-read the configuration (SIGHUP)"),
    ("syslog", "syslog", "bool", "Accepted; logs go to stderr"),
    ("syslog-facility", "syslog_facility", "str", "Accepted; logs go to stderr"),
]
DEPRECATED: dict[str, tuple[str, str]] = {  # consul-replicate 0.3 flag -> (replacement, dest)
    "auth": ("-consul-auth", "consul_auth"), "consul": ("-consul-addr", "consul_addr"),
    "retry": ("-consul-retry-*", "retry"), "ssl": ("-consul-ssl", "consul_ssl"),
    "ssl-verify": ("-consul-ssl-verify", "consul_ssl_verify"),
    "ssl-ca-cert": ("-consul-ssl-ca-cert", "consul_ssl_ca_cert"),
    "ssl-ca-path": ("-consul-ssl-ca-path", "consul_ssl_ca_path"), "ssl-cert": ("-consul-ssl-cert", "consul_ssl_cert"),
    "ssl-server-name": ("-consul-ssl-server-name", "consul_ssl_server_name"),
    "token": ("-consul-token", "consul_token"),
}


def build_parser() -> FlagParser:
    """consul-replicate's flag table."""
    p = RaisingFlagParser(prog="meshctl replicate", description=DESCRIPTION)
    kinds: dict[str, dict[str, Any]] = {
        "str": {}, "int": {"type": int}, "dur": {"type": duration_arg}, "list": {"action": "append"},
    }
    dest_kind = {dest: kind for _, dest, kind, _ in FLAGS}
    for name, dest, kind, help_text in FLAGS:
        if kind == "bool":
            p.bool_flag(name, default=None, help=help_text)
        else:
            p.flag(name, dest=dest, default=None, help=help_text, **kinds[kind])
    for name, (replacement, dest) in DEPRECATED.items():
        kind = "dur" if dest == "retry" else dest_kind[dest]
        extra: dict[str, Any] = ({"nargs": "?", "const": True, "type": parse_bool}
                                 if kind == "bool" else kinds[kind])
        p.flag(name, dest=f"deprecated_{name.replace('-', '_')}", default=None,
               help=f"Deprecated: use {replacement}", **extra)
    p.bool_flag("v", "version", default=False, help="Print the version")
    return p


def _apply_deprecated(args: argparse.Namespace) -> None:
    """Old flags set the new destinations (unless the new flag was given), with consul-replicate's warning."""
    for name, (replacement, dest) in DEPRECATED.items():
        value = getattr(args, f"deprecated_{name.replace('-', '_')}")
        if value is None:
            continue
        log.warning("-%s is now %s", name, replacement)
        if dest == "retry":
            args.consul_retry_backoff = args.consul_retry_backoff or value
            args.consul_retry_max_backoff = args.consul_retry_max_backoff or value
        elif getattr(args, dest) is None:
            setattr(args, dest, value)


def flags_data(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as config-file data (prefix and exclude as lists of strings)."""
    consul: dict[str, Any] = {}
    for flag, key in (("consul_addr", "address"), ("consul_token", "token"), ("consul_auth", "auth")):
        if getattr(args, flag) is not None:
            consul[key] = getattr(args, flag)
    ssl = {k: getattr(args, f"consul_ssl_{k}") for k in ("ca_cert", "ca_path", "cert", "key", "server_name", "verify")
           if getattr(args, f"consul_ssl_{k}") is not None}
    if args.consul_ssl is not None:
        ssl["enabled"] = args.consul_ssl
    if ssl:
        consul["ssl"] = ssl
    retry = {k: getattr(args, f"consul_retry_{k}") for k in ("attempts", "backoff", "max_backoff")
             if getattr(args, f"consul_retry_{k}") is not None}
    if args.consul_retry is not None:
        retry["enabled"] = args.consul_retry
    if retry:
        consul["retry"] = retry
    data: dict[str, Any] = {"consul": consul} if consul else {}
    for name in ("status_dir", "delete", "once", "wait", "max_stale", "log_level", "pid_file", "kill_signal",
                 "reload_signal"):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    if args.syslog:
        data["syslog"] = {"enabled": True}
    data["prefix"] = list(args.prefix or [])
    data["exclude"] = list(args.exclude or [])
    return data


def _blocks(value: Any) -> list[Any]:
    if value in (None, ""):
        return []
    return list(value) if isinstance(value, list) else [value]


def _one(value: Any) -> Any:
    """HCL gives a block (`consul { }`) as a list of objects: the last one wins, as consul-replicate's flattenKeys."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value[-1]
    return value


def _merge(into: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data` over `into`: prefixes and excludes accumulate, blocks merge key by key, the rest replaces."""
    for key, value in data.items():
        if key in ("prefix", "exclude"):
            into.setdefault(key, []).extend(_blocks(value))
            continue
        value = _one(value)
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def _file_data(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = tcfg.parse_text(fh.read(), path)
    consul = _one(data.get("consul"))
    consul = {"address": consul} if isinstance(consul, str) else dict(consul or {})
    for old, new in _DEPRECATED_TOP.items():
        if old in data:
            log.warning("%s is now a child stanza inside consul instead of a top-level one; move it into "
                        "consul { } (%s)", old, path)
            value = _one(data.pop(old))
            consul[new] = {"backoff": value, "max_backoff": value} if old == "retry" else value
    if "path" in data:
        log.warning("path is no longer a key in the configuration; use -config (%s)", path)
        data.pop("path")
    if consul:
        data["consul"] = consul
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    return data


def _prefix(item: Any) -> Prefix:
    """A prefix from a string or a block {source, datacenter|dc, destination}."""
    if isinstance(item, dict):
        text = str(item.get("source") or "")
        dc = item.get("datacenter") or item.get("dc")
        if dc:
            text += f"@{dc}"
        if item.get("destination"):
            text += f":{item['destination']}"
        item = text
    try:
        return Prefix.parse(str(item))
    except ValueError as exc:
        raise ConfigError(f"prefix: {exc}") from None


def _exclude(item: Any) -> str:
    source = item.get("source") if isinstance(item, dict) else item
    if not isinstance(source, str) or not source.strip():
        raise ConfigError("exclude: missing exclude")
    return source


def _signal(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(parse_signal(str(value)))
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None


class Settings:
    """The merged configuration: what the runner gets, plus the client and process settings."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        try:  # the consul { } block is consul-template's: reuse its parser
            template_config = tcfg.build({"consul": data["consul"]} if data.get("consul") else {})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.template_config = template_config
        self.warnings = list(template_config.warnings)
        retry = template_config.consul.retry
        wait = tcfg.parse_wait(_one(data["wait"])) if data.get("wait") not in (None, "") else tcfg.WaitConfig()
        self.runner = ReplicateConfig(
            prefixes=[_prefix(p) for p in data.get("prefix") or []],
            excludes=[_exclude(e) for e in data.get("exclude") or []],
            status_dir=str(data.get("status_dir") or DEFAULT_STATUS_DIR),
            delete=tcfg.parse_bool(data["delete"], "delete") if data.get("delete") is not None else True,
            once=bool(data.get("once")),
            wait_min=wait.min, wait_max=wait.max,
            max_stale=tcfg.duration(data["max_stale"], "max_stale") if data.get("max_stale") is not None else 2.0,
            kill_signal=_signal(data.get("kill_signal", "SIGINT"), "kill_signal"),
            reload_signal=_signal(data.get("reload_signal", "SIGHUP"), "reload_signal"),
            retry_enabled=retry.enabled, retry_attempts=retry.attempts, retry_backoff=retry.backoff,
            retry_max_backoff=retry.max_backoff,
        )
        if not self.runner.prefixes:
            raise ConfigError("missing prefix: give -prefix \"source@dc[:destination]\" or a prefix block")
        syslog = _one(data.get("syslog"))
        if isinstance(syslog, dict) and syslog.get("enabled"):
            self.warnings.append("syslog: logging to syslog is not supported; logs go to stderr")
        self.log_level = str(data.get("log_level") or os.environ.get("CR_LOG")
                             or os.environ.get("CONSUL_REPLICATE_LOG") or "WARN")
        self.pid_file = str(data.get("pid_file") or "")

    def client(self) -> Client:
        """The one client (consul { } block, then CONSUL_* variables; CONSUL_TOKEN as consul-replicate)."""
        consul = self.template_config.consul
        if not consul.token and not os.environ.get("CONSUL_HTTP_TOKEN") and os.environ.get("CONSUL_TOKEN"):
            consul.token = os.environ["CONSUL_TOKEN"]
        return template_client(self.template_config)


def load(args: argparse.Namespace) -> Settings:
    """defaults < -config files < flags."""
    data: dict[str, Any] = {}
    for path in args.config or []:
        try:
            files = tcfg.config_files(path)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for f in files:
            try:
                _merge(data, _file_data(f))
            except OSError as exc:
                raise ConfigError(f"config: error reading {f}: {exc.strerror or exc}") from None
    _merge(data, flags_data(args))
    if any(getattr(args, dest) is not None for _, dest, _, _ in FLAGS if dest.startswith("consul_transport_")) \
            or _one((data.get("consul") or {}).get("transport")):
        log.warning("consul transport options are accepted but not used")
    return Settings(data)


HANDLED_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


def main(argv: list[str]) -> int:
    """Entry point of `meshctl replicate`."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except FlagError as e:
        print(f"meshctl replicate: {e}", file=sys.stderr)
        return EXIT_PARSE_FLAGS
    if args.v:
        print(f"meshctl replicate v{__version__} (consul-replicate compatible)", file=sys.stderr)
        return EXIT_OK
    setup_logging("WARN")  # deprecation warnings below; the configured level once loaded
    _apply_deprecated(args)
    try:
        settings = load(args)
        setup_logging(settings.log_level)
        client = settings.client()
    except (ConfigError, ClientConfigError, ValueError) as e:
        print(f"meshctl replicate: {e}", file=sys.stderr)
        return EXIT_CONFIG
    for warning in settings.warnings:
        log.warning(warning)

    def reload_config() -> ReplicateConfig:
        return load(args).runner

    runner = ReplicateRunner(client, settings.runner, reload_config=reload_config)
    relayed = (*HANDLED_SIGNALS, *(s for s in (settings.runner.kill_signal, settings.runner.reload_signal) if s))
    with forward_signals(runner, relayed):  # off the main thread: none
        if settings.pid_file:
            write_pid_file(settings.pid_file)
        try:
            return runner.run()
        except Exception as e:  # a bug: say so, with the generic code
            log.exception("unexpected error")
            print(f"meshctl replicate: {e}", file=sys.stderr)
            return EXIT_ERROR
        finally:
            if settings.pid_file:
                remove_pid_file(settings.pid_file)
            client.close()
