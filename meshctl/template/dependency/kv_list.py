"""`ls`, `safeLs`, `tree`, `safeTree`: every entry under a prefix (`kv.list(prefix?query@dc)`)."""

from __future__ import annotations

import re
from typing import Any

from meshctl.client import Client, KVPair, Reply
from meshctl.template.dependency.base import DC_RE, Dependency, QueryOptions, consistency, match
from meshctl.template.dependency.kv_get import decode_value
from meshctl.template.dependency.records import KeyPair

_RE = re.compile(r"/?(?P<prefix>[^?@]*)(\?(?P<query>[^@]+))?" + DC_RE)


class KVListQuery(Dependency):
    """All entries under a prefix, recursively, as KeyPairs with Key relative to the prefix.

    `tree` drops folder entries (keys ending in "/"); `ls` keeps only direct children.
    """

    def __init__(self, text: str) -> None:
        g = match("kv.list", _RE, text)
        self.prefix: str = g["prefix"] or ""
        self.dc: str = g["dc"] or ""
        self.opts = QueryOptions.parse("kv.list", g["query"])

    def __str__(self) -> str:
        return f"kv.list({self.prefix}{self.opts}{'@' + self.dc if self.dc else ''})"

    def fetch(self, client: Client, index: int = 0, wait: float | None = None,
              stale: bool = False) -> Reply[Any]:
        """GET /v1/kv/<prefix>?recurse."""
        if self.opts.params():
            reply = client._query(f"kv/{self.prefix}", params=[("recurse", ""), *self.opts.params()],
                                  index=index, wait=wait, consistency=consistency(stale), dc=self.dc or None,
                                  missing=list, decode=lambda d: [KVPair.from_json(x) for x in d or []])
        else:
            reply = client.kv.list(self.prefix, index=index, wait=wait, consistency=consistency(stale),
                                   dc=self.dc or None)
        reply.value = [self._pair(p) for p in reply.value]
        return reply

    def _pair(self, p: KVPair) -> KeyPair:
        key = p.key.removeprefix(self.prefix).lstrip("/")
        return KeyPair(Path=p.key, Key=key, Value=decode_value(p.value), CreateIndex=p.create_index,
                       ModifyIndex=p.modify_index, LockIndex=p.lock_index, Flags=p.flags, Session=p.session or "")


def top_level(pairs: list[KeyPair]) -> list[KeyPair]:
    """What `ls` shows: entries directly under the prefix."""
    return [p for p in pairs if p.Key and "/" not in p.Key]


def leaves(pairs: list[KeyPair]) -> list[KeyPair]:
    """What `tree` shows: every entry except folders."""
    return [p for p in pairs if not p.Path.endswith("/")]
