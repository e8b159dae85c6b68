"""A scripted HTTP server on 127.0.0.1 for the client's parsing tests (statuses, headers, bodies).

It is not a Consul double: it answers whatever the test scripts, so the tests can check
how the client maps arbitrary statuses and headers. Behaviour against real Consul
semantics is tested against `meshctl agent -dev` (the `dev_server` fixtures).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeServer:
    """Answers every request with `self.reply`; records requests in `self.requests`."""

    def __init__(self) -> None:
        self.reply = Scripted()
        self.requests: list[Seen] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append(Seen(self.command, self.path, dict(self.headers), body))
                r = fake.reply
                self.send_response(r.status)
                for k, v in r.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.body)))
                self.end_headers()
                self.wfile.write(r.body)

            do_GET = do_PUT = do_DELETE = do_POST = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def script(self, status: int = 200, body: bytes | str = b"", **headers: str) -> None:
        self.reply = Scripted(status, body.encode() if isinstance(body, str) else body,
                              {k.replace("_", "-"): v for k, v in headers.items()})

    @property
    def last(self) -> Seen:
        return self.requests[-1]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()
