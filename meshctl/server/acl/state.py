"""ACL data in the replicated state: tokens, policies, roles, as pure functions over `state.acl`.

`State` keeps one dict, `state.acl` (see `empty()`), and hands every ACL command
(`ACLInit`, `ACLTokenSet` ... in meshctl/server/commands.py) to `apply(state, command)`; a write
takes its index from `state.bump(wk.ACL)`. Everything the leader chooses (accessor and secret IDs, the time)
arrives inside the command, so replicas stay identical. Expected failures (a name already
in use, a missing policy, bootstrap done) are not exceptions: the result is
`{"Error": text, "Status": http_status}`, so they travel through Raft like any result.

Records are kept as Consul shows them (AccessorID, SecretID, Policies [{ID, Name}] ...);
reads resolve link names at read time and drop links to deleted policies and roles.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from meshctl.server import watchkeys as wk
from meshctl.server.acl import templated
from meshctl.server.commands import (
    ACLBootstrap,
    ACLCommand,
    ACLInit,
    ACLPolicyDelete,
    ACLPolicySet,
    ACLRoleDelete,
    ACLRoleSet,
    ACLTokenDelete,
    ACLTokenSet,
    Command,
)

if TYPE_CHECKING:
    from meshctl.server.state import State

GLOBAL_MANAGEMENT_ID = "00000000-0000-0000-0000-000000000001"
GLOBAL_MANAGEMENT_NAME = "global-management"
ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"
ANONYMOUS_SECRET = "anonymous"
OPS = ("acl_init", "acl_bootstrap", "acl_token_set", "acl_token_delete", "acl_policy_set", "acl_policy_delete",
       "acl_role_set", "acl_role_delete")
_NAME_RE = re.compile(r"^[A-Za-z0-9\-_]{1,128}$")


def empty() -> dict[str, Any]:
    """The ACL part of a fresh state."""
    return {"Tokens": {}, "Policies": {}, "Roles": {}, "BootstrapIndex": 0, "_secrets": {}}


def snapshot(acl: dict[str, Any]) -> dict[str, Any]:
    """Plain data for a snapshot (the secret index is rebuilt on restore)."""
    return {k: v for k, v in acl.items() if not k.startswith("_")}


def restore(data: dict[str, Any] | None) -> dict[str, Any]:
    """The ACL part of a restored snapshot (older snapshots have none)."""
    out = empty()
    if data:
        out.update(copy.deepcopy({k: v for k, v in data.items() if not k.startswith("_")}))
    out["_secrets"] = {t["SecretID"]: a for a, t in out["Tokens"].items()}
    return out


def _error(text: str, status: int = 400) -> dict[str, Any]:
    return {"Error": text, "Status": status}


def _time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hash(record: dict[str, Any], fields: tuple[str, ...]) -> str:
    data = json.dumps({f: record.get(f) for f in fields}, sort_keys=True).encode()
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# ---------------------------------------------------------------------- applying


def apply(state: State, cmd: ACLCommand | Command) -> Any:
    """Apply one ACL command to `state.acl`; bumps the ACL table index on change."""
    return _HANDLERS[type(cmd)](state, cmd)


def _init(state: State, cmd: ACLInit) -> dict[str, Any]:
    """The built-ins (global-management policy, anonymous token) and the initial management token."""
    from meshctl.server.acl.policy import GLOBAL_MANAGEMENT_RULES

    acl = state.acl
    now = _time(float(cmd.now or 0))
    if GLOBAL_MANAGEMENT_ID not in acl["Policies"]:
        index = state.bump(wk.ACL)
        pol = {"ID": GLOBAL_MANAGEMENT_ID, "Name": GLOBAL_MANAGEMENT_NAME,
               "Description": "Builtin Policy that grants unlimited access", "Rules": GLOBAL_MANAGEMENT_RULES,
               "Datacenters": None, "CreateIndex": index, "ModifyIndex": index}
        pol["Hash"] = _hash(pol, ("Name", "Description", "Rules", "Datacenters"))
        acl["Policies"][GLOBAL_MANAGEMENT_ID] = pol
    if ANONYMOUS_ACCESSOR not in acl["Tokens"]:
        _store_token(state, {"AccessorID": ANONYMOUS_ACCESSOR, "SecretID": ANONYMOUS_SECRET,
                             "Description": "Anonymous Token", "Policies": [], "Local": False}, now)
    initial = cmd.initial_management
    if initial and initial.get("SecretID") and initial["SecretID"] not in acl["_secrets"]:
        accessor = initial.get("AccessorID")
        if not accessor or accessor in acl["Tokens"]:
            return _error("Invalid Token: AccessorID is already in use")
        _store_token(state, {"AccessorID": accessor, "SecretID": initial["SecretID"],
                             "Description": "Initial Management Token",
                             "Policies": [{"ID": GLOBAL_MANAGEMENT_ID, "Name": GLOBAL_MANAGEMENT_NAME}],
                             "Local": False}, now)
        if not acl["BootstrapIndex"]:  # the configured token consumes the bootstrap, as Consul's does
            acl["BootstrapIndex"] = state.write_index
    return {"OK": True}


def _bootstrap(state: State, cmd: ACLBootstrap) -> dict[str, Any]:
    acl = state.acl
    if acl["BootstrapIndex"]:
        return _error(f"Permission denied: ACL bootstrap no longer allowed (reset index: {acl['BootstrapIndex']})",
                      403)
    _init(state, ACLInit(now=cmd.now))
    token = dict(cmd.token, Description="Bootstrap Token (Global Management)", Local=False,
                 Policies=[{"ID": GLOBAL_MANAGEMENT_ID, "Name": GLOBAL_MANAGEMENT_NAME}])
    if token["AccessorID"] in acl["Tokens"] or token["SecretID"] in acl["_secrets"]:
        return _error("Invalid Token: AccessorID or SecretID is already in use")
    stored = _store_token(state, token, _time(float(cmd.now or 0)))
    acl["BootstrapIndex"] = stored["CreateIndex"]
    return token_json(state, stored)


def _links(state: State, table: str, links: Any, what: str) -> list[dict[str, str]] | dict[str, Any]:
    """Policy or role links by ID or Name -> [{ID, Name}]; an error dict if one does not exist."""
    records = state.acl[table]
    out: list[dict[str, str]] = []
    for link in links or []:
        if not isinstance(link, dict):
            return _error(f"Invalid {what} link: {link!r}")
        rec = records.get(link.get("ID") or "")
        if rec is None and link.get("Name"):
            rec = next((r for r in records.values() if r["Name"] == link["Name"]), None)
        if rec is None:
            ref = link.get("ID") or link.get("Name") or ""
            return _error(f"ACL {what} with {'ID' if link.get('ID') else 'name'} {ref!r} not found")
        if not any(o["ID"] == rec["ID"] for o in out):
            out.append({"ID": rec["ID"], "Name": rec["Name"]})
    return out


def _identities(token: dict[str, Any]) -> dict[str, Any] | None:
    for ident in token.get("ServiceIdentities") or []:
        if not isinstance(ident, dict) or not ident.get("ServiceName"):
            return _error("Service identity is missing the service name field on this token")
    for ident in token.get("NodeIdentities") or []:
        if not isinstance(ident, dict) or not ident.get("NodeName"):
            return _error("Node identity is missing the node name field on this token")
    bad = templated.validate(token.get("TemplatedPolicies"))
    return _error(bad) if bad else None


def _templated_into(rec: dict[str, Any], body: dict[str, Any]) -> tuple[str, ...]:
    """Add a token's or role's TemplatedPolicies to its record when it has any; the fields to hash."""
    links = templated.normalised(body.get("TemplatedPolicies"))
    if not links:
        return ()
    rec["TemplatedPolicies"] = links
    return ("TemplatedPolicies",)


def _store_token(state: State, token: dict[str, Any], create_time: str,
                 old: dict[str, Any] | None = None) -> dict[str, Any]:
    acl = state.acl
    index = state.bump(wk.ACL)
    rec = {
        "AccessorID": token["AccessorID"],
        "SecretID": token["SecretID"],
        "Description": token.get("Description") or "",
        "Policies": list(token.get("Policies") or []),
        "Roles": list(token.get("Roles") or []),
        "ServiceIdentities": list(token.get("ServiceIdentities") or []),
        "NodeIdentities": list(token.get("NodeIdentities") or []),
        "Local": bool(token.get("Local")),
        "ExpirationTime": old.get("ExpirationTime") if old else token.get("ExpirationTime"),  # never changes
        "CreateTime": old["CreateTime"] if old else create_time,
        "CreateIndex": old["CreateIndex"] if old else index,
        "ModifyIndex": index,
    }
    # stored (and hashed) only when present: records without them stay as older servers write them
    extra = _templated_into(rec, token)
    rec["Hash"] = _hash(rec, ("Description", "Policies", "Roles", "ServiceIdentities", "NodeIdentities", "Local",
                              *extra))
    acl["Tokens"][rec["AccessorID"]] = rec
    acl["_secrets"][rec["SecretID"]] = rec["AccessorID"]
    return rec


def _token_set(state: State, cmd: ACLTokenSet) -> dict[str, Any]:
    acl = state.acl
    token: dict[str, Any] = dict(cmd.token)
    accessor, secret = token.get("AccessorID") or "", token.get("SecretID") or ""
    old = acl["Tokens"].get(accessor)
    if cmd.create:
        if old is not None:
            return _error("Invalid Token: AccessorID is already in use")
        if secret in acl["_secrets"] or secret in (ANONYMOUS_SECRET,):
            return _error("Invalid Token: SecretID is already in use")
    else:
        if old is None:
            return _error(f"Cannot find token {accessor!r}", 404 if cmd.not_found_404 else 400)
        if secret and secret != old["SecretID"]:
            return _error("Changing a tokens SecretID is not permitted")
        token["SecretID"] = old["SecretID"]
        if accessor == ANONYMOUS_ACCESSOR:
            token["Description"] = token.get("Description") or old["Description"]
    bad = _identities(token)
    if bad:
        return bad
    policies = _links(state, "Policies", token.get("Policies"), "policy")
    if isinstance(policies, dict):
        return policies
    roles = _links(state, "Roles", token.get("Roles"), "role")
    if isinstance(roles, dict):
        return roles
    token["Policies"], token["Roles"] = policies, roles
    stored = _store_token(state, token, _time(float(cmd.now or 0)), old)
    return token_json(state, stored)


def _token_delete(state: State, cmd: ACLTokenDelete) -> dict[str, Any]:
    acl = state.acl
    accessor = cmd.accessor_id
    if accessor == ANONYMOUS_ACCESSOR:
        return _error("Delete operation not permitted on the anonymous token")
    rec = acl["Tokens"].pop(accessor, None)
    if rec is not None:
        acl["_secrets"].pop(rec["SecretID"], None)
        state.bump(wk.ACL)
    return {"OK": True}


def _check_named(table: dict[str, Any], kind: str, rid: str, name: str, old: dict[str, Any] | None,
                 create: bool) -> dict[str, Any] | None:
    """Consul's checks on a policy or role write: exists (or not), valid and unique name."""
    if not create and old is None:
        return _error(f"Cannot find {kind.lower()} {rid!r}")
    if create and old is not None:
        return _error(f"Invalid {kind}: ID is already in use")
    if not _NAME_RE.match(name):
        return _error(f"Invalid {kind}: invalid Name. Only alphanumeric characters, '-' and '_' are allowed")
    if any(r["Name"] == name and r["ID"] != rid for r in table.values()):
        return _error(f"Invalid {kind}: A {kind} with Name {name!r} already exists")
    return None


