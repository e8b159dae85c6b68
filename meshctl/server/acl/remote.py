"""ACLs on client agents: tokens resolved by the servers, enforced locally.

A client agent keeps no ACL data. For each local `/v1/agent/*` request it asks a server
what the request's token may do (`GET /v1/internal/meshctl/acl/resolve`, the token in
X-Consul-Token), caches the answer for `acl.token_ttl` (30 s, as Consul), and enforces it
with the servers' own `ACLEnforcer` logic (`RemoteACLEnforcer`), so permissions and error
texts are the same on both. "ACL not found" is cached briefly too. When no server answers,
Consul's default `acl.down_policy = "extend-cache"` applies: a token resolved before keeps
its last answer; one never seen is refused.

The resolve endpoint answers only for the token the request carries (as `acl/token/self`),
with that token's AccessorID and the rules of its own policies and identities: never
another token's secret. Secrets are never logged; the cache is keyed by them in memory only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from meshctl.server.acl.authorizer import Authorizer
from meshctl.server.acl.enforce import ACL_NOT_FOUND, ACLEnforcer, ACLSettings, Item, TokenGrant
from meshctl.server.http.common import CTX_KEY, HTTPError, Request, Route, respond, route

if TYPE_CHECKING:
    from meshctl.server.state import State

log = logging.getLogger(__name__)

RESOLVE_PATH = "/v1/internal/meshctl/acl/resolve"
NOT_FOUND_TTL = 5.0  # an unknown token is re-asked at most this often (capped by token_ttl)
DOWN_RETRY = 1.0  # after a failed refresh, a stale answer is used this long before asking again
CACHE_LIMIT = 4096
RESOLUTION_KEY = web.RequestKey("meshctl_acl_resolution", object)
DOWN_TEXT = ("Permission denied: no server could resolve the ACL token and it is not cached "
             "(ACL down policy: extend-cache)")
ROUTES: list[Route] = []


# ---------------------------------------------------------------------- server side


@route(ROUTES, "GET", RESOLVE_PATH)
async def resolve_token(req: Request) -> web.Response:
    """What a client agent needs to enforce the request's own token (servers only)."""
    enforcer = req.ctx.acl
    if not enforcer.enabled:
        return respond(req, {"Enabled": False})
    if not isinstance(enforcer, ACLEnforcer):  # ACLs on, but no ACL data here to tell from: refuse
        raise HTTPError(403, DOWN_TEXT)
    secret = enforcer.secret_of(req)
    grant = enforcer.grant_of(enforcer.state(), secret)
    if grant is None:
        raise HTTPError(403, ACL_NOT_FOUND)
    return respond(req, {"Enabled": True, "DefaultPolicy": enforcer.settings.default_policy,
                         "EnableKeyListPolicy": enforcer.settings.enable_key_list_policy,
                         "AccessorID": grant.accessor, "Rules": grant.rules,
                         "ServiceIdentities": grant.services, "NodeIdentities": grant.nodes})


# ---------------------------------------------------------------------- client side


@dataclass
class Resolution:
    """One token as the servers described it: ACLs off, an authorizer, unknown, or no answer."""

    enabled: bool
    authorizer: Authorizer | None = None  # None with enabled: unknown token (or `down`)
    default_policy: str = "allow"
    enable_key_list_policy: bool = False
    down: bool = False  # no server answered and nothing was cached
    expires: float = field(default=0.0, compare=False)


