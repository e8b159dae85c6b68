"""`meshctl watch -type T [options] [handler...]`: consul watch's flags, on meshctl.watch's plan."""

from __future__ import annotations

import signal
import sys
import threading
from argparse import RawDescriptionHelpFormatter
from typing import Any

from meshctl.client import ConsulError
from meshctl.commands.common import CommandError, err, make_client, new_parser, parse
from meshctl.flags import FlagParser, parse_bool
from meshctl.process import signal_handlers
from meshctl.watch import HandlerRunner, Plan, WatchError, go_json, parse_spec

SYNOPSIS = "Watch for changes in Consul"
DESCRIPTION = """\
  Watches for changes in a given data view from Consul. If a child process
  is specified, it will be invoked with the latest results on changes. Otherwise,
  the latest values are dumped to stdout and the watch terminates.

  Providing the watch type is required, and other parameters may be required
  or supported depending on the watch type.

  The child gets the data as JSON on stdin and CONSUL_INDEX in its environment;
  it runs once at start and again on each change. If it exits non-zero, the
  watch stops with exit status 1."""

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_parser() -> FlagParser:
    """consul watch's flag table."""
    p = new_parser("meshctl watch", DESCRIPTION)
    p.formatter_class = RawDescriptionHelpFormatter
    p.usage = "meshctl watch [options] [child...]"
    p.flag("type", default="", dest="watch_type",
           help="Specifies the watch type. One of key, keyprefix, services, nodes, service, checks, or event.")
    p.flag("key", default="", help="Specifies the key to watch. Only for 'key' type.")
    p.flag("prefix", default="", help="Specifies the key prefix to watch. Only for 'keyprefix' type.")
    p.flag("service", default="",
           help="Specifies the service to watch. Required for 'service' type, optional for 'checks' type.")
    p.flag("tag", action="append", default=[],
           help="Specifies the service tag to filter on (repeatable). Optional for 'service' and 'checks' type.")
    p.flag("passingonly", default="",
           help="Specifies if only hosts passing all checks are displayed. Optional for 'service' type, "
                "must be one of `[true|false]`. Defaults false.")
    p.bool_flag("shell", default=True,
                help="Use a shell to run the command (can set a custom shell via the SHELL environment variable).")
    p.flag("state", default="", help="Specifies the states to watch. Optional for 'checks' type.")
    p.flag("name", default="", help="Specifies an event name to watch. Only for 'event' type.")
    return p


def main(argv: list[str]) -> int:
    """Entry point of `meshctl watch`."""
    parser = build_parser()
    args, handler = parse(parser, argv)
    if not args.watch_type:
        err("Watch type must be specified")
        err("")
        err(parser.format_help())
        return 1
    params: dict[str, Any] = {"type": args.watch_type}
    for name in ("key", "prefix", "service", "state", "name"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    if args.tag:
        params["tag"] = args.tag
    if args.stale:
        params["stale"] = True
    if args.passingonly:
        try:
            params["passingonly"] = parse_bool(args.passingonly)
        except Exception as e:
            err(f"Failed to parse passingonly flag: {e}")
            return 1
    try:
        spec = parse_spec(params)
    except WatchError as e:
        err(str(e))
        return 1
    try:
        client = make_client(args)
        client.agent.node_name()
    except CommandError as e:
        err(str(e))
        return 1
    except ConsulError as e:
        err(f"Error querying Consul agent: {e}")
        return 1
    with client:
        return _run(Plan(client, spec), handler, args.shell)


def _run(plan: Plan, handler: list[str], shell: bool) -> int:
    """Run the plan in a worker thread; the main thread waits for the end or a shutdown signal."""
    done = threading.Event()
    status = {"code": 0}
    runner = HandlerRunner(handler, shell=shell) if handler else None

    def print_once(_index: int, data: Any) -> None:
        plan.stop()
        sys.stdout.write(go_json(data, indent=4) + "\n")
        sys.stdout.flush()

    def run_handler(index: int, data: Any) -> None:
        assert runner is not None
        try:
            code = runner.run(index, data)
        except OSError as e:
            err(f"Error starting handler: {e.strerror or e}")
            code = -1
        else:
            if code != 0:
                err(f"Error executing handler: exit status {code}")
        if code != 0:
            status["code"] = 1
            plan.stop()

    def worker() -> None:
        try:
            plan.run(run_handler if runner else print_once)
        except Exception as e:  # a bug or an error past the retries: report, exit 1
            err(f"Error querying Consul agent: {e}")
            status["code"] = 1
        finally:
            done.set()

    def on_signal(sig: int) -> None:
        if runner is not None:
            runner.signal(sig)
        plan.stop()
        status["code"] = 0
        done.set()

    with signal_handlers(dict.fromkeys(SHUTDOWN_SIGNALS, on_signal)):
        threading.Thread(target=worker, name="watch-plan", daemon=True).start()
        while not done.wait(0.5):
            pass
    sys.stdout.flush()
    return status["code"]
