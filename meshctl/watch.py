"""`meshctl watch`: watch a view of Consul's data and hand each new version to a handler, as `consul watch`.

    spec = parse_spec({"type": "keyprefix", "prefix": "app/"})
    plan = Plan(client, spec)
    plan.run(lambda index, data: print(index, data))   # first result, then every change

The model is Consul's `api/watch` package: one fetch function per watch type (`FETCHERS`),
each answering Consul's Go API shape for that view (a KV pair, a list of pairs, the
service map, health entries, checks, events), and a plan loop around the shared
blocking-query iterator: the handler runs once with the first result and again each
time the index moves *and* the data differs. For `event`, only the events fired since the
last call are handed over. `run_handler` is how `consul watch` runs a handler command:
the data as JSON on stdin, `CONSUL_INDEX` in the environment.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from meshctl.client import Backoff, Client, Reply, watch
from meshctl.client.types import KVPair
from meshctl.process import exit_status, shell_command, spawn

log = logging.getLogger(__name__)

WATCH_TYPES = ("key", "keyprefix", "services", "nodes", "service", "checks", "event")
CHECK_STATES = ("any", "passing", "warning", "critical")


class WatchError(ValueError):
    """An invalid watch definition (the message is Consul's)."""


@dataclass
class WatchSpec:
    """One watch: its type and that type's parameters (Consul's watch parameter names)."""

    type: str
    key: str = ""
    prefix: str = ""
    service: str = ""
    tag: list[str] = field(default_factory=list)
    passingonly: bool = False
    state: str = ""
    name: str = ""
    stale: bool = False


def parse_spec(params: dict[str, Any]) -> WatchSpec:
    """Validate watch parameters as Consul's `watch.Parse` does; WatchError with its message."""
    params = dict(params)
    wtype = str(params.pop("type", "") or "")
    if not wtype:
        raise WatchError("Watch type must be specified")
    if wtype not in WATCH_TYPES:
        raise WatchError(f"Unsupported watch type: {wtype}")
    tag = params.pop("tag", None)
    tags = [tag] if isinstance(tag, str) else list(tag or [])
    spec = WatchSpec(type=wtype, tag=[t for t in tags if t])
    for name in ("key", "prefix", "service", "state", "name"):
        if name in params:
            setattr(spec, name, str(params.pop(name) or ""))
    spec.passingonly = bool(params.pop("passingonly", False))
    spec.stale = bool(params.pop("stale", False))
    params.pop("datacenter", None)
    params.pop("token", None)
    if params:
        raise WatchError(f"Invalid parameters: {sorted(params)}")
    if wtype == "key" and not spec.key:
        raise WatchError("Must specify a single key to watch")
    if wtype == "keyprefix" and not spec.prefix:
        raise WatchError("Must specify a single prefix to watch")
    if wtype == "service" and not spec.service:
        raise WatchError("Must specify a single service to watch")
    if wtype == "checks":
        if spec.service and spec.state:
            raise WatchError("Cannot specify service and state")
        if not spec.service and not spec.state:
            spec.state = "any"
        if spec.state and spec.state not in CHECK_STATES:
            raise WatchError(f"Invalid state {spec.state!r} (want one of {', '.join(CHECK_STATES)})")
    return spec


# -- Go API shapes ---------------------------------------------------------------------------


def kv_json(pair: KVPair) -> dict[str, Any]:
    """A KV pair as the Go API's `KVPair` marshals it (the shape `consul watch` hands out)."""
    return {
        "Key": pair.key,
        "CreateIndex": pair.create_index,
        "ModifyIndex": pair.modify_index,
        "LockIndex": pair.lock_index,
        "Flags": pair.flags,
        "Value": pair.to_json()["Value"],
        "Session": pair.session or "",
    }


def event_index(event_id: str) -> int:
    """Consul's `IDToIndex`: the two halves of an event UUID XORed (the event list's index)."""
    hexid = event_id.replace("-", "")
    try:
        return int(hexid[:16], 16) ^ int(hexid[16:32], 16)
    except ValueError:
        return 0


# -- one fetch function per watch type --------------------------------------------------------

Fetch = Callable[[int, "str | float | None"], Reply[Any]]


def _consistency(spec: WatchSpec) -> Any:
    return "stale" if spec.stale else None


def _key(client: Client, spec: WatchSpec) -> Fetch:
    def fetch(index: int, wait: str | float | None) -> Reply[Any]:
        reply = client.kv.get(spec.key, index=index, wait=wait, consistency=_consistency(spec))
        return Reply(kv_json(reply.value) if reply.value is not None else None, reply.index)

    return fetch


def _keyprefix(client: Client, spec: WatchSpec) -> Fetch:
    def fetch(index: int, wait: str | float | None) -> Reply[Any]:
        reply = client.kv.list_prefix(spec.prefix, index=index, wait=wait, consistency=_consistency(spec))
        return Reply([kv_json(p) for p in reply.value], reply.index)

    return fetch


def _services(client: Client, spec: WatchSpec) -> Fetch:
    return lambda index, wait: client.catalog.services(index=index, wait=wait, consistency=_consistency(spec))


def _nodes(client: Client, spec: WatchSpec) -> Fetch:
    return lambda index, wait: client.catalog.nodes(index=index, wait=wait, consistency=_consistency(spec))


def _service(client: Client, spec: WatchSpec) -> Fetch:
    return lambda index, wait: client.health.service(
        spec.service, spec.tag or None, spec.passingonly, index=index, wait=wait, consistency=_consistency(spec))


def _checks(client: Client, spec: WatchSpec) -> Fetch:
    def fetch(index: int, wait: str | float | None) -> Reply[Any]:
        if spec.state:
            reply = client.health.state(spec.state, index=index, wait=wait, consistency=_consistency(spec))
            if spec.tag:  # Consul's StateTags: every tag must be on the check's service
                want = set(spec.tag)
                reply.value = [c for c in reply.value if want <= set(c.get("ServiceTags") or [])]
            return reply
        return client.health.checks(spec.service, index=index, wait=wait, consistency=_consistency(spec))

    return fetch


def _event(client: Client, spec: WatchSpec) -> Fetch:
    return lambda index, wait: client.event.list_recent(spec.name or None, index=index, wait=wait)


FETCHERS: dict[str, Callable[[Client, WatchSpec], Fetch]] = {
    "key": _key,
    "keyprefix": _keyprefix,
    "services": _services,
    "nodes": _nodes,
    "service": _service,
    "checks": _checks,
    "event": _event,
}


# -- the plan loop -------------------------------------------------------------------------------

Handler = Callable[[int, Any], Any]


class Plan:
    """Runs one watch: `run(handler)` calls `handler(index, data)` on the first result and each change.

    `stop()` (from any thread or a handler) ends `run()` at the latest when the request in
    flight returns. Errors are retried with backoff (Consul retries forever, logging each).
    """

    def __init__(self, client: Client, spec: WatchSpec, *, wait: str | float | None = None,
                 backoff: Backoff | None = None, on_error: Callable[[BaseException, float], Any] | None = None,
                 max_retries: int | None = None) -> None:
        self.client = client
        self.spec = spec
        self.wait = wait
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.on_error = on_error
        self.max_retries = max_retries
        self.fetch = FETCHERS[spec.type](client, spec)
        self._stop = threading.Event()

    def stop(self) -> None:
        """End the watch."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stop.is_set()

    def run(self, handler: Handler) -> None:
        """The loop: first result, then each change (index moved and data differs)."""
        first = True
        last: Any = None
        last_event_index: int | None = None
        for reply in watch(self.fetch, wait=self.wait, stop=self._stop, backoff=self.backoff,
                           max_retries=self.max_retries, on_error=self._log_error):
            if self._stop.is_set():
                break
            data = reply.value
            if self.spec.type == "event":
                data, last_event_index = _new_events(data, last_event_index)
            if not first and data == last:
                continue
            first = False
            last = data
            handler(reply.index, data)
            if self._stop.is_set():
                break

    def _log_error(self, exc: BaseException, delay: float) -> None:
        log.error("watch (type: %s) errored: %s, retry in %.1fs", self.spec.type, exc, delay)
        if self.on_error is not None:
            self.on_error(exc, delay)


def _new_events(events: list[dict[str, Any]], last: int | None) -> tuple[list[dict[str, Any]], int | None]:
    """Only the events after the one last handed over (Consul prunes by the event index)."""
    newest = event_index(events[-1]["ID"]) if events else last
    if last is not None:
        for i, ev in enumerate(events):
            if event_index(ev.get("ID", "")) == last:
                events = events[i + 1:]
                break
    return events, newest


# -- handler commands ------------------------------------------------------------------------------


def go_json(data: Any, indent: int | None = None) -> str:
    """JSON as Go's encoding/json writes it: compact (or indented), <, > and & escaped, UTF-8 kept."""
    if indent is None:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(data, indent=indent, ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class HandlerRunner:
    """Runs a handler command per change: JSON + newline on stdin, CONSUL_INDEX set; one at a time.

    `signal(sig)` relays a signal to the handler running now (if any). `run()` returns the exit
    status (a death by signal N as 128 + N) or raises OSError when it cannot start.
    """

    def __init__(self, command: Sequence[str], *, shell: bool = True, env: dict[str, str] | None = None,
                 stdout: TextIO | int | None = None, stderr: TextIO | int | None = None) -> None:
        self.argv = shell_command(command) if shell else list(command)
        self.env = env
        self.stdout = stdout
        self.stderr = stderr
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def run(self, index: int, data: Any) -> int:
        """Run the handler once with `data`; its exit status."""
        env = dict(os.environ if self.env is None else self.env)
        env["CONSUL_INDEX"] = str(index)
        payload = (go_json(data) + "\n").encode()
        with self._lock:
            # consul watch's handler shares our process group: a relayed signal reaches the shell only
            self._proc = spawn(self.argv, env=env, stdin=subprocess.PIPE, stdout=self.stdout, stderr=self.stderr,
                               new_group=False)
        proc = self._proc
        try:
            try:
                assert proc.stdin is not None
                proc.stdin.write(payload)
            except BrokenPipeError:  # the handler did not read its input: not an error
                pass
            finally:
                try:
                    proc.stdin.close()  # type: ignore[union-attr]
                except BrokenPipeError:
                    pass
            code = proc.wait()
        finally:
            with self._lock:
                self._proc = None
        return exit_status(code)

    def signal(self, sig: int) -> bool:
        """Relay `sig` to the running handler; False when none runs."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return False
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                return False
            return True
