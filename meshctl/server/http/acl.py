"""/v1/acl: bootstrap, tokens, policies, roles; and /v1/agent/token/:type.

Endpoints translate HTTP to `acl_*` commands (acl/state.py); IDs and secrets are chosen
here (uuid4) and travel inside the command. Reads need `acl:read`, writes `acl:write`,
`token/self` only a valid token, bootstrap nothing (it works once). With ACLs disabled
every endpoint answers 401 `ACL support disabled`, as Consul does.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from meshctl.server import watchkeys as wk
from meshctl.server.acl import state as acl_state
from meshctl.server.acl.policy import PolicyError, parse_rules
from meshctl.server.http.common import (
    HTTPError,
    Request,
    Result,
    Route,
    Watch,
    blocking,
    check_dc,
    respond,
    route,
)

ROUTES: list[Route] = []
AGENT_TOKEN_TYPES = {"default": "default", "agent": "agent", "agent_recovery": "agent_recovery",
                     "agent_master": "agent_recovery", "acl_agent_token": "agent", "acl_token": "default",
                     "replication": "replication", "acl_replication_token": "replication",
                     "config_file_service_registration": "config_file_service_registration", "dns": "dns"}


def _enforcer(req: Request) -> Any:
    enforcer = req.ctx.extra.get("acl")
    if enforcer is None:
        raise HTTPError(401, "ACL support disabled")
    return enforcer


async def _apply(req: Request, command: dict[str, Any]) -> Any:
    command.setdefault("Now", time.time())
    result = await req.ctx.store.apply(command)
    if isinstance(result, dict) and "Error" in result:
        raise HTTPError(int(result.get("Status", 400)), str(result["Error"]))
    return result


async def _body(req: Request) -> dict[str, Any]:
    body = await req.json(default={})
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: body must be a JSON object")
    return body


def _read(req: Request, run: Any) -> Any:
    """An ACL read (blocking-capable on the ACL table)."""
    req.authorize("acl", "", "read")
    state = req.ctx.store.state
    return blocking(req, lambda: Result(acl_state.index(state), run(state)), Watch(keys=[wk.ACL]))


def _not_found() -> HTTPError:
    return HTTPError(403, "ACL not found")


def _uuid(value: Any, what: str) -> str:
    if not value:
        return str(uuid.uuid4())
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise HTTPError(400, f"Invalid Token: {what} is not a valid UUID") from None
    return str(value)


# ---------------------------------------------------------------------- bootstrap


@route(ROUTES, "PUT", "/v1/acl/bootstrap")
async def bootstrap(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    token = {"AccessorID": str(uuid.uuid4()), "SecretID": str(uuid.uuid4())}
    return respond(req, await _apply(req, {"Op": "acl_bootstrap", "Token": token}))


# ---------------------------------------------------------------------- tokens


def _token_body(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: body[k] for k in ("AccessorID", "SecretID", "Description", "Policies", "Roles", "ServiceIdentities",
                                "NodeIdentities", "Local") if k in body}
    for name in ("Policies", "Roles", "ServiceIdentities", "NodeIdentities"):
        if out.get(name) is not None and not isinstance(out[name], list):
            raise HTTPError(400, f"Request decode failed: {name} must be a list")
    return out


@route(ROUTES, "PUT", "/v1/acl/token")
async def token_create(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    token = _token_body(await _body(req))
    token["AccessorID"] = _uuid(token.get("AccessorID"), "AccessorID")
    token["SecretID"] = _uuid(token.get("SecretID"), "SecretID")
    return respond(req, await _apply(req, {"Op": "acl_token_set", "Token": token, "Create": True}))


@route(ROUTES, "GET", "/v1/acl/token/self")
async def token_self(req: Request) -> web.Response:
    enforcer = _enforcer(req)
    rec = enforcer.token_of(enforcer.secret_of(req))
    if rec is None:
        raise _not_found()
    return respond(req, acl_state.token_json(req.ctx.store.state, rec))


@route(ROUTES, "GET", "/v1/acl/tokens")
async def token_list(req: Request) -> web.Response:
    _enforcer(req)
    policy, role = req.param("policy"), req.param("role")

    def run(state: Any) -> list[dict[str, Any]]:
        out = []
        for rec in sorted(state.acl["Tokens"].values(), key=lambda t: (t["CreateIndex"], t["AccessorID"])):
            if policy and not any(p["ID"] == policy for p in rec["Policies"]):
                continue
            if role and not any(r["ID"] == role for r in rec["Roles"]):
                continue
            out.append(acl_state.token_json(state, rec, stub=True))
        return out

    return await _read(req, run)


@route(ROUTES, "GET", "/v1/acl/token/{id}")
async def token_read(req: Request) -> web.Response:
    _enforcer(req)
    accessor = req.match["id"]

    def run(state: Any) -> dict[str, Any]:
        rec = state.acl["Tokens"].get(accessor)
        if rec is None:
            raise _not_found()
        return acl_state.token_json(state, rec)

    return await _read(req, run)


@route(ROUTES, "PUT", "/v1/acl/token/{id}")
async def token_update(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    accessor = req.match["id"]
    token = _token_body(await _body(req))
    if token.get("AccessorID") and token["AccessorID"] != accessor:
        raise HTTPError(400, "Token Accessor ID in URL and payload do not match")
    token["AccessorID"] = accessor
    return respond(req, await _apply(req, {"Op": "acl_token_set", "Token": token, "Create": False}))


@route(ROUTES, "PUT", "/v1/acl/token/{id}/clone")
async def token_clone(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    body = await _body(req)
    source = req.ctx.store.state.acl["Tokens"].get(req.match["id"])
    if source is None:
        raise _not_found()
    if source["AccessorID"] == acl_state.ANONYMOUS_ACCESSOR:
        raise HTTPError(400, "Cannot clone the anonymous token")
    token = {k: source[k] for k in ("Policies", "Roles", "ServiceIdentities", "NodeIdentities", "Local")}
    token.update(AccessorID=str(uuid.uuid4()), SecretID=str(uuid.uuid4()),
                 Description=body.get("Description") or source["Description"])
    return respond(req, await _apply(req, {"Op": "acl_token_set", "Token": token, "Create": True}))


@route(ROUTES, "DELETE", "/v1/acl/token/{id}")
async def token_delete(req: Request) -> web.Response:
    enforcer = _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    accessor = req.match["id"]
    own = enforcer.token_of(enforcer.secret_of(req))
    if own is not None and own["AccessorID"] == accessor:
        raise HTTPError(400, "Deletion of the request's authorization token is not permitted")
    await _apply(req, {"Op": "acl_token_delete", "AccessorID": accessor})
    return respond(req, True)


# ---------------------------------------------------------------------- policies


async def _policy_body(req: Request) -> dict[str, Any]:
    body = await _body(req)
    rules = body.get("Rules") or ""
    if not isinstance(rules, str):
        raise HTTPError(400, "Request decode failed: Rules must be a string")
    try:
        parse_rules(rules)
    except PolicyError as exc:
        raise HTTPError(400, f"Invalid Policy: failed to parse rules: {exc}") from None
    dcs = body.get("Datacenters")
    if dcs is not None and not (isinstance(dcs, list) and all(isinstance(d, str) for d in dcs)):
        raise HTTPError(400, "Request decode failed: Datacenters must be a list of strings")
    return {k: body[k] for k in ("ID", "Name", "Description", "Rules", "Datacenters") if k in body}


@route(ROUTES, "PUT", "/v1/acl/policy")
async def policy_create(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    pol = await _policy_body(req)
    if pol.get("ID"):
        raise HTTPError(400, "Cannot specify an ID in Policy Creation")
    pol["ID"] = str(uuid.uuid4())
    return respond(req, await _apply(req, {"Op": "acl_policy_set", "Policy": pol, "Create": True}))


@route(ROUTES, "GET", "/v1/acl/policies")
async def policy_list(req: Request) -> web.Response:
    _enforcer(req)
    return await _read(req, lambda state: [acl_state.policy_json(p, stub=True) for p in
                                           sorted(state.acl["Policies"].values(), key=lambda p: p["Name"])])


@route(ROUTES, "GET", "/v1/acl/policy/name/{name}")
async def policy_read_by_name(req: Request) -> web.Response:
    _enforcer(req)
    name = req.match["name"]

    def run(state: Any) -> dict[str, Any]:
        pol = acl_state.policy_by_name(state, name)
        if pol is None:
            raise _not_found()
        return acl_state.policy_json(pol)

    return await _read(req, run)


@route(ROUTES, "GET", "/v1/acl/policy/{id}")
async def policy_read(req: Request) -> web.Response:
    _enforcer(req)
    pid = req.match["id"]

    def run(state: Any) -> dict[str, Any]:
        pol = state.acl["Policies"].get(pid)
        if pol is None:
            raise _not_found()
        return acl_state.policy_json(pol)

    return await _read(req, run)


@route(ROUTES, "PUT", "/v1/acl/policy/{id}")
async def policy_update(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    pid = req.match["id"]
    pol = await _policy_body(req)
    if pol.get("ID") and pol["ID"] != pid:
        raise HTTPError(400, "Policy ID in URL and payload do not match")
    old = req.ctx.store.state.acl["Policies"].get(pid)
    if old is not None:  # fields left out keep their values
        pol = {**{k: old[k] for k in ("Name", "Description", "Rules", "Datacenters")}, **pol}
    pol["ID"] = pid
    return respond(req, await _apply(req, {"Op": "acl_policy_set", "Policy": pol, "Create": False}))


@route(ROUTES, "DELETE", "/v1/acl/policy/{id}")
async def policy_delete(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    await _apply(req, {"Op": "acl_policy_delete", "ID": req.match["id"]})
    return respond(req, True)


# ---------------------------------------------------------------------- roles


async def _role_body(req: Request) -> dict[str, Any]:
    body = await _body(req)
    for name in ("Policies", "ServiceIdentities", "NodeIdentities"):
        if body.get(name) is not None and not isinstance(body[name], list):
            raise HTTPError(400, f"Request decode failed: {name} must be a list")
    return {k: body[k] for k in ("ID", "Name", "Description", "Policies", "ServiceIdentities", "NodeIdentities")
            if k in body}


@route(ROUTES, "PUT", "/v1/acl/role")
async def role_create(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    role = await _role_body(req)
    if role.get("ID"):
        raise HTTPError(400, "Cannot specify an ID in Role Creation")
    role["ID"] = str(uuid.uuid4())
    return respond(req, await _apply(req, {"Op": "acl_role_set", "Role": role, "Create": True}))


@route(ROUTES, "GET", "/v1/acl/roles")
async def role_list(req: Request) -> web.Response:
    _enforcer(req)
    policy = req.param("policy")

    def run(state: Any) -> list[dict[str, Any]]:
        roles = sorted(state.acl["Roles"].values(), key=lambda r: r["Name"])
        return [acl_state.role_json(state, r) for r in roles
                if not policy or any(p["ID"] == policy for p in r["Policies"])]

    return await _read(req, run)


@route(ROUTES, "GET", "/v1/acl/role/name/{name}")
async def role_read_by_name(req: Request) -> web.Response:
    _enforcer(req)
    name = req.match["name"]

    def run(state: Any) -> dict[str, Any]:
        role = acl_state.role_by_name(state, name)
        if role is None:
            raise _not_found()
        return acl_state.role_json(state, role)

    return await _read(req, run)


@route(ROUTES, "GET", "/v1/acl/role/{id}")
async def role_read(req: Request) -> web.Response:
    _enforcer(req)
    rid = req.match["id"]

    def run(state: Any) -> dict[str, Any]:
        role = state.acl["Roles"].get(rid)
        if role is None:
            raise _not_found()
        return acl_state.role_json(state, role)

    return await _read(req, run)


@route(ROUTES, "PUT", "/v1/acl/role/{id}")
async def role_update(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    rid = req.match["id"]
    role = await _role_body(req)
    if role.get("ID") and role["ID"] != rid:
        raise HTTPError(400, "Role ID in URL and payload do not match")
    role["ID"] = rid
    return respond(req, await _apply(req, {"Op": "acl_role_set", "Role": role, "Create": False}))


@route(ROUTES, "DELETE", "/v1/acl/role/{id}")
async def role_delete(req: Request) -> web.Response:
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")
    await _apply(req, {"Op": "acl_role_delete", "ID": req.match["id"]})
    return respond(req, True)


# ---------------------------------------------------------------------- agent tokens


@route(ROUTES, "PUT", "/v1/agent/token/{type}")
async def agent_token(req: Request) -> web.Response:
    """Set one of this agent's tokens at runtime (default, agent, dns ...); not persisted."""
    enforcer = _enforcer(req)
    req.authorize("acl", "", "write")
    kind = AGENT_TOKEN_TYPES.get(req.match["type"])
    if kind is None:
        raise HTTPError(404, f"Token {req.match['type']!r} is unknown")
    body = await _body(req)
    token = body.get("Token")
    if not isinstance(token, str):
        raise HTTPError(400, "Request decode failed: Token must be a string")
    enforcer.settings.tokens[kind] = token
    hook = req.ctx.extra.get("acl_tokens_changed")
    if hook is not None:
        hook()
    return respond(req, None)
