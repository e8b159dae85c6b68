"""Query-string helpers shared by every area: blocking, consistency, filters, durations."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack

from meshctl.durations import format_duration, parse_duration

Consistency = Literal["default", "stale", "consistent"]
Params = list[tuple[str, str]]
NodeMeta = Mapping[str, str] | Sequence[str]  # {"k": "v"} or ["k:v", ...]


class QueryArgs(TypedDict, total=False):
    """The `QueryOptions` fields as keyword arguments of a read: `client.kv.get("k", index=7, wait="30s")`."""

    index: int | None
    wait: str | float | None
    consistency: Consistency | None
    dc: str | None
    token: str | None
    filter: str | None
    near: str | None
    node_meta: NodeMeta | None
    cached: bool
    max_age: str | float | None
    namespace: str | None
    partition: str | None
    peer: str | None
    sameness_group: str | None


@dataclass(frozen=True)
class QueryOptions:
    """Options of a read (the Go client's `api.QueryOptions`); None / False leaves an option out.

    Pass one as `options=` to any read, alone or with keyword overrides:
    `client.health.service("web", options=base, index=reply.index, wait="1m")`.
    Endpoints ignore the options they have no use for (Consul does the same).
    """

    index: int | None = None  # block until the data's index passes this (0/None: return at once)
    wait: str | float | None = None  # longest block: seconds or a Go duration ("30s")
    consistency: Consistency | None = None  # "default", "stale" or "consistent"
    dc: str | None = None  # datacenter (default: the client's, else the agent's)
    token: str | None = None  # this request's ACL token instead of the client's (sent as a header)
    filter: str | None = None  # go-bexpr filter expression
    near: str | None = None  # sort by RTT from this node ("_agent" for the local one)
    node_meta: NodeMeta | None = None  # node metadata to match
    cached: bool = False  # `?cached`: the agent's cache may answer (see QueryMeta.cache_hit)
    max_age: str | float | None = None  # with `cached`: the oldest cached answer accepted
    namespace: str | None = None  # `?ns=` (Consul Enterprise)
    partition: str | None = None  # `?partition=` (Consul Enterprise)
    peer: str | None = None  # `?peer=`: a cluster peer's data
    sameness_group: str | None = None  # `?sameness-group=` (Consul Enterprise)

    def __post_init__(self) -> None:
        if self.consistency not in (None, "default", "stale", "consistent"):
            raise ValueError(f"unknown consistency mode {self.consistency!r}")

    def __repr__(self) -> str:  # never show the token
        fields = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]
        shown = ", ".join(f"{k}={'<set>' if k == 'token' else v!r}" for k, v in fields
                          if v is not None and v is not False)
        return f"QueryOptions({shown})"

    def replace(self, **changes: Unpack[QueryArgs]) -> QueryOptions:
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def blocking(self) -> bool:
        """Whether this read waits for a change (an index is given)."""
        return bool(self.index)

    def params(self) -> Params:
        """The options as query parameters, in a fixed order (the token is a header, never here)."""
        params = query_params(index=self.index, wait=self.wait, consistency=self.consistency, dc=self.dc,
                              filter=self.filter, near=self.near, node_meta=self.node_meta)
        if self.cached:
            params.append(("cached", ""))
        for name, value in (("ns", self.namespace), ("partition", self.partition), ("peer", self.peer),
                            ("sameness-group", self.sameness_group)):
            if value:
                params.append((name, value))
        return params

    def headers(self) -> dict[str, str]:
        """The options sent as headers: the request's token, and Cache-Control for `max_age`."""
        headers: dict[str, str] = {}
        if self.token:
            headers["X-Consul-Token"] = self.token
        if self.max_age is not None:
            headers["Cache-Control"] = f"max-age={int(parse_duration(self.max_age))}"
        return headers


def query_options(options: QueryOptions | None, args: QueryArgs) -> QueryOptions:
    """`options` (or the defaults) with keyword `args` applied over it."""
    return (options or QueryOptions()).replace(**args)


DEFAULT_BLOCKING_WAIT = 300.0  # the server's default_query_time
MAX_BLOCKING_WAIT = 600.0  # the server's max_query_time


def wait_seconds(wait: str | float | None) -> float | None:
    """A wait given as seconds or a Go duration string, in seconds."""
    if wait is None:
        return None
    seconds = parse_duration(wait)
    if seconds < 0:
        raise ValueError(f"negative wait {wait!r}")
    return seconds


def format_wait(wait: str | float) -> str:
    """Render a wait as a Go duration: whole seconds as `30s`, else milliseconds (`15500ms`)."""
    seconds = wait_seconds(wait) or 0.0
    ms = round(seconds * 1000)
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


def go_duration(value: str | float) -> str:
    """A duration for a JSON body as Go's Duration.String() renders it; strings are validated, kept."""
    if isinstance(value, str):
        parse_duration(value)
        return value.strip()
    return format_duration(float(value))


def format_duration_ms(value: str | float | None) -> str | None:
    """Durations in request bodies (LockDelay, TTL...) are sent the Go client's way: `<ms>ms`."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip() == "":
        return ""
    return f"{round(parse_duration(value) * 1000)}ms"


def query_params(
    *,
    index: int | None = None,
    wait: str | float | None = None,
    consistency: Consistency | None = None,
    dc: str | None = None,
    filter: str | None = None,
    near: str | None = None,
    node_meta: NodeMeta | None = None,
) -> Params:
    """The standard read options as query parameters (None means "leave out")."""
    params: Params = []
    if index:
        params.append(("index", str(int(index))))
    if wait is not None:
        params.append(("wait", format_wait(wait)))
    if consistency in ("stale", "consistent"):
        params.append((consistency, ""))
    elif consistency not in (None, "default"):
        raise ValueError(f"unknown consistency mode {consistency!r}")
    if dc:
        params.append(("dc", dc))
    if filter:
        params.append(("filter", filter))
    if near:
        params.append(("near", near))
    if node_meta:
        if isinstance(node_meta, Mapping):
            params.extend(("node-meta", f"{k}:{v}") for k, v in node_meta.items())
        else:
            for m in node_meta:
                if ":" not in m:
                    raise ValueError(f"node-meta {m!r}: want key:value")
                params.append(("node-meta", m))
    return params


def tag_params(tag: str | Iterable[str] | None) -> Params:
    """`?tag=` repeated once per tag (Consul ANDs them)."""
    if tag is None:
        return []
    if isinstance(tag, str):
        return [("tag", tag)]
    return [("tag", t) for t in tag]


def read_timeout(base: float | None, index: int | None, wait: str | float | None) -> float | None:
    """How long to wait for a reply: a blocking query may legitimately take wait + wait/16."""
    if base is None or not index:
        return base
    seconds = wait_seconds(wait)
    if not seconds:
        seconds = DEFAULT_BLOCKING_WAIT
    seconds = min(seconds, MAX_BLOCKING_WAIT)
    return max(base, seconds + seconds / 16 + 5.0)
