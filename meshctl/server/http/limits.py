"""Every limit the HTTP API puts on what a client sends, in one place.

The body caps are Consul's (kv_max_value_size, txn_max_req_len); the others bound what a
client can hold on to: a request whose header is not complete after HEADER_TIMEOUT, or a
keep-alive connection idle for as long, is closed (aiohttp's keepalive timer, which starts
with the connection and is not pushed back by a trickle of header bytes — so a slowloris
client gets no longer than an idle one).
"""

from __future__ import annotations

MAX_BODY = 8 * 1024 * 1024  # any request body (aiohttp's client_max_size)
MAX_KV_VALUE = 512 * 1024  # Consul's kv_max_value_size
MAX_TXN_OPS = 128  # Consul's txn_max_ops
MAX_TXN_BODY = MAX_KV_VALUE * 4 // 3 + 65536  # one value at the cap, base64-encoded, and its operation
MAX_FIELD_SIZE = 65536  # one header line
# `snapshot save` writes the whole store: its restore has a cap of its own, read chunk by chunk,
# and a cap on what the archive may expand to (a gzip bomb stops there).
MAX_SNAPSHOT_BODY = 256 * 1024 * 1024
MAX_SNAPSHOT_EXPANDED = 1024 * 1024 * 1024
SNAPSHOT_PATH = "/v1/snapshot"
HEADER_TIMEOUT = 30.0  # seconds to send a request's header, and to idle between keep-alive requests


def body_limit(method: str, path: str) -> int:
    """The most body bytes a request may send: a snapshot restore's own cap, else MAX_BODY."""
    return MAX_SNAPSHOT_BODY if method == "PUT" and path == SNAPSHOT_PATH else MAX_BODY
