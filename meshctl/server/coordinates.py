"""Network coordinates: a Vivaldi estimate of round-trip times, and sorting by distance.

Consul's coordinates come from Serf: every agent keeps an 8-dimensional Vivaldi coordinate
(plus a height and an adjustment) and moves it after each gossip probe of a random peer, by
the error between the measured round trip and the distance the coordinates predicted; agents
send theirs to the servers, which store them (`/v1/coordinate/nodes`) and sort answers with
them (`?near=`). meshctl has no gossip, so the estimate is fed by the one round trip it has:

* a client agent times its heartbeat to the server it uses (agent/client.py), and updates its
  coordinate against the coordinate of that server, which the heartbeat's answer carries;
* it sends its new coordinate and the round trip it measured with the next heartbeat; the
  server stores the coordinate and moves its *own* coordinate by the same measurement (the
  round trip is the same seen from either end), so servers get coordinates too;
* `PUT /v1/coordinate/update` stores a coordinate as it is given (as Consul's does);
* WAN: each server times its exchanges with the servers of other datacenters (wan.py, every
  10 s) and moves a separate WAN coordinate against the one their answer carries; the other
  datacenters are then sorted by the median distance to their servers (`/v1/catalog/datacenters`,
  a prepared query's `NearestN`, `/v1/coordinate/datacenters`, `meshctl rtt -wan`).

How this differs from Serf's estimate: the measurements form a star (each client against its
server, never client against client), so two clients' distance is inferred only through the
servers' coordinates (on one host or one LAN that is what dominates anyway); a round trip is
an HTTP request (a few hundred microseconds of HTTP handling on top of the network, which the
adjustment term partly absorbs), not a UDP ping; there is no gravity pulling coordinates to
the origin and no latency filter over the last samples (each sample counts); the servers of
one datacenter do not measure each other on the LAN (their LAN coordinates come from their
clients), and a WAN sample every 10 s is far fewer than Serf's probes. The update rule itself, its constants and the JSON shape are Serf's, so
coordinates written by Consul's tools or copied from a Consul cluster compare and sort as
Consul's do.

The servers gather updates and apply them once per `UPDATE_PERIOD` as one replicated command
(as Consul's `coordinate_update_period` batches them), so heartbeats never become a Raft write each.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from meshctl.server.commands import Coord, CoordinateEntry, CoordinateUpdate, StateError
from meshctl.server.periodic import Periodic

log = logging.getLogger(__name__)

DIMENSIONS = 8
ERROR_MAX = 1.5  # Serf's VivaldiErrorMax: a new coordinate's error
CE = 0.25  # VivaldiCE: how fast the error estimate moves
CC = 0.25  # VivaldiCC: how fast the coordinate moves
HEIGHT_MIN = 10.0e-6  # seconds
ADJUSTMENT_WINDOW = 20  # samples averaged into the adjustment term
ZERO = 1.0e-6
UPDATE_PERIOD = 1.0  # seconds between two batches a server applies
MAX_RTT = 10.0  # seconds: a longer "round trip" is a stall, not a distance

Item = TypeVar("Item")


@dataclass
class Coordinate:
    """One node's position (seconds)."""

    vec: list[float] = field(default_factory=lambda: [0.0] * DIMENSIONS)
    error: float = ERROR_MAX
    adjustment: float = 0.0
    height: float = HEIGHT_MIN

    def to_json(self) -> Coord:
        return {"Vec": list(self.vec), "Error": self.error, "Adjustment": self.adjustment, "Height": self.height}

    @classmethod
    def from_json(cls, raw: Any) -> Coordinate:
        """A coordinate of the wire; ValueError unless it is a valid one of our dimensionality."""
        if not isinstance(raw, dict):
            raise ValueError("coordinate must be an object")
        vec = raw.get("Vec")
        if not isinstance(vec, list) or len(vec) != DIMENSIONS:
            raise ValueError(f"coordinate must have {DIMENSIONS} dimensions")
        numbers = [*vec, raw.get("Error", 0), raw.get("Adjustment", 0), raw.get("Height", 0)]
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) for n in numbers):
            raise ValueError("coordinate values must be finite numbers")
        return cls([float(v) for v in vec], float(raw.get("Error", ERROR_MAX)), float(raw.get("Adjustment", 0.0)),
                   float(raw.get("Height", HEIGHT_MIN)))

    def raw_distance(self, other: Coordinate) -> float:
        """The distance of the positions and heights alone (no adjustment terms)."""
        return math.dist(self.vec, other.vec) + self.height + other.height

    def distance(self, other: Coordinate) -> float:
        """The estimated round trip to `other`, in seconds (Serf's DistanceTo)."""
        plain = self.raw_distance(other)
        adjusted = plain + self.adjustment + other.adjustment
        return adjusted if adjusted > 0 else plain


