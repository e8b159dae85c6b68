"""Log lines that input can provoke, at most one per interval per kind.

A flood of malformed packets or failing accepts must not become a flood of log lines (or of
tracebacks): the first of a kind is logged, later ones within `interval` seconds are counted
and the count is reported with the next line that gets through. The traceback, when there is
one, goes to the debug level only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    """One warning per `interval` seconds per kind, with the number suppressed in between."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object, exc: BaseException | None = None) -> bool:
        """Log `message % args` under `kind` unless one was logged within the interval; True if logged."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        suffix = f" ({suppressed} more since the last report)" if suppressed else ""
        self.logger.warning(message + suffix, *args)
        if exc is not None:
            self.logger.debug("%s: traceback", kind, exc_info=exc)
        return True
