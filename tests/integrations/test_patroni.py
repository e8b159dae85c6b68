"""A real 3-node Patroni cluster (Debian's patroni + PostgreSQL 15) using a meshctl dev store as its DCS.

Patroni's Consul DCS is what this guards: sessions with a TTL (ttl 10 makes Patroni ask for a 5 s
session first; the store's 500 "Invalid Session TTL" makes it read Config.SessionTTLMin from
/v1/agent/self and retry with 10 s), the leader key acquired with that session, the service it
registers per member (tags `master`+`primary` or `replica`, an HTTP check on its REST API) and
the DNS answers for it. The test: one leader, two streaming replicas; SIGKILL of the primary's
Patroni and Postgres promotes a replica with the rows intact; the old primary rejoins as a
replica; `patronictl switchover` moves the leader; `primary.<scope>.service.consul` (SRV: all
members share 127.0.0.1, the port tells them apart) answers the current primary; and sampling
pg_is_in_recovery() on every node all along never sees two primaries.

PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` user the package
creates (or `meshtest`, created if neither exists), in a private directory under /tmp.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from devserver import DevServer, free_port, start_dev_server
from realprograms import Child, absent, eventually, require, tail

pytestmark = pytest.mark.integration

SCOPE = "pgt"
BOUND = 90.0  # seconds per observable step: generous for a loaded CI machine
PG_BIN = "/usr/lib/postgresql/15/bin"


@dataclass
class Member:
    name: str
    rest_port: int
    pg_port: int
    config: Path
    data_dir: Path
    child: Child | None = None

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


def run_user() -> str | None:
    """The OS user the cluster runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "meshtest"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "meshtest"],
                   check=True)
    return "meshtest"


