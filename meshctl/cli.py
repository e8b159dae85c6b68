"""`meshctl`: the one entry point; one subcommand per tool, flags in Go (-x) and --long style.

Adding a tool is one row in `COMMANDS`: a name, "module[:function]" exposing `main(argv) -> int`
(imported only when that command runs), and a synopsis for the help listing.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from meshctl import __version__
from meshctl.process import init

COMMANDS: dict[str, tuple[str, str]] = {
    "acl": ("meshctl.commands.acl", "Interact with the ACL system: bootstrap, tokens, policies, roles"),
    "agent": ("meshctl.commands.agent", "Runs a meshctl (Consul-compatible) agent"),
    "catalog": ("meshctl.commands.catalog", "Interact with the catalog"),
    "debug": ("meshctl.commands.debug", "Records a debugging archive for operators"),
    "envconsul": ("meshctl.commands.envconsul", "Run a command with Consul KV prefixes as its environment"),
    "event": ("meshctl.commands.event", "Fire and list user events"),
    "force-leave": ("meshctl.commands.agentctl:force_leave", "Forces a member of the cluster to enter the \"left\" state"),
    "git2consul": ("meshctl.commands.git2consul", "Mirror git repositories into the KV store (git2consul)"),
    "info": ("meshctl.commands.agentctl:info", "Provides debugging information for operators"),
    "join": ("meshctl.commands.agentctl:join", "Tell Consul agent to join cluster"),
    "keygen": ("meshctl.commands.agentctl:keygen", "Generates a new encryption key"),
    "kv": ("meshctl.commands.kv", "Interact with the key-value store"),
    "leave": ("meshctl.commands.agentctl:leave", "Gracefully leaves the cluster and shuts down"),
    "lock": ("meshctl.commands.lock", "Execute a command holding a lock"),
    "maint": ("meshctl.commands.agentctl:maint", "Controls node or service maintenance mode"),
    "members": ("meshctl.commands.members", "Lists the members of a cluster"),
    "monitor": ("meshctl.commands.monitor", "Stream logs from a Consul agent"),
    "operator": ("meshctl.commands.operator", "Provides cluster-level tools for Consul operators"),
    "reload": ("meshctl.commands.agentctl:reload", "Triggers the agent to reload configuration files"),
    "replicate": ("meshctl.commands.replicate", "Replicates KV prefixes from another datacenter (consul-replicate)"),
    "registrator": ("meshctl.commands.registrator",
                    "Registers Docker containers, Marathon apps or Mesos tasks as services"),
    "rtt": ("meshctl.commands.rtt", "Estimates network round trip time between nodes"),
    "services": ("meshctl.commands.services", "Interact with services"),
    "snapshot": ("meshctl.commands.snapshot", "Saves, restores and inspects snapshots of the server state"),
    "template": ("meshctl.commands.template", "Renders templates from Consul data (consul-template)"),
    "validate": ("meshctl.commands.validate", "Validate config files/directories"),
    "watch": ("meshctl.commands.watch", "Watch for changes in Consul"),
}


def usage() -> str:
    """The top-level help text."""
    width = max(len(name) for name in COMMANDS) + 4
    lines = ["Usage: meshctl [--version] [--help] [-reap] <command> [args]", "", "Available commands are:"]
    lines += [f"    {name.ljust(width)}{synopsis}" for name, (_, synopsis) in sorted(COMMANDS.items())]
    return "\n".join(lines) + "\n"


def load(name: str) -> Callable[[list[str]], int]:
    """The `main(argv)` of a registered command, imported on first use."""
    target, _ = COMMANDS[name]
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func or "main")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `meshctl <command> [args]`; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    reaping, args = init.wanted(args)  # PID 1 in a container, `-reap` or MESHCTL_REAP=1
    if reaping and (code := init.supervise()) is not None:
        return code
    if not args:
        sys.stderr.write(usage())
        return 1
    name, rest = args[0], args[1:]
    if name in ("-h", "-help", "--help", "help"):
        sys.stdout.write(usage())
        return 0
    if name in ("-v", "-version", "--version", "version"):
        sys.stdout.write(f"meshctl v{__version__}\n")
        return 0
    if name not in COMMANDS:
        sys.stderr.write(f"meshctl: unknown command {name!r}\n\n{usage()}")
        return 1
    try:
        return int(load(name)(rest) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
