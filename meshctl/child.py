"""Child-process supervision, shared by `meshctl lock`, the template runner's `-exec` and envconsul.

    child = Child(["my-server", "-port", "8080"], env={"CONSUL_LOCK_HELD": "true"}, kill_timeout=5)
    child.start()
    child.on_exit(lambda code: print("exited", code))   # called from the waiter thread
    child.reload()                   # reload signal (default SIGHUP), after a random splay
    child.signal(signal.SIGUSR1)     # any signal, now
    code = child.stop()              # kill signal (default SIGTERM), SIGKILL after kill_timeout
    code = child.wait(timeout=10)    # exit code, or None if still running after timeout

The model is consul-template's `child` package: one object per command, started and
restarted as often as needed; `stop()` is "kill signal, wait up to kill_timeout, then
SIGKILL"; `splay` is a random delay before reload/stop signals, so that a fleet does not
restart all at once. The command runs in its own process group by default (`setpgid`) and
signals go to the whole group, so `sh -c 'a | b'` is signalled as a unit.

Threads only: one waiter thread per running process reaps it and fires the exit
callbacks. From asyncio, use `await child.wait_async()` (or `exit_future()`); signal
forwarding from an event loop is `loop.add_signal_handler(sig, child.signal, sig)`, from
threaded code in the main thread `forward_signals(child)`.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

log = logging.getLogger(__name__)

DEFAULT_KILL_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1
# What `forward_signals` relays by default: the signals a user or supervisor sends a service.
FORWARDED_SIGNALS: tuple[int, ...] = (
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
    signal.SIGWINCH,
)


class ChildError(Exception):
    """The command could not be started (not found, not executable, bad working directory)."""


def parse_signal(value: str | int | signal.Signals) -> signal.Signals:
    """`"SIGTERM"`, `"TERM"`, `"term"` or `15` as a signal."""
    if isinstance(value, signal.Signals):
        return value
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return signal.Signals(int(value))
    name = value.strip().upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return signal.Signals[name]
    except KeyError:
        raise ValueError(f"unknown signal {value!r}") from None


def shell_command(command: str | Sequence[str], shell: str | None = None) -> list[str]:
    """The argv that runs `command` through `$SHELL -c` (default /bin/sh), words joined by spaces."""
    text = command if isinstance(command, str) else " ".join(command)
    return [shell or os.environ.get("SHELL") or "/bin/sh", "-c", text]


def exit_status(returncode: int) -> int:
    """A Popen return code as a shell reports it: a death by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(returncode: int) -> str:
    """A Popen return code in Go's words: "exit status 3", or "signal: hangup" for a death by signal."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
    except ValueError:
        name = f"signal {-returncode}"
    return f"signal: {name[0].lower()}{name[1:]}"


def process_group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in process group `pgid`.

    A zombie still answers `kill(0)`, and an orphan's zombie may never be reaped when PID 1 is
    not an init (containers); on Linux /proc tells them apart.
    """
    proc = "/proc"
    if not os.path.isdir(f"{proc}/self"):
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


