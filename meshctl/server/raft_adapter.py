"""Every touch of pysyncobj's internals, in one place (written against pysyncobj == 0.3.17).

raft.py uses pysyncobj only through this module. What it reaches beyond pysyncobj's public API
(tests/cluster/test_raft_adapter.py checks each of these against the installed version, so an
incompatible upgrade fails there first):

* Encoding. pysyncobj pickles everything it sends or stores: transport messages
  (`tcp_connection.pickle`), log commands and chunked entries (`syncobj.pickle`), in-memory
  snapshots (`serializer.pickle`) and the journal's meta file (`journal.loads/dumps`). Whoever
  reaches the Raft port could have run code with one crafted message. `install()` replaces
  those module globals, once per process, with a msgpack codec (`encode`/`decode`) that only
  builds plain data (dict, list, str, bytes, numbers, tuple, set, pysyncobj nodes) and refuses
  anything that is not in its format: no pickle is ever read from the network.
* The journal. pysyncobj creates it through the module-level `syncobj.createJournal`;
  `install()` sets that to a factory that gives a `SyncedFileJournal` (fdatasync per record)
  for paths registered with `register_journal(path, sync=True)`. The fdatasync reaches the
  journal's file object through name-mangled attributes.
* Files written by older meshctl (pickled commands in the journal, a pickled snapshot):
  `migrate_data_dir` rewrites them in the new format before pysyncobj opens them, reading the
  old pickles with a restricted unpickler (builtins and pysyncobj nodes only). Only local files
  ever go through it.
* `AdaptedSyncObj`: the SyncObj base of raft.py's replica, with accessors for the private state
  raft.py needs (leader no-op index, the transport's message callback).
* Peer progress (`peer_progress`, for autopilot's health): the leader's private
  `_SyncObj__raftMatchIndex` and `_SyncObj__lastResponseTime` per voter.
* Joining. A server that joins a running cluster starts its SyncObj with the voters as partners
  before the leader adds it (the add commits only once the new server answers). Until a leader
  contacts it, it must not campaign: pysyncobj has no pre-vote, and a request_vote with a higher
  term makes the live leader step down. `hold_elections` keeps pushing the private election
  deadline (`_SyncObj__raftElectionDeadline`) forward until a leader is known.
* Fencing. pysyncobj keeps submitted commands in `_SyncObj__commandsQueue` until its raft thread
  appends them (leader) or forwards them (follower), which may be long after the submitter gave
  up (no leader known: `commandsWaitLeader`). The queue is replaced by a `FencedQueue` of
  `Ticket`s: a command either leaves the queue (dispatched) or is withdrawn by the submitter,
  decided once under a lock, so a command answered "not applied" is never appended later. A
  leader that steps down drops what is still queued (`DROPPED` to the submitter, NOT_LEADER to a
  follower that forwarded it) instead of forwarding it to the next leader.

Format versions. A new command/message/meta file is `MAGIC` + `FORMAT_VERSION` + msgpack; a new
snapshot file starts with `SNAPSHOT_HEADER` (which carries its version) followed by one encoded
value. Version 0 is the unversioned pickle format of older meshctl.
"""

from __future__ import annotations

import inspect
import io
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pysyncobj.journal as _journal  # type: ignore[import-untyped]
import pysyncobj.serializer as _serializer  # type: ignore[import-untyped]
import pysyncobj.syncobj as _syncobj  # type: ignore[import-untyped]
import pysyncobj.tcp_connection as _tcp  # type: ignore[import-untyped]
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf  # type: ignore[import-untyped]
from pysyncobj.fast_queue import FastQueue  # type: ignore[import-untyped]
from pysyncobj.journal import FileJournal, MemoryJournal  # type: ignore[import-untyped]
from pysyncobj.node import Node, TCPNode  # type: ignore[import-untyped]
from pysyncobj.version import VERSION as _PYSYNCOBJ_VERSION  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

