"""`meshctl registrator [options] [consul://127.0.0.1:8500]`: registrator's flags over meshctl.registrator.

Sources: `-source docker[=unix:///var/run/docker.sock]` (the default; DOCKER_HOST when no
address is given), `-source marathon=http://marathon:8080`, `-source mesos=http://m1:5050,http://m2:5050`.
Repeat -source to run several at once; each has its own bridge and ownership marker.
Marathon and Mesos services go to the Consul agent on each task's host (`<host>:-consul-port`),
as marathon-consul and mesos-consul do; `-agent-per-host=false` sends them to the registry
URI's agent instead. Docker containers always go to the registry URI's (local) agent.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from argparse import Namespace
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from meshctl import __version__
from meshctl.client import Client, ConfigError, ConsulError
from meshctl.client.config import resolve_config
from meshctl.commands.common import err, new_parser, parse
from meshctl.durations import duration_arg
from meshctl.flags import FlagParser
from meshctl.process import signal_handlers
from meshctl.registrator.bridge import Bridge
from meshctl.selfhealth import Problem, SelfHealth, SelfHealthConfig

log = logging.getLogger("meshctl.registrator")

DESCRIPTION = """\
  Registers Docker containers' published ports (or Marathon apps, or Mesos tasks) as
  services with the Consul agent at the registry URI, and deregisters them when they stop.
  Service names, IDs, tags and checks follow gliderlabs/registrator (SERVICE_* env and
  labels), allegro/marathon-consul and mesos-consul."""


@dataclass
class SourceSpec:
    """One `-source kind[=address]`."""

    kind: str
    address: str = ""


def _source(value: str) -> SourceSpec:
    kind, _, address = value.partition("=")
    kind = kind.strip().lower()
    if kind not in ("docker", "marathon", "mesos"):
        raise argparse.ArgumentTypeError(f"unknown source {kind!r} (docker, marathon or mesos)")
    if kind in ("marathon", "mesos") and not address:
        raise argparse.ArgumentTypeError(f"-source {kind} needs an address: {kind}=http://host:port")
    return SourceSpec(kind, address.strip())


def build_parser() -> FlagParser:
    """registrator's flag table, plus -source and the Marathon/Mesos settings."""
    p = new_parser("meshctl registrator", DESCRIPTION, http=False)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.usage = "meshctl registrator [options] [consul://127.0.0.1:8500]"
    p.flag("ip", default="", help="IP for ports mapped to the host")
    p.bool_flag("internal", help="Use internal ports instead of published ones")
    p.bool_flag("explicit", help="Only register containers which have SERVICE_NAME label set")
    p.flag("useIpFromLabel", dest="use_ip_from_label", default="",
           help="Use IP which is stored in a label assigned to the container")
    p.flag("tags", default="", help="Append tags for all registered services (may be a Go template)")
    p.flag("ttl", type=int, default=0, help="TTL for services (default is no expiry)")
    p.flag("ttl-refresh", type=int, default=0, help="Frequency with which service TTLs are refreshed")
    p.flag("resync", type=int, default=None,
           help="Frequency (seconds) with which services are resynchronized (docker: 0 = never; "
                "marathon: 900; mesos: the poll interval, 60)")
    p.flag("deregister", default="always", choices=("always", "on-success"),
           help="Deregister exited services \"always\" or \"on-success\"")
    p.bool_flag("cleanup", help="Remove dangling services")
    p.flag("retry-attempts", type=int, default=0,
           help="Max retry attempts to establish a connection with the backend. Use -1 for infinite retries")
    p.flag("retry-interval", type=int, default=2000, help="Interval (in millisecond) between retry-attempts")
    p.flag("source", type=_source, action="append", default=[],
           help="docker[=unix:///path.sock], marathon=http://host:8080, mesos=http://m1:5050[,http://m2:5050]")
    p.flag("hostname", default="", help="Host name used in service IDs (default: this host's name)")
    p.bool_flag("agent-per-host", default=True,
                help="marathon, mesos: register each task's services on the Consul agent of its host "
                     "(<host>:-consul-port), as marathon-consul and mesos-consul do (default true; "
                     "false: the registry URI's agent)")
    p.flag("consul-port", type=int, default=0,
           help="marathon, mesos: HTTP port of the Consul agent on each host (default: the registry "
                "URI's port, 8500 for consul://127.0.0.1:8500)")
    p.flag("consul-name-separator", default=".", help="marathon: replaces / in app ids (default .)")
    p.flag("consul-tag", default="marathon", help="marathon: tag marking its services (default marathon)")
    p.flag("marathon-timeout", type=duration_arg, default=30.0, help="marathon: request timeout (default 30s)")
    p.flag("consul-ignored-healthchecks", default="",
           help="marathon: comma-separated health check protocols not mapped to Consul checks")
    p.flag("service-name", default="mesos", help="mesos: service name of masters and agents (default mesos)")
    p.flag("service-id-prefix", default="mesos-consul", help="mesos: prefix of service IDs (default mesos-consul)")
    p.flag("group-separator", default="", help="mesos: replaces _ in task names (default: removed)")
    p.flag("mesos-ip-order", default="netinfo,mesos,host",
           help="mesos: where task addresses come from, in order (netinfo, mesos, docker, host)")
    p.flag("task-tag", action="append", default=[], help="mesos: pattern:tag1,tag2 adds tags to matching tasks")
    p.flag("register-service", default=None, metavar="NAME",
           help="Register registrator itself with the agent as service NAME, with a TTL check of its health")
    p.flag("log-level", default="INFO", help="DEBUG, INFO, WARN or ERROR (default INFO)")
    p.bool_flag("version", help="Show version")
    p.flag("metrics-addr", default=None, help="Serve Prometheus metrics on host:port (':9102' is 127.0.0.1)")
    return p


