"""The Mesos source: the leading master's /master/state → services, as mesos-consul does.

Every `refresh` interval the leading master's state is read (the last leader first, then
every configured master; a master whose state names another leader is followed to it).
Each TASK_RUNNING task on a known agent becomes services (tools.md §3c): name from the
task name (lower-cased, `[^\\w-]` → `-`, `_` → the group separator, or label
`overrideTaskName`), ports from the discovery info (named ports) or the `ports` resource,
address by `ip_order` (netinfo, mesos, docker, host), tags and checks from task labels.
The masters (`leader`/`master` tags) and agents (`agent`/`follower`) are registered as
service `mesos`, so `leader.mesos.service.consul` resolves. Every service names its agent's
(or master's) IP as its agent: with `-agent-per-host` (the default, as mesos-consul) it is
registered on the Consul agent of that host.

Only a well-formed state from the leader changes what is desired: masters that are down,
hang, or answer garbage are logged and retried with backoff, and nothing is deregistered.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from meshctl.client import Backoff
from meshctl.registrator.bridge import Bridge, Service

log = logging.getLogger(__name__)


class MesosError(Exception):
    """No master answered with a usable state."""


@dataclass
class MesosConfig:
    """mesos-consul's settings that matter here."""

    masters: list[str]
    refresh: float = 60.0
    timeout: float = 10.0
    service_name: str = "mesos"
    id_prefix: str = "mesos-consul"
    group_separator: str = ""
    ip_order: Sequence[str] = ("netinfo", "mesos", "host")
    task_tags: list[tuple[str, list[str]]] = field(default_factory=list)  # --task-tag pattern:tag1,tag2

    def __post_init__(self) -> None:
        self.masters = [m.rstrip("/") if "://" in m else f"http://{m.rstrip('/')}" for m in self.masters]


def pid_address(pid: str) -> tuple[str, int]:
    """`master@10.0.0.1:5050` → ("10.0.0.1", 5050); IPv6 in brackets is unwrapped."""
    _, _, hostport = str(pid).rpartition("@")
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    return host, int(port) if port.isdigit() else 0


def clean_name(name: str, separator: str = "") -> str:
    """mesos-consul's service name: lower case, `[^\\w-]` → `-`, `_` → separator."""
    return re.sub(r"[^\w-]", "-", name.lower()).replace("_", separator)


def parse_port_ranges(value: Any) -> list[int]:
    """The `ports` resource "[31000-31001, 31005-31005]" expanded to [31000, 31001, 31005]."""
    out: list[int] = []
    for lo, hi in re.findall(r"(\d+)\s*-\s*(\d+)", str(value or "")):
        out.extend(range(int(lo), int(hi) + 1))
    return out


def _labels(items: Any) -> dict[str, str]:
    """Mesos labels (a list of {key, value}, or {"labels": [...]}) as a dict."""
    if isinstance(items, dict):
        items = items.get("labels")
    out: dict[str, str] = {}
    for item in items or []:
        if isinstance(item, dict) and "key" in item:
            out[str(item["key"])] = str(item.get("value", ""))
    return out


def _running_status(task: Mapping[str, Any]) -> Mapping[str, Any]:
    running = [s for s in task.get("statuses") or [] if s.get("state") == "TASK_RUNNING"]
    if not running:
        return {}
    return max(enumerate(running), key=lambda p: (float(p[1].get("timestamp") or 0), p[0]))[1]


def task_address(task: Mapping[str, Any], agent_ip: str, order: Sequence[str]) -> str:
    """The first address found in `order` (netinfo, mesos, docker, host)."""
    status = _running_status(task)
    labels = _labels(status.get("labels"))
    for source in order:
        if source == "netinfo":
            for info in ((status.get("container_status") or {}).get("network_infos") or []):
                for addr in info.get("ip_addresses") or []:
                    if addr.get("ip_address"):
                        return str(addr["ip_address"])
        elif source == "mesos" and labels.get("MesosContainerizer.NetworkSettings.IPAddress"):
            return labels["MesosContainerizer.NetworkSettings.IPAddress"]
        elif source == "docker" and labels.get("Docker.NetworkSettings.IPAddress"):
            return labels["Docker.NetworkSettings.IPAddress"]
        elif source == "host" and agent_ip:
            return agent_ip
    return agent_ip


