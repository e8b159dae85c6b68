"""What every endpoint shares: request parsing, Consul's headers and errors, blocking queries.

Endpoints are small functions registered in per-area route tables (`ROUTES`); this module
turns them into aiohttp handlers. Reads that Consul blocks on are declared with `blocking`
and return a `Result` plus what they watch; the wait loop lives here once.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from meshctl.durations import parse_duration
from meshctl.server import watchkeys as wk
from meshctl.server.context import CTX_KEY as CTX_KEY  # re-exported: handlers and apps use it from here
from meshctl.server.context import ServerContext as ServerContext
from meshctl.server.duration import DurationError, json_duration_ns
from meshctl.server.fields import canonical
from meshctl.server.filter import Fields, FilterError, compile_filter
from meshctl.server.http.limits import MAX_KV_VALUE as MAX_KV_VALUE  # re-exported: areas use them from here
from meshctl.server.http.limits import MAX_TXN_OPS as MAX_TXN_OPS
from meshctl.server.http.limits import body_limit

log = logging.getLogger(__name__)

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
JITTER_FRACTION = 16

# Set by a server that forwards a request to the leader: the node of the agent first asked,
# which is the default node of sessions, as in Consul where the receiving agent fills it in.
ORIGIN_NODE_HEADER = "X-Meshctl-Origin-Node"
FILTERED_HEADER = "X-Consul-Results-Filtered-By-ACLs"
PEERED_READS = ("/v1/catalog/node", "/v1/catalog/service", "/v1/health/")  # what ?peer= selects from


class HTTPError(Exception):
    """An error answered as Consul does: a status and a plain-text body."""

    def __init__(self, status: int, text: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers or {}




@dataclass
class Result:
    """A read's outcome before headers: index, body (JSON-able or bytes) and status."""

    index: int
    body: Any
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Watch:
    """What a blocking read waits on: exact watch keys and KV prefixes."""

    keys: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)