def _policy_set(state: State, cmd: ACLPolicySet) -> dict[str, Any]:
    acl = state.acl
    pol: dict[str, Any] = dict(cmd.policy)
    pid, name = pol.get("ID") or "", pol.get("Name") or ""
    old = acl["Policies"].get(pid)
    bad = _check_named(acl["Policies"], "Policy", pid, name, old, bool(cmd.create))
    if bad:
        return bad
    if pid == GLOBAL_MANAGEMENT_ID:
        if old is not None and pol.get("Rules", old["Rules"]) != old["Rules"]:
            return _error("Changing the Rules for the builtin global-management policy is not permitted")
        if pol.get("Datacenters"):
            return _error("Changing the Datacenters of the builtin global-management policy is not permitted")
    index = state.bump(wk.ACL)
    rec = {"ID": pid, "Name": name, "Description": pol.get("Description") or "", "Rules": pol.get("Rules") or "",
           "Datacenters": pol.get("Datacenters") or None,
           "CreateIndex": old["CreateIndex"] if old else index, "ModifyIndex": index}
    rec["Hash"] = _hash(rec, ("Name", "Description", "Rules", "Datacenters"))
    acl["Policies"][pid] = rec
    return dict(rec)


def _policy_delete(state: State, cmd: ACLPolicyDelete) -> dict[str, Any]:
    pid = cmd.id
    if pid == GLOBAL_MANAGEMENT_ID:
        return _error("Delete operation not permitted on the builtin global-management policy")
    if state.acl["Policies"].pop(pid, None) is not None:
        state.bump(wk.ACL)
    return {"OK": True}


