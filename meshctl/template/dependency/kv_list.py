"""`ls`, `safeLs`, `tree`, `safeTree`: every entry under a prefix (`kv.list(prefix?query@dc)`)."""

from __future__ import annotations

import re

from meshctl.client import Client, Reply
from meshctl.template.dependency.base import DC_RE, Dependency, QueryScope, match
from meshctl.template.dependency.kv_get import key_pair
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
        self.opts = QueryScope.parse("kv.list", g["query"])

    def __str__(self) -> str:
        return f"kv.list({self.prefix}{self.opts}{'@' + self.dc if self.dc else ''})"

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[list[KeyPair]]:
        """GET /v1/kv/<prefix>?recurse."""
        reply = client.kv.list_prefix(self.prefix, options=self.opts.options(dc=self.dc, stale=stale), index=index,
                                      wait=wait)
        return reply.with_value([key_pair(p, p.key.removeprefix(self.prefix).lstrip("/")) for p in reply.value])


def top_level(pairs: list[KeyPair]) -> list[KeyPair]:
    """What `ls` shows: entries directly under the prefix."""
    return [p for p in pairs if p.Key and "/" not in p.Key]


def leaves(pairs: list[KeyPair]) -> list[KeyPair]:
    """What `tree` shows: every entry except folders."""
    return [p for p in pairs if not p.Path.endswith("/")]
