"""`Client`: one pooled requests Session, and the single `_request` every area goes through.

Tools use the areas (`client.kv`, `client.health`, `client.snapshot` ...), never the plumbing below.
"""

from __future__ import annotations

import json as jsonlib
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar, Unpack
from urllib.parse import quote

import requests
import urllib3

from meshctl.client.config import DEFAULT_TIMEOUT, ClientConfig, resolve_config
from meshctl.client.errors import ConsulError, Unreachable, error_for
from meshctl.client.query import Params, QueryOptions, read_timeout
from meshctl.client.transport import ServerNameAdapter, UnixSocketAdapter
from meshctl.client.types import QueryMeta, Reply

if TYPE_CHECKING:
    from meshctl.client.acl import ACL
    from meshctl.client.agent import Agent
    from meshctl.client.catalog import Catalog
    from meshctl.client.event import Event
    from meshctl.client.health import Health
    from meshctl.client.kv import KV
    from meshctl.client.lock import Lock, LockOptions, Semaphore
    from meshctl.client.operator import Operator
    from meshctl.client.session import Session
    from meshctl.client.snapshot import Snapshot
    from meshctl.client.status import Status
    from meshctl.client.txn import Txn

log = logging.getLogger(__name__)

T = TypeVar("T")
_NO_BODY = object()


class DecodeError(ConsulError):
    """Consul answered with a success status but a body that is not the expected JSON."""

    def _message(self) -> str:
        return f"Failed to decode response from {self.url}: {self.body}"


def quote_segment(value: str) -> str:
    """Percent-encode one path segment (a service, node, check or session name)."""
    if not value:
        raise ValueError("empty name in request path")
    return quote(value, safe="")


def quote_key(key: str) -> str:
    """Percent-encode a KV key, keeping its `/` separators."""
    return quote(key, safe="/")


