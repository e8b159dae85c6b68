"""/v1/kv: get (recurse, keys, separator, raw), put (flags, cas, acquire, release), delete."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from meshctl.server import watchkeys as wk
from meshctl.server.commands import (
    KVCAS,
    KVCommand,
    KVDelete,
    KVDeleteCAS,
    KVDeleteTree,
    KVLock,
    KVSet,
    KVUnlock,
)
from meshctl.server.http.common import (
    MAX_KV_VALUE,
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


def _key(req: Request) -> str:
    key = req.match.get("key", "")
    if ".." in key.split("/"):
        raise HTTPError(400, f"Invalid key name {key!r}: path traversal is not allowed")
    return key


def _conflicting(req: Request, names: tuple[str, ...]) -> None:
    if sum(1 for n in names if n in req.query) > 1:
        raise HTTPError(400, f"Conflicting flags: {urlencode(list(req.query.items()))}\n")


@route(ROUTES, "GET", "/v1/kv/{key:.*}")
async def kv_get(req: Request) -> web.StreamResponse:
    key = _key(req)
    state = req.ctx.store.state
    if req.flag("keys"):
        req.authorize("key", key, "list")
        separator = req.param("separator") or req.param("seperator")

        def run() -> Result:
            index, keys = state.kv_keys_list(key, separator)
            keys = req.ctx.acl.filter_keys(req, keys)
            if not keys and key:
                return Result(index, None, 404)
            return Result(index, keys)

        return await blocking(req, run, Watch(prefixes=[key]))
    if req.flag("recurse"):
        req.authorize("key", key, "list")

        def run() -> Result:
            index, entries = state.kv_list(key)
            body = req.ctx.acl.filter_keys(req, [e.to_json() for e in entries])
            return Result(index, body) if body else Result(index, None, 404)

        return await blocking(req, run, Watch(prefixes=[key]))
    if not key:
        raise HTTPError(400, "Missing key name")
    req.authorize("key", key, "read")

    def run_one() -> Result:
        index, entry = state.kv_get(key)
        if entry is None:
            return Result(index, None, 404)
        if req.flag("raw"):
            return Result(index, entry.value or b"", content_type="text/plain", headers={
                "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"})
        return Result(index, [entry.to_json()] if req.flag("pretty") else entry.wire_list())

    return await blocking(req, run_one, Watch(keys=[wk.kv(key)]))



@route(ROUTES, "PUT", "/v1/kv/{key:.*}")
async def kv_put(req: Request) -> web.Response:
    check_dc(req)
    key = _key(req)
    if not key:
        raise HTTPError(400, "Missing key name")
    _conflicting(req, ("cas", "acquire", "release"))
    req.authorize("key", key, "write")
    flags = req.uint("flags", 0, f'strconv.ParseUint: parsing "{req.param("flags")}": invalid syntax') or 0
    value = await req.body(MAX_KV_VALUE)
    command: KVCommand = KVSet(key, value or None, flags)
    if "cas" in req.query:
        command = KVCAS(key, value or None, flags,
                        req.uint("cas", 0, f'strconv.ParseUint: parsing "{req.param("cas")}"') or 0)
    elif "acquire" in req.query:
        if not req.param("acquire"):
            raise HTTPError(400, "Missing session")
        command = KVLock(key, value or None, flags, req.param("acquire"))
    elif "release" in req.query:
        if not req.param("release"):
            raise HTTPError(400, "Missing session")
        command = KVUnlock(key, value or None, flags, req.param("release"))
    result = await req.ctx.store.apply(command)
    return respond(req, bool(result))


@route(ROUTES, "DELETE", "/v1/kv/{key:.*}")
async def kv_delete(req: Request) -> web.Response:
    check_dc(req)
    key = _key(req)
    _conflicting(req, ("recurse", "cas"))
    if req.flag("recurse"):
        req.authorize("key", key, "write")
        command: KVCommand = KVDeleteTree(key)
    else:
        if not key:
            raise HTTPError(400, "Missing key name")
        req.authorize("key", key, "write")
        command = KVDelete(key)
        if "cas" in req.query:
            command = KVDeleteCAS(key, req.uint("cas", 0, "Invalid cas") or 0)
    result = await req.ctx.store.apply(command)
    return respond(req, bool(result))
