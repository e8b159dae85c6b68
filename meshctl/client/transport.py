"""requests transport adapters: TLS server-name override and HTTP over a unix socket."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import urllib3
from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

if TYPE_CHECKING:
    from urllib3.util.timeout import _TYPE_TIMEOUT


class ServerNameAdapter(HTTPAdapter):
    """Verify (and send SNI for) a fixed TLS server name, as CONSUL_TLS_SERVER_NAME asks."""

    def __init__(self, server_name: str, pool_maxsize: int = 10) -> None:
        self._server_name = server_name
        super().__init__(pool_maxsize=pool_maxsize)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:  # Any: requests' own signature
        pool_kwargs["server_hostname"] = self._server_name
        pool_kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


class _UnixConnection(HTTPConnection):
    def __init__(self, path: str, timeout: _TYPE_TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if isinstance(self.timeout, (int, float)):
            sock.settimeout(self.timeout)
        try:
            sock.connect(self._unix_path)
        except OSError as e:
            sock.close()
            raise urllib3.exceptions.NewConnectionError(self, f"Failed to establish a new connection: {e}") from e
        return sock


class _UnixPool(HTTPConnectionPool):
    def __init__(self, path: str, maxsize: int) -> None:
        super().__init__("localhost", maxsize=maxsize)
        self._unix_path = path

    def _new_conn(self) -> HTTPConnection:
        self.num_connections += 1
        return _UnixConnection(self._unix_path, timeout=self.timeout.connect_timeout)


class UnixSocketAdapter(HTTPAdapter):
    """Send every request over the unix socket at `path` (CONSUL_HTTP_ADDR=unix:///path)."""

    def __init__(self, path: str, pool_maxsize: int = 10) -> None:
        self._unix_path = path
        self._pool = _UnixPool(path, maxsize=pool_maxsize)
        super().__init__()

    def get_connection_with_tls_context(self, request: PreparedRequest, verify: bool | str | None,
                                        proxies: Mapping[str, str] | None = None,
                                        cert: tuple[str, str] | str | None = None) -> HTTPConnectionPool:
        return self._pool

    def get_connection(self, url: str | bytes, proxies: Mapping[str, str] | None = None) -> HTTPConnectionPool:
        return self._pool

    def request_url(self, request: PreparedRequest, proxies: Mapping[str, str] | None) -> str:
        return request.path_url

    def close(self) -> None:
        self._pool.close()
        super().close()
