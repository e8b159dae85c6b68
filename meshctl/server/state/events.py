"""User events: the last MAX_EVENTS fired, with Lamport times."""

from __future__ import annotations

from meshctl.server import watchkeys as wk
from meshctl.server.commands import EventFire
from meshctl.server.state.base import MAX_EVENTS, Record, StateBase


class EventsMixin(StateBase):
    def _apply_event_fire(self, cmd: EventFire) -> Record:
        self.event_ltime += 1
        event: Record = dict(cmd.event, LTime=self.event_ltime, Version=1)
        self.events.append(event)
        del self.events[:-MAX_EVENTS]
        self.bump(wk.EVENTS)
        return event

    def event_list(self, name: str = "") -> tuple[int, list[Record]]:
        """Recent events (oldest first) and Consul's synthetic index: XOR of the last ID's halves."""
        events = [e for e in self.events if not name or e["Name"] == name]
        if not events:
            return 1, []
        hexid = str(events[-1]["ID"]).replace("-", "")
        index = int(hexid[:16], 16) ^ int(hexid[16:], 16)
        return index or 1, [dict(e) for e in events]
