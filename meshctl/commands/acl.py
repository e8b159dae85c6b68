"""`meshctl acl bootstrap|token|policy|role|set-agent-token`, as `consul acl`.

Output follows Consul's pretty format (`AccessorID:  ...`), or JSON with `-format=json`.
"""

from __future__ import annotations

import json
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshctl.client.records import ACLLink
from meshctl.commands.common import (
    CommandError,
    Handler,
    dispatch,
    guarded,
    make_client,
    new_parser,
    no_args,
    out,
    parse,
    read_data_arg,
)
from meshctl.flags import FlagParser

# ---------------------------------------------------------------------- output


def _show(args: Namespace, value: Any, pretty: Callable[[Any], list[str]]) -> None:
    if getattr(args, "format", "pretty") == "json":
        out(json.dumps(value, indent=4))
        return
    for line in pretty(value):
        out(line)


def token_lines(tok: dict[str, Any]) -> list[str]:
    """A token as `consul acl token read` prints it."""
    lines = [f"AccessorID:       {tok.get('AccessorID', '')}", f"SecretID:         {tok.get('SecretID', '')}",
             f"Description:      {tok.get('Description', '')}", f"Local:            {str(tok.get('Local', False)).lower()}",
             f"Create Time:      {tok.get('CreateTime', '')}"]
    if tok.get("Policies"):
        lines.append("Policies:")
        lines += [f"   {p['ID']} - {p['Name']}" for p in tok["Policies"]]
    if tok.get("Roles"):
        lines.append("Roles:")
        lines += [f"   {r['ID']} - {r['Name']}" for r in tok["Roles"]]
    if tok.get("ServiceIdentities"):
        lines.append("Service Identities:")
        lines += [f"   {s['ServiceName']} (Datacenters: {', '.join(s.get('Datacenters') or []) or 'all'})"
                  for s in tok["ServiceIdentities"]]
    if tok.get("NodeIdentities"):
        lines.append("Node Identities:")
        lines += [f"   {n['NodeName']} (Datacenter: {n.get('Datacenter', '')})" for n in tok["NodeIdentities"]]
    return lines


def policy_lines(pol: dict[str, Any]) -> list[str]:
    return [f"ID:           {pol.get('ID', '')}", f"Name:         {pol.get('Name', '')}",
            f"Description:  {pol.get('Description', '')}",
            f"Datacenters:  {', '.join(pol.get('Datacenters') or [])}", "Rules:", pol.get("Rules", "")]


def role_lines(role: dict[str, Any]) -> list[str]:
    lines = [f"ID:           {role.get('ID', '')}", f"Name:         {role.get('Name', '')}",
             f"Description:  {role.get('Description', '')}"]
    if role.get("Policies"):
        lines.append("Policies:")
        lines += [f"   {p['ID']} - {p['Name']}" for p in role["Policies"]]
    if role.get("ServiceIdentities"):
        lines.append("Service Identities:")
        lines += [f"   {s['ServiceName']}" for s in role["ServiceIdentities"]]
    if role.get("NodeIdentities"):
        lines.append("Node Identities:")
        lines += [f"   {n['NodeName']} (Datacenter: {n.get('Datacenter', '')})" for n in role["NodeIdentities"]]
    return lines


def _listed(lines_of: Callable[[Any], list[str]]) -> Callable[[list[Any]], list[str]]:
    def render(items: list[Any]) -> list[str]:
        lines: list[str] = []
        for i, item in enumerate(items):
            if i:
                lines.append("")
            lines += lines_of(item)
        return lines

    return render


def policy_list_lines(items: list[dict[str, Any]]) -> list[str]:
    lines = []
    for pol in items:
        lines += [f"{pol['Name']}:", f"   ID:           {pol['ID']}", f"   Description:  {pol.get('Description', '')}",
                  f"   Datacenters:  {', '.join(pol.get('Datacenters') or [])}"]
    return lines


# ---------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class Kind:
    """One `meshctl acl <kind>` family: its names, how a record prints, how -id / -name pick one.

    The client's methods follow the kind's name: `client.acl.{name}_read`, `_read_by_name`, `_delete`, `_list`.
    """

    name: str  # token, policy, role
    plural: str
    id_help: str
    lines: Callable[[Any], list[str]]
    list_lines: Callable[[list[Any]], list[str]]
    by_name: bool = True  # -name picks a record by its name (policies, roles)
    reads_self: bool = False  # `read -self` reads the token this command uses

    def op(self, client: Any, verb: str) -> Callable[..., Any]:
        """The client's `verb` for this kind (`read`, `read_by_name`, `delete`, `list`)."""
        method: Callable[..., Any] = getattr(client.acl, f"{self.name}_{verb}")
        return method


