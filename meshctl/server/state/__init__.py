"""The store's state machine: KV, catalog, checks, sessions, events (and ACLs, acl/state.py).

Pure and deterministic: no sockets, no clocks, no randomness. Every change arrives as a typed
command (`meshctl/server/commands.py`), or its wire dict as replicated through Raft; time and
generated IDs are chosen by whoever builds the command (the leader) and travel inside it, so
replicas that apply the same commands hold the same state.

One `State`, built from one module per part:

- `base.py`: the tables and indexes, `bump` / `write_index` (the one write index of a command);
- `kv.py`: KV entries, tombstones, locks; `sessions.py`: sessions and what invalidating one does;
- `catalog.py`: nodes, services, checks (writes, catalog and health reads); `records.py`: their JSON;
- `txn.py`: transactions; `events.py`: user events;
- `queries.py`: prepared queries (lookup, templates, local execution); `coordinates.py`: network coordinates;
- `machine.py`: `State` itself: `apply` dispatching on the command's type, `snapshot` and restore.

Records are kept in Consul's JSON shapes, so queries return them almost as stored.
Indexes: one global index that only rises (never 0), plus per-table, per-key and
per-service indexes for blocking queries; deletes leave tombstones so a prefix's index
never goes backwards. Snapshots carry a `Format` (2: format 1 plus the optional "Queries" and
"Coordinates"); restore also takes format 1 and the unversioned snapshots written before it
(format 0, the same fields as 1).

After each `apply`, `drain_changes()` hands the watch keys that changed to whoever wakes
blocking queries (`watch.py`); the state machine itself knows nothing about waiters.
"""

from meshctl.server.commands import StateError
from meshctl.server.state.base import (
    MAX_EVENTS,
    MAX_LOCK_DELAY_NS,
    NODE_MAINT_CHECK_ID,
    SERF_CHECK_ID,
    SERVICE_MAINT_PREFIX,
    STATUS_ORDER,
    Record,
)
from meshctl.server.state.kv import KVEntry, b64
from meshctl.server.state.machine import SNAPSHOT_FORMAT, State
from meshctl.server.state.records import (
    agent_service_json,
    aggregated_status,
    has_tags,
    service_node_json,
    session_json,
)

__all__ = [
    "MAX_EVENTS", "MAX_LOCK_DELAY_NS", "NODE_MAINT_CHECK_ID", "SERF_CHECK_ID", "SERVICE_MAINT_PREFIX", "SNAPSHOT_FORMAT",
    "STATUS_ORDER", "KVEntry", "Record", "State", "StateError", "agent_service_json", "aggregated_status", "b64",
    "has_tags", "service_node_json", "session_json",
]
