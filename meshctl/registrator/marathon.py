"""The Marathon source: apps labelled `consul` → services, as allegro/marathon-consul does.

Rules (tools.md §3a): service name from the `consul` label (or the app id when it is "" or
"true"; "/" trimmed, inner "/" → `.`); tags = `marathon` + app labels whose value is `tag` +
port-definition tags + `marathon-task:<taskId>`; one service per port definition labelled
`consul` (else the task's first port); only healthy tasks (health check results, all alive,
not killing); Marathon health checks become Consul checks; ID `<taskId>_<name>_<port>`.
Each service names the task's host as its agent: with `-agent-per-host` (the default, as
marathon-consul) it is registered on the Consul agent of that host.

Changes come from the `/v2/events` server-sent-event stream (reconnected with backoff; every
(re)connect triggers a full sync from `/v2/apps?embed=apps.tasks&label=consul`, and so does
every `resync` interval). A Marathon that is down, slow or answers garbage never makes us
deregister anything: only a successful, well-formed answer changes what is desired.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from meshctl.client import Backoff
from meshctl.registrator.bridge import Bridge, Service

log = logging.getLogger(__name__)

EVENT_TYPES = ("status_update_event", "health_status_changed_event", "instance_health_changed_event",
               "app_terminated_event", "api_post_event")
TERMINAL = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLING", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
                      "TASK_GONE", "TASK_DROPPED", "TASK_UNREACHABLE", "TASK_GONE_BY_OPERATOR"})
DEAD_TASK_MEMORY = 600.0  # seconds a task reported dead stays excluded even if Marathon still lists it


class MarathonError(Exception):
    """Marathon could not be read, or answered something that is not Marathon's JSON."""


@dataclass
class MarathonConfig:
    """marathon-consul's settings that matter here."""

    url: str
    name_separator: str = "."
    consul_tag: str = "marathon"
    timeout: float = 30.0
    sync_interval: float = 900.0
    sse_idle_timeout: float = 300.0
    ignored_checks: frozenset[str] = field(default_factory=frozenset)
    resolve: Callable[[str], str] | None = None

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return ""


def service_name(app_id: str, label: str, separator: str = ".") -> str:
    """The `consul` label's value, or the app id for "" / "true", made DNS-friendly."""
    name = label if label not in ("", "true") else app_id
    return name.strip("/").replace("/", separator)


def task_healthy(task: Mapping[str, Any]) -> bool:
    """marathon-consul's rule: health results exist, all alive, and the task is not going away."""
    state = task.get("state") or task.get("taskStatus") or "TASK_RUNNING"
    if state in TERMINAL:
        return False
    results = task.get("healthCheckResults") or []
    return bool(results) and all(bool(r.get("alive")) for r in results)


