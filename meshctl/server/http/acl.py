"""/v1/acl: bootstrap, tokens, policies, roles; and /v1/agent/token/:type.

Endpoints translate HTTP to `acl_*` commands (acl/state.py); IDs and secrets are chosen
here (uuid4) and travel inside the command. Reads need `acl:read`, writes `acl:write`,
`token/self` only a valid token, bootstrap nothing (it works once). With ACLs disabled
every endpoint answers 401 `ACL support disabled`, as Consul does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from meshctl.durations import format_duration
from meshctl.server import watchkeys as wk
from meshctl.server.acl import state as acl_state
from meshctl.server.acl import templated
from meshctl.server.acl.enforce import ACLEnforcer
from meshctl.server.acl.policy import PolicyError, parse_rules
from meshctl.server.commands import (
    ACLBootstrap,
    ACLPolicyDelete,
    ACLPolicySet,
    ACLRoleDelete,
    ACLRoleSet,
    ACLTokenDelete,
    ACLTokenSet,
    Command,
    TokenDef,
    TokenIDs,
    with_now,
)
from meshctl.server.http.common import (
    Handler,
    HTTPError,
    Request,
    Result,
    Route,
    Watch,
    blocking,
    check_dc,
    duration_ns,
    respond,
    route,
)

ROUTES: list[Route] = []
AGENT_TOKEN_TYPES = {"default": "default", "agent": "agent", "agent_recovery": "agent_recovery",
                     "agent_master": "agent_recovery", "acl_agent_token": "agent", "acl_token": "default",
                     "replication": "replication", "acl_replication_token": "replication",
                     "config_file_service_registration": "config_file_service_registration", "dns": "dns"}


def _enforcer(req: Request) -> ACLEnforcer:
    enforcer = req.ctx.acl
    if not isinstance(enforcer, ACLEnforcer):
        raise HTTPError(401, "ACL support disabled")
    return enforcer


async def _apply(req: Request, command: Command) -> Any:
    result = await req.ctx.store.apply(with_now(command, time.time()))
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
    token: TokenIDs = {"AccessorID": str(uuid.uuid4()), "SecretID": str(uuid.uuid4())}
    return respond(req, await _apply(req, ACLBootstrap(token)))


# ---------------------------------------------------------------------- what each kind's body holds


def _token_body(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: body[k] for k in ("AccessorID", "SecretID", "Description", "Policies", "Roles", "ServiceIdentities",
                                "NodeIdentities", "TemplatedPolicies", "Local") if k in body}
    # ExpirationTTL: Go's time.Duration (integer nanoseconds) or a duration string; turned into
    # ExpirationTime (RFC 3339) by _token_expiration, which knows the time and the limits
    if body.get("ExpirationTTL") not in (None, 0, ""):
        out["ExpirationTTL"] = duration_ns(body["ExpirationTTL"], "ExpirationTTL")
    if body.get("ExpirationTime"):
        try:
            out["ExpirationTime"] = acl_state.parse_time(str(body["ExpirationTime"]))
        except ValueError:
            raise HTTPError(400, f"Request decode failed: invalid ExpirationTime {body['ExpirationTime']!r}") \
                from None
    for name in ("Policies", "Roles", "ServiceIdentities", "NodeIdentities"):
        if out.get(name) is not None and not isinstance(out[name], list):
            raise HTTPError(400, f"Request decode failed: {name} must be a list")
    return out


def _policy_body(body: dict[str, Any]) -> dict[str, Any]:
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


def _role_body(body: dict[str, Any]) -> dict[str, Any]:
    for name in ("Policies", "ServiceIdentities", "NodeIdentities"):
        if body.get(name) is not None and not isinstance(body[name], list):
            raise HTTPError(400, f"Request decode failed: {name} must be a list")
    return {k: body[k] for k in ("ID", "Name", "Description", "Policies", "ServiceIdentities", "NodeIdentities",
                                 "TemplatedPolicies") if k in body}


def _token_ids(token: dict[str, Any]) -> None:
    """A new token keeps the AccessorID and SecretID it was given (if UUIDs); missing ones are generated."""
    token["AccessorID"] = _uuid(token.get("AccessorID"), "AccessorID")
    token["SecretID"] = _uuid(token.get("SecretID"), "SecretID")


def _token_expiration(req: Request, token: dict[str, Any], create: bool) -> None:
    """ExpirationTTL / ExpirationTime as Consul's ACL.TokenSet checks them; the token's ExpirationTime set.

    A token expires within [token_min_expiration_ttl, token_max_expiration_ttl] of its creation
    (1m and 24h by default); the expiration of an existing token cannot change.
    """
    ttl_ns = token.pop("ExpirationTTL", 0)
    when = token.pop("ExpirationTime", None)
    if not create:
        old = req.ctx.store.state.acl["Tokens"].get(token.get("AccessorID", ""))
        old_when = acl_state.parse_time(old["ExpirationTime"]) if old and old.get("ExpirationTime") else None
        if ttl_ns or (when is not None and when != old_when):
            raise HTTPError(400, f"Cannot change expiration time of {token.get('AccessorID', '')}")
        return
    if ttl_ns < 0:
        raise HTTPError(400, f"Token Expiration TTL '{format_duration(ttl_ns / 1e9)}' should be > 0")
    if ttl_ns and when is not None:
        raise HTTPError(400, "Token Expiration TTL and Expiration Time cannot both be set")
    now = time.time()
    if ttl_ns:
        when = now + ttl_ns / 1e9
    if when is None:
        return
    settings = _enforcer(req).settings
    expires_in = when - now
    if expires_in < 0:
        raise HTTPError(400, "ExpirationTime cannot be before CreateTime")
    if expires_in > settings.token_max_expiration_ttl:
        raise HTTPError(400, f"ExpirationTime cannot be more than {format_duration(settings.token_max_expiration_ttl)}"
                             f" in the future (was {format_duration(round(expires_in, 3))})")
    if expires_in < settings.token_min_expiration_ttl:
        raise HTTPError(400, f"ExpirationTime cannot be less than {format_duration(settings.token_min_expiration_ttl)}"
                             f" in the future (was {format_duration(round(expires_in, 3))})")
    token["ExpirationTime"] = acl_state.format_time(when)


def _token_expired(rec: dict[str, Any]) -> bool:
    return acl_state.expired(rec, time.time())


def _generated_id(what: str) -> Callable[[dict[str, Any]], None]:
    """A new policy or role gets a generated ID; giving one is an error."""

    def assign(rec: dict[str, Any]) -> None:
        if rec.get("ID"):
            raise HTTPError(400, f"Cannot specify an ID in {what} Creation")
        rec["ID"] = str(uuid.uuid4())

    return assign


def _not_own_token(req: Request, accessor: str) -> None:
    enforcer = _enforcer(req)
    own = enforcer.token_of(enforcer.secret_of(req))
    if own is not None and own["AccessorID"] == accessor:
        raise HTTPError(400, "Deletion of the request's authorization token is not permitted")


# ---------------------------------------------------------------------- the kinds


Render = Callable[[Any, dict[str, Any]], dict[str, Any]]  # (state, record) -> JSON


@dataclass(frozen=True)
class Kind:
    """One ACL object kind: its state table, JSON, body rules and Consul's error texts.

    Paths: PUT /v1/acl/{name}; GET /v1/acl/{table, lowercase}; GET|PUT|DELETE /v1/acl/{name}/{id};
    GET /v1/acl/{name}/name/{name} when `by_name` is set. Commands: acl_{name}_set, acl_{name}_delete.
    """

    name: str
    table: str  # state.acl[table], records keyed by `id_field`
    id_field: str
    parse: Callable[[dict[str, Any]], dict[str, Any]]  # request body -> record fields
    new_ids: Callable[[dict[str, Any]], None]  # give a created record its IDs
    render: Render
    list_render: Render
    list_order: Callable[[dict[str, Any]], Any]
    mismatch: str  # 400 text: the body's ID is not the URL's
    list_filters: tuple[tuple[str, str], ...] = ()  # (?param, link list): only records linked to that ID
    by_name: Callable[[Any, str], dict[str, Any] | None] | None = None
    keep_on_update: tuple[str, ...] = ()  # fields an update leaves out keep their values
    before_delete: Callable[[Request, str], None] | None = None
    missing: str = ""  # the 404 text of a read that finds nothing (none: Consul's 403 "ACL not found")
    on_write: Callable[[Request, dict[str, Any], bool], None] | None = None  # (request, record, create)
    hidden: Callable[[dict[str, Any]], bool] | None = None  # records reads do not show (expired tokens)

    def not_found(self) -> HTTPError:
        return HTTPError(404, self.missing) if self.missing else _not_found()

    @property
    def key(self) -> str:
        """The record's key in commands: Token, Policy, Role."""
        return self.name.capitalize()


