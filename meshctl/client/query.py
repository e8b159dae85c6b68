"""Query-string helpers shared by every area: blocking, consistency, filters, durations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, TypedDict

from meshctl.flags import format_duration, parse_duration

Consistency = Literal["default", "stale", "consistent"]
Params = list[tuple[str, str]]



class ReadOptions(TypedDict, total=False):
    """Keyword options of every read that Consul can block on."""

    index: int | None  # block until the data's index passes this (0/None: return at once)
    wait: str | float | None  # longest block: seconds or a Go duration ("30s")
    consistency: Consistency | None  # "default", "stale" or "consistent"
    dc: str | None  # datacenter (default: the client's, else the agent's)


class QueryOptions(ReadOptions, total=False):
    """ReadOptions plus the catalog/health extras."""

    filter: str | None  # go-bexpr filter expression
    near: str | None  # sort by RTT from this node ("_agent" for the local one)
    node_meta: Mapping[str, str] | Iterable[str] | None  # {"k": "v"} or ["k:v", ...]


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
    node_meta: Mapping[str, str] | Iterable[str] | None = None,
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
        items = node_meta.items() if isinstance(node_meta, Mapping) else (m.split(":", 1) for m in node_meta)
        params.extend(("node-meta", f"{k}:{v}") for k, v in items)
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