def distance(a: Coord, b: Coord) -> float:
    """The round trip two wire coordinates predict, in seconds."""
    return Coordinate.from_json(a).distance(Coordinate.from_json(b))


class Vivaldi:
    """One node's estimate, moved by each measured round trip to a node of known coordinate."""

    def __init__(self, coordinate: Coordinate | None = None, rng: random.Random | None = None) -> None:
        self.coordinate = coordinate or Coordinate()
        self._samples: list[float] = []  # measured minus predicted, for the adjustment term
        self._rng = rng or random.Random()

    def update(self, other: Coordinate, rtt: float) -> Coordinate:
        """Move towards agreeing with `rtt` (seconds) to `other`; returns the new coordinate."""
        if not 0 <= rtt <= MAX_RTT or not math.isfinite(rtt):
            return self.coordinate
        rtt = max(rtt, ZERO)
        me = self.coordinate
        predicted = me.distance(other)
        wrongness = abs(predicted - rtt) / rtt
        total_error = max(me.error + other.error, ZERO)
        weight = me.error / total_error
        me.error = min(CE * weight * wrongness + me.error * (1.0 - CE * weight), ERROR_MAX)
        self._apply_force(other, CC * weight * (rtt - predicted))
        self._samples = [*self._samples, rtt - me.raw_distance(other)][-ADJUSTMENT_WINDOW:]
        me.adjustment = sum(self._samples) / (2.0 * len(self._samples))
        return me

    def _apply_force(self, other: Coordinate, force: float) -> None:
        """Push away from (or pull towards) `other` along the line between them; the height too."""
        me = self.coordinate
        diff = [a - b for a, b in zip(me.vec, other.vec, strict=True)]
        size = math.hypot(*diff)
        if size < ZERO:  # the same spot: a random direction
            diff = [self._rng.random() - 0.5 for _ in diff]
            size = math.hypot(*diff)
            unit, size = [d / size for d in diff], 0.0
        else:
            unit = [d / size for d in diff]
        me.vec = [v + u * force for v, u in zip(me.vec, unit, strict=True)]
        if size > ZERO:
            me.height = max((me.height + other.height) * force / size + me.height, HEIGHT_MIN)


# ---------------------------------------------------------------------- sorting


def sort_by_distance(items: Sequence[Item], node_of: Callable[[Item], str],
                     coordinate_of: Callable[[str], Coord | None], source: str) -> list[Item]:
    """`items` nearest first from node `source` (Consul's sortNodesByDistanceFrom).

    Without a coordinate for `source` the order is kept; items whose node has none go last,
    in their order. ("_agent" is the caller's business: pass the agent's node.)
    """
    origin = coordinate_of(source) if source else None
    if origin is None:
        return list(items)
    here = Coordinate.from_json(origin)

    def key(item: Item) -> float:
        theirs = coordinate_of(node_of(item))
        return here.distance(Coordinate.from_json(theirs)) if theirs is not None else math.inf

    return sorted(items, key=key)


def entry(node: str, coordinate: Coordinate | Coord, segment: str = "") -> CoordinateEntry:
    coord = coordinate.to_json() if isinstance(coordinate, Coordinate) else coordinate
    return {"Node": node, "Segment": segment, "Coord": coord}


# ---------------------------------------------------------------------- what a server runs


class CoordinateBatcher(Periodic):
    """A server's pending coordinate updates, applied as one command per `UPDATE_PERIOD`.

    `own` is this server's node: `observe()` moves its coordinate by a client's measurement.
    """

    period = UPDATE_PERIOD
    failure = "coordinate update failed"
    logger = log

    def __init__(self, store: Any, own: str) -> None:
        self.store = store
        self.own = own
        self.vivaldi = Vivaldi()
        self.pending: dict[str, CoordinateEntry] = {own: entry(own, self.vivaldi.coordinate)}

    def coordinate(self) -> Coord:
        """This server's coordinate (sent back with every heartbeat answer)."""
        return self.vivaldi.coordinate.to_json()

    def add(self, update: CoordinateEntry) -> None:
        self.pending[update["Node"]] = update

    def observe(self, node: str, coord: Coord, rtt: float) -> None:
        """A client measured `rtt` to this server and is now at `coord`: store it, and move ours."""
        try:
            theirs = Coordinate.from_json(coord)
        except ValueError:
            return
        self.add(entry(node, theirs))
        self.vivaldi.update(theirs, rtt)
        self.add(entry(self.own, self.vivaldi.coordinate))

    async def tick(self) -> None:
        if self.own not in self.store.state.coordinates:  # registered since, or dropped with its node
            self.pending.setdefault(self.own, entry(self.own, self.vivaldi.coordinate))
        if not self.pending:
            return
        batch, self.pending = tuple(self.pending.values()), {}
        try:
            await self.store.apply(CoordinateUpdate(batch))
        except StateError as exc:  # no leader just now: the next updates will do
            log.debug("coordinate update not applied: %s", exc)
