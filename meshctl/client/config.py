"""Client configuration: explicit arguments first, then Consul's environment variables.

This is the one place that reads `CONSUL_HTTP_*` and friends, following the Go `api`
package's `DefaultConfig()` (api/api.go) so that a shell set up for `consul` works as is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshctl.configfile import ConfigError as ConfigError

DEFAULT_ADDRESS = "127.0.0.1:8500"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5.0

_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")




@dataclass(frozen=True)
class ClientConfig:
    """Everything needed to talk to one Consul agent; build it with `resolve_config()`."""

    address: str = DEFAULT_ADDRESS  # host:port, or a socket path when scheme == "unix"
    scheme: str = "http"  # http | https | unix
    token: str | None = None
    datacenter: str | None = None
    verify: bool | str = True  # False, True, or a CA file / directory
    cert: tuple[str, str] | str | None = None  # client certificate (and key)
    tls_server_name: str | None = None
    auth: tuple[str, str] | None = field(default=None, repr=False)
    timeout: float | None = DEFAULT_TIMEOUT  # read timeout of non-blocking requests
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def __repr__(self) -> str:  # never show the token
        shown = "<set>" if self.token else None
        return (f"ClientConfig(address={self.address!r}, scheme={self.scheme!r}, token={shown}, "
                f"datacenter={self.datacenter!r}, verify={self.verify!r})")

    @property
    def base_url(self) -> str:
        """The URL prefix requests are made against (`http://unix` for a unix socket)."""
        if self.scheme == "unix":
            return "http://unix"
        return f"{self.scheme}://{self.address}"


def parse_env_bool(name: str, value: str) -> bool:
    """Go's strconv.ParseBool, with the variable name in the error."""
    v = value.strip()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"could not parse {name}: invalid boolean value {value!r}")


def split_address(addr: str) -> tuple[str, str | None]:
    """Split `https://host:port` into (`host:port`, `https`); a bare address gives no scheme."""
    addr = addr.strip()
    for scheme in ("http", "https", "unix"):
        prefix = f"{scheme}://"
        if addr.lower().startswith(prefix):
            return addr[len(prefix):].rstrip("/") if scheme != "unix" else addr[len(prefix):], scheme
    return addr.rstrip("/"), None


def read_token_file(path: str) -> str | None:
    """The token stored in `path` (whitespace trimmed), or None if the file is empty."""
    try:
        with open(path) as f:
            token = f.read().strip()
    except OSError as e:
        raise ConfigError(f"Error loading token file {path}: {e.strerror or e}") from e
    return token or None


def resolve_config(
    addr: str | None = None,
    token: str | None = None,
    dc: str | None = None,
    *,
    token_file: str | None = None,
    scheme: str | None = None,
    verify: bool | str | None = None,
    cert: tuple[str, str] | str | None = None,
    ca_file: str | None = None,
    ca_path: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    tls_server_name: str | None = None,
    auth: str | tuple[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Merge arguments over the environment over the defaults into a `ClientConfig`.

    Arguments left as None fall back to the matching variable: CONSUL_HTTP_ADDR,
    CONSUL_HTTP_TOKEN(_FILE), CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT,
    CONSUL_CAPATH, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME, CONSUL_HTTP_AUTH.
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value else None

    # Address and scheme: a scheme in the address wins over CONSUL_HTTP_SSL.
    raw_addr = addr or get("CONSUL_HTTP_ADDR") or DEFAULT_ADDRESS
    address, addr_scheme = split_address(raw_addr)
    if scheme is None:
        scheme = addr_scheme
    if scheme is None:
        ssl = get("CONSUL_HTTP_SSL")
        scheme = "https" if ssl is not None and parse_env_bool("CONSUL_HTTP_SSL", ssl) else "http"
    scheme = scheme.lower()
    if scheme not in ("http", "https", "unix"):
        raise ConfigError(f"Unknown protocol scheme: {scheme}")
    if not address:
        raise ConfigError(f"invalid address {raw_addr!r}")

    # Token: an argument beats the environment; within each, the file beats the value (as in Go).
    if token is None and token_file:
        token = read_token_file(token_file)
    if token is None and get("CONSUL_HTTP_TOKEN_FILE"):
        token = read_token_file(env["CONSUL_HTTP_TOKEN_FILE"])
    if token is None:
        token = get("CONSUL_HTTP_TOKEN")

    # TLS verification: explicit verify, else CA file/dir, else CONSUL_HTTP_SSL_VERIFY.
    if verify is None:
        ca = ca_file or ca_path or get("CONSUL_CACERT") or get("CONSUL_CAPATH")
        verify_env = get("CONSUL_HTTP_SSL_VERIFY")
        if verify_env is not None and not parse_env_bool("CONSUL_HTTP_SSL_VERIFY", verify_env):
            verify = False
        else:
            verify = ca or True

    if cert is None:
        crt = client_cert or get("CONSUL_CLIENT_CERT")
        key = client_key or get("CONSUL_CLIENT_KEY")
        if crt and key:
            cert = (crt, key)
        elif crt:
            cert = crt
        elif key:
            raise ConfigError("a client key needs a client certificate (CONSUL_CLIENT_CERT)")

    if auth is None:
        auth = get("CONSUL_HTTP_AUTH")
    if isinstance(auth, str):
        user, _, password = auth.partition(":")
        auth = (user, password)

    return ClientConfig(
        address=address,
        scheme=scheme,
        token=token,
        datacenter=dc or None,
        verify=verify,
        cert=cert,
        tls_server_name=tls_server_name or get("CONSUL_TLS_SERVER_NAME"),
        auth=auth,
        timeout=timeout,
    )