KINDS = (
    Kind("token", "Tokens", "AccessorID", _token_body, _token_ids,
         render=lambda state, rec: acl_state.token_json(state, rec),
         list_render=lambda state, rec: acl_state.token_json(state, rec, stub=True),
         list_order=lambda rec: (rec["CreateIndex"], rec["AccessorID"]),
         mismatch="Token Accessor ID in URL and payload do not match",
         list_filters=(("policy", "Policies"), ("role", "Roles")), before_delete=_not_own_token,
         on_write=_token_expiration, hidden=_token_expired),
    Kind("policy", "Policies", "ID", _policy_body, _generated_id("Policy"),
         render=lambda state, rec: acl_state.policy_json(rec),
         list_render=lambda state, rec: acl_state.policy_json(rec, stub=True),
         list_order=lambda rec: rec["Name"], mismatch="Policy ID in URL and payload do not match",
         by_name=acl_state.policy_by_name, keep_on_update=("Name", "Description", "Rules", "Datacenters"),
         missing="Requested policy does not exist"),
    Kind("role", "Roles", "ID", _role_body, _generated_id("Role"),
         render=acl_state.role_json, list_render=acl_state.role_json,
         list_order=lambda rec: rec["Name"], mismatch="Role ID in URL and payload do not match",
         list_filters=(("policy", "Policies"),), by_name=acl_state.role_by_name,
         missing="Requested role does not exist"),
)


