"""`meshctl lock`: run a command while holding a lock (or a semaphore slot), as `consul lock` does.

    cfg = LockConfig(prefix="service/vault/leader", command=["vault", "server"])
    code = LockRunner(Client(), cfg).run()     # the process's exit status

The loop (consul's command/lock/lock.go): acquire → start the child with
`CONSUL_LOCK_HELD=true` → wait for whichever comes first:

* the child exits: stop what it left in its process group (a forking `sh -c` leaves the real
  command there when the shell dies), release the lock, clean the key up, exit 0 (2 with
  `child_exit_code` if the child failed);
* SIGINT/SIGTERM: relay it to the child, SIGKILL it after `kill_timeout`, release, exit 0;
  other signals (HUP, USR1, USR2, QUIT, WINCH) are only relayed;
* the lock is lost (session invalidated, key deleted or taken, agent unreachable past
  `monitor_retry` retries 1s apart): SIGTERM the child, SIGKILL after `kill_timeout`,
  release, then exit 1 — or, with `reacquire`, wait for the lock again.

Stopping before anyone else may hold the lock: the cluster can hand the lock over at the
earliest one lock-delay (15s) after the session was last known alive — its node's check can
fail (~5s after its server stops answering) and invalidate it at any moment — and 2×TTL plus
the lock-delay after the last renewal when only the TTL runs out. So the session is renewed
every 4s, and when no renewal sent in the last `lock-delay − kill_timeout − STOP_MARGIN`
seconds (15 − 5 − 2 = 8s by default) has succeeded, the lock counts as lost even if the agent
never answers: the child gets SIGTERM, SIGKILL `kill_timeout` later, and is gone STOP_MARGIN
(2s: delivery, reaping, a loaded host) before the lock-delay could end — in practice some 7s
more, the failure detection. A `kill_timeout` (or a lock-delay) leaving under 3s of renewal
time gets a warning: the renewal window stays 3s, and a slow child may outlive the lock.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any

from meshctl import process
from meshctl.child import Child, ChildError, describe_exit
from meshctl.client import Client, ConsulError
from meshctl.client.lock import (
    DEFAULT_SESSION_TTL,
    DEFAULT_WAIT_TIME,
    MIN_BELIEF,
    SEMAPHORE_KEY,
    Lock,
    LockConflict,
    LockError,
    LockInUse,
    LockNotHeld,
    Semaphore,
    go_path_join,
    hold_window,
)
from meshctl.durations import format_duration, parse_duration
from meshctl.selfhealth import Problem

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RELAYED_SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)
MONITOR_RETRY_TIME = 1.0  # consul lock's defaultMonitorRetryTime
REACQUIRE_PAUSE = 5.0
SIGNAL_POLL = 0.05  # how often the main thread wakes up to run pending signal handlers
STOP_MARGIN = 2.0  # the child is gone this long before the lock-delay could end


@dataclass
class LockConfig:
    """What `meshctl lock` was asked to do (its flags; the last two are for tests and benchmarks)."""

    prefix: str
    command: list[str]
    limit: int = 1
    name: str | None = None
    pass_stdin: bool = False
    shell: bool = True
    timeout: float = 0.0  # > 0: give up acquiring after that long
    monitor_retry: int = 3
    child_exit_code: bool = False
    verbose: bool = False
    kill_timeout: float = 5.0
    reacquire: bool = False
    session_ttl: str = DEFAULT_SESSION_TTL
    lock_delay: str | float | None = None
    env: dict[str, str] = field(default_factory=dict)

    def validate(self) -> str | None:
        """The usage error consul lock would print, or None."""
        if self.limit <= 0:
            return "Lock holder limit must be positive"
        if not self.prefix or not self.command:
            return "Key prefix and child command must be specified"
        if self.timeout < 0:
            return "Timeout must be positive"
        if self.monitor_retry < 0:
            return "Number for 'monitor-retry' must be >= 0"
        return None

    def lock_delay_warning(self) -> str | None:
        """A warning when the child may take longer to stop than the lock-delay protects, or None."""
        delay = None if self.lock_delay is None else parse_duration(self.lock_delay)
        window = hold_window(parse_duration(self.session_ttl), delay)
        if self.stop_time <= window - MIN_BELIEF:
            return None
        longest = format_duration(max(window - MIN_BELIEF - STOP_MARGIN, 0.0))
        return (f"Warning: kill timeout {format_duration(self.kill_timeout)} is too long for the session's "
                f"{format_duration(window)} lock-delay (at most {longest}): a child slow to stop may "
                "outlive the lock")

    @property
    def stop_time(self) -> float:
        """How long the child may take to stop: the lock counts as lost that long early."""
        return self.kill_timeout + STOP_MARGIN

    @property
    def session_name(self) -> str:
        """consul lock's default session name, unless `name` is given."""
        return self.name or f"Consul lock for '{' '.join(self.command)}' at '{self.key_prefix}'"

    @property
    def key_prefix(self) -> str:
        """The prefix with its leading `/` removed."""
        return self.prefix[1:] if self.prefix.startswith("/") else self.prefix


