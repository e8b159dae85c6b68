"""`meshctl template`: consul-template's command line on meshctl.template's runner.

    meshctl template -template "in.ctmpl:out.conf:service nginx reload" [-once] [-dry]
    meshctl template -config ct.hcl -exec "haproxy -f out.cfg" -exec-reload-signal SIGUSR2

Exit codes are consul-template's: 0 ok, 11 error, 12 interrupted (kill signal), 13 bad flags,
14 runner error (template, render, command, watch), 15 bad configuration; with -exec, the
child's exit code. Unlike consul-template, SIGTERM stops gracefully with exit 0
(-graceful-signal; "" restores consul-template's forwarding).
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from meshctl import __version__
from meshctl.child import parse_signal
from meshctl.client import Client
from meshctl.client.config import ConfigError as ClientConfigError
from meshctl.durations import duration_arg
from meshctl.flags import FlagError, FlagParser, RaisingFlagParser
from meshctl.process import forward_signals
from meshctl.template import config as cfgmod
from meshctl.template.config import Config, ConfigError
from meshctl.template.runner import (
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_FLAGS,
    EXIT_OK,
    Runner,
    RunnerError,
    TemplateState,
)
from meshctl.template.template import Execution

if TYPE_CHECKING:  # prometheus_client is imported only when -metrics-addr is given
    from meshctl.metrics import ToolMetrics

log = logging.getLogger("meshctl.template")


def build_parser() -> FlagParser:
    """consul-template's flags (and a few of ours)."""
    p = RaisingFlagParser(prog="meshctl template", description="Render templates from Consul data (consul-template).")
    p.flag("config", action="append", default=[], help="Config file or directory (HCL, JSON, YAML); repeatable")
    p.flag("template", action="append", default=[], help='"in:out[:command]"; repeatable')
    p.flag("consul-addr", default=None, help="Consul address (CONSUL_HTTP_ADDR)")
    p.flag("consul-token", default=None, help="ACL token (CONSUL_HTTP_TOKEN / CONSUL_TOKEN)")
    p.flag("consul-token-file", default=None, help="File holding the ACL token")
    p.flag("consul-auth", default=None, help="HTTP basic auth user[:pass]")
    p.bool_flag("consul-ssl", default=None, help="Use HTTPS")
    p.flag("consul-ssl-ca-cert", default=None)
    p.flag("consul-ssl-ca-path", default=None)
    p.flag("consul-ssl-cert", default=None)
    p.flag("consul-ssl-key", default=None)
    p.flag("consul-ssl-server-name", default=None)
    p.bool_flag("consul-ssl-verify", default=None)
    p.bool_flag("consul-retry", default=None, help="Retry failed queries (default true)")
    p.flag("consul-retry-attempts", type=int, default=None, help="Retries before giving up (12; 0 = forever)")
    p.flag("consul-retry-backoff", type=duration_arg, default=None, help="First retry delay (250ms), doubled each time")
    p.flag("consul-retry-max-backoff", type=duration_arg, default=None, help="Longest retry delay (1m)")
    p.flag("retry", type=duration_arg, default=None, help="Same as -consul-retry-backoff")
    p.flag("wait", default=None, help="Quiescence min[:max], e.g. 5s:30s")
    p.bool_flag("once", default=None, help="Render once and exit")
    p.bool_flag("dry", default=None, help="Print to stdout instead of writing files; run no commands")
    p.bool_flag("parse-only", default=None, help="Only parse the templates")
    p.flag("exec", default=None, help="Command to run and supervise once all templates rendered")
    p.flag("exec-reload-signal", default=None, help="Signal to the child when a template changes (else restart)")
    p.flag("exec-kill-signal", default=None, help="Signal that stops the child (SIGTERM)")
    p.flag("exec-kill-timeout", type=duration_arg, default=None, help="Wait this long before SIGKILL (30s)")
    p.flag("exec-splay", type=duration_arg, default=None, help="Random delay before reload/kill signals")
    p.bool_flag("exec-env-pristine", default=None)
    p.flag("exec-env-custom", action="append", default=None)
    p.flag("exec-env-allowlist", "exec-env-whitelist", action="append", default=None)
    p.flag("exec-env-denylist", "exec-env-blacklist", action="append", default=None)
    p.bool_flag("dedup", default=None, help="De-duplication: one instance per template queries, the others follow")
    p.flag("dedup-prefix", default=None, help="KV prefix of the de-duplication locks and data (consul-template/dedup/)")
    p.flag("register-service", default=None, metavar="NAME",
           help="Register this instance with the local agent as service NAME, with a TTL check of its health")
    p.flag("max-stale", type=duration_arg, default=None, help="Allow stale reads this old (2s; 0 disables)")
    p.flag("block-query-wait", type=duration_arg, default=None, help="Blocking query wait (60s)")
    p.flag("pid-file", default=None)
    p.flag("log-level", default=None, help="ERR, WARN, INFO, DEBUG, TRACE (CONSUL_TEMPLATE_LOG_LEVEL)")
    p.flag("kill-signal", default=None, help="Stop now with exit 12 (SIGINT)")
    p.flag("reload-signal", default=None, help="Reload config and templates (SIGHUP)")
    p.flag("graceful-signal", default=None, help="Stop gracefully with exit 0 (SIGTERM)")
    p.bool_flag("template-error-fatal", default=None)
    p.bool_flag("err-on-failed-lookup", default=None, help="Fail when a key used by `key` does not exist")
    p.flag("default-left-delimiter", default=None)
    p.flag("default-right-delimiter", default=None)
    p.bool_flag("watch-templates", default=None, help="Re-read template files when they change")
    p.flag("syntax", default=None, choices=["go", "jinja"], help="Template syntax (default: by extension)")
    p.flag("log-file", default=None)
    p.bool_flag("syslog", default=None)
    p.bool_flag("v", "version", default=False, help="Print the version")
    p.flag("metrics-addr", default=None, help="Serve Prometheus metrics on host:port (':9102' is 127.0.0.1)")
    return p


