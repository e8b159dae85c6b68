"""`meshctl event fire|list`: fire user events (as `consul event`) and list recent ones."""

from __future__ import annotations

from meshctl.client import ConsulError, event_payload
from meshctl.commands.common import (
    CommandError,
    columnize,
    dispatch,
    guarded,
    make_client,
    new_parser,
    out,
    parse,
    read_data_arg,
)


@guarded
def fire(argv: list[str]) -> int:
    """event fire [-node RE] [-service RE] [-tag RE] NAME [PAYLOAD|-|@file]"""
    p = new_parser("meshctl event fire", "Fire a user event NAME with an optional PAYLOAD.")
    p.flag("name", default="", help="Event name (instead of the NAME argument)")
    p.flag("node", default="", help="Regular expression to filter on node names")
    p.flag("service", default="", help="Regular expression to filter on service instances")
    p.flag("tag", default="", help="Regular expression to filter on service tags (needs -service)")
    args, rest = parse(p, argv)
    name = args.name
    if not name:
        if not rest:
            raise CommandError("Event name must be specified")
        name, rest = rest[0], rest[1:]
    if name.startswith("_"):
        raise CommandError("Event names starting with '_' are reserved for internal use")
    if args.tag and not args.service:
        raise CommandError("Cannot provide tag filter without service filter.")
    if len(rest) > 1:
        raise CommandError(f"Too many command line arguments (expected at most 1 payload, got {len(rest)})")
    payload = read_data_arg(rest[0]) if rest else None
    try:
        event = make_client(args).event.fire(name, payload, node=args.node or None, service=args.service or None,
                                             tag=args.tag or None)
    except ConsulError as e:
        raise CommandError(f"Error firing event: {e}") from e
    out(f"Event ID: {event.get('ID', '')}")
    return 0


@guarded
def list_(argv: list[str]) -> int:
    """event list [-name NAME]"""
    p = new_parser("meshctl event list", "List the most recent user events the agent has seen.")
    p.flag("name", default="", help="Only events with this name")
    args, rest = parse(p, argv)
    if rest:
        raise CommandError(f"Too many arguments (expected 0, got {len(rest)})")
    try:
        events = make_client(args).event.list_recent(args.name or None).value
    except ConsulError as e:
        raise CommandError(f"Error listing events: {e}") from e
    rows = [("ID", "Name", "LTime", "Payload")]
    for ev in events:
        payload = (event_payload(ev) or b"").decode("utf-8", "replace")
        rows.append((ev.get("ID", ""), ev.get("Name", ""), str(ev.get("LTime", 0)), payload))
    for line in columnize(rows):
        out(line)
    return 0


SUBCOMMANDS = {
    "fire": (fire, "Fire a new user event"),
    "list": (list_, "List recent user events"),
}


def main(argv: list[str]) -> int:
    """`meshctl event ...`"""
    return dispatch("meshctl event", argv, SUBCOMMANDS)
