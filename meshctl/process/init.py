"""meshctl as a container's PID 1: reap every zombie, forward signals, exit as the tool did.

In a container the entrypoint is PID 1, and PID 1 inherits every orphan: a template command
`sh -c 'reload &'` leaves one per render, and nobody else will ever reap it. So when meshctl
is PID 1 (or is asked to with `meshctl -reap <command> ...` or MESHCTL_REAP=1), `supervise()`
forks, tini's way:

- the child runs the tool as usual, in its own process group (the terminal's foreground group
  when there is one, so Ctrl-C reaches it once, directly);
- the parent stays behind as the init: it relays SIGTERM, SIGINT, SIGHUP (and the other
  signals a supervisor sends: QUIT, USR1, USR2, WINCH) to the tool, reaps every process that
  becomes its child, and when the tool exits, exits with its status (128+N after a death by
  signal N). `docker stop` then stops meshctl as SIGTERM does outside a container: the tool
  stops its children (within their kill timeout, 5s by default: under Docker's 10s) and exits.

The reaping happens in a process of its own because a reaper inside the tool (`waitpid(-1)`)
would steal the exit codes of the tool's own commands from their `Popen.wait`.

Outside PID 1, `-reap` also makes the init a child subreaper (Linux PR_SET_CHILD_SUBREAPER):
orphans come to it instead of the host's init. MESHCTL_REAP=0 turns all this off.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from meshctl.process.command import exit_status
from meshctl.process.signals import FORWARDED_SIGNALS

REAP_FLAGS = ("-reap", "--reap")
ENV = "MESHCTL_REAP"
_PR_SET_CHILD_SUBREAPER = 36
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def wanted(args: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether to run as an init (a leading -reap, MESHCTL_REAP, or being PID 1), and `args` without -reap."""
    if args and args[0] in REAP_FLAGS:
        return True, list(args[1:])
    env = os.environ.get(ENV, "").strip().lower()
    if env in _TRUE or env in _FALSE:
        return env in _TRUE, list(args)
    return os.getpid() == 1, list(args)


def supervise() -> int | None:
    """Fork: None in the child (go on and run the tool); in the parent, the tool's exit status once it exits.

    Call it before any thread starts (a fork copies only the calling thread).
    """
    if os.getpid() != 1:
        _become_subreaper()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # blocked across the fork, so a signal arriving before the parent's handlers are in place
    # waits for them instead of killing the init with the tool still running
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    pid = os.fork()
    if pid == 0:
        _lead_own_group()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        return None
    return _init_loop(pid)


def _init_loop(tool: int) -> int:
    def relay(sig: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(tool, sig)

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, relay)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    code = 0
    while True:
        try:
            pid, status = os.waitpid(-1, 0)  # any child: the tool, or an orphan handed to us
        except ChildProcessError:
            break
        if pid == tool:
            code = exit_status(os.waitstatus_to_exitcode(status))
            break
    reap_zombies()
    return code


def reap_zombies() -> int:
    """Reap the children that have exited, without waiting for the others; how many."""
    count = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            return count
        count += 1


def _lead_own_group() -> None:
    """The tool's own process group, in the terminal's foreground if stdin is one."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if not os.isatty(0):
        return
    # tcsetpgrp from a background group raises SIGTTOU: ignore it for the call
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(0, os.getpgrp())
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
