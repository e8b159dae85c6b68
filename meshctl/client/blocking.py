"""The blocking-query loop, with Consul's documented client rules.

    for reply in watch(lambda index, wait: client.kv.get("k", index=index, wait=wait), wait="30s"):
        ...  # first result, then every change

Rules (consul-api.md §1 and api-docs/features/blocking): start at index 0; yield the first
result and then whenever the index changes; if the returned index goes backwards, reset to
0 and re-query; never block on an index below 1; back off exponentially (with jitter) on
errors; rate-limit loops whose index does not advance; stop when the `stop` event is set.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from meshctl.client.errors import ConsulError
from meshctl.client.types import Reply

log = logging.getLogger(__name__)

T = TypeVar("T")
Fetch = Callable[[int, "str | float | None"], Reply[T]]


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt n waits in [d/2, d], d = min(cap, base * 2**n)."""

    base: float = 0.25
    cap: float = 60.0
    rand: Callable[[], float] = field(default=random.random, repr=False)
    attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next retry (and count the attempt)."""
        d = min(self.cap, self.base * float(2 ** min(self.attempt, 62)))
        self.attempt += 1
        return d / 2 + self.rand() * d / 2

    def reset(self) -> None:
        """Back to the first delay after a success."""
        self.attempt = 0


def next_index(previous: int, returned: int) -> int:
    """The index for the next request: reset to 0 if it went backwards, and never below 1."""
    if returned < previous:
        return 0
    return max(returned, 1)


def watch(
    fetch: Fetch[T],
    *,
    wait: str | float | None = None,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
    max_retries: int | None = None,
    retry_on: tuple[type[BaseException], ...] = (ConsulError,),
    min_interval: float = 1.0,
    compare_values: bool = False,
    on_error: Callable[[BaseException, float], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Reply[T]]:
    """Run `fetch(index, wait)` as a blocking-query loop; yield the first reply and each change.

    `stop`: set it (from any thread) to end the iterator; it ends at the latest when the
    request in flight returns. Errors in `retry_on` are retried with `backoff` (after
    `on_error(exc, delay)`); after `max_retries` consecutive failures the error is raised.
    `min_interval`: the least time between two requests whose index did not advance (a
    request that went backwards counts too, so a non-monotonic index such as event/list's
    may add up to `min_interval` of latency when events arrive faster than that).
    `compare_values`: also skip replies whose index changed but whose value did not.
    """
    stop = stop or threading.Event()
    backoff = backoff or Backoff()
    index = 0
    last_seen: Reply[T] | None = None
    failures = 0
    not_before = 0.0  # rate limit: no request before this clock value
    while not stop.is_set():
        pause = not_before - clock()
        if pause > 0 and stop.wait(pause):
            break
        started = clock()
        try:
            reply = fetch(index, wait)
        except retry_on as e:
            failures += 1
            if max_retries is not None and failures > max_retries:
                raise
            delay = backoff.next_delay()
            log.debug("blocking query failed (%s); retrying in %.2fs", e, delay)
            if on_error is not None:
                on_error(e, delay)
            index = 0  # the data may have moved on (or back) while we could not see it
            not_before = clock() + delay
            continue
        failures = 0
        backoff.reset()

        requested = index
        index = next_index(requested, reply.index)
        if requested and reply.index <= requested:
            # No progress (a wait timeout, a reset, or a server that does not block): don't spin.
            not_before = started + min_interval
        if index == 0:
            log.debug("index went backwards (%d -> %d); resetting", requested, reply.index)
            continue
        if last_seen is not None and reply.index == last_seen.index:
            continue
        if compare_values and last_seen is not None and reply.value == last_seen.value:
            last_seen = reply
            continue
        last_seen = reply
        yield reply
