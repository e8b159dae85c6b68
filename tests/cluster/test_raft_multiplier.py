"""-raft-multiplier / performance { raft_multiplier }: validated, and it reaches the Raft settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshctl.server import raft
from meshctl.server.agent.config import ConfigError
from meshctl.server.cluster import server_cluster
from meshctl.server.run import config_from_args
from meshctl.server.state import State


def multiplier(argv: list[str]) -> int:
    return server_cluster(config_from_args(["-server", *argv]), State()).store.cfg.raft_multiplier


def test_the_default_and_the_flag(tmp_path: Path) -> None:
    assert multiplier([]) == raft.DEFAULT_RAFT_MULTIPLIER
    assert multiplier(["-raft-multiplier", "1"]) == 1
    conf = tmp_path / "perf.json"
    conf.write_text(json.dumps({"performance": {"raft_multiplier": 5}}))
    assert multiplier(["-config-file", str(conf)]) == 5
    assert multiplier(["-config-file", str(conf), "-raft-multiplier", "2"]) == 2


@pytest.mark.parametrize("value", ["0", "11"])
def test_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="raft_multiplier"):
        config_from_args(["-server", "-raft-multiplier", value])
