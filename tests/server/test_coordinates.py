"""Network coordinates: the Vivaldi estimate, /v1/coordinate, `?near=` sorting, `~near` in templates, `meshctl rtt`.

The estimate alone on a synthetic star of round trips (what meshctl measures: clients against
their server); then real processes: a dev server, a client agent whose heartbeats feed the
coordinates, `meshctl template` and `meshctl rtt` as a user runs them.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from agent.agent_procs import start_client_agent
from devserver import DevServer, start_dev_server, wait_for, wait_node_registered

from meshctl.client.coordinate import rtt
from meshctl.server.coordinates import ERROR_MAX, Coordinate, Vivaldi

NODE = "devnode"


def coord(x_ms: float, height: float = 0.0) -> dict[str, object]:
    return {"Vec": [x_ms / 1000] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.0, "Height": height}


# ---------------------------------------------------------------------- the estimate


def _copy(c: Coordinate) -> Coordinate:
    return Coordinate(list(c.vec), c.error, c.adjustment, c.height)


def test_vivaldi_learns_the_round_trips_it_measures_and_orders_the_rest() -> None:
    true_ms = {"s": 0.0, "a": 2.0, "b": 10.0, "c": 25.0}  # positions on a line; round trip = distance

    def measured(x: str, y: str) -> float:
        return abs(true_ms[x] - true_ms[y]) / 1000 + 0.0002  # plus the HTTP handling

    nodes = {name: Vivaldi(rng=random.Random(i)) for i, name in enumerate(true_ms)}
    for _ in range(300):
        for client in "abc":  # a star: each client against the server, as heartbeats measure
            sample = measured(client, "s")
            nodes[client].update(_copy(nodes["s"].coordinate), sample)
            nodes["s"].update(_copy(nodes[client].coordinate), sample)
    for client in "abc":
        estimate = nodes[client].coordinate.distance(nodes["s"].coordinate)
        assert estimate == pytest.approx(measured(client, "s"), rel=0.05)
        assert nodes[client].coordinate.error < ERROR_MAX
    a = nodes["a"].coordinate
    assert a.distance(nodes["b"].coordinate) < a.distance(nodes["c"].coordinate)  # nearest first still holds


def test_a_measurement_that_is_no_round_trip_changes_nothing() -> None:
    viv = Vivaldi()
    before = viv.coordinate.to_json()
    for bad in (-1.0, float("nan"), 3600.0):
        viv.update(Coordinate(), bad)
    assert viv.coordinate.to_json() == before


def test_the_clients_rtt_is_serfs_distance() -> None:
    a, b = coord(0.0, 0.0001), coord(3.0, 0.0001)
    assert rtt(a, b) == pytest.approx(0.0032)
    assert rtt(a, b) == pytest.approx(Coordinate.from_json(a).distance(Coordinate.from_json(b)))
    negative = dict(b, Adjustment=-1.0)  # an adjustment that would go below zero is ignored
    assert rtt(a, negative) == pytest.approx(0.0032)


# ---------------------------------------------------------------------- the HTTP API

@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    srv = start_dev_server(tmp_path_factory.mktemp("coord"), node=NODE)
    url = srv.url
    wait_node_registered(srv)
    for i, x in ((1, 30.0), (2, 10.0), (3, 20.0)):
        requests.put(f"{url}/v1/catalog/register", json={
            "Node": f"n{i}", "Address": f"127.0.0.{10 + i}",
            "Service": {"ID": f"redis{i}", "Service": "redis", "Port": 6379},
            "Check": {"CheckID": f"c{i}", "Name": "c", "ServiceID": f"redis{i}", "Status": "passing"}},
            timeout=5).raise_for_status()
        put_coordinate(url, f"n{i}", coord(x))
    requests.put(f"{url}/v1/catalog/register", json={
        "Node": "n4", "Address": "127.0.0.14", "Service": {"ID": "redis4", "Service": "redis"},
        "Check": {"CheckID": "c4", "Name": "c", "ServiceID": "redis4", "Status": "passing"}},
        timeout=5).raise_for_status()  # n4 has no coordinate
    put_coordinate(url, NODE, coord(0.0))
    wait_for(lambda: len(requests.get(f"{url}/v1/coordinate/nodes", timeout=5).json()) == 4,
             what="the coordinate batch")
    yield srv
    srv.stop()


def put_coordinate(url: str, node: str, c: dict[str, object]) -> None:
    r = requests.put(f"{url}/v1/coordinate/update", json={"Node": node, "Coord": c}, timeout=5)
    assert r.status_code == 200 and r.content == b"", r.text


@pytest.mark.integration
def test_nodes_and_node_list_coordinates_in_serfs_shape(dev: DevServer) -> None:
    r = requests.get(f"{dev.url}/v1/coordinate/nodes", timeout=5)
    assert r.status_code == 200 and int(r.headers["X-Consul-Index"]) > 1
    entries = r.json()
    assert [e["Node"] for e in entries] == sorted(e["Node"] for e in entries)
    for e in entries:
        assert set(e) == {"Node", "Segment", "Coord"} and set(e["Coord"]) == {"Vec", "Error", "Adjustment", "Height"}
        assert len(e["Coord"]["Vec"]) == 8
    [n2] = requests.get(f"{dev.url}/v1/coordinate/node/n2", timeout=5).json()
    assert n2["Coord"]["Vec"][0] == pytest.approx(0.010)
    missing = requests.get(f"{dev.url}/v1/coordinate/node/n4", timeout=5)
    assert missing.status_code == 404 and missing.content == b""


@pytest.mark.integration
def test_datacenters_lists_the_servers_wan_coordinates(dev: DevServer) -> None:
    [area] = requests.get(f"{dev.url}/v1/coordinate/datacenters", timeout=5).json()
    assert area["Datacenter"] == "dc1" and area["AreaID"] == "WAN"
    assert [c["Node"] for c in area["Coordinates"]] == [f"{NODE}.dc1"]


@pytest.mark.integration
def test_bad_updates_are_refused_and_change_nothing(dev: DevServer) -> None:
    before = requests.get(f"{dev.url}/v1/coordinate/node/n2", timeout=5).json()
    short = requests.put(f"{dev.url}/v1/coordinate/update", json={"Node": "n2", "Coord": {"Vec": [0.1, 0.2]}},
                         timeout=5)
    assert short.status_code == 500 and short.text.startswith("rejected bad coordinate")
    assert requests.put(f"{dev.url}/v1/coordinate/update", data=b"{nope", timeout=5).status_code == 400
    assert requests.put(f"{dev.url}/v1/coordinate/update", json={"Node": 7}, timeout=5).status_code == 400
    assert requests.get(f"{dev.url}/v1/coordinate/node/n2", timeout=5).json() == before


@pytest.mark.integration
def test_a_blocking_read_of_the_coordinates_wakes_on_an_update(dev: DevServer) -> None:
    index = requests.get(f"{dev.url}/v1/coordinate/nodes", timeout=5).headers["X-Consul-Index"]
    put_coordinate(dev.url, "n3", coord(21.0))
    r = requests.get(f"{dev.url}/v1/coordinate/nodes", params={"index": index, "wait": "30s"}, timeout=40)
    assert int(r.headers["X-Consul-Index"]) > int(index)
    assert next(e for e in r.json() if e["Node"] == "n3")["Coord"]["Vec"][0] == pytest.approx(0.021)
    put_coordinate(dev.url, "n3", coord(20.0))


@pytest.mark.integration
@pytest.mark.parametrize(("path", "node_of"), [
    ("/v1/catalog/nodes", lambda e: e["Node"]),
    ("/v1/catalog/service/redis", lambda e: e["Node"]),
    ("/v1/health/service/redis", lambda e: e["Node"]["Node"]),
    ("/v1/health/checks/redis", lambda e: e["Node"]),
])
def test_near_sorts_reads_nearest_first_and_unknown_coordinates_last(dev: DevServer, path: str, node_of) -> None:
    wait_for(lambda: requests.get(f"{dev.url}/v1/coordinate/node/n3", timeout=5).json()[0]["Coord"]["Vec"][0]
             == pytest.approx(0.020), what="n3 back at 20 ms")

    def order(near: str) -> list[str]:
        names = [node_of(e) for e in requests.get(f"{dev.url}{path}", params={"near": near}, timeout=5).json()]
        return [n for n in dict.fromkeys(names) if n != NODE or path == "/v1/catalog/nodes"]

    from_n1 = order("n1")
    assert from_n1[:3] == ["n1", "n3", "n2"] and from_n1[-1] == "n4"
    from_agent = [n for n in order("_agent") if n != NODE]
    assert from_agent == ["n2", "n3", "n1", "n4"]


# ---------------------------------------------------------------------- heartbeats, templates, meshctl rtt


def _meshctl(url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSUL_HTTP_ADDR": url}
    return subprocess.run([sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=cwd)


@pytest.mark.integration
def test_meshctl_rtt_prints_consuls_line(dev: DevServer) -> None:
    r = _meshctl(dev.url, "rtt", "n2", "n1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Estimated n2 <-> n1 rtt: 20.000 ms (using LAN coordinates)\n"
    alone = _meshctl(dev.url, "rtt", "n3")  # the other end is the agent's own node
    assert alone.stdout == f"Estimated n3 <-> {NODE} rtt: 20.000 ms (using LAN coordinates)\n"
    unknown = _meshctl(dev.url, "rtt", "n4")
    assert unknown.returncode == 1 and "Could not find a coordinate for node 'n4'" in unknown.stderr
    assert _meshctl(dev.url, "rtt").returncode == 1


@pytest.mark.integration
def test_near_in_a_template_orders_instances(dev: DevServer, tmp_path: Path) -> None:
    (tmp_path / "in.ctmpl").write_text('{{ range service "redis~n1" }}{{ .Node }} {{ end }}\n'
                                       '{{ range service "redis" }}{{ .Node }} {{ end }}\n')
    r = _meshctl(dev.url, "template", "-template", "in.ctmpl:out.txt", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    near, plain = (tmp_path / "out.txt").read_text().splitlines()
    assert near.split() == ["n1", "n3", "n2", "n4"]  # n4 has no coordinate: last
    assert plain.split() == ["n1", "n2", "n3", "n4"]  # without ~near: by node name


@pytest.mark.integration
def test_a_client_agents_heartbeats_give_it_and_its_server_coordinates(dev: DevServer, tmp_path: Path) -> None:
    client = start_client_agent(tmp_path, dev.addr, node="beating", dns_port=0)
    try:
        def measured() -> dict[str, object] | None:
            r = requests.get(f"{dev.url}/v1/coordinate/node/beating", timeout=5)
            if r.status_code != 200:
                return None
            c = r.json()[0]["Coord"]
            return c if c["Error"] < ERROR_MAX else None  # moved by at least one measured round trip

        coordinate = wait_for(measured, what="the client's coordinate", log=client.log)
        assert any(v != 0 for v in coordinate["Vec"])  # type: ignore[union-attr]
        r = _meshctl(client.url, "rtt", NODE)  # asked of the client agent: the other end is its node
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"Estimated {NODE} <-> beating rtt: ") and r.stdout.endswith(
            " ms (using LAN coordinates)\n")
        assert 0 < float(r.stdout.split("rtt: ")[1].split()[0]) < 1000
        # ?near=_agent through the client agent sorts from the client's node
        names = [n["Node"] for n in requests.get(f"{client.url}/v1/catalog/nodes?near=_agent", timeout=5).json()]
        assert names[0] == "beating"
    finally:
        client.stop()