class Child:
    """One supervised command; start it, signal it, stop it, restart it, learn how it exited.

    `command`: an argv list, or a string (split with shlex, unless `shell`).
    `shell`: run through `$SHELL -c` (a list is joined with spaces, as `consul lock` does).
    `env`: variables laid over `os.environ` (`None` values remove a variable); `inherit_env=False`
    starts from an empty environment instead. `stdin`: pass this process's stdin through (else
    /dev/null). `stdout`/`stderr`: None inherits ours, or a file object / `subprocess.PIPE`.
    `kill_signal`/`kill_timeout`: how `stop()` asks the child to exit before SIGKILL.
    `reload_signal`: what `reload()` sends (None: `reload()` restarts the child instead).
    `splay`: upper bound (seconds) of the random delay before `reload()` and `stop()`.
    `parent_death_signal` (Linux): the signal the child gets if this process dies without
    stopping it (e.g. SIGKILLed); it is tied to the thread that calls `start()`, so start the
    child from a thread that lives as long as the process (the main thread).
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        shell: bool = False,
        shell_path: str | None = None,
        env: Mapping[str, str | None] | None = None,
        inherit_env: bool = True,
        cwd: str | None = None,
        stdin: bool = False,
        stdout: IO[Any] | int | None = None,
        stderr: IO[Any] | int | None = None,
        kill_signal: int = signal.SIGTERM,
        kill_timeout: float = DEFAULT_KILL_TIMEOUT,
        reload_signal: int | None = signal.SIGHUP,
        splay: float = 0.0,
        setpgid: bool = True,
        parent_death_signal: int | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if shell:
            self.argv = shell_command(command, shell_path)
        elif isinstance(command, str):
            self.argv = shlex.split(command)
        else:
            self.argv = list(command)
        if not self.argv:
            raise ValueError("empty command")
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = cwd
        self.pass_stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.kill_signal = kill_signal
        self.kill_timeout = kill_timeout
        self.reload_signal = reload_signal
        self.splay = splay
        self.setpgid = setpgid
        self.parent_death_signal = parent_death_signal
        self._rand = rand
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._exited = threading.Event()
        self._exited.set()  # nothing running yet
        self._returncode: int | None = None
        self._callbacks: list[Callable[[int], Any]] = []
        self._cancel = threading.Event()  # interrupts a splay in progress
        self.started_at: float | None = None
        self.restarts = 0

    def __repr__(self) -> str:
        return f"Child({self.argv!r}, pid={self.pid})"

    # -- state ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running process's pid (None before start / after exit)."""
        proc = self._proc
        return proc.pid if proc is not None and not self._exited.is_set() else None

    @property
    def running(self) -> bool:
        """Whether a process was started and has not been reaped yet."""
        return self._proc is not None and not self._exited.is_set()

    @property
    def returncode(self) -> int | None:
        """The last exit code, as Popen gives it (negative N: killed by signal N); None while running."""
        return self._returncode

    @property
    def stdout_pipe(self) -> IO[bytes] | None:
        """The child's stdout when started with `stdout=subprocess.PIPE`."""
        return self._proc.stdout if self._proc is not None else None

    def on_exit(self, callback: Callable[[int], Any]) -> None:
        """Call `callback(returncode)` (from the waiter thread) each time the process exits."""
        with self._lock:
            self._callbacks.append(callback)

    # -- lifecycle -----------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ) if self.inherit_env else {}
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def start(self) -> None:
        """Start the command; ChildError if it cannot be started, RuntimeError if it is already running."""
        with self._lock:
            if self.running:
                raise RuntimeError(f"{self!r} is already running")
            try:
                proc = subprocess.Popen(
                    self.argv, env=self._environment(), cwd=self.cwd,
                    stdin=None if self.pass_stdin else subprocess.DEVNULL,
                    stdout=self.stdout, stderr=self.stderr,
                    process_group=0 if self.setpgid else None,
                    preexec_fn=_parent_death_preexec(self.parent_death_signal),
                )
            except OSError as e:
                raise ChildError(f"Error starting child {self.argv[0]!r}: {e.strerror or e}") from e
            self._proc = proc
            self._returncode = None
            self._exited.clear()
            self._cancel.clear()
            self.started_at = time.monotonic()
            log.debug("started %s as pid %d", self.argv, proc.pid)
            threading.Thread(target=self._reap, args=(proc,), name=f"child-{proc.pid}", daemon=True).start()

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        with self._lock:
            if self._proc is proc:
                self._returncode = code
            callbacks = list(self._callbacks)
        log.debug("pid %d exited with %d", proc.pid, code)
        self._exited.set()
        for cb in callbacks:
            try:
                cb(code)
            except Exception:  # a callback's bug must not kill the waiter
                log.exception("exit callback %r failed", cb)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to exit; its return code, or None if still running after `timeout`."""
        if not self._exited.wait(timeout):
            return None
        return self._returncode

    async def wait_async(self) -> int:
        """`await` the exit from asyncio code; the return code."""
        return await self.exit_future()

    def exit_future(self, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[int]:
        """An asyncio future resolved with the return code when the running process exits."""
        loop = loop or asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()

        def resolve() -> None:
            if not fut.done():
                fut.set_result(self._returncode if self._returncode is not None else -1)

        with self._lock:
            if self._exited.is_set():
                resolve()
            else:
                self.on_exit_once(lambda _code: loop.call_soon_threadsafe(resolve))
        return fut

    def on_exit_once(self, callback: Callable[[int], Any]) -> None:
        """Like `on_exit`, but only for the next exit."""
        holder: list[Callable[[int], Any]] = []

        def once(code: int) -> None:
            with self._lock:
                if holder and holder[0] in self._callbacks:
                    self._callbacks.remove(holder[0])
            callback(code)

        holder.append(once)
        self.on_exit(once)

    def signal(self, sig: int) -> bool:
        """Send `sig` now (to the process group with `setpgid`); False when nothing is running."""
        with self._lock:
            proc = self._proc
            if proc is None or self._exited.is_set() or proc.returncode is not None:
                return False
            try:
                if self.setpgid:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
            except ProcessLookupError:
                return False
            return True

    def _splay(self) -> bool:
        """Sleep a random time up to `splay`; False if `stop(immediately=True)` cut it short."""
        if self.splay <= 0:
            return True
        delay = self._rand() * self.splay
        log.debug("waiting %.2fs (splay) before signalling", delay)
        return not self._cancel.wait(delay)

    def reload(self) -> None:
        """After the splay, send the reload signal; without one, restart the child."""
        if not self.running:
            return
        if self.reload_signal is None:
            self.restart()
            return
        if self._splay():
            self.signal(self.reload_signal)

    def stop(self, immediately: bool = False, kill_timeout: float | None = None,
             sig: int | None = None) -> int | None:
        """Stop the child: (splay unless `immediately`) kill signal, then SIGKILL after the kill timeout.

        `sig` replaces the kill signal for this call (e.g. to relay the SIGINT we received).
        Returns the exit code (None if it was not running). Safe to call from any thread and
        more than once; an `immediately` call cuts another caller's splay short.
        """
        if immediately:
            self._cancel.set()
        if not self.running:
            return self._returncode
        if not immediately:
            self._splay()
        timeout = self.kill_timeout if kill_timeout is None else kill_timeout
        sig = self.kill_signal if sig is None else sig
        if self.signal(sig):
            log.debug("sent %s to pid %s; waiting up to %.1fs", signal.Signals(sig).name, self.pid, timeout)
        code = self.wait(timeout)
        if code is None:
            log.warning("child pid %s did not exit %.1fs after %s; sending SIGKILL", self.pid, timeout,
                        signal.Signals(sig).name)
            self.signal(signal.SIGKILL)
            code = self.wait()
        self.stop_stragglers(timeout, sig)
        return code

    def stop_stragglers(self, kill_timeout: float | None = None, sig: int | None = None) -> bool:
        """Once the command has exited, stop what is left of its process group; True if anything was.

        `sh -c 'server'` may fork instead of exec: when the shell dies (say of a relayed SIGHUP)
        the server lives on in the group. Kill signal, then SIGKILL after the kill timeout.
        Needs `setpgid`; a no-op while the command itself still runs.
        """
        proc = self._proc
        if not self.setpgid or proc is None or self.running or not process_group_alive(proc.pid):
            return False
        timeout = self.kill_timeout if kill_timeout is None else kill_timeout
        sig = self.kill_signal if sig is None else sig
        log.info("pid %d exited, leaving processes in its group; sending %s", proc.pid, signal.Signals(sig).name)
        for each, wait in ((sig, timeout), (signal.SIGKILL, 1.0)):
            try:
                os.killpg(proc.pid, each)
            except ProcessLookupError:
                return True
            deadline = time.monotonic() + wait
            while process_group_alive(proc.pid):
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
            else:
                return True
        log.warning("processes of group %d survived SIGKILL", proc.pid)
        return True

    def kill(self) -> int | None:
        """SIGKILL now, and wait for the exit."""
        self._cancel.set()
        self.signal(signal.SIGKILL)
        return self.wait()

    def restart(self) -> None:
        """Stop (as `stop()`) and start again."""
        self.stop()
        self.restarts += 1
        self.start()


def _parent_death_preexec(sig: int | None) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send `sig` to the child when its parent thread dies."""
    if not sig or not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


@contextmanager
def forward_signals(child: Child, signals: Sequence[int] = FORWARDED_SIGNALS,
                    also: Callable[[int], Any] | None = None) -> Iterator[None]:
    """While inside, relay `signals` received by this process to `child` (main thread only).

    `also(sig)` is called after each relay (e.g. to start a shutdown on SIGTERM). The previous
    handlers come back on exit.
    """

    def handler(sig: int, _frame: Any) -> None:
        child.signal(sig)
        if also is not None:
            also(sig)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
