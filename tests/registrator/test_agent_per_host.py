"""Marathon and Mesos services on the Consul agent of each task's host (marathon-consul, mesos-consul).

The "cluster": a dev server on 127.0.0.1 and two client agents on 127.0.0.2 and 127.0.0.3,
all three with the same HTTP port P, so `<task host>:P` is the agent of a task's host (the
registry URI's port is the default -consul-port). The Marathon and Mesos doubles serve the
fixtures with every host address rewritten to one of those loopback addresses: the fixtures'
own addresses are never contacted. SIGKILLing a client agent is a node dying with its tasks'
services on it: when such a task goes away, its service must leave the catalog anyway.
"""

from __future__ import annotations

import copy
import json
import re
import signal
import time

import pytest
import requests
from agent.agent_procs import start_client_agent
from devserver import DevServer, start_dev_server

from meshctl.registrator.mesos import MesosConfig, state_services

from .conftest import wait_until
from .doubles import MarathonDouble, MesosMasterDouble, fixture_json

pytestmark = pytest.mark.integration

HOSTS = ("127.0.0.2", "127.0.0.3")
MYAPP = fixture_json("marathon/allegro__marathon-consul__apps_testdata__app.json")["app"]
KILLED = fixture_json("marathon/allegro_marathon-consul_event_bodies/status_update_event__TASK_KILLED.json")
STATE = fixture_json("mesos/mesosphere__mesos-dns__factories__fake_master_state.json")
IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|2001:db8::1")


def _loopback_only(data: object, host: str) -> object:
    """`data` with every IP address in it replaced by `host` (a loopback address)."""
    return json.loads(IP.sub(host, json.dumps(data)))


def _non_loopback(data: object) -> set[str]:
    return {ip for ip in IP.findall(json.dumps(data)) if not ip.startswith("127.")}


class Cluster:
    """The dev server (127.0.0.1:P) and a client agent on each of HOSTS (same port P)."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.server = start_dev_server(tmp_path, node="server")
        self.port = self.server.http_port
        self.agents = {host: self._client(host, f"host-{host.rsplit('.', 1)[1]}") for host in HOSTS}

    def _client(self, host: str, node: str) -> DevServer:
        return start_client_agent(self.tmp_path, self.server.addr, node=node, host=host, http_port=self.port,
                                  dns_port=0)

    def node(self, host: str) -> str:
        return self.agents[host].node

    def services(self, host: str) -> dict[str, dict]:
        """GET /v1/agent/services on the agent of `host` (127.0.0.1: the dev server)."""
        return requests.get(f"http://{host}:{self.port}/v1/agent/services", timeout=5).json()

    def catalog(self) -> dict[str, str]:
        """Every catalog service instance: ID → node."""
        out: dict[str, str] = {}
        for name in requests.get(f"{self.server.url}/v1/catalog/services", timeout=5).json():
            for e in requests.get(f"{self.server.url}/v1/catalog/service/{name}", timeout=5).json():
                out[e["ServiceID"]] = e["Node"]
        return out

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.server.stop()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


# -- Marathon ------------------------------------------------------------------------------


def _marathon_app() -> dict:
    """allegro's test app, its two tasks on 127.0.0.2 and 127.0.0.3."""
    app = copy.deepcopy(MYAPP)
    for task, host in zip(app["tasks"], HOSTS, strict=True):
        task["host"] = host
    assert not _non_loopback(app)
    return app


def _sid(task: dict) -> str:
    return f"{task['id']}_myapp_{task['ports'][0]}"


def _mine(services: dict[str, dict]) -> set[str]:
    return {k for k, v in services.items() if "marathon" in v.get("Tags", [])}


def test_marathon_tasks_live_on_their_hosts_agents(cluster, registrator):
    app = _marathon_app()
    t2, t3 = app["tasks"]
    marathon = MarathonDouble([copy.deepcopy(app)])
    try:
        r = registrator("-source", f"marathon={marathon.url}", "-resync", "1",
                        f"consul://127.0.0.1:{cluster.port}")
        wait_until(lambda: _mine(cluster.services(HOSTS[0])) == {_sid(t2)}
                   and _mine(cluster.services(HOSTS[1])) == {_sid(t3)}, 20, what="one task on each host's agent")
        assert not _mine(cluster.services("127.0.0.1")), "registered on the registry URI's agent"
        svc = cluster.services(HOSTS[0])[_sid(t2)]
        assert svc["Address"] == HOSTS[0] and svc["Port"] == t2["ports"][0]
        catalog = wait_until(lambda: (c := cluster.catalog()) and _sid(t3) in c and c, what="catalog")
        assert catalog[_sid(t2)] == cluster.node(HOSTS[0]) and catalog[_sid(t3)] == cluster.node(HOSTS[1])

        # a new task on 127.0.0.2, then the first one is killed: it leaves its agent only
        new = {**copy.deepcopy(t2), "id": "myapp.new-task", "ports": [31999, 32000, 32001, 32002]}
        app["tasks"] = [t3, new]
        marathon.set_app(copy.deepcopy(app))
        marathon.push("status_update_event", {**KILLED, "taskId": t2["id"], "appId": "/myapp"})
        wait_until(lambda: _mine(cluster.services(HOSTS[0])) == {_sid(new)}, 20, what="killed task gone")
        assert _mine(cluster.services(HOSTS[1])) == {_sid(t3)}

        # 127.0.0.3's agent dies (SIGKILL: no leave), then its task goes away
        cluster.agents[HOSTS[1]].stop(signal.SIGKILL)
        app["tasks"] = [new]
        marathon.set_app(copy.deepcopy(app))
        marathon.push("status_update_event", {**KILLED, "taskId": t3["id"], "appId": "/myapp"})
        wait_until(lambda: _sid(t3) not in cluster.catalog(), 20, what="dead node's service out of the catalog")
        assert "through the catalog" in r.log()
        assert _mine(cluster.services(HOSTS[0])) == {_sid(new)}, "the live agent's services were touched"
        assert cluster.catalog().get(_sid(new)) == cluster.node(HOSTS[0])
        assert f"deregistered {_sid(new)}" not in r.log()
        assert r.proc.poll() is None
    finally:
        marathon.cut_streams()
        marathon.close()


