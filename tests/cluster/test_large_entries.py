"""Large values replicate: concurrent writes near the value size limit all commit everywhere.

Group commit once put 16 such writes in one Raft entry over 1 MiB, which pysyncobj sends in
chunks that followers reassembled wrongly (writes failed, elections followed).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import Cluster, Server, wait_for

pytestmark = pytest.mark.integration

VALUE_SIZE = 500 * 1000  # under the 512 KiB limit of one value
WRITES = 48


def test_48_concurrent_500kb_puts_all_succeed_and_every_server_holds_them(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 3)
    c.start()
    try:
        leader = c.leader()
        values = {f"big/{i}": os.urandom(VALUE_SIZE) for i in range(WRITES)}

        def put(item: tuple[str, bytes]) -> tuple[str, int, str]:
            r = leader.put(f"/v1/kv/{item[0]}", item[1], timeout=60)
            return item[0], r.status_code, r.text

        with ThreadPoolExecutor(WRITES) as pool:
            results = list(pool.map(put, values.items()))
        failed = [r for r in results if r[1] != 200 or r[2].strip() != "true"]
        assert not failed, failed

        digests = {k: hashlib.sha256(v).hexdigest() for k, v in values.items()}

        def holds_all(s: Server) -> bool:
            for key, digest in digests.items():
                r = s.get(f"/v1/kv/{key}?raw&stale", timeout=10)
                if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != digest:
                    return False
            return True

        for s in c.servers:
            wait_for(lambda s=s: holds_all(s), 60, f"{s.name} to hold every value")
        assert c.leader() is leader  # no election on the way
        for s in c.servers:
            assert "truncated" not in s.log()
    finally:
        c.stop()


def test_snapshot_over_the_body_cap_saves_and_restores_through_a_follower(tmp_path: Path) -> None:
    """A snapshot bigger than the 8 MiB body cap: saved and restored through a follower (which
    forwards both to the leader), then held by every server."""
    c = Cluster(tmp_path, 3)
    c.start()
    try:
        leader = c.leader()
        follower = next(s for s in c.servers if s is not leader)
        values = {f"snap/{i}": os.urandom(VALUE_SIZE) for i in range(19)}
        for key, value in values.items():
            assert leader.put(f"/v1/kv/{key}", value, timeout=60).text.strip() == "true"
        saved = follower.get("/v1/snapshot", timeout=120)
        assert saved.status_code == 200 and len(saved.content) > 8 * 1024 * 1024
        assert leader.put("/v1/kv/after-save", b"1").status_code == 200
        restored = follower.put("/v1/snapshot", saved.content, timeout=120)
        assert restored.status_code == 200, restored.text

        def holds_the_snapshot(s: Server) -> bool:
            if s.get("/v1/kv/after-save?stale").status_code != 404:  # written after the save: gone
                return False
            return all(s.get(f"/v1/kv/{k}?raw&stale", timeout=10).content == v for k, v in values.items())

        for s in c.servers:
            wait_for(lambda s=s: holds_the_snapshot(s), 60, f"{s.name} to hold the restored snapshot")
    finally:
        c.stop()