# ---------------------------------------------------------------------- token-only endpoints


@route(ROUTES, "GET", "/v1/acl/token/self")  # before /v1/acl/token/{id}
async def token_self(req: Request) -> web.Response:
    enforcer = _enforcer(req)
    rec = enforcer.token_of(enforcer.secret_of(req))
    if rec is None:
        raise _not_found()
    return respond(req, acl_state.token_json(req.ctx.store.state, rec))


@route(ROUTES, "PUT", "/v1/acl/token/{id}/clone")
async def token_clone(req: Request) -> web.Response:
    _writing(req)
    body = await _body(req)
    source = req.ctx.store.state.acl["Tokens"].get(req.match["id"])
    if source is None:
        raise _not_found()
    if source["AccessorID"] == acl_state.ANONYMOUS_ACCESSOR:
        raise HTTPError(400, "Cannot clone the anonymous token")
    token = {k: source[k] for k in ("Policies", "Roles", "ServiceIdentities", "NodeIdentities", "TemplatedPolicies",
                                    "Local") if k in source}
    token.update(AccessorID=str(uuid.uuid4()), SecretID=str(uuid.uuid4()),
                 Description=body.get("Description") or source["Description"])
    return respond(req, await _apply(req, ACLTokenSet(cast(TokenDef, token), create=True)))


# ---------------------------------------------------------------------- create, list, read, update, delete


def _writing(req: Request) -> None:
    """What every ACL write checks first: ACLs on, this datacenter, acl:write."""
    _enforcer(req)
    check_dc(req)
    req.authorize("acl", "", "write")


def _reader(kind: Kind, param: str, find: Callable[[Any, str], dict[str, Any] | None]) -> Handler:
    """GET one record of `kind`, found by the URL's `param` (a blocking read; `kind.not_found()` if none)."""

    async def read(req: Request) -> web.Response:
        _enforcer(req)
        value = req.match[param]

        def run(state: Any) -> dict[str, Any]:
            rec = find(state, value)
            if rec is None or (kind.hidden is not None and kind.hidden(rec)):
                raise kind.not_found()
            return kind.render(state, rec)

        return await _read(req, run)

    return read


# each kind's commands: set (record, create) and delete (ID)
_SET_COMMANDS: dict[str, Callable[[Any, bool], Command]] = {
    "token": ACLTokenSet, "policy": ACLPolicySet, "role": ACLRoleSet}
_DELETE_COMMANDS: dict[str, Callable[[str], Command]] = {
    "token": ACLTokenDelete, "policy": ACLPolicyDelete, "role": ACLRoleDelete}


