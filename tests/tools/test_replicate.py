"""`meshctl replicate` (consul-replicate): real processes, two datacenters joined over the WAN.

dc2 joins dc1; the tool talks to dc2's server (the destination) and reads dc1 through it
with ?dc=dc1, as consul-replicate does through the local agent. Each test uses its own key
prefixes. The empty-read guard is pinned with a fake client (a leader flap cannot be ordered).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cluster.conftest import Server, wait_for
from cluster.wan_helpers import joined_datacenters, stop, wait_ready

from meshctl.client import KVPair, Reply
from meshctl.sync.replicate import (
    Prefix,
    ReplicateError,
    Replicator,
    Status,
    plan_pass,
    status_key,
)

pytestmark = pytest.mark.integration
STATUS_DIR = "service/consul-replicate/statuses"


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with joined_datacenters(tmp_path_factory.mktemp("replicate"), "dc1", "dc2") as servers:
        yield servers


def replicate_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshctl", "replicate", *args]


def tool_env(server: Server) -> dict[str, str]:
    return {**os.environ, "CONSUL_HTTP_ADDR": f"127.0.0.1:{server.http_port}"}


def run_once(dest: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(replicate_cmd(*args, "-once", "-log-level", "info"), env=tool_env(dest),
                          capture_output=True, text=True, timeout=60)


def entry(server: Server, key: str) -> dict[str, Any] | None:
    r = server.get(f"/v1/kv/{key}")
    return r.json()[0] if r.status_code == 200 else None


def value(server: Server, key: str) -> bytes | None:
    e = entry(server, key)
    return None if e is None else base64.b64decode(e["Value"] or "")


def keys(server: Server, prefix: str) -> list[str]:
    r = server.get(f"/v1/kv/{prefix}?keys")
    return r.json() if r.status_code == 200 else []


class Daemon:
    """A background `meshctl replicate` against dc2, its output in a file."""

    def __init__(self, dest: Server, tmp_path: Path, *args: str) -> None:
        self.log_path = tmp_path / f"replicate-{time.monotonic_ns()}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(replicate_cmd(*args, "-log-level", "info"), env=tool_env(dest),
                                         stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ---------------------------------------------------------------------- one pass (-once)


def test_once_copies_with_prefix_mapping_excludes_and_flags(dcs: dict[str, Server]) -> None:
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    dc1.put("/v1/kv/once/a?flags=42", b"one")
    dc1.put("/v1/kv/once/sub/b", b"two")
    dc1.put("/v1/kv/once/secret/x", b"not copied")
    dc2.put("/v1/kv/copy/stale", b"gone after the pass")
    dc2.put("/v1/kv/copy/secret/local", b"excluded: never deleted")
    out = run_once(dc2, "-prefix", "once/@dc1:copy/", "-exclude", "once/secret/")
    assert out.returncode == 0, out.stderr
    assert value(dc2, "copy/a") == b"one"
    assert entry(dc2, "copy/a")["Flags"] == 42
    assert value(dc2, "copy/sub/b") == b"two"
    assert value(dc2, "copy/secret/x") is None
    assert value(dc2, "copy/stale") is None
    assert value(dc2, "copy/secret/local") == b"excluded: never deleted"
    assert value(dc1, "copy/a") is None  # nothing is written to the source
    # the status record: consul-replicate's key name and Go's indented JSON
    key = f"{STATUS_DIR}/{hashlib.md5(b'once/-copy/').hexdigest()}"
    raw = value(dc2, key)
    assert raw is not None
    status = json.loads(raw)
    assert list(status) == ["LastReplicated", "Source", "Destination"]
    assert status["Source"] == "once/" and status["Destination"] == "copy/"
    source_index = int(dc1.get("/v1/kv/once/?recurse").headers["X-Consul-Index"])
    assert status["LastReplicated"] == source_index
    assert raw.decode() == json.dumps(status, indent=2)


def test_restart_resumes_from_the_status_without_rewriting(dcs: dict[str, Server]) -> None:
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    dc1.put("/v1/kv/resume/a", b"1")
    dc1.put("/v1/kv/resume/b", b"2")
    assert run_once(dc2, "-prefix", "resume/@dc1").returncode == 0
    before = {k: entry(dc2, k)["ModifyIndex"] for k in ("resume/a", "resume/b")}
    out = run_once(dc2, "-prefix", "resume/@dc1")  # nothing changed: nothing written
    assert out.returncode == 0, out.stderr
    assert {k: entry(dc2, k)["ModifyIndex"] for k in before} == before
    dc1.put("/v1/kv/resume/a", b"1 changed")
    assert run_once(dc2, "-prefix", "resume/@dc1").returncode == 0
    assert value(dc2, "resume/a") == b"1 changed"
    assert entry(dc2, "resume/b")["ModifyIndex"] == before["resume/b"]  # only the changed key was written


def test_prefix_is_a_plain_string(dcs: dict[str, Server]) -> None:
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    dc1.put("/v1/kv/glob/x", b"folder")
    dc1.put("/v1/kv/globalization", b"sibling")
    assert run_once(dc2, "-prefix", "glob@dc1:back").returncode == 0
    assert value(dc2, "back/x") == b"folder"
    assert value(dc2, "backalization") == b"sibling"


def test_source_that_is_the_local_datacenter_is_refused(dcs: dict[str, Server]) -> None:
    out = run_once(dcs["dc2"], "-prefix", "anything/@dc2")
    assert out.returncode == 14
    assert "local datacenter cannot be the source datacenter" in out.stderr


def test_bad_prefix_is_a_config_error(dcs: dict[str, Server]) -> None:
    out = run_once(dcs["dc2"], "-prefix", "no-datacenter/")
    assert out.returncode == 15
    assert "missing datacenter" in out.stderr


def test_config_file_prefix_and_exclude_blocks(dcs: dict[str, Server], tmp_path: Path) -> None:
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    dc1.put("/v1/kv/hcl/keep", b"k")
    dc1.put("/v1/kv/hcl/skip/x", b"s")
    config = tmp_path / "replicate.hcl"
    config.write_text('status_dir = "replication/status"\n'
                      'prefix {\n  source = "hcl/"\n  datacenter = "dc1"\n  destination = "fromhcl/"\n}\n'
                      'exclude {\n  source = "hcl/skip/"\n}\n')
    out = run_once(dc2, "-config", str(config))
    assert out.returncode == 0, out.stderr
    assert keys(dc2, "fromhcl/") == ["fromhcl/keep"]
    assert keys(dc2, "replication/status/") == [status_key("replication/status", Prefix("hcl/", "dc1", "fromhcl/"))]


# ---------------------------------------------------------------------- the daemon


def test_daemon_follows_changes_and_deletes(dcs: dict[str, Server], tmp_path: Path) -> None:
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    dc1.put("/v1/kv/live/a", b"v1")
    pid_file = tmp_path / "replicate.pid"
    daemon = Daemon(dc2, tmp_path, "-prefix", "live/@dc1", "-pid-file", str(pid_file))
    try:
        wait_for(lambda: value(dc2, "live/a") == b"v1", 20, "initial copy")
        assert pid_file.read_text() == str(daemon.proc.pid)
        dc1.put("/v1/kv/live/a?flags=3", b"v2")
        wait_for(lambda: value(dc2, "live/a") == b"v2", 10, "a change to follow")
        assert entry(dc2, "live/a")["Flags"] == 3
        dc1.put("/v1/kv/live/b", b"new")
        wait_for(lambda: value(dc2, "live/b") == b"new", 10, "a new key to follow")
        requests.delete(dc1.url + "/v1/kv/live/a", timeout=5)
        wait_for(lambda: value(dc2, "live/a") is None, 10, "a delete to follow")
        assert value(dc2, "live/b") == b"new"
        assert daemon.stop(signal.SIGINT) == 12  # the kill signal
        assert "Cleaning up..." in daemon.log()
        assert not pid_file.exists()
    finally:
        daemon.stop(signal.SIGKILL)


def test_source_datacenter_going_away_deletes_nothing_and_recovers(dcs: dict[str, Server],
                                                                   tmp_path: Path) -> None:
    dc1, dc2 = dcs["dc1"], dcs["dc2"]
    for k in ("a", "b", "c"):
        dc1.put(f"/v1/kv/outage/{k}", k.encode())
    daemon = Daemon(dc2, tmp_path, "-prefix", "outage/@dc1", "-consul-retry-max-backoff", "500ms")
    try:
        wait_for(lambda: keys(dc2, "outage/") == ["outage/a", "outage/b", "outage/c"], 20, "initial copy")
        stop(dc1)
        wait_for(lambda: "No path to datacenter" in daemon.log(), 15, "the tool to see dc1 gone")
        time.sleep(2)  # several retries while dc1 is away
        assert daemon.proc.poll() is None, daemon.log()
        assert keys(dc2, "outage/") == ["outage/a", "outage/b", "outage/c"]
        dc1.start(1)  # same ports and data
        wait_ready(dc1)
        dc1.put("/v1/kv/outage/d", b"after")
        wait_for(lambda: value(dc2, "outage/d") == b"after", 20, "replication to resume")
        assert keys(dc2, "outage/") == ["outage/a", "outage/b", "outage/c", "outage/d"]
        assert daemon.stop(signal.SIGTERM) == 0  # SIGTERM stops gracefully
    finally:
        daemon.stop(signal.SIGKILL)
        if not dc1.alive:
            dc1.start(1)
            wait_ready(dc1)


# ---------------------------------------------------------------------- the empty-read guard (no processes)


class FakeKV:
    """A destination store plus scripted source answers (recurse lists), as the client's kv area."""

    def __init__(self, dest: dict[str, bytes], consistent: Reply[list[KVPair]] | Exception) -> None:
        self.dest = dict(dest)
        self.consistent = consistent
        self.deleted: list[str] = []

    def list_prefix(self, prefix: str, **opts: Any) -> Reply[list[KVPair]]:
        assert opts.get("consistency") == "consistent" and opts.get("dc") == "dc1"
        if isinstance(self.consistent, Exception):
            raise self.consistent
        return self.consistent

    def keys(self, prefix: str, **_: Any) -> Reply[list[str]]:
        return Reply(value=sorted(k for k in self.dest if k.startswith(prefix)), index=5)

    def get(self, key: str, **_: Any) -> Reply[KVPair | None]:
        return Reply(value=KVPair(key, self.dest[key]) if key in self.dest else None, index=5)

    def put(self, key: str, value: bytes | None = None, **_: Any) -> bool:
        self.dest[key] = value or b""
        return True

    def delete(self, key: str, **_: Any) -> bool:
        self.deleted.append(key)
        self.dest.pop(key, None)
        return True


