"""Local HTTP doubles of Marathon and a Mesos master, serving the real JSON samples in ./fixtures.

Marathon and Mesos cannot run here, so these are the honest substitute: the bodies are the
upstream samples (fixtures/*/README.md give their sources and licences: allegro/marathon-consul
and mesosphere/marathon, Apache-2.0; mesosphere/mesos-dns, Apache-2.0).
The one change made to them: non-loopback host addresses that checks would probe are
rewritten to 127.0.0.1 (only loopback may be contacted here), and a master's `pid`/`leader`
point at the double's own port. Tests change what a double serves while it runs.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_json(relative: str) -> Any:
    """One fixture file, parsed."""
    return json.loads((FIXTURES / relative).read_text())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Double:
    """Base: a threaded HTTP server on 127.0.0.1 with a mode switch (ok, garbage, hang, down)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.hang_seconds = 30.0
        self.requests: list[str] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                double.requests.append(self.path)
                double.dispatch(self)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def dispatch(self, h: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def reply(self, h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        if self.mode == "hang":
            time.sleep(self.hang_seconds)
        if self.mode == "garbage":
            status, data = 200, b"<html><body>502 Bad Gateway</body></html> {not json"
        else:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MarathonDouble(Double):
    """/v2/apps?embed=apps.tasks, /v2/apps/<id>?embed=apps.tasks, and /v2/events as SSE."""

    def __init__(self, apps: list[dict[str, Any]]) -> None:
        self.apps = {a["id"]: a for a in apps}
        self.events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.streams = 0
        self.lock = threading.Lock()
        super().__init__()

    def set_app(self, app: dict[str, Any]) -> None:
        with self.lock:
            self.apps[app["id"]] = app

    def drop_app(self, app_id: str) -> None:
        with self.lock:
            self.apps.pop(app_id, None)

    def push(self, event_type: str, body: dict[str, Any]) -> None:
        """Send one event to the attached stream(s)."""
        self.events.put((event_type, body))

    def cut_streams(self) -> None:
        """Close the attached event stream (as a Marathon restart would)."""
        self.events.put(None)

    def dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        if path == "/v2/events":
            return self._stream(h)
        with self.lock:
            apps = copy.deepcopy(self.apps)
        if path == "/v2/apps":
            label = (query.get("label") or [""])[0]
            listed = [a for a in apps.values() if not label or label in (a.get("labels") or {})]
            return self.reply(h, 200, {"apps": listed})
        if path.startswith("/v2/apps/"):
            app = apps.get("/" + path[len("/v2/apps/"):].strip("/"))
            if app is None:
                return self.reply(h, 404, {"message": f"App '{path[8:]}' does not exist"})
            return self.reply(h, 200, {"app": app})
        self.reply(h, 404, {"message": "not found"})

    def _stream(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode != "ok":
            return self.reply(h, 503, {"message": "unavailable"})
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        self.streams += 1

        def send(text: str) -> None:
            data = text.encode()
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()

        # The real capture's first frame: event_stream_attached.
        capture = (FIXTURES / "marathon" / "mesosphere__marathon__v2_examples__events_sse_stream.txt").read_text()
        send(capture.split("\n\n")[0] + "\n\n")
        try:
            while True:
                try:
                    item = self.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is None:
                    break
                event_type, body = item
                send(f"event: {event_type}\ndata: {json.dumps(body)}\n\n")
            h.wfile.write(b"0\r\n\r\n")
            h.close_connection = True
        except OSError:
            pass


def loopback_app(app: dict[str, Any]) -> dict[str, Any]:
    """A fixture app with its task hosts on 127.0.0.1 (checks must only probe loopback)."""
    app = copy.deepcopy(app)
    for task in app.get("tasks") or []:
        task["host"] = "127.0.0.1"
    return app


class MesosMasterDouble(Double):
    """/master/state (and /master/state.json) of one master."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        self.state = loopback_state(state, self.port)
        self.lock = threading.Lock()

    def lead(self, leader: MesosMasterDouble) -> None:
        """Say `leader` is the leading master."""
        with self.lock:
            self.state["leader"] = f"master@127.0.0.1:{leader.port}"

    def dispatch(self, h: BaseHTTPRequestHandler) -> None:
        if urlsplit(h.path).path == "/master/health":
            return self.reply(h, 200, b"")
        if urlsplit(h.path).path in ("/master/state", "/master/state.json"):
            with self.lock:
                body = copy.deepcopy(self.state)
            return self.reply(h, 200, body)
        self.reply(h, 404, {})


def loopback_state(state: dict[str, Any], port: int) -> dict[str, Any]:
    """A fixture master state whose master and agents are on 127.0.0.1 (their checks get probed)."""
    state = copy.deepcopy(state)
    state["pid"] = state["leader"] = f"master@127.0.0.1:{port}"
    for slave in state.get("slaves") or []:
        _, _, hostport = slave["pid"].rpartition("@")
        slave["pid"] = f"slave(1)@127.0.0.1:{hostport.rpartition(':')[2]}"
        slave["hostname"] = f"agent-{slave['id'][-1]}"
    return state
