"""Background work that runs on a period: the failure detector, anti-entropy, the reapers, checks.

`Periodic` owns one asyncio task, started with `start()` and cancelled by `stop()`. Its default
body sleeps `period` seconds, then runs `tick()`, forever; a tick that raises is handed to
`failed()` (logged) and the next tick runs as usual. A subclass with another schedule (a check's
staggered, fixed-rate probes) overrides `run()` and keeps start/stop.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class Periodic:
    """`tick()` every `period` seconds in a background task, from `start()` until `stop()`."""

    period: float = 60.0
    failure = "periodic task failed"  # logged, with the traceback, when a tick raises
    logger = log
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task (in the running event loop)."""
        self._task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        """Cancel the task; a no-op when it is not running."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def run(self) -> None:
        """The task's body: wait a period, tick, again; only cancelling ends it."""
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.tick()
            except Exception as exc:  # one bad pass must not end the loop
                self.failed(exc)

    async def tick(self) -> None:
        """One pass of the work."""
        raise NotImplementedError

    def failed(self, exc: Exception) -> None:
        """A tick raised `exc` (called inside the `except`, so the traceback is at hand)."""
        self.logger.exception(self.failure)
