"""Installing and restoring signal handlers; signal names.

Every tool routes the signals it handles through `signal_handlers` (a handler per signal, called
with the signal number) or `forward_signals` (each signal relayed to an object's `signal(sig)`:
a runner's event queue, a `Child`, a handler command). Both restore the previous handlers on
exit, and install nothing off the main thread (Python only delivers signals there), so a tool
run from a test's worker thread leaves signals alone. From an asyncio loop, use
`loop.add_signal_handler` instead.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)

# What `forward_signals` relays by default: the signals a user or supervisor sends a service.
FORWARDED_SIGNALS: tuple[int, ...] = (
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
    signal.SIGWINCH,
)


class Signallable(Protocol):
    """Anything with a `signal(sig)` method: a `Child`, a runner that queues signals as events."""

    def signal(self, sig: int) -> Any: ...


def parse_signal(value: str | int | signal.Signals) -> signal.Signals:
    """`"SIGTERM"`, `"TERM"`, `"term"` or `15` as a signal."""
    if isinstance(value, signal.Signals):
        return value
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return signal.Signals(int(value))
    name = value.strip().upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return signal.Signals[name]
    except KeyError:
        raise ValueError(f"unknown signal {value!r}") from None


@contextmanager
def signal_handlers(handlers: Mapping[int, Callable[[int], Any]]) -> Iterator[frozenset[int]]:
    """While inside, call `handlers[sig](sig)` when this process receives `sig`; yields what was installed.

    The previous handlers come back on exit. Off the main thread nothing is installed; a signal
    that cannot be caught (SIGKILL, SIGSTOP) is skipped.
    """
    if threading.current_thread() is not threading.main_thread():
        yield frozenset()
        return
    previous: dict[int, Any] = {}
    try:
        for sig, handler in handlers.items():
            try:
                previous[sig] = signal.signal(sig, _python_handler(handler))
            except (ValueError, OSError) as e:
                log.debug("cannot handle signal %s: %s", sig, e)
        yield frozenset(previous)
    finally:
        for sig, old in reversed(previous.items()):
            # None: a handler installed from C, which Python cannot put back; the default then
            signal.signal(sig, signal.SIG_DFL if old is None else old)


def _python_handler(handler: Callable[[int], Any]) -> Callable[[int, FrameType | None], None]:
    def on_signal(sig: int, _frame: FrameType | None) -> None:
        handler(sig)

    return on_signal


@contextmanager
def forward_signals(target: Signallable, signals: Iterable[int] = FORWARDED_SIGNALS,
                    also: Callable[[int], Any] | None = None) -> Iterator[frozenset[int]]:
    """While inside, relay `signals` received by this process to `target.signal(sig)` (main thread only).

    `also(sig)` is called after each relay (e.g. to start a shutdown on SIGTERM). The previous
    handlers come back on exit.
    """

    def relay(sig: int) -> None:
        target.signal(sig)
        if also is not None:
            also(sig)

    with signal_handlers(dict.fromkeys(signals, relay)) as installed:
        yield installed
