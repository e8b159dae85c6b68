"""`meshctl catalog services|nodes|datacenters`: `consul catalog`, same output."""

from __future__ import annotations

from typing import Any, cast

from meshctl.client import ConsulError
from meshctl.commands.common import (
    CommandError,
    columnize,
    consistency,
    dispatch,
    err,
    guarded,
    make_client,
    new_parser,
    out,
    parse,
)


def _no_args(rest: list[str]) -> None:
    if rest:
        raise CommandError(f"Too many arguments (expected 0, got {len(rest)})")


@guarded
def datacenters(argv: list[str]) -> int:
    """catalog datacenters"""
    p = new_parser("meshctl catalog datacenters", "List all known datacenters.")
    args, rest = parse(p, argv)
    _no_args(rest)
    try:
        dcs = make_client(args).catalog.datacenters()
    except ConsulError as e:
        raise CommandError(f"Error listing datacenters: {e}") from e
    if not dcs:
        err("No datacenters found")
        return 1
    for dc in dcs:
        out(dc)
    return 0


@guarded
def services(argv: list[str]) -> int:
    """catalog services [-tags] [-node N] [-node-meta k=v]"""
    p = new_parser("meshctl catalog services", "List services in the catalog (or on one node).")
    p.bool_flag("tags", help="Also show each service's tags")
    p.flag("node", default="", help="Only services on this node (name or ID)")
    p.flag("node-meta", action="append", default=[], help="Filter by node metadata key=value (repeatable)")
    args, rest = parse(p, argv)
    _no_args(rest)
    client = make_client(args)
    node_meta = {k: v for k, _, v in (m.partition("=") for m in args.node_meta)}
    try:
        if args.node:
            node = client.catalog.node(args.node, consistency=consistency(args)).value
            found: dict[str, list[str]] = {}
            for svc in (node or {}).get("Services", {}).values():
                found.setdefault(svc["Service"], [])
                found[svc["Service"]] = sorted(set(found[svc["Service"]]) | set(svc.get("Tags") or []))
        else:
            found = client.catalog.services(node_meta=node_meta or None, consistency=consistency(args)).value
    except ConsulError as e:
        raise CommandError(f"Error listing services: {e}") from e
    if not found:
        err("No services match the given query - try expanding your search.")
        return 0
    names = sorted(found)
    if args.tags:
        for line in columnize([(n, ",".join(sorted(found[n] or []))) for n in names]):
            out(line)
    else:
        for n in names:
            out(n)
    return 0


def _node_rows(nodes: list[dict[str, Any]], detailed: bool) -> list[tuple[str, ...]]:
    if detailed:
        rows: list[tuple[str, ...]] = [("Node", "ID", "Address", "DC", "TaggedAddresses", "Meta")]
        for n in nodes:
            tagged = ", ".join(f"{k}={v}" for k, v in sorted((n.get("TaggedAddresses") or {}).items()))
            meta = ", ".join(f"{k}={v}" for k, v in sorted((n.get("Meta") or {}).items()))
            rows.append((n["Node"], n.get("ID") or "", n.get("Address", ""), n.get("Datacenter", ""), tagged, meta))
        return rows
    rows = [("Node", "ID", "Address", "DC")]
    for n in nodes:
        rows.append((n["Node"], (n.get("ID") or "")[:8], n.get("Address", ""), n.get("Datacenter", "")))
    return rows


@guarded
def nodes(argv: list[str]) -> int:
    """catalog nodes [-service S] [-detailed] [-near N] [-node-meta k=v]"""
    p = new_parser("meshctl catalog nodes", "List nodes in the catalog.")
    p.flag("service", default="", help="Only nodes providing this service (name or ID)")
    p.bool_flag("detailed", help="Show full node IDs, tagged addresses and metadata")
    p.flag("near", default="", help="Sort by round-trip time from this node")
    p.flag("node-meta", action="append", default=[], help="Filter by node metadata key=value (repeatable)")
    args, rest = parse(p, argv)
    _no_args(rest)
    client = make_client(args)
    node_meta = {k: v for k, _, v in (m.partition("=") for m in args.node_meta)}
    try:
        if args.service:
            instances = client.catalog.service(args.service, near=args.near or None, node_meta=node_meta or None,
                                               consistency=consistency(args)).value
            seen: dict[str, dict[str, Any]] = {}
            for inst in instances:
                seen.setdefault(inst["Node"], {"Node": inst["Node"], "ID": inst.get("ID", ""),
                                               "Address": inst.get("Address", ""),
                                               "Datacenter": inst.get("Datacenter", ""),
                                               "TaggedAddresses": inst.get("TaggedAddresses"),
                                               "Meta": inst.get("NodeMeta")})
            found = list(seen.values())
        else:
            found = cast(list[dict[str, Any]], client.catalog.nodes(near=args.near or None, node_meta=node_meta or None,
                                                                    consistency=consistency(args)).value)
    except ConsulError as e:
        raise CommandError(f"Error listing nodes: {e}") from e
    if not found:
        err("No nodes match the given query - try expanding your search.")
        return 0
    for line in columnize(_node_rows(found, args.detailed)):
        out(line)
    return 0


SUBCOMMANDS = {
    "datacenters": (datacenters, "Lists all known datacenters"),
    "nodes": (nodes, "Lists all nodes in the given datacenter"),
    "services": (services, "Lists all registered services in a datacenter"),
}


def main(argv: list[str]) -> int:
    """`meshctl catalog ...`"""
    return dispatch("meshctl catalog", argv, SUBCOMMANDS)
