#!/usr/bin/env python3
"""A tiny HTTP backend that registers itself in Consul (or meshctl's store) with an HTTP check.

    python3 backend.py web-1 8001 --consul 127.0.0.1:8500 [--service web]

GET /          -> "hello from web-1\\n" (every backend names itself in its answers)
GET /health    -> 200 "ok", or 500 after POST /fail (POST /recover turns it back to 200)
GET /slow?s=N  -> answers after N seconds (to hold a connection open across a proxy reload)

The agent runs the check (GET /health every second); on SIGTERM/SIGINT the backend
deregisters itself and exits. Used by examples/haproxy/run.py and examples/nginx/run.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from meshctl.client import Client


class State:
    """What the handler shares: the backend's name and whether /health fails."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.healthy = True


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to `state`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path == "/health":
                self._reply(200 if state.healthy else 500, "ok\n" if state.healthy else "failing\n")
            elif url.path == "/slow":
                time.sleep(float(parse_qs(url.query).get("s", ["1"])[0]))
                self._reply(200, f"hello from {state.name} (slow)\n")
            else:
                self._reply(200, f"hello from {state.name}\n")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path == "/fail":
                state.healthy = False
            elif self.path == "/recover":
                state.healthy = True
            else:
                self._reply(404, "unknown\n")
                return
            self._reply(200, f"{state.name} healthy={state.healthy}\n")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve, register, wait for SIGTERM/SIGINT, deregister."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", help="instance name (also the service ID)")
    p.add_argument("port", type=int)
    p.add_argument("--consul", default=None, help="agent address (default: CONSUL_HTTP_ADDR)")
    p.add_argument("--service", default="web", help="service name (default web)")
    p.add_argument("--tag", action="append", default=["http"], help="service tags (default: http)")
    args = p.parse_args(argv)

    state = State(args.name)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    client = Client(args.consul)
    client.agent.service_register({
        "ID": args.name, "Name": args.service, "Address": "127.0.0.1", "Port": args.port, "Tags": args.tag,
        "Check": {"CheckID": f"{args.name}-http", "Name": f"HTTP on {args.name}",
                  "HTTP": f"http://127.0.0.1:{args.port}/health", "Interval": "1s", "Timeout": "3s"},
    })
    print(f"backend {args.name} serving on 127.0.0.1:{args.port}, registered as {args.service}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    try:
        client.agent.service_deregister(args.name)
    except Exception as e:  # the agent may already be gone
        print(f"backend {args.name}: deregister failed: {e}", file=sys.stderr)
    httpd.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
