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

The process-group and signal primitives underneath (`spawn`, `terminate`, `kill_group`,
`group_alive`, `signal_handlers`, `forward_signals`) are `meshctl.process`'s; this module
re-exports the names it always had.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from meshctl.process import (
    DEFAULT_KILL_TIMEOUT,
    FORWARDED_SIGNALS,
    describe_exit,
    exit_status,
    forward_signals,
    group_alive,
    kill_group,
    parse_signal,
    shell_command,
    signal_group,
    spawn,
    terminate,
)

__all__ = [
    "DEFAULT_KILL_TIMEOUT",
    "FORWARDED_SIGNALS",
    "Child",
    "ChildError",
    "describe_exit",
    "exit_status",
    "forward_signals",
    "parse_signal",
    "process_group_alive",
    "shell_command",
]

log = logging.getLogger(__name__)

process_group_alive = group_alive  # the name this module has always exported


class ChildError(Exception):
    """The command could not be started (not found, not executable, bad working directory)."""


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
                proc = spawn(
                    self.argv, env=self._environment(), cwd=self.cwd,
                    stdin=None if self.pass_stdin else subprocess.DEVNULL,
                    stdout=self.stdout, stderr=self.stderr, new_group=self.setpgid,
                    parent_death_signal=self.parent_death_signal,
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
            if self.setpgid:
                return signal_group(proc.pid, sig)
            try:
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

        With `setpgid` the signals go to the whole process group, and what the command leaves
        behind in it gets the rest of the kill timeout, then SIGKILL. `sig` replaces the kill
        signal for this call (e.g. to relay the SIGINT we received). Returns the exit code (None
        if it was not running). Safe to call from any thread and more than once; an
        `immediately` call cuts another caller's splay short.
        """
        if immediately:
            self._cancel.set()
        if not self.running:
            return self._returncode
        if not immediately:
            self._splay()
        with self._lock:
            proc = self._proc
            if proc is None or self._exited.is_set():
                return self._returncode
        timeout = self.kill_timeout if kill_timeout is None else kill_timeout
        sig = self.kill_signal if sig is None else sig
        return terminate(proc, sig, timeout, group=self.setpgid, wait=self.wait)

    def stop_stragglers(self, kill_timeout: float | None = None, sig: int | None = None) -> bool:
        """Once the command has exited, stop what is left of its process group; True if anything was.

        `sh -c 'server'` may fork instead of exec (dash does; bash execs a lone command): when
        the shell dies (say of a relayed SIGHUP) the server lives on in the group. Kill signal,
        then SIGKILL after the kill timeout. Needs `setpgid`; a no-op while the command itself
        still runs.
        """
        proc = self._proc
        if not self.setpgid or proc is None or self.running or not group_alive(proc.pid):
            return False
        timeout = self.kill_timeout if kill_timeout is None else kill_timeout
        sig = self.kill_signal if sig is None else sig
        log.info("pid %d exited, leaving processes in its group; sending %s", proc.pid, signal.Signals(sig).name)
        kill_group(proc.pid, sig, timeout)
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