def flags_data(args: argparse.Namespace) -> dict[str, Any]:
    """The flags as config-file data (only those given)."""
    d: dict[str, Any] = {}
    consul: dict[str, Any] = {}
    for flag, key in (("consul_addr", "address"), ("consul_token", "token"), ("consul_token_file", "token_file"),
                      ("consul_auth", "auth")):
        if getattr(args, flag) is not None:
            consul[key] = getattr(args, flag)
    ssl = {k: getattr(args, f"consul_ssl_{k}") for k in ("ca_cert", "ca_path", "cert", "key", "server_name", "verify")
           if getattr(args, f"consul_ssl_{k}") is not None}
    if args.consul_ssl is not None:
        ssl["enabled"] = args.consul_ssl
    if ssl:
        consul["ssl"] = ssl
    retry: dict[str, Any] = {}
    if args.consul_retry is not None:
        retry["enabled"] = args.consul_retry
    if args.consul_retry_attempts is not None:
        retry["attempts"] = args.consul_retry_attempts
    if args.retry is not None:
        retry["backoff"] = args.retry
    if args.consul_retry_backoff is not None:
        retry["backoff"] = args.consul_retry_backoff
    if args.consul_retry_max_backoff is not None:
        retry["max_backoff"] = args.consul_retry_max_backoff
    if retry:
        consul["retry"] = retry
    if consul:
        d["consul"] = consul
    simple = ("wait", "once", "dry", "parse_only", "max_stale", "block_query_wait", "pid_file", "log_level",
              "kill_signal", "reload_signal", "graceful_signal", "template_error_fatal", "err_on_failed_lookup",
              "default_left_delimiter", "default_right_delimiter", "watch_templates", "syntax")
    for name in simple:
        if getattr(args, name) is not None:
            d[name] = getattr(args, name)
    dedup: dict[str, Any] = {}
    if args.dedup is not None:
        dedup["enabled"] = args.dedup
    if args.dedup_prefix is not None:
        dedup["prefix"] = args.dedup_prefix
    if dedup:
        d["deduplicate"] = dedup
    if args.register_service is not None:
        d["register_service"] = {"name": args.register_service}
    ex: dict[str, Any] = {}
    if args.exec is not None:
        ex["command"] = args.exec
    for flag, key in (("exec_reload_signal", "reload_signal"), ("exec_kill_signal", "kill_signal"),
                      ("exec_kill_timeout", "kill_timeout"), ("exec_splay", "splay")):
        if getattr(args, flag) is not None:
            ex[key] = getattr(args, flag)
    env: dict[str, Any] = {}
    for flag, key in (("exec_env_pristine", "pristine"), ("exec_env_custom", "custom"),
                      ("exec_env_allowlist", "allowlist"), ("exec_env_denylist", "denylist")):
        if getattr(args, flag) is not None:
            env[key] = getattr(args, flag)
    if env:
        ex["env"] = env
    if ex:
        d["exec"] = ex
    return d


