"""`meshctl replicate`: consul-replicate — KV prefixes of another datacenter copied into the local one.

    cfg = ReplicateConfig(prefixes=[Prefix.parse("global/@dc1:global/")])
    code = ReplicateRunner(Client("127.0.0.1:8500"), cfg).run()   # 0, or consul-replicate's exit codes

The model is consul-replicate 0.4: a pull. For each prefix a blocking recursive list of the
source prefix is read through the local agent with `?dc=<source>`; each result is one pass
into the agent's own datacenter:

* destination key = destination + (source key minus the source prefix) — plain strings, so
  `global@dc1:backup` also maps `globalization` to `backupization` (end prefixes with "/");
* source keys under an `exclude` prefix are skipped; keys whose ModifyIndex is not above the
  status's LastReplicated are skipped (already copied); the others are PUT with their Flags
  (never their session: sessions are per datacenter, a warning says so);
* destination keys the source no longer has are deleted (`delete`, default on), except
  those whose source key (or themselves) fall under an exclude;
* the status record `{"LastReplicated", "Source", "Destination"}` (indented JSON, as Go's
  MarshalIndent) is written at `<status_dir>/<md5hex(source + "-" + destination)>`.

Where consul-replicate fails its users, this does better (README "Replication across
datacenters"):

* an empty source read deletes nothing by itself (consul-replicate #82: a read during a
  leader flap wiped destinations): when it would delete, a `?consistent` read (leader
  known, index non-zero) must agree; if that read finds keys, the pass uses them;
* a source whose index went below LastReplicated (restored or rebuilt) is copied in full
  again, instead of skipping every key with a lower ModifyIndex forever;
* a replicated key deleted by hand in the destination is written again (#52, in part);
* status records are never deleted, even when they live under a destination prefix;
* errors never end the daemon: source reads and failed passes are retried with backoff
  (consul-replicate exits on a failed write and its watcher gives up after 12 attempts);
  `-once` gives up after the retry attempts, with exit 14;
* SIGTERM stops gracefully with exit 0 (consul-replicate ignores it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.client import Backoff, Client, Consistency, ConsulError, KVPair, Reply, watch
from meshctl.exitcodes import (  # noqa: F401 (the tool's exit codes, re-exported)
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_INTERRUPT,
    EXIT_OK,
    EXIT_PARSE_FLAGS,
    EXIT_RUNNER,
)

log = logging.getLogger("meshctl.replicate")

RELOADED = -1  # not an exit code: the runner re-read its configuration

DEFAULT_STATUS_DIR = "service/consul-replicate/statuses"
BLOCK_WAIT = 60.0  # seconds a source read blocks (consul-template's block_query_wait)
LOCK_FLAG = 0x2DDCCBC058A50C18  # the Go api's LockFlagValue
SEMAPHORE_FLAG = 0xE0F69A2BAA414DE0  # the Go api's SemaphoreFlagValue
_SOURCE = re.compile(r"^/?(?P<prefix>[^@]*)(?:@(?P<dc>[\w.\-]*))?$")


class ReplicateError(Exception):
    """A pass or the setup failed. `fatal` ones end the runner (exit 14); others are retried."""

    fatal = False


class Stopped(ReplicateError):
    """A stop signal arrived before the runner got going."""

    fatal = True

    def __init__(self, code: int) -> None:
        super().__init__("stopped")
        self.code = code


class SourceIsLocal(ReplicateError):
    """The source datacenter is the agent's own: nothing to pull from."""

    fatal = True


@dataclass(frozen=True)
class Prefix:
    """One `-prefix "source@dc[:destination]"` (or `prefix { source datacenter destination }` block)."""

    source: str
    datacenter: str
    destination: str

    @classmethod
    def parse(cls, text: str) -> Prefix:
        """consul-replicate's prefix syntax; the datacenter is required, the destination defaults to the source."""
        if not text.strip():
            raise ValueError("missing prefix")
        source, _, destination = text.partition(":")
        m = _SOURCE.match(source)
        if m is None:
            raise ValueError(f"invalid source format: {source!r}")
        if not m.group("dc"):
            raise ValueError(f"missing datacenter in prefix {text!r} (expected source@dc[:destination])")
        if not m.group("prefix"):
            raise ValueError(f"missing prefix in {text!r}")
        return cls(m.group("prefix"), m.group("dc"), destination or m.group("prefix"))

    @property
    def display(self) -> str:
        return f"{self.source}@{self.datacenter} => {self.destination}"

    def dest_key(self, source_key: str) -> str:
        """Where a source key lands (the source prefix replaced by the destination one)."""
        return self.destination + source_key[len(self.source):]

    def source_key(self, dest_key: str) -> str:
        """The source key a destination key stands for."""
        return self.source + dest_key[len(self.destination):]


