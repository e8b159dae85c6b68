"""`meshctl watch` as a user runs it: a real process against a dev server, a real handler command.

The handler is a small shell script that saves each stdin it gets (and CONSUL_INDEX) to a
numbered file, so the tests read exactly what a handler would have seen.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from meshctl.client import Client

pytestmark = pytest.mark.integration
PY = sys.executable

HANDLER = """#!/bin/sh
n=$(ls "$1" | grep -c '\\.json$')
cat > "$1/tmp.$$"
echo "$CONSUL_INDEX" > "$1/$n.idx"
mv "$1/tmp.$$" "$1/$n.json"
"""


def meshctl(server, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSUL_HTTP_ADDR": server.addr}
    return subprocess.run([PY, "-m", "meshctl", *args], capture_output=True, text=True, env=env, timeout=timeout)


class Watcher:
    """A background `meshctl watch ... handler.sh DIR` and the calls it made."""

    def __init__(self, server, tmp_path: Path, *args: str, handler: str = HANDLER, name: str = "w") -> None:
        self.dir = tmp_path / f"{name}-calls"
        self.dir.mkdir()
        script = tmp_path / f"{name}-handler.sh"
        script.write_text(handler)
        script.chmod(0o755)
        env = {**os.environ, "CONSUL_HTTP_ADDR": server.addr}
        self.proc = subprocess.Popen([PY, "-m", "meshctl", "watch", *args, str(script), str(self.dir)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def calls(self) -> list[tuple[int, object]]:
        out = []
        for i in range(len(list(self.dir.glob("*.json")))):
            data = json.loads((self.dir / f"{i}.json").read_text())
            out.append((int((self.dir / f"{i}.idx").read_text()), data))
        return out

    def wait_calls(self, n: int, timeout: float = 15) -> list[tuple[int, object]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.calls()
            if len(calls) >= n:
                return calls
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"expected {n} handler calls, got {self.calls()!r}; stderr: {self.stop()[1]}")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, stderr = self.proc.communicate()
        return self.proc.returncode, stderr


@pytest.fixture
def client(shared_dev_server):
    with Client(shared_dev_server.addr) as c:
        yield c


def test_without_handler_prints_the_data_once_as_indented_json(shared_dev_server, client):
    client.kv.put("print/a", b"one")
    client.kv.put("print/b/c", b"<two>")
    result = meshctl(shared_dev_server, "watch", "-type", "keyprefix", "-prefix", "print/")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(d["Key"], d["Value"]) for d in data] == [("print/a", "b25l"), ("print/b/c", "PHR3bz4=")]
    assert set(data[0]) == {"Key", "CreateIndex", "ModifyIndex", "LockIndex", "Flags", "Value", "Session"}
    assert result.stdout.startswith('[\n    {\n        "Key": "print/a",\n')  # Go's MarshalIndent, 4 spaces


def test_key_handler_runs_at_start_and_on_each_change_with_json_on_stdin(shared_dev_server, client, tmp_path):
    w = Watcher(shared_dev_server, tmp_path, "-type", "key", "-key", "keyw/flag")
    try:
        (idx0, first), = w.wait_calls(1)
        assert first is None  # the key does not exist yet: the handler still runs once, with null
        client.kv.put("keyw/flag", b"on")
        calls = w.wait_calls(2)
        idx1, pair = calls[1]
        assert pair["Key"] == "keyw/flag" and pair["Value"] == "b24=" and pair["Session"] == ""
        assert idx1 == pair["ModifyIndex"] and idx1 > idx0
        client.kv.put("keyw/other", b"x")  # not the watched key: no call
        client.kv.put("keyw/flag", b"off")
        calls = w.wait_calls(3)
        assert calls[2][1]["Value"] == "b2Zm"
        time.sleep(0.5)
        assert len(w.calls()) == 3
    finally:
        code, stderr = w.stop()
    assert code == 0, stderr  # SIGTERM ends a watch cleanly, as consul watch


def test_keyprefix_handler_sees_the_whole_prefix(shared_dev_server, client, tmp_path):
    client.kv.put("kp/a", b"1")
    w = Watcher(shared_dev_server, tmp_path, "-type", "keyprefix", "-prefix", "kp/")
    try:
        assert [p["Key"] for p in w.wait_calls(1)[0][1]] == ["kp/a"]
        client.kv.put("kp/b", b"2")
        assert [p["Key"] for p in w.wait_calls(2)[1][1]] == ["kp/a", "kp/b"]
        client.kv.delete("kp/a")
        assert [p["Key"] for p in w.wait_calls(3)[2][1]] == ["kp/b"]
    finally:
        w.stop()


def test_event_handler_gets_only_the_new_events(shared_dev_server, client, tmp_path):
    client.event.fire("evw-deploy", b"old")
    w = Watcher(shared_dev_server, tmp_path, "-type", "event", "-name", "evw-deploy")
    try:
        first = w.wait_calls(1)[0][1]
        assert [e["Payload"] for e in first] == ["b2xk"]  # the history the agent holds, at start
        client.event.fire("evw-other", b"ignored")
        fired = client.event.fire("evw-deploy", b"v2")
        calls = w.wait_calls(2)
        assert [(e["ID"], e["Name"], e["Payload"]) for e in calls[1][1]] == [(fired["ID"], "evw-deploy", "djI=")]
        client.event.fire("evw-deploy", b"v3")
        assert [e["Payload"] for e in w.wait_calls(3)[2][1]] == ["djM="]
    finally:
        w.stop()


def test_checks_and_service_watches_follow_health(shared_dev_server, client, tmp_path):
    client.agent.service_register({"Name": "chkw", "ID": "chkw-1", "Port": 9, "Tags": ["blue"],
                                   "Check": {"TTL": "60s", "CheckID": "chkw-ttl"}})
    client.agent.check_pass("chkw-ttl")
    checks = Watcher(shared_dev_server, tmp_path, "-type", "checks", "-service", "chkw", name="checks")
    passing = Watcher(shared_dev_server, tmp_path, "-type", "service", "-service", "chkw",
                      "-passingonly", "true", "-tag", "blue", name="passing")
    try:
        first = checks.wait_calls(1)[0][1]
        assert [(c["CheckID"], c["Status"]) for c in first] == [("chkw-ttl", "passing")]
        entries = passing.wait_calls(1)[0][1]
        assert [e["Service"]["ID"] for e in entries] == ["chkw-1"]
        client.agent.check_fail("chkw-ttl", "down")
        calls = checks.wait_calls(2)
        assert [(c["CheckID"], c["Status"], c["Output"]) for c in calls[1][1]] == [("chkw-ttl", "critical", "down")]
        assert passing.wait_calls(2)[1][1] == []  # no passing instance left
    finally:
        checks.stop()
        passing.stop()
        client.agent.service_deregister("chkw-1")


def test_a_failing_handler_stops_the_watch_with_status_1(shared_dev_server, client, tmp_path):
    client.kv.put("failw/k", b"v")
    w = Watcher(shared_dev_server, tmp_path, "-type", "key", "-key", "failw/k", handler="#!/bin/sh\nexit 3\n")
    code = w.proc.wait(timeout=15)
    _, stderr = w.stop()
    assert code == 1
    assert "Error executing handler: exit status 3" in stderr


@pytest.mark.parametrize("args, message", [
    ([], "Watch type must be specified"),
    (["-type", "bogus"], "Unsupported watch type: bogus"),
    (["-type", "key"], "Must specify a single key to watch"),
    (["-type", "keyprefix"], "Must specify a single prefix to watch"),
    (["-type", "service"], "Must specify a single service to watch"),
    (["-type", "checks", "-service", "x", "-state", "passing"], "Cannot specify service and state"),
    (["-type", "service", "-service", "x", "-passingonly", "maybe"], "Failed to parse passingonly flag"),
])
def test_invalid_watches_exit_1_with_consuls_message(shared_dev_server, args, message):
    result = meshctl(shared_dev_server, "watch", *args)
    assert result.returncode == 1
    assert message in result.stderr


def test_an_unreachable_agent_is_reported(tmp_path):
    from devserver import free_port

    env = {**os.environ, "CONSUL_HTTP_ADDR": f"127.0.0.1:{free_port()}"}
    result = subprocess.run([PY, "-m", "meshctl", "watch", "-type", "nodes"], capture_output=True, text=True,
                            env=env, timeout=20)
    assert result.returncode == 1
    assert "Error querying Consul agent" in result.stderr


def test_nodes_and_services_print_consul_shapes(shared_dev_server):
    nodes = json.loads(meshctl(shared_dev_server, "watch", "-type", "nodes").stdout)
    assert [n["Node"] for n in nodes] == [shared_dev_server.node]
    services = json.loads(meshctl(shared_dev_server, "watch", "-type", "services").stdout)
    assert services["consul"] == []
    assert requests.get(f"{shared_dev_server.url}/v1/catalog/services", timeout=5).json()["consul"] == []


# -- the pieces, without a server ------------------------------------------------------------------

def test_go_json_escapes_html_like_encoding_json():
    from meshctl.watch import go_json

    assert go_json({"a": "<b> & é"}) == '{"a":"\\u003cb\\u003e \\u0026 é"}'
    assert go_json([1, {"x": None}], indent=4) == '[\n    1,\n    {\n        "x": null\n    }\n]'


def test_event_index_is_consuls_id_to_index():
    from meshctl.watch import event_index

    uid = "0123abcd-0000-4000-8000-00000000ffff"
    assert event_index(uid) == 0x0123ABCD00004000 ^ 0x800000000000FFFF


def test_only_events_after_the_last_one_handed_over_are_new():
    from meshctl.watch import _new_events

    ids = ["bd5d7041-c004-402f-92c1-fa7d9467dc72", "bf2e674c-09db-4c43-acc0-4f9e127d7d8d",
           "49a71bea-195e-453c-b7b9-a19c05129002"]
    events = [{"ID": i} for i in ids]
    first, last = _new_events(events[:2], None)
    assert first == events[:2]
    later, last2 = _new_events(events, last)
    assert later == events[2:] and last2 != last


def test_parse_spec_defaults_checks_to_any_state():
    from meshctl.watch import parse_spec

    assert parse_spec({"type": "checks"}).state == "any"
    assert parse_spec({"type": "service", "service": "web", "tag": "a"}).tag == ["a"]


def test_without_shell_the_handler_is_run_directly(shared_dev_server, client, tmp_path):
    client.kv.put("noshell/k", b"v")
    out = tmp_path / "stdin.json"
    env = {**os.environ, "CONSUL_HTTP_ADDR": shared_dev_server.addr}
    proc = subprocess.Popen([PY, "-m", "meshctl", "watch", "-type", "key", "-key", "noshell/k", "-shell=false",
                             PY, "-c", f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.read_text().endswith("\n")
        assert json.loads(out.read_text())["Value"] == "dg=="
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
