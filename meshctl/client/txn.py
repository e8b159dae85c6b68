"""`client.txn`: PUT /v1/txn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshctl.client.client import Area
from meshctl.client.query import Consistency, query_params
from meshctl.client.types import TxnResult, b64encode


def kv_op(verb: str, key: str, value: bytes | str | None = None, *, flags: int | None = None,
          index: int | None = None, session: str | None = None) -> dict[str, Any]:
    """Build one `{"KV": {...}}` operation (verbs: set, cas, lock, unlock, get, get-tree, delete...)."""
    op: dict[str, Any] = {"Verb": verb, "Key": key}
    if value is not None:
        op["Value"] = b64encode(value)
    if flags is not None:
        op["Flags"] = flags
    if index is not None:
        op["Index"] = index
    if session is not None:
        op["Session"] = session
    return {"KV": op}


def _encode(op: dict[str, Any]) -> dict[str, Any]:
    kv = op.get("KV")
    if isinstance(kv, dict) and isinstance(kv.get("Value"), bytes):  # raw bytes: encode for the caller
        return {**op, "KV": {**kv, "Value": b64encode(kv["Value"])}}
    return op


class Txn(Area):
    """Atomic multi-operation transactions."""

    def apply(self, ops: Sequence[dict[str, Any]], *, consistency: Consistency | None = None,
              dc: str | None = None) -> TxnResult:
        """Run `ops` (Consul's shapes; a KV `Value` given as bytes is base64-encoded for you).

        Returns a `TxnResult` both on success (ok=True) and on rollback (409, ok=False).
        """
        resp = self._client._request("PUT", "txn", params=query_params(consistency=consistency, dc=dc),
                                     json=[_encode(op) for op in ops], accept=(409,))
        result = TxnResult.from_json(resp.status_code == 200, self._client._json(resp))
        meta = self._client._meta(resp, None)
        result.index, result.known_leader, result.last_contact = meta.index, meta.known_leader, meta.last_contact
        return result
