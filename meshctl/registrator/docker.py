"""The Docker source: a real Docker Engine's containers → the bridge, via the docker SDK.

Like registrator: subscribe to the event stream *before* listing, then sync every running
container; `start` adds, `die` removes (per -deregister). Where registrator fails its users
this does better:

* the event stream is re-opened after the engine restarts (registrator exits), with backoff
  and a clear log line per attempt, and every reconnect is followed by a full sync — what
  happened while we were blind is repaired, and nothing is deregistered while the engine is
  unreachable;
* `pause` deregisters and `unpause` registers again; `rename` re-registers under the new
  name's IDs; `destroy` removes what `on-success` had kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from meshctl.client import Backoff
from meshctl.registrator.bridge import Bridge, Service
from meshctl.registrator.docker_rules import DockerConfig, container_services, should_deregister

log = logging.getLogger(__name__)

EVENTS = ("start", "die", "pause", "unpause", "rename", "destroy")
INSPECT_PARALLEL = 16


class DockerSource:
    """Keeps `bridge` in line with the engine at `url` until stopped."""

    def __init__(self, bridge: Bridge, cfg: DockerConfig, url: str | None = None, *,
                 retry_base: float = 0.5, retry_cap: float = 15.0) -> None:
        self.bridge = bridge
        self.cfg = cfg
        self.url = url
        self.backoff = Backoff(base=retry_base, cap=retry_cap)
        self._stream: Any = None
        self._api: Any = None
        self.connected = threading.Event()
        self.problem = ""  # why the engine cannot be reached ("" while connected), for -register-service
        self.syncs = 0

    # -- engine connection ----------------------------------------------------------------

    def _connect(self) -> Any:
        import docker

        if self.url:
            client = docker.DockerClient(base_url=self.url, timeout=30)
        else:
            client = docker.from_env(timeout=30)
        client.api.ping()
        return client.api

    def where(self) -> str:
        """The engine address, for log lines."""
        return self.url or "DOCKER_HOST / unix:///var/run/docker.sock"

    def run(self, stop: threading.Event) -> None:
        """Connect, sync, follow events; on any engine failure log, back off, reconnect, resync."""
        import docker.errors
        import requests

        while not stop.is_set():
            try:
                api = self._connect()
                self._api = api
                self._stream = api.events(decode=True, filters={"type": "container"})
                log.info("docker: connected to %s; syncing", self.where())
                self.sync()
                self.connected.set()
                self.problem = ""
                self.backoff.reset()
                for event in self._stream:
                    if stop.is_set():
                        break
                    self.handle(event)
                if not stop.is_set():
                    log.warning("docker: event stream from %s closed (engine restarting?); reconnecting",
                                self.where())
            except (docker.errors.DockerException, requests.RequestException, OSError, ValueError) as e:
                if stop.is_set():
                    break
                delay = self.backoff.next_delay()
                self.problem = f"cannot reach Docker at {self.where()}: {_reason(e)}"
                log.error("docker: cannot reach Docker at %s: %s; retrying in %.1fs (registrations kept)",
                          self.where(), _reason(e), delay)
                stop.wait(delay)
            finally:
                self.connected.clear()
                self._close_stream()

    def stop(self) -> None:
        """Unblock `run()` (closes the event stream)."""
        self._close_stream()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - closing a dead stream may fail any way
                pass

    # -- containers → services --------------------------------------------------------

    def inspect(self, container_id: str) -> Mapping[str, Any] | None:
        """The inspect JSON, or None when the container is gone."""
        import docker.errors

        try:
            return self._api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None

    def services_of(self, attrs: Mapping[str, Any]) -> list[Service]:
        """The container's services if it runs (a paused container has none)."""
        state = attrs.get("State") or {}
        if not state.get("Running") or state.get("Paused"):
            return []
        return container_services(attrs, self.cfg, network_container=self._network_container)

    def _network_container(self, container_id: str) -> Mapping[str, Any] | None:
        try:
            return self.inspect(container_id)
        except Exception as e:  # noqa: BLE001 - only the IP is lost
            log.warning("docker: unable to inspect network container %s: %s", container_id[:12], e)
            return None

    def sync(self) -> None:
        """Full sync: every running container's services; what died meanwhile goes per -deregister."""
        listing = self._api.containers(all=True)
        ids = [c["Id"] for c in listing]
        with ThreadPoolExecutor(INSPECT_PARALLEL) as pool:
            inspected = list(pool.map(self.inspect, ids))
        groups: dict[str, list[Service]] = {}
        keep: list[str] = []
        known = self.bridge.groups()
        for cid, attrs in zip(ids, inspected, strict=True):
            if attrs is None:
                continue
            services = self.services_of(attrs)
            if services:
                groups[cid] = services
            elif cid in known and not should_deregister(self.cfg.deregister, attrs.get("State")):
                keep.append(cid)  # died while we were away, kept as -deregister on-success says
        running = sum(1 for a in inspected if a and (a.get("State") or {}).get("Running"))
        log.info("docker: syncing services on %d running containers", running)
        self.bridge.replace(groups, keep=keep)
        if keep:
            for cid in keep:
                self.bridge.hold(cid)
        self.syncs += 1

    def handle(self, event: Mapping[str, Any]) -> None:
        """One engine event."""
        action = str(event.get("Action") or event.get("status") or "")
        actor = event.get("Actor") or {}
        cid = str(actor.get("ID") or event.get("id") or "")
        if action not in EVENTS or not cid:
            return
        log.debug("docker: %s %s", action, cid[:12])
        try:
            if action in ("start", "unpause", "rename"):
                attrs = self.inspect(cid)
                self.bridge.update(cid, self.services_of(attrs) if attrs else [])
            elif action == "pause":
                self.bridge.remove(cid)
            elif action == "destroy":
                self.bridge.remove(cid)
            elif action == "die":
                if self.cfg.deregister == "always":
                    self.bridge.remove(cid)
                    return
                attrs = self.inspect(cid)
                if should_deregister(self.cfg.deregister, attrs.get("State") if attrs else None):
                    self.bridge.remove(cid)
                else:
                    log.info("docker: keeping services of %s (exit code %s, -deregister on-success)", cid[:12],
                             (attrs or {}).get("State", {}).get("ExitCode"))
                    self.bridge.hold(cid)
        except Exception as e:  # noqa: BLE001 - one bad container must not stop the stream
            import docker.errors
            import requests

            if isinstance(e, (docker.errors.DockerException, requests.RequestException, OSError)):
                raise
            log.exception("docker: handling %s of %s failed", action, cid[:12])


def _reason(exc: BaseException) -> str:
    """A short reason for an engine failure (the innermost OS error when there is one)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        nxt = seen.__cause__ or seen.__context__
        if nxt is None and seen.args and isinstance(seen.args[0], BaseException):
            nxt = seen.args[0]
        seen = nxt  # type: ignore[assignment]
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."
