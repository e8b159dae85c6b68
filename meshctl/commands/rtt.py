"""`meshctl rtt NODE [NODE]`: the round trip the network coordinates predict, as `consul rtt` prints it.

    Estimated node1 <-> node2 rtt: 1.234 ms (using LAN coordinates)

With one node the other is the agent's own. `-wan` compares servers' WAN coordinates, named
`<node>.<datacenter>` (one name alone: the agent's server in its own datacenter).
"""

from __future__ import annotations

from collections.abc import Mapping

from meshctl.client import Client, ConsulError
from meshctl.client.coordinate import rtt
from meshctl.commands.common import CommandError, guarded, make_client, new_parser, out, parse


def _lan(client: Client, names: list[str]) -> dict[str, Mapping[str, object]]:
    entries = client.coordinate.nodes().value
    return {str(e.get("Node")): e.get("Coord") for e in entries if str(e.get("Node")) in names}  # type: ignore[misc]


def _wan(client: Client, names: list[str]) -> dict[str, Mapping[str, object]]:
    found: dict[str, Mapping[str, object]] = {}
    for area in client.coordinate.datacenters():
        for item in area.get("Coordinates") or []:  # type: ignore[attr-defined]
            if item.get("Node") in names:
                found[item["Node"]] = item["Coord"]
    return found


@guarded
def main(argv: list[str]) -> int:
    """rtt [-wan] node1 [node2]"""
    p = new_parser("meshctl rtt", "Estimates the network round trip time between two nodes from their coordinates.")
    p.bool_flag("wan", help="Use WAN coordinates instead of LAN coordinates")
    args, rest = parse(p, argv)
    if len(rest) not in (1, 2):
        raise CommandError("One or two node names must be specified")
    client = make_client(args)
    try:
        names = list(rest)
        if len(names) == 1:
            config = client.agent.self().get("Config") or {}
            own = str(config.get("NodeName") or "")  # type: ignore[attr-defined]
            names.append(f"{own}.{config.get('Datacenter')}" if args.wan else own)  # type: ignore[attr-defined]
        coords = _wan(client, names) if args.wan else _lan(client, names)
    except ConsulError as e:
        raise CommandError(f"Error getting coordinates: {e}") from e
    for name in names:
        if name not in coords:
            raise CommandError(f"Could not find a coordinate for node {name!r}")
    try:
        seconds = rtt(coords[names[0]], coords[names[1]])
    except ValueError as e:
        raise CommandError(f"Error computing the round trip: {e}") from e
    out(f"Estimated {names[0]} <-> {names[1]} rtt: {seconds * 1000:.3f} ms "
        f"(using {'WAN' if args.wan else 'LAN'} coordinates)")
    return 0
