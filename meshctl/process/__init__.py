"""Processes and signals, in one place for every tool.

    proc = spawn(["sh", "-c", "a | b"])              # its own process group (pgid == proc.pid)
    code = terminate(proc, signal.SIGTERM, 5.0)       # group: SIGTERM, SIGKILL after 5s; reaped
    group_alive(proc.pid)                             # a live (not zombie) process left in the group?
    kill_group(pgid, signal.SIGTERM, 5.0)             # what is left of a group: signal, then SIGKILL
    code = run_command(argv, timeout=30)              # run to the end; the group SIGKILLed on timeout

    with signal_handlers({signal.SIGTERM: stop, signal.SIGINT: stop}):   # handler(signum)
        ...
    with forward_signals(runner, (signal.SIGHUP, signal.SIGTERM)):       # runner.signal(signum)
        ...

`meshctl.child.Child` (a supervised, restartable command) is built on these. The modules:
`group` (process groups: start, signal, poll, stop, reap), `signals` (installing and restoring
signal handlers; signal names), `command` (a command run to its end; exit codes in Go's words),
`init` (meshctl as a container's PID 1: reaps orphans, forwards signals; wired in meshctl/cli.py).
"""

from meshctl.process.command import describe_exit, exit_status, run_command, shell_command
from meshctl.process.group import (
    DEFAULT_KILL_TIMEOUT,
    group_alive,
    kill_group,
    reap,
    signal_group,
    spawn,
    terminate,
    wait_group,
)
from meshctl.process.signals import (
    FORWARDED_SIGNALS,
    Signallable,
    forward_signals,
    parse_signal,
    signal_handlers,
)

__all__ = [
    "DEFAULT_KILL_TIMEOUT",
    "FORWARDED_SIGNALS",
    "Signallable",
    "describe_exit",
    "exit_status",
    "forward_signals",
    "group_alive",
    "kill_group",
    "parse_signal",
    "reap",
    "run_command",
    "shell_command",
    "signal_group",
    "signal_handlers",
    "spawn",
    "terminate",
    "wait_group",
]
