"""The Raft port runs no code it is sent and listens only on -bind.

A crafted pickle whose __reduce__ opens (creates) a file is sent to a running server's Raft
port, framed as pysyncobj frames its messages; the server must drop the connection without
creating the file, and keep serving.
"""

from __future__ import annotations

import pickle
import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Cluster, Server, wait_for

pytestmark = pytest.mark.integration

KEY = "K7cJ3iJ9qC2pX8h0vT5mQw=="


class Exploit:
    """Unpickling this creates `path` (what a code-running message would do)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def frame(payload: bytes) -> bytes:
    """One pysyncobj transport frame: native int length, zlib-compressed body."""
    data = zlib.compress(payload, 3)
    return struct.pack("i", len(data)) + data


def send_and_wait_for_close(address: str, frames: list[bytes]) -> bool:
    """Send the frames to the Raft port; whether the server then closed the connection."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        for f in frames:
            sock.sendall(f)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False
            if not chunk:
                return True


@pytest.fixture(params=["plain", "encrypt"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    c = Cluster(tmp_path, 1, extra=["-encrypt", KEY] if request.param == "encrypt" else [])
    c.start()
    yield c.servers[0]
    c.stop()


def test_a_pickled_message_runs_no_code_and_the_server_keeps_serving(server: Server, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    evil = pickle.dumps(Exploit(str(target)), protocol=2)
    attempts = [
        [frame(evil)],  # as the first message of a connection
        [frame(pickle.dumps(server.raft_address, protocol=2)), frame(evil)],  # after an old-style handshake
        [frame(pickle.dumps({"type": "append_entries", "x": Exploit(str(target))}))],
    ]
    for frames in attempts:
        closed = send_and_wait_for_close(server.raft_address, frames)
        assert not target.exists(), "the Raft port ran code it was sent"
        assert closed, "the server did not drop a connection that sent a pickle"
    assert server.put("/v1/kv/still/serving", b"yes").json() is True
    assert server.get("/v1/kv/still/serving?raw").content == b"yes"
    assert server.alive


def test_the_raft_port_listens_on_the_bind_address_only(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 1)
    c.start()
    try:
        s = c.servers[0]
        with socket.create_connection(("127.0.0.1", s.server_port), timeout=5):
            pass
        for other in ("127.0.0.2", "127.0.0.3"):
            with socket.socket() as probe:
                probe.settimeout(5)
                with pytest.raises(ConnectionRefusedError):
                    probe.connect((other, s.server_port))
        wait_for(lambda: s.put("/v1/kv/bound", b"1").json() is True, 10, "the server to keep serving")
    finally:
        c.stop()