def client_for(uri: str) -> Client:
    """A client for registrator's registry URI: consul://, consul-tls://, consul-unix://."""
    if "://" not in uri:
        uri = f"consul://{uri}"
    scheme = uri.split("://", 1)[0].lower()
    rest = uri.split("://", 1)[1]
    if scheme == "consul":
        addr = urlsplit(uri).netloc or "127.0.0.1:8500"
        return Client(config=resolve_config(f"http://{addr}"))
    if scheme == "consul-tls":
        addr = urlsplit(uri).netloc or "127.0.0.1:8501"
        return Client(config=resolve_config(f"https://{addr}"))
    if scheme == "consul-unix":
        return Client(config=resolve_config(f"unix://{rest}"))
    raise ConfigError(f"unrecognized adapter: {uri} (consul://, consul-tls:// or consul-unix://)")


def wait_for_backend(client: Client, attempts: int, interval: float, stop: threading.Event) -> bool:
    """registrator's startup ping (status/leader), retried `attempts` times (-1 = forever)."""
    tried = 0
    while True:
        try:
            leader = client.status.leader()
            log.info("consul: current leader %s", leader)
            return True
        except ConsulError as e:
            if attempts != -1 and tried >= attempts:
                err(f"registrator: cannot reach the Consul agent at {client.config.base_url}: {e}")
                return False
            tried += 1
            log.warning("consul: %s; retrying in %.1fs (attempt %d)", e, interval, tried)
            if stop.wait(interval):
                return False


def host_agent_port(args: Namespace, client: Client) -> int:
    """-consul-port, else the registry URI's port: the agents of a cluster usually share one."""
    if args.consul_port:
        return int(args.consul_port)
    if client.config.scheme == "unix":
        return 8500
    return urlsplit(client.config.base_url).port or 8500