def _task_checks(labels: Mapping[str, str], address: str, port: int) -> list[dict[str, Any]]:
    low = {k.lower(): v for k, v in labels.items()}
    host = f"[{address}]" if ":" in address else address

    def fill(v: str) -> str:
        return v.replace("{host}", host).replace("{port}", str(port))

    check: dict[str, Any] = {}
    if low.get("check_http"):
        check["HTTP"] = fill(low["check_http"])
    elif low.get("check_script"):
        check["Args"] = ["/bin/sh", "-c", fill(low["check_script"])]
    elif low.get("check_tcp"):
        check["TCP"] = fill(low["check_tcp"])
    elif low.get("check_ttl"):
        check["TTL"] = low["check_ttl"]
    else:
        return []
    if "TTL" not in check:
        check["Interval"] = low.get("check_interval") or "10s"
    return [check]


def task_services(task: Mapping[str, Any], agent_ip: str, cfg: MesosConfig) -> list[Service]:
    """The services of one TASK_RUNNING task."""
    labels = _labels(task.get("labels"))
    name = clean_name(labels.get("overrideTaskName") or str(task.get("name") or ""), cfg.group_separator)
    if not name:
        return []
    address = task_address(task, agent_ip, cfg.ip_order)
    tags = [t for t in (labels.get("tags") or "").split(",") if t]
    for pattern, extra in cfg.task_tags:
        if pattern.lower() in name:
            tags += extra
    prefix = cfg.id_prefix
    out: list[Service] = []
    discovery = task.get("discovery") or {}
    named = [p for p in ((discovery.get("ports") or {}).get("ports") or []) if p.get("name")]
    if named:
        for i, port in enumerate(named):
            number = int(port.get("number") or 0)
            svc = name if i == 0 else f"{name}-port{i + 1}"
            port_tags = [t for t in _labels(port.get("labels")).get("tags", "").split(",") if t]
            out.append(Service(id=f"{prefix}:{agent_ip}:{svc}:{address}:{number}", name=svc, port=number,
                               address=address, tags=list(dict.fromkeys([*tags, str(port["name"]), *port_tags])),
                               checks=_task_checks(labels, address, number), agent=agent_ip))
        return out
    ports = parse_port_ranges((task.get("resources") or {}).get("ports"))
    if ports:
        for i, number in enumerate(ports):
            svc = name if i == 0 else f"{name}-port{i + 1}"
            out.append(Service(id=f"{prefix}:{agent_ip}:{svc}:{address}:{number}", name=svc, port=number,
                               address=address, tags=list(tags), checks=_task_checks(labels, address, number),
                               agent=agent_ip))
        return out
    return [Service(id=f"{prefix}:{agent_ip}-{name}:{address}", name=name, address=address, tags=list(tags),
                    checks=_task_checks(labels, address, 0), agent=agent_ip)]


def valid_state(state: Any) -> bool:
    """A master state we may act on: an object with `slaves` and `frameworks` lists and a `leader`."""
    return (isinstance(state, dict) and isinstance(state.get("slaves"), list)
            and isinstance(state.get("frameworks"), list) and bool(state.get("leader")))


def state_services(state: Mapping[str, Any], cfg: MesosConfig, master_urls: Sequence[str] = ()
                   ) -> dict[str, list[Service]]:
    """Every service the cluster state describes, grouped: "masters", "agent:<id>", "task:<id>"."""
    svc, prefix = cfg.service_name, cfg.id_prefix
    groups: dict[str, list[Service]] = {}
    leader_ip, leader_port = pid_address(state["leader"])
    masters = [Service(id=f"{prefix}:{svc}:{leader_ip}:{leader_port}", name=svc, port=leader_port,
                       address=leader_ip, tags=["leader", "master"],
                       checks=[_health(leader_ip, leader_port, "/master/health")], agent=leader_ip)]
    for url in master_urls:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 5050
        if (host, port) != (leader_ip, leader_port):
            masters.append(Service(id=f"{prefix}:{svc}:{host}:{port}", name=svc, port=port, address=host,
                                   tags=["master"], checks=[_health(host, port, "/master/health")], agent=host))
    groups["masters"] = masters
    agents: dict[str, str] = {}
    for slave in state["slaves"]:
        if not isinstance(slave, dict) or not slave.get("id"):
            continue
        ip, port = pid_address(str(slave.get("pid") or ""))
        ip = ip or str(slave.get("hostname") or "")
        agents[str(slave["id"])] = ip
        hostname = str(slave.get("hostname") or ip)
        groups[f"agent:{slave['id']}"] = [Service(
            id=f"{prefix}:{svc}:{slave['id']}:{hostname}", name=svc, port=port or 5051, address=ip,
            tags=["agent", "follower"], checks=[_health(ip, port or 5051, "/slave(1)/health")], agent=ip)]
    for framework in state["frameworks"]:
        for task in (framework or {}).get("tasks") or []:
            if task.get("state") != "TASK_RUNNING" or task.get("slave_id") not in agents:
                continue
            services = task_services(task, agents[task["slave_id"]], cfg)
            if services:
                groups.setdefault(f"task:{task.get('id')}", []).extend(services)
    return groups


