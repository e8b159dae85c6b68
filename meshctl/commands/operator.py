"""`meshctl operator raft list-peers|remove-peer|transfer-leader`, as `consul operator raft`."""

from __future__ import annotations

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


def main(argv: list[str]) -> int:
    """operator raft <subcommand>"""
    return dispatch("meshctl operator", argv, {"raft": (lambda rest: dispatch("meshctl operator raft", rest, RAFT),
                                                        "Provides cluster-level tools for the Raft subsystem")})
