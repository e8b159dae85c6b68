"""`meshctl services register|deregister`: `consul services`, from flags or definition files."""

from __future__ import annotations

import json
import os
from typing import Any

from meshctl import hcl
from meshctl.client import ConsulError
from meshctl.commands.common import CommandError, dispatch, guarded, make_client, new_parser, out, parse

# snake_case words that Consul's CamelCase field names spell in capitals.
_ACRONYMS = {"id": "ID", "http": "HTTP", "tcp": "TCP", "udp": "UDP", "ttl": "TTL", "tls": "TLS", "grpc": "GRPC",
             "h2ping": "H2PING", "os": "OS"}
# Fields whose value is a user map: keep its keys as written.
_OPAQUE = {"Meta", "NodeMeta", "Header"}
_SPECIAL = {"ScriptArgs": "Args"}


def camel(key: str) -> str:
    """`deregister_critical_service_after` → `DeregisterCriticalServiceAfter`; CamelCase stays."""
    if any(c.isupper() for c in key):
        return key
    out = "".join(_ACRONYMS.get(part, part[:1].upper() + part[1:]) for part in key.split("_"))
    return _SPECIAL.get(out, out)


def normalize(value: Any, parent: str = "") -> Any:
    """Consul's config-file spelling (snake_case, HCL blocks) → the agent API's CamelCase JSON."""
    if isinstance(value, list):
        return [normalize(v, parent) for v in value]
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for k, v in value.items():
        if k == "__is_block__":
            continue
        if parent in _OPAQUE:
            result[k] = v
            continue
        if parent == "TaggedAddresses":  # {"lan": {"address", "port"}}: keep "lan", convert inside
            result[k] = normalize(v)
            continue
        name = camel(k)
        if name in ("Check", "Proxy", "Connect", "Weights") and isinstance(v, list) and len(v) == 1:
            v = v[0]  # an HCL block
        result[name] = normalize(v, name)
    return result


def load_definitions(path: str) -> list[dict[str, Any]]:
    """The service definitions in a JSON, HCL or YAML file (`service {...}` or `services [...]`)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise CommandError(f"Error reading service definition file {path!r}: {e.strerror or e}") from e
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif ext == ".hcl":
            data = hcl.loads(text)
        else:
            try:
                data = json.loads(text)
            except ValueError:
                if ext == ".json":
                    raise
                data = hcl.loads(text)
    except Exception as e:  # the parsers raise many types; report all as one line
        raise CommandError(f"Error parsing service definition file {path!r}: {e}") from e
    if not isinstance(data, dict):
        raise CommandError(f"Error: {path!r} does not hold a service definition")
    found: list[Any] = []
    for key in ("service", "services", "Service", "Services"):
        item = data.get(key)
        if item is None:
            continue
        found.extend(item if isinstance(item, list) else [item])
    if not found:
        raise CommandError(f"Error: no \"service\" or \"services\" definition found in {path!r}")
    definitions = [normalize(d) for d in found if isinstance(d, dict)]
    for d in definitions:
        if not d.get("Name"):
            raise CommandError(f"Error: a service definition in {path!r} has no name")
    return definitions


def _from_flags(args: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {"Name": args.name}
    if args.id:
        definition["ID"] = args.id
    if args.address:
        definition["Address"] = args.address
    if args.port:
        definition["Port"] = args.port
    if args.tag:
        definition["Tags"] = args.tag
    if args.meta:
        meta = {}
        for item in args.meta:
            k, sep, v = item.partition("=")
            if not sep:
                raise CommandError(f"Error: -meta must be key=value, got {item!r}")
            meta[k] = v
        definition["Meta"] = meta
    return definition


@guarded
def register(argv: list[str]) -> int:
    """services register [FILE ...] | -name NAME [-id ID] [-port N] [-address A] [-tag T ...] [-meta k=v ...]"""
    p = new_parser("meshctl services register", "Register services with the local agent.")
    p.flag("name", default="", help="Name of the service (when no FILE is given)")
    p.flag("id", default="", help="ID of the service (default: the name)")
    p.flag("port", type=int, default=0, help="Port of the service")
    p.flag("address", default="", help="Address of the service (default: the node's)")
    p.flag("tag", action="append", default=[], help="Tag (repeatable)")
    p.flag("meta", action="append", default=[], help="Metadata key=value (repeatable)")
    args, rest = parse(p, argv)
    if args.name and rest:
        raise CommandError("Error: give either -name (and flags) or definition FILEs, not both")
    if args.name:
        definitions = [_from_flags(args)]
    elif rest:
        definitions = [d for path in rest for d in load_definitions(path)]
    else:
        raise CommandError("Error: a service definition FILE or -name is required")
    client = make_client(args)
    for d in definitions:
        try:
            client.agent.service_register(d)
        except ConsulError as e:
            raise CommandError(f"Error registering service {d['Name']!r}: {e}") from e
        out(f"Registered service: {d['Name']}")
    return 0


@guarded
def deregister(argv: list[str]) -> int:
    """services deregister [FILE ...] | -id ID"""
    p = new_parser("meshctl services deregister", "Deregister services from the local agent.")
    p.flag("id", default="", help="ID of the service to deregister")
    args, rest = parse(p, argv)
    if args.id and rest:
        raise CommandError("Error: give either -id or definition FILEs, not both")
    if args.id:
        ids = [args.id]
    elif rest:
        ids = [d.get("ID") or d["Name"] for path in rest for d in load_definitions(path)]
    else:
        raise CommandError("Error: a service definition FILE or -id is required")
    client = make_client(args)
    for service_id in ids:
        try:
            client.agent.service_deregister(service_id)
        except ConsulError as e:
            raise CommandError(f"Error deregistering service {service_id!r}: {e}") from e
        out(f"Deregistered service: {service_id}")
    return 0


SUBCOMMANDS = {
    "register": (register, "Register services for discovery"),
    "deregister": (deregister, "Deregister services"),
}


def main(argv: list[str]) -> int:
    """`meshctl services ...`"""
    return dispatch("meshctl services", argv, SUBCOMMANDS)