TOKEN_KIND = Kind("token", "tokens", "AccessorID of the token", token_lines, _listed(token_lines), by_name=False,
                  reads_self=True)
POLICY_KIND = Kind("policy", "policies", "ID of the policy", policy_lines, policy_list_lines)
ROLE_KIND = Kind("role", "roles", "ID of the role", role_lines, _listed(role_lines))


# ---------------------------------------------------------------------- parsers


def _parser(prog: str, description: str) -> FlagParser:
    p = new_parser(f"meshctl acl {prog}", description)
    p.flag("format", default="pretty", choices=["pretty", "json"], help="Output format")
    return p


def _link_flags(p: FlagParser, identities: bool = True) -> None:
    p.flag("policy-id", action="append", default=[], help="ID of a policy to link (repeatable)")
    p.flag("policy-name", action="append", default=[], help="Name of a policy to link (repeatable)")
    if identities:
        p.flag("service-identity", action="append", default=[], help="Service identity NAME (repeatable)")
        p.flag("node-identity", action="append", default=[], help="Node identity NAME:DATACENTER (repeatable)")


def _policies(args: Namespace) -> list[ACLLink]:
    return [{"ID": i} for i in args.policy_id] + [{"Name": n} for n in args.policy_name]


def _select_flags(p: FlagParser, kind: Kind, name_help: str = "") -> None:
    """-id, and -name for kinds picked by name."""
    p.flag("id", default="", help=kind.id_help)
    if kind.by_name:
        p.flag("name", default="", help=name_help or f"Name of the {kind.name}")


def _check_selected(kind: Kind, args: Namespace) -> None:
    """Fail unless -id (or -name, or -self, where the kind has them) picks a record."""
    if args.id or (kind.by_name and args.name) or (kind.reads_self and getattr(args, "self", False)):
        return
    raise CommandError("Must specify the -id or -name parameter" if kind.by_name else "Must specify the -id parameter")


def _selected_id(client: Any, kind: Kind, args: Namespace) -> str:
    """The ID -id gives, else that of the record -name names."""
    if args.id:
        return str(args.id)
    return str(kind.op(client, "read_by_name")(args.name)["ID"])


def _update_parser(kind: Kind, description: str) -> FlagParser:
    """`<kind> update` for kinds picked by -id or -name: those two, -new-name and -description."""
    p = _parser(f"{kind.name} update", description)
    _select_flags(p, kind, name_help=f"Name of the {kind.name} (when -id is not given)")
    p.flag("new-name", default=None, help="New name")
    p.flag("description", default=None, help="New description")
    return p


# ---------------------------------------------------------------------- read, delete, list (every kind)


def _read_command(kind: Kind) -> Handler:
    """`acl <kind> read -id ID | -name NAME | -self`."""

    @guarded
    def read(argv: list[str]) -> int:
        p = _parser(f"{kind.name} read", f"Read an ACL {kind.name}.")
        _select_flags(p, kind)
        if kind.reads_self:
            p.bool_flag("self", help="Read the token this command uses")
        args, rest = parse(p, argv)
        no_args(rest)
        client = make_client(args)
        _check_selected(kind, args)
        if kind.reads_self and args.self:
            rec = client.acl.token_self()
        elif args.id:
            rec = kind.op(client, "read")(args.id)
        else:
            rec = kind.op(client, "read_by_name")(args.name)
        _show(args, rec, kind.lines)
        return 0

    return read


def _delete_command(kind: Kind) -> Handler:
    """`acl <kind> delete -id ID | -name NAME`."""

    @guarded
    def delete(argv: list[str]) -> int:
        p = _parser(f"{kind.name} delete", f"Delete an ACL {kind.name}.")
        _select_flags(p, kind)
        args, rest = parse(p, argv)
        no_args(rest)
        _check_selected(kind, args)
        client = make_client(args)
        rid = _selected_id(client, kind, args)
        kind.op(client, "delete")(rid)
        out(f"{kind.name.capitalize()} {rid!r} deleted successfully")
        return 0

    return delete


