"""`operator raft remove-peer` outlives restarts: peers.json follows the live voter set.

Real processes: 3 servers, one removed through the operator API, a snapshot taken after the
removal (so the membership entry is compacted out of the journal), the other two restarted.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .conftest import Cluster, Server, wait_for

pytestmark = pytest.mark.integration

LIST_PEERS = "import sys; from meshctl.commands.operator import main; sys.exit(main(sys.argv[1:]))"


def voters(s: Server) -> list[str]:
    """The Raft configuration as `s` sees it (its own view: ?stale)."""
    conf = s.get("/v1/operator/raft/configuration?stale", timeout=2).json()
    return sorted(x["Address"] for x in conf["Servers"])


def saved_peers(s: Server) -> list[str]:
    return sorted(json.loads((s.data_dir / "raft" / "peers.json").read_text()))


def snapshot_mtime(s: Server) -> int:
    path = s.data_dir / "raft" / "snapshot.bin"
    return path.stat().st_mtime_ns if path.exists() else 0


def list_peers(s: Server) -> list[list[str]]:
    """`meshctl operator raft list-peers` against `s`: its rows, header dropped."""
    out = subprocess.run([sys.executable, "-c", LIST_PEERS, "raft", "list-peers", "-http-addr", s.url],
                         capture_output=True, text=True, timeout=30, cwd=str(Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    return [line.split() for line in out.stdout.splitlines()[1:]]


def test_a_removed_peer_stays_removed_after_compaction_and_restart(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 3, extra=["-raft-snapshot-threshold", "16"])
    c.start()
    try:
        leader = c.leader()
        victim = c.followers()[-1]
        rest = [s for s in c.servers if s is not victim]
        expected = sorted(s.raft_address for s in rest)

        r = requests.delete(f"{leader.url}/v1/operator/raft/peer", params={"address": victim.raft_address},
                            timeout=20)
        assert r.status_code == 200, r.text
        assert saved_peers(leader) == expected  # on disk before the leader answers
        for s in rest:
            wait_for(lambda s=s: voters(s) == expected, 10, f"{s.name} to drop {victim.name}")
            wait_for(lambda s=s: saved_peers(s) == expected, 5, f"{s.name}'s peers.json to follow")
        victim.signal(signal.SIGKILL)

        # Enough writes for a snapshot after the removal on both servers: the membership
        # entry leaves the journal, so only peers.json and the snapshot remember it.
        before = {s.name: snapshot_mtime(s) for s in rest}
        for i in range(40):
            assert leader.put(f"/v1/kv/fill/{i}", b"x" * 64).json() is True
        for s in rest:
            wait_for(lambda s=s: snapshot_mtime(s) > before[s.name], 10, f"a snapshot on {s.name}")

        for s in rest:
            s.signal(signal.SIGTERM)
        for s in rest:
            s.start(3)
        leader = c.wait_ready()
        for s in rest:
            assert voters(s) == expected
            assert saved_peers(s) == expected
        rows = list_peers(rest[0])
        assert sorted(row[2] for row in rows) == expected
        assert sorted(row[3] for row in rows) == ["follower", "leader"]
        assert leader.put("/v1/kv/after/restart", b"\x00committed\xff").json() is True
        for s in rest:
            assert s.get("/v1/kv/after/restart?raw").content == b"\x00committed\xff"

        # The removed server comes back with its old data dir and its old peers.json: the others
        # refuse its Raft connections, so it never gets a leader nor disturbs theirs; it says
        # in its log that it was removed (it must be re-joined, as in Consul).
        victim.start(3)

        def warned_while_writing() -> bool:
            assert leader.put("/v1/kv/after/victim", b"ok", timeout=5).json() is True
            return "is not in the Raft configuration" in victim.log()

        wait_for(warned_while_writing, 20, "the removed server's warning", interval=0.2)
        assert victim.get("/v1/status/leader?stale").json() == ""
        assert saved_peers(victim) == sorted(s.raft_address for s in c.servers)
        for s in rest:
            assert voters(s) == expected
            assert s.get("/v1/status/leader?stale").json() == leader.raft_address
    finally:
        c.stop()