PYSYNCOBJ_VERSION = "0.3.17"  # the version this adapter was written and tested against
FORMAT_VERSION = 1
MAGIC = b"\xc1"  # a byte msgpack never produces; pickles start with b"\x80"
SNAPSHOT_HEADER = b"MESHCTL-RAFT-SNAPSHOT/1\n"

# msgpack extension types
_EXT_TUPLE, _EXT_SET, _EXT_FROZENSET, _EXT_TCPNODE, _EXT_NODE, _EXT_BIGINT = range(1, 7)

# the message types pysyncobj's nodes send each other (syncobj.py); anything else is refused
MESSAGE_TYPES = frozenset({"request_vote", "response_vote", "append_entries", "apply_command",
                           "apply_command_response", "next_node_idx", "timeout_now"})


class FormatError(ValueError):
    """Data that is not in meshctl's Raft format (or not a message pysyncobj sends)."""


# ---------------------------------------------------------------------- the codec


def _default(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return msgpack.ExtType(_EXT_TUPLE, _pack(list(obj)))
    if isinstance(obj, frozenset):
        return msgpack.ExtType(_EXT_FROZENSET, _pack(list(obj)))
    if isinstance(obj, set):
        return msgpack.ExtType(_EXT_SET, _pack(list(obj)))
    if isinstance(obj, TCPNode):
        return msgpack.ExtType(_EXT_TCPNODE, _pack(obj.address))
    if isinstance(obj, Node):
        return msgpack.ExtType(_EXT_NODE, _pack(obj.id))
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        if -(2 ** 63) <= obj < 2 ** 64:
            return int.__int__(obj)
        return msgpack.ExtType(_EXT_BIGINT, str(int(obj)).encode())
    if isinstance(obj, float):
        return float.__float__(obj)
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in a Raft entry")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_TUPLE:
        return tuple(_unpack(data))
    if code == _EXT_SET:
        return set(_unpack(data))
    if code == _EXT_FROZENSET:
        return frozenset(_unpack(data))
    if code == _EXT_TCPNODE:
        address = _unpack(data)
        if not isinstance(address, str) or ":" not in address:
            raise FormatError("bad node address")
        return TCPNode(address)
    if code == _EXT_NODE:
        return Node(_unpack(data))
    if code == _EXT_BIGINT:
        return int(data.decode("ascii"))
    raise FormatError(f"unknown extension type {code}")


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, strict_types=True, use_bin_type=True)  # type: ignore[no-any-return]


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False, use_list=True)


_PREFIX = MAGIC + bytes([FORMAT_VERSION])
_monotonic = time.monotonic


def encode(obj: Any) -> bytes:
    """`obj` (plain data) in meshctl's Raft format. TypeError if it holds anything else."""
    return _PREFIX + _pack(obj)


def decode(data: bytes | bytearray | memoryview | str) -> Any:
    """The value `encode` made; FormatError for anything else (a pickle included)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = bytes(data)
    if data[:1] != MAGIC:
        raise FormatError("not in meshctl's Raft format")
    if data[1:2] != bytes([FORMAT_VERSION]):
        raise FormatError(f"unsupported Raft format version {data[1:2]!r}")
    try:
        return _unpack(data[2:])
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(f"undecodable Raft data: {exc}") from None


class _LegacyUnpickler(pickle.Unpickler):
    """Older meshctl's pickles: plain data and pysyncobj nodes, nothing that runs code."""

    ALLOWED = {("_codecs", "encode"), ("pysyncobj.node", "TCPNode"), ("pysyncobj.node", "Node"),
               *((m, n) for m in ("builtins", "__builtin__") for n in ("set", "frozenset", "bytearray"))}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise FormatError(f"refusing {module}.{name} in an old Raft file")
        return super().find_class(module, name)


def decode_legacy(data: bytes) -> Any:
    """A pickle written by older meshctl (local files only), with the restricted unpickler."""
    return _LegacyUnpickler(io.BytesIO(bytes(data))).load()