def _list_command(kind: Kind) -> Handler:
    """`acl <kind> list`."""

    @guarded
    def list_(argv: list[str]) -> int:
        args, rest = parse(_parser(f"{kind.name} list", f"List ACL {kind.plural}."), argv)
        no_args(rest)
        _show(args, kind.op(make_client(args), "list")(), kind.list_lines)
        return 0

    return list_


# ---------------------------------------------------------------------- bootstrap


@guarded
def bootstrap(argv: list[str]) -> int:
    """acl bootstrap"""
    args, rest = parse(_parser("bootstrap", "Create the initial management token (works once)."), argv)
    no_args(rest)
    _show(args, make_client(args).acl.bootstrap(), token_lines)
    return 0


# ---------------------------------------------------------------------- tokens


@guarded
def token_create(argv: list[str]) -> int:
    """acl token create"""
    p = _parser("token create", "Create an ACL token.")
    p.flag("description", default=None, help="Description of the token")
    p.flag("secret", default=None, help="SecretID to use (default: generated)")
    p.flag("accessor", default=None, help="AccessorID to use (default: generated)")
    p.bool_flag("local", help="Create a datacenter-local token")
    p.flag("role-id", action="append", default=[], help="ID of a role to link (repeatable)")
    p.flag("role-name", action="append", default=[], help="Name of a role to link (repeatable)")
    _link_flags(p)
    args, rest = parse(p, argv)
    no_args(rest)
    roles = [{"ID": i} for i in args.role_id] + [{"Name": n} for n in args.role_name]
    tok = make_client(args).acl.token_create(
        description=args.description, policies=_policies(args) or None, roles=roles or None,  # type: ignore[arg-type]
        service_identities=args.service_identity or None, node_identities=args.node_identity or None,
        secret_id=args.secret, accessor_id=args.accessor, local=args.local or None)
    _show(args, tok, token_lines)
    return 0


@guarded
def token_update(argv: list[str]) -> int:
    """acl token update -id ID"""
    p = _parser("token update", "Update an ACL token (links given replace the existing ones).")
    p.flag("id", default="", help="AccessorID of the token")
    p.flag("description", default=None, help="New description")
    p.bool_flag("merge-policies", help="Keep the token's policies and add the given ones")
    _link_flags(p)
    args, rest = parse(p, argv)
    no_args(rest)
    if not args.id:
        raise CommandError("Cannot update a token without specifying the -id parameter")
    client = make_client(args)
    old = client.acl.token_read(args.id)
    policies = _policies(args)
    if args.merge_policies:
        policies = list(old.get("Policies") or []) + policies
    tok = client.acl.token_update(
        args.id, description=args.description if args.description is not None else old.get("Description", ""),
        policies=policies, roles=old.get("Roles") or [],
        service_identities=args.service_identity or [s["ServiceName"] for s in old.get("ServiceIdentities") or []],
        node_identities=args.node_identity or [f"{n['NodeName']}:{n.get('Datacenter', '')}"
                                               for n in old.get("NodeIdentities") or []])
    _show(args, tok, token_lines)
    return 0


@guarded
def token_clone(argv: list[str]) -> int:
    """acl token clone -id ID"""
    p = _parser("token clone", "Clone an ACL token (new AccessorID and SecretID, same links).")
    p.flag("id", default="", help="AccessorID of the token to clone")
    p.flag("description", default=None, help="Description of the new token")
    args, rest = parse(p, argv)
    no_args(rest)
    if not args.id:
        raise CommandError("Cannot clone a token without specifying the -id parameter")
    _show(args, make_client(args).acl.token_clone(args.id, args.description), token_lines)
    return 0


# ---------------------------------------------------------------------- policies


def _rules(value: str | None) -> str | None:
    return None if value is None else read_data_arg(value).decode()


@guarded
def policy_create(argv: list[str]) -> int:
    """acl policy create -name NAME -rules RULES"""
    p = _parser("policy create", "Create an ACL policy.")
    p.flag("name", default="", help="Name of the policy")
    p.flag("description", default=None, help="Description of the policy")
    p.flag("rules", default="", help="Rules (HCL or JSON); @file reads a file, - reads stdin")
    p.flag("valid-datacenter", action="append", default=[], help="Datacenter the policy is valid in (repeatable)")
    args, rest = parse(p, argv)
    no_args(rest)
    if not args.name:
        raise CommandError("Missing required '-name' flag")
    pol = make_client(args).acl.policy_create(args.name, _rules(args.rules) or "", description=args.description,
                                              datacenters=args.valid_datacenter or None)
    _show(args, pol, policy_lines)
    return 0


