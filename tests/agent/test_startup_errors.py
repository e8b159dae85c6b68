"""Start-up mistakes: each is one clear line on stderr and a non-zero exit, never a traceback.

Every row runs the real `python -m meshctl agent ...` and names what the line must say.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from devserver import free_port

REPO = Path(__file__).resolve().parents[2]
KEY = "pTiP5rW0v3wXJ7Yp4gE2bM1qL8nZ6cV9kD0sH3fA5uQ="


@dataclass
class Case:
    name: str
    argv: Callable[[Path, int], list[str]]  # (tmp dir, a port someone else holds) -> arguments
    says: tuple[str, ...]  # what the one line must contain ("{port}": the busy port)
    hold: str = ""  # "tcp" / "udp": a socket of this test listens on the busy port


def ports(*skip: str) -> list[str]:
    """Free ports for every listener of a server, except those given."""
    out: list[str] = []
    for flag in ("-http-port", "-dns-port", "-server-port", "-serf-port"):
        if flag not in skip:
            out += [flag, str(free_port())]
    return out


def server(tmp: Path, *extra: str) -> list[str]:
    return ["-server", "-data-dir", str(tmp / "data"), *extra]


CASES = [
    Case("server without a data dir", lambda t, p: ["-server", *ports()], ("data_dir cannot be empty",)),
    Case("data dir is a file", lambda t, p: ["-server", "-data-dir", str(_file(t)), *ports()],
         ("is not a directory",)),
    Case("data dir cannot be created", lambda t, p: ["-server", "-data-dir", str(_file(t) / "sub"), *ports()],
         ("cannot be created",)),
    Case("http port in use", lambda t, p: ["-dev", "-http-port", str(p), *ports("-http-port")],
         ("http listener", ":{port}", "address already in use"), hold="tcp"),
    Case("dns port in use (udp)", lambda t, p: ["-dev", "-dns-port", str(p), *ports("-dns-port")],
         ("dns listener", ":{port}", "(udp)"), hold="udp"),
    Case("serf port in use", lambda t, p: server(t, "-serf-port", str(p), *ports("-serf-port")),
         ("serf listener", ":{port}"), hold="tcp"),
    Case("raft port in use", lambda t, p: server(t, "-server-port", str(p), *ports("-server-port")),
         ("server listener", ":{port}"), hold="tcp"),
    Case("bootstrap with bootstrap-expect", lambda t, p: server(t, "-bootstrap", "-bootstrap-expect", "3", *ports()),
         ("mutually exclusive",)),
    Case("bootstrap-expect on a client", lambda t, p: ["-bootstrap-expect", "3", "-join", "127.0.0.1:1", *ports()],
         ("requires 'server = true'",)),
    Case("client without a server to join", lambda t, p: [*ports()], ("needs -join",)),
    Case("missing config file", lambda t, p: ["-dev", "-config-file", str(t / "nope.hcl"), *ports()],
         ("nope.hcl", "No such file")),
    Case("missing config dir", lambda t, p: ["-dev", "-config-dir", str(t / "nodir"), *ports()], ("nodir",)),
    Case("unreadable config (not text)", lambda t, p: ["-dev", "-config-file", str(_bytes(t)), *ports()],
         ("bin.hcl",)),
    Case("HCL syntax error", lambda t, p: ["-dev", "-config-file", str(_text(t, "x.hcl", "a = = 1\n")), *ports()],
         ("x.hcl", "line 1")),
    Case("unknown config key", lambda t, p: ["-dev", "-config-file", str(_text(t, "k.hcl", "\nbogus = 1\n")), *ports()],
         ("k.hcl", "line 2", "invalid config key bogus")),
    Case("invalid -encrypt key", lambda t, p: ["-dev", "-encrypt", "not-a-key", *ports()],
         ("Failed to decode encryption key",)),
    Case("-encrypt key of a wrong length", lambda t, p: ["-dev", "-encrypt", KEY[:12], *ports()],
         ("encryption key",)),
    Case("bind address not an IP", lambda t, p: server(t, "-bind", "not-an-ip", *ports()),
         ("bind_addr", "not-an-ip")),
    Case("bind address not on this host", lambda t, p: server(t, "-bind", "192.0.2.1", *ports()),
         ("192.0.2.1", "cannot assign requested address")),
    Case("unknown flag", lambda t, p: ["-dev", "-bogus", *ports()], ("-bogus",)),
    Case("bad flag value", lambda t, p: ["-dev", "-http-port", "eighty"], ("eighty",)),
    Case("bad log level", lambda t, p: ["-dev", "-log-level", "loud", *ports()], ("loud",)),
]


def _file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("x")
    return path


def _bytes(tmp: Path) -> Path:
    path = tmp / "bin.hcl"
    path.write_bytes(b"\xff\xfe\x00garbage")
    return path


def _text(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


@pytest.fixture
def busy(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    """A port held by this test (TCP listening or UDP bound), as another program would hold it."""
    kind = request.param
    if not kind:
        yield 0, ""
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    if kind == "tcp":
        sock.listen(1)
    try:
        yield sock.getsockname()[1], kind
    finally:
        sock.close()


@pytest.mark.integration
@pytest.mark.parametrize(("case", "busy"), [(c, c.hold) for c in CASES], ids=[c.name for c in CASES],
                         indirect=["busy"])
def test_a_startup_mistake_is_one_line_and_an_exit_code(tmp_path: Path, case: Case, busy: tuple[int, str]) -> None:
    port, _ = busy
    proc = subprocess.run([sys.executable, "-m", "meshctl", "agent", *case.argv(tmp_path, port)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert len(lines) == 1, proc.stderr
    for part in case.says:
        assert part.format(port=port) in lines[0], lines[0]
