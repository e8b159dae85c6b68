"""`meshctl git2consul [options]`: git2consul's flags and environment, on meshctl.sync's git2consul.

The flags are git2consul's own (not Go style): `-h` is --halt_on_change, not help. The
config JSON is read from the KV key (`-c`, default git2consul/config), seeded first from
`-f` when given; `-n`, `-h` and `-d` override the config's no_daemon, halt_on_change and
local_store. Exit codes are git2consul's: 1 no repos, 2 config/seed/start-up failure,
3-7 a flag without its value.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meshctl.client import Client, ConfigError, ConsulError
from meshctl.client.config import resolve_config
from meshctl.commands.common import err
from meshctl.sync.git2consul import (
    DEFAULT_CONFIG_KEY,
    EXIT_FLAG_VALUE,
    EXIT_INIT,
    EXIT_NO_REPOS,
    EXIT_OK,
    ConfigProblem,
    Git2ConsulConfig,
    parse_config,
    validate_local_store,
)
from meshctl.sync.git2consul_daemon import Git2ConsulDaemon

log = logging.getLogger("meshctl.git2consul")

SYNOPSIS = "Mirror git repositories into the KV store (git2consul)"
USAGE = """\
Usage: meshctl git2consul [options]

  Mirrors the branches of git repositories into the KV store, as git2consul does. The
  configuration (git2consul's JSON, unchanged) is read from the KV key given by -c.

Options:
  -e, --endpoint HOST        Consul host (env CONSUL_ENDPOINT; default 127.0.0.1)
  -p, --port PORT            Consul HTTP port (env CONSUL_PORT; default 8500)
  -s, --secure               Use https (env CONSUL_SECURE)
  -t, --token TOKEN          ACL token, needs KV read/write (env TOKEN, then CONSUL_HTTP_TOKEN)
  -c, --config-key KEY       KV key holding the config (default git2consul/config)
  -f, --config-file FILE     Write FILE (JSON) to the config key first, then run from it
  -n, --no_daemon            Sync every branch once and exit; no hooks
  -h, --halt_on_change       Exit 0 when the config key changes
  -d, --local_store DIR      Where the clones live (default: the config's local_store, else the temp dir)
  --help                     This text

  Without -e/-p (and CONSUL_ENDPOINT/CONSUL_PORT), CONSUL_HTTP_ADDR is honoured as in every
  meshctl command; CONSUL_CACERT and friends too.
"""

# flag spelling -> option name; the value flags take the next argument (even one starting with "-").
VALUE_FLAGS = {
    "-e": "endpoint", "--endpoint": "endpoint",
    "-p": "port", "--port": "port",
    "-t": "token", "--token": "token",
    "-c": "config_key", "--config-key": "config_key", "--config_key": "config_key",
    "-f": "config_file", "--config-file": "config_file", "--config_file": "config_file",
    "-d": "local_store", "--local_store": "local_store", "--local-store": "local_store",
}
SWITCHES = {
    "-s": "secure", "--secure": "secure",
    "-n": "no_daemon", "--no_daemon": "no_daemon", "--no-daemon": "no_daemon",
    "-h": "halt_on_change", "--halt_on_change": "halt_on_change", "--halt-on-change": "halt_on_change",
}
MISSING_VALUE = {
    "endpoint": "No endpoint provided with --endpoint option",
    "port": "No port provided with --port option",
    "token": "No token provided with --token option",
    "config_key": "No consul Key name provided with --config-key option",
    "config_file": "No file provided with --config-file option",
    "local_store": "No dir provided with --local_store option",
}


class UsageError(Exception):
    """A bad command line; `code` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Options:
    """The command line, after the environment filled the gaps."""

    endpoint: str | None = None
    port: str | None = None
    secure: bool = False
    token: str | None = None
    config_key: str = DEFAULT_CONFIG_KEY
    config_file: str | None = None
    no_daemon: bool = False
    halt_on_change: bool = False
    local_store: str | None = None
    help: bool = False


def _env_true(value: str | None) -> bool:
    # git2consul took any CONSUL_SECURE as true, even "false"; "false", "0", "no" and "" mean false here.
    return value is not None and value.strip().lower() not in ("false", "0", "no", "off", "")


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Options:
    """Parse git2consul's command line (UsageError with git2consul's exit code on a missing value)."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    opts = Options()
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg in ("--help", "-help", "-?"):
            opts.help = True
        elif name in VALUE_FLAGS:
            dest = VALUE_FLAGS[name]
            if eq:
                values[dest] = inline
            elif i + 1 < len(args):
                i += 1
                values[dest] = args[i]
            else:
                raise UsageError(MISSING_VALUE[dest], EXIT_FLAG_VALUE[dest])
        elif arg in SWITCHES:
            setattr(opts, SWITCHES[arg], True)
        else:
            raise UsageError(f"unknown argument {arg!r} (see meshctl git2consul --help)", EXIT_NO_REPOS)
        i += 1
    opts.endpoint = values.get("endpoint") or env.get("CONSUL_ENDPOINT") or None
    opts.port = values.get("port") or env.get("CONSUL_PORT") or None
    opts.secure = opts.secure or _env_true(env.get("CONSUL_SECURE"))
    opts.token = values.get("token") or env.get("TOKEN") or None
    opts.config_key = values.get("config_key") or DEFAULT_CONFIG_KEY
    opts.config_file = values.get("config_file") or None
    opts.local_store = values.get("local_store") or None
    if opts.port is not None and not opts.port.strip().isdigit():
        raise UsageError(f"Invalid port {opts.port!r}", EXIT_FLAG_VALUE["port"])
    return opts


def make_client(opts: Options) -> Client:
    """A client for git2consul's endpoint/port/secure/token (CONSUL_HTTP_* when those are unset)."""
    addr = None
    if opts.endpoint or opts.port:
        addr = f"{opts.endpoint or '127.0.0.1'}:{(opts.port or '8500').strip()}"
    scheme = "https" if opts.secure else None
    return Client(config=resolve_config(addr, opts.token, scheme=scheme))


def seed_config(client: Client, key: str, path: str) -> None:
    """`-f`: check the file is JSON and write it to the config key (ConfigProblem, exit 2, if not)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigProblem(f"Failed to read config file {path}: {e.strerror or e}") from None
    try:
        json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigProblem(f"config_file {path} is not valid JSON: {e}") from None
    try:
        client.kv.put(key, raw)
    except ConsulError as e:
        raise ConfigProblem(f"Failed to write config file {path} to key {key} due to {e}") from None
    log.info("Added %s to KV %s", path, key)


def read_config(client: Client, key: str) -> Git2ConsulConfig:
    """The config document at `key` (ConfigProblem when absent, unreadable or invalid)."""
    try:
        pair = client.kv.get(key).value
    except ConsulError as e:
        raise ConfigProblem(f"Failed to read config key {key} due to {e}") from None
    if pair is None:
        raise ConfigProblem(f"No git2consul config at key {key}: write it there, or seed it with -f/--config-file")
    return parse_config(pair.value)


_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR, "fatal": logging.CRITICAL}


def main(argv: list[str]) -> int:
    """Entry point of `meshctl git2consul`."""
    try:
        opts = parse_args(argv)
    except UsageError as e:
        err(f"git2consul: {e}")
        return e.code
    if opts.help:
        sys.stdout.write(USAGE)
        return EXIT_OK
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] (git2consul) %(message)s")
    try:
        client = make_client(opts)
    except ConfigError as e:
        err(f"git2consul: Error initializing client: {e}")
        return EXIT_INIT
    with client:
        try:
            if opts.config_file:
                seed_config(client, opts.config_key, opts.config_file)
            config = read_config(client, opts.config_key)
            # Command-line switches override the settings loaded from the store.
            config.no_daemon = config.no_daemon or opts.no_daemon
            config.halt_on_change = config.halt_on_change or opts.halt_on_change
            local_store = opts.local_store or config.local_store or tempfile.gettempdir()
            validate_local_store(local_store)
        except ConfigProblem as e:
            err(f"git2consul: {e}")
            return e.exit_code
        if config.log_level:
            logging.getLogger().setLevel(_LEVELS[config.log_level])
        daemon = Git2ConsulDaemon(client, config, config_key=opts.config_key, local_store=local_store)
        return daemon.run()
