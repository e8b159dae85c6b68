"""Locks, semaphores and leader election on Consul's own client-side protocol.

    with client.lock("service/x/leader") as lock:       # blocks until held
        while not lock.lost.is_set(): ...                # `lost` is set if the lock goes away

    sem = client.semaphore("service/x/restart", limit=3)
    if sem.acquire():
        ...
        sem.release()

    LeaderElection(client, "service/x/leader", on_elected=start, on_lost=stop).start()

The keys, flags, session settings and JSON documents are exactly those of the Go api's
`Lock` and `Semaphore` (api/lock.go, api/semaphore.go; consul-api.md §9), so a holder using
this module, one using the Go api and one running `consul lock` exclude each other:

* Lock: one key (`consul lock` uses `<prefix>/.lock`) acquired with `?acquire=<session>` and
  flags 0x2ddccbc058a50c18; a session named "Consul API Lock", TTL 15s renewed every TTL/2.
* Semaphore: a contender key `<prefix>/<session>` (acquired, flags 0xe0f69a2baa414de0) and
  the coordination key `<prefix>/.lock` holding `{"Limit":N,"Holders":{"<session>":true}}`,
  updated with check-and-set; the session has behaviour `delete`, so a dead contender's key
  disappears and the live ones prune it from `Holders`.

Consul sessions prefer liveness over safety: a lock can be lost at any time (session
invalidated, key deleted, agent unreachable past the monitor's retries). `lost` is set and
the `on_lost` callbacks run when that happens; a holder must then stop acting as one. The
session's lock-delay (default 15s) keeps anyone else from taking the lock for that long
after an invalidation, which is the time the old holder has to notice and stop: so `lost` is
also set when no session renewal has succeeded for that long (or the TTL, if shorter), even
if the agent never answers — a holder talking to a paused server stops believing before the
cluster can invalidate its session and let the lock-delay run out.
"""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from meshctl.client.errors import ConsulError, ServerError, Unreachable
from meshctl.client.types import KVPair, Reply
from meshctl.durations import parse_duration

if TYPE_CHECKING:
    from meshctl.client.client import Client

log = logging.getLogger(__name__)

LOCK_FLAG_VALUE = 0x2DDCCBC058A50C18  # api.LockFlagValue
SEMAPHORE_FLAG_VALUE = 0xE0F69A2BAA414DE0  # api.SemaphoreFlagValue
SEMAPHORE_KEY = ".lock"  # api.DefaultSemaphoreKey
DEFAULT_LOCK_SESSION_NAME = "Consul API Lock"
DEFAULT_SEMAPHORE_SESSION_NAME = "Consul API Semaphore"
DEFAULT_SESSION_TTL = "15s"
DEFAULT_WAIT_TIME = 15.0  # one blocking read while waiting for the lock
DEFAULT_RETRY_TIME = 5.0  # pause after an acquire refused by lock-delay
DEFAULT_MONITOR_RETRY_TIME = 2.0
DEFAULT_LOCK_DELAY = 15.0  # the server's, when a session is created without one


class LockOptions(TypedDict, total=False):
    """The options of a `Lock` or `Semaphore` (see `Lock`)."""

    value: bytes | str | None
    session: str | None
    session_name: str | None
    session_ttl: str | float
    lock_delay: str | float | None
    session_checks: list[str] | None
    session_node: str | None
    monitor_retries: int
    monitor_retry_time: float
    wait_time: float
    try_once: bool
    retry_time: float
    stop_time: float


class LockError(Exception):
    """A lock or semaphore operation failed (the message reads like the Go api's)."""


class LockConflict(LockError):
    """The key exists but is not used as this kind of lock (different flags)."""


class LockHeld(LockError):
    """acquire() on a lock this object already holds."""


class LockNotHeld(LockError):
    """release() on a lock this object does not hold."""


class LockInUse(LockError):
    """destroy() on a lock someone holds."""


