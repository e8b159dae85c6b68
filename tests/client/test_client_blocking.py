"""The blocking-query loop: Consul's client rules, backoff, rate limiting, stopping."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import pytest

from meshctl.client import Backoff, Reply, ServerError, Unreachable, watch
from meshctl.client.blocking import next_index


class FakeClock:
    """A clock that only moves when the code under test waits on the FakeStop."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeStop(threading.Event):
    """A stop event whose wait() advances the fake clock instead of sleeping; records waits."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        self.clock.now += timeout or 0.0
        return self.is_set()


class Script:
    """A fetch function replaying replies (ints = indexes) or raising exceptions; records calls."""

    def __init__(self, steps: Iterable[int | BaseException | Reply], stop: threading.Event) -> None:
        self.steps = list(steps)
        self.calls: list[tuple[int, object]] = []
        self.stop = stop

    def __call__(self, index: int, wait: object) -> Reply:
        self.calls.append((index, wait))
        step = self.steps.pop(0)
        if not self.steps:
            self.stop.set()
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Reply):
            return step
        return Reply(value=f"v{step}", index=step)


def run(steps, **kwargs):
    clock = FakeClock()
    stop = FakeStop(clock)
    fetch = Script(steps, stop)
    kwargs.setdefault("backoff", Backoff(rand=lambda: 1.0))
    replies = list(watch(fetch, stop=stop, clock=clock, **kwargs))
    return [r.index for r in replies], fetch.calls, stop.waits


def test_first_request_uses_index_zero_and_first_result_is_yielded():
    indexes, calls, _ = run([5])
    assert indexes == [5]
    assert calls == [(0, None)]


def test_next_request_blocks_on_returned_index_with_wait():
    _, calls, _ = run([5, 7, 9], wait="30s")
    assert calls == [(0, "30s"), (5, "30s"), (7, "30s")]


def test_yields_only_when_index_changes():
    indexes, _, _ = run([5, 5, 5, 8, 8], min_interval=0)
    assert indexes == [5, 8]


def test_index_going_backwards_resets_to_zero_and_refetches():
    indexes, calls, _ = run([10, 4, 4], min_interval=0)
    assert [c[0] for c in calls] == [0, 10, 0]
    assert indexes == [10, 4]


def test_index_below_one_is_treated_as_one():
    _, calls, _ = run([0, 1], min_interval=0)
    assert [c[0] for c in calls] == [0, 1]


def test_next_index_rules():
    assert next_index(0, 7) == 7
    assert next_index(7, 9) == 9
    assert next_index(9, 9) == 9
    assert next_index(9, 3) == 0
    assert next_index(0, 0) == 1


def test_unchanged_index_is_rate_limited():
    _, _, waits = run([5, 5, 5, 5], min_interval=2.0)
    assert waits == [2.0, 2.0]


def test_advancing_index_is_not_rate_limited():
    _, _, waits = run([5, 6, 7], min_interval=2.0)
    assert waits == []


def test_errors_back_off_exponentially_then_reset_after_success():
    err = ServerError(500, "No cluster leader")
    indexes, calls, waits = run([err, err, err, 5, err, 6], backoff=Backoff(base=0.25, cap=60, rand=lambda: 1.0))
    assert waits == [0.25, 0.5, 1.0, 0.25]
    assert indexes == [5, 6]
    assert calls[4][0] == 5 and calls[5][0] == 0  # after an error, start over from index 0


def test_backoff_is_capped_and_jittered():
    b = Backoff(base=1, cap=8, rand=lambda: 0.0)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b = Backoff(base=1, cap=8, rand=lambda: 0.5)
    assert b.next_delay() == 0.75


def test_on_error_callback_gets_exception_and_delay():
    seen = []
    err = Unreachable(None, "connection refused", "GET", "http://x")
    run([err, 1], on_error=lambda e, d: seen.append((e, d)))
    assert seen == [(err, 0.25)]


def test_max_retries_raises_after_consecutive_failures():
    err = ServerError(500, "x")
    with pytest.raises(ServerError):
        run([err, err, err, 5], max_retries=2)


def test_unexpected_exceptions_propagate():
    with pytest.raises(KeyError):
        run([KeyError("bug"), 5])


def test_compare_values_skips_same_data_at_new_index():
    replies = [Reply("a", 1), Reply("a", 2), Reply("b", 3)]
    clock = FakeClock()
    stop = FakeStop(clock)
    got = [r.value for r in watch(Script(replies, stop), stop=stop, clock=clock, compare_values=True)]
    assert got == ["a", "b"]


def test_stop_event_set_before_start_yields_nothing():
    stop = threading.Event()
    stop.set()
    assert list(watch(lambda i, w: Reply("x", 1), stop=stop)) == []


def test_stop_from_another_thread_ends_iteration():
    stop = threading.Event()
    counter = iter(range(1, 10**9))
    first = threading.Event()

    def fetch(index, wait):
        return Reply("x", next(counter))

    got = []

    def consume():
        for r in watch(fetch, stop=stop):
            got.append(r.index)
            first.set()

    t = threading.Thread(target=consume)
    t.start()
    assert first.wait(5)
    stop.set()
    t.join(5)
    assert not t.is_alive()
    assert got[0] == 1


def test_stop_interrupts_backoff_sleep():
    stop = threading.Event()
    failed = threading.Event()

    def fetch(index, wait):
        failed.set()
        raise Unreachable(None, "connection refused", "GET", "http://x")

    t = threading.Thread(target=lambda: list(watch(fetch, stop=stop, backoff=Backoff(base=60, cap=60))))
    t.start()
    assert failed.wait(5)
    stop.set()
    t.join(5)
    assert not t.is_alive()


def test_consumer_can_break_out():
    replies = (Reply(i, i) for i in range(1, 100))
    for r in watch(lambda i, w: next(replies)):
        if r.index == 3:
            break
    assert next(replies).index == 4