def decode_local(data: bytes | str) -> Any:
    """A value from a local file: today's format, or an older meshctl's pickle."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if bytes(data[:1]) == MAGIC:
        return decode(data)
    return decode_legacy(data)


class _Codec:
    """Stands in for `pysyncobj.pickle` where pysyncobj encodes: same functions, safe format."""

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def to_bytes(data: Any) -> bytes:
        return data if isinstance(data, bytes) else str(data).encode("utf-8")

    def dumps(self, obj: Any, protocol: Any = None) -> bytes:
        return encode(obj)

    def loads(self, data: Any) -> Any:
        return decode(data)

    def dump(self, obj: Any, file: Any, protocol: Any = None) -> None:
        file.write(self.dumps(obj))

    def load(self, file: Any) -> Any:
        return self.loads(file.read())

    def __repr__(self) -> str:
        return f"<meshctl Raft codec for {self.name}>"


def _check_message(msg: Any, nested: bool = False) -> None:
    """What pysyncobj's transport exchanges: a handshake string/key, or a typed message dict."""
    if isinstance(msg, str | bytes):
        return  # the peer's address (or 'readonly'), an encryption nonce
    if isinstance(msg, tuple) and len(msg) == 2 and isinstance(msg[0], bytes) and not nested:
        _check_message(msg[1], True)  # (nonce, message) on an encrypted connection
        return
    if isinstance(msg, dict) and msg.get("type") in MESSAGE_TYPES:
        return
    raise FormatError("not a Raft message")


class _TransportCodec(_Codec):
    def loads(self, data: Any) -> Any:
        msg = decode(data)
        _check_message(msg)
        return msg


NETWORK_CODEC = _Codec("syncobj")  # log commands, chunked entries, in-memory snapshots
TRANSPORT_CODEC = _TransportCodec("tcp_connection")  # every message on the Raft port

# the module globals install() replaces: (module, name, replacement)
PATCHES: list[tuple[Any, str, Any]] = []


# ---------------------------------------------------------------------- the journal


class SyncedFileJournal(FileJournal):
    """pysyncobj's mmap journal, with each appended record on disk (fdatasync) before it counts.

    fdatasync on the file also writes the pages dirtied through the shared mapping, and unlike
    mmap.flush (msync) it releases the GIL, so the HTTP loop keeps serving meanwhile.
    """

    def add(self, command: bytes, idx: int, term: int) -> None:
        super().add(command, idx, term)
        os.fdatasync(self._FileJournal__journalFile._ResizableFile__f.fileno())  # type: ignore[attr-defined]


_journal_sync: dict[str, bool] = {}
_original_create_journal = _journal.createJournal


def register_journal(path: str, sync: bool) -> None:
    """Whether the journal at `path` syncs each record (asked when pysyncobj opens it)."""
    _journal_sync[os.path.abspath(path)] = sync


def create_journal(journalFile: str | None = None) -> Any:  # noqa: N803 (pysyncobj's name)
    """pysyncobj's `createJournal`, honouring `register_journal`."""
    if journalFile is None:
        return MemoryJournal()
    if _journal_sync.get(os.path.abspath(journalFile), False):
        return SyncedFileJournal(journalFile)
    return FileJournal(journalFile)


def _meta_loads(data: Any) -> Any:
    return decode_local(data)


# ---------------------------------------------------------------------- install

_installed = False
_install_lock = threading.Lock()


def check_version() -> None:
    """Refuse to run on a pysyncobj this adapter was not written for."""
    if _PYSYNCOBJ_VERSION != PYSYNCOBJ_VERSION:
        raise RuntimeError(f"meshctl needs pysyncobj {PYSYNCOBJ_VERSION} (its Raft adapter reaches into its "
                           f"internals); installed: {_PYSYNCOBJ_VERSION}")


