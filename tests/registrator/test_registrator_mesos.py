"""`meshctl registrator -source mesos=...` against local Mesos master doubles and a real meshctl agent.

Mesos cannot run here: each double (doubles.py) serves mesosphere/mesos-dns's real master
state sample (fixtures/mesos) as /master/state, with the master and agent
addresses on 127.0.0.1 (their health checks get probed); tests change what it serves.
"""

from __future__ import annotations

import copy

import dnslib
import pytest

from meshctl.registrator.mesos import MesosConfig, state_services

from .conftest import agent_services, wait_until
from .doubles import MesosMasterDouble, fixture_json

pytestmark = pytest.mark.integration

STATE = fixture_json("mesos/mesosphere__mesos-dns__factories__fake_master_state.json")


@pytest.fixture
def masters():
    a, b = MesosMasterDouble(STATE), MesosMasterDouble(STATE)
    yield a, b
    for m in (a, b):
        m.close()


def _mesos(server) -> dict[str, dict]:
    return {k: v for k, v in agent_services(server).items() if k.startswith("mesos-consul:")}


def _expected(master: MesosMasterDouble, urls: list[str]) -> int:
    groups = state_services(master.state, MesosConfig(masters=urls), urls)
    return len({s.id for svcs in groups.values() for s in svcs})


def _all_registered(server, master: MesosMasterDouble, urls: list[str]) -> dict[str, dict]:
    n = _expected(master, urls)
    return wait_until(lambda: len(_mesos(server)) == n and _mesos(server), 20, what=f"{n} mesos services")


def _start(registrator, masters, server):
    urls = ",".join(m.url for m in masters)
    return registrator("-source", f"mesos={urls}", "-resync", "1", f"consul://127.0.0.1:{server.http_port}")


def test_running_tasks_masters_and_agents_are_registered(masters, dev_server, registrator):
    a, b = masters
    _start(registrator, masters, dev_server)
    services = _all_registered(dev_server, a, [a.url, b.url])
    names = {s["Service"] for s in services.values()}
    assert {"toy-store", "some-box", "liquor-store", "car-store", "chronos", "nginx", "reviewbot"} <= names
    assert "poseidon" not in {n.split("-port")[0] for n in names}, "TASK_KILLED task registered"
    # discovery ports with names: one service each, the port's name as a tag
    liquor = [s for s in services.values() if s["Service"] == "liquor-store"]
    assert {"http"} <= set(liquor[0]["Tags"]) and {s["Port"] for s in liquor} >= {80}
    # netinfo first: toy-store's address comes from its container's network info
    toy = next(s for s in services.values() if s["Service"] == "toy-store")
    assert toy["Address"] == "12.0.1.3" and toy["Port"] == 31354
    assert any(s["Service"] == "toy-store-port2" and s["Port"] == 31355 for s in services.values())
    # nginx: no ports, address from the Mesos containerizer label
    nginx = next(s for s in services.values() if s["Service"] == "nginx")
    assert nginx["Address"] == "10.3.0.3" and not nginx.get("Port")
    mesos = [s for s in services.values() if s["Service"] == "mesos"]
    leader = [s for s in mesos if "leader" in s["Tags"]]
    assert [(s["Address"], s["Port"]) for s in leader] == [("127.0.0.1", a.port)]
    assert len([s for s in mesos if "agent" in s["Tags"]]) == 4
    # once the leader's /master/health check has run (first run within its 10s interval)
    q = dnslib.DNSRecord.question("leader.mesos.service.consul")

    def resolve() -> list[str]:
        return [str(rr.rdata) for rr in dnslib.DNSRecord.parse(q.send("127.0.0.1", dev_server.dns_port, timeout=5)).rr]

    assert wait_until(resolve, 25, interval=0.5, what="leader.mesos.service.consul") == ["127.0.0.1"]


def test_finished_task_is_deregistered(masters, dev_server, registrator):
    a, _ = masters
    _start(registrator, masters, dev_server)
    wait_until(lambda: any(s["Service"] == "reviewbot" for s in _mesos(dev_server).values()), 20, what="reviewbot")
    with a.lock:
        for fw in a.state["frameworks"]:
            for task in fw["tasks"]:
                if task["name"] == "reviewbot":
                    task["state"] = "TASK_FINISHED"
    wait_until(lambda: not any(s["Service"] == "reviewbot" for s in _mesos(dev_server).values()), 20,
               what="reviewbot deregistered")
    assert any(s["Service"] == "chronos" for s in _mesos(dev_server).values())


def test_leader_moves_and_a_master_dies_without_wrong_deregistrations(masters, dev_server, registrator):
    a, b = masters
    r = _start(registrator, masters, dev_server)
    before = _all_registered(dev_server, a, [a.url, b.url])
    # b's state gains a task, then the leadership moves to b
    with b.lock:
        b.state["frameworks"][0]["tasks"].append({**copy.deepcopy(STATE["frameworks"][0]["tasks"][0]),
                                                  "id": "moved.1", "name": "only-on-b"})
    a.lead(b)
    wait_until(lambda: any(s["Service"] == "only-on-b" for s in _mesos(dev_server).values()), 20,
               what="the new leader's state used")
    mesos = [s for s in _mesos(dev_server).values() if s["Service"] == "mesos" and "leader" in s["Tags"]]
    assert [s["Port"] for s in mesos] == [b.port]
    a.close()
    a.mode = "down"
    wait_until(lambda: r.log().count("leading master is") >= 2, 20, what="leader change logged")
    after = _mesos(dev_server)
    assert set(before) - set(after) <= {k for k in before if k.startswith("mesos-consul:mesos:")}


def test_garbage_from_the_master_deregisters_nothing(masters, dev_server, registrator):
    a, b = masters
    r = _start(registrator, (a,), dev_server)
    before = _all_registered(dev_server, a, [a.url])
    a.mode = "garbage"
    wait_until(lambda: r.log().count("not JSON") >= 2, 20, what="garbage reported")
    assert "registrations kept" in r.log()
    assert set(_mesos(dev_server)) == set(before)
    a.mode = "ok"
    with a.lock:
        a.state["frameworks"] = []
    wait_until(lambda: all(s["Service"] == "mesos" for s in _mesos(dev_server).values()), 20,
               what="tasks gone once the master answers again")
