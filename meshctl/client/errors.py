"""The client's errors: one class per HTTP status family, so callers never parse codes."""

from __future__ import annotations


class ConsulError(Exception):
    """A request Consul answered with an error status (or, for `Unreachable`, not at all).

    `str()` reads like the Go client: ``Unexpected response code: 500 (No cluster leader)``.
    """

    def __init__(self, status: int | None, body: str = "", method: str = "", url: str = "") -> None:
        self.status = status
        self.body = body
        self.method = method
        self.url = url
        super().__init__(self._message())

    def _message(self) -> str:
        body = self.body.strip()
        if body:
            return f"Unexpected response code: {self.status} ({body})"
        return f"Unexpected response code: {self.status}"

    def __reduce__(self) -> tuple[type[ConsulError], tuple[int | None, str, str, str]]:  # pickle our signature
        return (type(self), (self.status, self.body, self.method, self.url))


class BadRequest(ConsulError):
    """400: the request was malformed (bad wait, conflicting flags, missing name...)."""


class ACLDisabled(ConsulError):
    """401: ACL support is disabled on the agent."""


class PermissionDenied(ConsulError):
    """403: the token lacks a permission, or the token is unknown (`ACL not found`)."""


class NotFound(ConsulError):
    """404: unknown key, session, service or check."""


class MethodNotAllowed(ConsulError):
    """405: wrong HTTP method for the endpoint."""


class Conflict(ConsulError):
    """409: e.g. a transaction that was rolled back (when not decoded as a result)."""


class TooLarge(ConsulError):
    """413: value or transaction too large."""


class RateLimited(ConsulError):
    """429: rate limit exceeded."""


class ServerError(ConsulError):
    """5xx: the agent or servers failed (no leader, invalid session, RPC error...)."""


class Unreachable(ConsulError):
    """The agent could not be reached: connection refused, DNS failure, timeout, TLS failure."""

    def __init__(self, status: None = None, body: str = "", method: str = "", url: str = "") -> None:
        super().__init__(None, body, method, url)

    def _message(self) -> str:
        verb = self.method.capitalize() if self.method else "Request"
        return f'{verb} "{self.url}": {self.body}' if self.url else self.body


_BY_STATUS: dict[int, type[ConsulError]] = {
    400: BadRequest,
    401: ACLDisabled,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: TooLarge,
    429: RateLimited,
}


def error_for(status: int, body: str, method: str = "", url: str = "") -> ConsulError:
    """The exception matching an HTTP error status."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ConsulError)
    return cls(status, body, method, url)