def _role_set(state: State, cmd: ACLRoleSet) -> dict[str, Any]:
    acl = state.acl
    role: dict[str, Any] = dict(cmd.role)
    rid, name = role.get("ID") or "", role.get("Name") or ""
    old = acl["Roles"].get(rid)
    bad = _check_named(acl["Roles"], "Role", rid, name, old, bool(cmd.create))
    if bad:
        return bad
    bad = _identities(role)
    if bad:
        return bad
    policies = _links(state, "Policies", role.get("Policies"), "policy")
    if isinstance(policies, dict):
        return policies
    index = state.bump(wk.ACL)
    rec = {"ID": rid, "Name": name, "Description": role.get("Description") or "", "Policies": policies,
           "ServiceIdentities": list(role.get("ServiceIdentities") or []),
           "NodeIdentities": list(role.get("NodeIdentities") or []),
           "CreateIndex": old["CreateIndex"] if old else index, "ModifyIndex": index}
    extra = _templated_into(rec, role)
    rec["Hash"] = _hash(rec, ("Name", "Description", "Policies", "ServiceIdentities", "NodeIdentities", *extra))
    acl["Roles"][rid] = rec
    return role_json(state, rec)


def _role_delete(state: State, cmd: ACLRoleDelete) -> dict[str, Any]:
    if state.acl["Roles"].pop(cmd.id, None) is not None:
        state.bump(wk.ACL)
    return {"OK": True}


