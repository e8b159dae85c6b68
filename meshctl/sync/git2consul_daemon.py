"""The git2consul process: sync every branch once, then keep them mirrored from hooks.

    code = Git2ConsulDaemon(client, config, config_key="git2consul/config").run()

Start-up syncs every branch of every repo (and, with `support_tags`, every annotated tag);
a failure there is fatal (exit 2), as in git2consul. With `no_daemon` that is all. Otherwise
each branch gets a worker thread that runs one sync at a time: a trigger arriving while a
sync runs is remembered and runs right after it (however many arrive, one more sync), so
polling and webhooks never overlap on a branch. `halt_on_change` watches the config key with
a blocking query and stops (exit 0) when its ModifyIndex moves; SIGTERM and SIGINT stop too,
after the syncs in progress finish. With neither hooks nor halt_on_change there is nothing
to wait for, and the process ends after the first sync, as git2consul's event loop did.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import AbstractContextManager
from typing import Any

from meshctl.client import Client, ConsulError, watch
from meshctl.process import signal_handlers
from meshctl.sync import gitcli
from meshctl.sync.git2consul import (
    EXIT_INIT,
    EXIT_OK,
    BranchSync,
    Git2ConsulConfig,
    RepoConfig,
    SyncResult,
)
from meshctl.sync.git2consul_hooks import Poller, Push, Route, WebhookServer
from meshctl.sync.gitcli import GitError

log = logging.getLogger(__name__)


class BranchWorker:
    """One thread per branch: runs its sync whenever triggered, never two at once."""

    def __init__(self, sync: BranchSync) -> None:
        self.sync = sync
        self.last: SyncResult | None = None
        self._cond = threading.Condition()
        self._pending = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"sync-{sync.repo.name}/{sync.branch}", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def trigger(self) -> None:
        """Ask for a sync; coalesces with any request not yet started."""
        with self._cond:
            self._pending = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                self._pending = False
            try:
                self.last = result = self.sync.sync()
            except Exception:  # a bug must not end the branch's worker: log it, sync on the next trigger
                log.exception("Sync of %s/%s crashed", self.sync.repo.name, self.sync.branch)
                continue
            if not result.ok:
                log.error("Sync of %s/%s failed: %s", self.sync.repo.name, self.sync.branch, "; ".join(result.errors))

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the sync in progress (if any); drops a pending trigger."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)


class RepoRunner:
    """A repo's branches (and tags) with their workers."""

    def __init__(self, client: Client, repo: RepoConfig, local_store: str) -> None:
        self.client = client
        self.repo = repo
        self.local_store = local_store
        self.syncs: dict[str, BranchSync] = {b: BranchSync(client, repo, b, local_store) for b in repo.branches}
        self.workers: dict[str, BranchWorker] = {}
        self._lock = threading.Lock()
        self.daemon = False

    def new_tags(self) -> list[str]:
        """Annotated tags of the remote not tracked yet, now tracked (as immutable branches)."""
        if not self.repo.support_tags:
            return []
        try:
            tags = gitcli.remote_tags(self.repo.url)
        except GitError as e:
            log.error("Failed to list tags of %s: %s", self.repo.name, e)
            return []
        added = []
        with self._lock:
            for tag in tags:
                if tag not in self.syncs:
                    self.syncs[tag] = BranchSync(self.client, self.repo, tag, self.local_store, tag=True)
                    added.append(tag)
                    if self.daemon:
                        self._start_worker(tag).trigger()
        return added

    def _start_worker(self, name: str) -> BranchWorker:
        worker = self.workers[name] = BranchWorker(self.syncs[name])
        worker.start()
        return worker

    def start_workers(self) -> None:
        """One worker per branch and tag known so far; tags found later get theirs when found."""
        with self._lock:
            self.daemon = True
            for name in self.syncs:
                if name not in self.workers:
                    self._start_worker(name)

    def poll(self) -> None:
        """A polling round: pick up new tags, then sync every branch (tags are immutable)."""
        self.new_tags()
        with self._lock:
            workers = [w for w in self.workers.values() if not w.sync.tag]
        for worker in workers:
            worker.trigger()

    def on_push(self, push: Push) -> None:
        """A webhook reported pushes: sync the configured branches among them."""
        relevant = [(b, c) for b, c in push if b in self.repo.branches]
        if not relevant:
            log.debug("No changes in a relevant branch of %s", self.repo.name)
            if self.repo.support_tags:
                threading.Thread(target=self.new_tags, name=f"tags-{self.repo.name}", daemon=True).start()
            return
        for branch, commit in relevant:
            log.info("Webhook noted change to branch %s of repo %s with commit id %s", branch, self.repo.name, commit)
            worker = self.workers.get(branch)
            if worker is not None:
                worker.trigger()

    def stop(self) -> None:
        """Stop every worker (each finishes its sync in progress)."""
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.stop()