@dataclass
class Status:
    """The progress record of one prefix, as consul-replicate stores it."""

    last_replicated: int = 0
    source: str = ""
    destination: str = ""

    def to_json(self) -> bytes:
        """Go's json.MarshalIndent(status, "", "  "): same field order, same HTML escaping."""
        text = json.dumps({"LastReplicated": self.last_replicated, "Source": self.source,
                           "Destination": self.destination}, indent=2, ensure_ascii=False)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()

    @classmethod
    def from_json(cls, data: bytes | None) -> Status:
        if not data:
            return cls()
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("status is not a JSON object")
        return cls(int(value.get("LastReplicated") or 0), str(value.get("Source") or ""),
                   str(value.get("Destination") or ""))


def _status_dir(status_dir: str) -> str:
    directory = posixpath.normpath(status_dir).strip("/") if status_dir.strip("/") else ""
    return "" if directory == "." else directory


def status_key(status_dir: str, prefix: Prefix) -> str:
    """`<status_dir>/<md5hex(source + "-" + destination)>` (Go's filepath.Join cleaning)."""
    name = hashlib.md5(f"{prefix.source}-{prefix.destination}".encode()).hexdigest()  # an identity, not security
    directory = _status_dir(status_dir)
    return f"{directory}/{name}" if directory else name


def excluded(key: str, excludes: Iterable[str]) -> bool:
    return any(key.startswith(e) for e in excludes if e)


@dataclass
class Plan:
    """What one pass does to the destination."""

    puts: list[KVPair] = field(default_factory=list)  # destination keys with the source's value and flags
    deletes: list[str] = field(default_factory=list)
    skipped: int = 0  # already replicated (ModifyIndex <= LastReplicated)
    excluded: int = 0
    warnings: list[str] = field(default_factory=list)


def plan_pass(prefix: Prefix, source: Sequence[KVPair], dest_keys: Iterable[str], last_replicated: int,
              excludes: Sequence[str] = (), delete: bool = True, protected: Sequence[str] = ()) -> Plan:
    """The writes and deletes that make the destination follow the source (no I/O)."""
    plan = Plan()
    present = set(dest_keys)
    wanted: set[str] = set()
    for pair in source:
        if not pair.key.startswith(prefix.source):
            continue
        if excluded(pair.key, excludes):
            plan.excluded += 1
            continue
        key = prefix.dest_key(pair.key)
        wanted.add(key)
        if pair.modify_index <= last_replicated and key in present:
            plan.skipped += 1
            continue
        if pair.flags == LOCK_FLAG:
            plan.warnings.append(f"lock in use at {key!r}, but sessions cannot be replicated across datacenters")
        elif pair.flags == SEMAPHORE_FLAG:
            plan.warnings.append(f"semaphore in use at {key!r}, but sessions cannot be replicated across "
                                 "datacenters")
        elif pair.session:
            plan.warnings.append(f"{key!r} has attached session, but sessions cannot be replicated across "
                                 "datacenters")
        plan.puts.append(KVPair(key, pair.value, flags=pair.flags))
    if delete:
        for key in sorted(present - wanted):
            if not key.startswith(prefix.destination) or (protected and key.startswith(tuple(protected))):
                continue
            if excluded(key, excludes) or excluded(prefix.source_key(key), excludes):
                continue
            plan.deletes.append(key)
    return plan


@dataclass
class PassResult:
    """What a pass did."""

    updates: int
    deletes: int
    index: int