def go_path_join(*parts: str) -> str:
    """Go's `path.Join`: join with `/` and clean (no `//`, `.` or `..`, no trailing `/`)."""
    joined = "/".join(p for p in parts if p)
    if not joined:
        return ""
    cleaned = posixpath.normpath(joined)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def go_json(value: object) -> bytes:
    """JSON as Go's encoding/json writes it: compact, HTML characters escaped, UTF-8 kept.

    Keys keep the order of the dicts given: pass struct fields in declaration order and
    maps sorted, as Go writes them.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text.encode()


def is_retryable(exc: BaseException) -> bool:
    """The Go api's IsRetryableError: a transport failure or a server error (5xx)."""
    return isinstance(exc, (Unreachable, ServerError))


RENEW_RETRY = 1.0  # pause after a failed renewal (RenewPeriodic's)
MIN_BELIEF = 3.0  # the shortest belief window a contender accepts (renewals every 1.5s)


def hold_window(ttl: float, lock_delay: float | None) -> float:
    """How long after a renewal was sent the cluster cannot give the lock to anyone else.

    A TTL session outlives its last renewal by 2×TTL on the leader, and then its locks stay
    blocked for the lock-delay; but a failed node check (the node of the session's agent
    unreachable for ~5 s) invalidates the session at any time, so only the lock-delay is sure.
    Bounded by the TTL as Consul's RenewPeriodic is. None is the server's default, 15 s. A
    lock-delay of 0 protects nothing (the TTL is then used, as in Consul).
    """
    delay = DEFAULT_LOCK_DELAY if lock_delay is None else lock_delay
    return min(ttl, delay) if delay > 0 else ttl


