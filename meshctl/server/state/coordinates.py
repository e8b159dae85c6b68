"""Network coordinates of the nodes (LAN), as the servers gathered them (meshctl/server/coordinates.py).

Updates arrive in batches (`CoordinateUpdate`); one for a node the catalog does not know is
dropped, as Consul's state store does, and deregistering a node drops its coordinate. Like the
query table, its index is kept apart from `table_index` (see machine.py on snapshots).
"""

from __future__ import annotations

import copy
from typing import cast

from meshctl.server import watchkeys as wk
from meshctl.server.commands import CoordinateEntry, CoordinateUpdate
from meshctl.server.state.base import Record, StateBase


class CoordinatesMixin(StateBase):
    def _apply_coordinate_update(self, cmd: CoordinateUpdate) -> bool:
        changed = False
        for entry in cmd.updates:
            node = entry.get("Node", "")
            if node not in self.nodes:
                continue
            self.coordinates[node] = {"Node": node, "Segment": entry.get("Segment") or "",
                                      "Coord": copy.deepcopy(entry["Coord"])}
            changed = True
        if changed:
            self.coordinate_index = self.bump(wk.COORDINATES)
        return True

    def drop_node_coordinate(self, node: str) -> None:
        if self.coordinates.pop(node, None) is not None:
            self.coordinate_index = self.bump(wk.COORDINATES)

    def coordinate_list(self) -> tuple[int, list[Record]]:
        """Every node's coordinate, by node name."""
        return self.coordinate_index, [dict(copy.deepcopy(self.coordinates[n])) for n in sorted(self.coordinates)]

    def coordinate_of(self, node: str) -> CoordinateEntry | None:
        return cast("CoordinateEntry | None", self.coordinates.get(node))
