"""/v1/agent/monitor and `meshctl monitor`: the agent's log lines, at any level, never a token, never a stall."""

from __future__ import annotations

import json
import signal
import socket
import threading
import uuid

import pytest
import requests
from devserver import start_dev_server, wait_for
from metrics_support import meshctl_env, popen_meshctl

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def info_agent(tmp_path_factory):
    """A dev agent logging at info: what a monitor at debug shows it does not write itself."""
    server = start_dev_server(tmp_path_factory.mktemp("monitor"), "-log-level", "info")
    yield server
    server.stop()


def _read_until(proc, needle: str, lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if needle in line:
            return
    raise AssertionError("monitor ended before: " + needle + "\n" + "".join(lines))


def _garbage_dns(server) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x00\x01not a dns query", ("127.0.0.1", server.dns_port))


def test_unknown_level_is_consuls_400(info_agent) -> None:
    r = requests.get(f"{info_agent.url}/v1/agent/monitor", params={"loglevel": "chatty"}, timeout=5)
    assert r.status_code == 400 and r.text == "Unknown log level: chatty"


def test_monitor_at_debug_shows_more_than_the_agent_logs_and_never_a_token(info_agent) -> None:
    secret = "sekrit-" + uuid.uuid4().hex
    proc = popen_meshctl("monitor", "-log-level", "debug", env=meshctl_env(info_agent.addr))
    lines: list[str] = []
    try:
        marker = uuid.uuid4().hex

        def seen_request() -> bool:  # the monitor is attached once its own lines flow
            requests.get(f"{info_agent.url}/v1/kv/{marker}", timeout=5)
            return any(marker in line for line in lines)

        reader = threading.Thread(target=_read_until, args=(proc, "unparsable DNS query", lines), daemon=True)
        reader.start()
        wait_for(seen_request, 30, "the monitor's first lines")
        requests.get(f"{info_agent.url}/v1/kv/{marker}", params={"token": secret}, timeout=5)
        requests.get(f"{info_agent.url}/v1/kv/{marker}", headers={"X-Consul-Token": secret}, timeout=5)
        _garbage_dns(info_agent)
        reader.join(30)
        assert not reader.is_alive(), "".join(lines)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines)
    assert "[DEBUG] agent.http: Request finished: method=GET url=/v1/kv/" in text
    assert "token=<hidden>" in text
    assert "[DEBUG] server.dns: unparsable DNS query dropped" in text
    assert secret not in text
    own = info_agent.log()
    assert "unparsable DNS query" not in own and "Request finished" not in own  # the agent's own level holds


def test_monitor_json_lines(info_agent) -> None:
    proc = popen_meshctl("monitor", "-log-level", "info", "-log-json", env=meshctl_env(info_agent.addr))
    try:
        assert proc.stdout is not None
        lines: list[str] = []

        def reload_logged() -> bool:
            requests.put(f"{info_agent.url}/v1/agent/reload", timeout=5)
            return True

        reader = threading.Thread(target=_read_until, args=(proc, "reloaded", lines), daemon=True)
        reader.start()
        wait_for(lambda: reload_logged() and not reader.is_alive(), 30, "a reload line")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    entry = json.loads(next(line for line in lines if "reloaded" in line))
    assert set(entry) == {"@level", "@message", "@module", "@timestamp"}
    assert entry["@level"] == "info" and "reloaded" in entry["@message"]


def test_a_slow_reader_drops_lines_and_never_stalls_the_agent(info_agent) -> None:
    """A monitor that reads nothing: the agent keeps answering; the reader is told what it lost."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", info_agent.http_port))
    sock.sendall(b"GET /v1/agent/monitor?loglevel=debug HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200")
        pad = "p" * 4000  # each request's debug line carries its URL: ~4 KB a line
        with requests.Session() as http:  # every request is answered while the monitor's reader stalls
            for i in range(1500):
                r = http.get(f"{info_agent.url}/v1/kv/slow-reader", params={"pad": pad, "i": str(i)}, timeout=10)
                assert r.status_code == 404
        sock.settimeout(30)
        received = b""
        while b"Monitor dropped" not in received:
            chunk = sock.recv(1 << 20)
            assert chunk, "stream ended without a dropped-lines note"
            received = received[-200:] + chunk
    finally:
        sock.close()
