"""/v1/query: prepared queries (create, list, read, update, delete, execute, explain).

Definitions are stored through the replicated `QuerySet` / `QueryDelete` commands
(state/queries.py holds the rules of the table, lookup, templates and local execution). Here:
the body with Consul's defaults and checks (errors of Consul's Apply RPC answer 500, as its
HTTP API does; a body that does not decode, 400), the ACL rules, and what execution adds to
the local result:

* the nodes are filtered with the query's captured `Token`, else the caller's token;
* shuffled, then sorted by distance from `?near=` (else the query's `Near`; `_agent` is the
  agent asked), with that node first when it is among them; cut to `?limit=`;
* with no node left, failover: the `Failover.NearestN` nearest other datacenters (by the WAN
  pool's round-trip estimates, wan.py), then those of `Failover.Datacenters` not tried yet
  and known to the WAN pool; each gets the whole definition (`EXECUTE_REMOTE`, Consul's
  PreparedQuery.ExecuteRemote) and the first with nodes answers. `Failovers` counts the
  datacenters asked.

ACLs (Consul's): creating, updating or deleting a query with a name (or a template) needs
`query:write` on the name (and on the old name for an update); one without a name must be
bound to a session, and its ID is what lets one read it. Lists show what `query:read`
allows; a token is "<hidden>" but to `acl:write` tokens. Executing needs no `query` rule: the
results are filtered by the token as any health read.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from typing import Any, cast

from aiohttp import web

from meshctl.durations import parse_duration
from meshctl.server import watchkeys as wk
from meshctl.server.commands import QueryDef, QueryDelete, QuerySet
from meshctl.server.http.common import (
    HTTPError,
    Request,
    Result,
    Route,
    Watch,
    blocking,
    check_dc,
    meta_headers,
    respond,
    route,
)
from meshctl.server.http.coordinate import near_node, nearest_first
from meshctl.server.state.queries import QUERY_NOT_FOUND, REDACTED, acl_prefix
from meshctl.server.wan import NoPath

log = logging.getLogger(__name__)

ROUTES: list[Route] = []
EXECUTE_REMOTE = "/v1/internal/meshctl/query/execute-remote"
AGENT_FIRST_DEPTH = 10  # Consul looks this far for the source node to put first

# Fields of a definition, by level, as Go's decoder matches them (case-insensitively).
_FIELDS: dict[str, tuple[str, ...]] = {
    "": ("ID", "Name", "Session", "Token", "Template", "Service", "DNS", "CreateIndex", "ModifyIndex", "Namespace",
         "Partition"),
    "Service": ("Service", "Failover", "OnlyPassing", "IgnoreCheckIDs", "Near", "Tags", "NodeMeta", "ServiceMeta",
                "Connect", "Namespace", "Partition", "Peer", "SamenessGroup"),
    "Failover": ("NearestN", "Datacenters", "Targets"),
    "Template": ("Type", "Regexp", "RemoveEmptyTags"),
    "DNS": ("TTL",),
}


def _fold(body: Any, level: str, where: str) -> dict[str, Any]:
    """An object of the definition with Consul's field names; unknown fields are refused (400)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HTTPError(400, f"Request decode failed: {where or 'body'} must be a JSON object")
    names = {n.lower(): n for n in _FIELDS[level]}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = names.get(str(key).replace("_", "").lower())
        if name is None:
            raise HTTPError(400, f'Request decode failed: {where}unknown field "{key}"')
        out[name] = value
    return out


def _typed(value: Any, kind: type | tuple[type, ...], name: str, default: Any) -> Any:
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise HTTPError(400, f"Request decode failed: {name}: wrong type")
    return value


def _strings(value: Any, name: str) -> list[str] | None:
    items = _typed(value, list, name, None)
    if items is not None and not all(isinstance(i, str) for i in items):
        raise HTTPError(400, f"Request decode failed: {name}: want strings")
    return items


