"""What a client can hold on to: header and keep-alive timeouts, and a snapshot bigger than the
body cap. Each case runs against a real dev server, which must answer normally afterwards."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from devserver import start_dev_server

from meshctl.server.http.limits import HEADER_TIMEOUT, MAX_BODY

pytestmark = pytest.mark.integration
ROOT = str(Path(__file__).resolve().parents[2])
REQUEST = b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n"
GRACE = 30.0  # on top of HEADER_TIMEOUT: a loaded machine may be slow to close 500 sockets (aiohttp alone: 75 s)


@pytest.fixture
def server(tmp_path):
    srv = start_dev_server(tmp_path)
    yield srv
    assert srv.proc.poll() is None, "the server died"
    assert requests.get(f"{srv.url}/v1/status/leader", timeout=10).status_code == 200
    srv.stop()


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slowloris_connections_are_closed(server):
    """500 connections sending their header one byte at a time are all closed by the server."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(500):
        s = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    open_socks = set(socks)
    sent = 0
    deadline = time.monotonic() + HEADER_TIMEOUT + GRACE
    try:
        while open_socks:
            assert time.monotonic() < deadline, f"{len(open_socks)} of 500 slow connections still open"
            byte = REQUEST[sent % (len(REQUEST) - 4):][:1]  # never the blank line that ends the header
            for s in list(open_socks):
                try:
                    s.send(byte)
                except OSError:
                    open_socks.discard(s)
            sent += 1
            for key, _ in sel.select(timeout=0.5):
                if _closed_by_peer(key.fileobj):  # type: ignore[arg-type]
                    open_socks.discard(key.fileobj)  # type: ignore[arg-type]
            # meanwhile, a real client is served
            if sent % 20 == 0:
                assert requests.get(f"{server.url}/v1/status/leader", timeout=10).status_code == 200
    finally:
        for s in socks:
            s.close()


def test_idle_keep_alive_connection_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=HEADER_TIMEOUT + GRACE) as s:
        s.sendall(REQUEST)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200")
        # then nothing: the server hangs up (recv returns b"" rather than timing out)
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break


def test_snapshot_bigger_than_the_body_cap_restores(server, tmp_path):
    """`snapshot save` of a store holding 9.5 MB of incompressible values, then `snapshot restore`."""
    values = {f"big/{i}": os.urandom(500 * 1024) for i in range(19)}
    for key, value in values.items():
        assert requests.put(f"{server.url}/v1/kv/{key}", data=value, timeout=30).json() is True
    env = {**os.environ, "PYTHONPATH": ROOT, "CONSUL_HTTP_ADDR": server.addr}
    path = tmp_path / "backup.snap"

    def meshctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, env=env,
                              timeout=120, cwd=ROOT)

    saved = meshctl("snapshot", "save", str(path))
    assert saved.returncode == 0, saved.stderr
    assert path.stat().st_size > MAX_BODY + 1024 * 1024
    assert requests.delete(f"{server.url}/v1/kv/big?recurse", timeout=30).json() is True
    restored = meshctl("snapshot", "restore", str(path))
    assert restored.returncode == 0, restored.stderr
    assert "Restored snapshot" in restored.stdout
    for key, value in values.items():
        assert requests.get(f"{server.url}/v1/kv/{key}?raw", timeout=30).content == value


def test_snapshot_restore_refuses_garbage(server):
    r = requests.put(f"{server.url}/v1/snapshot", data=b"not a snapshot", timeout=30)
    assert r.status_code == 500 and r.text.startswith("failed to read snapshot archive")
    assert requests.put(f"{server.url}/v1/kv/still", data=b"1", timeout=10).json() is True
