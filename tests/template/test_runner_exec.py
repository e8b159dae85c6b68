"""-exec supervision as real processes: reload signal, restart, forwarding, kill timeout, exit codes."""

from __future__ import annotations

import os
import signal
import time

import pytest
from ctrun import Proc, dev_agent, file_is, read, wait_until

from meshctl.client import Client

CHILD = """\
echo $$ >> pids
trap 'echo hup >> sig' HUP
trap 'echo usr1 >> sig' USR1
trap 'echo usr2 >> sig; exit 0' USR2
trap 'echo term >> sig; exit 0' TERM
while true; do sleep 0.05; done
"""

STUBBORN = """\
echo $$ >> pids
trap 'echo ignored >> sig' TERM
while true; do sleep 0.05; done
"""


@pytest.fixture(scope="module")
def consul(tmp_path_factory):
    for server in dev_agent(tmp_path_factory):
        yield from _with_client(server)


def _with_client(server):
    c = Client(server.addr)
    yield server.addr, c
    c.close()


def lines(path) -> list[str]:
    return (read(path) or "").splitlines()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def start(addr, tmp_path, key, *extra, script=CHILD):
    (tmp_path / "child.sh").write_text(script)
    (tmp_path / "in.ctmpl").write_text(f'{{{{ key "{key}" }}}}')
    return Proc(addr, "-template", "in.ctmpl:out.txt", "-exec", "sh child.sh", *extra, cwd=tmp_path)


def test_child_starts_after_render_and_gets_the_reload_signal(consul, tmp_path):
    addr, c = consul
    c.kv.put("ex1/k", "1")
    p = start(addr, tmp_path, "ex1/k", "-exec-reload-signal", "SIGHUP")
    try:
        wait_until(lambda: len(lines(tmp_path / "pids")) == 1, proc=p, what="child start")
        assert read(tmp_path / "out.txt") == "1"
        c.kv.put("ex1/k", "2")
        wait_until(lambda: "hup" in lines(tmp_path / "sig"), proc=p, what="reload signal")
        assert read(tmp_path / "out.txt") == "2" and len(lines(tmp_path / "pids")) == 1
        c.kv.put("ex1/k", "2")  # same data: no reload
        time.sleep(0.3)
        assert lines(tmp_path / "sig") == ["hup"]
    finally:
        p.signal(signal.SIGTERM)
        p.wait(15)
        p.stop()


def test_without_reload_signal_the_child_is_restarted_with_the_kill_signal(consul, tmp_path):
    addr, c = consul
    c.kv.put("ex2/k", "1")
    p = start(addr, tmp_path, "ex2/k", "-exec-kill-signal", "SIGUSR2")
    try:
        wait_until(lambda: len(lines(tmp_path / "pids")) == 1, proc=p, what="child start")
        first = int(lines(tmp_path / "pids")[0])
        c.kv.put("ex2/k", "2")
        wait_until(lambda: len(lines(tmp_path / "pids")) == 2, proc=p, what="restart")
        assert lines(tmp_path / "sig") == ["usr2"]
        assert not alive(first)
        assert read(tmp_path / "out.txt") == "2"
    finally:
        p.signal(signal.SIGTERM)
        p.wait(15)
        p.stop()


def test_other_signals_are_forwarded_to_the_child(consul, tmp_path):
    addr, c = consul
    c.kv.put("ex3/k", "1")
    p = start(addr, tmp_path, "ex3/k")
    try:
        wait_until(lambda: lines(tmp_path / "pids"), proc=p, what="child start")
        p.signal(signal.SIGUSR1)
        wait_until(lambda: "usr1" in lines(tmp_path / "sig"), proc=p, what="forwarded USR1")
        assert p.proc.poll() is None
    finally:
        p.signal(signal.SIGTERM)
        p.wait(15)
        p.stop()


def test_meshctl_exits_with_the_childs_exit_code(consul, tmp_path):
    addr, c = consul
    c.kv.put("ex4/k", "1")
    p = start(addr, tmp_path, "ex4/k", script="echo $$ >> pids\nwhile [ ! -f quit ]; do sleep 0.05; done\nexit 5\n")
    try:
        wait_until(lambda: lines(tmp_path / "pids"), proc=p, what="child start")
        (tmp_path / "quit").write_text("")
        assert p.wait(15) == 5
    finally:
        p.stop()


def test_sigterm_stops_the_child_with_kill_timeout_then_sigkill(consul, tmp_path):
    addr, c = consul
    c.kv.put("ex5/k", "1")
    p = start(addr, tmp_path, "ex5/k", "-exec-kill-timeout", "1s", script=STUBBORN)
    try:
        wait_until(lambda: lines(tmp_path / "pids"), proc=p, what="child start")
        pid = int(lines(tmp_path / "pids")[0])
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        assert p.wait(60) == 0
        elapsed = time.monotonic() - t0
        assert elapsed >= 0.9, elapsed  # the child had its kill timeout before SIGKILL
        wait_until(lambda: "ignored" in lines(tmp_path / "sig"), what="child saw SIGTERM")
        wait_until(lambda: not alive(pid), timeout=5, what="child killed")
    finally:
        p.stop()


def test_sigint_stops_child_and_exits_12(consul, tmp_path):
    addr, c = consul
    c.kv.put("ex6/k", "1")
    p = start(addr, tmp_path, "ex6/k")
    try:
        wait_until(lambda: lines(tmp_path / "pids"), proc=p, what="child start")
        pid = int(lines(tmp_path / "pids")[0])
        p.signal(signal.SIGINT)
        assert p.wait(15) == 12
        wait_until(lambda: not alive(pid), timeout=5, what="child gone")
    finally:
        p.stop()


def test_child_waits_for_every_template(consul, tmp_path):
    addr, c = consul
    c.kv.put("ex7/a", "a")
    (tmp_path / "a.ctmpl").write_text('{{ key "ex7/a" }}')
    (tmp_path / "b.ctmpl").write_text('{{ key "ex7/b" }}')
    (tmp_path / "child.sh").write_text("cat a.txt b.txt > seen; echo $$ >> pids; sleep 30\n")
    p = Proc(addr, "-template", "a.ctmpl:a.txt", "-template", "b.ctmpl:b.txt", "-exec", "sh child.sh",
             cwd=tmp_path)
    try:
        time.sleep(0.8)
        assert read(tmp_path / "pids") is None and read(tmp_path / "a.txt") is None
        c.kv.put("ex7/b", "b")
        wait_until(file_is(tmp_path / "seen", "ab"), proc=p, what="child after both templates")
    finally:
        p.signal(signal.SIGTERM)
        p.wait(15)
        p.stop()