class Replicator:
    """The I/O of a pass, through the one client: source reads (?dc=), status, destination writes."""

    def __init__(self, client: Client, status_dir: str = DEFAULT_STATUS_DIR, excludes: Sequence[str] = (),
                 delete: bool = True, max_stale: float = 2.0) -> None:
        self.client = client
        self.status_dir = status_dir
        self.excludes = list(excludes)
        self.delete = delete
        self.max_stale = max_stale

    def local_datacenter(self) -> str:
        """The agent's datacenter (where the destination keys are written)."""
        return str((self.client.agent.self().get("Config") or {}).get("Datacenter") or "")

    def read_source(self, prefix: Prefix, index: int = 0, wait: float | None = None) -> Reply[list[KVPair]]:
        """The source listing; stale reads allowed, unless the answering server is more than max_stale behind."""
        consistency: Consistency | None = "stale" if self.max_stale > 0 else None
        reply = self.client.kv.list_prefix(prefix.source, index=index, wait=wait, dc=prefix.datacenter,
                                    consistency=consistency)
        if consistency and reply.last_contact > self.max_stale:  # too stale: ask the leader (consul-template)
            reply = self.client.kv.list_prefix(prefix.source, index=index, wait=wait, dc=prefix.datacenter)
        return reply

    def status(self, prefix: Prefix) -> Status:
        pair = self.client.kv.get(status_key(self.status_dir, prefix)).value
        try:
            return Status.from_json(pair.value if pair else None)
        except (ValueError, TypeError) as exc:
            raise ReplicateError(f"failed to read replication status: {exc}") from None

    def replicate(self, prefix: Prefix, reply: Reply[list[KVPair]]) -> PassResult:
        """One pass of `prefix` from a source listing; raises ReplicateError or ConsulError."""
        status = self.status(prefix)
        last = status.last_replicated
        if reply.index < last:
            log.warning("source %s@%s is at index %d, below LastReplicated %d (restored or rebuilt?): "
                        "copying every key again", prefix.source, prefix.datacenter, reply.index, last)
            last = 0
        dest_keys = self.client.kv.keys(prefix.destination).value
        # status records are never deleted, even when they live under the destination prefix
        directory = _status_dir(self.status_dir)
        protected = [f"{directory}/" if directory else status_key(self.status_dir, prefix)]
        plan = plan_pass(prefix, reply.value, dest_keys, last, self.excludes, self.delete, protected)
        if not reply.value and plan.deletes:
            reply = self._confirm_empty(prefix, len(plan.deletes))
            if reply.value:  # the empty answer was wrong: copy what the leader holds
                last = 0 if reply.index < status.last_replicated else last
                plan = plan_pass(prefix, reply.value, dest_keys, last, self.excludes, self.delete, protected)
        for warning in plan.warnings:
            log.warning(warning)
        for pair in plan.puts:
            self.client.kv.put(pair.key, pair.value, flags=pair.flags)
            log.debug("updated key %r", pair.key)
        for key in plan.deletes:
            self.client.kv.delete(key)
            log.debug("deleted %r", key)
        done = Status(reply.index, prefix.source, prefix.destination)
        if done != status:
            self.client.kv.put(status_key(self.status_dir, prefix), done.to_json())
        if plan.puts or plan.deletes:
            log.info("replicated %d updates, %d deletes (%s)", len(plan.puts), len(plan.deletes), prefix.display)
        return PassResult(len(plan.puts), len(plan.deletes), reply.index)

    def _confirm_empty(self, prefix: Prefix, would_delete: int) -> Reply[list[KVPair]]:
        """A consistent read (the leader checks it still leads) before an empty source empties the destination."""
        log.info("source %s@%s read empty; confirming with a consistent read before deleting %d keys",
                 prefix.source, prefix.datacenter, would_delete)
        try:
            second = self.client.kv.list_prefix(prefix.source, dc=prefix.datacenter, consistency="consistent")
        except ConsulError as exc:
            raise ReplicateError(f"source {prefix.source}@{prefix.datacenter} read empty and could not be "
                                 f"confirmed ({exc}); not deleting {would_delete} keys") from None
        if not second.known_leader or second.index <= 0:
            raise ReplicateError(f"source {prefix.source}@{prefix.datacenter} read empty without a known leader; "
                                 f"not deleting {would_delete} keys")
        return second


@dataclass
class ReplicateConfig:
    """Everything the runner needs (the command builds it from flags and -config files)."""

    prefixes: list[Prefix] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    status_dir: str = DEFAULT_STATUS_DIR
    delete: bool = True
    once: bool = False
    wait_min: float = 0.0
    wait_max: float = 0.0
    max_stale: float = 2.0
    kill_signal: int | None = signal.SIGINT
    reload_signal: int | None = signal.SIGHUP
    retry_enabled: bool = True
    retry_attempts: int = 12  # 0: forever; only -once gives up
    retry_backoff: float = 0.25
    retry_max_backoff: float = 60.0


