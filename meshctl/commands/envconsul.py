"""`meshctl envconsul [options] <command...>`: envconsul's flags, on meshctl.sync.envconsul's runner."""

from __future__ import annotations

import argparse
import logging
from argparse import Namespace, RawDescriptionHelpFormatter

from meshctl.child import parse_signal
from meshctl.commands.common import CommandError, err, make_client, new_parser, parse
from meshctl.durations import duration_arg
from meshctl.flags import FlagParser, parse_bool
from meshctl.sync.envconsul import (
    EXIT_CONFIG,
    EXIT_PARSE_FLAGS,
    EnvConsulConfig,
    EnvConsulRunner,
    PrefixConfig,
    remove_pid_file,
    write_pid_file,
)

SYNOPSIS = "Run a command with Consul KV prefixes as its environment"
DESCRIPTION = """\
  Watches values from Consul's K/V store and sets environment variables when
  Consul values are changed. It spawns a child process populated with the
  environment variables; when they change, the child is stopped (exec kill
  signal, then SIGKILL after the exec kill timeout) and started again.

  Keys become variable names relative to their prefix (later -prefix flags win);
  -sanitize turns characters outside [A-Za-z0-9_] into "_", -upcase uppercases.
  The child's exit ends envconsul with the child's exit status. The kill signal
  (SIGINT) stops the child and exits 12; the reload signal (SIGHUP) restarts the
  child; every other signal is relayed to the child."""


def _signal(value: str) -> int | None:
    if value.strip() == "":
        return None
    try:
        return int(parse_signal(value))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _wait(value: str) -> tuple[float, float]:
    """consul-template's `-wait=min[:max]` (max defaults to 4 × min)."""
    lo, _, hi = value.partition(":")
    wmin = duration_arg(lo)
    wmax = duration_arg(hi) if hi else 4 * wmin
    if wmin < 0 or wmax < 0 or (hi and wmin > wmax):
        raise argparse.ArgumentTypeError(f"invalid wait value {value!r}")
    return wmin, wmax


def build_parser() -> FlagParser:
    """envconsul's flag table (Consul parts; Vault and service queries are not implemented)."""
    p = new_parser("meshctl envconsul", DESCRIPTION)
    p.formatter_class = RawDescriptionHelpFormatter
    p.usage = "meshctl envconsul [options] <command...>"
    p.flag("prefix", action="append", default=[],
           help="A Consul KV prefix (path[@dc]) whose keys become variables; repeatable, later ones win")
    p.flag("no-prefix", type=parse_bool, nargs="?", const=True, default=None,
           help="Do not put the prefix path in front of variable names (default true for Consul KV); "
                "-no-prefix=false names variables <prefix>_<key>")
    p.bool_flag("sanitize", help="Replace invalid characters in keys with underscores")
    p.bool_flag("upcase", help="Convert all environment variable keys to uppercase")
    p.bool_flag("pristine", help="Only use values retrieved from prefixes, do not inherit the existing environment")
    p.bool_flag("once", help="Do not run the process as a daemon: fetch once, do not restart on changes")
    p.flag("exec", default="", dest="exec_command", help="Command to execute (instead of trailing arguments)")
    p.flag("exec-kill-signal", type=_signal, default="SIGINT",
           help="Signal sent to the child to stop it (default SIGINT)")
    p.flag("exec-kill-timeout", type=duration_arg, default=30.0,
           help="Time to wait for the child to exit after the kill signal before SIGKILL (default 30s)")
    p.flag("exec-splay", type=duration_arg, default=0.0,
           help="Random delay up to this long before stopping the child (default 0)")
    p.flag("kill-signal", type=_signal, default="SIGINT",
           help="Signal that stops envconsul (and the child), exit 12 (default SIGINT)")
    p.flag("reload-signal", type=_signal, default="SIGHUP",
           help="Signal that restarts the child with a fresh environment (default SIGHUP)")
    p.flag("wait", type=_wait, default=None,
           help="Quiescence min[:max] before restarting after a change (e.g. 2s:10s)")
    p.flag("max-stale", type=duration_arg, default=2.0,
           help="Allow stale reads (any server answers) when > 0 (default 2s)")
    p.flag("consul-token", dest="token", default=None, help="ACL token (alias of -token)")
    p.flag("consul-retry-attempts", type=int, default=12,
           help="Failed fetches in a row before giving up, exit 14; 0 retries forever (default 12)")
    p.flag("consul-retry-backoff", type=duration_arg, default=0.25, help="First retry delay (default 250ms)")
    p.flag("consul-retry-max-backoff", type=duration_arg, default=60.0, help="Largest retry delay (default 1m)")
    p.flag("pid-file", default="", help="Path to write the PID of this process to")
    p.flag("log-level", default="warn", help="Log level: trace, debug, info, warn, err (default warn)")
    return p


def config_from_args(args: Namespace, rest: list[str]) -> EnvConsulConfig:
    """The runner's configuration from parsed flags and the trailing command."""
    command = [args.exec_command] if args.exec_command else list(rest)
    wait_min, wait_max = args.wait or (0.0, 0.0)
    return EnvConsulConfig(
        prefixes=[PrefixConfig(path, no_prefix=args.no_prefix) for path in args.prefix],
        command=command, sanitize=args.sanitize, upcase=args.upcase, pristine=args.pristine, once=args.once,
        kill_signal=args.kill_signal, reload_signal=args.reload_signal,
        exec_kill_signal=args.exec_kill_signal or 2, exec_kill_timeout=args.exec_kill_timeout,
        exec_splay=args.exec_splay, wait_min=wait_min, wait_max=wait_max, stale=args.max_stale > 0,
        retry_attempts=args.consul_retry_attempts or None, retry_backoff=args.consul_retry_backoff,
        retry_max_backoff=args.consul_retry_max_backoff,
    )


def main(argv: list[str]) -> int:
    """Entry point of `meshctl envconsul`."""
    parser = build_parser()
    try:
        args, rest = parse(parser, argv)
    except SystemExit as e:
        return 0 if e.code in (0, None) else EXIT_PARSE_FLAGS
    level = {"trace": "DEBUG", "debug": "DEBUG", "info": "INFO", "warn": "WARNING", "err": "ERROR",
             "error": "ERROR"}.get(args.log_level.lower(), "WARNING")
    logging.basicConfig(level=level, format="%(asctime)s [%(levelname)s] (envconsul) %(message)s")
    cfg = config_from_args(args, rest)
    problem = cfg.validate()
    if problem:
        err(f"envconsul: {problem}")
        return EXIT_CONFIG
    try:
        client = make_client(args)
    except CommandError as e:
        err(str(e))
        return EXIT_CONFIG
    if args.pid_file:
        write_pid_file(args.pid_file)
    try:
        with client:
            return EnvConsulRunner(client, cfg).run()
    finally:
        if args.pid_file:
            remove_pid_file(args.pid_file)
