"""Small agent commands: `info`, `reload`, `maint`, `leave`, `join`, `force-leave`, `keygen`
(as `consul info|reload|maint|leave|join|force-leave|keygen`)."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from meshctl.client import ConsulError, NotFound
from meshctl.commands.common import CommandError, err, guarded, make_client, new_parser, no_args, out, parse


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@guarded
def info(argv: list[str]) -> int:
    """info: the agent's Stats, one `section:` per subsystem with `\\tkey = value` lines."""
    p = new_parser("meshctl info", "Show debugging information about the agent.")
    args, rest = parse(p, argv)
    no_args(rest)
    try:
        self_info = make_client(args).agent.self()
    except ConsulError as e:
        raise CommandError(f"Error querying agent: {e}") from e
    stats = self_info.get("Stats") or {}
    for section in sorted(stats):
        out(f"{section}:")
        values = stats[section]
        if isinstance(values, dict):
            for key in sorted(values):
                out(f"\t{key} = {_text(values[key])}")
        else:
            out(f"\t{_text(values)}")
    return 0


def _agent_action(name: str, description: str, action: str, failure: str, done: str) -> Any:
    """A command that makes one agent call with no arguments and prints one line."""

    @guarded
    def command(argv: list[str]) -> int:
        p = new_parser(f"meshctl {name}", description)
        args, rest = parse(p, argv)
        no_args(rest)
        try:
            getattr(make_client(args).agent, action)()
        except ConsulError as e:
            raise CommandError(f"{failure}: {e}") from e
        out(done)
        return 0

    command.__name__ = name
    command.__doc__ = f"{name}: {description}"
    return command


reload = _agent_action("reload", "Trigger the agent to reload its configuration files.", "reload",
                       "Error reloading", "Configuration reload triggered")
leave = _agent_action("leave", "Gracefully leave the cluster and shut the agent down.", "leave",
                      "Error leaving", "Graceful leave complete")


@guarded
def maint(argv: list[str]) -> int:
    """maint [-enable|-disable] [-service ID] [-reason R]"""
    p = new_parser("meshctl maint", "Enable or disable maintenance mode for the node or a service; "
                   "without -enable/-disable, list what is in maintenance.")
    p.bool_flag("enable", help="Enable maintenance mode")
    p.bool_flag("disable", help="Disable maintenance mode")
    p.flag("reason", default="", help="Why the node or service is in maintenance (with -enable)")
    p.flag("service", default="", help="Service ID to control instead of the whole node")
    args, rest = parse(p, argv)
    no_args(rest)
    if args.enable and args.disable:
        raise CommandError("Only one of -enable or -disable may be provided")
    if not args.enable and args.reason:
        raise CommandError("Reason may only be provided with -enable")
    if not args.enable and not args.disable and args.service:
        raise CommandError("Service requires either -enable or -disable")
    client = make_client(args)
    if not args.enable and not args.disable:
        try:
            node = client.agent.node_name()
            checks = client.agent.checks()
        except ConsulError as e:
            raise CommandError(f"Error getting checks: {e}") from e
        for check_id, check in sorted(checks.items()):
            if check_id == "_node_maintenance":
                out("Node:")
                out(f"  Name:   {node}")
                out(f"  Reason: {check.get('Notes', '')}")
                out()
            elif check_id.startswith("_service_maintenance:"):
                out("Service:")
                out(f"  ID:     {check.get('ServiceID', '')}")
                out(f"  Reason: {check.get('Notes', '')}")
                out()
        return 0
    verb = "enable" if args.enable else "disable"
    if args.service:
        try:
            client.agent.service_maintenance(args.service, args.enable, args.reason or None)
        except NotFound as e:
            raise CommandError(f"No service registered with ID \"{args.service}\"") from e
        except ConsulError as e:
            raise CommandError(f"Error {verb[:-1]}ing service maintenance: {e}") from e
        out(f"Service maintenance is now {verb}d for \"{args.service}\"")
        return 0
    try:
        client.agent.maintenance(args.enable, args.reason or None)
    except ConsulError as e:
        raise CommandError(f"Error {verb[:-1]}ing node maintenance: {e}") from e
    out(f"Node maintenance is now {verb}d")
    return 0


@guarded
def join(argv: list[str]) -> int:
    """join [-wan] ADDRESS...: ask the agent to join the cluster of the servers at these serf addresses."""
    p = new_parser("meshctl join", "Tell the agent to join a cluster by contacting the given addresses.")
    p.bool_flag("wan", help="Join a server of another datacenter over the WAN")
    args, addresses = parse(p, argv)
    if not addresses:
        raise CommandError("At least one address to join must be specified.")
    agent = make_client(args).agent
    joined = 0
    for address in addresses:
        try:
            agent.join(address, wan=args.wan)
            joined += 1
        except ConsulError as e:
            err(f"Error joining address '{address}': {e}")
    if not joined:
        raise CommandError("Failed to join any nodes.")
    out(f"Successfully joined cluster by contacting {joined} nodes.")
    return 0


@guarded
def force_leave(argv: list[str]) -> int:
    """force-leave [-prune] NODE: a failed member leaves (a server: the Raft configuration too)."""
    p = new_parser("meshctl force-leave", "Force a failed member of the cluster into the left state.")
    p.bool_flag("prune", help="Remove the member from the member list at once")
    args, rest = parse(p, argv)
    if len(rest) != 1:
        raise CommandError("A single node name must be specified to force leave.")
    try:
        make_client(args).agent.force_leave(rest[0], prune=args.prune)
    except ConsulError as e:
        raise CommandError(f"Error force leaving: {e}") from e
    return 0


@guarded
def keygen(argv: list[str]) -> int:
    """keygen: a new gossip/-encrypt key, 32 random bytes in base64."""
    args, rest = parse(new_parser("meshctl keygen", "Generate a new encryption key.", http=False), argv)
    no_args(rest)
    out(base64.b64encode(secrets.token_bytes(32)).decode())
    return 0
