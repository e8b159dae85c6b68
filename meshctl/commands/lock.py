"""`meshctl lock [options] prefix child...`: consul lock's flags, on meshctl.lock's runner."""

from __future__ import annotations

from argparse import Namespace, RawDescriptionHelpFormatter
from typing import TYPE_CHECKING, Any

from meshctl.commands.common import CommandError, err, make_client, new_parser, parse
from meshctl.durations import duration_arg
from meshctl.flags import FlagParser
from meshctl.lock import LockConfig, LockRunner
from meshctl.selfhealth import SelfHealth, SelfHealthConfig

if TYPE_CHECKING:  # prometheus_client is imported only when -metrics-addr is given
    from meshctl.metrics import ToolMetrics

SYNOPSIS = "Execute a command holding a lock"
DESCRIPTION = """\
Acquires a lock or semaphore at a given path, and invokes a child process when successful.
The child process can assume the lock is held while it executes. If the lock is lost or
communication is disrupted the child process is sent SIGTERM and given -kill-timeout to exit
gracefully, after which it is killed.

When -n=1, only a single lock holder or leader exists, providing mutual exclusion. Setting a
higher value switches to a semaphore allowing multiple holders to coordinate.

The prefix provided must have write privileges."""


def build_parser() -> FlagParser:
    """The flag table of `meshctl lock` (consul lock's flags, plus -kill-timeout and -reacquire)."""
    p = new_parser("meshctl lock", DESCRIPTION)
    p.formatter_class = RawDescriptionHelpFormatter
    p.bool_flag("child-exit-code", help="Exit 2 if the child process exited with an error")
    p.flag("n", type=int, default=1, dest="limit",
           help="Number of concurrent holders; above 1 the lock becomes a semaphore (default 1)")
    p.flag("monitor-retry", type=int, default=3,
           help="Server errors tolerated (1s apart) while monitoring the lock; 0 disables (default 3)")
    p.flag("name", default="", help="Session name (default: \"Consul lock for '<child>' at '<prefix>'\")")
    p.bool_flag("pass-stdin", help="Pass stdin to the child process")
    p.bool_flag("shell", default=True, help="Run the child via $SHELL -c (default true)")
    p.flag("timeout", "try", type=duration_arg, default=0.0,
           help="Give up acquiring the lock after this long, e.g. 1s or 3h (default 0: wait forever)")
    p.bool_flag("verbose", help="Enable verbose (debugging) output")
    p.flag("kill-timeout", type=duration_arg, default=5.0,
           help="Time the child has to exit after SIGTERM before SIGKILL (default 5s)")
    p.bool_flag("reacquire", help="After losing the lock, stop the child and wait for the lock again")
    p.flag("register-service", default=None, metavar="NAME",
           help="Register this lock with the agent as service NAME, with a TTL check of its health")
    p.flag("metrics-addr", default=None, help="Serve Prometheus metrics on host:port (':9102' is 127.0.0.1)")
    return p


class MeteredLockRunner(LockRunner):
    """The runner, with what `-metrics-addr` shows: lock held (0/1), acquisitions, locks lost."""

    def __init__(self, *args: Any, metrics: ToolMetrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = metrics.gauge("held", "1 while this process holds the lock (or a semaphore slot)")
        self.acquired = metrics.counter("acquired", "Times the lock was acquired")
        self.lost = metrics.counter("lost", "Times the lock was lost while held")

    def _hold_phase(self) -> tuple[str, int | None]:
        self.held.set(1)
        self.acquired.inc()
        try:
            outcome = super()._hold_phase()
        finally:
            self.held.set(0)
        if outcome[0] == "lost":
            self.lost.inc()
        return outcome


def config_from_args(argv: list[str]) -> tuple[LockConfig, Namespace]:
    """Parse `meshctl lock` arguments into a LockConfig (and the parsed flags namespace)."""
    args, rest = parse(build_parser(), argv)
    prefix = rest[0] if rest else ""
    cfg = LockConfig(
        prefix=prefix, command=list(rest[1:]), limit=args.limit, name=args.name or None,
        pass_stdin=args.pass_stdin, shell=args.shell, timeout=args.timeout, monitor_retry=args.monitor_retry,
        child_exit_code=args.child_exit_code, verbose=args.verbose, kill_timeout=args.kill_timeout,
        reacquire=args.reacquire,
    )
    return cfg, args


def main(argv: list[str]) -> int:
    """Entry point of `meshctl lock`."""
    cfg, args = config_from_args(argv)
    problem = cfg.validate()
    if problem:
        err(problem)
        return 1
    try:
        client = make_client(args)
    except CommandError as e:
        err(str(e))
        return 1
    if not args.metrics_addr:
        with client:
            return _run(LockRunner(client, cfg), args)
    from meshctl.metrics import ToolMetrics, serve_or_exit

    metrics = ToolMetrics("lock")
    runner = MeteredLockRunner(client, cfg, metrics=metrics)
    if not serve_or_exit(metrics, args.metrics_addr, err):
        return 1
    try:
        with client:
            return _run(runner, args)
    finally:
        metrics.close()


def _run(runner: LockRunner, args: Namespace) -> int:
    """Run, reporting the lock's health as a service when -register-service is given."""
    if not args.register_service:
        return runner.run()
    health = SelfHealth(runner.client, SelfHealthConfig(name=args.register_service), "lock",
                        runner.health_problems).start()
    code = 1
    try:
        code = runner.run()
    finally:
        health.stop(deregister=code == 0)
    return code