def _runners(args: Namespace, client: Client, hostname: str) -> list[tuple[Bridge, Any]]:
    out: list[tuple[Bridge, Any]] = []
    specs = args.source or [SourceSpec("docker")]
    agent_port = host_agent_port(args, client) if args.agent_per_host else None  # docker: always local
    for spec in specs:
        if spec.kind == "docker":
            from meshctl.registrator import docker as dk
            from meshctl.registrator.docker_rules import DockerConfig, legacy_owned

            cfg = DockerConfig(hostname=hostname, host_ip=args.ip, internal=args.internal, explicit=args.explicit,
                               use_ip_from_label=args.use_ip_from_label, tags=args.tags, ttl=args.ttl,
                               deregister=args.deregister)
            bridge = Bridge(client, "docker", f"meshctl@{hostname}", cleanup=args.cleanup,
                            legacy_owned=legacy_owned(hostname), resync=float(args.resync or 0),
                            ttl_refresh=float(args.ttl_refresh))
            out.append((bridge, dk.DockerSource(bridge, cfg, spec.address or None)))
        elif spec.kind == "marathon":
            from meshctl.registrator import marathon as mt

            ignored = frozenset(p.strip().upper() for p in args.consul_ignored_healthchecks.split(",") if p.strip())
            mcfg = mt.MarathonConfig(url=spec.address, name_separator=args.consul_name_separator,
                                     consul_tag=args.consul_tag, timeout=args.marathon_timeout,
                                     sync_interval=float(args.resync or 900), ignored_checks=ignored)
            bridge = Bridge(client, "marathon", f"meshctl@{urlsplit(mcfg.url).netloc}", cleanup=True,
                            legacy_owned=mt.legacy_owned(args.consul_tag), agent_port=agent_port)
            out.append((bridge, mt.MarathonSource(bridge, mcfg)))
        else:
            from meshctl.registrator import mesos as ms

            tags = []
            for item in args.task_tag:
                pattern, _, tag_list = item.partition(":")
                tags.append((pattern.lower(), [t for t in tag_list.split(",") if t]))
            scfg = ms.MesosConfig(masters=[m for m in spec.address.split(",") if m], refresh=float(args.resync or 60),
                                  service_name=args.service_name, id_prefix=args.service_id_prefix,
                                  group_separator=args.group_separator,
                                  ip_order=[o.strip() for o in args.mesos_ip_order.split(",") if o.strip()],
                                  task_tags=tags)
            bridge = Bridge(client, "mesos", f"meshctl:{args.service_id_prefix}", cleanup=True,
                            legacy_owned=ms.legacy_owned(args.service_id_prefix), agent_port=agent_port)
            out.append((bridge, ms.MesosSource(bridge, scfg)))
    return out


def health_problems(runners: list[tuple[Bridge, Any]]) -> list[Problem]:
    """-register-service: a source that cannot be reached, registrations the agent keeps refusing."""
    problems = []
    for bridge, source in list(runners):
        if getattr(source, "problem", ""):
            problems.append(Problem("critical", f"{bridge.kind}: {source.problem}"))
        if bridge.failing:
            problems.append(Problem("critical", f"{bridge.kind}: registrations with the agent failing (retrying)"))
    return problems


class RegistratorCollector:
    """-metrics-addr: each bridge's registrations, deregistrations and sync errors, and its source's reachability."""

    def __init__(self, runners: list[tuple[Bridge, Any]]) -> None:
        self.runners = runners

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families = {key: CounterMetricFamily(f"meshctl_registrator_{name}", text, labels=["source"])
                    for key, name, text in (("registered", "registrations", "Services registered"),
                                            ("deregistered", "deregistrations", "Services deregistered"),
                                            ("errors", "sync_errors", "Registrations or deregistrations that "
                                             "failed (retried next pass)"))}
        up = GaugeMetricFamily("meshctl_registrator_source_up", "1 while the source (Docker engine ...) is "
                               "reachable", labels=["source"])
        kinds = [bridge.kind for bridge, _ in self.runners]
        for i, (bridge, source) in enumerate(list(self.runners)):
            label = bridge.kind if kinds.count(bridge.kind) == 1 else f"{bridge.kind}{i}"
            for key, family in families.items():
                family.add_metric([label], float(bridge.stats.get(key, 0)))
            connected = getattr(source, "connected", None)
            if isinstance(connected, threading.Event):
                up.add_metric([label], 1.0 if connected.is_set() else 0.0)
        yield from families.values()
        yield up


