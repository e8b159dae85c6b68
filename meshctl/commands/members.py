"""`meshctl members`: the gossip members table, as `consul members` prints it."""

from __future__ import annotations

import re

from meshctl.client import ConsulError
from meshctl.commands.common import (
    CommandError,
    columnize,
    guarded,
    make_client,
    new_parser,
    no_args,
    out,
    parse,
)

STATUS = {0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}


@guarded
def main(argv: list[str]) -> int:
    """members [-wan] [-detailed] [-status REGEX]"""
    p = new_parser("meshctl members", "List the members of the cluster the agent sees.")
    p.bool_flag("wan", help="List WAN members instead of LAN members")
    p.bool_flag("detailed", help="Additional information per member: its tags (role, dc, port, build...)")
    p.flag("status", default=".*", help="Only members whose status matches this regular expression")
    args, rest = parse(p, argv)
    no_args(rest)
    try:
        status_re = re.compile(args.status)
    except re.error as e:
        raise CommandError(f"Failed to compile status regexp: {e}") from e
    try:
        members = make_client(args).agent.members(wan=args.wan)
    except ConsulError as e:
        raise CommandError(f"Error retrieving members: {e}") from e
    rows: list[tuple[str, ...]] = [("Node", "Address", "Status", "Tags") if args.detailed
                                   else ("Node", "Address", "Status", "Type", "DC")]
    for m in sorted(members, key=lambda m: m.get("Name", "")):
        status = STATUS.get(m.get("Status", 0), "unknown")
        if not status_re.search(status):
            continue
        tags = m.get("Tags") or {}
        address = f"{m.get('Addr', '')}:{m.get('Port', '')}"
        if args.detailed:  # consul members -detailed: every tag, sorted, k=v comma separated
            rows.append((m.get("Name", ""), address, status, ",".join(f"{k}={v}" for k, v in sorted(tags.items()))))
            continue
        kind = "server" if tags.get("role") == "consul" else "client"
        rows.append((m.get("Name", ""), f"{m.get('Addr', '')}:{m.get('Port', '')}", status, kind, tags.get("dc", "")))
    if len(rows) == 1:
        return 2  # consul: no members matched the filter
    for line in columnize(rows):
        out(line)
    return 0
