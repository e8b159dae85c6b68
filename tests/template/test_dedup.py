"""-dedup: real `meshctl template` sidecars against one real dev store elect one leader per template.

The leader holds the lock on consul-template's key (`consul-template/dedup/<template ID>/data`)
with a "Consul-Template de-duplication" session and publishes the data there; the others render
from it. Kill the leader and another takes over: the files stay as they were and follow changes.
"""

from __future__ import annotations

import json
import os
import signal
import zlib

import pytest
from ctrun import Proc, dev_agent, read, wait_until

from meshctl.client import Client
from meshctl.client.lock import LOCK_FLAG_VALUE
from meshctl.template.dedup import template_id

PREFIX = "consul-template/dedup"
TEMPLATE = '{{ key "dd/version" }}{{ range service "ddweb" }} {{ .Address }}:{{ .Port }}{{ end }}\n'
CONFIG = 'deduplicate {\n  ttl = "10s"\n}\n'  # Consul's shortest session TTL: a quicker takeover


@pytest.fixture(scope="module")
def consul(tmp_path_factory):
    for server in dev_agent(tmp_path_factory):
        c = Client(server.addr)
        yield server.addr, c
        c.close()


def sidecar(addr: str, cwd, template: str = TEMPLATE, *extra: str) -> Proc:
    cwd.mkdir(exist_ok=True)
    (cwd / "in.ctmpl").write_text(template)
    (cwd / "dd.hcl").write_text(CONFIG)
    return Proc(addr, "-dedup", "-config", "dd.hcl", "-template", "in.ctmpl:out.txt", "-log-level", "info", *extra,
                cwd=cwd)


def data_key(template: str = TEMPLATE) -> str:
    return f"{PREFIX}/{template_id('in.ctmpl', template, 'out.txt')}/data"


def data_value(c: Client, template: str = TEMPLATE) -> bytes:
    pair = c.kv.get(data_key(template)).value
    return (pair.value or b"") if pair is not None else b""


def register(c: Client, i: int) -> None:
    c.catalog.register({"Node": f"dd-n{i}", "Address": f"10.9.0.{i}", "Service": {"ID": f"ddweb-{i}",
                        "Service": "ddweb", "Port": 8000 + i}})


def leader_of(procs: list[Proc]) -> list[Proc]:
    def leads(p: Proc) -> bool:
        out = p.output()
        return out.rfind("dedup: leader for") > out.rfind("dedup: no longer leader")
    return [p for p in procs if p.proc.poll() is None and leads(p)]


def test_three_sidecars_one_leader_and_a_takeover_without_a_gap(consul, tmp_path):
    addr, c = consul
    c.kv.put("dd/version", "v1")
    register(c, 1)
    register(c, 2)
    procs = [sidecar(addr, tmp_path / f"s{i}") for i in range(3)]
    outs = [tmp_path / f"s{i}" / "out.txt" for i in range(3)]
    try:
        expected = "v1 10.9.0.1:8001 10.9.0.2:8002\n"
        for p, out in zip(procs, outs, strict=True):
            wait_until(lambda out=out: read(out) == expected, timeout=60, what="first render", proc=p)

        # one leader: the lock key is held by a de-duplication session, which holds the data key too
        lock_key = data_key().replace("/data", "/lock")
        pair = wait_until(lambda: (c.kv.get(lock_key).value or None), timeout=30, what="lock key")
        first_session = pair.session
        assert first_session and pair.flags == LOCK_FLAG_VALUE
        assert c.session.info(first_session).value["Name"] == "Consul-Template de-duplication"
        holder = json.loads(pair.value)
        wait_until(lambda: (c.kv.get(data_key()).value or pair).session == first_session, what="data key held")
        wait_until(lambda: data_value(c).startswith(b"MDD1"), what="published data")
        leaders = wait_until(lambda: leader_of(procs), timeout=30, what="a leader in the logs")
        assert len(leaders) == 1 and leaders[0].proc.pid == holder["pid"]

        # a change reaches every sidecar, through the leader
        c.kv.put("dd/version", "v2")
        expected = "v2 10.9.0.1:8001 10.9.0.2:8002\n"
        for p, out in zip(procs, outs, strict=True):
            wait_until(lambda out=out: read(out) == expected, timeout=60, what="render of v2", proc=p)

        # kill the leader: another sidecar takes the lock; the others' files are left as they are
        old = leaders[0]
        survivors = [(p, out) for p, out in zip(procs, outs, strict=True) if p is not old]
        stamps = [os.stat(out).st_mtime_ns for _, out in survivors]
        old.signal(signal.SIGKILL)
        old.wait()

        def new_holder():
            pair = c.kv.get(lock_key).value
            return pair is not None and pair.session not in ("", first_session) and pair.session
        wait_until(new_holder, timeout=120, what="a new lock holder")
        wait_until(lambda: len(leader_of([p for p, _ in survivors])) == 1, timeout=30, what="one new leader")
        for (p, out), stamp in zip(survivors, stamps, strict=True):
            assert read(out) == expected
            assert os.stat(out).st_mtime_ns == stamp  # not rewritten, never emptied
            assert p.proc.poll() is None

        # and the new leader keeps everyone current
        c.kv.put("dd/version", "v3")
        register(c, 3)
        expected = "v3 10.9.0.1:8001 10.9.0.2:8002 10.9.0.3:8003\n"
        for p, out in survivors:
            wait_until(lambda out=out: read(out) == expected, timeout=60, what="render after the takeover", proc=p)
    finally:
        for p in procs:
            p.stop()


