"""`key`, `keyExists`, `keyOrDefault`: one KV entry (`kv.get(path?query@dc)`)."""

from __future__ import annotations

import re

from meshctl.client import Client, KVPair, Reply
from meshctl.template.dependency.base import DC_RE, Dependency, QueryScope, match
from meshctl.template.dependency.records import KeyPair

_RE = re.compile(r"/?(?P<key>[^?@]+)(\?(?P<query>[^@]+))?" + DC_RE)


def decode_value(value: bytes | None) -> str:
    """A KV value as a template string (bytes that are not UTF-8 survive as surrogates)."""
    return "" if value is None else value.decode("utf-8", "surrogateescape")


def key_pair(p: KVPair, key: str | None = None) -> KeyPair:
    """The template's view of an entry; `key` (default: the full key) is what `.Key` shows."""
    return KeyPair(Path=p.key, Key=p.key if key is None else key, Value=decode_value(p.value),
                   CreateIndex=p.create_index, ModifyIndex=p.modify_index, LockIndex=p.lock_index, Flags=p.flags,
                   Session=p.session or "")


class KVGetQuery(Dependency):
    """One key; the data is a KeyPair, or None when the key does not exist.

    `key` treats None as "no data yet" (consul-template blocks until the key exists);
    `keyExists` and `keyOrDefault` read the same dependency and accept None.
    """

    def __init__(self, text: str) -> None:
        g = match("kv.get", _RE, text)
        self.key: str = g["key"] or ""
        self.dc: str = g["dc"] or ""
        self.opts = QueryScope.parse("kv.get", g["query"])

    def __str__(self) -> str:
        return f"kv.get({self.key}{self.opts}{'@' + self.dc if self.dc else ''})"

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[KeyPair | None]:
        """GET /v1/kv/<key>."""
        reply = client.kv.get(self.key, options=self.opts.options(dc=self.dc, stale=stale), index=index, wait=wait)
        p = reply.value
        return reply.with_value(None if p is None else key_pair(p))