def _health(ip: str, port: int, path: str) -> dict[str, Any]:
    host = f"[{ip}]" if ":" in ip else ip
    return {"HTTP": f"http://{host}:{port}{path}", "Interval": "10s", "Name": f"mesos {path}"}


def legacy_owned(prefix: str) -> Callable[[Mapping[str, Any]], bool]:
    """mesos-consul's ownership rule: IDs beginning `<prefix>:`."""

    def owned(entry: Mapping[str, Any]) -> bool:
        return str(entry.get("ID", "")).startswith(f"{prefix}:")

    return owned


class MesosSource:
    """Polls the leading master and keeps the bridge in line with the cluster."""

    def __init__(self, bridge: Bridge, cfg: MesosConfig, *, retry_base: float = 0.5, retry_cap: float = 30.0) -> None:
        self.bridge = bridge
        self.cfg = cfg
        self.http = requests.Session()
        self.http.trust_env = False
        self.leader_url: str | None = None
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self.polls = 0
        self.problem = ""  # why no master answers ("" after a good poll), for -register-service
        self.polled = threading.Event()

    def _state(self, url: str) -> Any:
        for path in ("/master/state", "/master/state.json"):
            resp = self.http.get(f"{url}{path}", timeout=(min(5.0, self.cfg.timeout), self.cfg.timeout))
            if resp.status_code == 404:
                continue
            if resp.status_code != 200:
                raise MesosError(f"GET {url}{path}: HTTP {resp.status_code}")
            try:
                return resp.json()
            except ValueError as e:
                raise MesosError(f"GET {url}{path}: not JSON: {resp.text[:80]!r}") from e
        raise MesosError(f"GET {url}/master/state: not found")

    def leader_state(self) -> tuple[str, Mapping[str, Any]]:
        """(leader URL, its state); the last leader is asked first, then every configured master."""
        candidates = list(dict.fromkeys([u for u in [self.leader_url, *self.cfg.masters] if u]))
        errors: list[str] = []
        for url in candidates:
            try:
                state = self._state(url)
                if not valid_state(state):
                    raise MesosError(f"{url}: the answer is not a master state")
                ip, port = pid_address(state["leader"])
                leader = f"http://{ip}:{port}" if ":" not in ip else f"http://[{ip}]:{port}"
                parts = urlsplit(url)
                own = pid_address(state["pid"]) if state.get("pid") else (parts.hostname or "", parts.port or 5050)
                if (ip, port) != own:
                    log.info("mesos: %s says the leader is %s; following", url, leader)
                    state = self._state(leader)
                    if not valid_state(state) or pid_address(state["leader"]) != (ip, port):
                        raise MesosError(f"{leader}: the named leader does not confirm it leads")
                    url = leader
                return url, state
            except (requests.RequestException, MesosError) as e:
                errors.append(_short(e))
        raise MesosError("no leading master answered: " + "; ".join(errors))

    def poll(self) -> None:
        """One refresh: read the leader's state and replace the desired services."""
        url, state = self.leader_state()
        if url != self.leader_url:
            log.info("mesos: leading master is %s", url)
        self.leader_url = url
        groups = state_services(state, self.cfg, self.cfg.masters)
        log.info("mesos: %d groups of services from %s", len(groups), url)
        self.bridge.replace(groups)
        self.polls += 1
        self.polled.set()

    def run(self, stop: threading.Event) -> None:
        """Poll every `refresh` seconds (sooner, with backoff, after a failure) until `stop`."""
        backoff = Backoff(base=self.retry_base, cap=self.retry_cap)
        while not stop.is_set():
            try:
                self.poll()
                self.problem = ""
                backoff.reset()
                delay = self.cfg.refresh
            except MesosError as e:
                self.problem = f"cannot reach Mesos: {e}"
                delay = min(backoff.next_delay(), self.cfg.refresh)
                log.error("mesos: %s; registrations kept, retrying in %.1fs", e, delay)
            stop.wait(delay)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 240 else text[:240] + "..."