class ACLResolver:
    """Resolves token secrets through a server, with a TTL cache and the extend-cache down policy."""

    def __init__(self, session: aiohttp.ClientSession, base: Callable[[], str], ttl: float = 30.0,
                 enabled_guess: bool = True) -> None:
        self.session = session
        self.base = base
        self.ttl = ttl
        self.last_enabled = enabled_guess  # what to assume when no server has answered yet
        self._cache: dict[str, Resolution] = {}
        self._inflight: dict[str, asyncio.Task[Resolution]] = {}

    async def resolve(self, secret: str) -> Resolution:
        """The cached resolution of `secret` while fresh, else the servers' (one request per secret at a time)."""
        cached = self._cache.get(secret)
        if cached is not None and cached.expires > time.monotonic():
            return cached
        task = self._inflight.get(secret)
        if task is None:
            # a task of its own: a caller that goes away does not cancel the others' answer
            task = asyncio.ensure_future(self._refresh(secret, cached))
            self._inflight[secret] = task
            task.add_done_callback(lambda _t: self._inflight.pop(secret, None))
        return await asyncio.shield(task)

    async def _refresh(self, secret: str, cached: Resolution | None) -> Resolution:
        now = time.monotonic()
        try:
            result = await self._fetch(secret)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("resolving an ACL token failed: %s", exc)  # the token itself is never logged
            if cached is not None:  # extend-cache: keep the last answer, ask again soon
                cached.expires = now + min(DOWN_RETRY, self.ttl)
                return cached
            return Resolution(enabled=self.last_enabled, down=True)
        self.last_enabled = result.enabled
        known = result.authorizer is not None or not result.enabled
        result.expires = now + (self.ttl if known else min(NOT_FOUND_TTL, self.ttl))
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[secret] = result
        return result

    async def _fetch(self, secret: str) -> Resolution:
        async with self.session.get(f"{self.base()}{RESOLVE_PATH}", headers={"X-Consul-Token": secret},
                                    timeout=aiohttp.ClientTimeout(total=10)) as resp:
            text = await resp.text()
            if resp.status == 403 and text.strip() == ACL_NOT_FOUND:
                return Resolution(enabled=True, default_policy=self._cached_policy())
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status, message=text[:200])
            body = await resp.json(content_type=None)
        if not isinstance(body, dict):
            raise ValueError("bad ACL resolve answer")
        if not body.get("Enabled"):
            return Resolution(enabled=False)
        policy = str(body.get("DefaultPolicy") or "deny")
        grant = TokenGrant(str(body.get("AccessorID") or ""), list(body.get("Rules") or []),
                           list(body.get("ServiceIdentities") or []), list(body.get("NodeIdentities") or []))
        return Resolution(enabled=True, authorizer=grant.authorizer(policy == "allow"), default_policy=policy,
                          enable_key_list_policy=bool(body.get("EnableKeyListPolicy")))

    def _cached_policy(self) -> str:
        return next((r.default_policy for r in self._cache.values() if r.enabled), "deny")

    def forget(self) -> None:
        self._cache.clear()


class RemoteACLEnforcer(ACLEnforcer):
    """`ACLEnforcer` whose authorizers come from the servers (the request's `Resolution`).

    The hooks stay synchronous: the request handler awaits `prepare(raw)` first, which puts the
    resolution on the request; the hooks then only read it.
    """

    def __init__(self, settings: ACLSettings, resolver: ACLResolver) -> None:
        super().__init__(replace(settings), state_of=_no_state)  # shares the tokens dict
        self.resolver = resolver

    async def prepare(self, raw: web.Request) -> None:
        """Resolve the request's token (before its handler runs)."""
        resolution = await self.resolver.resolve(self._secret_of_raw(raw))
        raw[RESOLUTION_KEY] = resolution
        if resolution.authorizer is not None:
            # the servers' settings, for the X-Consul-Default-ACL-Policy header and key listings
            # (this enforcer's own copy of the settings: only the tokens dict is shared)
            self.settings.enable_key_list_policy = resolution.enable_key_list_policy
            self.settings.default_policy = resolution.default_policy

    def _secret_of_raw(self, raw: web.Request) -> str:
        return self.secret_of(Request(raw, raw.app[CTX_KEY]))

    def _resolution(self, req: Request) -> Resolution:
        found = req.raw.get(RESOLUTION_KEY)
        if not isinstance(found, Resolution):  # a route that did not prepare: refuse, never allow
            return Resolution(enabled=True, down=True)
        return found

    def resolve(self, secret: str) -> Authorizer:  # pragma: no cover - requests go through for_request
        raise HTTPError(403, DOWN_TEXT)

    def for_request(self, req: Request) -> Authorizer:
        found = self._resolution(req)
        if found.authorizer is None:
            raise HTTPError(403, DOWN_TEXT if found.down else ACL_NOT_FOUND)
        return found.authorizer

    def authorize(self, req: Request, resource: str, name: str, access: str) -> None:
        if self._resolution(req).enabled:
            super().authorize(req, resource, name, access)

    def _keep(self, req: Request, items: list[Item], pred: Callable[[Authorizer, Item], bool]) -> list[Item]:
        if not self._resolution(req).enabled:
            return items
        return super()._keep(req, items, pred)


def _no_state() -> State:
    raise RuntimeError("a client agent has no ACL state")


def guarded(enforcer: RemoteACLEnforcer, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
            ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """`handler` after the request's token is resolved."""

    async def wrapped(raw: web.Request) -> web.StreamResponse:
        await enforcer.prepare(raw)
        return await handler(raw)

    return wrapped


__all__ = ["ACLResolver", "RemoteACLEnforcer", "Resolution", "guarded", "resolve_token"]
