"""Agent caching (`?cached`): reads answered from this agent's cache, as Consul's agent/cache.

Consul caches a few read endpoints per (path, query, token) on the agent that was asked:

* background refresh (catalog/services, catalog/service/<name>, health/service/<name>): the
  first read is a MISS fetched as usual; from then on the agent keeps the entry current with
  blocking queries of its own (`?index=<last X-Consul-Index>`), so a HIT is at most one write
  behind. `Age` is 0 while the refresh reaches the servers, else the time since it last did.
  `Cache-Control` is ignored, as Consul ignores it for these types.
* simple (catalog/datacenters, query/<id>/execute): the entry is kept as fetched; `Cache-Control:
  max-age=N` (or `must-revalidate` with it) asks for one no older than N seconds, refetched
  otherwise; `stale-if-error=N` serves the old entry when that refetch fails, within N more seconds.

Answers carry `X-Cache: HIT|MISS` and, on a hit, `Age` in seconds. `?cached` with `?index`
blocks on the cache entry until its index passes the one asked for. Entries nobody read for
three days (Consul's TTL) stop refreshing and are dropped. The refreshes go to this agent's own
HTTP API, so they take the same path (leader forwarding, a client agent's proxy) as any read.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from meshctl.server.http.common import DEFAULT_WAIT, MAX_WAIT, HTTPError

log = logging.getLogger(__name__)

REFRESHED = re.compile(r"^/v1/(catalog/services|catalog/service/[^/]+|health/service/[^/]+)$")
SIMPLE = re.compile(r"^/v1/(catalog/datacenters|query/[^/]+/execute)$")
ENTRY_TTL = 3 * 24 * 3600.0  # Consul's cache entries live 72 h after their last read
REFRESH_WAIT = "10m"  # the blocking query the refresh keeps open (Consul's default for the cache)
RETRY_MAX = 30.0  # backoff cap between failed refreshes
KEPT_HEADERS = ("Content-Type", "X-Consul-Index", "X-Consul-KnownLeader", "X-Consul-LastContact",
                "X-Consul-Effective-Consistency", "X-Consul-Default-ACL-Policy",
                "X-Consul-Results-Filtered-By-ACLs", "X-Consul-Translate-Addresses")
UNKEYED = ("cached", "index", "wait")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Entry:
    """One cached answer and when it was last known current."""

    body: bytes
    headers: dict[str, str]
    index: int
    fetched_at: float
    read_at: float
    lost_contact: float | None = None  # since when the background refresh fails
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class CacheControl:
    """What a request's Cache-Control asks of a simple-cache entry (seconds; None: not asked)."""

    max_age: float | None = None
    stale_if_error: float | None = None


def parse_cache_control(header: str) -> CacheControl:
    values: dict[str, float] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() in ("max-age", "stale-if-error"):
            try:
                values[name.lower()] = max(float(int(value.strip())), 0.0)
            except ValueError:
                raise HTTPError(400, f"Cache-Control {name} value is not a valid integer: {value}") from None
    return CacheControl(values.get("max-age"), values.get("stale-if-error"))


def _index(headers: dict[str, str]) -> int:
    try:
        return int(headers.get("X-Consul-Index", "0"))
    except ValueError:
        return 0


