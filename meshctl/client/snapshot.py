"""`client.snapshot`: /v1/snapshot — save and restore the servers' whole state.

    archive = client.snapshot.save()          # a SnapshotArchive: .data (gzipped tar) and .index
    client.snapshot.restore(archive.data)     # replaces all state

The archive is opaque to the client (`meshctl snapshot inspect` reads it).
"""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.client.client import Area
from meshctl.client.query import Params
from meshctl.client.types import QueryMeta

SNAPSHOT_TIMEOUT = 300.0  # a large state takes a while to archive or apply


@dataclass(frozen=True)
class SnapshotArchive:
    """A saved snapshot archive with the metadata of the read that produced it."""

    data: bytes
    meta: QueryMeta

    @property
    def index(self) -> int:
        """The Raft index the snapshot was taken at (X-Consul-Index)."""
        return self.meta.last_index


class Snapshot(Area):
    """Whole-state snapshots (needs a management token when ACLs are on)."""

    def save(self, *, stale: bool = False, dc: str | None = None,
             timeout: float | None = SNAPSHOT_TIMEOUT) -> SnapshotArchive:
        """`GET /v1/snapshot`: the archive (from any server with `stale`, else from the leader)."""
        params: Params = [("stale", "")] if stale else []
        if dc:
            params.append(("dc", dc))
        resp = self._client._request("GET", "snapshot", params=params, timeout=timeout)
        return SnapshotArchive(data=resp.content, meta=QueryMeta.from_headers(resp.headers))

    def restore(self, data: bytes, *, dc: str | None = None, timeout: float | None = SNAPSHOT_TIMEOUT) -> None:
        """`PUT /v1/snapshot`: replace the whole state with an archive from `save()`."""
        self._client._request("PUT", "snapshot", params=[("dc", dc)] if dc else [], data=data, timeout=timeout)