class SessionRenewer:
    """Renew a TTL session, as the Go api's `RenewPeriodic` does, on a deadline nothing can stretch.

    Renewals run every `window`/2 (`window`: `hold_window(...)` minus `lead`), retried every
    second after an error; each request times out when the window would end. `on_expired(reason)`
    runs when no renewal *sent* within the last `window` seconds has succeeded — a watchdog timer
    fires it on time even while a request hangs on a paused server — and once more, finally,
    when the session is gone (404). After an expiry it keeps renewing: only the server knows
    whether the session is gone, and a contender still acquiring needs it.
    """

    def __init__(self, client: Client, session_id: str, ttl: str | float,
                 on_expired: Callable[[str], object] | None = None, *, lock_delay: float | None = None,
                 lead: float = 0.0) -> None:
        self.client = client
        self.session_id = session_id
        self.ttl = parse_duration(ttl)
        self.lock_delay = lock_delay
        self.lead = lead
        self.on_expired = on_expired
        self.renewed_at = time.monotonic()  # when the last successful renewal was sent
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._watchdog: threading.Timer | None = None
        self._thread = threading.Thread(target=self._run, name=f"renew-{session_id[:8]}", daemon=True)

    @property
    def window(self) -> float:
        """Seconds after `renewed_at` until which the session is sure to hold its locks, less `lead`.

        Never under MIN_BELIEF: a lock-delay shorter than `lead` + MIN_BELIEF is not fully
        protected (renewals every 1.5 s are the most this asks of a server).
        """
        return max(hold_window(self.ttl, self.lock_delay) - self.lead, MIN_BELIEF)

    @property
    def fresh(self) -> bool:
        """Whether a renewal sent less than `window` seconds ago succeeded."""
        return time.monotonic() < self.renewed_at + self.window

    def start(self) -> SessionRenewer:
        """Start renewing in a background thread."""
        self._arm(self.renewed_at)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (does not destroy the session)."""
        self._stop.set()
        with self._mutex:
            if self._watchdog is not None:
                self._watchdog.cancel()

    def _arm(self, sent: float) -> None:
        """A renewal sent at `sent` succeeded: restart the watchdog for the window from then."""
        with self._mutex:
            if self._stop.is_set():
                return
            self.renewed_at = max(self.renewed_at, sent)
            if self._watchdog is not None:
                self._watchdog.cancel()
            delay = max(0.0, self.renewed_at + self.window - time.monotonic())
            self._watchdog = threading.Timer(delay, self._expire)
            self._watchdog.daemon = True
            self._watchdog.start()

    def _expire(self) -> None:
        if not self.fresh:
            error = self.last_error or "no answer yet"
            self._report(f"session not renewed for {self.window:g}s: {error}")

    def _run(self) -> None:
        wait = self.window / 2
        while not self._stop.wait(wait):
            sent = time.monotonic()
            # A renewal still unanswered when the window ends is worth nothing: time it out then,
            # and never less than a second (the window may be over while acquiring).
            timeout = max(self.renewed_at + self.window - sent, RENEW_RETRY)
            try:
                entry = self.client.session.renew(self.session_id, timeout=timeout)
            except ConsulError as e:
                log.debug("renewing session %s failed: %s", self.session_id, e)
                wait, self.last_error = RENEW_RETRY, e
                continue
            if self._stop.is_set():
                return
            if entry is None:
                self._report(f"session {self.session_id} expired")
                return
            try:
                self.ttl = parse_duration(entry.get("TTL") or self.ttl)  # the server may raise it
            except ValueError:
                pass
            self.last_error = None
            self._arm(sent)
            wait = self.window / 2

    def _report(self, reason: str) -> None:
        if not self._stop.is_set() and self.on_expired is not None:
            self.on_expired(reason)


class _Contender:
    """What Lock and Semaphore share: the session, its renewal, the monitor, `lost`."""

    kind = "lock"
    default_session_name = DEFAULT_LOCK_SESSION_NAME
    behavior: str | None = None

    def __init__(
        self,
        client: Client,
        *,
        value: bytes | str | None = None,
        session: str | None = None,
        session_name: str | None = None,
        session_ttl: str | float = DEFAULT_SESSION_TTL,
        lock_delay: str | float | None = None,
        session_checks: list[str] | None = None,
        session_node: str | None = None,
        monitor_retries: int = 0,
        monitor_retry_time: float = DEFAULT_MONITOR_RETRY_TIME,
        wait_time: float = DEFAULT_WAIT_TIME,
        try_once: bool = False,
        retry_time: float = DEFAULT_RETRY_TIME,
        stop_time: float = 0.0,
    ) -> None:
        parse_duration(session_ttl)  # validate early, as LockOpts does
        if lock_delay is not None:
            parse_duration(lock_delay)
        self.client = client
        self.value = value.encode() if isinstance(value, str) else value
        self.session = session
        self.session_name = session_name or self.default_session_name
        self.session_ttl = session_ttl
        self.lock_delay = lock_delay
        self.session_checks = session_checks
        self.session_node = session_node
        self.monitor_retries = monitor_retries
        self.monitor_retry_time = monitor_retry_time
        self.wait_time = wait_time
        self.try_once = try_once
        self.retry_time = retry_time
        self.stop_time = stop_time
        self.lost = threading.Event()
        self.lost_reason: str | None = None
        self._held = False
        self._mutex = threading.Lock()
        self._session_id: str | None = None
        self._renewer: SessionRenewer | None = None
        self._done = threading.Event()  # set while not holding: stops the monitor
        self._done.set()
        self._cancelled = threading.Event()
        self._callbacks: list[Callable[[str], object]] = []

    # -- public state --------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """Whether acquire() succeeded and neither release() nor a loss happened since."""
        return self._held and not self.lost.is_set()

    @property
    def session_id(self) -> str | None:
        """The session this contender uses (while acquiring or holding)."""
        return self._session_id

    def on_lost(self, callback: Callable[[str], object]) -> None:
        """Call `callback(reason)` (from a background thread) when a held lock is lost."""
        self._callbacks.append(callback)

    def __enter__(self) -> _Contender:
        if not self.acquire():
            raise LockError(f"could not acquire the {self.kind}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._held:
            self.release()

    # -- session -------------------------------------------------------------------------

    def _start_session(self) -> str:
        if self.session:
            self._session_id = self.session
            return self.session
        sent = time.monotonic()
        try:
            sid = self.client.session.create(
                name=self.session_name, node=self.session_node, ttl=self.session_ttl,
                lock_delay=self.lock_delay, behavior=self.behavior, checks=self.session_checks,
            )
        except ConsulError as e:
            raise LockError(f"failed to create session: {e}") from e
        self._session_id = sid
        delay = None if self.lock_delay is None else parse_duration(self.lock_delay)
        renewer = SessionRenewer(self.client, sid, self.session_ttl, on_expired=self._lose, lock_delay=delay,
                                 lead=self.stop_time)
        renewer.renewed_at = sent  # the create started the session's TTL
        self._renewer = renewer.start()
        return sid

    def _end_session(self) -> None:
        """Stop renewing and destroy the session we created (errors ignored, as the Go api)."""
        renewer, self._renewer = self._renewer, None
        sid = self._session_id
        self._session_id = None
        if renewer is None or sid is None:
            return
        renewer.stop()
        try:
            self.client.session.destroy(sid)
        except ConsulError as e:
            log.debug("destroying session %s failed: %s", sid, e)

    def cancel(self) -> None:
        """Abort an acquire() in progress from another thread: it returns False.

        A blocked read returns at the latest after `wait_time`; the session is destroyed
        now, so nothing this contender might still acquire outlives the call.
        """
        self._cancelled.set()
        sid = self._session_id
        if sid is not None and self._renewer is not None and not self._held:
            try:
                self.client.session.destroy(sid)
            except ConsulError as e:
                log.debug("destroying session %s failed: %s", sid, e)

    # -- acquire / release ---------------------------------------------------------------

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until held (True), or until `stop` is set or a try-once times out (False).

        Raises LockError (LockConflict, a limit conflict, an API failure). On success a
        monitor thread watches the key; it sets `lost` when the lock goes away.
        """
        with self._mutex:
            if self._held:
                raise LockHeld(f"{self.kind.capitalize()} already held")
            self.lost.clear()
            self.lost_reason = None
            self._cancelled.clear()
            sid = self._start_session()
            stop = stop or threading.Event()
            try:
                ok = self._acquire(sid, stop)
            except (ConsulError, LockError) as e:
                self._end_session()
                if self._cancelled.is_set():  # cancel() destroyed the session under us
                    return False
                if isinstance(e, LockError):
                    raise
                raise LockError(f"{self.kind} acquisition failed: {e}") from e
            except BaseException:
                self._end_session()
                raise
            if not ok or self._cancelled.is_set():
                self._end_session()
                return False
            self._held = True
            self._done.clear()
            threading.Thread(target=self._monitor_loop, args=(sid,), name=f"monitor-{sid[:8]}",
                             daemon=True).start()
            renewer = self._renewer
            if renewer is not None and not renewer.fresh:  # its watchdog fired while we waited
                self._lose(f"session not renewed for {renewer.window:g}s: {renewer.last_error}")
            return True

    def release(self) -> None:
        """Give the lock up (also after it was lost), then end our session."""
        with self._mutex:
            if not self._held:
                raise LockNotHeld(f"{self.kind.capitalize()} not held")
            self._held = False
            self._done.set()
            sid = self._session_id or ""
            try:
                self._release(sid)
            except ConsulError as e:
                raise LockError(f"failed to release {self.kind}: {e}") from e
            finally:
                self._end_session()

    def _stopped(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._cancelled.is_set()

    def _pause(self, stop: threading.Event, seconds: float) -> bool:
        """Sleep unless stopped; True if stopped."""
        deadline = time.monotonic() + seconds
        while not self._stopped(stop):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            stop.wait(min(left, 0.1))
        return True

    # -- monitoring ----------------------------------------------------------------------

    def _lose(self, reason: str) -> None:
        """The lock went away without release(): set `lost`, run the callbacks (once)."""
        if self._done.is_set() or self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        log.warning("%s lost: %s", self.kind, reason)
        for cb in list(self._callbacks):
            try:
                cb(reason)
            except Exception:
                log.exception("lock-lost callback %r failed", cb)

    def _monitor_loop(self, sid: str) -> None:
        index = 0
        retries = self.monitor_retries
        while not self._done.is_set():
            try:
                still, index = self._still_held(sid, index)
            except ConsulError as e:
                if self._done.is_set():
                    return
                if retries > 0 and is_retryable(e):
                    retries -= 1
                    log.debug("monitor read failed (%s); %d retries left", e, retries)
                    if self._done.wait(self.monitor_retry_time):
                        return
                    index = 0
                    continue
                self._lose(f"monitor read failed: {e}")
                return
            except LockError as e:
                self._lose(str(e))
                return
            retries = self.monitor_retries
            if not still:
                self._lose("key released, deleted or taken over (session invalidated?)")
                return

    # -- protocol-specific parts -----------------------------------------------------------

    def _acquire(self, sid: str, stop: threading.Event) -> bool:
        raise NotImplementedError

    def _release(self, sid: str) -> None:
        raise NotImplementedError

    def _still_held(self, sid: str, index: int) -> tuple[bool, int]:
        raise NotImplementedError


class Lock(_Contender):
    """A mutual-exclusion lock on one key (api.Lock): at most one holder at a time.

    Options (all optional): `value` stored in the key while held; `session` to use an
    existing session (else one is created: `session_name`, `session_ttl`, `lock_delay`,
    `session_node` (default: the agent's node), `session_checks` — None keeps Consul's default
    serfHealth check); `monitor_retries` and
    `monitor_retry_time` (tolerated 5xx/transport errors while holding); `wait_time` of each
    blocking read; `try_once` (give up after `wait_time`); `retry_time` after a refused acquire;
    `stop_time`: how long the holder needs to stop once `lost` is set (`lost` comes that much
    earlier, see below).

    A session this object creates is renewed by a `SessionRenewer`: `lost` is set as soon as
    no renewal sent in the last `hold_window(TTL, lock-delay) - stop_time` seconds succeeded
    (15 s by default, Consul's TTL rule) — before the cluster can give the lock to anyone,
    even when the agent hangs instead of answering.
    """

    def __init__(self, client: Client, key: str, **options: Unpack[LockOptions]) -> None:
        if not key:
            raise ValueError("missing key")
        super().__init__(client, **options)
        self.key = key

    def _acquire(self, sid: str, stop: threading.Event) -> bool:
        kv = self.client.kv
        wait = self.wait_time
        index = 0
        start = time.monotonic()
        attempts = 0
        while True:
            if self._stopped(stop):
                return False
            if self.try_once and attempts > 0:
                elapsed = time.monotonic() - start
                if elapsed > self.wait_time:
                    return False
                wait = self.wait_time - elapsed
            attempts += 1
            reply = self._read(index, wait)
            pair = reply.value
            if pair is not None and pair.flags != LOCK_FLAG_VALUE:
                raise LockConflict("Existing key does not match lock use")
            if pair is not None and pair.session == sid:
                return True
            if pair is not None and pair.session:
                index = reply.index
                continue
            if self._stopped(stop):
                return False
            try:
                locked = kv.put(self.key, self.value, flags=LOCK_FLAG_VALUE, acquire=sid)
            except ConsulError as e:
                raise LockError(f"failed to acquire lock: {e}") from e
            if locked:
                return True
            # Refused: held by someone who got in first (then block on it), or a lock-delay.
            index = 0
            reply = self._read(0, wait)
            if reply.value is not None and reply.value.session:
                index = reply.index
                continue
            if self._pause(stop, self.retry_time):
                return False

    def _read(self, index: int, wait: float) -> Reply[KVPair | None]:
        try:
            return self.client.kv.get(self.key, index=index or None, wait=wait)
        except ConsulError as e:
            raise LockError(f"failed to read lock: {e}") from e

    def _release(self, sid: str) -> None:
        self.client.kv.put(self.key, self.value, flags=LOCK_FLAG_VALUE, release=sid)

    def _still_held(self, sid: str, index: int) -> tuple[bool, int]:
        reply = self.client.kv.get(self.key, index=index or None, consistency="consistent")
        pair = reply.value
        return pair is not None and pair.session == sid, reply.index

    def destroy(self) -> None:
        """Delete the lock key if nobody holds it (LockInUse / LockConflict otherwise)."""
        with self._mutex:
            if self._held:
                raise LockHeld("Lock already held")
            try:
                pair = self.client.kv.get(self.key).value
                if pair is None:
                    return
                if pair.flags != LOCK_FLAG_VALUE:
                    raise LockConflict("Existing key does not match lock use")
                if pair.session:
                    raise LockInUse("Lock in use")
                if not self.client.kv.delete(self.key, cas=pair.modify_index):
                    raise LockInUse("Lock in use")
            except ConsulError as e:
                raise LockError(f"failed to remove lock: {e}") from e


class Semaphore(_Contender):
    """A counting semaphore at a prefix (api.Semaphore): at most `limit` holders at a time.

    All contenders must agree on `limit`. Options as `Lock`; `value` is stored in this
    contender's key `<prefix>/<session>`.
    """

    kind = "semaphore"
    default_session_name = DEFAULT_SEMAPHORE_SESSION_NAME
    behavior = "delete"

    def __init__(self, client: Client, prefix: str, limit: int, **options: Unpack[LockOptions]) -> None:
        if not prefix:
            raise ValueError("missing prefix")
        if limit <= 0:
            raise ValueError("semaphore limit must be positive")
        super().__init__(client, **options)
        self.prefix = prefix
        self.limit = limit
        self.lock_key = go_path_join(prefix, SEMAPHORE_KEY)

    def contender_key(self, sid: str) -> str:
        """This contender's key: `<prefix>/<session>`."""
        return go_path_join(self.prefix, sid)

    # The coordination document ---------------------------------------------------------

    def _find_lock(self, pairs: list[KVPair]) -> KVPair:
        for pair in pairs:
            if pair.key == self.lock_key:
                return pair
        return KVPair(key=self.lock_key, flags=SEMAPHORE_FLAG_VALUE)

    def _decode(self, pair: KVPair) -> tuple[int, dict[str, bool]]:
        if pair.value is None:
            return self.limit, {}
        try:
            doc = json.loads(pair.value)
            limit = int(doc.get("Limit", 0))
            holders = {str(k): bool(v) for k, v in (doc.get("Holders") or {}).items()}
        except (ValueError, TypeError, AttributeError) as e:
            raise LockError(f"lock decoding failed: {e}") from e
        return limit, holders

    def encode(self, holders: dict[str, bool], limit: int | None = None) -> bytes:
        """The `.lock` document, byte for byte as Go's json.Marshal(semaphoreLock) writes it."""
        return go_json({"Limit": self.limit if limit is None else limit, "Holders": dict(sorted(holders.items()))})

    @staticmethod
    def _prune(holders: dict[str, bool], pairs: list[KVPair]) -> None:
        alive = {p.session for p in pairs if p.session}
        for sid in [s for s in holders if s not in alive]:
            del holders[sid]

    # Protocol ----------------------------------------------------------------------------

    def _acquire(self, sid: str, stop: threading.Event) -> bool:
        kv = self.client.kv
        try:
            made = kv.put(self.contender_key(sid), self.value, flags=SEMAPHORE_FLAG_VALUE, acquire=sid)
        except ConsulError as e:
            raise LockError(f"failed to make contender entry: {e}") from e
        if not made:
            raise LockError("failed to make contender entry")
        wait = self.wait_time
        index = 0
        start = time.monotonic()
        attempts = 0
        while True:
            if self._stopped(stop):
                return False
            if self.try_once and attempts > 0:
                elapsed = time.monotonic() - start
                if elapsed > self.wait_time:
                    return False
                wait = self.wait_time - elapsed
            attempts += 1
            try:
                reply = kv.list_prefix(self.prefix, index=index or None, wait=wait)
            except ConsulError as e:
                raise LockError(f"failed to read prefix: {e}") from e
            lock_pair = self._find_lock(reply.value)
            if lock_pair.flags != SEMAPHORE_FLAG_VALUE:
                raise LockConflict("Existing key does not match semaphore use")
            limit, holders = self._decode(lock_pair)
            if limit != self.limit:
                raise LockError(f"semaphore limit conflict (lock: {limit}, local: {self.limit})")
            self._prune(holders, reply.value)
            if len(holders) >= limit:
                index = reply.index
                continue
            holders[sid] = True
            if self._stopped(stop):
                return False
            try:
                did_set = kv.put(self.lock_key, self.encode(holders), flags=SEMAPHORE_FLAG_VALUE,
                                 cas=lock_pair.modify_index)
            except ConsulError as e:
                raise LockError(f"failed to update lock: {e}") from e
            if did_set:
                return True
            # Lost a race with another contender: read again.

    def _release(self, sid: str) -> None:
        kv = self.client.kv
        while True:
            pair = kv.get(self.lock_key).value or KVPair(key=self.lock_key)
            limit, holders = self._decode(pair)
            if sid not in holders:
                break
            del holders[sid]
            if kv.put(self.lock_key, self.encode(holders, limit), flags=SEMAPHORE_FLAG_VALUE,
                      cas=pair.modify_index):
                break
        kv.delete(self.contender_key(sid))

    def _still_held(self, sid: str, index: int) -> tuple[bool, int]:
        reply = self.client.kv.list_prefix(self.prefix, index=index or None, consistency="consistent")
        _, holders = self._decode(self._find_lock(reply.value))
        self._prune(holders, reply.value)
        return sid in holders, reply.index

    def destroy(self) -> None:
        """Delete the `.lock` document if no live contender holds a slot (LockInUse otherwise)."""
        with self._mutex:
            if self._held:
                raise LockHeld("Semaphore already held")
            try:
                pairs = self.client.kv.list_prefix(self.prefix).value
                lock_pair = self._find_lock(pairs)
                if lock_pair.modify_index == 0:
                    return
                if lock_pair.flags != SEMAPHORE_FLAG_VALUE:
                    raise LockConflict("Existing key does not match semaphore use")
                _, holders = self._decode(lock_pair)
                self._prune(holders, pairs)
                if holders:
                    raise LockInUse("Semaphore in use")
                if not self.client.kv.delete(self.lock_key, cas=lock_pair.modify_index):
                    raise LockInUse("Semaphore in use")
            except ConsulError as e:
                raise LockError(f"failed to remove semaphore: {e}") from e


class LeaderElection:
    """Campaign for leadership on `key` until stopped; callbacks when leadership starts and ends.

        election = LeaderElection(client, "service/x/leader", value=b"host-a",
                                  on_elected=start_work, on_lost=stop_work).start()
        ...
        election.stop()          # resigns (releases the lock) if leader

    `on_elected()` runs when this process becomes leader; `on_lost()` when it stops being
    leader, because the lock was lost or because of `stop()`: every `on_elected` is followed
    by exactly one `on_lost`, which runs before the lock is released. Both run on the
    election's thread; after a loss it campaigns again. When `stop()` returns, this process is
    no longer leader and its `on_lost` has run. Lock options (`session_ttl`, `lock_delay`...)
    pass through to `Lock`.
    """

    def __init__(self, client: Client, key: str, *, on_elected: Callable[[], Any] | None = None,
                 on_lost: Callable[[], Any] | None = None, value: bytes | str | None = None,
                 error_retry: float = 5.0, **lock_options: Any) -> None:
        self.client = client
        self.key = key
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.error_retry = error_retry
        self.lock = Lock(client, key, value=value, **lock_options)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock.on_lost(lambda _reason: self._wake.set())

    @property
    def is_leader(self) -> bool:
        """Whether this process holds the leadership right now."""
        return self.lock.held

    def leader(self) -> bytes | None:
        """The value stored by the current leader, or None when there is none."""
        pair = self.client.kv.get(self.key).value
        return pair.value if pair is not None and pair.session else None

    def start(self) -> LeaderElection:
        """Campaign in a background thread."""
        self._thread = threading.Thread(target=self.run, name=f"election-{self.key}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stop campaigning, and resign if leader: returns once `on_lost` ran and the lock is released.

        With a `timeout`, gives up waiting after that many seconds and returns False if the
        election's thread is still running (an `on_lost` that has not returned, say).
        """
        self._stop.set()
        self._wake.set()
        if not self.lock.held:
            self.lock.cancel()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def run(self) -> None:
        """The campaign loop (blocks until `stop()`)."""
        while not self._stop.is_set():
            try:
                if not self.lock.acquire(self._stop):
                    continue
            except LockError as e:
                log.warning("leader election on %s: %s", self.key, e)
                self._stop.wait(self.error_retry)
                continue
            try:
                # a stop() that came while the lock was being acquired: no term begins
                if not self._stop.is_set():
                    self._serve_term()
            finally:
                try:
                    self.lock.release()
                except LockError as e:
                    log.debug("releasing leadership on %s: %s", self.key, e)

    def _serve_term(self) -> None:
        """`on_elected`, then wait until stopped or the lock is lost, then `on_lost`."""
        try:
            if self.on_elected is not None:
                self.on_elected()
            # The conditions, not the wake-up, decide: a stop() or a loss that happened
            # before this wait (during acquire's return or on_elected) is never missed.
            while not (self._stop.is_set() or self.lock.lost.is_set()):
                self._wake.wait()
                self._wake.clear()
        finally:
            # on_lost runs before the lock is released: the old leader has stopped its
            # work before a successor can be elected, never after
            if self.on_lost is not None:
                self.on_lost()
