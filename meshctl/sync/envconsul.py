"""`meshctl envconsul`: run a command with Consul KV prefixes as its environment, as envconsul does.

    cfg = EnvConsulConfig(prefixes=[PrefixConfig("app/config")], command=["my-app"], upcase=True)
    code = EnvConsulRunner(Client(), cfg).run()      # the child's exit status

The model is envconsul 0.13: one blocking query per prefix (the shared iterator in
`meshctl.client.blocking`); once every prefix has data, the environment is built (later
prefixes override earlier ones) and the child started; when the environment changes the
child is stopped (exec kill signal, SIGKILL after the kill timeout) and started again —
envconsul always restarts, a running process cannot see new variables. The child's exit
ends envconsul with the same status.

Variable names (`env_name`): the key relative to its prefix ("/" kept); with
`no_prefix=False` the prefix path (non-[A-Za-z0-9_] as "_") and "_" in front; then
`sanitize` (non-[A-Za-z0-9_] as "_"), then `upcase`; blank names are skipped.

Own signals: the kill signal (SIGINT) stops the child and exits 12; the reload signal
(SIGHUP) restarts the child with a freshly read environment; every other signal is
relayed to the child (so SIGTERM reaches the child, and its exit ends envconsul).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any

from meshctl import process
from meshctl.child import FORWARDED_SIGNALS, Child, ChildError, exit_status
from meshctl.client import Backoff, Client, Consistency, ConsulError, KVPair, watch
from meshctl.exitcodes import (  # noqa: F401 (the tool's exit codes, re-exported)
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_INTERRUPT,
    EXIT_OK,
    EXIT_PARSE_FLAGS,
    EXIT_RUNNER,
)

log = logging.getLogger(__name__)


INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_DC_SUFFIX = re.compile(r"@([\w.\-]+)$")


@dataclass
class PrefixConfig:
    """One `-prefix` (envconsul's `prefix {}` block): a KV path, optionally `@dc`.

    `no_prefix=None` is Consul's default: names are the keys alone (no path in front).
    """

    path: str
    no_prefix: bool | None = None

    @property
    def prefix(self) -> str:
        """The KV prefix queried (leading "/" and any `@dc` removed)."""
        return _DC_SUFFIX.sub("", self.path).lstrip("/")

    @property
    def datacenter(self) -> str | None:
        """The `@dc` of the path, if any."""
        m = _DC_SUFFIX.search(self.path)
        return m.group(1) if m else None


@dataclass
class EnvConsulConfig:
    """What `meshctl envconsul` was asked to do (its flags)."""

    prefixes: list[PrefixConfig]
    command: list[str]
    sanitize: bool = False
    upcase: bool = False
    pristine: bool = False
    once: bool = False
    kill_signal: int | None = signal.SIGINT
    reload_signal: int | None = signal.SIGHUP
    exec_kill_signal: int = signal.SIGINT
    exec_kill_timeout: float = 30.0
    exec_splay: float = 0.0
    wait_min: float = 0.0
    wait_max: float = 0.0
    stale: bool = True
    retry_attempts: int | None = 12
    retry_backoff: float = 0.25
    retry_max_backoff: float = 60.0
    custom_env: dict[str, str] = field(default_factory=dict)

    def validate(self) -> str | None:
        """The configuration error, or None."""
        if not self.prefixes:
            return "at least one -prefix must be specified"
        if not self.command:
            return "No command given"
        if self.wait_max and self.wait_min > self.wait_max:
            return "wait: min must be less than max"
        return None


def relative_key(key: str, prefix: str) -> str:
    """The key as consul-template's KV list dependency hands it over: prefix and leading "/" trimmed."""
    if key.startswith(prefix):
        key = key[len(prefix):]
    return key.lstrip("/")


def env_name(key: str, prefix: PrefixConfig, *, sanitize: bool = False, upcase: bool = False) -> str | None:
    """The environment variable name for a relative key (None: skipped)."""
    if not key.strip():
        return None
    if prefix.no_prefix is False:
        key = f"{INVALID_CHARS.sub('_', prefix.path)}_{key}"
    if sanitize:
        key = INVALID_CHARS.sub("_", key)
    if upcase:
        key = key.upper()
    return key


def build_env(prefixes: Sequence[PrefixConfig], data: Mapping[int, list[KVPair]], *, sanitize: bool = False,
              upcase: bool = False) -> dict[str, str]:
    """The variables from every prefix's pairs, in prefix order (later prefixes win)."""
    env: dict[str, str] = {}
    for i, p in enumerate(prefixes):
        for pair in data.get(i, []):
            name = env_name(relative_key(pair.key, p.prefix), p, sanitize=sanitize, upcase=upcase)
            if name is not None:
                env[name] = (pair.value or b"").decode("utf-8", "replace")
    return env


class EnvConsulRunner:
    """Runs one `meshctl envconsul` invocation; `run()` returns the exit status."""

    def __init__(self, client: Client, cfg: EnvConsulConfig, *, stderr: IO[str] | None = None) -> None:
        self.client = client
        self.cfg = cfg
        self.stderr = stderr or sys.stderr
        self.child: Child | None = None
        self.env: dict[str, str] | None = None
        self._events: queue.SimpleQueue[tuple[str, int, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._data: dict[int, list[KVPair]] = {}
        self._generation = 0
        self._timer: threading.Timer | None = None
        self._deadline: threading.Timer | None = None
        self.on_child_started: Callable[[Child], Any] | None = None  # a hook for tests

    def error(self, text: str) -> None:
        """One line on stderr."""
        self.stderr.write(text.rstrip("\n") + "\n")
        self.stderr.flush()

    # -- signals -----------------------------------------------------------------------------

    def handle_signal(self, sig: int) -> None:
        """Deliver a signal to the runner (safe from a signal handler or another thread)."""
        self._events.put(("signal", -1, sig))

    def signal_handlers(self) -> AbstractContextManager[frozenset[int]]:
        """Route this process's signals to the runner (main thread only)."""
        sigs = set(FORWARDED_SIGNALS)
        sigs.update(s for s in (self.cfg.kill_signal, self.cfg.reload_signal) if s)
        sigs.discard(signal.SIGCHLD)
        return process.signal_handlers(dict.fromkeys(sorted(sigs), self.handle_signal))

    # -- watching -----------------------------------------------------------------------------

    def _watch_prefix(self, i: int, p: PrefixConfig) -> None:
        """One prefix's blocking-query loop (or a single fetch with `once`), feeding the event queue."""
        cfg = self.cfg
        consistency: Consistency | None = "stale" if cfg.stale else None

        def fetch(index: int, wait: str | float | None) -> Any:
            return self.client.kv.list_prefix(p.prefix, index=index, wait=wait, consistency=consistency, dc=p.datacenter)

        try:
            for reply in watch(fetch, stop=self._stop, compare_values=True, max_retries=cfg.retry_attempts,
                               backoff=Backoff(base=cfg.retry_backoff, cap=cfg.retry_max_backoff),
                               on_error=lambda e, d: log.warning("fetching %s: %s (retry in %.1fs)", p.path, e, d)):
                self._events.put(("data", i, reply.value))
                if cfg.once:
                    return
        except ConsulError as e:
            self._events.put(("error", i, e))

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Watch, (re)start the child, wait; the exit status."""
        problem = self.cfg.validate()
        if problem:
            self.error(problem)
            return EXIT_CONFIG
        with self.signal_handlers():
            for i, p in enumerate(self.cfg.prefixes):
                threading.Thread(target=self._watch_prefix, args=(i, p), name=f"envconsul-{p.path}",
                                 daemon=True).start()
            try:
                return self._loop()
            finally:
                self._stop.set()
                self._cancel_timers()

    def _loop(self) -> int:
        while True:
            kind, tag, data = self._events.get()
            if kind == "data":
                self._data[tag] = data
                if len(self._data) < len(self.cfg.prefixes):
                    continue  # wait until every prefix has data
                if self.child is not None and self.cfg.wait_min > 0:
                    self._arm_quiescence()
                    continue
                code = self._apply()
            elif kind == "timer":
                if tag != self._generation:
                    continue
                self._cancel_timers()
                code = self._apply()
            elif kind == "error":
                self.error(f"envconsul: error fetching {self.cfg.prefixes[tag].path}: {data}")
                self._stop_child()
                return EXIT_RUNNER
            elif kind == "exit":
                if tag != self._generation:
                    continue  # a child we stopped on purpose
                return exit_status(data)
            else:  # signal
                code = self._on_signal(data)
            if code is not None:
                return code

    def _arm_quiescence(self) -> None:
        """Start (or push back) the min timer, never past the max deadline (consul-template's wait)."""
        gen = self._generation
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.cfg.wait_min, lambda: self._events.put(("timer", gen, None)))
        self._timer.daemon = True
        self._timer.start()
        if self._deadline is None and self.cfg.wait_max > 0:
            self._deadline = threading.Timer(self.cfg.wait_max, lambda: self._events.put(("timer", gen, None)))
            self._deadline.daemon = True
            self._deadline.start()

    def _cancel_timers(self) -> None:
        for t in (self._timer, self._deadline):
            if t is not None:
                t.cancel()
        self._timer = self._deadline = None

    def _apply(self, force: bool = False) -> int | None:
        """Build the environment; start or restart the child if it changed."""
        cfg = self.cfg
        env = build_env(cfg.prefixes, self._data, sanitize=cfg.sanitize, upcase=cfg.upcase)
        if env == self.env and not force:
            log.info("environment was the same")
            return None
        self.env = env
        if self.child is not None:
            if cfg.once:
                return None
            self._stop_child()
        return self._start_child(env)

    def _start_child(self, env: dict[str, str]) -> int | None:
        cfg = self.cfg
        self._generation += 1
        gen = self._generation
        command: str | list[str] = cfg.command
        shell = len(cfg.command) == 1 and " " in cfg.command[0]  # one string with spaces runs via sh -c
        child = Child(command, shell=shell, shell_path="/bin/sh" if shell else None,
                      env={**env, **cfg.custom_env}, inherit_env=not cfg.pristine,
                      kill_signal=cfg.exec_kill_signal, kill_timeout=cfg.exec_kill_timeout, reload_signal=None,
                      splay=cfg.exec_splay, parent_death_signal=signal.SIGTERM)
        child.on_exit(lambda code: self._events.put(("exit", gen, code)))
        try:
            child.start()
        except ChildError as e:
            self.error(f"envconsul: {e}")
            return EXIT_RUNNER
        self.child = child
        if self.on_child_started is not None:
            self.on_child_started(child)
        return None

    def _stop_child(self, immediately: bool = False) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        self._generation += 1  # its exit is expected now
        child.stop(immediately=immediately)

    def _on_signal(self, sig: int) -> int | None:
        cfg = self.cfg
        if sig == cfg.kill_signal:
            self._stop_child(immediately=True)
            return EXIT_INTERRUPT
        if sig == cfg.reload_signal:
            if self.child is not None and not cfg.once:
                return self._apply(force=True)
            return None
        if self.child is not None:
            self.child.signal(sig)
        return None


def write_pid_file(path: str) -> None:
    """Write this process's pid (removed by `remove_pid_file`)."""
    with open(path, "w") as f:
        f.write(f"{os.getpid()}")


def remove_pid_file(path: str) -> None:
    """Remove the pid file if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