def test_data_over_512_kib_is_chunked_and_followed(consul, tmp_path):
    addr, c = consul
    for i in range(300):  # ~1.2 MB of incompressible values: more than one 512 KiB value
        c.kv.put(f"ddbig/k{i:03d}", os.urandom(3000).hex())
    template = '{{ range ls "ddbig" }}{{ .Key }}={{ .Value }}\n{{ end }}'
    procs = [sidecar(addr, tmp_path / f"b{i}", template) for i in range(2)]
    outs = [tmp_path / f"b{i}" / "out.txt" for i in range(2)]
    try:
        wait_until(lambda: data_value(c, template).startswith(b"MDC1"), timeout=60, what="a chunked publish")
        manifest = json.loads(data_value(c, template)[4:])
        assert manifest["chunks"] >= 2
        chunks = c.kv.keys(data_key(template).rsplit("/", 1)[0] + f"/chunk/{manifest['generation']}/").value
        assert len(chunks) == manifest["chunks"]
        for p, out in zip(procs, outs, strict=True):
            wait_until(lambda out=out: (read(out) or "").count("\n") == 300, timeout=60, what="big render", proc=p)
        assert read(outs[0]) == read(outs[1])
        c.kv.put("ddbig/k000", "changed")
        for p, out in zip(procs, outs, strict=True):
            wait_until(lambda out=out: (read(out) or "").startswith("k000=changed\n"), timeout=60,
                       what="big re-render", proc=p)
        generations = c.kv.keys(data_key(template).rsplit("/", 1)[0] + "/chunk/", separator="/").value
        assert len(generations) == 1  # the flip to the new generation dropped the old one
    finally:
        for p in procs:
            p.stop()


def test_follower_of_another_version_watches_for_itself(consul, tmp_path):
    addr, c = consul
    template = '{{ key "ddver/a" }}\n'
    c.kv.put("ddver/a", "mine")
    # a "leader" of another meshctl version holds the lock and published its data
    sid = c.session.create(name="Consul-Template de-duplication", ttl="60s", behavior="delete")
    doc = {"Version": "0.0.1-other", "Template": "x", "Data": {'kv.block(ddver/a)': "theirs"}}
    blob = b"MDD1" + zlib.compress(json.dumps(doc).encode())
    assert c.kv.put(data_key(template).replace("/data", "/lock"), "{}", flags=LOCK_FLAG_VALUE, acquire=sid)
    assert c.kv.put(data_key(template), blob, flags=LOCK_FLAG_VALUE, acquire=sid)
    p = sidecar(addr, tmp_path / "v", template)
    try:
        wait_until(lambda: read(tmp_path / "v" / "out.txt") == "mine\n", timeout=60, what="a render", proc=p)
        assert "watching the dependencies here" in p.output()
        c.kv.put("ddver/a", "mine2")
        wait_until(lambda: read(tmp_path / "v" / "out.txt") == "mine2\n", timeout=60, what="a re-render", proc=p)
    finally:
        p.stop()
        c.session.destroy(sid)


def test_once_ignores_dedup(consul, tmp_path):
    addr, c = consul
    c.kv.put("ddonce/a", "x")
    p = sidecar(addr, tmp_path / "o", '{{ key "ddonce/a" }}', "-once")
    assert p.wait(60) == 0
    assert read(tmp_path / "o" / "out.txt") == "x"
    p.stop()


def test_a_leader_stopped_cleanly_hands_over_and_deletes_its_session(consul, tmp_path):
    addr, c = consul
    template = '{{ key "ddterm/a" }}\n'
    c.kv.put("ddterm/a", "1")
    procs = [sidecar(addr, tmp_path / f"t{i}", template) for i in range(2)]
    outs = [tmp_path / f"t{i}" / "out.txt" for i in range(2)]
    lock_key = data_key(template).replace("/data", "/lock")
    try:
        for p, out in zip(procs, outs, strict=True):
            wait_until(lambda out=out: read(out) == "1\n", timeout=60, what="first render", proc=p)
        leader = wait_until(lambda: leader_of(procs), timeout=30, what="a leader")[0]
        other = next(p for p in procs if p is not leader)
        old_session = c.kv.get(lock_key).value.session
        leader.signal(signal.SIGTERM)
        assert leader.wait(30) == 0
        assert c.session.info(old_session).value is None  # destroyed, not left to expire
        wait_until(lambda: leader_of([other]), timeout=60, what="the other sidecar leading", proc=other)
        c.kv.put("ddterm/a", "2")
        out = outs[procs.index(other)]
        wait_until(lambda: read(out) == "2\n", timeout=60, what="render by the new leader", proc=other)
    finally:
        for p in procs:
            p.stop()