def _string_map(value: Any, name: str) -> dict[str, str] | None:
    items = _typed(value, dict, name, None)
    if items is not None and not all(isinstance(v, str) for v in items.values()):
        raise HTTPError(400, f"Request decode failed: {name}: want string values")
    return items


def build_query(raw: Any, qid: str) -> QueryDef:
    """A definition from a request body, with every field Consul stores (Apply's checks: 500)."""
    query = decode_query(raw, qid)
    problem = _invalid(query)
    if problem:
        raise HTTPError(500, f"Invalid prepared query: {problem}")
    return query


def decode_query(raw: Any, qid: str) -> QueryDef:
    """A definition's fields, typed and with Consul's defaults (a body that does not decode: 400)."""
    body = _fold(raw, "", "")
    svc = _fold(body.get("Service"), "Service", "Service: ")
    failover = _fold(svc.get("Failover"), "Failover", "Service.Failover: ")
    template = _fold(body.get("Template"), "Template", "Template: ")
    dns = _fold(body.get("DNS"), "DNS", "DNS: ")
    query: QueryDef = {
        "ID": qid,
        "Name": _typed(body.get("Name"), str, "Name", ""),
        "Session": _typed(body.get("Session"), str, "Session", ""),
        "Token": _typed(body.get("Token"), str, "Token", ""),
        "Template": {"Type": _typed(template.get("Type"), str, "Template.Type", ""),
                     "Regexp": _typed(template.get("Regexp"), str, "Template.Regexp", ""),
                     "RemoveEmptyTags": _typed(template.get("RemoveEmptyTags"), bool, "Template.RemoveEmptyTags",
                                               False)},
        "Service": {
            "Service": _typed(svc.get("Service"), str, "Service.Service", ""),
            "Failover": {"NearestN": _typed(failover.get("NearestN"), int, "Service.Failover.NearestN", 0),
                         "Datacenters": _strings(failover.get("Datacenters"), "Service.Failover.Datacenters")},
            "OnlyPassing": _typed(svc.get("OnlyPassing"), bool, "Service.OnlyPassing", False),
            "IgnoreCheckIDs": _strings(svc.get("IgnoreCheckIDs"), "Service.IgnoreCheckIDs"),
            "Near": _typed(svc.get("Near"), str, "Service.Near", ""),
            "Tags": _strings(svc.get("Tags"), "Service.Tags"),
            "NodeMeta": _string_map(svc.get("NodeMeta"), "Service.NodeMeta"),
            "ServiceMeta": _string_map(svc.get("ServiceMeta"), "Service.ServiceMeta"),
            "Connect": _typed(svc.get("Connect"), bool, "Service.Connect", False),
        },
        "DNS": {"TTL": _typed(dns.get("TTL"), str, "DNS.TTL", "")},
    }
    return query


def _invalid(query: QueryDef) -> str:
    """Consul's parseQuery: what is wrong with a definition ("" if nothing)."""
    if not query["Name"] and not query["Template"]["Type"] and not query["Session"]:
        return "Must be bound to a session"
    if query["Token"] == REDACTED:
        return (f"Bad Token '{REDACTED}', it looks like a query definition with a redacted token was "
                "submitted")
    if not query["Service"]["Service"]:
        return "Must provide a Service name to query"
    nearest = query["Service"]["Failover"]["NearestN"]
    if nearest < 0:
        return f"Bad NearestN '{nearest}', must be >= 0"
    ttl = query["DNS"]["TTL"]
    if ttl:
        try:
            seconds = parse_duration(ttl)
        except ValueError as exc:
            return f"Bad DNS TTL '{ttl}': {exc}"
        if seconds < 0:
            return f"DNS TTL '{ttl}', must be >=0"
    return ""


def _write_allowed(req: Request, query: QueryDef | dict[str, Any]) -> None:
    prefix = acl_prefix(query)
    if prefix is not None:
        req.authorize("query", prefix, "write")