def install() -> None:
    """Replace pysyncobj's pickling and journal factory, once per process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        check_version()
        PATCHES[:] = [
            (_tcp, "pickle", TRANSPORT_CODEC),
            (_syncobj, "pickle", NETWORK_CODEC),
            (_serializer, "pickle", NETWORK_CODEC),
            (_journal, "loads", _meta_loads),
            (_journal, "dumps", encode),
            (_syncobj, "createJournal", create_journal),
        ]
        for module, name, value in PATCHES:
            if not hasattr(module, name):
                raise RuntimeError(f"pysyncobj changed: {module.__name__}.{name} is gone")
            setattr(module, name, value)
        _installed = True


# ---------------------------------------------------------------------- snapshot files


def _meta_to_wire(raft_meta: Any) -> dict[str, Any]:
    """pysyncobj's snapshot meta (entry N, entry N-1, cluster nodes) as plain data."""
    last, prev, cluster = raft_meta
    return {"Last": [bytes(last[0]), int(last[1]), int(last[2])],
            "Prev": [bytes(prev[0]), int(prev[1]), int(prev[2])],
            "Cluster": sorted(str(n.id) if isinstance(n, Node) else str(n) for n in cluster)}


def _meta_from_wire(meta: dict[str, Any]) -> tuple[Any, Any, set[TCPNode]]:
    last, prev = meta["Last"], meta["Prev"]
    return ((bytes(last[0]), int(last[1]), int(last[2])), (bytes(prev[0]), int(prev[1]), int(prev[2])),
            {TCPNode(a) for a in meta["Cluster"]})


