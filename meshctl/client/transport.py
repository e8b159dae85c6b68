"""requests transport adapters: TLS server-name override and HTTP over a unix socket."""

from __future__ import annotations

import socket
from typing import Any

import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool


class ServerNameAdapter(HTTPAdapter):
    """Verify (and send SNI for) a fixed TLS server name, as CONSUL_TLS_SERVER_NAME asks."""

    def __init__(self, server_name: str, **kwargs: Any) -> None:
        self._server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._server_name
        kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


class _UnixConnection(HTTPConnection):
    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__("localhost", **kwargs)
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
    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__("localhost", **kwargs)
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

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None,
                                        cert: Any = None) -> HTTPConnectionPool:
        return self._pool

    def get_connection(self, url: Any, proxies: Any = None) -> HTTPConnectionPool:
        return self._pool

    def request_url(self, request: Any, proxies: Any) -> str:
        return request.path_url

    def close(self) -> None:
        self._pool.close()
        super().close()
