"""/v1/txn: up to 128 KV/Node/Service/Check operations applied atomically."""

from __future__ import annotations

import base64
import binascii
from typing import Any, cast

from aiohttp import web

from meshctl.server.commands import Txn, TxnOp
from meshctl.server.http.common import (
    MAX_KV_VALUE,
    MAX_TXN_OPS,
    HTTPError,
    Request,
    Route,
    check_dc,
    meta_headers,
    respond,
    route,
)
from meshctl.server.http.limits import MAX_TXN_BODY

ROUTES: list[Route] = []
READ_ONLY_KV_VERBS = {"get", "get-or-empty", "get-tree", "check-index", "check-session", "check-not-exists"}
OP_KINDS = ("KV", "Node", "Service", "Check")


def _decode_ops(raw: Any) -> list[TxnOp]:
    if not isinstance(raw, list):
        raise HTTPError(400, "Failed to parse body: expected a JSON array of operations")
    if len(raw) > MAX_TXN_OPS:
        raise HTTPError(413, f"Transaction contains too many operations ({len(raw)} > {MAX_TXN_OPS})")
    ops = []
    for i, op in enumerate(raw):
        if not isinstance(op, dict) or sum(1 for k in OP_KINDS if k in op) != 1 or len(op) != 1:
            raise HTTPError(400, f"Failed to parse body: operation {i} must have exactly one of KV, Node, Service, Check")
        kind = next(iter(op))
        body = op[kind]
        if not isinstance(body, dict):
            raise HTTPError(400, f"Failed to parse body: operation {i}: {kind} must be an object")
        if kind == "KV":
            body = dict(body)
            value = body.get("Value")
            if value is not None:
                try:
                    body["Value"] = base64.b64decode(value, validate=True) or None
                except (binascii.Error, TypeError, ValueError):
                    raise HTTPError(400, f"Failed to parse body: operation {i}: Value is not base64") from None
                if body["Value"] and len(body["Value"]) > MAX_KV_VALUE:
                    raise HTTPError(413, f'Value for key "{body.get("Key", "")}" is too large '
                                         f'({len(body["Value"])} > {MAX_KV_VALUE} bytes)')
        ops.append(cast(TxnOp, {kind: body}))
    return ops


def _authorize(req: Request, ops: list[TxnOp]) -> None:
    for op in ops:
        if "KV" in op:
            kv = op["KV"]
            req.authorize("key", kv.get("Key", ""), "read" if kv.get("Verb") in READ_ONLY_KV_VERBS else "write")
        elif "Node" in op:
            req.authorize("node", (op["Node"].get("Node") or {}).get("Node", ""), "write")
        elif "Service" in op:
            svc = op["Service"].get("Service") or {}
            req.authorize("service", svc.get("Service", ""), "write")
        else:
            req.authorize("node", (op["Check"].get("Check") or {}).get("Node", ""), "write")


@route(ROUTES, "PUT", "/v1/txn")
async def txn(req: Request) -> web.Response:
    check_dc(req)
    raw = await req.json("Failed to parse body", default=[], limit=MAX_TXN_BODY)
    ops = _decode_ops(raw)
    _authorize(req, ops)
    read_only = all("KV" in op and op["KV"].get("Verb") in READ_ONLY_KV_VERBS for op in ops)
    if read_only:
        # Reads need no replication: answer from this server's state without an index.
        result = req.ctx.store.state.txn_read(ops)
        headers = meta_headers(req, None)
    else:
        result = await req.ctx.store.apply(Txn(tuple(ops)))
        headers = {}
    status = 409 if result.get("Errors") else 200
    return respond(req, result, status, headers)