def main(argv: list[str]) -> int:
    """Run until SIGINT/SIGTERM; exit status 1 on bad flags or an unreachable backend."""
    parser = build_parser()
    args, rest = parse(parser, argv)
    if args.version:
        sys.stdout.write(f"meshctl registrator v{__version__}\n")
        return 0
    if len(rest) > 1:
        err("registrator: exactly one registry URI (consul://host:port) expected; options go before it")
        return 1
    if not 0 <= args.consul_port < 65536:
        err(f"registrator: -consul-port {args.consul_port} is not a port number")
        return 1
    if (args.ttl > 0) != (args.ttl_refresh > 0) or (args.ttl and args.ttl <= args.ttl_refresh):
        err("registrator: -ttl and -ttl-refresh go together, and -ttl must be greater than -ttl-refresh")
        return 1
    logging.basicConfig(level=getattr(logging, args.log_level.upper().replace("WARN", "WARNING"), logging.INFO),
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s", stream=sys.stderr)
    try:
        client = client_for(rest[0] if rest else "consul://127.0.0.1:8500")
    except ConfigError as e:
        err(f"registrator: {e}")
        return 1
    stop = threading.Event()

    def on_signal(signum: int) -> None:
        log.info("received %s; exiting (registrations are left in place)", signal.Signals(signum).name)
        stop.set()
        for bridge, source in runners:
            bridge.wake()
            # closing a stream another thread is reading can block: never in the signal handler
            threading.Thread(target=getattr(source, "stop", lambda: None), daemon=True).start()

    runners: list[tuple[Bridge, Any]] = []
    if args.metrics_addr:
        from meshctl.metrics import ToolMetrics, serve_or_exit

        metrics = ToolMetrics("registrator")
        metrics.register(RegistratorCollector(runners))
        if not serve_or_exit(metrics, args.metrics_addr, lambda m: err(f"registrator: {m}")):
            return 1
    with signal_handlers(dict.fromkeys((signal.SIGINT, signal.SIGTERM), on_signal)):
        return _serve(args, client, stop, runners)


def _serve(args: Namespace, client: Client, stop: threading.Event, runners: list[tuple[Bridge, Any]]) -> int:
    """Register until `stop` is set (by SIGINT/SIGTERM); `runners` is filled here, for the signal handler."""
    if not wait_for_backend(client, args.retry_attempts, args.retry_interval / 1000.0, stop):
        return 1
    hostname = args.hostname or socket.gethostname()
    runners.extend(_runners(args, client, hostname))
    threads: list[threading.Thread] = []
    for bridge, source in runners:
        # adopt what a previous run registered (no re-registration churn)
        for address, error in bridge.load().items():
            where = {"": "the agent", "catalog": "the catalog"}.get(address, f"the agent at {address}")
            log.warning("%s: cannot list the services of %s yet: %s", bridge.kind, where, error)
        for target, name in ((bridge.run, f"{bridge.kind}-bridge"), (source.run, f"{bridge.kind}-source")):
            t = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
            t.start()
            threads.append(t)
    health = None
    if args.register_service:
        health = SelfHealth(client, SelfHealthConfig(name=args.register_service), "registrator",
                            lambda: health_problems(runners), ok_text="meshctl registrator: in sync").start()
    while not stop.is_set():
        stop.wait(1.0)
    if health is not None:
        health.stop(deregister=True)
    deadline = time.monotonic() + 5
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        # a request to an engine or master that hangs: do not wait for it
        logging.shutdown()
        os._exit(0)
    return 0