def _describe(exc: BaseException) -> str:
    """A short reason for a transport failure: the innermost OS error, or the exception text."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    best = ""
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return e.strerror[:1].lower() + e.strerror[1:]
        if isinstance(e, (requests.Timeout, TimeoutError)) or "timed out" in str(e).lower():
            best = best or "timeout"
        for nxt in (getattr(e, "reason", None), e.__cause__, e.__context__, *e.args):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    return best or str(exc)


class Client:
    """A Consul HTTP API client; areas hang off it: `client.kv.get("k")`, `client.health.service("web")`.

    Configuration comes from the arguments, then Consul's environment variables
    (see `meshctl.client.config`). The token is sent as `X-Consul-Token`, never in URLs.
    """

    def __init__(
        self,
        addr: str | None = None,
        token: str | None = None,
        dc: str | None = None,
        *,
        scheme: str | None = None,
        verify: bool | str | None = None,
        cert: tuple[str, str] | str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        token_file: str | None = None,
        config: ClientConfig | None = None,
        pool_size: int = 32,
    ) -> None:
        self.config = config or resolve_config(
            addr, token, dc, token_file=token_file, scheme=scheme, verify=verify, cert=cert, timeout=timeout
        )
        self.http = self._make_session(pool_size)

        from meshctl.client.acl import ACL
        from meshctl.client.agent import Agent
        from meshctl.client.catalog import Catalog
        from meshctl.client.coordinate import Coordinate
        from meshctl.client.event import Event
        from meshctl.client.health import Health
        from meshctl.client.kv import KV
        from meshctl.client.operator import Operator
        from meshctl.client.prepared_query import PreparedQuery
        from meshctl.client.session import Session
        from meshctl.client.snapshot import Snapshot
        from meshctl.client.status import Status
        from meshctl.client.txn import Txn

        self.kv: KV = KV(self)
        self.catalog: Catalog = Catalog(self)
        self.health: Health = Health(self)
        self.agent: Agent = Agent(self)
        self.session: Session = Session(self)
        self.event: Event = Event(self)
        self.txn: Txn = Txn(self)
        self.status: Status = Status(self)
        self.operator: Operator = Operator(self)
        self.acl: ACL = ACL(self)
        self.snapshot: Snapshot = Snapshot(self)
        self.query: PreparedQuery = PreparedQuery(self)
        self.coordinate: Coordinate = Coordinate(self)

    def __repr__(self) -> str:
        return f"Client({self.config.base_url!r})"

    def _make_session(self, pool_size: int) -> requests.Session:
        cfg = self.config
        http = requests.Session()
        http.trust_env = False  # proxies and netrc are not Consul's configuration
        http.verify = cfg.verify
        if cfg.verify is False:  # the user opted out (CONSUL_HTTP_SSL_VERIFY=false): no warning per request
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        if cfg.cert:
            http.cert = cfg.cert
        if cfg.auth:
            http.auth = cfg.auth
        if cfg.token:
            http.headers["X-Consul-Token"] = cfg.token
        if cfg.scheme == "unix":
            http.mount("http://", UnixSocketAdapter(cfg.address, pool_maxsize=pool_size))
        else:
            http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=pool_size))
            if cfg.tls_server_name:
                http.mount("https://", ServerNameAdapter(cfg.tls_server_name, pool_maxsize=pool_size))
            else:
                http.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=pool_size))
        return http

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- locks (meshctl.client.lock) -----------------------------------------------------

    def lock(self, key: str, **options: Unpack[LockOptions]) -> Lock:
        """A `Lock` on `key` following Consul's lock protocol: `with client.lock("svc/leader"): ...`."""
        from meshctl.client.lock import Lock

        return Lock(self, key, **options)

    def semaphore(self, prefix: str, limit: int, **options: Unpack[LockOptions]) -> Semaphore:
        """A `Semaphore` with `limit` slots at `prefix`, following Consul's semaphore protocol."""
        from meshctl.client.lock import Semaphore

        return Semaphore(self, prefix, limit, **options)

    # -- the one request path (the areas' plumbing; tools use the areas) -----------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: bytes | str | None = None,
        json: object = _NO_BODY,
        timeout: float | None = None,
        accept: Iterable[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send `method /v1/<path>`; raise the matching `ConsulError` unless 2xx or in `accept`."""
        url = f"{self.config.base_url}/v1/{path}"
        params = list(params or [])
        if self.config.datacenter and not any(k == "dc" for k, _ in params):
            params.append(("dc", self.config.datacenter))
        body: bytes | str | None = data
        all_headers = dict(headers or {})
        if json is not _NO_BODY:
            body = jsonlib.dumps(json)
            all_headers["Content-Type"] = "application/json"
        read = timeout if timeout is not None else self.config.timeout
        log.debug("%s %s", method, path)
        try:
            resp = self.http.request(
                method, url, params=params, data=body, headers=all_headers,
                timeout=(self.config.connect_timeout, read),
            )
        except requests.RequestException as e:
            raise Unreachable(None, _describe(e), method, url) from e
        if not (200 <= resp.status_code < 300) and resp.status_code not in accept:
            raise error_for(resp.status_code, resp.text, method, url)
        return resp

    @staticmethod
    def _json(resp: requests.Response) -> object:
        """Decode a JSON body; an empty body is None."""
        if not resp.content:
            return None
        try:
            value: object = resp.json()
        except ValueError as e:
            raise DecodeError(resp.status_code, str(e), resp.request.method or "", resp.url) from e
        return value

    def _query(
        self,
        path: str,
        options: QueryOptions,
        decode: Callable[[object], T],
        *,
        params: Params | None = None,
        missing: Callable[[], T] | None = None,
    ) -> Reply[T]:
        """A GET with `options`; `decode` builds the value from the JSON, `missing` for a 404 (else raise)."""
        all_params = options.params()
        all_params.extend(params or [])
        resp = self._request("GET", path, params=all_params, headers=options.headers(),
                             timeout=read_timeout(self.config.timeout, options.index, options.wait),
                             accept=(404,) if missing else ())
        meta = QueryMeta.from_headers(resp.headers)
        if resp.status_code == 404 and missing is not None:
            return Reply.of(missing(), meta, found=False)
        return Reply.of(decode(self._json(resp)), meta)

    def _write(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: bytes | str | None = None,
        json: object = _NO_BODY,
        dc: str | None = None,
        timeout: float | None = None,
    ) -> object:
        """A write; returns the decoded JSON body (None for an empty body)."""
        params = list(params or [])
        if dc:
            params.append(("dc", dc))
        return self._json(self._request(method, path, params=params, data=data, json=json, timeout=timeout))


class Area:
    """Base of the per-area objects (`client.kv`, `client.catalog`...)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _get_json(self, path: str, params: Params | None = None) -> object:
        """A plain (non-blocking) GET of `/v1/<path>`, decoded."""
        return self._client._json(self._client._request("GET", path, params=params))


def dc_params(dc: str | None) -> Params:
    """`?dc=` when a datacenter is given."""
    return [("dc", dc)] if dc else []
