"""De-duplication (`-dedup`, `deduplicate {}`): N instances rendering one template, one of them querying.

As consul-template's manager/dedup.go: every instance creates a session ("Consul-Template
de-duplication", behaviour delete, TTL 15s, lock-delay 1ms) and contends, per template, for a
lock under `<prefix>/<template ID>/` (the template ID is sha256(source NUL contents NUL
destination)). The leader watches the template's dependencies and, after each complete
execution, publishes their data compressed into `<prefix>/<ID>/data`, a key its session holds
too (so that it goes with the leader); the others watch only that key and render from what it
holds. When the leader goes (its session expires or is destroyed), another instance acquires
the lock, starts its own watches and publishes; the followers keep rendering from the data they
have meanwhile, so there is no gap.

Unlike consul-template, the lock is a key of its own, `<prefix>/<ID>/lock` (holding the leader's
host and pid): with the lock on the data key itself, every publish would wake every waiting
contender as well as the leader's lock monitor, doubling the requests a change costs.

Better than consul-template where its users complain:

* data over 512 KiB (Consul's value limit) is split into chunk keys of one generation,
  `<prefix>/<ID>/chunk/<generation>/NNNN`, written first; then one transaction, fenced by a
  check-session on the lock, points the data key at that generation and deletes the previous
  ones. A follower thus reads one whole generation or none (checked by its sha256). The chunks
  cannot go into that one transaction: Consul, like meshctl's store, caps a transaction's body
  at about 512 KiB (`txn_max_req_len`);
* a follower that finds data published by another meshctl version, for another template text,
  or too large to publish, watches the dependencies itself instead of waiting forever (or
  rendering from data it might misread); it follows again when matching data appears;
* a dependency the follower's template uses that the leader did not publish (a template whose
  keys depend on the instance's environment) is watched locally.

The payload is JSON with the dependency records tagged by type (never pickle: anyone able to
write the key must not be able to run code in every sidecar), zlib-compressed. Only the client
library's public API is used.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import socket
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from meshctl import __version__
from meshctl.client import Client, ConsulError, LockError, Reply, kv_op
from meshctl.client.lock import LOCK_FLAG_VALUE, SessionRenewer, go_path_join
from meshctl.template.config import DedupConfig
from meshctl.template.dependency import Dependency
from meshctl.template.dependency import records as _records

log = logging.getLogger(__name__)

SESSION_NAME = "Consul-Template de-duplication"
NO_DATA = b"__NO_DATA__"
CHUNK_SIZE = 500 * 1024  # below Consul's 512 KiB value limit
MAX_CHUNKS = 64  # 32 MB compressed: beyond, the followers watch for themselves
LOCK_RETRY = 10.0  # after a failed lock attempt (consul-template's lockRetry)
SESSION_RETRY = 15.0  # after a failed session create (sessionCreateRetry)

# the first bytes of the data key's value say what it holds
_WHOLE = b"MDD1"  # the compressed payload itself
_CHUNKED = b"MDC1"  # a manifest {"generation", "chunks", "sha256", "size"}; the payload is in chunk/<gen>/NNNN
_TOO_LARGE = b"MDX1"  # the leader could not publish: followers watch for themselves


def template_id(source: str, contents: str, destination: str) -> str:
    """consul-template's template ID: sha256(source NUL contents NUL destination), hex."""
    return hashlib.sha256(f"{source}\0{contents}\0{destination}".encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class Published:
    """What a follower read from a template's data key."""

    version: str = ""
    template: str = ""  # sha256 of the template text the leader executed
    data: dict[str, Any] = field(default_factory=dict)  # dependency identity -> its data
    unusable: str = ""  # why this cannot be followed (too large, undecodable); "" when it can


# -- the payload ---------------------------------------------------------------------------------

_TYPE = "@type"  # '@' cannot appear in Consul meta keys, the only user-chosen dict keys in records
_RECORDS: dict[str, type] = {name: obj for name, obj in vars(_records).items()
                             if isinstance(obj, type) and dataclasses.is_dataclass(obj)}


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        out = {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        out[_TYPE] = type(v).__name__
        return out
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _typed(v: Any) -> Any:
    if isinstance(v, dict):
        kind = v.get(_TYPE)
        fields = {k: _typed(x) for k, x in v.items() if k != _TYPE}
        cls = _RECORDS.get(kind) if isinstance(kind, str) else None
        return cls(**fields) if cls is not None else fields
    if isinstance(v, list):
        return [_typed(x) for x in v]
    return v


def encode_payload(template_hash: str, data: dict[str, Any]) -> bytes:
    """The compressed payload a leader publishes."""
    doc = {"Version": __version__, "Template": template_hash, "Data": _plain(data)}
    return zlib.compress(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode(), 6)


def decode_payload(blob: bytes) -> Published:
    """A payload back (Published.unusable says why when it cannot be read)."""
    try:
        doc = json.loads(zlib.decompress(blob))
        return Published(str(doc["Version"]), str(doc["Template"]), _typed(doc["Data"]))
    except (zlib.error, ValueError, KeyError, TypeError) as e:
        return Published(unusable=f"undecodable data ({type(e).__name__}: {e})")


def _set_data(data_key: str, value: bytes, session: str) -> dict[str, dict[str, object]]:
    # "lock": held by the leader's session, the key is deleted when that session goes
    return kv_op("lock", data_key, value, flags=LOCK_FLAG_VALUE, session=session)


def publish(client: Client, base: str, session: str, payload: bytes) -> bool:
    """Write `payload` under `base` (a template's key prefix) while holding its lock; True when written.

    Small payloads go into the data key itself. Larger ones go into a new generation of chunk
    keys first, then a manifest in the data key; over MAX_CHUNKS, a too-large marker tells the
    followers to watch for themselves. The data key is only ever written by one transaction
    that also checks the lock is still ours, and that drops every other generation.
    """
    data_key = f"{base}/data"
    fence = kv_op("check-session", f"{base}/lock", session=session)
    if len(payload) + len(_WHOLE) <= CHUNK_SIZE:
        ops = [fence, kv_op("delete-tree", f"{base}/chunk/"), _set_data(data_key, _WHOLE + payload, session)]
    elif len(payload) > MAX_CHUNKS * CHUNK_SIZE:
        reason = f"data is {len(payload)} bytes compressed, over {MAX_CHUNKS * CHUNK_SIZE}"
        ops = [fence, kv_op("delete-tree", f"{base}/chunk/"), _set_data(data_key, _TOO_LARGE + reason.encode(), session)]
    else:
        digest = hashlib.sha256(payload).hexdigest()
        gen = digest[:16]
        chunks = [payload[i:i + CHUNK_SIZE] for i in range(0, len(payload), CHUNK_SIZE)]
        for i, chunk in enumerate(chunks):
            client.kv.put(f"{base}/chunk/{gen}/{i:04d}", chunk)
        manifest = {"generation": gen, "chunks": len(chunks), "sha256": digest, "size": len(payload)}
        stale = [k for k in client.kv.keys(f"{base}/chunk/", separator="/").value if k != f"{base}/chunk/{gen}/"]
        ops = [fence, _set_data(data_key, _CHUNKED + json.dumps(manifest).encode(), session)]
        ops += [kv_op("delete-tree", k) for k in stale]
    return client.txn.apply(ops).ok


def read_published(client: Client, base: str, value: bytes | None, stale: bool) -> Published | None:
    """What a data key's value says; None for no data yet (absent, `__NO_DATA__`, a torn chunk read)."""
    if not value or value == NO_DATA:
        return None
    head, body = value[:4], value[4:]
    if head == _WHOLE:
        return decode_payload(body)
    if head == _TOO_LARGE:
        return Published(unusable=body.decode("utf-8", "replace"))
    if head != _CHUNKED:
        return Published(unusable="data written by another tool (consul-template?)")
    try:
        manifest = json.loads(body)
        gen = str(manifest["generation"])
        pairs = client.kv.list_prefix(f"{base}/chunk/{gen}/", consistency="stale" if stale else None).value
    except (ValueError, KeyError, TypeError) as e:
        return Published(unusable=f"bad manifest: {e}")
    blob = b"".join(p.value or b"" for p in sorted(pairs, key=lambda p: p.key))
    if len(pairs) != manifest.get("chunks") or hashlib.sha256(blob).hexdigest() != manifest.get("sha256"):
        return None  # a newer publish already dropped this generation: the data key changes again shortly
    return decode_payload(blob)


class DedupDataQuery(Dependency):
    """A follower's one watch: the template's data key, decoded into a `Published`."""

    blocking: ClassVar[bool] = True

    def __init__(self, prefix: str, tid: str) -> None:
        self.base = go_path_join(prefix, tid)
        self.key = f"{self.base}/data"

    def __str__(self) -> str:
        return f"dedup({self.key})"

    def fetch(self, client: Client, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[Published | None]:
        """A blocking GET of the data key (and, for chunked data, one read of the chunks)."""
        reply = client.kv.get(self.key, index=index or None, wait=wait, consistency="stale" if stale else None)
        pair = reply.value
        value = pair.value if pair is not None and pair.flags == LOCK_FLAG_VALUE else None
        return Reply.of(read_published(client, self.base, value, stale), reply.meta, found=reply.found)


def shareable(dep: Dependency) -> bool:
    """Whether a leader may publish this dependency's data (Consul data yes; local files no)."""
    return dep.blocking and not isinstance(dep, DedupDataQuery)


# -- leadership ------------------------------------------------------------------------------------


OnLeader = Callable[[int, bool], None]


class DedupManager:
    """The session and one lock contender per template; reports leadership changes.

    `on_leader(index, is_leader)` runs on a background thread; `publish()` runs on the caller's.
    """

    def __init__(self, client: Client, config: DedupConfig, template_ids: list[str], on_leader: OnLeader) -> None:
        self.client = client
        self.config = config
        self.template_ids = template_ids
        self.on_leader = on_leader
        self._leader: set[int] = set()
        self._published: dict[int, str] = {}  # index -> sha256 of what we last wrote
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._session: str | None = None
        self._session_lost = threading.Event()
        self._threads: list[threading.Thread] = []

    def base(self, index: int) -> str:
        """The key prefix of a template: `<prefix>/<ID>`."""
        return go_path_join(self.config.prefix, self.template_ids[index])

    def data_dependency(self, index: int) -> DedupDataQuery:
        """What a follower of template `index` watches."""
        return DedupDataQuery(self.config.prefix, self.template_ids[index])

    def is_leader(self, index: int) -> bool:
        """Whether this instance holds template `index`'s lock."""
        with self._mutex:
            return index in self._leader

    @property
    def session(self) -> str | None:
        """The current session's ID (None while there is none)."""
        return self._session

    def start(self) -> None:
        """Create the session and contend for every template, in background threads."""
        log.info("starting de-duplication manager (prefix %s)", self.config.prefix)
        t = threading.Thread(target=self._run, name="dedup", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Give up every lock and destroy the session (so another instance takes over at once)."""
        self._stop.set()
        self._session_lost.set()
        for t in self._threads:
            t.join(timeout=5)

    # -- background ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sid = self.client.session.create(name=SESSION_NAME, ttl=self.config.ttl, lock_delay=0.001,
                                                 behavior="delete")
            except ConsulError as e:
                log.error("dedup: failed to create session: %s", e)
                self._stop.wait(SESSION_RETRY)
                continue
            log.info("dedup: created session %s", sid)
            # one event per session: contenders of a lost session stop, whatever the next one does
            lost = threading.Event()
            self._session, self._session_lost = sid, lost
            if self._stop.is_set():
                lost.set()
            renewer = SessionRenewer(self.client, sid, self.config.ttl,
                                     functools.partial(self._on_session_gone, lost)).start()  # on_gone / on_expired
            contenders = [threading.Thread(target=self._contend, args=(i, sid, lost), name=f"dedup-lock-{i}",
                                           daemon=True) for i in range(len(self.template_ids))]
            for c in contenders:
                c.start()
            lost.wait()
            renewer.stop()
            self._session = None
            if self._stop.is_set():
                for c in contenders:  # leaders release their locks (followers may be in a blocked read)
                    c.join(timeout=2)
                self._destroy(sid)
                return

    def _on_session_gone(self, lost: threading.Event, reason: str) -> None:
        log.warning("dedup: session lost: %s", reason)
        lost.set()

    def _destroy(self, sid: str) -> None:
        try:
            self.client.session.destroy(sid)
        except ConsulError as e:
            log.debug("dedup: destroying session %s failed: %s", sid, e)

    def _contend(self, index: int, sid: str, lost: threading.Event) -> None:
        key = f"{self.base(index)}/lock"
        holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid()})
        while not lost.is_set():
            lock = self.client.lock(key, session=sid, value=holder, monitor_retries=3, monitor_retry_time=3.0,
                                    wait_time=15.0)
            try:
                held = lock.acquire(stop=lost)
            except LockError as e:
                if not lost.is_set():
                    log.error("dedup: lock %s: %s", key, e)
                lost.wait(LOCK_RETRY)
                continue
            if not held:
                return
            log.info("dedup: leader for %s", key)
            self._set_leader(index, True)
            while not lock.lost.wait(0.5):
                if lost.is_set():
                    break
            if self._stop.is_set() and not lock.lost.is_set():
                try:
                    lock.release()  # hand over now rather than when the session's TTL runs out
                except LockError as e:
                    log.debug("dedup: releasing %s: %s", key, e)
            if not self._stop.is_set() and not lost.is_set():
                self._drop_data(index, sid)
            self._set_leader(index, False)
            log.info("dedup: no longer leader for %s", key)

    def _drop_data(self, index: int, sid: str) -> None:
        """After losing the lock with the session alive: let go of the data key for the next leader."""
        data_key = f"{self.base(index)}/data"
        try:
            self.client.txn.apply([kv_op("check-session", data_key, session=sid), kv_op("delete", data_key)])
        except ConsulError as e:
            log.debug("dedup: dropping %s: %s", data_key, e)

    def _set_leader(self, index: int, leader: bool) -> None:
        with self._mutex:
            if leader:
                self._leader.add(index)
            else:
                self._leader.discard(index)
                self._published.pop(index, None)
        if not self._stop.is_set():
            self.on_leader(index, leader)

    # -- publishing (the runner's thread) -------------------------------------------------------------

    def publish(self, index: int, template_hash: str, data: dict[str, Any]) -> bool:
        """Write template `index`'s data if this instance leads it and it changed; True when written."""
        sid = self._session
        if sid is None or not self.is_leader(index):
            return False
        payload = encode_payload(template_hash, data)
        digest = hashlib.sha256(payload).hexdigest()
        if self._published.get(index) == digest:
            return False
        try:
            written = publish(self.client, self.base(index), sid, payload)
        except ConsulError as e:
            log.error("dedup: failed to publish %s/data: %s", self.base(index), e)
            return False
        if not written:
            log.warning("dedup: publishing %s/data refused: the lock is no longer ours", self.base(index))
            return False
        self._published[index] = digest
        log.info("dedup: published %d dependencies (%d bytes) to %s/data", len(data), len(payload), self.base(index))
        return True

