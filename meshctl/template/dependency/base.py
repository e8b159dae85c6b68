"""What every dependency shares: the query-string grammar pieces and the fetch contract."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from meshctl.client import Client, Consistency, QueryOptions, Reply

# Grammar pieces, as consul-template's dependency.go spells them.
DC_RE = r"(@(?P<dc>[\w.\-]+))?"
NEAR_RE = r"(~(?P<near>[\w.\-]+))?"
QUERY_RE = r"(\?(?P<query>[\w\-=&]+))?"
FILTER_RE = r"(\|(?P<filter>[\w, ]+))?"
ALLOWED_QUERY_KEYS = ("ns", "partition", "peer", "sameness-group")


class DependencyError(ValueError):
    """A query string that does not parse (`health.service: invalid format: "..."`)."""


@dataclass(frozen=True)
class QueryScope:
    """The `?ns=..&partition=..&peer=..&sameness-group=..` part of a query string: whose data to read."""

    ns: str = ""
    partition: str = ""
    peer: str = ""
    sameness_group: str = ""

    @classmethod
    def parse(cls, what: str, query: str | None) -> QueryScope:
        """Parse the query part; only consul-template's four keys are accepted."""
        if not query:
            return cls()
        values: dict[str, str] = {}
        for part in query.split("&"):
            if not part:
                continue
            k, _, v = part.partition("=")
            if k not in ALLOWED_QUERY_KEYS:
                raise DependencyError(
                    f"{what}: invalid query parameter {k!r} (supported: {', '.join(ALLOWED_QUERY_KEYS)})")
            values[k.replace("-", "_")] = v
        opts = cls(**values)
        if opts.peer and opts.sameness_group:
            raise DependencyError(f"{what}: cannot specify both peer and sameness-group")
        return opts

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in (("ns", self.ns), ("partition", self.partition), ("peer", self.peer),
                                         ("sameness-group", self.sameness_group)) if v]
        return "?" + "&".join(parts) if parts else ""

    def options(self, *, dc: str = "", near: str = "", stale: bool = False) -> QueryOptions:
        """The client's options for a read of this scope (empty strings leave an option out)."""
        return QueryOptions(dc=dc or None, near=near or None, consistency=consistency(stale),
                            namespace=self.ns or None, partition=self.partition or None, peer=self.peer or None,
                            sameness_group=self.sameness_group or None)


def match(what: str, pattern: re.Pattern[str], text: str) -> dict[str, str | None]:
    """The named groups of `pattern` fully matching `text`, or DependencyError."""
    m = pattern.fullmatch(text)
    if m is None:
        raise DependencyError(f"{what}: invalid format: {text!r}")
    return m.groupdict()


class Dependency:
    """A data source a template reads; `str()` is its identity, `fetch()` answers one query.

    Each kind narrows `fetch()`'s result type (a record, a list of records, None for "no such thing").

    `blocking`: fetched with Consul blocking queries (else re-polled every `poll_interval`).
    `block_on_nil`: a None result is not data yet (consul-template's `key` on a missing key).
    """

    blocking: ClassVar[bool] = True
    poll_interval: ClassVar[float] = 0.0
    block_on_nil: ClassVar[bool] = False

    def __str__(self) -> str:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dependency) and str(self) == str(other)

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[object]:
        """One (blocking) read; the Reply's value is the dependency's result records."""
        raise NotImplementedError


def consistency(stale: bool) -> Consistency | None:
    """The client's consistency argument for an allow-stale read."""
    return "stale" if stale else None
