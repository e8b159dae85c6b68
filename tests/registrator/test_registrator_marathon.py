"""`meshctl registrator -source marathon=...` against a local Marathon double and a real meshctl agent.

Marathon cannot run here: the double (doubles.py) serves the real samples from
fixtures/marathon (allegro/marathon-consul's testdata app, mesosphere/marathon-lb's
apps, the captured /v2/events SSE stream and event bodies), with task hosts on 127.0.0.1,
and streams events the tests push.
"""

from __future__ import annotations

import copy

import pytest

from .conftest import agent_services, service_checks, wait_until
from .doubles import MarathonDouble, fixture_json, loopback_app

pytestmark = pytest.mark.integration

MYAPP = loopback_app(fixture_json("marathon/allegro__marathon-consul__apps_testdata__app.json")["app"])
UNLABELLED = loopback_app(fixture_json("marathon/mesosphere__marathon-lb__tests__zdd_apps.json")["apps"][0])
KILLED = fixture_json("marathon/allegro_marathon-consul_event_bodies/status_update_event__TASK_KILLED.json")
HEALTH = fixture_json("marathon/events_from_event-bus_md/rev2bc48d78d_2016-05__health_status_changed_event.json")
TASK0, TASK1 = (t["id"] for t in MYAPP["tasks"])


def _sid(task: dict) -> str:
    return f"{task['id']}_myapp_{task['ports'][0]}"


@pytest.fixture
def marathon():
    double = MarathonDouble([copy.deepcopy(MYAPP), copy.deepcopy(UNLABELLED)])
    yield double
    double.cut_streams()
    double.close()


def _start(registrator, marathon, server, *flags: str):
    r = registrator("-source", f"marathon={marathon.url}", *flags, f"consul://127.0.0.1:{server.http_port}")
    wait_until(lambda: "syncing 1 apps" in r.log() and marathon.streams, 20, what="first sync and stream")
    return r


def _ids(server) -> set[str]:
    return {k for k, v in agent_services(server).items() if "marathon" in v["Tags"]}


def test_full_sync_registers_healthy_tasks_of_labelled_apps_with_checks(marathon, dev_server, registrator):
    _start(registrator, marathon, dev_server)
    wait_until(lambda: len(_ids(dev_server)) == 2, what="two tasks registered")
    services = agent_services(dev_server)
    task = MYAPP["tasks"][0]
    svc = services[_sid(task)]
    assert svc["Service"] == "myapp"
    assert svc["Address"] == "127.0.0.1" and svc["Port"] == task["ports"][0]
    assert svc["Tags"] == ["marathon", "public", f"marathon-task:{task['id']}"]
    checks = sorted(c["Definition"]["HTTP"] for c in service_checks(dev_server, _sid(task)))
    assert checks == [f"http://127.0.0.1:{task['ports'][0]}/", "http://127.0.0.1:8123/custom"]
    assert not any(s["Service"].startswith("nginx") for s in services.values()), "unlabelled app registered"


def test_events_kill_a_task_and_register_a_newly_healthy_one(marathon, dev_server, registrator):
    _start(registrator, marathon, dev_server)
    wait_until(lambda: len(_ids(dev_server)) == 2, what="two tasks registered")
    # TASK_KILLED for the first task (allegro's event body, with this app's ids)
    app = copy.deepcopy(MYAPP)
    app["tasks"] = app["tasks"][1:]
    marathon.set_app(app)
    marathon.push("status_update_event", {**KILLED, "taskId": TASK0, "appId": "/myapp"})
    wait_until(lambda: _ids(dev_server) == {_sid(MYAPP["tasks"][1])}, what="killed task deregistered")
    # a new task turns healthy: health_status_changed_event (Marathon 1.1 shape)
    new = {**copy.deepcopy(MYAPP["tasks"][0]), "id": "myapp.new-task", "ports": [31999, 32000, 32001, 32002]}
    new["healthCheckResults"][0]["taskId"] = new["id"]
    unhealthy = {**copy.deepcopy(new), "id": "myapp.sick-task", "ports": [31888, 1, 2, 3]}
    unhealthy["healthCheckResults"] = [{**new["healthCheckResults"][0], "alive": False}]
    app["tasks"] = [*app["tasks"], new, unhealthy]
    marathon.set_app(app)
    marathon.push("health_status_changed_event", {**HEALTH, "appId": "/myapp", "taskId": new["id"], "alive": True})
    wait_until(lambda: _ids(dev_server) == {_sid(MYAPP["tasks"][1]), "myapp.new-task_myapp_31999"},
               what="new healthy task registered, sick one not")


def test_app_terminated_deregisters_the_app(marathon, dev_server, registrator):
    _start(registrator, marathon, dev_server)
    wait_until(lambda: len(_ids(dev_server)) == 2, what="two tasks registered")
    marathon.drop_app("/myapp")
    body = fixture_json("marathon/events_from_event-bus_md/v1.10_HEAD__app_terminated_event.json")
    marathon.push("app_terminated_event", {**body, "appId": "/myapp"})
    wait_until(lambda: not _ids(dev_server), what="app services gone")


def test_garbage_or_hanging_marathon_deregisters_nothing_and_recovers(marathon, dev_server, registrator):
    r = _start(registrator, marathon, dev_server, "-resync", "1", "-marathon-timeout", "1s")
    wait_until(lambda: len(_ids(dev_server)) == 2, what="two tasks registered")
    marathon.mode = "garbage"
    marathon.cut_streams()
    wait_until(lambda: r.log().count("not JSON") >= 2, 20, what="garbage reported twice")
    assert "registrations kept" in r.log()
    assert len(_ids(dev_server)) == 2
    marathon.mode, marathon.hang_seconds = "hang", 4
    wait_until(lambda: "timed out" in r.log(), 20, what="a timeout reported")
    assert len(_ids(dev_server)) == 2
    marathon.mode = "ok"
    app = copy.deepcopy(MYAPP)
    app["tasks"] = app["tasks"][:1]
    marathon.set_app(app)
    wait_until(lambda: _ids(dev_server) == {_sid(MYAPP["tasks"][0])}, 30, what="recovered and synced")
    assert r.proc.poll() is None