def write_snapshot(filename: str, raft_meta: Any, payload: bytes) -> int:
    """Write a snapshot file (fsynced): pysyncobj's meta and the `encode`d state. Returns its size."""
    data = SNAPSHOT_HEADER + encode({"Format": FORMAT_VERSION, "Raft": _meta_to_wire(raft_meta), "Data": payload})
    with open(filename, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return len(data)


def encode_snapshot_payload(payload: dict[str, Any], entries: list[Any], row: Callable[[Any], Any],
                            chunk: int = 2000) -> bytes:
    """`encode(payload)` with `payload["State"]["KV"]` = [row(e) for e in entries], built piece by
    piece: one big msgpack call would hold the GIL (and stall the HTTP loop) for seconds."""
    state = payload["State"]
    packer = msgpack.Packer(default=_default, strict_types=True, use_bin_type=True)
    out = [_PREFIX, packer.pack_map_header(len(payload))]
    for key, value in payload.items():
        out.append(packer.pack(key))
        if key != "State":
            out.append(packer.pack(value))
            continue
        out.append(packer.pack_map_header(len(state)))
        for skey, svalue in state.items():
            out.append(packer.pack(skey))
            if skey != "KV":
                out.append(packer.pack(svalue))
                continue
            out.append(packer.pack_array_header(len(entries)))
            for i in range(0, len(entries), chunk):
                out.append(b"".join(packer.pack(row(e)) for e in entries[i:i + chunk]))
    return b"".join(out)


def fsync_dir(path: str) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_snapshot(filename: str) -> tuple[Any, Any]:
    """(pysyncobj's meta, the state) of a snapshot file in today's format."""
    with open(filename, "rb") as f:
        data = f.read()
    if not data.startswith(SNAPSHOT_HEADER):
        raise FormatError(f"{filename}: not a meshctl Raft snapshot (format {FORMAT_VERSION})")
    body = decode(data[len(SNAPSHOT_HEADER):])
    return _meta_from_wire(body["Raft"]), decode(body["Data"])


def _migrate_command(command: bytes) -> bytes:
    """A journal command (type byte + body) with an old pickled body re-encoded."""
    command = bytes(command)
    if len(command) <= 1 or command[1:2] == MAGIC:
        return command
    return command[:1] + encode(decode_legacy(command[1:]))


def migrate_data_dir(journal_path: str, snapshot_path: str) -> bool:
    """Rewrite an older meshctl's journal and snapshot (pickles) in today's format, in place.

    Runs before pysyncobj opens them. The old files stay beside the new ones (`*.v0`).
    Returns whether anything was rewritten.
    """
    changed = False
    if os.path.exists(snapshot_path):
        with open(snapshot_path, "rb") as f:
            head = f.read(len(SNAPSHOT_HEADER))
        if head != SNAPSHOT_HEADER:
            with open(snapshot_path, "rb") as f:
                raft_meta, payload = decode_legacy(f.read())
            data = decode_legacy(payload) if isinstance(payload, bytes) else payload
            last, prev, cluster = raft_meta
            raft_meta = ((_migrate_command(last[0]), last[1], last[2]),
                         (_migrate_command(prev[0]), prev[1], prev[2]), cluster)
            write_snapshot(snapshot_path + ".new", raft_meta, encode(data))
            os.replace(snapshot_path, snapshot_path + ".v0")
            os.replace(snapshot_path + ".new", snapshot_path)
            changed = True
            log.info("raft: snapshot %s rewritten in format %d (the old file is %s.v0)", snapshot_path,
                     FORMAT_VERSION, snapshot_path)
    if os.path.exists(journal_path):
        old = FileJournal(journal_path)
        try:
            entries = [(bytes(c), i, t) for c, i, t in (old[k] for k in range(len(old)))]
        finally:
            old._destroy()
        migrated = [(_migrate_command(c), i, t) for c, i, t in entries]
        if migrated != entries:
            tmp = journal_path + ".new"
            if os.path.exists(tmp):
                os.unlink(tmp)
            new = FileJournal(tmp)
            try:
                for entry in migrated:
                    new.add(*entry)
                new.flush()
            finally:
                new._destroy()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(journal_path, journal_path + ".v0")
            os.replace(tmp, journal_path)
            changed = True
            log.info("raft: journal %s rewritten in format %d (%d entries; the old file is %s.v0)",
                     journal_path, FORMAT_VERSION, len(migrated), journal_path)
    return changed


# ---------------------------------------------------------------------- fencing queued commands

DROPPED = 100  # callback error: the command was dropped before it reached any log (never applied)
_RAFT_LEADER = _syncobj._RAFT_STATE.LEADER


class Ticket:
    """A local command's callback, and its fate, decided once: dispatched (raft thread) or withdrawn.

    Dispatched means appended to this leader's log or forwarded to the leader: from then on the
    outcome is Raft's (it may commit even if the submitter stops waiting). Withdrawn means it
    never left this server's queue, and never will.
    """

    PENDING, DISPATCHED, WITHDRAWN = 0, 1, 2
    __slots__ = ("callback", "fate")
    _lock = threading.Lock()

    def __init__(self, callback: Callable[[Any, int], None]) -> None:
        self.callback = callback
        self.fate = self.PENDING

    def __call__(self, result: Any, err: int) -> None:
        self.callback(result, err)

    def _decide(self, fate: int) -> bool:
        with self._lock:
            if self.fate == self.PENDING:
                self.fate = fate
            return self.fate == fate

    def dispatch(self) -> bool:
        """Raft thread, taking it from the queue: False if it was withdrawn (then it is skipped)."""
        return self._decide(self.DISPATCHED)

    def withdraw(self) -> bool:
        """Any thread: True when the command is (now) sure never to reach a log."""
        return self._decide(self.WITHDRAWN)


class FencedQueue(FastQueue):  # type: ignore[misc]
    """pysyncobj's command queue, skipping withdrawn tickets (see `Ticket`)."""

    def get_nowait(self) -> Any:
        while True:
            item = super().get_nowait()  # queue.Empty when there is nothing left
            callback = item[1]
            if isinstance(callback, Ticket) and not callback.dispatch():
                continue
            return item

    def drain(self) -> list[Any]:
        """Take everything still queued, withdrawing the tickets (those withdrawn already left out)."""
        out: list[Any] = []
        while True:
            try:
                item = super().get_nowait()
            except Exception:  # queue.Empty
                return out
            callback = item[1]
            if isinstance(callback, Ticket) and (callback.fate == Ticket.WITHDRAWN or not callback.withdraw()):
                continue
            out.append(item)


# ---------------------------------------------------------------------- the SyncObj base

MessageHook = Callable[[Any, dict[str, Any], Callable[[Any, dict[str, Any]], None]], None]
UTILITY_COMMANDS = ("status", "add", "remove", "set_version", "transfer")
ENTRY_OVERHEAD = 64  # encoded (command, index, term) minus the command: at most ~35 bytes


class AdaptedSyncObj(SyncObj):  # type: ignore[misc]
    """pysyncobj's SyncObj with the safe codec installed and accessors for its private state.

    It also corrects pysyncobj's follower side of append_entries (`_filter_append_entries`).
    """

    REPEATED_RESET_AFTER = 1.0  # seconds: the same "send from N" answer is repeated at most this often

    def __init__(self, address: str, others: list[str], conf: SyncObjConf, sync_journal: bool = True,
                 hold_elections: bool = False) -> None:
        install()
        self._holding = hold_elections  # joining: no election before a leader contacted this server
        if conf.journalFile:
            register_journal(conf.journalFile, sync_journal)
        self._reset_sent: tuple[tuple[Any, int, int], float] | None = None
        on_state_changed = conf.onStateChanged

        def state_changed(old: int, new: int) -> None:  # raft thread
            if old == _RAFT_LEADER and new != _RAFT_LEADER:
                self._drop_queued()
            if on_state_changed is not None:
                on_state_changed(old, new)

        conf.onStateChanged = state_changed
        super().__init__(address, others, conf)
        self._SyncObj__commandsQueue = FencedQueue(conf.commandsQueueSize)  # before any command is queued
        # syncobj_admin's unauthenticated commands (add/remove nodes...): meshctl has its own API
        for name in UTILITY_COMMANDS:
            self._SyncObj__transport.setOnUtilityMessageCallback(name, None)
        self.hook_messages(lambda node, message, deliver: deliver(node, message))
        if hold_elections:
            self.addOnTickCallback(self._hold_elections)

    @property
    def holding_elections(self) -> bool:
        """Whether this (joining) server still waits for a leader's first contact."""
        return self._holding

    def _hold_elections(self) -> None:
        """Raft thread, every tick while joining: no election until a leader is known."""
        if not self._holding:
            return
        if self._getLeader() is not None:
            self._holding = False
            log.info("raft: contacted by the leader %s; joined", self._getLeader())
            return
        self._SyncObj__raftElectionDeadline = _monotonic() + self.conf.raftMaxTimeout

    def _drop_queued(self) -> None:
        """Raft thread, on stepping down: what was queued for this leader's log never gets there."""
        queue_ = self._SyncObj__commandsQueue
        if not isinstance(queue_, FencedQueue):
            return
        items = queue_.drain()
        for _command, callback in items:
            if isinstance(callback, tuple):  # forwarded by a follower: tell it, it answers its client
                node, request_id = callback
                self._SyncObj__transport.send(node, {"type": "apply_command_response", "request_id": request_id,
                                                     "error": FAIL_REASON.NOT_LEADER})
            elif callback is not None:
                callback(None, DROPPED)
        if items:
            log.info("raft: leadership lost; %d queued command(s) dropped (not applied)", len(items))

    def peer_progress(self) -> dict[str, tuple[int, float | None]]:
        """Raft thread, on the leader: each other voter's (match index, seconds since its last answer)."""
        match = self._SyncObj__raftMatchIndex
        answered = self._SyncObj__lastResponseTime
        now = _monotonic()
        out: dict[str, tuple[int, float | None]] = {}
        for node in self.otherNodes:
            last = answered.get(node)
            out[str(node)] = (int(match.get(node, 0)), None if last is None else max(0.0, now - last))
        return out

    @property
    def noop_index(self) -> int | None:
        """Index of the no-op entry this leader appended at the start of its term."""
        return self._SyncObj__noopIDx  # type: ignore[no-any-return]

    def entry_padding(self, method: str, args: tuple[Any, ...], chunk_bytes: int) -> bytes:
        """Padding to pass as one more argument so that the entry of `method(*args)` goes out whole.

        An entry of `appendEntriesBatchSizeBytes` (`chunk_bytes`) or more is sent in chunks of that
        size; pysyncobj marks the last one by the command's length instead of the encoded entry's
        (a few bytes longer). When a chunk boundary falls between the two, the follower decodes a
        cut entry ("data was truncated") and the write fails. Padding moves the end past it.
        """
        func_id = self._methodToID[self._getFuncName(method)]
        length = 1 + len(encode((func_id, args)))  # the command: type byte + the encoded call
        if length >= chunk_bytes and (-length) % chunk_bytes < ENTRY_OVERHEAD:
            return b"\0" * (2 * ENTRY_OVERHEAD)
        return b""

    def hook_messages(self, hook: MessageHook) -> None:
        """Route every message from a peer through `hook(node, message, deliver)` (raft thread)."""
        transport = self._SyncObj__transport
        on_message = self._SyncObj__onMessageReceived

        def deliver(node: Any, message: dict[str, Any]) -> None:
            filtered = self._filter_append_entries(node, message)
            if filtered is not None:
                on_message(node, filtered)

        transport.setOnMessageReceivedCallback(lambda node, message: hook(node, message, deliver))

    def _log_term(self, index: int) -> int | None:
        log = self._SyncObj__raftLog
        first = log[0][1]
        if index < first or index > log[-1][1]:
            return None
        return int(log[index - first][2])

    def _filter_append_entries(self, node: Any, message: dict[str, Any]) -> dict[str, Any] | None:
        """Raft thread: an append_entries message as pysyncobj's follower code should see it.

        pysyncobj (0.3.17) deletes every entry after prevLogIdx whenever there is one, even when
        they are the very entries the message carries (the leader re-sends them after a late
        "send from N" answer) or entries the message does not cover: the "truncating
        already-applied log entries" CRITICAL, and a follower that forgets committed entries it
        had acknowledged (after a leader kill, a quorum may then lack them). Raft deletes only
        from the first entry that conflicts (same index, other term). So the message is trimmed
        to the entries this log lacks, starting after the last one it provably shares with the
        leader; pysyncobj then truncates only on a real conflict.

        A burst of messages the leader sent before it read a "send from N" answer would get the
        same answer each; the leader would go back to N for each (and, if N is before its log,
        re-send its snapshot each time, which replaces this log). Repeats are dropped instead.
        """
        if message.get("type") != "append_entries" or "prevLogIdx" not in message or "transmission" in message:
            return message
        term, prev, prev_term = message.get("term"), message.get("prevLogIdx"), message.get("prevLogTerm")
        if not isinstance(term, int) or not isinstance(prev, int) or term < self.raftCurrentTerm:
            return message  # pysyncobj ignores it (or fails on it) as before
        log = self._SyncObj__raftLog
        first, last = int(log[0][1]), int(log[-1][1])
        if prev < first or prev > last:  # pysyncobj answers "send from last + 1"
            key, now = (getattr(node, "id", node), term, last), _monotonic()
            if self._reset_sent is not None and self._reset_sent[0] == key and \
                    now - self._reset_sent[1] < self.REPEATED_RESET_AFTER:
                return None
            self._reset_sent = (key, now)
            return message
        if self._log_term(prev) != prev_term:
            return message  # a conflict at prevLogIdx: pysyncobj's answer is right
        self._reset_sent = None
        entries = list(message.get("entries") or [])
        if any(not isinstance(e, list | tuple) or len(e) != 3 or e[1] != prev + 1 + i for i, e in enumerate(entries)):
            return message
        shared = 0  # leading entries this log already has (same index and term: the same entry)
        for e in entries:
            if e[1] > last or self._log_term(e[1]) != e[2]:
                break
            shared += 1
        base = prev + shared  # this log and the leader's agree up to here
        rest = entries[shared:]
        if not rest and base < last:
            if self._log_term(last) == term:
                # an entry of the leader's own term: this whole log is a prefix of the leader's
                base = last
            # else: entries of older terms the leader has not confirmed; pysyncobj drops them
        if base == prev and len(rest) == len(entries):
            return message
        out = dict(message)
        out["prevLogIdx"], out["prevLogTerm"], out["entries"] = base, self._log_term(base), rest
        return out


def signature_of(fn: Any) -> str:
    """For the compatibility test: the signature text of a pysyncobj function."""
    return str(inspect.signature(fn))
