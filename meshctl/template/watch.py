"""One view per unique dependency: the blocking-query loop that pushes each change to the runner.

A view knows nothing about templates. Blocking dependencies run `meshctl.client.blocking.watch`
(Consul's index rules, exponential backoff with jitter, index resets) with consul-template's
options: `block_query_wait` (60 s), `max_stale` (stale reads, repeated consistently when the
answer is older than max_stale), retry attempts and backoff. Non-blocking ones (file,
datacenters) are polled. Data equal to the previous data is not pushed again.

Threads, not asyncio: the one client library is synchronous (requests). Each view thread is
parked in a socket read most of the time; bench/template.py measures 1,000 of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshctl.client import Backoff, Client, ConsulError
from meshctl.client.blocking import watch as blocking_watch
from meshctl.template.dependency import Dependency, FileQuery

log = logging.getLogger(__name__)

# Thread stacks: views run shallow code; a small stack keeps 1,000 views cheap.
VIEW_STACK_SIZE = 512 * 1024
MANY_DEPENDENCIES = 128


@dataclass
class WatchOptions:
    """How views query: blocking wait, staleness, retries."""

    wait: float = 60.0
    max_stale: float = 2.0
    retry_enabled: bool = True
    retry_attempts: int = 12  # 0: unlimited
    retry_backoff: float = 0.25
    retry_max_backoff: float = 60.0


OnData = Callable[[Dependency, Any], None]
OnError = Callable[[Dependency, BaseException], None]


class View:
    """The loop of one dependency, in its own daemon thread."""

    def __init__(self, dep: Dependency, client: Client, options: WatchOptions, on_data: OnData,
                 on_error: OnError) -> None:
        self.dep = dep
        self.client = client
        self.options = options
        self.on_data = on_data
        self.on_error = on_error
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.fetches = 0
        self.failing = ""  # the error of the fetch being retried ("" when the last one worked)
        self.stale_for = 0.0  # how far behind the leader the data delivered last was

    def start(self) -> None:
        """Start the loop in a thread."""
        self.thread = threading.Thread(target=self._run, name=f"view {self.dep}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Ask the loop to end (it ends when the request in flight returns)."""
        self.stop_event.set()

    def _retry_limit(self) -> int | None:
        o = self.options
        if not o.retry_enabled:
            return 0
        return o.retry_attempts or None

    def _run(self) -> None:
        try:
            if self.dep.blocking:
                self._run_blocking()
            else:
                self._run_polling()
        except Exception as e:  # retries exhausted, or a bug: the runner decides
            if not self.stop_event.is_set():
                log.error("%s: %s", self.dep, e)
                self.on_error(self.dep, e)

    def _fetch(self, index: int, wait: str | float | None) -> Any:
        self.fetches += 1
        max_stale = self.options.max_stale
        reply = self.dep.fetch(self.client, index, wait if index else None, stale=max_stale > 0)
        if max_stale > 0 and reply.last_contact > max_stale:
            log.debug("%s: stale answer (%.1fs behind); asking the leader", self.dep, reply.last_contact)
            reply = self.dep.fetch(self.client, index, wait if index else None, stale=False)
        self.failing = ""
        self.stale_for = reply.last_contact
        return reply

    def _run_blocking(self) -> None:
        o = self.options
        backoff = Backoff(base=o.retry_backoff, cap=o.retry_max_backoff)
        for reply in blocking_watch(self._fetch, wait=o.wait, stop=self.stop_event, backoff=backoff,
                                    max_retries=self._retry_limit(), retry_on=(ConsulError, OSError),
                                    compare_values=True, on_error=self._log_retry):
            if self.stop_event.is_set():
                return
            self.on_data(self.dep, reply.value)

    def _log_retry(self, exc: BaseException, delay: float) -> None:
        self.failing = str(exc)
        log.warning("%s: %s (retrying in %.2fs)", self.dep, exc, delay)

    def _run_polling(self) -> None:
        o = self.options
        backoff = Backoff(base=o.retry_backoff, cap=o.retry_max_backoff)
        limit = self._retry_limit()
        failures = 0
        stamp: Any = None
        last: Any = None
        first = True
        while not self.stop_event.is_set():
            try:
                if isinstance(self.dep, FileQuery):
                    new_stamp = self.dep.stamp()
                    if new_stamp == stamp:
                        self.stop_event.wait(self.dep.poll_interval)
                        continue
                    stamp = new_stamp
                self.fetches += 1
                value = self.dep.fetch(self.client).value
            except (ConsulError, OSError) as e:
                failures += 1
                stamp = None
                if limit is not None and failures > limit:
                    raise
                delay = backoff.next_delay()
                self._log_retry(e, delay)
                self.stop_event.wait(delay)
                continue
            failures = 0
            backoff.reset()
            if first or value != last:
                first = False
                last = value
                self.on_data(self.dep, value)
            self.stop_event.wait(self.dep.poll_interval)


class Watcher:
    """The set of views: `add(dep)` starts one per unique identity, `remove(dep)` stops it."""

    def __init__(self, client: Client, on_data: OnData, on_error: OnError,
                 options: WatchOptions | None = None) -> None:
        self.client = client
        self.on_data = on_data
        self.on_error = on_error
        self.options = options or WatchOptions()
        self._views: dict[str, View] = {}
        self._lock = threading.Lock()
        self._warned = False

    def add(self, dep: Dependency) -> bool:
        """Watch `dep` unless already watched; True when a view was started."""
        key = str(dep)
        with self._lock:
            if key in self._views:
                return False
            view = View(dep, self.client, self.options, self.on_data, self.on_error)
            self._views[key] = view
            count = len(self._views)
        old = threading.stack_size(VIEW_STACK_SIZE)
        try:
            view.start()
        finally:
            threading.stack_size(old)
        if count > MANY_DEPENDENCIES and not self._warned:
            self._warned = True
            log.info("watching %d dependencies (one blocking query each)", count)
        return True

    def remove(self, dep: Dependency | str) -> bool:
        """Stop watching; True when a view was stopped."""
        with self._lock:
            view = self._views.pop(str(dep), None)
        if view is None:
            return False
        view.stop()
        return True

    def watching(self, dep: Dependency | str) -> bool:
        """Whether a view runs for `dep`."""
        with self._lock:
            return str(dep) in self._views

    def size(self) -> int:
        """How many views run."""
        with self._lock:
            return len(self._views)

    def keys(self) -> list[str]:
        """The identities of the watched dependencies."""
        with self._lock:
            return list(self._views)

    def problems(self) -> tuple[dict[str, str], dict[str, float]]:
        """(failing views and their errors, views whose data is older than max_stale and by how much)."""
        with self._lock:
            views = list(self._views.items())
        limit = self.options.max_stale
        failing = {k: v.failing for k, v in views if v.failing}
        stale = {k: v.stale_for for k, v in views if limit > 0 and v.stale_for > limit}
        return failing, stale

    def stop(self) -> None:
        """Stop every view."""
        with self._lock:
            views = list(self._views.values())
            self._views.clear()
        for v in views:
            v.stop()