def psql(port: int, sql: str, timeout: float = 10) -> str:
    """Run one statement on 127.0.0.1:port as the superuser (trust on loopback); its unaligned output."""
    env = {**os.environ, "PGCONNECT_TIMEOUT": "3", "PGPASSWORD": "pg"}
    out = subprocess.run([shutil.which("psql") or f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(port),
                          "-U", "postgres", "-d", "postgres", "-XAtqc", sql],
                         capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def member_config(m: Member, consul_addr: str, work: Path) -> dict[str, Any]:
    return {
        "scope": SCOPE,
        "name": m.name,
        "log": {"level": "INFO"},
        "restapi": {"listen": f"127.0.0.1:{m.rest_port}", "connect_address": f"127.0.0.1:{m.rest_port}"},
        "consul": {"host": consul_addr, "register_service": True, "service_check_interval": "1s"},
        "bootstrap": {
            "dcs": {"ttl": 10, "loop_wait": 2, "retry_timeout": 5, "maximum_lag_on_failover": 1048576,
                    "postgresql": {"use_pg_rewind": True,
                                   "parameters": {"wal_log_hints": "on", "max_wal_senders": 10}}},
            "initdb": [{"encoding": "UTF8"}],
            "pg_hba": ["host replication replicator 127.0.0.1/32 trust", "host all all 127.0.0.1/32 trust",
                       "local all all trust"],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{m.pg_port}",
            "connect_address": f"127.0.0.1:{m.pg_port}",
            "data_dir": str(m.data_dir),
            "bin_dir": PG_BIN,
            "pgpass": str(work / f"pgpass-{m.name}"),
            "remove_data_directory_on_rewind_failure": True,
            "remove_data_directory_on_diverged_timelines": True,
            "authentication": {"replication": {"username": "replicator", "password": "rep"},
                               "superuser": {"username": "postgres", "password": "pg"},
                               "rewind": {"username": "rewinder", "password": "rw"}},
            "parameters": {"unix_socket_directories": str(work), "shared_buffers": "16MB",
                           "max_connections": 30},
        },
    }


class Cluster:
    def __init__(self, work: Path, store: DevServer, user: str | None, patroni: str) -> None:
        self.work, self.store, self.user, self.patroni = work, store, user, patroni
        self.members = [Member(f"pg{i}", free_port(), free_port(), work / f"pg{i}.yml", work / f"pg{i}")
                        for i in range(3)]
        for m in self.members:
            m.config.write_text(json.dumps(member_config(m, store.addr, work)))
        self.chown(work)

    def chown(self, path: Path) -> None:
        if self.user is not None:
            uid, gid = pwd.getpwnam(self.user).pw_uid, pwd.getpwnam(self.user).pw_gid
            os.chown(path, uid, gid)
            for p in path.iterdir():
                if p.is_file():
                    os.chown(p, uid, gid)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONSUL_HTTP_ADDR")}
        if self.user is not None:
            env["HOME"] = str(self.work)
        return env

    def start(self, m: Member) -> None:
        m.child = Child(m.name, [self.patroni, str(m.config)], self.work / f"{m.name}.log", cwd=self.work,
                        env=self.env(), user=self.user).start()

    def postmaster_pid(self, m: Member) -> int | None:
        try:
            return int((m.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill_hard(self, m: Member) -> None:
        """SIGKILL the member's Patroni and its Postgres (Patroni starts Postgres in a session of its own)."""
        pid = self.postmaster_pid(m)
        assert m.child is not None
        m.child.kill(signal.SIGKILL)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert m.child.proc is not None
        m.child.proc.wait(10)

    def stop_all(self) -> None:
        for m in self.members:
            if m.child is not None:
                m.child.stop(timeout=20)
        for m in self.members:  # a Postgres its Patroni left behind
            pid = self.postmaster_pid(m)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def by_name(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def view(self, via: list[Member] | None = None) -> dict[str, dict[str, Any]]:
        """Patroni's own view (/cluster of the first member that answers): name -> member."""
        for m in via or self.members:
            try:
                r = requests.get(f"{m.rest}/cluster", timeout=3)
                if r.status_code == 200:
                    return {x["name"]: x for x in r.json()["members"]}
            except requests.RequestException:
                continue
        return {}

    def leader(self, via: list[Member] | None = None) -> str | None:
        leaders = [n for n, x in self.view(via).items() if x.get("role") == "leader" and x.get("state") == "running"]
        return leaders[0] if len(leaders) == 1 else None

    def streaming_replicas(self, primary: Member) -> set[str]:
        rows = psql(primary.pg_port, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
        return set(rows.split()) if rows else set()

    def srv_ports(self, name: str) -> list[int]:
        out = subprocess.run(["dig", "+short", "+time=2", "+tries=1", "-p", str(self.store.dns_port), "@127.0.0.1",
                              name, "SRV"], capture_output=True, text=True, timeout=10).stdout
        return sorted(int(line.split()[2]) for line in out.splitlines() if len(line.split()) == 4)

    def logs(self) -> str:
        parts = [f"--- {m.name}:\n{tail(m.child.log(), 40)}" for m in self.members if m.child is not None]
        return "\n".join(parts) + f"\n--- store:\n{tail(self.store.log(), 20)}"


class PrimarySampler(threading.Thread):
    """Asks every node pg_is_in_recovery() in rounds; remembers rounds where two nodes were primary."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(daemon=True)
        self.ports, self.rounds, self.split = ports, 0, []
        self.stopping = threading.Event()

    def run(self) -> None:
        previous: set[int] = set()
        while not self.stopping.is_set():
            primaries = set()
            for port in self.ports:
                try:
                    if psql(port, "SELECT pg_is_in_recovery()", timeout=4) == "f":
                        primaries.add(port)
                except (RuntimeError, subprocess.SubprocessError):
                    pass
            self.rounds += 1
            # one round is not atomic (a switchover can land between two queries): two rounds in a row
            if len(primaries) > 1 and len(previous) > 1:
                self.split.append(sorted(primaries))
            previous = primaries
            self.stopping.wait(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DevServer]:
    server = start_dev_server(tmp_path, node="pg-dcs")
    yield server
    server.stop()


@pytest.fixture
def work_dir() -> Iterator[Path]:
    # under /tmp, readable by the cluster's user (pytest's tmp_path is private to root)
    work = Path(tempfile.mkdtemp(prefix="meshctl-patroni-"))
    work.chmod(0o755)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def test_patroni_cluster_fails_over_rejoins_and_switches_over(store: DevServer, work_dir: Path) -> None:
    patroni = require("patroni", "patroni")
    patronictl = require("patronictl", "patroni")
    require("postgres", "postgresql", f"{PG_BIN}/postgres")
    require("dig", "dnsutils")
    if subprocess.run(["/usr/bin/python3", "-c", "import consul"], capture_output=True).returncode != 0:
        absent("Patroni's Consul DCS needs python-consul (Debian package 'python3-consul')")

    cluster = Cluster(work_dir, store, run_user(), patroni)
    sampler = PrimarySampler([m.pg_port for m in cluster.members])
    try:
        # -- bootstrap: one leader, two streaming replicas
        cluster.start(cluster.members[0])
        first = eventually(cluster.leader, BOUND, "a leader", cluster.logs)
        for m in cluster.members[1:]:
            cluster.start(m)
        primary = cluster.by_name(first)
        others = {m.name for m in cluster.members} - {first}
        eventually(lambda: cluster.streaming_replicas(primary) == others, BOUND, "two streaming replicas",
                   cluster.logs)
        log = primary.child.log() if primary.child else ""
        # ttl 10 asks for a 5 s session: the 500 sends Patroni to SessionTTLMin, then it holds the lock
        assert "Changing Session TTL from 5.0 to 10.0" in log, tail(log)
        sampler.start()

        psql(primary.pg_port, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)")
        for m in cluster.members:
            eventually(lambda m=m: psql(m.pg_port, "SELECT count(*) FROM t") == "100", BOUND,
                       f"the rows on {m.name}", cluster.logs)
        eventually(lambda: cluster.srv_ports(f"primary.{SCOPE}.service.consul") == [primary.pg_port], BOUND,
                   "DNS primary -> the leader", cluster.logs)
        replica_ports = sorted(m.pg_port for m in cluster.members if m.name != first)
        eventually(lambda: cluster.srv_ports(f"replica.{SCOPE}.service.consul") == replica_ports, BOUND,
                   "DNS replica -> both replicas", cluster.logs)

        # -- failover: SIGKILL the primary's Patroni and Postgres
        cluster.kill_hard(primary)
        survivors = [m for m in cluster.members if m is not primary]
        second = eventually(lambda: (lead := cluster.leader(survivors)) not in (None, first) and lead, BOUND,
                            "a replica promoted", cluster.logs)
        new_primary = cluster.by_name(second)
        assert psql(new_primary.pg_port, "SELECT count(*) FROM t") == "100"
        psql(new_primary.pg_port, "INSERT INTO t SELECT generate_series(101, 150)")
        eventually(lambda: cluster.srv_ports(f"primary.{SCOPE}.service.consul") == [new_primary.pg_port], BOUND,
                   "DNS primary -> the promoted replica", cluster.logs)

        # -- the old primary rejoins as a replica and catches up
        cluster.start(primary)
        eventually(lambda: cluster.streaming_replicas(new_primary) == {first} | (others - {second}), BOUND,
                   "the old primary streaming again", cluster.logs)
        eventually(lambda: psql(primary.pg_port, "SELECT count(*) FROM t") == "150", BOUND,
                   "the old primary caught up", cluster.logs)
        assert psql(primary.pg_port, "SELECT pg_is_in_recovery()") == "t"

        # -- switchover with patronictl
        candidate = sorted((others - {second}) | {first})[0]
        out = subprocess.run([patronictl, "-c", str(new_primary.config), "switchover", "--leader", second,
                              "--candidate", candidate, "--force"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        eventually(lambda: cluster.leader() == candidate, BOUND, f"{candidate} leading after switchover",
                   cluster.logs)
        target = cluster.by_name(candidate)
        eventually(lambda: cluster.streaming_replicas(target) == {m.name for m in cluster.members} - {candidate},
                   BOUND, "both others streaming from the new leader", cluster.logs)
        eventually(lambda: cluster.srv_ports(f"primary.{SCOPE}.service.consul") == [target.pg_port], BOUND,
                   "DNS primary -> the switchover's candidate", cluster.logs)
        assert psql(target.pg_port, "SELECT count(*) FROM t") == "150"

        sampler.stop()
        assert sampler.rounds > 10, "the primary sampler hardly ran"
        assert sampler.split == [], f"two primaries at once: {sampler.split}"
        for m in cluster.members:
            assert m.child is not None and m.child.alive, cluster.logs()
    finally:
        if sampler.is_alive():
            sampler.stop()
        cluster.stop_all()