def add_crud(kind: Kind) -> None:
    """Register `kind`'s create, list, read (by ID and by name), update and delete on ROUTES."""
    one = f"/v1/acl/{kind.name}"
    set_command, delete_command = _SET_COMMANDS[kind.name], _DELETE_COMMANDS[kind.name]

    async def create(req: Request) -> web.Response:
        _writing(req)
        rec = kind.parse(await _body(req))
        kind.new_ids(rec)
        if kind.on_write is not None:
            kind.on_write(req, rec, True)
        return respond(req, await _apply(req, set_command(rec, True)))

    async def list_(req: Request) -> web.Response:
        _enforcer(req)
        wanted = [(links, value) for param, links in kind.list_filters if (value := req.param(param))]

        def run(state: Any) -> list[dict[str, Any]]:
            return [kind.list_render(state, rec) for rec in sorted(state.acl[kind.table].values(), key=kind.list_order)
                    if all(any(link["ID"] == value for link in rec[links]) for links, value in wanted)
                    and not (kind.hidden is not None and kind.hidden(rec))]

        return await _read(req, run)

    async def update(req: Request) -> web.Response:
        _writing(req)
        rid = req.match["id"]
        rec = kind.parse(await _body(req))
        if rec.get(kind.id_field) and rec[kind.id_field] != rid:
            raise HTTPError(400, kind.mismatch)
        old = req.ctx.store.state.acl[kind.table].get(rid) if kind.keep_on_update else None
        if old is not None:
            rec = {**{k: old[k] for k in kind.keep_on_update}, **rec}
        rec[kind.id_field] = rid
        if kind.on_write is not None:
            kind.on_write(req, rec, False)
        return respond(req, await _apply(req, set_command(rec, False)))

    async def delete(req: Request) -> web.Response:
        _writing(req)
        rid = req.match["id"]
        if kind.before_delete is not None:
            kind.before_delete(req, rid)
        await _apply(req, delete_command(rid))
        return respond(req, True)

    by_id = _reader(kind, "id", lambda state, rid: state.acl[kind.table].get(rid))
    endpoints: list[tuple[str, str, str, Handler]] = [
        ("PUT", one, "create", create), ("GET", f"/v1/acl/{kind.table.lower()}", "list", list_)]
    if kind.by_name is not None:
        endpoints.append(("GET", f"{one}/name/{{name}}", "read_by_name", _reader(kind, "name", kind.by_name)))
    endpoints += [("GET", f"{one}/{{id}}", "read", by_id), ("PUT", f"{one}/{{id}}", "update", update),
                  ("DELETE", f"{one}/{{id}}", "delete", delete)]
    for method, path, verb, handler in endpoints:
        handler.__name__ = f"{kind.name}_{verb}"
        route(ROUTES, method, path)(handler)


for _kind in KINDS:
    add_crud(_kind)


# ---------------------------------------------------------------------- templated policies (1.17+)


@route(ROUTES, "GET", "/v1/acl/templated-policies")
async def templated_policies(req: Request) -> web.Response:
    _enforcer(req)
    req.authorize("acl", "", "read")
    return respond(req, {name: t.json() for name, t in sorted(templated.TEMPLATES.items())})


@route(ROUTES, "GET", "/v1/acl/templated-policy/name/{name:.*}")
async def templated_policy(req: Request) -> web.Response:
    _enforcer(req)
    req.authorize("acl", "", "read")
    template = templated.TEMPLATES.get(req.match["name"])
    if template is None:
        raise HTTPError(404, f"Invalid templated policy Name: {req.match['name']}")
    return respond(req, template.json())


# ---------------------------------------------------------------------- auth methods (not supported)

NO_AUTH_METHODS = ("ACL auth methods, binding rules and login/logout are not supported by meshctl: "
                   "create tokens with /v1/acl/token")


async def _no_auth_methods(req: Request) -> web.Response:
    """Consul's auth methods (kubernetes, jwt, oidc) and binding rules: refused, never half-done."""
    _enforcer(req)
    raise HTTPError(400, NO_AUTH_METHODS)


for _method, _path in (("PUT", "/v1/acl/auth-method"), ("GET", "/v1/acl/auth-methods"),
                       ("GET,PUT,DELETE", "/v1/acl/auth-method/{name}"), ("PUT", "/v1/acl/binding-rule"),
                       ("GET", "/v1/acl/binding-rules"), ("GET,PUT,DELETE", "/v1/acl/binding-rule/{id}"),
                       ("POST", "/v1/acl/login"), ("POST", "/v1/acl/logout")):
    route(ROUTES, _method, _path)(_no_auth_methods)


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
    hook = req.ctx.hooks.acl_tokens_changed
    if hook is not None:
        hook()
    return respond(req, None)
