"""git2consul's hooks: a polling timer, and webhook listeners for GitHub, GitLab, Stash and Bitbucket.

A hook only says "this branch moved"; what a sync does is `BranchSync`'s business. Webhooks
answer every verb on their `url` (GET, POST, PUT, DELETE, as git2consul's express routes did)
with "ok"; several hooks may share a port when their urls differ. The payload parsers follow
git2consul's: GitHub `ref` + `head_commit.id`, GitLab `ref` + `after`, Stash
`refChanges[].refId/toHash`, Bitbucket's form field `payload` (`commits[].branch/node`); only
`refs/heads/*` count. meshctl extensions: a hook's `secret` is checked (GitHub/Stash/Bitbucket
`X-Hub-Signature-256` or `X-Hub-Signature`, GitLab `X-Gitlab-Token`), and GitHub's form-encoded
deliveries (`payload=<json>`) are understood too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

log = logging.getLogger(__name__)

Push = list[tuple[str, str]]  # (branch, commit) pairs a webhook reported
HEADS = "refs/heads/"


# -- payloads ----------------------------------------------------------------------------------


def _head(ref: Any, commit: Any) -> Push:
    if isinstance(ref, str) and ref.startswith(HEADS) and isinstance(commit, str):
        return [(ref[len(HEADS):], commit)]
    return []


def github_push(body: Mapping[str, Any]) -> Push | None:
    """GitHub: `ref` and `head_commit.id` (a deleted branch has no head commit: not a push)."""
    head = body.get("head_commit")
    if not body.get("ref") or not isinstance(head, Mapping) or not head.get("id"):
        return None
    return _head(body["ref"], head["id"])


def gitlab_push(body: Mapping[str, Any]) -> Push | None:
    """GitLab: `ref` and `after`."""
    if not body.get("ref") or not body.get("after"):
        return None
    return _head(body["ref"], body["after"])


def stash_push(body: Mapping[str, Any]) -> Push | None:
    """Stash / Bitbucket Server: every `refChanges[]` entry on a branch."""
    changes = body.get("refChanges")
    if not isinstance(changes, list) or not changes:
        return None
    out: Push = []
    for change in changes:
        if isinstance(change, Mapping) and change.get("toHash"):
            out += _head(change.get("refId"), change["toHash"])
    return out


def bitbucket_push(body: Mapping[str, Any]) -> Push | None:
    """Bitbucket (POST service): form field `payload`, JSON with `commits[]` (branch, node, parents)."""
    commits = body.get("commits")
    if not isinstance(commits, list) or not commits:
        return None
    out: Push = []
    for commit in commits:
        if isinstance(commit, Mapping) and commit.get("branch") and commit.get("node") and commit.get("parents"):
            out.append((commit["branch"], commit["node"]))
    return out


PARSERS: dict[str, Callable[[Mapping[str, Any]], Push | None]] = {
    "github": github_push,
    "gitlab": gitlab_push,
    "stash": stash_push,
    "bitbucket": bitbucket_push,
}


def decode_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The request body as an object: JSON, or a form whose `payload` field holds the JSON."""
    data: Any = None
    if "x-www-form-urlencoded" not in content_type:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
    if not isinstance(data, dict):
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        data = form
        if isinstance(form.get("payload"), str):
            try:
                inner = json.loads(form["payload"])
            except ValueError:
                inner = None
            if isinstance(inner, dict):
                data = inner
    return data


def signature_ok(kind: str, secret: str | None, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the request carries the hook's secret (always true when no secret is configured)."""
    if not secret:
        return True
    if kind == "gitlab":
        return hmac.compare_digest(headers.get("X-Gitlab-Token", ""), secret)
    for header, algo in (("X-Hub-Signature-256", hashlib.sha256), ("X-Hub-Signature", hashlib.sha1)):
        given = headers.get(header)
        if given:
            name = "sha256" if algo is hashlib.sha256 else "sha1"
            expected = f"{name}=" + hmac.new(secret.encode(), body, algo).hexdigest()
            return hmac.compare_digest(given.strip(), expected)
    return False


# -- the listener --------------------------------------------------------------------------------


@dataclass
class Route:
    """One webhook on a server: its type, optional secret, and what to do with a push."""

    kind: str
    on_push: Callable[[Push], None]
    secret: str | None = None


class WebhookServer:
    """One HTTP listener (address, port) serving every webhook url configured on that port."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.routes: dict[str, Route] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add(self, url: str, route: Route) -> None:
        """Serve `url` (the config's `url`) with `route`; a url may be served once."""
        path = "/" + url.strip("/")
        if path in self.routes:
            raise ValueError(f"A webhook is already listening on {self.port}, {url}")
        self.routes[path] = route

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Answer one request: (status, text). Public so the dispatch can be exercised without sockets."""
        path = "/" + urlsplit(target).path.strip("/")
        route = self.routes.get(path)
        if route is None:
            return 404, f"Cannot {method} {urlsplit(target).path}"
        if not signature_ok(route.kind, route.secret, headers, body):
            log.warning("%s webhook on %s: bad or missing signature; ignored", route.kind, path)
            return 403, "invalid signature"
        data = decode_body(body, headers.get("Content-Type", ""))
        push = PARSERS[route.kind](data)
        if push is None:
            log.debug("%s webhook on %s: not a push payload", route.kind, path)
            return 200, "ok"
        try:
            route.on_push(push)
        except Exception:  # a bug in a handler must not take the listener down
            log.exception("%s webhook on %s failed", route.kind, path)
        return 200, "ok"

    def start(self) -> None:
        """Bind and serve in a background thread (OSError if the port cannot be bound)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                headers = CaseInsensitiveDict(self.headers.items())  # HTTP header names ignore case
                status, text = server.handle(self.command, self.path, headers, body)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("webhook %s: " + format, self.address_string(), *args)

        self._httpd = ThreadingHTTPServer((self.address, self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"webhook-{self.port}", daemon=True)
        self._thread.start()
        for path, route in self.routes.items():
            log.info("%s listener initialized at http://%s:%d%s", route.kind, self.address, self.port, path)

    def stop(self) -> None:
        """Stop listening."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


# -- polling -------------------------------------------------------------------------------------


class Poller:
    """Run `action` every `interval` seconds, the first time after a random 1–30 s (capped at `interval`).

    The random start spreads the load on git servers, as git2consul does.
    """

    def __init__(self, name: str, interval: float, action: Callable[[], None],
                 first_delay: float | None = None) -> None:
        self.name = name
        self.interval = interval
        self.action = action
        self.first_delay = min(random.uniform(1, 30), interval) if first_delay is None else first_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poll-{name}", daemon=True)

    def start(self) -> None:
        """Start the timer thread."""
        self._thread.start()

    def _run(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            try:
                self.action()
            except Exception:  # keep polling whatever one round did
                log.exception("polling %s failed", self.name)
            delay = self.interval

    def stop(self) -> None:
        """Stop the timer (a round in progress finishes)."""
        self._stop.set()