def _existing(req: Request, qid: str) -> dict[str, Any]:
    found = req.ctx.store.state.query_get(qid)[1]
    if found is None:
        raise HTTPError(500, f"Cannot modify non-existent prepared query: '{qid}'")
    return found


# ---------------------------------------------------------------------- definitions


@route(ROUTES, "POST", "/v1/query")
async def create(req: Request) -> web.Response:
    check_dc(req)
    raw = await req.json(default={})
    if isinstance(raw, dict) and any(str(k).lower() == "id" and v for k, v in raw.items()):
        raise HTTPError(500, "ID must be empty when creating a new prepared query")
    query = build_query(raw, str(uuid.uuid4()))
    _write_allowed(req, query)
    qid = await req.ctx.store.apply(QuerySet(query, create=True, now=time.time()))
    return respond(req, {"ID": qid})


@route(ROUTES, "GET", "/v1/query")
async def query_list(req: Request) -> web.Response:
    state = req.ctx.store.state

    def run() -> Result:
        index, items = state.query_list()
        return Result(index, req.ctx.acl.filter_queries(req, items))

    return await blocking(req, run, Watch(keys=[wk.QUERIES]))


@route(ROUTES, "GET", "/v1/query/{id}")
async def read(req: Request) -> web.Response:
    qid = req.match["id"]
    state = req.ctx.store.state

    def run() -> Result:
        index, found = state.query_get(qid)
        if found is None:
            return Result(index, QUERY_NOT_FOUND.encode(), status=404, content_type="text/plain")
        visible = req.ctx.acl.filter_queries(req, [found], by_id=True)
        if not visible:
            raise HTTPError(403, "Permission denied")
        return Result(index, visible)

    return await blocking(req, run, Watch(keys=[wk.QUERIES]))


@route(ROUTES, "PUT", "/v1/query/{id}")
async def update(req: Request) -> web.Response:
    check_dc(req)
    qid = req.match["id"]
    raw = await req.json(default={})
    if isinstance(raw, dict):  # the ID is the URL's, whatever the body says
        raw = {k: v for k, v in raw.items() if str(k).lower() != "id"}
    query = build_query(raw, qid)
    _write_allowed(req, query)
    _write_allowed(req, _existing(req, qid))
    await req.ctx.store.apply(QuerySet(query, create=False, now=time.time()))
    return respond(req, None)


@route(ROUTES, "DELETE", "/v1/query/{id}")
async def delete(req: Request) -> web.Response:
    check_dc(req)
    qid = req.match["id"]
    _write_allowed(req, _existing(req, qid))
    await req.ctx.store.apply(QueryDelete(qid, now=time.time()))
    return respond(req, None)


# ---------------------------------------------------------------------- execution


def _resolve(req: Request) -> dict[str, Any]:
    found = req.ctx.store.state.query_resolve(req.match["id"])
    if found is None:
        raise HTTPError(404, QUERY_NOT_FOUND)
    return found


def _limit(req: Request) -> int:
    text = req.param("limit")
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise HTTPError(500, f'Bad limit: strconv.Atoi: parsing "{text}": invalid syntax') from None


def _local_nodes(req: Request, query: dict[str, Any], connect: bool = False) -> list[dict[str, Any]]:
    """The local entries of a query, filtered by its captured token (else the caller's), shuffled.
    `connect` (`?connect`): only Connect-capable instances, of which meshctl has none."""
    nodes = [] if connect else req.ctx.store.state.query_execute_local(query)
    token = query.get("Token") or ""
    nodes = req.ctx.acl.filter_health(req.as_token(token) if token else req, nodes)
    random.shuffle(nodes)
    return nodes


def _response(req: Request, query: dict[str, Any], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Service": query["Service"]["Service"], "Nodes": nodes, "DNS": query.get("DNS") or {"TTL": ""},
            "Datacenter": req.ctx.datacenter, "Failovers": 0}