class Request:
    """An aiohttp request with Consul's parameter rules."""

    def __init__(self, raw: web.Request, ctx: ServerContext) -> None:
        self.raw = raw
        self.ctx = ctx
        self.query = raw.query
        self.match = raw.match_info
        self.checks: list[tuple[str, str, str]] = []  # permissions granted so far (re-checked on wake-up)
        self.filtered = False  # ACLs dropped items from the answer (X-Consul-Results-Filtered-By-ACLs)
        self.token_override: str | None = None  # see as_token

    def as_token(self, token: str) -> Request:
        """This request as if it carried `token` (a prepared query's captured token filters its results)."""
        other = copy.copy(self)
        other.token_override = token
        return other

    def flag(self, name: str) -> bool:
        """Presence-based boolean (`?recurse`, `?keys`, `?raw`...): the value is ignored."""
        return name in self.query

    def param(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    def params(self, name: str) -> list[str]:
        return self.query.getall(name, [])

    def uint(self, name: str, default: int | None = None, error: str | None = None) -> int | None:
        """An unsigned integer parameter; a bad value is a 400 (or `error`'s text)."""
        text = self.query.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
            if value < 0:
                raise ValueError
            return value
        except ValueError:
            raise HTTPError(400, error or f"Invalid {name}") from None

    def bool_value(self, name: str, missing: str, invalid: str) -> bool:
        """Go ParseBool semantics for flags like ?enable= (empty value is an error)."""
        if name not in self.query or self.query[name] == "":
            raise HTTPError(400, missing)
        value = self.query[name]
        if value in ("1", "t", "T", "true", "TRUE", "True"):
            return True
        if value in ("0", "f", "F", "false", "FALSE", "False"):
            return False
        raise HTTPError(400, invalid.format(value=value))

    @property
    def token(self) -> str:
        """?token=, then X-Consul-Token, then Authorization: Bearer."""
        if self.token_override is not None:
            return self.token_override
        if "token" in self.query:
            return self.query["token"]
        header = self.raw.headers.get("X-Consul-Token")
        if header:
            return header
        auth = self.raw.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return ""

    async def body(self, limit: int | None = None) -> bytes:
        """The raw body; over `limit` bytes is a 413 before anything is read (a chunked body:
        as soon as the limit is passed, never buffering more than `limit` bytes plus one chunk)."""
        length = self.raw.content_length
        if limit is not None and length is not None and length > limit:
            raise HTTPError(413, f"Request body({length} bytes) too large, max size: {limit} bytes. "
                                 "See https://developer.hashicorp.com/consul/docs/agent/config/config-files"
                                 "#kv_max_value_size.")
        return await read_body(self.raw, limit)

    async def json(self, error_prefix: str = "Request decode failed", default: Any = None,
                   limit: int | None = None) -> Any:
        """The body as JSON with Consul's field names (see fields.py); empty body gives `default`."""
        data = await self.body(limit)
        if not data.strip():
            return default
        try:
            decoded = canonical(json.loads(data, parse_constant=_no_constant, parse_float=_finite_float))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise HTTPError(400, f"{error_prefix}: {exc}") from None
        return default if decoded is None else decoded  # a `null` body is Go's nil struct pointer

    @property
    def agent_node(self) -> str:
        """The node of the agent this request was first sent to (forwarding keeps it)."""
        return self.raw.headers.get(ORIGIN_NODE_HEADER) or self.ctx.agent.node_name

    def authorize(self, resource: str, name: str, access: str) -> None:
        """Raise 403 unless the request's token grants `access` on `resource` `name`."""
        self.ctx.acl.authorize(self, resource, name, access)
        if self.ctx.acl.enabled:
            self.checks.append((resource, name, access))

    def reauthorize(self) -> None:
        """Check every permission granted so far again (a blocking query waking up: its token may be gone)."""
        for resource, name, access in self.checks:
            self.ctx.acl.authorize(self, resource, name, access)


Handler = Callable[[Request], Awaitable[Any]]


@dataclass
class Route:
    methods: tuple[str, ...]
    path: str
    handler: Handler


def route(table: list[Route], methods: str, path: str) -> Callable[[Handler], Handler]:
    """Decorator adding a handler to an area's route table."""

    def register(fn: Handler) -> Handler:
        table.append(Route(tuple(methods.split(",")), path, fn))
        return fn

    return register


# ---------------------------------------------------------------------- responses


def dumps(body: Any, pretty: bool) -> bytes:
    if pretty:
        return (json.dumps(body, indent=4) + "\n").encode()
    return json.dumps(body, separators=(",", ":")).encode()


def respond(req: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None,
            content_type: str = "application/json") -> web.Response:
    """A 200 JSON answer (None answers an empty body, as Consul's no-content handlers)."""
    if body is None and content_type == "application/json":
        payload = b""
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = dumps(body, req.flag("pretty"))
    headers = {"X-Consul-Default-ACL-Policy": req.ctx.acl.default_policy, **(headers or {})}  # all answers (1.9+)
    if req.filtered:
        headers[FILTERED_HEADER] = "true"
    return web.Response(body=payload, status=status, headers=headers, content_type=content_type)


def meta_headers(req: Request, index: int | None) -> dict[str, str]:
    """X-Consul-Index (never 0), KnownLeader, LastContact and consistency on reads."""
    store = req.ctx.store
    headers = {
        "X-Consul-KnownLeader": "true" if store.known_leader else "false",
        "X-Consul-LastContact": str(store.last_contact_ms if req.flag("stale") else 0),
        "X-Consul-Effective-Consistency": consistency_of(req),
        "X-Consul-Default-ACL-Policy": req.ctx.acl.default_policy,
    }
    if index is not None:
        headers["X-Consul-Index"] = str(max(index, 1))
    return headers


def consistency_of(req: Request) -> str:
    if req.flag("stale"):
        return "stale"
    if req.flag("consistent"):
        return "consistent"
    return "leader"


def check_read_params(req: Request) -> tuple[int, float]:
    """Validate dc, consistency, index and wait; return (min index, wait seconds)."""
    if not req.query:  # the common plain read: nothing to validate
        return 0, 0.0
    check_dc(req)
    if req.flag("stale") and req.flag("consistent"):
        raise HTTPError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
    if "max_stale" in req.query:
        try:
            if not math.isfinite(parse_duration(req.query["max_stale"])):
                raise ValueError("not finite")
        except ValueError:
            raise HTTPError(400, f'Invalid max_stale value "{req.query["max_stale"]}"') from None
    index = req.uint("index", 0, "Invalid index") or 0
    wait = 0.0
    if "wait" in req.query:
        try:
            wait = parse_duration(req.query["wait"])
        except ValueError:
            raise HTTPError(400, "Invalid wait time") from None
        if not 0 <= wait < math.inf:  # NaN and infinities too
            raise HTTPError(400, "Invalid wait time")
    if index > 0:
        if wait <= 0:
            wait = DEFAULT_WAIT
        wait = min(wait, MAX_WAIT)
        wait += random.random() * wait / JITTER_FRACTION
    return index, wait


def check_dc(req: Request) -> None:
    dc = req.query.get("dc")
    if dc and dc != req.ctx.datacenter:
        raise HTTPError(500, "No path to datacenter")


async def blocking(req: Request, run: Callable[[], Result], watch: Watch,
                   wake_on_equal_only: bool = False) -> web.Response:
    """Consul's blocking query: rerun `run` until its index passes ?index or ?wait runs out.

    `wake_on_equal_only` is the event list's rule: its index is a hash, so the query returns
    as soon as the index differs from the requested one.
    """
    min_index, wait = check_read_params(req)
    store = req.ctx.store
    if req.flag("consistent"):
        await store.barrier()
    if req.ctx.acl.enabled:
        run = _noting_filtered(req, run)
    if req.query.get("peer") and req.raw.path.startswith(PEERED_READS):
        run = _of_peer(run, as_map=req.raw.path == "/v1/catalog/services")
    result = run()
    if min_index > 0:
        deadline = time.monotonic() + wait
        keys = watch.keys + [wk.ACL] if req.ctx.acl.enabled else watch.keys
        while _should_wait(result.index, min_index, wake_on_equal_only):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            woken = await store.hub.wait(keys, watch.prefixes, remaining)
            req.reauthorize()
            result = _shared_rerun(req, run)
            if not woken:
                break
    return _answer(req, result)


def _of_peer(run: Callable[[], Result], as_map: bool) -> Callable[[], Result]:
    """`run` for `?peer=<name>`: the catalog's records imported from that peer, of which there are none.

    Consul reads records by their PeerName; meshctl has no cluster peering, so a peer never
    has any (a list is empty, the service map too, a node is null) — never this cluster's own records.
    """

    def imported() -> Result:
        result = run()
        result.body = [] if isinstance(result.body, list) else {} if as_map else b"null"
        return result

    return imported


def _noting_filtered(req: Request, run: Callable[[], Result]) -> Callable[[], Result]:
    """`run`, with ACL filtering recorded in the result's headers (shared answers carry it too)."""

    def noted() -> Result:
        req.filtered = False
        result = run()
        if req.filtered:
            result.headers[FILTERED_HEADER] = "true"
            req.filtered = False
        return result

    return noted


class WakeCache:
    """Answers computed for blocked queries woken by one write, shared by identical queries.

    When thousands of clients wait on the same key, one write wakes them all at the same
    state index; the first computes the answer (body serialised once), the rest reuse it.
    """

    def __init__(self) -> None:
        self.index = -1
        self.entries: dict[tuple[Any, ...], Result] = {}

    def get(self, req: Request, run: Callable[[], Result]) -> Result:
        state_index = req.ctx.store.state.index
        if state_index != self.index:
            self.index, self.entries = state_index, {}
        key = (req.raw.path, tuple(sorted((k, v) for k, v in req.query.items() if k not in ("index", "wait"))),
               req.token)
        result = self.entries.get(key)
        if result is None:
            result = run()
            if result.content_type == "application/json" and not isinstance(result.body, bytes) \
                    and result.body is not None:
                result.body = dumps(result.body, req.flag("pretty"))
            self.entries[key] = result
        return result


def _shared_rerun(req: Request, run: Callable[[], Result]) -> Result:
    return req.ctx.wake_cache.get(req, run)


def _should_wait(index: int, min_index: int, equal_only: bool) -> bool:
    return index == min_index if equal_only else max(index, 1) <= min_index


def _answer(req: Request, result: Result) -> web.Response:
    headers = meta_headers(req, result.index)
    if result.headers:
        headers.update(result.headers)
    if result.status == 404 and result.body is None:
        return web.Response(status=404, headers=headers)
    if isinstance(result.body, bytes) and not req.filtered:  # pre-serialised: skip respond's work
        return web.Response(body=result.body, status=result.status, headers=headers,
                            content_type=result.content_type)
    return respond(req, result.body, result.status, headers, result.content_type)


def apply_filter(req: Request, items: list[Any], fields: Fields) -> list[Any]:
    """?filter (go-bexpr) over a list of records of the type `fields` describes (selectors.py)."""
    expr = req.query.get("filter")
    if not expr:
        return items
    try:
        pred = compile_filter(expr, fields)
    except FilterError as exc:
        raise HTTPError(400, str(exc)) from None
    return [item for item in items if pred(item)]


def node_meta_filter(req: Request) -> dict[str, str]:
    """?node-meta=key:value (repeatable)."""
    out = {}
    for pair in req.params("node-meta"):
        key, _, value = pair.partition(":")
        out[key] = value
    return out


def meta_matches(meta: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(meta.get(k) == v for k, v in wanted.items())


_DURATION_RE = re.compile(r"^\d+$")
BODY_KEY = "meshctl.body"  # where read_body keeps a request's body


def duration_ns(value: Any, field_name: str, seconds_below: int | None = None) -> int:
    """A Go duration given as a string ("15s") or a number of nanoseconds (a string of digits too).

    `seconds_below`: small numbers are seconds (Consul's LockDelay quirk). Errors are 400s
    with Go's text.
    """
    if value is None or value == "":
        return 0
    try:
        ns = int(value) if isinstance(value, str) and _DURATION_RE.match(value) else json_duration_ns(value, field_name)
    except DurationError as exc:
        raise HTTPError(400, f"Request decode failed: {exc}") from None
    if seconds_below is not None and 0 < ns < seconds_below:
        ns *= 10**9
    return ns


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The body, read once (middlewares and the handler share it) chunk by chunk: a 413 as soon
    as it passes `limit` or its route's cap (limits.body_limit), never buffering more."""
    body: bytes | None = request.get(BODY_KEY)
    cap = body_limit(request.method, request.path)
    if limit is not None:
        cap = min(cap, limit)
    if body is None:
        buf = bytearray()
        async for chunk in request.content.iter_any():
            buf.extend(chunk)
            if len(buf) > cap:
                raise HTTPError(413, f"Request body too large, max size: {cap} bytes")
        body = request[BODY_KEY] = bytes(buf)
    if len(body) > cap:
        raise HTTPError(413, f"Request body too large, max size: {cap} bytes")
    return body


def _no_constant(name: str) -> Any:
    """Go's JSON has no NaN or Infinity: refuse them as Go's decoder does."""
    first = name.lstrip("-")[0]
    where = "in numeric literal" if name.startswith("-") else "looking for beginning of value"
    raise ValueError(f"invalid character '{first}' {where}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: past float64
        raise ValueError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value
