"""No lost, doubled or resurrected writes through leader kills, a stopped leader, a partition and a
full restart (the scenario is in fault_scenario.py; bench/faults.py runs it several times)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fault_scenario import scenario

pytestmark = pytest.mark.integration


def test_writes_survive_kills_stops_partitions_and_a_full_restart(tmp_path: Path) -> None:
    rep = scenario(tmp_path, log=lambda msg: None)
    assert rep.acked_increments > 0 and rep.acked > 50, rep
    assert not rep.lost, rep.lost[:10]
    assert not rep.doubled, rep.doubled[:10]
    assert not rep.unexplained, rep.unexplained[:10]
    assert not rep.resurrected, rep.resurrected[:10]
    assert rep.divergent == 0, "servers hold different states at the same index"
    assert not rep.critical, rep.critical[:10]