class LockRunner:
    """Runs one `meshctl lock` invocation; `run()` returns the exit status."""

    def __init__(self, client: Client, cfg: LockConfig, *, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self.client = client
        self.cfg = cfg
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.contender: Lock | Semaphore | None = None
        self.child: Child | None = None
        self._events: queue.SimpleQueue[tuple[str, int, Any]] = queue.SimpleQueue()
        self._round = 0
        self._shutdown = False
        self.state = "starting"  # what the self-check says while all is well (-register-service)
        self.problem = ""  # what is wrong right now ("" when nothing)
        self.on_child_started: Callable[[Child], Any] | None = None  # a hook for tests and benchmarks

    # -- output --------------------------------------------------------------------------

    def info(self, text: str) -> None:
        """A progress line, shown with -verbose (stdout, as consul's UI.Info)."""
        if self.cfg.verbose:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def error(self, text: str) -> None:
        """An error line on stderr."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    # -- signals ---------------------------------------------------------------------------

    def handle_signal(self, sig: int) -> None:
        """Deliver a signal to the runner (safe from a signal handler or another thread)."""
        self._events.put(("signal", -1, sig))

    def signal_handlers(self) -> AbstractContextManager[frozenset[int]]:
        """Route this process's shutdown and relayed signals to the runner (main thread only)."""
        return process.signal_handlers(dict.fromkeys(SHUTDOWN_SIGNALS + RELAYED_SIGNALS, self.handle_signal))

    # -- the run -----------------------------------------------------------------------------

    def setup(self) -> Lock | Semaphore:
        """Build the Lock (`<prefix>/.lock`) or, for limit > 1, the Semaphore (at `<prefix>`)."""
        cfg = self.cfg
        options: dict[str, Any] = dict(
            session_name=cfg.session_name, session_ttl=cfg.session_ttl, lock_delay=cfg.lock_delay,
            monitor_retries=cfg.monitor_retry, monitor_retry_time=MONITOR_RETRY_TIME,
            try_once=cfg.timeout > 0, wait_time=cfg.timeout if cfg.timeout > 0 else DEFAULT_WAIT_TIME,
            stop_time=cfg.stop_time,
        )
        if cfg.limit == 1:
            # The `.lock` suffix makes a lock and a semaphore on one prefix conflict visibly.
            key = go_path_join(cfg.key_prefix, SEMAPHORE_KEY)
            self.info(f"Setting up lock at path: {key}")
            contender: Lock | Semaphore = Lock(self.client, key, **options)
        else:
            self.info(f"Setting up semaphore (limit {cfg.limit}) at prefix: {cfg.key_prefix}")
            contender = Semaphore(self.client, cfg.key_prefix, cfg.limit, **options)
        contender.on_lost(lambda reason: self._events.put(("lost", self._round, reason)))
        return contender

    def run(self) -> int:
        """Acquire, run the child, release; the exit status (consul lock's, 1 on a lost lock)."""
        problem = self.cfg.validate()
        if problem:
            self.error(problem)
            return 1
        warning = self.cfg.lock_delay_warning()
        if warning:
            self.error(warning)
        try:
            self.client.agent.node_name()
        except ConsulError as e:
            self.error(f"Error querying Consul agent: {e}")
            return 1
        try:
            self.contender = self.setup()
        except (ValueError, LockError) as e:
            self.error(f"Lock setup failed: {e}")
            return 1
        with self.signal_handlers():
            while True:
                acquired = self._acquire_phase()
                if acquired is not None:
                    return acquired
                outcome, child_code = self._hold_phase()
                released = self._release_phase()
                if outcome == "lost" and self.cfg.reacquire and not self._shutdown:
                    continue
                if not released:
                    return 1
                if outcome == "lost":
                    return 1
                if outcome == "child" and self.cfg.child_exit_code and child_code != 0:
                    return 2
                return 0

    def _next(self) -> tuple[str, Any]:
        """The next event of the current round (stale events of earlier rounds are dropped)."""
        while True:
            # Never block without a timeout: a signal delivered to another thread only sets a
            # flag, and its Python handler runs when the main thread next runs bytecode.
            try:
                kind, rnd, data = self._events.get(timeout=SIGNAL_POLL)
            except queue.Empty:
                continue
            if rnd in (-1, self._round):
                return kind, data

    def _acquire_phase(self) -> int | None:
        """None once the lock is held, else the exit status."""
        first = self._round == 0
        while True:
            outcome = self._acquire_once()
            if not isinstance(outcome, LockError):
                return outcome
            if first or not self.cfg.reacquire or isinstance(outcome, LockConflict):
                self.error(f"Lock acquisition failed: {outcome}")
                return 1
            # Re-acquiring after a loss: the agent may still be unreachable; keep trying.
            self.problem = f"lock acquisition failing: {outcome}"
            self.error(f"Lock acquisition failed: {outcome}; retrying in {REACQUIRE_PAUSE:g}s")
            if self._pause(REACQUIRE_PAUSE):
                return 1

    def _acquire_once(self) -> int | None | LockError:
        """One acquisition attempt: None when held, an exit status, or the LockError."""
        assert self.contender is not None
        contender = self.contender
        self._round += 1
        rnd = self._round
        stop = threading.Event()

        def worker() -> None:
            try:
                ok = contender.acquire(stop)
            except LockError as e:
                self._events.put(("acquire_error", rnd, e))
                return
            self._events.put(("acquired", rnd, ok))

        self.info("Attempting lock acquisition")
        self.state = f"waiting for the lock at {self.cfg.key_prefix}"
        threading.Thread(target=worker, name="lock-acquire", daemon=True).start()
        while True:
            kind, data = self._next()
            if kind == "signal":
                if data in SHUTDOWN_SIGNALS:
                    self._shutdown = True
                    stop.set()
                    contender.cancel()  # destroys the session: nothing acquired can outlive us
                    self.error("Shutdown triggered or timeout during lock acquisition")
                    return 1
                continue
            if kind == "acquired":
                if data:
                    self.info("Lock acquired")
                    self.problem = ""
                    return None
                self.error("Shutdown triggered or timeout during lock acquisition")
                return 1
            if kind == "acquire_error":
                return data

    def _pause(self, seconds: float) -> bool:
        """Wait, handling signals; True if a shutdown signal came."""
        timer = threading.Timer(seconds, lambda: self._events.put(("timer", self._round, None)))
        timer.daemon = True
        timer.start()
        try:
            while True:
                kind, data = self._next()
                if kind == "timer":
                    return False
                if kind == "signal" and data in SHUTDOWN_SIGNALS:
                    self._shutdown = True
                    return True
        finally:
            timer.cancel()

    def _hold_phase(self) -> tuple[str, int | None]:
        """Run the child while the lock is held: ("child", code) | ("shutdown", None) | ("lost", None)."""
        cfg = self.cfg
        rnd = self._round
        child = Child(cfg.command, shell=cfg.shell, env={**cfg.env, "CONSUL_LOCK_HELD": "true"},
                      stdin=cfg.pass_stdin, kill_timeout=cfg.kill_timeout,
                      parent_death_signal=signal.SIGTERM)
        self.child = child
        child.on_exit(lambda code: self._events.put(("child_exit", rnd, code)))
        self.info("Starting handler")
        try:
            child.start()
        except ChildError as e:
            self.error(f"Error starting handler: {e}")
            return "child", 1
        self.state = f"holding the lock at {cfg.key_prefix}; child pid {child.pid}"
        if self.on_child_started is not None:
            self.on_child_started(child)
        while True:
            kind, data = self._next()
            if kind == "signal":
                if data in SHUTDOWN_SIGNALS:
                    self._shutdown = True
                    self.info("Shutdown triggered, killing child")
                    self._stop_child(child, data)
                    return "shutdown", None
                child.signal(data)
            elif kind == "lost":
                self.problem = f"lock lost: {data}"
                self.error(f"Lock lost ({data}), killing child")
                self._stop_child(child, signal.SIGTERM)
                return "lost", None
            elif kind == "child_exit":
                if data != 0:
                    self.error(f"Error running handler: {describe_exit(data)}")
                # What the command left behind in its process group (a forked `sh -c` shell's
                # child) must not outlive the lock.
                if child.stop_stragglers():
                    self.info("Stopped processes the child left in its process group")
                self.info("Child terminated, releasing lock")
                return "child", data

    def _stop_child(self, child: Child, sig: int) -> None:
        self.info(f"Terminating child pid {child.pid}")
        code = child.stop(immediately=True, sig=sig)
        self.info(f"Child terminated (exit {code})")

    def _release_phase(self) -> bool:
        """Release and clean the key up; False (after an error line) if that failed."""
        assert self.contender is not None
        try:
            self.contender.release()
        except LockNotHeld:
            pass
        except LockError as e:
            self.error(f"Lock release failed: {e}")
            return False
        try:
            self.contender.destroy()
            self.info("Cleanup succeeded")
        except LockInUse:
            self.info("Cleanup aborted, lock in use")
        except LockError as e:
            self.error(f"Lock cleanup failed: {e}")
            return False
        return True


    def health_problems(self) -> list[Problem]:
        """-register-service: critical while the lock is lost or cannot be acquired, else the state."""
        if self.problem:
            return [Problem("critical", self.problem)]
        return [Problem("passing", f"meshctl lock: {self.state}")]


def run_lock(cfg: LockConfig, client: Client | None = None) -> int:
    """Run `meshctl lock` with a config; the exit status."""
    return LockRunner(client or Client(), cfg).run()
