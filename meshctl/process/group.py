"""Process groups: start a command in its own group, signal the group, poll it, stop it, reap.

A command started with `spawn` leads its own process group (pgid == pid), so that `sh -c 'a | b'`
or a shell that forks its command instead of exec'ing it (dash does, bash execs a lone command)
is signalled and stopped as a unit. `terminate` is consul-template's "kill signal, wait up to the
kill timeout, then SIGKILL", applied to the whole group.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

log = logging.getLogger(__name__)

DEFAULT_KILL_TIMEOUT = 5.0
POLL_INTERVAL = 0.02  # how often `wait_group` looks at the group again
SIGKILL_GRACE = 1.0  # how long `kill_group` waits for SIGKILLed processes to go
_PR_SET_PDEATHSIG = 1

Stream = IO[Any] | int | None


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin: Stream = subprocess.DEVNULL,
    stdout: Stream = None,
    stderr: Stream = None,
    new_group: bool = True,
    parent_death_signal: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` (in its own process group unless `new_group=False`); OSError if it cannot start.

    `env` None inherits this process's environment. `stdin` defaults to /dev/null (None passes
    ours through). `parent_death_signal` (Linux): the signal the command gets if the thread that
    started it dies (say this process is SIGKILLed) before stopping it.
    """
    return subprocess.Popen(
        list(argv), env=None if env is None else dict(env), cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr,
        process_group=0 if new_group else None, preexec_fn=_parent_death_preexec(parent_death_signal),
    )


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


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to every process of group `pgid`; False when there is none (left) to signal."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_alive(pgid: int) -> bool:
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


def wait_group(pgid: int, timeout: float | None = None, *, poll: float = POLL_INTERVAL) -> bool:
    """Wait until no live process is left in group `pgid`; False if some still are after `timeout`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while group_alive(pgid):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def kill_group(pgid: int, sig: int | None = signal.SIGTERM, timeout: float = DEFAULT_KILL_TIMEOUT) -> bool:
    """Stop what is left of group `pgid`: `sig`, up to `timeout` for it to exit, then SIGKILL.

    `sig=None` sends nothing first (the group had the kill signal already): it only waits, then
    SIGKILLs. True once the group is empty; False if a process survived SIGKILL.
    """
    for each, wait in ((sig, timeout), (signal.SIGKILL, SIGKILL_GRACE)):
        if each is not None and not signal_group(pgid, each):
            return True
        if wait_group(pgid, wait):
            return True
    log.warning("processes of group %d survived SIGKILL", pgid)
    return False


def reap(proc: subprocess.Popen[Any], timeout: float | None = None) -> int | None:
    """Wait for `proc` to exit and reap it; its return code, or None if it still runs after `timeout`."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def terminate(
    proc: subprocess.Popen[Any],
    sig: int = signal.SIGTERM,
    timeout: float = DEFAULT_KILL_TIMEOUT,
    *,
    group: bool = True,
    wait: Callable[[float | None], int | None] | None = None,
) -> int | None:
    """Stop `proc` and reap it: `sig`, up to `timeout` for it to exit, then SIGKILL; its return code.

    With `group` (a process started by `spawn`), the signals go to its whole process group, and
    what the leader leaves behind in the group (a pipeline's other members, the command of a
    shell that forked) gets the rest of the timeout, then SIGKILL. `wait(timeout)` reaps: the
    return code, or None while the process still runs (default `reap`; a supervisor whose own
    thread reaps passes its wait instead; None is returned only if that wait has no code).
    """
    waiter = wait if wait is not None else (lambda t: reap(proc, t))
    started = time.monotonic()
    name = _name(sig)
    if _send(proc, sig, group):
        log.debug("sent %s to pid %d; waiting up to %.1fs", name, proc.pid, timeout)
    code = waiter(timeout)
    if code is None:
        log.warning("child pid %d did not exit %.1fs after %s; sending SIGKILL", proc.pid, timeout, name)
        _send(proc, signal.SIGKILL, group)
        code = waiter(None)
    if group and group_alive(proc.pid):
        rest = max(0.0, timeout - (time.monotonic() - started))
        log.info("pid %d exited, leaving processes in its group; SIGKILL in %.1fs", proc.pid, rest)
        kill_group(proc.pid, None, rest)
    return code


def _send(proc: subprocess.Popen[Any], sig: int, group: bool) -> bool:
    if group:
        return signal_group(proc.pid, sig)
    if proc.returncode is not None:
        return False
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        return False
    return True


def _name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
