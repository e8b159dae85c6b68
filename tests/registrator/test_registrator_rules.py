"""The pure rules: SERVICE_* metadata, registrator's container → services, marathon-consul, mesos-consul."""

from __future__ import annotations

from meshctl.registrator.docker_rules import (
    DockerConfig,
    container_services,
    image_basename,
    legacy_owned,
    should_deregister,
)
from meshctl.registrator.marathon import MarathonConfig, app_services, parse_sse, service_name
from meshctl.registrator.mesos import MesosConfig, clean_name, parse_port_ranges, state_services
from meshctl.registrator.metadata import build_check, service_metadata, split_tags

from .doubles import FIXTURES, fixture_json


def _container(**over):
    attrs = {
        "Id": "abcdef0123456789", "Name": "/web",
        "Config": {"Image": "registry:5000/gliderlabs/foobar:1", "Env": [], "Labels": {},
                   "ExposedPorts": {"80/tcp": {}}},
        "HostConfig": {"NetworkMode": "host"},
        "NetworkSettings": {"IPAddress": "", "Ports": {}, "Networks": {}},
        "State": {"Running": True},
    }
    for k, v in over.items():
        attrs[k] = {**attrs[k], **v}
    return attrs


CFG = DockerConfig(hostname="h1", host_ip="127.0.0.1")


def test_metadata_port_specific_beats_generic_and_labels_beat_env():
    meta, from_port = service_metadata(["SERVICE_NAME=a", "SERVICE_80_NAME=b", "SERVICE_X=env"],
                                       {"SERVICE_X": "label", "SERVICE_81_NAME": "c"}, "80")
    assert meta == {"name": "b", "x": "label"} and from_port == {"name"}


def test_tags_split_on_unescaped_commas():
    assert split_tags("a,b\\,c,,d") == ["a", "b,c", "d"]


def test_check_order_and_defaults():
    assert build_check({"check_http": "/h", "check_tcp": "1"}, "127.0.0.1", 80) == \
        {"HTTP": "http://127.0.0.1:80/h", "Interval": "10s"}
    assert build_check({"check_ttl": "30s", "check_initial_status": "passing"}, "1.1.1.1", 1) == \
        {"TTL": "30s", "Status": "passing"}
    assert build_check({"check_script": "nc $SERVICE_IP $SERVICE_PORT", "check_interval": "5s"}, "127.0.0.1", 9) == \
        {"Args": ["/bin/sh", "-c", "nc 127.0.0.1 9"], "Interval": "5s"}
    assert build_check({}, "127.0.0.1", 1) is None


def test_image_basename():
    assert image_basename("registry:5000/gliderlabs/foobar:1") == "foobar"
    assert image_basename("redis@sha256:abc") == "redis"


def test_host_network_exposed_port_is_published():
    [svc] = container_services(_container(), CFG)
    assert (svc.id, svc.name, svc.address, svc.port) == ("h1:web:80", "foobar", "127.0.0.1", 80)


def test_bridge_bindings_and_unpublished_ports():
    attrs = _container(HostConfig={"NetworkMode": "bridge"},
                       Config={"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}},
                       NetworkSettings={"IPAddress": "172.17.0.2",
                                        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}],
                                                  "443/tcp": None}})
    [svc] = container_services(attrs, DockerConfig(hostname="h1", host_ip="127.0.0.1"))
    assert (svc.port, svc.name) == (32768, "foobar")  # 443 is unpublished: one service, no -<port> suffix
    internal = container_services(attrs, DockerConfig(hostname="h1", internal=True))
    assert sorted((s.address, s.port) for s in internal) == [("172.17.0.2", 80), ("172.17.0.2", 443)]


def test_ip_from_label_explicit_and_service_id():
    attrs = _container(Config={"Labels": {"ip": "127.0.0.5/24"}})
    assert container_services(attrs, DockerConfig(hostname="h", use_ip_from_label="ip"))[0].address == "127.0.0.5"
    assert container_services(attrs, DockerConfig(hostname="h", explicit=True)) == []
    named = _container(Config={"Env": ["SERVICE_NAME=x", "SERVICE_ID=custom"]})
    assert container_services(named, DockerConfig(hostname="h", explicit=True))[0].id == "custom"


def test_deregister_policy_and_cleanup_pattern():
    assert should_deregister("always", {"ExitCode": 3})
    assert should_deregister("on-success", {"ExitCode": 0})
    assert should_deregister("on-success", {"ExitCode": 137})
    assert not should_deregister("on-success", {"ExitCode": 3})
    assert should_deregister("on-success", None)
    owned = legacy_owned("h1")
    assert owned({"ID": "h1:web:80"}) and owned({"ID": "h1:web:53:udp"})
    assert not owned({"ID": "h2:web:80"}) and not owned({"ID": "web"})


def test_docker_event_fixture_shape_is_handled():
    """moby's v1.24 'start' event: Action/Actor.ID (or legacy status/id) name the container."""
    import json

    from meshctl.registrator.docker import DockerSource

    event = json.loads((FIXTURES / "docker" / "moby__api_v1.24_event_container_start.json").read_text())
    seen = []

    class FakeBridge:
        def update(self, group, services):
            seen.append(("update", group))

    src = DockerSource(FakeBridge(), CFG)  # type: ignore[arg-type]
    src.inspect = lambda cid: None  # type: ignore[method-assign]
    src.handle(event)
    assert seen == [("update", event["id"])]


def test_marathon_name_and_ports_labelled_consul():
    assert service_name("/grp/app", "true") == "grp.app"
    assert service_name("/grp/app", "web") == "web"
    app = fixture_json("marathon/allegro__marathon-consul__apps_testdata__app.json")["app"]
    app["portDefinitions"] = [{"port": 0, "labels": {"consul": "web", "pub": "tag"}}, {"port": 0},
                              {"port": 0, "labels": {"consul": ""}}]
    cfg = MarathonConfig(url="http://m", resolve=lambda h: "127.0.0.1")
    services = app_services(app, cfg)
    task = app["tasks"][0]
    mine = sorted((s.id, s.name) for s in services if s.id.startswith(task["id"]))
    assert mine == [(f"{task['id']}_myapp_{task['ports'][2]}", "myapp"), (f"{task['id']}_web_{task['ports'][0]}", "web")]
    web = next(s for s in services if s.name == "web")
    assert "pub" in web.tags and "public" in web.tags


def test_marathon_sse_capture_parses():
    text = (FIXTURES / "marathon" / "mesosphere__marathon__v2_examples__events_sse_stream.txt").read_text()
    events = list(parse_sse(iter(text.split("\n"))))
    assert [e for e, _ in events] == ["event_stream_attached", "status_update_event", "status_update_event"]


def test_mesos_rules_on_the_datadog_sample():
    assert clean_name("Liquor.Store_x") == "liquor-storex"
    assert parse_port_ranges("[31000-31001, 31005-31005]") == [31000, 31001, 31005]
    state = fixture_json("mesos/DataDog__integrations-core__mesos_master_tests_fixtures__state.json")
    groups = state_services(state, MesosConfig(masters=["http://127.0.0.1:5050"]), ["http://127.0.0.1:5050"])
    [task] = [s for g, svcs in groups.items() if g.startswith("task:") for s in svcs]
    assert (task.name, task.address, task.port) == ("hello", "127.0.0.1", 31915)
    assert task.id == "mesos-consul:127.0.0.1:hello:127.0.0.1:31915"
    [leader] = groups["masters"]
    assert leader.tags == ["leader", "master"] and leader.id == "mesos-consul:mesos:127.0.0.1:5050"
