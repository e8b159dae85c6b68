"""`meshctl acl bootstrap|token|policy|role|set-agent-token`, as `consul acl`.

Output follows Consul's pretty format (`AccessorID:  ...`), or JSON with `-format=json`.
"""

from __future__ import annotations

import json
from argparse import Namespace
from collections.abc import Callable
from typing import Any

from meshctl.commands.common import (
    CommandError,
    dispatch,
    guarded,
    make_client,
    new_parser,
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


def _policies(args: Namespace) -> list[dict[str, str]]:
    return [{"ID": i} for i in args.policy_id] + [{"Name": n} for n in args.policy_name]


def _no_rest(rest: list[str]) -> None:
    if rest:
        raise CommandError(f"Too many arguments (expected 0, got {len(rest)})")


# ---------------------------------------------------------------------- bootstrap


@guarded
def bootstrap(argv: list[str]) -> int:
    """acl bootstrap"""
    args, rest = parse(_parser("bootstrap", "Create the initial management token (works once)."), argv)
    _no_rest(rest)
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
    _no_rest(rest)
    roles = [{"ID": i} for i in args.role_id] + [{"Name": n} for n in args.role_name]
    tok = make_client(args).acl.token_create(
        description=args.description, policies=_policies(args) or None, roles=roles or None,  # type: ignore[arg-type]
        service_identities=args.service_identity or None, node_identities=args.node_identity or None,
        secret_id=args.secret, accessor_id=args.accessor, local=args.local or None)
    _show(args, tok, token_lines)
    return 0


@guarded
def token_read(argv: list[str]) -> int:
    """acl token read -id ID | -self"""
    p = _parser("token read", "Read an ACL token.")
    p.flag("id", default="", help="AccessorID of the token")
    p.bool_flag("self", help="Read the token this command uses")
    args, rest = parse(p, argv)
    _no_rest(rest)
    client = make_client(args)
    if args.self:
        tok = client.acl.token_self()
    elif args.id:
        tok = client.acl.token_read(args.id)
    else:
        raise CommandError("Must specify the -id parameter")
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
    _no_rest(rest)
    if not args.id:
        raise CommandError("Cannot update a token without specifying the -id parameter")
    client = make_client(args)
    old = client.acl.token_read(args.id)
    policies = _policies(args)
    if args.merge_policies:
        policies = list(old.get("Policies") or []) + policies
    tok = client.acl.token_update(
        args.id, description=args.description if args.description is not None else old.get("Description", ""),
        policies=policies, roles=old.get("Roles") or [],  # type: ignore[arg-type]
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
    _no_rest(rest)
    if not args.id:
        raise CommandError("Cannot clone a token without specifying the -id parameter")
    _show(args, make_client(args).acl.token_clone(args.id, args.description), token_lines)
    return 0


@guarded
def token_delete(argv: list[str]) -> int:
    """acl token delete -id ID"""
    p = _parser("token delete", "Delete an ACL token.")
    p.flag("id", default="", help="AccessorID of the token")
    args, rest = parse(p, argv)
    _no_rest(rest)
    if not args.id:
        raise CommandError("Must specify the -id parameter")
    make_client(args).acl.token_delete(args.id)
    out(f"Token {args.id!r} deleted successfully")
    return 0


@guarded
def token_list(argv: list[str]) -> int:
    """acl token list"""
    args, rest = parse(_parser("token list", "List ACL tokens."), argv)
    _no_rest(rest)
    _show(args, make_client(args).acl.token_list(), _listed(token_lines))
    return 0


# ---------------------------------------------------------------------- policies


def _rules(value: str | None) -> str | None:
    return None if value is None else read_data_arg(value).decode()


def _policy_id(client: Any, args: Namespace) -> str:
    if args.id:
        return str(args.id)
    if args.name:
        return str(client.acl.policy_read_by_name(args.name)["ID"])
    raise CommandError("Must specify the -id or -name parameter")


@guarded
def policy_create(argv: list[str]) -> int:
    """acl policy create -name NAME -rules RULES"""
    p = _parser("policy create", "Create an ACL policy.")
    p.flag("name", default="", help="Name of the policy")
    p.flag("description", default=None, help="Description of the policy")
    p.flag("rules", default="", help="Rules (HCL or JSON); @file reads a file, - reads stdin")
    p.flag("valid-datacenter", action="append", default=[], help="Datacenter the policy is valid in (repeatable)")
    args, rest = parse(p, argv)
    _no_rest(rest)
    if not args.name:
        raise CommandError("Missing required '-name' flag")
    pol = make_client(args).acl.policy_create(args.name, _rules(args.rules) or "", description=args.description,
                                              datacenters=args.valid_datacenter or None)
    _show(args, pol, policy_lines)
    return 0


@guarded
def policy_read(argv: list[str]) -> int:
    """acl policy read -id ID | -name NAME"""
    p = _parser("policy read", "Read an ACL policy.")
    p.flag("id", default="", help="ID of the policy")
    p.flag("name", default="", help="Name of the policy")
    args, rest = parse(p, argv)
    _no_rest(rest)
    client = make_client(args)
    pol = client.acl.policy_read(args.id) if args.id else client.acl.policy_read_by_name(args.name) if args.name \
        else None
    if pol is None:
        raise CommandError("Must specify the -id or -name parameter")
    _show(args, pol, policy_lines)
    return 0


@guarded
def policy_update(argv: list[str]) -> int:
    """acl policy update -id ID | -name NAME"""
    p = _parser("policy update", "Update an ACL policy (fields not given keep their values).")
    p.flag("id", default="", help="ID of the policy")
    p.flag("name", default="", help="Name of the policy (when -id is not given)")
    p.flag("new-name", default=None, help="New name")
    p.flag("description", default=None, help="New description")
    p.flag("rules", default=None, help="New rules; @file reads a file, - reads stdin")
    args, rest = parse(p, argv)
    _no_rest(rest)
    client = make_client(args)
    pid = _policy_id(client, args)
    pol = client.acl.policy_update(pid, name=args.new_name, rules=_rules(args.rules), description=args.description)
    _show(args, pol, policy_lines)
    return 0


@guarded
def policy_delete(argv: list[str]) -> int:
    """acl policy delete -id ID | -name NAME"""
    p = _parser("policy delete", "Delete an ACL policy.")
    p.flag("id", default="", help="ID of the policy")
    p.flag("name", default="", help="Name of the policy")
    args, rest = parse(p, argv)
    _no_rest(rest)
    client = make_client(args)
    pid = _policy_id(client, args)
    client.acl.policy_delete(pid)
    out(f"Policy {pid!r} deleted successfully")
    return 0


@guarded
def policy_list(argv: list[str]) -> int:
    """acl policy list"""
    args, rest = parse(_parser("policy list", "List ACL policies."), argv)
    _no_rest(rest)
    _show(args, make_client(args).acl.policy_list(), policy_list_lines)
    return 0


# ---------------------------------------------------------------------- roles


def _role_id(client: Any, args: Namespace) -> str:
    if args.id:
        return str(args.id)
    if args.name:
        return str(client.acl.role_read_by_name(args.name)["ID"])
    raise CommandError("Must specify the -id or -name parameter")


@guarded
def role_create(argv: list[str]) -> int:
    """acl role create -name NAME"""
    p = _parser("role create", "Create an ACL role.")
    p.flag("name", default="", help="Name of the role")
    p.flag("description", default=None, help="Description of the role")
    _link_flags(p)
    args, rest = parse(p, argv)
    _no_rest(rest)
    if not args.name:
        raise CommandError("Missing required '-name' flag")
    role = make_client(args).acl.role_create(
        args.name, description=args.description, policies=_policies(args) or None,  # type: ignore[arg-type]
        service_identities=args.service_identity or None, node_identities=args.node_identity or None)
    _show(args, role, role_lines)
    return 0


@guarded
def role_read(argv: list[str]) -> int:
    """acl role read -id ID | -name NAME"""
    p = _parser("role read", "Read an ACL role.")
    p.flag("id", default="", help="ID of the role")
    p.flag("name", default="", help="Name of the role")
    args, rest = parse(p, argv)
    _no_rest(rest)
    client = make_client(args)
    role = client.acl.role_read(args.id) if args.id else client.acl.role_read_by_name(args.name) if args.name \
        else None
    if role is None:
        raise CommandError("Must specify the -id or -name parameter")
    _show(args, role, role_lines)
    return 0


@guarded
def role_update(argv: list[str]) -> int:
    """acl role update -id ID"""
    p = _parser("role update", "Update an ACL role (policies given replace the existing ones).")
    p.flag("id", default="", help="ID of the role")
    p.flag("name", default="", help="Name of the role (when -id is not given)")
    p.flag("new-name", default=None, help="New name")
    p.flag("description", default=None, help="New description")
    _link_flags(p, identities=False)
    args, rest = parse(p, argv)
    _no_rest(rest)
    client = make_client(args)
    rid = _role_id(client, args)
    old = client.acl.role_read(rid)
    role = client.acl.role_update(rid, args.new_name or old["Name"],
                                  description=args.description if args.description is not None
                                  else old.get("Description", ""),
                                  policies=_policies(args) or old.get("Policies") or [])  # type: ignore[arg-type]
    _show(args, role, role_lines)
    return 0


@guarded
def role_delete(argv: list[str]) -> int:
    """acl role delete -id ID | -name NAME"""
    p = _parser("role delete", "Delete an ACL role.")
    p.flag("id", default="", help="ID of the role")
    p.flag("name", default="", help="Name of the role")
    args, rest = parse(p, argv)
    _no_rest(rest)
    client = make_client(args)
    rid = _role_id(client, args)
    client.acl.role_delete(rid)
    out(f"Role {rid!r} deleted successfully")
    return 0


@guarded
def role_list(argv: list[str]) -> int:
    """acl role list"""
    args, rest = parse(_parser("role list", "List ACL roles."), argv)
    _no_rest(rest)
    _show(args, make_client(args).acl.role_list(), _listed(role_lines))
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


TOKEN = {
    "create": (token_create, "Create an ACL token"),
    "read": (token_read, "Read an ACL token"),
    "update": (token_update, "Update an ACL token"),
    "clone": (token_clone, "Clone an ACL token"),
    "delete": (token_delete, "Delete an ACL token"),
    "list": (token_list, "List ACL tokens"),
}
POLICY = {
    "create": (policy_create, "Create an ACL policy"),
    "read": (policy_read, "Read an ACL policy"),
    "update": (policy_update, "Update an ACL policy"),
    "delete": (policy_delete, "Delete an ACL policy"),
    "list": (policy_list, "List ACL policies"),
}
ROLE = {
    "create": (role_create, "Create an ACL role"),
    "read": (role_read, "Read an ACL role"),
    "update": (role_update, "Update an ACL role"),
    "delete": (role_delete, "Delete an ACL role"),
    "list": (role_list, "List ACL roles"),
}


def main(argv: list[str]) -> int:
    """acl <subcommand>"""
    return dispatch("meshctl acl", argv, {
        "bootstrap": (bootstrap, "Bootstrap Consul's ACL system"),
        "token": (lambda rest: dispatch("meshctl acl token", rest, TOKEN), "Manage tokens"),
        "policy": (lambda rest: dispatch("meshctl acl policy", rest, POLICY), "Manage policies"),
        "role": (lambda rest: dispatch("meshctl acl role", rest, ROLE), "Manage roles"),
        "set-agent-token": (set_agent_token, "Assign tokens for the agent's use"),
    })
