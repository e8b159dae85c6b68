"""A command run to its end (with a timeout), and exit codes in the shell's and Go's words."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

from meshctl.process.group import Stream, reap, signal_group, spawn


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


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    stdin: Stream = subprocess.DEVNULL,
    stdout: Stream = None,
    stderr: Stream = None,
) -> int:
    """Run `argv` in its own process group until it exits; its Popen return code.

    OSError when it cannot start. After `timeout` seconds (None or 0: no limit) its whole group
    is SIGKILLed and reaped, and `subprocess.TimeoutExpired` raised.
    """
    proc = spawn(argv, env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr)
    code = reap(proc, timeout or None)
    if code is None:
        signal_group(proc.pid, signal.SIGKILL)
        reap(proc)
        raise subprocess.TimeoutExpired(list(argv), timeout or 0.0)
    return code
