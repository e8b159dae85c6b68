"""Helpers for agent integration tests: client agents, small backends, dig, polling."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from devserver import DevServer, free_port


def start_client_agent(tmp_path, join: str, *args: str, node: str = "client1", host: str = "127.0.0.1",
                       http_port: int | None = None, dns_port: int | None = None) -> DevServer:
    """`meshctl agent -join <server>` (a client agent) on free ports; ready when its API answers.

    `host`: another loopback address to bind and serve on (agents of several "hosts" can then
    share one HTTP port, as real ones share 8500); `dns_port=0` turns DNS off.
    """
    http_port = free_port() if http_port is None else http_port
    dns_port = free_port() if dns_port is None else dns_port
    log_path = str(tmp_path / f"client-{node}-{http_port}.log")
    cmd = [sys.executable, "-m", "meshctl", "agent", "-node", node, "-http-port", str(http_port),
           "-dns-port", str(dns_port), "-join", join, *args]
    if host != "127.0.0.1":
        cmd += ["-client", host, "-bind", host]
    env = {k: v for k, v in os.environ.items() if k != "CONSUL_HTTP_ADDR"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    agent = DevServer(proc, http_port, dns_port, node, log_path, list(args), host)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"client agent exited with {proc.returncode}:\n{agent.log()}")
        try:
            if requests.get(f"{agent.url}/v1/agent/self", timeout=1).status_code == 200:
                return agent
        except requests.RequestException:
            pass
        time.sleep(0.1)
    agent.stop(signal.SIGKILL)
    raise RuntimeError(f"client agent did not become ready:\n{agent.log()}")


class HTTPBackend:
    """A tiny HTTP server on 127.0.0.1 whose answer code can be changed; `stop()` kills it."""

    def __init__(self, code: int = 200) -> None:
        self.code = code
        self.hits = 0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                backend.hits += 1
                body = b"ok\n"
                self.send_response(backend.code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TCPBackend:
    """A listening TCP socket on 127.0.0.1 that accepts and closes connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                continue

    def stop(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def dig(port: int, name: str, qtype: str = "A", *opts: str) -> list[str]:
    """`dig @127.0.0.1 -p port name qtype +short`: the answer lines."""
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, qtype, "+short", "+time=2", "+tries=2", *opts],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    return sorted(line for line in out.splitlines() if line and not line.startswith(";"))


def dig_full(port: int, name: str, qtype: str = "A", *opts: str) -> str:
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, qtype, "+time=2", "+tries=2", *opts],
                          capture_output=True, text=True, timeout=20, check=True).stdout


def passing_ids(server_url: str, service: str) -> set[str]:
    entries = requests.get(f"{server_url}/v1/health/service/{service}?passing", timeout=5).json()
    return {e["Service"]["ID"] for e in entries}