def load_config(args: argparse.Namespace) -> Config:
    """defaults < -config files < flags; -template flags add templates after the files' ones."""
    import os

    data = cfgmod.load_files(args.config)
    if "log_level" not in data:
        env_level = os.environ.get("CONSUL_TEMPLATE_LOG_LEVEL") or os.environ.get("CONSUL_TEMPLATE_LOG")
        if env_level:
            data["log_level"] = env_level
    cfgmod.merge(data, flags_data(args))
    config = cfgmod.build(data)
    for value in args.template:
        tc = cfgmod.parse_template_flag(value)
        if config.template_error_fatal is not None:
            tc.error_fatal = config.template_error_fatal
        tc.syntax = tc.syntax or config.syntax
        tc.left_delimiter = config.default_left_delimiter
        tc.right_delimiter = config.default_right_delimiter
        config.templates.append(tc)
    if not config.templates:
        raise ConfigError("must specify at least one template (-template or a template block in -config)")
    for sig in (config.kill_signal, config.reload_signal, config.graceful_signal):
        if sig:
            _check_signal(sig)
    if config.exec is not None:
        for sig in (config.exec.kill_signal, config.exec.reload_signal):
            if sig:
                _check_signal(sig)
    config.config_paths = list(args.config)
    return config


def _check_signal(name: str) -> None:
    try:
        parse_signal(name)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def make_client(config: Config) -> Client:
    """The one client, from -consul-* flags / config, falling back to CONSUL_* variables."""
    c = config.consul
    from meshctl.client.config import resolve_config

    scheme = None
    if c.ssl_enabled is not None:
        scheme = "https" if c.ssl_enabled else "http"
    verify: bool | str | None = c.ssl_verify
    if (c.ssl_ca_cert or c.ssl_ca_path) and verify is not False:
        verify = c.ssl_ca_cert or c.ssl_ca_path
    cfg = resolve_config(c.address or None, c.token or None, token_file=c.token_file or None, scheme=scheme,
                         verify=verify, client_cert=c.ssl_cert or None, client_key=c.ssl_key or None,
                         tls_server_name=c.ssl_server_name or None, auth=c.auth or None)
    return Client(config=cfg, pool_size=4096)


LOG_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
              "WARNING": logging.WARNING, "ERR": logging.ERROR, "ERROR": logging.ERROR}


def setup_logging(level: str, log_file: str | None = None) -> None:
    """consul-template-looking log lines on stderr (or a file)."""
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] (%(name)s) %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LOG_LEVELS.get(level.upper(), logging.WARNING))
    if level.upper() != "TRACE":  # one line per HTTP request only when asked for
        logging.getLogger("urllib3").setLevel(logging.WARNING)
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
        logging.getLogger("meshctl.client").setLevel(max(root.level, logging.INFO))