class ReplicateRunner:
    """Watches every prefix (one blocking-query thread each) and runs passes, with quiescence and retries.

    Signals are handed in with `signal(signum)` (safe from a signal handler): the kill signal
    stops with exit 12, SIGTERM gracefully with 0, the reload signal re-reads the configuration
    through `reload_config` and starts over.
    """

    def __init__(self, client: Client, config: ReplicateConfig,
                 reload_config: Callable[[], ReplicateConfig] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.reload_config = reload_config
        self.clock = clock
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()  # put() is signal-safe
        self._generation = 0
        self._stop = threading.Event()  # ends the current watcher threads
        self._halt = threading.Event()  # a stop signal arrived (wakes the startup retries)
        self._configure(config)

    def _configure(self, config: ReplicateConfig) -> None:
        self.config = config
        self.replicator = Replicator(self.client, config.status_dir, config.excludes, config.delete,
                                     config.max_stale)

    def _backoff(self) -> Backoff:
        return Backoff(base=self.config.retry_backoff, cap=self.config.retry_max_backoff or 60.0)

    @property
    def _give_up_after(self) -> int | None:
        """Consecutive failures -once tolerates (None: forever); the daemon never gives up."""
        if not self.config.once:
            return None
        if not self.config.retry_enabled:
            return 0
        return self.config.retry_attempts or None

    # ------------------------------------------------------------------ signals

    def signal(self, signum: int) -> None:
        """Hand a signal to the runner (from a signal handler or another thread)."""
        self.events.put(("signal", signum))
        if signum in (self.config.kill_signal, signal.SIGTERM):
            self._halt.set()

    # ------------------------------------------------------------------ watching

    def _start_watchers(self) -> None:
        self._stop.set()  # the previous generation's threads end after their request in flight
        self._stop = threading.Event()
        self._generation += 1
        for prefix in self.config.prefixes:
            threading.Thread(target=self._watch, args=(prefix, self._stop, self._generation),
                             name=f"replicate {prefix.display}", daemon=True).start()

    def _watch(self, prefix: Prefix, stop: threading.Event, generation: int) -> None:
        def fetch(index: int, wait: Any) -> Reply[list[KVPair]]:
            return self.replicator.read_source(prefix, index=index, wait=wait)

        failures = [0]

        def on_error(exc: BaseException, delay: float) -> None:
            failures[0] += 1
            level = logging.ERROR if failures[0] >= max(1, self.config.retry_attempts) else logging.WARNING
            log.log(level, "(view) %s@%s: %s (attempt %d; retrying in %.2fs)", prefix.source, prefix.datacenter,
                    exc, failures[0], delay)

        try:
            for reply in watch(fetch, wait=BLOCK_WAIT, stop=stop, backoff=self._backoff(),
                               max_retries=self._give_up_after, on_error=on_error):
                failures[0] = 0
                self.events.put(("data", generation, prefix, reply))
                if self.config.once:  # one result per prefix is all -once needs
                    return
        except ConsulError as exc:  # -once: retries exhausted
            self.events.put(("error", generation, prefix, exc))
        except Exception as exc:  # a bug must not leave the runner waiting forever
            log.exception("watching %s failed", prefix.display)
            self.events.put(("error", generation, prefix, exc))

    # ------------------------------------------------------------------ the loop

    def _check_datacenters(self) -> None:
        """Refuse a source datacenter that is the agent's own (retrying while the agent is unreachable)."""
        backoff, failures = self._backoff(), 0
        while True:
            try:
                local = self.replicator.local_datacenter()
                break
            except ConsulError as exc:
                failures += 1
                limit = self._give_up_after
                if limit is not None and failures > limit:
                    raise ReplicateError(f"failed to query agent: {exc}") from None
                delay = backoff.next_delay()
                log.warning("failed to query agent: %s (retrying in %.2fs)", exc, delay)
                if self._halt.wait(delay):
                    raise Stopped(self._stop_code()) from None
        for prefix in self.config.prefixes:
            if prefix.datacenter == local:
                raise SourceIsLocal(f"local datacenter cannot be the source datacenter: prefix {prefix.display} "
                                    f"reads {prefix.datacenter}, the datacenter of the agent at "
                                    f"{self.client.config.base_url}; point -consul-addr at an agent of the "
                                    "destination datacenter")

    def run(self) -> int:
        """Replicate until stopped (or, with `once`, after one pass per prefix); the exit code."""
        log.info("starting (once: %s)", self.config.once)
        try:
            self._check_datacenters()
            self._start_watchers()
            return self._loop()
        except Stopped as exc:
            return exc.code
        except ReplicateError as exc:
            log.error("%s", exc)
            return EXIT_RUNNER
        finally:
            self._stop.set()

    def _loop(self) -> int:
        pending: dict[Prefix, Reply[list[KVPair]]] = {}
        passed: set[Prefix] = set()
        min_at: float | None = None
        max_at: float | None = None
        retry_at: float | None = None
        failures = 0
        backoff = self._backoff()
        while True:
            deadlines = [t for t in (min_at, max_at, retry_at) if t is not None]
            timeout = max(0.0, min(deadlines) - self.clock()) if deadlines and pending else None
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                event = None
            if event is not None:
                kind = event[0]
                if kind == "signal":
                    code = self._on_signal(event[1])
                    if code == RELOADED:  # a new configuration: start over
                        pending.clear()
                        passed.clear()
                        min_at = max_at = retry_at = None
                        failures = 0
                    elif code is not None:
                        return code
                    continue
                if event[1] != self._generation:
                    continue
                if kind == "error":
                    log.error("%s@%s: %s", event[2].source, event[2].datacenter, event[3])
                    return EXIT_RUNNER
                pending[event[2]] = event[3]
                if self.config.wait_min > 0 and not self.config.once:
                    now = self.clock()
                    min_at = now + self.config.wait_min
                    max_at = max_at or now + max(self.config.wait_max, self.config.wait_min)
                if not self.events.empty():
                    continue  # take every waiting result before a pass
            now = self.clock()
            if not pending or (retry_at is not None and now < retry_at):
                continue
            if min_at is not None and now < min_at and (max_at is None or now < max_at):
                continue
            min_at = max_at = retry_at = None
            errors = self._passes(pending, passed)
            if not errors:
                failures = 0
                backoff.reset()
                if self.config.once and passed >= set(self.config.prefixes):
                    log.info("once: every prefix replicated")
                    return EXIT_OK
                continue
            fatal = [e for e in errors if isinstance(e, ReplicateError) and e.fatal]
            if fatal:
                raise fatal[0]
            failures += 1
            limit = self._give_up_after
            if limit is not None and failures > limit:
                log.error("giving up after %d failed passes", failures)
                return EXIT_RUNNER
            retry_at = self.clock() + backoff.next_delay()

    def _passes(self, pending: dict[Prefix, Reply[list[KVPair]]], passed: set[Prefix]) -> list[Exception]:
        """One pass for each prefix with new data; those that fail stay pending."""
        errors: list[Exception] = []
        for prefix, reply in list(pending.items()):
            try:
                self.replicator.replicate(prefix, reply)
            except (ReplicateError, ConsulError, ValueError) as exc:
                log.error("(runner) %s: %s", prefix.display, exc)
                errors.append(exc)
                continue
            passed.add(prefix)
            if pending.get(prefix) is reply:
                del pending[prefix]
        return errors

    def _stop_code(self) -> int:
        """The exit code of the stop signal waiting in the queue (other events are dropped)."""
        while True:
            event = self.events.get()
            if event[0] == "signal" and event[1] in (self.config.kill_signal, signal.SIGTERM):
                code = self._on_signal(event[1])
                assert code is not None
                return code

    def _on_signal(self, signum: int) -> int | None:
        """The exit code the signal asks for, RELOADED, or None to go on."""
        if signum == self.config.kill_signal:
            sys.stderr.write("Cleaning up...\n")
            return EXIT_INTERRUPT
        if signum == self.config.reload_signal:
            sys.stderr.write("Reloading configuration...\n")
            if self.reload_config is not None:
                try:
                    config = self.reload_config()
                except (ValueError, OSError) as exc:
                    log.error("reload failed: %s", exc)
                    sys.stderr.write(f"meshctl replicate: {exc}\n")
                    return EXIT_CONFIG
                self._configure(config)
            self._check_datacenters()
            self._start_watchers()
            return RELOADED
        if signum == signal.SIGTERM:
            log.info("SIGTERM: stopping")
            return EXIT_OK
        log.debug("ignoring signal %s", signum)
        return None


__all__ = ["DEFAULT_STATUS_DIR", "Plan", "Prefix", "ReplicateConfig", "ReplicateError", "ReplicateRunner",
           "Replicator", "SourceIsLocal", "Status", "plan_pass", "status_key"]