class AgentCache:
    """The agent's cache: an aiohttp middleware answering `?cached` reads of the cacheable endpoints."""

    def __init__(self) -> None:
        self.base_url = ""  # this agent's own HTTP API, set once it listens
        self.entries: dict[tuple[str, tuple[tuple[str, str], ...], str], Entry] = {}
        self._session: aiohttp.ClientSession | None = None

    def listening(self, host: str, port: int) -> None:
        host = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
        self.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def close(self) -> None:
        for entry in self.entries.values():
            if entry.task is not None:
                entry.task.cancel()
        self.entries.clear()
        if self._session is not None:
            await self._session.close()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "GET" or "cached" not in request.query:
            return await handler(request)
        refreshed = bool(REFRESHED.match(request.path))
        if not refreshed and not SIMPLE.match(request.path):
            return await handler(request)  # Consul ignores ?cached where it does not cache
        if "consistent" in request.query:
            raise HTTPError(400, "Cannot specify ?cached with ?consistent, conflicting semantics.")
        token = _token(request)
        key = (request.path, tuple(sorted((k, v) for k, v in request.query.items() if k not in UNKEYED)), token)
        control = CacheControl() if refreshed else parse_cache_control(request.headers.get("Cache-Control", ""))
        now = time.monotonic()
        entry = self.entries.get(key)
        if entry is not None and not refreshed and control.max_age is not None \
                and now - entry.fetched_at > control.max_age:
            return await self._revalidate(request, handler, key, entry, control)
        if entry is None:
            return await self._miss(request, handler, key, refreshed)
        entry.read_at = now
        await self._block(request, entry)
        return self._hit(entry, refreshed)

    async def _miss(self, request: web.Request, handler: Handler, key: tuple[str, tuple[tuple[str, str], ...], str],
                    refreshed: bool) -> web.StreamResponse:
        response = await handler(request)
        entry = self._store(key, response)
        if entry is not None and refreshed and self.base_url:
            entry.task = asyncio.ensure_future(self._refresh(key, entry))
        response.headers["X-Cache"] = "MISS"
        return response

    async def _revalidate(self, request: web.Request, handler: Handler,
                          key: tuple[str, tuple[tuple[str, str], ...], str], entry: Entry,
                          control: CacheControl) -> web.StreamResponse:
        """A simple entry older than max-age: fetch again; on failure the old one within stale-if-error."""
        try:
            response = await handler(request)
            failed = response.status >= 500
        except (HTTPError, web.HTTPException, aiohttp.ClientError, OSError):
            response, failed = None, True
        grace = (control.max_age or 0.0) + (control.stale_if_error or 0.0)
        if failed and control.stale_if_error is not None and time.monotonic() - entry.fetched_at <= grace:
            entry.read_at = time.monotonic()
            return self._hit(entry, refreshed=False)
        if response is None:
            raise HTTPError(500, "cache: the servers could not be reached")
        self._store(key, response)
        response.headers["X-Cache"] = "MISS"
        return response

    def _store(self, key: tuple[str, tuple[tuple[str, str], ...], str], response: web.StreamResponse) -> Entry | None:
        if response.status != 200 or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
            return None
        headers = {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers}
        now = time.monotonic()
        entry = Entry(response.body, headers, _index(headers), now, now)
        old = self.entries.get(key)
        if old is not None and old.task is not None:
            old.task.cancel()
        self.entries[key] = entry
        return entry

    async def _block(self, request: web.Request, entry: Entry) -> None:
        """`?cached&index=N`: wait until the entry's index passes N (or ?wait runs out)."""
        try:
            wanted = int(request.query.get("index", "0") or 0)
        except ValueError:
            raise HTTPError(400, "Invalid index") from None
        if wanted <= 0 or entry.index > wanted or entry.task is None:
            return
        from meshctl.durations import parse_duration

        try:
            wait = parse_duration(request.query["wait"]) if "wait" in request.query else DEFAULT_WAIT
        except ValueError:
            raise HTTPError(400, "Invalid wait time") from None
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT)
        while entry.index <= wanted and (remaining := deadline - time.monotonic()) > 0:
            entry.changed.clear()
            try:
                await asyncio.wait_for(entry.changed.wait(), remaining)
            except TimeoutError:
                break

    def _hit(self, entry: Entry, refreshed: bool) -> web.Response:
        now = time.monotonic()
        if refreshed:
            age = 0.0 if entry.lost_contact is None else now - entry.lost_contact
        else:
            age = now - entry.fetched_at
        headers = {**entry.headers, "X-Cache": "HIT", "Age": str(int(age))}
        content_type = headers.pop("Content-Type", "application/json").split(";")[0]
        return web.Response(body=entry.body, headers=headers, content_type=content_type)

    async def _refresh(self, key: tuple[str, tuple[tuple[str, str], ...], str], entry: Entry) -> None:
        """Keep a background-refresh entry current with blocking queries until nobody reads it."""
        path, query, token = key
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        backoff = 0.0
        while time.monotonic() - entry.read_at < ENTRY_TTL:
            params = [*query, ("index", str(entry.index)), ("wait", REFRESH_WAIT)]
            headers = {"X-Consul-Token": token} if token else {}
            try:
                async with self._session.get(f"{self.base_url}{path}?{urlencode(params)}", headers=headers) as resp:
                    body = await resp.read()
                    if 400 <= resp.status < 500:  # the token lost its rights, or the query is gone
                        break
                    if resp.status != 200:
                        raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
                    kept = {h: resp.headers[h] for h in KEPT_HEADERS if h in resp.headers}
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if entry.lost_contact is None:
                    entry.lost_contact = time.monotonic()
                    log.warning("cache: refreshing %s failed: %s", path, exc)
                backoff = min(max(backoff * 2, 1.0), RETRY_MAX)
                await asyncio.sleep(backoff)
                continue
            backoff, entry.lost_contact = 0.0, None
            entry.fetched_at = time.monotonic()
            if body != entry.body or _index(kept) != entry.index:
                entry.body, entry.headers, entry.index = body, kept, _index(kept)
                entry.changed.set()
        if self.entries.get(key) is entry:
            del self.entries[key]


def _token(request: web.Request) -> str:
    """The caller's token as the handlers read it (?token, X-Consul-Token, Bearer): part of the key."""
    if "token" in request.query:
        return request.query["token"]
    header = request.headers.get("X-Consul-Token", "")
    if header:
        return header
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""