@guarded
def policy_update(argv: list[str]) -> int:
    """acl policy update -id ID | -name NAME"""
    p = _update_parser(POLICY_KIND, "Update an ACL policy (fields not given keep their values).")
    p.flag("rules", default=None, help="New rules; @file reads a file, - reads stdin")
    args, rest = parse(p, argv)
    no_args(rest)
    client = make_client(args)
    _check_selected(POLICY_KIND, args)
    pid = _selected_id(client, POLICY_KIND, args)
    pol = client.acl.policy_update(pid, name=args.new_name, rules=_rules(args.rules), description=args.description)
    _show(args, pol, policy_lines)
    return 0


# ---------------------------------------------------------------------- roles


@guarded
def role_create(argv: list[str]) -> int:
    """acl role create -name NAME"""
    p = _parser("role create", "Create an ACL role.")
    p.flag("name", default="", help="Name of the role")
    p.flag("description", default=None, help="Description of the role")
    _link_flags(p)
    args, rest = parse(p, argv)
    no_args(rest)
    if not args.name:
        raise CommandError("Missing required '-name' flag")
    role = make_client(args).acl.role_create(
        args.name, description=args.description, policies=_policies(args) or None,
        service_identities=args.service_identity or None, node_identities=args.node_identity or None)
    _show(args, role, role_lines)
    return 0


@guarded
def role_update(argv: list[str]) -> int:
    """acl role update -id ID | -name NAME"""
    p = _update_parser(ROLE_KIND, "Update an ACL role (policies given replace the existing ones).")
    _link_flags(p, identities=False)
    args, rest = parse(p, argv)
    no_args(rest)
    client = make_client(args)
    _check_selected(ROLE_KIND, args)
    rid = _selected_id(client, ROLE_KIND, args)
    old = client.acl.role_read(rid)
    role = client.acl.role_update(rid, args.new_name or old["Name"],
                                  description=args.description if args.description is not None
                                  else old.get("Description", ""),
                                  policies=_policies(args) or old.get("Policies") or [])
    _show(args, role, role_lines)
    return 0


# ---------------------------------------------------------------------- agent tokens


@guarded
def set_agent_token(argv: list[str]) -> int:
    """acl set-agent-token TYPE TOKEN"""
    args, rest = parse(new_parser("meshctl acl set-agent-token", "Set one of the agent's tokens (default, agent, "
                                  "dns ...)."), argv)
    if len(rest) != 2:
        raise CommandError("Missing TYPE and TOKEN arguments")
    make_client(args).acl.set_agent_token(rest[0], rest[1])
    out(f"ACL token {rest[0]!r} set successfully")
    return 0


# ---------------------------------------------------------------------- subcommand tables


def _subcommands(kind: Kind, create: Handler, update: Handler,
                 clone: Handler | None = None) -> dict[str, tuple[Handler, str]]:
    """`meshctl acl <kind>`: the kind's own create and update (and clone); read, delete, list shared."""
    table = {"create": (create, f"Create an ACL {kind.name}"),
             "read": (_read_command(kind), f"Read an ACL {kind.name}"),
             "update": (update, f"Update an ACL {kind.name}")}
    if clone is not None:
        table["clone"] = (clone, f"Clone an ACL {kind.name}")
    table["delete"] = (_delete_command(kind), f"Delete an ACL {kind.name}")
    table["list"] = (_list_command(kind), f"List ACL {kind.plural}")
    return table


KINDS: dict[Kind, dict[str, tuple[Handler, str]]] = {
    TOKEN_KIND: _subcommands(TOKEN_KIND, token_create, token_update, token_clone),
    POLICY_KIND: _subcommands(POLICY_KIND, policy_create, policy_update),
    ROLE_KIND: _subcommands(ROLE_KIND, role_create, role_update),
}


def _group(kind: Kind) -> tuple[Handler, str]:
    """`meshctl acl <kind> <subcommand>`."""
    return (lambda rest: dispatch(f"meshctl acl {kind.name}", rest, KINDS[kind])), f"Manage {kind.plural}"


SUBCOMMANDS: dict[str, tuple[Handler, str]] = {
    "bootstrap": (bootstrap, "Bootstrap Consul's ACL system"),
    **{kind.name: _group(kind) for kind in KINDS},
    "set-agent-token": (set_agent_token, "Assign tokens for the agent's use"),
}


def main(argv: list[str]) -> int:
    """acl <subcommand>"""
    return dispatch("meshctl acl", argv, SUBCOMMANDS)