class MeteredRunner(Runner):
    """The runner, counting what `-metrics-addr` shows: renders, render errors, commands, dependencies."""

    def __init__(self, *args: Any, metrics: ToolMetrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_render: float | None = None
        self.renders = metrics.counter("renders", "Templates rendered to their destination", ["template"])
        self.render_errors = metrics.counter("render_errors", "Template executions or writes that failed",
                                             ["template"])
        self.commands = metrics.counter("commands", "Commands run after a render")
        self.command_failures = metrics.counter("command_failures", "Commands that failed or timed out")
        metrics.gauge_function("seconds_since_last_render", "Seconds since a template was last rendered "
                               "(NaN before the first)", self._since_render)
        metrics.gauge_function("dependencies", "Dependencies (keys, services ...) watched", self.watcher.size)

    def _since_render(self) -> float:
        return math.nan if self.last_render is None else time.monotonic() - self.last_render

    def _evaluate(self, s: TemplateState) -> Execution | None:
        try:
            ex = super()._evaluate(s)
        except RunnerError:
            self.render_errors.labels(s.config.label).inc()
            raise
        if ex is None and s.failed:
            self.render_errors.labels(s.config.label).inc()
        return ex

    def _write(self, s: TemplateState, ex: Execution) -> bool:
        # every successful path of Runner._write marks the state rendered: its error path does not
        was_rendered, renders = s.rendered, s.renders
        s.rendered = False
        try:
            wrote = super()._write(s, ex)
        except RunnerError:
            s.rendered = was_rendered
            self.render_errors.labels(s.config.label).inc()
            raise
        if not s.rendered:
            s.rendered = was_rendered
            self.render_errors.labels(s.config.label).inc()
        elif s.renders > renders or not s.config.destination:
            self.renders.labels(s.config.label).inc()
            self.last_render = time.monotonic()
        return wrote

    def _run_command(self, cmd: list[str] | str, timeout: float, env: dict[str, str]) -> None:
        self.commands.inc()
        try:
            super()._run_command(cmd, timeout, env)
        except RunnerError:
            self.command_failures.inc()
            raise


HANDLED_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
                   signal.SIGWINCH)


def main(argv: list[str]) -> int:
    """Entry point of `meshctl template`."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except FlagError as e:
        print(f"meshctl template: {e}", file=sys.stderr)
        return EXIT_FLAGS
    if args.v:
        print(f"meshctl template v{__version__} (consul-template compatible)")
        return EXIT_OK
    try:
        config = load_config(args)
    except (ConfigError, ValueError) as e:
        print(f"meshctl template: {e}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, args.log_file)
    try:
        client = make_client(config)
    except (ClientConfigError, ValueError) as e:
        print(f"meshctl template: {e}", file=sys.stderr)
        return EXIT_CONFIG

    def reload_config() -> Config:
        return load_config(args)

    metrics: ToolMetrics | None = None
    runner: Runner
    if args.metrics_addr:
        from meshctl.metrics import ToolMetrics, serve_or_exit

        metrics = ToolMetrics("template")
        runner = MeteredRunner(config, client, reload_config=reload_config, metrics=metrics)
        if not serve_or_exit(metrics, args.metrics_addr, lambda m: print(f"meshctl template: {m}", file=sys.stderr)):
            client.close()
            return EXIT_CONFIG
    else:
        runner = Runner(config, client, reload_config=reload_config)
    try:
        with forward_signals(runner, HANDLED_SIGNALS):  # off the main thread: none
            return runner.run()
    except Exception as e:  # a bug: say so, with consul-template's generic code
        log.exception("unexpected error")
        print(f"meshctl template: {e}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        client.close()
        if metrics is not None:
            metrics.close()
