"""`meshctl debug`: record an agent's state, metrics and logs over a while into a bundle, as `consul debug`.

    meshctl debug -duration 30s -interval 10s -output DIR [-capture metrics -capture logs ...] [-archive=false]

Consul's flags, checks and layout: `DIR/` (then `DIR.tar.gz`, the directory removed) holds
`agent.json` (/v1/agent/self), `members.json`, `host.json` (/v1/agent/host), `metrics.json`
(one /v1/agent/metrics answer per interval, one JSON object a line), `consul.log` (every log
line at TRACE over the duration), `listpeers.json` (the Raft peers table) and `index.json`
(Version, AgentVersion, Interval, Duration, Targets). A progress line is printed per capture.
Interrupted (Ctrl-C), it stops capturing and still writes the bundle.

Secrets never go in: `agent.json` has tokens, the gossip `encrypt` key, TLS key paths and any
PEM private key replaced by "hidden"; then the token this command used and every hidden value
are scrubbed from every file of the bundle (logs included).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any

import requests

from meshctl.client import Client, ConsulError
from meshctl.commands.common import CommandError, err, guarded, make_client, new_parser, out, parse
from meshctl.durations import format_duration, parse_duration

DEFAULT_INTERVAL = 30.0
DEFAULT_DURATION = 300.0
DURATION_GRACE = 2.0  # added to the duration so the last interval's capture fits (Consul's)
MIN_INTERVAL = 5.0
MIN_DURATION = 10.0
ARCHIVE_EXT = ".tar.gz"
PROTOCOL_VERSION = 1
TARGETS = ["metrics", "logs", "pprof", "host", "agent", "members"]
DEPRECATED_TARGETS = ["cluster"]  # the old name of members
HIDDEN = "hidden"
STAMP = "%Y-%m-%dT%H-%M-%SZ"  # Consul's file-name timestamp (no colons: tar treats them as hosts)


def _output(text: str) -> None:
    out(f"==> {text}")


def _info(text: str) -> None:
    out(f"    {text}")


def _error(text: str) -> None:
    err(f"==> {text}")


# ---------------------------------------------------------------------- redaction

_SENSITIVE = re.compile(r"token|encrypt|secret|password|passwd|privatekey|keyfile|^key$|keypem|initialmanagement|"
                        r"^master$|agentmaster|replication")


def _is_sensitive(key: str) -> bool:
    return bool(_SENSITIVE.search(re.sub(r"[^a-z]", "", key.lower())))


def _is_private_key(value: Any) -> bool:
    return isinstance(value, str) and "-----BEGIN" in value and "PRIVATE KEY" in value


def redact(value: Any, found: set[str] | None = None, sensitive: bool = False) -> Any:
    """`value` with every secret (by key name, or a PEM private key) replaced by "hidden"; `found` collects them."""
    found = found if found is not None else set()
    if isinstance(value, dict):
        return {k: redact(v, found, sensitive or _is_sensitive(str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, found, sensitive) for v in value]
    if (sensitive and isinstance(value, str) and value) or _is_private_key(value):
        found.add(value)
        return HIDDEN
    return value


def scrub_tree(root: str, secrets: Iterable[str]) -> None:
    """Replace every secret (of 4 characters or more) in every file under `root` by "hidden"."""
    needles = sorted({s.encode() for s in secrets if s and len(s) >= 4 and s != HIDDEN}, key=len, reverse=True)
    if not needles:
        return
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                data = f.read()
            clean = data
            for needle in needles:
                clean = clean.replace(needle, HIDDEN.encode())
            if clean != data:
                with open(path, "wb") as f:
                    f.write(clean)


# ---------------------------------------------------------------------- capture


def _write_json(path: str, content: Any) -> None:
    with open(path, "w") as f:
        json.dump(content, f, indent="\t")


class LogCapture(threading.Thread):
    """Streams /v1/agent/monitor?loglevel=TRACE into consul.log until `stop()`."""

    def __init__(self, client: Client, path: str) -> None:
        super().__init__(name="debug-logs", daemon=True)
        self.client, self.path = client, path
        self.resp: requests.Response | None = None
        self.error: str | None = None
        self._stopped = threading.Event()
        self._writing = threading.Lock()

    def run(self) -> None:
        url = f"{self.client.config.base_url}/v1/agent/monitor"
        try:
            resp = self.client.http.get(url, params=[("loglevel", "TRACE")], stream=True,
                                        timeout=(self.client.config.connect_timeout, None))
        except requests.RequestException as exc:
            self.error = str(exc)
            return
        self.resp = resp
        if resp.status_code != 200:
            self.error = f"Unexpected response code: {resp.status_code} ({resp.text.strip()})"
            return
        with open(self.path, "w") as f:
            try:
                for line in resp.iter_lines(chunk_size=4096):
                    with self._writing:
                        if self._stopped.is_set():
                            return
                        f.write(line.decode("utf-8", "replace") + "\n")
                        f.flush()
            except (requests.RequestException, OSError, AttributeError, ValueError):
                pass  # stopped, or the agent went away

    def stop(self) -> None:
        """No more lines; the stream's socket is shut down so the reading thread ends."""
        with self._writing:
            self._stopped.set()
        sock = getattr(getattr(getattr(self.resp, "raw", None), "connection", None), "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.join(2)  # a thread still reading writes nothing more


class Debug:
    """One `meshctl debug` run."""

    def __init__(self, client: Client, interval: float, duration: float, output: str, archive: bool,
                 capture: list[str]) -> None:
        self.client = client
        self.interval, self.duration = interval, duration
        self.output, self.archive = output, archive
        self.capture = capture
        self.secrets: set[str] = set()
        self.interrupted = threading.Event()
        if client.config.token:
            self.secrets.add(client.config.token)

    def wants(self, target: str) -> bool:
        return target in self.capture or (target == "members" and "cluster" in self.capture)

    def prepare(self) -> str:
        """Validate and make the output directory; the agent's version."""
        try:
            me = self.client.agent.self()
        except ConsulError as exc:
            raise CommandError(f"Capture validation failed: error querying target agent: {exc}. "
                               "verify connectivity and agent address") from exc
        version = (me.get("Config") or {}).get("Version")
        if not isinstance(version, str):
            raise CommandError("Capture validation failed: agent response did not contain version key")
        if not self.capture:
            self.capture = list(TARGETS)
        if "pprof" in self.capture:  # Go profiles: a meshctl agent has none
            self.capture = [t for t in self.capture if t != "pprof"]
            out("[WARN] Unable to capture pprof: meshctl agents have no Go runtime profiles.")
        for target in self.capture:
            if target not in TARGETS and target not in DEPRECATED_TARGETS:
                raise CommandError(f"Capture validation failed: target not found: {target}")
        if os.path.exists(self.output):
            raise CommandError(f"Capture validation failed: output directory already exists: {self.output}")
        try:
            os.makedirs(self.output, mode=0o755)
        except OSError as exc:
            raise CommandError(f"Capture validation failed: could not create output directory: {exc}") from exc
        return version

    def capture_static(self) -> None:
        errors: list[str] = []
        agent = self.client.agent
        jobs = [("host", agent.host),
                ("agent", agent.self), ("members", lambda: agent.members(wan=False))]
        for target, fetch in jobs:
            if not self.wants(target):
                continue
            try:
                data = fetch()
            except ConsulError as exc:
                errors.append(f"{target}: {exc}")
                continue
            if target == "agent":
                data = redact(data, self.secrets)
            _write_json(os.path.join(self.output, f"{target}.json"), data)
        if errors:
            out(f"[WARN] Static capture failed: {'; '.join(errors)}")

    def capture_metrics(self, index: int) -> None:
        try:
            summary = self.client.agent.metrics()
        except ConsulError as exc:
            _error(f"metrics capture {index} failed: {exc}")
            return
        with open(os.path.join(self.output, "metrics.json"), "a") as f:
            f.write(json.dumps(summary, separators=(",", ":")) + "\n")

    def capture_dynamic(self) -> None:
        """Logs for the whole duration, metrics at each interval (at once, then every `interval`)."""
        logs = LogCapture(self.client, os.path.join(self.output, "consul.log")) if self.wants("logs") else None
        if logs is not None:
            logs.start()
        started = time.monotonic()
        deadline = started + self.duration
        n = 0
        _output(f"Beginning capture interval {_go_now()} ({n})")
        try:
            while True:
                if self.wants("metrics"):
                    self.capture_metrics(n)
                _output(f"Capture successful {_go_now()} ({n})")
                n += 1
                next_at = started + n * self.interval
                if next_at > deadline:
                    self.interrupted.wait(max(0.0, deadline - time.monotonic()))
                    break
                if self.interrupted.wait(max(0.0, next_at - time.monotonic())):
                    break
            if self.interrupted.is_set():
                _error("Error encountered during collection: stopping collection due to shutdown signal")
        finally:
            if logs is not None:
                logs.stop()
                if logs.error:
                    _error(f"Error encountered during collection: {logs.error}")

    def capture_raft(self) -> None:
        try:
            conf = self.client.operator.raft_configuration()
        except ConsulError as exc:
            out(f"[WARN] Raft list peers capture failed: Failed to retrieve raft configuration: {exc}")
            return
        servers = (conf or {}).get("Servers") or []
        rows = [("Node", "ID", "Address", "State", "Voter", "RaftProtocol")]
        for s in servers:
            rows.append((s.get("Node", ""), s.get("ID", ""), s.get("Address", ""),
                         "leader" if s.get("Leader") else "follower", str(s.get("Voter", False)).lower(),
                         s.get("ProtocolVersion") or "<=1"))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        text = "\n".join("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows)
        with open(os.path.join(self.output, "listpeers.json"), "w") as f:
            f.write(text)

    def write_archive(self) -> str:
        path = self.output + ARCHIVE_EXT
        folder = os.path.dirname(os.path.abspath(path))
        fd, temp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp", dir=folder)
        os.close(fd)
        try:
            with tarfile.open(temp, "w:gz") as tar:
                tar.add(self.output, arcname=os.path.basename(os.path.normpath(self.output)))
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
        shutil.rmtree(self.output)
        return path

    def run(self) -> int:
        version = self.prepare()
        name = self.output + (ARCHIVE_EXT if self.archive else "")
        _output("Starting debugger and capturing static information...")
        _info(f" Agent Version: '{version}'")
        _info(f"      Interval: '{format_duration(self.interval)}'")
        _info(f"      Duration: '{format_duration(self.duration)}'")
        _info(f"        Output: '{name}'")
        _info(f"       Capture: '{', '.join(self.capture)}'")
        self.duration += DURATION_GRACE
        self.capture_static()
        if self.wants("metrics") or self.wants("logs"):
            self.capture_dynamic()
        _write_json(os.path.join(self.output, "index.json"), {
            "Version": PROTOCOL_VERSION, "AgentVersion": version, "Interval": format_duration(self.interval),
            "Duration": format_duration(self.duration), "Targets": self.capture})
        self.capture_raft()
        scrub_tree(self.output, self.secrets)
        if self.archive:
            try:
                self.write_archive()
            except (OSError, tarfile.TarError) as exc:
                out(f"[WARN] Archive creation failed: {exc}")
                return 1
        _info(f"Saved debug archive: {name}")
        return 0


def _go_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f".{int((now % 1) * 1e9):09d} +0000 UTC"


def _duration(value: str, name: str) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise CommandError(f'Error parsing flags: invalid value "{value}" for flag -{name}: parse error') from None


@guarded
def main(argv: list[str]) -> int:
    """debug [-duration 5m] [-interval 30s] [-output PATH] [-archive=true] [-capture TARGET ...]"""
    p = new_parser("meshctl debug", "Monitor an agent for a while, recording information about the agent, "
                   "cluster and environment to an archive.")
    p.flag("interval", default="30s", help="Interval at which dynamic information (metrics) is captured (30s)")
    p.flag("duration", default="5m", help="Total time to record information (5m)")
    p.bool_flag("archive", default=True, help="Archive and compress the captured files (true)")
    p.flag("output", default=None, help="Path of the archive to create, without .tar.gz "
           "(default: consul-debug-<timestamp> here)")
    p.flag("capture", action="append", default=[], help="A type of information to capture (repeatable): "
           + ", ".join(TARGETS) + " (default: all)")
    args, rest = parse(p, argv)
    if rest:
        raise CommandError("debug: Too many arguments provided, expected 0")
    interval = _duration(args.interval, "interval")
    duration = _duration(args.duration, "duration")
    if duration < MIN_DURATION:
        raise CommandError(f"Capture validation failed: duration must be longer than {format_duration(MIN_DURATION)}")
    if interval < MIN_INTERVAL:
        raise CommandError(f"Capture validation failed: interval must be longer than {format_duration(MIN_INTERVAL)}")
    if duration < interval:
        raise CommandError(f"Capture validation failed: duration ({format_duration(duration)}) must be longer than "
                           f"interval ({format_duration(interval)})")
    output = args.output or f"consul-debug-{time.strftime(STAMP, time.gmtime())}"
    client = make_client(args)
    debug = Debug(client, interval, duration, output, args.archive, list(args.capture))
    previous = {sig: signal.signal(sig, lambda _s, _f: debug.interrupted.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return debug.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        client.close()
