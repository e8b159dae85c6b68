"""The agent's log lines, streamed to `/v1/agent/monitor` subscribers.

One `LogBroadcaster` handler sits on the root logger once the first monitor subscribes. Each
subscriber has its own level (more verbose than the agent's own is fine: while a debug
subscriber is attached the root logger lets debug records through, and the agent's other
handlers keep their level, so its own output does not change) and a bounded queue on the
asyncio loop: a record is formatted once per format, handed to every subscriber that wants
it, and dropped for a subscriber whose queue is full. A slow reader loses lines (it is told
how many, as Consul's "Monitor dropped N logs" line), it never holds up the code that logs.
Records from other threads (the Raft thread) are handed over with `call_soon_threadsafe`.

Lines look like Consul's (hclog): `2024-05-01T10:00:00.123Z [INFO]  agent: message`, or with
`json` `{"@level":"info","@message":...,"@module":...,"@timestamp":...}`. Token-looking values
(`X-Consul-Token: ...`, `token=...`, `"SecretID": "..."`) and the secrets a subscriber names
are replaced by `<hidden>` before a line leaves the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Iterable

TRACE = 5
LEVELS = {"TRACE": TRACE, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
          "ERR": logging.ERROR, "ERROR": logging.ERROR}
BUFFER = 512  # lines queued per subscriber (Consul's monitor buffer)

_SECRET_PATTERNS = [
    re.compile(r"(?i)(x-consul-token[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?bearer\s+)[^\s\"',;&]+"),
    re.compile(r"(?i)([?&]token=)[^\s\"',;&]+"),
    re.compile(r"(?i)([\"']?(?:secretid|token|acl_token|master_token|initial_management|encrypt)[\"']?\s*[:=]\s*"
               r"[\"']?)[^\s\"',;&}]+"),
]
HIDDEN = "<hidden>"


def parse_level(text: str) -> int | None:
    """Consul's monitor log levels (case-insensitive; empty is INFO); None for an unknown one."""
    return LEVELS.get((text or "INFO").upper())


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with token-looking values and the given secrets replaced by `<hidden>`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, HIDDEN)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + HIDDEN, text)
    return text


_LEVEL_NAMES = {TRACE: "TRACE", logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
                logging.ERROR: "ERROR", logging.CRITICAL: "ERROR"}


def _level_name(levelno: int) -> str:
    if levelno in _LEVEL_NAMES:
        return _LEVEL_NAMES[levelno]
    return "ERROR" if levelno >= logging.ERROR else "WARN" if levelno >= logging.WARNING else \
        "INFO" if levelno >= logging.INFO else "DEBUG" if levelno >= logging.DEBUG else "TRACE"


def _module(name: str) -> str:
    return name[len("meshctl."):] if name.startswith("meshctl.") else name


def _message(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # a broken format string still gives a line
        text = str(record.msg)
    if record.exc_info and record.levelno >= logging.ERROR:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    return redact(text)


def format_text(record: logging.LogRecord) -> str:
    """hclog's line: timestamp, [LEVEL] padded to 5, module, message."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
    level = _level_name(record.levelno)
    return f"{stamp} [{level}] {' ' * (5 - len(level))}{_module(record.name)}: {_message(record)}"


def format_json(record: logging.LogRecord) -> str:
    """hclog's JSON line."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + \
        f".{int((record.created % 1) * 1e6):06d}Z"
    return json.dumps({"@level": _level_name(record.levelno).lower(), "@message": _message(record),
                       "@module": _module(record.name), "@timestamp": stamp})


class Subscriber:
    """One monitor: its level, format, queue and count of dropped lines. Its methods run on `loop`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, level: int, as_json: bool,
                 secrets: Iterable[str] = (), buffer: int = BUFFER) -> None:
        self.loop = loop
        self.level = level
        self.as_json = as_json
        self.secrets = tuple(s for s in secrets if s)
        self.queue: asyncio.Queue[str] = asyncio.Queue(buffer)
        self.dropped = 0

    def offer(self, line: str) -> None:
        """Loop thread: queue a line, or count it dropped when the queue is full."""
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped += 1

    async def next_line(self) -> str:
        """The next line; after drops, first a line saying how many were lost."""
        line = await self.queue.get()
        if self.dropped:
            dropped, self.dropped = self.dropped, 0
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
            note = f"Monitor dropped {dropped} logs during monitor request"
            if self.as_json:
                return json.dumps({"@level": "warn", "@message": note, "@module": "agent", "@timestamp": stamp}) + \
                    "\n" + self._clean(line)
            return f"{stamp} [WARN]  agent: {note}\n{self._clean(line)}"
        return self._clean(line)

    def _clean(self, line: str) -> str:
        return redact(line, self.secrets) if self.secrets else line


class LogBroadcaster(logging.Handler):
    """The root logger's handler feeding every subscriber (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(level=TRACE)
        self.subscribers: set[Subscriber] = set()
        self._mutex = threading.Lock()
        self._saved: tuple[int, list[tuple[logging.Handler, int]]] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        subs = [s for s in list(self.subscribers) if record.levelno >= s.level]
        if not subs:
            return
        lines: dict[bool, str] = {}
        for sub in subs:
            line = lines.get(sub.as_json)
            if line is None:
                line = lines[sub.as_json] = format_json(record) if sub.as_json else format_text(record)
            try:
                if _on_loop(sub.loop):
                    sub.offer(line)
                else:
                    sub.loop.call_soon_threadsafe(sub.offer, line)
            except RuntimeError:  # the loop is closed: that subscriber is gone
                pass

    def subscribe(self, sub: Subscriber) -> None:
        with self._mutex:
            root = logging.getLogger()
            if self not in root.handlers:
                root.addHandler(self)
            self.subscribers.add(sub)
            self._relevel(root)

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._mutex:
            self.subscribers.discard(sub)
            self._relevel(logging.getLogger())

    def _relevel(self, root: logging.Logger) -> None:
        """Let the most verbose subscriber's records through the root logger, other handlers unchanged."""
        wanted = min((s.level for s in self.subscribers), default=None)
        if self._saved is None:
            if wanted is None or wanted >= root.level:
                return
            others = [(h, h.level) for h in root.handlers if h is not self]
            self._saved = (root.level, others)
            for handler, level in others:
                handler.setLevel(max(level, root.level))
            root.setLevel(wanted)
            return
        original, others = self._saved
        if wanted is not None and wanted < original:
            root.setLevel(wanted)
            return
        root.setLevel(original)
        for handler, level in others:
            handler.setLevel(level)
        self._saved = None


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


BROADCASTER = LogBroadcaster()

__all__ = ["BROADCASTER", "BUFFER", "LEVELS", "LogBroadcaster", "Subscriber", "format_json", "format_text",
           "parse_level", "redact"]
