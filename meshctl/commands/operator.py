"""`meshctl operator raft list-peers|remove-peer|transfer-leader` and `meshctl operator autopilot
get-config|set-config|state`, as `consul operator raft` and `consul operator autopilot`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from meshctl.commands.common import (
    CommandError,
    columnize,
    dispatch,
    guarded,
    make_client,
    new_parser,
    no_args,
    out,
    parse,
)
from meshctl.durations import format_duration, parse_duration
from meshctl.flags import parse_bool


@guarded
def list_peers(argv: list[str]) -> int:
    """operator raft list-peers [-stale]"""
    args, rest = parse(new_parser("meshctl operator raft list-peers", "Display the current Raft peer configuration."),
                       argv)
    no_args(rest)
    config = make_client(args).operator.raft_configuration(stale=args.stale)
    rows = [("Node", "ID", "Address", "State", "Voter", "RaftProtocol")]
    for s in config.get("Servers") or []:
        rows.append((s.get("Node", ""), s.get("ID", ""), s.get("Address", ""),
                     "leader" if s.get("Leader") else "follower", str(bool(s.get("Voter"))).lower(),
                     s.get("ProtocolVersion", "3")))
    for line in columnize(rows):
        out(line)
    return 0


@guarded
def remove_peer(argv: list[str]) -> int:
    """operator raft remove-peer -address=IP:port | -id=ID"""
    p = new_parser("meshctl operator raft remove-peer", "Remove a server from the Raft configuration.")
    p.flag("address", default="", help="The address of the server to remove (IP:port)")
    p.flag("id", default="", help="The ID of the server to remove")
    args, rest = parse(p, argv)
    no_args(rest)
    if bool(args.address) == bool(args.id):
        raise CommandError("Error parsing arguments: exactly one of -address or -id is required")
    make_client(args).operator.raft_remove_peer(id=args.id or None, address=args.address or None)
    what = f"address {args.address!r}" if args.address else f"ID {args.id!r}"
    out(f"Removed peer with {what}")
    return 0


@guarded
def transfer_leader(argv: list[str]) -> int:
    """operator raft transfer-leader [-id=ID]"""
    p = new_parser("meshctl operator raft transfer-leader", "Transfer Raft leadership to another server.")
    p.flag("id", default="", help="The ID of the server to hand leadership to (default: any)")
    args, rest = parse(p, argv)
    no_args(rest)
    if not make_client(args).operator.raft_transfer_leader(id=args.id or None):
        raise CommandError("Error transferring leadership: the server refused")
    out("Success")
    return 0


RAFT = {
    "list-peers": (list_peers, "Display the current Raft peer configuration"),
    "remove-peer": (remove_peer, "Remove a Consul server from the Raft configuration"),
    "transfer-leader": (transfer_leader, "Transfer Raft leadership to another server"),
}


# ---------------------------------------------------------------------- autopilot

CONFIG_FIELDS = ("CleanupDeadServers", "LastContactThreshold", "MaxTrailingLogs", "MinQuorum",
                 "ServerStabilizationTime", "RedundancyZoneTag", "DisableUpgradeMigration", "UpgradeVersionTag")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and value == "":
        return '""'
    return str(value)


@guarded
def get_config(argv: list[str]) -> int:
    """operator autopilot get-config"""
    args, rest = parse(new_parser("meshctl operator autopilot get-config",
                                  "Display the current Autopilot configuration."), argv)
    no_args(rest)
    config = make_client(args).operator.autopilot_get_configuration(stale=args.stale)
    for name in CONFIG_FIELDS:
        out(f"{name} = {_show(config.get(name, ''))}")
    return 0


def _duration_flag(value: str) -> str:
    try:
        return format_duration(parse_duration(value))
    except ValueError:
        raise CommandError(f"Error parsing duration: {value!r}") from None


@guarded
def set_config(argv: list[str]) -> int:
    """operator autopilot set-config [-cleanup-dead-servers=BOOL] [-max-trailing-logs=N] ..."""
    p = new_parser("meshctl operator autopilot set-config", "Modify the current Autopilot configuration.")
    p.flag("cleanup-dead-servers", default=None, help="Remove dead servers automatically (true|false)")
    p.flag("max-trailing-logs", type=int, default=None, help="Log entries a server may trail the leader by")
    p.flag("min-quorum", type=int, default=None, help="Servers below which dead servers are not removed")
    p.flag("last-contact-threshold", default=None, help="Time without leader contact before a server is unhealthy")
    p.flag("server-stabilization-time", default=None, help="Time a server must be healthy (or failed) for")
    p.flag("redundancy-zone-tag", default=None, help="(Enterprise) node meta key of redundancy zones")
    p.flag("disable-upgrade-migration", default=None, help="(Enterprise) disable upgrade migrations")
    p.flag("upgrade-version-tag", default=None, help="(Enterprise) node meta key of the upgrade version")
    args, rest = parse(p, argv)
    no_args(rest)
    client = make_client(args)
    config = client.operator.autopilot_get_configuration()
    for flag, key in (("cleanup_dead_servers", "CleanupDeadServers"),
                      ("disable_upgrade_migration", "DisableUpgradeMigration")):
        value = getattr(args, flag)
        if value is not None:
            try:
                config[key] = parse_bool(value)
            except argparse.ArgumentTypeError as exc:
                raise CommandError(f"Error parsing {flag.replace('_', '-')}: {exc}") from None
    for flag, key in (("max_trailing_logs", "MaxTrailingLogs"), ("min_quorum", "MinQuorum")):
        if getattr(args, flag) is not None:
            config[key] = getattr(args, flag)
    for flag, key in (("last_contact_threshold", "LastContactThreshold"),
                      ("server_stabilization_time", "ServerStabilizationTime")):
        if getattr(args, flag) is not None:
            config[key] = _duration_flag(getattr(args, flag))
    for flag, key in (("redundancy_zone_tag", "RedundancyZoneTag"), ("upgrade_version_tag", "UpgradeVersionTag")):
        if getattr(args, flag) is not None:
            config[key] = getattr(args, flag)
    cas = int(config.get("ModifyIndex") or 0)
    if not client.operator.autopilot_set_configuration(config, cas=cas):
        out("Configuration could not be atomically updated, please try again")
        return 1
    out("Configuration updated!")
    return 0


@guarded
def state(argv: list[str]) -> int:
    """operator autopilot state [-format=json]"""
    p = new_parser("meshctl operator autopilot state", "Display the current Autopilot state.")
    p.flag("format", default="pretty", choices=["pretty", "json"], help="Output format")
    args, rest = parse(p, argv)
    no_args(rest)
    body = make_client(args).operator.autopilot_state(stale=args.stale)
    if args.format == "json":
        out(json.dumps(body, indent=2))
        return 0
    for line in columnize([("Healthy:", _show(body.get("Healthy"))),
                           ("Failure Tolerance:", body.get("FailureTolerance", 0)),
                           ("Optimistic Failure Tolerance:", body.get("OptimisticFailureTolerance", 0)),
                           ("Leader:", body.get("Leader", ""))], glue=" "):
        out(line)
    out("Voters:")
    for voter in body.get("Voters") or []:
        out(f"   {voter}")
    out()
    out("Servers:")
    for ident, server in sorted((body.get("Servers") or {}).items()):
        out(f"   {ident}")
        rows = [("Name:", server.get("Name", "")), ("Address:", server.get("Address", "")),
                ("Version:", server.get("Version", "")), ("Status:", server.get("Status", "")),
                ("Node Type:", server.get("NodeType", "")), ("Node Status:", server.get("NodeStatus", "")),
                ("Healthy:", _show(server.get("Healthy"))), ("Last Contact:", server.get("LastContact", "")),
                ("Last Term:", server.get("LastTerm", 0)), ("Last Index:", server.get("LastIndex", 0))]
        for line in columnize(rows, glue=" "):
            out(f"      {line}")
    return 0


AUTOPILOT = {
    "get-config": (get_config, "Display the current Autopilot configuration"),
    "set-config": (set_config, "Modify the current Autopilot configuration"),
    "state": (state, "Display the current Autopilot State"),
}


def main(argv: list[str]) -> int:
    """operator raft|autopilot <subcommand>"""
    return dispatch("meshctl operator", argv, {
        "raft": (lambda rest: dispatch("meshctl operator raft", rest, RAFT),
                 "Provides cluster-level tools for the Raft subsystem"),
        "autopilot": (lambda rest: dispatch("meshctl operator autopilot", rest, AUTOPILOT),
                      "Provides tools for modifying Autopilot configuration"),
    })
