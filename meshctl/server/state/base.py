"""What every part of the state machine shares: the tables, the indexes and the change set."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any, TypeAlias

from meshctl.server import watchkeys as wk

MAX_EVENTS = 256
MAX_LOCK_DELAY_NS = 60 * 10**9
SERF_CHECK_ID = "serfHealth"
NODE_MAINT_CHECK_ID = "_node_maintenance"
SERVICE_MAINT_PREFIX = "_service_maintenance:"
STATUS_ORDER = {"passing": 0, "warning": 1, "critical": 2}

Record: TypeAlias = "dict[str, Any]"  # a node, service, check, session or event, in Consul's JSON shape


class StateBase:
    """The replicated tables and indexes. Indexes: one global index that only rises (never 0),
    plus per-table, per-key and per-service indexes for blocking queries."""

    def __init__(self, datacenter: str = "dc1") -> None:
        from meshctl.server.state.kv import KVEntry

        self.datacenter = datacenter
        self.index = 1  # never 0: clients treat 0 as "no index"
        self.kv: dict[str, KVEntry] = {}
        self.kv_keys: list[str] = []  # sorted, for prefix scans
        self.tombstones: dict[str, int] = {}
        self.tomb_keys: list[str] = []
        self.lock_delays: dict[str, float] = {}  # key -> unix time until which acquire fails
        self.nodes: dict[str, Record] = {}
        self.services: dict[str, dict[str, Record]] = {}  # node -> id -> service
        self.checks: dict[str, dict[str, Record]] = {}  # node -> id -> check
        self.sessions: dict[str, Record] = {}
        self.events: list[Record] = []
        self.event_ltime = 0
        self.table_index: dict[str, int] = {t: 1 for t in wk.TABLES}
        self.service_index: dict[str, int] = {}  # lower-cased service name -> index
        self.node_index: dict[str, int] = {}
        self.now = 0.0  # the latest command time seen; commands carry their time in "Now"
        self.acl: dict[str, Any] = {}  # tokens, policies, roles (acl/state.py)
        self.queries: dict[str, Record] = {}  # prepared queries by ID (queries.py)
        self.query_index = 1
        self.coordinates: dict[str, Record] = {}  # node -> {Node, Segment, Coord} (coordinates.py)
        self.coordinate_index = 1
        self.autopilot: Record | None = None  # the operator's autopilot configuration (None: the agent's defaults)
        self._changed: set[str] = set()
        self._write_index: int | None = None
        self._undo: dict[str, Any] | None = None  # a KV transaction's undo log (txn.py), else None

    def _touch_kv(self, key: str) -> None:
        """About to change `key` (entry, tombstone or lock-delay): a running transaction saves it first."""
        undo = self._undo
        if undo is not None and key not in undo:
            from meshctl.server.state.txn import saved_kv

            undo[key] = saved_kv(self, key)

    def drain_changes(self) -> set[str]:
        """The watch keys changed since the last drain."""
        changed, self._changed = self._changed, set()
        return changed

    def bump(self, *keys: str) -> int:
        """Advance the global index (once per command) and mark watch keys as changed.

        Returns the index the current command writes at. A table's key (wk.TABLES) also
        moves that table's index.
        """
        if self._write_index is None:
            self.index += 1
            self._write_index = self.index
        for key in keys:
            self._changed.add(key)
            if key in self.table_index:
                self.table_index[key] = self._write_index
        return self._write_index

    @property
    def write_index(self) -> int:
        """The index the current command writes at; the current index if it wrote nothing yet."""
        return self._write_index or self.index


def prefix_keys(keys: list[str], prefix: str) -> Iterator[str]:
    """The keys of a sorted list that start with `prefix`, in order."""
    start = bisect.bisect_left(keys, prefix)
    for i in range(start, len(keys)):
        if not keys[i].startswith(prefix):
            break
        yield keys[i]