# -- Mesos ---------------------------------------------------------------------------------


def _mesos_state(master: MesosMasterDouble) -> dict:
    """The mesos-dns sample: agents alternately on 127.0.0.2 / 127.0.0.3, tasks' IPs on their agent's."""
    state = copy.deepcopy(master.state)
    hosts = {}
    for i, slave in enumerate(state["slaves"]):
        host = HOSTS[i % 2]
        hosts[slave["id"]] = host
        state["slaves"][i] = slave = _loopback_only(slave, host)
        slave["pid"] = f"slave(1)@{host}:5051"
        slave["hostname"] = host
    for i, fw in enumerate(state["frameworks"]):
        tasks = [_loopback_only(t, hosts.get(t["slave_id"], "127.0.0.1")) for t in fw["tasks"]]
        state["frameworks"][i] = {**_loopback_only(fw, "127.0.0.1"), "tasks": tasks}  # (scheduler pids)
    state = _loopback_only(state, "127.0.0.1") | {"slaves": state["slaves"], "frameworks": state["frameworks"]}
    assert not _non_loopback(state)
    return state


def _mesos_ids(services: dict[str, dict]) -> set[str]:
    return {k for k in services if k.startswith("mesos-consul:")}


def _expected(state: dict, url: str) -> dict[str, set[str]]:
    """Service IDs by the host whose agent should hold them (mesos-consul's rules)."""
    out: dict[str, set[str]] = {}
    for svcs in state_services(state, MesosConfig(masters=[url]), [url]).values():
        for s in svcs:
            out.setdefault(s.agent, set()).add(s.id)
    return out


def test_mesos_tasks_live_on_their_agents_and_a_dead_node_leaves_no_orphans(cluster, registrator):
    master = MesosMasterDouble(STATE)
    try:
        with master.lock:
            master.state = _mesos_state(master)
        want = _expected(master.state, master.url)
        assert set(want) == {"127.0.0.1", *HOSTS}  # the master on the dev server's host
        r = registrator("-source", f"mesos={master.url}", "-resync", "1", f"consul://127.0.0.1:{cluster.port}")
        for host in want:
            wait_until(lambda host=host: _mesos_ids(cluster.services(host)) == want[host], 20,
                       what=f"the services of {host} on its agent")
        names = {h: {s["Service"] for s in cluster.services(h).values()} for h in HOSTS}
        assert {"reviewbot", "mesos"} <= names["127.0.0.2"] and "chronos" not in names["127.0.0.2"]
        assert {"chronos", "toy-store", "some-box", "mesos"} <= names["127.0.0.3"]
        leader = [s for s in cluster.services("127.0.0.1").values() if "leader" in s.get("Tags", [])]
        assert [(s["Address"], s["Port"]) for s in leader] == [("127.0.0.1", master.port)]
        catalog = wait_until(lambda: (c := cluster.catalog()) and want[HOSTS[1]] <= set(c) and c, what="catalog")
        for host in HOSTS:
            assert {catalog[k] for k in want[host]} == {cluster.node(host)}

        def finish(name: str) -> None:
            with master.lock:
                for fw in master.state["frameworks"]:
                    for task in fw["tasks"]:
                        if task["name"] == name:
                            task["state"] = "TASK_FINISHED"

        # a finished task leaves its agent
        chronos = {k for k, v in cluster.services("127.0.0.3").items() if v["Service"] == "chronos"}
        assert chronos
        finish("chronos")
        wait_until(lambda: not chronos & set(cluster.services("127.0.0.3")), 20, what="chronos gone")

        # 127.0.0.2's agent dies; then reviewbot (on that node) finishes: the catalog loses it
        reviewbot = {k for k, v in cluster.services("127.0.0.2").items() if v["Service"] == "reviewbot"}
        cluster.agents["127.0.0.2"].stop(signal.SIGKILL)
        time.sleep(1.5)  # a pass or two against the dead agent: nothing may change
        assert want["127.0.0.2"] <= set(cluster.catalog())
        finish("reviewbot")
        wait_until(lambda: not reviewbot & set(cluster.catalog()), 20, what="reviewbot out of the catalog")
        assert "through the catalog" in r.log()
        left = cluster.catalog()
        assert want["127.0.0.2"] - reviewbot <= set(left), "other services of the dead node removed"
        assert _mesos_ids(cluster.services("127.0.0.3")) == want["127.0.0.3"] - chronos, \
            "the live agent's services were touched"
        assert "[ERROR]" not in r.log(), "a dead node's services went away without errors"
        assert r.proc.poll() is None
    finally:
        master.close()