class FakeClient:
    def __init__(self, kv: FakeKV) -> None:
        self.kv = kv


PREFIX = Prefix("app/", "dc1", "app/")
DEST = {"app/a": b"1", "app/b": b"2"}


def empty(known_leader: bool = False, index: int = 0) -> Reply[list[KVPair]]:
    return Reply(value=[], index=index, known_leader=known_leader)


def test_an_empty_read_contradicted_by_the_leader_deletes_nothing() -> None:
    held = Reply(value=[KVPair("app/a", b"1", modify_index=9), KVPair("app/b", b"2", modify_index=9)], index=9,
                 known_leader=True)
    kv = FakeKV(DEST, held)
    Replicator(FakeClient(kv)).replicate(PREFIX, empty(known_leader=False, index=9))  # type: ignore[arg-type]
    assert kv.deleted == []
    assert Status.from_json(kv.dest[status_key("service/consul-replicate/statuses", PREFIX)]).last_replicated == 9


def test_an_empty_read_that_cannot_be_confirmed_deletes_nothing() -> None:
    from meshctl.client import ConsulError

    for answer in (ConsulError(500, "No cluster leader"), empty(known_leader=False, index=7), empty(True, 0)):
        kv = FakeKV(DEST, answer)
        with pytest.raises(ReplicateError):
            Replicator(FakeClient(kv)).replicate(PREFIX, empty(known_leader=True, index=7))  # type: ignore[arg-type]
        assert kv.deleted == []


def test_an_empty_source_confirmed_by_the_leader_is_replicated() -> None:
    kv = FakeKV(DEST, empty(known_leader=True, index=12))
    Replicator(FakeClient(kv)).replicate(PREFIX, empty(known_leader=True, index=12))  # type: ignore[arg-type]
    assert kv.deleted == ["app/a", "app/b"]


def test_plan_skips_replicated_keys_and_restores_deleted_ones() -> None:
    source = [KVPair("app/old", b"o", modify_index=3), KVPair("app/gone", b"g", modify_index=3),
              KVPair("app/new", b"n", flags=5, modify_index=8, session="s-1")]
    plan = plan_pass(PREFIX, source, ["app/old", "app/extra"], last_replicated=5)
    assert [(p.key, p.value, p.flags, p.session) for p in plan.puts] == [("app/gone", b"g", 0, None),
                                                                        ("app/new", b"n", 5, None)]
    assert plan.skipped == 1 and plan.deletes == ["app/extra"]
    assert plan.warnings == ["'app/new' has attached session, but sessions cannot be replicated across datacenters"]