async def execute_query(req: Request, query: dict[str, Any], limit: int) -> dict[str, Any]:
    """Run a resolved query: here, then by failover (see the module docstring)."""
    nodes = _local_nodes(req, query, req.flag("connect"))
    source = near_node(req, req.param("near") or query["Service"].get("Near") or "")
    nodes = nearest_first(req, nodes, lambda e: e["Node"]["Node"], source)
    if source:
        for i, entry in enumerate(nodes[:AGENT_FIRST_DEPTH]):
            if entry["Node"]["Node"] == source:
                nodes.insert(0, nodes.pop(i))
                break
    if limit > 0:
        nodes = nodes[:limit]
    answer = _response(req, query, nodes)
    if not nodes:
        await _failover(req, query, limit, answer)
    return answer


def failover_datacenters(query: dict[str, Any], known: list[str]) -> list[str]:
    """The datacenters to try, in order: the NearestN first of `known`, then the listed ones it has."""
    failover = query["Service"].get("Failover") or {}
    chosen = list(known[: max(int(failover.get("NearestN") or 0), 0)])
    for dc in failover.get("Datacenters") or []:
        if dc in known and dc not in chosen:
            chosen.append(dc)
        elif dc not in known:
            log.debug("prepared query %s: skipping unknown datacenter %s", query.get("ID"), dc)
    return chosen


async def _failover(req: Request, query: dict[str, Any], limit: int, answer: dict[str, Any]) -> None:
    wan = req.ctx.wan
    if wan is None:
        return
    known = [dc for dc in wan.datacenters() if dc != req.ctx.datacenter]
    headers = {"X-Consul-Token": req.token} if req.token else None
    failovers = 0
    for dc in failover_datacenters(query, known):
        failovers += 1
        try:
            body = await wan.call("POST", dc, EXECUTE_REMOTE, {"Query": query, "Limit": limit}, headers=headers)
        except NoPath as exc:
            log.warning("prepared query %s: failed querying for service %s in datacenter %s: %s", query.get("ID"),
                        query["Service"]["Service"], dc, exc)
            continue
        if isinstance(body, dict) and body.get("Nodes"):
            answer.update(body)
            break
    answer["Failovers"] = failovers


@route(ROUTES, "GET", "/v1/query/{id}/execute")
async def execute(req: Request) -> web.Response:
    check_dc(req)
    limit = _limit(req)
    if req.flag("consistent"):
        await req.ctx.store.barrier()
    answer = await execute_query(req, _resolve(req), limit)
    return respond(req, answer, headers=meta_headers(req, req.ctx.store.state.query_index))


@route(ROUTES, "GET", "/v1/query/{id}/explain")
async def explain(req: Request) -> web.Response:
    check_dc(req)
    _limit(req)
    query = _resolve(req)
    visible = req.ctx.acl.filter_queries(req, [query])
    if not visible:
        raise HTTPError(403, "Permission denied")
    return respond(req, {"Query": visible[0]}, headers=meta_headers(req, req.ctx.store.state.query_index))


@route(ROUTES, "POST", EXECUTE_REMOTE)
async def execute_remote(req: Request) -> web.Response:
    """Another datacenter's failover: run the definition it sends here, without failing over further."""
    body = await req.json(default={})
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: body must be a JSON object")
    raw = body.get("Query")
    query = cast(dict[str, Any], decode_query(raw, str(raw.get("ID") or "") if isinstance(raw, dict) else ""))
    if not query["Service"]["Service"]:
        raise HTTPError(400, "Request decode failed: a prepared query definition is needed")
    req.authorize("service", query["Service"]["Service"], "read")
    asked = body.get("Limit")
    limit = asked if isinstance(asked, int) else 0
    nodes = _local_nodes(req, query)
    if limit > 0:
        nodes = nodes[:limit]
    return respond(req, _response(req, query, nodes))
