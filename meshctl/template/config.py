"""consul-template's configuration: HCL/JSON/YAML files and flags, merged one way.

defaults < config files (in order; a directory's files in lexical order) < command-line flags.
Files use consul-template's names (`consul { address }`, `template { source destination ... }`,
`wait { min max }`, `exec { command kill_signal ... }`); its HCL files load unchanged
(leading-zero numbers such as `perms = 0600` are octal, and heredocs keep their final newline,
as in HCL1). Templates accumulate: the files' `template` blocks first, then each `-template` flag.

As in consul-template, a field nobody knows is an error naming it (exit 15); consul-template
options meshctl does not honour (vault, nomad, syslog, ...) are kept in
`Config.warnings`, which the runner logs at start, so nothing is ignored silently.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshctl import hcl
from meshctl.configfile import ConfigError
from meshctl.durations import parse_duration
from meshctl.selfhealth import SelfHealthConfig

CONFIG_EXTENSIONS = (".hcl", ".json", ".yaml", ".yml", ".conf")




@dataclass
class WaitConfig:
    """Quiescence: render after `min` of quiet, and at the latest `max` after the first change."""

    min: float = 0.0
    max: float = 0.0

    @property
    def enabled(self) -> bool:
        """Whether there is any wait."""
        return self.min > 0


@dataclass
class EnvConfig:
    """`exec { env { ... } }`: what a child sees (deny beats allow; `custom` always passes)."""

    pristine: bool = False
    custom: list[str] = field(default_factory=list)
    allowlist: list[str] = field(default_factory=list)
    denylist: list[str] = field(default_factory=list)


@dataclass
class ExecConfig:
    """A supervised child (`-exec`)."""

    command: list[str] | str | None = None
    timeout: float = 0.0
    reload_signal: str | None = None
    kill_signal: str = "SIGTERM"
    kill_timeout: float = 30.0
    splay: float = 0.0
    env: EnvConfig = field(default_factory=EnvConfig)


@dataclass
class TemplateConfig:
    """One `template {}` block (or `-template in:out:cmd`)."""

    source: str = ""
    contents: str | None = None
    destination: str = ""
    command: list[str] | str | None = None
    command_timeout: float = 30.0
    env: EnvConfig = field(default_factory=EnvConfig)  # the command's environment (`exec { env }`)
    perms: int | None = None
    user: str = ""  # as written (name or id); `uid` is what it resolved to at load time
    group: str = ""
    uid: int | None = None
    gid: int | None = None
    backup: bool = False
    wait: WaitConfig | None = None
    left_delimiter: str = ""
    right_delimiter: str = ""
    error_on_missing_key: bool = False
    create_dest_dirs: bool = True
    error_fatal: bool = True
    function_denylist: list[str] = field(default_factory=list)
    sandbox_path: str = ""
    syntax: str = ""

    @property
    def label(self) -> str:
        """How logs name the template."""
        return f"{self.source or '(contents)'} => {self.destination or '(stdout)'}"


@dataclass
class RetryConfig:
    """Retries of failed queries: 2^n × backoff, capped; attempts 0 = unlimited."""

    enabled: bool = True
    attempts: int = 12
    backoff: float = 0.25
    max_backoff: float = 60.0


@dataclass
class ConsulConfig:
    """Where and how to reach Consul (empty fields fall back to the CONSUL_* environment)."""

    address: str = ""
    token: str = ""
    token_file: str = ""
    auth: str = ""
    ssl_enabled: bool | None = None
    ssl_verify: bool | None = None
    ssl_ca_cert: str = ""
    ssl_ca_path: str = ""  # a directory of CA certificates (hashed names, as OpenSSL's capath)
    ssl_cert: str = ""
    ssl_key: str = ""
    ssl_server_name: str = ""
    retry: RetryConfig = field(default_factory=RetryConfig)


DEFAULT_DEDUP_PREFIX = "consul-template/dedup/"


@dataclass
class DedupConfig:
    """`deduplicate { enabled prefix ttl max_stale block_query_wait }` (and -dedup, -dedup-prefix)."""

    enabled: bool = False
    prefix: str = DEFAULT_DEDUP_PREFIX
    ttl: float = 15.0
    max_stale: float = 2.0
    block_query_wait: float = 60.0


@dataclass
class Config:
    """Everything the runner needs."""

    consul: ConsulConfig = field(default_factory=ConsulConfig)
    templates: list[TemplateConfig] = field(default_factory=list)
    wait: WaitConfig = field(default_factory=WaitConfig)
    exec: ExecConfig | None = None
    dedup: DedupConfig = field(default_factory=DedupConfig)
    self_health: SelfHealthConfig = field(default_factory=SelfHealthConfig)
    max_stale: float = 2.0
    block_query_wait: float = 60.0
    once: bool = False
    dry: bool = False
    parse_only: bool = False
    pid_file: str = ""
    log_level: str = "WARN"
    kill_signal: str | None = "SIGINT"
    reload_signal: str | None = "SIGHUP"
    graceful_signal: str | None = "SIGTERM"
    default_left_delimiter: str = ""
    default_right_delimiter: str = ""
    err_on_failed_lookup: bool = False
    template_error_fatal: bool | None = None
    watch_templates: bool = False
    syntax: str = ""
    config_paths: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # options read but not honoured (logged at start)


# -- parsing values ---------------------------------------------------------------------------


def duration(value: Any, what: str) -> float:
    """A Go duration string or a number of seconds (Go's nanoseconds when huge)."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool):
        raise ConfigError(f"{what}: invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return value / 1e9 if value >= 1e6 else float(value)  # JSON from Go tools carries nanoseconds
    try:
        return parse_duration(str(value))
    except ValueError as e:
        raise ConfigError(f"{what}: {e}") from None


def parse_wait(value: Any, what: str = "wait") -> WaitConfig:
    """`"5s"`, `"5s:10s"` or `{min, max}`; max defaults to 4 × min and must not be below min."""
    if isinstance(value, WaitConfig):
        return value
    if isinstance(value, dict):
        lo = duration(value.get("min"), f"{what}.min")
        hi = duration(value.get("max"), f"{what}.max") if value.get("max") not in (None, "") else lo * 4
        if value.get("enabled") is False:
            return WaitConfig()
    elif isinstance(value, str):
        lo_s, _, hi_s = value.partition(":")
        lo = duration(lo_s, what)
        hi = duration(hi_s, what) if hi_s else lo * 4
    else:
        lo = duration(value, what)
        hi = lo * 4
    if lo < 0 or hi < 0:
        raise ConfigError(f"{what}: cannot be negative")
    if hi < lo:
        raise ConfigError(f"{what}: min ({lo}s) must be less than max ({hi}s)")
    return WaitConfig(lo, hi)


def parse_perms(value: Any) -> int | None:
    """A file mode: "0644" (octal string) or a number; 0 or empty means "keep/0644"."""
    if value in (None, "", 0, "0"):
        return None
    mode: int | None = None
    if isinstance(value, str):
        try:
            mode = int(value, 8)
        except ValueError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        mode = value
    if mode is None or not 0 <= mode <= 0o7777:
        raise ConfigError(f"perms: invalid file mode {value!r}")
    return mode or None


def parse_bool(value: Any, what: str) -> bool:
    """true/false, also as strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    if isinstance(value, int):
        return bool(value)
    raise ConfigError(f"{what}: invalid boolean {value!r}")


def parse_template_flag(value: str) -> TemplateConfig:
    """`in:out[:command]` (Windows drive letters survive; extra colons stay in the command)."""
    parts = [p for p in re.findall(r"([a-zA-Z]:)?([^:]+)", value)]
    segs = [a + b for a, b in parts if a + b]
    if not segs:
        raise ConfigError(f"invalid template declaration {value!r}")
    if len(segs) > 3:
        segs = segs[:2] + [":".join(segs[2:])]
    tc = TemplateConfig(source=segs[0])
    if len(segs) > 1:
        tc.destination = segs[1]
    if len(segs) > 2:
        tc.command = segs[2]
    return tc


# -- files ------------------------------------------------------------------------------------

_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][\w-]*)\n(.*?\n)?([ \t]*)\2", re.S)


def _heredoc(value: str) -> str:
    """A heredoc's text as HCL1 (consul-template's parser) gives it: with its final newline.

    `<<-` removes the closing marker's indentation from every line, if every line has it.
    (python-hcl2 drops the final newline, which would change every file rendered from
    `contents = <<EOT`; so heredocs are kept raw by the parser and finished here.)
    """
    m = _HEREDOC.fullmatch(value)
    if m is None:
        return value
    body, indent = m.group(3) or "", m.group(4)
    if not m.group(1) or not indent:
        return body
    lines = body.split("\n")[:-1]
    if all(line.startswith(indent) for line in lines):
        return "".join(line[len(indent):] + "\n" for line in lines)
    return body


def _clean_hcl(value: Any) -> Any:
    """Heredocs finished as HCL1 gives them (hcl.loads kept them raw)."""
    if isinstance(value, dict):
        return {k: _clean_hcl(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_hcl(v) for v in value]
    if isinstance(value, str):
        return _heredoc(value)
    return value


def parse_hcl(text: str) -> dict[str, Any]:
    """HCL (1 or 2 style) to plain data; blocks arrive as lists of objects."""
    return _clean_hcl(hcl.loads(text, heredocs=True))


def parse_text(text: str, path: str) -> dict[str, Any]:
    """One configuration file's data (by extension: .json, .yaml/.yml, else HCL)."""
    try:
        if path.endswith(".json"):
            data = json.loads(text) if text.strip() else {}
        elif path.endswith((".yaml", ".yml")):
            data = yaml.safe_load(text) or {}
        else:
            data = parse_hcl(text) if text.strip() else {}
    except Exception as e:
        raise ConfigError(f"error parsing {path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"error parsing {path}: the top level must be an object")
    return data


def config_files(path: str) -> list[str]:
    """A file, or a directory's config files (recursive, lexical order, symlinked dirs skipped)."""
    if os.path.isdir(path):
        out: list[str] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
            out += [os.path.join(root, f) for f in sorted(files) if f.endswith(CONFIG_EXTENSIONS)]
        return sorted(out)
    if not os.path.exists(path):
        raise ConfigError(f"config: missing file/folder: {path}")
    return [path]


def load_files(paths: list[str]) -> dict[str, Any]:
    """Every file's data merged in order (later wins; templates accumulate)."""
    merged: dict[str, Any] = {}
    local = os.environ.get("CT_LOCAL_CONFIG")
    if local:
        merge(merged, parse_text(local, "CT_LOCAL_CONFIG.hcl"))
    for p in paths:
        for f in config_files(p):
            try:
                with open(f, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as e:
                raise ConfigError(f"config: error reading {f}: {e.strerror or e}") from None
            merge(merged, parse_text(text, f))
    return merged


def _blocks(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(i, dict) for i in items):
        raise ConfigError("expected an object or a list of objects")
    return items


def _one(value: Any) -> Any:
    """HCL gives `wait { }` as a one-element list: the object."""
    if isinstance(value, list) and all(isinstance(i, dict) for i in value):
        out: dict[str, Any] = {}
        for i in value:
            out.update(i)
        return out
    return value


def merge(into: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Merge `data` over `into`: objects merge key by key, templates accumulate, others replace."""
    for key, value in data.items():
        if key == "template":
            into.setdefault("template", []).extend(_blocks(value))
            continue
        value = _one(value)
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


# -- building -----------------------------------------------------------------------------------


def _command(value: Any) -> list[str] | str | None:
    if value in (None, "", []):
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


_EXEC_KEYS = {"command", "timeout", "env", "splay", "reload_signal", "kill_signal", "kill_timeout", "enabled"}
_ENV_KEYS = {"pristine", "custom", "allowlist", "denylist", "whitelist", "blacklist"}
_WAIT_KEYS = {"min", "max", "enabled"}


def _check_keys(d: dict[str, Any], known: set[str], where: str) -> None:
    """consul-template's decoder refuses unknown fields; so do we, naming them."""
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")


def _strings(value: Any, what: str) -> list[str]:
    """A list of strings; a single string is split on commas, as consul-template's decoder does."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise ConfigError(f"{what}: expected a list of strings, got {value!r}")


def _object(value: Any, what: str) -> dict[str, Any]:
    value = _one(value)
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{what}: expected a block (object), got {value!r}")
    return value


def _env(value: Any, what: str) -> EnvConfig:
    env = _object(value, what)
    _check_keys(env, _ENV_KEYS, what)
    return EnvConfig(
        pristine=parse_bool(env.get("pristine", False), f"{what}.pristine"),
        custom=_strings(env.get("custom"), f"{what}.custom"),
        # the old names are merged with the new ones, as consul-template does
        allowlist=_strings(env.get("allowlist"), f"{what}.allowlist") + _strings(env.get("whitelist"), f"{what}.whitelist"),
        denylist=_strings(env.get("denylist"), f"{what}.denylist") + _strings(env.get("blacklist"), f"{what}.blacklist"),
    )


def _exec(d: dict[str, Any], what: str = "exec") -> ExecConfig:
    _check_keys(d, _EXEC_KEYS, what)
    e = ExecConfig(command=_command(d.get("command")), timeout=duration(d.get("timeout"), f"{what}.timeout"))
    if d.get("reload_signal") not in (None, ""):
        e.reload_signal = str(d["reload_signal"])
    if d.get("kill_signal"):
        e.kill_signal = str(d["kill_signal"])
    if d.get("kill_timeout") not in (None, ""):
        e.kill_timeout = duration(d["kill_timeout"], f"{what}.kill_timeout")
    e.splay = duration(d.get("splay"), f"{what}.splay")
    e.env = _env(d.get("env"), f"{what}.env")
    if d.get("enabled") is not None and not parse_bool(d["enabled"], f"{what}.enabled"):
        e.command = None
    return e


def _owner_id(value: Any, what: str, kind: str) -> int | None:
    """A user or group given as a name or a numeric id → the id (None: leave as it is).

    Names are resolved once, when the configuration is loaded, so that a typo stops the start
    (exit 15) instead of failing the first render; ids are taken as they are, like chown(1).
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{what}: invalid {kind} {value!r}")
    text = str(value).strip()
    try:
        n = int(text)
    except ValueError:
        try:
            return pwd.getpwnam(text).pw_uid if kind == "user" else grp.getgrnam(text).gr_gid
        except KeyError:
            raise ConfigError(f"{what}: unknown {kind} {text!r}") from None
    if n == -1:  # Go's chown "leave unchanged"
        return None
    if n < 0:
        raise ConfigError(f"{what}: invalid {kind} id {n}")
    return n


_TEMPLATE_KEYS = {
    "source", "contents", "destination", "command", "command_timeout", "exec", "perms", "backup", "wait",
    "left_delimiter", "right_delimiter", "error_on_missing_key", "create_dest_dirs", "error_fatal",
    "function_denylist", "function_blacklist", "sandbox_path", "syntax", "user", "group", "uid", "gid",
}


def build_template(d: dict[str, Any]) -> TemplateConfig:
    """A TemplateConfig from a `template {}` block."""
    unknown = set(d) - _TEMPLATE_KEYS
    if unknown:
        raise ConfigError(f"template: unknown field(s) {', '.join(sorted(unknown))}")
    t = TemplateConfig(source=str(d.get("source") or ""), destination=str(d.get("destination") or ""))
    if d.get("contents") is not None:
        t.contents = str(d["contents"])
    if t.source and t.contents is not None:
        raise ConfigError("template: cannot specify both source and contents")
    if not t.source and t.contents is None:
        raise ConfigError("template: must specify exactly one of source or contents")
    where = f"template ({t.label})"
    t.command = _command(d.get("command"))
    if d.get("command_timeout") not in (None, ""):
        t.command_timeout = duration(d["command_timeout"], f"{where}: command_timeout")
    ex = _object(d.get("exec"), f"{where}: exec")
    if ex:
        # exec { } wins over the legacy command / command_timeout (consul-template's Finalize)
        e = _exec(ex, f"{where}: exec")
        t.command = _command(ex.get("command")) or t.command
        if ex.get("timeout") not in (None, ""):
            t.command_timeout = e.timeout
        if ex.get("enabled") is not None and not parse_bool(ex["enabled"], f"{where}: exec.enabled"):
            t.command = None
        t.env = e.env
    t.perms = parse_perms(d.get("perms"))
    # `user`/`group` (names or ids) win over the legacy numeric `uid`/`gid`
    t.user = str(d["user"]) if d.get("user") not in (None, "") else ""
    t.group = str(d["group"]) if d.get("group") not in (None, "") else ""
    t.uid = _owner_id(d.get("user") if t.user else d.get("uid"), f"{where}: {'user' if t.user else 'uid'}", "user")
    t.gid = _owner_id(d.get("group") if t.group else d.get("gid"), f"{where}: {'group' if t.group else 'gid'}",
                      "group")
    t.backup = parse_bool(d.get("backup", False), f"{where}: backup")
    if d.get("wait") not in (None, ""):
        wait = _one(d["wait"])
        if isinstance(wait, dict):
            _check_keys(wait, _WAIT_KEYS, f"{where}: wait")
        t.wait = parse_wait(wait, f"{where}: wait")
    t.left_delimiter = str(d.get("left_delimiter") or "")
    t.right_delimiter = str(d.get("right_delimiter") or "")
    t.error_on_missing_key = parse_bool(d.get("error_on_missing_key", False), f"{where}: error_on_missing_key")
    t.create_dest_dirs = parse_bool(d.get("create_dest_dirs", True), f"{where}: create_dest_dirs")
    t.error_fatal = parse_bool(d.get("error_fatal", True), f"{where}: error_fatal")
    # both names are honoured together (consul-template combines the lists)
    t.function_denylist = (_strings(d.get("function_denylist"), f"{where}: function_denylist")
                           + _strings(d.get("function_blacklist"), f"{where}: function_blacklist"))
    t.sandbox_path = str(d.get("sandbox_path") or "")
    t.syntax = str(d.get("syntax") or "")
    return t


def _signal_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


_TOP_KEYS = {
    # consul-template's
    "consul", "deduplicate", "default_delimiters", "exec", "kill_signal", "log_level", "log_file", "max_stale",
    "pid_file", "reload_signal", "syslog", "template", "template_error_fatal", "vault", "nomad", "wait", "once",
    "parse_only", "block_query_wait", "err_on_failed_lookup", "telemetry",
    # meshctl's
    "register_service", "dry", "graceful_signal", "default_left_delimiter", "default_right_delimiter", "watch_templates", "syntax",
}
_CONSUL_KEYS = {"address", "auth", "namespace", "retry", "ssl", "token", "token_file", "transport"}


def _enabled(block: dict[str, Any], what: str) -> bool:
    """consul-template's rule for optional blocks: `enabled` if given, else any field enables it."""
    if "enabled" in block:
        return parse_bool(block["enabled"], f"{what}.enabled")
    return bool(block)


def _unsupported(data: dict[str, Any], consul: dict[str, Any]) -> list[str]:
    """Warnings for consul-template options meshctl reads but does not honour (never silently)."""
    out: list[str] = []
    if _object(data.get("vault"), "vault"):
        out.append("vault: Vault is not supported; the vault block is ignored "
                   "(secret, secrets and pkiCert are not available)")
    if _object(data.get("nomad"), "nomad"):
        out.append("nomad: Nomad is not supported; the nomad block is ignored")
    if _enabled(_object(data.get("syslog"), "syslog"), "syslog"):
        out.append("syslog: logging to syslog is not supported; logs go to stderr (or -log-file)")
    if _object(data.get("log_file"), "log_file"):
        out.append("log_file: not read from configuration files; use the -log-file flag (no rotation)")
    if _object(data.get("telemetry"), "telemetry"):
        out.append("telemetry: not supported; the telemetry block is ignored")
    if consul.get("namespace"):
        out.append("consul.namespace: namespaces (Consul Enterprise) are not supported; ignored")
    if _object(consul.get("transport"), "consul.transport"):
        out.append("consul.transport: connection tuning is not supported; ignored")
    for key in sorted(set(consul) - _CONSUL_KEYS):
        out.append(f"consul.{key}: unknown option; ignored")
    return out


_DEDUP_KEYS = {"enabled", "prefix", "ttl", "max_stale", "block_query_wait"}


def _dedup(block: dict[str, Any]) -> DedupConfig:
    _check_keys(block, _DEDUP_KEYS, "deduplicate")
    d = DedupConfig(enabled=_enabled(block, "deduplicate"))
    if block.get("prefix"):
        d.prefix = str(block["prefix"])
    for name in ("ttl", "max_stale", "block_query_wait"):
        if block.get(name) not in (None, ""):
            setattr(d, name, duration(block[name], f"deduplicate.{name}"))
    if d.ttl < 10:
        raise ConfigError("deduplicate.ttl: must be at least 10s (Consul's minimum session TTL)")
    return d


_REGISTER_KEYS = {"name", "id", "tags", "port", "ttl", "deregister_critical_after"}


def _register_service(value: Any) -> SelfHealthConfig:
    """`register_service "NAME"` or `register_service { name id tags port ttl deregister_critical_after }`."""
    if isinstance(value, str):
        return SelfHealthConfig(name=value)
    block = _object(value, "register_service")
    _check_keys(block, _REGISTER_KEYS, "register_service")
    h = SelfHealthConfig(name=str(block.get("name") or ""), id=str(block.get("id") or ""),
                         tags=_strings(block.get("tags"), "register_service.tags"))
    if block.get("port") not in (None, ""):
        h.port = int(block["port"])
    for name in ("ttl", "deregister_critical_after"):
        if block.get(name) not in (None, ""):
            setattr(h, name, duration(block[name], f"register_service.{name}"))
    if block and not h.name:
        raise ConfigError("register_service: a name is required")
    if h.ttl < 1:
        raise ConfigError("register_service.ttl: must be at least 1s")
    return h


def build(data: dict[str, Any]) -> Config:
    """A Config from merged data (file keys; flags use the same names)."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"config: unknown field(s) {', '.join(sorted(unknown))}")
    c = Config()
    consul_value = _one(data.get("consul"))
    if isinstance(consul_value, str):  # consul-template's deprecated `consul = "host:port"`
        consul_value = {"address": consul_value}
    consul = _object(consul_value, "consul")
    if consul:
        cc = c.consul
        cc.address = str(consul.get("address") or "")
        cc.token = str(consul.get("token") or "")
        cc.token_file = str(consul.get("token_file") or "")
        auth = _one(consul.get("auth"))
        if isinstance(auth, dict):
            if parse_bool(auth.get("enabled", True), "consul.auth.enabled") and auth.get("username"):
                cc.auth = f"{auth.get('username')}:{auth.get('password') or ''}".rstrip(":")
        elif auth:
            cc.auth = str(auth)
        ssl = _object(consul.get("ssl"), "consul.ssl")
        if ssl:
            if "enabled" in ssl:
                cc.ssl_enabled = parse_bool(ssl["enabled"], "consul.ssl.enabled")
            if "verify" in ssl:
                cc.ssl_verify = parse_bool(ssl["verify"], "consul.ssl.verify")
            cc.ssl_ca_cert = str(ssl.get("ca_cert") or "")
            cc.ssl_ca_path = str(ssl.get("ca_path") or "")
            cc.ssl_cert = str(ssl.get("cert") or "")
            cc.ssl_key = str(ssl.get("key") or "")
            cc.ssl_server_name = str(ssl.get("server_name") or "")
        retry = _object(consul.get("retry"), "consul.retry")
        if retry:
            r = cc.retry
            r.enabled = parse_bool(retry.get("enabled", True), "consul.retry.enabled")
            if retry.get("attempts") is not None:
                r.attempts = int(retry["attempts"])
            if retry.get("backoff") not in (None, ""):
                r.backoff = duration(retry["backoff"], "consul.retry.backoff")
            if retry.get("max_backoff") not in (None, ""):
                r.max_backoff = duration(retry["max_backoff"], "consul.retry.max_backoff")
    c.warnings = _unsupported(data, consul)
    c.dedup = _dedup(_object(data.get("deduplicate"), "deduplicate"))
    c.self_health = _register_service(_one(data.get("register_service")))
    if data.get("wait") not in (None, ""):
        wait = _one(data["wait"])
        if isinstance(wait, dict):
            _check_keys(wait, _WAIT_KEYS, "wait")
        c.wait = parse_wait(wait)
    if data.get("max_stale") not in (None, ""):
        c.max_stale = duration(data["max_stale"], "max_stale")
    if data.get("block_query_wait") not in (None, ""):
        c.block_query_wait = duration(data["block_query_wait"], "block_query_wait")
    for name in ("once", "dry", "parse_only", "err_on_failed_lookup", "watch_templates"):
        if data.get(name) is not None:
            setattr(c, name, parse_bool(data[name], name))
    if data.get("template_error_fatal") is not None:
        c.template_error_fatal = parse_bool(data["template_error_fatal"], "template_error_fatal")
    c.pid_file = str(data.get("pid_file") or "")
    if data.get("log_level"):
        c.log_level = str(data["log_level"])
    for name in ("kill_signal", "reload_signal", "graceful_signal"):
        if name in data:
            setattr(c, name, _signal_or_none(data[name]))
    delims = _object(data.get("default_delimiters"), "default_delimiters")
    _check_keys(delims, {"left", "right"}, "default_delimiters")
    c.default_left_delimiter = str(delims.get("left") or data.get("default_left_delimiter") or "")
    c.default_right_delimiter = str(delims.get("right") or data.get("default_right_delimiter") or "")
    c.syntax = str(data.get("syntax") or "")
    ex = _object(data.get("exec"), "exec")
    if ex:
        e = _exec(ex)
        if e.command:
            c.exec = e
    blocks = _blocks(data.get("template"))
    c.templates = [build_template(t) for t in blocks]
    for raw, t in zip(blocks, c.templates, strict=True):
        # template_error_fatal is the default; a template's own error_fatal wins
        if c.template_error_fatal is not None and raw.get("error_fatal") in (None, ""):
            t.error_fatal = c.template_error_fatal
        if not t.syntax and c.syntax:
            t.syntax = c.syntax
        if not t.left_delimiter:
            t.left_delimiter = c.default_left_delimiter
        if not t.right_delimiter:
            t.right_delimiter = c.default_right_delimiter
    if c.once:
        c.wait = WaitConfig()
    return c


_SHELL_CHARS = set("|&;<>()$`\\\"'*?[]~{}#=\n")


def split_command(command: list[str] | str) -> tuple[list[str], bool]:
    """(argv, via_shell): a list or a simple command runs directly, anything using shell syntax via `sh -c`.

    consul-template runs every string with spaces through `sh -c`; running simple commands
    directly means signals (reload, kill) reach the program itself, not an intermediate shell.
    """
    if isinstance(command, list):
        if len(command) == 1 and " " in command[0]:
            return split_command(command[0])
        return list(command), False
    text = command.strip()
    if not text:
        raise ValueError("empty command")
    words = text.split()
    if any(ch in _SHELL_CHARS for ch in text) or ("/" not in words[0] and shutil.which(words[0]) is None):
        return ["/bin/sh", "-c", text], True  # shell syntax, or a builtin such as `exit 3`
    return words, False