_HANDLERS: dict[type[Command], Any] = {
    ACLInit: _init,
    ACLBootstrap: _bootstrap,
    ACLTokenSet: _token_set,
    ACLTokenDelete: _token_delete,
    ACLPolicySet: _policy_set,
    ACLPolicyDelete: _policy_delete,
    ACLRoleSet: _role_set,
    ACLRoleDelete: _role_delete,
}


# ---------------------------------------------------------------------- reads


def index(state: State) -> int:
    """The ACL table's index (changes on every ACL write)."""
    return max(state.table_index.get(wk.ACL, 1), 1)


def token_by_secret(state: State, secret: str) -> dict[str, Any] | None:
    accessor = state.acl["_secrets"].get(secret)
    return state.acl["Tokens"].get(accessor) if accessor else None


@functools.lru_cache(maxsize=1024)
def parse_time(text: str) -> float:
    """An RFC 3339 time (Go's, nanoseconds included) as a Unix time; ValueError if it is none."""
    head, dot, frac = text.partition(".")
    if dot:  # Python parses at most microseconds: cut the fraction, keep the zone
        cut = len(frac) - len(frac.lstrip("0123456789"))
        text = f"{head}.{frac[:cut][:6].ljust(6, '0')}{frac[cut:]}"
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"no time zone in {text!r}")
    return when.timestamp()


def format_time(when: float) -> str:
    """A Unix time as Consul writes token times (RFC 3339, UTC)."""
    return _time(when)


