"""`key`, `keyExists`, `keyOrDefault`: one KV entry (`kv.get(path?query@dc)`)."""

from __future__ import annotations

import re
from typing import Any

from meshctl.client import Client, Reply
from meshctl.template.dependency.base import DC_RE, Dependency, QueryOptions, consistency, match
from meshctl.template.dependency.records import KeyPair

_RE = re.compile(r"/?(?P<key>[^?@]+)(\?(?P<query>[^@]+))?" + DC_RE)


def decode_value(value: bytes | None) -> str:
    """A KV value as a template string (bytes that are not UTF-8 survive as surrogates)."""
    return "" if value is None else value.decode("utf-8", "surrogateescape")


class KVGetQuery(Dependency):
    """One key; the data is a KeyPair, or None when the key does not exist.

    `key` treats None as "no data yet" (consul-template blocks until the key exists);
    `keyExists` and `keyOrDefault` read the same dependency and accept None.
    """

    def __init__(self, text: str) -> None:
        g = match("kv.get", _RE, text)
        self.key: str = g["key"]
        self.dc: str = g["dc"] or ""
        self.opts = QueryOptions.parse("kv.get", g["query"])

    def __str__(self) -> str:
        return f"kv.get({self.key}{self.opts}{'@' + self.dc if self.dc else ''})"

    def fetch(self, client: Client, index: int = 0, wait: float | None = None,
              stale: bool = False) -> Reply[Any]:
        """GET /v1/kv/<key>."""
        if self.opts.params():
            reply = client._query(f"kv/{self.key}", params=self.opts.params(), index=index, wait=wait,
                                  consistency=consistency(stale), dc=self.dc or None, missing=lambda: None,
                                  decode=lambda d: _pair(d[0]) if d else None)
            return reply
        reply = client.kv.get(self.key, index=index, wait=wait, consistency=consistency(stale),
                              dc=self.dc or None)
        p = reply.value
        reply.value = None if p is None else KeyPair(
            Path=p.key, Key=p.key, Value=decode_value(p.value), CreateIndex=p.create_index,
            ModifyIndex=p.modify_index, LockIndex=p.lock_index, Flags=p.flags, Session=p.session or "")
        return reply


def _pair(d: dict[str, Any]) -> KeyPair:
    from meshctl.client import KVPair

    p = KVPair.from_json(d)
    return KeyPair(Path=p.key, Key=p.key, Value=decode_value(p.value), CreateIndex=p.create_index,
                   ModifyIndex=p.modify_index, LockIndex=p.lock_index, Flags=p.flags, Session=p.session or "")
