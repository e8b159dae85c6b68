"""Helpers for the CLI tests: run `python -m meshctl ...` as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str
    raw: bytes

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_meshctl(*args: str, input: bytes | str | None = None, env: dict[str, str] | None = None,
                cwd: str | os.PathLike | None = None, timeout: float = 60) -> Result:
    """`python -m meshctl *args` with a clean Consul environment (plus `env`)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run([sys.executable, "-m", "meshctl", *args], input=data, capture_output=True,
                          env=full_env, cwd=cwd or REPO, timeout=timeout)
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"),
                  proc.stdout)


class Recorder:
    """A 127.0.0.1 HTTP server that answers every request with one scripted reply and records requests."""

    def __init__(self, status: int = 200, body: bytes = b"[]", headers: dict[str, str] | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        recorder = self
        self.status, self.body, self.headers = status, body, headers or {}

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append((self.command, self.path, dict(self.headers), self.rfile.read(n)))
                self.send_response(recorder.status)
                for k, v in recorder.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(recorder.body)))
                self.end_headers()
                self.wfile.write(recorder.body)

            do_GET = do_PUT = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