def expired(rec: dict[str, Any], now: float) -> bool:
    """Has the token passed its ExpirationTime? Expired tokens resolve as unknown until reaped."""
    when = rec.get("ExpirationTime")
    return bool(when) and parse_time(when) <= now


def expired_tokens(state: State, now: float) -> list[str]:
    """The AccessorIDs of the tokens past their ExpirationTime (the reaper deletes them)."""
    return [a for a, rec in state.acl["Tokens"].items() if expired(rec, now)]


def _live_links(state: State, table: str, links: list[dict[str, str]]) -> list[dict[str, str]]:
    records = state.acl[table]
    return [{"ID": link["ID"], "Name": records[link["ID"]]["Name"]} for link in links if link["ID"] in records]


def token_json(state: State, rec: dict[str, Any], stub: bool = False) -> dict[str, Any]:
    """A token as Consul's API shows it (links resolved; empty lists omitted)."""
    out: dict[str, Any] = {"AccessorID": rec["AccessorID"], "SecretID": rec["SecretID"],
                           "Description": rec["Description"]}
    policies = _live_links(state, "Policies", rec["Policies"])
    roles = _live_links(state, "Roles", rec["Roles"])
    for name, value in (("Policies", policies), ("Roles", roles), ("ServiceIdentities", rec["ServiceIdentities"]),
                        ("NodeIdentities", rec["NodeIdentities"]), ("TemplatedPolicies", rec.get("TemplatedPolicies"))):
        if value:
            out[name] = copy.deepcopy(value)
    if rec.get("ExpirationTime"):
        out["ExpirationTime"] = rec["ExpirationTime"]
    out.update({"Local": rec["Local"], "CreateTime": rec["CreateTime"], "Hash": rec["Hash"],
                "CreateIndex": rec["CreateIndex"], "ModifyIndex": rec["ModifyIndex"]})
    if stub:
        out["Legacy"] = False
    return out


def policy_json(rec: dict[str, Any], stub: bool = False) -> dict[str, Any]:
    """A policy (the list stub has no Rules)."""
    out = dict(rec)
    if stub:
        out.pop("Rules", None)
    return out


def role_json(state: State, rec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ID": rec["ID"], "Name": rec["Name"], "Description": rec["Description"]}
    policies = _live_links(state, "Policies", rec["Policies"])
    for name, value in (("Policies", policies), ("ServiceIdentities", rec["ServiceIdentities"]),
                        ("NodeIdentities", rec["NodeIdentities"]), ("TemplatedPolicies", rec.get("TemplatedPolicies"))):
        if value:
            out[name] = copy.deepcopy(value)
    out.update({"Hash": rec["Hash"], "CreateIndex": rec["CreateIndex"], "ModifyIndex": rec["ModifyIndex"]})
    return out


def policy_by_name(state: State, name: str) -> dict[str, Any] | None:
    return next((p for p in state.acl["Policies"].values() if p["Name"] == name), None)


def role_by_name(state: State, name: str) -> dict[str, Any] | None:
    return next((r for r in state.acl["Roles"].values() if r["Name"] == name), None)


def token_sources(state: State, rec: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """What a token's permissions come from: (policy rule texts, service identities, node identities)."""
    policies = state.acl["Policies"]
    roles = state.acl["Roles"]
    rule_texts: list[str] = templated.rules_of(rec.get("TemplatedPolicies") or [])  # older records have none
    services = [i["ServiceName"] for i in rec["ServiceIdentities"]]
    nodes = [i["NodeName"] for i in rec["NodeIdentities"]]
    seen: set[str] = set()
    links = list(rec["Policies"])
    for link in rec["Roles"]:
        role = roles.get(link["ID"])
        if role is not None:
            links.extend(role["Policies"])
            services += [i["ServiceName"] for i in role["ServiceIdentities"]]
            nodes += [i["NodeName"] for i in role["NodeIdentities"]]
            rule_texts += templated.rules_of(role.get("TemplatedPolicies") or [])
    for link in links:
        pol = policies.get(link["ID"])
        if pol is not None and pol["ID"] not in seen:
            seen.add(pol["ID"])
            rule_texts.append(pol["Rules"])
    return rule_texts, services, nodes
