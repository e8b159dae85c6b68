"""The replicated store: the state machine of `state.py` behind pysyncobj (Raft).

Threads. pysyncobj runs its own thread (the "raft thread"); the HTTP layer, the watch hub
and every reader of `state` live on the asyncio loop and read without locks. So the state
is only ever touched on the loop: the replicated method `apply_batch` (called by pysyncobj
on the raft thread, on every replica, in log order) does not apply anything itself; it
hands the batch to the loop with `call_soon_threadsafe`, whose FIFO order keeps log order.
pysyncobj's own completion callback for the same entry is queued right after it, so by the
time a request's future is resolved its batch has been applied on the loop.

Snapshots follow the same rule: pysyncobj asks for one on the raft thread right after it
applied entry N; the request is queued on the loop behind the applies of entries <= N, so
the loop serialises exactly the state at N while the raft thread waits. Loading a snapshot
(restart, or install from the leader) is queued on the loop the same way.

Group commit. `apply()` queues the command; the commands queued during one loop iteration
(and while earlier batches are still in flight) go out as one Raft entry, and each request
gets its own result (or StateError) back. `barrier()` rides along as an empty slot: once
its entry is applied here, this replica has everything committed before it (?consistent).

A follower's writes are forwarded by pysyncobj itself to the leader; their result comes
from the follower's own application of the committed entry (so it can read its writes).

Voters. pysyncobj changes its voter set when a membership entry reaches its log (before
commit, as Raft wants; undone if the entry is rolled back) and when it loads a snapshot, but
it has no callback for that. So a tick callback watches the public `otherNodes` and hands
each new set to the loop (`voters`, `on_voters_change`): the cluster keeps peers.json on it,
so a restart starts from the configuration the server last had, not the one it bootstrapped
with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pysyncobj import FAIL_REASON, SyncObjConf, replicated
from pysyncobj.config import SERIALIZER_STATE  # type: ignore[import-untyped]

from meshctl.server import raft_adapter
from meshctl.server.commands import Command, Restore, ServerMember, with_now
from meshctl.server.raft_adapter import AdaptedSyncObj
from meshctl.server.state import State, StateError
from meshctl.server.state.machine import snapshot_kv
from meshctl.server.watch import WatchHub

log = logging.getLogger(__name__)

APPLY_TIMEOUT = 15.0  # a write not committed by then answers 500 (fenced, or its outcome unknown)
MAX_INFLIGHT = 2  # Raft entries in flight from this server; later writes gather behind them
MAX_BATCH = 1024  # commands per Raft entry
MAX_BATCH_BYTES = 1 << 20  # ... and encoded bytes per entry (a bigger single command goes alone)
MAX_COMMAND_BYTES = 256 << 20  # one encoded command (a `snapshot restore` is one command)
# pysyncobj's bound on one append_entries message; a single entry of this size or more goes in
# chunks (see raft_adapter.AdaptedSyncObj.entry_padding). Batches stay below it.
CHUNK_BYTES = 2 << 20
MEMBER_OP = ServerMember.OP  # replicated server directory (raft address -> node, HTTP address)
NO_LEADER = "No cluster leader"

TIMED_OUT = "timed out waiting for the write to commit (no quorum?)"
NOT_APPLIED = "; the write was not applied and will not be"
UNKNOWN_OUTCOME = "; the outcome is unknown: the write may still be applied"

# pysyncobj's failures. A command that failed before it reached a log is never applied (the
# message says so); one that reached a leader's log may still commit (Raft cannot un-append it).
_FAILURES = {
    FAIL_REASON.QUEUE_FULL: "raft queue full" + NOT_APPLIED,
    FAIL_REASON.MISSING_LEADER: NO_LEADER,
    FAIL_REASON.DISCARDED: "leadership lost while committing log" + NOT_APPLIED,  # another entry took its place
    FAIL_REASON.NOT_LEADER: "node is not the leader" + NOT_APPLIED,
    FAIL_REASON.LEADER_CHANGED: "leadership lost while committing log" + UNKNOWN_OUTCOME,
    FAIL_REASON.REQUEST_DENIED: "request denied",
    FAIL_REASON.UNKNOWN_OUTCOME: "leadership lost while committing log" + UNKNOWN_OUTCOME,
    raft_adapter.DROPPED: "leadership lost before the write reached the log" + NOT_APPLIED,
}

# Raft timings at -raft-multiplier 1 (seconds); each is multiplied by it (Consul's
# performance.raft_multiplier). pysyncobj on a busy 2-core machine misses 0.5 s election
# timeouts, so the default multiplier is 3 (failover in ~3-6 s), Consul's own default is 5.
RAFT_MIN_TIMEOUT, RAFT_MAX_TIMEOUT = 0.5, 1.2  # election timeout range (a follower without heartbeats)
LEADER_FALLBACK = 2.0  # a leader without a quorum's answers for this long steps down
CONNECTION_TIMEOUT = 3.5  # a silent connection is dropped
DEFAULT_RAFT_MULTIPLIER = 3
MAX_RAFT_MULTIPLIER = 10  # Consul's limit


@dataclass
class RaftConfig:
    """How one server joins the Raft group."""

    address: str  # this server's raft address, host:port (Consul's server RPC address)
    peers: list[str]  # every voter's raft address, this one included
    data_dir: str | None = None  # journal + snapshot; None keeps everything in memory
    sync_writes: bool = True  # fsync the journal before a write is acknowledged
    snapshot_threshold: int = 8192  # log entries between snapshots (Consul: raft_snapshot_threshold)
    snapshot_interval: float = 120.0  # ... or seconds, whichever comes first
    info: dict[str, Any] = field(default_factory=dict)  # published in the server directory
    password: str | None = field(default=None, repr=False)  # -encrypt: pysyncobj encrypts all Raft traffic
    raft_multiplier: int = DEFAULT_RAFT_MULTIPLIER  # scales election and step-down timeouts (1..10)
    joining: bool = False  # joining a running cluster: no election before the leader's first contact


class _Replica(AdaptedSyncObj):
    """The pysyncobj object: one replicated method, which hands batches to the loop."""

    def __init__(self, store: RaftStore, cfg: RaftConfig, conf: SyncObjConf) -> None:
        self._store = store
        others = [p for p in cfg.peers if p != cfg.address]
        super().__init__(cfg.address, others, conf, sync_journal=cfg.sync_writes, hold_elections=cfg.joining)

    @replicated
    def apply_batch(self, origin: str, seq: int, cmds: list[dict[str, Any]], _pad: bytes = b"") -> None:
        """Runs on the raft thread on every replica; the loop applies the batch (`_pad`: ignored)."""
        self._store._from_raft(self.raftLastApplied + 1, origin, seq, cmds)


class RaftStore:
    """The `Store` of a server in a Raft group (see `store.Store`)."""

    def __init__(self, state: State, cfg: RaftConfig) -> None:
        self.state = state
        self.hub = WatchHub()
        self.cfg = cfg
        self.origin = f"{cfg.address}/{uuid.uuid4().hex[:12]}"  # this incarnation's batches
        self.members: dict[str, dict[str, Any]] = {}  # raft address -> published info
        self.applied_index = 0  # raft log index of the last entry applied on the loop
        self.on_leader_change: list[Callable[[bool], None]] = []
        self.voters: list[str] = []  # the live voter set, this server included (loop's copy)
        self.on_voters_change: list[Callable[[list[str]], None]] = []  # loop thread, new `voters`
        self.config_index = 1  # raft log index at which the current voter set was seen (raft/configuration)
        self._others_seen: frozenset[str] = frozenset()  # raft thread: `otherNodes` last handed over
        self._nodes_seen: Any = None  # raft thread: pysyncobj's `otherNodes` at the last tick
        self.replica: _Replica | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[tuple[dict[str, Any] | None, asyncio.Future[Any], int]] = []  # + encoded size
        # in pysyncobj's hands: seq -> (time handed over, the batch's requests, its fate)
        self._pending: dict[int, tuple[float, list[tuple[dict[str, Any] | None, asyncio.Future[Any]]],
                                       raft_adapter.Ticket]] = {}
        self._seq = 0
        self._flush_scheduled = False
        self._scheduled = 0  # entries handed to the loop by the raft thread
        self._processed = 0  # ... and applied by the loop
        self._last_contact = time.monotonic()
        self._was_leader = False
        self._raft_calls: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = \
            queue.SimpleQueue()
        self._sweeper: asyncio.Task[None] | None = None
        self._snap_state = SERIALIZER_STATE.NOT_SERIALIZING  # the background snapshot write
        self._snap_generation = 0  # bumped by every snapshot load (raft thread)
        self._membership_lock = asyncio.Lock()  # this server's membership changes go one at a time

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the journal, bind the raft port and start the raft thread."""
        self.loop = asyncio.get_running_loop()
        cfg = self.cfg
        files: dict[str, Any] = {}
        if cfg.data_dir:
            os.makedirs(os.path.join(cfg.data_dir, "raft"), exist_ok=True)
            files = {"journalFile": os.path.join(cfg.data_dir, "raft", "journal.bin"),
                     "fullDumpFile": os.path.join(cfg.data_dir, "raft", "snapshot.bin")}
            # an older meshctl's pickled journal and snapshot: rewritten before pysyncobj reads them
            await asyncio.get_running_loop().run_in_executor(
                None, raft_adapter.migrate_data_dir, files["journalFile"], files["fullDumpFile"])
        mult = max(1, min(MAX_RAFT_MULTIPLIER, int(cfg.raft_multiplier or DEFAULT_RAFT_MULTIPLIER)))
        conf = SyncObjConf(
            bindAddress=cfg.address,  # only -bind (pysyncobj would listen on every address)
            appendEntriesUseBatch=False,  # ~1 ms commits; group commit below does the batching
            appendEntriesPeriod=0.1, raftMinTimeout=RAFT_MIN_TIMEOUT * mult, raftMaxTimeout=RAFT_MAX_TIMEOUT * mult,
            connectionTimeout=CONNECTION_TIMEOUT + LEADER_FALLBACK * (mult - 1), connectionRetryTime=0.5,
            leaderFallbackTimeout=LEADER_FALLBACK * mult,
            logCompactionMinEntries=cfg.snapshot_threshold, logCompactionMinTime=cfg.snapshot_interval,
            dynamicMembershipChange=True, commandsWaitLeader=True,
            appendEntriesBatchSizeBytes=CHUNK_BYTES, sendBufferSize=2 ** 20, recvBufferSize=2 ** 20,
            onStateChanged=self._on_state_changed_raft,
            serializer=self._serialize, deserializer=self._deserialize, password=cfg.password or None,
            serializeChecker=self._snapshot_status if files else None, **files)
        self.voters = sorted({*cfg.peers, cfg.address})
        self._others_seen = frozenset(self.voters) - {cfg.address}
        self.replica = _Replica(self, cfg, conf)  # binds the raft port, starts the raft thread

        def watch_contact(node: Any, message: dict[str, Any], deliver: Callable[[Any, dict[str, Any]], None]) -> None:
            if message.get("type") == "append_entries":
                self._last_contact = time.monotonic()
            deliver(node, message)

        self.replica.hook_messages(watch_contact)
        self.replica.addOnTickCallback(self._run_raft_calls)
        self.replica.addOnTickCallback(self._watch_voters)
        self._sweeper = asyncio.ensure_future(self._sweep())

    async def stop(self) -> None:
        """Stop the raft thread (the journal stays for the next start)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.replica is not None:
            replica, self.replica = self.replica, None
            await asyncio.get_running_loop().run_in_executor(None, replica.destroy_synchronous)

    # ------------------------------------------------------------------ Store protocol

    async def apply(self, command: Command | dict[str, Any]) -> Any:
        """Replicate a command (its wire dict), apply it here, return its result (StateError on failure)."""
        if isinstance(command, Command):
            command = with_now(command, time.time()).to_wire()
        command.setdefault("Now", time.time())
        return await self._submit(command)

    async def barrier(self) -> None:
        """Return once everything committed before now is applied here (a quorum round trip)."""
        await self._submit(None)

    @property
    def known_leader(self) -> bool:
        return self.replica is not None and self.replica._getLeader() is not None

    @property
    def is_leader(self) -> bool:
        return self.replica is not None and self.replica._isLeader()

    @property
    def last_contact_ms(self) -> int:
        if self.is_leader:
            return 0
        return int((time.monotonic() - self._last_contact) * 1000)

    def leader_address(self) -> str:
        leader = self.replica._getLeader() if self.replica is not None else None
        return str(leader) if leader is not None else ""

    def peers(self) -> list[str]:
        """The Raft voters' addresses, this server's included (what peers.json holds)."""
        return list(self.voters) if self.replica is not None else []

    # ------------------------------------------------------------------ cluster views

    @property
    def ready(self) -> bool:
        """A leader may answer reads once it applied its own term's first entry (no stale reads)."""
        rep = self.replica
        if rep is None or not rep._isLeader():
            return False
        noop = rep.noop_index
        return noop is not None and rep.raftLastApplied >= noop and self._processed == self._scheduled

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """As leader, wait (briefly) until `ready`; False when not leader or it took too long."""
        deadline = time.monotonic() + timeout
        while not self.ready:
            if not self.is_leader or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def wait_leader(self, timeout: float) -> bool:
        """Wait until some leader is known."""
        deadline = time.monotonic() + timeout
        while not self.known_leader:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def leader_info(self) -> dict[str, Any] | None:
        """The published info (node name, HTTP address...) of the current leader."""
        leader = self.leader_address()
        return self.members.get(leader) if leader else None

    def connected(self, address: str) -> bool:
        """Whether this server currently talks to the server at `address` (itself: True)."""
        if address == self.cfg.address:
            return True
        rep = self.replica
        if rep is None:
            return False
        return any(str(n) == address and rep.isNodeConnected(n) for n in rep.otherNodes)

    def raft_status(self) -> dict[str, Any]:
        """pysyncobj's status dict, read on the raft thread."""
        return self.call_in_raft(lambda: self.replica.getStatus() if self.replica else {})  # type: ignore[no-any-return]

    async def publish_self(self) -> None:
        """Record this server's info in the replicated server directory (if it changed)."""
        info = dict(self.cfg.info)
        if self.members.get(self.cfg.address) != info:
            await self.apply(ServerMember(self.cfg.address, info))

    # ------------------------------------------------------------------ raft-thread calls

    def call_in_raft(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run `fn` on the raft thread (pysyncobj is not thread-safe) and return its result."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._raft_calls.put((fn, fut))
        return fut.result(timeout)

    async def raft_call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """`call_in_raft` without blocking the loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.call_in_raft, fn, timeout)

    def _run_raft_calls(self) -> None:
        while True:
            try:
                fn, fut = self._raft_calls.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except Exception as exc:  # handed back to the caller
                fut.set_exception(exc)

    async def add_peer(self, address: str) -> None:
        """Add a voter (dynamic membership; any server: a follower's request goes to the leader).

        Returns once the change is committed here. The new server must be running (with the
        voters as partners): under the new configuration the entry needs its answer to commit.
        """
        if address in self.voters:
            return
        await self._change_membership("add", address)

    async def remove_peer(self, address: str) -> None:
        """Remove a voter from the configuration (must run where the leader is).

        Returns once the removal is committed and `voters` (hence peers.json) no longer has it.
        """
        if address == self.cfg.address and self.is_leader:
            # pysyncobj's leader cannot remove itself (it would answer "request denied")
            raise StateError(f"cannot remove peer {address}: it is the leader; transfer leadership first")
        await self._change_membership("remove", address)

    async def _change_membership(self, op: str, address: str) -> None:
        """One membership change, committed (Raft: one at a time; pysyncobj's leader denies a
        second while one is uncommitted, so a denied one is retried until APPLY_TIMEOUT)."""
        assert self.replica is not None and self.loop is not None
        loop = self.loop
        deadline = time.monotonic() + APPLY_TIMEOUT
        async with self._membership_lock:
            while True:
                done: asyncio.Future[int] = loop.create_future()

                def settle(err: int, done: asyncio.Future[int] = done) -> None:
                    if not done.done():
                        done.set_result(err)

                def callback(_res: Any, err: int, settle: Callable[[int], None] = settle) -> None:
                    loop.call_soon_threadsafe(settle, err)

                replica = self.replica
                if replica is None:
                    raise StateError(NO_LEADER)
                change = replica.addNodeToCluster if op == "add" else replica.removeNodeFromCluster
                change(address, callback=callback)
                try:
                    err = await asyncio.wait_for(done, max(1.0, deadline - time.monotonic()))
                except TimeoutError:
                    raise StateError(f"cannot {op} peer {address}: {TIMED_OUT}{UNKNOWN_OUTCOME}") from None
                present = address in self.voters
                if err == FAIL_REASON.REQUEST_DENIED and present == (op == "add"):
                    break  # already done (by an earlier attempt, or another server)
                if err == FAIL_REASON.SUCCESS:
                    break
                if err not in (FAIL_REASON.REQUEST_DENIED, FAIL_REASON.MISSING_LEADER) or \
                        time.monotonic() > deadline:
                    raise StateError(f"cannot {op} peer {address}: {_FAILURES.get(err, err)}")
                await asyncio.sleep(0.2)  # another change is still uncommitted: one at a time
            wait_until = time.monotonic() + 5.0
            while (address in self.voters) != (op == "add") and time.monotonic() < wait_until:
                await asyncio.sleep(0.01)  # the next tick reports it

    async def transfer_leadership(self, address: str | None = None) -> None:
        """Ask the leader to hand leadership to `address` (or the most up-to-date follower)."""
        result: concurrent.futures.Future[int] = concurrent.futures.Future()

        def run() -> None:
            assert self.replica is not None
            self.replica.transferLeadership(address, callback=lambda _r, err: result.set_result(err))

        deadline = time.monotonic() + 5.0
        while True:  # the target must have caught up with the leader's log: give it a moment
            result = concurrent.futures.Future()
            await self.raft_call(run)
            err = await asyncio.wrap_future(result)
            if err != FAIL_REASON.REQUEST_DENIED or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        if err != FAIL_REASON.SUCCESS:
            raise StateError(f"cannot transfer leadership: {_FAILURES.get(err, err)}")

    def _watch_voters(self) -> None:
        """Raft thread, every tick: hand a changed voter set to the loop."""
        rep = self.replica
        if rep is None or self.loop is None:
            return
        nodes = rep.otherNodes  # every tick: compare the node set first, build strings only on a change
        if nodes == self._nodes_seen:
            return
        self._nodes_seen = nodes
        others = frozenset(str(n) for n in nodes)
        if others != self._others_seen:
            self._others_seen = others
            # pysyncobj applies a membership change when its log entry is applied: the index of the
            # entry is at most the applied index now, the closest to Consul's configuration index it tells
            self.config_index = max(1, rep.raftLastApplied)
            try:
                self.loop.call_soon_threadsafe(self._set_voters, sorted(others | {self.cfg.address}))
            except RuntimeError:  # the loop is already closed: shutting down
                pass

    def _set_voters(self, voters: list[str]) -> None:
        if voters == self.voters:
            return
        log.info("raft: voters now %s", ", ".join(voters))
        self.voters = voters
        for cb in list(self.on_voters_change):
            try:
                cb(list(voters))
            except Exception:
                log.exception("voter change hook failed")

    # ------------------------------------------------------------------ group commit

    async def _submit(self, command: dict[str, Any] | None) -> Any:
        if self.replica is None or self.loop is None:
            raise StateError(NO_LEADER)
        size = 1
        if command is not None:
            try:
                size = len(raft_adapter.encode(command))
            except (TypeError, ValueError, OverflowError) as exc:
                raise StateError(f"command cannot be replicated: {exc}") from None
            if size > MAX_COMMAND_BYTES:
                raise StateError(f"command too large to replicate ({size} bytes, at most {MAX_COMMAND_BYTES})")
        fut: asyncio.Future[Any] = self.loop.create_future()
        self._queue.append((command, fut, size))
        self._schedule_flush()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), APPLY_TIMEOUT)
        except TimeoutError:
            raise self._give_up(fut) from None

    def _give_up(self, fut: asyncio.Future[Any]) -> StateError:
        """The request of `fut` stops waiting: fence its command if it has not reached a log yet.

        Still in this store's queue, or still in pysyncobj's (its batch withdrawn): it is never
        applied, and the answer says so. Already appended (or forwarded to the leader): Raft may
        still commit it, and the answer says the outcome is unknown.
        """
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # a late answer goes nowhere
        if fut.done() and not fut.cancelled():  # answered meanwhile (applied, or a definite failure)
            exc = fut.exception()
            return exc if isinstance(exc, StateError) else StateError(TIMED_OUT + UNKNOWN_OUTCOME)
        for i, (_, queued, _) in enumerate(self._queue):
            if queued is fut:
                del self._queue[i]
                return StateError(TIMED_OUT + NOT_APPLIED)
        for seq, (_, items, ticket) in list(self._pending.items()):
            if any(f is fut for _, f in items):
                if ticket.withdraw():
                    self._fail_batch(seq, TIMED_OUT + NOT_APPLIED)
                    return StateError(TIMED_OUT + NOT_APPLIED)
                break
        return StateError(TIMED_OUT + UNKNOWN_OUTCOME)

    def _schedule_flush(self) -> None:
        if self._queue and not self._flush_scheduled and len(self._pending) < MAX_INFLIGHT:
            self._flush_scheduled = True
            assert self.loop is not None
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._queue or self.replica is None:
            return
        count, size = 0, 0
        for _, _, n in self._queue:  # at least one command; then up to MAX_BATCH / MAX_BATCH_BYTES
            if count and (count >= MAX_BATCH or size + n > MAX_BATCH_BYTES):
                break
            count, size = count + 1, size + n
        items = [(cmd, fut) for cmd, fut, _ in self._queue[:count]]
        del self._queue[:count]
        self._seq += 1
        seq = self._seq
        cmds = [cmd for cmd, _ in items if cmd is not None]
        loop = self.loop
        assert loop is not None

        def done(_res: Any, err: int) -> None:  # raft thread
            if err != FAIL_REASON.SUCCESS:
                loop.call_soon_threadsafe(self._fail_batch, seq, _FAILURES.get(err, f"raft error {err}"))

        ticket = raft_adapter.Ticket(done)  # withdrawn if it is still queued when its requests give up
        self._pending[seq] = (time.monotonic(), items, ticket)
        if size + 4096 >= CHUNK_BYTES:  # one entry in chunks: keep pysyncobj's reassembly right
            pad = self.replica.entry_padding("apply_batch", (self.origin, seq, cmds), CHUNK_BYTES)
            if pad:
                self.replica.apply_batch(self.origin, seq, cmds, pad, callback=ticket)
                self._schedule_flush()
                return
        self.replica.apply_batch(self.origin, seq, cmds, callback=ticket)
        self._schedule_flush()

    def _fail_batch(self, seq: int, reason: str) -> None:
        entry = self._pending.pop(seq, None)
        if entry is not None:
            for _, fut in entry[1]:
                if not fut.done():
                    fut.set_exception(StateError(reason))
        self._schedule_flush()

    async def _sweep(self) -> None:
        """Fail batches pysyncobj never answered (e.g. queued while no leader was known)."""
        while True:
            await asyncio.sleep(1.0)
            limit = time.monotonic() - APPLY_TIMEOUT
            for seq in [s for s, (t, _, _) in self._pending.items() if t < limit]:
                ticket = self._pending[seq][2]
                self._fail_batch(seq, TIMED_OUT + (NOT_APPLIED if ticket.withdraw() else UNKNOWN_OUTCOME))
            self._check_leadership()

    # ------------------------------------------------------------------ applying (loop thread)

    def _from_raft(self, index: int, origin: str, seq: int, cmds: list[dict[str, Any]]) -> None:
        """Raft thread: queue a committed batch for the loop, in log order."""
        self._scheduled += 1
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._apply_batch, index, origin, seq, cmds)

    def _apply_batch(self, index: int, origin: str, seq: int, cmds: list[dict[str, Any]]) -> None:
        results: list[tuple[bool, Any]] = []
        for cmd in cmds:
            try:
                if cmd.get("Op") == MEMBER_OP:  # the server directory is this store's, not the state's
                    member = ServerMember.from_wire(cmd)
                    self.members[member.address] = dict(member.info)
                    results.append((True, True))
                else:
                    results.append((True, self.state.apply(cmd)))
            except StateError as exc:
                results.append((False, exc))
            except Exception as exc:  # deterministic on every replica, so still consistent
                log.exception("command %s failed", cmd.get("Op"))
                results.append((False, StateError(f"internal error: {exc}")))
        self.applied_index = index
        self._processed += 1
        self.hub.notify(self.state.drain_changes())
        if origin != self.origin:
            return
        pending = self._pending.pop(seq, None)
        if pending is not None:
            it = iter(results)
            for submitted, fut in pending[1]:
                outcome: tuple[bool, Any] = (True, True) if submitted is None else next(it)
                ok, value = outcome
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)
        self._schedule_flush()

    # ------------------------------------------------------------------ leadership

    def _on_state_changed_raft(self, _old: int, _new: int) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._check_leadership)

    def _check_leadership(self) -> None:
        leader = self.is_leader
        if leader != self._was_leader:
            self._was_leader = leader
            log.info("raft: %s", "became leader" if leader else "no longer leader")
            for cb in list(self.on_leader_change):
                try:
                    cb(leader)
                except Exception:
                    log.exception("leader change hook failed")

    # ------------------------------------------------------------------ snapshots

    def snapshot_payload(self) -> dict[str, Any]:
        """Loop thread: the whole replicated state as plain data."""
        return {"State": self.state.snapshot(), "Members": self.members, "AppliedIndex": self.applied_index}

    def _snapshot_view(self) -> tuple[dict[str, Any], list[Any]]:
        """Loop thread: `snapshot_payload()` minus the KV entries (taken as they are: they never change)."""
        snap, entries = self.state.snapshot_view()
        return {"State": snap, "Members": dict(self.members), "AppliedIndex": self.applied_index}, entries

    def _serialize(self, filename: str, raft_meta: Any) -> None:
        """Raft thread, right after applying entry N: start writing the state at N.

        The view of the state is taken on the loop (queued behind the applies of entries <= N;
        cheap: the KV entries are shared, not copied); a background thread encodes and writes it
        while both the loop and the raft thread go on. pysyncobj asks `_snapshot_status` every
        tick and compacts its log only once the file is in place. The file pysyncobj then moves
        over the snapshot (`filename`, its temporary) is never written, so its move fails (and
        is ignored: `serializeChecker` decides); a stale one is removed first.
        """
        assert self.loop is not None
        fut: concurrent.futures.Future[tuple[dict[str, Any], list[Any]]] = concurrent.futures.Future()

        def take() -> None:
            try:
                fut.set_result(self._snapshot_view())
            except Exception as exc:
                fut.set_exception(exc)

        if os.path.exists(filename):
            os.unlink(filename)
        self.loop.call_soon_threadsafe(take)
        payload, entries = fut.result(60)
        target = filename[:-len(".tmp")] if filename.endswith(".tmp") else filename + ".snap"
        self._snap_state = SERIALIZER_STATE.SERIALIZING
        generation = self._snap_generation
        threading.Thread(target=self._write_snapshot, args=(target, raft_meta, payload, entries, generation),
                         name="raft-snapshot", daemon=True).start()

    def _write_snapshot(self, target: str, raft_meta: Any, payload: dict[str, Any], entries: list[Any],
                        generation: int) -> None:
        """Background thread: encode the view, write it beside the snapshot; the raft thread moves it in."""
        tmp = target + ".bg"
        try:
            started = time.monotonic()
            data = raft_adapter.encode_snapshot_payload(payload, entries, snapshot_kv)
            size = raft_adapter.write_snapshot(tmp, raft_meta, data)
        except Exception:
            log.exception("raft: writing a snapshot failed")
            self._snap_state = SERIALIZER_STATE.FAILED
            return

        def install() -> None:  # raft thread, where snapshots from the leader are installed too
            if generation != self._snap_generation:  # one was installed meanwhile: this one is older
                os.unlink(tmp)
                self._snap_state = SERIALIZER_STATE.FAILED
                return
            os.replace(tmp, target)
            raft_adapter.fsync_dir(os.path.dirname(target))
            self._snap_state = SERIALIZER_STATE.SUCCESS
            log.info("raft: snapshot written (%d bytes, %.2fs)", size, time.monotonic() - started)

        self._raft_calls.put((install, concurrent.futures.Future()))

    def _snapshot_status(self) -> int:
        """Raft thread, every tick (pysyncobj's serializeChecker): where the background write is."""
        status = self._snap_state
        if status in (SERIALIZER_STATE.SUCCESS, SERIALIZER_STATE.FAILED):
            self._snap_state = SERIALIZER_STATE.NOT_SERIALIZING
        return status

    def _deserialize(self, filename: str) -> Any:
        """Raft thread: load a snapshot file (restart or install from the leader)."""
        self._snap_generation += 1  # a background write in progress is older: it is dropped
        raft_meta, data = raft_adapter.read_snapshot(filename)
        self._scheduled += 1
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._install, data)
        return raft_meta

    def _install(self, data: dict[str, Any]) -> None:
        # Exactly the state at the snapshot's entry: pysyncobj applies the entries after it
        # next, even ones applied here before (a snapshot older than this replica's state).
        # The "restore" command keeps the larger index (for `snapshot restore` through the
        # log); a replica that kept its own would number every later write differently.
        self.state.index = 1
        self.state.apply(Restore(data["State"]))
        self.members = dict(data.get("Members") or {})
        self.applied_index = int(data.get("AppliedIndex") or 0)
        self._processed += 1
        self.hub.notify(self.state.drain_changes())
        log.info("raft: snapshot loaded (index %d)", self.state.index)
