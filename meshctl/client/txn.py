"""`client.txn`: PUT /v1/txn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from meshctl.client.client import Area
from meshctl.client.query import Consistency, query_params
from meshctl.client.records import JSONObject, TxnResponse
from meshctl.client.types import QueryMeta, TxnResult, b64encode


def kv_op(verb: str, key: str, value: bytes | str | None = None, *, flags: int | None = None,
          index: int | None = None, session: str | None = None) -> dict[str, dict[str, object]]:
    """Build one `{"KV": {...}}` operation (verbs: set, cas, lock, unlock, get, get-tree, delete...)."""
    op: dict[str, object] = {"Verb": verb, "Key": key}
    if value is not None:
        op["Value"] = b64encode(value)
    if flags is not None:
        op["Flags"] = flags
    if index is not None:
        op["Index"] = index
    if session is not None:
        op["Session"] = session
    return {"KV": op}


def _encode(op: JSONObject) -> JSONObject:
    kv = op.get("KV")
    if isinstance(kv, Mapping):
        value = kv.get("Value")
        if isinstance(value, bytes):  # raw bytes: encode for the caller
            return {**op, "KV": {**kv, "Value": b64encode(value)}}
    return op


class Txn(Area):
    """Atomic multi-operation transactions."""

    def apply(self, ops: Sequence[JSONObject], *, consistency: Consistency | None = None,
              dc: str | None = None) -> TxnResult:
        """Run `ops` (Consul's shapes; a KV `Value` given as bytes is base64-encoded for you).

        Returns a `TxnResult` both on success (ok=True) and on rollback (409, ok=False).
        """
        resp = self._client._request("PUT", "txn", params=query_params(consistency=consistency, dc=dc),
                                     json=[_encode(op) for op in ops], accept=(409,))
        result = TxnResult.from_json(resp.status_code == 200, cast(TxnResponse | None, self._client._json(resp)))
        meta = QueryMeta.from_headers(resp.headers)
        result.index, result.known_leader, result.last_contact = meta.last_index, meta.known_leader, meta.last_contact
        return result