class Git2ConsulDaemon:
    """One `meshctl git2consul` process; `run()` returns its exit status."""

    def __init__(self, client: Client, config: Git2ConsulConfig, *, config_key: str, local_store: str) -> None:
        self.client = client
        self.config = config
        self.config_key = config_key
        self.repos = [RepoRunner(client, repo, local_store) for repo in config.repos]
        self.servers: dict[tuple[str, int], WebhookServer] = {}
        self.pollers: list[Poller] = []
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the daemon to stop (safe from signal handlers and other threads)."""
        self._stop.set()

    # -- start-up -----------------------------------------------------------------------------

    def initial_sync(self) -> list[str]:
        """Sync every branch (and tag) once, in order; the failures, as messages."""
        failures = []
        for runner in self.repos:
            runner.new_tags()
            for name, sync in list(runner.syncs.items()):
                result = sync.sync()
                if not result.ok:
                    failures.append(f"Failed to load repo {runner.repo.name} due to branch {name}: "
                                    + "; ".join(result.errors))
                else:
                    log.info("Initialized branch %s from %s", name, runner.repo.name)
        return failures

    def _build_hooks(self) -> None:
        for runner in self.repos:
            for hook in runner.repo.hooks:
                if hook.type == "polling":
                    assert hook.interval is not None
                    self.pollers.append(Poller(runner.repo.name, hook.interval * 60.0, runner.poll))
                    log.debug("Polling hook initialized with %s minute intervals", hook.interval)
                    continue
                assert hook.port is not None and hook.url is not None
                server = self.servers.get((hook.address, hook.port))
                if server is None:
                    server = self.servers[(hook.address, hook.port)] = WebhookServer(hook.address, hook.port)
                server.add(hook.url, Route(hook.type, runner.on_push, hook.secret))

    def _watch_config(self) -> None:
        """halt_on_change: stop when the config key's ModifyIndex changes."""
        first: int | None = None

        def fetch(index: int, wait: Any) -> Any:
            return self.client.kv.get(self.config_key, index=index, wait=wait)

        try:
            for reply in watch(fetch, wait="60s", stop=self._stop,
                               on_error=lambda e, d: log.error("config poll failure due to %s.  Ignoring...", e)):
                modify = reply.value.modify_index if reply.value else 0
                if first is None:
                    first = modify
                elif modify != first:
                    log.warning("Config key %s changed; halting", self.config_key)
                    self.stop()
                    return
        except ConsulError as e:  # pragma: no cover - watch retries forever by default
            log.error("config poll failure due to %s", e)

    def _signals(self) -> AbstractContextManager[frozenset[int]]:
        """SIGTERM and SIGINT stop the daemon (main thread only)."""
        return signal_handlers(dict.fromkeys((signal.SIGTERM, signal.SIGINT), lambda _sig: self.stop()))

    # -- the process ----------------------------------------------------------------------------

    def run(self) -> int:
        """Initial sync, then (unless no_daemon) serve hooks until stopped."""
        with self._signals():
            failures = self.initial_sync()
            if failures:
                for f in failures:
                    log.error("%s", f)
                return EXIT_INIT
            if self.config.no_daemon or self._stop.is_set():
                return EXIT_OK
            try:
                self._build_hooks()
            except ValueError as e:
                log.error("Hook configuration failed due to %s", e)
                return EXIT_INIT
            if not self.servers and not self.pollers and not self.config.halt_on_change:
                log.info("No hooks configured: nothing left to do")
                return EXIT_OK
            for runner in self.repos:  # workers first: a webhook may arrive as soon as its port is bound
                runner.start_workers()
            try:
                for server in self.servers.values():
                    server.start()
            except OSError as e:
                log.error("Hook configuration failed due to %s", e)
                self._shutdown()
                return EXIT_INIT
            for poller in self.pollers:
                poller.start()
            watcher = None
            if self.config.halt_on_change:
                watcher = threading.Thread(target=self._watch_config, name="halt-on-change", daemon=True)
                watcher.start()
            log.info("git2consul is running")
            while not self._stop.wait(1.0):
                pass
            self._shutdown()
            return EXIT_OK

    def _shutdown(self) -> None:
        self._stop.set()
        for poller in self.pollers:
            poller.stop()
        for server in self.servers.values():
            server.stop()
        for runner in self.repos:
            runner.stop()  # waits for a sync in progress, as git2consul's gracefulShutdown did