def _port_definitions(app: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    container = app.get("container") or {}
    for defs in (app.get("portDefinitions"), container.get("portMappings"),
                 (container.get("docker") or {}).get("portMappings")):
        if defs:
            return list(defs)
    return []


def _registrations(app: Mapping[str, Any], default_name: str) -> list[tuple[int, str, list[str]]]:
    """(port index, service name, port tags) for every service of a task of this app."""
    defs = _port_definitions(app)
    labelled = [(i, d) for i, d in enumerate(defs) if "consul" in (d.get("labels") or {})]
    if not labelled:
        return [(0, default_name, [])]
    out: list[tuple[int, str, list[str]]] = []
    for index, definition in labelled:
        labels = definition.get("labels") or {}
        names = [n.strip() for n in str(labels["consul"]).split(",")] or [""]
        for raw in names:
            name = raw or default_name
            tags = [k for k, v in labels.items() if v == "tag" or v == f"tag:{raw or name}"]
            out.append((index, name, tags))
    return out


def _port_placeholders(tag: str, app: Mapping[str, Any], ports: list[int]) -> str:
    def sub(m: re.Match[str]) -> str:
        for i, d in enumerate(_port_definitions(app)):
            if d.get("name") == m.group(1) and i < len(ports):
                return str(ports[i])
        return m.group(0)

    return re.sub(r"\{port:([^}]+)\}", sub, tag)


def health_checks(app: Mapping[str, Any], task: Mapping[str, Any], address: str,
                  ignored: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The app's Marathon health checks as Consul checks for one task."""
    out: list[dict[str, Any]] = []
    ports = [int(p) for p in _as_list(task.get("ports"))]
    host = f"[{address}]" if ":" in address else address
    for hc in app.get("healthChecks") or []:
        protocol = str(hc.get("protocol") or "HTTP").upper()
        if protocol in ignored:
            continue
        port = hc.get("port")
        if not port:
            index = int(hc.get("portIndex") or 0)
            port = ports[index] if index < len(ports) else 0
        check: dict[str, Any] = {}
        if protocol in ("HTTP", "MESOS_HTTP", "HTTPS", "MESOS_HTTPS"):
            scheme = "https" if "HTTPS" in protocol else "http"
            check["HTTP"] = f"{scheme}://{host}:{port}{hc.get('path') or '/'}"
        elif protocol in ("TCP", "MESOS_TCP"):
            check["TCP"] = f"{host}:{port}"
        elif protocol == "COMMAND":
            command = str(((hc.get("command") or {}).get("value")) or "")
            command = command.replace("$HOST", address)
            for i in reversed(range(len(ports))):
                command = command.replace(f"$PORT{i}", str(ports[i]))
            command = command.replace("$PORT", str(port))
            check["Args"] = ["/bin/sh", "-c", command]
        else:
            continue
        check["Interval"] = f"{int(hc.get('intervalSeconds') or 10)}s"
        check["Timeout"] = f"{int(hc.get('timeoutSeconds') or 20)}s"
        check["Status"] = "passing"
        check["Name"] = f"Marathon {protocol} check"
        out.append(check)
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def app_services(app: Mapping[str, Any], cfg: MarathonConfig, dead: set[str] | frozenset[str] = frozenset()
                 ) -> list[Service]:
    """Every service of an app's healthy tasks (none unless the app is labelled `consul`)."""
    labels = app.get("labels") or {}
    if "consul" not in labels:
        return []
    app_id = str(app.get("id") or "")
    default_name = service_name(app_id, str(labels["consul"]), cfg.name_separator)
    app_tags = [k for k, v in labels.items() if v == "tag"]
    resolve = cfg.resolve or _resolve
    out: list[Service] = []
    for task in app.get("tasks") or []:
        task_id = str(task.get("id") or "")
        if not task_id or task_id in dead or not task_healthy(task):
            continue
        host = str(task.get("host") or "")
        address = host if _is_ip(host) else resolve(host)
        if not address:
            log.warning("marathon: cannot resolve host %r of task %s; skipped", host, task_id)
            continue
        ports = [int(p) for p in _as_list(task.get("ports"))]
        checks = health_checks(app, task, address, cfg.ignored_checks)
        for index, name, port_tags in _registrations(app, default_name):
            port = ports[index] if index < len(ports) else 0
            tags = [cfg.consul_tag, *[_port_placeholders(t, app, ports) for t in app_tags], *port_tags,
                    f"marathon-task:{task_id}"]
            out.append(Service(id=f"{task_id}_{name}_{port}", name=name, port=port, address=address,
                               tags=list(dict.fromkeys(tags)), checks=[dict(c) for c in checks],
                               agent=address))
    return out


def _is_ip(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    return False


def legacy_owned(consul_tag: str) -> Callable[[Mapping[str, Any]], bool]:
    """marathon-consul's ownership rule: services carrying the consul tag and a marathon-task tag."""

    def owned(entry: Mapping[str, Any]) -> bool:
        tags = entry.get("Tags") or []
        return consul_tag in tags and any(str(t).startswith("marathon-task:") for t in tags)

    return owned


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events: (event type, data) for each blank-line-terminated frame."""
    event = ""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


class MarathonSource:
    """Follows Marathon's event stream and syncs the bridge from its apps."""

    def __init__(self, bridge: Bridge, cfg: MarathonConfig, *, retry_base: float = 0.5,
                 retry_cap: float = 30.0) -> None:
        self.bridge = bridge
        self.cfg = cfg
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Accept"] = "application/json"
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self.work: queue.Queue[tuple[str, str]] = queue.Queue()
        self.dead: dict[str, float] = {}  # task id -> when reported dead
        self.synced = threading.Event()
        self.syncs = 0
        self.problem = ""  # why Marathon cannot be reached ("" after a good sync), for -register-service
        self.attached = threading.Event()
        self._stream: requests.Response | None = None

    # -- Marathon reads ----------------------------------------------------------------

    def _get_json(self, path: str) -> Any:
        url = f"{self.cfg.url}{path}"
        try:
            resp = self.http.get(url, timeout=(min(5.0, self.cfg.timeout), self.cfg.timeout))
        except requests.RequestException as e:
            raise MarathonError(f"GET {url}: {_short(e)}") from e
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise MarathonError(f"GET {url}: HTTP {resp.status_code}: {resp.text[:200]!r}")
        try:
            return resp.json()
        except ValueError as e:
            raise MarathonError(f"GET {url}: not JSON ({e}): {resp.text[:80]!r}") from e

    def fetch_apps(self) -> list[Mapping[str, Any]]:
        """Every app labelled consul, with its tasks."""
        body = self._get_json("/v2/apps?embed=apps.tasks&label=consul")
        if not isinstance(body, dict) or not isinstance(body.get("apps"), list):
            raise MarathonError(f"GET {self.cfg.url}/v2/apps: no 'apps' list in the answer")
        return [a for a in body["apps"] if isinstance(a, dict) and a.get("id")]

    def fetch_app(self, app_id: str) -> Mapping[str, Any] | None:
        """One app with its tasks, or None when Marathon does not know it."""
        body = self._get_json(f"/v2/apps/{quote(app_id.strip('/'), safe='/')}?embed=apps.tasks")
        if body is None:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("app"), dict):
            raise MarathonError(f"GET {self.cfg.url}/v2/apps{app_id}: no 'app' object in the answer")
        return body["app"]

    # -- the worker ---------------------------------------------------------------------

    def _dead_now(self) -> set[str]:
        cutoff = time.monotonic() - DEAD_TASK_MEMORY
        self.dead = {t: at for t, at in self.dead.items() if at >= cutoff}
        return set(self.dead)

    def sync(self) -> None:
        """Full sync (raises MarathonError, leaving registrations as they are)."""
        apps = self.fetch_apps()
        dead = self._dead_now()
        groups = {str(a["id"]): app_services(a, self.cfg, dead) for a in apps}
        log.info("marathon: syncing %d apps labelled consul", len(groups))
        self.bridge.replace(groups)
        self.syncs += 1
        self.synced.set()

    def refresh_app(self, app_id: str) -> None:
        """Re-read one app after an event about it."""
        app = self.fetch_app(app_id)
        if app is None:
            log.info("marathon: app %s is gone", app_id)
            self.bridge.remove(app_id)
            return
        self.bridge.update(app_id, app_services(app, self.cfg, self._dead_now()))

    def task_dead(self, app_id: str, task_id: str) -> None:
        """A task ended: its services go at once."""
        self.dead[task_id] = time.monotonic()
        current = self.bridge.groups().get(app_id, [])
        self.bridge.update(app_id, [s for s in current if f"marathon-task:{task_id}" not in s.tags])

    def run(self, stop: threading.Event) -> None:
        """The worker loop, plus the event-stream thread; returns when `stop` is set."""
        reader = threading.Thread(target=self._read_events, args=(stop,), name="marathon-sse", daemon=True)
        reader.start()
        backoff = Backoff(base=self.retry_base, cap=self.retry_cap)
        next_sync = time.monotonic()  # the first sync right away
        while not stop.is_set():
            timeout = max(0.0, next_sync - time.monotonic())
            try:
                kind, arg = self.work.get(timeout=min(timeout, 1.0))
            except queue.Empty:
                if time.monotonic() < next_sync:
                    continue
                kind, arg = "sync", ""
            try:
                if kind == "sync":
                    self.sync()
                    self.problem = ""
                    backoff.reset()
                    next_sync = time.monotonic() + self.cfg.sync_interval
                elif kind == "app":
                    self.refresh_app(arg)
                elif kind == "dead":
                    app_id, _, task_id = arg.partition("\0")
                    self.task_dead(app_id, task_id)
            except MarathonError as e:
                delay = backoff.next_delay()
                self.problem = f"cannot reach Marathon: {e}"
                log.error("marathon: %s; registrations kept, full sync in %.1fs", e, delay)
                next_sync = min(next_sync, time.monotonic() + delay) if kind != "sync" else \
                    time.monotonic() + delay
        self.stop()

    def stop(self) -> None:
        """Close the event stream (unblocks the reader)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001
                pass

    # -- the event stream -----------------------------------------------------------------

    def _read_events(self, stop: threading.Event) -> None:
        backoff = Backoff(base=self.retry_base, cap=self.retry_cap)
        params = [("event_type", t) for t in EVENT_TYPES]
        url = f"{self.cfg.url}/v2/events"
        while not stop.is_set():
            try:
                resp = self.http.get(url, params=params, stream=True,
                                     headers={"Accept": "text/event-stream"},
                                     timeout=(min(5.0, self.cfg.timeout), self.cfg.sse_idle_timeout))
                if resp.status_code != 200:
                    raise MarathonError(f"GET {url}: HTTP {resp.status_code}")
                self._stream = resp
                log.info("marathon: event stream from %s attached", url)
                self.attached.set()
                self.work.put(("sync", ""))  # whatever happened while we were not listening
                backoff.reset()
                lines = resp.iter_lines(decode_unicode=True, chunk_size=1)
                for event_type, data in parse_sse(line if line is not None else "" for line in lines):
                    self.handle(event_type, data)
                if stop.is_set():
                    return
                raise MarathonError(f"GET {url}: event stream closed")
            except (requests.RequestException, MarathonError, OSError, AttributeError) as e:
                self.attached.clear()
                if stop.is_set():
                    return
                delay = backoff.next_delay()
                log.warning("marathon: event stream: %s; reconnecting in %.1fs", _short(e), delay)
                stop.wait(delay)

    def handle(self, event_type: str, data: str) -> None:
        """One event from the stream: queue what it means."""
        try:
            body = json.loads(data)
        except ValueError:
            log.warning("marathon: ignoring an event that is not JSON: %r", data[:120])
            return
        if not isinstance(body, dict):
            log.warning("marathon: ignoring an event that is not a JSON object: %r", data[:120])
            return
        kind = str(body.get("eventType") or event_type)
        app_id = str(body.get("appId") or body.get("runSpecId") or
                     (body.get("appDefinition") or {}).get("id") or "")
        if not app_id:
            return
        if kind == "status_update_event":
            task_id = str(body.get("taskId") or "")
            if body.get("taskStatus") in TERMINAL and task_id:
                self.work.put(("dead", f"{app_id}\0{task_id}"))
                return
            self.work.put(("app", app_id))
        elif kind in EVENT_TYPES:
            self.work.put(("app", app_id))


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 240 else text[:240] + "..."
